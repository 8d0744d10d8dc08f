// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift queue pairs: creation, the state machine, posting, flushing.
 *
 * What this file owns: struct gift_qp (RC, UC, UD and the GSI QP), the QPN
 * table, the QP
 * verbs (create, modify, query, destroy, post_send, post_recv), the send
 * and receive rings, and the API through which the protocol engine
 * consumes and completes WQEs (gift_qp.h).
 *
 * Invariants:
 *  - A QP is published in qp_table.qpns (found by gift_qp_get()) from the
 *    end of create_qp, when nothing can fail any more, until the start of
 *    destroy_qp. Its QPN is in GIFT_QPN_MIN..GIFT_QPN_MAX, except the
 *    GSI QP's, which is 1 (one per device: the port's).
 *  - A datagram (UD or GSI) send is at most the port's MTU (gdev->mtu)
 *    when posted, and a user QP's Q_Key is not a controlled one (high bit
 *    set, IBA 10.2.5) unless its creator has CAP_NET_RAW.
 *  - Send WQEs are queued only in RTS and SQD, receive WQEs only from INIT
 *    to SQE; a WR posted in ERR (or a send WR in SQE) is completed at once
 *    with IB_WC_WR_FLUSH_ERR, in order with everything posted before.
 *  - In ERR both rings are empty: entering ERR completes every queued
 *    send WQE and every queued or in-progress receive WQE (not the SRQ's)
 *    with IB_WC_WR_FLUSH_ERR, signaled or not, oldest first, under the
 *    same locks that set the state. Entering RESET empties both rings
 *    without completions.
 *  - Completions of one ring reach their CQ in ring order: they are
 *    queued under the ring's lock.
 *
 * Locking: see the lock table above struct gift_qp. sq.lock and rq.lock
 * are spinlocks taken with irqsave (the engine runs in softirq and
 * workqueue context, kernel consumers post from any context); the state
 * is written with both held, so either one orders a post or a completion
 * against a state change. CQ locks nest inside them; completion and
 * event handlers are called after they are dropped (gift_cq_signal()).
 * modify_lock, a mutex, serialises modify_qp and its engine hook.
 *
 * Lifetime: the QP memory belongs to ib_core, which kfree()s it as soon
 * as destroy_qp returns. gift_qp_get() takes a reference under the xarray
 * lock, and destroy erases the QPN under that lock first, so no lookup
 * can be half-way through taking a reference afterwards (a lockless RCU
 * lookup would need a grace period in every destroy). Destroy then stops
 * the engine, drops the initial reference and waits for the last one.
 */

#include <linux/random.h>
#include <linux/uaccess.h>
#include <rdma/restrack.h>

#include <rdma/gift_wr.h>

#include "gift.h"

/*
 * QP access flags modify_qp accepts. Both flush flags: ib_cm sets them
 * together on a device that claims either placement type. A persistent
 * FLUSH still fails at the MR, which cannot grant it (gift_mr.c).
 */
#define GIFT_QP_ACCESS		(IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE | \
				 IB_ACCESS_REMOTE_READ | IB_ACCESS_REMOTE_ATOMIC | \
				 IB_ACCESS_FLUSH_GLOBAL | \
				 IB_ACCESS_FLUSH_PERSISTENT)

#define gift_qp_dbg(qp, fmt, ...) do {					\
	const struct gift_qp *__qp = (qp);				\
									\
	gift_dbg(to_gift_dev(__qp->ibqp.device), "qp %u: " fmt,	\
		 __qp->ibqp.qp_num, ##__VA_ARGS__);			\
} while (0)

/* CQ callbacks owed after completing WRs under the QP's locks. */
struct gift_qp_signals {
	unsigned int scq;
	unsigned int rcq;
};

/**
 * gift_qp_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_qp_init_attr(struct ib_device_attr *attr)
{
	attr->max_qp = GIFT_MAX_QP;
	attr->max_qp_wr = GIFT_MAX_QP_WR;
	attr->max_send_sge = GIFT_MAX_SGE;
	attr->max_recv_sge = GIFT_MAX_SGE;
	attr->max_sge_rd = GIFT_MAX_SGE;
	attr->max_qp_rd_atom = GIFT_MAX_RD_ATOMIC;
	attr->max_qp_init_rd_atom = GIFT_MAX_RD_ATOMIC;
	attr->max_res_rd_atom = GIFT_MAX_QP * GIFT_MAX_RD_ATOMIC;
	attr->atomic_cap = IB_ATOMIC_HCA;
	attr->device_cap_flags |= IB_DEVICE_RC_RNR_NAK_GEN |
				  IB_DEVICE_FLUSH_GLOBAL |
				  IB_DEVICE_ATOMIC_WRITE;
}

/**
 * gift_qp_table_init() - initialise an empty table
 * @table: table embedded in struct gift_dev
 *
 * The xarray lock is taken from softirq context by gift_qp_get(), hence
 * XA_FLAGS_LOCK_IRQ and the _irq xarray calls everywhere.
 */
void gift_qp_table_init(struct gift_qp_table *table)
{
	xa_init_flags(&table->qpns, XA_FLAGS_ALLOC | XA_FLAGS_LOCK_IRQ);
	atomic_set(&table->num, 0);
}

/**
 * gift_qp_table_destroy() - release an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_qp_table_destroy(struct gift_qp_table *table)
{
	WARN_ON(!xa_empty(&table->qpns));
	xa_destroy(&table->qpns);
}

/**
 * gift_qp_get() - find a published QP by number and reference it
 * @gdev: device
 * @qpn: QP number from a packet
 *
 * Any context; takes the qp_table xarray lock (irqsave).
 *
 * Return: the QP, to be released with gift_qp_put(), or NULL.
 */
struct gift_qp *gift_qp_get(struct gift_dev *gdev, u32 qpn)
{
	struct xarray *xa = &gdev->qp_table.qpns;
	struct gift_qp *qp;
	unsigned long flags;

	xa_lock_irqsave(xa, flags);
	qp = xa_load(xa, qpn);
	if (qp && !refcount_inc_not_zero(&qp->ref))
		qp = NULL;
	xa_unlock_irqrestore(xa, flags);
	return qp;
}

/**
 * gift_qp_put() - drop a reference taken by gift_qp_get()
 * @qp: queue pair
 *
 * Any context; takes no lock. The last put lets destroy_qp finish.
 */
void gift_qp_put(struct gift_qp *qp)
{
	if (refcount_dec_and_test(&qp->ref))
		complete(&qp->released);
}

static void gift_qp_lock(struct gift_qp *qp, unsigned long *flags)
	__acquires(&qp->sq.lock) __acquires(&qp->rq.lock)
{
	spin_lock_irqsave(&qp->sq.lock, *flags);
	spin_lock(&qp->rq.lock);
}

static void gift_qp_unlock(struct gift_qp *qp, unsigned long flags)
	__releases(&qp->rq.lock) __releases(&qp->sq.lock)
{
	spin_unlock(&qp->rq.lock);
	spin_unlock_irqrestore(&qp->sq.lock, flags);
}

static void gift_qp_signal(struct gift_qp *qp, const struct gift_qp_signals *sig)
{
	gift_cq_signal(to_gift_cq(qp->ibqp.send_cq), sig->scq);
	gift_cq_signal(to_gift_cq(qp->ibqp.recv_cq), sig->rcq);
}

static void gift_qp_event(struct gift_qp *qp, enum ib_event_type type)
{
	struct ib_event ev = {
		.device = qp->ibqp.device,
		.element.qp = &qp->ibqp,
		.event = type,
	};

	if (qp->ibqp.event_handler)
		qp->ibqp.event_handler(&ev, qp->ibqp.qp_context);
}

static enum ib_wc_opcode gift_wc_opcode(enum ib_wr_opcode opcode)
{
	switch (opcode) {
	case IB_WR_RDMA_WRITE:
	case IB_WR_RDMA_WRITE_WITH_IMM:
		return IB_WC_RDMA_WRITE;
	case IB_WR_RDMA_READ:
		return IB_WC_RDMA_READ;
	case IB_WR_ATOMIC_CMP_AND_SWP:
		return IB_WC_COMP_SWAP;
	case IB_WR_ATOMIC_FETCH_AND_ADD:
		return IB_WC_FETCH_ADD;
	case IB_WR_LOCAL_INV:
		return IB_WC_LOCAL_INV;
	case IB_WR_REG_MR:
		return IB_WC_REG_MR;
	case IB_WR_FLUSH:
		return IB_WC_FLUSH;
	case IB_WR_ATOMIC_WRITE:
		return IB_WC_ATOMIC_WRITE;
	case IB_WR_BIND_MW:
		return IB_WC_BIND_MW;
	default:
		return IB_WC_SEND;
	}
}

/* Queues a flush completion; the caller holds the lock of the WR's ring. */
static void gift_qp_flush_one(struct gift_qp *qp, struct ib_cq *ibcq, u64 wr_id,
			      enum ib_wc_opcode opcode, unsigned int *signals)
{
	struct ib_wc wc = {
		.wr_id = wr_id,
		.status = IB_WC_WR_FLUSH_ERR,
		.opcode = opcode,
		.qp = &qp->ibqp,
	};

	gift_cq_post_deferred(to_gift_cq(ibcq), &wc, false, signals);
}

static void gift_qp_fatal(struct gift_qp *qp, const char *why);

/*
 * A send WQE leaves the send queue (completed or flushed): one taken from
 * the mapped ring frees its slot there. Called before its completion is
 * posted: a consumer that polls the completion and posts again must
 * find the slot free (the CQ's release of its prod orders this store
 * before it).
 */
static void gift_qp_sq_retire(struct gift_qp *qp, struct gift_send_wqe *wqe)
{
	struct gift_wq_uring *u = &qp->sq.uring;

	lockdep_assert_held(&qp->sq.lock);
	qp->sq.queue.cons++;
	if (wqe->flags & GIFT_SWQE_RING) {
		u->cons++;
		gift_wq_uring_publish(u, u->cons);
	}
}

/*
 * The opcode of a mapped send slot, for its flush completion: whatever
 * the slot says, only returned to its owner.
 */
static enum ib_wr_opcode gift_qp_swqe_opcode(struct gift_qp *qp, u32 idx)
{
	const struct gift_swqe *s = gift_wq_uring_slot(&qp->sq.uring, idx);

	return READ_ONCE(s->opcode);
}

/*
 * Reads the user's producer index of the mapped send ring: false when it
 * is corrupt. The ring holds at most size WQEs, and the kernel ring has
 * room for them beside max_wr posted through commands: an index past
 * that, or behind what was taken, is.
 */
static bool gift_qp_sq_ring_prod(struct gift_qp *qp, u32 *prod)
{
	struct gift_wq_uring *u = &qp->sq.uring;

	lockdep_assert_held(&qp->sq.lock);
	return !gift_wq_uring_prod(u, u->cons, prod) &&
	       *prod - u->cons >= u->fetch - u->cons &&
	       gift_queue_count(&qp->sq.queue) + (*prod - u->fetch) <=
	       qp->sq.queue.size;
}

/*
 * Flushes the work requests user space put in the mapped send ring since
 * the last doorbell (in ERR every new one completes at once). A @prod
 * that cannot be read right flushes nothing more: the QP is in error
 * anyway.
 */
static void gift_qp_sq_flush_ring(struct gift_qp *qp, unsigned int *signals)
{
	struct gift_wq_uring *u = &qp->sq.uring;
	enum ib_wc_opcode opcode;
	u64 wr_id;
	u32 prod;

	lockdep_assert_held(&qp->sq.lock);
	if (!gift_wq_uring_mapped(u))
		return;
	if (!gift_qp_sq_ring_prod(qp, &prod))
		return;
	/*
	 * @cons counts completions; each slot is read, then freed, then its
	 * completion posted (see gift_qp_sq_retire()).
	 */
	while (u->fetch != prod) {
		wr_id = gift_wq_uring_wr_id(u, u->fetch);
		opcode = gift_wc_opcode(gift_qp_swqe_opcode(qp, u->fetch));
		u->fetch++;
		gift_wq_uring_publish(u, ++u->cons);
		gift_qp_flush_one(qp, qp->ibqp.send_cq, wr_id, opcode,
				  signals);
	}
}

/*
 * Reads the user's producer index of a mapped receive ring into
 * rq.queue.prod. -EIO for an index no correct producer writes (over
 * size ahead, or behind WQEs the engine took): the QP must fail.
 */
static int gift_qp_rq_sync(struct gift_qp *qp)
{
	struct gift_queue *q = &qp->rq.queue;
	u32 prod;

	lockdep_assert_held(&qp->rq.lock);
	if (gift_wq_uring_prod(&qp->rq.uring, q->cons, &prod) ||
	    prod - q->cons < qp->rq.popped - q->cons)
		return -EIO;
	q->prod = prod;
	return 0;
}

/*
 * Completes every receive WQE with a flush error, oldest first: those
 * of a mapped ring up to what user space has posted (an index that
 * cannot be read right leaves the last one read).
 */
static void gift_qp_rq_flush(struct gift_qp *qp, unsigned int *signals)
{
	struct gift_queue *rq = &qp->rq.queue;
	bool mapped = gift_wq_uring_mapped(&qp->rq.uring);
	struct gift_recv_wqe *rwqe;
	u64 wr_id;

	lockdep_assert_held(&qp->rq.lock);
	if (mapped) {
		gift_wq_uring_flags(&qp->rq.uring, GIFT_WQ_RING_ERR, 0);
		gift_qp_rq_sync(qp);
	}
	while (!gift_queue_empty(rq)) {
		if (mapped) {
			wr_id = gift_wq_uring_wr_id(&qp->rq.uring, rq->cons);
		} else {
			rwqe = gift_queue_slot(rq, rq->cons);
			wr_id = rwqe->wr_id;
		}
		/* Free before its completion shows, as gift_qp_sq_retire(). */
		rq->cons++;
		if (mapped)
			gift_wq_uring_publish(&qp->rq.uring, rq->cons);
		gift_qp_flush_one(qp, qp->ibqp.recv_cq, wr_id, IB_WC_RECV,
				  signals);
	}
	qp->rq.popped = rq->prod;
}

/* Completes every queued WQE with a flush error, oldest first. */
static void gift_qp_flush(struct gift_qp *qp, struct gift_qp_signals *sig)
{
	struct gift_queue *sq = &qp->sq.queue;
	struct gift_send_wqe *swqe;

	lockdep_assert_held(&qp->sq.lock);
	lockdep_assert_held(&qp->rq.lock);

	while (!gift_queue_empty(sq)) {
		swqe = gift_queue_slot(sq, sq->cons);
		/* The kernel's slot stays as it is under the lock. */
		gift_qp_sq_retire(qp, swqe);
		gift_qp_flush_one(qp, qp->ibqp.send_cq, swqe->wr_id,
				  gift_wc_opcode(swqe->opcode), &sig->scq);
	}
	if (gift_wq_uring_mapped(&qp->sq.uring))
		gift_wq_uring_flags(&qp->sq.uring, GIFT_WQ_RING_ERR,
				    GIFT_WQ_RING_ENGINE);
	gift_qp_sq_flush_ring(qp, &sig->scq);
	if (!qp->ibqp.srq)
		gift_qp_rq_flush(qp, &sig->rcq);
}

/*
 * Empties a mapped ring at RESET: its consumer index catches up with the
 * user's producer index, whatever that says, so that user space goes on
 * from its own; returns the new index.
 */
static u32 gift_qp_uring_reset(struct gift_wq_uring *u)
{
	/* Pairs with the producer's store-release of prod. */
	u32 prod = smp_load_acquire(&u->ring->prod);

	gift_wq_uring_flags(u, 0, GIFT_WQ_RING_ERR | GIFT_WQ_RING_ENGINE);
	gift_wq_uring_publish(u, prod);
	return prod;
}

/* Empties both rings without completions (transition to RESET). */
static void gift_qp_clear(struct gift_qp *qp)
{
	struct gift_wq_uring *u = &qp->sq.uring;
	struct gift_queue *rq = &qp->rq.queue;

	lockdep_assert_held(&qp->sq.lock);
	lockdep_assert_held(&qp->rq.lock);

	gift_queue_reset(&qp->sq.queue);
	if (gift_wq_uring_mapped(u)) {
		u->cons = gift_qp_uring_reset(u);
		u->fetch = u->cons;
	}
	if (qp->ibqp.srq)
		return;
	gift_queue_reset(rq);
	if (gift_wq_uring_mapped(&qp->rq.uring)) {
		rq->cons = gift_qp_uring_reset(&qp->rq.uring);
		rq->prod = rq->cons;
	}
	qp->rq.popped = rq->prod;
}

/*
 * The request of a user create_qp: struct gift_create_qp_req, or nothing
 * (queues not mapped). Sets *@flags.
 */
static int gift_qp_read_req(struct gift_dev *gdev,
			    const struct ib_qp_init_attr *init,
			    struct ib_udata *udata, u32 *flags)
{
	struct gift_create_qp_req req = {};
	int err;

	err = gift_udata_read(udata, &req, sizeof(req));
	if (err)
		return err;
	if ((req.flags & ~(u64)(GIFT_CREATE_QP_MAPPED_SQ |
				GIFT_CREATE_QP_MAPPED_RQ)) ||
	    ((req.flags & GIFT_CREATE_QP_MAPPED_SQ) &&
	     init->qp_type != IB_QPT_RC && init->qp_type != IB_QPT_UC) ||
	    ((req.flags & GIFT_CREATE_QP_MAPPED_RQ) && init->srq) ||
	    /* The provider must be able to learn where the rings are. */
	    (req.flags && udata->outlen < sizeof(struct gift_create_qp_resp))) {
		gift_dbg(gdev, "driver flags %#llx refused\n", req.flags);
		return -EINVAL;
	}
	*flags = req.flags;
	return 0;
}

static int gift_qp_check_init(struct gift_dev *gdev,
			      const struct ib_qp_init_attr *init,
			      struct ib_udata *udata)
{
	const struct ib_device_attr *dattr = &gdev->attr;
	const struct ib_qp_cap *cap = &init->cap;
	/* GSI is ib_mad's, created by the kernel for the port. */
	if (init->qp_type != IB_QPT_RC && init->qp_type != IB_QPT_UC &&
	    init->qp_type != IB_QPT_UD &&
	    (init->qp_type != IB_QPT_GSI || udata)) {
		gift_dbg(gdev, "qp type %d not supported\n", init->qp_type);
		return -EOPNOTSUPP;
	}
	if (init->qp_type == IB_QPT_GSI && init->port_num != GIFT_PORT)
		return -EINVAL;
	if (init->create_flags || init->rwq_ind_tbl) {
		gift_dbg(gdev, "create flags %#x not supported\n",
			 init->create_flags);
		return -EOPNOTSUPP;
	}
	if (!init->send_cq || !init->recv_cq)
		return -EINVAL;
	if (cap->max_send_wr > dattr->max_qp_wr ||
	    cap->max_send_sge > dattr->max_send_sge ||
	    cap->max_inline_data > GIFT_MAX_INLINE_DATA ||
	    (!init->srq && (cap->max_recv_wr > dattr->max_qp_wr ||
			    cap->max_recv_sge > dattr->max_recv_sge))) {
		gift_dbg(gdev, "caps %u/%u/%u/%u/%u over the device limits\n",
			 cap->max_send_wr, cap->max_recv_wr, cap->max_send_sge,
			 cap->max_recv_sge, cap->max_inline_data);
		return -EINVAL;
	}
	return 0;
}

static void gift_qp_init_fields(struct gift_qp *qp,
				const struct ib_qp_init_attr *init,
				struct ib_udata *udata)
{
	spin_lock_init(&qp->sq.lock);
	spin_lock_init(&qp->rq.lock);
	mutex_init(&qp->modify_lock);
	refcount_set(&qp->ref, 1);
	init_completion(&qp->released);
	INIT_LIST_HEAD(&qp->mcast_list);
	qp->state = IB_QPS_RESET;
	qp->sq_sig_type = init->sq_sig_type;
	qp->is_user = !!udata;
	qp->attr.port_num = GIFT_PORT;
	qp->attr.path_mtu = IB_MTU_256;
}

/*
 * Sizes the rings from the requested caps. A send slot's tail holds
 * either the SGEs or the inline data, so both caps grow to fill it. A
 * mapped send queue's kernel ring has room for twice max_wr: the
 * mapped ring's work requests and those posted through commands.
 */
static int gift_qp_alloc_queues(struct gift_qp *qp,
				const struct ib_qp_init_attr *init, u32 flags,
				struct ib_udata *udata,
				struct gift_create_qp_resp *resp)
{
	const struct ib_qp_cap *cap = &init->cap;
	u32 sge = sizeof(struct ib_sge);
	u32 tail, slots;
	int err;

	tail = max(max(cap->max_send_sge, 1U) * sge, cap->max_inline_data);
	tail = ALIGN(tail, sge);
	qp->sq.max_sge = min_t(u32, tail / sge, GIFT_MAX_SGE);
	qp->sq.max_inline = min_t(u32, tail, GIFT_MAX_INLINE_DATA);
	qp->sq.max_wr = gift_queue_slots(cap->max_send_wr);
	slots = qp->sq.max_wr;
	if (flags & GIFT_CREATE_QP_MAPPED_SQ) {
		slots *= 2;
		err = gift_wq_uring_create(&qp->sq.uring, qp->sq.max_wr,
					   sizeof(struct gift_swqe) + tail,
					   gift_udata_uctx(udata), &resp->sq);
		if (err)
			return err;
	}
	err = gift_queue_init(&qp->sq.queue, slots,
			      struct_size_t(struct gift_send_wqe, inline_data,
					    tail));
	if (err)
		goto out_unmap_sq;
	if (init->srq)
		return 0;

	qp->rq.max_sge = max(cap->max_recv_sge, 1U);
	if (flags & GIFT_CREATE_QP_MAPPED_RQ)
		err = gift_wq_uring_create_recv(&qp->rq.uring, &qp->rq.queue,
						gift_queue_slots(cap->max_recv_wr),
						qp->rq.max_sge,
						gift_udata_uctx(udata),
						&resp->rq);
	else
		err = gift_queue_init(&qp->rq.queue,
				      gift_queue_slots(cap->max_recv_wr),
				      gift_recv_wqe_size(qp->rq.max_sge));
	if (err)
		goto out_free_sq;
	return 0;

out_free_sq:
	gift_queue_free(&qp->sq.queue);
out_unmap_sq:
	gift_wq_uring_destroy(&qp->sq.uring);
	return err;
}

static void gift_qp_free_queues(struct gift_qp *qp)
{
	gift_wq_uring_destroy_recv(&qp->rq.uring, &qp->rq.queue);
	gift_wq_uring_destroy(&qp->sq.uring);
	gift_queue_free(&qp->sq.queue);
}

static void gift_qp_caps(struct gift_qp *qp, struct ib_qp_cap *cap)
{
	memset(cap, 0, sizeof(*cap));
	cap->max_send_wr = qp->sq.max_wr;
	cap->max_send_sge = qp->sq.max_sge;
	cap->max_inline_data = qp->sq.max_inline;
	if (qp->ibqp.srq)
		return;
	cap->max_recv_wr = qp->rq.queue.size;
	cap->max_recv_sge = qp->rq.max_sge;
}

/*
 * Reserves an unpredictable QPN: the first free one from a random point
 * of GIFT_QPN_MIN..GIFT_QPN_MAX, wrapping around. QPNs are what an
 * off-path attacker must guess to reach a QP, so they are not handed out
 * in sequence. The QPN is reserved, not published: xa_load() returns
 * NULL for it. Returns 0 or a negative errno.
 */
static int gift_qpn_alloc(struct gift_qp_table *table, enum ib_qp_type type,
			  u32 *qpn)
{
	u32 next = GIFT_QPN_MIN +
		   get_random_u32_below(GIFT_QPN_MAX - GIFT_QPN_MIN + 1);
	int err;

	if (type == IB_QPT_GSI) {
		/* -EBUSY: the port has its GSI QP already. */
		*qpn = GIFT_QPN_GSI;
		return xa_insert_irq(&table->qpns, GIFT_QPN_GSI, NULL,
				     GFP_KERNEL);
	}
	err = xa_alloc_cyclic_irq(&table->qpns, qpn, NULL,
				  XA_LIMIT(GIFT_QPN_MIN, GIFT_QPN_MAX), &next,
				  GFP_KERNEL);
	return err < 0 ? err : 0;
}

/**
 * gift_create_qp() - create an RC, UD or GSI queue pair
 * @ibqp: QP allocated by ib_core, with its PD, CQs and SRQ set
 * @init: type, CQs, SRQ and caps requested; the actual caps (ring sizes
 *	are powers of two; SGE and inline caps fill the WQE slot) are
 *	reported back in init->cap
 * @udata: user data, or NULL: struct gift_create_qp_req in (optional),
 *	struct gift_create_qp_resp out (where the mapped rings are)
 *
 * The QP starts in RESET with a random QPN in 16..2^24-2 (not 0 or 1,
 * the special QPs, nor 0xffffff, multicast), or QPN 1 for the GSI QP
 * (kernel only: ib_mad creates it), and is published last.
 *
 * Return: 0; -EOPNOTSUPP for other QP types (SMI, XRC, raw
 * packet; GSI from user space) or creation flags; -EINVAL for caps over
 * the device limits, missing CQs, a GSI QP on another port or driver
 * flags that are unknown or not for this QP; -EBUSY for a second GSI
 * QP; -ENOMEM at max_qp or without memory; or the engine's error.
 */
static int gift_create_qp(struct ib_qp *ibqp, struct ib_qp_init_attr *init,
			  struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibqp->device);
	struct gift_qp_table *table = &gdev->qp_table;
	struct gift_qp *qp = to_gift_qp(ibqp);
	struct gift_create_qp_resp resp = {};
	u32 qpn, flags = 0;
	void *old;
	int err;

	err = gift_qp_check_init(gdev, init, udata);
	if (!err)
		err = gift_qp_read_req(gdev, init, udata, &flags);
	if (err)
		return err;
	gift_qp_init_fields(qp, init, udata);
	if (!atomic_add_unless(&table->num, 1, gdev->attr.max_qp)) {
		err = -ENOMEM;
		goto out_destroy_mutex;
	}
	err = gift_qp_alloc_queues(qp, init, flags, udata, &resp);
	if (err)
		goto out_uncount;
	if (udata && udata->outlen) {
		err = ib_copy_to_udata(udata, &resp,
				       min(udata->outlen, sizeof(resp)));
		if (err)
			goto out_free_queues;
	}
	err = gift_qpn_alloc(table, init->qp_type, &qpn);
	if (err < 0)
		goto out_free_queues;
	ibqp->qp_num = qpn;
	err = gift_proto_qp_init(qp);
	if (err)
		goto out_release_qpn;

	gift_qp_caps(qp, &init->cap);
	/* Storing into a reserved index allocates nothing: cannot fail. */
	old = xa_store_irq(&table->qpns, qpn, qp, GFP_KERNEL);
	WARN_ON_ONCE(xa_is_err(old));
	return 0;

out_release_qpn:
	xa_erase_irq(&table->qpns, qpn);
out_free_queues:
	gift_qp_free_queues(qp);
out_uncount:
	atomic_dec(&table->num);
out_destroy_mutex:
	mutex_destroy(&qp->modify_lock);
	return err;
}

/**
 * gift_destroy_qp() - destroy a queue pair
 * @ibqp: queue pair, in any state, possibly with WQEs queued
 * @udata: unused
 *
 * Detaches the QP from the multicast groups it is still attached to,
 * unpublishes the QPN, stops the engine (gift_proto_qp_destroy()), waits
 * for receive-path references to drop, then frees the rings. Queued WQEs
 * are discarded without completions, and so are the QP's completions
 * still queued on its CQs (they point at the QP). Process context.
 *
 * Return: 0; destroy never fails.
 */
static int gift_destroy_qp(struct ib_qp *ibqp, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibqp->device);
	struct gift_qp *qp = to_gift_qp(ibqp);

	/* The attachments' references are among those waited for below. */
	gift_mcast_qp_destroy(qp);
	xa_erase_irq(&gdev->qp_table.qpns, ibqp->qp_num);
	gift_proto_qp_destroy(qp);
	gift_qp_put(qp);
	wait_for_completion(&qp->released);

	gift_cq_discard_qp(to_gift_cq(ibqp->send_cq), ibqp);
	if (ibqp->recv_cq != ibqp->send_cq)
		gift_cq_discard_qp(to_gift_cq(ibqp->recv_cq), ibqp);
	gift_qp_free_queues(qp);
	mutex_destroy(&qp->modify_lock);
	atomic_dec(&gdev->qp_table.num);
	return 0;
}

/* True, after logging, when attribute @bit is in @mask and @val > @max. */
static bool gift_qp_attr_over(struct gift_qp *qp, int mask, int bit, u32 val,
			      u32 max, const char *name)
{
	if (!(mask & bit) || val <= max)
		return false;
	gift_qp_dbg(qp, "%s %u > %u\n", name, val, max);
	return true;
}

static int gift_qp_check_limits(struct gift_qp *qp, const struct ib_qp_attr *attr,
				int mask)
{
	const struct ib_device_attr *dattr = &to_gift_dev(qp->ibqp.device)->attr;

	if ((mask & IB_QP_ACCESS_FLAGS) &&
	    (attr->qp_access_flags & ~GIFT_QP_ACCESS)) {
		gift_qp_dbg(qp, "access flags %#x\n", attr->qp_access_flags);
		return -EINVAL;
	}
	/* IBA 10.2.5: controlled Q_Keys are for privileged consumers. */
	if ((mask & IB_QP_QKEY) && (attr->qkey & GIFT_QKEY_CONTROLLED) &&
	    qp->is_user && !capable(CAP_NET_RAW)) {
		gift_qp_dbg(qp, "controlled qkey %#x\n", attr->qkey);
		return -EPERM;
	}
	if (gift_qp_attr_over(qp, mask, IB_QP_MAX_QP_RD_ATOMIC,
			      attr->max_rd_atomic, dattr->max_qp_init_rd_atom,
			      "max_rd_atomic") ||
	    gift_qp_attr_over(qp, mask, IB_QP_MAX_DEST_RD_ATOMIC,
			      attr->max_dest_rd_atomic, dattr->max_qp_rd_atom,
			      "max_dest_rd_atomic") ||
	    gift_qp_attr_over(qp, mask, IB_QP_RETRY_CNT, attr->retry_cnt, 7,
			      "retry_cnt") ||
	    gift_qp_attr_over(qp, mask, IB_QP_RNR_RETRY, attr->rnr_retry, 7,
			      "rnr_retry") ||
	    gift_qp_attr_over(qp, mask, IB_QP_MIN_RNR_TIMER,
			      attr->min_rnr_timer, 31, "min_rnr_timer") ||
	    gift_qp_attr_over(qp, mask, IB_QP_TIMEOUT, attr->timeout, 31,
			      "timeout") ||
	    gift_qp_attr_over(qp, mask, IB_QP_SQ_PSN, attr->sq_psn,
			      GIFT_PSN_MASK, "sq_psn") ||
	    gift_qp_attr_over(qp, mask, IB_QP_RQ_PSN, attr->rq_psn,
			      GIFT_PSN_MASK, "rq_psn") ||
	    gift_qp_attr_over(qp, mask, IB_QP_DEST_QPN, attr->dest_qp_num,
			      GIFT_QPN_MASK, "dest_qp_num") ||
	    gift_qp_attr_over(qp, mask, IB_QP_PATH_MIG_STATE,
			      attr->path_mig_state, IB_MIG_ARMED,
			      "path_mig_state"))
		return -EINVAL;
	return 0;
}

/* Checks port, P_Key index, path MTU and AV; resolves the AV into @av. */
static int gift_qp_check_path(struct gift_qp *qp, const struct ib_qp_attr *attr,
			      int mask, struct gift_av *av)
{
	const struct rdma_ah_attr *ah = &attr->ah_attr;

	if (gift_qp_attr_over(qp, mask, IB_QP_PKEY_INDEX, attr->pkey_index,
			      GIFT_PKEY_TBL_LEN - 1, "pkey_index"))
		return -EINVAL;
	if ((mask & IB_QP_PORT) && attr->port_num != GIFT_PORT) {
		gift_qp_dbg(qp, "port %u\n", attr->port_num);
		return -EINVAL;
	}
	if ((mask & IB_QP_PATH_MTU) &&
	    (attr->path_mtu < IB_MTU_256 || attr->path_mtu > IB_MTU_4096)) {
		gift_qp_dbg(qp, "path_mtu %d\n", attr->path_mtu);
		return -EINVAL;
	}
	if (mask & IB_QP_ALT_PATH) {
		gift_qp_dbg(qp, "no alternate paths on RoCE\n");
		return -EINVAL;
	}
	if (!(mask & IB_QP_AV))
		return 0;
	if (ah->type != RDMA_AH_ATTR_TYPE_ROCE ||
	    rdma_ah_get_port_num(ah) != GIFT_PORT ||
	    gift_av_from_attr(av, ah)) {
		gift_qp_dbg(qp, "not a RoCEv2 address vector on port %u\n",
			    GIFT_PORT);
		return -EINVAL;
	}
	return 0;
}

static void gift_qp_store_attr(struct gift_qp *qp, const struct ib_qp_attr *attr,
			       int mask, const struct gift_av *av)
{
	struct ib_qp_attr *a = &qp->attr;

	lockdep_assert_held(&qp->sq.lock);
	lockdep_assert_held(&qp->rq.lock);

	if (mask & IB_QP_ACCESS_FLAGS)
		a->qp_access_flags = attr->qp_access_flags;
	if (mask & IB_QP_PKEY_INDEX)
		a->pkey_index = attr->pkey_index;
	if (mask & IB_QP_PORT)
		a->port_num = attr->port_num;
	if (mask & IB_QP_QKEY)
		a->qkey = attr->qkey;
	if (mask & IB_QP_AV) {
		a->ah_attr = attr->ah_attr;
		a->ah_attr.grh.sgid_attr = NULL;
		qp->av = *av;
	}
	if (mask & IB_QP_PATH_MTU)
		a->path_mtu = attr->path_mtu;
	if (mask & IB_QP_TIMEOUT)
		a->timeout = attr->timeout;
	if (mask & IB_QP_RETRY_CNT)
		a->retry_cnt = attr->retry_cnt;
	if (mask & IB_QP_RNR_RETRY)
		a->rnr_retry = attr->rnr_retry;
	if (mask & IB_QP_RQ_PSN)
		a->rq_psn = attr->rq_psn;
	if (mask & IB_QP_MAX_QP_RD_ATOMIC)
		a->max_rd_atomic = attr->max_rd_atomic;
	if (mask & IB_QP_MIN_RNR_TIMER)
		a->min_rnr_timer = attr->min_rnr_timer;
	if (mask & IB_QP_SQ_PSN)
		a->sq_psn = attr->sq_psn;
	if (mask & IB_QP_MAX_DEST_RD_ATOMIC)
		a->max_dest_rd_atomic = attr->max_dest_rd_atomic;
	if (mask & IB_QP_PATH_MIG_STATE)
		a->path_mig_state = attr->path_mig_state;
	if (mask & IB_QP_DEST_QPN)
		a->dest_qp_num = attr->dest_qp_num;
	if (mask & IB_QP_EN_SQD_ASYNC_NOTIFY)
		a->en_sqd_async_notify = attr->en_sqd_async_notify;
}

/*
 * Validates the transition against the current state and applies it with
 * the attributes: nothing is changed when it fails.
 */
static int gift_qp_transition(struct gift_qp *qp, const struct ib_qp_attr *attr,
			      int mask, const struct gift_av *av,
			      struct gift_qp_signals *sig)
{
	enum ib_qp_state cur = qp->state;
	enum ib_qp_state new = mask & IB_QP_STATE ? attr->qp_state : cur;

	lockdep_assert_held(&qp->sq.lock);
	lockdep_assert_held(&qp->rq.lock);

	if ((mask & IB_QP_CUR_STATE) && attr->cur_qp_state != cur) {
		gift_qp_dbg(qp, "cur_qp_state %d, actual %d\n",
			    attr->cur_qp_state, cur);
		return -EINVAL;
	}
	if (!ib_modify_qp_is_ok(cur, new, qp->ibqp.qp_type, mask)) {
		gift_qp_dbg(qp, "state %d -> %d with mask %#x not allowed\n",
			    cur, new, mask);
		return -EINVAL;
	}
	gift_qp_store_attr(qp, attr, mask, av);
	if (new == IB_QPS_ERR)
		gift_qp_flush(qp, sig);
	else if (new == IB_QPS_RESET)
		gift_qp_clear(qp);
	WRITE_ONCE(qp->state, new);
	return 0;
}

/**
 * gift_modify_qp() - change a QP's state and attributes
 * @ibqp: queue pair
 * @attr: new attributes; ah_attr's sgid_attr resolved by ib_core
 * @mask: IB_QP_* attributes to apply
 * @udata: user data (no driver data is exchanged), or NULL
 *
 * The transition and its required and optional attributes follow the IB
 * state table (ib_modify_qp_is_ok()). Entering ERR flushes both queues;
 * entering RESET empties them. The engine is told after the change, in
 * modify order (gift_proto_qp_modified() runs under modify_lock). A QP
 * with an SRQ reports IB_EVENT_QP_LAST_WQE_REACHED on entering ERR.
 * Process context.
 *
 * max_dest_rd_atomic sizes the responder's resource ring
 * (gift_proto_rd_res_alloc()), allocated before anything changes.
 *
 * Return: 0; -EOPNOTSUPP for non-standard mask bits; -EPERM for a
 * controlled Q_Key (high bit set) on a user QP without CAP_NET_RAW;
 * -EINVAL for an invalid transition, missing or unexpected attributes,
 * or attribute values out of range (port, pkey_index, path_mtu, AV,
 * access flags,
 * RD atomic depths, retry counts, timers, PSNs, dest_qp_num); -ENOMEM
 * without memory for the resource ring (the QP is left as it was).
 */
static int gift_modify_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr,
			  int mask, struct ib_udata *udata)
{
	struct gift_qp *qp = to_gift_qp(ibqp);
	struct gift_qp_signals sig = {};
	struct gift_rd_res *rd_res = NULL;
	struct gift_av av = {};
	enum ib_qp_state old;
	unsigned long flags;
	int err;

	if (mask & ~IB_QP_ATTR_STANDARD_BITS)
		return -EOPNOTSUPP;
	if (gift_udata_has_input(udata))
		return -EINVAL;
	err = gift_qp_check_limits(qp, attr, mask);
	if (!err)
		err = gift_qp_check_path(qp, attr, mask, &av);
	if (err)
		return err;
	if (mask & IB_QP_MAX_DEST_RD_ATOMIC) {
		rd_res = gift_proto_rd_res_alloc(attr->max_dest_rd_atomic);
		if (!rd_res)
			return -ENOMEM;
	}

	mutex_lock(&qp->modify_lock);
	gift_qp_lock(qp, &flags);
	old = qp->state;
	err = gift_qp_transition(qp, attr, mask, &av, &sig);
	gift_qp_unlock(qp, flags);
	if (!err) {
		gift_qp_signal(qp, &sig);
		gift_proto_qp_modified(qp, attr, mask, rd_res);
		rd_res = NULL;
		if (ibqp->srq && old != IB_QPS_ERR &&
		    (mask & IB_QP_STATE) && attr->qp_state == IB_QPS_ERR)
			gift_qp_event(qp, IB_EVENT_QP_LAST_WQE_REACHED);
	}
	mutex_unlock(&qp->modify_lock);
	kfree(rd_res);		/* the modify failed */
	return err;
}

/**
 * gift_query_qp() - report a QP's attributes
 * @ibqp: queue pair
 * @attr: filled with the current state and every stored attribute, and
 *	the actual caps
 * @mask: ignored: everything is reported
 * @init: filled with the creation attributes
 *
 * Return: 0.
 */
static int gift_query_qp(struct ib_qp *ibqp, struct ib_qp_attr *attr,
			 int mask, struct ib_qp_init_attr *init)
{
	struct gift_qp *qp = to_gift_qp(ibqp);
	unsigned long flags;

	spin_lock_irqsave(&qp->sq.lock, flags);
	*attr = qp->attr;
	attr->qp_state = qp->state;
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	attr->cur_qp_state = attr->qp_state;
	gift_qp_caps(qp, &attr->cap);

	memset(init, 0, sizeof(*init));
	init->event_handler = ibqp->registered_event_handler;
	init->qp_context = ibqp->qp_context;
	init->send_cq = ibqp->send_cq;
	init->recv_cq = ibqp->recv_cq;
	init->srq = ibqp->srq;
	init->cap = attr->cap;
	init->sq_sig_type = qp->sq_sig_type;
	init->qp_type = ibqp->qp_type;
	init->port_num = attr->port_num;
	return 0;
}

static bool gift_send_opcode_ok(struct gift_qp *qp, enum ib_wr_opcode opcode)
{
	if (gift_qp_is_ud(qp))
		return opcode == IB_WR_SEND || opcode == IB_WR_SEND_WITH_IMM;
	/* UC: SEND and RDMA WRITE, with or without immediate, only. */
	if (gift_qp_is_uc(qp))
		return opcode == IB_WR_SEND || opcode == IB_WR_SEND_WITH_IMM ||
		       opcode == IB_WR_RDMA_WRITE ||
		       opcode == IB_WR_RDMA_WRITE_WITH_IMM;
	switch (opcode) {
	case IB_WR_SEND:
	case IB_WR_SEND_WITH_IMM:
	case IB_WR_SEND_WITH_INV:
	case IB_WR_RDMA_WRITE:
	case IB_WR_RDMA_WRITE_WITH_IMM:
	case IB_WR_RDMA_READ:
	case IB_WR_ATOMIC_CMP_AND_SWP:
	case IB_WR_ATOMIC_FETCH_AND_ADD:
	case IB_WR_FLUSH:
	case IB_WR_ATOMIC_WRITE:
		return true;
	case IB_WR_LOCAL_INV:
	case IB_WR_REG_MR:
		return !qp->is_user;
	default:
		return false;
	}
}

static bool gift_send_opcode_inline_ok(enum ib_wr_opcode opcode)
{
	return opcode == IB_WR_SEND || opcode == IB_WR_SEND_WITH_IMM ||
	       opcode == IB_WR_SEND_WITH_INV || opcode == IB_WR_RDMA_WRITE ||
	       opcode == IB_WR_RDMA_WRITE_WITH_IMM;
}

static bool gift_send_opcode_atomic(enum ib_wr_opcode opcode)
{
	return opcode == IB_WR_ATOMIC_CMP_AND_SWP ||
	       opcode == IB_WR_ATOMIC_FETCH_AND_ADD;
}

/*
 * FLUSH and ATOMIC_WRITE (struct gift_ex_wr): no SGEs, no inline data; a
 * FLUSH names at least one placement type of IB_FLUSH_GLOBAL and
 * IB_FLUSH_PERSISTENT, nothing else, and a defined selectivity level.
 * ATOMIC_WRITE's alignment is the responder's to check (it NAKs).
 */
static int gift_send_ex_wr_check(struct gift_qp *qp,
				 const struct ib_send_wr *wr, u32 *length)
{
	const struct gift_ex_wr *ex = gift_ex_wr(wr);

	if (wr->num_sge || (wr->send_flags & IB_SEND_INLINE))
		goto refuse;
	if (wr->opcode == IB_WR_ATOMIC_WRITE) {
		*length = sizeof(ex->atomic_wr);
		return 0;
	}
	if (!ex->flush_type ||
	    (ex->flush_type & ~(IB_FLUSH_GLOBAL | IB_FLUSH_PERSISTENT)) ||
	    (ex->flush_level != IB_FLUSH_RANGE &&
	     ex->flush_level != IB_FLUSH_MR))
		goto refuse;
	return 0;
refuse:
	gift_qp_dbg(qp, "opcode %d, flags %#x refused\n", wr->opcode,
		    wr->send_flags);
	return -EINVAL;
}

/* Validates a send WR before anything is queued; sets its length. */
static int gift_send_wr_check(struct gift_qp *qp, const struct ib_send_wr *wr,
			      u32 *length)
{
	bool inl = wr->send_flags & IB_SEND_INLINE;
	u64 len = 0;
	int i;

	if (!gift_send_opcode_ok(qp, wr->opcode)) {
		gift_qp_dbg(qp, "opcode %d not valid here\n", wr->opcode);
		return -EINVAL;
	}
	*length = 0;
	if (wr->opcode == IB_WR_LOCAL_INV || wr->opcode == IB_WR_REG_MR)
		return inl ? -EINVAL : 0;
	if (wr->opcode == IB_WR_FLUSH || wr->opcode == IB_WR_ATOMIC_WRITE)
		return gift_send_ex_wr_check(qp, wr, length);
	if ((u32)wr->num_sge > qp->sq.max_sge) {
		gift_qp_dbg(qp, "num_sge %d > %u\n", wr->num_sge,
			    qp->sq.max_sge);
		return -EINVAL;
	}
	for (i = 0; i < wr->num_sge; i++)
		len += wr->sg_list[i].length;
	if (len > GIFT_MAX_MSG_SIZE ||
	    (inl && (!gift_send_opcode_inline_ok(wr->opcode) ||
		     len > qp->sq.max_inline)) ||
	    (gift_send_opcode_atomic(wr->opcode) && len != 8) ||
	    (gift_qp_is_ud(qp) && !ud_wr(wr)->ah)) {
		gift_qp_dbg(qp, "opcode %d, flags %#x, length %llu refused\n",
			    wr->opcode, wr->send_flags, len);
		return -EINVAL;
	}
	/* A datagram is one packet: at most the port's MTU (C10-93.1.1). */
	if (gift_qp_is_ud(qp) &&
	    len > READ_ONCE(to_gift_dev(qp->ibqp.device)->mtu)) {
		gift_qp_dbg(qp, "datagram of %llu bytes over the MTU\n", len);
		return -EMSGSIZE;
	}
	*length = len;
	return 0;
}

/* Copies a user QP's inline data into @buf, before the SQ lock is taken. */
static int gift_stage_inline_user(const struct ib_send_wr *wr, u8 *buf)
{
	const struct ib_sge *sge;
	int i;

	for (i = 0; i < wr->num_sge; i++) {
		sge = &wr->sg_list[i];
		if (copy_from_user(buf, u64_to_user_ptr(sge->addr), sge->length))
			return -EFAULT;
		buf += sge->length;
	}
	return 0;
}

static void gift_gather_inline_kernel(const struct ib_send_wr *wr, u8 *buf)
{
	const struct ib_sge *sge;
	int i;

	for (i = 0; i < wr->num_sge; i++) {
		sge = &wr->sg_list[i];
		memcpy(buf, (void *)(uintptr_t)sge->addr, sge->length);
		buf += sge->length;
	}
}

static void gift_send_wqe_init_wr(struct gift_send_wqe *wqe,
				  const struct ib_send_wr *wr)
{
	const struct gift_ex_wr *ex;

	switch (wr->opcode) {
	case IB_WR_RDMA_WRITE:
	case IB_WR_RDMA_WRITE_WITH_IMM:
	case IB_WR_RDMA_READ:
		wqe->wr.rdma.remote_addr = rdma_wr(wr)->remote_addr;
		wqe->wr.rdma.rkey = rdma_wr(wr)->rkey;
		break;
	case IB_WR_ATOMIC_CMP_AND_SWP:
	case IB_WR_ATOMIC_FETCH_AND_ADD:
		wqe->wr.atomic.remote_addr = atomic_wr(wr)->remote_addr;
		wqe->wr.atomic.compare_add = atomic_wr(wr)->compare_add;
		wqe->wr.atomic.swap = atomic_wr(wr)->swap;
		wqe->wr.atomic.rkey = atomic_wr(wr)->rkey;
		break;
	case IB_WR_REG_MR:
		wqe->wr.reg.mr = reg_wr(wr)->mr;
		wqe->wr.reg.key = reg_wr(wr)->key;
		wqe->wr.reg.access = reg_wr(wr)->access;
		break;
	case IB_WR_FLUSH:
		ex = gift_ex_wr(wr);
		wqe->wr.flush.remote_addr = ex->remote_addr;
		wqe->wr.flush.rkey = ex->rkey;
		wqe->wr.flush.length = ex->length;
		wqe->wr.flush.type = ex->flush_type;
		wqe->wr.flush.level = ex->flush_level;
		break;
	case IB_WR_ATOMIC_WRITE:
		ex = gift_ex_wr(wr);
		wqe->wr.atomic_write.remote_addr = ex->remote_addr;
		wqe->wr.atomic_write.rkey = ex->rkey;
		memcpy(wqe->wr.atomic_write.data, ex->atomic_wr,
		       sizeof(ex->atomic_wr));
		break;
	default:
		break;
	}
}

/*
 * Fills a send slot from a checked WR. @staged holds a user QP's inline
 * data; a kernel QP's is copied from its kernel addresses here.
 */
static void gift_send_wqe_init(struct gift_qp *qp, struct gift_send_wqe *wqe,
			       const struct ib_send_wr *wr, u32 length,
			       const u8 *staged)
{
	lockdep_assert_held(&qp->sq.lock);

	wqe->wr_id = wr->wr_id;
	wqe->opcode = wr->opcode;
	wqe->send_flags = wr->send_flags;
	wqe->flags = 0;
	wqe->length = length;
	wqe->ex.invalidate_rkey = wr->ex.invalidate_rkey;
	memset(&wqe->wr, 0, sizeof(wqe->wr));
	memset(wqe->proto, 0, sizeof(wqe->proto));
	if (gift_qp_is_ud(qp)) {
		wqe->wr.ud.av = to_gift_ah(ud_wr(wr)->ah)->av;
		wqe->wr.ud.remote_qpn = ud_wr(wr)->remote_qpn;
		wqe->wr.ud.remote_qkey = ud_wr(wr)->remote_qkey;
	} else {
		gift_send_wqe_init_wr(wqe, wr);
	}

	wqe->num_sge = 0;
	if (wr->opcode == IB_WR_LOCAL_INV || wr->opcode == IB_WR_REG_MR ||
	    wr->opcode == IB_WR_FLUSH || wr->opcode == IB_WR_ATOMIC_WRITE)
		return;
	if (!(wr->send_flags & IB_SEND_INLINE)) {
		wqe->num_sge = wr->num_sge;
		memcpy(wqe->sge, wr->sg_list, wr->num_sge * sizeof(*wqe->sge));
	} else if (staged) {
		memcpy(wqe->inline_data, staged, length);
	} else {
		gift_gather_inline_kernel(wr, wqe->inline_data);
	}
}

/* State carried across the WRs of one post_send call. */
struct gift_post_send_ctx {
	u8 *staging;		/* user inline data, allocated on first use */
	unsigned int signals;	/* owed by immediate flushes, send CQ */
	bool kick;		/* a WQE was queued in RTS or SQD */
	bool ring_failed;	/* the mapped send ring is corrupt */
};

/* The opcodes a mapped send ring carries (struct gift_swqe). */
static bool gift_swqe_opcode_ok(struct gift_qp *qp, u32 opcode)
{
	switch (opcode) {
	case IB_WR_SEND:
	case IB_WR_SEND_WITH_IMM:
	case IB_WR_RDMA_WRITE:
	case IB_WR_RDMA_WRITE_WITH_IMM:
		return true;
	case IB_WR_SEND_WITH_INV:
	case IB_WR_RDMA_READ:
	case IB_WR_ATOMIC_CMP_AND_SWP:
	case IB_WR_ATOMIC_FETCH_AND_ADD:
		return !gift_qp_is_uc(qp);
	default:
		return false;
	}
}

#define GIFT_SWQE_SEND_FLAGS \
	(IB_SEND_FENCE | IB_SEND_SIGNALED | IB_SEND_SOLICITED | IB_SEND_INLINE)

/*
 * Copies the gather list or the inline data of a mapped send slot into
 * @wqe, each count read once and checked; false when it is not valid.
 */
static bool gift_swqe_read_tail(struct gift_qp *qp, struct gift_send_wqe *wqe,
				const struct gift_swqe *s)
{
	const struct ib_uverbs_sge *sge = (const void *)(s + 1);
	u64 len = 0;
	u32 i, n;

	if (wqe->send_flags & IB_SEND_INLINE) {
		n = READ_ONCE(s->inline_len);
		if (n > qp->sq.max_inline ||
		    !gift_send_opcode_inline_ok(wqe->opcode))
			return false;
		/* The bytes themselves are the owner's to change meanwhile. */
		data_race(memcpy(wqe->inline_data, s + 1, n));
		wqe->length = n;
		return true;
	}
	n = READ_ONCE(s->num_sge);
	if (n > qp->sq.max_sge)
		return false;
	for (i = 0; i < n; i++) {
		wqe->sge[i].addr = READ_ONCE(sge[i].addr);
		wqe->sge[i].length = READ_ONCE(sge[i].length);
		wqe->sge[i].lkey = READ_ONCE(sge[i].lkey);
		len += wqe->sge[i].length;
	}
	if (len > GIFT_MAX_MSG_SIZE ||
	    (gift_send_opcode_atomic(wqe->opcode) && len != 8))
		return false;
	wqe->num_sge = n;
	wqe->length = len;
	return true;
}

/*
 * Fills a send WQE from slot @idx of the mapped send ring, checked as
 * gift_send_wr_check() checks a posted WR. A slot that is not a valid
 * work request still makes a WQE, GIFT_SWQE_BAD, that the requester
 * fails in its turn (IB_WC_LOC_QP_OP_ERR), after those before it.
 */
static void gift_send_wqe_from_ring(struct gift_qp *qp,
				    struct gift_send_wqe *wqe, u32 idx)
{
	const struct gift_swqe *s = gift_wq_uring_slot(&qp->sq.uring, idx);
	u32 opcode = READ_ONCE(s->opcode), flags = READ_ONCE(s->send_flags);

	lockdep_assert_held(&qp->sq.lock);

	wqe->wr_id = READ_ONCE(s->wr_id);
	wqe->opcode = IB_WR_SEND;
	wqe->send_flags = flags & GIFT_SWQE_SEND_FLAGS;
	wqe->flags = GIFT_SWQE_RING;
	wqe->num_sge = 0;
	wqe->length = 0;
	wqe->ex.invalidate_rkey = READ_ONCE(s->ex);
	memset(&wqe->wr, 0, sizeof(wqe->wr));
	memset(wqe->proto, 0, sizeof(wqe->proto));
	if (!gift_swqe_opcode_ok(qp, opcode) ||
	    (flags & ~GIFT_SWQE_SEND_FLAGS))
		goto bad;
	wqe->opcode = opcode;
	if (!gift_swqe_read_tail(qp, wqe, s))
		goto bad;
	switch (opcode) {
	case IB_WR_RDMA_WRITE:
	case IB_WR_RDMA_WRITE_WITH_IMM:
	case IB_WR_RDMA_READ:
		wqe->wr.rdma.remote_addr = READ_ONCE(s->remote_addr);
		wqe->wr.rdma.rkey = READ_ONCE(s->rkey);
		break;
	case IB_WR_ATOMIC_CMP_AND_SWP:
	case IB_WR_ATOMIC_FETCH_AND_ADD:
		wqe->wr.atomic.remote_addr = READ_ONCE(s->remote_addr);
		wqe->wr.atomic.compare_add = READ_ONCE(s->compare_add);
		wqe->wr.atomic.swap = READ_ONCE(s->swap);
		wqe->wr.atomic.rkey = READ_ONCE(s->rkey);
		break;
	default:
		break;
	}
	return;
bad:
	gift_qp_dbg(qp, "send slot %u: opcode %u, flags %#x refused\n", idx,
		    opcode, flags);
	wqe->flags |= GIFT_SWQE_BAD;
	wqe->num_sge = 0;
	wqe->length = 0;
}

/*
 * Takes what user space posted in the mapped send ring since the last
 * call into the send queue (in SQE and ERR: completes it at once with
 * flush errors). Sets ctx->kick when WQEs were queued, ctx->ring_failed
 * when the ring's producer index is corrupt (the caller fails the QP).
 * Every post on the send queue calls this first, so that WQEs stay in
 * the order they were posted.
 *
 * Return: 0; -EINVAL in RESET, INIT and RTR (nothing is taken).
 */
static int gift_qp_sq_fetch(struct gift_qp *qp, struct gift_post_send_ctx *ctx)
{
	struct gift_wq_uring *u = &qp->sq.uring;
	struct gift_queue *q = &qp->sq.queue;
	u32 prod;

	lockdep_assert_held(&qp->sq.lock);
	if (!gift_wq_uring_mapped(u))
		return 0;
	switch (qp->state) {
	case IB_QPS_SQE:
	case IB_QPS_ERR:
		gift_qp_sq_flush_ring(qp, &ctx->signals);
		return 0;
	case IB_QPS_RTS:
	case IB_QPS_SQD:
		break;
	default:
		return -EINVAL;
	}
	if (!gift_qp_sq_ring_prod(qp, &prod)) {
		ctx->ring_failed = true;
		return 0;
	}
	for (; u->fetch != prod; u->fetch++) {
		gift_send_wqe_from_ring(qp, gift_queue_slot(q, q->prod),
					u->fetch);
		q->prod++;
		ctx->kick = true;
	}
	return 0;
}

/**
 * gift_qp_sq_poll() - take what user space posted in the mapped send ring
 * @qp: queue pair; the engine calls this before its requester runs
 *
 * This is the doorbell the provider skips while GIFT_WQ_RING_ENGINE is
 * set (gift_qp_sq_engine()). A corrupt producer index takes nothing
 * here; the provider's next doorbell fails the QP. Any context; takes
 * sq.lock, signals the send CQ (flushes in SQE and ERR) without it.
 */
void gift_qp_sq_poll(struct gift_qp *qp)
{
	struct gift_post_send_ctx ctx = {};
	unsigned long flags;

	if (!gift_wq_uring_mapped(&qp->sq.uring))
		return;
	spin_lock_irqsave(&qp->sq.lock, flags);
	gift_qp_sq_fetch(qp, &ctx);
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	gift_cq_signal(to_gift_cq(qp->ibqp.send_cq), ctx.signals);
}

/**
 * gift_qp_sq_engine() - say in the mapped send ring whether the engine runs
 * @qp: queue pair
 * @running: true at the start of an engine pass, false at its end
 *
 * While GIFT_WQ_RING_ENGINE is set, the provider stores its producer
 * index and skips the doorbell: the pass takes those WQEs
 * (gift_qp_sq_poll()), or its end sees them. Clearing the flag is
 * followed by a full barrier and a load of prod, paired with the
 * provider's barrier between its store of prod and its load of flags:
 * either it sees the flag clear and rings, or this sees its WQEs. The
 * flag is set only in the states whose doorbell takes WQEs (RTS, SQD,
 * SQE: ERR clears it), and what a corrupt index shows is not "more":
 * a pass never calls for another that would take nothing. Any context;
 * takes sq.lock.
 *
 * Return: at the end of a pass, true when WQEs were posted that no pass
 * took: the engine must run again.
 */
bool gift_qp_sq_engine(struct gift_qp *qp, bool running)
{
	struct gift_wq_uring *u = &qp->sq.uring;
	unsigned long flags;
	bool more = false;
	u32 prod;

	if (!gift_wq_uring_mapped(u))
		return false;
	spin_lock_irqsave(&qp->sq.lock, flags);
	if (running && (qp->state == IB_QPS_RTS || qp->state == IB_QPS_SQD ||
			qp->state == IB_QPS_SQE)) {
		gift_wq_uring_flags(u, GIFT_WQ_RING_ENGINE, 0);
	} else if (u->flags & GIFT_WQ_RING_ENGINE) {
		gift_wq_uring_flags(u, 0, GIFT_WQ_RING_ENGINE);
		more = gift_qp_sq_ring_prod(qp, &prod) && prod != u->fetch;
	}
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	return more;
}

static int gift_stage_inline(struct gift_qp *qp, const struct ib_send_wr *wr,
			     struct gift_post_send_ctx *ctx)
{
	if (!ctx->staging) {
		ctx->staging = kmalloc(qp->sq.max_inline, GFP_KERNEL);
		if (!ctx->staging)
			return -ENOMEM;
	}
	return gift_stage_inline_user(wr, ctx->staging);
}

static int gift_post_one_send(struct gift_qp *qp, const struct ib_send_wr *wr,
			      struct gift_post_send_ctx *ctx)
{
	struct gift_queue *q = &qp->sq.queue;
	const u8 *staged = NULL;
	unsigned long flags;
	u32 length;
	int err;

	err = gift_send_wr_check(qp, wr, &length);
	if (err)
		return err;
	if ((wr->send_flags & IB_SEND_INLINE) && qp->is_user) {
		err = gift_stage_inline(qp, wr, ctx);
		if (err)
			return err;
		staged = ctx->staging;
	}

	spin_lock_irqsave(&qp->sq.lock, flags);
	switch (qp->state) {
	case IB_QPS_RTS:
	case IB_QPS_SQD:
		if (gift_queue_count(q) >= qp->sq.max_wr) {
			err = -ENOMEM;
			break;
		}
		gift_send_wqe_init(qp, gift_queue_slot(q, q->prod), wr, length,
				   staged);
		q->prod++;
		ctx->kick = true;
		break;
	case IB_QPS_SQE:
	case IB_QPS_ERR:
		gift_qp_flush_one(qp, qp->ibqp.send_cq, wr->wr_id,
				  gift_wc_opcode(wr->opcode), &ctx->signals);
		break;
	default:
		err = -EINVAL;
		break;
	}
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	if (err)
		gift_qp_dbg(qp, "send refused: %d\n", err);
	return err;
}

/*
 * After a post on the send queue, with no lock held: the completions of
 * immediate flushes signalled, a corrupt mapped ring's QP failed, the
 * engine kicked for new WQEs.
 */
static void gift_post_send_end(struct gift_qp *qp,
			       struct gift_post_send_ctx *ctx)
{
	gift_cq_signal(to_gift_cq(qp->ibqp.send_cq), ctx->signals);
	if (ctx->ring_failed)
		gift_qp_fatal(qp, "its send ring is corrupt");
	if (ctx->kick)
		gift_proto_kick(qp);
}

/**
 * gift_post_send() - post send work requests
 * @ibqp: queue pair
 * @wr: chain of work requests (for user QPs, copied in by uverbs; SGE
 *	addresses are user virtual addresses)
 * @bad_wr: set to the first work request not posted, on error
 *
 * With a mapped send queue, what user space posted in the ring is taken
 * first (gift_qp_sq_fetch()); @wr may then be NULL, the doorbell. Each
 * WR is validated completely before it is queued; those before a
 * failing one stay posted. Inline data is copied into the WQE now (with
 * copy_from_user for user QPs). In ERR and SQE each WR completes at once
 * with IB_WC_WR_FLUSH_ERR. The engine is kicked once WQEs were queued.
 * Any context for kernel QPs (process context for user QPs).
 *
 * Return: 0; -EINVAL for a QP in RESET, INIT or RTR, an opcode not valid
 * for the QP (REG_MR and LOCAL_INV are for kernel QPs), more than
 * max_send_sge SGEs, inline data over max_inline_data or with an opcode
 * that has none, an atomic whose length is not 8, a FLUSH or ATOMIC_WRITE
 * not passed as a valid struct gift_ex_wr (rdma/gift_wr.h), a message
 * over 2 GiB,
 * a UD WR without AH; -EMSGSIZE for a UD message longer than the port's
 * active MTU; -ENOMEM when the send queue is full; -EFAULT for
 * unreadable user inline data. A corrupt mapped ring fails the QP
 * (IB_EVENT_QP_FATAL) and the call returns 0.
 */
static int gift_post_send(struct ib_qp *ibqp, const struct ib_send_wr *wr,
			  const struct ib_send_wr **bad_wr)
{
	struct gift_qp *qp = to_gift_qp(ibqp);
	struct gift_post_send_ctx ctx = {};
	unsigned long flags;
	int err = 0;

	if (gift_wq_uring_mapped(&qp->sq.uring)) {
		spin_lock_irqsave(&qp->sq.lock, flags);
		err = gift_qp_sq_fetch(qp, &ctx);
		spin_unlock_irqrestore(&qp->sq.lock, flags);
		if (err)
			*bad_wr = wr;
	}
	for (; wr && !err; wr = wr->next) {
		err = gift_post_one_send(qp, wr, &ctx);
		if (err)
			*bad_wr = wr;
	}
	kfree(ctx.staging);
	gift_post_send_end(qp, &ctx);
	return err;
}

/**
 * gift_qp_post_ex() - post one FLUSH or ATOMIC_WRITE for a user QP
 * @ibqp: an RC queue pair of ours
 * @ex: the work request (GIFT_IB_METHOD_QP_POST_EX)
 *
 * Queued behind everything posted before, as gift_post_send() would.
 *
 * Context: process context.
 *
 * Return: as gift_post_send().
 */
int gift_qp_post_ex(struct ib_qp *ibqp, const struct gift_ex_wr *ex)
{
	const struct ib_send_wr *bad;

	return gift_post_send(ibqp, &ex->wr, &bad);
}

/**
 * gift_qp_post_mw_wr() - post a BIND_MW or LOCAL_INV of a user QP
 * @qp: an RC queue pair
 * @wr_id: the consumer's identifier
 * @send_flags: IB_SEND_SIGNALED and/or IB_SEND_FENCE
 * @opcode: IB_WR_BIND_MW or IB_WR_LOCAL_INV
 * @invalidate_rkey: LOCAL_INV: the rkey to invalidate
 * @bind: BIND_MW: the bind
 *
 * uverbs' post_send carries neither (struct ib_uverbs_send_wr has no bind
 * fields, and uverbs refuses LOCAL_INV), so the provider posts them one
 * at a time through GIFT_IB_METHOD_QP_POST_MW (gift_uapi.c), in order
 * with the rest of its work requests. The requester executes them in
 * order (gift_req.c). As with gift_post_send(), in ERR and SQE the WR
 * completes at once with IB_WC_WR_FLUSH_ERR.
 *
 * Context: process context.
 *
 * Return: 0; -EINVAL for a UD QP, another opcode or other flags, or a QP
 * in RESET, INIT or RTR; -ENOMEM when the send queue is full.
 */
int gift_qp_post_mw_wr(struct gift_qp *qp, u64 wr_id, u32 send_flags,
		       enum ib_wr_opcode opcode, u32 invalidate_rkey,
		       const struct gift_mw_bind *bind)
{
	struct gift_queue *q = &qp->sq.queue;
	struct gift_post_send_ctx ctx = {};
	struct gift_send_wqe *wqe;
	unsigned long flags;
	int err = 0;

	if (gift_qp_is_ud(qp) ||
	    (opcode != IB_WR_BIND_MW && opcode != IB_WR_LOCAL_INV) ||
	    (send_flags & ~(IB_SEND_SIGNALED | IB_SEND_FENCE)))
		return -EINVAL;

	spin_lock_irqsave(&qp->sq.lock, flags);
	gift_qp_sq_fetch(qp, &ctx);
	switch (qp->state) {
	case IB_QPS_RTS:
	case IB_QPS_SQD:
		if (gift_queue_count(q) >= qp->sq.max_wr) {
			err = -ENOMEM;
			break;
		}
		wqe = gift_queue_slot(q, q->prod);
		wqe->wr_id = wr_id;
		wqe->opcode = opcode;
		wqe->send_flags = send_flags;
		wqe->flags = 0;
		wqe->num_sge = 0;
		wqe->length = 0;
		wqe->ex.invalidate_rkey = invalidate_rkey;
		memset(&wqe->wr, 0, sizeof(wqe->wr));
		memset(wqe->proto, 0, sizeof(wqe->proto));
		if (opcode == IB_WR_BIND_MW)
			wqe->wr.bind = *bind;
		q->prod++;
		ctx.kick = true;
		break;
	case IB_QPS_SQE:
	case IB_QPS_ERR:
		gift_qp_flush_one(qp, qp->ibqp.send_cq, wr_id,
				  gift_wc_opcode(opcode), &ctx.signals);
		break;
	default:
		err = -EINVAL;
		break;
	}
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	gift_post_send_end(qp, &ctx);
	return err;
}

/**
 * gift_recv_wr_check() - validate a receive work request
 * @gdev: device, for logging
 * @wr: the work request
 * @max_sge: SGEs per WQE of the receiving queue
 *
 * Return: 0, or -EINVAL when @wr has more than @max_sge SGEs.
 */
int gift_recv_wr_check(struct gift_dev *gdev, const struct ib_recv_wr *wr,
		       u32 max_sge)
{
	if ((u32)wr->num_sge > max_sge) {
		gift_dbg(gdev, "num_sge %d > %u\n", wr->num_sge, max_sge);
		return -EINVAL;
	}
	return 0;
}

/**
 * gift_recv_wqe_init() - fill a receive slot from a checked work request
 * @wqe: the slot, with room for wr->num_sge SGEs
 * @wr: the work request
 */
void gift_recv_wqe_init(struct gift_recv_wqe *wqe, const struct ib_recv_wr *wr)
{
	int i;

	wqe->wr_id = wr->wr_id;
	wqe->num_sge = wr->num_sge;
	wqe->flags = 0;
	wqe->length = 0;
	for (i = 0; i < wr->num_sge; i++) {
		wqe->sge[i] = wr->sg_list[i];
		wqe->length += wr->sg_list[i].length;
	}
}

static int gift_post_one_recv(struct gift_qp *qp, const struct ib_recv_wr *wr,
			      unsigned int *signals)
{
	struct gift_queue *q = &qp->rq.queue;
	unsigned long flags;
	int err;

	err = gift_recv_wr_check(to_gift_dev(qp->ibqp.device), wr,
				 qp->rq.max_sge);
	if (err)
		return err;

	spin_lock_irqsave(&qp->rq.lock, flags);
	switch (qp->state) {
	case IB_QPS_RESET:
		err = -EINVAL;
		break;
	case IB_QPS_ERR:
		gift_qp_flush_one(qp, qp->ibqp.recv_cq, wr->wr_id, IB_WC_RECV,
				  signals);
		break;
	default:
		if (gift_queue_full(q)) {
			err = -ENOMEM;
			break;
		}
		gift_recv_wqe_init(gift_queue_slot(q, q->prod), wr);
		q->prod++;
		break;
	}
	spin_unlock_irqrestore(&qp->rq.lock, flags);
	if (err)
		gift_qp_dbg(qp, "receive refused: %d\n", err);
	return err;
}

/*
 * The post_recv command on a mapped receive queue: without work requests,
 * in ERR, it flushes what user space posted in the ring since the QP
 * entered ERR (rdma/gift-abi.h). Work requests go through the ring only.
 */
static int gift_qp_rq_doorbell(struct gift_qp *qp, const struct ib_recv_wr *wr)
{
	unsigned int signals = 0;
	unsigned long flags;
	int err = 0;

	if (wr)
		return -EINVAL;
	spin_lock_irqsave(&qp->rq.lock, flags);
	if (qp->state == IB_QPS_RESET)
		err = -EINVAL;
	else if (qp->state == IB_QPS_ERR)
		gift_qp_rq_flush(qp, &signals);
	spin_unlock_irqrestore(&qp->rq.lock, flags);
	gift_cq_signal(to_gift_cq(qp->ibqp.recv_cq), signals);
	return err;
}

/**
 * gift_post_recv() - post receive work requests
 * @ibqp: queue pair without SRQ
 * @wr: chain of work requests
 * @bad_wr: set to the first work request not posted, on error
 *
 * Those before a failing WR stay posted. In ERR each WR completes at
 * once with IB_WC_WR_FLUSH_ERR. Any context for kernel QPs.
 *
 * With a mapped receive queue, work requests go through the ring and
 * this is the ERR doorbell (gift_qp_rq_doorbell()).
 *
 * Return: 0; -EINVAL for a QP with an SRQ or in RESET, or more than
 * max_recv_sge SGEs, or work requests for a mapped receive queue;
 * -ENOMEM when the receive queue is full.
 */
static int gift_post_recv(struct ib_qp *ibqp, const struct ib_recv_wr *wr,
			  const struct ib_recv_wr **bad_wr)
{
	struct gift_qp *qp = to_gift_qp(ibqp);
	unsigned int signals = 0;
	int err = 0;

	if (ibqp->srq) {
		gift_qp_dbg(qp, "has an SRQ\n");
		*bad_wr = wr;
		return -EINVAL;
	}
	if (gift_wq_uring_mapped(&qp->rq.uring)) {
		*bad_wr = wr;
		return gift_qp_rq_doorbell(qp, wr);
	}
	for (; wr; wr = wr->next) {
		err = gift_post_one_recv(qp, wr, &signals);
		if (err) {
			*bad_wr = wr;
			break;
		}
	}
	gift_cq_signal(to_gift_cq(ibqp->recv_cq), signals);
	return err;
}

/**
 * gift_qp_sq_peek() - a posted, not yet completed send WQE
 * @qp: queue pair
 * @n: position among the outstanding WQEs, 0 being the oldest
 *
 * The engine walks the send queue with its own cursor. The WQE stays
 * valid (and is never modified by the QP code) until it is completed
 * with gift_qp_sq_complete(), the QP enters RESET or is destroyed;
 * entering ERR completes it but leaves its slot untouched until the next
 * RESET. Any context; takes sq.lock.
 *
 * Return: the WQE, or NULL when fewer than @n + 1 are outstanding.
 */
struct gift_send_wqe *gift_qp_sq_peek(struct gift_qp *qp, u32 n)
{
	struct gift_queue *q = &qp->sq.queue;
	struct gift_send_wqe *wqe = NULL;
	unsigned long flags;

	spin_lock_irqsave(&qp->sq.lock, flags);
	if (n < gift_queue_count(q))
		wqe = gift_queue_slot(q, q->cons + n);
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	return wqe;
}

static bool gift_send_wqe_signaled(struct gift_qp *qp,
				   const struct gift_send_wqe *wqe)
{
	return qp->sq_sig_type == IB_SIGNAL_ALL_WR ||
	       (wqe->send_flags & IB_SEND_SIGNALED);
}

/**
 * gift_qp_sq_complete() - complete the oldest outstanding send WQE
 * @qp: queue pair
 * @status: IB_WC_SUCCESS or the error to report
 * @byte_len: byte_len of the completion (RDMA READ and atomics)
 *
 * Pops the WQE and, when it is signaled (IB_SEND_SIGNALED or an
 * IB_SIGNAL_ALL_WR QP) or @status is an error, posts a completion with
 * its wr_id and opcode to the send CQ. An error does not move the QP to
 * ERR: call gift_qp_error() after. Any context; takes sq.lock and the
 * send CQ's lock, calls the CQ handlers without them.
 *
 * Return: 0; -ENOENT when no WQE is outstanding (the QP was flushed);
 * -EOVERFLOW when the send CQ was full (the WQE is popped all the same).
 */
int gift_qp_sq_complete(struct gift_qp *qp, enum ib_wc_status status,
			u32 byte_len)
{
	struct gift_queue *q = &qp->sq.queue;
	struct gift_send_wqe *wqe;
	unsigned int signals = 0;
	unsigned long flags;
	int err = -ENOENT;

	spin_lock_irqsave(&qp->sq.lock, flags);
	if (!gift_queue_empty(q)) {
		wqe = gift_queue_slot(q, q->cons);
		err = 0;
		/* The slot stays as it is under the lock; it is free first. */
		gift_qp_sq_retire(qp, wqe);
		if (status != IB_WC_SUCCESS || gift_send_wqe_signaled(qp, wqe)) {
			struct ib_wc wc = {
				.wr_id = wqe->wr_id,
				.status = status,
				.opcode = gift_wc_opcode(wqe->opcode),
				.byte_len = byte_len,
				.qp = &qp->ibqp,
			};

			err = gift_cq_post_deferred(to_gift_cq(qp->ibqp.send_cq),
						    &wc, false, &signals);
		}
	}
	spin_unlock_irqrestore(&qp->sq.lock, flags);
	gift_cq_signal(to_gift_cq(qp->ibqp.send_cq), signals);
	return err;
}

/**
 * gift_qp_rq_pop() - take the next receive WQE for an incoming message
 * @qp: queue pair
 * @out: filled with a copy of the WQE
 *
 * With an SRQ, the WQE comes from it (gift_srq_pop(), srq->lock) and is
 * the engine's from now on. Without, it stays in the QP's receive ring,
 * in progress, until gift_qp_rq_complete() (or a flush) completes it:
 * in-progress WQEs complete in pop order. A mapped receive ring's slot
 * is copied and checked here: one that is not a valid work request comes
 * out with GIFT_RWQE_BAD, for the engine to fail. Any context; takes
 * rq.lock.
 *
 * Return: 0, or -ENOENT when no WQE is posted (RNR); -EIO when the
 * mapped ring's producer index is corrupt: the engine fails the QP.
 */
int gift_qp_rq_pop(struct gift_qp *qp, struct gift_recv_wqe *out)
{
	bool mapped = gift_wq_uring_mapped(&qp->rq.uring);
	struct gift_queue *q = &qp->rq.queue;
	unsigned long flags;
	int err = -ENOENT;

	if (qp->ibqp.srq)
		return gift_srq_pop(to_gift_srq(qp->ibqp.srq), out);

	spin_lock_irqsave(&qp->rq.lock, flags);
	if (mapped && qp->rq.popped == q->prod && gift_qp_rq_sync(qp)) {
		err = -EIO;
	} else if (qp->rq.popped != q->prod) {
		if (mapped)
			gift_wq_uring_read_recv(&qp->rq.uring, qp->rq.popped,
						qp->rq.max_sge, out);
		else
			memcpy(out, gift_queue_slot(q, qp->rq.popped),
			       q->stride);
		qp->rq.popped++;
		err = 0;
	}
	spin_unlock_irqrestore(&qp->rq.lock, flags);
	return err;
}

/**
 * gift_qp_rq_complete() - complete a receive WQE taken by gift_qp_rq_pop()
 * @qp: queue pair
 * @wqe: the engine's copy of the WQE, the oldest one in progress
 * @wc: completion built by the engine (status, opcode, byte_len,
 *	wc_flags, ex, src_qp, ...); wr_id and qp are filled in here
 * @solicited: the message had the solicited event bit
 *
 * Without an SRQ this retires the oldest in-progress WQE of the ring; if
 * a flush already completed it, nothing is posted. Any context; takes
 * rq.lock (not with an SRQ) and the receive CQ's lock, calls the CQ
 * handlers without them.
 *
 * Return: 0; -ENOENT when the WQE was already flushed; -EOVERFLOW when
 * the receive CQ was full.
 */
int gift_qp_rq_complete(struct gift_qp *qp, const struct gift_recv_wqe *wqe,
			struct ib_wc *wc, bool solicited)
{
	struct gift_cq *rcq = to_gift_cq(qp->ibqp.recv_cq);
	struct gift_queue *q = &qp->rq.queue;
	unsigned int signals = 0;
	unsigned long flags;
	int err = -ENOENT;

	wc->wr_id = wqe->wr_id;
	wc->qp = &qp->ibqp;
	if (qp->ibqp.srq)
		return gift_cq_post(rcq, wc, solicited);

	spin_lock_irqsave(&qp->rq.lock, flags);
	if (q->cons != qp->rq.popped) {
		q->cons++;
		if (gift_wq_uring_mapped(&qp->rq.uring))
			gift_wq_uring_publish(&qp->rq.uring, q->cons);
		err = gift_cq_post_deferred(rcq, wc, solicited, &signals);
	}
	spin_unlock_irqrestore(&qp->rq.lock, flags);
	gift_cq_signal(rcq, signals);
	return err;
}

/**
 * gift_qp_error() - move a QP to ERR on a protocol error
 * @qp: queue pair
 *
 * Flushes both queues (see the file comment) and reports
 * IB_EVENT_QP_FATAL (and IB_EVENT_QP_LAST_WQE_REACHED with an SRQ); the
 * engine completes its in-progress SRQ WQE before calling this. Nothing
 * happens for a QP already in ERR, nor for one in RESET or INIT: the
 * engine posts the completion of the failed WQE (gift_comp_fail(),
 * gift_resp_fatal()) before calling this, and a consumer that polled it
 * may already have reset the QP (its modify_qp then waits for the engine
 * lock, held by the caller, before it returns); that QP no longer has
 * anything to fail and must stay where the consumer put it. The engine
 * hook gift_proto_qp_modified() is not called. Any context; takes
 * sq.lock and rq.lock, calls CQ and QP handlers without them.
 */
void gift_qp_error(struct gift_qp *qp)
{
	struct gift_qp_signals sig = {};
	unsigned long flags;
	bool entered;

	gift_qp_lock(qp, &flags);
	entered = qp->state >= IB_QPS_RTR && qp->state != IB_QPS_ERR;
	if (entered) {
		gift_qp_flush(qp, &sig);
		WRITE_ONCE(qp->state, IB_QPS_ERR);
	}
	gift_qp_unlock(qp, flags);
	if (!entered)
		return;

	gift_qp_dbg(qp, "protocol error, moved to ERR\n");
	gift_qp_signal(qp, &sig);
	gift_qp_event(qp, IB_EVENT_QP_FATAL);
	if (qp->ibqp.srq)
		gift_qp_event(qp, IB_EVENT_QP_LAST_WQE_REACHED);
}

/*
 * Moves a QP whose CQ or mapped ring failed to ERR as modify_qp would (flushes, engine
 * told), then reports IB_EVENT_QP_FATAL (and IB_EVENT_QP_LAST_WQE_REACHED
 * with an SRQ). A QP in RESET (nothing to fail) or already in ERR is left
 * alone. Process context; takes modify_lock.
 */
static void gift_qp_fatal(struct gift_qp *qp, const char *why)
{
	struct ib_qp_attr attr = { .qp_state = IB_QPS_ERR };
	struct gift_qp_signals sig = {};
	unsigned long flags;
	bool entered;

	mutex_lock(&qp->modify_lock);
	gift_qp_lock(qp, &flags);
	entered = qp->state != IB_QPS_RESET && qp->state != IB_QPS_ERR;
	if (entered) {
		gift_qp_flush(qp, &sig);
		WRITE_ONCE(qp->state, IB_QPS_ERR);
	}
	gift_qp_unlock(qp, flags);
	if (entered) {
		gift_qp_signal(qp, &sig);
		gift_proto_qp_modified(qp, &attr, IB_QP_STATE, NULL);
	}
	mutex_unlock(&qp->modify_lock);
	if (!entered)
		return;

	gift_qp_dbg(qp, "%s, moved to ERR\n", why);
	gift_qp_event(qp, IB_EVENT_QP_FATAL);
	if (qp->ibqp.srq)
		gift_qp_event(qp, IB_EVENT_QP_LAST_WQE_REACHED);
}

/**
 * gift_qp_cq_failed() - fail every QP of a CQ that overflowed
 * @gdev: device
 * @ibcq: the CQ, in error
 *
 * Every published QP whose send or receive CQ is @ibcq moves to ERR with
 * IB_EVENT_QP_FATAL (see gift_qp_fatal()). A QP being destroyed is
 * skipped, or held until it is done (its destroy waits for the
 * reference). Process context (gift_cq.c's error work).
 */
void gift_qp_cq_failed(struct gift_dev *gdev, struct ib_cq *ibcq)
{
	struct gift_qp *qp;
	unsigned long qpn;
	void *entry;

	xa_for_each(&gdev->qp_table.qpns, qpn, entry) {
		qp = gift_qp_get(gdev, qpn);
		if (!qp)
			continue;
		if (qp->ibqp.send_cq == ibcq || qp->ibqp.recv_cq == ibcq)
			gift_qp_fatal(qp, "its CQ overflowed");
		gift_qp_put(qp);
	}
}

/**
 * gift_fill_res_qp_entry() - driver attributes of "rdma resource show qp -dd"
 * @msg: netlink message being built
 * @ibqp: QP, kept from being destroyed by restrack
 *
 * "mapped_sq" and "mapped_rq": 1 when the send or receive queue is a ring
 * the process maps (gift_wq.c); then the engine's (gift_proto_fill_res()).
 *
 * Return: 0, or -EMSGSIZE when @msg is full.
 */
static int gift_fill_res_qp_entry(struct sk_buff *msg, struct ib_qp *ibqp)
{
	struct gift_qp *qp = to_gift_qp(ibqp);
	struct nlattr *table;

	table = nla_nest_start(msg, RDMA_NLDEV_ATTR_DRIVER);
	if (!table)
		return -EMSGSIZE;
	if (rdma_nl_put_driver_u32(msg, "mapped_sq",
				   gift_wq_uring_mapped(&qp->sq.uring)) ||
	    rdma_nl_put_driver_u32(msg, "mapped_rq",
				   gift_wq_uring_mapped(&qp->rq.uring)) ||
	    gift_proto_fill_res(msg, qp)) {
		nla_nest_cancel(msg, table);
		return -EMSGSIZE;
	}
	nla_nest_end(msg, table);
	return 0;
}

const struct ib_device_ops gift_qp_ops = {
	.create_qp = gift_create_qp,
	.destroy_qp = gift_destroy_qp,
	.fill_res_qp_entry = gift_fill_res_qp_entry,
	.modify_qp = gift_modify_qp,
	.post_recv = gift_post_recv,
	.post_send = gift_post_send,
	.query_qp = gift_query_qp,

	INIT_RDMA_OBJ_SIZE(ib_qp, gift_qp, ibqp),
};
