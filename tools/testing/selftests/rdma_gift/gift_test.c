// SPDX-License-Identifier: GPL-2.0
/*
 * Gift memory regions (IBV_ACCESS_GIFT): read-only registrations of gift
 * devices that never break copy-on-write.
 *
 * What is pinned down here:
 *  - flags: gift only without write-ish access bits, in reg and rereg;
 *  - cost: over zero-page, KSM, fork-shared, MAP_PRIVATE file, fork-shared
 *    THP, huge zero page and MAP_PRIVATE hugetlbfs file memory a gift
 *    registration allocates nothing and keeps every PFN (memcg
 *    memory.current, free hugepages, /proc/self/pagemap), while the same
 *    registration without gift unshares every page, as ib_umem does;
 *    fork-shared anonymous hugetlb pages are the exception: gift pins
 *    (unshares) them too, since hugetlb copy-on-write ignores references;
 *  - semantics: what the device reads (RDMA READ from a peer QP) after the
 *    process writes to pages that were write-protected or exclusive at
 *    registration, across fork before and after registration, with and
 *    without MADV_DONTFORK, for gift and for writable MRs;
 *  - staleness: giftdv_query_mr() counts exactly the pages whose mapping
 *    is no longer the page the MR holds;
 *  - the same on rxe0 of the linux-rdma series (tools/upstream/), through
 *    the stock rxe provider (GIFT_DRIVER=rxe): the access bit is the
 *    series' (gift_access_gift()), the MR's pages come from the restrack
 *    driver attributes instead of giftdv_query_mr() (mr_query()), and
 *    the held page counters from FOLL_PIN and restrack (gift_umem_pages());
 *    tools/upstream/rxe_gift_tests.sh names the tests that cannot run
 *    there and why;
 *  - errors, RLIMIT_MEMLOCK accounting, remote write/atomic refusal;
 *  - every test ends with the driver's umem page counters (debugfs) and
 *    the FOLL_PIN counters of /proc/vmstat back where they started.
 *
 * The device side is a loopback pair of RC QPs on the device, connected
 * through its RoCEv2 IPv4 GID: qp[0] issues RDMA READ/WRITE/atomics
 * against memory registered in the PD of qp[1].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

#define KIB		1024UL
#define MIB		(1024 * KIB)
#define HPAGE		(2 * MIB)	/* THP and the hugetlb size used */

#define GIFT_MAX_MR_SIZE	(256ULL << 30)	/* the driver's (gift_mr.h) */

#define LB_LEN		(4 * MIB)	/* the requester's buffer */
#define LB_CHUNK	MIB		/* largest RDMA READ posted */
/* Deadlines, stretched by GIFT_SLOW (gift_util.h). */
#define WAIT_MS		(15000 * gift_slow())	/* every completion */
#define KSM_WAIT_MS	(240000 * gift_slow())	/* a KSM merge */

#define RO		IBV_ACCESS_REMOTE_READ
/* The device's gift access bit: 29 on gift0, 21 on rxe (gift_util.h). */
#define GIFT		(gift_access_gift() | IBV_ACCESS_REMOTE_READ)
#define RW		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ)

#define KSM_DIR		"/sys/kernel/mm/ksm"
#define HP_DIR		"/sys/kernel/mm/hugepages/hugepages-2048kB"
#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define THP_ENABLED	THP_DIR "/enabled"
#define CG_ROOT		"/sys/fs/cgroup"

/* include/uapi/linux/kernel-page-flags.h */
#define KPF_HUGE	17
#define KPF_KSM		21
#define KPF_THP		22
#define KPF_ZERO_PAGE	24

#define MAX_REGIONS	4

/* Data patterns */

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = gift_pat(i, seed);
}

/* Every page the same (non-zero) bytes: what KSM merges. */
static void fill_same(uint8_t *p, size_t len, size_t page, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = gift_pat(i % page, seed) | 1;
}

static bool all_bytes(const uint8_t *p, size_t len, uint8_t v)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* Reads every page of [p, p + len) without writing: maps the zero page. */
static void touch_read(const uint8_t *p, size_t len, size_t page)
{
	size_t i;

	for (i = 0; i < len; i += page)
		(void)*(volatile const uint8_t *)(p + i);
}

/*
 * Private anonymous memory, unpopulated, without THP: with THP a read
 * fault may map the huge zero page, which a write into the 2 MiB range
 * splits, remapping (and so making stale) all its 512 pages.
 */
static uint8_t *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, len, MADV_NOHUGEPAGE)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

/* Children holding a range: commands over a pipe */

/*
 * A forked child keeps the parent's memory mapped (so that it stays
 * shared) and writes or checks it on command: 'w' fills pages with val,
 * 'c' checks they hold val, 'u' checks the range is not mapped (it was
 * MADV_DONTFORK), 'q' exits. Each command but 'q' is answered with one
 * byte, 1 for success.
 */
struct child {
	pid_t pid;
	int cmd;
	int ack;
};

struct cmd {
	char op;
	uint8_t val;
	uint32_t first;
	uint32_t count;
};

static void __attribute__((noreturn))
child_loop(uint8_t *p, size_t page, int cmd, int ack)
{
	struct cmd c;
	char ok;

	for (;;) {
		if (read(cmd, &c, sizeof(c)) != sizeof(c))
			_exit(0);
		ok = 1;
		switch (c.op) {
		case 'w':
			memset(p + c.first * page, c.val, c.count * page);
			break;
		case 'c':
			ok = all_bytes(p + c.first * page, c.count * page,
				       c.val);
			break;
		case 'u':
			ok = msync(p + c.first * page, c.count * page,
				   MS_ASYNC) && errno == ENOMEM;
			break;
		default:
			_exit(0);
		}
		if (write(ack, &ok, 1) != 1)
			_exit(1);
	}
}

static int child_spawn(struct child *ch, uint8_t *p, size_t page)
{
	int c[2], a[2];
	pid_t pid;

	if (pipe(c))
		return -1;
	if (pipe(a)) {
		close(c[0]);
		close(c[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(c[1]);
		close(a[0]);
		child_loop(p, page, c[0], a[1]);
	}
	close(c[0]);
	close(a[1]);
	ch->pid = pid;
	ch->cmd = c[1];
	ch->ack = a[0];
	return 0;
}

/* The child's answer to a command: 1 done, 0 failed, -1 no answer. */
static int child_do(struct child *ch, char op, uint8_t val, uint32_t first,
		    uint32_t count)
{
	struct cmd c = { .op = op, .val = val, .first = first, .count = count };
	struct pollfd pfd = { .fd = ch->ack, .events = POLLIN };
	char ok;

	if (ch->pid <= 0 || write(ch->cmd, &c, sizeof(c)) != sizeof(c))
		return -1;
	if (poll(&pfd, 1, WAIT_MS) != 1 || read(ch->ack, &ok, 1) != 1)
		return -1;
	return ok;
}

/* Lets the child exit (kill: do not wait for it) and reaps it. */
static int child_end(struct child *ch, bool kill_it)
{
	int status = 0;

	if (ch->pid <= 0)
		return 0;
	if (kill_it)
		kill(ch->pid, SIGKILL);
	close(ch->cmd);
	close(ch->ack);
	if (waitpid(ch->pid, &status, 0) != ch->pid)
		status = -1;
	ch->pid = 0;
	return kill_it || (WIFEXITED(status) && !WEXITSTATUS(status)) ? 0 : -1;
}

/* Memory of a kind */

enum kind {
	ZERO,		/* private anon, only read: the zero page */
	KSM,		/* private anon merged by KSM */
	FORK,		/* private anon shared with a forked child */
	FILE_PRIV,	/* MAP_PRIVATE of a tmpfs file, only read */
	THP,		/* anon THPs shared with a forked child */
	THP_ZERO,	/* THP-enabled anon, only read: the huge zero page */
	HUGETLB,	/* private hugetlb pages shared with a forked child */
	HUGETLB_FILE,	/* MAP_PRIVATE of a hugetlbfs file, only read */
	EXCL,		/* private anon written by us only: exclusive */
	THP_EXCL,	/* the same in PMD-mapped THPs */
};

struct region {
	enum kind kind;
	uint8_t *map;		/* the whole mapping */
	size_t map_len;
	uint8_t *p;		/* the range registered */
	size_t len;
	size_t npages;		/* base pages in [p, p + len) */
	int fd;			/* FILE_PRIV, HUGETLB_FILE: the file */
	struct child ch;	/* FORK, THP, HUGETLB: holds the memory */
};

/* The state every fixture shares: device, loopback pair, restores. */
struct base {
	long page;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];	/* qp[0] requests, qp[1] responds */
	int gid_index;
	union ibv_gid gid;
	uint8_t *buf;		/* qp[0]'s LB_LEN bytes */
	struct ibv_mr *buf_mr;
	struct region r[MAX_REGIONS];
	/* at setup, before anything was opened */
	long pinned0, referenced0;
	long long pins0;
	/* tunables changed by the test, restored at teardown (-1: not) */
	long ksm_run, ksm_scan, ksm_sleep, nr_hugepages;
	char thp_enabled[16];
	char cg[128];		/* memory cgroup we moved into, or "" */
};

static void qp_to_rts(struct __test_metadata *_metadata, struct base *b,
		      struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
			    IBV_ACCESS_REMOTE_ATOMIC;
	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dqpn;
	a.rq_psn = 0;
	a.max_dest_rd_atomic = 8;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = b->gid;
	a.ah_attr.grh.sgid_index = b->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV |
				   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				   IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				   IBV_QP_MIN_RNR_TIMER));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	a.timeout = gift_slow_qp_timeout(14);
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 8;
	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
				   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				   IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC));
}

/* (Re)connects the pair, e.g. after an error moved it to ERR. */
static void lb_connect(struct __test_metadata *_metadata, struct base *b)
{
	qp_to_rts(_metadata, b, b->qp[0], b->qp[1]->qp_num);
	qp_to_rts(_metadata, b, b->qp[1], b->qp[0]->qp_num);
	gift_drain_cq(b->cq);
}

/*
 * One signaled work request of qp[0] on [buf + loff, + len) against
 * raddr/rkey (an atomic adds 1 or swaps 0 for ~0); its completion status,
 * -1 if it could not be posted, -2 if it did not complete in time.
 */
static int lb_post(struct base *b, enum ibv_wr_opcode op, size_t loff,
		   size_t len, uint64_t raddr, uint32_t rkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)b->buf + loff,
		.length = len,
		.lkey = b->buf_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 1,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	long long deadline = gift_now_us() + WAIT_MS * 1000LL;
	struct ibv_wc wc;
	int n;

	if (op == IBV_WR_ATOMIC_FETCH_AND_ADD ||
	    op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		wr.wr.atomic.remote_addr = raddr;
		wr.wr.atomic.rkey = rkey;
		wr.wr.atomic.compare_add = op == IBV_WR_ATOMIC_CMP_AND_SWP ?
					   0 : 1;
		wr.wr.atomic.swap = ~0ULL;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	if (ibv_post_send(b->qp[0], &wr, &bad))
		return -1;
	do {
		n = ibv_poll_cq(b->cq, 1, &wc);
		if (n < 0)
			return -1;
		if (n)
			return wc.status;
		usleep(50);
	} while (gift_now_us() < deadline);
	return -2;
}

/* RDMA READ of [off, off + len) of mr into buf[0..len); WC status. */
static int lb_read(struct base *b, struct ibv_mr *mr, size_t off, size_t len)
{
	size_t done, n;
	int st;

	/* A READ that delivers nothing must not pass for the last one. */
	memset(b->buf, 0xa5, len);
	for (done = 0; done < len; done += n) {
		n = len - done < LB_CHUNK ? len - done : LB_CHUNK;
		st = lb_post(b, IBV_WR_RDMA_READ, done, n,
			     (uintptr_t)mr->addr + off + done, mr->rkey);
		if (st != IBV_WC_SUCCESS)
			return st;
	}
	return IBV_WC_SUCCESS;
}

/* First byte where buf[0..len) and want differ, or -1. */
static long first_bad(const struct base *b, const uint8_t *want, size_t len)
{
	size_t i;

	if (!memcmp(b->buf, want, len))
		return -1;
	for (i = 0; b->buf[i] == want[i]; i++)
		;
	return i;
}

/* The device reads @want from [off, off + len) of mr. */
#define EXPECT_DEVICE_READS(b, mr, off, want, len) do { \
	long __bad; \
	ASSERT_EQ(IBV_WC_SUCCESS, lb_read(b, mr, off, len)); \
	__bad = first_bad(b, want, len); \
	EXPECT_EQ(-1, __bad) \
		TH_LOG("the device reads 0x%02x at byte %ld (page %ld), " \
		       "expected 0x%02x", (b)->buf[__bad], __bad, \
		       __bad / (b)->page, (want)[__bad]); \
} while (0)

/*
 * How mr holds its pages: giftdv_query_mr() on gift0; on rxe the driver
 * attributes "pages", "shared_pages" and "stale_pages" of the MR's
 * restrack entry (rxe_fill_res_mr_entry() of the series). 0 or a positive
 * errno (ENODATA: rxe reports no such attributes for the MR).
 */
static int mr_query(struct ibv_mr *mr, struct giftdv_mr_attr *a)
{
	const char *dev = ibv_get_device_name(mr->context->device);
	long long v[3];
	int ret;

	if (!gift_is_rxe())
		return giftdv_query_mr(mr, a);
	ret = gift_res_mr_attr(dev, mr->lkey, "pages", &v[0]);
	if (!ret)
		ret = gift_res_mr_attr(dev, mr->lkey, "shared_pages", &v[1]);
	if (!ret)
		ret = gift_res_mr_attr(dev, mr->lkey, "stale_pages", &v[2]);
	if (ret)
		return -ret;
	a->comp_mask = 0;
	a->npages = v[0];
	a->shared_pages = v[1];
	a->stale_pages = v[2];
	return 0;
}

/* mr_query() of mr into *a, asserting it succeeds. */
#define QUERY(mr, a) do { \
	memset(a, 0, sizeof(*(a))); \
	ASSERT_EQ(0, mr_query(mr, a)); \
} while (0)

static uint64_t stale_of(struct ibv_mr *mr)
{
	struct giftdv_mr_attr a;
	uint64_t n = ~0ULL;

	if (gift_is_rxe())
		return mr_query(mr, &a) ? ~0ULL : a.stale_pages;
	if (giftdv_mr_stale_pages(mr, &n))
		return ~0ULL;
	return n;
}

/* Counter sets: the driver's held pages and the FOLL_PIN balance. */
struct held {
	long pinned;
	long referenced;
};

static void held_read(struct __test_metadata *_metadata, struct held *h)
{
	ASSERT_EQ(0, gift_umem_pages(&h->pinned, &h->referenced));
}

static long long pin_balance(void)
{
	long long acq, rel;

	if (gift_foll_pins(&acq, &rel))
		return -1;
	return acq - rel;
}

#define EXPECT_HELD(h0, dpinned, dreferenced) do { \
	struct held __h; \
	held_read(_metadata, &__h); \
	EXPECT_EQ((long)(dpinned), __h.pinned - (h0).pinned); \
	EXPECT_EQ((long)(dreferenced), __h.referenced - (h0).referenced); \
} while (0)

static void base_setup(struct __test_metadata *_metadata, struct base *b)
{
	struct ibv_qp_init_attr init = {
		.cap = {
			.max_send_wr = 16,
			.max_recv_wr = 16,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
		.qp_type = IBV_QPT_RC,
	};
	int i;

	memset(b, 0, sizeof(*b));
	b->page = sysconf(_SC_PAGESIZE);
	b->ksm_run = -1;
	b->ksm_scan = -1;
	b->ksm_sleep = -1;
	b->nr_hugepages = -1;
	for (i = 0; i < MAX_REGIONS; i++)
		b->r[i].fd = -1;

	/* The baseline, before this test holds anything. */
	ASSERT_EQ(0, gift_umem_pages(&b->pinned0, &b->referenced0))
		TH_LOG("no rdma_gift/umem_pages in debugfs");
	b->pins0 = pin_balance();
	ASSERT_LE(0, b->pins0);

	b->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, b->ctx);
	b->pd = ibv_alloc_pd(b->ctx);
	ASSERT_NE(NULL, b->pd);
	b->cq = ibv_create_cq(b->ctx, 64, NULL, NULL, 0);
	ASSERT_NE(NULL, b->cq);
	init.send_cq = b->cq;
	init.recv_cq = b->cq;
	for (i = 0; i < 2; i++) {
		b->qp[i] = ibv_create_qp(b->pd, &init);
		ASSERT_NE(NULL, b->qp[i]);
	}
	gift_wait_for(gift_have_v4_gid, b->ctx, 5000);
	b->gid_index = gift_find_v4_gid(b->ctx, &b->gid);
	ASSERT_LE(0, b->gid_index);
	lb_connect(_metadata, b);

	b->buf = mmap(NULL, LB_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, b->buf);
	memset(b->buf, 0x77, LB_LEN);
	b->buf_mr = ibv_reg_mr(b->pd, b->buf, LB_LEN, IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, b->buf_mr);
}

static void region_free(struct region *r)
{
	child_end(&r->ch, true);
	if (r->map)
		munmap(r->map, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

static void base_teardown(struct __test_metadata *_metadata, struct base *b)
{
	char path[256];
	struct held h;
	int i;

	for (i = 0; i < MAX_REGIONS; i++)
		region_free(&b->r[i]);
	/* Closing the context destroys whatever a failed test left. */
	if (b->buf_mr)
		ibv_dereg_mr(b->buf_mr);
	for (i = 0; i < 2; i++)
		if (b->qp[i])
			ibv_destroy_qp(b->qp[i]);
	if (b->cq)
		ibv_destroy_cq(b->cq);
	if (b->pd)
		ibv_dealloc_pd(b->pd);
	if (b->ctx)
		ibv_close_device(b->ctx);
	if (b->buf && b->buf != MAP_FAILED)
		munmap(b->buf, LB_LEN);

	if (b->ksm_run >= 0)
		gift_write_file(KSM_DIR "/run", "%ld", b->ksm_run);
	if (b->ksm_scan >= 0)
		gift_write_file(KSM_DIR "/pages_to_scan", "%ld", b->ksm_scan);
	if (b->ksm_sleep >= 0)
		gift_write_file(KSM_DIR "/sleep_millisecs", "%ld",
				b->ksm_sleep);
	if (b->nr_hugepages >= 0)
		gift_write_file(HP_DIR "/nr_hugepages", "%ld",
				b->nr_hugepages);
	if (b->thp_enabled[0])
		gift_write_file(THP_ENABLED, "%s", b->thp_enabled);
	if (b->cg[0]) {
		gift_memcg_move(CG_ROOT, getpid());
		snprintf(path, sizeof(path), "%s", b->cg);
		EXPECT_EQ(0, gift_memcg_destroy(path));
	}

	/* Everything this test registered is released again. */
	EXPECT_EQ(0, gift_umem_pages(&h.pinned, &h.referenced));
	EXPECT_EQ(b->pinned0, h.pinned) TH_LOG("umem pages pinned leaked");
	EXPECT_EQ(b->referenced0, h.referenced)
		TH_LOG("umem page references leaked");
	EXPECT_EQ(b->pins0, pin_balance()) TH_LOG("FOLL_PIN unbalanced");
}

/* Tunables */

static void ksm_merge(struct __test_metadata *_metadata, struct base *b,
		      struct region *r)
{
	long long t0 = gift_now_us();
	long merged = 0;
	uint64_t *pm, fl;
	size_t i;

	ASSERT_TRUE(gift_path_exists(KSM_DIR "/run"));
	b->ksm_run = gift_read_long(KSM_DIR "/run");
	b->ksm_scan = gift_read_long(KSM_DIR "/pages_to_scan");
	b->ksm_sleep = gift_read_long(KSM_DIR "/sleep_millisecs");
	ASSERT_EQ(0, gift_write_file(KSM_DIR "/pages_to_scan", "5000"));
	ASSERT_EQ(0, gift_write_file(KSM_DIR "/sleep_millisecs", "0"));
	ASSERT_EQ(0, madvise(r->p, r->len, MADV_MERGEABLE));
	ASSERT_EQ(0, gift_write_file(KSM_DIR "/run", "1"));
	while (gift_now_us() - t0 < KSM_WAIT_MS * 1000LL) {
		merged = gift_read_long("/proc/self/ksm_merging_pages");
		if (merged >= (long)r->npages)
			break;
		usleep(20000);
	}
	/* Stop scanning: nothing else is to be merged while we measure. */
	gift_write_file(KSM_DIR "/run", "0");
	TH_LOG("KSM merged %ld of %zu pages in %lld ms", merged, r->npages,
	       (gift_now_us() - t0) / 1000);
	ASSERT_EQ((long)r->npages, merged) TH_LOG("KSM did not merge in time");
	pm = calloc(r->npages, sizeof(*pm));
	ASSERT_NE(NULL, pm);
	ASSERT_EQ(0, gift_pagemap(r->p, r->npages, pm));
	for (i = 0; i < r->npages; i++) {
		ASSERT_EQ(0, gift_kpageflags(GIFT_PM_PFN(pm[i]), &fl));
		ASSERT_TRUE(fl & (1ULL << KPF_KSM));
	}
	free(pm);
}

/* At least @n more free 2 MiB hugetlb pages than now. */
static void hugetlb_reserve(struct __test_metadata *_metadata,
			    struct base *b, long n)
{
	long nr, free_hp;

	nr = gift_read_long(HP_DIR "/nr_hugepages");
	free_hp = gift_read_long(HP_DIR "/free_hugepages");
	ASSERT_LE(0, nr);
	if (b->nr_hugepages < 0)
		b->nr_hugepages = nr;
	ASSERT_EQ(0, gift_write_file(HP_DIR "/nr_hugepages", "%ld", nr + n));
	ASSERT_LE(free_hp + n, gift_read_long(HP_DIR "/free_hugepages"))
		TH_LOG("could not allocate %ld hugetlb pages", n);
}

static void thp_enable(struct __test_metadata *_metadata, struct base *b)
{
	char cur[128];

	ASSERT_EQ(0, gift_read_file(THP_ENABLED, cur, sizeof(cur)));
	if (!strstr(cur, "[never]"))
		return;
	snprintf(b->thp_enabled, sizeof(b->thp_enabled), "never");
	ASSERT_EQ(0, gift_write_file(THP_ENABLED, "madvise"));
}

/* Every base page of [p, +npages) has kpageflags bit @bit. */
static bool pages_have_flag(const uint8_t *p, size_t npages, int bit)
{
	uint64_t *pm, fl;
	bool ok = true;
	size_t i;

	pm = calloc(npages, sizeof(*pm));
	if (!pm || gift_pagemap(p, npages, pm)) {
		free(pm);
		return false;
	}
	for (i = 0; ok && i < npages; i++)
		ok = (pm[i] & GIFT_PM_PRESENT) &&
		     !gift_kpageflags(GIFT_PM_PFN(pm[i]), &fl) &&
		     (fl & (1ULL << bit));
	free(pm);
	return ok;
}

/* No base page of [p, +npages) is mapped only once (shared or not). */
static bool pages_shared(const uint8_t *p, size_t npages)
{
	uint64_t *pm;
	bool ok = true;
	size_t i;

	pm = calloc(npages, sizeof(*pm));
	if (!pm || gift_pagemap(p, npages, pm)) {
		free(pm);
		return false;
	}
	for (i = 0; ok && i < npages; i++)
		ok = (pm[i] & GIFT_PM_PRESENT) && !(pm[i] & GIFT_PM_EXCLUSIVE);
	free(pm);
	return ok;
}

/*
 * Region @r of @len bytes of memory of @kind, every page present and, but
 * for EXCL, write-protected in our page tables; checked, not assumed.
 */
static void region_make(struct __test_metadata *_metadata, struct base *b,
			struct region *r, enum kind k, size_t len)
{
	char path[] = "/tmp/gift_test.XXXXXX";
	size_t off;
	uint8_t *pg;

	r->kind = k;
	r->len = len;
	r->npages = len / b->page;
	switch (k) {
	case ZERO:
	case KSM:
	case FORK:
	case EXCL:
		r->map_len = len;
		r->map = map_anon(len);
		ASSERT_NE(NULL, r->map);
		r->p = r->map;
		break;
	case THP:
	case THP_ZERO:
	case THP_EXCL:
		thp_enable(_metadata, b);
		r->map_len = len + HPAGE;
		r->map = map_anon(r->map_len);
		ASSERT_NE(NULL, r->map);
		r->p = (uint8_t *)(((uintptr_t)r->map + HPAGE - 1) &
				   ~(HPAGE - 1));
		ASSERT_EQ(0, madvise(r->p, len, MADV_HUGEPAGE));
		break;
	case HUGETLB:
		hugetlb_reserve(_metadata, b, 3 * len / HPAGE + 1);
		r->map_len = len;
		r->map = mmap(NULL, len, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		ASSERT_NE(MAP_FAILED, r->map) TH_LOG("hugetlb mmap failed");
		r->p = r->map;
		break;
	case HUGETLB_FILE:
		hugetlb_reserve(_metadata, b, 3 * len / HPAGE + 1);
		r->fd = memfd_create("gift_test", MFD_HUGETLB);
		ASSERT_LE(0, r->fd);
		ASSERT_EQ(0, ftruncate(r->fd, len));
		/* hugetlbfs has no write(2): fill it through a shared map. */
		pg = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			  r->fd, 0);
		ASSERT_NE(MAP_FAILED, pg);
		fill(pg, len, 17);
		ASSERT_EQ(0, munmap(pg, len));
		r->map_len = len;
		r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			      r->fd, 0);
		ASSERT_NE(MAP_FAILED, r->map);
		r->p = r->map;
		break;
	case FILE_PRIV:
		r->fd = mkstemp(path);
		ASSERT_LE(0, r->fd);
		unlink(path);
		pg = malloc(b->page);
		ASSERT_NE(NULL, pg);
		for (off = 0; off < len; off += b->page) {
			fill(pg, b->page, 0x1000 + off / b->page);
			ASSERT_EQ(b->page, pwrite(r->fd, pg, b->page, off));
		}
		free(pg);
		r->map_len = len;
		r->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			      r->fd, 0);
		ASSERT_NE(MAP_FAILED, r->map);
		r->p = r->map;
		break;
	}

	switch (k) {
	case ZERO:
		touch_read(r->p, len, b->page);
		ASSERT_TRUE(pages_have_flag(r->p, r->npages, KPF_ZERO_PAGE));
		break;
	case THP_ZERO:
		ASSERT_EQ(1, gift_read_long(THP_DIR "/use_zero_page"));
		touch_read(r->p, len, b->page);
		ASSERT_TRUE(pages_have_flag(r->p, r->npages, KPF_ZERO_PAGE));
		ASSERT_TRUE(pages_have_flag(r->p, r->npages, KPF_THP))
			TH_LOG("no huge zero page behind the range");
		break;
	case KSM:
		fill_same(r->p, len, b->page, 7);
		ksm_merge(_metadata, b, r);
		break;
	case FILE_PRIV:
		touch_read(r->p, len, b->page);
		ASSERT_FALSE(pages_have_flag(r->p, 1, KPF_ZERO_PAGE));
		break;
	case HUGETLB_FILE:
		touch_read(r->p, len, b->page);
		ASSERT_TRUE(pages_have_flag(r->p, r->npages, KPF_HUGE));
		break;
	case EXCL:
		fill(r->p, len, 11);
		break;
	case THP_EXCL:
		fill(r->p, len, 11);
		ASSERT_TRUE(pages_have_flag(r->p, r->npages, KPF_THP))
			TH_LOG("no THP behind the range");
		break;
	case FORK:
	case THP:
	case HUGETLB:
		fill(r->p, len, 13);
		if (k == THP)
			ASSERT_TRUE(pages_have_flag(r->p, r->npages, KPF_THP))
				TH_LOG("no THP behind the range");
		if (k == HUGETLB)
			ASSERT_TRUE(pages_have_flag(r->p, r->npages,
						    KPF_HUGE));
		ASSERT_EQ(0, child_spawn(&r->ch, r->p, b->page));
		/* The child keeps them mapped: write-protected in both. */
		ASSERT_EQ(1, child_do(&r->ch, 'c', r->p[0], 0, 0));
		ASSERT_TRUE(pages_shared(r->p, r->npages));
		break;
	}
}

/* Flags, rereg, errors, staleness, remote access: fixture gift */

FIXTURE(gift) {
	struct base b;
};

FIXTURE_SETUP(gift)
{
	base_setup(_metadata, &self->b);
}

FIXTURE_TEARDOWN(gift)
{
	base_teardown(_metadata, &self->b);
}

/* The device advertises the gift access flag. */
TEST_F(gift, dev_cap)
{
	struct giftdv_device_attr attr = {};

	ASSERT_EQ(0, giftdv_query_device(self->b.ctx, &attr));
	EXPECT_TRUE(attr.dev_caps & GIFTDV_DEV_CAP_ACCESS_GIFT);
}

/*
 * Gift with any write access bit (local write, remote write, remote
 * atomic) fails with EINVAL; gift alone, gift|REMOTE_READ and either with
 * MW_BIND (a window over a gift MR may only read: mw_test) register, and
 * are honoured: over zero-page memory every page is held by reference.
 */
TEST_F(gift, reg_flags)
{
	static const unsigned int bad[] = {
		IBV_ACCESS_LOCAL_WRITE,
		IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ,
		IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
		IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_ATOMIC,
		RW | IBV_ACCESS_REMOTE_ATOMIC,
		IBV_ACCESS_REMOTE_WRITE,
		IBV_ACCESS_REMOTE_ATOMIC,
		IBV_ACCESS_MW_BIND | IBV_ACCESS_LOCAL_WRITE,
		IBV_ACCESS_MW_BIND | IBV_ACCESS_REMOTE_WRITE,
	};
	const unsigned int g = gift_access_gift();
	const unsigned int good[] = {
		g, g | IBV_ACCESS_REMOTE_READ, g | IBV_ACCESS_MW_BIND,
		g | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_MW_BIND,
	};
	struct base *b = &self->b;
	const size_t n = 16, len = n * b->page;
	struct giftdv_mr_attr attr;
	struct held h0;
	struct ibv_mr *mr;
	uint8_t *p;
	size_t i;

	p = map_anon(len);
	ASSERT_NE(NULL, p);
	touch_read(p, len, b->page);
	held_read(_metadata, &h0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		EXPECT_EQ(NULL, ibv_reg_mr(b->pd, p, len, g | bad[i]));
		EXPECT_EQ(EINVAL, errno) TH_LOG("access 0x%x", bad[i]);
	}
	EXPECT_HELD(h0, 0, 0);

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		mr = ibv_reg_mr(b->pd, p, len, good[i]);
		ASSERT_NE(NULL, mr) TH_LOG("access 0x%x: %s", good[i],
					   strerror(errno));
		QUERY(mr, &attr);
		EXPECT_EQ(n, attr.npages);
		EXPECT_EQ(n, attr.shared_pages);
		EXPECT_EQ(0, attr.stale_pages);
		EXPECT_HELD(h0, 0, n);
		EXPECT_EQ(0, ibv_dereg_mr(mr));
		EXPECT_HELD(h0, 0, 0);
	}
	munmap(p, len);
}

/*
 * giftdv_query_mr() and giftdv_mr_stale_pages() reject a comp_mask and a
 * NULL attribute with EINVAL (our provider's API).
 */
TEST_F(gift, query_mr_args)
{
	struct base *b = &self->b;
	const size_t len = 4 * b->page;
	struct giftdv_mr_attr attr = { .comp_mask = 1 };
	struct ibv_mr *mr;
	uint8_t *p;

	p = map_anon(len);
	ASSERT_NE(NULL, p);
	touch_read(p, len, b->page);
	mr = ibv_reg_mr(b->pd, p, len, GIFT);
	ASSERT_NE(NULL, mr);
	EXPECT_EQ(EINVAL, giftdv_query_mr(mr, &attr));
	EXPECT_EQ(EINVAL, giftdv_query_mr(mr, NULL));
	EXPECT_EQ(EINVAL, giftdv_mr_stale_pages(mr, NULL));
	attr.comp_mask = 0;
	EXPECT_EQ(0, giftdv_query_mr(mr, &attr));
	EXPECT_EQ(4, attr.shared_pages);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	munmap(p, len);
}

/*
 * ibv_rereg_mr(IBV_REREG_MR_CHANGE_ACCESS) adds and drops gift, taking
 * the range's pages again each time: a read-only MR (which unshared the
 * zero page) over a range that maps the zero page again becomes gift
 * and holds the zero page, allocating nothing; dropping gift unshares
 * again. Gift with local write or remote atomic fails with EINVAL and
 * leaves the MR as it was, still readable by the device.
 */
TEST_F(gift, rereg_access_gift)
{
	struct base *b = &self->b;
	const size_t n = 64, len = n * b->page;
	struct giftdv_mr_attr attr;
	uint64_t *zero_pm, *pm;
	uint32_t lkey, rkey;
	struct held h0;
	struct ibv_mr *mr;
	uint8_t *p, *zeros;
	size_t i, changed;

	p = map_anon(len);
	ASSERT_NE(NULL, p);
	zeros = calloc(1, len);
	zero_pm = calloc(n, sizeof(*zero_pm));
	pm = calloc(n, sizeof(*pm));
	ASSERT_TRUE(zeros && zero_pm && pm);
	touch_read(p, len, b->page);
	ASSERT_EQ(0, gift_pagemap(p, n, zero_pm));
	held_read(_metadata, &h0);

	/* Not gift: each zero page is replaced by a pinned copy. */
	mr = ibv_reg_mr(b->pd, p, len, RO);
	ASSERT_NE(NULL, mr);
	lkey = mr->lkey;
	rkey = mr->rkey;
	QUERY(mr, &attr);
	EXPECT_EQ(0, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, n, 0);
	ASSERT_EQ(0, gift_pagemap(p, n, pm));
	for (i = changed = 0; i < n; i++)
		changed += GIFT_PM_PFN(pm[i]) != GIFT_PM_PFN(zero_pm[i]);
	EXPECT_EQ(n, changed);

	/* Our range maps the zero page again; the MR holds the copies. */
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	touch_read(p, len, b->page);
	EXPECT_EQ(n, stale_of(mr));

	/* Adding gift re-takes the pages: the zero page, by reference. */
	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
				  0, GIFT));
	EXPECT_EQ(lkey, mr->lkey);
	EXPECT_EQ(rkey, mr->rkey);
	QUERY(mr, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(n, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, 0, n);
	ASSERT_EQ(0, gift_pagemap(p, n, pm));
	EXPECT_EQ(0, memcmp(pm, zero_pm, n * sizeof(*pm)));
	EXPECT_DEVICE_READS(b, mr, 0, zeros, len);

	/* Write bits with gift: EINVAL, and the MR is unchanged. */
	errno = 0;
	EXPECT_EQ(IBV_REREG_MR_ERR_CMD,
		  ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			       GIFT | IBV_ACCESS_LOCAL_WRITE));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(IBV_REREG_MR_ERR_CMD,
		  ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, 0,
			       GIFT | IBV_ACCESS_LOCAL_WRITE |
			       IBV_ACCESS_REMOTE_ATOMIC));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(lkey, mr->lkey);
	QUERY(mr, &attr);
	EXPECT_EQ(n, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, 0, n);
	EXPECT_DEVICE_READS(b, mr, 0, zeros, len);

	/* Dropping gift re-takes the pages as ib_umem would: unshared. */
	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
				  0, RO));
	EXPECT_EQ(lkey, mr->lkey);
	QUERY(mr, &attr);
	EXPECT_EQ(0, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, n, 0);
	ASSERT_EQ(0, gift_pagemap(p, n, pm));
	for (i = changed = 0; i < n; i++)
		changed += GIFT_PM_PFN(pm[i]) != GIFT_PM_PFN(zero_pm[i]);
	EXPECT_EQ(n, changed);
	EXPECT_DEVICE_READS(b, mr, 0, zeros, len);

	/* Gift with a new translation, over fresh zero-page memory. */
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	touch_read(p, len, b->page);
	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_ACCESS |
				  IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				  p + b->page, len - b->page, GIFT));
	QUERY(mr, &attr);
	EXPECT_EQ(n - 1, attr.npages);
	EXPECT_EQ(n - 1, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, 0, n - 1);
	EXPECT_DEVICE_READS(b, mr, 0, zeros, len - b->page);

	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_HELD(h0, 0, 0);
	munmap(p, len);
	free(zeros);
	free(zero_pm);
	free(pm);
}

/*
 * Remote RDMA WRITE and atomics to a gift MR complete with
 * IBV_WC_REM_ACCESS_ERR on the requester and leave its memory alone,
 * over exclusive (pinned) pages as over zero pages (referenced).
 */
TEST_F(gift, remote_write_atomic_refused)
{
	static const enum ibv_wr_opcode ops[] = {
		IBV_WR_RDMA_WRITE, IBV_WR_ATOMIC_FETCH_AND_ADD,
		IBV_WR_ATOMIC_CMP_AND_SWP,
	};
	struct base *b = &self->b;
	const size_t n = 8, len = n * b->page;
	struct giftdv_mr_attr attr;
	struct ibv_mr *mr;
	uint8_t *p, *img;
	size_t i, pg;

	p = map_anon(len);
	img = malloc(len);
	ASSERT_TRUE(p && img);
	fill(p, len / 2, 3);		/* exclusive half */
	touch_read(p + len / 2, len / 2, b->page);	/* zero-page half */
	memcpy(img, p, len);
	mr = ibv_reg_mr(b->pd, p, len, GIFT);
	ASSERT_NE(NULL, mr);
	QUERY(mr, &attr);
	EXPECT_EQ(n / 2, attr.shared_pages);

	memset(b->buf, 0xee, LB_LEN);
	for (i = 0; i < 3; i++) {
		for (pg = 0; pg < n; pg += n / 2) {
			EXPECT_EQ(IBV_WC_REM_ACCESS_ERR,
				  lb_post(b, ops[i], 0,
					  i ? 8 : b->page,
					  (uintptr_t)p + pg * b->page,
					  mr->rkey))
				TH_LOG("op %d on page %zu", ops[i], pg);
			lb_connect(_metadata, b);
		}
	}
	EXPECT_EQ(0, memcmp(p, img, len));
	EXPECT_DEVICE_READS(b, mr, 0, img, len);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	munmap(p, len);
	free(img);
}

/*
 * Staleness counts exactly the pages whose current mapping is not the
 * page the MR holds. Over 8 exclusive and 8 zero pages, writes to 3 zero
 * pages and 2 exclusive pages make 3 stale (the exclusive ones are
 * written in place, and the device sees those writes); a rereg of the
 * translation refreshes the MR; munmap and a new mapping count as stale,
 * but a new mapping that maps the very page held (the zero page) does not.
 */
TEST_F(gift, stale_pages_exact)
{
	struct base *b = &self->b;
	const size_t n = 16, len = n * b->page;
	struct giftdv_mr_attr attr;
	static const int zw[] = { 8, 10, 12 }, xw[] = { 0, 1 };
	struct held h0;
	struct ibv_mr *mr;
	uint8_t *p, *img;
	size_t i;

	p = map_anon(len);
	img = malloc(len);
	ASSERT_TRUE(p && img);
	fill(p, 8 * b->page, 5);
	touch_read(p + 8 * b->page, 8 * b->page, b->page);
	memcpy(img, p, len);
	held_read(_metadata, &h0);

	mr = ibv_reg_mr(b->pd, p, len, GIFT);
	ASSERT_NE(NULL, mr);
	QUERY(mr, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(8, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, 8, 8);

	/* The device reads the exclusive pages' new bytes, old zeros. */
	for (i = 0; i < 3; i++)
		fill(p + zw[i] * b->page, b->page, 100 + i);
	for (i = 0; i < 2; i++) {
		fill(p + xw[i] * b->page, b->page, 200 + i);
		memcpy(img + xw[i] * b->page, p + xw[i] * b->page, b->page);
	}
	EXPECT_EQ(3, stale_of(mr));
	QUERY(mr, &attr);
	EXPECT_EQ(3, attr.stale_pages);
	EXPECT_EQ(8, attr.shared_pages);
	EXPECT_DEVICE_READS(b, mr, 0, img, len);

	/* A new translation over the same range reads what we have now. */
	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				  p, len, 0));
	QUERY(mr, &attr);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_EQ(5, attr.shared_pages);
	EXPECT_HELD(h0, 11, 5);
	EXPECT_DEVICE_READS(b, mr, 0, p, len);

	/* Unmapped pages are stale, and stay so under a new mapping... */
	ASSERT_EQ(0, munmap(p + 2 * b->page, 2 * b->page));
	EXPECT_EQ(2, stale_of(mr));
	ASSERT_EQ(p + 2 * b->page,
		  mmap(p + 2 * b->page, 2 * b->page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	memset(p + 2 * b->page, 0x42, 2 * b->page);
	EXPECT_EQ(2, stale_of(mr));
	/* ... unless it maps the page held: the zero page here. */
	ASSERT_EQ(p + 14 * b->page,
		  mmap(p + 14 * b->page, 2 * b->page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	touch_read(p + 14 * b->page, 2 * b->page, b->page);
	EXPECT_EQ(2, stale_of(mr));
	ASSERT_EQ(0, munmap(p + 15 * b->page, b->page));
	EXPECT_EQ(3, stale_of(mr));

	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_HELD(h0, 0, 0);
	munmap(p, len);
	free(img);
}

/*
 * The registering process exits and leaves its MR behind in the context
 * it shared with us (a forked child registers in our PD): with its
 * address space gone every page is stale, the device still reads the
 * registration-time bytes, and our writes (to pages the child's fork
 * left shared) do not reach it. Closing the context releases the pages
 * and undoes the dead child's accounting; the fixture checks the
 * counters.
 */
TEST_F(gift, owner_exited)
{
	struct base *b = &self->b;
	const size_t n = 8, len = n * b->page;
	struct {
		uint64_t addr;
		uint32_t rkey;
		uint32_t handle;
	} msg = {};
	struct giftdv_mr_attr attr;
	struct ibv_mr mr = {};
	int fds[2], status;
	uint8_t *p, *img;
	pid_t pid;

	p = map_anon(len);
	img = malloc(len);
	ASSERT_TRUE(p && img);
	fill(p, 4 * b->page, 7);
	touch_read(p + 4 * b->page, 4 * b->page, b->page);
	memcpy(img, p, len);
	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct ibv_mr *m = ibv_reg_mr(b->pd, p, len, GIFT);

		if (m) {
			msg.addr = (uintptr_t)m->addr;
			msg.rkey = m->rkey;
			msg.handle = m->handle;
		}
		_exit(!m || write(fds[1], &msg, sizeof(msg)) != sizeof(msg));
	}
	close(fds[1]);
	ASSERT_EQ(sizeof(msg), read(fds[0], &msg, sizeof(msg)));
	close(fds[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));

	/* The child's MR, as far as the provider and the device care. */
	mr.context = b->ctx;
	mr.pd = b->pd;
	mr.addr = (void *)(uintptr_t)msg.addr;
	mr.length = len;
	mr.handle = msg.handle;
	mr.lkey = msg.rkey;
	mr.rkey = msg.rkey;
	QUERY(&mr, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(n, attr.shared_pages);
	EXPECT_EQ(n, attr.stale_pages);
	EXPECT_DEVICE_READS(b, &mr, 0, img, len);
	fill(p, len, 9);
	EXPECT_DEVICE_READS(b, &mr, 0, img, len);
	munmap(p, len);
	free(img);
}

/*
 * MRs registered without gift never go stale when written: a writable MR
 * and a read-only one (whose zero pages were unshared at registration)
 * keep the pages the process writes, and the device reads the new bytes.
 * They do count unmapped pages.
 */
TEST_F(gift, stale_non_gift)
{
	struct base *b = &self->b;
	const size_t n = 8, len = n * b->page;
	struct giftdv_mr_attr attr;
	struct ibv_mr *rw, *ro;
	uint8_t *p, *q;

	p = map_anon(len);
	q = map_anon(len);
	ASSERT_TRUE(p && q);
	fill(p, len, 21);
	touch_read(q, len, b->page);
	rw = ibv_reg_mr(b->pd, p, len, RW);
	ASSERT_NE(NULL, rw);
	ro = ibv_reg_mr(b->pd, q, len, RO);
	ASSERT_NE(NULL, ro);

	fill(p, len, 22);
	fill(q, len, 23);
	QUERY(rw, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(0, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	QUERY(ro, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(0, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_DEVICE_READS(b, rw, 0, p, len);
	EXPECT_DEVICE_READS(b, ro, 0, q, len);

	ASSERT_EQ(0, munmap(q + b->page, b->page));
	EXPECT_EQ(1, stale_of(ro));

	EXPECT_EQ(0, ibv_dereg_mr(rw));
	EXPECT_EQ(0, ibv_dereg_mr(ro));
	munmap(p, len);
	munmap(q, len);
}

/* Zero length and wrapped ranges fail with EINVAL. */
TEST_F(gift, bad_range_einval)
{
	struct base *b = &self->b;
	void *top = (void *)(UINTPTR_MAX - b->page + 1);
	uint8_t *p = map_anon(b->page);
	struct held h0;

	ASSERT_NE(NULL, p);
	touch_read(p, b->page, b->page);
	held_read(_metadata, &h0);
	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, p, 0, GIFT));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, top, 2 * b->page, GIFT));
	EXPECT_EQ(EINVAL, errno);
	/* Ending exactly at 2^64 wraps too. */
	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, top, b->page, GIFT));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_HELD(h0, 0, 0);
	munmap(p, b->page);
}

/* A gift MR over the driver's maximum MR size fails with EINVAL. */
TEST_F(gift, over_max_mr_size_einval)
{
	struct base *b = &self->b;
	uint8_t *p = map_anon(b->page);
	struct held h0;

	ASSERT_NE(NULL, p);
	touch_read(p, b->page, b->page);
	held_read(_metadata, &h0);
	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, p, GIFT_MAX_MR_SIZE + 1, GIFT));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_HELD(h0, 0, 0);
	munmap(p, b->page);
}

/*
 * A range with a hole, an unmapped range and a PROT_NONE range fail with
 * EFAULT, holding nothing afterwards; read-only memory is fine for gift.
 */
TEST_F(gift, bad_memory_efault)
{
	struct base *b = &self->b;
	const size_t n = 8, len = n * b->page;
	struct giftdv_mr_attr attr;
	long long pins;
	struct ibv_mr *mr;
	struct held h0;
	uint8_t *p;

	p = map_anon(len);
	ASSERT_NE(NULL, p);
	fill(p, len / 2, 9);
	touch_read(p + len / 2, len / 2, b->page);
	ASSERT_EQ(0, munmap(p + 6 * b->page, b->page));
	held_read(_metadata, &h0);
	pins = pin_balance();

	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, p, len, GIFT));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, p + 6 * b->page, b->page, GIFT));
	EXPECT_EQ(EFAULT, errno);

	ASSERT_EQ(0, mprotect(p, 6 * b->page, PROT_NONE));
	errno = 0;
	EXPECT_EQ(NULL, ibv_reg_mr(b->pd, p, 6 * b->page, GIFT));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_HELD(h0, 0, 0);
	EXPECT_EQ(pins, pin_balance());

	ASSERT_EQ(0, mprotect(p, 6 * b->page, PROT_READ));
	mr = ibv_reg_mr(b->pd, p, 6 * b->page, GIFT);
	ASSERT_NE(NULL, mr) TH_LOG("PROT_READ: %s", strerror(errno));
	QUERY(mr, &attr);
	EXPECT_EQ(6, attr.npages);
	EXPECT_EQ(2, attr.shared_pages);
	EXPECT_HELD(h0, 4, 2);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_HELD(h0, 0, 0);
	munmap(p, len);
}

/* Child of rlimit_memlock: exit codes name the failed step. */
static int gift_memlock_child(const char *ibdev)
{
	struct giftdv_mr_attr attr = {};
	struct ibv_mr *a, *b, *c;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	uint8_t *buf;

	ctx = gift_open(ibdev);
	if (!ctx)
		return 10;
	pd = ibv_alloc_pd(ctx);
	buf = map_anon(MIB);
	if (!pd || !buf)
		return 11;
	touch_read(buf, MIB, 4 * KIB);		/* the zero page */
	if (gift_become_nobody(64 * KIB))
		return 12;

	/* Zero pages held by reference count: 1 MiB is over 64 KiB. */
	if (ibv_reg_mr(pd, buf, MIB, GIFT) || errno != ENOMEM)
		return 20;
	a = ibv_reg_mr(pd, buf, 32 * KIB, GIFT);
	if (!a)
		return 21;
	b = ibv_reg_mr(pd, buf + 32 * KIB, 32 * KIB, GIFT);
	if (!b)
		return 22;
	if (ibv_reg_mr(pd, buf + 64 * KIB, 4 * KIB, GIFT) || errno != ENOMEM)
		return 23;
	if (ibv_dereg_mr(a))
		return 24;
	c = ibv_reg_mr(pd, buf + 64 * KIB, 32 * KIB, GIFT);
	if (!c)
		return 25;
	if (mr_query(c, &attr) || attr.shared_pages != 8)
		return 26;
	if (ibv_dereg_mr(b) || ibv_dereg_mr(c))
		return 27;
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}

static int gift_memlock_zero_child(const char *ibdev)
{
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	uint8_t *buf;

	ctx = gift_open(ibdev);
	if (!ctx)
		return 10;
	pd = ibv_alloc_pd(ctx);
	buf = map_anon(4 * KIB);
	if (!pd || !buf)
		return 11;
	touch_read(buf, 4 * KIB, 4 * KIB);
	if (gift_become_nobody(0))
		return 12;
	if (ibv_reg_mr(pd, buf, 4 * KIB, GIFT) || errno != EPERM)
		return 20;
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}

/*
 * Without CAP_IPC_LOCK, gift pages count against RLIMIT_MEMLOCK (64 KiB)
 * although nothing is allocated for them: 1 MiB of zero pages fails with
 * ENOMEM, 32 KiB twice fits, dereg gives the quota back.
 */
TEST_F(gift, rlimit_memlock_enomem)
{
	EXPECT_EQ(0, gift_run_child(gift_memlock_child, gift_env("GIFT_IBDEV")));
}

/* Without CAP_IPC_LOCK, a zero RLIMIT_MEMLOCK fails gift with EPERM. */
TEST_F(gift, rlimit_zero_eperm)
{
	EXPECT_EQ(0, gift_run_child(gift_memlock_zero_child,
				    gift_env("GIFT_IBDEV")));
}

/*
 * Memory cost per kind: fixture mem, in a memory cgroup of its own, on
 * one CPU (so that memcg's per-CPU charge batch blurs memory.current by
 * at most 64 pages).
 */

FIXTURE(mem) {
	struct base b;
};

FIXTURE_VARIANT(mem) {
	enum kind kind;
	size_t len;
	bool gift_unshares;	/* the documented exception */
};

FIXTURE_VARIANT_ADD(mem, zero) { .kind = ZERO, .len = 64 * MIB };
FIXTURE_VARIANT_ADD(mem, ksm) { .kind = KSM, .len = 64 * MIB };
FIXTURE_VARIANT_ADD(mem, fork) { .kind = FORK, .len = 64 * MIB };
FIXTURE_VARIANT_ADD(mem, file) { .kind = FILE_PRIV, .len = 64 * MIB };
FIXTURE_VARIANT_ADD(mem, thp_fork) { .kind = THP, .len = 64 * MIB };
FIXTURE_VARIANT_ADD(mem, thp_zero) { .kind = THP_ZERO, .len = 64 * MIB };
FIXTURE_VARIANT_ADD(mem, hugetlb_file) {
	.kind = HUGETLB_FILE, .len = 16 * MIB,
};
/*
 * hugetlb_wp() reuses an anonymous huge page mapped once whatever its
 * references, so a referenced fork-shared huge page would take the
 * child's writes: gift pins, and so unshares, those.
 */
FIXTURE_VARIANT_ADD(mem, hugetlb_fork) {
	.kind = HUGETLB, .len = 16 * MIB, .gift_unshares = true,
};

FIXTURE_SETUP(mem)
{
	struct base *b = &self->b;
	char name[64];
	cpu_set_t cpus;

	base_setup(_metadata, b);
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));
	snprintf(name, sizeof(name), "gift_test.%d", getpid());
	ASSERT_EQ(0, gift_memcg_create(name, b->cg, sizeof(b->cg)));
	ASSERT_EQ(0, gift_memcg_move(b->cg, getpid()));
}

FIXTURE_TEARDOWN(mem)
{
	base_teardown(_metadata, &self->b);
}

/* Bytes of memory in use: memory.current, or used hugetlb pages. */
static long long mem_used(const struct base *b, enum kind kind)
{
	if (kind == HUGETLB || kind == HUGETLB_FILE)
		return -gift_read_long(HP_DIR "/free_hugepages") *
		       (long long)HPAGE;
	return gift_memcg_current(b->cg);
}

static size_t pfns_changed(const uint64_t *a, const uint64_t *b, size_t n)
{
	size_t i, changed = 0;

	for (i = 0; i < n; i++)
		changed += GIFT_PM_PFN(a[i]) != GIFT_PM_PFN(b[i]);
	return changed;
}

/*
 * A gift registration adds less than 1% of the MR size and keeps every
 * PFN, holding every page by reference; the same registration without
 * gift costs (at least 90% of) the MR size and moves every page to a new
 * PFN, as ib_umem does.
 */
TEST_F_TIMEOUT(mem, gift_free_plain_unshares, 600)
{
	static const char *const names[] = {
		"zero page", "KSM", "fork-shared", "MAP_PRIVATE file",
		"fork-shared THP", "huge zero page", "fork-shared hugetlb",
		"MAP_PRIVATE hugetlbfs file",
	};
	struct base *b = &self->b;
	struct region *r = &b->r[0];
	const size_t len = variant->len, n = len / b->page;
	long long m0, m1, t0, t1;
	struct giftdv_mr_attr attr;
	uint64_t *pm0, *pm1;
	struct ibv_mr *mr;
	struct held h0;

	/* Our own allocations come before any measurement. */
	pm0 = calloc(n, sizeof(*pm0));
	pm1 = calloc(n, sizeof(*pm1));
	ASSERT_TRUE(pm0 && pm1);
	memset(pm0, 1, n * sizeof(*pm0));
	memset(pm1, 1, n * sizeof(*pm1));
	region_make(_metadata, b, r, variant->kind, len);
	ASSERT_EQ(0, gift_pagemap(r->p, n, pm0));
	held_read(_metadata, &h0);

	m0 = mem_used(b, variant->kind);
	t0 = gift_now_us();
	mr = ibv_reg_mr(b->pd, r->p, len, GIFT);
	t1 = gift_now_us();
	m1 = mem_used(b, variant->kind);
	ASSERT_NE(NULL, mr) TH_LOG("gift: %s", strerror(errno));
	TH_LOG("%s, %zu MiB: gift costs %lld KiB in %lld ms",
	       names[variant->kind], len / MIB, (m1 - m0) / 1024,
	       (t1 - t0) / 1000);
	ASSERT_EQ(0, gift_pagemap(r->p, n, pm1));
	QUERY(mr, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(0, attr.stale_pages);
	if (variant->gift_unshares) {
		EXPECT_GE(m1 - m0, (long long)len * 9 / 10);
		EXPECT_EQ(n, pfns_changed(pm0, pm1, n));
		EXPECT_EQ(0, attr.shared_pages);
		EXPECT_HELD(h0, n, 0);
		EXPECT_EQ(0, ibv_dereg_mr(mr));
		EXPECT_HELD(h0, 0, 0);
		/* Unshared now: a plain registration has nothing to copy. */
		goto out;
	}
	EXPECT_LT(m1 - m0, (long long)len / 100);
	EXPECT_EQ(0, pfns_changed(pm0, pm1, n));
	EXPECT_EQ(n, attr.shared_pages);
	EXPECT_HELD(h0, 0, n);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_HELD(h0, 0, 0);

	m0 = mem_used(b, variant->kind);
	t0 = gift_now_us();
	mr = ibv_reg_mr(b->pd, r->p, len, RO);
	t1 = gift_now_us();
	m1 = mem_used(b, variant->kind);
	ASSERT_NE(NULL, mr) TH_LOG("plain: %s", strerror(errno));
	TH_LOG("%s, %zu MiB: without gift costs %lld KiB in %lld ms",
	       names[variant->kind], len / MIB, (m1 - m0) / 1024,
	       (t1 - t0) / 1000);
	EXPECT_GE(m1 - m0, (long long)len * 9 / 10);
	ASSERT_EQ(0, gift_pagemap(r->p, n, pm1));
	EXPECT_EQ(n, pfns_changed(pm0, pm1, n));
	QUERY(mr, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(0, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_HELD(h0, n, 0);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	EXPECT_HELD(h0, 0, 0);
out:
	free(pm0);
	free(pm1);
}

/*
 * What the device reads after the process writes: fixture readback. For
 * each kind of page write-protected at registration, RDMA READ returns
 * the registration-time bytes before and after the process writes, and
 * after the child it shares them with writes (and exits), or when the
 * child exited before the process writes; every page is stale. For
 * exclusive pages the device reads the new bytes and nothing
 * is stale. A rereg of the translation over the same range refreshes
 * the MR either way.
 */

FIXTURE(readback) {
	struct base b;
};

FIXTURE_VARIANT(readback) {
	enum kind kind;
	size_t len;
	bool shared;		/* write-protected at registration */
	bool exit_first;	/* the child exits before we write */
};

FIXTURE_VARIANT_ADD(readback, zero) {
	.kind = ZERO, .len = 16 * 4096, .shared = true,
};
FIXTURE_VARIANT_ADD(readback, ksm) {
	.kind = KSM, .len = 32 * 4096, .shared = true,
};
FIXTURE_VARIANT_ADD(readback, fork) {
	.kind = FORK, .len = 16 * 4096, .shared = true,
};
FIXTURE_VARIANT_ADD(readback, file) {
	.kind = FILE_PRIV, .len = 16 * 4096, .shared = true,
};
FIXTURE_VARIANT_ADD(readback, thp_fork) {
	.kind = THP, .len = HPAGE, .shared = true,
};
FIXTURE_VARIANT_ADD(readback, thp_zero) {
	.kind = THP_ZERO, .len = HPAGE, .shared = true,
};
FIXTURE_VARIANT_ADD(readback, hugetlb_file) {
	.kind = HUGETLB_FILE, .len = HPAGE, .shared = true,
};
/* Fork-shared anonymous huge pages are unshared and pinned (see mem). */
FIXTURE_VARIANT_ADD(readback, hugetlb_fork) {
	.kind = HUGETLB, .len = HPAGE, .shared = false,
};
FIXTURE_VARIANT_ADD(readback, fork_exit) {
	.kind = FORK, .len = 16 * 4096, .shared = true, .exit_first = true,
};
FIXTURE_VARIANT_ADD(readback, thp_fork_exit) {
	.kind = THP, .len = HPAGE, .shared = true, .exit_first = true,
};
FIXTURE_VARIANT_ADD(readback, hugetlb_fork_exit) {
	.kind = HUGETLB, .len = HPAGE, .shared = false, .exit_first = true,
};
FIXTURE_VARIANT_ADD(readback, exclusive) {
	.kind = EXCL, .len = 16 * 4096, .shared = false,
};
/*
 * A PMD-mapped THP marks only its first page exclusive; every page of
 * it is pinned all the same, not referenced.
 */
FIXTURE_VARIANT_ADD(readback, thp_exclusive) {
	.kind = THP_EXCL, .len = 2 * HPAGE, .shared = false,
};

FIXTURE_SETUP(readback)
{
	base_setup(_metadata, &self->b);
}

FIXTURE_TEARDOWN(readback)
{
	base_teardown(_metadata, &self->b);
}

TEST_F_TIMEOUT(readback, write_after_registration, 300)
{
	struct base *b = &self->b;
	struct region *r = &b->r[0];
	const size_t len = variant->len, n = len / b->page;
	const uint8_t *dev;
	struct giftdv_mr_attr attr;
	uint8_t *img, *now;
	struct ibv_mr *mr;

	img = malloc(len);
	now = malloc(len);
	ASSERT_TRUE(img && now);
	region_make(_metadata, b, r, variant->kind, len);
	memcpy(img, r->p, len);

	mr = ibv_reg_mr(b->pd, r->p, len, GIFT);
	ASSERT_NE(NULL, mr);
	QUERY(mr, &attr);
	EXPECT_EQ(n, attr.npages);
	EXPECT_EQ(variant->shared ? n : 0, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_DEVICE_READS(b, mr, 0, img, len);
	if (variant->exit_first) {
		/* Now only we map the pages, still write-protected. */
		ASSERT_EQ(0, child_end(&r->ch, false));
		EXPECT_DEVICE_READS(b, mr, 0, img, len);
	}

	fill(r->p, len, 31);
	memcpy(now, r->p, len);
	dev = variant->shared ? img : now;
	EXPECT_DEVICE_READS(b, mr, 0, dev, len);
	EXPECT_EQ(variant->shared ? n : 0, stale_of(mr));

	if (r->ch.pid > 0) {
		/* The child's writes never reach the device. */
		ASSERT_EQ(1, child_do(&r->ch, 'w', 0xcc, 0, n));
		EXPECT_DEVICE_READS(b, mr, 0, dev, len);
		ASSERT_EQ(0, child_end(&r->ch, false));
		EXPECT_DEVICE_READS(b, mr, 0, dev, len);
		EXPECT_EQ(0, memcmp(r->p, now, len));
		/* Our second write goes to our page, not the device's. */
		fill(r->p, len, 32);
		memcpy(now, r->p, len);
		EXPECT_DEVICE_READS(b, mr, 0, dev, len);
	}

	ASSERT_EQ(0, ibv_rereg_mr(mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				  r->p, len, 0));
	QUERY(mr, &attr);
	EXPECT_EQ(0, attr.stale_pages);
	EXPECT_EQ(0, attr.shared_pages);
	EXPECT_DEVICE_READS(b, mr, 0, now, len);
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	free(img);
	free(now);
}

/*
 * Fork before and after registration, with and without MADV_DONTFORK, of
 * a gift MR and of a writable MR, over 4 exclusive pages (0-3) and 4
 * zero pages (4-7): the device reads and writes the parent's pages only.
 *
 * Gift: a page is write-protected at registration if it maps the zero
 * page, or was shared with a child forked before (without DONTFORK).
 * When the parent writes such a page it gets a new one, the device keeps
 * reading the old bytes, the page is stale. Exclusive pages are pinned,
 * so a fork after registration copies them for the child at once (as
 * for any pinned page): the parent keeps writing in place and the device
 * reads its writes.
 *
 * Writable: the parent's pages are pinned writable (COW broken at
 * registration if forked before); device writes and parent writes meet.
 */

FIXTURE(fork) {
	struct base b;
};

FIXTURE_VARIANT(fork) {
	bool gift;
	bool before;		/* fork before registration, else after */
	bool dontfork;
};

FIXTURE_VARIANT_ADD(fork, gift_before) {
	.gift = true, .before = true,
};
FIXTURE_VARIANT_ADD(fork, gift_before_dontfork) {
	.gift = true, .before = true, .dontfork = true,
};
FIXTURE_VARIANT_ADD(fork, gift_after) {
	.gift = true,
};
FIXTURE_VARIANT_ADD(fork, gift_after_dontfork) {
	.gift = true, .dontfork = true,
};
FIXTURE_VARIANT_ADD(fork, rw_before) {
	.before = true,
};
FIXTURE_VARIANT_ADD(fork, rw_before_dontfork) {
	.before = true, .dontfork = true,
};
FIXTURE_VARIANT_ADD(fork, rw_after) {
};
FIXTURE_VARIANT_ADD(fork, rw_after_dontfork) {
	.dontfork = true,
};

FIXTURE_SETUP(fork)
{
	base_setup(_metadata, &self->b);
}

FIXTURE_TEARDOWN(fork)
{
	base_teardown(_metadata, &self->b);
}

#define FORK_PAGES	8

struct fork_state {
	uint8_t dev[FORK_PAGES];	/* byte the device reads per page */
	uint8_t par[FORK_PAGES];	/* byte the parent sees per page */
	bool wp[FORK_PAGES];		/* gift: write-protected at reg */
	bool moved[FORK_PAGES];		/* the parent got a new page */
	uint64_t stale;
};

/* Every page holds one byte value: build the image of per-page bytes. */
static void image_of(uint8_t *img, const uint8_t *val, size_t page)
{
	int i;

	for (i = 0; i < FORK_PAGES; i++)
		memset(img + i * page, val[i], page);
}

/*
 * The parent writes v to page i. A write-protected page is replaced by a
 * new one at the first write (stale from then on), which later writes go
 * to; any other page is written in place, where the device reads it.
 */
static void parent_write(struct fork_state *s, uint8_t *p, size_t page,
			 int i, uint8_t v)
{
	memset(p + i * page, v, page);
	if (s->wp[i] && !s->moved[i]) {
		s->moved[i] = true;
		s->stale++;
	} else if (!s->wp[i]) {
		s->dev[i] = v;
	}
	s->par[i] = v;
}

TEST_F_TIMEOUT(fork, device_sees_parent_only, 120)
{
	struct base *b = &self->b;
	struct region *r = &b->r[0];
	const size_t len = FORK_PAGES * b->page;
	struct giftdv_mr_attr attr;
	struct fork_state s = {};
	uint8_t *img;
	struct ibv_mr *mr;
	int i, shared;

	img = malloc(len);
	ASSERT_NE(NULL, img);
	r->len = len;
	r->map_len = len;
	r->map = map_anon(len);
	ASSERT_NE(NULL, r->map);
	r->p = r->map;
	if (variant->dontfork)
		ASSERT_EQ(0, madvise(r->p, len, MADV_DONTFORK));
	for (i = 0; i < FORK_PAGES; i++) {
		if (i < 4) {
			s.par[i] = 0x10 + i;
			s.dev[i] = s.par[i];
			memset(r->p + i * b->page, s.par[i], b->page);
		} else {
			touch_read(r->p + i * b->page, b->page, b->page);
		}
		s.wp[i] = variant->gift &&
			  (i >= 4 || (variant->before && !variant->dontfork));
	}

	if (variant->before)
		ASSERT_EQ(0, child_spawn(&r->ch, r->p, b->page));
	mr = ibv_reg_mr(b->pd, r->p, len, variant->gift ? GIFT : RW);
	ASSERT_NE(NULL, mr);
	if (!variant->before)
		ASSERT_EQ(0, child_spawn(&r->ch, r->p, b->page));

	for (i = shared = 0; i < FORK_PAGES; i++)
		shared += s.wp[i];
	QUERY(mr, &attr);
	EXPECT_EQ(FORK_PAGES, attr.npages);
	EXPECT_EQ(shared, attr.shared_pages);
	EXPECT_EQ(0, attr.stale_pages);
	image_of(img, s.dev, b->page);
	EXPECT_DEVICE_READS(b, mr, 0, img, len);

	/* The child writes everything (or has nothing mapped). */
	EXPECT_EQ(1, child_do(&r->ch, variant->dontfork ? 'u' : 'w', 0xcc, 0,
			      FORK_PAGES));
	EXPECT_DEVICE_READS(b, mr, 0, img, len);
	image_of(img, s.par, b->page);
	EXPECT_EQ(0, memcmp(r->p, img, len));

	if (!variant->gift) {
		/* The device writes pages 0 and 4: the parent sees it. */
		for (i = 0; i < FORK_PAGES; i += 4) {
			memset(b->buf, 0xb0 + i, b->page);
			ASSERT_EQ(IBV_WC_SUCCESS,
				  lb_post(b, IBV_WR_RDMA_WRITE, 0, b->page,
					  (uintptr_t)r->p + i * b->page,
					  mr->rkey));
			s.par[i] = 0xb0 + i;
			s.dev[i] = s.par[i];
		}
		image_of(img, s.par, b->page);
		EXPECT_EQ(0, memcmp(r->p, img, len));
		if (!variant->dontfork)
			EXPECT_EQ(1, child_do(&r->ch, 'c', 0xcc, 0,
					      FORK_PAGES));
	}

	/* The parent writes an exclusive and a zero page. */
	parent_write(&s, r->p, b->page, 1, 0xd1);
	parent_write(&s, r->p, b->page, 5, 0xd5);
	image_of(img, s.dev, b->page);
	EXPECT_DEVICE_READS(b, mr, 0, img, len);
	EXPECT_EQ(s.stale, stale_of(mr));
	if (!variant->dontfork)
		EXPECT_EQ(1, child_do(&r->ch, 'c', 0xcc, 0, FORK_PAGES));

	/* The child exits; the parent writes two more pages. */
	ASSERT_EQ(0, child_end(&r->ch, false));
	parent_write(&s, r->p, b->page, 2, 0xe2);
	parent_write(&s, r->p, b->page, 6, 0xe6);
	parent_write(&s, r->p, b->page, 1, 0xe1);
	image_of(img, s.dev, b->page);
	EXPECT_DEVICE_READS(b, mr, 0, img, len);
	EXPECT_EQ(s.stale, stale_of(mr));
	image_of(img, s.par, b->page);
	EXPECT_EQ(0, memcmp(r->p, img, len));
	if (!variant->gift) {
		memset(b->buf, 0xb3, b->page);
		ASSERT_EQ(IBV_WC_SUCCESS,
			  lb_post(b, IBV_WR_RDMA_WRITE, 0, b->page,
				  (uintptr_t)r->p + 3 * b->page, mr->rkey));
		EXPECT_TRUE(all_bytes(r->p + 3 * b->page, b->page, 0xb3));
	}
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	free(img);
}

TEST_HARNESS_MAIN
