// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift completion queues.
 *
 * What this file owns: struct gift_cq, its ring of work completions and
 * the CQ verbs (create, resize, destroy, poll, peek, req_notify), plus
 * gift_cq_post(), through which the QP code and the protocol engine
 * complete work requests.
 *
 * Invariants:
 *  - The ring holds at most ibcq.cqe entries; ibcq.cqe is the ring size,
 *    a power of two >= the requested cqe, <= GIFT_MAX_CQE.
 *  - Overflow puts the CQ in error for good (IBTA 11.6.2; rdma_rxe and
 *    mlx5 do the same): a completion that finds the ring full is
 *    dropped, and so is every later one; IB_EVENT_CQ_ERR is reported
 *    once, and every QP whose send or receive CQ it is moves to ERR with
 *    IB_EVENT_QP_FATAL (gift_qp_cq_failed(), from @err_work, again
 *    whenever a later completion is dropped, so that a QP created or
 *    reset since fails as well). poll_cq, peek_cq and resize_cq of a CQ
 *    in error fail with -EOVERFLOW: the ring has a hole, and handing out
 *    the completions on either side of it would look like a CQ that lost
 *    nothing. The consumer destroys it. (Returning the queued completions
 *    first and failing once they are gone is not possible: uverbs polls
 *    one completion at a time and fails the whole system call, with
 *    what it has already taken, at the first error.)
 *  - Arming is consumed by the completion that fires it: comp_handler is
 *    called at most once per req_notify_cq. NEXT_COMP fires on any
 *    completion, SOLICITED on a solicited or an error completion.
 *
 * Locking: cq->lock (spinlock, irqsave) is a leaf lock protecting the
 * ring and the arming state. Producers may hold their own QP locks when
 * queueing (gift_cq_post_deferred()); comp_handler and event_handler are
 * always called without cq->lock, and by gift_cq_signal() without any
 * lock of ours, because handlers may poll or re-arm this CQ.
 *
 * Destruction: ib_core refuses destroy_cq with -EBUSY while a QP or SRQ
 * uses the CQ (ib_cq.usecnt), and QPs stop producing before they are
 * destroyed, so nothing posts to a CQ being destroyed.
 *
 * A queued completion points at its QP (ib_wc.qp, which ib_uverbs reads
 * the QPN from when it is polled), and ib_core frees the QP when
 * destroy_qp returns: destroying a QP discards its queued completions
 * (gift_cq_discard_qp()), as mlx4 and mlx5 do for kernel QPs.
 */

#include <rdma/uverbs_ioctl.h>

#include "gift.h"

/**
 * gift_cq_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_cq_init_attr(struct ib_device_attr *attr)
{
	attr->max_cq = GIFT_MAX_CQ;
	attr->max_cqe = GIFT_MAX_CQE;
}

static bool gift_cq_fires(struct gift_cq *cq, const struct ib_wc *wc,
			  bool solicited)
{
	lockdep_assert_held(&cq->lock);

	if (cq->notify & IB_CQ_NEXT_COMP)
		return true;
	return (cq->notify & IB_CQ_SOLICITED) &&
	       (solicited || wc->status != IB_WC_SUCCESS);
}

/**
 * gift_cq_post_deferred() - queue a completion, callbacks left to the caller
 * @cq: completion queue
 * @wc: the completion; copied
 * @solicited: the completion is solicited (a receive of a message with
 *	the solicited event bit); error completions fire a solicited-armed
 *	CQ regardless
 * @signals: GIFT_CQ_SIG_* bits are ORed in here; pass them to
 *	gift_cq_signal() after dropping the locks the caller holds
 *
 * For callers that complete several work requests under their own lock,
 * in order, and must not call handlers under it (QP flushes). Any context;
 * takes cq->lock with irqsave.
 *
 * Return: 0, or -EOVERFLOW when the CQ is full or in error and @wc was
 * dropped (@signals then asks for the CQ's error handling).
 */
int gift_cq_post_deferred(struct gift_cq *cq, const struct ib_wc *wc,
			  bool solicited, unsigned int *signals)
{
	struct gift_queue *q = &cq->queue;
	unsigned long flags;
	int err = 0;

	spin_lock_irqsave(&cq->lock, flags);
	if (unlikely(cq->overflowed || gift_queue_full(q))) {
		cq->overflowed = true;
		*signals |= GIFT_CQ_SIG_OVERFLOW;
		err = -EOVERFLOW;
		goto out_unlock;
	}
	memcpy(gift_queue_slot(q, q->prod), wc, sizeof(*wc));
	q->prod++;
	if (gift_cq_fires(cq, wc, solicited)) {
		cq->notify = 0;
		*signals |= GIFT_CQ_SIG_COMP;
	}
out_unlock:
	spin_unlock_irqrestore(&cq->lock, flags);
	return err;
}

/**
 * gift_cq_signal() - make the callbacks a deferred post owes
 * @cq: completion queue
 * @signals: bits collected by gift_cq_post_deferred(); 0 is a no-op
 *
 * Any context, with no gift spinlock held. A lost completion queues
 * @err_work, which does the rest in process context (moving QPs to ERR
 * takes their modify_lock).
 */
void gift_cq_signal(struct gift_cq *cq, unsigned int signals)
{
	if (unlikely(signals & GIFT_CQ_SIG_OVERFLOW))
		queue_work(system_wq, &cq->err_work);
	if ((signals & GIFT_CQ_SIG_COMP) && cq->ibcq.comp_handler)
		cq->ibcq.comp_handler(&cq->ibcq, cq->ibcq.cq_context);
}

/*
 * The error handling of an overflowed CQ: IB_EVENT_CQ_ERR the first time,
 * then every QP using the CQ to ERR (those already there are left alone).
 * Runs again for every later lost completion; work items of one CQ never
 * run concurrently.
 */
static void gift_cq_err_work(struct work_struct *work)
{
	struct gift_cq *cq = container_of(work, struct gift_cq, err_work);
	struct ib_event ev = {
		.device = cq->ibcq.device,
		.element.cq = &cq->ibcq,
		.event = IB_EVENT_CQ_ERR,
	};

	if (!cq->err_reported) {
		cq->err_reported = true;
		ibdev_dbg(cq->ibcq.device, "cq overflow: the CQ and its QPs fail\n");
		if (cq->ibcq.event_handler)
			cq->ibcq.event_handler(&ev, cq->ibcq.cq_context);
	}
	gift_qp_cq_failed(to_gift_dev(cq->ibcq.device), &cq->ibcq);
}

/**
 * gift_cq_discard_qp() - drop the queued completions of a QP
 * @cq: a send or receive CQ of @qp
 * @qp: a QP being destroyed, which produces no more completions
 *
 * Keeps the other completions in order. Process context; takes
 * resize_lock, then cq->lock.
 */
void gift_cq_discard_qp(struct gift_cq *cq, const struct ib_qp *qp)
{
	struct gift_queue *q = &cq->queue;
	unsigned long flags;
	struct ib_wc *wc;
	u32 i, keep;

	mutex_lock(&cq->resize_lock);
	spin_lock_irqsave(&cq->lock, flags);
	keep = q->cons;
	for (i = q->cons; i != q->prod; i++) {
		wc = gift_queue_slot(q, i);
		if (wc->qp == qp)
			continue;
		if (keep != i)
			memcpy(gift_queue_slot(q, keep), wc, sizeof(*wc));
		keep++;
	}
	q->prod = keep;
	spin_unlock_irqrestore(&cq->lock, flags);
	mutex_unlock(&cq->resize_lock);
}

/**
 * gift_cq_post() - queue a completion and notify the consumer
 * @cq: completion queue
 * @wc: the completion; copied
 * @solicited: see gift_cq_post_deferred()
 *
 * Any context, with no gift spinlock held: comp_handler (when the CQ is
 * armed and the completion fires it, after disarming) and, on the first
 * overflow, the CQ's error handling is queued from here, outside
 * cq->lock.
 *
 * Return: 0, or -EOVERFLOW when the CQ is full or in error and @wc was
 * dropped.
 */
int gift_cq_post(struct gift_cq *cq, const struct ib_wc *wc, bool solicited)
{
	unsigned int signals = 0;
	int err;

	err = gift_cq_post_deferred(cq, wc, solicited, &signals);
	gift_cq_signal(cq, signals);
	return err;
}

static int gift_cq_check_cqe(struct gift_dev *gdev, unsigned int cqe)
{
	if (cqe < 1 || cqe > (unsigned int)gdev->attr.max_cqe) {
		gift_dbg(gdev, "cqe %u not in 1..%d\n", cqe, gdev->attr.max_cqe);
		return -EINVAL;
	}
	return 0;
}

/**
 * gift_create_cq() - create a completion queue
 * @ibcq: CQ allocated by ib_core
 * @attr: cqe, comp_vector and flags requested
 * @attrs: uverbs bundle for user CQs (no driver data is exchanged), NULL
 *	for kernel CQs
 *
 * Reports the actual size, a power of two, in ibcq->cqe.
 *
 * Return: 0; -EOPNOTSUPP for creation flags; -EINVAL for a cqe outside
 * 1..max_cqe, a bad comp_vector or driver input; -ENOMEM at max_cq or
 * without memory.
 */
static int gift_create_cq(struct ib_cq *ibcq, const struct ib_cq_init_attr *attr,
			  struct uverbs_attr_bundle *attrs)
{
	struct gift_dev *gdev = to_gift_dev(ibcq->device);
	struct ib_udata *udata = attrs ? &attrs->driver_udata : NULL;
	struct gift_cq *cq = to_gift_cq(ibcq);
	u32 slots;
	int err;

	if (gift_udata_has_input(udata))
		return -EINVAL;
	if (attr->flags) {
		gift_dbg(gdev, "unsupported flags %#x\n", attr->flags);
		return -EOPNOTSUPP;
	}
	if (attr->comp_vector >= ibcq->device->num_comp_vectors)
		return -EINVAL;
	err = gift_cq_check_cqe(gdev, attr->cqe);
	if (err)
		return err;
	if (!atomic_add_unless(&gdev->cq_table.num, 1, gdev->attr.max_cq))
		return -ENOMEM;

	slots = gift_queue_slots(attr->cqe);
	err = gift_queue_init(&cq->queue, slots, sizeof(struct ib_wc));
	if (err)
		goto out_uncount;
	spin_lock_init(&cq->lock);
	cq->notify = 0;
	cq->overflowed = false;
	cq->err_reported = false;
	mutex_init(&cq->resize_lock);
	INIT_WORK(&cq->err_work, gift_cq_err_work);
	ibcq->cqe = slots;
	return 0;

out_uncount:
	atomic_dec(&gdev->cq_table.num);
	return err;
}

/**
 * gift_resize_cq() - change the number of entries of a CQ
 * @ibcq: completion queue
 * @cqe: entries wanted
 * @udata: user data (no driver data is exchanged), or NULL
 *
 * Queued completions are kept, in order. The new size is a power of two
 * >= @cqe, reported in ibcq->cqe. The new ring is allocated first, and
 * the completions are copied into it while the CQ keeps working, with
 * interrupts off for a bounded number of them at a time
 * (gift_queue_copy_locked()). Process context; takes resize_lock.
 *
 * Return: 0; -EINVAL for driver input in @udata, @cqe outside 1..max_cqe
 * or below the number of queued completions; -EOVERFLOW for a CQ in
 * error (it overflowed); -ENOMEM.
 */
int gift_resize_cq(struct ib_cq *ibcq, unsigned int cqe, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibcq->device);
	struct gift_cq *cq = to_gift_cq(ibcq);
	struct gift_queue new;
	unsigned long flags;
	u32 queued;
	int err;

	if (gift_udata_has_input(udata))
		return -EINVAL;
	err = gift_cq_check_cqe(gdev, cqe);
	if (err)
		return err;
	if (READ_ONCE(cq->overflowed))
		return -EOVERFLOW;
	err = gift_queue_init(&new, gift_queue_slots(cqe), sizeof(struct ib_wc));
	if (err)
		return err;

	mutex_lock(&cq->resize_lock);
	gift_queue_copy_locked(&cq->queue, &cq->lock, &flags, &new);
	queued = gift_queue_count(&cq->queue);
	if (cq->overflowed) {
		err = -EOVERFLOW;
	} else if (queued > cqe) {
		err = -EINVAL;
	} else {
		gift_queue_adopt(&cq->queue, &new);
		ibcq->cqe = cq->queue.size;
	}
	spin_unlock_irqrestore(&cq->lock, flags);
	mutex_unlock(&cq->resize_lock);
	if (err == -EINVAL)
		gift_dbg(gdev, "cqe %u below the %u queued completions\n",
			 cqe, queued);
	/* The old buffer after the switch, else the unused new one. */
	gift_queue_free(&new);
	return err;
}

/**
 * gift_destroy_cq() - destroy a completion queue
 * @ibcq: CQ no QP or SRQ uses (ib_core refuses otherwise with -EBUSY)
 * @udata: unused
 *
 * Queued completions are discarded. Waits for the error work of an
 * overflowed CQ (no QP uses the CQ any more, so nothing queues it again).
 *
 * Return: 0; destroy never fails.
 */
static int gift_destroy_cq(struct ib_cq *ibcq, struct ib_udata *udata)
{
	struct gift_cq *cq = to_gift_cq(ibcq);

	cancel_work_sync(&cq->err_work);
	mutex_destroy(&cq->resize_lock);

	gift_queue_free(&cq->queue);
	atomic_dec(&to_gift_dev(ibcq->device)->cq_table.num);
	return 0;
}

/**
 * gift_poll_cq() - take completions off a CQ
 * @ibcq: completion queue
 * @num_entries: room in @wc
 * @wc: filled with the oldest completions, in order
 *
 * Any context.
 *
 * Return: the number of completions taken, 0 when empty; -EOVERFLOW for
 * a CQ in error (it overflowed, see the file comment).
 */
static int gift_poll_cq(struct ib_cq *ibcq, int num_entries, struct ib_wc *wc)
{
	struct gift_cq *cq = to_gift_cq(ibcq);
	struct gift_queue *q = &cq->queue;
	unsigned long flags;
	int n;

	spin_lock_irqsave(&cq->lock, flags);
	if (unlikely(cq->overflowed)) {
		spin_unlock_irqrestore(&cq->lock, flags);
		return -EOVERFLOW;
	}
	for (n = 0; n < num_entries && !gift_queue_empty(q); n++) {
		memcpy(&wc[n], gift_queue_slot(q, q->cons), sizeof(*wc));
		q->cons++;
	}
	spin_unlock_irqrestore(&cq->lock, flags);
	return n;
}

/**
 * gift_peek_cq() - count queued completions
 * @ibcq: completion queue
 * @wc_cnt: the caller's bound
 *
 * Return: the number of queued completions, at most @wc_cnt; -EOVERFLOW
 * for a CQ in error.
 */
static int gift_peek_cq(struct ib_cq *ibcq, int wc_cnt)
{
	struct gift_cq *cq = to_gift_cq(ibcq);
	unsigned long flags;
	bool overflowed;
	u32 n;

	spin_lock_irqsave(&cq->lock, flags);
	n = gift_queue_count(&cq->queue);
	overflowed = cq->overflowed;
	spin_unlock_irqrestore(&cq->lock, flags);
	if (overflowed)
		return -EOVERFLOW;
	return wc_cnt < 0 ? 0 : min_t(u32, n, wc_cnt);
}

/**
 * gift_req_notify_cq() - arm a CQ for one completion event
 * @ibcq: completion queue
 * @flags: IB_CQ_SOLICITED or IB_CQ_NEXT_COMP, optionally with
 *	IB_CQ_REPORT_MISSED_EVENTS
 *
 * Arming accumulates: a CQ armed for the next completion stays so when
 * armed again for solicited ones. Any context.
 *
 * Return: 0, or 1 with IB_CQ_REPORT_MISSED_EVENTS when completions are
 * queued (the caller should poll again rather than wait).
 */
static int gift_req_notify_cq(struct ib_cq *ibcq, enum ib_cq_notify_flags flags)
{
	struct gift_cq *cq = to_gift_cq(ibcq);
	unsigned long irqflags;
	int ret = 0;

	spin_lock_irqsave(&cq->lock, irqflags);
	cq->notify |= flags & IB_CQ_SOLICITED_MASK;
	if ((flags & IB_CQ_REPORT_MISSED_EVENTS) &&
	    !gift_queue_empty(&cq->queue))
		ret = 1;
	spin_unlock_irqrestore(&cq->lock, irqflags);
	return ret;
}

const struct ib_device_ops gift_cq_ops = {
	.create_cq = gift_create_cq,
	.destroy_cq = gift_destroy_cq,
	.peek_cq = gift_peek_cq,
	.poll_cq = gift_poll_cq,
	.req_notify_cq = gift_req_notify_cq,
	.GIFT_RESIZE_CQ_OP = gift_resize_cq_op,

	INIT_RDMA_OBJ_SIZE(ib_cq, gift_cq, ibcq),
};
