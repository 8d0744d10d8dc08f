// SPDX-License-Identifier: GPL-2.0
/*
 * odp_cost - what an on-demand paging (ODP) MR costs the device in page
 * faults and the mm in invalidations, per page.
 *
 * Fault service ("xfer"): RDMA WRITE into and RDMA READ out of a fresh
 * MR of SIZE MiB over a loopback RC QP pair (QP a, the requester, and QP
 * b, the responder, in this process on one device, through its RoCEv2
 * IPv4 GID). The MR under test is the target of the remote access; the
 * requester's local buffer is a pinned MR registered once. Modes:
 *
 *   pinned    the memory is written by the CPU, then registered without
 *             ODP: the baseline;
 *   first     registered with IBV_ACCESS_ON_DEMAND over unpopulated
 *             memory, then written by the CPU (so the device page table
 *             starts empty on every driver, even one that snapshots the
 *             CPU page tables at registration): every page the transfer
 *             touches is a device fault;
 *   prefetch  as first, then ibv_advise_mr(PREFETCH for READ,
 *             PREFETCH_WRITE for WRITE, IBV_ADVISE_MR_FLAG_FLUSH) over the
 *             whole MR before the transfer; the call itself is reported
 *             as mode "prefetch_call".
 *
 * Invalidation ("inval"): madvise(MADV_DONTNEED) and munmap() of SIZE MiB
 * of written memory that is
 *
 *   unreg     not registered;
 *   reg       under an ODP MR that the device has not touched (registered
 *             before the CPU wrote the memory);
 *   mapped    under an ODP MR the device has mapped, writable and dirty
 *             (an RDMA WRITE of the whole range went into it).
 *
 * Each with 4 KiB pages (MADV_NOHUGEPAGE) and with 2 MiB transparent huge
 * pages (2 MiB aligned, MADV_HUGEPAGE; /proc/kpageflags tells whether
 * the kernel did use THPs, thp_miss= counts 2 MiB blocks that are not).
 *
 * Every transfer moves a per-byte pattern (two patterns, alternating
 * between repetitions so stale bytes show) and every byte that arrived is
 * compared: bad_bytes= and bad_pages= say how many were wrong. Each
 * measurement is repeated REPS times, interleaving the modes, and one
 * line of key=value pairs is printed per measurement with the median,
 * minimum and maximum and every sample. On gift0 the deltas of the
 * device's ODP counters over all samples are printed too.
 *
 *   odp_cost -d DEV [-s MIB] [-m MSG_KIB] [-r REPS] [-p 4k,thp]
 *            [-t xfer,inval] [-T TIMEOUT_S]
 *
 * Needs root (kpageflags); meant for the throw-away test VM
 * (tools/bench/odp_cost.sh runs it there). Exit status 0 when every
 * measurement was taken (errors are reported in err=), 1 on setup errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include <infiniband/verbs.h>

#include "gift_util.h"

/*
 * libibverbs' own command for the kernel's advise_mr verb (its private
 * provider ABI; <infiniband/driver.h> is not installed). Providers that
 * have no advise_mr op, like rxe's in rdma-core 44 to 56, make
 * ibv_advise_mr() fail with EOPNOTSUPP without asking the kernel; then
 * this asks the kernel directly, as such a provider would (advise_via=cmd
 * in the output).
 */
int ibv_cmd_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
		      uint32_t flags, struct ibv_sge *sg_list,
		      uint32_t num_sge);

#define MAX_REPS	64
#define SQ_DEPTH	32
#define THP_SIZE	(2UL << 20)
#define KPF_THP		22
#define SEED0		0x0d9c0571u
#define SEED1		0x7ab1e5edu

static const char * const counter_names[] = {
	"odp_faults", "odp_pages_faulted", "odp_engine_waits",
	"odp_fault_retries", "odp_invalidations", "odp_pages_invalidated",
	"retransmits", "dropped_pkts", "duplicate_requests",
};

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define NCOUNTERS	ARRAY_SIZE(counter_names)

enum op { OP_WRITE, OP_READ };
enum xmode { X_PINNED, X_FIRST, X_PREFETCH, X_MODES };
enum istate { I_UNREG, I_REG, I_MAPPED, I_STATES };

static const char * const xmode_names[X_MODES] = {
	"pinned", "first", "prefetch"
};

static const char * const istate_names[I_STATES] = {
	"unreg", "reg", "mapped"
};

/* One reported measurement: samples, and what went wrong. */
struct cell {
	double us[MAX_REPS];
	int n;
	char err[40];
	unsigned long bad_bytes, bad_pages, thp_miss;
	long long cnt[NCOUNTERS];
	bool via_cmd;		/* prefetched with ibv_cmd_advise_mr() */
};

struct bench {
	const char *dev_name;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	struct ibv_qp *qa, *qb;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
	uint8_t rd_atomic;
	size_t len, msg;
	int timeout_ms;
	unsigned char *ref[2];
	unsigned char *loc;
	struct ibv_mr *loc_mr;
	int kpf_fd, pm_fd;
	bool counters;
	char cnt_dir[128];
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "odp_cost: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void set_err(struct cell *c, const char *what, int err)
{
	if (c->err[0])
		return;
	snprintf(c->err, sizeof(c->err), "%s:%s", what,
		 err > 0 ? strerrorname_np(err) : "?");
}

/*
 * The device's counters now, -1 for those it does not have. ib_core
 * caches the values it read for the hw_counters' lifespan (10 ms by
 * default): wait that out first, outside the timed sections.
 */
static void read_counters(struct bench *b, long long *v)
{
	char path[192];
	unsigned int i;

	if (b->counters)
		usleep(25000);
	for (i = 0; i < NCOUNTERS; i++) {
		snprintf(path, sizeof(path), "%s/%s", b->cnt_dir,
			 counter_names[i]);
		v[i] = b->counters ? gift_read_long(path) : -1;
	}
}

static void add_counters(struct cell *c, const long long *before,
			 const long long *after)
{
	unsigned int i;

	for (i = 0; i < NCOUNTERS; i++)
		c->cnt[i] = before[i] < 0 || after[i] < 0 || c->cnt[i] < 0 ?
			    -1 : c->cnt[i] + after[i] - before[i];
}

/*
 * @len bytes at a 2 MiB aligned address, private anonymous, not
 * populated; with THPs (MADV_HUGEPAGE) or without (MADV_NOHUGEPAGE).
 */
static unsigned char *map_target(size_t len, bool thp)
{
	unsigned char *p, *a;
	size_t total = len + THP_SIZE;

	p = mmap(NULL, total, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", total, strerror(errno));
	a = (unsigned char *)(((uintptr_t)p + THP_SIZE - 1) & ~(THP_SIZE - 1));
	if (a > p)
		munmap(p, a - p);
	if (a + len < p + total)
		munmap(a + len, p + total - (a + len));
	if (madvise(a, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE))
		die("madvise(%s): %s", thp ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE",
		    strerror(errno));
	return a;
}

/* 2 MiB blocks of [p, p + len) whose first page is not as @thp asks. */
static unsigned long thp_miss(struct bench *b, const unsigned char *p,
			      size_t len, bool thp)
{
	unsigned long miss = 0;
	uint64_t pm, kpf;
	size_t off;

	for (off = 0; off < len; off += THP_SIZE) {
		if (pread(b->pm_fd, &pm, sizeof(pm),
			  (uintptr_t)(p + off) / 4096 * sizeof(pm)) != sizeof(pm) ||
		    !(pm & GIFT_PM_PRESENT) ||
		    pread(b->kpf_fd, &kpf, sizeof(kpf),
			  GIFT_PM_PFN(pm) * sizeof(kpf)) != sizeof(kpf)) {
			miss++;
			continue;
		}
		if (!!(kpf & (1ULL << KPF_THP)) != thp)
			miss++;
	}
	return miss;
}

/* Counts the bytes (and 4 KiB pages) of @p that differ from @ref. */
static void check_bytes(struct cell *c, const unsigned char *p,
			const unsigned char *ref, size_t len)
{
	size_t pg, i, n;

	if (!memcmp(p, ref, len))
		return;
	for (pg = 0; pg < len; pg += 4096) {
		n = 0;
		for (i = pg; i < pg + 4096 && i < len; i++)
			n += p[i] != ref[i];
		c->bad_bytes += n;
		c->bad_pages += !!n;
	}
}

static int qp_connect(struct bench *b, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_WRITE,
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = b->mtu;
	a.dest_qp_num = dqpn;
	a.rq_psn = 0x100;
	a.max_dest_rd_atomic = b->rd_atomic;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = b->gid;
	a.ah_attr.grh.sgid_index = b->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0x100;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = b->rd_atomic;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			     IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* (Re)creates the CQ and the connected QP pair. */
static void pair_open(struct bench *b)
{
	struct ibv_qp_init_attr init = {
		.cap = {
			.max_send_wr = SQ_DEPTH,
			.max_recv_wr = 1,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
	};

	b->cq = ibv_create_cq(b->ctx, 2 * SQ_DEPTH + 2, NULL, b->ch, 0);
	if (!b->cq)
		die("ibv_create_cq: %s", strerror(errno));
	init.send_cq = b->cq;
	init.recv_cq = b->cq;
	b->qa = ibv_create_qp(b->pd, &init);
	b->qb = ibv_create_qp(b->pd, &init);
	if (!b->qa || !b->qb)
		die("ibv_create_qp: %s", strerror(errno));
	if (qp_connect(b, b->qa, b->qb->qp_num) ||
	    qp_connect(b, b->qb, b->qa->qp_num))
		die("connecting the QPs: %s", strerror(errno));
}

static void pair_close(struct bench *b)
{
	ibv_destroy_qp(b->qa);
	ibv_destroy_qp(b->qb);
	ibv_destroy_cq(b->cq);
}

/*
 * Waits for completions on the CQ until @deadline (now_us()); the number
 * polled into @wc, or -ETIMEDOUT.
 */
static int wait_cq(struct bench *b, struct ibv_wc *wc, int max,
		   double deadline)
{
	struct pollfd pfd = { .fd = b->ch->fd, .events = POLLIN };
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	int n, ms;

	for (;;) {
		n = ibv_poll_cq(b->cq, max, wc);
		if (n)
			return n;
		if (ibv_req_notify_cq(b->cq, 0))
			die("ibv_req_notify_cq: %s", strerror(errno));
		n = ibv_poll_cq(b->cq, max, wc);
		if (n)
			return n;
		ms = (deadline - now_us()) / 1000;
		if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
			return -ETIMEDOUT;
		if (ibv_get_cq_event(b->ch, &ev_cq, &ev_ctx))
			die("ibv_get_cq_event: %s", strerror(errno));
		ibv_ack_cq_events(ev_cq, 1);
	}
}

/*
 * RDMA WRITE (from the local buffer into @tgt) or READ (from @tgt into
 * the local buffer) of the whole length, in messages of b->msg bytes, at
 * most SQ_DEPTH outstanding. Its time in *@us; 0 or an errno, with the
 * failed completion's status in @c. On failure the QP pair is recreated.
 */
static int xfer(struct bench *b, struct cell *c, enum op op,
		struct ibv_mr *mr, unsigned char *tgt, double *us)
{
	size_t nmsg = (b->len + b->msg - 1) / b->msg, posted = 0, done = 0;
	struct ibv_send_wr wr, *bad;
	struct ibv_wc wc[SQ_DEPTH];
	double t0, deadline;
	struct ibv_sge sge;
	int n, i, err = 0;
	size_t off;

	t0 = now_us();
	deadline = t0 + b->timeout_ms * 1000.0;
	while (done < nmsg && !err) {
		while (posted < nmsg && posted - done < SQ_DEPTH) {
			off = posted * b->msg;
			memset(&wr, 0, sizeof(wr));
			sge.addr = (uintptr_t)b->loc + off;
			sge.length = b->len - off < b->msg ? b->len - off :
							      b->msg;
			sge.lkey = b->loc_mr->lkey;
			wr.wr_id = posted;
			wr.sg_list = &sge;
			wr.num_sge = 1;
			wr.opcode = op == OP_WRITE ? IBV_WR_RDMA_WRITE :
						     IBV_WR_RDMA_READ;
			wr.wr.rdma.remote_addr = (uintptr_t)tgt + off;
			wr.wr.rdma.rkey = mr->rkey;
			if (ibv_post_send(b->qa, &wr, &bad)) {
				err = errno;
				set_err(c, "post_send", err);
				break;
			}
			posted++;
		}
		if (err)
			break;
		n = wait_cq(b, wc, SQ_DEPTH, deadline);
		if (n < 0) {
			err = ETIMEDOUT;
			set_err(c, "wait", err);
			break;
		}
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS && !err) {
				err = EIO;
				if (!c->err[0])
					snprintf(c->err, sizeof(c->err),
						 "wc:%s", ibv_wc_status_str(wc[i].status));
			}
		}
		done += n;
	}
	*us = now_us() - t0;
	if (err) {
		pair_close(b);
		pair_open(b);
	}
	return err;
}

static struct ibv_mr *reg(struct bench *b, struct cell *c, void *p, bool odp)
{
	int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ |
		     IBV_ACCESS_REMOTE_WRITE;
	struct ibv_mr *mr;

	if (odp)
		access |= IBV_ACCESS_ON_DEMAND;
	mr = ibv_reg_mr(b->pd, p, b->len, access);
	if (!mr)
		set_err(c, "reg_mr", errno);
	return mr;
}

/*
 * One sample of each xfer mode for @op: @seed selects the pattern moved
 * (b->ref[seed]), the other one is what the receiving buffer held.
 */
static void xfer_round(struct bench *b, struct cell *cells, struct cell *pcall,
		       enum op op, bool thp, int seed)
{
	const unsigned char *want = b->ref[seed], *old = b->ref[!seed];
	long long c0[NCOUNTERS], c1[NCOUNTERS];
	enum ibv_advise_mr_advice advice;
	struct ibv_sge sge;
	struct ibv_mr *mr;
	unsigned char *tgt;
	struct cell *c;
	double us;
	int m, err;

	for (m = 0; m < X_MODES; m++) {
		c = &cells[m];
		tgt = map_target(b->len, thp);
		if (m == X_PINNED)
			memcpy(tgt, op == OP_WRITE ? old : want, b->len);
		mr = reg(b, c, tgt, m != X_PINNED);
		if (!mr)
			goto next;
		if (m != X_PINNED)
			memcpy(tgt, op == OP_WRITE ? old : want, b->len);
		c->thp_miss += thp_miss(b, tgt, b->len, thp);
		memcpy(b->loc, op == OP_WRITE ? want : old, b->len);
		if (m == X_PREFETCH) {
			sge.addr = (uintptr_t)tgt;
			sge.length = b->len;
			sge.lkey = mr->lkey;
			advice = op == OP_WRITE ?
				 IBV_ADVISE_MR_ADVICE_PREFETCH_WRITE :
				 IBV_ADVISE_MR_ADVICE_PREFETCH;
			us = now_us();
			err = ibv_advise_mr(b->pd, advice,
					    IBV_ADVISE_MR_FLAG_FLUSH, &sge, 1);
			if (err == EOPNOTSUPP) {
				c->via_cmd = true;
				pcall->via_cmd = true;
				us = now_us();
				err = ibv_cmd_advise_mr(b->pd, advice,
							IBV_ADVISE_MR_FLAG_FLUSH,
							&sge, 1);
			}
			us = now_us() - us;
			if (err) {
				set_err(c, "advise_mr", err);
				set_err(pcall, "advise_mr", err);
				goto dereg;
			}
			pcall->us[pcall->n++] = us;
		}
		read_counters(b, c0);
		err = xfer(b, c, op, mr, tgt, &us);
		read_counters(b, c1);
		add_counters(c, c0, c1);
		if (!err)
			c->us[c->n++] = us;
		check_bytes(c, op == OP_WRITE ? tgt : b->loc, want, b->len);
dereg:
		ibv_dereg_mr(mr);
next:
		munmap(tgt, b->len);
	}
}

/* One sample of madvise(MADV_DONTNEED) or munmap() in each state. */
static void inval_round(struct bench *b, struct cell *cells, bool dontneed,
			bool thp, int seed)
{
	const unsigned char *want = b->ref[seed], *old = b->ref[!seed];
	long long c0[NCOUNTERS], c1[NCOUNTERS];
	struct ibv_mr *mr = NULL;
	unsigned char *tgt;
	struct cell *c;
	double us;
	size_t i;
	int s, err;

	for (s = 0; s < I_STATES; s++) {
		c = &cells[s];
		tgt = map_target(b->len, thp);
		mr = NULL;
		if (s != I_UNREG) {
			mr = reg(b, c, tgt, true);
			if (!mr) {
				munmap(tgt, b->len);
				continue;
			}
		}
		memcpy(tgt, old, b->len);
		c->thp_miss += thp_miss(b, tgt, b->len, thp);
		if (s == I_MAPPED) {
			memcpy(b->loc, want, b->len);
			err = xfer(b, c, OP_WRITE, mr, tgt, &us);
			check_bytes(c, tgt, want, b->len);
			if (err)
				goto out;
		}
		read_counters(b, c0);
		us = now_us();
		if (dontneed)
			err = madvise(tgt, b->len, MADV_DONTNEED);
		else
			err = munmap(tgt, b->len);
		us = now_us() - us;
		read_counters(b, c1);
		add_counters(c, c0, c1);
		if (err) {
			set_err(c, dontneed ? "madvise" : "munmap", errno);
			goto out;
		}
		c->us[c->n++] = us;
		if (dontneed) {
			/* Zero-fill: one byte a page is enough to tell. */
			for (i = 0; i < b->len; i += 4096)
				if (tgt[i]) {
					c->bad_pages++;
					c->bad_bytes++;
				}
		}
out:
		if (mr)
			ibv_dereg_mr(mr);
		if (dontneed || err)
			munmap(tgt, b->len);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(struct bench *b, const char *test, const char *what,
		   const char *page, const char *mode, struct cell *c)
{
	size_t unit = !strcmp(page, "thp") ? THP_SIZE : 4096;
	unsigned long pages = b->len / unit;
	double s[MAX_REPS], med = 0;
	unsigned int i;
	int k;

	printf("dev=%s test=%s op=%s page=%s mode=%s size_mib=%zu msg_kib=%zu pages=%lu reps=%d",
	       b->dev_name, test, what, page, mode, b->len >> 20,
	       b->msg >> 10, pages, c->n);
	if (c->n) {
		memcpy(s, c->us, c->n * sizeof(*s));
		qsort(s, c->n, sizeof(*s), cmp_double);
		med = c->n & 1 ? s[c->n / 2] :
				 (s[c->n / 2 - 1] + s[c->n / 2]) / 2;
		printf(" median_us=%.1f min_us=%.1f max_us=%.1f per_page_us=%.3f samples_us=",
		       med, s[0], s[c->n - 1], med / pages);
		for (k = 0; k < c->n; k++)
			printf("%s%.0f", k ? "," : "", c->us[k]);
	}
	printf(" bad_bytes=%lu bad_pages=%lu thp_miss=%lu", c->bad_bytes,
	       c->bad_pages, c->thp_miss);
	if (c->via_cmd)
		printf(" advise_via=cmd");
	/* Counters: per sample, on devices that have them. */
	for (i = 0; i < NCOUNTERS; i++)
		if (c->cnt[i] >= 0 && c->n && b->counters)
			printf(" %s=%.1f", counter_names[i],
			       (double)c->cnt[i] / c->n);
	printf(" err=%s\n", c->err[0] ? c->err : "none");
	fflush(stdout);
}

static void bench_open(struct bench *b)
{
	struct ibv_device_attr dattr;
	struct ibv_port_attr pattr;
	char path[192];
	size_t i;
	int k;

	b->ctx = gift_open(b->dev_name);
	if (!b->ctx)
		die("cannot open RDMA device %s", b->dev_name);
	if (ibv_query_device(b->ctx, &dattr) ||
	    ibv_query_port(b->ctx, 1, &pattr))
		die("querying %s: %s", b->dev_name, strerror(errno));
	b->mtu = pattr.active_mtu;
	b->rd_atomic = dattr.max_qp_rd_atom < 16 ? dattr.max_qp_rd_atom : 16;
	if (dattr.max_qp_init_rd_atom < b->rd_atomic)
		b->rd_atomic = dattr.max_qp_init_rd_atom;
	gift_wait_for(gift_have_v4_gid, b->ctx, 5000);
	b->gid_index = gift_find_v4_gid(b->ctx, &b->gid);
	if (b->gid_index < 0)
		die("%s has no RoCEv2 IPv4 GID", b->dev_name);
	snprintf(b->cnt_dir, sizeof(b->cnt_dir),
		 "/sys/class/infiniband/%s/ports/1/hw_counters", b->dev_name);
	snprintf(path, sizeof(path), "%s/odp_faults", b->cnt_dir);
	b->counters = gift_path_exists(path);
	b->pd = ibv_alloc_pd(b->ctx);
	b->ch = ibv_create_comp_channel(b->ctx);
	if (!b->pd || !b->ch)
		die("alloc_pd/create_comp_channel: %s", strerror(errno));
	pair_open(b);

	for (k = 0; k < 2; k++) {
		b->ref[k] = malloc(b->len);
		if (!b->ref[k])
			die("out of memory");
		for (i = 0; i < b->len; i++)
			b->ref[k][i] = gift_pat(i, k ? SEED1 : SEED0);
	}
	b->loc = map_target(b->len, true);
	memset(b->loc, 0, b->len);
	b->loc_mr = ibv_reg_mr(b->pd, b->loc, b->len, IBV_ACCESS_LOCAL_WRITE);
	if (!b->loc_mr)
		die("registering the local buffer: %s", strerror(errno));
	b->pm_fd = open("/proc/self/pagemap", O_RDONLY);
	b->kpf_fd = open("/proc/kpageflags", O_RDONLY);
	if (b->pm_fd < 0 || b->kpf_fd < 0)
		die("opening pagemap/kpageflags: %s", strerror(errno));
	printf("dev=%s info mtu=%d rd_atomic=%d gid_index=%d\n", b->dev_name,
	       128 << b->mtu, b->rd_atomic, b->gid_index);
}

static void bad_usage(void)
{
	fprintf(stderr,
		"usage: odp_cost -d DEV [-s MIB] [-m MSG_KIB] [-r REPS] [-p 4k,thp] [-t xfer,inval] [-T TIMEOUT_S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *pages = "4k,thp", *tests = "xfer,inval";
	struct cell xc[2][X_MODES], pcall[2], ic[2][I_STATES];
	struct bench b = { .len = 64UL << 20, .msg = 1UL << 20,
			   .timeout_ms = 300000 };
	int c, reps = 5, r, p, o, m;
	bool thp;

	while ((c = getopt(argc, argv, "d:s:m:r:p:t:T:")) != -1) {
		switch (c) {
		case 'd':
			b.dev_name = optarg;
			break;
		case 's':
			b.len = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'm':
			b.msg = strtoull(optarg, NULL, 0) << 10;
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'p':
			pages = optarg;
			break;
		case 't':
			tests = optarg;
			break;
		case 'T':
			b.timeout_ms = atoi(optarg) * 1000;
			break;
		default:
			bad_usage();
		}
	}
	if (!b.dev_name || !b.len || b.len % THP_SIZE || !b.msg ||
	    b.msg > b.len || reps < 1 || reps > MAX_REPS ||
	    b.timeout_ms <= 0 || optind != argc)
		bad_usage();
	bench_open(&b);

	for (p = 0; p < 2; p++) {
		thp = p;
		if (!strstr(pages, thp ? "thp" : "4k"))
			continue;
		if (strstr(tests, "xfer")) {
			for (o = 0; o < 2; o++) {
				memset(xc, 0, sizeof(xc));
				memset(pcall, 0, sizeof(pcall));
				for (r = 0; r < reps; r++)
					xfer_round(&b, xc[o], &pcall[o], o,
						   thp, r & 1);
				for (m = 0; m < X_MODES; m++)
					report(&b, "xfer", o ? "read" : "write",
					       thp ? "thp" : "4k",
					       xmode_names[m], &xc[o][m]);
				report(&b, "xfer", o ? "read" : "write",
				       thp ? "thp" : "4k", "prefetch_call",
				       &pcall[o]);
			}
		}
		if (strstr(tests, "inval")) {
			for (o = 0; o < 2; o++) {
				memset(ic, 0, sizeof(ic));
				for (r = 0; r < reps; r++)
					inval_round(&b, ic[o], !o, thp, r & 1);
				for (m = 0; m < I_STATES; m++)
					report(&b, "inval",
					       o ? "munmap" : "dontneed",
					       thp ? "thp" : "4k",
					       istate_names[m], &ic[o][m]);
			}
		}
	}

	ibv_dereg_mr(b.loc_mr);
	pair_close(&b);
	ibv_destroy_comp_channel(b.ch);
	ibv_dealloc_pd(b.pd);
	ibv_close_device(b.ctx);
	return 0;
}
