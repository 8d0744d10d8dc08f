// SPDX-License-Identifier: GPL-2.0
/*
 * gift_stress: registration, memory-management and traffic churn at once
 * on a gift device, with every byte the device or the process reads
 * checked.
 *
 * Usage: gift_stress -t SECONDS [-s SEED] [-w WATCHDOG_SECONDS] [-m MIB]
 *
 * Runs as root in the test VM (tools/testing/vm/run), on $GIFT_IBDEV;
 * GIFT_SLOW stretches its deadlines and watchdog and shortens messages.
 * For the given time, threads and forked children do concurrently:
 *
 *  - registration churn (reg threads): reg, rereg (new translation, new
 *    access, adding and dropping IBV_ACCESS_GIFT) and dereg of plain
 *    writable, plain read-only and gift MRs over random ranges of the
 *    churn area, each change followed by an RDMA READ of the MR (and a
 *    WRITE + READ back for writable ones) and giftdv_query_mr(); a racer
 *    thread READs the same MRs without any synchronisation while they are
 *    re-registered and deregistered, and destroys its QPs mid-READ;
 *  - memory churn over the same area (mm threads): MADV_DONTNEED and
 *    MADV_FREE, munmap + mmap at the same address, mremap away and back,
 *    mprotect, MADV_MERGEABLE/UNMERGEABLE (KSM scans fast, and now and
 *    then unmerges everything), MADV_HUGEPAGE/NOHUGEPAGE/COLLAPSE,
 *    MADV_PAGEOUT, MADV_WIPEONFORK, MADV_POPULATE_*, rewriting the
 *    pattern; the process runs in a small memory cgroup with zram swap
 *    (and memory.reclaim), so pages go to swap and back;
 *  - stable regions (one thread): gift MRs over exclusive, fork-shared,
 *    KSM-merged, THP, MAP_PRIVATE file (memfd) and hugetlb memory,
 *    re-registered, replaced (DONTNEED or munmap + mmap, the file's pages
 *    punched out and rewritten), made read-only or PROT_NONE, paged out,
 *    and shared with holder children that write all of it at a random
 *    moment;
 *  - children: forked ones that check what they inherited and write to
 *    everything, and client ones that open the device themselves,
 *    register MRs over what they inherited and exit, or are killed;
 *  - traffic: RC QP pairs doing RDMA WRITE, READ and SEND between pinned
 *    buffers nobody churns, and RDMA READs of the stable gift MRs;
 *  - on-demand paging (odp threads, odpmm): ODP MRs (read-write, read-only,
 *    local-write, gift) registered, re-registered (access) and
 *    deregistered over an area that the odpmm thread concurrently zaps
 *    (MADV_DONTNEED, munmap + mmap, mmap(MAP_FIXED) over it), mprotects,
 *    pages out, populates and collapses; RDMA READ and WRITE through them
 *    from pinned and ODP local buffers, ibv_advise_mr() prefetches
 *    (synchronous and not), MRs deregistered and QPs destroyed with ODP
 *    operations in flight, READs of another thread's ODP MRs while they
 *    change. What the data must be is explained in that section.
 *
 * What is asserted, and why it is guaranteed (Documentation/gift_mr.rst):
 *  - The churn area only ever holds its pattern: every writer (the
 *    process, the device through writable MRs) writes the pattern byte of
 *    the address, and the kernel maps zero pages (DONTNEED, FREE, new
 *    mmap). Every byte the process or the device reads there is the
 *    pattern or 0. Children write other bytes, which must never be seen
 *    by the process or the device (copy-on-write; pinned pages are copied
 *    at fork). A writable MR reads back exactly what the device just
 *    wrote to it.
 *  - A stable region is registered only while the process maps its exact
 *    pattern (the stable thread changes it in windows no registration
 *    overlaps), and the process only ever rewrites the same bytes. A gift
 *    MR holds the pages it found at registration (pinned, or referenced
 *    when shared copy-on-write) and reads their registration-time content
 *    whatever happens to the mapping: writes by children, fork, KSM, swap,
 *    THP, DONTNEED, munmap, truncation. So the device reads the exact
 *    pattern, always. For the regions whose pages no other page can
 *    replace behind the MR's back (not KSM, not the file) the stale page
 *    count is 0 right after a registration and all pages once the region
 *    was replaced.
 *  - Every verb and completion has an exact expected result; errors the
 *    kernel legitimately returns under churn (EFAULT for a range just
 *    unmapped or PROT_NONE, ENOMEM for madvise() over a hole, ...) are
 *    counted, anything else fails. A READ racing a rereg or dereg of its
 *    MR may fail with a remote access error or exhaust its retries;
 *    without such a race it must succeed.
 *  - No thread may go without progress for the watchdog's time.
 *  - The ODP area holds, page by page, what its owner last wrote (new
 *    bytes each time) or, once a zap completed after that, zeros; a
 *    device or CPU read that no zap overlapped sees exactly that, one
 *    that a zap overlapped sees it or zeros, never older bytes. An ODP
 *    operation fails only when an mprotect or a munmap hole (or, for
 *    those in flight, the dereg or destroy) overlapped it.
 *  - At the end, with everything deregistered, the driver holds no page
 *    (debugfs umem_pages) and FOLL_PIN is balanced (/proc/vmstat), both
 *    relative to the start; swap, KSM merges and children must actually
 *    have happened.
 *
 * Exit status: 0 when clean, 1 on a failed check, 2 on a setup error, 3
 * when the watchdog fired.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include "../../../../../lib/giftdv.h"
#include "../gift_util.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif

#define KIB			1024UL
#define MIB			(1024 * KIB)
#define PAGE			4096UL
#define HPAGE			(2 * MIB)

/* Address space layout: far below where mmap(NULL) places anything. */
#define ARENA			((uint8_t *)0x100000000000UL)
#define NCHURN			4		/* churn ranges */
#define CHURN_LEN		HPAGE		/* each, THP-aligned */
#define CHURN_TOTAL		(NCHURN * CHURN_LEN)
#define SCRATCH			(ARENA + CHURN_TOTAL)	/* free: mremap */
#define STABLE_BASE		(ARENA + CHURN_TOTAL + 2 * MIB)
#define STABLE_SLOT		(4 * MIB)

#define TR_LEN			(256 * KIB)	/* traffic buffers */
#define PAIR_LEN		(512 * KIB)	/* reg/racer local buffer */
#define MAX_BATCH		4
#define NTRAFFIC		2
#define NREG			2
#define NMM			2
#define NSLOT			3		/* MRs per reg thread */
#define MAX_CHILDREN		3

#define RW	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
		 IBV_ACCESS_REMOTE_READ)
#define RO	IBV_ACCESS_REMOTE_READ
#define GIFT	(IBV_ACCESS_GIFT | IBV_ACCESS_REMOTE_READ)

#define KSM_DIR			"/sys/kernel/mm/ksm"
#define THP_DIR			"/sys/kernel/mm/transparent_hugepage"

#define E(x)			(1ULL << (x))
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

static int slow = 1;
static size_t max_msg;			/* longest message: 64 KiB / GIFT_SLOW */
static int wait_ms;			/* deadline of a completion */
static int watchdog_s;
static uint32_t seed;
static int stop;
static int failures;

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static union ibv_gid gid;
static int gid_index;

static uint8_t *churn_want;		/* expected bytes of the churn area */

static bool stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_RELAXED);
}

static void stop_all(void)
{
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

/* Reporting */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* A failed check: reported (the first 20), and the run stops. */
static void fail(const char *fmt, ...)
{
	va_list ap;
	int n;

	n = __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
	stop_all();
	if (n > 20)
		return;
	pthread_mutex_lock(&out_lock);
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* Operation counters: successes, and expected errors by errno. */

enum op {
	OP_REG_RW, OP_REG_RO, OP_REG_GIFT, OP_REREG_TRANS, OP_REREG_ACCESS,
	OP_REREG_BOTH, OP_DEREG, OP_QUERY, OP_MR_READ, OP_MR_WRITE,
	OP_RACE_READ, OP_QP_DESTROY, OP_TR_WRITE, OP_TR_READ, OP_TR_SEND, OP_TR_GIFT_READ,
	OP_DONTNEED, OP_FREE, OP_REMAP, OP_MREMAP, OP_MPROTECT,
	OP_WIPEONFORK, OP_POPULATE, OP_MERGEABLE, OP_UNMERGEABLE,
	OP_HUGEPAGE, OP_NOHUGEPAGE, OP_COLLAPSE, OP_PAGEOUT, OP_REFILL,
	OP_VERIFY, OP_FORK, OP_CHILD, OP_CLIENT, OP_CLIENT_KILLED, OP_SG_REREG, OP_SG_REREG_RO,
	OP_SG_REREG_NONE, OP_SG_REG, OP_SG_WINDOW, OP_SG_HOLDER, OP_SG_QUERY,
	OP_KSM_UNMERGE_ALL, OP_RECLAIM, OP_COMPACT,
	OP_ODP_REG_RW, OP_ODP_REG_RO, OP_ODP_DEREG, OP_ODP_READ, OP_ODP_WRITE,
	OP_ODP_WRITE_REFUSED, OP_ODP_PREFETCH_SYNC, OP_ODP_PREFETCH_ASYNC,
	OP_ODP_PREFETCH_REFUSED, OP_ODP_DEREG_INFLIGHT, OP_ODP_QP_DESTROY,
	OP_ODP_REREG, OP_ODP_REREG_REFUSED, OP_ODP_REFILL, OP_ODP_VERIFY,
	OP_ODP_CROSS_READ, OP_ODP_DONTNEED, OP_ODP_REMAP, OP_ODP_MAPFIXED,
	OP_ODP_MPROTECT, OP_ODP_PAGEOUT, OP_ODP_POPULATE, OP_ODP_THP,
	NOPS
};

static const char *const op_names[NOPS] = {
	"reg rw", "reg ro", "reg gift", "rereg translation", "rereg access",
	"rereg both", "dereg", "query mr", "mr read", "mr write+read",
	"racing read", "qps destroyed mid-read", "traffic write",
	"traffic read", "traffic send", "traffic gift read", "madv dontneed",
	"madv free", "munmap+mmap", "mremap away and back", "mprotect",
	"madv (keep|wipe)onfork", "madv populate_(read|write)",
	"madv mergeable", "madv unmergeable", "madv hugepage",
	"madv nohugepage", "madv collapse", "madv pageout", "refill",
	"cpu verify", "fork", "child exit ok", "client exit ok",
	"client killed", "stable rereg",
	"stable rereg prot_read", "stable rereg prot_none (EFAULT)",
	"stable dereg+reg", "stable replace window", "stable holder refork",
	"stable query", "ksm unmerge all", "memcg reclaim", "compact memory",
	"odp reg rw", "odp reg ro/local-write/gift", "odp dereg", "odp read",
	"odp write", "odp write to ro refused", "odp prefetch sync",
	"odp prefetch async", "odp prefetch write of ro refused",
	"odp dereg in flight", "odp qps destroyed in flight", "odp rereg access",
	"odp rereg refused", "odp cpu write", "odp cpu read",
	"odp read of another's mr", "odp madv dontneed", "odp munmap+mmap",
	"odp mmap map_fixed over", "odp mprotect", "odp madv pageout",
	"odp madv populate_write", "odp madv hugepage|collapse",
};

#define MAX_ERRNO	134	/* past EHWPOISON */
static long op_ok[NOPS];
static long op_err[NOPS][MAX_ERRNO];

static void count_ok(enum op op)
{
	__atomic_add_fetch(&op_ok[op], 1, __ATOMIC_RELAXED);
}

/*
 * An error of op: counted when its errno is in the accepted mask, a
 * failure otherwise. Returns whether it was accepted.
 */
static bool count_err(enum op op, int err, uint64_t accepted,
		      const char *what)
{
	if (err > 0 && err < 64 && (accepted & E(err))) {
		__atomic_add_fetch(&op_err[op][err], 1, __ATOMIC_RELAXED);
		return true;
	}
	fail("%s: %s: unexpected error %d (%s)", op_names[op], what, err,
	     strerror(err));
	return false;
}

/* Threads: heartbeat and what they are doing, for the watchdog */

struct thread {
	char name[16];
	pthread_t tid;
	long long hb;			/* gift_now_us() of the last progress */
	long beats;
	const char *what;
	uint64_t rng;
	void *(*fn)(void *arg);
	void *arg;
};

#define MAX_THREADS	16
static struct thread threads[MAX_THREADS];
static int nthreads;

static void beat(struct thread *t, const char *what)
{
	__atomic_store_n(&t->what, what, __ATOMIC_RELAXED);
	__atomic_store_n(&t->hb, gift_now_us(), __ATOMIC_RELAXED);
	__atomic_add_fetch(&t->beats, 1, __ATOMIC_RELAXED);
}

static uint64_t rnd(struct thread *t)
{
	uint64_t x = t->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	t->rng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [0, n); 0 when n is 0. */
static uint64_t rnd_below(struct thread *t, uint64_t n)
{
	return n ? rnd(t) % n : 0;
}

static bool chance(struct thread *t, int percent)
{
	return rnd_below(t, 100) < (uint64_t)percent;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Data checks */

/* Byte of a poison value: never the pattern byte b, never 0. */
static uint8_t poison(uint8_t b)
{
	return b == 0xff ? 1 : b + 1;
}

/* First byte of got[0, len) that is neither want nor 0, or -1. */
static long bad_or_zero(const uint8_t *got, const uint8_t *want, size_t len)
{
	size_t i, j, n;

	for (i = 0; i < len; i += n) {
		n = len - i < PAGE ? len - i : PAGE;
		if (!memcmp(got + i, want + i, n))
			continue;
		for (j = i; j < i + n; j++)
			if (got[j] && got[j] != want[j])
				return j;
	}
	return -1;
}

/* First byte where got and want differ, or -1. */
static long bad_exact(const uint8_t *got, const uint8_t *want, size_t len)
{
	size_t i;

	if (!memcmp(got, want, len))
		return -1;
	for (i = 0; got[i] == want[i]; i++)
		;
	return i;
}

/* QP pairs in loopback: qp[0] requests, qp[1] responds */

struct pair {
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];
	uint8_t *buf;			/* qp[0]'s local buffer */
	size_t len;
	struct ibv_mr *mr;
	uint8_t retry_cnt;
};

/* ibv_modify_qp(), its error reported; 0 or -1. */
static int qp_modify(struct ibv_qp *qp, struct ibv_qp_attr *a, int mask,
		     const char *state)
{
	int err = ibv_modify_qp(qp, a, mask);

	if (err)
		say("# modify QP %u to %s: %s\n", qp->qp_num, state,
		    strerror(err));
	return err ? -1 : 0;
}

static int qp_connect(struct ibv_qp *qp, uint32_t dqpn, uint32_t sq_psn,
		      uint32_t rq_psn, uint8_t retry_cnt)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	if (qp_modify(qp, &a, IBV_QP_STATE, "RESET"))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;
	if (qp_modify(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		      IBV_QP_ACCESS_FLAGS, "INIT"))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dqpn;
	a.rq_psn = rq_psn;
	a.max_dest_rd_atomic = 8;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = gid;
	a.ah_attr.grh.sgid_index = gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	if (qp_modify(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
		      IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		      IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER, "RTR"))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	/* Half a second (more on slow kernels): no spurious retries. */
	a.timeout = gift_slow_qp_timeout(17);
	a.retry_cnt = retry_cnt;
	a.rnr_retry = 7;
	a.max_rd_atomic = 8;
	return qp_modify(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
			 IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			 IBV_QP_MAX_QP_RD_ATOMIC, "RTS");
}

/* (Re)connects the pair, e.g. after an error moved it to ERR. */
static int pair_connect(struct pair *p)
{
	static uint32_t next_psn;
	/*
	 * New PSNs each time, as a real consumer picks them: a packet of
	 * the pair's last connection still in flight falls out of the new
	 * window instead of being taken as a new request.
	 */
	uint32_t psn0 = (__atomic_add_fetch(&next_psn, 0x9e3779,
					    __ATOMIC_RELAXED) ^ seed) & 0xffffff;
	uint32_t psn1 = (psn0 + 0x400000) & 0xffffff;

	if (qp_connect(p->qp[0], p->qp[1]->qp_num, psn0, psn1, p->retry_cnt) ||
	    qp_connect(p->qp[1], p->qp[0]->qp_num, psn1, psn0, p->retry_cnt))
		return -1;
	gift_drain_cq(p->cq);
	return 0;
}

static uint8_t *map_private(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int pair_create_qps(struct pair *p)
{
	struct ibv_qp_init_attr init = {
		.send_cq = p->cq,
		.recv_cq = p->cq,
		.cap = {
			.max_send_wr = 16,
			.max_recv_wr = 16,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
		.qp_type = IBV_QPT_RC,
	};
	int i;

	for (i = 0; i < 2; i++) {
		p->qp[i] = ibv_create_qp(pd, &init);
		if (!p->qp[i])
			return -1;
	}
	return 0;
}

static int pair_create(struct pair *p, size_t len, uint8_t retry_cnt)
{
	memset(p, 0, sizeof(*p));
	p->retry_cnt = retry_cnt;
	p->cq = ibv_create_cq(ctx, 64, NULL, NULL, 0);
	if (!p->cq || pair_create_qps(p))
		return -1;
	p->len = len;
	p->buf = map_private(len);
	if (!p->buf)
		return -1;
	memset(p->buf, 0x5a, len);
	p->mr = ibv_reg_mr(pd, p->buf, len, RW);
	if (!p->mr)
		return -1;
	return pair_connect(p);
}

static void pair_destroy(struct pair *p)
{
	int i;

	if (p->mr && ibv_dereg_mr(p->mr))
		fail("teardown: dereg of a pair's buffer failed");
	for (i = 0; i < 2; i++)
		if (p->qp[i] && ibv_destroy_qp(p->qp[i]))
			fail("teardown: destroy qp failed");
	if (p->cq && ibv_destroy_cq(p->cq))
		fail("teardown: destroy cq failed");
	if (p->buf)
		munmap(p->buf, p->len);
	memset(p, 0, sizeof(*p));
}

/*
 * Waits for n completions on the pair's CQ into wc[]; 0, or -1 when the
 * deadline passed first (then the failure is reported).
 */
static int pair_wait(struct pair *p, struct ibv_wc *wc, int n,
		     const char *what)
{
	long long deadline = gift_now_us() + wait_ms * 1000LL;
	int got = 0, r;

	while (got < n) {
		r = ibv_poll_cq(p->cq, n - got, wc + got);
		if (r < 0) {
			fail("%s: ibv_poll_cq: %d", what, r);
			return -1;
		}
		got += r;
		if (got == n)
			break;
		if (gift_now_us() > deadline) {
			fail("%s: %d of %d completions after %d ms", what,
			     got, n, wait_ms);
			return -1;
		}
		usleep(r ? 0 : 100);
	}
	return 0;
}

/* One RDMA READ or WRITE work request of qp[0], chained to next. */
static void rdma_wr(struct ibv_send_wr *wr, struct ibv_sge *sge,
		    enum ibv_wr_opcode op, uint64_t id, uint8_t *laddr,
		    uint32_t lkey, size_t len, uintptr_t raddr, uint32_t rkey)
{
	memset(wr, 0, sizeof(*wr));
	sge->addr = (uintptr_t)laddr;
	sge->length = len;
	sge->lkey = lkey;
	wr->wr_id = id;
	wr->sg_list = sge;
	wr->num_sge = 1;
	wr->opcode = op;
	wr->send_flags = IBV_SEND_SIGNALED;
	wr->wr.rdma.remote_addr = raddr;
	wr->wr.rdma.rkey = rkey;
}

/*
 * Posts one READ or WRITE of len bytes between p->buf + loff and
 * raddr/rkey and waits for it: its completion status, or -1 if it could
 * not be posted or did not complete in time (reported).
 */
static int pair_rdma(struct pair *p, enum ibv_wr_opcode op, size_t loff,
		     size_t len, uintptr_t raddr, uint32_t rkey,
		     const char *what)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc;
	int err;

	rdma_wr(&wr, &sge, op, 1, p->buf + loff, p->mr->lkey, len, raddr,
		rkey);
	err = ibv_post_send(p->qp[0], &wr, &bad);
	if (err) {
		fail("%s: ibv_post_send: %s", what, strerror(err));
		return -1;
	}
	if (pair_wait(p, &wc, 1, what))
		return -1;
	return wc.status;
}

/* The churn area: ranges of pattern that everything churns */

struct churn_range {
	uint8_t *p;
	pthread_rwlock_t lock;		/* read: CPU access; write: not RW */
	int huge;			/* MADV_HUGEPAGE last */
	int merge;			/* MADV_MERGEABLE last */
};

static struct churn_range churn[NCHURN];

/*
 * Odd ranges repeat one page of pattern, which KSM merges across all of
 * them; even ranges never repeat. Seeds differ from every stable region.
 */
static uint8_t churn_byte(size_t off)
{
	if ((off / CHURN_LEN) & 1)
		return gift_pat(off % PAGE, seed + 1);
	return gift_pat(off, seed + 2);
}

static void rwlock_init(pthread_rwlock_t *l)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	/* Writers (windows) must not starve behind readers. */
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(l, &a);
	pthread_rwlockattr_destroy(&a);
}

/* Maps len bytes at addr, which must be free; NULL on error. */
static uint8_t *map_at(uint8_t *addr, size_t len)
{
	void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		       -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (p != addr) {
		munmap(p, len);
		errno = EEXIST;
		return NULL;
	}
	return p;
}

static int churn_setup(void)
{
	size_t i;

	churn_want = map_private(CHURN_TOTAL);
	if (!churn_want)
		return -1;
	for (i = 0; i < CHURN_TOTAL; i++)
		churn_want[i] = churn_byte(i);
	for (i = 0; i < NCHURN; i++) {
		struct churn_range *r = &churn[i];

		rwlock_init(&r->lock);
		r->p = map_at(ARENA + i * CHURN_LEN, CHURN_LEN);
		if (!r->p)
			return -1;
		r->huge = !(i & 2);
		r->merge = 1;
		madvise(r->p, CHURN_LEN, r->huge ? MADV_HUGEPAGE :
						   MADV_NOHUGEPAGE);
		if (madvise(r->p, CHURN_LEN, MADV_MERGEABLE))
			return -1;
		memcpy(r->p, churn_want + i * CHURN_LEN, CHURN_LEN);
	}
	return 0;
}

/* Stable regions: gift MRs over memory the process never changes */

enum sg_kind {
	SG_EXCL,	/* private anon, written once: pinned */
	SG_FORK,	/* shared with a holder child: referenced */
	SG_KSM,		/* one page repeated, merged by KSM: referenced */
	SG_THP,		/* a THP, shared with a holder child */
	SG_FILE,	/* MAP_PRIVATE of a memfd: page cache, referenced */
	SG_HUGETLB,	/* a hugetlb page shared with a holder: pinned */
	NSG
};

static const char *const sg_names[NSG] = {
	"exclusive", "fork-shared", "ksm", "thp", "file", "hugetlb",
};

struct sg {
	enum sg_kind kind;
	uint8_t *p;
	size_t len;
	uint8_t *want;
	int fd;
	pid_t holder;
	struct ibv_mr *mr;
	pthread_rwlock_t mr_lock;	/* read: READs; write: mr changes */
	pthread_rwlock_t mem_lock;	/* read: exact & RW; write: window */
	bool clean;			/* no window since the registration */
};

static struct sg sgs[NSG];
static int hot_sg = -1;			/* traffic READs it most, if set */

/* Whether the stale count of a kind is exactly known (see the top). */
static bool sg_stale_known(const struct sg *r)
{
	return r->kind != SG_KSM && r->kind != SG_FILE;
}

/* Shared with a holder child that keeps it mapped. */
static bool sg_held(const struct sg *r)
{
	return r->kind == SG_FORK || r->kind == SG_THP ||
	       r->kind == SG_HUGETLB;
}

/* Maps the region (anew) at its address; its content comes after. */
static int sg_map(struct sg *r)
{
	void *p;

	if (r->kind == SG_FILE) {
		p = mmap(r->p, r->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_FIXED_NOREPLACE, r->fd, 0);
		if (p == MAP_FAILED || p != r->p)
			return -1;
		return 0;
	}
	if (r->kind == SG_HUGETLB) {
		p = mmap(r->p, r->len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_FIXED_NOREPLACE, -1, 0);
		return p == MAP_FAILED || p != r->p ? -1 : 0;
	}
	if (!map_at(r->p, r->len))
		return -1;
	if (r->kind == SG_THP && madvise(r->p, r->len, MADV_HUGEPAGE))
		return -1;
	if (r->kind != SG_THP && madvise(r->p, r->len, MADV_NOHUGEPAGE))
		return -1;
	if (r->kind == SG_KSM && madvise(r->p, r->len, MADV_MERGEABLE))
		return -1;
	return 0;
}

/* Writes the region's pattern (a file region reads its page cache). */
static void sg_fill(struct sg *r)
{
	if (r->kind != SG_FILE)
		memcpy(r->p, r->want, r->len);
}

/* Writes the pattern of the file region into its file; 0 or -1. */
static int file_write(struct sg *r)
{
	ssize_t n;
	size_t off;

	for (off = 0; off < r->len; off += n) {
		n = pwrite(r->fd, r->want + off, r->len - off, off);
		if (n <= 0)
			return -1;
	}
	return 0;
}

/*
 * A child that keeps the region mapped, shared, until killed; at a
 * random moment within two seconds it writes the whole region (by then
 * the parent may have left the pages to it alone, and a write may reuse
 * a page in place: never one a gift MR holds).
 */
static pid_t holder_fork(struct sg *r, uint64_t rng)
{
	pid_t pid = fork();
	size_t i;

	if (!pid) {
		sleep_ms(rng % 2000);
		for (i = 0; i < r->len; i++)
			r->p[i] = poison(r->want[i]);
		for (;;)
			pause();
	}
	return pid;
}

static void holder_end(struct sg *r)
{
	if (r->holder <= 0)
		return;
	kill(r->holder, SIGKILL);
	waitpid(r->holder, NULL, 0);
	r->holder = 0;
}

static int sg_setup(void)
{
	static const size_t lens[NSG] = {
		256 * KIB, 256 * KIB, 256 * KIB, HPAGE, 256 * KIB, HPAGE,
	};
	size_t i;
	int k;

	for (k = 0; k < NSG; k++) {
		struct sg *r = &sgs[k];

		r->kind = k;
		r->p = STABLE_BASE + k * STABLE_SLOT;
		r->len = lens[k];
		r->fd = -1;
		r->clean = true;
		rwlock_init(&r->mr_lock);
		rwlock_init(&r->mem_lock);
		r->want = map_private(r->len);
		if (!r->want)
			return -1;
		for (i = 0; i < r->len; i++)
			r->want[i] = k == SG_KSM ?
				     gift_pat(i % PAGE, seed + 100 + k) :
				     gift_pat(i, seed + 100 + k);
		if (k == SG_FILE) {
			r->fd = memfd_create("gift_stress", 0);
			if (r->fd < 0 || file_write(r))
				return -1;
		}
		if (sg_map(r))
			return -1;
		sg_fill(r);
		if (sg_held(r)) {
			r->holder = holder_fork(r, seed + k);
			if (r->holder < 0)
				return -1;
		}
		r->mr = ibv_reg_mr(pd, r->p, r->len, GIFT);
		if (!r->mr)
			return -1;
	}
	return 0;
}

/* Traffic threads */

struct traffic {
	struct thread *t;
	struct pair p;			/* p.buf: the source, TR_LEN */
	uint8_t *dst;
	struct ibv_mr *dst_mr;
	uint8_t *src_img, *dst_img;	/* what src and dst must hold */
	uint32_t msg;
};

static struct traffic traffic[NTRAFFIC];

struct window {
	size_t soff, doff, len;
};

/* n windows, one in each n-th of the buffers, each at most max bytes. */
static void windows(struct thread *t, struct window *w, int n, size_t max)
{
	size_t slice = TR_LEN / n;
	int i;

	if (max > slice)
		max = slice;
	for (i = 0; i < n; i++) {
		w[i].len = chance(t, 5) ? 0 : 1 + rnd_below(t, max);
		w[i].soff = i * slice + rnd_below(t, slice - w[i].len + 1);
		w[i].doff = i * slice + rnd_below(t, slice - w[i].len + 1);
	}
}

static void fill_msg(uint8_t *p, size_t len, uint32_t s)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = gift_pat(i, s);
}

static bool tr_compare(struct traffic *tr, const uint8_t *got,
		       const uint8_t *img, const char *what)
{
	long bad = bad_exact(got, img, TR_LEN);

	if (bad < 0)
		return true;
	fail("%s: %s byte %ld is 0x%02x, expected 0x%02x", tr->t->name, what,
	     bad, got[bad], img[bad]);
	return false;
}

/* Posts the chain wr[0..n) and waits for every completion: all ok. */
static bool tr_post_all(struct traffic *tr, struct ibv_send_wr *wr, int n,
			enum ibv_wc_opcode opcode, const char *what)
{
	struct ibv_wc wc[MAX_BATCH];
	struct ibv_send_wr *bad;
	int i, err;

	for (i = 0; i + 1 < n; i++)
		wr[i].next = &wr[i + 1];
	err = ibv_post_send(tr->p.qp[0], wr, &bad);
	if (err) {
		fail("%s: %s: ibv_post_send: %s", tr->t->name, what,
		     strerror(err));
		return false;
	}
	if (pair_wait(&tr->p, wc, n, what))
		return false;
	for (i = 0; i < n; i++) {
		if (wc[i].status != IBV_WC_SUCCESS ||
		    wc[i].opcode != opcode) {
			fail("%s: %s: completion %d: status %s, opcode %d",
			     tr->t->name, what, i,
			     ibv_wc_status_str(wc[i].status), wc[i].opcode);
			return false;
		}
	}
	return true;
}

static void tr_write(struct traffic *tr, int n)
{
	struct ibv_send_wr wr[MAX_BATCH];
	struct ibv_sge sge[MAX_BATCH];
	struct window w[MAX_BATCH];
	int i;

	windows(tr->t, w, n, max_msg);
	for (i = 0; i < n; i++) {
		fill_msg(tr->p.buf + w[i].soff, w[i].len, tr->msg + i);
		memcpy(tr->src_img + w[i].soff, tr->p.buf + w[i].soff,
		       w[i].len);
		rdma_wr(&wr[i], &sge[i], IBV_WR_RDMA_WRITE, i,
			tr->p.buf + w[i].soff, tr->p.mr->lkey, w[i].len,
			(uintptr_t)tr->dst + w[i].doff, tr->dst_mr->rkey);
	}
	tr->msg += n;
	if (!tr_post_all(tr, wr, n, IBV_WC_RDMA_WRITE, "rdma write"))
		return;
	for (i = 0; i < n; i++)
		memcpy(tr->dst_img + w[i].doff, tr->src_img + w[i].soff,
		       w[i].len);
	if (tr_compare(tr, tr->dst, tr->dst_img, "after WRITE, dst") &&
	    tr_compare(tr, tr->p.buf, tr->src_img, "after WRITE, src"))
		count_ok(OP_TR_WRITE);
}

static void tr_read(struct traffic *tr, int n)
{
	struct ibv_send_wr wr[MAX_BATCH];
	struct ibv_sge sge[MAX_BATCH];
	struct window w[MAX_BATCH];
	int i;

	windows(tr->t, w, n, max_msg);
	for (i = 0; i < n; i++)
		rdma_wr(&wr[i], &sge[i], IBV_WR_RDMA_READ, i,
			tr->p.buf + w[i].soff, tr->p.mr->lkey, w[i].len,
			(uintptr_t)tr->dst + w[i].doff, tr->dst_mr->rkey);
	if (!tr_post_all(tr, wr, n, IBV_WC_RDMA_READ, "rdma read"))
		return;
	for (i = 0; i < n; i++)
		memcpy(tr->src_img + w[i].soff, tr->dst_img + w[i].doff,
		       w[i].len);
	if (tr_compare(tr, tr->p.buf, tr->src_img, "after READ, src") &&
	    tr_compare(tr, tr->dst, tr->dst_img, "after READ, dst"))
		count_ok(OP_TR_READ);
}

static void tr_send(struct traffic *tr)
{
	struct ibv_recv_wr rwr = {}, *rbad;
	struct ibv_send_wr swr, *sbad;
	struct ibv_sge rsge, ssge;
	struct ibv_wc wc[2], *rwc;
	struct window w;
	size_t room;
	int err;

	windows(tr->t, &w, 1, max_msg);
	room = w.len + rnd_below(tr->t, TR_LEN - w.doff - w.len + 1);
	fill_msg(tr->p.buf + w.soff, w.len, tr->msg);
	memcpy(tr->src_img + w.soff, tr->p.buf + w.soff, w.len);
	tr->msg++;

	rsge.addr = (uintptr_t)tr->dst + w.doff;
	rsge.length = room;
	rsge.lkey = tr->dst_mr->lkey;
	rwr.wr_id = 2;
	rwr.sg_list = &rsge;
	rwr.num_sge = 1;
	err = ibv_post_recv(tr->p.qp[1], &rwr, &rbad);
	if (err) {
		fail("%s: ibv_post_recv: %s", tr->t->name, strerror(err));
		return;
	}
	rdma_wr(&swr, &ssge, IBV_WR_SEND, 1, tr->p.buf + w.soff,
		tr->p.mr->lkey, w.len, 0, 0);
	err = ibv_post_send(tr->p.qp[0], &swr, &sbad);
	if (err) {
		fail("%s: ibv_post_send: %s", tr->t->name, strerror(err));
		return;
	}
	if (pair_wait(&tr->p, wc, 2, "send"))
		return;
	rwc = wc[0].wr_id == 2 ? &wc[0] : &wc[1];
	if (wc[0].status != IBV_WC_SUCCESS || wc[1].status != IBV_WC_SUCCESS ||
	    rwc->opcode != IBV_WC_RECV || rwc->byte_len != w.len ||
	    wc[0].wr_id == wc[1].wr_id) {
		fail("%s: send of %zu bytes: statuses %s/%s, recv opcode %d, byte_len %u",
		     tr->t->name, w.len, ibv_wc_status_str(wc[0].status),
		     ibv_wc_status_str(wc[1].status), rwc->opcode,
		     rwc->byte_len);
		return;
	}
	memcpy(tr->dst_img + w.doff, tr->src_img + w.soff, w.len);
	if (tr_compare(tr, tr->dst, tr->dst_img, "after SEND, dst"))
		count_ok(OP_TR_SEND);
}

/* RDMA READs of n windows of one stable gift MR: its exact pattern. */
static void tr_gift_read(struct traffic *tr, int n)
{
	int hot = __atomic_load_n(&hot_sg, __ATOMIC_RELAXED);
	struct sg *r = &sgs[hot >= 0 && chance(tr->t, 80) ? hot :
			    rnd_below(tr->t, NSG)];
	struct ibv_send_wr wr[MAX_BATCH];
	struct ibv_sge sge[MAX_BATCH];
	struct window w[MAX_BATCH];
	size_t roff[MAX_BATCH];
	bool ok;
	long bad;
	int i;

	windows(tr->t, w, n, max_msg);
	pthread_rwlock_rdlock(&r->mr_lock);
	if (!r->mr) {
		pthread_rwlock_unlock(&r->mr_lock);
		return;
	}
	for (i = 0; i < n; i++) {
		roff[i] = rnd_below(tr->t, r->len - w[i].len + 1);
		rdma_wr(&wr[i], &sge[i], IBV_WR_RDMA_READ, i,
			tr->p.buf + w[i].soff, tr->p.mr->lkey, w[i].len,
			(uintptr_t)r->p + roff[i], r->mr->rkey);
	}
	ok = tr_post_all(tr, wr, n, IBV_WC_RDMA_READ, "gift read");
	pthread_rwlock_unlock(&r->mr_lock);
	if (!ok)
		return;
	for (i = 0; i < n; i++) {
		bad = bad_exact(tr->p.buf + w[i].soff, r->want + roff[i],
				w[i].len);
		if (bad >= 0) {
			fail("%s: the %s gift MR reads 0x%02x at offset %zu (page %zu), expected 0x%02x",
			     tr->t->name, sg_names[r->kind],
			     tr->p.buf[w[i].soff + bad], roff[i] + bad,
			     (roff[i] + bad) / PAGE, r->want[roff[i] + bad]);
			return;
		}
		memcpy(tr->src_img + w[i].soff, r->want + roff[i], w[i].len);
	}
	if (tr_compare(tr, tr->p.buf, tr->src_img, "after gift READ, src"))
		count_ok(OP_TR_GIFT_READ);
}

static void *traffic_main(void *arg)
{
	struct traffic *tr = arg;
	struct thread *t = tr->t;
	int n;

	while (!stopping()) {
		n = 1 + rnd_below(t, MAX_BATCH);
		switch (rnd_below(t, 4)) {
		case 0:
			beat(t, "rdma write");
			tr_write(tr, n);
			break;
		case 1:
			beat(t, "rdma read");
			tr_read(tr, n);
			break;
		case 2:
			beat(t, "send");
			tr_send(tr);
			break;
		default:
			beat(t, "gift read");
			tr_gift_read(tr, n);
			break;
		}
	}
	beat(t, "done");
	return NULL;
}

static int traffic_setup(struct traffic *tr)
{
	if (pair_create(&tr->p, TR_LEN, 7))
		return -1;
	tr->dst = map_private(TR_LEN);
	tr->src_img = malloc(TR_LEN);
	tr->dst_img = malloc(TR_LEN);
	if (!tr->dst || !tr->src_img || !tr->dst_img)
		return -1;
	fill_msg(tr->dst, TR_LEN, seed + 50);
	memcpy(tr->dst_img, tr->dst, TR_LEN);
	memcpy(tr->src_img, tr->p.buf, TR_LEN);
	tr->dst_mr = ibv_reg_mr(pd, tr->dst, TR_LEN, RW);
	return tr->dst_mr ? 0 : -1;
}

/* Registration churn */

/*
 * An MR of a reg thread. The racer reads it without locks: gen is odd
 * while the MR changes, and bumped before any rereg or dereg is issued.
 */
struct slot {
	uint64_t gen;
	struct ibv_mr *mr;
	uint32_t rkey;
	uintptr_t addr;
	size_t len;
	int access;
	bool umem_rw;			/* the pages were pinned writable */
	bool umem_gift;			/* and taken as a gift */
};

struct reg {
	struct thread *t;
	struct pair p;
	struct slot slot[NSLOT];
};

static struct reg regs[NREG];

static void slot_begin(struct slot *s)
{
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_SEQ_CST);
}

static void slot_end(struct slot *s)
{
	if (s->mr) {
		__atomic_store_n(&s->rkey, s->mr->rkey, __ATOMIC_RELAXED);
		__atomic_store_n(&s->addr, (uintptr_t)s->mr->addr,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&s->len, s->mr->length, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_SEQ_CST);
}

static enum op reg_op(int access)
{
	return access == RW ? OP_REG_RW : access == RO ? OP_REG_RO :
	       OP_REG_GIFT;
}

static int random_access(struct thread *t)
{
	int r = rnd_below(t, 100);

	return r < 40 ? RW : r < 85 ? GIFT : RO;
}

/*
 * A random range of the churn area: sometimes unaligned, up to 2 MiB
 * (one batch of the driver's GUP), for a gift MR (which costs no memory
 * over zero pages) up to all of it.
 */
static void random_range(struct thread *t, bool gift, uintptr_t *addr,
			 size_t *len)
{
	size_t npages = CHURN_TOTAL / PAGE, first, n, in = 0;

	if (gift && chance(t, 10)) {
		first = rnd_below(t, 64);
		n = 1 + rnd_below(t, npages);
	} else {
		first = rnd_below(t, npages);
		n = 1 + rnd_below(t, chance(t, 10) ? 512 : 64);
	}
	if (n > npages - first)
		n = npages - first;
	*len = n * PAGE;
	if (chance(t, 15)) {
		in = rnd_below(t, PAGE);
		*len -= in + rnd_below(t, *len - in);
	}
	*addr = (uintptr_t)ARENA + first * PAGE + in;
}

static size_t span_pages(uintptr_t addr, size_t len)
{
	return ((addr + len + PAGE - 1) / PAGE) - addr / PAGE;
}

/*
 * An RDMA READ of a window of the slot's MR: pattern or zero. Then, for
 * a writable MR, the pattern written into a window reads back exactly.
 */
static void reg_check(struct reg *rg, struct slot *s, const char *after)
{
	struct thread *t = rg->t;
	uintptr_t addr = (uintptr_t)s->mr->addr;
	size_t n, off, len = s->mr->length;
	long bad;
	int st;

	n = 1 + rnd_below(t, len < max_msg ? len : max_msg);
	off = rnd_below(t, len - n + 1);
	memset(rg->p.buf, 0xa5, n);
	st = pair_rdma(&rg->p, IBV_WR_RDMA_READ, 0, n, addr + off,
		       s->mr->rkey, "mr read");
	if (st < 0)
		return;
	if (st != IBV_WC_SUCCESS) {
		fail("%s: READ of %zu bytes at %#lx of MR %#lx+%zu (access %#x) after %s: %s",
		     t->name, n, addr + off, addr, len, s->access, after,
		     ibv_wc_status_str(st));
		return;
	}
	bad = bad_or_zero(rg->p.buf, churn_want + (addr + off -
						   (uintptr_t)ARENA), n);
	if (bad >= 0) {
		fail("%s: MR %#lx+%zu (access %#x) reads 0x%02x at %#lx after %s, expected 0x%02x or 0",
		     t->name, addr, len, s->access, rg->p.buf[bad],
		     addr + off + bad, after,
		     churn_want[addr + off + bad - (uintptr_t)ARENA]);
		return;
	}
	count_ok(OP_MR_READ);
	if (!(s->access & IBV_ACCESS_REMOTE_WRITE))
		return;

	memcpy(rg->p.buf, churn_want + (addr + off - (uintptr_t)ARENA), n);
	st = pair_rdma(&rg->p, IBV_WR_RDMA_WRITE, 0, n, addr + off,
		       s->mr->rkey, "mr write");
	if (st < 0)
		return;
	if (st != IBV_WC_SUCCESS) {
		fail("%s: WRITE to MR %#lx+%zu after %s: %s", t->name, addr,
		     len, after, ibv_wc_status_str(st));
		return;
	}
	memset(rg->p.buf, 0xa5, n);
	st = pair_rdma(&rg->p, IBV_WR_RDMA_READ, 0, n, addr + off,
		       s->mr->rkey, "mr read back");
	if (st < 0)
		return;
	bad = bad_exact(rg->p.buf, churn_want + (addr + off -
						 (uintptr_t)ARENA), n);
	if (st != IBV_WC_SUCCESS || bad >= 0) {
		fail("%s: writable MR %#lx+%zu after %s: READ back %s, byte %ld 0x%02x",
		     t->name, addr, len, after, ibv_wc_status_str(st), bad,
		     bad >= 0 ? rg->p.buf[bad] : 0);
		return;
	}
	count_ok(OP_MR_WRITE);
}

static void reg_query(struct reg *rg, struct slot *s)
{
	struct giftdv_mr_attr a = {};
	size_t n = span_pages((uintptr_t)s->mr->addr, s->mr->length);
	int err;

	err = giftdv_query_mr(s->mr, &a);
	if (err) {
		fail("%s: giftdv_query_mr: %s", rg->t->name, strerror(err));
		return;
	}
	if (a.npages != n || a.shared_pages > n || a.stale_pages > n ||
	    (!s->umem_gift && a.shared_pages)) {
		fail("%s: MR %p+%zu (access %#x): npages %llu (expected %zu), shared %llu, stale %llu",
		     rg->t->name, s->mr->addr, s->mr->length, s->access,
		     (unsigned long long)a.npages, n,
		     (unsigned long long)a.shared_pages,
		     (unsigned long long)a.stale_pages);
		return;
	}
	count_ok(OP_QUERY);
}

static void reg_new(struct reg *rg, struct slot *s)
{
	int access = random_access(rg->t);
	uintptr_t addr;
	size_t len;

	random_range(rg->t, access == GIFT, &addr, &len);
	slot_begin(s);
	__atomic_store_n(&s->mr, ibv_reg_mr(pd, (void *)addr, len, access),
			 __ATOMIC_RELAXED);
	s->access = access;
	s->umem_rw = access == RW;
	s->umem_gift = access == GIFT;
	slot_end(s);
	if (!s->mr) {
		count_err(reg_op(access), errno, E(EFAULT), "ibv_reg_mr");
		return;
	}
	count_ok(reg_op(access));
	reg_check(rg, s, "reg");
}

static void reg_rereg(struct reg *rg, struct slot *s)
{
	struct thread *t = rg->t;
	int flags, access = s->access, ret, err;
	uint64_t accepted = E(EFAULT);
	bool retake;
	uintptr_t addr = 0;
	size_t len = 0;
	enum op op;

	switch (rnd_below(t, 3)) {
	case 0:
		flags = IBV_REREG_MR_CHANGE_TRANSLATION;
		op = OP_REREG_TRANS;
		break;
	case 1:
		flags = IBV_REREG_MR_CHANGE_ACCESS;
		op = OP_REREG_ACCESS;
		break;
	default:
		flags = IBV_REREG_MR_CHANGE_TRANSLATION |
			IBV_REREG_MR_CHANGE_ACCESS;
		op = OP_REREG_BOTH;
		break;
	}
	if (flags & IBV_REREG_MR_CHANGE_ACCESS)
		access = random_access(t);
	if (flags & IBV_REREG_MR_CHANGE_TRANSLATION) {
		random_range(t, access == GIFT, &addr, &len);
		/* Sometimes the same range: takes its current pages. */
		if (chance(t, 30)) {
			addr = (uintptr_t)s->mr->addr;
			len = s->mr->length;
		}
	}
	/* Over 2 MiB stays gift: a copy of all of it costs too much. */
	if ((flags & IBV_REREG_MR_CHANGE_ACCESS) &&
	    ((flags & IBV_REREG_MR_CHANGE_TRANSLATION) ? len : s->mr->length) >
	    HPAGE)
		access = GIFT;
	/*
	 * Adding or dropping gift takes the range anew, as a new
	 * translation does; widening a read-only pin in place is refused.
	 */
	retake = (flags & IBV_REREG_MR_CHANGE_TRANSLATION) ||
		 (access == GIFT) != s->umem_gift;
	if (!retake && access == RW && !s->umem_rw)
		accepted = E(EACCES);
	slot_begin(s);
	ret = ibv_rereg_mr(s->mr, flags, NULL, (void *)addr, len,
			   flags & IBV_REREG_MR_CHANGE_ACCESS ? access : 0);
	err = errno;
	if (!ret) {
		s->access = access;
		if (retake) {
			s->umem_rw = access == RW;
			s->umem_gift = access == GIFT;
		}
	}
	slot_end(s);
	if (ret) {
		if (ret != IBV_REREG_MR_ERR_CMD)
			fail("%s: ibv_rereg_mr returned %d", t->name, ret);
		else if (count_err(op, err, accepted, "ibv_rereg_mr"))
			/* The MR is as it was. */
			reg_check(rg, s, "failed rereg");
		return;
	}
	if (accepted == E(EACCES))
		fail("%s: rereg of a read-only pinned MR to writable without a new translation succeeded",
		     t->name);
	count_ok(op);
	reg_check(rg, s, "rereg");
}

/* Where the racer READs most while it is set. */
static struct slot *hot_slot;

/*
 * The MR's translation taken anew back to back for a moment (each time
 * the old pages are released while the racer may be reading them).
 */
static void reg_burst(struct reg *rg, struct slot *s)
{
	long long until = gift_now_us() + 200000LL * slow;
	uintptr_t addr = (uintptr_t)s->mr->addr;
	size_t len = s->mr->length;
	int ret, err;

	__atomic_store_n(&hot_slot, s, __ATOMIC_RELAXED);
	while (!stopping() && gift_now_us() < until) {
		slot_begin(s);
		ret = ibv_rereg_mr(s->mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL,
				   (void *)addr, len, 0);
		err = errno;
		if (!ret) {
			s->umem_rw = s->access == RW;
			s->umem_gift = s->access == GIFT;
		}
		slot_end(s);
		if (ret) {
			count_err(OP_REREG_TRANS, err, E(EFAULT), "rereg");
			break;
		}
		count_ok(OP_REREG_TRANS);
	}
	__atomic_store_n(&hot_slot, NULL, __ATOMIC_RELAXED);
	reg_check(rg, s, "rereg burst");
}

static void *reg_main(void *arg)
{
	struct reg *rg = arg;
	struct thread *t = rg->t;
	struct slot *s;
	int r;

	while (!stopping()) {
		s = &rg->slot[rnd_below(t, NSLOT)];
		if (!s->mr) {
			beat(t, "reg");
			reg_new(rg, s);
			continue;
		}
		r = rnd_below(t, 100);
		if (r < 40) {
			beat(t, "rereg");
			reg_rereg(rg, s);
		} else if (r < 60) {
			beat(t, "dereg");
			slot_begin(s);
			if (ibv_dereg_mr(s->mr))
				fail("%s: ibv_dereg_mr: %s", t->name,
				     strerror(errno));
			else
				count_ok(OP_DEREG);
			__atomic_store_n(&s->mr, NULL, __ATOMIC_RELAXED);
			slot_end(s);
		} else if (r < 75) {
			beat(t, "query");
			reg_query(rg, s);
		} else if (r < 85) {
			beat(t, "rereg burst");
			reg_burst(rg, s);
		} else {
			beat(t, "check");
			reg_check(rg, s, "nothing");
		}
	}
	beat(t, "done");
	return NULL;
}

/* The racer: READs of the reg threads' MRs while they change */

static struct pair racer_pair;

static void race_read(struct thread *t)
{
	struct slot *s = __atomic_load_n(&hot_slot, __ATOMIC_RELAXED);
	struct pair *p = &racer_pair;
	size_t len, n, off;
	uintptr_t addr;
	uint32_t rkey;
	uint64_t gen;
	bool raced;
	long bad;
	int st;

	if (!s || chance(t, 20))
		s = &regs[rnd_below(t, NREG)].slot[rnd_below(t, NSLOT)];
	/* Odd: the MR is changing right now; the READ races it. */
	gen = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&s->mr, __ATOMIC_RELAXED)) {
		usleep(200);
		return;
	}
	rkey = __atomic_load_n(&s->rkey, __ATOMIC_RELAXED);
	addr = __atomic_load_n(&s->addr, __ATOMIC_RELAXED);
	len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
	if (addr < (uintptr_t)ARENA || !len ||
	    addr + len > (uintptr_t)ARENA + CHURN_TOTAL)
		return;		/* torn: the generation changed meanwhile */
	n = 1 + rnd_below(t, len < max_msg ? len : max_msg);
	off = rnd_below(t, len - n + 1);
	memset(p->buf, 0xa5, n);
	st = pair_rdma(p, IBV_WR_RDMA_READ, 0, n, addr + off, rkey,
		       "racing read");
	if (st < 0)
		return;
	raced = (gen & 1) || __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST) != gen;
	if (st == IBV_WC_SUCCESS) {
		bad = bad_or_zero(p->buf, churn_want + (addr + off -
							(uintptr_t)ARENA), n);
		if (bad >= 0) {
			fail("racer: MR %#lx+%zu reads 0x%02x at %#lx, expected 0x%02x or 0 (raced: %d)",
			     addr, len, p->buf[bad], addr + off + bad,
			     churn_want[addr + off + bad - (uintptr_t)ARENA],
			     raced);
			return;
		}
		count_ok(OP_RACE_READ);
		return;
	}
	if (!raced || (st != IBV_WC_REM_ACCESS_ERR &&
		       st != IBV_WC_RETRY_EXC_ERR)) {
		fail("racer: READ of %zu bytes at %#lx of MR %#lx+%zu: %s (raced: %d)",
		     n, addr + off, addr, len, ibv_wc_status_str(st), raced);
		return;
	}
	__atomic_add_fetch(&op_err[OP_RACE_READ][st == IBV_WC_REM_ACCESS_ERR ?
					       EACCES : ETIMEDOUT], 1,
			   __ATOMIC_RELAXED);
	if (pair_connect(p))
		fail("racer: cannot reconnect the QPs");
}

/*
 * A READ of a reg thread's MR, and both QPs destroyed while it is in
 * flight (the responder may hold the MR for its reply); then new QPs.
 */
static void race_destroy(struct thread *t)
{
	struct slot *s = &regs[rnd_below(t, NREG)].slot[rnd_below(t, NSLOT)];
	struct pair *p = &racer_pair;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	size_t len;
	int i;

	len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
	len = len < max_msg ? len : max_msg;
	rdma_wr(&wr, &sge, IBV_WR_RDMA_READ, 1, p->buf, p->mr->lkey, len,
		__atomic_load_n(&s->addr, __ATOMIC_RELAXED),
		__atomic_load_n(&s->rkey, __ATOMIC_RELAXED));
	if (ibv_post_send(p->qp[0], &wr, &bad)) {
		fail("racer: ibv_post_send failed");
		return;
	}
	usleep(rnd_below(t, 1000));
	for (i = 0; i < 2; i++) {
		if (ibv_destroy_qp(p->qp[i]))
			fail("racer: ibv_destroy_qp: %s", strerror(errno));
		p->qp[i] = NULL;
	}
	gift_drain_cq(p->cq);
	if (pair_create_qps(p) || pair_connect(p))
		fail("racer: cannot create and connect new QPs");
	else
		count_ok(OP_QP_DESTROY);
}

static void *racer_main(void *arg)
{
	struct thread *t = arg;

	while (!stopping()) {
		if (chance(t, 2)) {
			beat(t, "destroy qps");
			race_destroy(t);
			continue;
		}
		beat(t, "racing read");
		race_read(t);
	}
	beat(t, "done");
	return NULL;
}

/* Memory churn over the churn area */

/* A random page-aligned part of range r: [*p, *p + *len). */
static void random_part(struct thread *t, struct churn_range *r,
			uint8_t **p, size_t *len)
{
	size_t npages = CHURN_LEN / PAGE, first, n;

	first = rnd_below(t, npages);
	n = 1 + rnd_below(t, npages - first);
	*p = r->p + first * PAGE;
	*len = n * PAGE;
}

/*
 * madvise() of a range that may have a hole right now (a munmap + mmap
 * in progress): ENOMEM for the hole is always accepted.
 */
static void mm_madvise(struct thread *t, enum op what, void *p, size_t len,
		       int advice, uint64_t accepted)
{
	accepted |= E(ENOMEM);
	if (madvise(p, len, advice))
		count_err(what, errno, accepted, "madvise");
	else
		count_ok(what);
}

static void mm_verify(struct churn_range *r, const char *who)
{
	size_t base = r->p - ARENA;
	long bad;

	pthread_rwlock_rdlock(&r->lock);
	bad = bad_or_zero(r->p, churn_want + base, CHURN_LEN);
	if (bad >= 0)
		fail("%s: the process reads 0x%02x at %p, expected 0x%02x or 0",
		     who, r->p[bad], r->p + bad, churn_want[base + bad]);
	else
		count_ok(OP_VERIFY);
	pthread_rwlock_unlock(&r->lock);
}

static void mm_refill(struct churn_range *r, uint8_t *p, size_t len)
{
	pthread_rwlock_rdlock(&r->lock);
	memcpy(p, churn_want + (p - ARENA), len);
	pthread_rwlock_unlock(&r->lock);
	count_ok(OP_REFILL);
}

static void mm_remap(struct thread *t, struct churn_range *r)
{
	pthread_rwlock_wrlock(&r->lock);
	if (munmap(r->p, CHURN_LEN)) {
		fail("%s: munmap: %s", t->name, strerror(errno));
		goto out;
	}
	/* A moment for registrations to find the hole. */
	usleep(rnd_below(t, 3000));
	if (!map_at(r->p, CHURN_LEN)) {
		fail("%s: mmap at %p: %s", t->name, r->p, strerror(errno));
		goto out;
	}
	madvise(r->p, CHURN_LEN, r->huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	if (r->merge)
		madvise(r->p, CHURN_LEN, MADV_MERGEABLE);
	count_ok(OP_REMAP);
out:
	pthread_rwlock_unlock(&r->lock);
	if (chance(t, 80))
		mm_refill(r, r->p, CHURN_LEN);
}

/* The range moves to the scratch address and back: same pages. */
static void mm_mremap(struct thread *t, struct churn_range *r)
{
	static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
	void *p;

	pthread_mutex_lock(&scratch_lock);
	pthread_rwlock_wrlock(&r->lock);
	p = mremap(r->p, CHURN_LEN, CHURN_LEN, MREMAP_MAYMOVE | MREMAP_FIXED,
		   SCRATCH);
	if (p == MAP_FAILED) {
		/* EFAULT: the range spans several vmas now. */
		count_err(OP_MREMAP, errno, E(EFAULT) | E(ENOMEM), "mremap");
		goto out;
	}
	usleep(rnd_below(t, 3000));
	p = mremap(SCRATCH, CHURN_LEN, CHURN_LEN, MREMAP_MAYMOVE | MREMAP_FIXED,
		   r->p);
	if (p != r->p)
		fail("%s: mremap back to %p: %s", t->name, r->p,
		     strerror(errno));
	else
		count_ok(OP_MREMAP);
out:
	pthread_rwlock_unlock(&r->lock);
	pthread_mutex_unlock(&scratch_lock);
}

static void mm_mprotect(struct thread *t, struct churn_range *r)
{
	int prot = chance(t, 50) ? PROT_READ : PROT_NONE;
	size_t len;
	uint8_t *p;

	random_part(t, r, &p, &len);
	pthread_rwlock_wrlock(&r->lock);
	if (mprotect(p, len, prot)) {
		fail("%s: mprotect: %s", t->name, strerror(errno));
	} else {
		usleep(rnd_below(t, 3000));
		if (mprotect(p, len, PROT_READ | PROT_WRITE))
			fail("%s: mprotect back: %s", t->name,
			     strerror(errno));
		else
			count_ok(OP_MPROTECT);
	}
	pthread_rwlock_unlock(&r->lock);
}

static void *mm_main(void *arg)
{
	struct thread *t = arg;
	struct churn_range *r;
	size_t len;
	uint8_t *p;

	while (!stopping()) {
		r = &churn[rnd_below(t, NCHURN)];
		random_part(t, r, &p, &len);
		switch (rnd_below(t, 18)) {
		case 0:
			beat(t, "dontneed");
			mm_madvise(t, OP_DONTNEED, p, len, MADV_DONTNEED, 0);
			break;
		case 1:
			/* Lazily freed: pattern or zero later, as DONTNEED. */
			beat(t, "free");
			mm_madvise(t, OP_FREE, p, len, MADV_FREE, 0);
			break;
		case 14:
			beat(t, "mremap");
			mm_mremap(t, r);
			break;
		case 15:
			/* Children see zeros there: pattern or zero too. */
			beat(t, "wipeonfork");
			mm_madvise(t, OP_WIPEONFORK, r->p, CHURN_LEN,
				   chance(t, 50) ? MADV_WIPEONFORK :
				   MADV_KEEPONFORK, 0);
			break;
		case 16:
			/* EINVAL, EFAULT: not writable (mprotect) right now. */
			beat(t, "populate");
			mm_madvise(t, OP_POPULATE, p, len, chance(t, 50) ?
				   MADV_POPULATE_READ : MADV_POPULATE_WRITE,
				   E(EINVAL) | E(EFAULT));
			break;
		case 2:
			beat(t, "remap");
			mm_remap(t, r);
			break;
		case 3:
			beat(t, "mprotect");
			mm_mprotect(t, r);
			break;
		case 4:
			beat(t, "mergeable");
			if (chance(t, 75)) {
				r->merge = 1;
				mm_madvise(t, OP_MERGEABLE, r->p, CHURN_LEN,
					   MADV_MERGEABLE, E(EAGAIN) |
					   E(ENOMEM));
			} else {
				r->merge = 0;
				mm_madvise(t, OP_UNMERGEABLE, r->p, CHURN_LEN,
					   MADV_UNMERGEABLE, E(EAGAIN) |
					   E(ENOMEM));
			}
			break;
		case 5:
			beat(t, "thp");
			if (chance(t, 60)) {
				r->huge = 1;
				mm_madvise(t, OP_HUGEPAGE, r->p, CHURN_LEN,
					   MADV_HUGEPAGE, 0);
			} else {
				r->huge = 0;
				mm_madvise(t, OP_NOHUGEPAGE, r->p, CHURN_LEN,
					   MADV_NOHUGEPAGE, 0);
			}
			break;
		case 6:
			beat(t, "collapse");
			mm_madvise(t, OP_COLLAPSE, r->p, CHURN_LEN,
				   MADV_COLLAPSE, E(EAGAIN) | E(ENOMEM) |
				   E(EINVAL) | E(EBUSY));
			break;
		case 7:
		case 8:
			beat(t, "pageout");
			mm_madvise(t, OP_PAGEOUT, p, len, MADV_PAGEOUT, 0);
			break;
		case 9:
		case 10:
		case 11:
			beat(t, "refill");
			mm_refill(r, p, len);
			break;
		default:
			beat(t, "verify");
			mm_verify(r, t->name);
			break;
		}
		usleep(rnd_below(t, 2000));
	}
	beat(t, "done");
	return NULL;
}

/*
 * On-demand paging: ODP MRs over memory that changes under them
 *
 * Each owner thread has its part of the ODP area (ODP_LEN bytes, never
 * pinned by anyone) and registers, re-registers and deregisters ODP MRs
 * over it (read-write, remote-read-only, local-write, read-only gift),
 * prefetches them (ibv_advise_mr(), synchronous and not), and moves data
 * through them with RDMA READ and WRITE, from pinned or ODP local
 * buffers, deregistering MRs and destroying its QPs with operations in
 * flight now and then. The odpmm thread meanwhile zaps (MADV_DONTNEED,
 * munmap + mmap, mmap(MAP_FIXED) over the range), protects (mprotect
 * PROT_READ or PROT_NONE for a moment), pages out, populates and
 * collapses random parts of the whole area, without telling anyone but
 * through two counters per page, which are odd while it works on the
 * page:
 *  - odp_zgen: content zaps, after which the page reads zeros;
 *  - odp_agen: access changes (mprotect, the hole of munmap + mmap).
 *
 * The owner alone writes its part (WRITEs, CPU refills), each time with
 * new bytes (its address and a version number), and keeps an image of
 * it, with per page the zap count at which the image was right and how
 * exactly: EXACT, MIXED (each byte the image or zero: a zap overlapped
 * the write) or UNKNOWN (a write failed or was cut short). A page zapped
 * since reads all zeros; a READ (or CPU read) that no zap overlapped
 * must match the page exactly as known, one that a zap overlapped must
 * read what was there or zeros. Bytes of an old version are stale data
 * the device must never see. Errors: an operation no access change
 * overlapped must succeed (a WRITE to a read-only MR must fail, with a
 * remote access error); one that an access change overlapped may fail
 * with a remote access error, or be flushed after one.
 */

#define NODP			2		/* owner threads */
#define ODP_LEN			HPAGE		/* an owner's part */
#define ODP_NPG			(ODP_LEN / PAGE)
#define ODP_BASE		(ARENA + 64 * MIB)
#define ODP_PAGES		(NODP * ODP_NPG)
#define ODP_NSLOT		4		/* MRs per owner */
#define OD			IBV_ACCESS_ON_DEMAND
#define ODP_RW			(RW | OD)
#define ODP_RO			(RO | OD)
#define ODP_LW			(IBV_ACCESS_LOCAL_WRITE | RO | OD)
#define ODP_GIFT		(GIFT | OD)

static uint32_t odp_zgen[ODP_PAGES];	/* content zaps: odd while one runs */
static uint32_t odp_agen[ODP_PAGES];	/* access changes: odd likewise */

enum odp_mode { ODP_EXACT, ODP_MIXED, ODP_UNKNOWN, ODP_ZERO };

static const char *const odp_mode_names[] = {
	"exact", "image or zero", "unknown", "zero",
};

/* An owner's MR; others read it without locks: gen is odd while it changes. */
struct odp_slot {
	uint64_t gen;
	struct ibv_mr *mr;
	uint32_t rkey;
	uintptr_t addr;
	size_t len;
	int access;
	bool writable;			/* registered writable */
};

struct odp_owner {
	struct thread *t;
	int idx;
	struct pair p;			/* p.buf: pinned local buffer */
	uint8_t *lbuf;			/* ODP local buffer (lmr) */
	struct ibv_mr *lmr;
	size_t llen;
	uint8_t *area;			/* ODP_BASE + idx * ODP_LEN */
	uint8_t *img;			/* what the area holds, see above */
	uint8_t *cpu;			/* CPU reads of the area land here */
	uint32_t img_gen[ODP_NPG];	/* odp_zgen at which img holds */
	uint8_t mode[ODP_NPG];
	uint32_t wop[ODP_NPG];		/* the write operation that set it */
	uint32_t version;		/* of the current write operation */
	/* The last writes of each page, for a failure's report. */
	struct odp_ev {
		uint32_t z0, z1, version;
		uint16_t off, len;
		uint8_t ok, mode;
	} hist[ODP_NPG][4];
	uint8_t nhist[ODP_NPG];
	/* read: CPU access to the area; write: mprotect, munmap */
	pthread_rwlock_t lock;
	struct odp_slot slot[ODP_NSLOT];
	long long t0;			/* when the operation was posted */
	long retries0;			/* odp_fault_retries then */
	/* odp_zgen and odp_agen of the whole area, before and after */
	uint32_t z0[ODP_PAGES], z1[ODP_PAGES], a0[ODP_PAGES], a1[ODP_PAGES];
};

static struct odp_owner odps[NODP];
static const char *const odp_cnt_names[] = {
	"odp_faults", "odp_pages_faulted", "odp_fault_retries",
	"odp_invalidations", "odp_pages_invalidated", "odp_prefetches",
	"odp_engine_waits", "odp_rnr_naks",
};
static long odp_cnt0[ARRAY_SIZE(odp_cnt_names)];

static long odp_counter(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s",
		 gift_env("GIFT_IBDEV"), name);
	return gift_read_long(path);
}

static long odp_counter(const char *name);

static void odp_snap(uint32_t *z, uint32_t *a)
{
	size_t i;

	for (i = 0; i < ODP_PAGES; i++) {
		z[i] = __atomic_load_n(&odp_zgen[i], __ATOMIC_SEQ_CST);
		a[i] = __atomic_load_n(&odp_agen[i], __ATOMIC_SEQ_CST);
	}
}

static size_t odp_page(const void *p)
{
	return ((const uint8_t *)p - ODP_BASE) / PAGE;
}

/* Whether gen changed (or was changing) over [p, p + len) between snaps. */
static bool odp_moved(const uint32_t *g0, const uint32_t *g1, const void *p,
		      size_t len)
{
	size_t i, last = odp_page((const uint8_t *)p + (len ? len - 1 : 0));

	for (i = odp_page(p); i <= last; i++)
		if (g0[i] != g1[i] || (g0[i] & 1))
			return true;
	return false;
}

/* What page pg of the owner held when odp_zgen of it was g. */
static enum odp_mode odp_prior(struct odp_owner *o, size_t pg, uint32_t g)
{
	uint32_t ig = o->img_gen[pg];

	if (!(g & 1))
		return g == ig ? o->mode[pg] : ODP_ZERO;
	/* A zap runs: what was there, or zeros. */
	if (g + 1 == ig || g - 1 == ig)
		return o->mode[pg] == ODP_UNKNOWN ? ODP_UNKNOWN : ODP_MIXED;
	return ODP_ZERO;
}

/*
 * got[0, len), read at area offset aoff while odp_zgen went from z0 to
 * z1: the first byte the model excludes, or -1; *mode what was expected.
 */
static long odp_bad(struct odp_owner *o, size_t aoff, const uint8_t *got,
		    size_t len, enum odp_mode *mode)
{
	size_t i, j, n, pg, gpg;
	enum odp_mode m;

	for (i = 0; i < len; i += n) {
		pg = (aoff + i) / PAGE;
		gpg = o->idx * ODP_NPG + pg;
		n = PAGE - (aoff + i) % PAGE;
		if (n > len - i)
			n = len - i;
		m = odp_prior(o, pg, o->z0[gpg]);
		if (m == ODP_EXACT && o->z0[gpg] != o->z1[gpg])
			m = ODP_MIXED;
		*mode = m;
		switch (m) {
		case ODP_EXACT:
			if (memcmp(got + i, o->img + aoff + i, n))
				for (j = i; j < i + n; j++)
					if (got[j] != o->img[aoff + j])
						return j;
			break;
		case ODP_MIXED:
			for (j = i; j < i + n; j++)
				if (got[j] && got[j] != o->img[aoff + j])
					return j;
			break;
		case ODP_ZERO:
			for (j = i; j < i + n; j++)
				if (got[j])
					return j;
			break;
		case ODP_UNKNOWN:
			break;
		}
	}
	return -1;
}

/*
 * src[0, len) was written at area offset aoff (ok: the write completed;
 * else it may have landed in part) while odp_zgen went from z0 to z1.
 */
static void odp_wrote(struct odp_owner *o, size_t aoff, const uint8_t *src,
		      size_t len, bool ok)
{
	size_t i, n, pg, gpg;
	enum odp_mode m;

	for (i = 0; i < len; i += n) {
		pg = (aoff + i) / PAGE;
		gpg = o->idx * ODP_NPG + pg;
		n = PAGE - (aoff + i) % PAGE;
		if (n > len - i)
			n = len - i;
		/* An earlier window of this operation moved img_gen. */
		m = o->wop[pg] == o->version ? o->mode[pg] :
		    odp_prior(o, pg, o->z0[gpg]);
		if (m == ODP_ZERO) {
			memset(o->img + pg * PAGE, 0, PAGE);
			m = ODP_EXACT;
		}
		if (n == PAGE)
			m = ODP_EXACT;
		if (!ok)
			m = ODP_UNKNOWN;
		else if (m == ODP_EXACT &&
			 (o->z0[gpg] != o->z1[gpg] || (o->z0[gpg] & 1)))
			m = ODP_MIXED;
		memcpy(o->img + aoff + i, src + i, n);
		o->mode[pg] = m;
		o->wop[pg] = o->version;
		/* A zap still running ends with our bytes or zeros. */
		o->img_gen[pg] = (o->z1[gpg] + 1) & ~1U;
		o->hist[pg][o->nhist[pg]++ % 4] = (struct odp_ev){
			.z0 = o->z0[gpg], .z1 = o->z1[gpg],
			.version = o->version, .off = (aoff + i) % PAGE,
			.len = n, .ok = ok, .mode = m,
		};
	}
}

/* New bytes for area offset aoff, len bytes, into dst. */
static void odp_fill(struct odp_owner *o, uint8_t *dst, size_t aoff,
		     size_t len)
{
	uint32_t s = seed + 1000 + o->idx * 0x10000 + o->version;
	size_t i;

	for (i = 0; i < len; i++)
		dst[i] = gift_pat(aoff + i, s);
}

static void odp_slot_begin(struct odp_slot *s)
{
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_SEQ_CST);
}

static void odp_slot_end(struct odp_slot *s)
{
	if (s->mr) {
		__atomic_store_n(&s->rkey, s->mr->rkey, __ATOMIC_RELAXED);
		__atomic_store_n(&s->addr, (uintptr_t)s->mr->addr,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&s->len, s->mr->length, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&s->gen, 1, __ATOMIC_SEQ_CST);
}

static int odp_random_access(struct thread *t)
{
	int r = rnd_below(t, 100);

	return r < 45 ? ODP_RW : r < 65 ? ODP_RO : r < 80 ? ODP_LW : ODP_GIFT;
}

static const char *odp_access_name(int access)
{
	return access == ODP_RW ? "rw" : access == ODP_RO ? "ro" :
	       access == ODP_LW ? "local-write" : access == ODP_GIFT ?
	       "gift" : "?";
}

/* A window of the slot's MR: area offset and length. */
static void odp_window(struct odp_owner *o, struct odp_slot *s, size_t *aoff,
		       size_t *len)
{
	size_t mlen = s->mr->length, moff = (uint8_t *)s->mr->addr - o->area;

	*len = 1 + rnd_below(o->t, mlen < max_msg ? mlen : max_msg);
	*aoff = moff + rnd_below(o->t, mlen - *len + 1);
}

static const char *const odp_op_names[] = { "READ", "WRITE" };

/*
 * Posts n READs or WRITEs between the local buffer (lbuf through lkey,
 * window i at i * max_msg) and area offsets aoff[i] through rkey, and
 * waits for them: statuses in st[] by work request. False when they did
 * not complete (reported).
 */
static bool odp_post(struct odp_owner *o, bool write, uint8_t *lbuf,
		     uint32_t lkey, uint32_t rkey, const size_t *aoff,
		     const size_t *len, int n, int *st)
{
	struct ibv_send_wr wr[MAX_BATCH], *bad;
	struct ibv_sge sge[MAX_BATCH];
	struct ibv_wc wc[MAX_BATCH];
	int i, err;

	for (i = 0; i < n; i++) {
		rdma_wr(&wr[i], &sge[i], write ? IBV_WR_RDMA_WRITE :
			IBV_WR_RDMA_READ, i, lbuf + i * max_msg, lkey, len[i],
			(uintptr_t)o->area + aoff[i], rkey);
		if (i)
			wr[i - 1].next = &wr[i];
	}
	o->t0 = gift_now_us();
	o->retries0 = odp_counter("odp_fault_retries");
	err = ibv_post_send(o->p.qp[0], wr, &bad);
	if (err) {
		fail("%s: ODP %s: ibv_post_send: %s", o->t->name,
		     odp_op_names[write], strerror(err));
		return false;
	}
	if (pair_wait(&o->p, wc, n, write ? "odp write" : "odp read"))
		return false;
	for (i = 0; i < n; i++)
		st[i] = -1;
	for (i = 0; i < n; i++)
		if (wc[i].wr_id < (uint64_t)n)
			st[wc[i].wr_id] = wc[i].status;
	return true;
}

/* Completion errors odp_judge() may accept (counted by errno). */
#define ODP_REM		1	/* remote access error: EACCES */
#define ODP_LOC		2	/* local protection error: EPROTO */
#define ODP_FLUSH	4	/* flushed: ECANCELED */
#define ODP_TIMEOUT	8	/* retries exhausted: ETIMEDOUT */

/*
 * Judges the statuses of n operations on windows aoff[i]/len[i]. An
 * error must have met an access change (a remote access error, then
 * flushes), or be one that accept says may happen anyway. Returns 1 when
 * all succeeded, 0 when the errors were accepted (the QPs reconnected),
 * -1 on a failure (reported).
 */
static int odp_judge(struct odp_owner *o, enum op op, const char *what,
		     const size_t *aoff, const size_t *len, int n,
		     const int *st, int accept)
{
	bool all = true, failed = false, moved;
	int i, e, kind;

	for (i = 0; i < n; i++) {
		if (st[i] == IBV_WC_SUCCESS)
			continue;
		all = false;
		e = kind = 0;
		if (st[i] == IBV_WC_REM_ACCESS_ERR) {
			e = EACCES;
			kind = ODP_REM;
		} else if (st[i] == IBV_WC_LOC_PROT_ERR) {
			e = EPROTO;
			kind = ODP_LOC;
		} else if (st[i] == IBV_WC_WR_FLUSH_ERR) {
			e = ECANCELED;
			kind = ODP_FLUSH;
		} else if (st[i] == IBV_WC_RETRY_EXC_ERR) {
			e = ETIMEDOUT;
			kind = ODP_TIMEOUT;
		}
		moved = odp_moved(o->a0, o->a1, o->area + aoff[i], len[i]);
		/*
		 * A fault that invalidations of its MR keep restarting
		 * (with the memcg reclaiming) can outlast the requester's
		 * retries: the responder waits for it without a NAK.
		 */
		if (kind == ODP_TIMEOUT &&
		    (moved || odp_moved(o->z0, o->z1, o->area + aoff[i],
					len[i])))
			say("# %s: %s %d of %d: retries exhausted after %lld ms, %ld fault retries meanwhile\n",
			    o->t->name, what, i, n,
			    (gift_now_us() - o->t0) / 1000,
			    odp_counter("odp_fault_retries") - o->retries0);
		else if (kind == ODP_TIMEOUT)
			moved = false;
		else
			moved = moved && kind == ODP_REM;
		if ((kind & accept) || moved || (kind == ODP_FLUSH && failed)) {
			__atomic_add_fetch(&op_err[op][e], 1, __ATOMIC_RELAXED);
			failed = true;
			continue;
		}
		fail("%s: %s %d of %d, %zu bytes at area offset %#zx: %s%s (after %lld ms, %ld fault retries meanwhile)",
		     o->t->name, what, i, n, len[i], aoff[i],
		     st[i] < 0 ? "no completion" :
		     ibv_wc_status_str(st[i]),
		     kind == ODP_REM ? " (no access change overlapped it)" :
		     "", (gift_now_us() - o->t0) / 1000,
		     odp_counter("odp_fault_retries") - o->retries0);
		return -1;
	}
	if (!all && pair_connect(&o->p)) {
		fail("%s: cannot reconnect the QPs", o->t->name);
		return -1;
	}
	return all;
}

/*
 * After a failure at area offset aoff: the page's last writes, and which
 * versions of the owner's bytes got[0, len) are.
 */
static void odp_explain(struct odp_owner *o, size_t aoff, const uint8_t *got,
			size_t len)
{
	size_t pg = aoff / PAGE, n = len < 16 ? len : 16, j;
	uint32_t v, s0 = seed + 1000 + o->idx * 0x10000;
	struct odp_ev *e;
	int i, found = 0;

	for (i = 0; i < 4 && i < o->nhist[pg]; i++) {
		e = &o->hist[pg][(o->nhist[pg] - 1 - i) % 4];
		say("#   page %zu, write -%d: version %u, bytes %u+%u, zaps %u..%u, %s, then %s\n",
		    pg, i + 1, e->version, e->off, e->len, e->z0, e->z1,
		    e->ok ? "completed" : "failed", odp_mode_names[e->mode]);
	}
	for (v = 0; v <= o->version && found < 8; v++) {
		for (j = 0; j < n; j++)
			if (got[j] != gift_pat(aoff + j, s0 + v))
				break;
		if (j == n) {
			say("#   the %zu bytes read there are version %u (now %u)\n",
			    n, v, o->version);
			found++;
		}
	}
	if (!found)
		say("#   the %zu bytes read there are no version of the owner's\n",
		    n);
}

/* Checks what READ i brought into buf: see odp_bad(). */
static bool odp_check_read(struct odp_owner *o, const char *what,
			   const uint8_t *buf, size_t aoff, size_t len)
{
	enum odp_mode m = ODP_EXACT;
	long bad = odp_bad(o, aoff, buf, len, &m);
	size_t pg;

	if (bad < 0)
		return true;
	pg = (aoff + bad) / PAGE;
	fail("%s: %s at area offset %#zx (page %zu, zaps %u..%u, image of zap %u) reads 0x%02x, expected %s (image 0x%02x)",
	     o->t->name, what, aoff + bad, pg,
	     o->z0[o->idx * ODP_NPG + pg], o->z1[o->idx * ODP_NPG + pg],
	     o->img_gen[pg], buf[bad], odp_mode_names[m],
	     o->img[aoff + bad]);
	odp_explain(o, aoff + bad, buf + bad, len - bad);
	return false;
}

/* The local buffer of an operation: the ODP one, now and then dropped. */
static uint8_t *odp_local(struct odp_owner *o, bool odp, uint32_t *lkey)
{
	if (!odp) {
		*lkey = o->p.mr->lkey;
		return o->p.buf;
	}
	*lkey = o->lmr->lkey;
	if (chance(o->t, 20))
		madvise(o->lbuf, o->llen, MADV_DONTNEED);
	return o->lbuf;
}

static void odp_read(struct odp_owner *o, struct odp_slot *s, int n)
{
	size_t aoff[MAX_BATCH], len[MAX_BATCH];
	bool lodp = chance(o->t, 50);
	int st[MAX_BATCH], i;
	uint8_t *lbuf;
	uint32_t lkey;

	lbuf = odp_local(o, lodp, &lkey);
	for (i = 0; i < n; i++) {
		odp_window(o, s, &aoff[i], &len[i]);
		memset(lbuf + i * max_msg, 0xa5, len[i]);
	}
	/* The device finds the local pages in swap (or not). */
	if (lodp && chance(o->t, 20))
		madvise(o->lbuf, o->llen, MADV_PAGEOUT);
	odp_snap(o->z0, o->a0);
	if (!odp_post(o, false, lbuf, lkey, s->mr->rkey, aoff, len, n, st))
		return;
	odp_snap(o->z1, o->a1);
	for (i = 0; i < n; i++)
		if (st[i] == IBV_WC_SUCCESS &&
		    !odp_check_read(o, lodp ? "READ into ODP" : "READ",
				    lbuf + i * max_msg, aoff[i], len[i]))
			return;
	if (odp_judge(o, OP_ODP_READ, "READ", aoff, len, n, st, 0) > 0)
		count_ok(OP_ODP_READ);
}

static void odp_write(struct odp_owner *o, struct odp_slot *s, int n)
{
	size_t aoff[MAX_BATCH], len[MAX_BATCH];
	bool lodp = chance(o->t, 50), ok;
	int st[MAX_BATCH], i;
	uint8_t *lbuf;
	uint32_t lkey;

	lbuf = odp_local(o, lodp, &lkey);
	o->version++;
	for (i = 0; i < n; i++) {
		odp_window(o, s, &aoff[i], &len[i]);
		odp_fill(o, lbuf + i * max_msg, aoff[i], len[i]);
	}
	if (lodp && chance(o->t, 20))
		madvise(o->lbuf, o->llen, MADV_PAGEOUT);
	odp_snap(o->z0, o->a0);
	if (!odp_post(o, true, lbuf, lkey, s->mr->rkey, aoff, len, n, st))
		return;
	odp_snap(o->z1, o->a1);
	/* In order, as the responder executed them. */
	for (i = 0; i < n; i++)
		odp_wrote(o, aoff[i], lbuf + i * max_msg, len[i],
			  st[i] == IBV_WC_SUCCESS);
	ok = odp_judge(o, OP_ODP_WRITE, "WRITE", aoff, len, n, st, 0) > 0;
	if (ok)
		count_ok(OP_ODP_WRITE);
	/* Sometimes read it back at once, through the same MR. */
	if (ok && chance(o->t, 30)) {
		lbuf = odp_local(o, !lodp, &lkey);
		for (i = 0; i < n; i++)
			memset(lbuf + i * max_msg, 0xa5, len[i]);
		odp_snap(o->z0, o->a0);
		if (!odp_post(o, false, lbuf, lkey, s->mr->rkey, aoff, len, n,
			      st))
			return;
		odp_snap(o->z1, o->a1);
		for (i = 0; i < n; i++)
			if (st[i] == IBV_WC_SUCCESS &&
			    !odp_check_read(o, "READ after WRITE",
					    lbuf + i * max_msg, aoff[i],
					    len[i]))
				return;
		if (odp_judge(o, OP_ODP_READ, "READ after WRITE", aoff, len, n,
			      st, 0) > 0)
			count_ok(OP_ODP_READ);
	}
}

/* A WRITE to an MR without remote write: refused, nothing written. */
static void odp_write_refused(struct odp_owner *o, struct odp_slot *s)
{
	size_t aoff, len;
	uint32_t lkey;
	uint8_t *lbuf;
	int st;

	lbuf = odp_local(o, chance(o->t, 50), &lkey);
	odp_window(o, s, &aoff, &len);
	memset(lbuf, 0x3c, len);
	if (!odp_post(o, true, lbuf, lkey, s->mr->rkey, &aoff, &len, 1, &st))
		return;
	if (st != IBV_WC_REM_ACCESS_ERR) {
		fail("%s: WRITE to a %s ODP MR: %s, expected a remote access error",
		     o->t->name, odp_access_name(s->access),
		     ibv_wc_status_str(st));
		return;
	}
	count_ok(OP_ODP_WRITE_REFUSED);
	if (pair_connect(&o->p))
		fail("%s: cannot reconnect the QPs", o->t->name);
}

static void odp_prefetch(struct odp_owner *o, struct odp_slot *s)
{
	struct thread *t = o->t;
	bool sync = chance(t, 50), wr = s->access & IBV_ACCESS_LOCAL_WRITE;
	enum ibv_advise_mr_advice advice;
	struct ibv_sge sge;
	size_t aoff, len;
	int r = rnd_below(t, 10), ret;

	advice = r < 4 ? IBV_ADVISE_MR_ADVICE_PREFETCH :
		 r < 8 ? IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE :
		 IBV_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT;
	if (chance(t, 40)) {
		aoff = (uint8_t *)s->mr->addr - o->area;
		len = s->mr->length;
	} else {
		odp_window(o, s, &aoff, &len);
	}
	sge.addr = (uintptr_t)o->area + aoff;
	sge.length = len;
	sge.lkey = s->mr->lkey;
	odp_snap(o->z0, o->a0);
	ret = ibv_advise_mr(pd, advice, sync ? IBV_ADVISE_MR_FLAG_FLUSH : 0,
			    &sge, 1);
	odp_snap(o->z1, o->a1);
	if (advice == IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE && !wr) {
		if (ret != EACCES)
			fail("%s: write prefetch of a %s ODP MR: %d, expected EACCES",
			     t->name, odp_access_name(s->access), ret);
		else
			count_ok(OP_ODP_PREFETCH_REFUSED);
		return;
	}
	if (!ret) {
		count_ok(sync ? OP_ODP_PREFETCH_SYNC : OP_ODP_PREFETCH_ASYNC);
		return;
	}
	if (sync && ret == EFAULT &&
	    odp_moved(o->a0, o->a1, o->area + aoff, len)) {
		__atomic_add_fetch(&op_err[OP_ODP_PREFETCH_SYNC][EFAULT], 1,
				   __ATOMIC_RELAXED);
		return;
	}
	fail("%s: %s prefetch (advice %d) of %zu bytes at area offset %#zx of a %s ODP MR: %s",
	     t->name, sync ? "synchronous" : "asynchronous", advice, len, aoff,
	     odp_access_name(s->access), strerror(ret));
}

static void odp_reg(struct odp_owner *o, struct odp_slot *s)
{
	struct thread *t = o->t;
	int access = odp_random_access(t);
	size_t first, n, in = 0, len;

	if (chance(t, 10)) {
		first = 0;
		n = ODP_NPG;
	} else {
		first = rnd_below(t, ODP_NPG);
		n = 1 + rnd_below(t, 64);
		if (n > ODP_NPG - first)
			n = ODP_NPG - first;
	}
	len = n * PAGE;
	if (chance(t, 15)) {
		in = rnd_below(t, PAGE);
		len -= in + rnd_below(t, len - in);
	}
	odp_slot_begin(s);
	__atomic_store_n(&s->mr, ibv_reg_mr(pd, o->area + first * PAGE + in,
					    len, access), __ATOMIC_RELAXED);
	s->access = access;
	s->writable = access & IBV_ACCESS_LOCAL_WRITE;
	odp_slot_end(s);
	if (!s->mr) {
		fail("%s: ibv_reg_mr of a %s ODP MR over %zu bytes at area offset %#zx: %s",
		     t->name, odp_access_name(access), len, first * PAGE + in,
		     strerror(errno));
		return;
	}
	count_ok(access == ODP_RW ? OP_ODP_REG_RW : OP_ODP_REG_RO);
	/* Used at once, while the area changes: seed 004. */
	if (chance(t, 30))
		odp_prefetch(o, s);
	if (chance(t, 50))
		odp_read(o, s, 1);
}

static void odp_dereg(struct odp_owner *o, struct odp_slot *s)
{
	odp_slot_begin(s);
	if (ibv_dereg_mr(s->mr))
		fail("%s: ibv_dereg_mr of an ODP MR: %s", o->t->name,
		     strerror(errno));
	else
		count_ok(OP_ODP_DEREG);
	__atomic_store_n(&s->mr, NULL, __ATOMIC_RELAXED);
	odp_slot_end(s);
}

/* New access flags; the translation of an ODP MR cannot change. */
static void odp_rereg(struct odp_owner *o, struct odp_slot *s)
{
	struct thread *t = o->t;
	int access = odp_random_access(t), flags = IBV_REREG_MR_CHANGE_ACCESS;
	int ret, err, want = 0;

	if (chance(t, 10)) {
		flags |= IBV_REREG_MR_CHANGE_TRANSLATION;
		want = EOPNOTSUPP;
	} else if (chance(t, 5)) {
		access &= ~OD;
		want = EOPNOTSUPP;
	} else if ((access & IBV_ACCESS_LOCAL_WRITE) && !s->writable) {
		want = EACCES;
	}
	odp_slot_begin(s);
	ret = ibv_rereg_mr(s->mr, flags, NULL, s->mr->addr, s->mr->length,
			   access);
	err = errno;
	if (!ret)
		s->access = access;
	odp_slot_end(s);
	if (!want && !ret) {
		count_ok(OP_ODP_REREG);
		return;
	}
	if (want && ret == IBV_REREG_MR_ERR_CMD && err == want) {
		count_ok(OP_ODP_REREG_REFUSED);
		return;
	}
	fail("%s: rereg of a %s ODP MR to %#x (flags %#x): %d, errno %d (%s), expected %s",
	     t->name, odp_access_name(s->access), access, flags, ret, err,
	     strerror(err), want ? strerror(want) : "success");
}

/*
 * READs or WRITEs of the slot's MR in flight, and either that MR or the
 * local ODP MR (a new one over the ODP local buffer) deregistered under
 * them. Each must succeed (and then be right), fail with an access
 * error on the side that went away, or be flushed after one.
 */
static void odp_dereg_inflight(struct odp_owner *o, struct odp_slot *s)
{
	struct thread *t = o->t;
	bool local = chance(t, 40), write = false;
	size_t aoff[MAX_BATCH], len[MAX_BATCH];
	struct ibv_send_wr wr[MAX_BATCH], *bad;
	struct ibv_sge sge[MAX_BATCH];
	struct ibv_wc wc[MAX_BATCH];
	int st[MAX_BATCH], n = 1 + rnd_below(t, MAX_BATCH), i, err;
	struct ibv_mr *lmr = o->lmr;

	if (s->access & IBV_ACCESS_REMOTE_WRITE)
		write = chance(t, 50);
	if (local) {
		lmr = ibv_reg_mr(pd, o->lbuf, o->llen, ODP_RW);
		if (!lmr) {
			fail("%s: ibv_reg_mr of a local ODP MR: %s", t->name,
			     strerror(errno));
			return;
		}
	}
	if (write)
		o->version++;
	for (i = 0; i < n; i++) {
		odp_window(o, s, &aoff[i], &len[i]);
		if (write)
			odp_fill(o, o->lbuf + i * max_msg, aoff[i], len[i]);
		else
			memset(o->lbuf + i * max_msg, 0xa5, len[i]);
		rdma_wr(&wr[i], &sge[i], write ? IBV_WR_RDMA_WRITE :
			IBV_WR_RDMA_READ, i, o->lbuf + i * max_msg, lmr->lkey,
			len[i], (uintptr_t)o->area + aoff[i], s->mr->rkey);
		if (i)
			wr[i - 1].next = &wr[i];
	}
	if (chance(t, 30))
		madvise(o->lbuf, o->llen, MADV_PAGEOUT);
	odp_snap(o->z0, o->a0);
	o->t0 = gift_now_us();
	o->retries0 = odp_counter("odp_fault_retries");
	err = ibv_post_send(o->p.qp[0], wr, &bad);
	if (err) {
		fail("%s: ibv_post_send: %s", t->name, strerror(err));
		return;
	}
	usleep(rnd_below(t, 2000));
	if (local) {
		if (ibv_dereg_mr(lmr))
			fail("%s: ibv_dereg_mr of a busy local ODP MR: %s",
			     t->name, strerror(errno));
	} else {
		odp_dereg(o, s);
	}
	if (pair_wait(&o->p, wc, n, "odp dereg in flight"))
		return;
	odp_snap(o->z1, o->a1);
	for (i = 0; i < n; i++)
		st[i] = -1;
	for (i = 0; i < n; i++)
		if (wc[i].wr_id < (uint64_t)n)
			st[wc[i].wr_id] = wc[i].status;
	for (i = 0; i < n; i++) {
		if (write)
			odp_wrote(o, aoff[i], o->lbuf + i * max_msg, len[i],
				  st[i] == IBV_WC_SUCCESS);
		else if (st[i] == IBV_WC_SUCCESS &&
			 !odp_check_read(o, "READ while deregistering",
					 o->lbuf + i * max_msg, aoff[i],
					 len[i]))
			return;
	}
	if (odp_judge(o, OP_ODP_DEREG_INFLIGHT, "in flight at dereg", aoff,
		      len, n, st, ODP_FLUSH | (local ? ODP_LOC : ODP_REM)) >= 0)
		count_ok(OP_ODP_DEREG_INFLIGHT);
}

/* Operations on the slot's MR in flight when both QPs are destroyed. */
static void odp_destroy_inflight(struct odp_owner *o, struct odp_slot *s)
{
	struct thread *t = o->t;
	size_t aoff[MAX_BATCH], len[MAX_BATCH];
	struct ibv_send_wr wr[MAX_BATCH], *bad;
	struct ibv_sge sge[MAX_BATCH];
	int n = 1 + rnd_below(t, MAX_BATCH), i, err;
	bool write[MAX_BATCH], lodp = chance(t, 50);
	uint8_t *lbuf;
	uint32_t lkey;

	lbuf = odp_local(o, lodp, &lkey);
	o->version++;
	for (i = 0; i < n; i++) {
		odp_window(o, s, &aoff[i], &len[i]);
		write[i] = (s->access & IBV_ACCESS_REMOTE_WRITE) &&
			   chance(t, 50);
		if (write[i])
			odp_fill(o, lbuf + i * max_msg, aoff[i], len[i]);
		rdma_wr(&wr[i], &sge[i], write[i] ? IBV_WR_RDMA_WRITE :
			IBV_WR_RDMA_READ, i, lbuf + i * max_msg, lkey, len[i],
			(uintptr_t)o->area + aoff[i], s->mr->rkey);
		if (i)
			wr[i - 1].next = &wr[i];
	}
	odp_snap(o->z0, o->a0);
	err = ibv_post_send(o->p.qp[0], wr, &bad);
	if (err) {
		fail("%s: ibv_post_send: %s", t->name, strerror(err));
		return;
	}
	usleep(rnd_below(t, 2000));
	for (i = 0; i < 2; i++) {
		if (ibv_destroy_qp(o->p.qp[i]))
			fail("%s: ibv_destroy_qp: %s", t->name,
			     strerror(errno));
		o->p.qp[i] = NULL;
	}
	/* Nothing lands after the destroy returned. */
	odp_snap(o->z1, o->a1);
	for (i = 0; i < n; i++)
		if (write[i])
			odp_wrote(o, aoff[i], lbuf + i * max_msg, len[i],
				  false);
	gift_drain_cq(o->p.cq);
	if (pair_create_qps(&o->p) || pair_connect(&o->p))
		fail("%s: cannot create and connect new QPs", t->name);
	else
		count_ok(OP_ODP_QP_DESTROY);
}

/* CPU writes of whole pages, or reads of a part, under the owner's lock. */
static void odp_cpu(struct odp_owner *o, bool write)
{
	struct thread *t = o->t;
	size_t first = rnd_below(t, ODP_NPG), n = 1 + rnd_below(t, 32);

	if (n > ODP_NPG - first)
		n = ODP_NPG - first;
	pthread_rwlock_rdlock(&o->lock);
	if (write) {
		o->version++;
		odp_fill(o, o->cpu, first * PAGE, n * PAGE);
		odp_snap(o->z0, o->a0);
		memcpy(o->area + first * PAGE, o->cpu, n * PAGE);
		odp_snap(o->z1, o->a1);
		odp_wrote(o, first * PAGE, o->cpu, n * PAGE, true);
		count_ok(OP_ODP_REFILL);
	} else {
		odp_snap(o->z0, o->a0);
		memcpy(o->cpu, o->area + first * PAGE, n * PAGE);
		odp_snap(o->z1, o->a1);
		if (odp_check_read(o, "CPU read", o->cpu, first * PAGE,
				   n * PAGE))
			count_ok(OP_ODP_VERIFY);
	}
	pthread_rwlock_unlock(&o->lock);
}

/*
 * A READ of another owner's MR while it changes (its data is not
 * checked): it succeeds unless the MR or its access changed meanwhile.
 */
static void odp_cross_read(struct odp_owner *o)
{
	struct odp_owner *other = &odps[(o->idx + 1) % NODP];
	struct odp_slot *s = &other->slot[rnd_below(o->t, ODP_NSLOT)];
	struct ibv_wc wc;
	size_t len, n, off;
	uintptr_t addr;
	uint32_t rkey;
	uint64_t gen;
	bool raced;
	int st, err;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;

	gen = __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&s->mr, __ATOMIC_RELAXED))
		return;
	rkey = __atomic_load_n(&s->rkey, __ATOMIC_RELAXED);
	addr = __atomic_load_n(&s->addr, __ATOMIC_RELAXED);
	len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
	if (addr < (uintptr_t)other->area || !len ||
	    addr + len > (uintptr_t)other->area + ODP_LEN)
		return;		/* torn: the generation changed meanwhile */
	n = 1 + rnd_below(o->t, len < max_msg ? len : max_msg);
	off = rnd_below(o->t, len - n + 1);
	rdma_wr(&wr, &sge, IBV_WR_RDMA_READ, 0, o->p.buf, o->p.mr->lkey, n,
		addr + off, rkey);
	odp_snap(o->z0, o->a0);
	err = ibv_post_send(o->p.qp[0], &wr, &bad);
	if (err) {
		fail("%s: ibv_post_send: %s", o->t->name, strerror(err));
		return;
	}
	if (pair_wait(&o->p, &wc, 1, "odp cross read"))
		return;
	odp_snap(o->z1, o->a1);
	st = wc.status;
	if (st == IBV_WC_SUCCESS) {
		count_ok(OP_ODP_CROSS_READ);
		return;
	}
	raced = (gen & 1) || __atomic_load_n(&s->gen, __ATOMIC_SEQ_CST) != gen;
	/* As the racer's READs: see race_read(). */
	if ((st == IBV_WC_REM_ACCESS_ERR || st == IBV_WC_RETRY_EXC_ERR) &&
	    (raced || odp_moved(o->a0, o->a1, (void *)(addr + off), n))) {
		__atomic_add_fetch(&op_err[OP_ODP_CROSS_READ]
				  [st == IBV_WC_REM_ACCESS_ERR ? EACCES :
				   ETIMEDOUT], 1, __ATOMIC_RELAXED);
		if (pair_connect(&o->p))
			fail("%s: cannot reconnect the QPs", o->t->name);
		return;
	}
	fail("%s: READ of %zu bytes at %#lx of another owner's ODP MR %#lx+%zu: %s (raced: %d)",
	     o->t->name, n, addr + off, addr, len, ibv_wc_status_str(st),
	     raced);
}

static void *odp_main(void *arg)
{
	struct odp_owner *o = arg;
	struct thread *t = o->t;
	struct odp_slot *s;
	int r;

	while (!stopping()) {
		s = &o->slot[rnd_below(t, ODP_NSLOT)];
		if (!s->mr) {
			beat(t, "odp reg");
			odp_reg(o, s);
			continue;
		}
		r = rnd_below(t, 100);
		if (r < 25) {
			beat(t, "odp read");
			odp_read(o, s, 1 + rnd_below(t, MAX_BATCH));
		} else if (r < 50) {
			if (s->access & IBV_ACCESS_REMOTE_WRITE) {
				beat(t, "odp write");
				odp_write(o, s, 1 + rnd_below(t, MAX_BATCH));
			} else {
				beat(t, "odp write refused");
				odp_write_refused(o, s);
			}
		} else if (r < 58) {
			beat(t, "odp prefetch");
			odp_prefetch(o, s);
		} else if (r < 64) {
			beat(t, "odp dereg");
			odp_dereg(o, s);
		} else if (r < 69) {
			beat(t, "odp dereg in flight");
			odp_dereg_inflight(o, s);
		} else if (r < 72) {
			beat(t, "odp destroy qps in flight");
			odp_destroy_inflight(o, s);
		} else if (r < 76) {
			beat(t, "odp rereg");
			odp_rereg(o, s);
		} else if (r < 83) {
			beat(t, "odp cpu write");
			odp_cpu(o, true);
		} else if (r < 90) {
			beat(t, "odp cpu read");
			odp_cpu(o, false);
		} else {
			beat(t, "odp cross read");
			odp_cross_read(o);
		}
	}
	beat(t, "done");
	return NULL;
}

/* The ODP area's churn: see the top of this section. */

/* Locks (write) the owners of pages [first, first + n), in order. */
static void odpmm_lock(size_t first, size_t n, bool lock)
{
	size_t i;

	for (i = first / ODP_NPG; i <= (first + n - 1) / ODP_NPG; i++) {
		if (lock)
			pthread_rwlock_wrlock(&odps[i].lock);
		else
			pthread_rwlock_unlock(&odps[i].lock);
	}
}

static void odpmm_bump(uint32_t *gen, size_t first, size_t n)
{
	size_t i;

	for (i = first; i < first + n; i++)
		__atomic_add_fetch(&gen[i], 1, __ATOMIC_SEQ_CST);
}

static void odpmm_remap(struct thread *t, size_t first, size_t n, bool hole)
{
	uint8_t *p = ODP_BASE + first * PAGE;
	void *q;

	if (hole)
		odpmm_lock(first, n, true);
	odpmm_bump(odp_zgen, first, n);
	if (hole)
		odpmm_bump(odp_agen, first, n);
	if (hole) {
		if (munmap(p, n * PAGE)) {
			fail("%s: munmap: %s", t->name, strerror(errno));
			goto out;
		}
		/* A moment for the device to find the hole. */
		usleep(rnd_below(t, 3000));
		if (!map_at(p, n * PAGE)) {
			fail("%s: mmap at %p: %s", t->name, p,
			     strerror(errno));
			goto out;
		}
	} else {
		q = mmap(p, n * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (q != p) {
			fail("%s: mmap(MAP_FIXED) at %p: %s", t->name, p,
			     strerror(errno));
			goto out;
		}
	}
	count_ok(hole ? OP_ODP_REMAP : OP_ODP_MAPFIXED);
out:
	odpmm_bump(odp_zgen, first, n);
	if (hole) {
		odpmm_bump(odp_agen, first, n);
		odpmm_lock(first, n, false);
	}
}

static void odpmm_mprotect(struct thread *t, size_t first, size_t n)
{
	int prot = chance(t, 50) ? PROT_READ : PROT_NONE;
	uint8_t *p = ODP_BASE + first * PAGE;

	odpmm_lock(first, n, true);
	odpmm_bump(odp_agen, first, n);
	if (mprotect(p, n * PAGE, prot)) {
		fail("%s: mprotect: %s", t->name, strerror(errno));
	} else {
		usleep(rnd_below(t, 3000));
		if (mprotect(p, n * PAGE, PROT_READ | PROT_WRITE))
			fail("%s: mprotect back: %s", t->name,
			     strerror(errno));
		else
			count_ok(OP_ODP_MPROTECT);
	}
	odpmm_bump(odp_agen, first, n);
	odpmm_lock(first, n, false);
}

static void *odpmm_main(void *arg)
{
	struct thread *t = arg;
	size_t first, n;
	uint8_t *p;
	int r;

	while (!stopping()) {
		if (chance(t, 10)) {
			/* Across owners. */
			first = rnd_below(t, ODP_PAGES);
			n = 1 + rnd_below(t, ODP_PAGES - first);
		} else {
			first = rnd_below(t, NODP) * ODP_NPG;
			first += rnd_below(t, ODP_NPG);
			n = 1 + rnd_below(t, chance(t, 20) ? ODP_NPG : 16);
			if (first % ODP_NPG + n > ODP_NPG)
				n = ODP_NPG - first % ODP_NPG;
		}
		p = ODP_BASE + first * PAGE;
		r = rnd_below(t, 12);
		switch (r) {
		case 0:
		case 1:
		case 2:
			beat(t, "odp dontneed");
			odpmm_bump(odp_zgen, first, n);
			mm_madvise(t, OP_ODP_DONTNEED, p, n * PAGE,
				   MADV_DONTNEED, 0);
			odpmm_bump(odp_zgen, first, n);
			break;
		case 3:
		case 4:
			beat(t, "odp munmap+mmap");
			odpmm_remap(t, first, n, true);
			break;
		case 5:
			beat(t, "odp mmap fixed");
			odpmm_remap(t, first, n, false);
			break;
		case 6:
		case 7:
			beat(t, "odp mprotect");
			odpmm_mprotect(t, first, n);
			break;
		case 8:
		case 9:
			/* Same bytes, from swap: invalidation, new faults. */
			beat(t, "odp pageout");
			mm_madvise(t, OP_ODP_PAGEOUT, p, n * PAGE,
				   MADV_PAGEOUT, 0);
			break;
		case 10:
			/* Zero pages become private zeroed pages. */
			beat(t, "odp populate");
			mm_madvise(t, OP_ODP_POPULATE, p, n * PAGE,
				   MADV_POPULATE_WRITE, 0);
			break;
		default:
			beat(t, "odp thp");
			p = ODP_BASE + first / ODP_NPG * ODP_LEN;
			mm_madvise(t, OP_ODP_THP, p, ODP_LEN,
				   chance(t, 50) ? MADV_HUGEPAGE :
				   MADV_COLLAPSE, E(EAGAIN) | E(EINVAL) |
				   E(EBUSY));
			break;
		}
		usleep(rnd_below(t, 2000));
	}
	beat(t, "done");
	return NULL;
}

static int odp_setup(void)
{
	struct ibv_device_attr_ex ax = {};
	size_t i;
	int k;

	if (ibv_query_device_ex(ctx, NULL, &ax) ||
	    !(ax.odp_caps.general_caps & IBV_ODP_SUPPORT)) {
		say("setup: the device has no on-demand paging\n");
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(odp_cnt_names); i++)
		odp_cnt0[i] = odp_counter(odp_cnt_names[i]);
	for (k = 0; k < NODP; k++) {
		struct odp_owner *o = &odps[k];

		o->idx = k;
		rwlock_init(&o->lock);
		o->area = map_at(ODP_BASE + k * ODP_LEN, ODP_LEN);
		o->img = malloc(ODP_LEN);
		o->cpu = malloc(ODP_LEN);
		o->llen = MAX_BATCH * max_msg;
		o->lbuf = map_private(o->llen);
		if (!o->area || !o->img || !o->cpu || !o->lbuf ||
		    pair_create(&o->p, MAX_BATCH * max_msg, 7))
			return -1;
		o->lmr = ibv_reg_mr(pd, o->lbuf, o->llen, ODP_RW);
		if (!o->lmr)
			return -1;
		/* Starts all zeros, half of it written. */
		memset(o->img, 0, ODP_LEN);
		odp_fill(o, o->img, 0, ODP_LEN / 2);
		memcpy(o->area, o->img, ODP_LEN / 2);
	}
	return 0;
}

static void odp_teardown(void)
{
	int k, i;

	for (k = 0; k < NODP; k++) {
		struct odp_owner *o = &odps[k];

		for (i = 0; i < ODP_NSLOT; i++)
			if (o->slot[i].mr && ibv_dereg_mr(o->slot[i].mr))
				fail("teardown: dereg of an ODP MR failed");
		if (o->lmr && ibv_dereg_mr(o->lmr))
			fail("teardown: dereg of an ODP MR failed");
		pair_destroy(&o->p);
	}
}

/* The ODP counters' growth, and whether faults and invalidations ran. */
static void odp_report(bool check)
{
	long d[ARRAY_SIZE(odp_cnt_names)];
	size_t i;

	say("# odp counters:");
	for (i = 0; i < ARRAY_SIZE(odp_cnt_names); i++) {
		d[i] = odp_counter(odp_cnt_names[i]) - odp_cnt0[i];
		say(" %s +%ld", odp_cnt_names[i], d[i]);
	}
	say("\n");
	if (check && (d[0] <= 0 || d[3] <= 0 || d[5] <= 0))
		fail("coverage: no ODP faults, invalidations or prefetches");
}

/* Forked children: they write everywhere, and must see only the past */

/*
 * A random page a child sees: in a stable region, where it must hold its
 * exact pattern, or in the churn area (pattern or zero). The file region
 * is pattern or zero too: its file may have a hole punched right now.
 */
static uint8_t *child_page(struct thread *t, const uint8_t **want,
			   bool *exact, size_t *room)
{
	int k = rnd_below(t, NSG + 1);
	size_t off;

	if (k == NSG) {
		off = rnd_below(t, CHURN_TOTAL / PAGE) * PAGE;
		*want = churn_want + off;
		*exact = false;
		*room = CHURN_TOTAL - off;
		return ARENA + off;
	}
	off = rnd_below(t, sgs[k].len / PAGE) * PAGE;
	*want = sgs[k].want + off;
	/* The file may have a hole punched right now (sg_window()). */
	*exact = k != SG_FILE;
	*room = sgs[k].len - off;
	return sgs[k].p + off;
}

/*
 * In the child: what it inherited is what the parent had at fork (128
 * random pages are checked); then it writes poison to 48 random pages,
 * in three rounds while the parent goes on, and checks its own writes
 * stayed.
 * Exit status: 0, 10 (a stable page was not its pattern), 20 (a churn
 * page was neither pattern nor zero) or 30 (its own writes were lost).
 */
static int child_main(uint64_t rng)
{
	struct thread t = { .rng = rng | 1 }, nap;
	size_t i, j, room;
	const uint8_t *want;
	bool exact;
	uint8_t *p;

	for (i = 0; i < 128; i++) {
		p = child_page(&t, &want, &exact, &room);
		if (exact && memcmp(p, want, PAGE))
			return 10;
		if (!exact && bad_or_zero(p, want, PAGE) >= 0)
			return 20;
	}
	/*
	 * Three rounds of writes, a while apart: the later ones find pages
	 * the parent may have stopped mapping meanwhile (only children
	 * map them then, and a write may reuse the page in place).
	 */
	rng = rnd(&t) | 1;
	nap.rng = rnd(&t) | 1;
	t.rng = rng;
	for (i = 0; i < 48; i++) {
		if (i == 16 || i == 32)
			sleep_ms(rnd_below(&nap, 150));
		p = child_page(&t, &want, &exact, &room);
		for (j = 0; j < PAGE; j++)
			p[j] = poison(want[j]);
	}
	sleep_ms(rnd_below(&nap, 150));
	/* Replay the same choices: the poison is still there. */
	t.rng = rng;
	for (i = 0; i < 48; i++) {
		p = child_page(&t, &want, &exact, &room);
		for (j = 0; j < PAGE; j++)
			if (p[j] != poison(want[j]))
				return 30;
	}
	return 0;
}

/*
 * A client child: opens the device itself and registers gift, writable
 * and read-only MRs over what it inherited (gift MRs over pages it still
 * shares with the parent hold them by reference), then exits with them
 * registered, or deregisters them first, or is killed by the parent
 * meanwhile. Nothing changes its address space, so every registration
 * must succeed. Exit status: 0, 40 (no device), 41 (a registration
 * failed), 42 (a query was wrong) or 43 (a dereg failed).
 */
static int client_main(uint64_t rng)
{
	struct thread t = { .rng = rng | 1 };
	struct giftdv_mr_attr a;
	struct ibv_mr *mr[8];
	struct ibv_context *c;
	const uint8_t *want;
	size_t room, len, n;
	struct ibv_pd *cpd;
	int i, r, access;
	bool exact;
	uint8_t *p;

	c = gift_open(getenv("GIFT_IBDEV"));
	cpd = c ? ibv_alloc_pd(c) : NULL;
	if (!cpd)
		return 40;
	for (i = 0; i < 8; i++) {
		p = child_page(&t, &want, &exact, &room);
		n = 1 + rnd_below(&t, 32);
		len = n * PAGE < room ? n * PAGE : room;
		r = rnd_below(&t, 10);
		access = r < 5 ? GIFT : r < 8 ? RW : RO;
		/* Its own copy of the same bytes: exclusive, so pinned. */
		if (chance(&t, 50))
			memcpy(p, want, len);
		mr[i] = ibv_reg_mr(cpd, p, len, access);
		if (!mr[i])
			return 41;
		memset(&a, 0, sizeof(a));
		if (giftdv_query_mr(mr[i], &a) || a.npages != len / PAGE ||
		    a.shared_pages > a.npages || a.stale_pages > a.npages ||
		    (access != GIFT && a.shared_pages))
			return 42;
	}
	if (chance(&t, 50))
		return 0;	/* the kernel cleans up */
	for (i = 0; i < 8; i++)
		if (ibv_dereg_mr(mr[i]))
			return 43;
	ibv_dealloc_pd(cpd);
	ibv_close_device(c);
	return 0;
}

struct kid {
	pid_t pid;
	bool client;
	bool killed;
};

static void reap(struct kid *kids, int *nkids, bool block)
{
	struct kid *k;
	int i, status;
	pid_t pid;

	for (i = 0; i < *nkids; i++) {
		k = &kids[i];
		if (k->client && !k->killed && block) {
			kill(k->pid, SIGKILL);
			k->killed = true;
		}
		pid = waitpid(k->pid, &status, block ? 0 : WNOHANG);
		if (!pid)
			continue;
		if (pid != k->pid)
			fail("fork: waitpid %d: %s", k->pid, strerror(errno));
		else if (k->killed && WIFSIGNALED(status) &&
			 WTERMSIG(status) == SIGKILL)
			count_ok(OP_CLIENT_KILLED);
		else if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail("fork: %s %d %s %d (see child_main() and client_main())",
			     k->client ? "client" : "child", pid,
			     WIFEXITED(status) ? "exited with" :
			     "killed by signal", WIFEXITED(status) ?
			     WEXITSTATUS(status) : WTERMSIG(status));
		else
			count_ok(k->client ? OP_CLIENT : OP_CHILD);
		kids[i--] = kids[--*nkids];
	}
}

static void *fork_main(void *arg)
{
	struct thread *t = arg;
	struct kid kids[MAX_CHILDREN];
	int nkids = 0, i;
	bool client;
	uint64_t rng;
	pid_t pid;

	while (!stopping()) {
		beat(t, "reap");
		reap(kids, &nkids, false);
		if (nkids == MAX_CHILDREN) {
			usleep(10000);
			continue;
		}
		sleep_ms(20 + rnd_below(t, 200));
		beat(t, "fork");
		rng = rnd(t);
		client = chance(t, 25);
		for (i = 0; i < NCHURN; i++)
			pthread_rwlock_rdlock(&churn[i].lock);
		for (i = 0; i < NSG; i++)
			pthread_rwlock_rdlock(&sgs[i].mem_lock);
		pid = fork();
		if (!pid)
			_exit(client ? client_main(rng) : child_main(rng));
		for (i = 0; i < NSG; i++)
			pthread_rwlock_unlock(&sgs[i].mem_lock);
		for (i = 0; i < NCHURN; i++)
			pthread_rwlock_unlock(&churn[i].lock);
		if (pid < 0) {
			count_err(OP_FORK, errno, E(EAGAIN) | E(ENOMEM),
				  "fork");
			continue;
		}
		count_ok(OP_FORK);
		kids[nkids] = (struct kid){ .pid = pid, .client = client };
		/* Now and then a client dies while it registers. */
		if (client && chance(t, 30)) {
			usleep(rnd_below(t, 100000) * slow);
			kill(pid, SIGKILL);
			kids[nkids].killed = true;
		}
		nkids++;
	}
	beat(t, "reap all");
	reap(kids, &nkids, true);
	beat(t, "done");
	return NULL;
}

/* The stable manager: changes the stable regions under their locks */

static void sg_verify(struct thread *t, struct sg *r)
{
	long bad;

	pthread_rwlock_rdlock(&r->mem_lock);
	bad = bad_exact(r->p, r->want, r->len);
	if (bad >= 0)
		fail("%s: the process reads 0x%02x at byte %ld of the %s region, expected 0x%02x",
		     t->name, r->p[bad], bad, sg_names[r->kind],
		     r->want[bad]);
	else
		count_ok(OP_VERIFY);
	pthread_rwlock_unlock(&r->mem_lock);
}

/*
 * giftdv_query_mr() of a stable MR: npages exact; for the kinds whose
 * stale count is known, 0 after a registration, all pages after a
 * window replaced the memory.
 */
static void sg_query(struct thread *t, struct sg *r)
{
	struct giftdv_mr_attr a = {};
	size_t n = r->len / PAGE;
	int err;

	pthread_rwlock_rdlock(&r->mem_lock);
	err = giftdv_query_mr(r->mr, &a);
	if (err) {
		fail("%s: giftdv_query_mr of the %s region: %s", t->name,
		     sg_names[r->kind], strerror(err));
	} else if (a.npages != n || a.shared_pages > n ||
		   (sg_stale_known(r) &&
		    a.stale_pages != (r->clean ? 0 : n)) ||
		   a.stale_pages > n) {
		fail("%s: %s region, %s: npages %llu (expected %zu), shared %llu, stale %llu",
		     t->name, sg_names[r->kind],
		     r->clean ? "as registered" : "replaced since",
		     (unsigned long long)a.npages, n,
		     (unsigned long long)a.shared_pages,
		     (unsigned long long)a.stale_pages);
	} else {
		count_ok(OP_SG_QUERY);
	}
	pthread_rwlock_unlock(&r->mem_lock);
}

/* Re-registers the region's current pages (memory: exact, mapped). */
static void sg_rereg(struct thread *t, struct sg *r, enum op op)
{
	pthread_rwlock_rdlock(&r->mr_lock);
	if (ibv_rereg_mr(r->mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL, r->p,
			 r->len, 0))
		fail("%s: rereg of the %s region: %s", t->name,
		     sg_names[r->kind], strerror(errno));
	else
		count_ok(op);
	pthread_rwlock_unlock(&r->mr_lock);
	r->clean = true;
}

/* Re-registrations back to back while the traffic READs the region. */
static void sg_burst(struct thread *t, struct sg *r)
{
	long long until = gift_now_us() + 200000LL * slow;

	pthread_rwlock_rdlock(&r->mem_lock);
	__atomic_store_n(&hot_sg, r->kind, __ATOMIC_RELAXED);
	while (!stopping() && gift_now_us() < until)
		sg_rereg(t, r, OP_SG_REREG);
	__atomic_store_n(&hot_sg, -1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&r->mem_lock);
}

/* Replaces the memory (DONTNEED or munmap + mmap) and rewrites it. */
static void sg_window(struct thread *t, struct sg *r)
{
	bool remap = chance(t, 50);

	pthread_rwlock_wrlock(&r->mem_lock);
	if (remap && munmap(r->p, r->len))
		fail("%s: munmap: %s", t->name, strerror(errno));
	/*
	 * The file's pages leave the page cache (the MR may hold them, and
	 * they may be in swap), new ones come with the same bytes; a child
	 * may see the hole.
	 */
	if (r->kind == SG_FILE && chance(t, 50) &&
	    (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
		       r->len) || file_write(r)))
		fail("%s: punching and rewriting the file: %s", t->name,
		     strerror(errno));
	if (remap && sg_map(r))
		fail("%s: remap of the %s region: %s", t->name,
		     sg_names[r->kind], strerror(errno));
	if (!remap && madvise(r->p, r->len, MADV_DONTNEED))
		fail("%s: dontneed: %s", t->name, strerror(errno));
	sg_fill(r);
	r->clean = false;
	count_ok(OP_SG_WINDOW);
	pthread_rwlock_unlock(&r->mem_lock);
}

/* Read-only or inaccessible for a moment, re-registered meanwhile. */
static void sg_mprotect(struct thread *t, struct sg *r)
{
	bool none = chance(t, 30);
	int ret;

	pthread_rwlock_wrlock(&r->mem_lock);
	if (mprotect(r->p, r->len, none ? PROT_NONE : PROT_READ)) {
		fail("%s: mprotect: %s", t->name, strerror(errno));
		goto out;
	}
	pthread_rwlock_rdlock(&r->mr_lock);
	ret = ibv_rereg_mr(r->mr, IBV_REREG_MR_CHANGE_TRANSLATION, NULL, r->p,
			   r->len, 0);
	pthread_rwlock_unlock(&r->mr_lock);
	if (none && ret != IBV_REREG_MR_ERR_CMD)
		fail("%s: rereg of a PROT_NONE range returned %d", t->name,
		     ret);
	else if (none && errno != EFAULT)
		fail("%s: rereg of a PROT_NONE range: %s, expected EFAULT",
		     t->name, strerror(errno));
	else if (!none && ret)
		fail("%s: rereg of the read-only %s region: %s", t->name,
		     sg_names[r->kind], strerror(errno));
	else
		count_ok(none ? OP_SG_REREG_NONE : OP_SG_REREG_RO);
	/* A failed rereg leaves the MR as it was. */
	if (!none)
		r->clean = true;
	if (mprotect(r->p, r->len, PROT_READ | PROT_WRITE))
		fail("%s: mprotect back: %s", t->name, strerror(errno));
out:
	pthread_rwlock_unlock(&r->mem_lock);
}

/* Deregistered for a while (KSM gets to merge the KSM region). */
static void sg_dereg_reg(struct thread *t, struct sg *r)
{
	long long until;

	pthread_rwlock_wrlock(&r->mr_lock);
	if (ibv_dereg_mr(r->mr))
		fail("%s: dereg of the %s region: %s", t->name,
		     sg_names[r->kind], strerror(errno));
	r->mr = NULL;
	pthread_rwlock_unlock(&r->mr_lock);

	until = gift_now_us() + (r->kind == SG_KSM ? 2000 : 50) * 1000LL;
	while (!stopping() && gift_now_us() < until) {
		beat(t, "stable unregistered");
		sleep_ms(20);
	}

	pthread_rwlock_rdlock(&r->mem_lock);
	pthread_rwlock_wrlock(&r->mr_lock);
	r->mr = ibv_reg_mr(pd, r->p, r->len, GIFT);
	if (!r->mr)
		fail("%s: reg of the %s region: %s", t->name,
		     sg_names[r->kind], strerror(errno));
	else
		count_ok(OP_SG_REG);
	r->clean = true;
	pthread_rwlock_unlock(&r->mr_lock);
	pthread_rwlock_unlock(&r->mem_lock);
}

static void sg_holder(struct thread *t, struct sg *r)
{
	pthread_rwlock_rdlock(&r->mem_lock);
	holder_end(r);
	r->holder = holder_fork(r, rnd(t));
	if (r->holder < 0)
		count_err(OP_SG_HOLDER, errno, E(EAGAIN) | E(ENOMEM), "fork");
	else
		count_ok(OP_SG_HOLDER);
	pthread_rwlock_unlock(&r->mem_lock);
}

static void *sg_main(void *arg)
{
	struct thread *t = arg;
	struct sg *r;

	while (!stopping()) {
		r = &sgs[rnd_below(t, NSG)];
		/* Only a failed registration (reported) leaves none. */
		if (!r->mr)
			break;
		switch (rnd_below(t, 12)) {
		case 0:
		case 1:
			beat(t, "stable rereg");
			pthread_rwlock_rdlock(&r->mem_lock);
			sg_rereg(t, r, OP_SG_REREG);
			pthread_rwlock_unlock(&r->mem_lock);
			break;
		case 2:
			beat(t, "stable window");
			sg_window(t, r);
			break;
		case 3:
			beat(t, "stable mprotect");
			sg_mprotect(t, r);
			break;
		case 4:
			beat(t, "stable dereg+reg");
			sg_dereg_reg(t, r);
			break;
		case 5:
			if (!sg_held(r))
				break;
			beat(t, "stable holder");
			sg_holder(t, r);
			break;
		case 6:
			/* hugetlb is never reclaimed (EINVAL). */
			if (r->kind == SG_HUGETLB)
				break;
			beat(t, "stable pageout");
			mm_madvise(t, OP_PAGEOUT, r->p, r->len, MADV_PAGEOUT,
				   0);
			break;
		case 7:
			if (r->kind == SG_THP) {
				beat(t, "stable collapse");
				mm_madvise(t, OP_COLLAPSE, r->p, r->len,
					   MADV_COLLAPSE, E(EAGAIN) |
					   E(ENOMEM) | E(EINVAL) | E(EBUSY));
			} else if (r->kind == SG_KSM) {
				beat(t, "stable unmerge");
				mm_madvise(t, OP_UNMERGEABLE, r->p, r->len,
					   MADV_UNMERGEABLE, E(EAGAIN) |
					   E(ENOMEM));
				mm_madvise(t, OP_MERGEABLE, r->p, r->len,
					   MADV_MERGEABLE, E(EAGAIN) |
					   E(ENOMEM));
			}
			break;
		case 8:
			beat(t, "stable verify");
			sg_verify(t, r);
			break;
		case 9:
			beat(t, "stable rereg burst");
			sg_burst(t, r);
			break;
		default:
			beat(t, "stable query");
			sg_query(t, r);
			break;
		}
		sleep_ms(rnd_below(t, 50));
	}
	beat(t, "done");
	return NULL;
}

/* System-wide churn: KSM unmerge-all, memcg reclaim, compaction */

static char cg_path[128];
static long max_ksm_merging;

/* The most pages KSM had merged for us at once, sampled. */
static void ksm_sample(void)
{
	long m = gift_read_long("/proc/self/ksm_merging_pages");

	if (m > __atomic_load_n(&max_ksm_merging, __ATOMIC_RELAXED))
		__atomic_store_n(&max_ksm_merging, m, __ATOMIC_RELAXED);
}

static void *sys_main(void *arg)
{
	struct thread *t = arg;
	char path[192];
	int err;

	snprintf(path, sizeof(path), "%s/memory.reclaim", cg_path);
	while (!stopping()) {
		beat(t, "sleep");
		sleep_ms(200 + rnd_below(t, 600));
		ksm_sample();
		switch (rnd_below(t, 10)) {
		case 0:
			beat(t, "ksm unmerge all");
			/* run=2 unmerges every KSM page, then merge again. */
			err = gift_write_file(KSM_DIR "/run", "2");
			if (!err)
				err = gift_write_file(KSM_DIR "/run", "1");
			if (err)
				count_err(OP_KSM_UNMERGE_ALL, -err,
					  E(EAGAIN) | E(ENOMEM) | E(EINTR),
					  "ksm run");
			else
				count_ok(OP_KSM_UNMERGE_ALL);
			/* Never leave KSM stopped. */
			gift_write_file(KSM_DIR "/run", "1");
			break;
		case 1:
			beat(t, "compact");
			err = gift_write_file("/proc/sys/vm/compact_memory",
					      "1");
			if (err)
				count_err(OP_COMPACT, -err, 0, "compact");
			else
				count_ok(OP_COMPACT);
			break;
		default:
			beat(t, "memcg reclaim");
			err = gift_write_file(path, "%luK",
					      1024 + rnd_below(t, 4096));
			if (err)
				count_err(OP_RECLAIM, -err, E(EAGAIN),
					  "memory.reclaim");
			else
				count_ok(OP_RECLAIM);
			break;
		}
	}
	beat(t, "done");
	return NULL;
}

/* The watchdog */

static struct thread *main_thread;
static pthread_t watchdog_tid;
static long long t_start;

static void *watchdog_main(void *arg)
{
	long long now, last_status = gift_now_us();
	char line[512];
	long total, i;
	int k, len;

	for (;;) {
		sleep_ms(1000);
		ksm_sample();
		now = gift_now_us();
		for (k = 0; k < nthreads; k++) {
			struct thread *t = &threads[k];
			long long hb = __atomic_load_n(&t->hb,
						       __ATOMIC_RELAXED);

			if (!hb || now - hb < watchdog_s * 1000000LL)
				continue;
			pthread_mutex_lock(&out_lock);
			printf("FAIL: watchdog: thread %s made no progress for %lld s, stuck in \"%s\"\n",
			       t->name, (now - hb) / 1000000,
			       __atomic_load_n(&t->what, __ATOMIC_RELAXED));
			fflush(stdout);
			/* Blocked tasks into dmesg, for the log. */
			gift_write_file("/proc/sysrq-trigger", "w");
			_exit(3);
		}
		if (now - last_status >= 10000000) {
			last_status = now;
			for (i = total = 0; i < NOPS; i++)
				total += __atomic_load_n(&op_ok[i],
							 __ATOMIC_RELAXED);
			len = 0;
			for (k = 1; k < nthreads && len < 400; k++)
				len += snprintf(line + len, sizeof(line) - len,
						" %s %ld", threads[k].name,
						__atomic_load_n(&threads[k].beats,
								__ATOMIC_RELAXED));
			say("# %llds: %ld operations, main thread: %s; steps:%s\n",
			    (now - t_start) / 1000000, total,
			    main_thread->what, len ? line : "");
		}
	}
	return NULL;
}

static struct thread *thread_add(const char *name, void *(*fn)(void *),
				 void *arg)
{
	struct thread *t = &threads[nthreads++];

	snprintf(t->name, sizeof(t->name), "%s", name);
	t->rng = (seed + 1) * 0x9e3779b97f4a7c15ULL ^
		 (nthreads * 0xbf58476d1ce4e5b9ULL);
	t->fn = fn;
	t->arg = arg ? arg : t;
	return t;
}

/* Environment: swap, memcg, KSM, THP, restored at the end */

struct knob {
	const char *path;
	char old[64];
	const char *val;
};

/*
 * ksmd scans a batch holding ksm_thread_mutex, at nice 5: on a slow
 * kernel with every CPU busy, a large batch keeps a write to ksm/run
 * waiting for a minute. Small batches, often, merge the churn area
 * (about 2000 mergeable pages) within a few seconds all the same.
 */
static struct knob knobs[] = {
	{ KSM_DIR "/run", "", "1" },
	{ KSM_DIR "/pages_to_scan", "", "100" },
	{ KSM_DIR "/sleep_millisecs", "", "20" },
	{ THP_DIR "/khugepaged/scan_sleep_millisecs", "", "1000" },
	{ THP_DIR "/khugepaged/alloc_sleep_millisecs", "", "1000" },
	{ THP_DIR "/khugepaged/pages_to_scan", "", "1024" },
};

static char thp_enabled_old[16];
static struct gift_swap zram_swap;

static int knobs_set(void)
{
	size_t i;
	char cur[128];

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		if (gift_read_file(knobs[i].path, knobs[i].old,
				   sizeof(knobs[i].old)) ||
		    gift_write_file(knobs[i].path, "%s", knobs[i].val)) {
			say("setup: cannot set %s\n", knobs[i].path);
			knobs[i].old[0] = 0;
			return -1;
		}
	}
	if (gift_read_file(THP_DIR "/enabled", cur, sizeof(cur)))
		return -1;
	if (strstr(cur, "[never]")) {
		snprintf(thp_enabled_old, sizeof(thp_enabled_old), "never");
		if (gift_write_file(THP_DIR "/enabled", "madvise"))
			return -1;
	}
	return 0;
}

static void knobs_restore(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		if (knobs[i].old[0])
			gift_write_file(knobs[i].path, "%s", knobs[i].old);
	if (thp_enabled_old[0])
		gift_write_file(THP_DIR "/enabled", "%s", thp_enabled_old);
}

#define HP_NR		"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
#define HP_FREE		"/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"
/* The hugetlb region, and the copies its children and holders make. */
#define HUGE_PAGES	24

static long nr_hugepages_old = -1;

static int hugetlb_setup(void)
{
	long nr = gift_read_long(HP_NR), free0 = gift_read_long(HP_FREE);

	if (nr < 0 || free0 < 0)
		return -1;
	nr_hugepages_old = nr;
	if (gift_write_file(HP_NR, "%ld", nr + HUGE_PAGES))
		return -1;
	return gift_read_long(HP_FREE) >= free0 + HUGE_PAGES ? 0 : -1;
}

static int swap_setup(void)
{
	int ret = gift_swap_on(&zram_swap, GIFT_SWAP_ZRAM, 256 * MIB);

	if (ret == -EBUSY)
		say("setup: zram0 is in use already\n");
	return ret ? -1 : 0;
}

static int swap_off(void)
{
	return gift_swap_off(&zram_swap);
}

static long vmstat(const char *name)
{
	char key[64];
	long long val;
	long ret = -1;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", key, &val) == 2)
		if (!strcmp(key, name))
			ret = val;
	fclose(f);
	return ret;
}

/* Final checks and teardown */

/* How often the cgroup went over memory.high, and the stall it cost. */
static void memcg_report(void)
{
	char path[192], buf[512], *p;

	snprintf(path, sizeof(path), "%s/memory.events", cg_path);
	p = gift_read_file(path, buf, sizeof(buf)) ? NULL : strstr(buf, "high ");
	if (p)
		say("# memcg: over memory.high %ld times", strtol(p + 5, NULL, 10));
	snprintf(path, sizeof(path), "%s/memory.pressure", cg_path);
	p = gift_read_file(path, buf, sizeof(buf)) ? NULL : strstr(buf, "full ");
	p = p ? strstr(p, "total=") : NULL;
	if (p)
		say(", all tasks stalled on memory for %ld ms in total",
		    strtol(p + 6, NULL, 10) / 1000);
	say("\n");
}

/* The whole of every stable MR, through the device and the CPU. */
static void final_read_stable(const char *when)
{
	struct pair *p = &traffic[0].p;
	size_t off, n;
	long bad;
	int k, st;

	for (k = 0; k < NSG; k++) {
		struct sg *r = &sgs[k];

		if (!r->mr) {
			fail("%s: the %s region has no MR", when,
			     sg_names[k]);
			continue;
		}
		for (off = 0; off < r->len; off += n) {
			n = r->len - off < TR_LEN ? r->len - off : TR_LEN;
			memset(p->buf, 0xa5, n);
			st = pair_rdma(p, IBV_WR_RDMA_READ, 0, n,
				       (uintptr_t)r->p + off, r->mr->rkey,
				       "final read");
			if (st != IBV_WC_SUCCESS) {
				fail("%s: READ of the %s region: %s", when,
				     sg_names[k], st < 0 ? "no completion" :
				     ibv_wc_status_str(st));
				break;
			}
			bad = bad_exact(p->buf, r->want + off, n);
			if (bad >= 0) {
				fail("%s: the %s gift MR reads 0x%02x at byte %zu, expected 0x%02x",
				     when, sg_names[k], p->buf[bad], off + bad,
				     r->want[off + bad]);
				break;
			}
		}
		bad = bad_exact(r->p, r->want, r->len);
		if (bad >= 0)
			fail("%s: the process reads 0x%02x at byte %ld of the %s region",
			     when, r->p[bad], bad, sg_names[k]);
	}
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s -t SECONDS [-s SEED] [-w WATCHDOG_SECONDS] [-m MIB]\n"
		"  -m: memory.high is what the process uses after setup plus MIB (default 2; may be negative)\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	long pinned0, referenced0, pinned, referenced, swpout0 = 0, swpin0 = 0;
	long long pins_acq0, pins_rel0, acq, rel, t_end, mem;
	struct traffic *tr;
	int secs = -1, high_slack = 2, opt, i, k;
	char name[64], high[192];
	bool started = false;
	struct thread *t;

	seed = time(NULL);
	slow = gift_slow();
	watchdog_s = slow > 2 ? 30 * slow : 60;
	while ((opt = getopt(argc, argv, "t:s:w:m:h")) != -1) {
		switch (opt) {
		case 't':
			secs = atoi(optarg);
			break;
		case 's':
			seed = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			watchdog_s = atoi(optarg);
			break;
		case 'm':
			high_slack = atoi(optarg);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (secs < 1 || watchdog_s < 1)
		usage(argv[0]);
	wait_ms = 20000 * slow;
	max_msg = gift_slow_div(64 * KIB, 8 * KIB);
	setvbuf(stdout, NULL, _IOLBF, 0);
	say("# gift_stress -t %d -s %u: GIFT_SLOW %d, watchdog %d s\n", secs,
	    seed, slow, watchdog_s);

	main_thread = thread_add("main", NULL, NULL);
	beat(main_thread, "setup");
	t_start = gift_now_us();
	if (pthread_create(&watchdog_tid, NULL, watchdog_main, NULL)) {
		say("setup: no watchdog thread\n");
		return 2;
	}

	/* Baselines, before anything is registered. */
	if (gift_umem_pages(&pinned0, &referenced0) ||
	    gift_foll_pins(&pins_acq0, &pins_rel0)) {
		say("setup: no rdma_gift/umem_pages or FOLL_PIN counters\n");
		return 2;
	}
	if (knobs_set() || hugetlb_setup() || swap_setup()) {
		say("setup: KSM, THP, hugetlb pages or zram swap could not be set up\n");
		goto out_env;
	}
	snprintf(name, sizeof(name), "gift_stress.%d", getpid());
	if (gift_memcg_create(name, cg_path, sizeof(cg_path)) ||
	    gift_memcg_move(cg_path, getpid())) {
		say("setup: memory cgroup: %s\n", strerror(errno));
		cg_path[0] = 0;
		goto out_env;
	}
	swpout0 = vmstat("pswpout");
	swpin0 = vmstat("pswpin");

	ctx = gift_open(gift_env("GIFT_IBDEV"));
	pd = ctx ? ibv_alloc_pd(ctx) : NULL;
	if (!pd) {
		say("setup: cannot open %s\n", gift_env("GIFT_IBDEV"));
		goto out_env;
	}
	gift_wait_for(gift_have_v4_gid, ctx, 5000);
	gid_index = gift_find_v4_gid(ctx, &gid);
	if (gid_index < 0 || churn_setup() || sg_setup() ||
	    pair_create(&racer_pair, PAIR_LEN, 2)) {
		say("setup: %s\n", strerror(errno));
		goto out_verbs;
	}
	for (i = 0; i < NTRAFFIC; i++) {
		if (traffic_setup(&traffic[i])) {
			say("setup: traffic pair: %s\n", strerror(errno));
			goto out_verbs;
		}
	}
	for (i = 0; i < NREG; i++) {
		if (pair_create(&regs[i].p, PAIR_LEN, 7)) {
			say("setup: reg pair: %s\n", strerror(errno));
			goto out_verbs;
		}
	}
	if (odp_setup()) {
		say("setup: odp: %s\n", strerror(errno));
		goto out_verbs;
	}

	/* A small memory cgroup: about what we use now. */
	mem = gift_memcg_current(cg_path) + high_slack * (long long)MIB;
	snprintf(high, sizeof(high), "%s/memory.high", cg_path);
	if (gift_write_file(high, "%lld", mem)) {
		say("setup: cannot set %s\n", high);
		goto out_verbs;
	}
	say("# memory.high %lld KiB, swap on zram0, KSM and khugepaged fast\n",
	    mem / 1024);

	for (i = 0; i < NTRAFFIC; i++) {
		snprintf(name, sizeof(name), "traffic%d", i);
		traffic[i].t = thread_add(name, traffic_main, &traffic[i]);
	}
	for (i = 0; i < NREG; i++) {
		snprintf(name, sizeof(name), "reg%d", i);
		regs[i].t = thread_add(name, reg_main, &regs[i]);
	}
	thread_add("racer", racer_main, NULL);
	for (i = 0; i < NMM; i++) {
		snprintf(name, sizeof(name), "mm%d", i);
		thread_add(name, mm_main, NULL);
	}
	for (i = 0; i < NODP; i++) {
		snprintf(name, sizeof(name), "odp%d", i);
		odps[i].t = thread_add(name, odp_main, &odps[i]);
	}
	thread_add("odpmm", odpmm_main, NULL);
	thread_add("fork", fork_main, NULL);
	thread_add("stable", sg_main, NULL);
	thread_add("sys", sys_main, NULL);
	for (k = 1; k < nthreads; k++) {
		t = &threads[k];
		beat(t, "start");
		if (pthread_create(&t->tid, NULL, t->fn, t->arg)) {
			fail("setup: pthread_create");
			nthreads = k;
			break;
		}
	}
	started = true;

	t_end = gift_now_us() + secs * 1000000LL;
	while (!stopping() && gift_now_us() < t_end) {
		beat(main_thread, "running");
		sleep_ms(200);
	}
	stop_all();
	for (k = 1; k < nthreads; k++) {
		beat(main_thread, "joining threads");
		pthread_join(threads[k].tid, NULL);
	}
	for (k = 0; k < NSG; k++)
		holder_end(&sgs[k]);

	beat(main_thread, "final reads");
	if (!failures)
		final_read_stable("at the end");
	beat(main_thread, "swapoff");
	gift_write_file(high, "max");
	if (swap_off())
		fail("swapoff /dev/zram0 failed");
	if (!failures)
		final_read_stable("after swapoff");

out_verbs:
	beat(main_thread, "teardown");
	stop_all();
	for (k = 0; k < NSG; k++) {
		holder_end(&sgs[k]);
		if (sgs[k].mr && ibv_dereg_mr(sgs[k].mr))
			fail("teardown: dereg of a stable MR failed");
		sgs[k].mr = NULL;
		if (sgs[k].want)
			munmap(sgs[k].p, sgs[k].len);
	}
	for (i = 0; i < NREG; i++) {
		for (k = 0; k < NSLOT; k++)
			if (regs[i].slot[k].mr &&
			    ibv_dereg_mr(regs[i].slot[k].mr))
				fail("teardown: dereg failed");
		pair_destroy(&regs[i].p);
	}
	odp_teardown();
	for (i = 0; i < NTRAFFIC; i++) {
		tr = &traffic[i];
		if (tr->dst_mr && ibv_dereg_mr(tr->dst_mr))
			fail("teardown: dereg failed");
		pair_destroy(&tr->p);
	}
	pair_destroy(&racer_pair);
	if (pd && ibv_dealloc_pd(pd))
		fail("teardown: dealloc pd failed");
	if (ctx && ibv_close_device(ctx))
		fail("teardown: close device failed");

	/* Everything deregistered: nothing held, pins balanced. */
	if (gift_umem_pages(&pinned, &referenced) ||
	    pinned != pinned0 || referenced != referenced0)
		fail("leak: the driver holds %ld pinned and %ld referenced pages, %ld and %ld at the start",
		     pinned, referenced, pinned0, referenced0);
	if (gift_foll_pins(&acq, &rel) ||
	    acq - rel != pins_acq0 - pins_rel0)
		fail("leak: FOLL_PIN acquired - released is %lld, %lld at the start",
		     acq - rel, pins_acq0 - pins_rel0);

out_env:
	beat(main_thread, "restore");
	stop_all();
	if (swap_off())
		fail("swapoff /dev/zram0 failed");
	knobs_restore();
	if (nr_hugepages_old >= 0)
		gift_write_file(HP_NR, "%ld", nr_hugepages_old);
	if (cg_path[0]) {
		memcg_report();
		gift_memcg_move("/sys/fs/cgroup", getpid());
		if (gift_memcg_destroy(cg_path))
			fail("cannot remove the memory cgroup %s", cg_path);
	}

	say("# %-32s %10s  %s\n", "operation", "ok", "expected errors");
	for (i = 0; i < NOPS; i++) {
		char errs[256] = "";
		int len = 0;

		for (k = 1; k < MAX_ERRNO; k++)
			if (op_err[i][k] && len < 200)
				len += snprintf(errs + len, sizeof(errs) - len,
						" %s %ld", strerrorname_np(k),
						op_err[i][k]);
		say("# %-32s %10ld %s\n", op_names[i], op_ok[i], errs);
	}
	if (!started)
		return 2;

	say("# swap: %ld pages out, %ld in; KSM: at most %ld pages merged\n",
	    vmstat("pswpout") - swpout0, vmstat("pswpin") - swpin0,
	    max_ksm_merging);
	odp_report(!failures && secs >= 60);
	/* A minute of churn must have churned, or nothing was tested. */
	if (!failures && secs >= 60) {
		if (vmstat("pswpout") - swpout0 <= 0)
			fail("coverage: nothing was swapped out");
		if (max_ksm_merging <= 0)
			fail("coverage: KSM merged nothing");
		if (!op_ok[OP_CHILD] ||
		    !(op_ok[OP_CLIENT] + op_ok[OP_CLIENT_KILLED]) ||
		    !op_ok[OP_REG_GIFT] || !op_ok[OP_TR_GIFT_READ] ||
		    !op_ok[OP_RACE_READ] || !op_ok[OP_SG_WINDOW] ||
		    !op_ok[OP_REMAP] || !op_ok[OP_ODP_READ] ||
		    !op_ok[OP_ODP_WRITE] || !op_ok[OP_ODP_DEREG_INFLIGHT] ||
		    !op_ok[OP_ODP_QP_DESTROY] || !op_ok[OP_ODP_REMAP] ||
		    !op_ok[OP_ODP_MPROTECT])
			fail("coverage: some operation never succeeded");
	}
	say("# %s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
