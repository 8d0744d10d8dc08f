// SPDX-License-Identifier: GPL-2.0
/*
 * The IBTA 1.5 persistent memory operations on gift0: RDMA ATOMIC WRITE
 * and RDMA FLUSH, posted from user space with ibv_wr_atomic_write() and
 * giftdv_wr_flush() (libibverbs 44 has no ibv_wr_flush()) on an RC QP in
 * loopback through the device's RoCEv2 IPv4 GID.
 *
 * What is asserted:
 *  - the device reports FLUSH (global placement only) and ATOMIC WRITE,
 *    and a registration asking for persistent flush fails with EOPNOTSUPP
 *    (no MR of the device can be made persistent);
 *  - an ATOMIC WRITE stores exactly its 8 bytes (sentinels around them
 *    unchanged) and completes with IBV_WC_ATOMIC_WRITE; a misaligned
 *    target is an invalid request (IBV_WC_REM_INV_REQ_ERR), an rkey
 *    without remote write a remote access error, and neither changes the
 *    target;
 *  - ATOMIC WRITEs racing FETCH_ADDs of another QP pair on the same word
 *    stay atomic: every FETCH_ADD saw the last written value plus the
 *    adds since, and the final value is the last write plus the adds
 *    after it;
 *  - a FLUSH (range and whole-MR selectivity) posted after a chain of
 *    RDMA WRITEs completes after them, with IBV_WC_FLUSH, their bytes in
 *    place; completions of a batch mixing WRITEs, ATOMIC WRITE and FLUSH
 *    come in posting order;
 *  - a FLUSH at an MR without IBV_ACCESS_FLUSH_GLOBAL, or past its end,
 *    fails with IBV_WC_REM_ACCESS_ERR; a persistent FLUSH with
 *    IBV_WC_REM_INV_REQ_ERR at a QP that does not allow it, and with
 *    IBV_WC_REM_ACCESS_ERR at one that does (no MR can grant it).
 *
 * Every wait has a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

#define BUF		65536
#define SENTINEL	0x5a
#define WAIT_MS		(20000 * gift_slow())
#define DEPTH		256

/* libibverbs >= 45 names; 44 lacks them (values of ib_user_verbs.h). */
#define ACCESS_FLUSH_GLOBAL	(1 << 8)
#define ACCESS_FLUSH_PERSISTENT	(1 << 9)
#define WC_FLUSH		8
#define FLUSH_GLOBAL		1
#define FLUSH_PERSISTENT	2
#define FLUSH_RANGE		0
#define FLUSH_MR		1
#define DEV_FLUSH_GLOBAL	(1ULL << 38)
#define DEV_FLUSH_PERSISTENT	(1ULL << 39)
#define DEV_ATOMIC_WRITE	(1ULL << 40)

#define OPS	(IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_SEND | \
		 IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD | \
		 IBV_QP_EX_WITH_ATOMIC_WRITE)

/* Two RC QP pairs (a -> b, c -> d) and one buffer: src, then dst. */
FIXTURE(pm) {
	struct ibv_context *ctx;
	struct ibv_device_attr_ex dev;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[4];
	union ibv_gid gid;
	int gid_index;
	uint8_t *src, *dst;
	struct ibv_mr *mr;		/* all of it, with flush access */
	struct ibv_mr *mr_plain;	/* dst, write access, no flush */
	struct ibv_mr *mr_ro;		/* dst, remote read only */
};

static struct ibv_qp *make_qp(FIXTURE_DATA(pm) *self)
{
	struct ibv_qp_init_attr_ex init = {
		.send_cq = self->cq,
		.recv_cq = self->cq,
		.cap = { .max_send_wr = DEPTH, .max_recv_wr = 4,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.pd = self->pd,
		.send_ops_flags = OPS,
	};

	return ibv_create_qp_ex(self->ctx, &init);
}

/* RESET to RTS, talking to dqpn; the QP allows global flush. */
static int to_rts(FIXTURE_DATA(pm) *self, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC |
				   ACCESS_FLUSH_GLOBAL,
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dqpn;
	a.rq_psn = 0x4321;
	a.max_dest_rd_atomic = 16;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = self->gid;
	a.ah_attr.grh.sgid_index = self->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
			  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0x4321;
	a.timeout = gift_slow_qp_timeout(14);
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 16;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			     IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
}

FIXTURE_SETUP(pm)
{
	int i;

	self->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, self->ctx);
	ASSERT_TRUE(gift_wait_for(gift_have_v4_gid, self->ctx, 10000));
	self->gid_index = gift_find_v4_gid(self->ctx, &self->gid);
	ASSERT_LE(0, self->gid_index);
	ASSERT_EQ(0, ibv_query_device_ex(self->ctx, NULL, &self->dev));
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	self->cq = ibv_create_cq(self->ctx, 4 * DEPTH, NULL, NULL, 0);
	ASSERT_NE(NULL, self->cq);
	for (i = 0; i < 4; i++) {
		self->qp[i] = make_qp(self);
		ASSERT_NE(NULL, self->qp[i]);
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, to_rts(self, self->qp[i], self->qp[i ^ 1]->qp_num));

	self->src = aligned_alloc(4096, 2 * BUF);
	ASSERT_NE(NULL, self->src);
	self->dst = self->src + BUF;
	for (i = 0; i < BUF; i++)
		self->src[i] = gift_pat(i, 7);
	memset(self->dst, SENTINEL, BUF);
	self->mr = ibv_reg_mr(self->pd, self->src, 2 * BUF,
			      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			      IBV_ACCESS_REMOTE_READ |
			      IBV_ACCESS_REMOTE_ATOMIC | ACCESS_FLUSH_GLOBAL);
	ASSERT_NE(NULL, self->mr);
	self->mr_plain = ibv_reg_mr(self->pd, self->dst, BUF,
				    IBV_ACCESS_LOCAL_WRITE |
				    IBV_ACCESS_REMOTE_WRITE |
				    IBV_ACCESS_REMOTE_ATOMIC);
	ASSERT_NE(NULL, self->mr_plain);
	self->mr_ro = ibv_reg_mr(self->pd, self->dst, BUF,
				 IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, self->mr_ro);
}

FIXTURE_TEARDOWN(pm)
{
	int i;

	if (self->mr_ro)
		ibv_dereg_mr(self->mr_ro);
	if (self->mr_plain)
		ibv_dereg_mr(self->mr_plain);
	if (self->mr)
		ibv_dereg_mr(self->mr);
	free(self->src);
	for (i = 3; i >= 0; i--)
		if (self->qp[i])
			ibv_destroy_qp(self->qp[i]);
	if (self->cq)
		ibv_destroy_cq(self->cq);
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/* Polls n completions into wc; 0, or -1 at the deadline. */
static int poll_n(struct ibv_cq *cq, struct ibv_wc *wc, int n)
{
	struct timespec t0, t;
	int got = 0, r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < n) {
		r = ibv_poll_cq(cq, n - got, wc + got);
		if (r < 0)
			return -1;
		got += r;
		if (r)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000 > WAIT_MS)
			return -1;
	}
	return 0;
}

static bool wc_is(const struct ibv_wc *wc, uint64_t wr_id, int status,
		  int opcode)
{
	bool ok = wc->wr_id == wr_id && (int)wc->status == status &&
		  (status != IBV_WC_SUCCESS || (int)wc->opcode == opcode);

	if (!ok)
		fprintf(stderr, "# wc wr_id %llu status %d opcode %d; want %llu %d %d\n",
			(unsigned long long)wc->wr_id, wc->status, wc->opcode,
			(unsigned long long)wr_id, status, opcode);
	return ok;
}

/* Bytes [from, to) of dst are the sentinel. */
static bool sentinel(FIXTURE_DATA(pm) *self, size_t from, size_t to)
{
	for (; from < to; from++)
		if (self->dst[from] != SENTINEL)
			return false;
	return true;
}

/* Posts one signaled ATOMIC WRITE of the 8 bytes at val on qp. */
static int atomic_write(struct ibv_qp *qp, uint64_t wr_id, uint32_t rkey,
			void *addr, const void *val)
{
	struct ibv_qp_ex *qpx = ibv_qp_to_qp_ex(qp);

	ibv_wr_start(qpx);
	qpx->wr_id = wr_id;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_atomic_write(qpx, rkey, (uintptr_t)addr, val);
	return ibv_wr_complete(qpx);
}

/* Posts one signaled FLUSH on qp. */
static int flush(struct ibv_qp *qp, uint64_t wr_id, uint32_t rkey,
		 void *addr, size_t len, uint8_t type, uint8_t level)
{
	struct ibv_qp_ex *qpx = ibv_qp_to_qp_ex(qp);

	ibv_wr_start(qpx);
	qpx->wr_id = wr_id;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	giftdv_wr_flush(qpx, rkey, (uintptr_t)addr, len, type, level);
	return ibv_wr_complete(qpx);
}

/* The device claims what it does: global flush and atomic write only. */
TEST_F(pm, caps)
{
	struct giftdv_device_attr attr = {};
	uint64_t caps = self->dev.device_cap_flags_ex;

	TH_LOG("device_cap_flags_ex %#llx", (unsigned long long)caps);
	EXPECT_TRUE(caps & DEV_FLUSH_GLOBAL);
	EXPECT_TRUE(caps & DEV_ATOMIC_WRITE);
	EXPECT_FALSE(caps & DEV_FLUSH_PERSISTENT);
	ASSERT_EQ(0, giftdv_query_device(self->ctx, &attr));
	EXPECT_TRUE(attr.dev_caps & GIFTDV_DEV_CAP_POST_EX);
}

/* Persistent flush access cannot be honoured: EOPNOTSUPP, nothing made. */
TEST_F(pm, reg_mr_flush_persistent_refused)
{
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(self->pd, self->dst, 4096,
			IBV_ACCESS_LOCAL_WRITE | ACCESS_FLUSH_PERSISTENT);
	EXPECT_EQ(NULL, mr);
	EXPECT_EQ(EOPNOTSUPP, errno);
	if (mr)
		ibv_dereg_mr(mr);
	mr = ibv_reg_mr(self->pd, self->dst, 4096,
			ACCESS_FLUSH_GLOBAL | ACCESS_FLUSH_PERSISTENT);
	EXPECT_EQ(NULL, mr);
	if (mr)
		ibv_dereg_mr(mr);
}

/* Exactly the 8 bytes land, in memory order as given; neighbours intact. */
TEST_F(pm, atomic_write_lands)
{
	static const uint8_t val[8] = { 0x01, 0x23, 0x45, 0x67,
					0x89, 0xab, 0xcd, 0xef };
	struct ibv_wc wc;

	ASSERT_EQ(0, atomic_write(self->qp[0], 7, self->mr->rkey,
				  self->dst + 8192, val));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 7, IBV_WC_SUCCESS, IBV_WC_ATOMIC_WRITE));
	EXPECT_EQ(0, memcmp(self->dst + 8192, val, 8));
	EXPECT_TRUE(sentinel(self, 8192 - 256, 8192));
	EXPECT_TRUE(sentinel(self, 8200, 8200 + 256));
}

/* A misaligned target: invalid request, nothing written. */
TEST_F(pm, atomic_write_unaligned)
{
	uint64_t val = 0x1122334455667788ULL;
	struct ibv_wc wc;

	ASSERT_EQ(0, atomic_write(self->qp[0], 8, self->mr->rkey,
				  self->dst + 8196, &val));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 8, IBV_WC_REM_INV_REQ_ERR, 0));
	EXPECT_TRUE(sentinel(self, 8192 - 256, 8192 + 256));
}

/* An rkey that grants remote read only: remote access error. */
TEST_F(pm, atomic_write_without_access)
{
	uint64_t val = 0x1122334455667788ULL;
	struct ibv_wc wc;

	ASSERT_EQ(0, atomic_write(self->qp[0], 9, self->mr_ro->rkey,
				  self->dst + 8192, &val));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 9, IBV_WC_REM_ACCESS_ERR, 0));
	EXPECT_TRUE(sentinel(self, 8192 - 256, 8192 + 256));
}

#define RACE_N	120

/*
 * QP a ATOMIC WRITEs RACE_N values (high half 0x1000 + i, low half 0)
 * while QP c FETCH_ADDs 1 RACE_N times to the same word. With every
 * operation atomic, the FETCH_ADDs that saw the same written value saw
 * its low half as 0, 1, 2, ... in some order (each one add later), and
 * the final value is the last write plus the adds that followed it.
 */
TEST_F(pm, atomic_write_races_fetch_add)
{
	uint64_t *word = (uint64_t *)(self->dst + 16384);
	uint64_t *orig = (uint64_t *)(self->dst + 32768);
	struct ibv_qp_ex *ax = ibv_qp_to_qp_ex(self->qp[0]);
	struct ibv_qp_ex *cx = ibv_qp_to_qp_ex(self->qp[2]);
	static struct ibv_wc wc[2 * RACE_N];
	static unsigned int seen[RACE_N + 1][RACE_N + 1];
	uint32_t hi, lo, last_hi, after_last = 0, after_any = 0;
	uint64_t val;
	int i, j;

	*word = 0;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < RACE_N; i += 20) {
		ibv_wr_start(ax);
		ibv_wr_start(cx);
		for (j = i; j < i + 20; j++) {
			val = (uint64_t)(0x1000 + j) << 32;
			ax->wr_id = j;
			ax->wr_flags = IBV_SEND_SIGNALED;
			ibv_wr_atomic_write(ax, self->mr->rkey,
					    (uintptr_t)word, &val);
			cx->wr_id = 1000 + j;
			cx->wr_flags = IBV_SEND_SIGNALED;
			ibv_wr_atomic_fetch_add(cx, self->mr->rkey,
						(uintptr_t)word, 1);
			ibv_wr_set_sge(cx, self->mr->lkey,
				       (uintptr_t)&orig[j], 8);
		}
		ASSERT_EQ(0, ibv_wr_complete(cx));
		ASSERT_EQ(0, ibv_wr_complete(ax));
	}
	ASSERT_EQ(0, poll_n(self->cq, wc, 2 * RACE_N));
	for (i = 0; i < 2 * RACE_N; i++)
		ASSERT_EQ(IBV_WC_SUCCESS, wc[i].status);

	last_hi = 0x1000 + RACE_N - 1;
	for (j = 0; j < RACE_N; j++) {
		hi = orig[j] >> 32;
		lo = (uint32_t)orig[j];
		/* Before any write (0), or after one of them. */
		ASSERT_TRUE(hi == 0 || (hi >= 0x1000 && hi <= last_hi));
		ASSERT_LT(lo, RACE_N);
		seen[hi ? hi - 0x1000 + 1 : 0][lo]++;
		if (hi == last_hi)
			after_last++;
		if (hi)
			after_any++;
	}
	/* Per written value, the adds that saw it saw 0 .. k-1 once each. */
	for (i = 0; i <= RACE_N; i++) {
		for (lo = 0; lo < RACE_N && seen[i][lo] == 1; lo++)
			;
		for (; lo <= RACE_N; lo++)
			ASSERT_EQ(0, seen[i][lo]);
	}
	TH_LOG("final %#llx; of %d adds, %u saw a written value, %u the last",
	       (unsigned long long)*word, RACE_N, after_any, after_last);
	EXPECT_EQ(((uint64_t)last_hi << 32) + after_last, *word);
}

/*
 * Eight unsignaled 4 KiB WRITEs, then a FLUSH of their range: the FLUSH
 * completes (after them, in order) and their bytes are in place. Then the
 * same with whole-MR selectivity, and with an address the MR's first byte.
 */
static void writes_then_flush(FIXTURE_DATA(pm) *self,
			      struct __test_metadata *_metadata,
			      uint8_t level, size_t base)
{
	struct ibv_qp_ex *ax = ibv_qp_to_qp_ex(self->qp[0]);
	struct ibv_wc wc;
	int i;

	ibv_wr_start(ax);
	for (i = 0; i < 8; i++) {
		ax->wr_id = i;
		ax->wr_flags = 0;
		ibv_wr_rdma_write(ax, self->mr->rkey,
				  (uintptr_t)(self->dst + base + i * 4096));
		ibv_wr_set_sge(ax, self->mr->lkey,
			       (uintptr_t)(self->src + i * 1000), 4096);
	}
	ax->wr_id = 99;
	ax->wr_flags = IBV_SEND_SIGNALED;
	giftdv_wr_flush(ax, self->mr->rkey,
			level == FLUSH_MR ? (uintptr_t)self->src :
			(uintptr_t)(self->dst + base), 8 * 4096,
			FLUSH_GLOBAL, level);
	ASSERT_EQ(0, ibv_wr_complete(ax));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 99, IBV_WC_SUCCESS, WC_FLUSH));
	for (i = 0; i < 8; i++)
		EXPECT_EQ(0, memcmp(self->dst + base + i * 4096,
				    self->src + i * 1000, 4096));
	EXPECT_TRUE(sentinel(self, base + 8 * 4096, base + 8 * 4096 + 256));
}

TEST_F(pm, flush_range_after_writes)
{
	writes_then_flush(self, _metadata, FLUSH_RANGE, 0);
}

TEST_F(pm, flush_mr_after_writes)
{
	writes_then_flush(self, _metadata, FLUSH_MR, 4096);
}

/*
 * A batch of WRITE, ATOMIC WRITE, WRITE, FLUSH, all signaled, posted in
 * pieces by the provider: completions in posting order, right opcodes.
 */
TEST_F(pm, mixed_batch_in_order)
{
	struct ibv_qp_ex *ax = ibv_qp_to_qp_ex(self->qp[0]);
	uint64_t val = 0x0f1e2d3c4b5a6978ULL;
	static const int op[4] = { IBV_WC_RDMA_WRITE, IBV_WC_ATOMIC_WRITE,
				   IBV_WC_RDMA_WRITE, WC_FLUSH };
	struct ibv_wc wc[4];
	int i;

	ibv_wr_start(ax);
	ax->wr_flags = IBV_SEND_SIGNALED;
	ax->wr_id = 0;
	ibv_wr_rdma_write(ax, self->mr->rkey, (uintptr_t)self->dst);
	ibv_wr_set_sge(ax, self->mr->lkey, (uintptr_t)self->src, 512);
	ax->wr_id = 1;
	ibv_wr_atomic_write(ax, self->mr->rkey, (uintptr_t)(self->dst + 1024),
			    &val);
	ax->wr_id = 2;
	ibv_wr_rdma_write(ax, self->mr->rkey, (uintptr_t)(self->dst + 2048));
	ibv_wr_set_sge(ax, self->mr->lkey, (uintptr_t)(self->src + 3000),
		       512);
	ax->wr_id = 3;
	giftdv_wr_flush(ax, self->mr->rkey, (uintptr_t)self->dst, 4096,
			FLUSH_GLOBAL, FLUSH_RANGE);
	ASSERT_EQ(0, ibv_wr_complete(ax));
	ASSERT_EQ(0, poll_n(self->cq, wc, 4));
	for (i = 0; i < 4; i++)
		EXPECT_TRUE(wc_is(&wc[i], i, IBV_WC_SUCCESS, op[i]));
	EXPECT_EQ(0, memcmp(self->dst, self->src, 512));
	EXPECT_EQ(0, memcmp(self->dst + 1024, &val, 8));
	EXPECT_EQ(0, memcmp(self->dst + 2048, self->src + 3000, 512));
	EXPECT_TRUE(sentinel(self, 512, 1024));
	EXPECT_TRUE(sentinel(self, 1032, 2048));
	EXPECT_TRUE(sentinel(self, 2560, 4096));
}

/* An MR registered without IBV_ACCESS_FLUSH_GLOBAL: remote access error. */
TEST_F(pm, flush_without_mr_access)
{
	struct ibv_wc wc;

	ASSERT_EQ(0, flush(self->qp[0], 5, self->mr_plain->rkey, self->dst,
			   4096, FLUSH_GLOBAL, FLUSH_RANGE));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 5, IBV_WC_REM_ACCESS_ERR, 0));
}

/* A range that runs past the MR: remote access error. */
TEST_F(pm, flush_range_outside_mr)
{
	struct ibv_wc wc;

	ASSERT_EQ(0, flush(self->qp[0], 6, self->mr->rkey,
			   self->dst + BUF - 4096, 8192, FLUSH_GLOBAL,
			   FLUSH_RANGE));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 6, IBV_WC_REM_ACCESS_ERR, 0));
}

/*
 * Persistent placement at a responder QP that does not allow it: an
 * invalid request.
 */
TEST_F(pm, flush_persistent_refused)
{
	struct ibv_wc wc;

	ASSERT_EQ(0, flush(self->qp[0], 4, self->mr->rkey, self->dst, 4096,
			   FLUSH_PERSISTENT, FLUSH_RANGE));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 4, IBV_WC_REM_INV_REQ_ERR, 0));
}

/*
 * A responder QP that allows persistent flush (ib_cm sets both flush
 * flags on a device with either): the FLUSH passes the QP and fails at
 * the MR, which cannot grant it: remote access error.
 */
TEST_F(pm, flush_persistent_at_mr_refused)
{
	struct ibv_qp_attr a = {
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC |
				   ACCESS_FLUSH_GLOBAL |
				   ACCESS_FLUSH_PERSISTENT,
	};
	struct ibv_wc wc;

	ASSERT_EQ(0, ibv_modify_qp(self->qp[1], &a, IBV_QP_ACCESS_FLAGS));
	ASSERT_EQ(0, flush(self->qp[0], 3, self->mr->rkey, self->dst, 4096,
			   FLUSH_GLOBAL | FLUSH_PERSISTENT, FLUSH_MR));
	ASSERT_EQ(0, poll_n(self->cq, &wc, 1));
	EXPECT_TRUE(wc_is(&wc, 3, IBV_WC_REM_ACCESS_ERR, 0));
}

/* Bad FLUSH operands fail ibv_wr_complete() with EINVAL, nothing posted. */
TEST_F(pm, flush_bad_operands)
{
	struct ibv_wc wc;

	EXPECT_EQ(EINVAL, flush(self->qp[0], 1, self->mr->rkey, self->dst,
				4096, 0, FLUSH_RANGE));
	EXPECT_EQ(EINVAL, flush(self->qp[0], 2, self->mr->rkey, self->dst,
				4096, FLUSH_GLOBAL, 2));
	EXPECT_EQ(EINVAL, flush(self->qp[0], 3, self->mr->rkey, self->dst,
				4096, 4, FLUSH_RANGE));
	EXPECT_EQ(0, ibv_poll_cq(self->cq, 1, &wc));
}

TEST_HARNESS_MAIN
