/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift: work requests of the IBTA 1.5 persistent memory extensions
 * (RDMA FLUSH, RDMA ATOMIC WRITE) for kernel ULPs.
 *
 * struct ib_send_wr has no fields for them, so a kernel ULP posting
 * IB_WR_FLUSH or IB_WR_ATOMIC_WRITE to a gift QP passes a struct
 * gift_ex_wr and posts its @wr, as it does with struct ib_rdma_wr; the
 * driver finds the rest with container_of(). @wr.num_sge is 0 and
 * IB_SEND_INLINE is not set: the operands are all here. User space
 * reaches the same path through GIFT_IB_METHOD_QP_POST_EX (gift-abi.h).
 */
#ifndef GIFT_WR_H
#define GIFT_WR_H

#include <linux/container_of.h>
#include <linux/types.h>
#include <rdma/ib_verbs.h>

/**
 * struct gift_ex_wr - an IB_WR_FLUSH or IB_WR_ATOMIC_WRITE work request
 * @wr: the generic part: wr_id, opcode, send_flags; no SGEs
 * @remote_addr: FLUSH: first byte of the range (IB_FLUSH_RANGE); ATOMIC
 *	WRITE: the 8-byte aligned target
 * @rkey: the remote MR's key
 * @length: FLUSH with IB_FLUSH_RANGE: bytes of the range
 * @flush_type: FLUSH: IB_FLUSH_GLOBAL and/or IB_FLUSH_PERSISTENT
 * @flush_level: FLUSH: IB_FLUSH_RANGE or IB_FLUSH_MR
 * @atomic_wr: ATOMIC WRITE: the 8 bytes stored at @remote_addr, as they
 *	are (no byte order conversion)
 */
struct gift_ex_wr {
	struct ib_send_wr wr;
	u64 remote_addr;
	u32 rkey;
	u32 length;
	u8 flush_type;
	u8 flush_level;
	u8 atomic_wr[8];
};

static inline const struct gift_ex_wr *gift_ex_wr(const struct ib_send_wr *wr)
{
	return container_of(wr, struct gift_ex_wr, wr);
}

#endif /* GIFT_WR_H */
