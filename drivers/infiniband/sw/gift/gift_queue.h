/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift kernel rings: the storage behind CQs, SRQs and the send and
 * receive queues of QPs.
 *
 * A ring is an array of @size fixed-size slots of @stride bytes, @size a
 * power of two, with free-running u32 producer and consumer indices: a
 * slot is named by an index, stored at (index & (size - 1)), the ring
 * holds prod - cons entries, is empty when they are equal and full when
 * the difference is @size. Indices wrap at 2^32, which @size divides, so
 * no slot is kept free to tell full from empty.
 *
 * Invariant: cons <= prod <= cons + size (modulo 2^32). Slots from cons to
 * prod - 1 hold entries, oldest first; the others are free.
 *
 * Locking: none here. Every ring is embedded in an object whose spinlock
 * protects the indices and the slot contents (see the owners' lock
 * tables); the helpers only compute. The buffer is allocated and freed in
 * process context, outside that lock.
 */
#ifndef GIFT_QUEUE_H
#define GIFT_QUEUE_H

#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>

/**
 * struct gift_queue - a power-of-two ring of fixed-size slots
 * @buf: @size * @stride bytes
 * @stride: bytes per slot
 * @size: number of slots, a power of two
 * @prod: index of the next slot to fill
 * @cons: index of the oldest entry
 */
struct gift_queue {
	void *buf;
	u32 stride;
	u32 size;
	u32 prod;
	u32 cons;
};

/**
 * gift_queue_slots() - ring size for a requested number of entries
 * @entries: entries the caller asked room for
 *
 * Return: the smallest power of two >= @entries, and at least 1. The
 * caller bounds @entries by a device limit that is itself a power of two.
 */
static inline u32 gift_queue_slots(u32 entries)
{
	return entries <= 1 ? 1 : roundup_pow_of_two(entries);
}

/**
 * gift_queue_init() - allocate an empty ring
 * @q: ring to initialise
 * @size: number of slots, from gift_queue_slots()
 * @stride: bytes per slot
 *
 * Process context.
 *
 * Return: 0 or -ENOMEM.
 */
static inline int gift_queue_init(struct gift_queue *q, u32 size, u32 stride)
{
	q->buf = kvcalloc(size, stride, GFP_KERNEL);
	if (!q->buf)
		return -ENOMEM;
	q->stride = stride;
	q->size = size;
	q->prod = 0;
	q->cons = 0;
	return 0;
}

/**
 * gift_queue_free() - free a ring's buffer; idempotent
 * @q: ring
 */
static inline void gift_queue_free(struct gift_queue *q)
{
	kvfree(q->buf);
	q->buf = NULL;
}

static inline u32 gift_queue_count(const struct gift_queue *q)
{
	return q->prod - q->cons;
}

static inline bool gift_queue_empty(const struct gift_queue *q)
{
	return q->prod == q->cons;
}

static inline bool gift_queue_full(const struct gift_queue *q)
{
	return gift_queue_count(q) == q->size;
}

/**
 * gift_queue_slot() - address of the slot an index names
 * @q: ring
 * @idx: free-running index
 *
 * Return: the slot; meaningful only for cons <= @idx < prod (an entry) or
 * @idx == prod on a ring that is not full (the slot to fill next).
 */
static inline void *gift_queue_slot(const struct gift_queue *q, u32 idx)
{
	return q->buf + (size_t)(idx & (q->size - 1)) * q->stride;
}

/**
 * gift_queue_reset() - drop every entry
 * @q: ring
 */
static inline void gift_queue_reset(struct gift_queue *q)
{
	q->prod = 0;
	q->cons = 0;
}

/**
 * gift_queue_move() - move every entry into a new ring and adopt its buffer
 * @q: ring with entries, its lock held by the caller
 * @to: empty ring from gift_queue_init() with the same stride and room
 *	for every entry of @q; receives @q's old buffer, to be freed by
 *	the caller with gift_queue_free() after dropping the lock
 *
 * Entries keep their order; the oldest lands in slot 0 of the new buffer.
 */
static inline void gift_queue_move(struct gift_queue *q, struct gift_queue *to)
{
	u32 n = gift_queue_count(q);
	void *old = q->buf;
	u32 i;

	for (i = 0; i < n; i++)
		memcpy(gift_queue_slot(to, i), gift_queue_slot(q, q->cons + i),
		       q->stride);
	q->buf = to->buf;
	q->size = to->size;
	q->cons = 0;
	q->prod = n;
	to->buf = old;
}

#endif /* GIFT_QUEUE_H */
