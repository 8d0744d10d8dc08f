// SPDX-License-Identifier: GPL-2.0
/*
 * gift_ktest: kernel verbs tests for rdma_gift, in the style of
 * lib/test_hmm.c: a test module driven from a user-space selftest
 * (ktest_test.sh).
 *
 * The module is an ib_client. It remembers the device named by the "dev"
 * parameter (default gift0) while that device is registered, and runs one
 * test on it whenever a test name is written to
 * /sys/kernel/debug/gift_ktest/run; reading that file returns the result
 * of the last test, "ok" or "fail: <reason>". /sys/kernel/debug/gift_ktest/
 * tests lists the test names, one per line.
 *
 * Every test builds its own rig the way a kernel ULP does: a kernel PD
 * (whose local_dma_lkey ib_core takes from the device's DMA MR), one CQ
 * per side, and two RC QPs connected in loopback through the port's
 * RoCEv2 IPv4 GID (or two UD QPs, for the multicast test). Buffers are kmalloc()ed and mapped with
 * ib_dma_map_single(); the tests need a device that uses virtual DMA
 * (ib_uses_virt_dma(): rdma_gift, rxe, siw), where a "DMA address" is the
 * kernel virtual address and the CPU sees what the device wrote without
 * syncs. Nothing is left behind by a test: QPs, CQs, MRs and the PD are
 * destroyed in that order when it ends, pass or fail.
 *
 * The same module runs against stock rxe (dev=rxe0), which tells test bugs
 * from driver bugs.
 *
 * Locking: kt_lock serialises tests, the device pointer and the result.
 * The client's remove callback takes it too, so a device being
 * unregistered waits for a running test to finish (every wait in a test
 * is bounded by KT_TIMEOUT_MS) and no test starts on it afterwards.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/etherdevice.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/igmp.h>
#include <linux/inetdevice.h>
#include <linux/rtnetlink.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <rdma/ib_cache.h>
#include <rdma/ib_verbs.h>
#include <rdma/rdma_cm.h>

#include "../../../../../include/rdma/gift_wr.h"

#define KT_PORT			1
/* Bound of every wait for a completion; TCG makes the VM slow. */
#define KT_TIMEOUT_MS		10000
/* Each side's kmalloc()ed buffer. */
#define KT_BUF_SIZE		(4 * PAGE_SIZE)
#define KT_QP_WR		16
#define KT_CQE			64
#define KT_MAX_SGE		2
#define KT_INLINE		64
#define KT_RD_ATOMIC		4
/* Completion slots a test may use (one per work request posted). */
#define KT_MAX_CQES		64
/* Pages of a fast-register MR. */
#define KT_FR_PAGES		4
/* The sides: A (requester in most tests) and B (the target). */
#define KT_A			0
#define KT_B			1
/* Initial PSNs: A's send PSNs wrap around 2^24 within a few packets. */
#define KT_PSN_A		0xfffff0
#define KT_PSN_B		0x000123

/* Test flags. */
#define KT_GLOBAL_RKEY		BIT(0)	/* PD with IB_PD_UNSAFE_GLOBAL_RKEY */
#define KT_CM			BIT(1)	/* no QPs: the test connects through rdma_cm */
#define KT_UD			BIT(2)	/* UD QPs in RTS, not connected */
/*
 * gift0 only: the test posts struct gift_ex_wr (rdma/gift_wr.h), which
 * other drivers do not read; listed and run only on a gift device.
 */
#define KT_GIFT			BIT(3)
#define KT_UC			BIT(4)	/* UC QPs, connected */

/* The Q_Key of the UD QPs. */
#define KT_QKEY			0x11220033

static char *kt_dev_name = "gift0";
module_param_named(dev, kt_dev_name, charp, 0444);
MODULE_PARM_DESC(dev, "name of the RDMA device to test (default gift0)");

static DEFINE_MUTEX(kt_lock);
/* The device named by dev=, from the client's add to its remove. */
static struct ib_device *kt_ibdev;
static char kt_result[256] = "none\n";
static struct dentry *kt_dir;

/**
 * struct kt_cqe - the completion of one work request
 * @cqe: its wr_cqe
 * @wc: copy of the work completion, valid once @done completed
 * @done: completed by kt_cqe_done()
 */
struct kt_cqe {
	struct ib_cqe cqe;
	struct ib_wc wc;
	struct completion done;
};

/**
 * struct kt_side - one end of the loopback connection
 * @qp: RC QP
 * @cq: its send and receive CQ
 * @buf: KT_BUF_SIZE kmalloc()ed bytes
 * @dma: ib_dma_map_single() of @buf (its kernel virtual address)
 */
struct kt_side {
	struct ib_qp *qp;
	struct ib_cq *cq;
	u8 *buf;
	u64 dma;
};

/**
 * struct kt_fr - a fast-register MR of side B over KT_FR_PAGES pages
 * @mr: from ib_alloc_mr()
 * @pages: separately allocated, so the MR is not physically contiguous
 * @npages: pages allocated
 * @sg: the scatterlist ib_map_mr_sg() maps
 * @mapped: entries passed to ib_dma_map_sg(), 0 while not mapped
 * @nents: entries it mapped
 * @head: linear offset (over @pages) of the MR's first byte
 * @shadow: what @pages should hold, linearly
 */
struct kt_fr {
	struct ib_mr *mr;
	struct page *pages[KT_FR_PAGES];
	unsigned int npages;
	struct scatterlist sg[KT_FR_PAGES];
	unsigned int mapped;
	int nents;
	unsigned int head;
	u8 *shadow;
};

/**
 * struct kt_ctx - everything one test run owns
 * @name: the test
 * @dev: device under test
 * @poll_ctx: polling context of the CQs
 * @ud: the sides' QPs are UD QPs (KT_UD)
 * @uc: the sides' QPs are UC QPs (KT_UC)
 * @failed: kt_fail() was called; kt_result holds the reason
 * @pd: kernel PD
 * @sgid_attr: the RoCEv2 IPv4 GID both QPs use (referenced)
 * @dmac: MAC address of the GID's netdev (loopback: the destination)
 * @mtu: path MTU
 * @side: A and B
 * @fr: fast-register MR, when the test allocated one
 * @tmp: KT_BUF_SIZE scratch bytes for comparisons
 * @ncqes: entries of @cqes used
 * @cqes: completion slots
 */
struct kt_ctx {
	const char *name;
	struct ib_device *dev;
	enum ib_poll_context poll_ctx;
	bool ud;
	bool uc;
	bool failed;
	struct ib_pd *pd;
	const struct ib_gid_attr *sgid_attr;
	u8 dmac[ETH_ALEN];
	enum ib_mtu mtu;
	struct kt_side side[2];
	struct kt_fr fr;
	u8 *tmp;
	unsigned int ncqes;
	struct kt_cqe cqes[KT_MAX_CQES];
};

/* A byte range of a side's buffer. */
struct kt_seg {
	u32 off;
	u32 len;
};

/* Records why the test failed (the first reason only); returns -EIO. */
static __printf(2, 3) int kt_fail(struct kt_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ctx->failed)
		return -EIO;
	ctx->failed = true;
	n = scnprintf(kt_result, sizeof(kt_result), "fail: ");
	va_start(ap, fmt);
	n += vscnprintf(kt_result + n, sizeof(kt_result) - n, fmt, ap);
	va_end(ap);
	scnprintf(kt_result + n, sizeof(kt_result) - n, "\n");
	pr_info("%s on %s: %s", ctx->name, ctx->dev->name, kt_result);
	return -EIO;
}

/* Deterministic test data: byte i of a buffer filled with @seed. */
static void kt_fill(u8 *p, size_t len, u8 seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = seed + i * 7 + (i >> 8) * 13;
}

/* memcmp() that reports the first difference. */
static int kt_compare(struct kt_ctx *ctx, const char *what, const u8 *got,
		      const u8 *want, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (got[i] != want[i])
			return kt_fail(ctx, "%s: byte %zu of %zu is %#x, expected %#x",
				       what, i, len, got[i], want[i]);
	}
	return 0;
}

/* Concatenates the segments of @buf into @dst; returns the length. */
static u32 kt_gather(const u8 *buf, const struct kt_seg *segs, int n, u8 *dst)
{
	u32 len = 0;
	int i;

	for (i = 0; i < n; i++) {
		memcpy(dst + len, buf + segs[i].off, segs[i].len);
		len += segs[i].len;
	}
	return len;
}

static void kt_cqe_done(struct ib_cq *cq, struct ib_wc *wc)
{
	struct kt_cqe *c = container_of(wc->wr_cqe, struct kt_cqe, cqe);

	c->wc = *wc;
	complete(&c->done);
}

/* A fresh completion slot for one work request. */
static struct kt_cqe *kt_cqe_new(struct kt_ctx *ctx)
{
	struct kt_cqe *c;

	if (WARN_ON(ctx->ncqes == KT_MAX_CQES))
		return NULL;
	c = &ctx->cqes[ctx->ncqes++];
	c->cqe.done = kt_cqe_done;
	init_completion(&c->done);
	return c;
}

/* Waits for the completion of @c, a work request posted on side @s. */
static int kt_wait(struct kt_ctx *ctx, int s, struct kt_cqe *c,
		   const char *what)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(KT_TIMEOUT_MS);

	if (ctx->poll_ctx != IB_POLL_DIRECT) {
		if (!wait_for_completion_timeout(&c->done,
						 msecs_to_jiffies(KT_TIMEOUT_MS)))
			return kt_fail(ctx, "%s: no completion in %d ms", what,
				       KT_TIMEOUT_MS);
		return 0;
	}
	while (!completion_done(&c->done)) {
		if (ib_process_cq_direct(ctx->side[s].cq, KT_CQE))
			continue;
		if (time_after(jiffies, deadline))
			return kt_fail(ctx, "%s: no completion in %d ms", what,
				       KT_TIMEOUT_MS);
		usleep_range(100, 1000);
	}
	return 0;
}

/*
 * Waits for @c and checks its status, and for a successful completion its
 * opcode and QP.
 */
static int kt_expect(struct kt_ctx *ctx, int s, struct kt_cqe *c,
		     enum ib_wc_status status, enum ib_wc_opcode opcode,
		     const char *what)
{
	int err = kt_wait(ctx, s, c, what);

	if (err)
		return err;
	if (c->wc.status != status)
		return kt_fail(ctx, "%s: status \"%s\", expected \"%s\"", what,
			       ib_wc_status_msg(c->wc.status),
			       ib_wc_status_msg(status));
	if (c->wc.qp != ctx->side[s].qp)
		return kt_fail(ctx, "%s: completion for another QP", what);
	if (status == IB_WC_SUCCESS && c->wc.opcode != opcode)
		return kt_fail(ctx, "%s: wc opcode %d, expected %d", what,
			       c->wc.opcode, opcode);
	return 0;
}

static struct ib_sge kt_sge(struct kt_ctx *ctx, int s, u32 off, u32 len)
{
	return (struct ib_sge){
		.addr = ctx->side[s].dma + off,
		.length = len,
		.lkey = ctx->pd->local_dma_lkey,
	};
}

/* Posts a receive of the segments of side @s's buffer. */
static struct kt_cqe *kt_post_recv(struct kt_ctx *ctx, int s,
				   const struct kt_seg *segs, int n)
{
	struct ib_sge sge[KT_MAX_SGE];
	const struct ib_recv_wr *bad;
	struct ib_recv_wr wr = {};
	struct kt_cqe *c = kt_cqe_new(ctx);
	int i, err;

	if (!c) {
		kt_fail(ctx, "out of completion slots");
		return NULL;
	}
	for (i = 0; i < n; i++)
		sge[i] = kt_sge(ctx, s, segs[i].off, segs[i].len);
	wr.wr_cqe = &c->cqe;
	wr.sg_list = sge;
	wr.num_sge = n;
	err = ib_post_recv(ctx->side[s].qp, &wr, &bad);
	if (err) {
		kt_fail(ctx, "ib_post_recv: %d", err);
		return NULL;
	}
	return c;
}

/* Posts a chain of send WRs on side @s. */
static int kt_post_send(struct kt_ctx *ctx, int s, const struct ib_send_wr *wr,
			const char *what)
{
	const struct ib_send_wr *bad;
	int err;

	err = ib_post_send(ctx->side[s].qp, wr, &bad);
	if (err)
		return kt_fail(ctx, "ib_post_send (%s): %d", what, err);
	return 0;
}

/*
 * Posts an RDMA READ or WRITE on side @s between @n segments of its buffer
 * and [@raddr, ...) of @rkey, and waits for its completion with @status.
 */
static int kt_rdma(struct kt_ctx *ctx, int s, enum ib_wr_opcode opcode,
		   const struct kt_seg *segs, int n, u64 raddr, u32 rkey,
		   enum ib_wc_status status, const char *what)
{
	struct ib_sge sge[KT_MAX_SGE];
	struct ib_rdma_wr wr = {};
	struct kt_cqe *c = kt_cqe_new(ctx);
	int i, err;

	if (!c)
		return kt_fail(ctx, "out of completion slots");
	for (i = 0; i < n; i++)
		sge[i] = kt_sge(ctx, s, segs[i].off, segs[i].len);
	wr.wr.wr_cqe = &c->cqe;
	wr.wr.opcode = opcode;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = sge;
	wr.wr.num_sge = n;
	wr.remote_addr = raddr;
	wr.rkey = rkey;
	err = kt_post_send(ctx, s, &wr.wr, what);
	if (err)
		return err;
	return kt_expect(ctx, s, c, status,
			 opcode == IB_WR_RDMA_READ ? IB_WC_RDMA_READ :
			 IB_WC_RDMA_WRITE, what);
}

/* Finds the first RoCEv2 GID holding an IPv4 address. */
static int kt_find_gid(struct kt_ctx *ctx, int tbl_len)
{
	const struct ib_gid_attr *attr;
	struct net_device *ndev;
	int i;

	for (i = 0; i < min(tbl_len, 256); i++) {
		attr = rdma_get_gid_attr(ctx->dev, KT_PORT, i);
		if (IS_ERR(attr))
			continue;
		if (attr->gid_type == IB_GID_TYPE_ROCE_UDP_ENCAP &&
		    ipv6_addr_v4mapped((const struct in6_addr *)attr->gid.raw)) {
			ctx->sgid_attr = attr;
			break;
		}
		rdma_put_gid_attr(attr);
	}
	if (!ctx->sgid_attr)
		return kt_fail(ctx, "no RoCEv2 IPv4 GID on port %d", KT_PORT);

	rcu_read_lock();
	ndev = rdma_read_gid_attr_ndev_rcu(ctx->sgid_attr);
	if (!IS_ERR(ndev))
		ether_addr_copy(ctx->dmac, ndev->dev_addr);
	rcu_read_unlock();
	if (IS_ERR(ndev))
		return kt_fail(ctx, "GID %d has no netdev: %ld",
			       ctx->sgid_attr->index, PTR_ERR(ndev));
	return 0;
}

static void kt_qp_event(struct ib_event *ev, void *context)
{
	pr_debug("QP %u: event %s\n", ev->element.qp->qp_num,
		 ib_event_msg(ev->event));
}

/*
 * Side @s: its CQ, buffer and QP; the QP on the rdma_cm ID @id when
 * there is one (rdma_create_qp(): rdma_cm then moves it through its
 * states), a plain one otherwise.
 */
static int kt_create_side(struct kt_ctx *ctx, int s, struct rdma_cm_id *id)
{
	struct kt_side *side = &ctx->side[s];
	struct ib_qp_init_attr init = {
		.event_handler = kt_qp_event,
		.qp_context = ctx,
		.cap = {
			.max_send_wr = KT_QP_WR,
			.max_recv_wr = KT_QP_WR,
			.max_send_sge = KT_MAX_SGE,
			.max_recv_sge = KT_MAX_SGE,
			.max_inline_data = KT_INLINE,
		},
		.sq_sig_type = IB_SIGNAL_ALL_WR,
		.qp_type = IB_QPT_RC,
		.port_num = KT_PORT,
	};
	struct ib_qp *qp;
	struct ib_cq *cq;

	cq = ib_alloc_cq(ctx->dev, ctx, KT_CQE, 0, ctx->poll_ctx);
	if (IS_ERR(cq))
		return kt_fail(ctx, "ib_alloc_cq: %ld", PTR_ERR(cq));
	side->cq = cq;

	side->buf = kzalloc(KT_BUF_SIZE, GFP_KERNEL);
	if (!side->buf)
		return kt_fail(ctx, "out of memory");
	side->dma = ib_dma_map_single(ctx->dev, side->buf, KT_BUF_SIZE,
				      DMA_BIDIRECTIONAL);
	if (ib_dma_mapping_error(ctx->dev, side->dma)) {
		side->dma = 0;
		return kt_fail(ctx, "ib_dma_map_single failed");
	}
	if (side->dma != (uintptr_t)side->buf)
		return kt_fail(ctx, "DMA address %#llx is not the buffer's address",
			       side->dma);

	init.send_cq = cq;
	init.recv_cq = cq;
	if (ctx->ud)
		init.qp_type = IB_QPT_UD;
	if (ctx->uc)
		init.qp_type = IB_QPT_UC;
	if (id) {
		int err = rdma_create_qp(id, ctx->pd, &init);

		if (err)
			return kt_fail(ctx, "rdma_create_qp: %d", err);
		qp = id->qp;
	} else {
		qp = ib_create_qp(ctx->pd, &init);
		if (IS_ERR(qp))
			return kt_fail(ctx, "ib_create_qp: %ld", PTR_ERR(qp));
	}
	side->qp = qp;
	if (init.cap.max_inline_data < KT_INLINE ||
	    init.cap.max_send_sge < KT_MAX_SGE ||
	    init.cap.max_recv_sge < KT_MAX_SGE)
		return kt_fail(ctx, "ib_create_qp reduced the capabilities");
	return 0;
}

/*
 * Moves side @s's QP to RTS, connected to the other side's; a UC QP with
 * the UC attributes only.
 */
static int kt_connect(struct kt_ctx *ctx, int s)
{
	struct ib_qp *qp = ctx->side[s].qp, *peer = ctx->side[!s].qp;
	int rc_rtr = ctx->uc ? 0 : IB_QP_MAX_DEST_RD_ATOMIC |
				   IB_QP_MIN_RNR_TIMER;
	int rc_rts = ctx->uc ? 0 : IB_QP_TIMEOUT | IB_QP_RETRY_CNT |
				   IB_QP_RNR_RETRY | IB_QP_MAX_QP_RD_ATOMIC;
	union ib_gid dgid = ctx->sgid_attr->gid;
	struct ib_qp_attr attr = {};
	int err;

	attr.qp_state = IB_QPS_INIT;
	attr.pkey_index = 0;
	attr.port_num = KT_PORT;
	attr.qp_access_flags = IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_READ |
			       IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC;
	if (ctx->dev->attrs.device_cap_flags & IB_DEVICE_FLUSH_GLOBAL)
		attr.qp_access_flags |= IB_ACCESS_FLUSH_GLOBAL;
	err = ib_modify_qp(qp, &attr, IB_QP_STATE | IB_QP_PKEY_INDEX |
			   IB_QP_PORT | IB_QP_ACCESS_FLAGS);
	if (err)
		return kt_fail(ctx, "QP %u to INIT: %d", qp->qp_num, err);

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IB_QPS_RTR;
	attr.path_mtu = ctx->mtu;
	attr.dest_qp_num = peer->qp_num;
	attr.rq_psn = s == KT_A ? KT_PSN_B : KT_PSN_A;
	attr.max_dest_rd_atomic = KT_RD_ATOMIC;
	attr.min_rnr_timer = 12;	/* 0.64 ms */
	attr.ah_attr.type = RDMA_AH_ATTR_TYPE_ROCE;
	rdma_ah_set_port_num(&attr.ah_attr, KT_PORT);
	rdma_ah_set_grh(&attr.ah_attr, &dgid, 0, ctx->sgid_attr->index, 64, 0);
	attr.ah_attr.grh.sgid_attr = ctx->sgid_attr;
	/* Kernel users pass a resolved address: loopback, our own MAC. */
	ether_addr_copy(attr.ah_attr.roce.dmac, ctx->dmac);
	err = ib_modify_qp(qp, &attr, IB_QP_STATE | IB_QP_AV | IB_QP_PATH_MTU |
			   IB_QP_DEST_QPN | IB_QP_RQ_PSN | rc_rtr);
	if (err)
		return kt_fail(ctx, "QP %u to RTR: %d", qp->qp_num, err);

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IB_QPS_RTS;
	attr.sq_psn = s == KT_A ? KT_PSN_A : KT_PSN_B;
	attr.timeout = 14;		/* 67 ms */
	attr.retry_cnt = 7;
	attr.rnr_retry = 7;		/* forever */
	attr.max_rd_atomic = KT_RD_ATOMIC;
	err = ib_modify_qp(qp, &attr, IB_QP_STATE | IB_QP_SQ_PSN | rc_rts);
	if (err)
		return kt_fail(ctx, "QP %u to RTS: %d", qp->qp_num, err);
	return 0;
}

/* Moves side @s's UD QP to RTS. */
static int kt_ud_rts(struct kt_ctx *ctx, int s)
{
	struct ib_qp *qp = ctx->side[s].qp;
	struct ib_qp_attr attr = {
		.qp_state = IB_QPS_INIT,
		.port_num = KT_PORT,
		.qkey = KT_QKEY,
	};
	int err;

	err = ib_modify_qp(qp, &attr, IB_QP_STATE | IB_QP_PKEY_INDEX |
			   IB_QP_PORT | IB_QP_QKEY);
	if (!err) {
		attr.qp_state = IB_QPS_RTR;
		err = ib_modify_qp(qp, &attr, IB_QP_STATE);
	}
	if (!err) {
		attr.qp_state = IB_QPS_RTS;
		attr.sq_psn = s == KT_A ? KT_PSN_A : KT_PSN_B;
		err = ib_modify_qp(qp, &attr, IB_QP_STATE | IB_QP_SQ_PSN);
	}
	if (err)
		return kt_fail(ctx, "UD QP %u to RTS: %d", qp->qp_num, err);
	return 0;
}

static int kt_setup(struct kt_ctx *ctx, unsigned int flags)
{
	struct ib_port_attr pattr;
	int err, s;

	if (!ib_uses_virt_dma(ctx->dev))
		return kt_fail(ctx, "%s does not use virtual DMA", ctx->dev->name);
	err = ib_query_port(ctx->dev, KT_PORT, &pattr);
	if (err)
		return kt_fail(ctx, "ib_query_port: %d", err);
	if (pattr.state != IB_PORT_ACTIVE)
		return kt_fail(ctx, "port %d is not active", KT_PORT);
	ctx->mtu = pattr.active_mtu;
	err = kt_find_gid(ctx, pattr.gid_tbl_len);
	if (err)
		return err;

	ctx->tmp = kmalloc(KT_BUF_SIZE, GFP_KERNEL);
	if (!ctx->tmp)
		return kt_fail(ctx, "out of memory");
	ctx->pd = ib_alloc_pd(ctx->dev, flags & KT_GLOBAL_RKEY ?
			      IB_PD_UNSAFE_GLOBAL_RKEY : 0);
	if (IS_ERR(ctx->pd)) {
		err = PTR_ERR(ctx->pd);
		ctx->pd = NULL;
		return kt_fail(ctx, "ib_alloc_pd: %d", err);
	}
	/* rdma_cm tests make their sides once connected. */
	if (flags & KT_CM)
		return 0;
	for (s = 0; s < 2; s++) {
		err = kt_create_side(ctx, s, NULL);
		if (err)
			return err;
	}
	for (s = 0; s < 2; s++) {
		err = ctx->ud ? kt_ud_rts(ctx, s) : kt_connect(ctx, s);
		if (err)
			return err;
	}
	return 0;
}

/* QPs, CQs, MRs, PD: the order a ULP tears down in. */
static void kt_teardown(struct kt_ctx *ctx)
{
	struct kt_fr *fr = &ctx->fr;
	unsigned int i;
	int s;

	for (s = 0; s < 2; s++) {
		if (ctx->side[s].qp)
			ib_destroy_qp(ctx->side[s].qp);
	}
	for (s = 0; s < 2; s++) {
		if (ctx->side[s].cq)
			ib_free_cq(ctx->side[s].cq);
	}
	if (fr->mr)
		ib_dereg_mr(fr->mr);
	if (fr->mapped)
		ib_dma_unmap_sg(ctx->dev, fr->sg, fr->mapped, DMA_BIDIRECTIONAL);
	for (i = 0; i < fr->npages; i++)
		__free_page(fr->pages[i]);
	kfree(fr->shadow);
	for (s = 0; s < 2; s++) {
		if (ctx->side[s].dma)
			ib_dma_unmap_single(ctx->dev, ctx->side[s].dma,
					    KT_BUF_SIZE, DMA_BIDIRECTIONAL);
		kfree(ctx->side[s].buf);
	}
	if (ctx->pd)
		ib_dealloc_pd(ctx->pd);
	if (ctx->sgid_attr)
		rdma_put_gid_attr(ctx->sgid_attr);
	kfree(ctx->tmp);
}

/*
 * Fast-register MRs. The MR belongs to side B; A accesses it remotely.
 */

/* Copies between the MR's pages (at linear offset @off) and @buf. */
static void kt_fr_copy(struct kt_fr *fr, size_t off, u8 *buf, size_t len,
		       bool to_pages)
{
	size_t n;
	u8 *va;

	while (len) {
		va = page_address(fr->pages[off / PAGE_SIZE]) + off % PAGE_SIZE;
		n = min(len, PAGE_SIZE - off % PAGE_SIZE);
		if (to_pages)
			memcpy(va, buf, n);
		else
			memcpy(buf, va, n);
		off += n;
		buf += n;
		len -= n;
	}
}

/* Allocates the MR and its pages, filled with a canary pattern. */
static int kt_fr_alloc(struct kt_ctx *ctx, unsigned int npages)
{
	struct kt_fr *fr = &ctx->fr;
	struct ib_mr *mr;

	fr->shadow = kmalloc_array(npages, PAGE_SIZE, GFP_KERNEL);
	if (!fr->shadow)
		return kt_fail(ctx, "out of memory");
	for (fr->npages = 0; fr->npages < npages; fr->npages++) {
		fr->pages[fr->npages] = alloc_page(GFP_KERNEL);
		if (!fr->pages[fr->npages])
			return kt_fail(ctx, "out of memory");
	}
	kt_fill(fr->shadow, npages * PAGE_SIZE, 0xc0);
	kt_fr_copy(fr, 0, fr->shadow, npages * PAGE_SIZE, true);

	mr = ib_alloc_mr(ctx->pd, IB_MR_TYPE_MEM_REG, npages);
	if (IS_ERR(mr))
		return kt_fail(ctx, "ib_alloc_mr: %ld", PTR_ERR(mr));
	fr->mr = mr;
	return 0;
}

/*
 * Maps @npages of the pages into the MR: the MR starts @head bytes into
 * the first page and ends @tail bytes before the end of the last one.
 */
static int kt_fr_map(struct kt_ctx *ctx, unsigned int npages,
		     unsigned int head, unsigned int tail)
{
	struct kt_fr *fr = &ctx->fr;
	unsigned int i, off, len, total = 0;
	int n;

	if (fr->mapped)
		ib_dma_unmap_sg(ctx->dev, fr->sg, fr->mapped, DMA_BIDIRECTIONAL);
	fr->mapped = 0;
	sg_init_table(fr->sg, npages);
	for (i = 0; i < npages; i++) {
		off = i ? 0 : head;
		len = PAGE_SIZE - off - (i == npages - 1 ? tail : 0);
		sg_set_page(&fr->sg[i], fr->pages[i], len, off);
		total += len;
	}
	n = ib_dma_map_sg(ctx->dev, fr->sg, npages, DMA_BIDIRECTIONAL);
	if (n <= 0)
		return kt_fail(ctx, "ib_dma_map_sg: %d", n);
	/* ib_dma_unmap_sg() takes the count passed to ib_dma_map_sg(). */
	fr->mapped = npages;
	fr->nents = n;

	n = ib_map_mr_sg(fr->mr, fr->sg, fr->nents, NULL, PAGE_SIZE);
	if (n != fr->nents)
		return kt_fail(ctx, "ib_map_mr_sg mapped %d of %d entries", n,
			       fr->nents);
	if (fr->mr->length != total ||
	    fr->mr->iova != sg_dma_address(&fr->sg[0]))
		return kt_fail(ctx, "ib_map_mr_sg: iova %#llx length %llu, expected %#llx %u",
			       fr->mr->iova, fr->mr->length,
			       (u64)sg_dma_address(&fr->sg[0]), total);
	fr->head = head;
	return 0;
}

/* Fills a REG_MR work request for the MR with a new key. */
static void kt_fr_reg_wr(struct kt_ctx *ctx, struct ib_reg_wr *wr,
			 struct kt_cqe *c, int access)
{
	struct ib_mr *mr = ctx->fr.mr;

	ib_update_fast_reg_key(mr, ib_inc_rkey(mr->rkey));
	memset(wr, 0, sizeof(*wr));
	wr->wr.opcode = IB_WR_REG_MR;
	wr->wr.wr_cqe = &c->cqe;
	wr->wr.send_flags = IB_SEND_SIGNALED;
	wr->mr = mr;
	wr->key = mr->rkey;
	wr->access = access;
}

/* Registers the MR (mapped before) on side B with a new key. */
static int kt_fr_reg(struct kt_ctx *ctx, int access)
{
	struct kt_cqe *c = kt_cqe_new(ctx);
	struct ib_reg_wr wr;
	int err;

	if (!c)
		return kt_fail(ctx, "out of completion slots");
	kt_fr_reg_wr(ctx, &wr, c, access);
	err = kt_post_send(ctx, KT_B, &wr.wr, "REG_MR");
	if (err)
		return err;
	return kt_expect(ctx, KT_B, c, IB_WC_SUCCESS, IB_WC_REG_MR, "REG_MR");
}

/* Invalidates @rkey with IB_WR_LOCAL_INV on side B. */
static int kt_fr_local_inv(struct kt_ctx *ctx, u32 rkey)
{
	struct kt_cqe *c = kt_cqe_new(ctx);
	struct ib_send_wr wr = {};
	int err;

	if (!c)
		return kt_fail(ctx, "out of completion slots");
	wr.opcode = IB_WR_LOCAL_INV;
	wr.wr_cqe = &c->cqe;
	wr.send_flags = IB_SEND_SIGNALED;
	wr.ex.invalidate_rkey = rkey;
	err = kt_post_send(ctx, KT_B, &wr, "LOCAL_INV");
	if (err)
		return err;
	return kt_expect(ctx, KT_B, c, IB_WC_SUCCESS, IB_WC_LOCAL_INV,
			 "LOCAL_INV");
}

/* Checks the pages against the shadow: what was written and only that. */
static int kt_fr_check(struct kt_ctx *ctx, const char *what)
{
	struct kt_fr *fr = &ctx->fr;
	size_t len = fr->npages * PAGE_SIZE;
	u8 *img;
	int err;

	img = kmalloc(len, GFP_KERNEL);
	if (!img)
		return kt_fail(ctx, "out of memory");
	kt_fr_copy(fr, 0, img, len, false);
	err = kt_compare(ctx, what, img, fr->shadow, len);
	kfree(img);
	return err;
}

/*
 * RDMA WRITE of A's buffer [@aoff, @aoff + @len) to the MR at @mroff
 * with @rkey; on success the shadow is updated and the pages checked,
 * on the expected failure the pages must be unchanged.
 */
static int kt_fr_write(struct kt_ctx *ctx, u32 aoff, u32 mroff, u32 len,
		       u32 rkey, enum ib_wc_status status, const char *what)
{
	struct kt_fr *fr = &ctx->fr;
	struct kt_seg seg = { aoff, len };
	int err;

	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_WRITE, &seg, 1,
		      fr->mr->iova + mroff, rkey, status, what);
	if (err)
		return err;
	if (status == IB_WC_SUCCESS)
		memcpy(fr->shadow + fr->head + mroff, ctx->side[KT_A].buf + aoff,
		       len);
	return kt_fr_check(ctx, what);
}

/* RDMA READ of the MR at @mroff into A's buffer at @aoff, checked. */
static int kt_fr_read(struct kt_ctx *ctx, u32 aoff, u32 mroff, u32 len,
		      const char *what)
{
	struct kt_fr *fr = &ctx->fr;
	struct kt_seg seg = { aoff, len };
	u8 *abuf = ctx->side[KT_A].buf;
	int err;

	memset(abuf + aoff, 0x5a, len);
	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_READ, &seg, 1,
		      fr->mr->iova + mroff, fr->mr->rkey, IB_WC_SUCCESS, what);
	if (err)
		return err;
	return kt_compare(ctx, what, abuf + aoff, fr->shadow + fr->head + mroff,
			  len);
}

/*
 * The tests. Each gets a connected rig from kt_setup() and returns 0 or
 * the error of kt_fail().
 */

/* The rig itself: both QPs in RTS, connected to each other. */
static int kt_test_connect(struct kt_ctx *ctx)
{
	struct ib_qp_init_attr init;
	struct ib_qp_attr attr;
	int err, s;

	for (s = 0; s < 2; s++) {
		err = ib_query_qp(ctx->side[s].qp, &attr,
				  IB_QP_STATE | IB_QP_DEST_QPN | IB_QP_PATH_MTU,
				  &init);
		if (err)
			return kt_fail(ctx, "ib_query_qp: %d", err);
		if (attr.qp_state != IB_QPS_RTS)
			return kt_fail(ctx, "QP %u in state %d, not RTS",
				       ctx->side[s].qp->qp_num, attr.qp_state);
		if (attr.dest_qp_num != ctx->side[!s].qp->qp_num)
			return kt_fail(ctx, "QP %u: dest_qp_num %u, expected %u",
				       ctx->side[s].qp->qp_num,
				       attr.dest_qp_num,
				       ctx->side[!s].qp->qp_num);
		if (attr.path_mtu != ctx->mtu)
			return kt_fail(ctx, "QP %u: path_mtu %d, expected %d",
				       ctx->side[s].qp->qp_num, attr.path_mtu,
				       ctx->mtu);
	}
	return 0;
}

/*
 * SEND/RECV: a multi-SGE message over several MTUs, a larger one, SEND
 * with immediate, a zero-length SEND and an inline SEND, posted as one
 * chain; each lands in its own receive with the right length and data.
 */
static int kt_test_send_recv(struct kt_ctx *ctx)
{
	static const struct {
		struct kt_seg send[KT_MAX_SGE];
		int nsend;
		struct kt_seg recv[KT_MAX_SGE];
		int nrecv;
		enum ib_wr_opcode opcode;
		int flags;
	} msg[] = {
		{ { { 0, 1500 }, { 2048, 2000 } }, 2,
		  { { 0, 2000 }, { 4096, 2000 } }, 2, IB_WR_SEND, 0 },
		{ { { 4096, 8192 } }, 1, { { 8192, 8192 } }, 1, IB_WR_SEND, 0 },
		{ { { 12288, 64 } }, 1, { { 6144, 64 } }, 1,
		  IB_WR_SEND_WITH_IMM, 0 },
		{ { }, 0, { { 6400, 16 } }, 1, IB_WR_SEND, 0 },
		{ { { 13000, 48 } }, 1, { { 7000, 48 } }, 1, IB_WR_SEND,
		  IB_SEND_INLINE },
	};
	struct kt_cqe *rc[ARRAY_SIZE(msg)], *sc[ARRAY_SIZE(msg)];
	struct ib_send_wr wr[ARRAY_SIZE(msg)];
	struct ib_sge sge[ARRAY_SIZE(msg)][KT_MAX_SGE];
	u8 *abuf = ctx->side[KT_A].buf, *bbuf = ctx->side[KT_B].buf;
	u8 *want = ctx->tmp;
	unsigned int i;
	u32 len;
	int err, j;
	u8 *got;

	kt_fill(abuf, KT_BUF_SIZE, 1);
	memset(bbuf, 0xee, KT_BUF_SIZE);
	for (i = 0; i < ARRAY_SIZE(msg); i++) {
		rc[i] = kt_post_recv(ctx, KT_B, msg[i].recv, msg[i].nrecv);
		if (!rc[i])
			return -EIO;
	}
	memset(wr, 0, sizeof(wr));
	for (i = 0; i < ARRAY_SIZE(msg); i++) {
		sc[i] = kt_cqe_new(ctx);
		if (!sc[i])
			return kt_fail(ctx, "out of completion slots");
		for (j = 0; j < msg[i].nsend; j++)
			sge[i][j] = kt_sge(ctx, KT_A, msg[i].send[j].off,
					   msg[i].send[j].len);
		wr[i].wr_cqe = &sc[i]->cqe;
		wr[i].opcode = msg[i].opcode;
		wr[i].send_flags = IB_SEND_SIGNALED | msg[i].flags;
		wr[i].sg_list = sge[i];
		wr[i].num_sge = msg[i].nsend;
		wr[i].ex.imm_data = cpu_to_be32(0x12345678 + i);
		wr[i].next = i + 1 < ARRAY_SIZE(msg) ? &wr[i + 1] : NULL;
	}
	err = kt_post_send(ctx, KT_A, wr, "SEND chain");
	if (err)
		return err;
	/* Inline data is copied at post time: clobber it now. */
	memset(abuf + msg[4].send[0].off, 0, msg[4].send[0].len);

	for (i = 0; i < ARRAY_SIZE(msg); i++) {
		err = kt_expect(ctx, KT_A, sc[i], IB_WC_SUCCESS, IB_WC_SEND,
				"SEND");
		if (err)
			return err;
	}
	kt_fill(abuf, KT_BUF_SIZE, 1);
	got = kmalloc(KT_BUF_SIZE, GFP_KERNEL);
	if (!got)
		return kt_fail(ctx, "out of memory");
	for (i = 0; i < ARRAY_SIZE(msg); i++) {
		err = kt_expect(ctx, KT_B, rc[i], IB_WC_SUCCESS, IB_WC_RECV,
				"RECV");
		if (err)
			break;
		len = kt_gather(abuf, msg[i].send, msg[i].nsend, want);
		if (rc[i]->wc.byte_len != len) {
			err = kt_fail(ctx, "RECV %u: byte_len %u, expected %u",
				      i, rc[i]->wc.byte_len, len);
			break;
		}
		if (msg[i].opcode == IB_WR_SEND_WITH_IMM &&
		    (!(rc[i]->wc.wc_flags & IB_WC_WITH_IMM) ||
		     rc[i]->wc.ex.imm_data != wr[i].ex.imm_data)) {
			err = kt_fail(ctx, "RECV %u: no immediate %#x (flags %#x, imm %#x)",
				      i, be32_to_cpu(wr[i].ex.imm_data),
				      rc[i]->wc.wc_flags,
				      be32_to_cpu(rc[i]->wc.ex.imm_data));
			break;
		}
		if (msg[i].opcode != IB_WR_SEND_WITH_IMM &&
		    (rc[i]->wc.wc_flags & (IB_WC_WITH_IMM |
					   IB_WC_WITH_INVALIDATE))) {
			err = kt_fail(ctx, "RECV %u: unexpected wc_flags %#x", i,
				      rc[i]->wc.wc_flags);
			break;
		}
		/* The message, then the receive buffer's untouched rest. */
		memset(want + len, 0xee, KT_BUF_SIZE - len);
		len = kt_gather(bbuf, msg[i].recv, msg[i].nrecv, got);
		err = kt_compare(ctx, "RECV data", got, want, len);
		if (err)
			break;
	}
	kfree(got);
	return err;
}

/*
 * RDMA WRITE through the PD's unsafe global rkey (the DMA MR as a remote
 * target): one SGE, two SGEs, and with immediate; only the target range
 * changes.
 */
static int kt_test_rdma_write(struct kt_ctx *ctx)
{
	static const struct kt_seg one = { 0, 5000 };
	static const struct kt_seg two[] = { { 6000, 500 }, { 8192, 1000 } };
	u8 *abuf = ctx->side[KT_A].buf, *bbuf = ctx->side[KT_B].buf;
	u64 bdma = ctx->side[KT_B].dma;
	u32 rkey = ctx->pd->unsafe_global_rkey;
	struct ib_rdma_wr wr = {};
	struct ib_sge sge;
	struct kt_cqe *rc, *sc;
	u8 *want = ctx->tmp;
	int err;

	kt_fill(abuf, KT_BUF_SIZE, 11);
	memset(bbuf, 0xee, KT_BUF_SIZE);
	memset(want, 0xee, KT_BUF_SIZE);

	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_WRITE, &one, 1, bdma + 100, rkey,
		      IB_WC_SUCCESS, "RDMA WRITE");
	if (err)
		return err;
	memcpy(want + 100, abuf, one.len);
	err = kt_compare(ctx, "RDMA WRITE data", bbuf, want, KT_BUF_SIZE);
	if (err)
		return err;

	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_WRITE, two, 2, bdma + 12000, rkey,
		      IB_WC_SUCCESS, "RDMA WRITE, 2 SGEs");
	if (err)
		return err;
	kt_gather(abuf, two, 2, want + 12000);
	err = kt_compare(ctx, "RDMA WRITE, 2 SGEs data", bbuf, want,
			 KT_BUF_SIZE);
	if (err)
		return err;

	/* With immediate: consumes a receive (without SGEs) at B. */
	rc = kt_post_recv(ctx, KT_B, NULL, 0);
	sc = kt_cqe_new(ctx);
	if (!rc || !sc)
		return kt_fail(ctx, "posting the receive failed");
	sge = kt_sge(ctx, KT_A, 10000, 200);
	wr.wr.wr_cqe = &sc->cqe;
	wr.wr.opcode = IB_WR_RDMA_WRITE_WITH_IMM;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.wr.ex.imm_data = cpu_to_be32(0xfeedbeef);
	wr.remote_addr = bdma + 14000;
	wr.rkey = rkey;
	err = kt_post_send(ctx, KT_A, &wr.wr, "RDMA WRITE with immediate");
	if (!err)
		err = kt_expect(ctx, KT_A, sc, IB_WC_SUCCESS, IB_WC_RDMA_WRITE,
				"RDMA WRITE with immediate");
	if (!err)
		err = kt_expect(ctx, KT_B, rc, IB_WC_SUCCESS,
				IB_WC_RECV_RDMA_WITH_IMM,
				"RECV of RDMA WRITE with immediate");
	if (err)
		return err;
	if (!(rc->wc.wc_flags & IB_WC_WITH_IMM) ||
	    rc->wc.ex.imm_data != wr.wr.ex.imm_data || rc->wc.byte_len != 200)
		return kt_fail(ctx, "RECV_RDMA_WITH_IMM: flags %#x imm %#x byte_len %u",
			       rc->wc.wc_flags, be32_to_cpu(rc->wc.ex.imm_data),
			       rc->wc.byte_len);
	memcpy(want + 14000, abuf + 10000, 200);
	return kt_compare(ctx, "RDMA WRITE with immediate data", bbuf, want,
			  KT_BUF_SIZE);
}

/*
 * UC from the kernel: an RDMA WRITE over several MTUs, then a WRITE with
 * immediate; once the receive of the second completes, both are in place
 * (a UC WRITE completes at the sender once sent, and the responder takes
 * messages in order). RDMA READ, the atomics and SEND_WITH_INV fail at
 * post time with -EINVAL.
 */
static int kt_test_uc_write(struct kt_ctx *ctx)
{
	static const enum ib_wr_opcode refused[] = {
		IB_WR_RDMA_READ, IB_WR_ATOMIC_CMP_AND_SWP,
		IB_WR_ATOMIC_FETCH_AND_ADD, IB_WR_SEND_WITH_INV,
	};
	static const struct kt_seg two[] = { { 0, 5000 }, { 6000, 1000 } };
	u8 *abuf = ctx->side[KT_A].buf, *bbuf = ctx->side[KT_B].buf;
	u64 bdma = ctx->side[KT_B].dma;
	u32 rkey = ctx->pd->unsafe_global_rkey;
	struct ib_rdma_wr wr = {};
	const struct ib_send_wr *bad;
	struct kt_cqe *rc, *sc;
	u8 *want = ctx->tmp;
	struct ib_sge sge;
	unsigned int i;
	int err;

	kt_fill(abuf, KT_BUF_SIZE, 21);
	memset(bbuf, 0xee, KT_BUF_SIZE);
	memset(want, 0xee, KT_BUF_SIZE);

	sge = kt_sge(ctx, KT_A, 0, 8);
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.remote_addr = bdma;
	wr.rkey = rkey;
	for (i = 0; i < ARRAY_SIZE(refused); i++) {
		wr.wr.opcode = refused[i];
		err = ib_post_send(ctx->side[KT_A].qp, &wr.wr, &bad);
		if (err != -EINVAL || bad != &wr.wr)
			return kt_fail(ctx, "UC post of opcode %d: %d, not -EINVAL",
				       refused[i], err);
	}

	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_WRITE, two, 2, bdma + 100, rkey,
		      IB_WC_SUCCESS, "UC RDMA WRITE");
	if (err)
		return err;
	kt_gather(abuf, two, 2, want + 100);

	rc = kt_post_recv(ctx, KT_B, NULL, 0);
	sc = kt_cqe_new(ctx);
	if (!rc || !sc)
		return kt_fail(ctx, "posting the receive failed");
	sge = kt_sge(ctx, KT_A, 8000, 3000);
	memset(&wr, 0, sizeof(wr));
	wr.wr.wr_cqe = &sc->cqe;
	wr.wr.opcode = IB_WR_RDMA_WRITE_WITH_IMM;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.wr.ex.imm_data = cpu_to_be32(0x0bad1dea);
	wr.remote_addr = bdma + 9000;
	wr.rkey = rkey;
	err = kt_post_send(ctx, KT_A, &wr.wr, "UC RDMA WRITE with immediate");
	if (!err)
		err = kt_expect(ctx, KT_A, sc, IB_WC_SUCCESS, IB_WC_RDMA_WRITE,
				"UC RDMA WRITE with immediate");
	if (!err)
		err = kt_expect(ctx, KT_B, rc, IB_WC_SUCCESS,
				IB_WC_RECV_RDMA_WITH_IMM,
				"RECV of UC RDMA WRITE with immediate");
	if (err)
		return err;
	if (!(rc->wc.wc_flags & IB_WC_WITH_IMM) ||
	    rc->wc.ex.imm_data != wr.wr.ex.imm_data || rc->wc.byte_len != 3000)
		return kt_fail(ctx, "UC RECV_RDMA_WITH_IMM: flags %#x imm %#x byte_len %u",
			       rc->wc.wc_flags, be32_to_cpu(rc->wc.ex.imm_data),
			       rc->wc.byte_len);
	memcpy(want + 9000, abuf + 8000, 3000);
	return kt_compare(ctx, "UC RDMA WRITE data", bbuf, want, KT_BUF_SIZE);
}

/*
 * RDMA READ through the unsafe global rkey: one SGE over several MTUs, a
 * scatter to two SGEs, and three READs in flight at once.
 */
static int kt_test_rdma_read(struct kt_ctx *ctx)
{
	static const struct kt_seg one = { 0, 6000 };
	static const struct kt_seg two[] = { { 7000, 1000 }, { 10000, 2000 } };
	u8 *abuf = ctx->side[KT_A].buf, *bbuf = ctx->side[KT_B].buf;
	u64 bdma = ctx->side[KT_B].dma;
	u32 rkey = ctx->pd->unsafe_global_rkey;
	struct ib_rdma_wr wr[3] = {};
	struct ib_sge sge[3];
	struct kt_cqe *c[3];
	u8 *want = ctx->tmp;
	int err, i;

	kt_fill(bbuf, KT_BUF_SIZE, 21);
	memset(abuf, 0xee, KT_BUF_SIZE);
	memset(want, 0xee, KT_BUF_SIZE);

	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_READ, &one, 1, bdma + 300, rkey,
		      IB_WC_SUCCESS, "RDMA READ");
	if (err)
		return err;
	memcpy(want, bbuf + 300, one.len);
	err = kt_compare(ctx, "RDMA READ data", abuf, want, KT_BUF_SIZE);
	if (err)
		return err;

	err = kt_rdma(ctx, KT_A, IB_WR_RDMA_READ, two, 2, bdma + 8000, rkey,
		      IB_WC_SUCCESS, "RDMA READ, 2 SGEs");
	if (err)
		return err;
	memcpy(want + 7000, bbuf + 8000, 1000);
	memcpy(want + 10000, bbuf + 9000, 2000);
	err = kt_compare(ctx, "RDMA READ, 2 SGEs data", abuf, want,
			 KT_BUF_SIZE);
	if (err)
		return err;

	for (i = 0; i < 3; i++) {
		c[i] = kt_cqe_new(ctx);
		if (!c[i])
			return kt_fail(ctx, "out of completion slots");
		sge[i] = kt_sge(ctx, KT_A, 12500 + i * 1200, 1100);
		wr[i].wr.wr_cqe = &c[i]->cqe;
		wr[i].wr.opcode = IB_WR_RDMA_READ;
		wr[i].wr.send_flags = IB_SEND_SIGNALED;
		wr[i].wr.sg_list = &sge[i];
		wr[i].wr.num_sge = 1;
		wr[i].wr.next = i < 2 ? &wr[i + 1].wr : NULL;
		wr[i].remote_addr = bdma + i * 3000;
		wr[i].rkey = rkey;
		memcpy(want + 12500 + i * 1200, bbuf + i * 3000, 1100);
	}
	err = kt_post_send(ctx, KT_A, &wr[0].wr, "3 RDMA READs");
	for (i = 0; i < 3 && !err; i++)
		err = kt_expect(ctx, KT_A, c[i], IB_WC_SUCCESS, IB_WC_RDMA_READ,
				"RDMA READ in a chain of 3");
	if (err)
		return err;
	return kt_compare(ctx, "3 RDMA READs data", abuf, want, KT_BUF_SIZE);
}

/* SEND/RECV on CQs that ib_core polls (softirq or workqueue). */
static int kt_test_cq_poll(struct kt_ctx *ctx)
{
	return kt_test_send_recv(ctx);
}

#define KT_FR_ALL (IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_READ | \
		   IB_ACCESS_REMOTE_WRITE)

/*
 * A fast-register MR over 4 separate pages, starting 256 bytes into the
 * first and ending 512 bytes before the end of the last: REG_MR, RDMA
 * WRITE and READ through its rkey across every page, LOCAL_INV, then an
 * RDMA WRITE to the invalidated rkey fails with a remote access error and
 * changes nothing.
 */
static int kt_test_fastreg(struct kt_ctx *ctx)
{
	u32 len;
	int err;

	err = kt_fr_alloc(ctx, KT_FR_PAGES);
	if (!err)
		err = kt_fr_map(ctx, KT_FR_PAGES, 256, 512);
	if (!err)
		err = kt_fr_reg(ctx, KT_FR_ALL);
	if (err)
		return err;
	len = ctx->fr.mr->length;

	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 31);
	err = kt_fr_write(ctx, 0, 100, len - 100, ctx->fr.mr->rkey,
			  IB_WC_SUCCESS, "RDMA WRITE to the fast-reg MR");
	if (!err)
		err = kt_fr_write(ctx, 8000, 0, 10, ctx->fr.mr->rkey,
				  IB_WC_SUCCESS, "RDMA WRITE to its first byte");
	if (!err)
		err = kt_fr_read(ctx, 0, 0, len, "RDMA READ of the fast-reg MR");
	if (!err)
		err = kt_fr_read(ctx, 0, PAGE_SIZE - 300, 600,
				 "RDMA READ across a page boundary");
	if (!err)
		err = kt_fr_local_inv(ctx, ctx->fr.mr->rkey);
	if (err)
		return err;

	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 32);
	return kt_fr_write(ctx, 0, 100, 64, ctx->fr.mr->rkey,
			   IB_WC_REM_ACCESS_ERR,
			   "RDMA WRITE to the invalidated rkey");
}

/*
 * Re-registration as ULPs do it: LOCAL_INV, map a new page list, then
 * REG_MR chained with a SEND that carries the new rkey to the peer, which
 * writes with it; the old rkey no longer works.
 */
static int kt_test_fastreg_rereg(struct kt_ctx *ctx)
{
	static const struct kt_seg key_msg = { 0, sizeof(__be32) };
	struct kt_cqe *rc, *regc, *sendc;
	struct ib_reg_wr reg;
	struct ib_send_wr send = {};
	struct ib_sge sge;
	u32 old_rkey, rkey;
	__be32 key;
	int err;

	err = kt_fr_alloc(ctx, KT_FR_PAGES);
	if (!err)
		err = kt_fr_map(ctx, KT_FR_PAGES, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, KT_FR_ALL);
	if (err)
		return err;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 41);
	err = kt_fr_write(ctx, 0, PAGE_SIZE - 10, 2 * PAGE_SIZE, ctx->fr.mr->rkey,
			  IB_WC_SUCCESS, "RDMA WRITE, first registration");
	if (err)
		return err;
	old_rkey = ctx->fr.mr->rkey;
	err = kt_fr_local_inv(ctx, old_rkey);
	if (!err)
		err = kt_fr_map(ctx, 2, 1024, 0);
	if (err)
		return err;

	rc = kt_post_recv(ctx, KT_A, &key_msg, 1);
	regc = kt_cqe_new(ctx);
	sendc = kt_cqe_new(ctx);
	if (!rc || !regc || !sendc)
		return kt_fail(ctx, "posting failed");
	kt_fr_reg_wr(ctx, &reg, regc, KT_FR_ALL);
	rkey = ctx->fr.mr->rkey;
	if (rkey == old_rkey)
		return kt_fail(ctx, "ib_inc_rkey did not change the rkey");
	key = cpu_to_be32(rkey);
	memcpy(ctx->side[KT_B].buf, &key, sizeof(key));
	sge = kt_sge(ctx, KT_B, 0, sizeof(key));
	send.wr_cqe = &sendc->cqe;
	send.opcode = IB_WR_SEND;
	send.send_flags = IB_SEND_SIGNALED;
	send.sg_list = &sge;
	send.num_sge = 1;
	reg.wr.next = &send;
	err = kt_post_send(ctx, KT_B, &reg.wr, "REG_MR + SEND");
	if (!err)
		err = kt_expect(ctx, KT_B, regc, IB_WC_SUCCESS, IB_WC_REG_MR,
				"REG_MR chained with SEND");
	if (!err)
		err = kt_expect(ctx, KT_B, sendc, IB_WC_SUCCESS, IB_WC_SEND,
				"SEND after REG_MR");
	if (!err)
		err = kt_expect(ctx, KT_A, rc, IB_WC_SUCCESS, IB_WC_RECV,
				"RECV of the rkey");
	if (err)
		return err;

	memcpy(&key, ctx->side[KT_A].buf, sizeof(key));
	if (be32_to_cpu(key) != rkey)
		return kt_fail(ctx, "received rkey %#x, sent %#x",
			       be32_to_cpu(key), rkey);
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 42);
	err = kt_fr_write(ctx, 100, 0, ctx->fr.mr->length, rkey, IB_WC_SUCCESS,
			  "RDMA WRITE with the received rkey");
	if (!err)
		err = kt_fr_read(ctx, 0, 0, ctx->fr.mr->length,
				 "RDMA READ, second registration");
	if (err)
		return err;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 43);
	return kt_fr_write(ctx, 0, 0, 64, old_rkey, IB_WC_REM_ACCESS_ERR,
			   "RDMA WRITE with the previous rkey");
}

/* REG_MR with remote read only: READ works, WRITE is refused. */
static int kt_test_fastreg_access(struct kt_ctx *ctx)
{
	int err;

	err = kt_fr_alloc(ctx, 2);
	if (!err)
		err = kt_fr_map(ctx, 2, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, IB_ACCESS_LOCAL_WRITE |
				IB_ACCESS_REMOTE_READ);
	if (!err)
		err = kt_fr_read(ctx, 0, 0, ctx->fr.mr->length,
				 "RDMA READ of a read-only MR");
	if (err)
		return err;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 51);
	return kt_fr_write(ctx, 0, 0, 64, ctx->fr.mr->rkey,
			   IB_WC_REM_ACCESS_ERR,
			   "RDMA WRITE to a read-only MR");
}

/* An RDMA WRITE running past the end of the MR is refused entirely. */
static int kt_test_fastreg_bounds(struct kt_ctx *ctx)
{
	u32 len;
	int err;

	err = kt_fr_alloc(ctx, 2);
	if (!err)
		err = kt_fr_map(ctx, 2, 0, 512);
	if (!err)
		err = kt_fr_reg(ctx, KT_FR_ALL);
	if (err)
		return err;
	len = ctx->fr.mr->length;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 61);
	err = kt_fr_write(ctx, 0, len - 16, 16, ctx->fr.mr->rkey, IB_WC_SUCCESS,
			  "RDMA WRITE of the MR's last 16 bytes");
	if (err)
		return err;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 62);
	return kt_fr_write(ctx, 0, len - 16, 32, ctx->fr.mr->rkey,
			   IB_WC_REM_ACCESS_ERR,
			   "RDMA WRITE past the MR's end");
}

/*
 * SEND_WITH_INV of a multi-packet message naming B's fast-reg MR: B's
 * receive completes with IB_WC_WITH_INVALIDATE and the rkey.
 */
static int kt_send_with_inv(struct kt_ctx *ctx)
{
	static const struct kt_seg recv = { 0, 4096 };
	struct kt_cqe *rc, *sc;
	struct ib_send_wr wr = {};
	struct ib_sge sge;
	u32 rkey, len = 3000;
	int err;

	err = kt_fr_alloc(ctx, 2);
	if (!err)
		err = kt_fr_map(ctx, 2, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, KT_FR_ALL);
	if (err)
		return err;
	rkey = ctx->fr.mr->rkey;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 71);
	err = kt_fr_write(ctx, 0, 0, 100, rkey, IB_WC_SUCCESS,
			  "RDMA WRITE before SEND_WITH_INV");
	if (err)
		return err;

	rc = kt_post_recv(ctx, KT_B, &recv, 1);
	sc = kt_cqe_new(ctx);
	if (!rc || !sc)
		return kt_fail(ctx, "posting failed");
	sge = kt_sge(ctx, KT_A, 500, len);
	wr.wr_cqe = &sc->cqe;
	wr.opcode = IB_WR_SEND_WITH_INV;
	wr.send_flags = IB_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.ex.invalidate_rkey = rkey;
	err = kt_post_send(ctx, KT_A, &wr, "SEND_WITH_INV");
	if (!err)
		err = kt_expect(ctx, KT_A, sc, IB_WC_SUCCESS, IB_WC_SEND,
				"SEND_WITH_INV");
	if (!err)
		err = kt_expect(ctx, KT_B, rc, IB_WC_SUCCESS, IB_WC_RECV,
				"RECV of SEND_WITH_INV");
	if (err)
		return err;
	if (!(rc->wc.wc_flags & IB_WC_WITH_INVALIDATE) ||
	    rc->wc.ex.invalidate_rkey != rkey)
		return kt_fail(ctx, "RECV: wc_flags %#x rkey %#x, expected WITH_INVALIDATE %#x",
			       rc->wc.wc_flags, rc->wc.ex.invalidate_rkey,
			       rkey);
	if (rc->wc.byte_len != len)
		return kt_fail(ctx, "RECV: byte_len %u, expected %u",
			       rc->wc.byte_len, len);
	return kt_compare(ctx, "SEND_WITH_INV data", ctx->side[KT_B].buf,
			  ctx->side[KT_A].buf + 500, len);
}

/* ... and the MR is invalid afterwards: A's next WRITE fails. */
static int kt_test_send_with_inv(struct kt_ctx *ctx)
{
	int err = kt_send_with_inv(ctx);

	if (err)
		return err;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 72);
	return kt_fr_write(ctx, 0, 0, 64, ctx->fr.mr->rkey,
			   IB_WC_REM_ACCESS_ERR,
			   "RDMA WRITE to the remotely invalidated rkey");
}

/* ... and B can register it again (only a free MR can be registered). */
static int kt_test_send_with_inv_rereg(struct kt_ctx *ctx)
{
	int err = kt_send_with_inv(ctx);

	if (!err)
		err = kt_fr_map(ctx, 2, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, KT_FR_ALL);
	if (err)
		return err;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 73);
	return kt_fr_write(ctx, 0, 0, ctx->fr.mr->length, ctx->fr.mr->rkey,
			   IB_WC_SUCCESS,
			   "RDMA WRITE after registering again");
}

/* An SGE of B's fast-reg MR (its lkey) at MR offset @mroff. */
static struct ib_sge kt_fr_sge(struct kt_ctx *ctx, u32 mroff, u32 len)
{
	return (struct ib_sge){
		.addr = ctx->fr.mr->iova + mroff,
		.length = len,
		.lkey = ctx->fr.mr->lkey,
	};
}

/*
 * A fast-reg MR as local memory (lkey) of B: a RECV into it, a SEND from
 * it; after LOCAL_INV, a SEND from it fails with a local protection error.
 */
static int kt_test_fastreg_local(struct kt_ctx *ctx)
{
	static const struct kt_seg arecv = { 0, 4096 };
	struct ib_recv_wr rwr = {};
	struct ib_send_wr wr = {};
	const struct ib_recv_wr *bad;
	struct kt_cqe *rc, *sc, *brc;
	struct kt_fr *fr = &ctx->fr;
	struct ib_sge sge;
	int err;

	err = kt_fr_alloc(ctx, 3);
	if (!err)
		err = kt_fr_map(ctx, 3, 128, 0);
	if (!err)
		err = kt_fr_reg(ctx, IB_ACCESS_LOCAL_WRITE);
	if (err)
		return err;

	/* A -> B: 5000 bytes into the MR at offset 50. */
	brc = kt_cqe_new(ctx);
	sc = kt_cqe_new(ctx);
	if (!brc || !sc)
		return kt_fail(ctx, "out of completion slots");
	sge = kt_fr_sge(ctx, 50, 5000);
	rwr.wr_cqe = &brc->cqe;
	rwr.sg_list = &sge;
	rwr.num_sge = 1;
	err = ib_post_recv(ctx->side[KT_B].qp, &rwr, &bad);
	if (err)
		return kt_fail(ctx, "ib_post_recv: %d", err);
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 81);
	sge = kt_sge(ctx, KT_A, 300, 5000);
	wr.wr_cqe = &sc->cqe;
	wr.opcode = IB_WR_SEND;
	wr.send_flags = IB_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	err = kt_post_send(ctx, KT_A, &wr, "SEND to a fast-reg MR");
	if (!err)
		err = kt_expect(ctx, KT_A, sc, IB_WC_SUCCESS, IB_WC_SEND,
				"SEND to a fast-reg MR");
	if (!err)
		err = kt_expect(ctx, KT_B, brc, IB_WC_SUCCESS, IB_WC_RECV,
				"RECV into a fast-reg MR");
	if (err)
		return err;
	if (brc->wc.byte_len != 5000)
		return kt_fail(ctx, "RECV: byte_len %u, expected 5000",
			       brc->wc.byte_len);
	memcpy(fr->shadow + fr->head + 50, ctx->side[KT_A].buf + 300, 5000);
	err = kt_fr_check(ctx, "RECV into a fast-reg MR");
	if (err)
		return err;

	/* B -> A: 3000 bytes of the MR from offset 1000. */
	rc = kt_post_recv(ctx, KT_A, &arecv, 1);
	sc = kt_cqe_new(ctx);
	if (!rc || !sc)
		return kt_fail(ctx, "posting failed");
	memset(ctx->side[KT_A].buf, 0, KT_BUF_SIZE);
	sge = kt_fr_sge(ctx, 1000, 3000);
	wr.wr_cqe = &sc->cqe;
	err = kt_post_send(ctx, KT_B, &wr, "SEND from a fast-reg MR");
	if (!err)
		err = kt_expect(ctx, KT_B, sc, IB_WC_SUCCESS, IB_WC_SEND,
				"SEND from a fast-reg MR");
	if (!err)
		err = kt_expect(ctx, KT_A, rc, IB_WC_SUCCESS, IB_WC_RECV,
				"RECV of a SEND from a fast-reg MR");
	if (!err)
		err = kt_compare(ctx, "SEND from a fast-reg MR data",
				 ctx->side[KT_A].buf,
				 fr->shadow + fr->head + 1000, 3000);
	if (!err)
		err = kt_fr_local_inv(ctx, fr->mr->rkey);
	if (err)
		return err;

	/* The invalidated lkey is refused locally. */
	rc = kt_post_recv(ctx, KT_A, &arecv, 1);
	sc = kt_cqe_new(ctx);
	if (!rc || !sc)
		return kt_fail(ctx, "posting failed");
	sge = kt_fr_sge(ctx, 0, 100);
	wr.wr_cqe = &sc->cqe;
	err = kt_post_send(ctx, KT_B, &wr, "SEND from an invalidated MR");
	if (!err)
		err = kt_expect(ctx, KT_B, sc, IB_WC_LOC_PROT_ERR, IB_WC_SEND,
				"SEND from an invalidated MR");
	return err;
}

/*
 * IB_SEND_FENCE on LOCAL_INV: B READs from A into its fast-reg MR and
 * invalidates the MR in the same post, fenced: the invalidation waits for
 * the READ's responses, which land in the MR before it becomes invalid.
 */
static int kt_test_local_inv_fence(struct kt_ctx *ctx)
{
	struct kt_fr *fr = &ctx->fr;
	struct kt_cqe *rdc, *invc;
	struct ib_send_wr inv = {};
	struct ib_rdma_wr rd = {};
	struct ib_sge sge;
	u32 len;
	int err;

	err = kt_fr_alloc(ctx, 3);
	if (!err)
		err = kt_fr_map(ctx, 3, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, IB_ACCESS_LOCAL_WRITE);
	if (err)
		return err;
	len = fr->mr->length;
	kt_fill(ctx->side[KT_A].buf, KT_BUF_SIZE, 91);

	rdc = kt_cqe_new(ctx);
	invc = kt_cqe_new(ctx);
	if (!rdc || !invc)
		return kt_fail(ctx, "out of completion slots");
	sge = kt_fr_sge(ctx, 0, len);
	rd.wr.wr_cqe = &rdc->cqe;
	rd.wr.opcode = IB_WR_RDMA_READ;
	rd.wr.send_flags = IB_SEND_SIGNALED;
	rd.wr.sg_list = &sge;
	rd.wr.num_sge = 1;
	rd.wr.next = &inv;
	rd.remote_addr = ctx->side[KT_A].dma + 100;
	rd.rkey = ctx->pd->unsafe_global_rkey;
	inv.wr_cqe = &invc->cqe;
	inv.opcode = IB_WR_LOCAL_INV;
	inv.send_flags = IB_SEND_SIGNALED | IB_SEND_FENCE;
	inv.ex.invalidate_rkey = fr->mr->rkey;
	err = kt_post_send(ctx, KT_B, &rd.wr, "RDMA READ + fenced LOCAL_INV");
	if (!err)
		err = kt_expect(ctx, KT_B, rdc, IB_WC_SUCCESS, IB_WC_RDMA_READ,
				"RDMA READ into a fast-reg MR");
	if (!err)
		err = kt_expect(ctx, KT_B, invc, IB_WC_SUCCESS, IB_WC_LOCAL_INV,
				"fenced LOCAL_INV");
	if (err)
		return err;
	memcpy(fr->shadow, ctx->side[KT_A].buf + 100, len);
	return kt_fr_check(ctx, "RDMA READ into a fast-reg MR");
}

/* Posts an atomic from A on B's MR at @mroff, result to A's buf at 0. */
static int kt_atomic(struct kt_ctx *ctx, enum ib_wr_opcode opcode, u32 mroff,
		     u64 compare_add, u64 swap, u64 want_orig, const char *what)
{
	struct kt_cqe *c = kt_cqe_new(ctx);
	struct ib_atomic_wr wr = {};
	struct ib_sge sge;
	u64 orig;
	int err;

	if (!c)
		return kt_fail(ctx, "out of completion slots");
	memset(ctx->side[KT_A].buf, 0xee, sizeof(u64));
	sge = kt_sge(ctx, KT_A, 0, sizeof(u64));
	wr.wr.wr_cqe = &c->cqe;
	wr.wr.opcode = opcode;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.remote_addr = ctx->fr.mr->iova + mroff;
	wr.compare_add = compare_add;
	wr.swap = swap;
	wr.rkey = ctx->fr.mr->rkey;
	err = kt_post_send(ctx, KT_A, &wr.wr, what);
	if (!err)
		err = kt_expect(ctx, KT_A, c, IB_WC_SUCCESS,
				opcode == IB_WR_ATOMIC_CMP_AND_SWP ?
				IB_WC_COMP_SWAP : IB_WC_FETCH_ADD, what);
	if (err)
		return err;
	memcpy(&orig, ctx->side[KT_A].buf, sizeof(orig));
	if (orig != want_orig)
		return kt_fail(ctx, "%s: returned %#llx, expected %#llx", what,
			       orig, want_orig);
	return 0;
}

/*
 * Atomics on a fast-reg MR registered with remote atomic access: compare
 * and swap (matching and not), fetch and add; values in host byte order.
 */
static int kt_test_atomic(struct kt_ctx *ctx)
{
	struct kt_fr *fr = &ctx->fr;
	u64 v = 0x1122334455667788ULL, x = 0x0102030405060708ULL;
	u32 off = PAGE_SIZE - 8;	/* the last word of the first page */
	int err;

	err = kt_fr_alloc(ctx, 2);
	if (!err)
		err = kt_fr_map(ctx, 2, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, IB_ACCESS_LOCAL_WRITE |
				IB_ACCESS_REMOTE_ATOMIC);
	if (err)
		return err;
	memcpy(fr->shadow + off, &v, sizeof(v));
	kt_fr_copy(fr, off, (u8 *)&v, sizeof(v), true);

	err = kt_atomic(ctx, IB_WR_ATOMIC_CMP_AND_SWP, off, v, x, v,
			"compare and swap");
	if (!err) {
		memcpy(fr->shadow + off, &x, sizeof(x));
		err = kt_fr_check(ctx, "compare and swap");
	}
	if (!err)
		err = kt_atomic(ctx, IB_WR_ATOMIC_CMP_AND_SWP, off, v, 0, x,
				"compare (not equal) and swap");
	if (!err)
		err = kt_fr_check(ctx, "compare (not equal) and swap");
	if (!err)
		err = kt_atomic(ctx, IB_WR_ATOMIC_FETCH_AND_ADD, off, 5, 0, x,
				"fetch and add");
	if (err)
		return err;
	x += 5;
	memcpy(fr->shadow + off, &x, sizeof(x));
	return kt_fr_check(ctx, "fetch and add");
}

/* Posts a gift_ex_wr from A and waits for its completion. */
static int kt_post_ex(struct kt_ctx *ctx, struct gift_ex_wr *ex,
		      enum ib_wc_status status, enum ib_wc_opcode opcode,
		      const char *what)
{
	struct kt_cqe *c = kt_cqe_new(ctx);
	int err;

	if (!c)
		return kt_fail(ctx, "out of completion slots");
	ex->wr.wr_cqe = &c->cqe;
	ex->wr.send_flags = IB_SEND_SIGNALED;
	err = kt_post_send(ctx, KT_A, &ex->wr, what);
	return err ?: kt_expect(ctx, KT_A, c, status, opcode, what);
}

/*
 * A kernel ULP's RDMA ATOMIC WRITE and FLUSH (struct gift_ex_wr) at a
 * fast-reg MR of B with remote write and global flush access: the 8
 * bytes land in place, nothing else changes; a FLUSH of a range and of
 * the whole MR completes with IB_WC_FLUSH; a misaligned ATOMIC WRITE is
 * an invalid request.
 */
static int kt_test_flush_atomic_write(struct kt_ctx *ctx)
{
	static const u8 val[8] = { 0xfe, 0xdc, 0xba, 0x98,
				   0x76, 0x54, 0x32, 0x10 };
	struct kt_fr *fr = &ctx->fr;
	u32 off = PAGE_SIZE + 64;
	struct gift_ex_wr ex = {};
	int err;

	err = kt_fr_alloc(ctx, 2);
	if (!err)
		err = kt_fr_map(ctx, 2, 0, 0);
	if (!err)
		err = kt_fr_reg(ctx, IB_ACCESS_LOCAL_WRITE |
				IB_ACCESS_REMOTE_WRITE |
				IB_ACCESS_FLUSH_GLOBAL);
	if (err)
		return err;

	ex.wr.opcode = IB_WR_ATOMIC_WRITE;
	ex.remote_addr = fr->mr->iova + off;
	ex.rkey = fr->mr->rkey;
	memcpy(ex.atomic_wr, val, sizeof(val));
	err = kt_post_ex(ctx, &ex, IB_WC_SUCCESS, IB_WC_ATOMIC_WRITE,
			 "atomic write");
	if (err)
		return err;
	memcpy(fr->shadow + off, val, sizeof(val));
	err = kt_fr_check(ctx, "atomic write");
	if (err)
		return err;

	memset(&ex, 0, sizeof(ex));
	ex.wr.opcode = IB_WR_FLUSH;
	ex.remote_addr = fr->mr->iova + PAGE_SIZE;
	ex.rkey = fr->mr->rkey;
	ex.length = PAGE_SIZE;
	ex.flush_type = IB_FLUSH_GLOBAL;
	ex.flush_level = IB_FLUSH_RANGE;
	err = kt_post_ex(ctx, &ex, IB_WC_SUCCESS, IB_WC_FLUSH, "flush range");
	if (err)
		return err;
	ex.flush_level = IB_FLUSH_MR;
	err = kt_post_ex(ctx, &ex, IB_WC_SUCCESS, IB_WC_FLUSH, "flush MR");
	if (err)
		return err;

	memset(&ex, 0, sizeof(ex));
	ex.wr.opcode = IB_WR_ATOMIC_WRITE;
	ex.remote_addr = fr->mr->iova + off + 4;
	ex.rkey = fr->mr->rkey;
	err = kt_post_ex(ctx, &ex, IB_WC_REM_INV_REQ_ERR, 0,
			 "misaligned atomic write");
	return err ?: kt_fr_check(ctx, "misaligned atomic write");
}

/*
 * Retransmission across a local operation: B posts SEND, REG_MR, a
 * multi-packet SEND and a SEND before A has receives, so the first SEND
 * is RNR NAKed and everything after it is sent again once A posts its
 * receives; all four complete and the messages arrive intact.
 */
static int kt_test_rnr_reg_mr(struct kt_ctx *ctx)
{
	static const struct kt_seg sends[] = {
		{ 0, 200 }, { 1000, 3000 }, { 5000, 100 },
	};
	static const struct kt_seg recvs[] = {
		{ 0, 4096 }, { 4096, 4096 }, { 8192, 4096 },
	};
	struct ib_send_wr wr[ARRAY_SIZE(sends)] = {};
	struct ib_sge sge[ARRAY_SIZE(sends)];
	struct kt_cqe *sc[ARRAY_SIZE(sends)], *rc[ARRAY_SIZE(sends)];
	u8 *abuf = ctx->side[KT_A].buf, *bbuf = ctx->side[KT_B].buf;
	struct kt_cqe *regc;
	struct ib_reg_wr reg;
	unsigned int i;
	int err;

	err = kt_fr_alloc(ctx, 2);
	if (!err)
		err = kt_fr_map(ctx, 2, 0, 0);
	if (err)
		return err;
	kt_fill(bbuf, KT_BUF_SIZE, 101);
	memset(abuf, 0xee, KT_BUF_SIZE);

	regc = kt_cqe_new(ctx);
	if (!regc)
		return kt_fail(ctx, "out of completion slots");
	kt_fr_reg_wr(ctx, &reg, regc, KT_FR_ALL);
	for (i = 0; i < ARRAY_SIZE(sends); i++) {
		sc[i] = kt_cqe_new(ctx);
		if (!sc[i])
			return kt_fail(ctx, "out of completion slots");
		sge[i] = kt_sge(ctx, KT_B, sends[i].off, sends[i].len);
		wr[i].wr_cqe = &sc[i]->cqe;
		wr[i].opcode = IB_WR_SEND;
		wr[i].send_flags = IB_SEND_SIGNALED;
		wr[i].sg_list = &sge[i];
		wr[i].num_sge = 1;
	}
	/* SEND, REG_MR, SEND (3 packets at MTU 1024), SEND */
	wr[0].next = &reg.wr;
	reg.wr.next = &wr[1];
	wr[1].next = &wr[2];
	err = kt_post_send(ctx, KT_B, &wr[0], "SEND, REG_MR, SEND, SEND");
	if (err)
		return err;

	/* Let the first SEND be RNR NAKed (and retried) a few times. */
	msleep(50);
	for (i = 0; i < ARRAY_SIZE(recvs); i++) {
		rc[i] = kt_post_recv(ctx, KT_A, &recvs[i], 1);
		if (!rc[i])
			return -EIO;
	}
	err = kt_expect(ctx, KT_B, sc[0], IB_WC_SUCCESS, IB_WC_SEND,
			"SEND before REG_MR");
	if (!err)
		err = kt_expect(ctx, KT_B, regc, IB_WC_SUCCESS, IB_WC_REG_MR,
				"REG_MR between SENDs");
	for (i = 1; i < ARRAY_SIZE(sends) && !err; i++)
		err = kt_expect(ctx, KT_B, sc[i], IB_WC_SUCCESS, IB_WC_SEND,
				"SEND after REG_MR");
	for (i = 0; i < ARRAY_SIZE(sends) && !err; i++) {
		err = kt_expect(ctx, KT_A, rc[i], IB_WC_SUCCESS, IB_WC_RECV,
				"RECV");
		if (!err && rc[i]->wc.byte_len != sends[i].len)
			err = kt_fail(ctx, "RECV %u: byte_len %u, expected %u", i,
				      rc[i]->wc.byte_len, sends[i].len);
		if (!err)
			err = kt_compare(ctx, "RECV data", abuf + recvs[i].off,
					 bbuf + sends[i].off, sends[i].len);
	}
	return err;
}

/*
 * Joins (@join) or leaves IPv4 group @group on the GID's netdev, as
 * rdma_cm does for its users (cma_igmp_send()): stock rxe needs it to
 * receive, gift joins by itself on attach (a second membership is only
 * counted).
 */
static void kt_igmp(struct kt_ctx *ctx, __be32 group, bool join)
{
	struct in_device *in_dev;
	struct net_device *ndev;

	rtnl_lock();
	rcu_read_lock();
	ndev = rdma_read_gid_attr_ndev_rcu(ctx->sgid_attr);
	if (!IS_ERR(ndev))
		dev_hold(ndev);
	rcu_read_unlock();
	if (!IS_ERR(ndev)) {
		in_dev = __in_dev_get_rtnl(ndev);
		if (in_dev && join)
			ip_mc_inc_group(in_dev, group);
		else if (in_dev)
			ip_mc_dec_group(in_dev, group);
		dev_put(ndev);
	}
	rtnl_unlock();
}

/*
 * Multicast, the way a kernel ULP uses it: B's UD QP attached to an IPv4
 * group receives A's datagram to the group (DestQP 0xFFFFFF): the GRH
 * area, then A's bytes, from A's QPN. ib_core refuses to destroy a QP
 * that is still attached (-EBUSY, its usecnt); detached, it goes (a
 * group or attachment left behind would warn when the device goes away,
 * and kmemleak would see it on the debug kernel).
 */
static int kt_test_mcast_destroy_attached(struct kt_ctx *ctx)
{
	const __be32 group = htonl(0xefff4a01);	/* 239.255.74.1 */
	const struct kt_seg rseg = { 0, sizeof(struct ib_grh) + 256 };
	struct rdma_ah_attr ah_attr = { .type = RDMA_AH_ATTR_TYPE_ROCE };
	struct ib_qp *qp = ctx->side[KT_B].qp;
	u8 *abuf = ctx->side[KT_A].buf, *bbuf = ctx->side[KT_B].buf;
	struct ib_ud_wr wr = {};
	union ib_gid mgid = {};
	struct kt_cqe *rc, *sc;
	struct ib_sge sge;
	struct ib_ah *ah;
	int err;

	ipv6_addr_set_v4mapped(group, (struct in6_addr *)mgid.raw);
	kt_igmp(ctx, group, true);
	err = ib_attach_mcast(qp, &mgid, 0);
	if (err) {
		kt_igmp(ctx, group, false);
		return kt_fail(ctx, "ib_attach_mcast: %d", err);
	}

	rdma_ah_set_port_num(&ah_attr, KT_PORT);
	rdma_ah_set_grh(&ah_attr, &mgid, 0, ctx->sgid_attr->index, 64, 0);
	ah_attr.grh.sgid_attr = ctx->sgid_attr;
	ip_eth_mc_map(group, ah_attr.roce.dmac);
	ah = rdma_create_ah(ctx->pd, &ah_attr, RDMA_CREATE_AH_SLEEPABLE);
	if (IS_ERR(ah)) {
		ib_detach_mcast(qp, &mgid, 0);
		kt_igmp(ctx, group, false);
		return kt_fail(ctx, "rdma_create_ah: %ld", PTR_ERR(ah));
	}

	kt_fill(abuf, KT_BUF_SIZE, 7);
	memset(bbuf, 0xee, KT_BUF_SIZE);
	rc = kt_post_recv(ctx, KT_B, &rseg, 1);
	sc = kt_cqe_new(ctx);
	if (!rc || !sc) {
		err = kt_fail(ctx, "cannot post");
		goto out;
	}
	sge = kt_sge(ctx, KT_A, 0, 256);
	wr.wr.wr_cqe = &sc->cqe;
	wr.wr.opcode = IB_WR_SEND;
	wr.wr.send_flags = IB_SEND_SIGNALED;
	wr.wr.sg_list = &sge;
	wr.wr.num_sge = 1;
	wr.ah = ah;
	wr.remote_qpn = 0xffffff;
	wr.remote_qkey = KT_QKEY;
	err = kt_post_send(ctx, KT_A, &wr.wr, "SEND to the group");
	if (!err)
		err = kt_expect(ctx, KT_A, sc, IB_WC_SUCCESS, IB_WC_SEND,
				"SEND to the group");
	if (!err)
		err = kt_expect(ctx, KT_B, rc, IB_WC_SUCCESS, IB_WC_RECV,
				"RECV from the group");
	if (!err && rc->wc.byte_len != rseg.len)
		err = kt_fail(ctx, "RECV: byte_len %u, expected %u",
			      rc->wc.byte_len, rseg.len);
	if (!err && rc->wc.src_qp != ctx->side[KT_A].qp->qp_num)
		err = kt_fail(ctx, "RECV: src_qp %u, expected %u",
			      rc->wc.src_qp, ctx->side[KT_A].qp->qp_num);
	if (!err)
		err = kt_compare(ctx, "RECV data", bbuf + sizeof(struct ib_grh),
				 abuf, 256);
	if (err)
		goto out;

	err = ib_destroy_qp(qp);
	if (err != -EBUSY) {
		if (!err)
			ctx->side[KT_B].qp = NULL;
		err = kt_fail(ctx, "ib_destroy_qp of an attached QP: %d", err);
		goto out;
	}
	err = ib_detach_mcast(qp, &mgid, 0);
	if (err) {
		err = kt_fail(ctx, "ib_detach_mcast: %d", err);
		goto out_leave;
	}
	err = ib_destroy_qp(qp);
	if (err) {
		err = kt_fail(ctx, "ib_destroy_qp once detached: %d", err);
		goto out_leave;
	}
	ctx->side[KT_B].qp = NULL;
	goto out_leave;
out:
	/* Failed: detach, so that the teardown can destroy it. */
	if (ctx->side[KT_B].qp)
		ib_detach_mcast(qp, &mgid, 0);
out_leave:
	rdma_destroy_ah(ah, RDMA_DESTROY_AH_SLEEPABLE);
	kt_igmp(ctx, group, false);
	return err;
}

/*
 * rdma_cm: a kernel ULP's connection, both ends in this module. A
 * listener bound to the device's IPv4 address, a client that resolves
 * the address and route and connects with private data, the server side
 * accepting on the new ID; then a SEND each way with data checked, and a
 * disconnect seen by both ends. ib_cm's MADs go over the device's GSI
 * QP. The QPs are rdma_cm's (rdma_create_qp()): it moves them through
 * INIT, RTR and RTS and to ERROR at the disconnect.
 */
#define KT_CM_PORT		18861
#define KT_CM_TIMEOUT_MS	5000
#define KT_CM_PDATA		"gift_ktest rdma_cm"

/**
 * struct kt_cm_end - the events one end of the connection saw
 * @cm: the test's state; the context of the end's IDs
 * @seen: bit N set when event N (enum rdma_cm_event_type) arrived
 * @error: the first error event, 0 while none
 * @status: its status
 */
struct kt_cm_end {
	struct kt_cm *cm;
	unsigned long seen;
	int error;
	int status;
};

/**
 * struct kt_cm - the rdma_cm side of the test
 * @listen: the listening ID
 * @id: the client's ID (side A) and the accepted one (side B)
 * @end: events of side A's ID, and of the listener and side B's ID
 * @pdata: the private data of the connect request
 * @wq: woken at every event
 *
 * Locking: the handler writes @end, @id[KT_B] and @pdata before it
 * wakes @wq; the test reads them after wait_event_timeout() saw the bit.
 */
struct kt_cm {
	struct rdma_cm_id *listen;
	struct rdma_cm_id *id[2];
	struct kt_cm_end end[2];
	char pdata[sizeof(KT_CM_PDATA)];
	wait_queue_head_t wq;
};

/* The listener's events and side B's share end[KT_B] (inherited context). */
static int kt_cm_handler(struct rdma_cm_id *id, struct rdma_cm_event *ev)
{
	struct kt_cm_end *end = id->context;
	struct kt_cm *cm = end->cm;

	pr_debug("cm_id %p: %s, status %d\n", id, rdma_event_msg(ev->event),
		 ev->status);

	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		/* One connection; a second request is refused. */
		if (cm->id[KT_B])
			return -EBUSY;
		cm->id[KT_B] = id;
		if (ev->param.conn.private_data &&
		    ev->param.conn.private_data_len >= sizeof(cm->pdata))
			memcpy(cm->pdata, ev->param.conn.private_data,
			       sizeof(cm->pdata));
		break;
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_CONNECT_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_REJECTED:
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		if (!end->error) {
			end->error = ev->event;
			end->status = ev->status;
		}
		break;
	default:
		break;
	}
	if (ev->event < BITS_PER_LONG)
		set_bit(ev->event, &end->seen);
	wake_up_all(&cm->wq);
	return 0;
}

/* Waits until end @s saw @event; an error event ends the wait too. */
static int kt_cm_wait(struct kt_ctx *ctx, struct kt_cm *cm, int s,
		      enum rdma_cm_event_type event)
{
	struct kt_cm_end *end = &cm->end[s];

	wait_event_timeout(cm->wq, test_bit(event, &end->seen) ||
			   READ_ONCE(end->error),
			   msecs_to_jiffies(KT_CM_TIMEOUT_MS * 2));
	if (test_bit(event, &end->seen))
		return 0;
	if (end->error)
		return kt_fail(ctx, "side %c waiting for %s: %s, status %d",
			       'A' + s, rdma_event_msg(event),
			       rdma_event_msg(end->error), end->status);
	return kt_fail(ctx, "side %c: no %s in %d ms", 'A' + s,
		       rdma_event_msg(event), KT_CM_TIMEOUT_MS * 2);
}

static struct rdma_cm_id *kt_cm_id(struct kt_ctx *ctx, struct kt_cm *cm,
				   int s)
{
	struct rdma_cm_id *id;

	id = rdma_create_id(&init_net, kt_cm_handler, &cm->end[s],
			    RDMA_PS_TCP, IB_QPT_RC);
	if (IS_ERR(id)) {
		kt_fail(ctx, "rdma_create_id: %ld", PTR_ERR(id));
		return NULL;
	}
	return id;
}

/* A SEND of @len pattern bytes from side @from to side @to, checked. */
static int kt_cm_send(struct kt_ctx *ctx, int from, int to, u32 len, u8 seed)
{
	struct kt_seg rseg = { .off = 0, .len = KT_BUF_SIZE };
	struct ib_sge ssge = kt_sge(ctx, from, 0, len);
	struct ib_send_wr wr = {
		.opcode = IB_WR_SEND,
		.send_flags = IB_SEND_SIGNALED,
		.sg_list = &ssge,
		.num_sge = 1,
	};
	struct kt_cqe *rc, *sc;
	int err;

	kt_fill(ctx->side[from].buf, len, seed);
	rc = kt_post_recv(ctx, to, &rseg, 1);
	if (!rc)
		return -EIO;
	sc = kt_cqe_new(ctx);
	if (!sc)
		return -EIO;
	wr.wr_cqe = &sc->cqe;
	err = kt_post_send(ctx, from, &wr, "SEND");
	if (err)
		return err;
	err = kt_expect(ctx, from, sc, IB_WC_SUCCESS, IB_WC_SEND, "SEND");
	if (!err)
		err = kt_expect(ctx, to, rc, IB_WC_SUCCESS, IB_WC_RECV, "RECV");
	if (err)
		return err;
	if (rc->wc.byte_len != len)
		return kt_fail(ctx, "RECV byte_len %u, expected %u",
			       rc->wc.byte_len, len);
	return kt_compare(ctx, "RECV data", ctx->side[to].buf,
			  ctx->side[from].buf, len);
}

static int kt_cm_run(struct kt_ctx *ctx, struct kt_cm *cm)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(KT_CM_PORT),
	};
	struct rdma_conn_param param = {
		.private_data = KT_CM_PDATA,
		.private_data_len = sizeof(KT_CM_PDATA),
		.responder_resources = 1,
		.initiator_depth = 1,
		.retry_count = 7,
		.rnr_retry_count = 7,
	};
	int err;

	memcpy(&addr.sin_addr, &ctx->sgid_attr->gid.raw[12], 4);

	cm->listen = kt_cm_id(ctx, cm, KT_B);
	if (!cm->listen)
		return -EIO;
	err = rdma_bind_addr(cm->listen, (struct sockaddr *)&addr);
	if (err)
		return kt_fail(ctx, "rdma_bind_addr %pI4: %d", &addr.sin_addr,
			       err);
	if (cm->listen->device != ctx->dev)
		return kt_fail(ctx, "%pI4 is bound to device %s", &addr.sin_addr,
			       cm->listen->device ? cm->listen->device->name :
			       "(none)");
	err = rdma_listen(cm->listen, 1);
	if (err)
		return kt_fail(ctx, "rdma_listen: %d", err);

	cm->id[KT_A] = kt_cm_id(ctx, cm, KT_A);
	if (!cm->id[KT_A])
		return -EIO;
	err = rdma_resolve_addr(cm->id[KT_A], NULL, (struct sockaddr *)&addr,
				KT_CM_TIMEOUT_MS);
	if (err)
		return kt_fail(ctx, "rdma_resolve_addr: %d", err);
	err = kt_cm_wait(ctx, cm, KT_A, RDMA_CM_EVENT_ADDR_RESOLVED);
	if (err)
		return err;
	if (cm->id[KT_A]->device != ctx->dev)
		return kt_fail(ctx, "the address resolved to another device");
	err = rdma_resolve_route(cm->id[KT_A], KT_CM_TIMEOUT_MS);
	if (err)
		return kt_fail(ctx, "rdma_resolve_route: %d", err);
	err = kt_cm_wait(ctx, cm, KT_A, RDMA_CM_EVENT_ROUTE_RESOLVED);
	if (err)
		return err;

	err = kt_create_side(ctx, KT_A, cm->id[KT_A]);
	if (err)
		return err;
	err = rdma_connect(cm->id[KT_A], &param);
	if (err)
		return kt_fail(ctx, "rdma_connect: %d", err);

	err = kt_cm_wait(ctx, cm, KT_B, RDMA_CM_EVENT_CONNECT_REQUEST);
	if (err)
		return err;
	if (memcmp(cm->pdata, KT_CM_PDATA, sizeof(cm->pdata)))
		return kt_fail(ctx, "connect request without our private data");
	err = kt_create_side(ctx, KT_B, cm->id[KT_B]);
	if (err)
		return err;
	/* Outside its handler, rdma_accept() wants the handler lock. */
	param.private_data = NULL;
	param.private_data_len = 0;
	rdma_lock_handler(cm->id[KT_B]);
	err = rdma_accept(cm->id[KT_B], &param);
	rdma_unlock_handler(cm->id[KT_B]);
	if (err)
		return kt_fail(ctx, "rdma_accept: %d", err);

	err = kt_cm_wait(ctx, cm, KT_A, RDMA_CM_EVENT_ESTABLISHED);
	if (!err)
		err = kt_cm_wait(ctx, cm, KT_B, RDMA_CM_EVENT_ESTABLISHED);
	if (!err)
		err = kt_cm_send(ctx, KT_A, KT_B, 3000, 0x31);
	if (!err)
		err = kt_cm_send(ctx, KT_B, KT_A, 1500 + 3, 0x57);
	if (err)
		return err;

	/*
	 * A's DREQ gives B its DISCONNECTED event; B's rdma_disconnect()
	 * answers with the DREP that gives A its own (without it, A's
	 * arrives only when the DREQ times out).
	 */
	err = rdma_disconnect(cm->id[KT_A]);
	if (err)
		return kt_fail(ctx, "rdma_disconnect (A): %d", err);
	err = kt_cm_wait(ctx, cm, KT_B, RDMA_CM_EVENT_DISCONNECTED);
	if (err)
		return err;
	err = rdma_disconnect(cm->id[KT_B]);
	if (err)
		return kt_fail(ctx, "rdma_disconnect (B): %d", err);
	return kt_cm_wait(ctx, cm, KT_A, RDMA_CM_EVENT_DISCONNECTED);
}

static int kt_test_rdma_cm(struct kt_ctx *ctx)
{
	struct kt_cm *cm;
	int err, s;

	cm = kzalloc(sizeof(*cm), GFP_KERNEL);
	if (!cm)
		return kt_fail(ctx, "out of memory");
	init_waitqueue_head(&cm->wq);
	for (s = 0; s < 2; s++)
		cm->end[s].cm = cm;
	err = kt_cm_run(ctx, cm);

	/* The QPs are rdma_cm's: destroyed through it, before the IDs. */
	for (s = 0; s < 2; s++) {
		if (cm->id[s] && cm->id[s]->qp) {
			rdma_destroy_qp(cm->id[s]);
			ctx->side[s].qp = NULL;
		}
	}
	/* Destroying the listener first refuses a late second request. */
	if (cm->listen)
		rdma_destroy_id(cm->listen);
	for (s = 0; s < 2; s++) {
		if (cm->id[s])
			rdma_destroy_id(cm->id[s]);
	}
	kfree(cm);
	return err;
}

struct kt_test {
	const char *name;
	int (*fn)(struct kt_ctx *ctx);
	unsigned int flags;
	enum ib_poll_context poll_ctx;
};

static const struct kt_test kt_tests[] = {
	{ "connect", kt_test_connect },
	{ "send_recv", kt_test_send_recv },
	{ "uc_send_recv", kt_test_send_recv, KT_UC },
	{ "uc_write", kt_test_uc_write, KT_GLOBAL_RKEY | KT_UC },
	{ "rdma_write", kt_test_rdma_write, KT_GLOBAL_RKEY },
	{ "rdma_read", kt_test_rdma_read, KT_GLOBAL_RKEY },
	{ "cq_softirq", kt_test_cq_poll, 0, IB_POLL_SOFTIRQ },
	{ "cq_workqueue", kt_test_cq_poll, 0, IB_POLL_WORKQUEUE },
	{ "fastreg", kt_test_fastreg },
	{ "fastreg_rereg", kt_test_fastreg_rereg },
	{ "fastreg_access", kt_test_fastreg_access },
	{ "fastreg_bounds", kt_test_fastreg_bounds },
	{ "fastreg_local", kt_test_fastreg_local },
	{ "local_inv_fence", kt_test_local_inv_fence, KT_GLOBAL_RKEY },
	{ "atomic", kt_test_atomic },
	{ "flush_atomic_write", kt_test_flush_atomic_write, KT_GIFT },
	{ "rnr_reg_mr", kt_test_rnr_reg_mr },
	{ "send_with_inv", kt_test_send_with_inv },
	{ "send_with_inv_rereg", kt_test_send_with_inv_rereg },
	{ "mcast_destroy_attached", kt_test_mcast_destroy_attached, KT_UD },
	{ "rdma_cm", kt_test_rdma_cm, KT_CM },
};

/* Is @ibdev a device of rdma_gift (the driver gift_wr.h is for)? */
static bool kt_is_gift(struct ib_device *ibdev)
{
	return ibdev->ops.owner &&
	       !strcmp(module_name(ibdev->ops.owner), "rdma_gift");
}

/* Runs @t on the device, under kt_lock; the result goes to kt_result. */

static void kt_run(const struct kt_test *t)
{
	struct kt_ctx *ctx;
	int err;

	lockdep_assert_held(&kt_lock);
	if (!kt_ibdev) {
		scnprintf(kt_result, sizeof(kt_result),
			  "fail: no device %s\n", kt_dev_name);
		return;
	}
	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx) {
		scnprintf(kt_result, sizeof(kt_result), "fail: out of memory\n");
		return;
	}
	if ((t->flags & KT_GIFT) && !kt_is_gift(kt_ibdev)) {
		scnprintf(kt_result, sizeof(kt_result),
			  "fail: %s is for gift devices\n", t->name);
		return;
	}
	ctx->name = t->name;
	ctx->dev = kt_ibdev;
	ctx->poll_ctx = t->poll_ctx;
	ctx->ud = t->flags & KT_UD;
	ctx->uc = t->flags & KT_UC;
	err = kt_setup(ctx, t->flags);
	if (!err)
		err = t->fn(ctx);
	kt_teardown(ctx);
	if (err && !ctx->failed)
		kt_fail(ctx, "error %d", err);
	else if (!err)
		scnprintf(kt_result, sizeof(kt_result), "ok\n");
	kfree(ctx);
}

static ssize_t kt_run_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	char buf[32], *name;
	unsigned int i;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	name = strim(buf);
	for (i = 0; i < ARRAY_SIZE(kt_tests); i++) {
		if (!strcmp(name, kt_tests[i].name))
			break;
	}
	if (i == ARRAY_SIZE(kt_tests))
		return -EINVAL;

	mutex_lock(&kt_lock);
	kt_run(&kt_tests[i]);
	mutex_unlock(&kt_lock);
	return count;
}

static ssize_t kt_run_read(struct file *file, char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&kt_lock);
	ret = simple_read_from_buffer(ubuf, count, ppos, kt_result,
				      strlen(kt_result));
	mutex_unlock(&kt_lock);
	return ret;
}

static const struct file_operations kt_run_fops = {
	.owner = THIS_MODULE,
	.read = kt_run_read,
	.write = kt_run_write,
	.llseek = default_llseek,
};

/* The tests for the device: KT_GIFT ones on a gift device only. */
static int kt_list_show(struct seq_file *m, void *v)
{
	unsigned int i;

	mutex_lock(&kt_lock);
	for (i = 0; i < ARRAY_SIZE(kt_tests); i++)
		if (!(kt_tests[i].flags & KT_GIFT) ||
		    (kt_ibdev && kt_is_gift(kt_ibdev)))
			seq_printf(m, "%s\n", kt_tests[i].name);
	mutex_unlock(&kt_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kt_list);

/* ib_client: remember the device named by dev= while it is registered. */
static int kt_add(struct ib_device *ibdev)
{
	if (strcmp(ibdev->name, kt_dev_name))
		return -EOPNOTSUPP;
	mutex_lock(&kt_lock);
	kt_ibdev = ibdev;
	mutex_unlock(&kt_lock);
	pr_info("testing %s\n", ibdev->name);
	return 0;
}

/* Waits for a running test; tests own every object they create. */
static void kt_remove(struct ib_device *ibdev, void *client_data)
{
	mutex_lock(&kt_lock);
	if (kt_ibdev == ibdev)
		kt_ibdev = NULL;
	mutex_unlock(&kt_lock);
	pr_info("%s removed\n", ibdev->name);
}

static struct ib_client kt_client = {
	.name = "gift_ktest",
	.add = kt_add,
	.remove = kt_remove,
};

static int __init kt_init(void)
{
	int err;

	kt_dir = debugfs_create_dir("gift_ktest", NULL);
	debugfs_create_file("run", 0600, kt_dir, NULL, &kt_run_fops);
	debugfs_create_file("tests", 0400, kt_dir, NULL, &kt_list_fops);
	err = ib_register_client(&kt_client);
	if (err)
		debugfs_remove_recursive(kt_dir);
	return err;
}

static void __exit kt_exit(void)
{
	/* No test runs once the files are gone: then drop the device. */
	debugfs_remove_recursive(kt_dir);
	ib_unregister_client(&kt_client);
}

module_init(kt_init);
module_exit(kt_exit);
MODULE_DESCRIPTION("Kernel verbs tests for rdma_gift");
MODULE_LICENSE("GPL");
