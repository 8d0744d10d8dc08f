// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift mapped work queues: the kernel's side of the rings that user
 * space posts work requests into without a system call.
 *
 * The protocol (who writes which index, which barrier pairs with which)
 * is in rdma/gift-abi.h. Here are the helpers the QP uses under its
 * queue locks: creating and removing the mapping, reading the user's
 * producer index and bounding it, publishing the consumer index, and
 * copying a receive slot into kernel memory, checked. Every byte read
 * from a slot is read once into kernel memory and checked there: user
 * space may rewrite the slot meanwhile, and then only its own work
 * request is wrong.
 */

#include <linux/compiler.h>
#include <linux/overflow.h>

#include "gift.h"
#include "gift_mmap.h"
#include "gift_qp.h"
#include "gift_wq.h"

/**
 * gift_wq_uring_create() - make an empty mapped ring
 * @u: ring to fill in
 * @size: slots, a power of two
 * @stride: bytes per slot
 * @uctx: the context that owns the mapping
 * @resp: filled with the mmap offset, length, size and stride
 *
 * Process context.
 *
 * Return: 0 or -ENOMEM.
 */
int gift_wq_uring_create(struct gift_wq_uring *u, u32 size, u32 stride,
			 struct ib_ucontext *uctx,
			 struct gift_wq_ring_resp *resp)
{
	size_t len = GIFT_WQ_RING_WQE_OFFSET + (size_t)size * stride;
	struct gift_mmap *map;

	BUILD_BUG_ON(sizeof(struct gift_wq_ring) > GIFT_WQ_RING_WQE_OFFSET);
	map = gift_mmap_create(uctx, len);
	if (IS_ERR(map))
		return PTR_ERR(map);
	u->map = map;
	u->ring = map->vaddr;
	u->slots = map->vaddr + GIFT_WQ_RING_WQE_OFFSET;
	u->size = size;
	u->stride = stride;
	u->cons = 0;
	u->fetch = 0;
	u->flags = 0;
	resp->mmap_offset = rdma_user_mmap_get_offset(&map->rdma);
	resp->mmap_length = map->npages << PAGE_SHIFT;
	resp->size = size;
	resp->stride = stride;
	return 0;
}

/**
 * gift_wq_uring_destroy() - stop using a ring; idempotent
 * @u: ring, mapped or not
 *
 * The pages stay until the process unmaps them too. Process context.
 */
void gift_wq_uring_destroy(struct gift_wq_uring *u)
{
	gift_mmap_remove(u->map);
	u->map = NULL;
	u->ring = NULL;
	u->slots = NULL;
}

/**
 * gift_wq_uring_create_recv() - make a mapped receive ring for a queue
 * @u: ring to fill in
 * @q: the receive queue (a QP's or an SRQ's): its slots become the
 *	ring's (its buffer is not its own), its indices 0
 * @size: slots, a power of two
 * @max_sge: SGEs per work request (struct gift_rwqe)
 * @uctx: the context that owns the mapping
 * @resp: as for gift_wq_uring_create()
 *
 * Return: as gift_wq_uring_create().
 */
int gift_wq_uring_create_recv(struct gift_wq_uring *u, struct gift_queue *q,
			      u32 size, u32 max_sge, struct ib_ucontext *uctx,
			      struct gift_wq_ring_resp *resp)
{
	int err;

	BUILD_BUG_ON(sizeof(struct ib_uverbs_sge) != sizeof(struct ib_sge));
	err = gift_wq_uring_create(u, size,
				   struct_size_t(struct gift_rwqe, sge, max_sge),
				   uctx, resp);
	if (err)
		return err;
	q->buf = u->slots;
	q->stride = u->stride;
	q->size = size;
	q->prod = 0;
	q->cons = 0;
	return 0;
}

/**
 * gift_wq_uring_destroy_recv() - free a receive queue, mapped or not
 * @u: its ring, mapped or not
 * @q: the queue; its own buffer is freed, a mapped ring's slots are not
 */
void gift_wq_uring_destroy_recv(struct gift_wq_uring *u, struct gift_queue *q)
{
	if (gift_wq_uring_mapped(u))
		q->buf = NULL;
	gift_wq_uring_destroy(u);
	gift_queue_free(q);
}

/**
 * gift_wq_uring_prod() - the user's producer index, bounded
 * @u: mapped ring
 * @cons: the kernel's consumer index
 * @prod: set to the user's producer index
 *
 * The load has acquire semantics: the slots up to *@prod are written
 * (pairs with the user's release store). Caller holds the queue's lock.
 *
 * Return: 0; -EIO when *@prod is more than size ahead of @cons (or behind
 * it), which no correct producer writes: the caller fails the QP.
 */
int gift_wq_uring_prod(struct gift_wq_uring *u, u32 cons, u32 *prod)
{
	/* Pairs with the producer's store-release of prod. */
	*prod = smp_load_acquire(&u->ring->prod);
	return *prod - cons > u->size ? -EIO : 0;
}

/**
 * gift_wq_uring_publish() - tell user space which slots are free again
 * @u: mapped ring
 * @cons: the new consumer index
 *
 * Release semantics: everything the kernel read from the freed slots was
 * read before user space can see them free. Caller holds the queue's
 * lock.
 */
void gift_wq_uring_publish(struct gift_wq_uring *u, u32 cons)
{
	/* Pairs with the producer's load-acquire of cons. */
	smp_store_release(&u->ring->cons, cons);
}

/**
 * gift_wq_uring_flags() - change the ring's flags
 * @u: mapped ring
 * @set: enum gift_wq_ring_flags to set
 * @clear: and to clear
 *
 * Setting GIFT_WQ_RING_ERR or clearing GIFT_WQ_RING_ENGINE is followed by
 * a full barrier, before the caller loads the producer index to act on
 * what it shows: paired with the user's barrier between its store of
 * prod and its load of flags (rdma/gift-abi.h). Caller holds the queue's
 * lock.
 */
void gift_wq_uring_flags(struct gift_wq_uring *u, u32 set, u32 clear)
{
	u->flags = (u->flags | set) & ~clear;
	WRITE_ONCE(u->ring->flags, u->flags);
	if ((set & GIFT_WQ_RING_ERR) || (clear & GIFT_WQ_RING_ENGINE))
		smp_mb(); /* the flags before the caller's load of prod */
}

/**
 * gift_wq_uring_read_recv() - copy a receive slot into a kernel WQE
 * @u: mapped receive ring
 * @idx: the slot's index, below the user's producer index
 * @max_sge: the queue's max_sge
 * @out: filled with the work request
 *
 * Return: true when the slot holds a valid work request; false leaves
 * @out with the slot's wr_id, no SGEs and GIFT_RWQE_BAD set.
 */
bool gift_wq_uring_read_recv(const struct gift_wq_uring *u, u32 idx,
			     u32 max_sge, struct gift_recv_wqe *out)
{
	const struct gift_rwqe *s = gift_wq_uring_slot(u, idx);
	u32 i, num_sge;

	out->wr_id = READ_ONCE(s->wr_id);
	out->flags = 0;
	out->length = 0;
	num_sge = READ_ONCE(s->num_sge);
	if (num_sge > max_sge) {
		out->num_sge = 0;
		out->flags = GIFT_RWQE_BAD;
		return false;
	}
	out->num_sge = num_sge;
	for (i = 0; i < num_sge; i++) {
		out->sge[i].addr = READ_ONCE(s->sge[i].addr);
		out->sge[i].length = READ_ONCE(s->sge[i].length);
		out->sge[i].lkey = READ_ONCE(s->sge[i].lkey);
		/* u32 lengths, at most GIFT_MAX_SGE of them: no overflow. */
		out->length += out->sge[i].length;
	}
	return true;
}

/**
 * gift_wq_uring_wr_id() - the wr_id of a slot, to flush it
 * @u: mapped ring (either kind: wr_id comes first in both)
 * @idx: the slot's index
 *
 * Return: what the slot holds now; whatever it is, it is only returned
 * to its owner in a flush completion.
 */
u64 gift_wq_uring_wr_id(const struct gift_wq_uring *u, u32 idx)
{
	BUILD_BUG_ON(offsetof(struct gift_rwqe, wr_id) ||
		     offsetof(struct gift_swqe, wr_id));
	return READ_ONCE(*(u64 *)gift_wq_uring_slot(u, idx));
}
