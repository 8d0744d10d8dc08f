// SPDX-License-Identifier: GPL-2.0
/*
 * The extended verbs: ibv_wr_*() on QPs made by ibv_create_qp_ex() with
 * send_ops_flags, start_poll/next_poll/end_poll and the read functions on
 * CQs made by ibv_create_cq_ex(), and what creation refuses.
 *
 * The tests check the verbs contract, not one provider's reading of it: they
 * run unchanged on any device (GIFT_IBDEV: gift0, or rxe0 with the VM
 * runner's --driver rxe). Two QPs of the device talk in loopback through
 * its RoCEv2 IPv4 GID. Every opcode the device offers is posted through
 * its builder and every setter is used; received bytes are compared with a
 * pattern, destinations are sentinel-filled first and their tails checked
 * unchanged; completions are read only through the extended CQ and checked
 * field by field (status, opcode, wr_id, byte_len, imm, qp_num, src_qp,
 * wc_flags). A WR aborted or failed in ibv_wr_complete() must leave nothing
 * posted: the WRs posted after it are the only ones to complete.
 *
 * Creation must refuse, with EOPNOTSUPP, send_ops_flags the device cannot
 * execute (what the device attributes deny, and what the transport has
 * not) and completion fields it cannot fill (a timestamp without a clock).
 *
 * Every wait has a deadline.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "gift_util.h"
#include "gift_harness.h"

#define BUF		65536	/* each of src and dst */
#define SENTINEL	0x5a
#define QKEY		0x11111111u
#define GRH		40
#define WAIT_MS		(10000 * gift_slow())
#define QUIET_MS	(300 * gift_slow())
#define MAX_SGE		4
#define MAX_INLINE	128

/* Kernel ABI device capability bits (ib_user_verbs.h), in device_cap_flags_ex */
#define DEV_FLUSH	((1ULL << 38) | (1ULL << 39))
#define DEV_ATOMIC_WRITE (1ULL << 40)
/* send_ops_flags bit of libibverbs' newer verbs.h */
#define QP_EX_WITH_FLUSH (1ULL << 11)

#define RC_OPS	(IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM | \
		 IBV_QP_EX_WITH_SEND_WITH_INV | IBV_QP_EX_WITH_RDMA_WRITE | \
		 IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM | IBV_QP_EX_WITH_RDMA_READ | \
		 IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP | \
		 IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD)
#define UC_OPS	(IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM | \
		 IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM)
#define UD_OPS	(IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM)

#define WC_ALL	(IBV_WC_EX_WITH_BYTE_LEN | IBV_WC_EX_WITH_IMM | \
		 IBV_WC_EX_WITH_QP_NUM | IBV_WC_EX_WITH_SRC_QP | \
		 IBV_WC_EX_WITH_SLID | IBV_WC_EX_WITH_SL | \
		 IBV_WC_EX_WITH_DLID_PATH_BITS)

/* A completion as the extended CQ returned it. */
struct xwc {
	uint64_t wr_id;
	enum ibv_wc_status status;
	enum ibv_wc_opcode opcode;
	uint32_t byte_len;
	uint32_t imm;		/* host order */
	uint32_t qp_num;
	uint32_t src_qp;
	unsigned int wc_flags;
};

static void xwc_read(struct ibv_cq_ex *cq, struct xwc *w)
{
	w->wr_id = cq->wr_id;
	w->status = cq->status;
	w->opcode = ibv_wc_read_opcode(cq);
	w->byte_len = ibv_wc_read_byte_len(cq);
	w->wc_flags = ibv_wc_read_wc_flags(cq);
	w->imm = w->wc_flags & IBV_WC_WITH_IMM ?
		 be32toh(ibv_wc_read_imm_data(cq)) : 0;
	w->qp_num = ibv_wc_read_qp_num(cq);
	w->src_qp = ibv_wc_read_src_qp(cq);
}

/*
 * Reads exactly n completions from cq within WAIT_MS through start_poll/
 * next_poll/end_poll, then checks that no more arrive within QUIET_MS.
 * 0, or -1 on a timeout, a poll error or an extra completion.
 */
/* A completion read by ibv_poll_cq(), as the extended CQ would give it. */
static void xwc_from_wc(const struct ibv_wc *wc, struct xwc *w)
{
	w->wr_id = wc->wr_id;
	w->status = wc->status;
	w->opcode = wc->opcode;
	w->byte_len = wc->byte_len;
	w->wc_flags = wc->wc_flags;
	w->imm = wc->wc_flags & IBV_WC_WITH_IMM ? be32toh(wc->imm_data) : 0;
	w->qp_num = wc->qp_num;
	w->src_qp = wc->src_qp;
}

/*
 * VERBS_EX_PLAIN_POLL=1 reads the extended CQs with ibv_poll_cq() instead:
 * for providers whose start_poll/next_poll/end_poll are broken (rdma-core
 * 44's rxe: end_poll after next_poll's ENOENT moves the consumer index
 * past the producer, rdma-core PR #1512), so that their send side can
 * still be checked. end_poll_keeps_unread uses start_poll either way.
 */
static bool plain_poll(void)
{
	const char *v = getenv("VERBS_EX_PLAIN_POLL");

	return v && *v == '1';
}

/* One poll round: completions appended to w[*got], at most n in all. */
static int poll_round(struct ibv_cq_ex *cq, struct xwc *w, int *got, int n)
{
	struct ibv_poll_cq_attr attr = {};
	struct ibv_wc wc;
	int ret;

	if (plain_poll()) {
		ret = ibv_poll_cq(ibv_cq_ex_to_cq(cq), 1, &wc);
		if (ret <= 0)
			return ret ? -1 : ENOENT;
		if (*got == n)
			return -1;
		xwc_from_wc(&wc, &w[(*got)++]);
		return 0;
	}
	ret = ibv_start_poll(cq, &attr);
	if (ret)
		return ret;
	do {
		if (*got == n) {
			fprintf(stderr, "# completion %llu beyond the %d expected\n",
				(unsigned long long)cq->wr_id, n);
			ibv_end_poll(cq);
			return -1;
		}
		xwc_read(cq, &w[(*got)++]);
		ret = ibv_next_poll(cq);
	} while (!ret);
	ibv_end_poll(cq);
	return ret == ENOENT ? 0 : -1;
}

/*
 * Reads exactly n completions from cq within WAIT_MS through start_poll/
 * next_poll/end_poll, then checks that no more arrive within QUIET_MS.
 * 0, or -1 on a timeout, a poll error or an extra completion.
 */
static int poll_ex(struct ibv_cq_ex *cq, struct xwc *w, int n)
{
	long long end = gift_now_us() + WAIT_MS * 1000LL;
	int got = 0, ret;

	while (got < n) {
		ret = poll_round(cq, w, &got, n);
		if (ret == ENOENT) {
			if (gift_now_us() > end) {
				fprintf(stderr, "# %d of %d completions\n",
					got, n);
				return -1;
			}
			usleep(1000);
		} else if (ret) {
			return -1;
		}
	}
	end = gift_now_us() + QUIET_MS * 1000LL;
	while (gift_now_us() < end) {
		ret = poll_round(cq, w, &got, n);
		if (ret != ENOENT)
			return -1;
		usleep(2000);
	}
	return 0;
}

struct rig {
	struct ibv_context *ctx;
	struct ibv_device_attr_ex dev;
	struct ibv_pd *pd;
	struct ibv_cq_ex *scq, *rcq;
	struct ibv_qp *a, *b;		/* a sends, b receives */
	struct ibv_qp_ex *ax;
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	uint8_t *src, *dst;		/* src: BUF bytes, then dst: BUF */
	union ibv_gid gid;
	int gid_index;
	uint32_t mtu;
};

/* Both transports; rc: RC-only opcodes. */
FIXTURE(ex) {
	struct rig r;
};

FIXTURE(rc) {
	struct rig r;
};

/* UC: RDMA WRITE through the builders. */
FIXTURE(uc) {
	struct rig r;
};

FIXTURE_VARIANT(ex) {
	enum ibv_qp_type type;
};

FIXTURE_VARIANT_ADD(ex, rc) {
	.type = IBV_QPT_RC,
};

FIXTURE_VARIANT_ADD(ex, ud) {
	.type = IBV_QPT_UD,
};

FIXTURE_VARIANT_ADD(ex, uc) {
	.type = IBV_QPT_UC,
};

static struct ibv_cq_ex *make_cq(struct ibv_context *ctx)
{
	struct ibv_cq_init_attr_ex attr = {
		.cqe = 64,
		.wc_flags = WC_ALL,
	};

	return ibv_create_cq_ex(ctx, &attr);
}

static struct ibv_qp *make_qp(struct rig *r, enum ibv_qp_type type,
			      uint64_t ops)
{
	struct ibv_qp_init_attr_ex init = {
		.send_cq = ibv_cq_ex_to_cq(r->scq),
		.recv_cq = ibv_cq_ex_to_cq(r->rcq),
		.cap = { .max_send_wr = 32, .max_recv_wr = 32,
			 .max_send_sge = MAX_SGE, .max_recv_sge = MAX_SGE,
			 .max_inline_data = MAX_INLINE },
		.qp_type = type,
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = r->pd,
		.send_ops_flags = ops,
	};

	return ibv_create_qp_ex(r->ctx, &init);
}

static int to_init(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
		.qkey = QKEY,
	};
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	mask |= qp->qp_type == IBV_QPT_UD ? IBV_QP_QKEY : IBV_QP_ACCESS_FLAGS;
	return ibv_modify_qp(qp, &a, mask);
}

/*
 * RESET to RTS; an RC or UC QP talks to QP dqpn at the device's own GID,
 * UC with the UC attributes only.
 */
static int to_rts(struct rig *r, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a = {};
	int mask;

	if (to_init(qp))
		return -1;
	a.qp_state = IBV_QPS_RTR;
	mask = IBV_QP_STATE;
	if (qp->qp_type != IBV_QPT_UD) {
		a.path_mtu = IBV_MTU_1024;
		a.dest_qp_num = dqpn;
		a.rq_psn = 0x1234;
		a.ah_attr.is_global = 1;
		a.ah_attr.grh.dgid = r->gid;
		a.ah_attr.grh.sgid_index = r->gid_index;
		a.ah_attr.grh.hop_limit = 64;
		a.ah_attr.port_num = 1;
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN;
	}
	if (qp->qp_type == IBV_QPT_RC) {
		a.max_dest_rd_atomic = 4;
		a.min_rnr_timer = 12;
		mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	}
	if (ibv_modify_qp(qp, &a, mask))
		return -1;

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0x1234;
	mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (qp->qp_type == IBV_QPT_RC) {
		a.timeout = gift_slow_qp_timeout(14);
		a.retry_cnt = 7;
		a.rnr_retry = 7;
		a.max_rd_atomic = 4;
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			IBV_QP_MAX_QP_RD_ATOMIC;
	}
	return ibv_modify_qp(qp, &a, mask);
}

/*
 * Opens the device and makes the two QPs of @type in RTS, the CQs, the AH
 * (UD) and the registered buffers. 0, or the line that failed.
 */
static int rig_setup(struct rig *r, enum ibv_qp_type type)
{
	struct ibv_ah_attr ah = { .is_global = 1, .port_num = 1 };
	struct ibv_port_attr port;
	uint64_t ops = type == IBV_QPT_RC ? RC_OPS :
		       type == IBV_QPT_UC ? UC_OPS : UD_OPS;
	size_t i;

	r->ctx = gift_open(gift_env("GIFT_IBDEV"));
	if (!r->ctx || !gift_wait_for(gift_have_v4_gid, r->ctx, 10000))
		return __LINE__;
	r->gid_index = gift_find_v4_gid(r->ctx, &r->gid);
	if (r->gid_index < 0 ||
	    ibv_query_device_ex(r->ctx, NULL, &r->dev) ||
	    ibv_query_port(r->ctx, 1, &port))
		return __LINE__;
	r->mtu = 128 << port.active_mtu;

	r->pd = ibv_alloc_pd(r->ctx);
	if (!r->pd)
		return __LINE__;
	r->scq = make_cq(r->ctx);
	r->rcq = make_cq(r->ctx);
	if (!r->scq || !r->rcq)
		return __LINE__;
	r->a = make_qp(r, type, ops);
	r->b = make_qp(r, type, ops);
	if (!r->a || !r->b)
		return __LINE__;
	r->ax = ibv_qp_to_qp_ex(r->a);
	if (!r->ax || to_rts(r, r->a, r->b->qp_num) ||
	    to_rts(r, r->b, r->a->qp_num))
		return __LINE__;

	if (type == IBV_QPT_UD) {
		ah.grh.dgid = r->gid;
		ah.grh.sgid_index = r->gid_index;
		ah.grh.hop_limit = 64;
		r->ah = ibv_create_ah(r->pd, &ah);
		if (!r->ah)
			return __LINE__;
	}

	r->src = aligned_alloc(4096, 2 * BUF);
	if (!r->src)
		return __LINE__;
	r->dst = r->src + BUF;
	for (i = 0; i < BUF; i++)
		r->src[i] = gift_pat(i, 1);
	memset(r->dst, SENTINEL, BUF);
	r->mr = ibv_reg_mr(r->pd, r->src, 2 * BUF,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			   IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC);
	return r->mr ? 0 : __LINE__;
}

static void rig_teardown(struct rig *r)
{
	if (r->mr)
		ibv_dereg_mr(r->mr);
	free(r->src);
	if (r->ah)
		ibv_destroy_ah(r->ah);
	if (r->b)
		ibv_destroy_qp(r->b);
	if (r->a)
		ibv_destroy_qp(r->a);
	if (r->rcq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(r->rcq));
	if (r->scq)
		ibv_destroy_cq(ibv_cq_ex_to_cq(r->scq));
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->ctx)
		ibv_close_device(r->ctx);
}

FIXTURE_SETUP(ex)
{
	ASSERT_EQ(0, rig_setup(&self->r, variant->type));
}

FIXTURE_TEARDOWN(ex)
{
	rig_teardown(&self->r);
}

FIXTURE_SETUP(rc)
{
	ASSERT_EQ(0, rig_setup(&self->r, IBV_QPT_RC));
}

FIXTURE_TEARDOWN(rc)
{
	rig_teardown(&self->r);
}

FIXTURE_SETUP(uc)
{
	ASSERT_EQ(0, rig_setup(&self->r, IBV_QPT_UC));
}

FIXTURE_TEARDOWN(uc)
{
	rig_teardown(&self->r);
}

/* Room for the GRH of a UD receive before the payload. */
static size_t grh(const struct rig *r)
{
	return r->a->qp_type == IBV_QPT_UD ? GRH : 0;
}

/*
 * Posts a receive on b of len bytes (plus the GRH on UD) at dst + off,
 * with wr_id.
 */
static int post_recv(struct rig *r, size_t off, uint32_t len,
		     uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(r->dst + off),
		.length = len + grh(r),
		.lkey = r->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return ibv_post_recv(r->b, &wr, &bad);
}

/* The UD address of b, for the WR just built (nothing on RC). */
static void ud_addr(struct rig *r)
{
	if (r->a->qp_type == IBV_QPT_UD)
		ibv_wr_set_ud_addr(r->ax, r->ah, r->b->qp_num, QKEY);
}

/*
 * The len bytes of dst at off (after the GRH on UD) hold want; the
 * sentinel follows up to the end of a 256-byte margin.
 */
static bool landed(struct rig *r, size_t off, const uint8_t *want,
		   size_t len)
{
	const uint8_t *p = r->dst + off + grh(r);
	size_t i;

	if (memcmp(p, want, len))
		return false;
	for (i = len; i < len + 256; i++)
		if (p[i] != SENTINEL)
			return false;
	return true;
}

/*
 * Where the verbs leave a choice, gift0 is held to its documented one and
 * other devices only to the contract.
 */
static bool is_gift(void)
{
	const char *d = getenv("GIFT_DRIVER");

	return !d || !strcmp(d, "gift");
}

/*
 * ibv_wr_complete() of a batch with an invalid WR: an error, which the
 * verbs do not name (gift0: EINVAL, as ibv_post_send(); mlx5 ENOMEM,
 * rxe ENOSPC).
 */
static bool invalid_wr_err(int err)
{
	if (is_gift())
		return err == EINVAL;
	fprintf(stderr, "# ibv_wr_complete: %d\n", err);
	return err != 0;
}

/* A completion of b's receive of len bytes, with flags set in wc_flags. */
static bool recv_ok(struct rig *r, const struct xwc *w,
		    uint64_t wr_id, enum ibv_wc_opcode op, uint32_t len,
		    unsigned int flags)
{
	bool ud = r->a->qp_type == IBV_QPT_UD, ok;
	unsigned int got = w->wc_flags;

	/* The GRH flag means a GRH in the buffer: UD only (rxe sets it on RC) */
	if (ud)
		flags |= IBV_WC_GRH;
	else
		got &= ~IBV_WC_GRH;
	ok = w->status == IBV_WC_SUCCESS && w->wr_id == wr_id &&
	     w->opcode == op && w->byte_len == len + grh(r) &&
	     w->qp_num == r->b->qp_num &&
	     (!ud || w->src_qp == r->a->qp_num) && got == flags;
	if (!ok)
		fprintf(stderr,
			"# receive wr_id %llu status %d opcode %d len %u qp %u src_qp %u flags %#x;"
			" want %llu 0 %d %zu %u %u %#x\n",
			(unsigned long long)w->wr_id, w->status, w->opcode,
			w->byte_len, w->qp_num, w->src_qp, w->wc_flags,
			(unsigned long long)wr_id, op, len + grh(r),
			r->b->qp_num, r->a->qp_num, flags);
	return ok;
}

static bool send_ok(struct rig *r, const struct xwc *w,
		    uint64_t wr_id, enum ibv_wc_opcode op)
{
	bool ok = w->status == IBV_WC_SUCCESS && w->wr_id == wr_id &&
		  w->opcode == op && w->qp_num == r->a->qp_num;

	if (!ok)
		fprintf(stderr,
			"# send wr_id %llu status %d opcode %d qp %u; want %llu 0 %d %u\n",
			(unsigned long long)w->wr_id, w->status, w->opcode,
			w->qp_num, (unsigned long long)wr_id, op,
			r->a->qp_num);
	return ok;
}

/* SEND with one SGE, then SEND_WITH_IMM with an SGE list, in one batch. */
TEST_F(ex, send_sge_and_sge_list)
{
	struct rig *r = &self->r;
	struct ibv_sge list[3] = {
		{ (uintptr_t)(r->src + 1000), 100, r->mr->lkey },
		{ (uintptr_t)(r->src + 3), 1, r->mr->lkey },
		{ (uintptr_t)(r->src + 5000), 155, r->mr->lkey },
	};
	uint8_t want[256];
	struct xwc w[2];

	memcpy(want, r->src + 1000, 100);
	want[100] = r->src[3];
	memcpy(want + 101, r->src + 5000, 155);

	ASSERT_EQ(0, post_recv(r, 0, 200, 10));
	ASSERT_EQ(0, post_recv(r, 4096, 256, 11));
	ibv_wr_start(r->ax);
	r->ax->wr_id = 1;
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send(r->ax);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)(r->src + 77),
		       200);
	ud_addr(r);
	r->ax->wr_id = 2;
	ibv_wr_send_imm(r->ax, htobe32(0xfeedc0de));
	ud_addr(r);
	ibv_wr_set_sge_list(r->ax, 3, list);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));

	ASSERT_EQ(0, poll_ex(r->rcq, w, 2));
	EXPECT_TRUE(recv_ok(r, &w[0], 10, IBV_WC_RECV, 200, 0));
	EXPECT_TRUE(recv_ok(r, &w[1], 11, IBV_WC_RECV, 256,
			    IBV_WC_WITH_IMM));
	EXPECT_EQ(0xfeedc0de, w[1].imm);
	EXPECT_TRUE(landed(r, 0, r->src + 77, 200));
	EXPECT_TRUE(landed(r, 4096, want, 256));

	ASSERT_EQ(0, poll_ex(r->scq, w, 2));
	EXPECT_TRUE(send_ok(r, &w[0], 1, IBV_WC_SEND));
	EXPECT_TRUE(send_ok(r, &w[1], 2, IBV_WC_SEND));
}

/*
 * Inline data is taken when the setter is called: the source is
 * overwritten before ibv_wr_complete() and the receiver still gets the
 * bytes as they were. One buffer, then a list of three.
 */
TEST_F(ex, inline_data_and_list)
{
	struct rig *r = &self->r;
	uint8_t one[MAX_INLINE], want_one[MAX_INLINE], part[3][40], want[120];
	struct ibv_data_buf list[3] = {
		{ part[0], 40 }, { part[1], 1 }, { part[2], 39 },
	};
	struct xwc w[2];
	int i;

	for (i = 0; i < MAX_INLINE; i++)
		one[i] = gift_pat(i, 7);
	for (i = 0; i < 120; i++)
		part[i / 40][i % 40] = gift_pat(i, 8);
	memcpy(want, part[0], 40);
	want[40] = part[1][0];
	memcpy(want + 41, part[2], 39);
	memcpy(want_one, one, MAX_INLINE);

	ASSERT_EQ(0, post_recv(r, 0, MAX_INLINE, 20));
	ASSERT_EQ(0, post_recv(r, 4096, 80, 21));
	ibv_wr_start(r->ax);
	r->ax->wr_id = 3;
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_inline_data(r->ax, one, MAX_INLINE);
	memset(one, 0, sizeof(one));
	r->ax->wr_id = 4;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_inline_data_list(r->ax, 3, list);
	memset(part, 0, sizeof(part));
	ASSERT_EQ(0, ibv_wr_complete(r->ax));

	ASSERT_EQ(0, poll_ex(r->rcq, w, 2));
	EXPECT_TRUE(recv_ok(r, &w[0], 20, IBV_WC_RECV, MAX_INLINE, 0));
	EXPECT_TRUE(recv_ok(r, &w[1], 21, IBV_WC_RECV, 80, 0));
	EXPECT_TRUE(landed(r, 0, want_one, MAX_INLINE));
	EXPECT_TRUE(landed(r, 4096, want, 80));
	ASSERT_EQ(0, poll_ex(r->scq, w, 2));
	EXPECT_TRUE(send_ok(r, &w[0], 3, IBV_WC_SEND));
	EXPECT_TRUE(send_ok(r, &w[1], 4, IBV_WC_SEND));
}

/*
 * IBV_SEND_INLINE in wr_flags with an inline setter is accepted: the setter
 * already makes the data inline (rxe's provider needs the flag).
 */
TEST_F(ex, inline_flag_in_wr_flags)
{
	struct rig *r = &self->r;
	uint8_t data[64];
	struct xwc w[1];
	int i;

	for (i = 0; i < 64; i++)
		data[i] = gift_pat(i, 9);
	ASSERT_EQ(0, post_recv(r, 0, 64, 25));
	ibv_wr_start(r->ax);
	r->ax->wr_id = 5;
	r->ax->wr_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_inline_data(r->ax, data, 64);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));
	ASSERT_EQ(0, poll_ex(r->rcq, w, 1));
	EXPECT_TRUE(recv_ok(r, &w[0], 25, IBV_WC_RECV, 64, 0));
	EXPECT_TRUE(landed(r, 0, data, 64));
	ASSERT_EQ(0, poll_ex(r->scq, w, 1));
	EXPECT_TRUE(send_ok(r, &w[0], 5, IBV_WC_SEND));
}

/*
 * Three WRs built then aborted post nothing: the two built after them
 * are the only ones to arrive, into the first two receives.
 */
TEST_F(ex, abort_posts_nothing)
{
	struct rig *r = &self->r;
	struct xwc w[2];
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, post_recv(r, i * 4096, 64, 30 + i));
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	for (i = 0; i < 3; i++) {
		r->ax->wr_id = 100 + i;
		ibv_wr_send(r->ax);
		ud_addr(r);
		ibv_wr_set_sge(r->ax, r->mr->lkey,
			       (uintptr_t)r->src, 64);
	}
	ibv_wr_abort(r->ax);

	ibv_wr_start(r->ax);
	for (i = 0; i < 2; i++) {
		r->ax->wr_id = 200 + i;
		ibv_wr_send_imm(r->ax, htobe32(0x200 + i));
		ud_addr(r);
		ibv_wr_set_sge(r->ax, r->mr->lkey,
			       (uintptr_t)(r->src + 4096 * (i + 1)), 64);
	}
	ASSERT_EQ(0, ibv_wr_complete(r->ax));

	ASSERT_EQ(0, poll_ex(r->rcq, w, 2));
	for (i = 0; i < 2; i++) {
		EXPECT_TRUE(recv_ok(r, &w[i], 30 + i, IBV_WC_RECV, 64,
				    IBV_WC_WITH_IMM));
		EXPECT_EQ(0x200 + i, w[i].imm);
		EXPECT_TRUE(landed(r, i * 4096,
				   r->src + 4096 * (i + 1), 64));
	}
	ASSERT_EQ(0, poll_ex(r->scq, w, 2));
	EXPECT_TRUE(send_ok(r, &w[0], 200, IBV_WC_SEND));
	EXPECT_TRUE(send_ok(r, &w[1], 201, IBV_WC_SEND));
}

/*
 * A batch with an invalid WR (more SGEs than max_send_sge, or more inline
 * bytes than max_inline_data) fails in ibv_wr_complete() (gift0: EINVAL)
 * and posts none of its WRs, the valid one before the bad one included.
 */
TEST_F(ex, complete_error_posts_nothing)
{
	struct rig *r = &self->r;
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qi;
	struct ibv_sge list[MAX_SGE + 64];
	uint8_t big[4096];
	uint32_t max_sge, max_inline;
	struct xwc w[1];
	int i;

	ASSERT_EQ(0, ibv_query_qp(r->a, &qa, IBV_QP_CAP, &qi));
	max_sge = qa.cap.max_send_sge;
	max_inline = qa.cap.max_inline_data;
	ASSERT_GE(MAX_SGE + 64, max_sge + 1);
	ASSERT_GE(sizeof(big), max_inline + 1);
	for (i = 0; i < MAX_SGE + 64; i++)
		list[i] = (struct ibv_sge){ (uintptr_t)r->src, 1,
					    r->mr->lkey };
	memset(big, 0x11, sizeof(big));

	ASSERT_EQ(0, post_recv(r, 0, 64, 40));
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	r->ax->wr_id = 300;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)r->src, 64);
	r->ax->wr_id = 301;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_sge_list(r->ax, max_sge + 1, list);
	EXPECT_TRUE(invalid_wr_err(ibv_wr_complete(r->ax)));

	ibv_wr_start(r->ax);
	r->ax->wr_id = 302;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)r->src, 64);
	r->ax->wr_id = 303;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_inline_data(r->ax, big, max_inline + 1);
	EXPECT_TRUE(invalid_wr_err(ibv_wr_complete(r->ax)));

	/* Only this one arrives, into the receive posted first */
	ibv_wr_start(r->ax);
	r->ax->wr_id = 304;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_sge(r->ax, r->mr->lkey,
		       (uintptr_t)(r->src + 8192), 64);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));
	ASSERT_EQ(0, poll_ex(r->rcq, w, 1));
	EXPECT_TRUE(recv_ok(r, &w[0], 40, IBV_WC_RECV, 64, 0));
	EXPECT_TRUE(landed(r, 0, r->src + 8192, 64));
	ASSERT_EQ(0, poll_ex(r->scq, w, 1));
	EXPECT_TRUE(send_ok(r, &w[0], 304, IBV_WC_SEND));
}

/*
 * A batch longer than the send queue can never be posted: ibv_wr_complete()
 * fails (gift0: ENOMEM, as a full queue fails ibv_post_send()) and none of
 * it is posted.
 */
TEST_F(ex, oversized_batch_posts_nothing)
{
	struct rig *r = &self->r;
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qi;
	struct xwc w[1];
	uint32_t i;
	int err;

	ASSERT_EQ(0, ibv_query_qp(r->a, &qa, IBV_QP_CAP, &qi));
	ASSERT_EQ(0, post_recv(r, 0, 64, 45));
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	for (i = 0; i <= qa.cap.max_send_wr; i++) {
		r->ax->wr_id = 1000 + i;
		ibv_wr_send(r->ax);
		ud_addr(r);
		ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)r->src, 64);
	}
	err = ibv_wr_complete(r->ax);
	TH_LOG("%u WRs: %d", qa.cap.max_send_wr + 1, err);
	EXPECT_TRUE(is_gift() ? err == ENOMEM : err != 0);

	ibv_wr_start(r->ax);
	r->ax->wr_id = 2000;
	ibv_wr_send(r->ax);
	ud_addr(r);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)(r->src + 512), 64);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));
	ASSERT_EQ(0, poll_ex(r->rcq, w, 1));
	EXPECT_TRUE(recv_ok(r, &w[0], 45, IBV_WC_RECV, 64, 0));
	EXPECT_TRUE(landed(r, 0, r->src + 512, 64));
	ASSERT_EQ(0, poll_ex(r->scq, w, 1));
	EXPECT_TRUE(send_ok(r, &w[0], 2000, IBV_WC_SEND));
}

/*
 * Unsignaled WRs (no IBV_SEND_SIGNALED in wr_flags, sq_sig_all 0) make no
 * completion; the signaled ones do, in order.
 */
TEST_F(ex, signaled_only)
{
	struct rig *r = &self->r;
	struct xwc w[4];
	int i;

	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, post_recv(r, i * 1024, 32, 50 + i));
	ibv_wr_start(r->ax);
	for (i = 0; i < 4; i++) {
		r->ax->wr_id = 400 + i;
		r->ax->wr_flags = i % 2 ? IBV_SEND_SIGNALED : 0;
		ibv_wr_send(r->ax);
		ud_addr(r);
		ibv_wr_set_sge(r->ax, r->mr->lkey,
			       (uintptr_t)(r->src + 32 * i), 32);
	}
	ASSERT_EQ(0, ibv_wr_complete(r->ax));
	ASSERT_EQ(0, poll_ex(r->rcq, w, 4));
	for (i = 0; i < 4; i++) {
		EXPECT_TRUE(recv_ok(r, &w[i], 50 + i, IBV_WC_RECV, 32, 0));
		EXPECT_TRUE(landed(r, i * 1024, r->src + 32 * i, 32));
	}
	ASSERT_EQ(0, poll_ex(r->scq, w, 2));
	EXPECT_TRUE(send_ok(r, &w[0], 401, IBV_WC_SEND));
	EXPECT_TRUE(send_ok(r, &w[1], 403, IBV_WC_SEND));
}

/*
 * Completions fetched but not read when end_poll is called stay in the
 * CQ: one read through start_poll, the other two by ibv_poll_cq().
 */
TEST_F(ex, end_poll_keeps_unread)
{
	struct rig *r = &self->r;
	struct ibv_poll_cq_attr attr = {};
	struct ibv_wc wc[4];
	struct xwc w[3];
	int i, n, ret;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, post_recv(r, i * 1024, 16, 60 + i));
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	for (i = 0; i < 3; i++) {
		r->ax->wr_id = 500 + i;
		ibv_wr_send(r->ax);
		ud_addr(r);
		ibv_wr_set_sge(r->ax, r->mr->lkey,
			       (uintptr_t)r->src, 16);
	}
	ASSERT_EQ(0, ibv_wr_complete(r->ax));
	/* All three sends done: all three receives are in b's CQ */
	ASSERT_EQ(0, poll_ex(r->scq, w, 3));

	ret = ibv_start_poll(r->rcq, &attr);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(60, r->rcq->wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, r->rcq->status);
	ibv_end_poll(r->rcq);

	n = ibv_poll_cq(ibv_cq_ex_to_cq(r->rcq), 4, wc);
	ASSERT_EQ(2, n);
	/* Every field, wc_flags included, as the extended CQ gives them */
	for (i = 0; i < 2; i++) {
		xwc_from_wc(&wc[i], &w[i]);
		EXPECT_TRUE(recv_ok(r, &w[i], 61 + i, IBV_WC_RECV, 16, 0));
	}
	EXPECT_EQ(ENOENT, ibv_start_poll(r->rcq, &attr));
}

/* RDMA WRITE and WRITE_WITH_IMM (which consumes a receive, with no data). */
static void write_and_imm(struct __test_metadata *_metadata, struct rig *r)
{
	struct xwc w[2];

	ASSERT_EQ(0, post_recv(r, 32768, 0, 70));
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	r->ax->wr_id = 600;
	ibv_wr_rdma_write(r->ax, r->mr->rkey, (uintptr_t)r->dst);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)(r->src + 11),
		       3000);
	r->ax->wr_id = 601;
	ibv_wr_rdma_write_imm(r->ax, r->mr->rkey,
			      (uintptr_t)(r->dst + 8192), htobe32(0xabcd1234));
	ibv_wr_set_inline_data(r->ax, r->src + 20000, 100);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));

	ASSERT_EQ(0, poll_ex(r->scq, w, 2));
	EXPECT_TRUE(send_ok(r, &w[0], 600, IBV_WC_RDMA_WRITE));
	EXPECT_TRUE(send_ok(r, &w[1], 601, IBV_WC_RDMA_WRITE));
	ASSERT_EQ(0, poll_ex(r->rcq, w, 1));
	EXPECT_TRUE(recv_ok(r, &w[0], 70, IBV_WC_RECV_RDMA_WITH_IMM, 100,
			    IBV_WC_WITH_IMM));
	EXPECT_EQ(0xabcd1234, w[0].imm);
	EXPECT_TRUE(landed(r, 0, r->src + 11, 3000));
	EXPECT_TRUE(landed(r, 8192, r->src + 20000, 100));
	/* The receive buffer was not written */
	EXPECT_EQ(SENTINEL, r->dst[32768]);
}

TEST_F(rc, rdma_write_and_imm)
{
	write_and_imm(_metadata, &self->r);
}

/*
 * The same over UC: the WRITE completes once sent, and its data is in
 * place when the WRITE_WITH_IMM behind it completes at the receiver.
 */
TEST_F(uc, rdma_write_and_imm)
{
	write_and_imm(_metadata, &self->r);
}

/* RDMA READ into a two-SGE scatter list; byte_len is the length read. */
TEST_F(rc, rdma_read)
{
	struct rig *r = &self->r;
	struct ibv_sge list[2] = {
		{ (uintptr_t)(r->dst + 100), 1000, r->mr->lkey },
		{ (uintptr_t)(r->dst + 5000), 2000, r->mr->lkey },
	};
	struct xwc w[1];
	size_t i;

	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	r->ax->wr_id = 700;
	ibv_wr_rdma_read(r->ax, r->mr->rkey,
			 (uintptr_t)(r->src + 40000));
	ibv_wr_set_sge_list(r->ax, 2, list);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));

	ASSERT_EQ(0, poll_ex(r->scq, w, 1));
	EXPECT_TRUE(send_ok(r, &w[0], 700, IBV_WC_RDMA_READ));
	EXPECT_EQ(3000, w[0].byte_len);
	EXPECT_EQ(0, memcmp(r->dst + 100, r->src + 40000, 1000));
	EXPECT_EQ(0, memcmp(r->dst + 5000, r->src + 41000, 2000));
	for (i = 0; i < 100; i++)
		EXPECT_EQ(SENTINEL, r->dst[i]);
	for (i = 1100; i < 5000; i++)
		ASSERT_EQ(SENTINEL, r->dst[i]);
	EXPECT_EQ(SENTINEL, r->dst[7000]);
}

/*
 * Compare-and-swap that matches, one that does not, and fetch-and-add:
 * each returns the old value, the remote word changes accordingly.
 */
TEST_F(rc, atomics)
{
	struct rig *r = &self->r;
	uint64_t *remote = (uint64_t *)(r->dst + 16384);
	uint64_t *old = (uint64_t *)(r->dst + 24576);
	struct xwc w[3];
	int i;

	*remote = 0x1111222233334444ULL;
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	r->ax->wr_id = 800;
	ibv_wr_atomic_cmp_swp(r->ax, r->mr->rkey, (uintptr_t)remote,
			      0x1111222233334444ULL, 0x5555666677778888ULL);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)&old[0], 8);
	r->ax->wr_id = 801;
	ibv_wr_atomic_cmp_swp(r->ax, r->mr->rkey, (uintptr_t)remote,
			      0x1111222233334444ULL, 0x9999ULL);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)&old[1], 8);
	r->ax->wr_id = 802;
	ibv_wr_atomic_fetch_add(r->ax, r->mr->rkey, (uintptr_t)remote,
				0x10);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)&old[2], 8);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));

	ASSERT_EQ(0, poll_ex(r->scq, w, 3));
	for (i = 0; i < 2; i++)
		EXPECT_TRUE(send_ok(r, &w[i], 800 + i, IBV_WC_COMP_SWAP));
	EXPECT_TRUE(send_ok(r, &w[2], 802, IBV_WC_FETCH_ADD));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(8, w[i].byte_len);
	EXPECT_EQ(0x1111222233334444ULL, old[0]);
	EXPECT_EQ(0x5555666677778888ULL, old[1]);
	EXPECT_EQ(0x5555666677778888ULL, old[2]);
	EXPECT_EQ(0x5555666677778898ULL, *remote);
	EXPECT_EQ(SENTINEL, r->dst[24576 + 24]);
}

/*
 * SEND_WITH_INV naming the rkey of an ordinary MR, which no SEND may
 * invalidate: the responder refuses it, so the receive does not complete
 * successfully. gift0 answers with an invalid-request NAK, so the sender's
 * WR completes with IBV_WC_REM_INV_REQ_ERR (rxe acknowledges the SEND).
 */
TEST_F(rc, send_inv_of_plain_mr_refused)
{
	struct rig *r = &self->r;
	struct xwc w[1];

	ASSERT_EQ(0, post_recv(r, 0, 64, 90));
	ibv_wr_start(r->ax);
	r->ax->wr_flags = IBV_SEND_SIGNALED;
	r->ax->wr_id = 900;
	ibv_wr_send_inv(r->ax, r->mr->rkey);
	ibv_wr_set_sge(r->ax, r->mr->lkey, (uintptr_t)r->src, 64);
	ASSERT_EQ(0, ibv_wr_complete(r->ax));
	ASSERT_EQ(0, poll_ex(r->scq, w, 1));
	EXPECT_EQ(900, w[0].wr_id);
	TH_LOG("sender: status %d", w[0].status);
	EXPECT_TRUE(!is_gift() || w[0].status == IBV_WC_REM_INV_REQ_ERR);
	ASSERT_EQ(0, poll_ex(r->rcq, w, 1));
	EXPECT_EQ(90, w[0].wr_id);
	EXPECT_NE(IBV_WC_SUCCESS, w[0].status);
}

/* Errors at creation: a plain fixture-less device. */
FIXTURE(create) {
	struct ibv_context *ctx;
	struct ibv_device_attr_ex dev;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
};

FIXTURE_SETUP(create)
{
	self->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, self->ctx);
	ASSERT_EQ(0, ibv_query_device_ex(self->ctx, NULL, &self->dev));
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	self->cq = ibv_create_cq(self->ctx, 16, NULL, NULL, 0);
	ASSERT_NE(NULL, self->cq);
}

FIXTURE_TEARDOWN(create)
{
	if (self->cq)
		ibv_destroy_cq(self->cq);
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/* ibv_create_qp_ex() with these send_ops_flags: the QP's errno, or 0. */
static int try_qp(FIXTURE_DATA(create) *self, enum ibv_qp_type type,
		  uint64_t ops)
{
	struct ibv_qp_init_attr_ex init = {
		.send_cq = self->cq,
		.recv_cq = self->cq,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = type,
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = self->pd,
		.send_ops_flags = ops,
	};
	struct ibv_qp *qp;

	errno = 0;
	qp = ibv_create_qp_ex(self->ctx, &init);
	if (!qp)
		return errno ? errno : -1;
	if (!ibv_qp_to_qp_ex(qp))
		return -2;
	ibv_destroy_qp(qp);
	return 0;
}

/*
 * The opcodes every device executes on RC, UC and UD are accepted; RDMA
 * and atomics on UD, READ and atomics on UC, and TSO on RC (a raw-packet
 * feature), are refused with EOPNOTSUPP. UC has no SEND with invalidate,
 * ATOMIC WRITE or FLUSH packets either: gift refuses them too (rxe's
 * provider takes SEND_WITH_INV on UC).
 */
TEST_F(create, send_ops_per_transport)
{
	static const struct {
		uint64_t op;
		bool any;	/* every device refuses it, not only gift */
	} not_uc[] = {
		{ IBV_QP_EX_WITH_RDMA_READ, true },
		{ IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP, true },
		{ IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD, true },
		{ IBV_QP_EX_WITH_SEND_WITH_INV, false },
		{ IBV_QP_EX_WITH_ATOMIC_WRITE, false },
		{ QP_EX_WITH_FLUSH, false },
	};
	size_t i;
	int err;

	EXPECT_EQ(0, try_qp(self, IBV_QPT_RC, RC_OPS));
	EXPECT_EQ(0, try_qp(self, IBV_QPT_UC, UC_OPS));
	EXPECT_EQ(0, try_qp(self, IBV_QPT_UD, UD_OPS));
	for (i = 0; i < sizeof(not_uc) / sizeof(not_uc[0]); i++) {
		err = try_qp(self, IBV_QPT_UC, UC_OPS | not_uc[i].op);
		TH_LOG("UC with op %#llx: %d",
		       (unsigned long long)not_uc[i].op, err);
		if (not_uc[i].any || is_gift())
			EXPECT_EQ(EOPNOTSUPP, err);
	}
	EXPECT_EQ(EOPNOTSUPP, try_qp(self, IBV_QPT_UD,
				     UD_OPS | IBV_QP_EX_WITH_RDMA_WRITE));
	EXPECT_EQ(EOPNOTSUPP, try_qp(self, IBV_QPT_UD,
				     IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD));
	EXPECT_EQ(EOPNOTSUPP, try_qp(self, IBV_QPT_RC,
				     RC_OPS | IBV_QP_EX_WITH_TSO));
}

/*
 * Opcodes behind a device capability: refused with EOPNOTSUPP when the
 * device does not report the capability. When it does, the user-space
 * library may still predate the opcode (rdma-core 44's rxe and FLUSH):
 * accepted, or refused with EOPNOTSUPP.
 */
TEST_F(create, send_ops_follow_device_caps)
{
	uint64_t caps = self->dev.orig_attr.device_cap_flags;
	uint64_t caps_ex = self->dev.device_cap_flags_ex;
	struct {
		uint64_t op;
		bool cap;
		const char *name;
	} t[] = {
		{ IBV_QP_EX_WITH_BIND_MW, caps & IBV_DEVICE_MEM_WINDOW,
		  "BIND_MW" },
		/* Invalidates fast-register MRs, or type 2 windows. */
		{ IBV_QP_EX_WITH_LOCAL_INV,
		  caps & (IBV_DEVICE_MEM_MGT_EXTENSIONS |
			  IBV_DEVICE_MEM_WINDOW_TYPE_2A |
			  IBV_DEVICE_MEM_WINDOW_TYPE_2B), "LOCAL_INV" },
		{ IBV_QP_EX_WITH_ATOMIC_WRITE, caps_ex & DEV_ATOMIC_WRITE,
		  "ATOMIC_WRITE" },
		{ QP_EX_WITH_FLUSH, caps_ex & DEV_FLUSH, "FLUSH" },
	};
	size_t i;
	int err;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err = try_qp(self, IBV_QPT_RC, RC_OPS | t[i].op);
		TH_LOG("%s: device %s it, QP creation %d", t[i].name,
		       t[i].cap ? "offers" : "does not offer", err);
		EXPECT_TRUE(t[i].cap ? err == 0 || err == EOPNOTSUPP :
				       err == EOPNOTSUPP);
	}
}

/*
 * ibv_query_device_ex() agrees with itself: the low half of
 * device_cap_flags_ex is device_cap_flags, and a device without memory
 * windows reports max_mw 0 (and the other way round).
 */
TEST_F(create, device_attrs_consistent)
{
	const struct ibv_device_attr *a = &self->dev.orig_attr;
	bool mw = a->device_cap_flags & IBV_DEVICE_MEM_WINDOW;

	TH_LOG("device_cap_flags %#x, _ex %#llx, max_mw %d", a->device_cap_flags,
	       (unsigned long long)self->dev.device_cap_flags_ex, a->max_mw);
	EXPECT_EQ((uint32_t)a->device_cap_flags,
		  (uint32_t)self->dev.device_cap_flags_ex);
	EXPECT_EQ(mw, a->max_mw > 0);
}

static int try_cq(FIXTURE_DATA(create) *self, uint64_t wc_flags)
{
	struct ibv_cq_init_attr_ex attr = { .cqe = 8, .wc_flags = wc_flags };
	struct ibv_cq_ex *cq;

	errno = 0;
	cq = ibv_create_cq_ex(self->ctx, &attr);
	if (!cq)
		return errno ? errno : -1;
	ibv_destroy_cq(ibv_cq_ex_to_cq(cq));
	return 0;
}

/*
 * The standard completion fields are offered; a completion timestamp is
 * refused with EOPNOTSUPP by a device that reports no clock
 * (completion_timestamp_mask 0), and accepted by one that has one.
 */
TEST_F(create, cq_wc_flags)
{
	bool clock = self->dev.completion_timestamp_mask &&
		     self->dev.hca_core_clock;

	EXPECT_EQ(0, try_cq(self, WC_ALL));
	EXPECT_EQ(0, try_cq(self, 0));
	TH_LOG("completion clock: %s", clock ? "yes" : "no");
	EXPECT_EQ(clock ? 0 : EOPNOTSUPP,
		  try_cq(self, WC_ALL | IBV_WC_EX_WITH_COMPLETION_TIMESTAMP));
	if (!clock)
		EXPECT_EQ(EOPNOTSUPP,
			  try_cq(self, IBV_WC_EX_WITH_COMPLETION_TIMESTAMP_WALLCLOCK));
}

/*
 * A QP made with ibv_create_qp_ex() and no send_ops_flags is an ordinary
 * QP: ibv_qp_to_qp_ex() may give NULL for it, and ibv_post_send() works.
 * With send_ops_flags, the requested builders are set.
 */
TEST_F(create, builders_set)
{
	struct ibv_qp_init_attr_ex init = {
		.send_cq = self->cq,
		.recv_cq = self->cq,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = self->pd,
		.send_ops_flags = RC_OPS,
	};
	struct ibv_qp_ex *qpx;
	struct ibv_qp *qp;

	qp = ibv_create_qp_ex(self->ctx, &init);
	ASSERT_NE(NULL, qp);
	qpx = ibv_qp_to_qp_ex(qp);
	ASSERT_NE(NULL, qpx);
	EXPECT_NE(NULL, qpx->wr_send);
	EXPECT_NE(NULL, qpx->wr_send_imm);
	EXPECT_NE(NULL, qpx->wr_send_inv);
	EXPECT_NE(NULL, qpx->wr_rdma_write);
	EXPECT_NE(NULL, qpx->wr_rdma_write_imm);
	EXPECT_NE(NULL, qpx->wr_rdma_read);
	EXPECT_NE(NULL, qpx->wr_atomic_cmp_swp);
	EXPECT_NE(NULL, qpx->wr_atomic_fetch_add);
	EXPECT_NE(NULL, qpx->wr_set_sge);
	EXPECT_NE(NULL, qpx->wr_set_sge_list);
	EXPECT_NE(NULL, qpx->wr_set_inline_data);
	EXPECT_NE(NULL, qpx->wr_set_inline_data_list);
	EXPECT_NE(NULL, qpx->wr_start);
	EXPECT_NE(NULL, qpx->wr_complete);
	EXPECT_NE(NULL, qpx->wr_abort);
	ibv_destroy_qp(qp);
}

TEST_HARNESS_MAIN
