/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift completion queues.
 *
 * A CQ is a kernel ring of struct ib_wc (gift_queue.h), consumed by the
 * poll_cq verb, or, for a user CQ created mapped, a ring of struct
 * ib_uverbs_wc that the process maps and polls itself (struct
 * gift_cq_ring in gift-abi.h). The QP code and the protocol engine
 * produce into either with gift_cq_post(), from any context.
 */
#ifndef GIFT_CQ_H
#define GIFT_CQ_H

#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>

#include "gift_queue.h"

struct gift_dev;
struct gift_mmap;
struct gift_cq_ring;

/**
 * struct gift_cq_uring - the mapped ring of a user CQ
 * @map: its pages, mapped by the process too
 * @ring: the header at the start of @map (slots follow it)
 * @size: slots, a power of two; the kernel's copy, never read back
 * @prod: next slot to fill; the kernel's copy, never read back
 */
struct gift_cq_uring {
	struct gift_mmap *map;
	struct gift_cq_ring *ring;
	u32 size;
	u32 prod;
};

#define GIFT_MAX_CQ		0x10000
#define GIFT_MAX_CQE		0x10000	/* a power of two: rings round up */

/**
 * struct gift_cq_table - per-device CQ accounting
 * @num: live objects, bounded by the device limit; atomic, no lock
 */
struct gift_cq_table {
	atomic_t num;
};

/*
 * struct gift_cq - a completion queue
 *
 * Lock -> fields:
 *   @lock      @queue (indices, slots and, on resize, the buffer),
 *              @uring (its fields, the ring's @prod, @flags and slots;
 *              on resize, which ring), @notify, @overflowed
 *   @lock + @resize_lock
 *              moving the entries of @queue: a resize copies them mostly
 *              without @lock (gift_queue_copy_locked()), a QP's destroy
 *              compacts them; besides producing at prod and consuming at
 *              cons, only holders of @resize_lock move them
 *   @resize_lock
 *              @prepared (a mapped CQ's next ring, between the two calls
 *              of its resize)
 *   @err_work  @err_reported (only the work item reads and writes it)
 *   constant   @ibcq (ib_core's; ibcq.cqe is written by resize under
 *              @lock but only read by ib_core in the resizing syscall)
 */

/**
 * struct gift_cq - a completion queue
 * @ibcq: the ib_core object; must stay first
 * @lock: see the table above; irqsave, a leaf lock
 * @queue: ring of struct ib_wc; empty (no buffer) for a mapped CQ
 * @uring: the mapped ring of a user CQ created mapped, else all zero
 * @prepared: the ring a resize of a mapped CQ has prepared and not yet
 *	committed or dropped, else all zero
 * @notify: armed flags (IB_CQ_SOLICITED, IB_CQ_NEXT_COMP), 0 = not armed
 * @overflowed: a completion found the ring full: the CQ is in error for
 *	good (see gift_cq.c)
 * @resize_lock: see the table above; a mutex, process context only
 * @err_work: reports the overflow and moves the CQ's QPs to ERR
 * @err_reported: IB_EVENT_CQ_ERR was reported; it is reported once
 */
struct gift_cq {
	struct ib_cq ibcq;
	spinlock_t lock;	/* see the lock table above */
	struct gift_queue queue;
	struct gift_cq_uring uring;
	struct gift_cq_uring prepared;
	u8 notify;
	bool overflowed;
	struct mutex resize_lock;	/* see the lock table above */
	struct work_struct err_work;
	bool err_reported;
};

static inline struct gift_cq *to_gift_cq(struct ib_cq *ibcq)
{
	return container_of(ibcq, struct gift_cq, ibcq);
}

/*
 * Callbacks owed after gift_cq_post_deferred(), made by gift_cq_signal()
 * once the caller has dropped its own locks.
 */
#define GIFT_CQ_SIG_COMP	BIT(0)	/* call ibcq.comp_handler */
#define GIFT_CQ_SIG_OVERFLOW	BIT(1)	/* a completion was lost: error the CQ */

/*
 * Engine API. Callable in any context (process, softirq, hardirq); each
 * takes cq->lock with irqsave for the duration of the queue update only.
 */
int gift_cq_post(struct gift_cq *cq, const struct ib_wc *wc, bool solicited);
int gift_cq_post_deferred(struct gift_cq *cq, const struct ib_wc *wc,
			  bool solicited, unsigned int *signals);
void gift_cq_signal(struct gift_cq *cq, unsigned int signals);
void gift_cq_discard_qp(struct gift_cq *cq, const struct ib_qp *qp);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_cq_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_cq_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_CQ_H */
