/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift work queues mapped into user space (see gift_wq.c and the
 * protocol in rdma/gift-abi.h).
 */
#ifndef GIFT_WQ_H
#define GIFT_WQ_H

#include <linux/types.h>
#include <rdma/ib_verbs.h>
#include <rdma/gift-abi.h>

struct gift_mmap;
struct gift_queue;
struct gift_recv_wqe;

/**
 * struct gift_wq_uring - the mapped ring of a user send or receive queue
 * @map: its pages, mapped by the process too; NULL for a queue that is
 *	not mapped
 * @ring: the header at the start of @map (written by both sides)
 * @slots: the first slot, GIFT_WQ_RING_WQE_OFFSET into @map
 * @size: slots, a power of two; the kernel's copy, never read back
 * @stride: bytes per slot; the kernel's copy, never read back
 * @cons: send queue: the index of the oldest slot not yet completed,
 *	published to @ring->cons; the receive queue keeps its indices in
 *	its struct gift_queue
 * @fetch: send queue: the index of the next slot to copy into the
 *	kernel's send queue; cons <= fetch <= the user's prod
 * @flags: the kernel's copy of @ring->flags (never read back)
 *
 * The owner's lock (sq.lock, rq.lock) protects @cons and @fetch and
 * every access to @ring; the rest is constant.
 */
struct gift_wq_uring {
	struct gift_mmap *map;
	struct gift_wq_ring *ring;
	void *slots;
	u32 size;
	u32 stride;
	u32 cons;
	u32 fetch;
	u32 flags;
};

int gift_wq_uring_create(struct gift_wq_uring *u, u32 size, u32 stride,
			 struct ib_ucontext *uctx,
			 struct gift_wq_ring_resp *resp);
void gift_wq_uring_destroy(struct gift_wq_uring *u);
int gift_wq_uring_create_recv(struct gift_wq_uring *u, struct gift_queue *q,
			      u32 size, u32 max_sge, struct ib_ucontext *uctx,
			      struct gift_wq_ring_resp *resp);
void gift_wq_uring_destroy_recv(struct gift_wq_uring *u, struct gift_queue *q);
int gift_wq_uring_prod(struct gift_wq_uring *u, u32 cons, u32 *prod);
void gift_wq_uring_publish(struct gift_wq_uring *u, u32 cons);
void gift_wq_uring_flags(struct gift_wq_uring *u, u32 set, u32 clear);
bool gift_wq_uring_read_recv(const struct gift_wq_uring *u, u32 idx,
			     u32 max_sge, struct gift_recv_wqe *out);
u64 gift_wq_uring_wr_id(const struct gift_wq_uring *u, u32 idx);

/**
 * gift_wq_uring_slot() - the slot an index names
 * @u: mapped ring
 * @idx: free-running index
 *
 * Return: the slot, in memory user space writes at any time: copy what
 * is read from it before checking it.
 */
static inline void *gift_wq_uring_slot(const struct gift_wq_uring *u, u32 idx)
{
	return u->slots + (size_t)(idx & (u->size - 1)) * u->stride;
}

static inline bool gift_wq_uring_mapped(const struct gift_wq_uring *u)
{
	return u->map;
}

#endif /* GIFT_WQ_H */
