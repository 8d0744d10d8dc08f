// SPDX-License-Identifier: GPL-2.0
/*
 * rc_xfer: verified-data RC transfers between two hosts (or two VMs), for
 * interoperability tests against any RoCEv2 device (gift0, rxe0, ...).
 *
 *   server: rc_xfer -d DEV [-p PORT] [-s SIZE] [-n ITERS]
 *   client: rc_xfer -d DEV [-p PORT] [-s SIZE] [-n ITERS] SERVER_IP
 *
 * The client is the requester, the server the responder. Over one RC QP
 * (path MTU 1024, the devices' RoCEv2 IPv4 GIDs, a TCP connection for the
 * out-of-band exchange and the steps), for each iteration and each
 * opcode, with a per-byte pattern seeded by opcode and iteration:
 *   SEND, SEND_WITH_IMM   SIZE bytes; the server checks every byte, the
 *                         length, the immediate and the opcode it got
 *   RDMA_WRITE            SIZE bytes into the server's MR; the server
 *                         checks every byte once the client says done
 *   RDMA_WRITE_WITH_IMM   likewise, the server also checks its receive
 *                         completion (opcode, immediate, and the length
 *                         written, as rxe and mlx5 report it)
 *   RDMA_READ             SIZE bytes of the server's MR, checked by the
 *                         client
 *   ATOMIC_CMP_AND_SWP, ATOMIC_FETCH_AND_ADD  on a u64 of the server's
 *                         MR: the client checks the value returned, the
 *                         server the value left
 *   ATOMIC_WRITE          (IBTA 1.5) 8 bytes into the server's MR with
 *                         ibv_wr_atomic_write(); the server checks them
 *                         and the sentinel after them
 *   FLUSH                 (IBTA 1.5) an RDMA WRITE of SIZE bytes, then a
 *                         FLUSH (global placement) of its range: the
 *                         client checks that the FLUSH completes after
 *                         the WRITE with IBV_WC_FLUSH, the server the bytes
 * The last two need a requester that can post them: ATOMIC_WRITE an
 * extended QP offering IBV_QP_EX_WITH_ATOMIC_WRITE, FLUSH a libibverbs
 * with ibv_wr_flush() (45 and later) or gift's giftdv_wr_flush(), looked
 * up in the loaded provider. A requester without one says so and both
 * sides report the step as skipped ("ok ... # SKIP").
 * Destination buffers start as a sentinel, and the bytes after SIZE must
 * still hold it. Every check prints "ok" or "not ok" with the opcode; both
 * sides stop at the first failure (the QP is then in error). Exit status
 * 0 when all passed, 1 when one failed, 2 on setup errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <infiniband/verbs.h>

#define SENTINEL	0xa5
#define SLACK		4096	/* sentinel bytes after every message */
#define WAIT_S		120	/* a completion's deadline */

enum step { OP_SEND, OP_SEND_IMM, OP_WRITE, OP_WRITE_IMM, OP_READ,
	    OP_CMP_SWAP, OP_FETCH_ADD, OP_ATOMIC_WRITE, OP_FLUSH, NOPS };

static const char *const op_name[NOPS] = {
	"SEND", "SEND_WITH_IMM", "RDMA_WRITE", "RDMA_WRITE_WITH_IMM",
	"RDMA_READ", "ATOMIC_CMP_AND_SWP", "ATOMIC_FETCH_AND_ADD",
	"ATOMIC_WRITE", "FLUSH",
};

/* libibverbs >= 45 names (44 lacks FLUSH); values of ib_user_verbs.h. */
#define ACCESS_FLUSH_GLOBAL	(1 << 8)
#define WC_FLUSH		8
#define FLUSH_GLOBAL		1
#define FLUSH_RANGE		0

/* Step answers of a requester that cannot post the step's opcode. */
#define STEP_SKIP		2

typedef void (*flush_fn)(struct ibv_qp_ex *qpx, uint32_t rkey,
			 uint64_t remote_addr, size_t len, uint8_t type,
			 uint8_t level);

/* What the two sides exchange first. */
struct conn {
	uint32_t qpn;
	uint32_t psn;
	uint32_t rkey;
	uint64_t addr;
	uint8_t gid[16];
} __attribute__((packed));

struct ctx {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
	size_t size, len;	/* message size; MR length (+ SLACK) */
	int gid_index;
	union ibv_gid gid;
	int sock;
	struct conn peer;
	struct ibv_qp_ex *qpx;	/* with ATOMIC_WRITE, if the device has it */
	flush_fn flush;		/* giftdv_wr_flush(), on a gift device */
};

static int failures;

static uint8_t pat(size_t i, uint32_t seed)
{
	uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u;

	return (uint8_t)((x >> 13) ^ (i >> 11) ^ seed);
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(i, seed);
}

/* Offset of the first byte that is not the pattern, or -1. */
static long check(const uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(i, seed))
			return i;
	return -1;
}

static long check_sentinel(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != SENTINEL)
			return i;
	return -1;
}

static void result(bool ok, const char *side, int op, int iter,
		   const char *why)
{
	printf("%s %s %s %d%s%s\n", ok ? "ok" : "not ok", side, op_name[op],
	       iter, ok ? "" : ": ", ok ? "" : why);
	fflush(stdout);
	failures += !ok;
}

static void die(const char *what)
{
	fprintf(stderr, "rc_xfer: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void xfer(int sock, void *p, size_t len, bool out)
{
	ssize_t n;

	while (len) {
		n = out ? write(sock, p, len) : read(sock, p, len);
		if (n <= 0) {
			errno = n ? errno : ECONNRESET;
			die(out ? "tcp write" : "tcp read");
		}
		p = (uint8_t *)p + n;
		len -= n;
	}
}

/* One step byte over TCP, each way. */
static void tell(struct ctx *c, uint8_t v) { xfer(c->sock, &v, 1, true); }

static uint8_t hear(struct ctx *c)
{
	uint8_t v;

	xfer(c->sock, &v, 1, false);
	return v;
}

/* The RoCEv2 GID holding an IPv4 address. */
static int find_gid(struct ctx *c)
{
	struct ibv_gid_entry e;
	int i;

	for (i = 0; i < 256; i++) {
		if (ibv_query_gid_ex(c->ctx, 1, i, &e, 0))
			continue;
		if (e.gid_type != IBV_GID_TYPE_ROCE_V2)
			continue;
		if (memcmp(e.gid.raw, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12))
			continue;
		c->gid = e.gid;
		return i;
	}
	return -1;
}

/*
 * The QP: an extended one offering ATOMIC_WRITE when the provider has
 * it, else a plain one. On a gift device, FLUSH through the provider's
 * giftdv_wr_flush() (libibverbs 44 has no ibv_wr_flush()).
 */
static struct ibv_qp *create_qp(struct ctx *c, struct ibv_qp_init_attr *init)
{
	struct ibv_qp_init_attr_ex x = {
		.send_cq = init->send_cq, .recv_cq = init->recv_cq,
		.cap = init->cap, .qp_type = init->qp_type,
		.sq_sig_all = init->sq_sig_all,
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = c->pd,
		.send_ops_flags = IBV_QP_EX_WITH_ATOMIC_WRITE,
	};
	struct { uint64_t comp_mask; uint32_t dev_caps, abi; } gattr = {};
	int (*query)(struct ibv_context *ctx, void *attr);
	struct ibv_qp *qp;
	void *lib;

	qp = ibv_create_qp_ex(c->ctx, &x);
	if (!qp)
		return ibv_create_qp(c->pd, init);
	c->qpx = ibv_qp_to_qp_ex(qp);
	lib = dlopen("libgift-rdmav34.so", RTLD_NOW | RTLD_NOLOAD);
	query = lib ? (int (*)(struct ibv_context *, void *))
		      dlsym(lib, "giftdv_query_device") : NULL;
	/* dev_caps bit 1: GIFTDV_DEV_CAP_POST_EX */
	if (query && !query(c->ctx, &gattr) && (gattr.dev_caps & 2))
		c->flush = (flush_fn)dlsym(lib, "giftdv_wr_flush");
	return qp;
}

static void open_dev(struct ctx *c, const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_qp_init_attr init = {
		.cap = { .max_send_wr = 16, .max_recv_wr = 16,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
	};
	int i;

	if (!list)
		die("ibv_get_device_list");
	for (i = 0; list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (!list[i]) {
		fprintf(stderr, "rc_xfer: no device %s\n", name);
		exit(2);
	}
	c->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!c->ctx)
		die("ibv_open_device");
	c->gid_index = find_gid(c);
	if (c->gid_index < 0) {
		fprintf(stderr, "rc_xfer: %s has no RoCEv2 IPv4 GID\n", name);
		exit(2);
	}
	c->pd = ibv_alloc_pd(c->ctx);
	c->cq = c->pd ? ibv_create_cq(c->ctx, 64, NULL, NULL, 0) : NULL;
	if (!c->cq)
		die("pd/cq");
	init.send_cq = c->cq;
	init.recv_cq = c->cq;
	c->qp = create_qp(c, &init);
	if (!c->qp)
		die("ibv_create_qp");
	c->len = c->size + SLACK;
	c->buf = aligned_alloc(4096, (c->len + 4095) & ~4095ul);
	if (!c->buf)
		die("aligned_alloc");
	memset(c->buf, SENTINEL, c->len);
	c->mr = ibv_reg_mr(c->pd, c->buf, c->len, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_REMOTE_ATOMIC | ACCESS_FLUSH_GLOBAL);
	if (!c->mr)
		die("ibv_reg_mr");
}

static void connect_qp(struct ctx *c)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT, .port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC |
				   ACCESS_FLUSH_GLOBAL,
	};
	struct conn me = {
		.qpn = c->qp->qp_num, .psn = (uint32_t)getpid() & 0xffffff,
		.rkey = c->mr->rkey, .addr = (uintptr_t)c->buf,
	};

	memcpy(me.gid, c->gid.raw, 16);
	xfer(c->sock, &me, sizeof(me), true);
	xfer(c->sock, &c->peer, sizeof(c->peer), false);
	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("modify_qp INIT");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = c->peer.qpn;
	a.rq_psn = c->peer.psn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.port_num = 1;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.grh.sgid_index = c->gid_index;
	memcpy(a.ah_attr.grh.dgid.raw, c->peer.gid, 16);
	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_AV |
			  IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("modify_qp RTR");
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = me.psn;
	a.timeout = 16;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			  IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			  IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC))
		die("modify_qp RTS");
}

/* Waits for one completion; false (and a message in why) if it failed. */
static bool wait_wc(struct ctx *c, struct ibv_wc *wc, char *why, size_t n)
{
	time_t end = time(NULL) + WAIT_S;
	int ret;

	while (!(ret = ibv_poll_cq(c->cq, 1, wc)) && time(NULL) < end)
		usleep(50);
	if (ret != 1) {
		snprintf(why, n, "no completion in %d s", WAIT_S);
		return false;
	}
	if (wc->status != IBV_WC_SUCCESS) {
		snprintf(why, n, "completion status %s",
			 ibv_wc_status_str(wc->status));
		return false;
	}
	return true;
}

static uint32_t seed_of(int op, int iter) { return op * 1000 + iter + 1; }

/*
 * The server's check of an ATOMIC_WRITE or FLUSH step (@ok: the client's
 * WQEs completed).
 */
static void serve_pm(struct ctx *c, int op, int iter, bool ok)
{
	uint32_t seed = seed_of(op, iter);
	uint64_t want = 0x3000000000000000ull + seed;
	char why[128] = "";
	long off;

	if (!ok) {
		snprintf(why, sizeof(why), "the client's WQE failed");
	} else if (op == OP_ATOMIC_WRITE) {
		if (memcmp(c->buf, &want, 8))
			snprintf(why, sizeof(why), "value left %#" PRIx64,
				 *(uint64_t *)c->buf);
		else if (check_sentinel(c->buf + 8, c->len - 8) >= 0)
			snprintf(why, sizeof(why), "bytes past the u64 written");
	} else if ((off = check(c->buf, c->size, seed)) >= 0) {
		snprintf(why, sizeof(why), "byte %ld of %zu wrong", off,
			 c->size);
	} else if ((off = check_sentinel(c->buf + c->size, SLACK)) >= 0) {
		snprintf(why, sizeof(why), "byte %ld past the message written",
			 off);
	}
	ok = !why[0];
	result(ok, "responder", op, iter, why);
	tell(c, ok);
}

/* The server's side of one step: prepare, let the client go, check. */
static void serve(struct ctx *c, int op, int iter)
{
	uint32_t seed = seed_of(op, iter), imm = 0xc0de0000 + seed;
	uint64_t *word = (uint64_t *)c->buf;
	struct ibv_sge sge = {
		.addr = (uintptr_t)c->buf, .length = c->size,
		.lkey = c->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = op, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;
	bool recv = op == OP_SEND || op == OP_SEND_IMM || op == OP_WRITE_IMM;
	struct ibv_wc wc;
	char why[128] = "";
	bool ok = true;
	long off;

	uint8_t heard;

	memset(c->buf, SENTINEL, c->len);
	if (op == OP_READ)
		fill(c->buf, c->size, seed);
	else if (op == OP_CMP_SWAP || op == OP_FETCH_ADD)
		*word = 0x1000000000000000ull + seed;
	if (recv && ibv_post_recv(c->qp, &wr, &bad))
		die("ibv_post_recv");
	tell(c, 1);
	if (op >= OP_ATOMIC_WRITE) {
		heard = hear(c);
		if (heard == STEP_SKIP) {
			printf("ok responder %s %d # SKIP the requester cannot post it\n",
			       op_name[op], iter);
			tell(c, 1);
			return;
		}
		serve_pm(c, op, iter, heard == 1);
		return;
	}
	if (recv) {
		ok = wait_wc(c, &wc, why, sizeof(why));
		if (ok && wc.opcode != (op == OP_WRITE_IMM ?
					IBV_WC_RECV_RDMA_WITH_IMM :
					IBV_WC_RECV)) {
			snprintf(why, sizeof(why), "wc opcode %d", wc.opcode);
			ok = false;
		}
		/* RDMA WRITE with immediate: the bytes written (rxe, mlx5) */
		if (ok && wc.byte_len != c->size) {
			snprintf(why, sizeof(why), "byte_len %u", wc.byte_len);
			ok = false;
		}
		if (ok && op != OP_SEND &&
		    (!(wc.wc_flags & IBV_WC_WITH_IMM) ||
		     ntohl(wc.imm_data) != imm)) {
			snprintf(why, sizeof(why), "immediate %#x",
				 ntohl(wc.imm_data));
			ok = false;
		}
	}
	/* The client's step ended (its WQE completed). */
	if (hear(c) != 1 && ok) {
		snprintf(why, sizeof(why), "the client's WQE failed");
		ok = false;
	}
	if (ok && op == OP_CMP_SWAP &&
	    *word != 0x2000000000000000ull + seed) {
		snprintf(why, sizeof(why), "value left %#" PRIx64, *word);
		ok = false;
	} else if (ok && op == OP_FETCH_ADD &&
		   *word != 0x1000000000000000ull + seed + 7 * seed) {
		snprintf(why, sizeof(why), "value left %#" PRIx64, *word);
		ok = false;
	} else if (ok && op != OP_READ && op < OP_CMP_SWAP) {
		off = check(c->buf, c->size, seed);
		if (off >= 0)
			snprintf(why, sizeof(why), "byte %ld of %zu wrong",
				 off, c->size);
		else if ((off = check_sentinel(c->buf + c->size, SLACK)) >= 0)
			snprintf(why, sizeof(why),
				 "byte %ld past the message written", off);
		ok = off < 0;
	}
	if (ok && op >= OP_CMP_SWAP &&
	    check_sentinel(c->buf + 8, c->len - 8) >= 0) {
		snprintf(why, sizeof(why), "bytes past the u64 written");
		ok = false;
	}
	result(ok, "responder", op, iter, why);
	tell(c, ok);
}

/*
 * The client's side of an ATOMIC_WRITE or FLUSH step; tells the server
 * STEP_SKIP when this requester cannot post it.
 */
static void request_pm(struct ctx *c, int op, int iter)
{
	uint32_t seed = seed_of(op, iter);
	uint64_t val = 0x3000000000000000ull + seed;
	struct ibv_sge sge = {
		.addr = (uintptr_t)c->buf, .lkey = c->mr->lkey,
		.length = c->size,
	};
	struct ibv_send_wr wr = {
		.wr_id = op, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.wr.rdma = { .remote_addr = c->peer.addr, .rkey = c->peer.rkey },
	}, *bad;
	struct ibv_wc wc;
	char why[128] = "";
	bool ok;

	if (hear(c) != 1)
		die("server not ready");
	if (!c->qpx || (op == OP_FLUSH && !c->flush)) {
		printf("ok requester %s %d # SKIP this requester cannot post it\n",
		       op_name[op], iter);
		tell(c, STEP_SKIP);
		hear(c);
		return;
	}
	memset(c->buf, SENTINEL, c->len);
	if (op == OP_FLUSH) {
		fill(c->buf, c->size, seed);
		if (ibv_post_send(c->qp, &wr, &bad))
			die("ibv_post_send");
	}
	ibv_wr_start(c->qpx);
	c->qpx->wr_id = op + 100;
	c->qpx->wr_flags = IBV_SEND_SIGNALED;
	if (op == OP_FLUSH)
		c->flush(c->qpx, c->peer.rkey, c->peer.addr, c->size,
			 FLUSH_GLOBAL, FLUSH_RANGE);
	else
		ibv_wr_atomic_write(c->qpx, c->peer.rkey, c->peer.addr, &val);
	if (ibv_wr_complete(c->qpx))
		die("ibv_wr_complete");
	ok = op != OP_FLUSH || wait_wc(c, &wc, why, sizeof(why));
	if (ok && op == OP_FLUSH && wc.wr_id != (uint64_t)op) {
		snprintf(why, sizeof(why), "RDMA WRITE: wr_id %" PRIu64,
			 (uint64_t)wc.wr_id);
		ok = false;
	}
	ok = ok && wait_wc(c, &wc, why, sizeof(why));
	if (ok && (wc.wr_id != (uint64_t)op + 100 ||
		   (int)wc.opcode != (op == OP_FLUSH ? WC_FLUSH :
				      IBV_WC_ATOMIC_WRITE))) {
		snprintf(why, sizeof(why), "wr_id %" PRIu64 ", wc opcode %d",
			 (uint64_t)wc.wr_id, wc.opcode);
		ok = false;
	}
	result(ok, "requester", op, iter, why);
	tell(c, ok);
	if (hear(c) != 1)
		failures++;	/* the server printed why */
}

/* The client's side of a step of the base RC opcodes. */
static void request_rc(struct ctx *c, int op, int iter)
{
	static const enum ibv_wr_opcode wr_op[OP_ATOMIC_WRITE] = {
		IBV_WR_SEND, IBV_WR_SEND_WITH_IMM, IBV_WR_RDMA_WRITE,
		IBV_WR_RDMA_WRITE_WITH_IMM, IBV_WR_RDMA_READ,
		IBV_WR_ATOMIC_CMP_AND_SWP, IBV_WR_ATOMIC_FETCH_AND_ADD,
	};
	uint32_t seed = seed_of(op, iter);
	uint64_t start = 0x1000000000000000ull + seed;
	struct ibv_sge sge = {
		.addr = (uintptr_t)c->buf, .lkey = c->mr->lkey,
		.length = op >= OP_CMP_SWAP ? 8 : c->size,
	};
	struct ibv_send_wr wr = {
		.wr_id = op, .sg_list = &sge, .num_sge = 1,
		.opcode = wr_op[op],
		.imm_data = htonl(0xc0de0000 + seed),
	}, *bad;
	struct ibv_wc wc;
	char why[128] = "";
	bool ok;
	long off;

	memset(c->buf, SENTINEL, c->len);
	if (op < OP_READ)
		fill(c->buf, c->size, seed);
	if (op == OP_CMP_SWAP || op == OP_FETCH_ADD) {
		wr.wr.atomic.remote_addr = c->peer.addr;
		wr.wr.atomic.rkey = c->peer.rkey;
		wr.wr.atomic.compare_add = op == OP_CMP_SWAP ? start : 7 * seed;
		wr.wr.atomic.swap = 0x2000000000000000ull + seed;
	} else {
		wr.wr.rdma.remote_addr = c->peer.addr;
		wr.wr.rdma.rkey = c->peer.rkey;
	}
	if (hear(c) != 1)
		die("server not ready");
	if (ibv_post_send(c->qp, &wr, &bad))
		die("ibv_post_send");
	ok = wait_wc(c, &wc, why, sizeof(why));
	if (ok && op == OP_READ) {
		off = check(c->buf, c->size, seed);
		if (off >= 0)
			snprintf(why, sizeof(why), "byte %ld of %zu wrong",
				 off, c->size);
		else if ((off = check_sentinel(c->buf + c->size, SLACK)) >= 0)
			snprintf(why, sizeof(why),
				 "byte %ld past the message written", off);
		ok = off < 0;
	} else if (ok && op >= OP_CMP_SWAP) {
		if (*(uint64_t *)c->buf != start)
			snprintf(why, sizeof(why), "returned %#" PRIx64,
				 *(uint64_t *)c->buf);
		else if (check_sentinel(c->buf + 8, c->len - 8) >= 0)
			snprintf(why, sizeof(why), "bytes past the u64 written");
		ok = !why[0];
	}
	result(ok, "requester", op, iter, why);
	tell(c, ok);
	if (hear(c) != 1)
		failures++;	/* the server printed why */
}

/* The client's side of one step. */
static void request(struct ctx *c, int op, int iter)
{
	if (op >= OP_ATOMIC_WRITE)
		request_pm(c, op, iter);
	else
		request_rc(c, op, iter);
}

static int tcp(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_INET,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = host ? 0 : AI_PASSIVE };
	struct addrinfo *ai;
	int s, fd, one = 1, tries;

	if (getaddrinfo(host, port, &hints, &ai))
		die("getaddrinfo");
	s = socket(ai->ai_family, ai->ai_socktype, 0);
	if (s < 0)
		die("socket");
	if (host) {
		/* The server may still be starting: retry for 30 s. */
		for (tries = 0; connect(s, ai->ai_addr, ai->ai_addrlen);
		     tries++) {
			if (tries == 300)
				die("connect");
			close(s);
			s = socket(ai->ai_family, ai->ai_socktype, 0);
			usleep(100000);
		}
		freeaddrinfo(ai);
		return s;
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, ai->ai_addr, ai->ai_addrlen) || listen(s, 1))
		die("bind/listen");
	freeaddrinfo(ai);
	fd = accept(s, NULL, NULL);
	if (fd < 0)
		die("accept");
	close(s);
	return fd;
}

int main(int argc, char **argv)
{
	const char *dev = NULL, *port = "18515", *host;
	struct ctx c = { .size = 1 << 20 };
	int opt, iters = 1, op, i;

	while ((opt = getopt(argc, argv, "d:p:s:n:")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'p': port = optarg; break;
		case 's': c.size = strtoul(optarg, NULL, 0); break;
		case 'n': iters = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: rc_xfer -d DEV [-p PORT] [-s SIZE] [-n ITERS] [SERVER]\n");
			return 2;
		}
	}
	host = optind < argc ? argv[optind] : NULL;
	if (!dev || c.size < 8) {
		fprintf(stderr, "rc_xfer: -d DEV is required, SIZE >= 8\n");
		return 2;
	}
	open_dev(&c, dev);
	c.sock = tcp(host, port);
	connect_qp(&c);
	/* Both sides know of a failure at the same step: stop there. */
	for (i = 0; i < iters && !failures; i++)
		for (op = 0; op < NOPS && !failures; op++)
			(host ? request : serve)(&c, op, i);
	printf("rc_xfer %s: %d failed of %d\n", host ? "requester" : "responder",
	       failures, iters * NOPS);
	ibv_destroy_qp(c.qp);
	ibv_dereg_mr(c.mr);
	ibv_destroy_cq(c.cq);
	ibv_dealloc_pd(c.pd);
	ibv_close_device(c.ctx);
	return failures ? 1 : 0;
}
