/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift shared receive queues.
 *
 * An SRQ is a kernel ring of receive WQEs (struct gift_recv_wqe, see
 * gift_qp.h), each slot sized for the SRQ's max_sge, that post_srq_recv
 * fills, or a mapped ring user space fills (struct gift_rwqe); the
 * protocol engine consumes it with gift_srq_pop() (through
 * gift_qp_rq_pop() for QPs attached to the SRQ).
 */
#ifndef GIFT_SRQ_H
#define GIFT_SRQ_H

#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <rdma/ib_verbs.h>

#include "gift_queue.h"
#include "gift_wq.h"

struct gift_dev;
struct gift_recv_wqe;

#define GIFT_MAX_SRQ		0x10000
#define GIFT_MAX_SRQ_WR		0x4000	/* a power of two: rings round up */

/**
 * struct gift_srq_table - per-device SRQ accounting
 * @num: live objects, bounded by the device limit; atomic, no lock
 */
struct gift_srq_table {
	atomic_t num;
};

/*
 * struct gift_srq - a shared receive queue
 *
 * Lock -> fields:
 *   @lock      @queue (indices, slots and, on resize, the buffer), @limit,
 *              @broken, the header of @uring's ring
 *   @lock + @resize_lock
 *              moving the entries of @queue (a resize copies them mostly
 *              without @lock, see gift_queue_copy_locked()), switching
 *              @uring
 *   @resize_lock
 *              @prepared
 *   constant   @max_sge, @ibsrq, whether the SRQ is mapped
 */

/**
 * struct gift_srq - a shared receive queue
 * @ibsrq: the ib_core object; must stay first
 * @lock: see the table above; irqsave, a leaf lock
 * @queue: ring of receive WQEs, stride struct_size(wqe, sge, @max_sge)
 * @max_sge: SGEs per WQE
 * @limit: armed SRQ limit, 0 when not armed
 * @resize_lock: see the table above; a mutex, process context only
 * @uring: for a mapped SRQ (rdma/gift-abi.h), the ring user space posts
 *	into: @queue's slots are the mapping's, @queue.prod the user's
 *	producer index as last read, @queue.cons published to the ring
 * @prepared: a mapped SRQ's ring prepared by a resize, not yet committed
 * @broken: the mapped ring's producer index was corrupt: every pop fails
 * @mapped: @uring is in use (read without @lock, which a resize holds
 *	to switch @uring)
 */
struct gift_srq {
	struct ib_srq ibsrq;
	spinlock_t lock;	/* see the lock table above */
	struct gift_queue queue;
	u32 max_sge;
	u32 limit;
	struct mutex resize_lock;	/* see the lock table above */
	struct gift_wq_uring uring;
	struct gift_wq_uring prepared;
	bool broken;
	bool mapped;
};

static inline struct gift_srq *to_gift_srq(struct ib_srq *ibsrq)
{
	return container_of(ibsrq, struct gift_srq, ibsrq);
}

/*
 * Engine API: any context; takes srq->lock with irqsave, and calls the
 * SRQ's event handler (IB_EVENT_SRQ_LIMIT_REACHED) without it.
 */
int gift_srq_pop(struct gift_srq *srq, struct gift_recv_wqe *out);

/* For gift_uapi.c: GIFT_IB_METHOD_SRQ_PREPARE_RESIZE; process context. */
int gift_srq_prepare_resize(struct gift_srq *srq, u32 max_wr,
			    struct ib_ucontext *uctx,
			    struct gift_wq_ring_resp *resp);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_srq_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_srq_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_SRQ_H */
