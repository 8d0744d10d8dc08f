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
 * process context, outside that lock. A resize (gift_queue_copy_locked())
 * copies the entries mostly without that lock: the owner serialises
 * everything that moves entries, other than producing at prod and
 * consuming at cons, with a mutex.
 *
 * Memory: a ring's size is the user's choice (up to the device limits,
 * megabytes), so buffers are charged to the caller's memory cgroup and a
 * failure is an -ENOMEM for the caller, never the OOM killer or a
 * warning.
 */
#ifndef GIFT_QUEUE_H
#define GIFT_QUEUE_H

#include <linux/compiler.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
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
 * Process context. Charged to the caller's memory cgroup.
 *
 * Return: 0 or -ENOMEM.
 */
static inline int gift_queue_init(struct gift_queue *q, u32 size, u32 stride)
{
	q->buf = kvcalloc(size, stride, GFP_KERNEL_ACCOUNT |
			  __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
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

/* Entries a resize copies with the owner's lock held, at most, per round. */
#define GIFT_QUEUE_COPY_BATCH	64
/* Rounds after which the rest is copied under the lock, however much. */
#define GIFT_QUEUE_COPY_ROUNDS	8

static inline void gift_queue_copy_range(struct gift_queue *to, u32 base,
					 const struct gift_queue *q, u32 from,
					 u32 end)
{
	u32 i;

	for (i = from; i != end; i++) {
		/*
		 * Unlocked, a slot being copied may be consumed and refilled
		 * meanwhile; such an entry is behind the consumer index that
		 * gift_queue_copy_locked() takes under the lock: dropped.
		 */
		data_race(memcpy(gift_queue_slot(to, i - base),
				 gift_queue_slot(q, i), q->stride));
	}
}

/**
 * gift_queue_copy_locked() - copy a ring's entries into a new buffer
 * @q: ring to resize
 * @lock: its owner's spinlock, taken with irqsave; held on return
 * @flags: irqsave flags of @lock, for the caller's unlock
 * @to: empty ring from gift_queue_init(), same stride as @q
 *
 * Copies the entries of @q into @to while producers and consumers go on,
 * holding @lock for at most GIFT_QUEUE_COPY_BATCH entries at a time
 * (interrupts are off under it): the bulk is copied without it, then
 * what was produced meanwhile, until little is left (or, after
 * GIFT_QUEUE_COPY_ROUNDS rounds, whatever is left). This is sound
 * because of the ring discipline: producers fill only free slots and
 * consumers only advance cons, so an entry from cons to prod stays put
 * until consumed; an entry consumed (and its slot refilled) during the
 * copy is dropped by taking @to's cons from @q's under the lock. Nothing
 * else may move entries meanwhile: the caller holds the owner's mutex
 * that serialises resizes and compactions.
 *
 * On return, with @lock held, @to holds every entry of @q in order (its
 * indices: @q's minus a constant), and gift_queue_count(@to) equals
 * gift_queue_count(@q). If that is more than @to->size, entries were
 * overwritten: the caller must check and give up, or adopt @to with
 * gift_queue_adopt(). Process context.
 */
static inline void gift_queue_copy_locked(struct gift_queue *q,
					  spinlock_t *lock,
					  unsigned long *flags,
					  struct gift_queue *to)
	__acquires(lock)
{
	u32 base, from, end, round;

	spin_lock_irqsave(lock, *flags);
	base = q->cons;
	from = base;
	for (round = 0; ; round++) {
		if ((s32)(q->cons - from) > 0)
			from = q->cons;
		end = q->prod;
		if (end - from <= GIFT_QUEUE_COPY_BATCH ||
		    round == GIFT_QUEUE_COPY_ROUNDS)
			break;
		spin_unlock_irqrestore(lock, *flags);
		gift_queue_copy_range(to, base, q, from, end);
		from = end;
		cond_resched();
		spin_lock_irqsave(lock, *flags);
	}
	gift_queue_copy_range(to, base, q, from, end);
	to->cons = q->cons - base;
	to->prod = q->prod - base;
}

/**
 * gift_queue_adopt() - switch a ring to the buffer its entries were copied to
 * @q: ring, its lock held since gift_queue_copy_locked()
 * @to: the copy, with no more entries than slots; receives @q's old
 *	buffer, to be freed by the caller with gift_queue_free() after
 *	dropping the lock
 */
static inline void gift_queue_adopt(struct gift_queue *q, struct gift_queue *to)
{
	void *old = q->buf;

	q->buf = to->buf;
	q->size = to->size;
	q->cons = to->cons;
	q->prod = to->prod;
	to->buf = old;
}

#endif /* GIFT_QUEUE_H */
