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
 *
 * Mapped CQs (user CQs created with GIFT_CREATE_CQ_MAPPED): the
 * completions go, as struct ib_uverbs_wc, into a ring the process maps
 * and polls without a system call; gift-abi.h has the protocol and the
 * memory ordering. The kernel reads one word of the mapping, the
 * consumer index, and checks it before every completion it writes: an
 * index the consumer cannot have (prod - cons > size) reads as a full
 * ring, which fails the CQ as an overflow does. The process can only
 * fail its own CQs that way. The poll_cq and peek_cq verbs refuse a
 * mapped CQ (-EINVAL); discarding a destroyed QP's completions is the
 * provider's (it owns the ring's consumer side); overflow, arming and
 * resize keep their semantics.
 */

#include <rdma/ib_user_verbs.h>
#include <rdma/uverbs_ioctl.h>

#include <rdma/gift-abi.h>
#include "gift.h"
#include "gift_mmap.h"

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

static struct ib_uverbs_wc *gift_cq_ring_slot(struct gift_cq_uring *u, u32 i)
{
	return (void *)u->ring + GIFT_CQ_RING_WC_OFFSET +
	       (size_t)(i & (u->size - 1)) * sizeof(struct ib_uverbs_wc);
}

/*
 * The consumer index of a mapped ring, and whether the ring has room for
 * a completion: prod - cons is the number of entries the consumer has not
 * taken, which a consumer that follows gift-abi.h keeps within the size.
 * Acquire: pairs with the consumer's release of cons after it has read
 * the slots before cons, which may then be overwritten.
 */
static bool gift_cq_ring_room(struct gift_cq_uring *u, u32 *cons)
{
	/* Pairs with the consumer's store-release of cons. */
	*cons = smp_load_acquire(&u->ring->cons);
	return u->prod - *cons < u->size;
}

/* Writes @wc into the mapped ring, as ib_uverbs' poll_cq would copy it. */
static bool gift_cq_ring_put(struct gift_cq *cq, const struct ib_wc *wc)
{
	struct gift_cq_uring *u = &cq->uring;
	struct ib_uverbs_wc *uwc;
	u32 cons;

	lockdep_assert_held(&cq->lock);

	if (!gift_cq_ring_room(u, &cons))
		return false;
	uwc = gift_cq_ring_slot(u, u->prod);
	uwc->wr_id = wc->wr_id;
	uwc->status = wc->status;
	uwc->opcode = wc->opcode;
	uwc->vendor_err = wc->vendor_err;
	uwc->byte_len = wc->byte_len;
	uwc->ex.imm_data = wc->ex.imm_data;
	uwc->qp_num = wc->qp->qp_num;
	uwc->src_qp = wc->src_qp;
	uwc->wc_flags = wc->wc_flags;
	uwc->pkey_index = wc->pkey_index;
	uwc->slid = ib_lid_cpu16(wc->slid);
	uwc->sl = wc->sl;
	uwc->dlid_path_bits = wc->dlid_path_bits;
	uwc->port_num = wc->port_num;
	uwc->reserved = 0;
	u->prod++;
	/* Release: the slot is written before the consumer can see it. */
	smp_store_release(&u->ring->prod, u->prod);
	return true;
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
	bool queued;
	int err = 0;

	spin_lock_irqsave(&cq->lock, flags);
	if (unlikely(cq->overflowed)) {
		queued = false;
	} else if (cq->uring.ring) {
		queued = gift_cq_ring_put(cq, wc);
	} else {
		queued = !gift_queue_full(q);
		if (queued) {
			memcpy(gift_queue_slot(q, q->prod), wc, sizeof(*wc));
			q->prod++;
		}
	}
	if (unlikely(!queued)) {
		cq->overflowed = true;
		if (cq->uring.ring)
			WRITE_ONCE(cq->uring.ring->flags, GIFT_CQ_RING_ERR);
		*signals |= GIFT_CQ_SIG_OVERFLOW;
		err = -EOVERFLOW;
		goto out_unlock;
	}
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
 * resize_lock, then cq->lock. A mapped CQ's completions hold no pointer
 * and are the provider's to discard (it owns the consumer side).
 */
void gift_cq_discard_qp(struct gift_cq *cq, const struct ib_qp *qp)
{
	struct gift_queue *q = &cq->queue;
	unsigned long flags;
	struct ib_wc *wc;
	u32 i, keep;

	if (cq->uring.ring)
		return;
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

/*
 * The request of a user create_cq: struct gift_create_cq_req, or nothing
 * (an ordinary CQ). Bytes past the struct must be zero. Sets *mapped.
 */
static int gift_cq_read_req(struct ib_udata *udata, bool *mapped)
{
	struct gift_create_cq_req req = {};
	int err;

	err = gift_udata_read(udata, &req, sizeof(req));
	if (err)
		return err;
	if (req.flags & ~(u64)GIFT_CREATE_CQ_MAPPED)
		return -EINVAL;
	*mapped = req.flags & GIFT_CREATE_CQ_MAPPED;
	/* The provider must be able to learn where the ring is. */
	if (*mapped && udata->outlen < sizeof(struct gift_cq_ring_resp))
		return -EINVAL;
	return 0;
}

/*
 * A mapped ring of @slots completions for the context of @udata, empty;
 * its offset and length in @resp.
 */
static int gift_cq_uring_create(struct gift_cq_uring *u, u32 slots,
				struct ib_udata *udata,
				struct gift_cq_ring_resp *resp)
{
	struct ib_ucontext *uctx =
		rdma_udata_to_uverbs_attr_bundle(udata)->context;
	size_t len = GIFT_CQ_RING_WC_OFFSET +
		     (size_t)slots * sizeof(struct ib_uverbs_wc);
	struct gift_mmap *map;

	BUILD_BUG_ON(sizeof(struct gift_cq_ring) > GIFT_CQ_RING_WC_OFFSET);
	map = gift_mmap_create(uctx, len);
	if (IS_ERR(map))
		return PTR_ERR(map);
	u->map = map;
	u->ring = map->vaddr;
	u->size = slots;
	u->prod = 0;
	u->ring->size = slots;
	resp->mmap_offset = rdma_user_mmap_get_offset(&map->rdma);
	resp->mmap_length = map->npages << PAGE_SHIFT;
	resp->size = slots;
	return 0;
}

/**
 * gift_create_cq() - create a completion queue
 * @ibcq: CQ allocated by ib_core
 * @attr: cqe, comp_vector and flags requested
 * @attrs: uverbs bundle for user CQs, NULL for kernel CQs; the driver
 *	data is an optional struct gift_create_cq_req, answered with struct
 *	gift_cq_ring_resp
 *
 * Reports the actual size, a power of two, in ibcq->cqe. A user CQ
 * created with GIFT_CREATE_CQ_MAPPED gets a ring the process maps.
 *
 * Return: 0; -EOPNOTSUPP for creation flags; -EINVAL for a cqe outside
 * 1..max_cqe, a bad comp_vector or bad driver data; -EFAULT; -ENOMEM at
 * max_cq or without memory.
 */
static int gift_create_cq(struct ib_cq *ibcq, const struct ib_cq_init_attr *attr,
			  struct uverbs_attr_bundle *attrs)
{
	struct gift_dev *gdev = to_gift_dev(ibcq->device);
	struct ib_udata *udata = attrs ? &attrs->driver_udata : NULL;
	struct gift_cq *cq = to_gift_cq(ibcq);
	struct gift_cq_ring_resp resp = {};
	bool mapped;
	u32 slots;
	int err;

	err = gift_cq_read_req(udata, &mapped);
	if (err)
		return err;
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
	if (mapped)
		err = gift_cq_uring_create(&cq->uring, slots, udata, &resp);
	else
		err = gift_queue_init(&cq->queue, slots, sizeof(struct ib_wc));
	if (err)
		goto out_uncount;
	if (udata && udata->outlen) {
		err = ib_copy_to_udata(udata, &resp,
				       min(udata->outlen, sizeof(resp)));
		if (err)
			goto out_free;
	}
	spin_lock_init(&cq->lock);
	cq->notify = 0;
	cq->overflowed = false;
	cq->err_reported = false;
	mutex_init(&cq->resize_lock);
	INIT_WORK(&cq->err_work, gift_cq_err_work);
	ibcq->cqe = slots;
	return 0;

out_free:
	gift_mmap_remove(cq->uring.map);
	gift_queue_free(&cq->queue);
out_uncount:
	atomic_dec(&gdev->cq_table.num);
	return err;
}

/*
 * The driver data of a resize: struct gift_resize_cq_req, or nothing
 * (*op 0). Bytes past the struct must be zero; at most one flag is set.
 */
static int gift_cq_read_resize_req(struct ib_udata *udata, u32 *op)
{
	struct gift_resize_cq_req req = {};
	int err;

	err = gift_udata_read(udata, &req, sizeof(req));
	if (err)
		return err;
	if (req.reserved || (req.flags & (req.flags - 1)) ||
	    (req.flags & ~(u32)(GIFT_RESIZE_CQ_PREPARE | GIFT_RESIZE_CQ_COMMIT |
				GIFT_RESIZE_CQ_ABORT)))
		return -EINVAL;
	*op = req.flags;
	return 0;
}

/* Drops the prepared ring of a mapped CQ, if there is one. */
static void gift_cq_drop_prepared(struct gift_cq *cq)
{
	lockdep_assert_held(&cq->resize_lock);

	gift_mmap_remove(cq->prepared.map);
	memset(&cq->prepared, 0, sizeof(cq->prepared));
}

/*
 * GIFT_RESIZE_CQ_PREPARE: a new, empty ring for @cqe entries, answered in
 * @udata and kept in cq->prepared; the CQ itself does not change.
 */
static int gift_resize_cq_prepare(struct gift_cq *cq, unsigned int cqe,
				  struct ib_udata *udata)
{
	struct gift_cq_ring_resp resp = {};
	struct gift_cq_uring new;
	int err;

	if (udata->outlen < sizeof(resp))
		return -EINVAL;
	err = gift_cq_uring_create(&new, gift_queue_slots(cqe), udata, &resp);
	if (err)
		return err;
	err = ib_copy_to_udata(udata, &resp, sizeof(resp));
	if (err) {
		gift_mmap_remove(new.map);
		return err;
	}
	mutex_lock(&cq->resize_lock);
	gift_cq_drop_prepared(cq);
	cq->prepared = new;
	mutex_unlock(&cq->resize_lock);
	return 0;
}

/*
 * GIFT_RESIZE_CQ_COMMIT: moves the queued completions into the prepared
 * ring and switches to it. The prepared ring is used up either way: on
 * failure it is dropped and the CQ keeps its ring.
 */
static int gift_resize_cq_commit(struct gift_cq *cq, unsigned int cqe)
{
	struct gift_cq_uring new, old = {};
	unsigned long flags;
	u32 cons, i;
	int err = 0;

	mutex_lock(&cq->resize_lock);
	new = cq->prepared;
	memset(&cq->prepared, 0, sizeof(cq->prepared));
	if (!new.ring || new.size != gift_queue_slots(cqe)) {
		err = -EINVAL;
		goto out_unlock;
	}
	spin_lock_irqsave(&cq->lock, flags);
	old = cq->uring;
	gift_cq_ring_room(&old, &cons);
	if (cq->overflowed) {
		err = -EOVERFLOW;
	} else if (old.prod - cons > min_t(u32, old.size, cqe)) {
		err = -EINVAL;
	} else {
		for (i = cons; i != old.prod; i++)
			memcpy(gift_cq_ring_slot(&new, i),
			       gift_cq_ring_slot(&old, i),
			       sizeof(struct ib_uverbs_wc));
		new.prod = old.prod;
		new.ring->cons = cons;
		/* Release: the slots are written before prod says so. */
		smp_store_release(&new.ring->prod, old.prod);
		cq->uring = new;
		cq->ibcq.cqe = new.size;
	}
	spin_unlock_irqrestore(&cq->lock, flags);
out_unlock:
	mutex_unlock(&cq->resize_lock);
	/* The old ring after the switch, else the unused new one. */
	gift_mmap_remove(err ? new.map : old.map);
	return err;
}

/* GIFT_RESIZE_CQ_ABORT: drops the prepared ring; the CQ does not change. */
static int gift_resize_cq_abort(struct gift_cq *cq)
{
	mutex_lock(&cq->resize_lock);
	gift_cq_drop_prepared(cq);
	mutex_unlock(&cq->resize_lock);
	return 0;
}

/**
 * gift_resize_cq() - change the number of entries of a CQ
 * @ibcq: completion queue
 * @cqe: entries wanted
 * @udata: user data, or NULL; for a mapped CQ, struct gift_resize_cq_req
 *	naming the step (gift-abi.h), answered by struct gift_cq_ring_resp
 *
 * Queued completions are kept, in order. The new size is a power of two
 * >= @cqe, reported in ibcq->cqe. The new ring is allocated first, and
 * the completions are copied into it while the CQ keeps working, with
 * interrupts off for a bounded number of them at a time
 * (gift_queue_copy_locked()). Process context; takes resize_lock.
 *
 * A mapped CQ resizes in two calls, so that the process maps the new ring
 * before the CQ moves to it: GIFT_RESIZE_CQ_PREPARE allocates the ring,
 * GIFT_RESIZE_CQ_COMMIT copies the completions into it under cq->lock (at
 * most max_cqe of them) and switches, and GIFT_RESIZE_CQ_ABORT drops a
 * prepared ring the process could not map.
 *
 * Return: 0; -EINVAL for bad driver input in @udata (a mapped CQ without
 * a step, another CQ with one, a commit with no ring prepared for @cqe),
 * @cqe outside 1..max_cqe or below the number of queued completions (for
 * a mapped CQ, also a consumer index it cannot have); -EOVERFLOW for a
 * CQ in error (it overflowed); -EFAULT; -ENOMEM.
 */
int gift_resize_cq(struct ib_cq *ibcq, unsigned int cqe, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibcq->device);
	struct gift_cq *cq = to_gift_cq(ibcq);
	struct gift_queue new;
	unsigned long flags;
	u32 queued, op;
	int err;

	err = gift_cq_read_resize_req(udata, &op);
	if (err)
		return err;
	/* A mapped CQ stays mapped: uring.ring is never NULL again. */
	if (!cq->uring.ring != !op)
		return -EINVAL;
	if (op == GIFT_RESIZE_CQ_ABORT)
		return gift_resize_cq_abort(cq);
	err = gift_cq_check_cqe(gdev, cqe);
	if (err)
		return err;
	if (op == GIFT_RESIZE_CQ_COMMIT)
		return gift_resize_cq_commit(cq, cqe);
	if (READ_ONCE(cq->overflowed))
		return -EOVERFLOW;
	if (op == GIFT_RESIZE_CQ_PREPARE)
		return gift_resize_cq_prepare(cq, cqe, udata);
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

	gift_mmap_remove(cq->prepared.map);
	gift_mmap_remove(cq->uring.map);
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
 * a CQ in error (it overflowed, see the file comment); -EINVAL for a
 * mapped CQ (the process polls its ring).
 */
static int gift_poll_cq(struct ib_cq *ibcq, int num_entries, struct ib_wc *wc)
{
	struct gift_cq *cq = to_gift_cq(ibcq);
	struct gift_queue *q = &cq->queue;
	unsigned long flags;
	int n;

	if (cq->uring.ring)
		return -EINVAL;
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
 * for a CQ in error; -EINVAL for a mapped CQ.
 */
static int gift_peek_cq(struct ib_cq *ibcq, int wc_cnt)
{
	struct gift_cq *cq = to_gift_cq(ibcq);
	unsigned long flags;
	bool overflowed;
	u32 n;

	if (cq->uring.ring)
		return -EINVAL;
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
	if (flags & IB_CQ_REPORT_MISSED_EVENTS)
		ret = cq->uring.ring ?
		      cq->uring.prod != READ_ONCE(cq->uring.ring->cons) :
		      !gift_queue_empty(&cq->queue);
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
