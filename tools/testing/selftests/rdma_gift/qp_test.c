// SPDX-License-Identifier: GPL-2.0
/*
 * Completion queues, shared receive queues, queue pairs and address
 * handles of gift devices, through libibverbs, our provider and uverbs:
 * limits and exact errnos, the QP state machine, posting rules, and the
 * flush of outstanding work requests when a QP enters the error state.
 *
 * No data moves here: completions come from flushes. Send WRs that must
 * stay queued are posted in SQD, where the protocol engine starts none.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include <rdma/ib_user_verbs.h>
#include "../../../../include/uapi/rdma/gift-abi.h"

#include "gift_util.h"
#include "gift_harness.h"

/* The driver's limits (gift_*.h), which the device must report. */
#define GIFT_MAX_QP		0x10000
#define GIFT_MAX_QP_WR		0x4000
#define GIFT_MAX_SGE		32
#define GIFT_MAX_INLINE		512
#define GIFT_MAX_CQ		0x10000
#define GIFT_MAX_CQE		0x10000
#define GIFT_MAX_SRQ		0x10000
#define GIFT_MAX_SRQ_WR		0x4000
#define GIFT_MAX_AH		0x10000
#define GIFT_MAX_RD_ATOM	128

#define TIMEOUT_MS		(2000 * gift_slow())	/* GIFT_SLOW: gift_util.h */

static const struct ibv_qp_cap default_cap = {
	.max_send_wr = 16,
	.max_recv_wr = 16,
	.max_send_sge = 2,
	.max_recv_sge = 2,
	.max_inline_data = 64,
};

/* Memory the WRs point at; nothing reads or writes it without an engine. */
static char buf[4096] __attribute__((aligned(64)));

/* A context, a PD and two CQs: what every QP test starts from. */
struct rig {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq;
	struct ibv_cq *rcq;
	int gid_index;
	union ibv_gid gid;
};


/* Opens the device and allocates a PD and two CQs of cqe entries. */
static int rig_open(struct rig *r, int cqe)
{
	memset(r, 0, sizeof(*r));
	r->ctx = gift_open(gift_env("GIFT_IBDEV"));
	if (!r->ctx)
		return -1;
	r->pd = ibv_alloc_pd(r->ctx);
	r->scq = ibv_create_cq(r->ctx, cqe, NULL, NULL, 0);
	r->rcq = ibv_create_cq(r->ctx, cqe, NULL, NULL, 0);
	gift_wait_for(gift_have_v4_gid, r->ctx, 5000);
	r->gid_index = gift_find_v4_gid(r->ctx, &r->gid);
	return r->pd && r->scq && r->rcq && r->gid_index >= 0 ? 0 : -1;
}

static void rig_close(struct rig *r)
{
	if (r->rcq)
		ibv_destroy_cq(r->rcq);
	if (r->scq)
		ibv_destroy_cq(r->scq);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->ctx)
		ibv_close_device(r->ctx);
}

static struct ibv_qp *rig_qp(struct rig *r, enum ibv_qp_type type,
			     const struct ibv_qp_cap *cap, struct ibv_srq *srq)
{
	struct ibv_qp_init_attr init = {
		.send_cq = r->scq,
		.recv_cq = r->rcq,
		.srq = srq,
		.cap = *cap,
		.qp_type = type,
	};

	return ibv_create_qp(r->pd, &init);
}

static int to_state(struct ibv_qp *qp, enum ibv_qp_state state)
{
	struct ibv_qp_attr a = { .qp_state = state };

	return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

static int to_init(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
		.qkey = 0x11111111,
	};
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;

	mask |= qp->qp_type == IBV_QPT_UD ? IBV_QP_QKEY : IBV_QP_ACCESS_FLAGS;
	return ibv_modify_qp(qp, &a, mask);
}

/*
 * RTR attributes of an RC QP talking to QP dqpn at our own IPv4 GID;
 * without IBV_QP_MAX_DEST_RD_ATOMIC and IBV_QP_MIN_RNR_TIMER in @mask,
 * those of a UC QP.
 */
static void rtr_attr(const struct rig *r, uint32_t dqpn, struct ibv_qp_attr *a,
		     int *mask)
{
	memset(a, 0, sizeof(*a));
	a->qp_state = IBV_QPS_RTR;
	a->path_mtu = IBV_MTU_1024;
	a->dest_qp_num = dqpn;
	a->rq_psn = 0x123456;
	a->max_dest_rd_atomic = 4;
	a->min_rnr_timer = 12;
	a->ah_attr.is_global = 1;
	a->ah_attr.grh.dgid = r->gid;
	a->ah_attr.grh.sgid_index = r->gid_index;
	a->ah_attr.grh.hop_limit = 64;
	a->ah_attr.port_num = 1;
	*mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
		IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
		IBV_QP_MIN_RNR_TIMER;
}

static int to_rtr(const struct rig *r, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a;
	int mask;

	if (qp->qp_type == IBV_QPT_UD)
		return to_state(qp, IBV_QPS_RTR);
	rtr_attr(r, dqpn, &a, &mask);
	if (qp->qp_type == IBV_QPT_UC)
		mask &= ~(IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	return ibv_modify_qp(qp, &a, mask);
}

static int to_rts(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_RTS,
		.sq_psn = 0x654321,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.max_rd_atomic = 4,
	};

	if (qp->qp_type == IBV_QPT_UD || qp->qp_type == IBV_QPT_UC)
		return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			     IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* Walks a QP in RESET through INIT, RTR, RTS and SQD up to target. */
static int walk_to(const struct rig *r, struct ibv_qp *qp, uint32_t dqpn,
		   enum ibv_qp_state target)
{
	int err = to_init(qp);

	if (!err && target >= IBV_QPS_RTR)
		err = to_rtr(r, qp, dqpn);
	if (!err && target >= IBV_QPS_RTS)
		err = to_rts(qp);
	if (!err && target == IBV_QPS_SQD)
		err = to_state(qp, IBV_QPS_SQD);
	return err;
}

static enum ibv_qp_state qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &init))
		return -1;
	return a.qp_state;
}

/* Posts n receives with wr_ids first..first+n-1; returns ibv's result. */
static int post_recvs(struct ibv_qp *qp, int n, uint64_t first)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = 64 };
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;
	int i, err = 0;

	for (i = 0; i < n && !err; i++) {
		wr.wr_id = first + i;
		err = ibv_post_recv(qp, &wr, &bad);
	}
	return err;
}

/* Posts one unsignaled send WR of the given opcode. */
static int post_send_op(struct ibv_qp *qp, enum ibv_wr_opcode op,
			uint64_t wr_id)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = 8 };
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
	}, *bad;

	if (op == IBV_WR_ATOMIC_FETCH_AND_ADD || op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		wr.wr.atomic.remote_addr = (uintptr_t)buf;
		wr.wr.atomic.rkey = 1;
	} else {
		wr.wr.rdma.remote_addr = (uintptr_t)buf;
		wr.wr.rdma.rkey = 1;
	}
	return ibv_post_send(qp, &wr, &bad);
}

static int post_sends(struct ibv_qp *qp, int n, uint64_t first)
{
	int i, err = 0;

	for (i = 0; i < n && !err; i++)
		err = post_send_op(qp, IBV_WR_SEND, first + i);
	return err;
}

/* Polls until n completions arrived or TIMEOUT_MS passed; returns count. */
static int poll_n(struct ibv_cq *cq, struct ibv_wc *wc, int n)
{
	int got = 0, ret, waited = 0;

	while (got < n && waited < TIMEOUT_MS) {
		ret = ibv_poll_cq(cq, n - got, wc + got);
		if (ret < 0)
			return ret;
		got += ret;
		if (got < n) {
			usleep(1000);
			waited++;
		}
	}
	return got;
}

/* Device attributes */

FIXTURE(dev) {
	struct ibv_context *ctx;
};

FIXTURE_SETUP(dev)
{
	self->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, self->ctx);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/* The device reports the CQ, SRQ, QP and AH limits the driver enforces. */
TEST_F(dev, limits)
{
	struct ibv_device_attr a;

	ASSERT_EQ(0, ibv_query_device(self->ctx, &a));
	EXPECT_EQ(GIFT_MAX_QP, a.max_qp);
	EXPECT_EQ(GIFT_MAX_QP_WR, a.max_qp_wr);
	EXPECT_EQ(GIFT_MAX_SGE, a.max_sge);
	EXPECT_EQ(GIFT_MAX_SGE, a.max_sge_rd);
	EXPECT_EQ(GIFT_MAX_CQ, a.max_cq);
	EXPECT_EQ(GIFT_MAX_CQE, a.max_cqe);
	EXPECT_EQ(GIFT_MAX_SRQ, a.max_srq);
	EXPECT_EQ(GIFT_MAX_SRQ_WR, a.max_srq_wr);
	EXPECT_EQ(GIFT_MAX_SGE, a.max_srq_sge);
	EXPECT_EQ(GIFT_MAX_AH, a.max_ah);
	EXPECT_EQ(GIFT_MAX_RD_ATOM, a.max_qp_rd_atom);
	EXPECT_EQ(GIFT_MAX_RD_ATOM, a.max_qp_init_rd_atom);
	EXPECT_EQ(IBV_ATOMIC_HCA, a.atomic_cap);
	EXPECT_TRUE(a.device_cap_flags & IBV_DEVICE_RC_RNR_NAK_GEN);
	EXPECT_TRUE(a.device_cap_flags & IBV_DEVICE_SRQ_RESIZE);
}

/* Completion queues */

/* A CQ reports at least the entries asked for and is destroyed again. */
TEST_F(dev, cq_create_destroy)
{
	static const int sizes[] = { 1, 2, 3, 100, 1000, GIFT_MAX_CQE };
	struct ibv_cq *cq;
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		cq = ibv_create_cq(self->ctx, sizes[i], NULL, NULL, 0);
		ASSERT_NE(NULL, cq);
		EXPECT_GE(cq->cqe, sizes[i]);
		EXPECT_LE(cq->cqe, GIFT_MAX_CQE);
		EXPECT_EQ(0, ibv_destroy_cq(cq));
	}
}

/* cqe 0, negative or over max_cqe fails with EINVAL. */
TEST_F(dev, cq_bad_size)
{
	EXPECT_EQ(NULL, ibv_create_cq(self->ctx, 0, NULL, NULL, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, ibv_create_cq(self->ctx, -1, NULL, NULL, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(NULL, ibv_create_cq(self->ctx, GIFT_MAX_CQE + 1, NULL, NULL, 0));
	EXPECT_EQ(EINVAL, errno);
}

/* Resizing grows and shrinks; beyond the limits it fails with EINVAL. */
TEST_F(dev, cq_resize)
{
	struct ibv_cq *cq = ibv_create_cq(self->ctx, 4, NULL, NULL, 0);

	ASSERT_NE(NULL, cq);
	ASSERT_EQ(0, ibv_resize_cq(cq, 1000));
	EXPECT_GE(cq->cqe, 1000);
	ASSERT_EQ(0, ibv_resize_cq(cq, 2));
	EXPECT_GE(cq->cqe, 2);
	EXPECT_LT(cq->cqe, 1000);
	EXPECT_EQ(EINVAL, ibv_resize_cq(cq, 0));
	EXPECT_EQ(EINVAL, ibv_resize_cq(cq, GIFT_MAX_CQE + 1));
	EXPECT_EQ(0, ibv_destroy_cq(cq));
}

/* max_cq is enforced: one more fails with ENOMEM, and a destroy makes room. */
/* The number of CQs `rdma resource show DEV` counts, or -1. */
static long res_cqs(const char *dev)
{
	char cmd[128], line[512], *p;
	long n = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma resource show %s", dev);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, " cq ")))
			n = strtol(p + 4, NULL, 10);
	pclose(f);
	return n;
}

#define MAP_COUNT "/proc/sys/vm/max_map_count"

/*
 * Every CQ is a mapping of its ring (one VMA), and the default
 * vm.max_map_count (65530) is below max_cq: the test raises it for its
 * run, so that the process's own allocations still find mappings.
 */
TEST_F_TIMEOUT(dev, cq_limit, 240)
{
	struct ibv_cq **cqs = calloc(GIFT_MAX_CQ + 1, sizeof(*cqs));
	/* The kernel's: ib_mad's CQ for the GSI QP. */
	long kernel = res_cqs(gift_env("GIFT_IBDEV"));
	struct ibv_cq *extra;
	char old[32];
	int i, n;

	ASSERT_NE(NULL, cqs);
	ASSERT_GE(kernel, 0);
	ASSERT_EQ(0, gift_read_file(MAP_COUNT, old, sizeof(old)));
	ASSERT_EQ(0, gift_write_file(MAP_COUNT, "%d", 4 * GIFT_MAX_CQ));
	for (n = 0; n <= GIFT_MAX_CQ; n++) {
		cqs[n] = ibv_create_cq(self->ctx, 1, NULL, NULL, 0);
		if (!cqs[n])
			break;
	}
	/* Other tests hold no CQs on this device while we run. */
	EXPECT_EQ(GIFT_MAX_CQ - kernel, n);
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_EQ(0, ibv_destroy_cq(cqs[0]));
	extra = ibv_create_cq(self->ctx, 1, NULL, NULL, 0);
	EXPECT_NE(NULL, extra);
	if (extra)
		ibv_destroy_cq(extra);
	for (i = 1; i < n; i++)
		ASSERT_EQ(0, ibv_destroy_cq(cqs[i]));
	free(cqs);
	EXPECT_EQ(0, gift_write_file(MAP_COUNT, "%s", old));
}

static int map_count(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/*
 * A process out of mappings still gets its CQs: the provider makes the
 * CQ again without a mapped ring (its completions then come through the
 * poll_cq command), and both kinds complete work. The map count limit is
 * lowered for the test to a few mappings above what the process has.
 */
TEST_F_TIMEOUT(dev, cq_unmapped_when_out_of_mappings, 60)
{
	struct ibv_cq *cqs[24];
	struct ibv_pd *pd;
	char old[32];
	int i, base;

	ASSERT_EQ(0, gift_read_file(MAP_COUNT, old, sizeof(old)));
	base = map_count();
	ASSERT_LT(0, base);
	/* Room for some rings, and for the process's own allocations. */
	ASSERT_EQ(0, gift_write_file(MAP_COUNT, "%d", base + 8));
	for (i = 0; i < 24; i++) {
		cqs[i] = ibv_create_cq(self->ctx, 4, NULL, NULL, 0);
		if (!cqs[i])
			break;
	}
	EXPECT_EQ(0, gift_write_file(MAP_COUNT, "%s", old));
	ASSERT_EQ(24, i);
	/* Some got a ring, the rest none: the map count stopped growing. */
	EXPECT_GT(base + 24, map_count());
	EXPECT_LT(base, map_count());
	/* Each CQ gets the flush of a receive posted to a QP of its own. */
	pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, pd);
	for (i = 0; i < 24; i++) {
		struct ibv_qp_init_attr init = {
			.send_cq = cqs[i],
			.recv_cq = cqs[i],
			.cap = default_cap,
			.qp_type = IBV_QPT_RC,
		};
		struct ibv_wc wc;
		struct ibv_qp *qp;

		qp = ibv_create_qp(pd, &init);
		ASSERT_NE(NULL, qp);
		ASSERT_EQ(0, to_init(qp));
		ASSERT_EQ(0, post_recvs(qp, 1, 1000 + i));
		ASSERT_EQ(0, to_state(qp, IBV_QPS_ERR));
		ASSERT_EQ(1, poll_n(cqs[i], &wc, 1));
		EXPECT_EQ(1000 + i, wc.wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc.status);
		EXPECT_EQ(qp->qp_num, wc.qp_num);
		EXPECT_EQ(0, ibv_destroy_qp(qp));
		EXPECT_EQ(0, ibv_destroy_cq(cqs[i]));
	}
	EXPECT_EQ(0, ibv_dealloc_pd(pd));
}

/*
 * A mapped CQ whose new ring cannot be mapped (the process is out of
 * mappings) fails the resize with ENOMEM and keeps its ring, its size
 * and its queued completions; once mappings are available again the
 * same resize moves them, in order, to the bigger ring.
 */
TEST_F_TIMEOUT(dev, cq_resize_out_of_mappings_keeps_the_cq, 60)
{
	struct ibv_qp_init_attr init = {
		.cap = default_cap,
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_wc wc[8];
	struct ibv_pd *pd;
	struct ibv_qp *qp;
	struct ibv_cq *cq;
	char old[32];
	int i, base, err;

	pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, pd);
	cq = ibv_create_cq(self->ctx, 8, NULL, NULL, 0);
	ASSERT_NE(NULL, cq);
	ASSERT_EQ(8, cq->cqe);
	init.send_cq = cq;
	init.recv_cq = cq;
	qp = ibv_create_qp(pd, &init);
	ASSERT_NE(NULL, qp);
	ASSERT_EQ(0, to_init(qp));
	ASSERT_EQ(0, post_recvs(qp, 6, 300));
	ASSERT_EQ(0, to_state(qp, IBV_QPS_ERR));
	/* Two taken, four left queued in the ring. */
	ASSERT_EQ(2, poll_n(cq, wc, 2));
	EXPECT_EQ(300, wc[0].wr_id);
	EXPECT_EQ(301, wc[1].wr_id);

	ASSERT_EQ(0, gift_read_file(MAP_COUNT, old, sizeof(old)));
	base = map_count();
	ASSERT_LT(2, base);
	/* /proc/self/maps has [vsyscall], which is no VMA: no new mapping. */
	ASSERT_EQ(0, gift_write_file(MAP_COUNT, "%d", base - 2));
	err = ibv_resize_cq(cq, 64);
	EXPECT_EQ(0, gift_write_file(MAP_COUNT, "%s", old));
	EXPECT_EQ(ENOMEM, err);
	EXPECT_EQ(8, cq->cqe);
	EXPECT_EQ(base, map_count());

	ASSERT_EQ(1, poll_n(cq, wc, 1));
	EXPECT_EQ(302, wc[0].wr_id);
	ASSERT_EQ(0, ibv_resize_cq(cq, 64));
	EXPECT_EQ(64, cq->cqe);
	EXPECT_EQ(base, map_count());
	ASSERT_EQ(3, poll_n(cq, wc, 8));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(303 + i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[i].status);
		EXPECT_EQ(qp->qp_num, wc[i].qp_num);
	}
	EXPECT_EQ(0, ibv_destroy_qp(qp));
	EXPECT_EQ(0, ibv_destroy_cq(cq));
	EXPECT_EQ(0, ibv_dealloc_pd(pd));
}

/* Shared receive queues */

FIXTURE(srq) {
	struct rig r;
	struct ibv_srq *srq;
};

FIXTURE_SETUP(srq)
{
	struct ibv_srq_init_attr init = {
		.attr = { .max_wr = 16, .max_sge = 2 },
	};

	ASSERT_EQ(0, rig_open(&self->r, 64));
	self->srq = ibv_create_srq(self->r.pd, &init);
	ASSERT_NE(NULL, self->srq);
}

FIXTURE_TEARDOWN(srq)
{
	if (self->srq)
		ibv_destroy_srq(self->srq);
	rig_close(&self->r);
}

static int post_srq_recvs(struct ibv_srq *srq, int n, uint64_t first,
			  struct ibv_recv_wr **bad)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = 64 };
	struct ibv_recv_wr wr = { .sg_list = &sge, .num_sge = 1 };
	int i, err = 0;

	for (i = 0; i < n && !err; i++) {
		wr.wr_id = first + i;
		err = ibv_post_srq_recv(srq, &wr, bad);
	}
	return err;
}

/* Sizes outside the device limits and other SRQ types are refused. */
TEST_F(srq, create_limits)
{
	struct ibv_srq_init_attr init = { .attr = { .max_wr = 0, .max_sge = 1 } };

	EXPECT_EQ(NULL, ibv_create_srq(self->r.pd, &init));
	EXPECT_EQ(EINVAL, errno);
	init.attr.max_wr = GIFT_MAX_SRQ_WR + 1;
	EXPECT_EQ(NULL, ibv_create_srq(self->r.pd, &init));
	EXPECT_EQ(EINVAL, errno);
	init.attr.max_wr = 1;
	init.attr.max_sge = GIFT_MAX_SGE + 1;
	EXPECT_EQ(NULL, ibv_create_srq(self->r.pd, &init));
	EXPECT_EQ(EINVAL, errno);
}

/* Query reports the size asked for (or more), and an unarmed limit. */
TEST_F(srq, query)
{
	struct ibv_srq_attr a;

	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_GE(a.max_wr, 16);
	EXPECT_GE(a.max_sge, 2);
	EXPECT_EQ(0, a.srq_limit);
}

/* The limit is armed, reported, disarmed with 0; above max_wr: EINVAL. */
TEST_F(srq, limit_arm)
{
	struct ibv_srq_attr a = { .srq_limit = 4 };

	ASSERT_EQ(0, ibv_modify_srq(self->srq, &a, IBV_SRQ_LIMIT));
	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_EQ(4, a.srq_limit);
	a.srq_limit = a.max_wr + 1;
	EXPECT_EQ(EINVAL, ibv_modify_srq(self->srq, &a, IBV_SRQ_LIMIT));
	a.srq_limit = 0;
	ASSERT_EQ(0, ibv_modify_srq(self->srq, &a, IBV_SRQ_LIMIT));
	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_EQ(0, a.srq_limit);
}

/* Posting past capacity fails with ENOMEM at the first WR that did not fit. */
TEST_F(srq, post_full)
{
	struct ibv_recv_wr *bad = NULL;
	struct ibv_srq_attr a;
	int i, err = 0;

	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	ASSERT_EQ(0, post_srq_recvs(self->srq, a.max_wr, 0, &bad));
	for (i = 0; i < 3 && !err; i++)
		err = post_srq_recvs(self->srq, 1, 100, &bad);
	EXPECT_EQ(ENOMEM, err);
	EXPECT_EQ(1, i);
	EXPECT_NE(NULL, bad);
	if (bad)
		EXPECT_EQ(100, bad->wr_id);
}

/* A WR with more than max_sge SGEs is refused with EINVAL, naming it. */
TEST_F(srq, post_too_many_sge)
{
	struct ibv_sge sge[GIFT_MAX_SGE + 1] = {};
	struct ibv_recv_wr wr[2] = {
		{ .wr_id = 1, .sg_list = sge, .num_sge = 1, .next = &wr[1] },
		{ .wr_id = 2, .sg_list = sge },
	}, *bad = NULL;
	struct ibv_srq_attr a;

	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	wr[1].num_sge = a.max_sge + 1;
	EXPECT_EQ(EINVAL, ibv_post_srq_recv(self->srq, wr, &bad));
	EXPECT_EQ(&wr[1], bad);
}

/* Resizing keeps posted WQEs; below their number it fails with EINVAL. */
TEST_F(srq, resize)
{
	struct ibv_recv_wr *bad;
	struct ibv_srq_attr a = { .max_wr = 100 };

	ASSERT_EQ(0, post_srq_recvs(self->srq, 10, 0, &bad));
	ASSERT_EQ(0, ibv_modify_srq(self->srq, &a, IBV_SRQ_MAX_WR));
	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_GE(a.max_wr, 100);
	a.max_wr = 9;
	EXPECT_EQ(EINVAL, ibv_modify_srq(self->srq, &a, IBV_SRQ_MAX_WR));
	a.max_wr = 10;
	ASSERT_EQ(0, ibv_modify_srq(self->srq, &a, IBV_SRQ_MAX_WR));
	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_GE(a.max_wr, 10);
	EXPECT_LT(a.max_wr, 100);
	/* Exactly the 10 kept WQEs fill what is left. */
	EXPECT_EQ(0, post_srq_recvs(self->srq, a.max_wr - 10, 10, &bad));
	EXPECT_EQ(ENOMEM, post_srq_recvs(self->srq, 1, 99, &bad));
}

/*
 * A QP on the SRQ refuses its own receives with EINVAL, keeps the SRQ
 * from being destroyed (EBUSY) and reports LAST_WQE_REACHED in ERR.
 */
TEST_F(srq, attached_qp)
{
	struct ibv_qp *qp = rig_qp(&self->r, IBV_QPT_RC, &default_cap, self->srq);
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	ASSERT_NE(NULL, qp);
	ASSERT_EQ(0, ibv_query_qp(qp, &a, IBV_QP_CAP, &init));
	EXPECT_EQ(0, init.cap.max_recv_wr);
	EXPECT_EQ(self->srq, init.srq);
	ASSERT_EQ(0, to_init(qp));
	EXPECT_EQ(EINVAL, post_recvs(qp, 1, 0));
	EXPECT_EQ(EBUSY, ibv_destroy_srq(self->srq));
	ASSERT_EQ(0, to_state(qp, IBV_QPS_ERR));
	EXPECT_TRUE(gift_wait_async(self->r.ctx, IBV_EVENT_QP_LAST_WQE_REACHED,
				    TIMEOUT_MS));
	EXPECT_EQ(0, ibv_destroy_qp(qp));
}

/* Queue pairs */

FIXTURE(qp) {
	struct rig r;
	struct ibv_qp *qp;	/* RC, default caps */
	struct ibv_qp *peer;	/* its destination */
	struct ibv_qp_cap cap;	/* qp's actual caps */
};

FIXTURE_SETUP(qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	ASSERT_EQ(0, rig_open(&self->r, 64));
	self->qp = rig_qp(&self->r, IBV_QPT_RC, &default_cap, NULL);
	ASSERT_NE(NULL, self->qp);
	self->peer = rig_qp(&self->r, IBV_QPT_RC, &default_cap, NULL);
	ASSERT_NE(NULL, self->peer);
	ASSERT_EQ(0, ibv_query_qp(self->qp, &a, IBV_QP_CAP, &init));
	self->cap = init.cap;
}

FIXTURE_TEARDOWN(qp)
{
	if (self->peer)
		ibv_destroy_qp(self->peer);
	if (self->qp)
		ibv_destroy_qp(self->qp);
	rig_close(&self->r);
}

/* Moves the fixture's QP from RESET to target, talking to peer. */
static int qp_walk(FIXTURE_DATA(qp) *self, enum ibv_qp_state target)
{
	return walk_to(&self->r, self->qp, self->peer->qp_num, target);
}

/* Caps are reported back at least as large as asked, within the limits. */
TEST_F(qp, caps_reported)
{
	EXPECT_GE(self->cap.max_send_wr, default_cap.max_send_wr);
	EXPECT_GE(self->cap.max_recv_wr, default_cap.max_recv_wr);
	EXPECT_GE(self->cap.max_send_sge, default_cap.max_send_sge);
	EXPECT_GE(self->cap.max_recv_sge, default_cap.max_recv_sge);
	EXPECT_GE(self->cap.max_inline_data, default_cap.max_inline_data);
	EXPECT_LE(self->cap.max_send_wr, GIFT_MAX_QP_WR);
	EXPECT_LE(self->cap.max_send_sge, GIFT_MAX_SGE);
	EXPECT_LE(self->cap.max_inline_data, GIFT_MAX_INLINE);
	EXPECT_EQ(IBV_QPS_RESET, qp_state(self->qp));
}

/* Each cap over its device limit fails creation with EINVAL. */
TEST_F(qp, caps_over_limits)
{
	struct ibv_qp_cap cap;
	int i;

	for (i = 0; i < 5; i++) {
		cap = default_cap;
		switch (i) {
		case 0: cap.max_send_wr = GIFT_MAX_QP_WR + 1; break;
		case 1: cap.max_recv_wr = GIFT_MAX_QP_WR + 1; break;
		case 2: cap.max_send_sge = GIFT_MAX_SGE + 1; break;
		case 3: cap.max_recv_sge = GIFT_MAX_SGE + 1; break;
		case 4: cap.max_inline_data = GIFT_MAX_INLINE + 1; break;
		}
		EXPECT_EQ(NULL, rig_qp(&self->r, IBV_QPT_RC, &cap, NULL));
		EXPECT_EQ(EINVAL, errno) TH_LOG("cap %d", i);
	}
}

/* UC (not implemented) fails with EOPNOTSUPP. */
/*
 * Writes a byte pattern over every mapping of the process's uverbs files
 * (the CQ rings): what a process may do to its own rings. Returns the
 * bytes written.
 */
static size_t corrupt_own_rings(void)
{
	unsigned long lo, hi, p;
	char line[512];
	size_t total = 0;
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "/dev/infiniband/uverbs") ||
		    sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		for (p = lo; p < hi; p++)
			*(volatile uint8_t *)p = ((p - lo) * 131 + 7) & 0xff;
		total += hi - lo;
	}
	fclose(f);
	return total;
}

/* The child of ring_corrupted_by_its_owner; its exit status says how far it got. */
static int corrupting_child(void)
{
	struct ibv_wc wc;
	struct rig r;
	struct ibv_qp *qp;

	/*
	 * The CQ rings are the subject here: the QP's queues post through
	 * commands (mapped work queues: data_test's ring fixture).
	 */
	if (setenv("GIFT_MAPPED_WQ", "0", 1) || rig_open(&r, 8))
		return 10;
	qp = rig_qp(&r, IBV_QPT_RC, &default_cap, NULL);
	if (!qp || to_init(qp))
		return 11;
	/* The rings exist and are mapped: at least the two CQs' pages. */
	if (corrupt_own_rings() < 2 * 4096)
		return 12;
	/*
	 * The consumer index now reads 0x50cd4ac7, which no consumer of
	 * these empty rings can have: the flush of the receive finds the
	 * ring "full", and the CQ fails as on an overflow.
	 */
	if (post_recvs(qp, 1, 77) || to_state(qp, IBV_QPS_ERR))
		return 13;
	if (!gift_wait_async(r.ctx, IBV_EVENT_CQ_ERR, 5000 * gift_slow()))
		return 14;
	errno = 0;
	if (ibv_poll_cq(r.rcq, 1, &wc) != -1 || errno != EOVERFLOW)
		return 15;
	if (ibv_destroy_qp(qp) || ibv_destroy_cq(r.scq) ||
	    ibv_destroy_cq(r.rcq) || ibv_dealloc_pd(r.pd) ||
	    ibv_close_device(r.ctx))
		return 16;
	return 0;
}

/*
 * A process that writes garbage over its mapped CQ rings fails its own
 * CQ (an overflow: IB_EVENT_CQ_ERR, poll fails with EOVERFLOW) and can
 * still destroy everything; another process's CQs and QPs on the same
 * device go on working, and the kernel stays clean (the runner's checks).
 */
TEST(ring_corrupted_by_its_owner)
{
	struct ibv_qp *qp;
	struct ibv_wc wc;
	struct rig r;
	int status;
	pid_t pid;

	ASSERT_EQ(0, rig_open(&r, 8));
	qp = rig_qp(&r, IBV_QPT_RC, &default_cap, NULL);
	ASSERT_NE(NULL, qp);
	ASSERT_EQ(0, to_init(qp));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(corrupting_child());
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));

	ASSERT_EQ(0, post_recvs(qp, 2, 500));
	ASSERT_EQ(0, to_state(qp, IBV_QPS_ERR));
	ASSERT_EQ(1, poll_n(r.rcq, &wc, 1));
	EXPECT_EQ(500, wc.wr_id);
	EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc.status);
	EXPECT_EQ(qp->qp_num, wc.qp_num);
	ASSERT_EQ(1, poll_n(r.rcq, &wc, 1));
	EXPECT_EQ(501, wc.wr_id);
	EXPECT_EQ(0, ibv_destroy_qp(qp));
	rig_close(&r);
}

/*
 * Destroying a QP discards its completions still queued on the CQ (they
 * refer to the QP, which is gone) and keeps the others, in order: qp and
 * peer share the CQs; both flush four receives, qp is destroyed, and QPs
 * are created and destroyed over its memory before the CQ is polled.
 */
TEST_F(qp, destroy_discards_its_completions)
{
	enum { N = 4, CHURN = 64 };
	struct ibv_wc wc[2 * N + 1];
	struct ibv_qp *churn;
	uint32_t peer_qpn = self->peer->qp_num;
	int i, n;

	ASSERT_EQ(0, to_init(self->qp));
	ASSERT_EQ(0, to_init(self->peer));
	ASSERT_EQ(0, post_recvs(self->qp, N, 100));
	ASSERT_EQ(0, post_recvs(self->peer, N, 200));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	ASSERT_EQ(0, to_state(self->peer, IBV_QPS_ERR));
	/* Both QPs' flushes are queued before qp goes away. */
	ASSERT_EQ(0, ibv_destroy_qp(self->qp));
	self->qp = NULL;
	for (i = 0; i < CHURN; i++) {
		churn = rig_qp(&self->r, IBV_QPT_RC, &default_cap, NULL);
		ASSERT_NE(NULL, churn);
		ASSERT_EQ(0, ibv_destroy_qp(churn));
	}

	n = poll_n(self->r.rcq, wc, 2 * N + 1);
	ASSERT_EQ(N, n);
	for (i = 0; i < N; i++) {
		EXPECT_EQ(200 + i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[i].status);
		EXPECT_EQ(peer_qpn, wc[i].qp_num);
	}
}

/*
 * QP types the engine does not run are refused at creation: raw packet.
 * UD is created, and walks to RTS with its Q_Key reported back
 * (ud_test.c moves data over it).
 */
TEST_F(qp, unsupported_type)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;
	struct ibv_qp *ud;

	EXPECT_EQ(NULL, rig_qp(&self->r, IBV_QPT_RAW_PACKET, &default_cap,
			       NULL));
	EXPECT_EQ(EOPNOTSUPP, errno);
	ud = rig_qp(&self->r, IBV_QPT_UD, &default_cap, NULL);
	ASSERT_NE(NULL, ud);
	EXPECT_GT(ud->qp_num, 1);
	EXPECT_EQ(0, walk_to(&self->r, ud, 0, IBV_QPS_RTS));
	ASSERT_EQ(0, ibv_query_qp(ud, &a, IBV_QP_STATE | IBV_QP_QKEY, &init));
	EXPECT_EQ(IBV_QPS_RTS, a.qp_state);
	EXPECT_EQ(0x11111111, a.qkey);
	EXPECT_EQ(IBV_QPT_UD, init.qp_type);
	EXPECT_EQ(0, ibv_destroy_qp(ud));
}

/*
 * UC QPs walk RESET -> INIT -> RTR -> RTS with exactly the UC attributes
 * (ib_modify_qp_is_ok()): each RC-only one added to a transition fails
 * it with EINVAL and leaves the QP where it was.
 */
TEST_F(qp, uc_attributes)
{
	static const int rc_rtr[] = {
		IBV_QP_MAX_DEST_RD_ATOMIC, IBV_QP_MIN_RNR_TIMER,
	};
	static const int rc_rts[] = {
		IBV_QP_TIMEOUT, IBV_QP_RETRY_CNT, IBV_QP_RNR_RETRY,
		IBV_QP_MAX_QP_RD_ATOMIC,
	};
	struct ibv_qp_attr a, rts = {
		.qp_state = IBV_QPS_RTS,
		.sq_psn = 0x654321,
		.timeout = 14,
		.retry_cnt = 7,
		.rnr_retry = 7,
		.max_rd_atomic = 4,
	};
	struct ibv_qp_init_attr init;
	struct ibv_qp *uc;
	int mask;
	size_t i;

	uc = rig_qp(&self->r, IBV_QPT_UC, &default_cap, NULL);
	ASSERT_NE(NULL, uc) TH_LOG("create UC: %s", strerror(errno));
	ASSERT_EQ(0, to_init(uc));
	rtr_attr(&self->r, self->peer->qp_num, &a, &mask);
	mask &= ~(IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	for (i = 0; i < sizeof(rc_rtr) / sizeof(rc_rtr[0]); i++) {
		EXPECT_EQ(EINVAL, ibv_modify_qp(uc, &a, mask | rc_rtr[i]))
			TH_LOG("RTR with %#x", rc_rtr[i]);
	}
	EXPECT_EQ(IBV_QPS_INIT, qp_state(uc));
	ASSERT_EQ(0, ibv_modify_qp(uc, &a, mask));
	for (i = 0; i < sizeof(rc_rts) / sizeof(rc_rts[0]); i++) {
		EXPECT_EQ(EINVAL, ibv_modify_qp(uc, &rts, IBV_QP_STATE |
						IBV_QP_SQ_PSN | rc_rts[i]))
			TH_LOG("RTS with %#x", rc_rts[i]);
	}
	EXPECT_EQ(IBV_QPS_RTR, qp_state(uc));
	ASSERT_EQ(0, ibv_modify_qp(uc, &rts, IBV_QP_STATE | IBV_QP_SQ_PSN));
	ASSERT_EQ(0, ibv_query_qp(uc, &a, IBV_QP_STATE | IBV_QP_SQ_PSN,
				  &init));
	EXPECT_EQ(IBV_QPS_RTS, a.qp_state);
	EXPECT_EQ(0x654321, a.sq_psn);
	EXPECT_EQ(IBV_QPT_UC, init.qp_type);
	/* Even SQD -> SQD takes no RC-only attribute. */
	ASSERT_EQ(0, to_state(uc, IBV_QPS_SQD));
	EXPECT_EQ(EINVAL, ibv_modify_qp(uc, &rts, IBV_QP_TIMEOUT));
	EXPECT_EQ(0, ibv_destroy_qp(uc));
}

/*
 * A UC QP takes SEND and RDMA WRITE, with and without immediate; RDMA
 * READ, the atomics, SEND_WITH_INV and ATOMIC_WRITE fail at post time
 * with EINVAL, through uverbs, and queue nothing: entering ERR flushes
 * exactly the four WRs taken (posted in SQD, where nothing starts).
 */
TEST_F(qp, uc_post_opcodes)
{
	static const enum ibv_wr_opcode bad[] = {
		IBV_WR_RDMA_READ, IBV_WR_ATOMIC_CMP_AND_SWP,
		IBV_WR_ATOMIC_FETCH_AND_ADD, IBV_WR_SEND_WITH_INV,
		IBV_WR_ATOMIC_WRITE,
	};
	static const enum ibv_wr_opcode good[] = {
		IBV_WR_SEND, IBV_WR_SEND_WITH_IMM, IBV_WR_RDMA_WRITE,
		IBV_WR_RDMA_WRITE_WITH_IMM,
	};
	struct ibv_wc wc[8];
	struct ibv_qp *uc;
	size_t i;

	uc = rig_qp(&self->r, IBV_QPT_UC, &default_cap, NULL);
	ASSERT_NE(NULL, uc);
	ASSERT_EQ(0, walk_to(&self->r, uc, self->peer->qp_num, IBV_QPS_SQD));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(EINVAL, post_send_op(uc, bad[i], 10 + i))
			TH_LOG("opcode %d", bad[i]);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		EXPECT_EQ(0, post_send_op(uc, good[i], 20 + i))
			TH_LOG("opcode %d", good[i]);
	}
	ASSERT_EQ(0, to_state(uc, IBV_QPS_ERR));
	ASSERT_EQ(4, poll_n(self->r.scq, wc, 4));
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(20 + i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[i].status);
	}
	EXPECT_EQ(0, ibv_poll_cq(self->r.scq, 8, wc));
	EXPECT_EQ(0, ibv_destroy_qp(uc));
}

/* QP numbers are never 0 or 1 and never repeat among live QPs. */
TEST_F(qp, qpn_distinct)
{
	enum { N = 32 };
	struct ibv_qp *qps[N];
	int i, j;

	for (i = 0; i < N; i++) {
		qps[i] = rig_qp(&self->r, IBV_QPT_RC, &default_cap, NULL);
		ASSERT_NE(NULL, qps[i]);
		EXPECT_GT(qps[i]->qp_num, 1);
		EXPECT_LE(qps[i]->qp_num, 0xffffff);
		for (j = 0; j < i; j++)
			EXPECT_NE(qps[j]->qp_num, qps[i]->qp_num);
	}
	for (i = 0; i < N; i++)
		EXPECT_EQ(0, ibv_destroy_qp(qps[i]));
}

/*
 * RESET -> INIT -> RTR -> RTS -> SQD -> RTS -> ERR -> RESET, each state
 * and the attributes given on the way reported back by query_qp.
 */
TEST_F(qp, state_machine_walk)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;
	int mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_SQ_PSN |
		   IBV_QP_RQ_PSN | IBV_QP_DEST_QPN;

	ASSERT_EQ(0, to_init(self->qp));
	ASSERT_EQ(0, ibv_query_qp(self->qp, &a, mask, &init));
	EXPECT_EQ(IBV_QPS_INIT, a.qp_state);
	EXPECT_EQ(1, a.port_num);
	EXPECT_EQ(0, a.pkey_index);
	EXPECT_EQ(IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
		  IBV_ACCESS_REMOTE_ATOMIC, a.qp_access_flags);

	ASSERT_EQ(0, to_rtr(&self->r, self->qp, self->peer->qp_num));
	ASSERT_EQ(0, ibv_query_qp(self->qp, &a, mask, &init));
	EXPECT_EQ(IBV_QPS_RTR, a.qp_state);
	EXPECT_EQ(IBV_MTU_1024, a.path_mtu);
	EXPECT_EQ(self->peer->qp_num, a.dest_qp_num);
	EXPECT_EQ(0x123456, a.rq_psn);
	EXPECT_EQ(4, a.max_dest_rd_atomic);
	EXPECT_EQ(12, a.min_rnr_timer);
	EXPECT_EQ(1, a.ah_attr.is_global);
	EXPECT_EQ(self->r.gid_index, a.ah_attr.grh.sgid_index);
	EXPECT_EQ(0, memcmp(&self->r.gid, &a.ah_attr.grh.dgid, sizeof(a.ah_attr.grh.dgid)));

	ASSERT_EQ(0, to_rts(self->qp));
	ASSERT_EQ(0, ibv_query_qp(self->qp, &a, mask, &init));
	EXPECT_EQ(IBV_QPS_RTS, a.qp_state);
	EXPECT_EQ(0x654321, a.sq_psn);
	EXPECT_EQ(14, a.timeout);
	EXPECT_EQ(7, a.retry_cnt);
	EXPECT_EQ(7, a.rnr_retry);
	EXPECT_EQ(4, a.max_rd_atomic);

	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_SQD));
	EXPECT_EQ(IBV_QPS_SQD, qp_state(self->qp));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_RTS));
	EXPECT_EQ(IBV_QPS_RTS, qp_state(self->qp));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_EQ(IBV_QPS_ERR, qp_state(self->qp));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_RESET));
	EXPECT_EQ(IBV_QPS_RESET, qp_state(self->qp));
	/* And around again from RESET. */
	EXPECT_EQ(0, qp_walk(self, IBV_QPS_RTS));
}

/* Transitions the state table does not allow fail with EINVAL. */
TEST_F(qp, invalid_transitions)
{
	EXPECT_EQ(EINVAL, to_state(self->qp, IBV_QPS_RTS));
	EXPECT_EQ(EINVAL, to_state(self->qp, IBV_QPS_RTR));
	EXPECT_EQ(EINVAL, to_state(self->qp, IBV_QPS_SQD));
	EXPECT_EQ(IBV_QPS_RESET, qp_state(self->qp));
	ASSERT_EQ(0, to_init(self->qp));
	EXPECT_EQ(EINVAL, to_state(self->qp, IBV_QPS_RTS));
	EXPECT_EQ(IBV_QPS_INIT, qp_state(self->qp));
}

/* A transition without its required attributes fails with EINVAL. */
TEST_F(qp, missing_required_attrs)
{
	struct ibv_qp_attr a;
	int mask;

	/* RESET -> INIT needs the port, P_Key index and access flags. */
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, IBV_QP_STATE | IBV_QP_PORT));
	ASSERT_EQ(0, to_init(self->qp));
	/* INIT -> RTR needs the address vector. */
	rtr_attr(&self->r, self->peer->qp_num, &a, &mask);
	EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask & ~IBV_QP_AV));
	EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask & ~IBV_QP_DEST_QPN));
	EXPECT_EQ(IBV_QPS_INIT, qp_state(self->qp));
}

/* Out-of-range port, pkey_index, access flags: EINVAL on the way to INIT. */
TEST_F(qp, bad_init_attrs)
{
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		   IBV_QP_ACCESS_FLAGS;
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 2 };

	EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask));
	a.port_num = 1;
	a.pkey_index = 1;
	EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask));
	a.pkey_index = 0;
	a.qp_access_flags = IBV_ACCESS_MW_BIND;
	EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask));
	EXPECT_EQ(IBV_QPS_RESET, qp_state(self->qp));
}

/* Out-of-range path_mtu, RD atomic depth, RNR timer: EINVAL to RTR. */
TEST_F(qp, bad_rtr_attrs)
{
	struct ibv_qp_attr a;
	int mask, i;

	ASSERT_EQ(0, to_init(self->qp));
	for (i = 0; i < 4; i++) {
		rtr_attr(&self->r, self->peer->qp_num, &a, &mask);
		switch (i) {
		case 0: a.path_mtu = 0; break;
		case 1: a.path_mtu = IBV_MTU_4096 + 1; break;
		case 2: a.max_dest_rd_atomic = GIFT_MAX_RD_ATOM + 1; break;
		case 3: a.min_rnr_timer = 32; break;
		}
		EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask)) TH_LOG("case %d", i);
	}
	EXPECT_EQ(IBV_QPS_INIT, qp_state(self->qp));
}

/* Out-of-range retry counts, timeout, RD atomic depth: EINVAL to RTS. */
TEST_F(qp, bad_rts_attrs)
{
	int mask = IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT |
		   IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
	struct ibv_qp_attr a;
	int i;

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_RTR));
	for (i = 0; i < 4; i++) {
		memset(&a, 0, sizeof(a));
		a.qp_state = IBV_QPS_RTS;
		switch (i) {
		case 0: a.retry_cnt = 8; break;
		case 1: a.rnr_retry = 8; break;
		case 2: a.timeout = 32; break;
		case 3: a.max_rd_atomic = GIFT_MAX_RD_ATOM + 1; break;
		}
		EXPECT_EQ(EINVAL, ibv_modify_qp(self->qp, &a, mask)) TH_LOG("case %d", i);
	}
	EXPECT_EQ(IBV_QPS_RTR, qp_state(self->qp));
}

/* Sends before RTS fail with EINVAL, receives only in RESET. */
TEST_F(qp, post_state_checks)
{
	EXPECT_EQ(EINVAL, post_sends(self->qp, 1, 0));
	EXPECT_EQ(EINVAL, post_recvs(self->qp, 1, 0));
	ASSERT_EQ(0, to_init(self->qp));
	EXPECT_EQ(EINVAL, post_sends(self->qp, 1, 0));
	EXPECT_EQ(0, post_recvs(self->qp, 1, 0));
	ASSERT_EQ(0, to_rtr(&self->r, self->qp, self->peer->qp_num));
	EXPECT_EQ(EINVAL, post_sends(self->qp, 1, 0));
	EXPECT_EQ(0, post_recvs(self->qp, 1, 1));
	ASSERT_EQ(0, to_rts(self->qp));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_SQD));
	EXPECT_EQ(0, post_sends(self->qp, 1, 0));
}

/* A WR with too many SGEs fails with EINVAL; bad_wr names it. */
TEST_F(qp, post_too_many_sge)
{
	struct ibv_sge sge[GIFT_MAX_SGE + 1] = {};
	struct ibv_send_wr swr[2] = {
		{ .wr_id = 1, .sg_list = sge, .num_sge = 1, .next = &swr[1] },
		{ .wr_id = 2, .sg_list = sge },
	}, *sbad = NULL;
	struct ibv_recv_wr rwr[2] = {
		{ .wr_id = 1, .sg_list = sge, .num_sge = 1, .next = &rwr[1] },
		{ .wr_id = 2, .sg_list = sge },
	}, *rbad = NULL;

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	swr[1].num_sge = self->cap.max_send_sge + 1;
	rwr[1].num_sge = self->cap.max_recv_sge + 1;
	EXPECT_EQ(EINVAL, ibv_post_send(self->qp, swr, &sbad));
	EXPECT_EQ(&swr[1], sbad);
	EXPECT_EQ(EINVAL, ibv_post_recv(self->qp, rwr, &rbad));
	EXPECT_EQ(&rwr[1], rbad);
	/* The first WR of each chain was posted, and is flushed. */
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_EQ(1, gift_drain_cq(self->r.scq));
	EXPECT_EQ(1, gift_drain_cq(self->r.rcq));
}

/* Posting to a full queue fails with ENOMEM on the first WR that did not fit. */
TEST_F(qp, post_queue_full)
{
	struct ibv_send_wr swr = { .wr_id = 77, .opcode = IBV_WR_SEND }, *sbad;
	struct ibv_recv_wr rwr = { .wr_id = 78 }, *rbad;

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	ASSERT_EQ(0, post_sends(self->qp, self->cap.max_send_wr, 0));
	ASSERT_EQ(0, post_recvs(self->qp, self->cap.max_recv_wr, 0));
	EXPECT_EQ(ENOMEM, ibv_post_send(self->qp, &swr, &sbad));
	EXPECT_EQ(&swr, sbad);
	EXPECT_EQ(ENOMEM, ibv_post_recv(self->qp, &rwr, &rbad));
	EXPECT_EQ(&rwr, rbad);
}

/* Inline data up to the cap is taken; one byte more fails with EINVAL. */
TEST_F(qp, post_inline)
{
	struct ibv_sge sge[2] = {
		{ .addr = (uintptr_t)buf, .length = 1 },
		{ .addr = (uintptr_t)buf + 1 },
	};
	struct ibv_send_wr wr = {
		.wr_id = 5,
		.sg_list = sge,
		.num_sge = 2,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_INLINE,
	}, *bad;

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	sge[1].length = self->cap.max_inline_data - 1;
	EXPECT_EQ(0, ibv_post_send(self->qp, &wr, &bad));
	sge[1].length++;
	EXPECT_EQ(EINVAL, ibv_post_send(self->qp, &wr, &bad));
	/* Inline data is only for opcodes that carry data from here. */
	sge[1].length = 7;
	wr.opcode = IBV_WR_RDMA_READ;
	EXPECT_EQ(EINVAL, ibv_post_send(self->qp, &wr, &bad));
}

/*
 * Unreadable inline data: the kernel's post_send command copies it in and
 * fails with EFAULT at post time. (A context opened with GIFT_MAPPED_WQ=0
 * posts through that command. With a mapped send queue the provider
 * copies inline data in the process, as rxe's and mlx5's do, and a bad
 * pointer faults there, as any the application passes.)
 */
TEST(post_inline_efault_command_path)
{
	struct ibv_sge sge = { .addr = 8, .length = 16 };
	struct ibv_send_wr wr = {
		.wr_id = 5,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
		.send_flags = IBV_SEND_INLINE,
	}, *bad;
	struct ibv_qp *qp, *peer;
	struct rig r;
	int ret;

	ASSERT_EQ(0, setenv("GIFT_MAPPED_WQ", "0", 1));
	ret = rig_open(&r, 8);
	unsetenv("GIFT_MAPPED_WQ");
	ASSERT_EQ(0, ret);
	qp = rig_qp(&r, IBV_QPT_RC, &default_cap, NULL);
	peer = rig_qp(&r, IBV_QPT_RC, &default_cap, NULL);
	ASSERT_NE(NULL, qp);
	ASSERT_NE(NULL, peer);
	ASSERT_EQ(0, walk_to(&r, qp, peer->qp_num, IBV_QPS_RTS));
	EXPECT_EQ(EFAULT, ibv_post_send(qp, &wr, &bad));
	EXPECT_EQ(&wr, bad);
	EXPECT_EQ(0, ibv_destroy_qp(peer));
	EXPECT_EQ(0, ibv_destroy_qp(qp));
	rig_close(&r);
}

/* An atomic must carry 8 bytes; a misaligned remote address is posted. */
TEST_F(qp, post_atomic)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = 4 };
	struct ibv_send_wr wr = {
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD,
		.wr.atomic = { .remote_addr = 0x1003, .rkey = 1 },
	}, *bad;

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	EXPECT_EQ(EINVAL, ibv_post_send(self->qp, &wr, &bad));
	sge.length = 8;
	EXPECT_EQ(0, ibv_post_send(self->qp, &wr, &bad));
}

/*
 * Entering ERR completes every posted receive and send, unsignaled ones
 * included, with WR_FLUSH_ERR: exactly N + M completions, in order, with
 * the opcode of each WR.
 */
TEST_F(qp, flush_on_error)
{
	static const struct {
		enum ibv_wr_opcode wr;
		enum ibv_wc_opcode wc;
	} ops[] = {
		{ IBV_WR_SEND, IBV_WC_SEND },
		{ IBV_WR_RDMA_WRITE, IBV_WC_RDMA_WRITE },
		{ IBV_WR_RDMA_READ, IBV_WC_RDMA_READ },
		{ IBV_WR_ATOMIC_FETCH_AND_ADD, IBV_WC_FETCH_ADD },
		{ IBV_WR_ATOMIC_CMP_AND_SWP, IBV_WC_COMP_SWAP },
		{ IBV_WR_SEND_WITH_IMM, IBV_WC_SEND },
		{ IBV_WR_RDMA_WRITE_WITH_IMM, IBV_WC_RDMA_WRITE },
	};
	enum { N = 5, M = sizeof(ops) / sizeof(ops[0]) };
	struct ibv_wc wc[N + M + 1];
	int i;

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_RTR));
	ASSERT_EQ(0, post_recvs(self->qp, N, 1000));
	ASSERT_EQ(0, to_rts(self->qp));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_SQD));
	for (i = 0; i < M; i++)
		ASSERT_EQ(0, post_send_op(self->qp, ops[i].wr, 2000 + i));
	EXPECT_EQ(0, gift_drain_cq(self->r.scq));
	EXPECT_EQ(0, gift_drain_cq(self->r.rcq));

	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	ASSERT_EQ(N, poll_n(self->r.rcq, wc, N));
	for (i = 0; i < N; i++) {
		EXPECT_EQ(1000 + i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[i].status);
		EXPECT_EQ(IBV_WC_RECV, wc[i].opcode);
		EXPECT_EQ(self->qp->qp_num, wc[i].qp_num);
	}
	ASSERT_EQ(M, poll_n(self->r.scq, wc, M));
	for (i = 0; i < M; i++) {
		EXPECT_EQ(2000 + i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[i].status);
		EXPECT_EQ(ops[i].wc, wc[i].opcode) TH_LOG("op %d", i);
		EXPECT_EQ(self->qp->qp_num, wc[i].qp_num);
	}
	EXPECT_EQ(0, gift_drain_cq(self->r.scq));
	EXPECT_EQ(0, gift_drain_cq(self->r.rcq));
}

/* In ERR, every WR posted completes at once with WR_FLUSH_ERR. */
TEST_F(qp, post_in_error_flushes)
{
	struct ibv_wc wc[2];

	ASSERT_EQ(0, qp_walk(self, IBV_QPS_RTS));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	ASSERT_EQ(0, post_sends(self->qp, 1, 11));
	ASSERT_EQ(0, post_recvs(self->qp, 2, 21));
	ASSERT_EQ(1, poll_n(self->r.scq, wc, 1));
	EXPECT_EQ(11, wc[0].wr_id);
	EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[0].status);
	EXPECT_EQ(IBV_WC_SEND, wc[0].opcode);
	ASSERT_EQ(2, poll_n(self->r.rcq, wc, 2));
	EXPECT_EQ(21, wc[0].wr_id);
	EXPECT_EQ(22, wc[1].wr_id);
	EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[1].status);
}

/* RESET empties the queues without completions; the QP is reusable. */
TEST_F(qp, reset_discards)
{
	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	ASSERT_EQ(0, post_recvs(self->qp, 3, 0));
	ASSERT_EQ(0, post_sends(self->qp, 3, 0));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_RESET));
	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	ASSERT_EQ(0, post_sends(self->qp, self->cap.max_send_wr, 0));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_EQ(self->cap.max_send_wr, gift_drain_cq(self->r.scq));
	EXPECT_EQ(0, gift_drain_cq(self->r.rcq));
}

/* A QP is destroyed with WRs still queued on both of its queues. */
TEST_F(qp, destroy_with_wrs_posted)
{
	ASSERT_EQ(0, qp_walk(self, IBV_QPS_SQD));
	ASSERT_EQ(0, post_recvs(self->qp, 4, 0));
	ASSERT_EQ(0, post_sends(self->qp, 4, 0));
	EXPECT_EQ(0, ibv_destroy_qp(self->qp));
	self->qp = NULL;
	EXPECT_EQ(0, gift_drain_cq(self->r.scq));
}

/* A CQ in use by a QP cannot be destroyed: EBUSY. */
TEST_F(qp, destroy_cq_in_use)
{
	EXPECT_EQ(EBUSY, ibv_destroy_cq(self->r.scq));
	EXPECT_EQ(EBUSY, ibv_destroy_cq(self->r.rcq));
}

/* Moving a QP to ERR by hand is no fatal error: no QP_FATAL event. */
TEST_F(qp, user_error_no_fatal_event)
{
	ASSERT_EQ(0, qp_walk(self, IBV_QPS_RTS));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_FALSE(gift_wait_async(self->r.ctx, IBV_EVENT_QP_FATAL, 300));
}

/* Completion channel and CQ overflow */

FIXTURE(chan) {
	struct rig r;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;	/* on ch; the QP's receive CQ */
	struct ibv_qp *qp;
};

FIXTURE_SETUP(chan)
{
	struct ibv_qp_init_attr init = { .cap = default_cap, .qp_type = IBV_QPT_RC };

	ASSERT_EQ(0, rig_open(&self->r, 16));
	self->ch = ibv_create_comp_channel(self->r.ctx);
	ASSERT_NE(NULL, self->ch);
	self->cq = ibv_create_cq(self->r.ctx, 16, NULL, self->ch, 0);
	ASSERT_NE(NULL, self->cq);
	init.send_cq = self->r.scq;
	init.recv_cq = self->cq;
	self->qp = ibv_create_qp(self->r.pd, &init);
	ASSERT_NE(NULL, self->qp);
	ASSERT_EQ(0, to_init(self->qp));
}

FIXTURE_TEARDOWN(chan)
{
	if (self->qp)
		ibv_destroy_qp(self->qp);
	if (self->cq)
		ibv_destroy_cq(self->cq);
	if (self->ch)
		ibv_destroy_comp_channel(self->ch);
	rig_close(&self->r);
}

/* An armed CQ signals its channel once, for the next completion only. */
TEST_F(chan, next_completion_event)
{
	ASSERT_EQ(0, post_recvs(self->qp, 1, 1));
	EXPECT_FALSE(gift_cq_event(self->ch, 100));
	ASSERT_EQ(0, ibv_req_notify_cq(self->cq, 0));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_TRUE(gift_cq_event(self->ch, TIMEOUT_MS));
	/* Not re-armed: a further completion raises no event. */
	ASSERT_EQ(0, post_recvs(self->qp, 1, 2));
	EXPECT_FALSE(gift_cq_event(self->ch, 200));
	EXPECT_EQ(2, gift_drain_cq(self->cq));
}

/* A solicited-only CQ is signalled by an error completion (a flush). */
TEST_F(chan, solicited_fires_on_error)
{
	ASSERT_EQ(0, post_recvs(self->qp, 1, 1));
	ASSERT_EQ(0, ibv_req_notify_cq(self->cq, 1));
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_TRUE(gift_cq_event(self->ch, TIMEOUT_MS));
	EXPECT_EQ(1, gift_drain_cq(self->cq));
}

/*
 * A CQ that overflows goes to error (IBTA 11.6.2): IBV_EVENT_CQ_ERR is
 * reported once, and from then on polling and resizing it fail with
 * EOVERFLOW instead of returning a ring with a hole in it. Its QP, which
 * the consumer already moved to ERR (that is what flushed the 16
 * receives), gets no IBV_EVENT_QP_FATAL. net_test's
 * cq_overflow_errors_its_qps covers QPs that were running.
 */
TEST_F(chan, overflow)
{
	struct ibv_wc wc[16];
	int n;

	ASSERT_EQ(0, post_recvs(self->qp, 16, 0));
	ASSERT_EQ(0, ibv_resize_cq(self->cq, 4));
	n = self->cq->cqe;
	ASSERT_LT(n, 16);
	ASSERT_EQ(0, to_state(self->qp, IBV_QPS_ERR));
	EXPECT_TRUE(gift_wait_async(self->r.ctx, IBV_EVENT_CQ_ERR, TIMEOUT_MS));
	EXPECT_FALSE(gift_wait_async(self->r.ctx, IBV_EVENT_QP_FATAL, 300));
	errno = 0;
	EXPECT_EQ(-1, ibv_poll_cq(self->cq, 16, wc));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(EOVERFLOW, ibv_resize_cq(self->cq, 16));
	EXPECT_EQ(n, self->cq->cqe);
	/* More flushes find it in error: no second event. */
	ASSERT_EQ(0, post_recvs(self->qp, 1, 16));
	EXPECT_FALSE(gift_wait_async(self->r.ctx, IBV_EVENT_CQ_ERR, 300));
	errno = 0;
	EXPECT_EQ(-1, ibv_poll_cq(self->cq, 16, wc));
	EXPECT_EQ(EOVERFLOW, errno);
}

/* Kernel memory of queue rings */

#define MIB		(1LL << 20)
#define CG_ROOT		"/sys/fs/cgroup"

/*
 * The rings behind CQs and QPs are kernel memory a user sizes: it is
 * charged to the creator's memory cgroup (__GFP_ACCOUNT), and a creation
 * that would exceed memory.max fails with ENOMEM, neither invoking the
 * OOM killer nor warning. On one CPU, so that memcg's per-CPU charge
 * batch blurs memory.current by at most 64 pages.
 */
FIXTURE(memcg) {
	struct rig r;
	char cg[256];
};

FIXTURE_SETUP(memcg)
{
	char name[64];
	cpu_set_t cpus;

	ASSERT_EQ(0, rig_open(&self->r, 16));
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));
	snprintf(name, sizeof(name), "qp_test.%d", getpid());
	ASSERT_EQ(0, gift_memcg_create(name, self->cg, sizeof(self->cg)));
	ASSERT_EQ(0, gift_memcg_move(self->cg, getpid()));
}

FIXTURE_TEARDOWN(memcg)
{
	gift_memcg_move(CG_ROOT, getpid());
	rig_close(&self->r);
	gift_memcg_destroy(self->cg);
}

/*
 * A CQ of max_cqe entries (65536 completions of 48 bytes each, struct
 * ib_uverbs_wc in the ring the provider maps) and a QP of max_qp_wr WRs of 32 SGEs both ways (16384 * 2 * 32 * 16
 * bytes of SGEs alone) raise memory.current by their ring sizes, and
 * give it back when destroyed.
 */
TEST_F(memcg, rings_charged)
{
	struct ibv_qp_cap cap = {
		.max_send_wr = GIFT_MAX_QP_WR,
		.max_recv_wr = GIFT_MAX_QP_WR,
		.max_send_sge = GIFT_MAX_SGE,
		.max_recv_sge = GIFT_MAX_SGE,
	};
	long long before, during, after;
	struct ibv_cq *cq;
	struct ibv_qp *qp;

	before = gift_memcg_current(self->cg);
	ASSERT_LT(0, before);
	cq = ibv_create_cq(self->r.ctx, GIFT_MAX_CQE, NULL, NULL, 0);
	ASSERT_NE(NULL, cq);
	during = gift_memcg_current(self->cg);
	ASSERT_EQ(0, ibv_destroy_cq(cq));
	after = gift_memcg_current(self->cg);
	TH_LOG("CQ of %d: %lld -> %lld -> %lld bytes", GIFT_MAX_CQE, before,
	       during, after);
	EXPECT_LE(before + GIFT_MAX_CQE * 48LL, during);
	EXPECT_GT(before + 16 * MIB, during);
	EXPECT_GT(before + MIB, after);

	before = gift_memcg_current(self->cg);
	qp = rig_qp(&self->r, IBV_QPT_RC, &cap, NULL);
	ASSERT_NE(NULL, qp);
	during = gift_memcg_current(self->cg);
	ASSERT_EQ(0, ibv_destroy_qp(qp));
	after = gift_memcg_current(self->cg);
	TH_LOG("QP of %d/%d: %lld -> %lld -> %lld bytes", GIFT_MAX_QP_WR,
	       GIFT_MAX_QP_WR, before, during, after);
	EXPECT_LE(before + 2LL * GIFT_MAX_QP_WR * GIFT_MAX_SGE * 16, during);
	EXPECT_GT(before + 64 * MIB, during);
	EXPECT_GT(before + MIB, after);
}

/* Over memory.max: ENOMEM for the CQ, the QP and a CQ resize. */
TEST_F(memcg, rings_over_limit_enomem)
{
	struct ibv_qp_cap cap = {
		.max_send_wr = GIFT_MAX_QP_WR,
		.max_recv_wr = GIFT_MAX_QP_WR,
		.max_send_sge = GIFT_MAX_SGE,
		.max_recv_sge = GIFT_MAX_SGE,
	};
	char path[300];
	struct ibv_cq *cq;
	long long cur;

	cur = gift_memcg_current(self->cg);
	ASSERT_LT(0, cur);
	snprintf(path, sizeof(path), "%s/memory.max", self->cg);
	ASSERT_EQ(0, gift_write_file(path, "%lld", cur + 2 * MIB));
	errno = 0;
	EXPECT_EQ(NULL, ibv_create_cq(self->r.ctx, GIFT_MAX_CQE, NULL, NULL, 0));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, rig_qp(&self->r, IBV_QPT_RC, &cap, NULL));
	EXPECT_EQ(ENOMEM, errno);
	cq = ibv_create_cq(self->r.ctx, 16, NULL, NULL, 0);
	ASSERT_NE(NULL, cq);
	EXPECT_EQ(ENOMEM, ibv_resize_cq(cq, GIFT_MAX_CQE));
	EXPECT_EQ(16, cq->cqe);
	EXPECT_EQ(0, ibv_destroy_cq(cq));
	ASSERT_EQ(0, gift_write_file(path, "max"));
}

/*
 * A resize copies the queued completions mostly without the CQ's lock,
 * a bounded number at a time with it (gift_queue_copy_locked()): 1000
 * flushed receives survive growing to 4096 and shrinking to 1024 (not
 * to 999), in order.
 */
TEST_F(chan, resize_keeps_many_in_order)
{
	struct ibv_qp_init_attr init = {
		.send_cq = self->r.scq,
		.cap = default_cap,
		.qp_type = IBV_QPT_RC,
	};
	static struct ibv_wc wc[1000];
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	int i;

	cq = ibv_create_cq(self->r.ctx, 1024, NULL, NULL, 0);
	ASSERT_NE(NULL, cq);
	init.recv_cq = cq;
	init.cap.max_recv_wr = 1024;
	qp = ibv_create_qp(self->r.pd, &init);
	ASSERT_NE(NULL, qp);
	ASSERT_EQ(0, to_init(qp));
	ASSERT_EQ(0, post_recvs(qp, 1000, 0));
	ASSERT_EQ(0, to_state(qp, IBV_QPS_ERR));
	EXPECT_EQ(EINVAL, ibv_resize_cq(cq, 999));
	ASSERT_EQ(0, ibv_resize_cq(cq, 4096));
	EXPECT_EQ(4096, cq->cqe);
	ASSERT_EQ(0, ibv_resize_cq(cq, 1000));
	EXPECT_EQ(1024, cq->cqe);
	ASSERT_EQ(1000, poll_n(cq, wc, 1000));
	for (i = 0; i < 1000; i++) {
		EXPECT_EQ(i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_WR_FLUSH_ERR, wc[i].status);
	}
	EXPECT_EQ(0, ibv_destroy_qp(qp));
	EXPECT_EQ(0, ibv_destroy_cq(cq));
}

/* Unreliable datagram QPs and address handles */

/*
 * Driver input the provider never sends: the kernel must refuse non-zero
 * bytes after a verb's core command (EINVAL) and accept zeros, for every
 * verb. libgift sends none, so the commands are written by hand to the
 * context's uverbs file (the legacy write() ABI: header, core command,
 * driver words).
 */
struct raw_cmd {
	struct ib_uverbs_cmd_hdr hdr;
	union {
		struct ib_uverbs_alloc_pd alloc_pd;
		struct ib_uverbs_resize_cq resize_cq;
		struct ib_uverbs_modify_srq modify_srq;
	};
	__u64 driver[2];
};

/*
 * Issues @command: @core bytes of core command plus @extra driver words,
 * answering into @resp_len bytes at the core command's response pointer.
 * Returns 0 or the errno.
 */
static int raw_write(struct ibv_context *ctx, __u32 command, struct raw_cmd *c,
		     size_t core, int extra, size_t resp_len)
{
	size_t len = sizeof(c->hdr) + core + extra * sizeof(__u64);
	char buf[sizeof(*c)];

	c->hdr.command = command;
	c->hdr.in_words = len / 4;
	c->hdr.out_words = resp_len / 4;
	/* The driver words follow the core command directly. */
	memcpy(buf, c, sizeof(c->hdr) + core);
	memcpy(buf + sizeof(c->hdr) + core, c->driver, extra * sizeof(__u64));
	return write(ctx->cmd_fd, buf, len) == (ssize_t)len ? 0 : errno;
}

FIXTURE(udata) {
	struct rig r;
	struct ibv_srq *srq;
};

FIXTURE_SETUP(udata)
{
	struct ibv_srq_init_attr init = { .attr = { .max_wr = 16, .max_sge = 1 } };

	ASSERT_EQ(0, rig_open(&self->r, 64));
	self->srq = ibv_create_srq(self->r.pd, &init);
	ASSERT_NE(NULL, self->srq);
}

FIXTURE_TEARDOWN(udata)
{
	if (self->srq)
		ibv_destroy_srq(self->srq);
	rig_close(&self->r);
}

TEST_F(udata, alloc_pd)
{
	struct ib_uverbs_alloc_pd_resp resp = { .pd_handle = ~0u };
	struct {
		struct ib_uverbs_cmd_hdr hdr;
		struct ib_uverbs_dealloc_pd cmd;
	} dc = {
		.hdr = { .command = IB_USER_VERBS_CMD_DEALLOC_PD,
			 .in_words = sizeof(dc) / 4 },
	};
	struct raw_cmd c = {};

	c.alloc_pd.response = (uintptr_t)&resp;
	c.driver[0] = 0x5a;
	EXPECT_EQ(EINVAL, raw_write(self->r.ctx, IB_USER_VERBS_CMD_ALLOC_PD, &c,
				    sizeof(c.alloc_pd), 1, sizeof(resp)));
	c.driver[0] = 0;
	ASSERT_EQ(0, raw_write(self->r.ctx, IB_USER_VERBS_CMD_ALLOC_PD, &c,
			       sizeof(c.alloc_pd), 1, sizeof(resp)));
	ASSERT_NE(~0u, resp.pd_handle);
	dc.cmd.pd_handle = resp.pd_handle;
	EXPECT_EQ((ssize_t)sizeof(dc), write(self->r.ctx->cmd_fd, &dc, sizeof(dc)));
}

/*
 * resize_cq of a mapped CQ (the rig's are) takes the two steps of
 * gift-abi.h: a step it cannot take, or no step, fails with EINVAL and
 * leaves the CQ as it was; an aborted or mismatched commit moves nothing.
 */
TEST_F(udata, resize_cq)
{
	struct {
		struct ib_uverbs_resize_cq_resp core;
		struct gift_cq_ring_resp ring;
	} resp;
	struct ibv_cq *cq = self->r.scq;
	const int cqe = cq->cqe;
	struct raw_cmd c = {};
	struct ibv_wc wc;

	c.resize_cq.response = (uintptr_t)&resp;
	c.resize_cq.cq_handle = cq->handle;
	c.resize_cq.cqe = 128;
#define RESIZE(flags, extra, out) ({					\
	c.driver[0] = (flags);						\
	memset(&resp, 0xa5, sizeof(resp));				\
	raw_write(self->r.ctx, IB_USER_VERBS_CMD_RESIZE_CQ, &c,	\
		  sizeof(c.resize_cq), (extra), (out)); })
	c.driver[1] = 1;
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_PREPARE, 2, sizeof(resp)));
	c.driver[1] = 0;
	EXPECT_EQ(EINVAL, RESIZE(0, 2, sizeof(resp)));
	EXPECT_EQ(EINVAL, RESIZE(0, 0, sizeof(resp)));
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_PREPARE | GIFT_RESIZE_CQ_COMMIT,
				 1, sizeof(resp)));
	EXPECT_EQ(EINVAL, RESIZE(1 << 3, 1, sizeof(resp)));
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_ABORT | 1ull << 32, 1,
				 sizeof(resp)));
	/* No answer room for the ring, and a commit with nothing prepared. */
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_PREPARE, 1, sizeof(resp.core)));
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_COMMIT, 1, sizeof(resp)));

	ASSERT_EQ(0, RESIZE(GIFT_RESIZE_CQ_PREPARE, 1, sizeof(resp)));
	EXPECT_EQ(cqe, resp.core.cqe);
	EXPECT_EQ(128, resp.ring.size);
	EXPECT_LE(GIFT_CQ_RING_WC_OFFSET + 128 * sizeof(struct ib_uverbs_wc),
		  resp.ring.mmap_length);
	EXPECT_EQ(0, RESIZE(GIFT_RESIZE_CQ_ABORT, 1, sizeof(resp)));
	EXPECT_EQ(cqe, resp.core.cqe);
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_COMMIT, 1, sizeof(resp)));
	/* Prepared for 128, committed for 256: dropped, nothing moves. */
	ASSERT_EQ(0, RESIZE(GIFT_RESIZE_CQ_PREPARE, 1, sizeof(resp)));
	c.resize_cq.cqe = 256;
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_COMMIT, 1, sizeof(resp)));
	c.resize_cq.cqe = 128;
	EXPECT_EQ(EINVAL, RESIZE(GIFT_RESIZE_CQ_COMMIT, 1, sizeof(resp)));
#undef RESIZE
	/* The provider's ring is the one it had, and works. */
	EXPECT_EQ(0, ibv_poll_cq(cq, 1, &wc));
	ASSERT_EQ(0, ibv_resize_cq(cq, 128));
	EXPECT_EQ(128, cq->cqe);
	EXPECT_EQ(0, ibv_poll_cq(cq, 1, &wc));
}

TEST_F(udata, modify_srq)
{
	struct ibv_srq_attr a;
	struct raw_cmd c = {};

	c.modify_srq.srq_handle = self->srq->handle;
	c.modify_srq.attr_mask = IBV_SRQ_LIMIT;
	c.modify_srq.srq_limit = 4;
	c.driver[0] = 1ull << 63;
	EXPECT_EQ(EINVAL, raw_write(self->r.ctx, IB_USER_VERBS_CMD_MODIFY_SRQ, &c,
				    sizeof(c.modify_srq), 1, 0));
	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_EQ(0, a.srq_limit);
	c.driver[0] = 0;
	EXPECT_EQ(0, raw_write(self->r.ctx, IB_USER_VERBS_CMD_MODIFY_SRQ, &c,
			       sizeof(c.modify_srq), 1, 0));
	ASSERT_EQ(0, ibv_query_srq(self->srq, &a));
	EXPECT_EQ(4, a.srq_limit);
}

/* Address handles: RoCEv2 destinations, for UD QPs once they exist. */
FIXTURE(ah) {
	struct rig r;
};

FIXTURE_SETUP(ah)
{
	ASSERT_EQ(0, rig_open(&self->r, 64));
}

FIXTURE_TEARDOWN(ah)
{
	rig_close(&self->r);
}

/* AHs to a RoCEv2 GID are created and destroyed, many at a time. */
TEST_F(ah, create_destroy)
{
	enum { N = 64 };
	struct ibv_ah_attr a = {
		.is_global = 1,
		.grh = { .dgid = self->r.gid, .sgid_index = self->r.gid_index,
			 .hop_limit = 1 },
		.port_num = 1,
	};
	struct ibv_ah *ah[N];
	int i;

	for (i = 0; i < N; i++) {
		a.grh.flow_label = i;
		ah[i] = ibv_create_ah(self->r.pd, &a);
		ASSERT_NE(NULL, ah[i]);
	}
	for (i = 0; i < N; i++)
		EXPECT_EQ(0, ibv_destroy_ah(ah[i]));
}

/* An AH without a GRH is no RoCE address: EINVAL. */
TEST_F(ah, without_grh)
{
	struct ibv_ah_attr a = { .port_num = 1, .dlid = 1 };

	EXPECT_EQ(NULL, ibv_create_ah(self->r.pd, &a));
	EXPECT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
