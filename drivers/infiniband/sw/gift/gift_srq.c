// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift shared receive queues.
 *
 * What this file owns: struct gift_srq, its ring of receive WQEs (a
 * kernel ring, or for a mapped SRQ the ring user space posts into, see
 * rdma/gift-abi.h), the SRQ verbs (create, modify, query, destroy,
 * post_srq_recv), the two steps of a mapped SRQ's resize, and
 * gift_srq_pop(), through which the protocol engine takes receive WQEs.
 *
 * Invariants:
 *  - The ring size is the SRQ's max_wr, a power of two <= GIFT_MAX_SRQ_WR;
 *    every slot has room for max_sge SGEs, fixed at creation.
 *  - An armed limit (limit != 0) is <= max_wr. It fires once: the pop that
 *    leaves fewer than limit WQEs disarms it and reports
 *    IB_EVENT_SRQ_LIMIT_REACHED.
 *  - WQEs leave the ring only by gift_srq_pop() (or destroy). A QP moving
 *    to the error state does not flush its SRQ's WQEs.
 *
 * Locking: srq->lock (spinlock, irqsave) is a leaf lock protecting the
 * ring and the limit. The event handler is called without it. Resizing
 * allocates the new ring outside the lock and moves the WQEs under it.
 *
 * Destruction: ib_core refuses destroy_srq with -EBUSY while a QP uses
 * the SRQ (ib_srq.usecnt), so nothing pops from an SRQ being destroyed.
 */

#include "gift.h"

/**
 * gift_srq_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_srq_init_attr(struct ib_device_attr *attr)
{
	attr->max_srq = GIFT_MAX_SRQ;
	attr->max_srq_wr = GIFT_MAX_SRQ_WR;
	attr->max_srq_sge = GIFT_MAX_SGE;
	attr->device_cap_flags |= IB_DEVICE_SRQ_RESIZE;
}

static int gift_srq_check_max_wr(struct gift_dev *gdev, u32 max_wr)
{
	if (max_wr < 1 || max_wr > gdev->attr.max_srq_wr) {
		gift_dbg(gdev, "max_wr %u not in 1..%d\n", max_wr,
			 gdev->attr.max_srq_wr);
		return -EINVAL;
	}
	return 0;
}

/*
 * Frees a mapped SRQ's rings (the one in use, whose slots @srq->queue
 * names, and one prepared for a resize) or an unmapped SRQ's queue.
 */
static void gift_srq_free_queue(struct gift_srq *srq)
{
	gift_wq_uring_destroy(&srq->prepared);
	gift_wq_uring_destroy_recv(&srq->uring, &srq->queue);
}

/**
 * gift_create_srq() - create a shared receive queue
 * @ibsrq: SRQ allocated by ib_core
 * @init: type and sizes requested; the actual max_wr (a power of two) and
 *	max_sge are reported back in init->attr. srq_limit is ignored: an
 *	SRQ starts unarmed.
 * @udata: user data, or NULL: struct gift_create_srq_req in (optional),
 *	struct gift_wq_ring_resp out (where a mapped SRQ's ring is)
 *
 * Return: 0; -EOPNOTSUPP for other than basic SRQs; -EINVAL for sizes
 * outside the device limits or unknown driver flags; -ENOMEM at max_srq
 * or without memory.
 */
static int gift_create_srq(struct ib_srq *ibsrq, struct ib_srq_init_attr *init,
			   struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibsrq->device);
	struct gift_srq *srq = to_gift_srq(ibsrq);
	struct ib_srq_attr *attr = &init->attr;
	u32 max_sge = max_t(u32, attr->max_sge, 1);
	struct gift_create_srq_req req = {};
	struct gift_wq_ring_resp resp = {};
	u32 size;
	int err;

	err = gift_udata_read(udata, &req, sizeof(req));
	if (err)
		return err;
	if ((req.flags & ~(u64)GIFT_CREATE_SRQ_MAPPED) ||
	    (req.flags && udata->outlen < sizeof(resp)))
		return -EINVAL;
	if (init->srq_type != IB_SRQT_BASIC) {
		gift_dbg(gdev, "srq type %d not supported\n", init->srq_type);
		return -EOPNOTSUPP;
	}
	err = gift_srq_check_max_wr(gdev, attr->max_wr);
	if (err)
		return err;
	if (max_sge > gdev->attr.max_srq_sge) {
		gift_dbg(gdev, "max_sge %u > %d\n", max_sge,
			 gdev->attr.max_srq_sge);
		return -EINVAL;
	}
	if (!atomic_add_unless(&gdev->srq_table.num, 1, gdev->attr.max_srq))
		return -ENOMEM;

	size = gift_queue_slots(attr->max_wr);
	if (req.flags & GIFT_CREATE_SRQ_MAPPED)
		err = gift_wq_uring_create_recv(&srq->uring, &srq->queue, size,
						max_sge, gift_udata_uctx(udata),
						&resp);
	else
		err = gift_queue_init(&srq->queue, size,
				      gift_recv_wqe_size(max_sge));
	if (err)
		goto out_uncount;
	srq->mapped = req.flags & GIFT_CREATE_SRQ_MAPPED;
	if (udata && udata->outlen) {
		err = ib_copy_to_udata(udata, &resp,
				       min(udata->outlen, sizeof(resp)));
		if (err)
			goto out_free;
	}
	spin_lock_init(&srq->lock);
	mutex_init(&srq->resize_lock);
	srq->max_sge = max_sge;
	srq->limit = 0;

	attr->max_wr = srq->queue.size;
	attr->max_sge = max_sge;
	attr->srq_limit = 0;
	return 0;

out_free:
	gift_srq_free_queue(srq);
out_uncount:
	atomic_dec(&gdev->srq_table.num);
	return err;
}

/* Validates a modify_srq request against the current SRQ, under its lock. */
static int gift_srq_check_modify(struct gift_srq *srq, struct ib_srq_attr *attr,
				 enum ib_srq_attr_mask mask, u32 new_size)
{
	struct gift_dev *gdev = to_gift_dev(srq->ibsrq.device);
	u32 size = mask & IB_SRQ_MAX_WR ? new_size : srq->queue.size;
	u32 limit = mask & IB_SRQ_LIMIT ? attr->srq_limit : srq->limit;
	u32 queued = gift_queue_count(&srq->queue);

	lockdep_assert_held(&srq->lock);

	if (limit > size) {
		gift_dbg(gdev, "srq_limit %u > max_wr %u\n", limit, size);
		return -EINVAL;
	}
	if ((mask & IB_SRQ_MAX_WR) && queued > attr->max_wr) {
		gift_dbg(gdev, "max_wr %u below the %u posted WQEs\n",
			 attr->max_wr, queued);
		return -EINVAL;
	}
	return 0;
}

static void gift_srq_event(struct gift_srq *srq, enum ib_event_type type)
{
	struct ib_event ev = {
		.device = srq->ibsrq.device,
		.element.srq = &srq->ibsrq,
		.event = type,
	};

	if (srq->ibsrq.event_handler)
		srq->ibsrq.event_handler(&ev, srq->ibsrq.srq_context);
}

/*
 * Reads the user's producer index of a mapped SRQ into queue.prod. A
 * corrupt one breaks the SRQ for good: -EIO now and for every pop after,
 * *@first set the first time (to report IB_EVENT_SRQ_ERR).
 */
static int gift_srq_sync(struct gift_srq *srq, bool *first)
{
	u32 prod;

	lockdep_assert_held(&srq->lock);
	*first = false;
	if (!srq->broken &&
	    !gift_wq_uring_prod(&srq->uring, srq->queue.cons, &prod)) {
		srq->queue.prod = prod;
		return 0;
	}
	*first = !srq->broken;
	srq->broken = true;
	return -EIO;
}

/*
 * The second step of a mapped SRQ's resize: the posted WRs are copied
 * into the prepared ring at the same indices, under the SRQ's lock (at
 * most max_srq_wr of them), and the SRQ switches to it. The old ring is
 * dropped; the process unmaps it.
 */
static int gift_srq_commit_resize(struct gift_srq *srq,
				  struct ib_srq_attr *attr,
				  enum ib_srq_attr_mask mask)
{
	struct gift_wq_uring *to = &srq->prepared;
	struct gift_queue *q = &srq->queue;
	unsigned long flags;
	bool first;
	u32 i;
	int err;

	mutex_lock(&srq->resize_lock);
	if (!gift_wq_uring_mapped(to) ||
	    to->size != gift_queue_slots(attr->max_wr)) {
		err = -EINVAL;
		goto out;
	}
	spin_lock_irqsave(&srq->lock, flags);
	first = false;
	err = gift_srq_sync(srq, &first) ? -EINVAL :
	      gift_srq_check_modify(srq, attr, mask, to->size);
	if (!err) {
		for (i = q->cons; i != q->prod; i++) {
			/* The user may rewrite a slot meanwhile: its own WR. */
			data_race(memcpy(gift_wq_uring_slot(to, i),
					 gift_queue_slot(q, i), q->stride));
		}
		/* The user's index too, once, before the ring is its own. */
		WRITE_ONCE(to->ring->prod, q->prod);
		gift_wq_uring_publish(to, q->cons);
		swap(srq->uring, srq->prepared);
		q->buf = srq->uring.slots;
		q->size = srq->uring.size;
		if (mask & IB_SRQ_LIMIT)
			srq->limit = attr->srq_limit;
	}
	spin_unlock_irqrestore(&srq->lock, flags);
	/* A corrupt index seen first here is reported as gift_srq_pop() does. */
	if (first)
		gift_srq_event(srq, IB_EVENT_SRQ_ERR);
	if (!err)
		gift_wq_uring_destroy(&srq->prepared);
out:
	mutex_unlock(&srq->resize_lock);
	return err;
}

/**
 * gift_srq_prepare_resize() - make the new ring of a mapped SRQ's resize
 * @srq: a mapped SRQ
 * @max_wr: the new max_wr, or 0 to drop a prepared ring
 * @uctx: the SRQ's context
 * @resp: filled with where the ring is (zero for @max_wr 0)
 *
 * A prepared ring replaces any earlier one (rdma/gift-abi.h). Process
 * context; takes resize_lock.
 *
 * Return: 0; -EINVAL for an SRQ that is not mapped or a max_wr over
 * max_srq_wr; -ENOMEM.
 */
int gift_srq_prepare_resize(struct gift_srq *srq, u32 max_wr,
			    struct ib_ucontext *uctx,
			    struct gift_wq_ring_resp *resp)
{
	struct gift_dev *gdev = to_gift_dev(srq->ibsrq.device);
	int err = 0;

	memset(resp, 0, sizeof(*resp));
	if (!srq->mapped)
		return -EINVAL;
	if (max_wr) {
		err = gift_srq_check_max_wr(gdev, max_wr);
		if (err)
			return err;
	}
	mutex_lock(&srq->resize_lock);
	gift_wq_uring_destroy(&srq->prepared);
	if (max_wr)
		err = gift_wq_uring_create(&srq->prepared,
					   gift_queue_slots(max_wr),
					   srq->uring.stride, uctx, resp);
	mutex_unlock(&srq->resize_lock);
	return err;
}

/**
 * gift_modify_srq() - resize an SRQ or arm its limit
 * @ibsrq: shared receive queue
 * @attr: new max_wr and/or srq_limit
 * @mask: IB_SRQ_MAX_WR and/or IB_SRQ_LIMIT
 * @udata: user data, or NULL: struct gift_modify_srq_req (optional)
 *
 * Resizing keeps the posted WQEs, in order; the new size is a power of
 * two >= max_wr (see query_srq). A limit of 0 disarms the SRQ. Either
 * both changes are applied or neither. The new ring is allocated first
 * and the WQEs are copied into it while the SRQ keeps working, with
 * interrupts off for a bounded number of them at a time
 * (gift_queue_copy_locked()). A mapped SRQ resizes in two steps
 * (rdma/gift-abi.h): this is the second, gift_srq_commit_resize(), which
 * copies under the lock. Process context; takes resize_lock.
 *
 * Return: 0; -EINVAL for unknown driver flags or mask bits, a max_wr
 * outside 1..max_srq_wr or below the number of posted WQEs or the limit,
 * a limit above max_wr, a mapped SRQ's resize without its commit flag
 * or without a ring prepared for max_wr, the flag on another SRQ;
 * -ENOMEM.
 */
static int gift_modify_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr,
			   enum ib_srq_attr_mask mask, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibsrq->device);
	struct gift_srq *srq = to_gift_srq(ibsrq);
	bool mapped = srq->mapped;
	struct gift_modify_srq_req req = {};
	struct gift_queue new = {};
	unsigned long flags;
	bool commit;
	int err;

	err = gift_udata_read(udata, &req, sizeof(req));
	if (err)
		return err;
	commit = req.flags & GIFT_MODIFY_SRQ_COMMIT;
	if (mask & ~(IB_SRQ_MAX_WR | IB_SRQ_LIMIT) ||
	    (req.flags & ~(u64)GIFT_MODIFY_SRQ_COMMIT) ||
	    commit != (mapped && (mask & IB_SRQ_MAX_WR))) {
		gift_dbg(gdev, "mask %#x, driver flags %#llx refused\n", mask,
			 req.flags);
		return -EINVAL;
	}
	if (commit)
		return gift_srq_commit_resize(srq, attr, mask);
	if (mask & IB_SRQ_MAX_WR) {
		err = gift_srq_check_max_wr(gdev, attr->max_wr);
		if (!err)
			err = gift_queue_init(&new,
					      gift_queue_slots(attr->max_wr),
					      srq->queue.stride);
		if (err)
			return err;
	}

	mutex_lock(&srq->resize_lock);
	if (mask & IB_SRQ_MAX_WR)
		gift_queue_copy_locked(&srq->queue, &srq->lock, &flags, &new);
	else
		spin_lock_irqsave(&srq->lock, flags);
	err = gift_srq_check_modify(srq, attr, mask, new.size);
	if (!err && (mask & IB_SRQ_MAX_WR))
		gift_queue_adopt(&srq->queue, &new);
	if (!err && (mask & IB_SRQ_LIMIT))
		srq->limit = attr->srq_limit;
	spin_unlock_irqrestore(&srq->lock, flags);
	mutex_unlock(&srq->resize_lock);

	/* The old buffer after a move, else the unused new one (or NULL). */
	gift_queue_free(&new);
	return err;
}

/**
 * gift_query_srq() - report an SRQ's attributes
 * @ibsrq: shared receive queue
 * @attr: filled with max_wr (the ring size), max_sge and the armed limit
 *	(0 once it fired or when never armed)
 *
 * Return: 0.
 */
static int gift_query_srq(struct ib_srq *ibsrq, struct ib_srq_attr *attr)
{
	struct gift_srq *srq = to_gift_srq(ibsrq);
	unsigned long flags;

	spin_lock_irqsave(&srq->lock, flags);
	attr->max_wr = srq->queue.size;
	attr->srq_limit = srq->limit;
	spin_unlock_irqrestore(&srq->lock, flags);
	attr->max_sge = srq->max_sge;
	return 0;
}

/**
 * gift_destroy_srq() - destroy a shared receive queue
 * @ibsrq: SRQ no QP uses (ib_core refuses otherwise with -EBUSY)
 * @udata: unused
 *
 * Posted WQEs are discarded without completions.
 *
 * Return: 0; destroy never fails.
 */
static int gift_destroy_srq(struct ib_srq *ibsrq, struct ib_udata *udata)
{
	struct gift_srq *srq = to_gift_srq(ibsrq);

	mutex_destroy(&srq->resize_lock);
	gift_srq_free_queue(srq);
	atomic_dec(&to_gift_dev(ibsrq->device)->srq_table.num);
	return 0;
}

/**
 * gift_post_srq_recv() - post receive work requests to an SRQ
 * @ibsrq: shared receive queue
 * @wr: chain of work requests
 * @bad_wr: set to the first work request not posted, on error
 *
 * Work requests are posted in order until one fails; those before it
 * stay posted. Any context.
 *
 * Return: 0; -EINVAL when a WR has more than max_sge SGEs, or for a
 * mapped SRQ (its WRs go through its ring); -ENOMEM when the SRQ is full.
 */
static int gift_post_srq_recv(struct ib_srq *ibsrq, const struct ib_recv_wr *wr,
			      const struct ib_recv_wr **bad_wr)
{
	struct gift_dev *gdev = to_gift_dev(ibsrq->device);
	struct gift_srq *srq = to_gift_srq(ibsrq);
	struct gift_queue *q = &srq->queue;
	unsigned long flags;
	int err = 0;

	if (srq->mapped) {
		*bad_wr = wr;
		return -EINVAL;
	}
	for (; wr; wr = wr->next) {
		err = gift_recv_wr_check(gdev, wr, srq->max_sge);
		if (err)
			break;
		spin_lock_irqsave(&srq->lock, flags);
		if (gift_queue_full(q)) {
			spin_unlock_irqrestore(&srq->lock, flags);
			err = -ENOMEM;
			break;
		}
		gift_recv_wqe_init(gift_queue_slot(q, q->prod), wr);
		q->prod++;
		spin_unlock_irqrestore(&srq->lock, flags);
	}
	if (err)
		*bad_wr = wr;
	return err;
}

/**
 * gift_srq_pop() - take the oldest receive WQE off an SRQ
 * @srq: shared receive queue
 * @out: filled with the WQE (its header and num_sge SGEs); room for
 *	GIFT_MAX_SGE SGEs
 *
 * The WQE is consumed: from now on the caller owns it and must complete
 * it. When the pop leaves fewer WQEs than an armed limit, the limit is
 * disarmed and IB_EVENT_SRQ_LIMIT_REACHED reported, once.
 *
 * Any context; takes srq->lock (irqsave), calls the event handler without
 * it.
 *
 * A mapped SRQ's producer index is read at every pop, and its slot
 * copied and checked (GIFT_RWQE_BAD, see gift_qp_rq_pop()).
 *
 * Return: 0, or -ENOENT when the SRQ is empty; -EIO when a mapped SRQ's
 * producer index is corrupt (reported once, IB_EVENT_SRQ_ERR): the
 * engine fails the QP.
 */
int gift_srq_pop(struct gift_srq *srq, struct gift_recv_wqe *out)
{
	bool mapped = srq->mapped;
	struct gift_queue *q = &srq->queue;
	bool fire = false, first;
	unsigned long flags;

	spin_lock_irqsave(&srq->lock, flags);
	if (mapped && gift_srq_sync(srq, &first)) {
		spin_unlock_irqrestore(&srq->lock, flags);
		if (first)
			gift_srq_event(srq, IB_EVENT_SRQ_ERR);
		return -EIO;
	}
	if (gift_queue_empty(q)) {
		spin_unlock_irqrestore(&srq->lock, flags);
		return -ENOENT;
	}
	if (mapped)
		gift_wq_uring_read_recv(&srq->uring, q->cons, srq->max_sge,
					out);
	else
		memcpy(out, gift_queue_slot(q, q->cons), q->stride);
	q->cons++;
	if (mapped)
		gift_wq_uring_publish(&srq->uring, q->cons);
	if (srq->limit && gift_queue_count(q) < srq->limit) {
		srq->limit = 0;
		fire = true;
	}
	spin_unlock_irqrestore(&srq->lock, flags);

	if (fire)
		gift_srq_event(srq, IB_EVENT_SRQ_LIMIT_REACHED);
	return 0;
}

const struct ib_device_ops gift_srq_ops = {
	.create_srq = gift_create_srq,
	.destroy_srq = gift_destroy_srq,
	.modify_srq = gift_modify_srq,
	.post_srq_recv = gift_post_srq_recv,
	.query_srq = gift_query_srq,

	INIT_RDMA_OBJ_SIZE(ib_srq, gift_srq, ibsrq),
};
