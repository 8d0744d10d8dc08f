/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift queue pairs: creation, the state machine, posting, flushing.
 *
 * The send and receive queues are kernel rings of fixed-size WQE slots
 * (gift_queue.h) filled by post_send / post_recv (system calls for user
 * QPs) and consumed by the protocol engine through the API at the end of
 * this file. The QP owns the state machine and the queues; the engine
 * owns everything between a posted WQE and its completion.
 */
#ifndef GIFT_QP_H
#define GIFT_QP_H

#include <linux/bits.h>
#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/xarray.h>
#include <rdma/ib_verbs.h>

#include "gift_ah.h"
#include "gift_mw.h"
#include "gift_proto.h"
#include "gift_queue.h"
#include "gift_wq.h"

struct gift_dev;

#define GIFT_MAX_QP		0x10000
#define GIFT_MAX_QP_WR		0x4000	/* a power of two: rings round up */
#define GIFT_MAX_SGE		32	/* send, receive, SRQ and RDMA READ */
#define GIFT_MAX_INLINE_DATA	512	/* per-QP cap, not a device attribute */
#define GIFT_MAX_MSG_SIZE	SZ_2G
#define GIFT_QPN_MIN		16	/* 0 and 1 are the special QPs */
#define GIFT_QPN_MAX		0xfffffe	/* 0xffffff is multicast */
#define GIFT_QPN_GSI		1	/* the GSI QP (QP1) */
/* IBA 10.2.5: Q_Keys with the high bit set are controlled (privileged). */
#define GIFT_QKEY_CONTROLLED	0x80000000U

/*
 * struct gift_qp_table
 *
 * Lock -> fields:
 *   xa_lock(@qpns) (irqsave)   @qpns entries
 *   atomic                     @num
 */

/**
 * struct gift_qp_table - per-device lookup table
 * @qpns: published QPs by QP number, see gift_qp.c; XA_FLAGS_LOCK_IRQ
 * @num: live QPs, bounded by max_qp
 */
struct gift_qp_table {
	struct xarray qpns;
	atomic_t num;
};

void gift_qp_table_init(struct gift_qp_table *table);
/* Called from dealloc_driver: every object is gone by then. */
void gift_qp_table_destroy(struct gift_qp_table *table);

/*
 * struct gift_send_wqe, struct gift_recv_wqe
 *
 * Lock -> fields: a WQE in a ring is written by the poster under the
 * ring's lock (sq.lock, rq.lock, srq->lock) before the producer index
 * moves past it, and is constant afterwards. The engine reads send WQEs
 * in place without a lock (gift_qp_sq_peek()) and owns @proto; receive
 * WQEs it reads from its own copy (gift_qp_rq_pop(), gift_srq_pop()).
 */

/*
 * GIFT_SWQE_RING: copied from the QP's mapped send ring; completing it
 *	frees a slot there.
 * GIFT_SWQE_BAD: that slot held no valid work request; the requester
 *	completes it with IB_WC_LOC_QP_OP_ERR in its turn and fails the QP.
 */
enum gift_send_wqe_flags {
	GIFT_SWQE_RING = 1 << 0,
	GIFT_SWQE_BAD = 1 << 1,
};

/**
 * struct gift_send_wqe - a posted send work request
 * @wr_id: the consumer's identifier, returned in the completion
 * @opcode: the work request's opcode (enum ib_wr_opcode)
 * @send_flags: IB_SEND_* flags as posted
 * @flags: enum gift_send_wqe_flags
 * @num_sge: entries in @sge; 0 for inline data and for LOCAL_INV/REG_MR
 * @length: total message length: sum of the SGE lengths, or the inline
 *	data length; 8 for atomics and ATOMIC_WRITE, 0 for FLUSH
 * @ex: immediate data (SEND/RDMA_WRITE_WITH_IMM, network order) or the
 *	rkey to invalidate (SEND_WITH_INV, LOCAL_INV)
 * @wr: opcode-specific part
 * @wr.rdma: RDMA_WRITE[_WITH_IMM], RDMA_READ: remote address and rkey
 * @wr.atomic: ATOMIC_CMP_AND_SWP, ATOMIC_FETCH_AND_ADD; @remote_addr is
 *	posted as given, even misaligned (the responder NAKs it)
 * @wr.ud: UD sends: the destination, copied from the AH at post time
 * @wr.reg: REG_MR (kernel QPs only): the MR, its new key and access
 * @wr.flush: FLUSH: the range (or any address of the MR, with level
 *	IB_FLUSH_MR), rkey, placement type and selectivity level
 * @wr.atomic_write: ATOMIC_WRITE: target, rkey and the 8 bytes it stores
 * @wr.bind: BIND_MW (user QPs, gift_qp_post_mw_wr()): the bind
 * @proto: owned by the protocol engine, zeroed at post time
 * @sge: scatter/gather list (addresses are user virtual addresses for
 *	user QPs, kernel virtual addresses for kernel QPs), @num_sge of them
 * @inline_data: with IB_SEND_INLINE, the @length bytes of the message,
 *	copied at post time
 *
 * Slots are struct_size(wqe, inline_data, max(max_send_sge * sge size,
 * max_inline_data)) bytes: only the members up to the tail the QP was
 * created for exist. A posted WQE is never modified by the QP code.
 */
struct gift_send_wqe {
	u64 wr_id;
	enum ib_wr_opcode opcode;
	u32 send_flags;
	u32 flags;
	u32 num_sge;
	u32 length;
	union {
		__be32 imm_data;
		u32 invalidate_rkey;
	} ex;
	union {
		struct {
			u64 remote_addr;
			u32 rkey;
		} rdma;
		struct {
			u64 remote_addr;
			u64 compare_add;
			u64 swap;
			u32 rkey;
		} atomic;
		struct {
			struct gift_av av;
			u32 remote_qpn;
			u32 remote_qkey;
		} ud;
		struct {
			struct ib_mr *mr;
			u32 key;
			int access;
		} reg;
		struct {
			u64 remote_addr;
			u32 rkey;
			u32 length;
			u8 type;
			u8 level;
		} flush;
		struct {
			u64 remote_addr;
			u32 rkey;
			u8 data[8];
		} atomic_write;
		struct gift_mw_bind bind;
	} wr;
	u64 proto[4];
	union {
		DECLARE_FLEX_ARRAY(struct ib_sge, sge);
		DECLARE_FLEX_ARRAY(u8, inline_data);
	};
};

#define GIFT_RWQE_BAD	BIT(0)

/**
 * struct gift_recv_wqe - a posted receive work request
 * @wr_id: the consumer's identifier, returned in the completion
 * @num_sge: entries in @sge
 * @flags: GIFT_RWQE_BAD: read from a mapped receive ring slot that held
 *	no valid work request; the engine completes it with
 *	IB_WC_LOC_QP_OP_ERR and fails the QP
 * @length: total length of the buffers
 * @sge: scatter list (user virtual addresses for user QPs and SRQs)
 *
 * Ring slots are truncated after sge[max_sge - 1] of their QP or SRQ;
 * a full struct has room for any of them (gift_qp_rq_pop() copies out).
 */
struct gift_recv_wqe {
	u64 wr_id;
	u32 num_sge;
	u32 flags;
	u64 length;
	struct ib_sge sge[GIFT_MAX_SGE];
};

/*
 * struct gift_qp - a queue pair
 *
 * Lock -> fields:
 *   @sq.lock              @sq.queue (indices and slots), @sq.uring
 *                         (its indices and the header of its ring)
 *   @rq.lock              @rq.queue, @rq.popped, @rq.uring's header
 *   @sq.lock + @rq.lock   @state and @attr, @av: written with both held
 *                         (sq.lock first), so either one suffices to read
 *                         them; also under @modify_lock when written by
 *                         modify_qp. Unlocked readers use gift_qp_state().
 *                         The engine reads neither @attr nor @av but its
 *                         copy, struct gift_proto_attr, which
 *                         gift_proto_qp_modified() takes under
 *                         @modify_lock and the engine lock.
 *   @modify_lock          serialises modify_qp and query_qp
 *   constant              @ibqp (ib_core's), @sq.max_sge, @sq.max_inline,
 *                         @sq.max_wr, @rq.max_sge, @sq_sig_type, @is_user,
 *                         ring sizes, which queues are mapped
 *   atomic                @ref
 *   engine's              @proto (see gift_proto.h)
 *
 * Lock order: @modify_lock -> @sq.lock -> @rq.lock -> gift_cq.lock.
 * SRQ locks are never taken under QP locks. The engine lock comes before
 * them all: a pass takes @sq.lock (gift_qp_sq_poll(), gift_qp_sq_engine()),
 * @rq.lock and an SRQ's lock (its receives) under @proto.lock, and modify_qp
 * takes @proto.lock under @modify_lock; nothing takes @proto.lock under a
 * queue lock (posts kick the engine after dropping theirs).
 */

/**
 * struct gift_qp - a queue pair
 * @ibqp: the ib_core object; must stay first
 * @proto: protocol engine state
 * @sq: send queue: @sq.lock, ring, SGEs and inline bytes per WQE, the
 *	work requests it may hold (@sq.max_wr), and @sq.uring, the mapped
 *	ring user space posts into (rdma/gift-abi.h), if any: its work
 *	requests are copied into @sq.queue at each doorbell, so that ring
 *	has room for twice @sq.max_wr (the mapped ring's and those posted
 *	through commands)
 * @rq: receive queue (unused with an SRQ): @rq.lock, ring, SGEs per WQE,
 *	and @rq.popped, the index of the next WQE gift_qp_rq_pop() hands
 *	out; WQEs from queue.cons to popped - 1 are in progress in the
 *	engine, those from popped on are waiting. With @rq.uring mapped,
 *	the slots of @rq.queue are the mapped ring's (its buffer is not
 *	the queue's own), queue.prod is the user's producer index as last
 *	read, and queue.cons is published to the ring
 * @state: current QP state
 * @attr: attributes as last modified (state and cap not kept here;
 *	ah_attr without its sgid_attr reference)
 * @av: primary path, resolved from @attr.ah_attr (RC)
 * @modify_lock: see the table above
 * @sq_sig_type: IB_SIGNAL_ALL_WR or IB_SIGNAL_REQ_WR
 * @is_user: created through uverbs; SGE addresses are user addresses
 * @ref: references: one for the QP's existence plus one per
 *	gift_qp_get()
 * @released: completed when @ref drops to zero
 * @mcast_list: the QP's multicast attachments (gift_mcast.c), under the
 *	device's gift_mcast_table.lock
 */
struct gift_qp {
	struct ib_qp ibqp;
	struct gift_qp_proto proto;
	struct {
		spinlock_t lock;	/* see the lock table above */
		struct gift_queue queue;
		struct gift_wq_uring uring;
		u32 max_wr;
		u32 max_sge;
		u32 max_inline;
	} sq;
	struct {
		spinlock_t lock;	/* see the lock table above */
		struct gift_queue queue;
		struct gift_wq_uring uring;
		u32 max_sge;
		u32 popped;
	} rq;
	enum ib_qp_state state;
	struct ib_qp_attr attr;
	struct gift_av av;
	struct mutex modify_lock;	/* see the lock table above */
	enum ib_sig_type sq_sig_type;
	bool is_user;
	refcount_t ref;
	struct completion released;
	struct list_head mcast_list;
};

static inline struct gift_qp *to_gift_qp(struct ib_qp *ibqp)
{
	return container_of(ibqp, struct gift_qp, ibqp);
}

/**
 * gift_qp_is_ud() - does a QP send and receive datagrams?
 * @qp: queue pair
 *
 * Return: true for UD QPs and the GSI QP (UD on the wire, QPN 1).
 */
static inline bool gift_qp_is_ud(const struct gift_qp *qp)
{
	return qp->ibqp.qp_type == IB_QPT_UD || qp->ibqp.qp_type == IB_QPT_GSI;
}

/**
 * gift_qp_is_uc() - is a QP unreliable connected?
 * @qp: queue pair
 *
 * Return: true for UC QPs: connected like RC, but without ACKs,
 * retransmission or RNR NAKs, and only SEND and RDMA WRITE on the wire.
 */
static inline bool gift_qp_is_uc(const struct gift_qp *qp)
{
	return qp->ibqp.qp_type == IB_QPT_UC;
}

/**
 * gift_qp_state() - a QP's state, read without its locks
 * @qp: queue pair
 *
 * Return: the state at some recent point; decide under sq.lock or
 * rq.lock when it matters.
 */
static inline enum ib_qp_state gift_qp_state(struct gift_qp *qp)
{
	return READ_ONCE(qp->state);
}

/*
 * Bytes of a receive ring slot holding @max_sge SGEs: the fixed part of
 * struct gift_recv_wqe plus the SGEs (its sge[] is a full GIFT_MAX_SGE
 * array, so struct_size() would count them twice). A slot is copied
 * whole into a struct gift_recv_wqe, which therefore always has room.
 */
static inline u32 gift_recv_wqe_size(u32 max_sge)
{
	return offsetof(struct gift_recv_wqe, sge) +
	       max_sge * sizeof(struct ib_sge);
}

/* Shared with gift_srq.c: receive work requests. */
int gift_recv_wr_check(struct gift_dev *gdev, const struct ib_recv_wr *wr,
		       u32 max_sge);
void gift_recv_wqe_init(struct gift_recv_wqe *wqe, const struct ib_recv_wr *wr);

/*
 * Engine API. Every function may be called in any context (process,
 * softirq, hardirq) unless noted, with none of the QP's locks held; the
 * lock each takes is in its kernel-doc. Completion handlers and event
 * handlers are called without any of our spinlocks.
 *
 * Receive completions: the engine builds the ib_wc (status, opcode,
 * byte_len, flags, immediate data, source QP...) and hands it to
 * gift_qp_rq_complete(), which fills in wr_id and qp and queues it in
 * order. Send completions are built here by gift_qp_sq_complete().
 */
struct gift_qp *gift_qp_get(struct gift_dev *gdev, u32 qpn);
void gift_qp_put(struct gift_qp *qp);
struct gift_send_wqe *gift_qp_sq_peek(struct gift_qp *qp, u32 n);
int gift_qp_sq_complete(struct gift_qp *qp, enum ib_wc_status status,
			u32 byte_len);
int gift_qp_rq_pop(struct gift_qp *qp, struct gift_recv_wqe *out);
int gift_qp_rq_complete(struct gift_qp *qp, const struct gift_recv_wqe *wqe,
			struct ib_wc *wc, bool solicited);
void gift_qp_error(struct gift_qp *qp);
void gift_qp_sq_poll(struct gift_qp *qp);
bool gift_qp_sq_engine(struct gift_qp *qp, bool running);

/* For gift_uapi.c: BIND_MW and LOCAL_INV of user QPs; process context. */
int gift_qp_post_mw_wr(struct gift_qp *qp, u64 wr_id, u32 send_flags,
		       enum ib_wr_opcode opcode, u32 invalidate_rkey,
		       const struct gift_mw_bind *bind);

/* For gift_cq.c: a CQ overflowed; process context. */
void gift_qp_cq_failed(struct gift_dev *gdev, struct ib_cq *ibcq);

struct gift_ex_wr;
int gift_qp_post_ex(struct ib_qp *ibqp, const struct gift_ex_wr *ex);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_qp_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_qp_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_QP_H */
