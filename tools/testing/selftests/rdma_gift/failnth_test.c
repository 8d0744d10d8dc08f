// SPDX-License-Identifier: GPL-2.0
/*
 * Fault-injection sweep of every user-reachable gift operation that
 * allocates, the way iommufd's fail_nth selftest reaches every unwind
 * path: for n = 1, 2, ... /proc/thread-self/fail-nth makes the n-th
 * allocation (failslab or fail_page_alloc, GFP_KERNEL included) of this
 * thread fail, the operation runs, and fail-nth is read back: 0 means the
 * fault was injected. The sweep ends when the operation succeeds without
 * one; n - 1 is then its number of injection points, which the test logs.
 *
 * An attempt that fails must fail cleanly: an errno of the operation's
 * set (see the sets below), nothing held (FOLL_PIN counters, rdma_gift's
 * umem page counters, VmPin, the module's reference count and the file
 * descriptors as before; slab leaks are left to the runner's kmemleak
 * scan), its target as it was, and the device usable: the operation then
 * succeeds without injection (and is undone). An attempt that succeeds
 * although a fault was injected (an optional allocation failed) must
 * leave a working object. Destroys are swept the same way: one that fails
 * leaves the object intact, and a later destroy succeeds.
 *
 * Operations: open and close a context; alloc and dealloc a PD; reg
 * (populated, unpopulated, with a page array over a page), rereg
 * (translation; PD and access) and dereg plain MRs; reg (the same three),
 * rereg (translation; dropping and adding gift), giftdv_query_mr and
 * dereg gift MRs; create, resize and destroy CQs; create, modify and
 * destroy SRQs; create (with and without SRQ), modify RESET->INIT->RTR->
 * RTS and destroy RC QPs; create and destroy AHs; post_send (RDMA WRITE
 * of one and of four packets, RDMA READ of a gift MR, inline SEND) on a
 * connected RC pair, whose requester allocates its packets in the
 * poster's context, checked by completion and bytes; and "rdma link add"
 * and "rdma link delete" (RDMA_NLDEV_CMD_NEWLINK, _DELLINK) of a second
 * gift device on a dummy netdev.
 * Rings and page arrays come in two sizes: up to a page, where the
 * driver's own failure path runs, and larger, where kvmalloc() falls back
 * to vmalloc() (a single injected fault then never fails the allocation).
 *
 * "rdma link add" makes ~14000 allocations, nearly all of them ib_core
 * creating sysfs files (three per GID table entry), and each attempt
 * takes seconds under the debug kernel. Its sweeps are limited with the
 * fault injection stack-trace filter to allocations that have rdma_gift
 * code within LINK_DEPTH frames of the allocator: those of the driver,
 * of ib_alloc_device(), ib_device_set_netdev() and the first levels of
 * ib_register_device() (ib_clients' add() included); ~30 of them.
 *
 * Needs CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC,
 * FAULT_INJECTION_DEBUG_FS and FAULT_INJECTION_STACKTRACE_FILTER (the
 * debug kernel): without them every test fails.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

#define FAIL_NTH	"/proc/thread-self/fail-nth"
#define DEBUGFS		"/sys/kernel/debug"

/* More injection points than any swept operation has: a loop. */
#define MAX_ITER	3000
/* See the top of the file. */
#define LINK_DEPTH	8

#define RO		IBV_ACCESS_REMOTE_READ
#define RW		(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ)
#define GIFT		(IBV_ACCESS_GIFT | IBV_ACCESS_REMOTE_READ)

/*
 * MRs: SMALL pages (a page array of 128 bytes) or BIG ones: 600 pointers
 * are over a page, and 600 pages take two batches of GUP (512 pages).
 * Gift memory has the zero page in every other page, so that a gift MR
 * holds runs of referenced and of pinned pages.
 */
#define SMALL		16
#define BIG		600

/*
 * Ring sizes: up to a page (struct ib_wc is 72 bytes, a receive WQE with
 * one SGE 40, a send WQE with one SGE under 256), and over a page.
 */
#define CQE		16
#define CQE_BIG		256
#define SRQ_WR		32
#define SRQ_WR_BIG	256
#define QP_WR		16
#define QP_WR_BIG	64

/* Fault injection knobs: saved in setup, restored in teardown. */
static const char *const knobs[] = {
	"failslab/probability",
	"failslab/times",
	"failslab/verbose",
	"failslab/ignore-gfp-wait",
	"failslab/stacktrace-depth",
	"failslab/require-start",
	"failslab/require-end",
	"fail_page_alloc/probability",
	"fail_page_alloc/times",
	"fail_page_alloc/verbose",
	"fail_page_alloc/ignore-gfp-wait",
	"fail_page_alloc/ignore-gfp-highmem",
	"fail_page_alloc/min-order",
	"fail_page_alloc/stacktrace-depth",
	"fail_page_alloc/require-start",
	"fail_page_alloc/require-end",
};
#define NKNOBS		ARRAY_SIZE(knobs)

/* Every allocation failure of a verb is reported as ENOMEM... */
static const int enomem[] = { ENOMEM, 0 };
static const int enomem_efault[] = { ENOMEM, EFAULT, 0 };
/*
 * ...and of the IPv4 route lookup that resolves a RoCE destination (in
 * modify_qp to RTR and create_ah) as ENOBUFS (rt_dst_alloc() failing).
 * rdma link add and delete fail with ENOMEM only: the allocations of
 * netlink itself (ENOBUFS) are outside the stack-trace filter.
 */
static const int enomem_enobufs[] = { ENOMEM, ENOBUFS, 0 };
/*
 * ibv_open_device(): when open() of the uverbs cdev fails, libibverbs
 * (open_cdev_robust()) looks for the cdev under udev's /dev/char and
 * reports the errno of that attempt instead: see cdev_fallback().
 */
static int open_errnos[] = { ENOMEM, 0, 0 };

struct region {
	char *addr;
	size_t len;
};

FIXTURE(nth) {
	int nth_fd;
	char saved[NKNOBS][64];
	bool have_saved[NKNOBS];
	long page;
	/* The success being checked had a fault injected. */
	bool faulted;

	struct ibv_device **list;
	struct ibv_device *dev;
	struct ibv_context *ctx;
	struct ibv_comp_channel *ch;
	struct ibv_pd *pd, *pd2;
	struct ibv_cq *cq;
	struct ibv_srq *srq;
	union ibv_gid gid;
	int gid_index;

	/* Populated memory, 2 * BIG pages. */
	char *buf;
	/* Every other page the zero page, 2 * BIG pages. */
	char *gbuf;
	/* SMALL pages mapped anew for each attempt. */
	char *fresh;
	bool fresh_mixed;

	/* What the MR operations register, and rereg to. */
	struct region r, r2;
	int acc;
	/* The objects under test. */
	struct ibv_context *octx;
	struct ibv_pd *opd;
	struct ibv_mr *mr;
	int access;		/* of mr */
	struct ibv_cq *ocq;
	int cqe;		/* of ocq; what cq is resized to */
	struct ibv_srq *osrq;
	int srq_wr;		/* of osrq */
	struct ibv_qp *qp;
	int qp_wr;		/* of qp */
	struct ibv_ah *ah;

	/* Data path: qa sends to qb, both on cq */
	struct ibv_qp *qa, *qb;
	char *xbuf;
	struct ibv_mr *src_mr, *dst_mr, *gift_mr;
	uint32_t seq;		/* wr_id and data pattern of the attempt */
	size_t xlen;		/* bytes moved */
	bool recv_posted;

	/* rdma link add and delete */
	char netdev[16];
	char link[32];
	int nl_fd;
	int link_index;
	int no_uverbs;
};

typedef FIXTURE_DATA(nth) fx_t;

/* One swept operation. Every callback returns 0 or a positive errno. */
struct op {
	/* Before every attempt, e.g. the object a destroy will destroy. */
	int (*prep)(fx_t *f);
	/* The operation; runs armed: no syscall may come before it. */
	int (*run)(fx_t *f);
	/* After a success: what it made works. */
	int (*ok)(fx_t *f);
	/* After a failure: its target is as before, and works. */
	int (*intact)(fx_t *f);
	/* Undoes a success; NULL for destroys. */
	int (*undo)(fx_t *f);
	/* The errnos a failure may report, 0-terminated. */
	const int *errnos;
};

/* fail-nth */

static int nth_arm(int fd, unsigned int n)
{
	char s[16];
	int len = snprintf(s, sizeof(s), "%u", n);

	return pwrite(fd, s, len, 0) == len ? 0 : -1;
}

/*
 * Disarms fail-nth and returns what was left of it: 0 when the fault was
 * injected, -1 on error. pread() and pwrite() of fail-nth allocate
 * nothing, so no fault lands here.
 */
static long nth_disarm(int fd)
{
	char s[16] = "";
	ssize_t n = pread(fd, s, sizeof(s) - 1, 0);

	if (pwrite(fd, "0", 1, 0) != 1 || n <= 0)
		return -1;
	return strtol(s, NULL, 10);
}

static int knob_set(const char *attr, const char *knob, const char *fmt,
		    unsigned long val)
{
	char path[128];

	snprintf(path, sizeof(path), DEBUGFS "/%s/%s", attr, knob);
	return gift_write_file(path, fmt, val);
}

/* What must not leak */

struct snap {
	long long pins;		/* nr_foll_pin_acquired - _released */
	long pinned;		/* rdma_gift/umem_pages */
	long referenced;
	long vm_pin_kb;		/* VmPin of /proc/self/status */
	long refcnt;		/* /sys/module/rdma_gift/refcnt */
	long fds;		/* open file descriptors */
};

static long vm_pin_kb(void)
{
	char buf[8192], *p;

	if (gift_read_file("/proc/self/status", buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "\nVmPin:");
	return p ? strtol(p + 7, NULL, 10) : -1;
}

static long nr_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int snap_take(struct snap *s)
{
	long long acq, rel;

	if (gift_foll_pins(&acq, &rel) ||
	    gift_umem_pages(&s->pinned, &s->referenced))
		return -1;
	s->pins = acq - rel;
	s->vm_pin_kb = vm_pin_kb();
	s->refcnt = gift_read_long("/sys/module/rdma_gift/refcnt");
	s->fds = nr_fds();
	return s->vm_pin_kb < 0 || s->refcnt < 0 || s->fds < 0 ? -1 : 0;
}

static void snap_check(struct __test_metadata *_metadata,
		       const struct snap *base, const char *op, int n,
		       const char *when)
{
	struct snap now;

	ASSERT_EQ(0, snap_take(&now));
	ASSERT_EQ(base->pins, now.pins)
		TH_LOG("%s, n=%d, %s: FOLL_PIN pins", op, n, when);
	ASSERT_EQ(base->pinned, now.pinned)
		TH_LOG("%s, n=%d, %s: umem pinned pages", op, n, when);
	ASSERT_EQ(base->referenced, now.referenced)
		TH_LOG("%s, n=%d, %s: umem referenced pages", op, n, when);
	ASSERT_EQ(base->vm_pin_kb, now.vm_pin_kb)
		TH_LOG("%s, n=%d, %s: VmPin", op, n, when);
	ASSERT_EQ(base->refcnt, now.refcnt)
		TH_LOG("%s, n=%d, %s: rdma_gift refcnt", op, n, when);
	ASSERT_EQ(base->fds, now.fds)
		TH_LOG("%s, n=%d, %s: file descriptors", op, n, when);
}

static bool errno_in(const int *set, int err)
{
	for (; *set; set++)
		if (*set == err)
			return true;
	return false;
}

/*
 * The sweep. The operation runs once unarmed first, so that the library
 * and the page tables it touches are warm and the injection points are
 * the operation's own. The baseline is the state with the operation
 * undone (a destroy: done); a failed attempt must leave the state it
 * found, after prep.
 */
static void sweep(struct __test_metadata *_metadata, fx_t *f,
		  const struct op *op, const char *name)
{
	long long start = gift_now_us();
	int n, err, failed = 0, tolerated = 0;
	struct snap base, pre;
	long left;

	f->faulted = false;
	if (op->prep)
		ASSERT_EQ(0, op->prep(f)) TH_LOG("%s: prep", name);
	ASSERT_EQ(0, op->run(f)) TH_LOG("%s: warm-up", name);
	if (op->ok)
		ASSERT_EQ(0, op->ok(f)) TH_LOG("%s: warm-up check", name);
	if (op->undo)
		ASSERT_EQ(0, op->undo(f)) TH_LOG("%s: warm-up undo", name);
	ASSERT_EQ(0, snap_take(&base));
	pre = base;

	for (n = 1;; n++) {
		ASSERT_LT(n, MAX_ITER) TH_LOG("%s: still failing", name);
		if (op->prep) {
			ASSERT_EQ(0, op->prep(f))
				TH_LOG("%s, n=%d: prep", name, n);
			ASSERT_EQ(0, snap_take(&pre));
		}

		ASSERT_EQ(0, nth_arm(f->nth_fd, n));
		err = op->run(f);
		left = nth_disarm(f->nth_fd);
		ASSERT_LE(0, left);

		if (!err) {
			f->faulted = !left;
			if (op->ok)
				ASSERT_EQ(0, op->ok(f))
					TH_LOG("%s, n=%d: succeeded %s a fault, does not work",
					       name, n, left ? "without" : "despite");
			f->faulted = false;
			if (op->undo)
				ASSERT_EQ(0, op->undo(f))
					TH_LOG("%s, n=%d: undo", name, n);
			snap_check(_metadata, &base, name, n, "after success");
			if (left)
				break;
			tolerated++;
			continue;
		}

		failed++;
		ASSERT_EQ(0, left)
			TH_LOG("%s, n=%d: failed with %s, no fault injected",
			       name, n, strerror(err));
		EXPECT_TRUE(errno_in(op->errnos, err))
			TH_LOG("%s, n=%d: failed with %s (%d)", name, n,
			       strerror(err), err);
		if (op->intact)
			ASSERT_EQ(0, op->intact(f))
				TH_LOG("%s, n=%d: failed (%s), target changed",
				       name, n, strerror(err));
		snap_check(_metadata, &pre, name, n, "after failure");

		/* The device is usable: without injection it succeeds. */
		err = op->run(f);
		ASSERT_EQ(0, err)
			TH_LOG("%s, n=%d: fails again without injection: %s",
			       name, n, strerror(err));
		if (op->ok)
			ASSERT_EQ(0, op->ok(f))
				TH_LOG("%s, n=%d: retry does not work", name, n);
		if (op->undo)
			ASSERT_EQ(0, op->undo(f))
				TH_LOG("%s, n=%d: retry undo", name, n);
		snap_check(_metadata, &base, name, n, "after retry");
	}
	TH_LOG("%s: %d injection points: %d failed cleanly, %d tolerated (%.1f s)",
	       name, n - 1, failed, tolerated,
	       (gift_now_us() - start) / 1e6);
}

/* Memory */

static char *map_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Small pages only: a THP would be one page for GUP. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* Even pages written (private pages), odd pages read (the zero page). */
static void fill_mixed(char *p, size_t len, long page)
{
	size_t off;

	for (off = 0; off < len; off += page) {
		if ((off / page) % 2)
			(void)*(volatile char *)(p + off);
		else
			memset(p + off, gift_pat(off, 7) | 1, page);
	}
}

/* QP state changes, to a QP on the device's IPv4 GID */

static int qp_to_init(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ,
	};

	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			     IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
}

static void ah_attr(fx_t *f, struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof(*ah));
	ah->is_global = 1;
	ah->port_num = 1;
	ah->grh.dgid = f->gid;
	ah->grh.sgid_index = f->gid_index;
	ah->grh.hop_limit = 64;
}

static int qp_to_rtr(fx_t *f, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_1024,
		.dest_qp_num = dqpn, .rq_psn = 0x123456,
		.max_dest_rd_atomic = 4, .min_rnr_timer = 12,
	};

	ah_attr(f, &a.ah_attr);
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV |
			     IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			     IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			     IBV_QP_MIN_RNR_TIMER);
}

/*
 * A lost packet is sent again after the timeout: 4.096 us << 14, 67 ms,
 * stretched on slow kernels, where late ACKs would use up the retries.
 */
static int qp_to_rts(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTS, .sq_psn = 0x123456,
		.timeout = gift_slow_qp_timeout(14),
		.retry_cnt = 7, .rnr_retry = 7, .max_rd_atomic = 4,
	};

	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			     IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* Contexts */

static int ctx_open(fx_t *f)
{
	f->octx = ibv_open_device(f->dev);
	return f->octx ? 0 : errno;
}

static int ctx_close(fx_t *f)
{
	int ret = ibv_close_device(f->octx);

	if (!ret)
		f->octx = NULL;
	return ret ? EIO : 0;
}

static int ctx_works(fx_t *f)
{
	struct ibv_port_attr pa;
	struct ibv_pd *pd;

	if (ibv_query_port(f->octx, 1, &pa) || pa.state != IBV_PORT_ACTIVE)
		return EIO;
	pd = ibv_alloc_pd(f->octx);
	if (!pd)
		return errno;
	return ibv_dealloc_pd(pd);
}

/*
 * The errno libibverbs reports when open() of a uverbs cdev failed: that
 * of the first failing step of its /dev/char fallback, inotify_init1()
 * (ENOSYS without CONFIG_INOTIFY_USER, as in the debug kernel) or
 * inotify_add_watch() on /dev/char/ (ENOENT without udev). 0 when both
 * work: the fallback then waits for the cdev, which the test does not
 * expect.
 */
static int cdev_fallback(void)
{
	int fd = inotify_init1(IN_CLOEXEC), err = 0;

	if (fd < 0)
		return errno;
	if (inotify_add_watch(fd, "/dev/char/", IN_CREATE) < 0)
		err = errno;
	close(fd);
	return err;
}

/*
 * A context holding an object of each kind, with a QP in RTS and a
 * posted receive: closing it destroys them all (uverbs_destroy_ufile_hw()).
 */
static int ctx_open_full(fx_t *f)
{
	struct ibv_qp_init_attr init = { .qp_type = IBV_QPT_RC };
	struct ibv_srq_init_attr sinit = {
		.attr = { .max_wr = SRQ_WR, .max_sge = 1 },
	};
	struct ibv_sge sge = { .addr = (uintptr_t)f->buf, .length = 64 };
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	int ret;

	ret = ctx_open(f);
	if (ret)
		return ret;
	pd = ibv_alloc_pd(f->octx);
	if (!pd)
		return errno;
	mr = ibv_reg_mr(pd, f->buf, SMALL * f->page, RW);
	init.send_cq = ibv_create_cq(f->octx, CQE, NULL, NULL, 0);
	init.recv_cq = init.send_cq;
	init.srq = ibv_create_srq(pd, &sinit);
	if (!mr || !init.send_cq || !init.srq)
		return EIO;
	init.cap.max_send_wr = QP_WR;
	init.cap.max_send_sge = 1;
	f->qp = ibv_create_qp(pd, &init);
	if (!f->qp)
		return errno;
	sge.lkey = mr->lkey;
	ret = qp_to_init(f->qp);
	if (!ret)
		ret = qp_to_rtr(f, f->qp, f->qp->qp_num);
	if (!ret)
		ret = qp_to_rts(f->qp);
	if (!ret)
		ret = ibv_post_srq_recv(init.srq, &wr, &bad);
	/* The close destroys them: the fixture must not. */
	f->qp = NULL;
	return ret;
}

static const struct op op_ctx_open = {
	.run = ctx_open, .ok = ctx_works, .undo = ctx_close,
	.errnos = open_errnos,
};

static const struct op op_ctx_close = {
	.prep = ctx_open, .run = ctx_close, .intact = ctx_works,
	.errnos = enomem,
};

static const struct op op_ctx_close_full = {
	.prep = ctx_open_full, .run = ctx_close, .errnos = enomem,
};

/* PDs */

static int pd_alloc(fx_t *f)
{
	f->opd = ibv_alloc_pd(f->ctx);
	return f->opd ? 0 : errno;
}

static int pd_dealloc(fx_t *f)
{
	int ret = ibv_dealloc_pd(f->opd);

	if (!ret)
		f->opd = NULL;
	return ret;
}

/* The PD takes an MR. */
static int pd_works(fx_t *f)
{
	struct ibv_mr *mr = ibv_reg_mr(f->opd, f->buf, f->page, RW);

	if (!mr)
		return errno;
	return ibv_dereg_mr(mr);
}

static const struct op op_pd_alloc = {
	.run = pd_alloc, .ok = pd_works, .undo = pd_dealloc,
	.errnos = enomem,
};

static const struct op op_pd_dealloc = {
	.prep = pd_alloc, .run = pd_dealloc, .intact = pd_works,
	.errnos = enomem,
};

/* MRs: of f->acc over f->r, rereg'd to f->r2 */

static int mr_reg(fx_t *f)
{
	f->mr = ibv_reg_mr(f->pd, f->r.addr, f->r.len, f->acc);
	if (!f->mr)
		return errno;
	f->access = f->acc;
	return 0;
}

static int mr_rereg(fx_t *f, int flags, struct ibv_pd *pd,
		    const struct region *r, int access)
{
	if (ibv_rereg_mr(f->mr, flags, pd, r ? r->addr : NULL,
			 r ? r->len : 0, access))
		return errno ? errno : EIO;
	if (flags & IBV_REREG_MR_CHANGE_ACCESS)
		f->access = access;
	return 0;
}

static int mr_dereg(fx_t *f)
{
	int ret = ibv_dereg_mr(f->mr);

	if (!ret)
		f->mr = NULL;
	return ret;
}

/*
 * The MR is valid in the driver: a rereg that changes nothing goes
 * through gift_rereg_user_mr(), which looks at the pinned memory.
 */
static int mr_works(fx_t *f)
{
	if (!f->mr->lkey || f->mr->lkey != f->mr->rkey)
		return EIO;
	return mr_rereg(f, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL, f->access);
}

/* The MR is as registered, and works. */
static int mr_as_reg(fx_t *f)
{
	if (f->mr->pd != f->pd || f->mr->addr != f->r.addr ||
	    f->mr->length != f->r.len || f->access != f->acc)
		return EIO;
	return mr_works(f);
}

/* SMALL fresh pages, untouched or mixed, for each attempt. */
static int fresh_map(fx_t *f)
{
	size_t len = SMALL * f->page;

	if (f->fresh)
		munmap(f->fresh, len);
	f->fresh = map_anon(len);
	if (!f->fresh)
		return ENOMEM;
	if (f->fresh_mixed)
		fill_mixed(f->fresh, len, f->page);
	f->r.addr = f->fresh;
	f->r.len = len;
	return 0;
}

static int fresh_reg(fx_t *f)
{
	int ret = fresh_map(f);

	return ret ? ret : mr_reg(f);
}

static int mr_rereg_trans(fx_t *f)
{
	return mr_rereg(f, IBV_REREG_MR_CHANGE_TRANSLATION, NULL, &f->r2, 0);
}

static int mr_rereg_trans_back(fx_t *f)
{
	return mr_rereg(f, IBV_REREG_MR_CHANGE_TRANSLATION, NULL, &f->r, 0);
}

/* Narrowing the access needs no new pin: this is uverbs' PD handling. */
static int mr_rereg_pd(fx_t *f)
{
	return mr_rereg(f, IBV_REREG_MR_CHANGE_PD | IBV_REREG_MR_CHANGE_ACCESS,
			f->pd2, NULL, RO);
}

static int mr_rereg_pd_back(fx_t *f)
{
	return mr_rereg(f, IBV_REREG_MR_CHANGE_PD | IBV_REREG_MR_CHANGE_ACCESS,
			f->pd, NULL, f->acc);
}

/* An ODP MR stays ODP: narrowing it keeps IBV_ACCESS_ON_DEMAND. */
static int mr_rereg_pd_odp(fx_t *f)
{
	return mr_rereg(f, IBV_REREG_MR_CHANGE_PD | IBV_REREG_MR_CHANGE_ACCESS,
			f->pd2, NULL, RO | IBV_ACCESS_ON_DEMAND);
}

/* A synchronous write prefetch of the whole ODP MR: faults every page. */
static int mr_prefetch(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->r.addr, .length = f->r.len,
		.lkey = f->mr->lkey,
	};

	return ibv_advise_mr(f->pd, IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE,
			     IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
}

/* Dropping or adding gift takes the range anew (gift_rereg_user_mr()). */
static int mr_toggle_gift(fx_t *f)
{
	return mr_rereg(f, IBV_REREG_MR_CHANGE_ACCESS, NULL, NULL,
			f->acc ^ IBV_ACCESS_GIFT);
}

static int mr_toggled(fx_t *f)
{
	return f->access == (f->acc ^ IBV_ACCESS_GIFT) ? mr_works(f) : EIO;
}

static int mr_query(fx_t *f)
{
	struct giftdv_mr_attr attr = {};
	int ret = giftdv_query_mr(f->mr, &attr);

	if (ret)
		return ret;
	/* Of a gift MR over mixed memory: every other page referenced. */
	return attr.npages == f->r.len / f->page &&
	       attr.shared_pages == attr.npages / 2 && !attr.stale_pages ?
	       0 : EIO;
}

static const struct op op_mr_reg = {
	.run = mr_reg, .ok = mr_works, .undo = mr_dereg, .errnos = enomem,
};

static const struct op op_mr_reg_fresh = {
	.prep = fresh_map, .run = mr_reg, .ok = mr_works, .undo = mr_dereg,
	.errnos = enomem,
};

static const struct op op_mr_rereg_trans = {
	.run = mr_rereg_trans, .ok = mr_works, .intact = mr_as_reg,
	.undo = mr_rereg_trans_back, .errnos = enomem,
};

static const struct op op_mr_rereg_pd = {
	.run = mr_rereg_pd, .ok = mr_works, .intact = mr_as_reg,
	.undo = mr_rereg_pd_back, .errnos = enomem,
};

/* Fresh memory each time: dropping gift unshares the zero pages. */
static const struct op op_mr_toggle_gift = {
	.prep = fresh_reg, .run = mr_toggle_gift, .ok = mr_toggled,
	.intact = mr_as_reg, .undo = mr_dereg, .errnos = enomem,
};

static const struct op op_mr_query = {
	.run = mr_query, .ok = mr_as_reg, .intact = mr_as_reg,
	.errnos = enomem,
};

static const struct op op_mr_rereg_pd_odp = {
	.run = mr_rereg_pd_odp, .ok = mr_works, .intact = mr_as_reg,
	.undo = mr_rereg_pd_back, .errnos = enomem,
};

/* A fault that cannot allocate fails (hmm_range_fault(): -EFAULT). */
static const struct op op_mr_prefetch = {
	.run = mr_prefetch, .ok = mr_works, .intact = mr_as_reg,
	.errnos = enomem_efault,
};

static const struct op op_mr_dereg = {
	.prep = mr_reg, .run = mr_dereg, .intact = mr_as_reg,
	.errnos = enomem,
};

/* CQs */

static int cq_create(fx_t *f)
{
	f->ocq = ibv_create_cq(f->ctx, f->cqe, NULL, f->ch, 0);
	return f->ocq ? 0 : errno;
}

static int cq_destroy(fx_t *f)
{
	int ret = ibv_destroy_cq(f->ocq);

	if (!ret)
		f->ocq = NULL;
	return ret;
}

static int cq_works(struct ibv_cq *cq, int cqe)
{
	struct ibv_wc wc;

	if (cq->cqe != cqe || ibv_req_notify_cq(cq, 0))
		return EIO;
	return ibv_poll_cq(cq, 1, &wc) ? EIO : 0;
}

static int ocq_works(fx_t *f)
{
	return cq_works(f->ocq, f->cqe);
}

/* The fixture's CQ, CQE entries, resized to f->cqe and back. */
static int cq_resize(fx_t *f)
{
	return ibv_resize_cq(f->cq, f->cqe);
}

static int cq_resize_back(fx_t *f)
{
	return ibv_resize_cq(f->cq, CQE);
}

static int cq_resized(fx_t *f)
{
	return cq_works(f->cq, f->cqe);
}

static int cq_unresized(fx_t *f)
{
	return cq_works(f->cq, CQE);
}

static const struct op op_cq_create = {
	.run = cq_create, .ok = ocq_works, .undo = cq_destroy,
	.errnos = enomem,
};

static const struct op op_cq_resize = {
	.run = cq_resize, .ok = cq_resized, .intact = cq_unresized,
	.undo = cq_resize_back, .errnos = enomem,
};

static const struct op op_cq_destroy = {
	.prep = cq_create, .run = cq_destroy, .intact = ocq_works,
	.errnos = enomem,
};

/* SRQs */

static int srq_create(fx_t *f)
{
	struct ibv_srq_init_attr init = {
		.attr = { .max_wr = f->srq_wr, .max_sge = 1 },
	};

	f->osrq = ibv_create_srq(f->pd, &init);
	return f->osrq ? 0 : errno;
}

static int srq_destroy(fx_t *f)
{
	int ret = ibv_destroy_srq(f->osrq);

	if (!ret)
		f->osrq = NULL;
	return ret;
}

static int srq_is(struct ibv_srq *srq, uint32_t max_wr, uint32_t limit)
{
	struct ibv_srq_attr a;
	int ret = ibv_query_srq(srq, &a);

	if (ret)
		return ret;
	return a.max_wr == max_wr && a.srq_limit == limit ? 0 : EIO;
}

/* Takes a receive WQE and reports its size. */
static int osrq_works(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->buf, .length = 64, .lkey = 1,
	};
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 }, *bad;
	int ret = ibv_post_srq_recv(f->osrq, &wr, &bad);

	return ret ? ret : srq_is(f->osrq, f->srq_wr, 0);
}

/* The fixture's SRQ, SRQ_WR entries: resized and armed in one go. */
static int srq_modify(fx_t *f)
{
	struct ibv_srq_attr a = { .max_wr = 2 * SRQ_WR, .srq_limit = 8 };

	return ibv_modify_srq(f->srq, &a, IBV_SRQ_MAX_WR | IBV_SRQ_LIMIT);
}

static int srq_modify_back(fx_t *f)
{
	struct ibv_srq_attr a = { .max_wr = SRQ_WR, .srq_limit = 0 };

	return ibv_modify_srq(f->srq, &a, IBV_SRQ_MAX_WR | IBV_SRQ_LIMIT);
}

static int srq_modified(fx_t *f)
{
	return srq_is(f->srq, 2 * SRQ_WR, 8);
}

/* Both changes or neither. */
static int srq_unmodified(fx_t *f)
{
	return srq_is(f->srq, SRQ_WR, 0);
}

static const struct op op_srq_create = {
	.run = srq_create, .ok = osrq_works, .undo = srq_destroy,
	.errnos = enomem,
};

static const struct op op_srq_modify = {
	.run = srq_modify, .ok = srq_modified, .intact = srq_unmodified,
	.undo = srq_modify_back, .errnos = enomem,
};

static const struct op op_srq_destroy = {
	.prep = srq_create, .run = srq_destroy, .intact = osrq_works,
	.errnos = enomem,
};

/* RC QPs, connected to themselves through the device's IPv4 GID */

static int qp_create_with(fx_t *f, struct ibv_srq *srq)
{
	struct ibv_qp_init_attr init = {
		.send_cq = f->cq, .recv_cq = f->cq, .srq = srq,
		.qp_type = IBV_QPT_RC,
		.cap = {
			.max_send_wr = f->qp_wr, .max_send_sge = 1,
			.max_recv_wr = srq ? 0 : f->qp_wr,
			.max_recv_sge = srq ? 0 : 1,
		},
	};

	f->qp = ibv_create_qp(f->pd, &init);
	return f->qp ? 0 : errno;
}

static int qp_create(fx_t *f)
{
	return qp_create_with(f, NULL);
}

static int qp_create_srq(fx_t *f)
{
	return qp_create_with(f, f->srq);
}

static int qp_destroy(fx_t *f)
{
	int ret = ibv_destroy_qp(f->qp);

	if (!ret)
		f->qp = NULL;
	return ret;
}

static int qp_in(fx_t *f, enum ibv_qp_state state)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;
	int ret = ibv_query_qp(f->qp, &a, IBV_QP_STATE, &init);

	if (ret)
		return ret;
	return a.qp_state == state && a.cap.max_send_wr == f->qp_wr ?
	       0 : EIO;
}

static int qp_init(fx_t *f)
{
	return qp_to_init(f->qp);
}

static int qp_rtr(fx_t *f)
{
	return qp_to_rtr(f, f->qp, f->qp->qp_num);
}

static int qp_rts(fx_t *f)
{
	return qp_to_rts(f->qp);
}

static int qp_reset(fx_t *f)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	return ibv_modify_qp(f->qp, &a, IBV_QP_STATE);
}

static int qp_is_reset(fx_t *f) { return qp_in(f, IBV_QPS_RESET); }
static int qp_is_init(fx_t *f) { return qp_in(f, IBV_QPS_INIT); }
static int qp_is_rtr(fx_t *f) { return qp_in(f, IBV_QPS_RTR); }
static int qp_is_rts(fx_t *f) { return qp_in(f, IBV_QPS_RTS); }

static int qp_back_to_init(fx_t *f)
{
	int ret = qp_reset(f);

	return ret ? ret : qp_init(f);
}

static int qp_back_to_rtr(fx_t *f)
{
	int ret = qp_back_to_init(f);

	return ret ? ret : qp_rtr(f);
}

/* A QP in RTS, for destroy. */
static int qp_create_rts(fx_t *f)
{
	int ret = qp_create(f);

	if (!ret)
		ret = qp_init(f);
	if (!ret)
		ret = qp_rtr(f);
	return ret ? ret : qp_rts(f);
}

static const struct op op_qp_create = {
	.run = qp_create, .ok = qp_is_reset, .undo = qp_destroy,
	.errnos = enomem,
};

static const struct op op_qp_create_srq = {
	.run = qp_create_srq, .ok = qp_is_reset, .undo = qp_destroy,
	.errnos = enomem,
};

static const struct op op_qp_init = {
	.run = qp_init, .ok = qp_is_init, .intact = qp_is_reset,
	.undo = qp_reset, .errnos = enomem,
};

static const struct op op_qp_rtr = {
	.run = qp_rtr, .ok = qp_is_rtr, .intact = qp_is_init,
	.undo = qp_back_to_init, .errnos = enomem_enobufs,
};

static const struct op op_qp_rts = {
	.run = qp_rts, .ok = qp_is_rts, .intact = qp_is_rtr,
	.undo = qp_back_to_rtr, .errnos = enomem,
};

static const struct op op_qp_destroy = {
	.prep = qp_create_rts, .run = qp_destroy, .intact = qp_is_rts,
	.errnos = enomem,
};

/* AHs */

static int ah_create(fx_t *f)
{
	struct ibv_ah_attr a;

	ah_attr(f, &a);
	f->ah = ibv_create_ah(f->pd, &a);
	return f->ah ? 0 : errno;
}

static int ah_destroy(fx_t *f)
{
	int ret = ibv_destroy_ah(f->ah);

	if (!ret)
		f->ah = NULL;
	return ret;
}

static const struct op op_ah_create = {
	.run = ah_create, .undo = ah_destroy, .errnos = enomem_enobufs,
};

static const struct op op_ah_destroy = {
	.prep = ah_create, .run = ah_destroy, .errnos = enomem,
};

/*
 * The data path: the requester runs in the poster's context (user QPs
 * send at once when the engine is idle), so its packet allocations are
 * swept too. Whatever fails there, the work request must complete, and
 * move the right bytes: a lost packet is sent again after the timeout.
 */

#define XBUF		(48 * 1024)
#define X_SRC		0		/* WRITE and SEND source */
#define X_DST		(16 * 1024)	/* WRITE, READ and receive target */
#define X_GIFT		(32 * 1024)	/* qb's gift MR, what READ reads */
#define WAIT_MS		10000

/* Waits for the completion of wr_id on cq: 0, EIO or ETIMEDOUT. */
static int wait_wc(fx_t *f, uint64_t wr_id, enum ibv_wc_opcode opcode,
		   uint32_t byte_len)
{
	long long end = gift_now_us() + WAIT_MS * 1000LL * gift_slow();
	struct ibv_wc wc;
	int n;

	do {
		n = ibv_poll_cq(f->cq, 1, &wc);
		if (n < 0)
			return EIO;
		if (n)
			return wc.wr_id == wr_id && wc.status == IBV_WC_SUCCESS &&
			       wc.opcode == opcode &&
			       (opcode != IBV_WC_RECV || wc.byte_len == byte_len) ?
			       0 : EIO;
		usleep(1000);
	} while (gift_now_us() < end);
	return ETIMEDOUT;
}

/* A new pattern to move, and a cleared destination. */
static int x_prep(fx_t *f)
{
	size_t i;

	f->seq++;
	for (i = 0; i < f->xlen; i++)
		f->xbuf[X_SRC + i] = gift_pat(i, f->seq);
	memset(f->xbuf + X_DST, 0, f->xlen);
	return 0;
}

static int post_write(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->xbuf + X_SRC, .length = f->xlen,
		.lkey = f->src_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = f->seq, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = {
			.remote_addr = (uintptr_t)f->xbuf + X_DST,
			.rkey = f->dst_mr->rkey,
		},
	}, *bad;

	return ibv_post_send(f->qa, &wr, &bad);
}

static int written(fx_t *f)
{
	int ret = wait_wc(f, f->seq, IBV_WC_RDMA_WRITE, 0);

	if (ret)
		return ret;
	return memcmp(f->xbuf + X_DST, f->xbuf + X_SRC, f->xlen) ? EIO : 0;
}

/* Reads the gift MR, pattern 0, into the destination. */
static int post_read(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->xbuf + X_DST, .length = f->xlen,
		.lkey = f->dst_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = f->seq, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_READ, .send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = {
			.remote_addr = (uintptr_t)f->xbuf + X_GIFT,
			.rkey = f->gift_mr->rkey,
		},
	}, *bad;

	return ibv_post_send(f->qa, &wr, &bad);
}

static int read_done(fx_t *f)
{
	int ret = wait_wc(f, f->seq, IBV_WC_RDMA_READ, 0);

	if (ret)
		return ret;
	return memcmp(f->xbuf + X_DST, f->xbuf + X_GIFT, f->xlen) ? EIO : 0;
}

/* An inline SEND: the driver stages user inline data in a buffer. */
static int x_prep_send(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->xbuf + X_DST, .length = f->xlen,
		.lkey = f->dst_mr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = 0, .sg_list = &sge, .num_sge = 1,
	}, *bad;
	int ret;

	x_prep(f);
	if (f->recv_posted)
		return 0;
	ret = ibv_post_recv(f->qb, &wr, &bad);
	f->recv_posted = !ret;
	return ret;
}

static int post_send_inline(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->xbuf + X_SRC, .length = f->xlen,
	};
	struct ibv_send_wr wr = {
		.wr_id = f->seq, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE,
	}, *bad;

	return ibv_post_send(f->qa, &wr, &bad);
}

/* A 4 KiB SEND of the source (four packets at MTU 1024). */
static int post_send_plain(fx_t *f)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)f->xbuf + X_SRC, .length = f->xlen,
		.lkey = f->src_mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = f->seq, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	return ibv_post_send(f->qa, &wr, &bad);
}

/* Both completions, in either order, and the bytes. */
static int received(fx_t *f)
{
	long long end = gift_now_us() + WAIT_MS * 1000LL * gift_slow();
	bool sent = false, recvd = false;
	struct ibv_wc wc;
	int n;

	while (!(sent && recvd) && gift_now_us() < end) {
		n = ibv_poll_cq(f->cq, 1, &wc);
		if (n < 0 || (n && wc.status != IBV_WC_SUCCESS))
			return EIO;
		if (!n) {
			usleep(1000);
			continue;
		}
		if (wc.opcode == IBV_WC_SEND && wc.wr_id == f->seq)
			sent = true;
		else if (wc.opcode == IBV_WC_RECV && wc.byte_len == f->xlen)
			recvd = true;
		else
			return EIO;
	}
	if (!(sent && recvd))
		return ETIMEDOUT;
	f->recv_posted = false;
	return memcmp(f->xbuf + X_DST, f->xbuf + X_SRC, f->xlen) ? EIO : 0;
}

/* A post that failed posted nothing. */
static int nothing_posted(fx_t *f)
{
	struct ibv_wc wc;

	usleep(100000);
	return ibv_poll_cq(f->cq, 1, &wc) ? EIO : 0;
}

static const struct op op_post_write = {
	.prep = x_prep, .run = post_write, .ok = written,
	.intact = nothing_posted, .errnos = enomem,
};

static const struct op op_post_read = {
	.prep = x_prep, .run = post_read, .ok = read_done,
	.intact = nothing_posted, .errnos = enomem,
};

static const struct op op_post_send_inline = {
	.prep = x_prep_send, .run = post_send_inline, .ok = received,
	.intact = nothing_posted, .errnos = enomem,
};

/* rdma link add, over a netlink socket opened beforehand */

static void nl_put(struct nlmsghdr *nlh, int type, const void *data,
		   size_t len)
{
	struct nlattr *a = (void *)nlh + NLMSG_ALIGN(nlh->nlmsg_len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void nl_put_str(struct nlmsghdr *nlh, int type, const char *s)
{
	nl_put(nlh, type, s, strlen(s) + 1);
}

/* Sends an RDMA_NL_NLDEV request: a positive errno of sendto(), or 0. */
static int nl_send(int fd, struct nlmsghdr *nlh, int cmd, int flags)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	nlh->nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, cmd);
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return sendto(fd, nlh, nlh->nlmsg_len, 0, (void *)&sa,
		      sizeof(sa)) < 0 ? errno : 0;
}

/* The answer to a request sent with NLM_F_ACK: 0 or a positive errno. */
static int nl_ack(int fd)
{
	union {
		struct nlmsghdr nlh;
		char buf[512];
	} ans;
	ssize_t n = recv(fd, &ans, sizeof(ans), 0);

	if (n < 0)
		return errno;
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr)) ||
	    ans.nlh.nlmsg_type != NLMSG_ERROR)
		return EPROTO;
	return -((struct nlmsgerr *)NLMSG_DATA(&ans.nlh))->error;
}

/* The ib_device index of the device called name, or -1. */
static int nl_dev_index(int fd, const char *name)
{
	static char buf[32768];
	struct nlmsghdr req = { .nlmsg_len = NLMSG_LENGTH(0) }, *h;
	int found = -1, index, len;
	const char *dev;
	struct nlattr *a;
	ssize_t n;

	if (nl_send(fd, &req, RDMA_NLDEV_CMD_GET, NLM_F_DUMP))
		return -1;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return -1;
		for (h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return found;
			if (h->nlmsg_type == NLMSG_ERROR)
				return -1;
			index = -1;
			dev = NULL;
			len = NLMSG_PAYLOAD(h, 0);
			for (a = NLMSG_DATA(h); len >= NLA_HDRLEN &&
			     a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
			     len -= NLA_ALIGN(a->nla_len),
			     a = (void *)a + NLA_ALIGN(a->nla_len)) {
				if (a->nla_type == RDMA_NLDEV_ATTR_DEV_INDEX)
					index = *(uint32_t *)((char *)a +
							      NLA_HDRLEN);
				if (a->nla_type == RDMA_NLDEV_ATTR_DEV_NAME)
					dev = (char *)a + NLA_HDRLEN;
			}
			if (dev && !strcmp(dev, name))
				found = index;
		}
	}
}

static int link_add(fx_t *f)
{
	union {
		struct nlmsghdr nlh;
		char buf[256];
	} req = { .nlh.nlmsg_len = NLMSG_LENGTH(0) };
	int ret;

	nl_put_str(&req.nlh, RDMA_NLDEV_ATTR_DEV_NAME, f->link);
	nl_put_str(&req.nlh, RDMA_NLDEV_ATTR_LINK_TYPE, "gift");
	nl_put_str(&req.nlh, RDMA_NLDEV_ATTR_NDEV_NAME, f->netdev);
	ret = nl_send(f->nl_fd, &req.nlh, RDMA_NLDEV_CMD_NEWLINK, NLM_F_ACK);
	if (ret)
		return ret;
	ret = nl_ack(f->nl_fd);
	/*
	 * netlink_ack() could not allocate the answer: the request ran and
	 * only its result was lost. A device that exists was added.
	 */
	if (ret == ENOBUFS && gift_ibdev_exists(f->link))
		return 0;
	return ret;
}

/* rdma link delete of the device f->link_index. */
static int link_del_index(fx_t *f)
{
	union {
		struct nlmsghdr nlh;
		char buf[64];
	} req = { .nlh.nlmsg_len = NLMSG_LENGTH(0) };
	uint32_t index = f->link_index;
	int ret;

	nl_put(&req.nlh, RDMA_NLDEV_ATTR_DEV_INDEX, &index, sizeof(index));
	ret = nl_send(f->nl_fd, &req.nlh, RDMA_NLDEV_CMD_DELLINK, NLM_F_ACK);
	return ret ? ret : nl_ack(f->nl_fd);
}

static int link_find(fx_t *f)
{
	f->link_index = nl_dev_index(f->nl_fd, f->link);
	return f->link_index < 0 ? ENODEV : 0;
}

static int link_del(fx_t *f)
{
	int ret = link_find(f);

	return ret ? ret : link_del_index(f);
}

static int link_add_find(fx_t *f)
{
	int ret = link_add(f);

	return ret ? ret : link_find(f);
}

static bool has_uverbs(const char *name)
{
	char path[300], dev[64];
	struct dirent *e;
	bool found = false;
	DIR *d;

	d = opendir("/sys/class/infiniband_verbs");
	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		snprintf(path, sizeof(path),
			 "/sys/class/infiniband_verbs/%s/ibdev", e->d_name);
		found = !gift_read_file(path, dev, sizeof(dev)) &&
			!strcmp(dev, name);
	}
	closedir(d);
	return found;
}

/*
 * The new device opens and takes a PD. ib_core ignores an ib_client
 * whose add() fails (add_client_context()): after a fault injected
 * there, the device is registered without that client, uverbs included.
 */
static int link_works(fx_t *f)
{
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int ret;

	if (!gift_ibdev_exists(f->link))
		return ENODEV;
	if (f->faulted && !has_uverbs(f->link)) {
		f->no_uverbs++;
		return 0;
	}
	ctx = gift_open(f->link);
	if (!ctx)
		return ENXIO;
	pd = ibv_alloc_pd(ctx);
	ret = pd ? ibv_dealloc_pd(pd) : errno;
	ibv_close_device(ctx);
	return ret;
}

static int link_absent(fx_t *f)
{
	return gift_ibdev_gone(f->link) ? 0 : EEXIST;
}

static const struct op op_link_add = {
	.run = link_add, .ok = link_works, .intact = link_absent,
	.undo = link_del, .errnos = enomem,
};

static const struct op op_link_del = {
	.prep = link_add_find, .run = link_del_index, .ok = link_absent,
	.intact = link_works, .errnos = enomem,
};

/* [start, end) of rdma_gift's .text in the kernel. */
static int gift_text(unsigned long *start, unsigned long *end)
{
	const Elf64_Ehdr *eh;
	const Elf64_Shdr *sh;
	const char *names;
	char buf[64];
	struct stat st;
	void *m;
	int fd, i;

	if (gift_read_file("/sys/module/rdma_gift/sections/.text", buf,
			   sizeof(buf)))
		return -1;
	*start = strtoul(buf, NULL, 16);
	*end = 0;
	fd = open(gift_env("GIFT_MODULE"), O_RDONLY);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st)) {
		close(fd);
		return -1;
	}
	m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	eh = m;
	sh = m + eh->e_shoff;
	names = m + sh[eh->e_shstrndx].sh_offset;
	for (i = 0; i < eh->e_shnum; i++)
		if (!strcmp(names + sh[i].sh_name, ".text"))
			*end = *start + sh[i].sh_size;
	munmap(m, st.st_size);
	return *start && *end ? 0 : -1;
}

/* The fixture */

FIXTURE_SETUP(nth)
{
	static const char *const attrs[] = { "failslab", "fail_page_alloc" };
	long pinned, referenced;
	char path[128];
	unsigned int i;

	self->nth_fd = -1;
	self->nl_fd = -1;
	self->page = sysconf(_SC_PAGESIZE);
	ASSERT_TRUE(gift_path_exists(FAIL_NTH))
		TH_LOG("no %s: the kernel lacks CONFIG_FAULT_INJECTION; this test is for the debug kernel",
		       FAIL_NTH);
	/* Mounts debugfs if it is not. */
	ASSERT_EQ(0, gift_umem_pages(&pinned, &referenced));
	for (i = 0; i < NKNOBS; i++) {
		snprintf(path, sizeof(path), DEBUGFS "/%s", knobs[i]);
		ASSERT_EQ(0, gift_read_file(path, self->saved[i],
					    sizeof(self->saved[i])))
			TH_LOG("no %s: CONFIG_FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS and FAULT_INJECTION_STACKTRACE_FILTER are needed",
			       path);
		self->have_saved[i] = true;
	}
	/*
	 * Only fail-nth injects (should_fail_ex() takes it before and
	 * regardless of the probability); GFP_KERNEL allocations, order-0
	 * and highmem pages are candidates too; no messages or stack dumps,
	 * which the runner would count as splats.
	 */
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, knob_set(attrs[i], "probability", "%lu", 0));
		ASSERT_EQ(0, knob_set(attrs[i], "verbose", "%lu", 0));
		ASSERT_EQ(0, knob_set(attrs[i], "ignore-gfp-wait", "N", 0));
	}
	ASSERT_EQ(0, knob_set(attrs[1], "ignore-gfp-highmem", "N", 0));
	ASSERT_EQ(0, knob_set(attrs[1], "min-order", "%lu", 0));
	self->nth_fd = open(FAIL_NTH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->nth_fd);
	open_errnos[1] = cdev_fallback();

	self->list = ibv_get_device_list(NULL);
	ASSERT_NE(NULL, self->list);
	for (i = 0; self->list[i]; i++)
		if (!strcmp(ibv_get_device_name(self->list[i]),
			    gift_env("GIFT_IBDEV")))
			self->dev = self->list[i];
	ASSERT_NE(NULL, self->dev);
	self->ctx = ibv_open_device(self->dev);
	ASSERT_NE(NULL, self->ctx);
	ASSERT_TRUE(gift_wait_for(gift_have_v4_gid, self->ctx, 5000));
	self->gid_index = gift_find_v4_gid(self->ctx, &self->gid);
	self->ch = ibv_create_comp_channel(self->ctx);
	ASSERT_NE(NULL, self->ch);
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	self->pd2 = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd2);
	self->cq = ibv_create_cq(self->ctx, CQE, NULL, NULL, 0);
	ASSERT_NE(NULL, self->cq);
	self->srq_wr = SRQ_WR;
	ASSERT_EQ(0, srq_create(self));
	self->srq = self->osrq;
	self->osrq = NULL;

	self->buf = map_anon(2 * BIG * self->page);
	ASSERT_NE(NULL, self->buf);
	memset(self->buf, 0x5a, 2 * BIG * self->page);
	self->gbuf = map_anon(2 * BIG * self->page);
	ASSERT_NE(NULL, self->gbuf);
	fill_mixed(self->gbuf, 2 * BIG * self->page, self->page);
}

FIXTURE_TEARDOWN(nth)
{
	char path[128];
	unsigned int i;

	if (self->nth_fd >= 0) {
		nth_disarm(self->nth_fd);
		close(self->nth_fd);
	}
	for (i = 0; i < NKNOBS; i++) {
		if (!self->have_saved[i])
			continue;
		snprintf(path, sizeof(path), DEBUGFS "/%s", knobs[i]);
		gift_write_file(path, "%s", self->saved[i]);
	}
	if (self->link[0] && gift_ibdev_exists(self->link))
		gift_link_del(self->link);
	if (self->nl_fd >= 0)
		close(self->nl_fd);
	if (self->netdev[0])
		gift_dummy_del(self->netdev);

	if (self->ah)
		ibv_destroy_ah(self->ah);
	if (self->qa)
		ibv_destroy_qp(self->qa);
	if (self->qb)
		ibv_destroy_qp(self->qb);
	if (self->src_mr)
		ibv_dereg_mr(self->src_mr);
	if (self->dst_mr)
		ibv_dereg_mr(self->dst_mr);
	if (self->gift_mr)
		ibv_dereg_mr(self->gift_mr);
	if (self->xbuf)
		munmap(self->xbuf, XBUF);
	if (self->qp)
		ibv_destroy_qp(self->qp);
	if (self->mr)
		ibv_dereg_mr(self->mr);
	if (self->ocq)
		ibv_destroy_cq(self->ocq);
	if (self->osrq)
		ibv_destroy_srq(self->osrq);
	if (self->opd)
		ibv_dealloc_pd(self->opd);
	if (self->octx)
		ibv_close_device(self->octx);
	if (self->srq)
		ibv_destroy_srq(self->srq);
	if (self->cq)
		ibv_destroy_cq(self->cq);
	if (self->pd2)
		ibv_dealloc_pd(self->pd2);
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ch)
		ibv_destroy_comp_channel(self->ch);
	if (self->ctx)
		ibv_close_device(self->ctx);
	if (self->list)
		ibv_free_device_list(self->list);
	if (self->buf)
		munmap(self->buf, 2 * BIG * self->page);
	if (self->gbuf)
		munmap(self->gbuf, 2 * BIG * self->page);
	if (self->fresh)
		munmap(self->fresh, SMALL * self->page);
}

TEST_F_TIMEOUT(nth, context, 300)
{
	sweep(_metadata, self, &op_ctx_open, "ibv_open_device");
	sweep(_metadata, self, &op_ctx_close, "ibv_close_device");
	sweep(_metadata, self, &op_ctx_close_full,
	      "ibv_close_device with objects");
}

TEST_F_TIMEOUT(nth, pd, 300)
{
	sweep(_metadata, self, &op_pd_alloc, "alloc_pd");
	sweep(_metadata, self, &op_pd_dealloc, "dealloc_pd");
}

/* Sets what the MR operations register: pages at p, and rereg to. */
static void mr_target(fx_t *f, char *p, size_t pages, int access)
{
	f->r.addr = p;
	f->r.len = pages * f->page;
	f->r2.addr = p + f->r.len;
	f->r2.len = f->r.len;
	f->acc = access;
}

TEST_F_TIMEOUT(nth, plain_mr, 300)
{
	mr_target(self, self->buf, SMALL, RW);
	sweep(_metadata, self, &op_mr_reg, "reg_mr plain");
	ASSERT_EQ(0, mr_reg(self));
	sweep(_metadata, self, &op_mr_rereg_trans, "rereg_mr plain translation");
	sweep(_metadata, self, &op_mr_rereg_pd, "rereg_mr plain pd+access");
	ASSERT_EQ(0, mr_dereg(self));
	sweep(_metadata, self, &op_mr_dereg, "dereg_mr plain");

	mr_target(self, self->buf, BIG, RW);
	sweep(_metadata, self, &op_mr_reg, "reg_mr plain, 600 pages");
	ASSERT_EQ(0, mr_reg(self));
	sweep(_metadata, self, &op_mr_rereg_trans,
	      "rereg_mr plain translation, 600 pages");
	ASSERT_EQ(0, mr_dereg(self));

	self->fresh_mixed = false;
	self->acc = RW;
	sweep(_metadata, self, &op_mr_reg_fresh, "reg_mr plain, unpopulated");
}

TEST_F_TIMEOUT(nth, gift_mr, 300)
{
	mr_target(self, self->gbuf, SMALL, GIFT);
	sweep(_metadata, self, &op_mr_reg, "reg_mr gift");
	ASSERT_EQ(0, mr_reg(self));
	sweep(_metadata, self, &op_mr_rereg_trans, "rereg_mr gift translation");
	sweep(_metadata, self, &op_mr_query, "giftdv_query_mr");
	ASSERT_EQ(0, mr_dereg(self));
	sweep(_metadata, self, &op_mr_dereg, "dereg_mr gift");

	mr_target(self, self->gbuf, BIG, GIFT);
	sweep(_metadata, self, &op_mr_reg, "reg_mr gift, 600 pages");
	ASSERT_EQ(0, mr_reg(self));
	sweep(_metadata, self, &op_mr_rereg_trans,
	      "rereg_mr gift translation, 600 pages");
	ASSERT_EQ(0, mr_dereg(self));

	self->fresh_mixed = false;
	self->acc = GIFT;
	sweep(_metadata, self, &op_mr_reg_fresh, "reg_mr gift, unpopulated");
	self->fresh_mixed = true;
	sweep(_metadata, self, &op_mr_toggle_gift, "rereg_mr dropping gift");
	self->acc = RO;
	sweep(_metadata, self, &op_mr_toggle_gift, "rereg_mr adding gift");
}

TEST_F_TIMEOUT(nth, odp_mr, 300)
{
	mr_target(self, self->buf, SMALL, RW | IBV_ACCESS_ON_DEMAND);
	sweep(_metadata, self, &op_mr_reg, "reg_mr odp");
	ASSERT_EQ(0, mr_reg(self));
	sweep(_metadata, self, &op_mr_rereg_pd_odp, "rereg_mr odp pd+access");
	sweep(_metadata, self, &op_mr_prefetch, "advise_mr odp prefetch");
	ASSERT_EQ(0, mr_dereg(self));
	sweep(_metadata, self, &op_mr_dereg, "dereg_mr odp");
}

TEST_F_TIMEOUT(nth, cq, 300)
{
	self->cqe = CQE;
	sweep(_metadata, self, &op_cq_create, "create_cq");
	sweep(_metadata, self, &op_cq_destroy, "destroy_cq");
	self->cqe = CQE_BIG;
	sweep(_metadata, self, &op_cq_create, "create_cq, 256 entries");
	self->cqe = 2 * CQE;
	sweep(_metadata, self, &op_cq_resize, "resize_cq");
	self->cqe = CQE_BIG;
	sweep(_metadata, self, &op_cq_resize, "resize_cq to 256 entries");
}

TEST_F_TIMEOUT(nth, srq, 300)
{
	self->srq_wr = SRQ_WR;
	sweep(_metadata, self, &op_srq_create, "create_srq");
	sweep(_metadata, self, &op_srq_modify, "modify_srq");
	sweep(_metadata, self, &op_srq_destroy, "destroy_srq");
	self->srq_wr = SRQ_WR_BIG;
	sweep(_metadata, self, &op_srq_create, "create_srq, 256 WRs");
}

TEST_F_TIMEOUT(nth, qp, 300)
{
	self->qp_wr = QP_WR_BIG;
	sweep(_metadata, self, &op_qp_create, "create_qp, 64 WRs");
	self->qp_wr = QP_WR;
	sweep(_metadata, self, &op_qp_create, "create_qp");
	sweep(_metadata, self, &op_qp_create_srq, "create_qp with srq");
	ASSERT_EQ(0, qp_create(self));
	sweep(_metadata, self, &op_qp_init, "modify_qp RESET->INIT");
	ASSERT_EQ(0, qp_init(self));
	sweep(_metadata, self, &op_qp_rtr, "modify_qp INIT->RTR");
	ASSERT_EQ(0, qp_rtr(self));
	sweep(_metadata, self, &op_qp_rts, "modify_qp RTR->RTS");
	ASSERT_EQ(0, qp_destroy(self));
	sweep(_metadata, self, &op_qp_destroy, "destroy_qp");
}

TEST_F_TIMEOUT(nth, ah, 300)
{
	sweep(_metadata, self, &op_ah_create, "create_ah");
	sweep(_metadata, self, &op_ah_destroy, "destroy_ah");
}

static struct ibv_qp *rig_qp(fx_t *f)
{
	struct ibv_qp_init_attr init = {
		.send_cq = f->cq, .recv_cq = f->cq, .qp_type = IBV_QPT_RC,
		.cap = {
			.max_send_wr = QP_WR, .max_send_sge = 1,
			.max_recv_wr = QP_WR, .max_recv_sge = 1,
			.max_inline_data = 64,
		},
	};

	return ibv_create_qp(f->pd, &init);
}

static int rig_connect(fx_t *f, struct ibv_qp *qp, uint32_t dqpn)
{
	int ret = qp_to_init(qp);

	if (!ret)
		ret = qp_to_rtr(f, qp, dqpn);
	return ret ? ret : qp_to_rts(qp);
}

/* An RC pair on the device's IPv4 GID: qa to qb, over real UDP/IP. */
/* The data path's buffers, MRs and connected QPs qa -> qb. */
static void rig_data(struct __test_metadata *_metadata, fx_t *self)
{
	size_t i;

	self->xbuf = map_anon(XBUF);
	ASSERT_NE(NULL, self->xbuf);
	for (i = 0; i < 16 * 1024; i++)
		self->xbuf[X_GIFT + i] = gift_pat(i, 0);
	self->src_mr = ibv_reg_mr(self->pd, self->xbuf + X_SRC, 16 * 1024, RW);
	ASSERT_NE(NULL, self->src_mr);
	self->dst_mr = ibv_reg_mr(self->pd, self->xbuf + X_DST, 16 * 1024, RW);
	ASSERT_NE(NULL, self->dst_mr);
	self->gift_mr = ibv_reg_mr(self->pd, self->xbuf + X_GIFT, 16 * 1024,
				   GIFT);
	ASSERT_NE(NULL, self->gift_mr);
	self->qa = rig_qp(self);
	ASSERT_NE(NULL, self->qa);
	self->qb = rig_qp(self);
	ASSERT_NE(NULL, self->qb);
	ASSERT_EQ(0, rig_connect(self, self->qa, self->qb->qp_num));
	ASSERT_EQ(0, rig_connect(self, self->qb, self->qa->qp_num));
}

TEST_F_TIMEOUT(nth, post_send, 300)
{
	rig_data(_metadata, self);
	if (_metadata->exit_code)
		return;

	/* One packet (MTU 1024), then four. */
	self->xlen = 1024;
	sweep(_metadata, self, &op_post_write, "post_send RDMA WRITE 1 KiB");
	self->xlen = 4096;
	sweep(_metadata, self, &op_post_write, "post_send RDMA WRITE 4 KiB");
	sweep(_metadata, self, &op_post_read,
	      "post_send RDMA READ of a gift MR, 4 KiB");
	self->xlen = 64;
	sweep(_metadata, self, &op_post_send_inline, "post_send SEND inline");
}

/*
 * A second gift device on a dummy netdev; the stack-trace filter keeps
 * the sweep to the allocations near rdma_gift (see the top).
 */
TEST_F_TIMEOUT(nth, link_add, 900)
{
	static const char *const attrs[] = { "failslab", "fail_page_alloc" };
	unsigned long start, end;
	unsigned int i;

	snprintf(self->netdev, sizeof(self->netdev), "gtn%d", getpid() % 1000);
	snprintf(self->link, sizeof(self->link), "giftn%d", getpid() % 1000);
	ASSERT_EQ(0, gift_dummy_add(self->netdev));
	self->nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC,
			     NETLINK_RDMA);
	ASSERT_LE(0, self->nl_fd);
	ASSERT_EQ(0, gift_text(&start, &end));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, knob_set(attrs[i], "require-start", "%lu", start));
		ASSERT_EQ(0, knob_set(attrs[i], "require-end", "%lu", end));
		ASSERT_EQ(0, knob_set(attrs[i], "stacktrace-depth", "%lu",
				      LINK_DEPTH));
	}
	sweep(_metadata, self, &op_link_add, "rdma link add");
	sweep(_metadata, self, &op_link_del, "rdma link delete");
	if (self->no_uverbs)
		TH_LOG("%d tolerated faults left the device without uverbs",
		       self->no_uverbs);
}

/*
 * [*start, *end) of the module function @name, from /proc/kallsyms: its
 * address up to the next symbol's. 0 or -1.
 */
static int func_range(const char *name, unsigned long *start,
		      unsigned long *end)
{
	char line[512], sym[256];
	unsigned long a;
	FILE *f;

	*start = 0;
	*end = ULONG_MAX;
	f = fopen("/proc/kallsyms", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx %*s %255s", &a, sym) == 2 &&
		    !strcmp(sym, name))
			*start = a;
	rewind(f);
	while (*start && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx", &a) == 1 && a > *start && a < *end)
			*end = a;
	fclose(f);
	return *start && *end != ULONG_MAX ? 0 : -1;
}

/*
 * Issue 9, item 15: the responder running out of atomic memory (its
 * payload buffer, its ACKs) drops the packet and the requester sends it
 * again; nothing fails. failslab fails the first two atomic slab
 * allocations made below gift_resp_rcv() (the responder runs in the
 * softirq of the poster's loopback send, which fail-nth cannot reach):
 * the SEND still completes, on both sides, with its bytes.
 */
TEST_F_TIMEOUT(nth, responder_atomic_alloc_failure, 300)
{
	unsigned long start, end;
	char times[32];

	rig_data(_metadata, self);
	if (_metadata->exit_code)
		return;
	ASSERT_EQ(0, func_range("gift_resp_rcv", &start, &end));
	ASSERT_EQ(0, knob_set("failslab", "require-start", "%lu", start));
	ASSERT_EQ(0, knob_set("failslab", "require-end", "%lu", end));
	ASSERT_EQ(0, knob_set("failslab", "stacktrace-depth", "%lu", 32));
	/* Atomic allocations only: ignore those that may sleep. */
	ASSERT_EQ(0, knob_set("failslab", "ignore-gfp-wait", "Y", 0));
	ASSERT_EQ(0, knob_set("failslab", "times", "%lu", 2));
	ASSERT_EQ(0, knob_set("failslab", "probability", "%lu", 100));

	self->xlen = 4096;
	ASSERT_EQ(0, x_prep_send(self));
	self->xlen = 4096;
	ASSERT_EQ(0, post_send_plain(self));
	EXPECT_EQ(0, received(self)) TH_LOG("the SEND did not complete");
	ASSERT_EQ(0, knob_set("failslab", "probability", "%lu", 0));
	ASSERT_EQ(0, gift_read_file(DEBUGFS "/failslab/times", times,
				    sizeof(times)));
	EXPECT_EQ(0, atoi(times)) TH_LOG("the responder allocated nothing?");
}

TEST_HARNESS_MAIN
