// SPDX-License-Identifier: GPL-2.0
/*
 * Memory windows on gift devices (IBTA 10.6.7, ibv_alloc_mw(3),
 * ibv_bind_mw(3), ibv_post_send(3)): two RC QPs in loopback, a (the
 * requester, its own PD) and b (the responder, whose PD holds the target
 * MR and the windows; b's QP binds them). Type 1 windows are bound with
 * ibv_bind_mw(), type 2 ones with IBV_WR_BIND_MW in ibv_post_send() or
 * ibv_wr_bind_mw(); a's RDMA WRITE, READ and atomics then go through the
 * window's rkey.
 *
 * Data is checked byte for byte: sources hold a pattern, the target
 * starts as a sentinel and after each transfer must hold the pattern
 * exactly where the window maps it, the sentinel everywhere else. Every
 * error completes with its exact status: IBV_WC_MW_BIND_ERR for a bind
 * the rules refuse, IBV_WC_REM_ACCESS_ERR at the requester for an access
 * the window does not allow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

#define PAGE		4096
#define TGT_LEN		(16 * PAGE)	/* the target MR */
#define SRC_LEN		(16 * PAGE)	/* a's local buffer */
#define SENTINEL	0xa5
#define WAIT_MS		(15000 * gift_slow())
#define ALL_REMOTE	(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | \
			 IBV_ACCESS_REMOTE_ATOMIC)
#define ALL_ACCESS	(IBV_ACCESS_LOCAL_WRITE | ALL_REMOTE)
#define BINDABLE	(ALL_ACCESS | IBV_ACCESS_MW_BIND)
/* rkey r with its key byte (the low 8 bits) advanced by n. */
#define KEY(r, n)	(((r) & ~0xffu) | (((r) + (n)) & 0xffu))

static int poll_one(struct ibv_cq *cq, struct ibv_wc *wc)
{
	long long deadline = gift_now_us() / 1000 + WAIT_MS;
	int ret;

	for (;;) {
		ret = ibv_poll_cq(cq, 1, wc);
		if (ret || gift_now_us() / 1000 >= deadline)
			return ret;
		usleep(100);
	}
}

/* One side: PD, CQ and RC QP. */
struct side {
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
};

FIXTURE(mw) {
	struct ibv_context *ctx;
	union ibv_gid gid;
	int gid_index;
	struct side a, b;
	uint8_t *src;		/* a's buffer, MR smr */
	struct ibv_mr *smr;
	uint8_t *tgt;		/* b's target, MR tmr (BINDABLE) */
	struct ibv_mr *tmr;
	/* A second pair, a2 -> b2, b2 in b's PD (the other_qp test). */
	struct side a2, b2;
};

static void side_open(struct __test_metadata *_metadata,
		      FIXTURE_DATA(mw) *self, struct side *s, struct ibv_pd *pd)
{
	struct ibv_qp_init_attr init = {
		.cap = { .max_send_wr = 32, .max_recv_wr = 32,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
	};

	s->pd = pd ? pd : ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, s->pd);
	s->cq = ibv_create_cq(self->ctx, 128, NULL, NULL, 0);
	ASSERT_NE(NULL, s->cq);
	init.send_cq = s->cq;
	init.recv_cq = s->cq;
	s->qp = ibv_create_qp(s->pd, &init);
	ASSERT_NE(NULL, s->qp) TH_LOG("create_qp: %s", strerror(errno));
}

/* RESET (from any state) -> INIT -> RTR -> RTS, sending to dqpn. */
static void side_connect(struct __test_metadata *_metadata,
			 FIXTURE_DATA(mw) *self, struct side *s, uint32_t dqpn)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	ASSERT_EQ(0, ibv_modify_qp(s->qp, &a, IBV_QP_STATE));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = ALL_REMOTE;
	ASSERT_EQ(0, ibv_modify_qp(s->qp, &a, IBV_QP_STATE |
				   IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				   IBV_QP_ACCESS_FLAGS));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = dqpn;
	a.rq_psn = 0x100;
	a.max_dest_rd_atomic = 4;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = self->gid;
	a.ah_attr.grh.sgid_index = self->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	ASSERT_EQ(0, ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_AV |
				   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				   IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				   IBV_QP_MIN_RNR_TIMER));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0x100;
	a.timeout = gift_slow_qp_timeout(14);
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 4;
	ASSERT_EQ(0, ibv_modify_qp(s->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
				   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				   IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC));
	gift_drain_cq(s->cq);
}

/* Both QPs back to RTS, connected, after an error moved them to ERR. */
static void pair_reconnect(struct __test_metadata *_metadata,
			   FIXTURE_DATA(mw) *self)
{
	side_connect(_metadata, self, &self->a, self->b.qp->qp_num);
	side_connect(_metadata, self, &self->b, self->a.qp->qp_num);
}

static uint8_t *map_sentinel(size_t len)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, SENTINEL, len);
	return p;
}

FIXTURE_SETUP(mw)
{
	self->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, self->ctx);
	gift_wait_for(gift_have_v4_gid, self->ctx, 5000);
	self->gid_index = gift_find_v4_gid(self->ctx, &self->gid);
	ASSERT_LE(0, self->gid_index);
	side_open(_metadata, self, &self->a, NULL);
	side_open(_metadata, self, &self->b, NULL);
	pair_reconnect(_metadata, self);

	self->src = map_sentinel(SRC_LEN);
	ASSERT_NE(NULL, self->src);
	self->smr = ibv_reg_mr(self->a.pd, self->src, SRC_LEN, ALL_ACCESS);
	ASSERT_NE(NULL, self->smr);
	self->tgt = map_sentinel(TGT_LEN);
	ASSERT_NE(NULL, self->tgt);
	self->tmr = ibv_reg_mr(self->b.pd, self->tgt, TGT_LEN, BINDABLE);
	ASSERT_NE(NULL, self->tmr) TH_LOG("MW_BIND MR: %s", strerror(errno));
}

static void side_close(struct side *s, bool pd)
{
	if (s->qp)
		ibv_destroy_qp(s->qp);
	if (s->cq)
		ibv_destroy_cq(s->cq);
	if (pd && s->pd)
		ibv_dealloc_pd(s->pd);
}

FIXTURE_TEARDOWN(mw)
{
	if (self->smr)
		ibv_dereg_mr(self->smr);
	if (self->tmr)
		ibv_dereg_mr(self->tmr);
	if (self->src)
		munmap(self->src, SRC_LEN);
	if (self->tgt)
		munmap(self->tgt, TGT_LEN);
	side_close(&self->a2, true);
	side_close(&self->b2, false);
	side_close(&self->a, true);
	side_close(&self->b, true);
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/* Helpers: each posts one WR and returns its completion status. */

static int wait_status(struct __test_metadata *_metadata, struct ibv_cq *cq,
		       uint64_t wr_id, enum ibv_wc_opcode op)
{
	struct ibv_wc wc;

	if (poll_one(cq, &wc) != 1) {
		TH_LOG("completion %llu missing", (unsigned long long)wr_id);
		return -1;
	}
	EXPECT_EQ(wr_id, wc.wr_id);
	if (wc.status == IBV_WC_SUCCESS)
		EXPECT_EQ(op, wc.opcode);
	return wc.status;
}

/* Type 1: ibv_bind_mw() on b's QP; the new rkey lands in mw->rkey. */
static int bind1(struct __test_metadata *_metadata, FIXTURE_DATA(mw) *self,
		 struct ibv_mw *mw, struct ibv_mr *mr, void *addr, size_t len,
		 unsigned int access)
{
	struct ibv_mw_bind b = {
		.wr_id = 11,
		.send_flags = IBV_SEND_SIGNALED,
		.bind_info = {
			.mr = mr,
			.addr = (uintptr_t)addr,
			.length = len,
			.mw_access_flags = access,
		},
	};
	int err = ibv_bind_mw(self->b.qp, mw, &b);

	if (err) {
		TH_LOG("ibv_bind_mw: %s", strerror(err));
		return -1;
	}
	return wait_status(_metadata, self->b.cq, 11, IBV_WC_BIND_MW);
}

/* Type 2: IBV_WR_BIND_MW in ibv_post_send() on b's QP. */
static int bind2(struct __test_metadata *_metadata, FIXTURE_DATA(mw) *self,
		 struct ibv_mw *mw, uint32_t rkey, struct ibv_mr *mr,
		 void *addr, size_t len, unsigned int access)
{
	struct ibv_send_wr wr = {
		.wr_id = 22,
		.opcode = IBV_WR_BIND_MW,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad = NULL;
	int err;

	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)addr;
	wr.bind_mw.bind_info.length = len;
	wr.bind_mw.bind_info.mw_access_flags = access;
	err = ibv_post_send(self->b.qp, &wr, &bad);
	if (err) {
		TH_LOG("post BIND_MW: %s", strerror(err));
		return -1;
	}
	return wait_status(_metadata, self->b.cq, 22, IBV_WC_BIND_MW);
}

static int local_inv(struct __test_metadata *_metadata,
		     FIXTURE_DATA(mw) *self, uint32_t rkey)
{
	struct ibv_send_wr wr = {
		.wr_id = 33,
		.opcode = IBV_WR_LOCAL_INV,
		.send_flags = IBV_SEND_SIGNALED,
		.invalidate_rkey = rkey,
	}, *bad = NULL;

	if (ibv_post_send(self->b.qp, &wr, &bad))
		return -1;
	return wait_status(_metadata, self->b.cq, 33, IBV_WC_LOCAL_INV);
}

/* a's RDMA WRITE or READ of len bytes at src + soff to raddr/rkey. */
static int rdma(struct __test_metadata *_metadata, FIXTURE_DATA(mw) *self,
		enum ibv_wr_opcode op, size_t soff, uint64_t raddr,
		uint32_t rkey, size_t len)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)self->src + soff,
		.length = len,
		.lkey = self->smr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 44,
		.opcode = op,
		.sg_list = &sge,
		.num_sge = 1,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad = NULL;

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	if (ibv_post_send(self->a.qp, &wr, &bad))
		return -1;
	return wait_status(_metadata, self->a.cq, 44,
			   op == IBV_WR_RDMA_READ ? IBV_WC_RDMA_READ :
			   IBV_WC_RDMA_WRITE);
}

/* a's atomic on raddr/rkey; the original value lands at src + soff. */
static int atomic(struct __test_metadata *_metadata, FIXTURE_DATA(mw) *self,
		  enum ibv_wr_opcode op, size_t soff, uint64_t raddr,
		  uint32_t rkey, uint64_t compare_add, uint64_t swap)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)self->src + soff,
		.length = 8,
		.lkey = self->smr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 55,
		.opcode = op,
		.sg_list = &sge,
		.num_sge = 1,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad = NULL;

	wr.wr.atomic.remote_addr = raddr;
	wr.wr.atomic.rkey = rkey;
	wr.wr.atomic.compare_add = compare_add;
	wr.wr.atomic.swap = swap;
	if (ibv_post_send(self->a.qp, &wr, &bad))
		return -1;
	return wait_status(_metadata, self->a.cq, 55,
			   op == IBV_WR_ATOMIC_CMP_AND_SWP ?
			   IBV_WC_COMP_SWAP : IBV_WC_FETCH_ADD);
}

/*
 * An access a must be refused: REM_ACCESS_ERR at a, and the target left
 * as it was; then both QPs are connected again.
 */
#define EXPECT_DENIED(op, raddr, rkey, len) do { \
	EXPECT_EQ(IBV_WC_REM_ACCESS_ERR, \
		  rdma(_metadata, self, op, 0, raddr, rkey, len)); \
	pair_reconnect(_metadata, self); \
} while (0)

/*
 * Writes len pattern bytes through the window (raddr/rkey) and checks
 * that they landed at tgt + toff and nowhere else; then reads them back
 * into a's buffer at SRC_LEN / 2 and checks them there.
 */
static void write_read_check(struct __test_metadata *_metadata,
			     FIXTURE_DATA(mw) *self, uint64_t raddr,
			     uint32_t rkey, size_t toff, size_t len,
			     uint32_t seed)
{
	uint8_t *back = self->src + SRC_LEN / 2;

	gift_fill_pat(self->src, len, 0, seed);
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_WRITE, 0,
				       raddr, rkey, len));
	EXPECT_TRUE(gift_is_fill(self->tgt, toff, SENTINEL));
	EXPECT_TRUE(gift_is_pat(self->tgt + toff, len, 0, seed));
	EXPECT_TRUE(gift_is_fill(self->tgt + toff + len,
				TGT_LEN - toff - len, SENTINEL));
	memset(back, SENTINEL, len + 64);
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_READ,
				       SRC_LEN / 2, raddr, rkey, len));
	EXPECT_TRUE(gift_is_pat(back, len, 0, seed));
	EXPECT_TRUE(gift_is_fill(back + len, 64, SENTINEL));
	memset(self->tgt, SENTINEL, TGT_LEN);
}

/* The device says it has windows of type 1 and 2B. */
TEST_F(mw, device_caps)
{
	struct ibv_device_attr a;

	ASSERT_EQ(0, ibv_query_device(self->ctx, &a));
	EXPECT_TRUE(a.device_cap_flags & IBV_DEVICE_MEM_WINDOW);
	EXPECT_TRUE(a.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B);
	EXPECT_LT(0, a.max_mw);
}

/*
 * Type 1: a window over part of the MR, at an offset; WRITE and READ
 * through it, at the window's start and inside it; atomics too.
 */
TEST_F(mw, type1_write_read_atomic)
{
	size_t woff = 3 * PAGE + 100, wlen = 5 * PAGE;
	uint64_t base = (uintptr_t)self->tgt + woff;
	struct ibv_mw *mw;
	uint64_t *word;
	uint32_t rkey0;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw) TH_LOG("alloc_mw: %s", strerror(errno));
	rkey0 = mw->rkey;
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, self->tmr,
					self->tgt + woff, wlen, ALL_REMOTE));
	EXPECT_NE(rkey0, mw->rkey);
	EXPECT_EQ(rkey0 >> 8, mw->rkey >> 8);
	EXPECT_NE(self->tmr->rkey >> 8, mw->rkey >> 8);

	write_read_check(_metadata, self, base, mw->rkey, woff, wlen, 1);
	write_read_check(_metadata, self, base + 4001, mw->rkey, woff + 4001,
			 wlen - 4001, 2);

	/* Atomics on an 8-byte aligned word of the window. */
	word = (uint64_t *)(self->tgt + woff + 1020);
	*word = 0x1122334455667788ull;
	ASSERT_EQ(IBV_WC_SUCCESS, atomic(_metadata, self,
					 IBV_WR_ATOMIC_FETCH_AND_ADD, 0,
					 (uintptr_t)word, mw->rkey, 0x10, 0));
	EXPECT_EQ(0x1122334455667788ull, *(uint64_t *)self->src);
	EXPECT_EQ(0x1122334455667798ull, *word);
	ASSERT_EQ(IBV_WC_SUCCESS, atomic(_metadata, self,
					 IBV_WR_ATOMIC_CMP_AND_SWP, 8,
					 (uintptr_t)word, mw->rkey,
					 0x1122334455667798ull,
					 0xcafef00ddeadbeefull));
	EXPECT_EQ(0x1122334455667798ull, *(uint64_t *)(self->src + 8));
	EXPECT_EQ(0xcafef00ddeadbeefull, *word);

	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/* A zero-based type 1 window: address 0 is its first byte. */
TEST_F(mw, type1_zero_based)
{
	size_t woff = 2 * PAGE + 24, wlen = 3 * PAGE;
	struct ibv_mw *mw;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, self->tmr,
					self->tgt + woff, wlen,
					ALL_REMOTE | IBV_ACCESS_ZERO_BASED));
	write_read_check(_metadata, self, 0, mw->rkey, woff, wlen, 3);
	write_read_check(_metadata, self, 777, mw->rkey, woff + 777, 1000, 4);
	/* The MR's own address is outside a zero-based window. */
	EXPECT_DENIED(IBV_WR_RDMA_WRITE, (uintptr_t)self->tgt + woff,
		      mw->rkey, 16);
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/*
 * Accesses outside what the window allows fail with REM_ACCESS_ERR and
 * leave the target alone: past its end, before its start, a WRITE
 * through a read-only window, an atomic through one without atomics.
 */
TEST_F(mw, access_outside_window)
{
	size_t woff = PAGE, wlen = PAGE;
	uint64_t base = (uintptr_t)self->tgt + woff;
	struct ibv_mw *mw;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, self->tmr,
					self->tgt + woff, wlen,
					IBV_ACCESS_REMOTE_READ));
	gift_fill_pat(self->src, 2 * PAGE, 0, 5);
	EXPECT_DENIED(IBV_WR_RDMA_WRITE, base, mw->rkey, 64);
	EXPECT_DENIED(IBV_WR_RDMA_READ, base + wlen - 8, mw->rkey, 16);
	EXPECT_DENIED(IBV_WR_RDMA_READ, base - 1, mw->rkey, 8);
	EXPECT_EQ(IBV_WC_REM_ACCESS_ERR,
		  atomic(_metadata, self, IBV_WR_ATOMIC_FETCH_AND_ADD, 0, base,
			 mw->rkey, 1, 0));
	pair_reconnect(_metadata, self);
	EXPECT_TRUE(gift_is_fill(self->tgt, TGT_LEN, SENTINEL));
	/* The read it does allow still works. */
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_READ, 0,
				       base, mw->rkey, wlen));
	EXPECT_TRUE(gift_is_fill(self->src, wlen, SENTINEL));
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/*
 * A type 1 rebind gives a new rkey; the old one no longer reaches
 * anything. A bind of length 0 unbinds.
 */
TEST_F(mw, type1_rebind_and_unbind)
{
	struct ibv_mw *mw;
	uint32_t r1, r2;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, self->tmr,
					self->tgt, PAGE, ALL_REMOTE));
	r1 = mw->rkey;
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, self->tmr,
					self->tgt + 4 * PAGE, 2 * PAGE,
					ALL_REMOTE));
	r2 = mw->rkey;
	EXPECT_NE(r1, r2);
	EXPECT_EQ(r1 >> 8, r2 >> 8);
	gift_fill_pat(self->src, PAGE, 0, 6);
	EXPECT_DENIED(IBV_WR_RDMA_WRITE, (uintptr_t)self->tgt, r1, 64);
	EXPECT_TRUE(gift_is_fill(self->tgt, TGT_LEN, SENTINEL));
	write_read_check(_metadata, self, (uintptr_t)self->tgt + 4 * PAGE, r2,
			 4 * PAGE, 2 * PAGE, 7);

	/* Unbind: length 0. */
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, self->tmr,
					NULL, 0, 0));
	EXPECT_DENIED(IBV_WR_RDMA_WRITE, (uintptr_t)self->tgt + 4 * PAGE,
		      r2, 64);
	EXPECT_DENIED(IBV_WR_RDMA_WRITE, (uintptr_t)self->tgt + 4 * PAGE,
		      mw->rkey, 64);
	EXPECT_TRUE(gift_is_fill(self->tgt, TGT_LEN, SENTINEL));
	/* Unbound, the MR may go. */
	EXPECT_EQ(0, ibv_dereg_mr(self->tmr));
	self->tmr = NULL;
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/*
 * Type 2: the consumer picks the key byte; WRITE, READ and atomics work
 * through the window; a second bind of a bound type 2 window fails.
 */
TEST_F(mw, type2_bind_and_access)
{
	size_t woff = 5 * PAGE + 8, wlen = 4 * PAGE;
	uint64_t base = (uintptr_t)self->tgt + woff;
	struct ibv_mw *mw;
	uint64_t *word;
	uint32_t rkey;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw) TH_LOG("alloc_mw: %s", strerror(errno));
	rkey = KEY(mw->rkey, 0x5a);
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw, rkey, self->tmr,
					self->tgt + woff, wlen, ALL_REMOTE));
	write_read_check(_metadata, self, base, rkey, woff, wlen, 8);
	write_read_check(_metadata, self, base + 1234, rkey, woff + 1234, 77,
			 9);
	word = (uint64_t *)(self->tgt + woff + 2048);
	*word = 5;
	ASSERT_EQ(IBV_WC_SUCCESS, atomic(_metadata, self,
					 IBV_WR_ATOMIC_FETCH_AND_ADD, 0,
					 (uintptr_t)word, rkey, 3, 0));
	EXPECT_EQ(5, *(uint64_t *)self->src);
	EXPECT_EQ(8, *word);
	EXPECT_TRUE(gift_is_fill(self->tgt, woff + 2048, SENTINEL));
	memset(self->tgt, SENTINEL, TGT_LEN);
	/* Still bound: a type 2 window is not rebound. */
	EXPECT_EQ(IBV_WC_MW_BIND_ERR,
		  bind2(_metadata, self, mw, KEY(rkey, 1), self->tmr, self->tgt,
			PAGE, ALL_REMOTE));
	pair_reconnect(_metadata, self);
	/* Invalidation frees it; then it binds again, at a new rkey. */
	ASSERT_EQ(IBV_WC_SUCCESS, local_inv(_metadata, self, rkey));
	EXPECT_DENIED(IBV_WR_RDMA_READ, base, rkey, 8);
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw, KEY(rkey, 1),
					self->tmr, self->tgt, PAGE,
					ALL_REMOTE | IBV_ACCESS_ZERO_BASED));
	write_read_check(_metadata, self, 0, KEY(rkey, 1), 0, PAGE, 10);
	EXPECT_DENIED(IBV_WR_RDMA_READ, 0, rkey, 8);
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/*
 * Binds the rules refuse complete with IBV_WC_MW_BIND_ERR (and move the
 * QP to ERR): an MR without IBV_ACCESS_MW_BIND; a range not inside the
 * MR; remote write or atomic over an MR without local write; a type 2
 * rkey of another window's index.
 */
TEST_F(mw, bind_errors)
{
	struct ibv_mr *plain, *ro;
	struct ibv_mw *mw1, *mw2;

	plain = ibv_reg_mr(self->b.pd, self->tgt, TGT_LEN, ALL_ACCESS);
	ASSERT_NE(NULL, plain);
	ro = ibv_reg_mr(self->b.pd, self->tgt, TGT_LEN,
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_MW_BIND);
	ASSERT_NE(NULL, ro);
	mw1 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw1);
	mw2 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw2);

	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind1(_metadata, self, mw1, plain,
					    self->tgt, PAGE,
					    IBV_ACCESS_REMOTE_READ));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind1(_metadata, self, mw1, self->tmr,
					    self->tgt + TGT_LEN - PAGE,
					    PAGE + 1, IBV_ACCESS_REMOTE_READ));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind1(_metadata, self, mw1, self->tmr,
					    self->tgt - PAGE, 2 * PAGE,
					    IBV_ACCESS_REMOTE_READ));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind1(_metadata, self, mw1, ro,
					    self->tgt, PAGE,
					    IBV_ACCESS_REMOTE_WRITE));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind2(_metadata, self, mw2,
					    mw2->rkey ^ 0x100, self->tmr,
					    self->tgt, PAGE,
					    IBV_ACCESS_REMOTE_READ));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind2(_metadata, self, mw2,
					    KEY(mw2->rkey, 1), ro, self->tgt,
					    PAGE, IBV_ACCESS_REMOTE_ATOMIC));
	pair_reconnect(_metadata, self);
	/* A read window over the read-only MR is fine. */
	gift_fill_pat(self->tgt, PAGE, 0, 11);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw1, ro, self->tgt,
					PAGE, IBV_ACCESS_REMOTE_READ));
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_READ, 0,
				       (uintptr_t)self->tgt, mw1->rkey, PAGE));
	EXPECT_TRUE(gift_is_pat(self->src, PAGE, 0, 11));

	EXPECT_EQ(0, ibv_dealloc_mw(mw1));
	EXPECT_EQ(0, ibv_dealloc_mw(mw2));
	EXPECT_EQ(0, ibv_dereg_mr(ro));
	EXPECT_EQ(0, ibv_dereg_mr(plain));
}

/*
 * Remote invalidation: a's SEND_WITH_INV of a type 2 window's rkey
 * invalidates it at b (b's receive says so), and a's next access through
 * it fails. Invalidating a type 1 window remotely is an invalid request.
 */
TEST_F(mw, type2_remote_invalidate)
{
	struct ibv_sge rsge = {
		.addr = (uintptr_t)self->tgt + 8 * PAGE,
		.length = 64,
		.lkey = self->tmr->lkey,
	};
	struct ibv_recv_wr rwr = { .wr_id = 66, .sg_list = &rsge,
				   .num_sge = 1 }, *rbad;
	struct ibv_send_wr swr = {
		.wr_id = 77,
		.opcode = IBV_WR_SEND_WITH_INV,
		.send_flags = IBV_SEND_SIGNALED,
	}, *sbad;
	struct ibv_mw *mw, *mw1;
	struct ibv_wc wc;
	uint32_t rkey;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw);
	rkey = KEY(mw->rkey, 7);
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw, rkey, self->tmr,
					self->tgt, PAGE, ALL_REMOTE));
	write_read_check(_metadata, self, (uintptr_t)self->tgt, rkey, 0, PAGE,
			 12);

	ASSERT_EQ(0, ibv_post_recv(self->b.qp, &rwr, &rbad));
	swr.invalidate_rkey = rkey;
	ASSERT_EQ(0, ibv_post_send(self->a.qp, &swr, &sbad));
	EXPECT_EQ(IBV_WC_SUCCESS, wait_status(_metadata, self->a.cq, 77,
					      IBV_WC_SEND));
	ASSERT_EQ(1, poll_one(self->b.cq, &wc));
	EXPECT_EQ(66, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_TRUE(wc.wc_flags & IBV_WC_WITH_INV);
	EXPECT_EQ(rkey, wc.invalidated_rkey);
	EXPECT_DENIED(IBV_WR_RDMA_READ, (uintptr_t)self->tgt, rkey, 8);
	/* Invalidating it again: it is not valid any more. */
	ASSERT_EQ(0, ibv_post_recv(self->b.qp, &rwr, &rbad));
	ASSERT_EQ(0, ibv_post_send(self->a.qp, &swr, &sbad));
	EXPECT_EQ(IBV_WC_REM_INV_REQ_ERR,
		  wait_status(_metadata, self->a.cq, 77, IBV_WC_SEND));
	pair_reconnect(_metadata, self);

	/* A type 1 window cannot be invalidated. */
	mw1 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw1);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw1, self->tmr,
					self->tgt, PAGE, ALL_REMOTE));
	ASSERT_EQ(0, ibv_post_recv(self->b.qp, &rwr, &rbad));
	swr.invalidate_rkey = mw1->rkey;
	ASSERT_EQ(0, ibv_post_send(self->a.qp, &swr, &sbad));
	EXPECT_EQ(IBV_WC_REM_INV_REQ_ERR,
		  wait_status(_metadata, self->a.cq, 77, IBV_WC_SEND));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_LOC_QP_OP_ERR, local_inv(_metadata, self,
						  mw1->rkey));
	pair_reconnect(_metadata, self);
	/* Still bound after both refusals. */
	write_read_check(_metadata, self, (uintptr_t)self->tgt, mw1->rkey, 0,
			 PAGE, 13);
	EXPECT_EQ(0, ibv_dealloc_mw(mw1));
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/*
 * A type 2 window is bound to the QP that bound it: a request arriving
 * on another QP of the same PD is refused; a type 1 window serves any
 * QP of its PD.
 */
TEST_F(mw, type2_other_qp)
{
	struct ibv_mw *mw2, *mw1;
	uint32_t rkey;
	struct side saved_a;

	side_open(_metadata, self, &self->a2, self->a.pd);
	side_open(_metadata, self, &self->b2, self->b.pd);
	side_connect(_metadata, self, &self->a2, self->b2.qp->qp_num);
	side_connect(_metadata, self, &self->b2, self->a2.qp->qp_num);
	self->a2.pd = NULL;	/* a's, freed with a */

	mw2 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw2);
	mw1 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw1);
	rkey = KEY(mw2->rkey, 1);
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw2, rkey, self->tmr,
					self->tgt, PAGE, ALL_REMOTE));
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw1, self->tmr,
					self->tgt + PAGE, PAGE, ALL_REMOTE));

	/* Through a2 -> b2: swap a2 in as the requester. */
	saved_a = self->a;
	self->a = self->a2;
	gift_fill_pat(self->src, PAGE, 0, 14);
	EXPECT_EQ(IBV_WC_REM_ACCESS_ERR,
		  rdma(_metadata, self, IBV_WR_RDMA_WRITE, 0,
		       (uintptr_t)self->tgt, rkey, 64));
	EXPECT_TRUE(gift_is_fill(self->tgt, PAGE, SENTINEL));
	side_connect(_metadata, self, &self->a2, self->b2.qp->qp_num);
	side_connect(_metadata, self, &self->b2, self->a2.qp->qp_num);
	EXPECT_EQ(IBV_WC_SUCCESS,
		  rdma(_metadata, self, IBV_WR_RDMA_WRITE, 0,
		       (uintptr_t)self->tgt + PAGE, mw1->rkey, PAGE));
	EXPECT_TRUE(gift_is_pat(self->tgt + PAGE, PAGE, 0, 14));
	self->a = saved_a;
	memset(self->tgt, SENTINEL, TGT_LEN);

	/* Through a -> b, the QP it is bound to, it works. */
	write_read_check(_metadata, self, (uintptr_t)self->tgt, rkey, 0, PAGE,
			 15);
	EXPECT_EQ(0, ibv_dealloc_mw(mw1));
	EXPECT_EQ(0, ibv_dealloc_mw(mw2));
}

/*
 * An MR with bound windows cannot be deregistered (EBUSY) until they are
 * unbound or deallocated; a deallocated window's rkey reaches nothing.
 */
TEST_F(mw, dereg_busy_and_dealloc)
{
	struct ibv_mw *mw1, *mw2;
	uint32_t r1, r2;

	mw1 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw1);
	mw2 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw2);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw1, self->tmr,
					self->tgt, PAGE, ALL_REMOTE));
	r2 = KEY(mw2->rkey, 1);
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw2, r2, self->tmr,
					self->tgt + PAGE, PAGE, ALL_REMOTE));
	r1 = mw1->rkey;

	EXPECT_EQ(EBUSY, ibv_dereg_mr(self->tmr));
	/* Still registered and reachable. */
	write_read_check(_metadata, self, (uintptr_t)self->tgt, r1, 0, PAGE,
			 16);
	EXPECT_EQ(0, ibv_dealloc_mw(mw1));
	EXPECT_DENIED(IBV_WR_RDMA_READ, (uintptr_t)self->tgt, r1, 8);
	EXPECT_EQ(EBUSY, ibv_dereg_mr(self->tmr));
	ASSERT_EQ(IBV_WC_SUCCESS, local_inv(_metadata, self, r2));
	EXPECT_EQ(0, ibv_dereg_mr(self->tmr));
	self->tmr = NULL;
	/* The MR is gone: the free window cannot bind to its lkey. */
	EXPECT_EQ(0, ibv_dealloc_mw(mw2));
}

/*
 * A gift MR (read-only, pages held copy-on-write shared) may carry a
 * read window, which serves its pages; a window with write or atomic
 * access over it is refused with IBV_WC_MW_BIND_ERR.
 */
TEST_F(mw, gift_mr)
{
	struct giftdv_mr_attr attr = {};
	struct ibv_mr *gmr;
	struct ibv_mw *mw;
	uint8_t *g;

	g = map_sentinel(4 * PAGE);
	ASSERT_NE(NULL, g);
	gift_fill_pat(g, 4 * PAGE, 0, 17);
	gmr = ibv_reg_mr(self->b.pd, g, 4 * PAGE, IBV_ACCESS_GIFT |
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_MW_BIND);
	ASSERT_NE(NULL, gmr) TH_LOG("gift MR: %s", strerror(errno));
	ASSERT_EQ(0, giftdv_query_mr(gmr, &attr));
	EXPECT_EQ(4, attr.npages);
	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw);

	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind1(_metadata, self, mw, gmr, g, PAGE,
					    IBV_ACCESS_REMOTE_WRITE));
	pair_reconnect(_metadata, self);
	EXPECT_EQ(IBV_WC_MW_BIND_ERR, bind1(_metadata, self, mw, gmr, g, PAGE,
					    IBV_ACCESS_REMOTE_ATOMIC |
					    IBV_ACCESS_REMOTE_READ));
	pair_reconnect(_metadata, self);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw, gmr, g + PAGE,
					2 * PAGE, IBV_ACCESS_REMOTE_READ));
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_READ, 0,
				       (uintptr_t)g + PAGE + 10, mw->rkey,
				       2 * PAGE - 10));
	EXPECT_TRUE(gift_is_pat(self->src, 2 * PAGE - 10, PAGE + 10, 17));
	EXPECT_DENIED(IBV_WR_RDMA_WRITE, (uintptr_t)g + PAGE, mw->rkey, 8);
	EXPECT_TRUE(gift_is_pat(g, 4 * PAGE, 0, 17));

	EXPECT_EQ(EBUSY, ibv_dereg_mr(gmr));
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
	EXPECT_EQ(0, ibv_dereg_mr(gmr));
	munmap(g, 4 * PAGE);
}

/*
 * On-demand paging: a window over an ODP MR works, its pages faulted in
 * by the accesses through it.
 */
TEST_F(mw, odp_mr)
{
	struct ibv_mr *omr;
	struct ibv_mw *mw;
	uint8_t *o;

	o = map_sentinel(8 * PAGE);
	ASSERT_NE(NULL, o);
	omr = ibv_reg_mr(self->b.pd, o, 8 * PAGE,
			 BINDABLE | IBV_ACCESS_ON_DEMAND);
	ASSERT_NE(NULL, omr) TH_LOG("ODP MR: %s", strerror(errno));
	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw);
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw, KEY(mw->rkey, 3), omr,
					o + 2 * PAGE, 4 * PAGE,
					ALL_REMOTE | IBV_ACCESS_ZERO_BASED));
	gift_fill_pat(self->src, 3 * PAGE, 0, 18);
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_WRITE, 0,
				       100, KEY(mw->rkey, 3), 3 * PAGE));
	EXPECT_TRUE(gift_is_fill(o, 2 * PAGE + 100, SENTINEL));
	EXPECT_TRUE(gift_is_pat(o + 2 * PAGE + 100, 3 * PAGE, 0, 18));
	EXPECT_TRUE(gift_is_fill(o + 5 * PAGE + 100, 3 * PAGE - 100, SENTINEL));
	memset(self->src, SENTINEL, SRC_LEN);
	ASSERT_EQ(IBV_WC_SUCCESS, rdma(_metadata, self, IBV_WR_RDMA_READ, 0,
				       100, KEY(mw->rkey, 3), 3 * PAGE));
	EXPECT_TRUE(gift_is_pat(self->src, 3 * PAGE, 0, 18));
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
	EXPECT_EQ(0, ibv_dereg_mr(omr));
	munmap(o, 8 * PAGE);
}

/*
 * ibv_post_send() with a chain that has a BIND_MW and a LOCAL_INV between
 * other WRs executes them in order and completes them in order; a bad
 * BIND_MW stops the chain there and is *bad_wr.
 */
TEST_F(mw, post_send_chain_order)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)self->tgt + 12 * PAGE,
		.length = 64,
		.lkey = self->tmr->lkey,
	};
	struct ibv_send_wr wr[4], *bad = NULL;
	enum ibv_wc_opcode ops[4] = { IBV_WC_RDMA_WRITE, IBV_WC_BIND_MW,
				      IBV_WC_RDMA_WRITE, IBV_WC_LOCAL_INV };
	struct ibv_mw *mw;
	struct ibv_wc wc;
	uint32_t rkey;
	int i;

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw);
	rkey = KEY(mw->rkey, 9);
	gift_fill_pat(self->tgt + 12 * PAGE, 64, 0, 19);
	memset(wr, 0, sizeof(wr));
	for (i = 0; i < 4; i++) {
		wr[i].wr_id = 100 + i;
		wr[i].send_flags = IBV_SEND_SIGNALED;
		wr[i].next = i < 3 ? &wr[i + 1] : NULL;
	}
	/* b writes into a's buffer, binds, writes again, invalidates. */
	wr[0].opcode = IBV_WR_RDMA_WRITE;
	wr[0].sg_list = &sge;
	wr[0].num_sge = 1;
	wr[0].wr.rdma.remote_addr = (uintptr_t)self->src;
	wr[0].wr.rdma.rkey = self->smr->rkey;
	wr[1].opcode = IBV_WR_BIND_MW;
	wr[1].bind_mw.mw = mw;
	wr[1].bind_mw.rkey = rkey;
	wr[1].bind_mw.bind_info.mr = self->tmr;
	wr[1].bind_mw.bind_info.addr = (uintptr_t)self->tgt;
	wr[1].bind_mw.bind_info.length = PAGE;
	wr[1].bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_READ;
	wr[2] = wr[0];
	wr[2].wr_id = 102;
	wr[2].next = &wr[3];
	wr[2].wr.rdma.remote_addr = (uintptr_t)self->src + 64;
	wr[3].opcode = IBV_WR_LOCAL_INV;
	wr[3].invalidate_rkey = rkey;
	ASSERT_EQ(0, ibv_post_send(self->b.qp, wr, &bad));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(1, poll_one(self->b.cq, &wc));
		EXPECT_EQ(100 + i, wc.wr_id);
		EXPECT_EQ(IBV_WC_SUCCESS, wc.status)
			TH_LOG("%d: %s", i, ibv_wc_status_str(wc.status));
		EXPECT_EQ(ops[i], wc.opcode);
	}
	EXPECT_TRUE(gift_is_pat(self->src, 64, 0, 19));
	EXPECT_TRUE(gift_is_pat(self->src + 64, 64, 0, 19));
	EXPECT_TRUE(wr[1].next == &wr[2] && wr[0].next == &wr[1]);
	EXPECT_DENIED(IBV_WR_RDMA_READ, (uintptr_t)self->tgt, rkey, 8);

	/* A BIND_MW without a window: refused at post, *bad_wr is it. */
	wr[1].bind_mw.mw = NULL;
	wr[0].wr_id = 200;
	ASSERT_EQ(EINVAL, ibv_post_send(self->b.qp, wr, &bad));
	EXPECT_EQ(&wr[1], bad);
	ASSERT_EQ(1, poll_one(self->b.cq, &wc));
	EXPECT_EQ(200, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(0, ibv_poll_cq(self->b.cq, 1, &wc));
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

/*
 * A process that closes its device with windows still bound to an MR
 * leaves nothing behind: ib_core's cleanup retries the MR whose dereg
 * failed with EBUSY once the windows are gone, and its pages are
 * released (the runner then checks dmesg, pins and rmmod).
 */
TEST_F(mw, close_with_bound_windows)
{
	long pinned0, ref0, pinned, ref;
	struct ibv_mw *mw1, *mw2;
	long long deadline;

	mw1 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_1);
	ASSERT_NE(NULL, mw1);
	mw2 = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw2);
	ASSERT_EQ(IBV_WC_SUCCESS, bind1(_metadata, self, mw1, self->tmr,
					self->tgt, PAGE, ALL_REMOTE));
	ASSERT_EQ(IBV_WC_SUCCESS, bind2(_metadata, self, mw2,
					KEY(mw2->rkey, 1), self->tmr,
					self->tgt + PAGE, PAGE, ALL_REMOTE));
	ASSERT_EQ(0, gift_umem_pages(&pinned0, &ref0));
	ASSERT_LE((SRC_LEN + TGT_LEN) / PAGE, pinned0);

	/* Everything stays allocated; the kernel cleans up at close. */
	ASSERT_EQ(0, ibv_close_device(self->ctx));
	memset(&self->a, 0, sizeof(self->a));
	memset(&self->b, 0, sizeof(self->b));
	self->ctx = NULL;
	self->smr = NULL;
	self->tmr = NULL;
	deadline = gift_now_us() + 2000000LL * gift_slow();
	do {
		ASSERT_EQ(0, gift_umem_pages(&pinned, &ref));
	} while (pinned != pinned0 - (SRC_LEN + TGT_LEN) / PAGE &&
		 gift_now_us() < deadline && !usleep(10000));
	EXPECT_EQ(pinned0 - (SRC_LEN + TGT_LEN) / PAGE, pinned);
}

/* The extended API: ibv_wr_bind_mw() and ibv_wr_local_inv(). */
TEST_F(mw, wr_bind_mw_ex)
{
	struct ibv_qp_init_attr_ex init = {
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.comp_mask = IBV_QP_INIT_ATTR_PD |
			     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS,
		.send_ops_flags = IBV_QP_EX_WITH_BIND_MW |
				  IBV_QP_EX_WITH_LOCAL_INV |
				  IBV_QP_EX_WITH_RDMA_WRITE,
	};
	struct ibv_mw_bind_info bi = {
		.mr = self->tmr,
		.addr = (uintptr_t)self->tgt + PAGE,
		.length = 2 * PAGE,
		.mw_access_flags = ALL_REMOTE,
	};
	struct ibv_qp *qp;
	struct ibv_qp_ex *qpx;
	struct ibv_mw *mw;
	uint32_t rkey;

	/* b's QP, made again with the extended API. */
	init.pd = self->b.pd;
	init.send_cq = self->b.cq;
	init.recv_cq = self->b.cq;
	qp = ibv_create_qp_ex(self->ctx, &init);
	ASSERT_NE(NULL, qp) TH_LOG("create_qp_ex: %s", strerror(errno));
	ibv_destroy_qp(self->b.qp);
	self->b.qp = qp;
	pair_reconnect(_metadata, self);
	qpx = ibv_qp_to_qp_ex(qp);
	ASSERT_NE(NULL, qpx);

	mw = ibv_alloc_mw(self->b.pd, IBV_MW_TYPE_2);
	ASSERT_NE(NULL, mw);
	rkey = KEY(mw->rkey, 0x21);
	ibv_wr_start(qpx);
	qpx->wr_id = 22;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_bind_mw(qpx, mw, rkey, &bi);
	ASSERT_EQ(0, ibv_wr_complete(qpx));
	EXPECT_EQ(IBV_WC_SUCCESS, wait_status(_metadata, self->b.cq, 22,
					      IBV_WC_BIND_MW));
	write_read_check(_metadata, self, (uintptr_t)self->tgt + PAGE, rkey,
			 PAGE, 2 * PAGE, 20);

	ibv_wr_start(qpx);
	qpx->wr_id = 33;
	qpx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_local_inv(qpx, rkey);
	ASSERT_EQ(0, ibv_wr_complete(qpx));
	EXPECT_EQ(IBV_WC_SUCCESS, wait_status(_metadata, self->b.cq, 33,
					      IBV_WC_LOCAL_INV));
	EXPECT_DENIED(IBV_WR_RDMA_READ, (uintptr_t)self->tgt + PAGE, rkey, 8);
	EXPECT_EQ(0, ibv_dealloc_mw(mw));
}

TEST_HARNESS_MAIN
