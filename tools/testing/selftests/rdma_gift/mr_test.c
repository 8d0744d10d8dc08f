// SPDX-License-Identifier: GPL-2.0
/*
 * Memory regions of gift devices through libibverbs: registration and
 * deregistration, keys, the exact errors of bad registrations,
 * RLIMIT_MEMLOCK accounting, rereg, pinning of COW-shared memory with
 * balanced FOLL_PIN counters, and the MR limits the device reports.
 *
 * Data moving through MRs is tested with the data path (qp_test).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

/* The driver's limits (gift_mr.h). */
#define GIFT_MAX_MR		0x10000
#define GIFT_MAX_MR_SIZE	(256ULL << 30)

#define KIB			1024UL
#define MIB			(1024 * KIB)

#define RW	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_READ)

/* Anonymous private memory, never touched: every page is unpopulated. */
static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Anonymous memory filled with a pattern, so every page is private. */
static void *map_filled(size_t len)
{
	char *p = map_anon(len);

	if (p)
		memset(p, 0x5a, len);
	return p;
}

/* Lines of "rdma resource show mr dev DEV": one per MR, kernel's too. */
static long mr_count(const char *dev)
{
	char cmd[128], line[512];
	long n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma resource show mr dev %s", dev);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "dev ", 4))
			n++;
	if (pclose(f))
		return -1;
	return n;
}

/*
 * Kernel PDs of DEV: those with a local_dma_lkey. Each owns a DMA MR that
 * counts against max_mr but, created by ib_core itself, is not listed by
 * "rdma resource show mr".
 */
static long kernel_pd_count(const char *dev)
{
	char cmd[128], line[512], *p;
	long n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma resource show pd dev %s", dev);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, " local_dma_lkey ");
		if (p && strtoul(p + 16, NULL, 0))
			n++;
	}
	if (pclose(f))
		return -1;
	return n;
}

/* True if "rdma resource show mr" lists an MR with this lkey. */
static bool mr_listed(const char *dev, uint32_t lkey)
{
	char cmd[128], line[512], key[32];
	bool found = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma resource show mr dev %s", dev);
	snprintf(key, sizeof(key), " lkey 0x%x ", lkey);
	f = popen(cmd, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, key))
			found = true;
	pclose(f);
	return found;
}

/*
 * The value of driver attribute NAME ("rdma -dd resource show mr": the
 * word after "drv_NAME") of the MR with this lkey, or -1.
 */
static long long mr_drv_attr(const char *dev, uint32_t lkey,
			     const char *name)
{
	char cmd[128], line[512], key[32], attr[64], *p;
	long long val = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma -dd resource show mr dev %s", dev);
	snprintf(key, sizeof(key), " lkey 0x%x ", lkey);
	snprintf(attr, sizeof(attr), " drv_%s ", name);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, attr);
		if (p && strstr(line, key))
			val = strtoll(p + strlen(attr), NULL, 10);
	}
	pclose(f);
	return val;
}

/* The mrlen ib_core reports for the MR with this lkey, or -1. */
static long long mr_len(const char *dev, uint32_t lkey)
{
	char cmd[128], line[512], key[32], *p;
	long long len = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma resource show mr dev %s", dev);
	snprintf(key, sizeof(key), " lkey 0x%x ", lkey);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, " mrlen ");
		if (p && strstr(line, key))
			len = strtoll(p + 7, NULL, 10);
	}
	pclose(f);
	return len;
}

struct pins {
	long long acquired;
	long long released;
};

/* FOLL_PIN counters from /proc/vmstat, per-CPU deltas folded in first. */
static int read_pins(struct pins *p)
{
	char name[64];
	long long val;
	FILE *f;

	gift_sh("echo 1 > /proc/sys/vm/stat_refresh");
	p->acquired = -1;
	p->released = -1;
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &val) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			p->acquired = val;
		else if (!strcmp(name, "nr_foll_pin_released"))
			p->released = val;
	}
	fclose(f);
	return p->acquired < 0 || p->released < 0 ? -1 : 0;
}

FIXTURE(mr) {
	const char *name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	long page;
};

FIXTURE_SETUP(mr)
{
	self->name = gift_env("GIFT_IBDEV");
	self->page = sysconf(_SC_PAGESIZE);
	self->ctx = gift_open(self->name);
	ASSERT_NE(NULL, self->ctx);
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
}

FIXTURE_TEARDOWN(mr)
{
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/*
 * One page registers with lkey == rkey, a non-zero key index, is listed by
 * ib_core, and is gone again after dereg.
 */
TEST_F(mr, reg_one_page)
{
	long base = mr_count(self->name);
	char *buf = map_filled(self->page);
	struct ibv_mr *mr;
	uint32_t lkey;

	ASSERT_NE(NULL, buf);
	ASSERT_GE(base, 0);
	mr = ibv_reg_mr(self->pd, buf, self->page, RW);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(mr->lkey, mr->rkey);
	EXPECT_NE(0, mr->lkey >> 8);
	EXPECT_EQ(buf, mr->addr);
	EXPECT_EQ(self->page, mr->length);
	EXPECT_EQ(base + 1, mr_count(self->name));
	EXPECT_TRUE(mr_listed(self->name, mr->lkey));
	EXPECT_EQ(self->page, mr_len(self->name, mr->lkey));

	lkey = mr->lkey;
	ASSERT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_EQ(base, mr_count(self->name));
	EXPECT_FALSE(mr_listed(self->name, lkey));
	munmap(buf, self->page);
}

/* A start in the middle of a page, spanning three pages, registers. */
TEST_F(mr, reg_unaligned_start)
{
	char *buf = map_filled(4 * self->page);
	struct ibv_mr *mr;

	ASSERT_NE(NULL, buf);
	mr = ibv_reg_mr(self->pd, buf + 100, 2 * self->page, RW);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(2 * self->page, mr_len(self->name, mr->lkey));
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	munmap(buf, 4 * self->page);
}

/* 1 MiB registers writable and read-only, pinning every page once. */
TEST_F(mr, reg_1mib)
{
	char *buf = map_filled(MIB);
	struct pins before, pinned, after;
	struct ibv_mr *mr;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, read_pins(&before));
	mr = ibv_reg_mr(self->pd, buf, MIB, RW);
	ASSERT_NE(NULL, mr);
	ASSERT_EQ(0, read_pins(&pinned));
	EXPECT_EQ(MIB / self->page, pinned.acquired - before.acquired);
	EXPECT_EQ(0, ibv_dereg_mr(mr));

	mr = ibv_reg_mr(self->pd, buf, MIB, IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);
	munmap(buf, MIB);
}

/* The iova may differ from the address (same offset in the page). */
TEST_F(mr, reg_iova_differs_from_addr)
{
	char *buf = map_filled(4 * self->page);
	uint64_t iova = 0x100000000000ULL + 200;
	struct ibv_mr *mr;

	ASSERT_NE(NULL, buf);
	mr = ibv_reg_mr_iova(self->pd, buf + 200, 3 * self->page, iova, RW);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(mr->lkey, mr->rkey);
	EXPECT_EQ(0, ibv_dereg_mr(mr));

	/* An iova range wrapping the 64-bit space is refused. */
	iova = UINT64_MAX - self->page + 1 + 200;
	mr = ibv_reg_mr_iova(self->pd, buf + 200, 3 * self->page, iova, RW);
	EXPECT_EQ(NULL, mr);
	EXPECT_EQ(EINVAL, errno);
	munmap(buf, 4 * self->page);
}

/*
 * 64 registrations get distinct random keys: no +1 or +256 steps, varying
 * low bytes, never index 0.
 */
TEST_F(mr, keys_random)
{
	enum { N = 64 };
	char *buf = map_filled(self->page);
	struct ibv_mr *mr[N];
	int i, j, steps = 0, bytes = 0;
	bool seen[256] = {};

	ASSERT_NE(NULL, buf);
	for (i = 0; i < N; i++) {
		mr[i] = ibv_reg_mr(self->pd, buf, self->page, RW);
		ASSERT_NE(NULL, mr[i]);
		EXPECT_EQ(mr[i]->lkey, mr[i]->rkey);
		EXPECT_NE(0, mr[i]->lkey >> 8);
		for (j = 0; j < i; j++)
			EXPECT_NE(mr[j]->lkey, mr[i]->lkey);
		if (i && (mr[i]->lkey - mr[i - 1]->lkey == 1 ||
			  mr[i]->lkey - mr[i - 1]->lkey == 256))
			steps++;
		if (!seen[mr[i]->lkey & 0xff])
			bytes++;
		seen[mr[i]->lkey & 0xff] = true;
	}
	/* Random keys: a single +1/+256 step has probability 2^-31. */
	EXPECT_EQ(0, steps);
	/* 64 random bytes take about 57 distinct values; 16 is far below. */
	EXPECT_GE(bytes, 16);
	for (i = 0; i < N; i++)
		EXPECT_EQ(0, ibv_dereg_mr(mr[i]));
	munmap(buf, self->page);
}

/* A zero length fails with EINVAL. */
TEST_F(mr, zero_length_einval)
{
	char *buf = map_filled(self->page);

	ASSERT_NE(NULL, buf);
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, 0, RW));
	EXPECT_EQ(EINVAL, errno);
	munmap(buf, self->page);
}

/* A range wrapping the end of the address space fails with EINVAL (as ib_umem). */
TEST_F(mr, wrapped_range_einval)
{
	void *addr = (void *)(UINTPTR_MAX - self->page + 1);

	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, addr, 2 * self->page, RW));
	EXPECT_EQ(EINVAL, errno);
	/* Ending exactly at 2^64 wraps too. */
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, addr, self->page, RW));
	EXPECT_EQ(EINVAL, errno);
}

/* A length over max_mr_size fails with EINVAL before anything is pinned. */
TEST_F(mr, over_max_mr_size_einval)
{
	char *buf = map_filled(self->page);

	ASSERT_NE(NULL, buf);
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, GIFT_MAX_MR_SIZE + 1, RW));
	EXPECT_EQ(EINVAL, errno);
	munmap(buf, self->page);
}

/*
 * A range with an unmapped page fails with EFAULT, leaving the pages
 * before the hole unpinned again.
 */
TEST_F(mr, unmapped_range_efault)
{
	char *buf = map_filled(8 * self->page);
	struct pins before, after;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, munmap(buf + 4 * self->page, self->page));
	ASSERT_EQ(0, read_pins(&before));
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, 8 * self->page, RW));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf + 4 * self->page, self->page,
				   IBV_ACCESS_REMOTE_READ));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);
	munmap(buf, 8 * self->page);
}

/* PROT_NONE memory fails with EFAULT, writable or not. */
TEST_F(mr, prot_none_efault)
{
	char *buf = map_filled(2 * self->page);

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, mprotect(buf, 2 * self->page, PROT_NONE));
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, 2 * self->page, RW));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, 2 * self->page,
				   IBV_ACCESS_REMOTE_READ));
	EXPECT_EQ(EFAULT, errno);
	munmap(buf, 2 * self->page);
}

/* Read-only memory registers read-only, and fails writable with EFAULT. */
TEST_F(mr, prot_read)
{
	char *buf = map_filled(2 * self->page);
	struct ibv_mr *mr;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, mprotect(buf, 2 * self->page, PROT_READ));
	mr = ibv_reg_mr(self->pd, buf, 2 * self->page, IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, 2 * self->page,
				   IBV_ACCESS_LOCAL_WRITE));
	EXPECT_EQ(EFAULT, errno);
	munmap(buf, 2 * self->page);
}

/* Remote write without local write fails with EINVAL (ib_core's check). */
TEST_F(mr, remote_write_needs_local_write)
{
	char *buf = map_filled(self->page);

	ASSERT_NE(NULL, buf);
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, self->page,
				   IBV_ACCESS_REMOTE_WRITE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, self->page,
				   IBV_ACCESS_REMOTE_ATOMIC));
	EXPECT_EQ(EINVAL, errno);
	munmap(buf, self->page);
}

/*
 * Features the device lacks fail with EOPNOTSUPP: zero-based MRs (the
 * driver refuses; zero-based memory windows work, see mw_test). Memory
 * window binding (mw_test) and on-demand paging (data_test's odp
 * fixture) work.
 */
TEST_F(mr, unsupported_access_eopnotsupp)
{
	char *buf = map_filled(self->page);
	struct ibv_mr *mr;

	ASSERT_NE(NULL, buf);
	mr = ibv_reg_mr(self->pd, buf, self->page,
			IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND);
	ASSERT_NE(NULL, mr) TH_LOG("MW_BIND: %s", strerror(errno));
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_EQ(NULL, ibv_reg_mr(self->pd, buf, self->page,
				   IBV_ACCESS_LOCAL_WRITE |
				   IBV_ACCESS_ZERO_BASED));
	EXPECT_EQ(EOPNOTSUPP, errno);
	munmap(buf, self->page);
}

/*
 * Optional access bits the driver does not implement are ignored:
 * relaxed ordering and an undefined optional bit. (Bit 29, the gift
 * flag, is implemented: gift_test.)
 */
TEST_F(mr, optional_access_bits_ignored)
{
	static const unsigned int bits[] = {
		IBV_ACCESS_RELAXED_ORDERING, 1U << 25,
	};
	char *buf = map_filled(self->page);
	struct ibv_mr *mr;
	int i;

	ASSERT_NE(NULL, buf);
	for (i = 0; i < 2; i++) {
		mr = ibv_reg_mr(self->pd, buf, self->page,
				IBV_ACCESS_REMOTE_READ | bits[i]);
		ASSERT_NE(NULL, mr);
		EXPECT_EQ(0, ibv_dereg_mr(mr));
	}
	munmap(buf, self->page);
}

/* Child of rlimit_memlock: exit codes name the failed step. */
static int memlock_child(const char *name)
{
	struct ibv_mr *a, *b, *c;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char *buf;

	/* Open before dropping privileges: only the registration must fail. */
	ctx = gift_open(name);
	if (!ctx)
		return 10;
	pd = ibv_alloc_pd(ctx);
	buf = map_filled(MIB);
	if (!pd || !buf)
		return 11;
	if (gift_become_nobody(64 * KIB))
		return 12;

	/* 1 MiB is over the 64 KiB limit. */
	if (ibv_reg_mr(pd, buf, MIB, IBV_ACCESS_LOCAL_WRITE) || errno != ENOMEM)
		return 20;
	/* 32 KiB fits, twice: exactly at the limit is allowed. */
	a = ibv_reg_mr(pd, buf, 32 * KIB, IBV_ACCESS_LOCAL_WRITE);
	if (!a)
		return 21;
	b = ibv_reg_mr(pd, buf + 32 * KIB, 32 * KIB, IBV_ACCESS_REMOTE_READ);
	if (!b)
		return 22;
	/* One more page is over, read-only or not. */
	if (ibv_reg_mr(pd, buf + 64 * KIB, 4 * KIB, 0) || errno != ENOMEM)
		return 23;
	/* Dereg gives the pages back to the limit. */
	if (ibv_dereg_mr(a))
		return 24;
	c = ibv_reg_mr(pd, buf + 64 * KIB, 32 * KIB, IBV_ACCESS_LOCAL_WRITE);
	if (!c)
		return 25;
	if (ibv_dereg_mr(b) || ibv_dereg_mr(c))
		return 26;
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}

/* Child of rlimit_zero: without CAP_IPC_LOCK, a zero limit is EPERM. */
static int memlock_zero_child(const char *name)
{
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char *buf;

	ctx = gift_open(name);
	if (!ctx)
		return 10;
	pd = ibv_alloc_pd(ctx);
	buf = map_filled(KIB * 4);
	if (!pd || !buf)
		return 11;
	if (gift_become_nobody(0))
		return 12;
	if (ibv_reg_mr(pd, buf, 4 * KIB, 0) || errno != EPERM)
		return 20;
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}

/*
 * Without CAP_IPC_LOCK, RLIMIT_MEMLOCK (64 KiB) bounds the pinned pages:
 * 1 MiB fails with ENOMEM, 32 KiB twice fits, dereg frees the quota.
 */
/*
 * "rdma -dd resource show mr" shows how a user MR holds its pages: a
 * gift MR over 3 zero pages and one written page holds 3 by reference.
 */
TEST_F(mr, resource_driver_attributes)
{
	char *buf = map_anon(4 * self->page);
	struct ibv_mr *gift, *plain;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, madvise(buf, 4 * self->page, MADV_NOHUGEPAGE));
	buf[0] = 1;
	EXPECT_EQ(0, buf[self->page] + buf[2 * self->page] +
		     buf[3 * self->page]);
	gift = ibv_reg_mr(self->pd, buf, 4 * self->page,
			  IBV_ACCESS_REMOTE_READ | (1 << 29));
	ASSERT_NE(NULL, gift);
	plain = ibv_reg_mr(self->pd, buf, 4 * self->page,
			   IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, plain);

	EXPECT_EQ(1, mr_drv_attr(self->name, gift->lkey, "gift"));
	EXPECT_EQ(4, mr_drv_attr(self->name, gift->lkey, "pages"));
	EXPECT_EQ(3, mr_drv_attr(self->name, gift->lkey, "shared_pages"));
	EXPECT_EQ(0, mr_drv_attr(self->name, plain->lkey, "gift"));
	EXPECT_EQ(4, mr_drv_attr(self->name, plain->lkey, "pages"));
	EXPECT_EQ(0, mr_drv_attr(self->name, plain->lkey, "shared_pages"));

	EXPECT_EQ(0, ibv_dereg_mr(plain));
	EXPECT_EQ(0, ibv_dereg_mr(gift));
	munmap(buf, 4 * self->page);
}

TEST_F(mr, rlimit_memlock)
{
	EXPECT_EQ(0, gift_run_child(memlock_child, self->name));
}

/* Without CAP_IPC_LOCK, a zero RLIMIT_MEMLOCK fails with EPERM. */
TEST_F(mr, rlimit_zero_eperm)
{
	EXPECT_EQ(0, gift_run_child(memlock_zero_child, self->name));
}

/*
 * Rereg to a new translation keeps the keys, unpins the old pages and
 * pins the new ones; ib_core reports the new length.
 */
TEST_F(mr, rereg_translation)
{
	char *a = map_filled(4 * self->page), *b = map_filled(8 * self->page);
	struct pins before, moved, after;
	struct ibv_mr *mr;
	uint32_t lkey;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, read_pins(&before));
	mr = ibv_reg_mr(self->pd, a, 4 * self->page, RW);
	ASSERT_NE(NULL, mr);
	lkey = mr->lkey;

	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				  b + 8, 8 * self->page - 8, 0));
	EXPECT_EQ(lkey, mr->lkey);
	EXPECT_EQ(lkey, mr->rkey);
	EXPECT_EQ(b + 8, mr->addr);
	EXPECT_EQ(8 * self->page - 8, mr_len(self->name, lkey));
	ASSERT_EQ(0, read_pins(&moved));
	EXPECT_EQ(12, moved.acquired - before.acquired);
	EXPECT_EQ(4, moved.released - before.released);

	/* A bad new translation fails and leaves the MR as it was. */
	EXPECT_EQ(IBV_REREG_MR_ERR_CMD,
		  ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
			       (void *)(UINTPTR_MAX - self->page + 1),
			       2 * self->page, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(8 * self->page - 8, mr_len(self->name, lkey));

	EXPECT_EQ(0, ibv_dereg_mr(mr));
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);
	munmap(a, 4 * self->page);
	munmap(b, 8 * self->page);
}

/*
 * Ranges beyond the user address space fail with EFAULT, plain and gift
 * alike: the vsyscall page at 0xffffffffff600000 among them, which GUP
 * would serve without a VMA (run_all.sh boots with vsyscall=emulate so
 * that it is readable).
 */
TEST_F(mr, beyond_user_space_efault)
{
	void *gate = (void *)0xffffffffff600000ul;
	struct ibv_mr *mr;

	mr = ibv_reg_mr(self->pd, gate, 4096, IBV_ACCESS_REMOTE_READ);
	EXPECT_EQ(NULL, mr);
	EXPECT_EQ(EFAULT, errno);
	mr = ibv_reg_mr(self->pd, gate, 4096,
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	EXPECT_EQ(NULL, mr);
	EXPECT_EQ(EFAULT, errno);
	/* Straddling TASK_SIZE (47-bit user space) from below. */
	mr = ibv_reg_mr(self->pd, (void *)((1ul << 47) - 4096), 8192,
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	EXPECT_EQ(NULL, mr);
	EXPECT_EQ(EFAULT, errno);
}

/*
 * A forked child shares the uverbs file, so it can rereg the parent's MR;
 * a new translation from it would put the child's memory behind the
 * parent's keys: EPERM, and the MR stays as it was. Changing only the
 * access flags takes no range and is allowed.
 */
TEST_F(mr, rereg_translation_from_child)
{
	char *a = map_filled(4 * self->page);
	struct ibv_mr *mr;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, a);
	mr = ibv_reg_mr(self->pd, a, 4 * self->page, RW);
	ASSERT_NE(NULL, mr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *own = map_filled(2 * self->page);

		if (!own)
			_exit(10);
		if (ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				 own, 2 * self->page, 0) != IBV_REREG_MR_ERR_CMD)
			_exit(11);
		if (errno != EPERM)
			_exit(12);
		if (ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
				 IBV_ACCESS_LOCAL_WRITE))
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(4 * self->page, mr_len(self->name, mr->lkey));
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	munmap(a, 4 * self->page);
}

/*
 * Rereg of the access flags keeps the keys; a read-only pinned MR can only
 * become writable with a new translation (EACCES otherwise).
 */
TEST_F(mr, rereg_access)
{
	char *buf = map_filled(2 * self->page);
	struct ibv_mr *mr;
	uint32_t lkey;

	ASSERT_NE(NULL, buf);
	mr = ibv_reg_mr(self->pd, buf, 2 * self->page, RW);
	ASSERT_NE(NULL, mr);
	lkey = mr->lkey;
	EXPECT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
				  0, IBV_ACCESS_REMOTE_READ));
	/* Pinned writable: write access may come back without re-pinning. */
	EXPECT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
				  0, RW | IBV_ACCESS_REMOTE_ATOMIC));
	EXPECT_EQ(lkey, mr->lkey);
	EXPECT_EQ(0, ibv_dereg_mr(mr));

	mr = ibv_reg_mr(self->pd, buf, 2 * self->page, IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, mr);
	lkey = mr->lkey;
	EXPECT_EQ(IBV_REREG_MR_ERR_CMD,
		  ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			       IBV_ACCESS_LOCAL_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS |
				  IBV_REREG_MR_CHANGE_TRANSLATION, NULL, buf,
				  2 * self->page, IBV_ACCESS_LOCAL_WRITE));
	EXPECT_EQ(lkey, mr->lkey);
	/* ib_core's own check applies to rereg too. */
	EXPECT_EQ(IBV_REREG_MR_ERR_CMD,
		  ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			       IBV_ACCESS_REMOTE_WRITE));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	munmap(buf, 2 * self->page);
}

/* Rereg to another PD moves the MR: the old PD can then be freed. */
TEST_F(mr, rereg_pd)
{
	char *buf = map_filled(self->page);
	struct ibv_pd *pd2 = ibv_alloc_pd(self->ctx);
	struct ibv_mr *mr;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, pd2);
	mr = ibv_reg_mr(self->pd, buf, self->page, RW);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(EBUSY, ibv_dealloc_pd(self->pd));
	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_PD, pd2, NULL, 0, 0));
	EXPECT_EQ(pd2, mr->pd);
	EXPECT_EQ(EBUSY, ibv_dealloc_pd(pd2));
	EXPECT_EQ(0, ibv_dealloc_pd(self->pd));
	self->pd = NULL;
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_EQ(0, ibv_dealloc_pd(pd2));
	munmap(buf, self->page);
}

/*
 * Writable registrations of memory that maps the zero page, of a
 * MAP_PRIVATE file and of shared memory all pin (COW broken where
 * needed, contents unchanged), and dereg releases every pin.
 */
TEST_F(mr, writable_cow_memory_pins_balance)
{
	const size_t len = 64 * self->page;
	char path[] = "/tmp/gift_mr_test.XXXXXX";
	struct pins before, pinned, after;
	char *zero, *priv, *shared, *data;
	struct ibv_mr *mr[3];
	size_t i;
	int fd;

	data = malloc(len);
	ASSERT_NE(NULL, data);
	memset(data, 0xa5, len);
	fd = mkstemp(path);
	ASSERT_GE(fd, 0);
	unlink(path);
	ASSERT_EQ((ssize_t)len, write(fd, data, len));

	zero = map_anon(len);
	ASSERT_NE(NULL, zero);
	for (i = 0; i < len; i += self->page)
		ASSERT_EQ(0, zero[i]);		/* maps the zero page */
	priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	ASSERT_NE(MAP_FAILED, priv);
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, shared);

	ASSERT_EQ(0, read_pins(&before));
	mr[0] = ibv_reg_mr(self->pd, zero, len, RW);
	ASSERT_NE(NULL, mr[0]);
	mr[1] = ibv_reg_mr(self->pd, priv, len, RW);
	ASSERT_NE(NULL, mr[1]);
	/* /tmp is tmpfs: shmem may be pinned writable when shared. */
	mr[2] = ibv_reg_mr(self->pd, shared, len, RW);
	ASSERT_NE(NULL, mr[2]);
	ASSERT_EQ(0, read_pins(&pinned));
	EXPECT_EQ(3 * len / self->page, pinned.acquired - before.acquired);

	for (i = 0; i < len; i += self->page) {
		EXPECT_EQ(0, zero[i]);
		EXPECT_EQ((char)0xa5, priv[i]);
	}
	EXPECT_EQ(0, memcmp(priv, data, len));
	EXPECT_EQ(0, memcmp(shared, data, len));

	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, ibv_dereg_mr(mr[i]));
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);

	munmap(zero, len);
	munmap(priv, len);
	munmap(shared, len);
	close(fd);
	free(data);
}

/*
 * A registered buffer survives fork: the parent keeps its pinned pages
 * (the child gets copies), and the parent's dereg after the child exited
 * releases every pin.
 */
TEST_F(mr, fork_keeps_parent_pages)
{
	const size_t len = 16 * self->page;
	struct pins before, after;
	struct ibv_mr *mr;
	int status;
	char *buf;
	pid_t pid;

	buf = map_filled(len);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, read_pins(&before));
	mr = ibv_reg_mr(self->pd, buf, len, RW);
	ASSERT_NE(NULL, mr);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		/* The child writes its copy; the parent must not see it. */
		memset(buf, 0x11, len);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_EQ((char)0x5a, buf[0]);
	EXPECT_EQ((char)0x5a, buf[len - 1]);

	EXPECT_EQ(0, ibv_dereg_mr(mr));
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);
	munmap(buf, len);
}

/* Dereg after munmap of the registered memory still releases every pin. */
TEST_F(mr, dereg_after_munmap)
{
	const size_t len = 16 * self->page;
	struct pins before, after;
	struct ibv_mr *mr;
	char *buf;

	buf = map_filled(len);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, read_pins(&before));
	mr = ibv_reg_mr(self->pd, buf, len, RW);
	ASSERT_NE(NULL, mr);
	ASSERT_EQ(0, munmap(buf, len));
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);
}

/*
 * MRs left registered when the context closes are destroyed by ib_core,
 * unpinning their pages.
 */
TEST_F(mr, close_context_unpins)
{
	const size_t len = 16 * self->page;
	struct pins before, after;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	char *buf;
	int i;

	buf = map_filled(len);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, read_pins(&before));
	ctx = gift_open(self->name);
	ASSERT_NE(NULL, ctx);
	pd = ibv_alloc_pd(ctx);
	ASSERT_NE(NULL, pd);
	for (i = 0; i < 4; i++)
		ASSERT_NE(NULL, ibv_reg_mr(pd, buf, len, RW));
	ASSERT_EQ(0, ibv_close_device(ctx));
	ASSERT_EQ(0, read_pins(&after));
	EXPECT_EQ(4 * len / self->page, after.acquired - before.acquired);
	EXPECT_EQ(after.acquired - before.acquired,
		  after.released - before.released);
	munmap(buf, len);
}

/*
 * The device reports the MR limits it enforces: max_mr_size, and max_mr,
 * beyond which registration fails with ENOMEM until an MR is freed.
 */
TEST_F_TIMEOUT(mr, max_mr_enforced, 300)
{
	struct ibv_device_attr attr;
	struct ibv_mr **mrs;
	char *buf = map_filled(self->page);
	long listed = mr_count(self->name);
	long kernel = kernel_pd_count(self->name);
	int i, n;

	ASSERT_NE(NULL, buf);
	ASSERT_GE(listed, 0);
	ASSERT_GE(kernel, 0);
	ASSERT_EQ(0, ibv_query_device(self->ctx, &attr));
	EXPECT_EQ(GIFT_MAX_MR, attr.max_mr);
	EXPECT_EQ(GIFT_MAX_MR_SIZE, attr.max_mr_size);

	/* Other tests hold no MRs while we run; kernel MRs count too. */
	TH_LOG("%ld MRs listed, %ld kernel DMA MRs", listed, kernel);
	mrs = calloc(GIFT_MAX_MR + 1, sizeof(*mrs));
	ASSERT_NE(NULL, mrs);
	for (n = 0; n <= GIFT_MAX_MR; n++) {
		mrs[n] = ibv_reg_mr(self->pd, buf, self->page,
				    IBV_ACCESS_REMOTE_READ);
		if (!mrs[n])
			break;
	}
	EXPECT_EQ(GIFT_MAX_MR - listed - kernel, n);
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_GT(n, 0);
	ASSERT_EQ(0, ibv_dereg_mr(mrs[0]));
	mrs[0] = ibv_reg_mr(self->pd, buf, self->page, IBV_ACCESS_REMOTE_READ);
	EXPECT_NE(NULL, mrs[0]);
	for (i = 0; i < n; i++)
		if (mrs[i])
			ASSERT_EQ(0, ibv_dereg_mr(mrs[i]));
	EXPECT_EQ(listed, mr_count(self->name));
	free(mrs);
	munmap(buf, self->page);
}

TEST_HARNESS_MAIN
