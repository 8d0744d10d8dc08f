/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR Linux-OpenIB) */
/*
 * User/kernel ABI of the rdma_gift soft-RoCE driver.
 *
 * Everything the provider (libgift) and the kernel driver exchange through
 * uverbs udata is defined here, with fixed-width types and explicit padding
 * so that 32-bit and 64-bit user space see the same layout.
 */
#ifndef GIFT_ABI_USER_H
#define GIFT_ABI_USER_H

#include <linux/types.h>
#include <rdma/ib_user_ioctl_cmds.h>
#include <rdma/ib_user_verbs.h>

/*
 * uverbs ABI version of the driver: the provider refuses devices that
 * report anything else.
 */
#define GIFT_UVERBS_ABI_VERSION 1

/*
 * Value of the "hca_type" sysfs attribute of every gift device
 * (/sys/class/infiniband/<dev>/hca_type). The driver is out of tree and so
 * reports RDMA_DRIVER_UNKNOWN as its driver id; the provider identifies
 * our devices by this attribute instead of by their (user-chosen) name.
 */
#define GIFT_HCA_TYPE "gift"

/*
 * Access flag for read-only "gift" registrations, in the optional access
 * range (IB_UVERBS_ACCESS_OPTIONAL_RANGE, bits 20..29). ib_core accepts
 * that whole range and hands it to the driver, and a driver ignores the
 * optional bits it does not implement (libibverbs strips the range itself
 * on kernels without IB_UVERBS_CORE_SUPPORT_OPTIONAL_MR_ACCESS), so
 * applications may pass the flag to any device. Unknown bits outside the
 * range fail with EINVAL in ib_check_mr_access().
 */
#define IB_UVERBS_ACCESS_GIFT (1U << 29)

/*
 * Device capability bits reported in gift_alloc_ucontext_resp.dev_caps.
 *
 * GIFT_DEV_CAP_ACCESS_GIFT: reg_mr and rereg_mr honour
 * IB_UVERBS_ACCESS_GIFT, and the MR query method below exists.
 * GIFT_DEV_CAP_POST_EX: the QP method GIFT_IB_METHOD_QP_POST_EX exists
 * (RDMA FLUSH and ATOMIC WRITE from user space).
 * GIFT_DEV_CAP_MAPPED_CQ: create_cq accepts GIFT_CREATE_CQ_MAPPED (a
 * completion ring mapped into user space, see struct gift_cq_ring).
 * GIFT_DEV_CAP_MAPPED_WQ: create_qp accepts GIFT_CREATE_QP_MAPPED_SQ and
 * GIFT_CREATE_QP_MAPPED_RQ, create_srq GIFT_CREATE_SRQ_MAPPED (work queue
 * rings mapped into user space, see struct gift_wq_ring), and the SRQ
 * method GIFT_IB_METHOD_SRQ_PREPARE_RESIZE exists.
 */
enum gift_dev_cap {
	GIFT_DEV_CAP_ACCESS_GIFT = 1 << 0,
	GIFT_DEV_CAP_POST_EX = 1 << 1,
	GIFT_DEV_CAP_MAPPED_CQ = 1 << 2,
	GIFT_DEV_CAP_MAPPED_WQ = 1 << 3,
};

/*
 * Driver-specific ioctl methods of the MR object (UVERBS_OBJECT_MR), in
 * the driver's ID namespace.
 *
 * GIFT_IB_METHOD_MR_QUERY reports how a user MR holds its pages:
 * @GIFT_IB_ATTR_MR_QUERY_HANDLE: in, the MR (read access)
 * @GIFT_IB_ATTR_MR_QUERY_NPAGES: out (u64, optional), pages the MR spans
 * @GIFT_IB_ATTR_MR_QUERY_SHARED_PAGES: out (u64, optional), pages a gift
 *	MR holds by plain reference because they were write-protected
 *	(copy-on-write shared) at registration; 0 for other MRs
 * @GIFT_IB_ATTR_MR_QUERY_STALE_PAGES: out (u64, optional), pages whose
 *	current mapping in the registering process is no longer the page
 *	the MR holds; asking for it walks the range (read faults only)
 *
 * The MR must have been registered from user memory (not a DMA or
 * fast-reg MR), else EINVAL.
 */
enum gift_ib_mr_methods {
	GIFT_IB_METHOD_MR_QUERY = (1U << UVERBS_ID_NS_SHIFT),
};

enum gift_ib_mr_query_attrs {
	GIFT_IB_ATTR_MR_QUERY_HANDLE = (1U << UVERBS_ID_NS_SHIFT),
	GIFT_IB_ATTR_MR_QUERY_NPAGES,
	GIFT_IB_ATTR_MR_QUERY_SHARED_PAGES,
	GIFT_IB_ATTR_MR_QUERY_STALE_PAGES,
};

/*
 * Driver-specific ioctl method of the QP object (UVERBS_OBJECT_QP): post
 * one work request that the uverbs post_send command cannot carry (its
 * struct ib_uverbs_send_wr has no fields for them): IB_UVERBS_WR_FLUSH or
 * IB_UVERBS_WR_ATOMIC_WRITE on an RC QP. The WQE is queued behind
 * everything posted before, as post_send would queue it, and completes
 * with IB_UVERBS_WC_FLUSH or IB_UVERBS_WC_ATOMIC_WRITE.
 *
 * @GIFT_IB_ATTR_QP_POST_EX_HANDLE: in, the QP
 * @GIFT_IB_ATTR_QP_POST_EX_WR: in, struct gift_post_ex_wr
 *
 * Errors are post_send's: EINVAL for a bad WR or a QP not in RTS/SQD (or
 * ERR, where it completes at once with a flush error), ENOMEM for a full
 * send queue.
 */
enum gift_ib_qp_methods {
	GIFT_IB_METHOD_QP_POST_EX = (1U << UVERBS_ID_NS_SHIFT),
};

enum gift_ib_qp_post_ex_attrs {
	GIFT_IB_ATTR_QP_POST_EX_HANDLE = (1U << UVERBS_ID_NS_SHIFT),
	GIFT_IB_ATTR_QP_POST_EX_WR,
};

/**
 * struct gift_post_ex_wr - one FLUSH or ATOMIC WRITE work request
 * @wr_id: returned in the completion
 * @remote_addr: FLUSH: first byte of the range; ATOMIC WRITE: the 8-byte
 *	aligned target
 * @atomic_wr: ATOMIC WRITE: the 8 bytes stored, as they are
 * @opcode: IB_UVERBS_WR_FLUSH or IB_UVERBS_WR_ATOMIC_WRITE
 * @send_flags: IB_UVERBS_SEND_SIGNALED, _FENCE, _SOLICITED
 * @rkey: the remote MR's key
 * @length: FLUSH with level IB_FLUSH_RANGE: bytes of the range
 * @flush_type: FLUSH: IB_FLUSH_GLOBAL and/or IB_FLUSH_PERSISTENT
 * @flush_level: FLUSH: IB_FLUSH_RANGE or IB_FLUSH_MR
 * @reserved: must be 0
 */
struct gift_post_ex_wr {
	__aligned_u64 wr_id;
	__aligned_u64 remote_addr;
	__u8 atomic_wr[8];
	__u32 opcode;
	__u32 send_flags;
	__u32 rkey;
	__u32 length;
	__u8 flush_type;
	__u8 flush_level;
	__u8 reserved[6];
};

/*
 * Driver-specific ioctl method of the QP object (UVERBS_OBJECT_QP) for
 * the work requests uverbs' post_send cannot carry: memory window binds
 * (IB_UVERBS_WR_BIND_MW; struct ib_uverbs_send_wr has no bind fields)
 * and LOCAL_INV (IB_UVERBS_WR_LOCAL_INV, refused by uverbs for user
 * QPs). Each call queues one work request on the QP's send queue, in
 * order with those posted before and after it; the provider's post_send
 * splits a chain there.
 *
 * GIFT_IB_METHOD_QP_POST_MW:
 * @GIFT_IB_ATTR_QP_POST_MW_QP_HANDLE: in, the RC QP (read access)
 * @GIFT_IB_ATTR_QP_POST_MW_WR: in, struct gift_post_mw_wr
 * @GIFT_IB_ATTR_QP_POST_MW_MW_HANDLE: in, BIND_MW: the window
 * @GIFT_IB_ATTR_QP_POST_MW_MR_HANDLE: in, BIND_MW: the MR (optional for
 *	a type 1 unbind, length 0)
 *
 * Errors: EINVAL for a bad opcode, flags or handle, or a QP not in RTS,
 * SQD, SQE or ERR; ENOMEM when the send queue is full. Everything the
 * bind itself may violate completes with IB_WC_MW_BIND_ERR.
 *
 * The method ID sits away from the first of the namespace (ib_core has
 * room for 10 driver methods per object), which other QP methods take.
 */
enum gift_ib_qp_mw_methods {
	GIFT_IB_METHOD_QP_POST_MW = (1U << UVERBS_ID_NS_SHIFT) + 4,
};

enum gift_ib_qp_post_mw_attrs {
	GIFT_IB_ATTR_QP_POST_MW_QP_HANDLE = (1U << UVERBS_ID_NS_SHIFT),
	GIFT_IB_ATTR_QP_POST_MW_WR,
	GIFT_IB_ATTR_QP_POST_MW_MW_HANDLE,
	GIFT_IB_ATTR_QP_POST_MW_MR_HANDLE,
};

/**
 * struct gift_post_mw_wr - a BIND_MW or LOCAL_INV work request
 * @wr_id: returned in the completion
 * @addr: BIND_MW: first address of the window, in the MR
 * @length: BIND_MW: bytes of the window; 0 unbinds a type 1 window
 * @opcode: IB_UVERBS_WR_BIND_MW or IB_UVERBS_WR_LOCAL_INV
 * @send_flags: IBV_SEND_SIGNALED (2) and/or IBV_SEND_FENCE (1), the
 *	values of struct ib_uverbs_send_wr.send_flags
 * @access: BIND_MW: IB_UVERBS_ACCESS_REMOTE_READ, _REMOTE_WRITE,
 *	_REMOTE_ATOMIC and _ZERO_BASED
 * @rkey: BIND_MW: the window's new rkey (its index is the window's, its
 *	low byte the new key); LOCAL_INV: the rkey to invalidate
 */
struct gift_post_mw_wr {
	__aligned_u64 wr_id;
	__aligned_u64 addr;
	__aligned_u64 length;
	__u32 opcode;
	__u32 send_flags;
	__u32 access;
	__u32 rkey;
};

/**
 * struct gift_alloc_ucontext_resp - driver data returned by alloc_ucontext
 * @abi_version: GIFT_UVERBS_ABI_VERSION of the running driver
 * @dev_caps: bitmask of enum gift_dev_cap
 */
struct gift_alloc_ucontext_resp {
	__u32 abi_version;
	__u32 dev_caps;
};

/*
 * Mapped completion queues.
 *
 * create_cq (and the extended create_cq) with GIFT_CREATE_CQ_MAPPED in
 * struct gift_create_cq_req makes a CQ whose completions the kernel writes
 * into a ring that user space maps and polls without a system call. The
 * response (struct gift_cq_ring_resp) gives the mmap() offset on the
 * uverbs file and the length of the mapping.
 *
 * resize_cq of a mapped CQ takes two calls, so that a process that cannot
 * map the new ring keeps a working CQ (struct gift_resize_cq_req):
 *  1. GIFT_RESIZE_CQ_PREPARE makes a new, empty ring for the entries asked
 *     for and answers its offset, length and size; the CQ goes on using
 *     its ring and its size. A prepared ring replaces any earlier one.
 *  2. The process maps the new ring, then GIFT_RESIZE_CQ_COMMIT, with the
 *     same number of entries, moves the queued completions into it and
 *     switches the CQ to it; the old mapping stops being written and is
 *     the caller's to unmap. A commit that fails (EINVAL: more queued
 *     completions than the new size, or no ring prepared for that size;
 *     EOVERFLOW: the CQ is in error) drops the prepared ring and leaves
 *     the CQ as it was.
 *  GIFT_RESIZE_CQ_ABORT drops a prepared ring (the process could not map
 *  it). A ring left prepared is dropped by the next prepare and by
 *  destroy_cq. A mapped CQ's resize_cq without one of these flags, and a
 *  CQ that is not mapped with one, fail with EINVAL.
 *
 * The mapping starts with struct gift_cq_ring; slot i of the ring is the
 * struct ib_uverbs_wc (rdma/ib_user_verbs.h, the poll_cq command's
 * format) at GIFT_CQ_RING_WC_OFFSET + (i & (size - 1)) * sizeof(struct
 * ib_uverbs_wc). @prod and @cons are free-running u32 indices: the ring
 * holds prod - cons completions, oldest at cons.
 *
 * Kernel, producing one completion (under its CQ lock): reads @cons with
 * acquire semantics; if prod - cons >= size (full, or a value the consumer
 * never had) the completion is lost and the CQ fails for good: the
 * kernel sets GIFT_CQ_RING_ERR in @flags, reports IB_EVENT_CQ_ERR and
 * moves the CQ's QPs to ERR (as for any CQ overflow). Else it writes the
 * slot, then stores prod + 1 to @prod with release semantics.
 *
 * User space, consuming: loads @prod with acquire semantics (pairs with
 * the kernel's release), reads the slots from cons to prod, then stores
 * the new cons with release semantics (pairs with the kernel's acquire,
 * so that the kernel overwrites no slot still being read). A consumer
 * that finds GIFT_CQ_RING_ERR in @flags treats the CQ as failed.
 *
 * The kernel reads nothing from the mapping but @cons, keeps its own copy
 * of @prod and of the size, and never trusts what user space wrote: a
 * process that corrupts its rings fails its own CQs and QPs only. The
 * @reserved byte of a slot is 0 when written; the provider uses bit 0 of
 * it to mark completions of a destroyed QP that it skips.
 */
enum gift_create_cq_flags {
	GIFT_CREATE_CQ_MAPPED = 1 << 0,
};

/**
 * struct gift_create_cq_req - driver data of create_cq
 * @flags: enum gift_create_cq_flags; unknown bits fail with EINVAL
 */
struct gift_create_cq_req {
	__aligned_u64 flags;
};

enum gift_resize_cq_flags {
	GIFT_RESIZE_CQ_PREPARE = 1 << 0,
	GIFT_RESIZE_CQ_COMMIT = 1 << 1,
	GIFT_RESIZE_CQ_ABORT = 1 << 2,
};

/**
 * struct gift_resize_cq_req - driver data of resize_cq of a mapped CQ
 * @flags: exactly one of enum gift_resize_cq_flags; others fail with EINVAL
 * @reserved: 0
 */
struct gift_resize_cq_req {
	__u32 flags;
	__u32 reserved;
};

/**
 * struct gift_cq_ring_resp - driver data answered by create_cq and by
 *	resize_cq's GIFT_RESIZE_CQ_PREPARE (zero for the other resize calls)
 * @mmap_offset: offset to mmap() the ring at on the uverbs file
 * @mmap_length: bytes to map; 0 for a CQ that is not mapped
 * @size: slots of the ring, a power of two
 * @reserved: 0
 */
struct gift_cq_ring_resp {
	__aligned_u64 mmap_offset;
	__aligned_u64 mmap_length;
	__u32 size;
	__u32 reserved;
};

enum gift_cq_ring_flags {
	GIFT_CQ_RING_ERR = 1 << 0,
};

#define GIFT_CQ_RING_WC_OFFSET 128

/**
 * struct gift_cq_ring - the header of a mapped CQ ring
 * @prod: written by the kernel only
 * @flags: enum gift_cq_ring_flags, written by the kernel only
 * @size: slots, as in struct gift_cq_ring_resp (informational)
 * @cons: written by user space only
 *
 * The producer's and the consumer's words are in separate cache lines.
 */
struct gift_cq_ring {
	__u32 prod;
	__u32 flags;
	__u32 size;
	__u32 reserved0[13];
	__u32 cons;
	__u32 reserved1[15];
};

/*
 * Mapped work queues.
 *
 * create_qp with GIFT_CREATE_QP_MAPPED_SQ (RC and UC QPs) and/or
 * GIFT_CREATE_QP_MAPPED_RQ (QPs without an SRQ) in struct
 * gift_create_qp_req makes the QP's send and/or receive queue a ring in
 * memory that user space maps (struct gift_create_qp_resp gives, per
 * queue, the mmap() offset on the uverbs file, the length, the number of
 * slots and the bytes per slot). A QP type or SRQ that does not allow a
 * flag fails with EINVAL, unknown flags too.
 *
 * The mapping starts with struct gift_wq_ring; slot i is at
 * GIFT_WQ_RING_WQE_OFFSET + (i & (size - 1)) * stride. @prod and @cons are
 * free-running u32 indices: the ring holds prod - cons work requests,
 * never more than size.
 *
 * User space, posting: checks that prod - cons < size (cons loaded with
 * acquire semantics, pairing with the kernel's release), writes the slot,
 * then stores prod + 1 to @prod with release semantics.
 *
 * Kernel, consuming: loads @prod with acquire semantics (pairs with the
 * user's release) and copies each slot into kernel memory before it
 * checks it: nothing it reads from the mapping is read twice. A @prod
 * more than size ahead of the kernel's own cons fails the QP (as on a
 * local QP operation error, IB_EVENT_QP_FATAL, and every posted work
 * request flushed); so does a slot that is not a valid work request,
 * which completes with IB_WC_LOC_QP_OP_ERR in its turn. When a work
 * request completes (or is flushed), its slot is free again: the kernel
 * stores the new cons with release semantics before the completion is
 * in the CQ, so that a consumer that polled the completion finds the
 * slot free. The kernel keeps its own copy of cons, size and stride and
 * never trusts the mapping's.
 *
 * Send queue: after writing work requests, user space issues a full
 * memory barrier after its store of @prod and loads @flags. If
 * GIFT_WQ_RING_ENGINE is clear, it enters the kernel with the post_send
 * command without work requests (wr_count 0: the doorbell). The kernel
 * sets GIFT_WQ_RING_ENGINE while the QP's engine runs a pass, in which it
 * copies the new slots (up to @prod) into its own send queue before it
 * sends; at the end of the pass it clears the flag, issues a full
 * barrier, loads @prod and runs another pass if it shows slots not
 * copied. One of the two sides sees the other's store, so no work
 * request waits for a doorbell that is not rung. The doorbell copies the
 * slots too, and so does every other post on that send queue first (the
 * post_send command with work requests, GIFT_IB_METHOD_QP_POST_EX and
 * _POST_MW), so that work requests stay in the order they were posted.
 * In RESET, INIT and RTR the doorbell fails with EINVAL and copies
 * nothing; in SQE and ERR every new work request completes at once with
 * IB_WC_WR_FLUSH_ERR (ERR clears GIFT_WQ_RING_ENGINE: the doorbell
 * flushes).
 *
 * Receive queue: the kernel reads a slot when a message arrives for it,
 * without a system call. A receive queue has no doorbell but for the ERR
 * state: once the QP is in ERR the kernel sets GIFT_WQ_RING_ERR in
 * @flags (then a full memory barrier, then it flushes what @prod shows);
 * user space, after storing @prod, issues a full memory barrier and loads
 * @flags: if GIFT_WQ_RING_ERR is set, it makes the post_recv command
 * without work requests, which flushes what was posted since. One of the
 * two sides sees the other's store, so no receive is left unflushed. The
 * post_recv command with work requests fails with EINVAL on a mapped
 * receive queue.
 *
 * Entering RESET empties both queues: the kernel sets cons to the @prod
 * it finds, so that user space goes on from its own prod, and clears
 * @flags.
 */
enum gift_create_qp_flags {
	GIFT_CREATE_QP_MAPPED_SQ = 1 << 0,
	GIFT_CREATE_QP_MAPPED_RQ = 1 << 1,
};

/**
 * struct gift_create_qp_req - driver data of create_qp
 * @flags: enum gift_create_qp_flags
 */
struct gift_create_qp_req {
	__aligned_u64 flags;
};

/**
 * struct gift_wq_ring_resp - where a mapped work queue is
 * @mmap_offset: offset to mmap() the ring at on the uverbs file
 * @mmap_length: bytes to map; 0 for a queue that is not mapped
 * @size: slots, a power of two (the queue's max_*_wr)
 * @stride: bytes per slot
 */
struct gift_wq_ring_resp {
	__aligned_u64 mmap_offset;
	__aligned_u64 mmap_length;
	__u32 size;
	__u32 stride;
};

/**
 * struct gift_create_qp_resp - driver data answered by create_qp
 * @sq: the send queue's ring
 * @rq: the receive queue's ring
 */
struct gift_create_qp_resp {
	struct gift_wq_ring_resp sq;
	struct gift_wq_ring_resp rq;
};

enum gift_wq_ring_flags {
	GIFT_WQ_RING_ERR = 1 << 0,
	GIFT_WQ_RING_ENGINE = 1 << 1,
};

#define GIFT_WQ_RING_WQE_OFFSET 128

/**
 * struct gift_wq_ring - the header of a mapped work queue
 * @prod: written by user space only
 * @cons: written by the kernel only
 * @flags: enum gift_wq_ring_flags, written by the kernel only
 */
struct gift_wq_ring {
	__u32 prod;
	__u32 reserved0[15];
	__u32 cons;
	__u32 flags;
	__u32 reserved1[14];
};

/**
 * struct gift_rwqe - a receive work request in a mapped receive queue
 * @wr_id: returned in the completion
 * @num_sge: entries of @sge, at most the queue's max_recv_sge
 * @reserved: ignored
 * @sge: the scatter list
 *
 * The slot is 16 + 16 * max_recv_sge bytes.
 */
struct gift_rwqe {
	__aligned_u64 wr_id;
	__u32 num_sge;
	__u32 reserved;
	struct ib_uverbs_sge sge[];
};

/**
 * struct gift_swqe - a send work request in a mapped send queue
 * @wr_id: returned in the completion
 * @opcode: IB_UVERBS_WR_SEND, _SEND_WITH_IMM, _SEND_WITH_INV (RC),
 *	_RDMA_WRITE, _RDMA_WRITE_WITH_IMM, and on RC _RDMA_READ,
 *	_ATOMIC_CMP_AND_SWP and _ATOMIC_FETCH_AND_ADD; the other work
 *	requests go through their commands, which keep the order
 * @send_flags: IB_UVERBS_SEND_FENCE (1), _SIGNALED (2), _SOLICITED (4),
 *	_INLINE (8), as in struct ib_uverbs_send_wr; no others
 * @num_sge: without _INLINE, entries of @sge (at most max_send_sge)
 * @inline_len: with _INLINE, bytes of @inline_data (at most
 *	max_inline_data); 0 otherwise
 * @ex: immediate data (network order) or the rkey to invalidate
 * @reserved: ignored
 * @remote_addr: RDMA and atomic work requests: the remote address
 * @compare_add: atomics: the compare or add operand
 * @swap: compare and swap: the swap operand
 * @rkey: RDMA and atomic work requests: the remote key
 * @reserved2: ignored
 *
 * The tail of the slot follows: without _INLINE, the gather list
 * (struct ib_uverbs_sge[num_sge]); with it, the @inline_len bytes of the
 * message. The slot is sizeof(struct gift_swqe) + max(16 * max_send_sge,
 * max_inline_data) bytes, rounded up to 16.
 */
struct gift_swqe {
	__aligned_u64 wr_id;
	__u32 opcode;
	__u32 send_flags;
	__u32 num_sge;
	__u32 inline_len;
	__u32 ex;
	__u32 reserved;
	__aligned_u64 remote_addr;
	__aligned_u64 compare_add;
	__aligned_u64 swap;
	__u32 rkey;
	__u32 reserved2;
};

/*
 * Mapped shared receive queues.
 *
 * create_srq with GIFT_CREATE_SRQ_MAPPED in struct gift_create_srq_req
 * makes an SRQ whose receive work requests (struct gift_rwqe) user space
 * posts into a ring as a QP's mapped receive queue (struct
 * gift_wq_ring_resp answers where it is; the protocol is the receive
 * queue's above, without the ERR state: an SRQ is never flushed). The
 * kernel reads the user's prod each time a QP takes a work request from
 * the SRQ; a corrupt prod fails that QP and reports IB_EVENT_SRQ_ERR, and
 * every QP that needs a work request from the SRQ afterwards fails too.
 * A bad slot fails the QP that took it, as for a QP's own ring. The
 * post_srq_recv command fails with EINVAL on a mapped SRQ.
 *
 * Resizing a mapped SRQ takes two calls, as resizing a mapped CQ:
 *  1. GIFT_IB_METHOD_SRQ_PREPARE_RESIZE with the new max_wr makes a new,
 *     empty ring and answers where it is (a prepared ring replaces any
 *     earlier one; max_wr 0 drops it). The SRQ goes on with its ring.
 *  2. The process maps the new ring, then modify_srq with IB_SRQ_MAX_WR,
 *     the same max_wr, and GIFT_MODIFY_SRQ_COMMIT in struct
 *     gift_modify_srq_req copies the posted work requests into the new
 *     ring at the same indices (its prod and cons are the old ones) and
 *     switches the SRQ to it; the old mapping stops being read. A commit
 *     that fails (EINVAL: more posted than the new size, no ring
 *     prepared for that max_wr) leaves the SRQ as it was, the prepared
 *     ring kept. modify_srq of a mapped SRQ with IB_SRQ_MAX_WR and
 *     without the flag, or with it and without IB_SRQ_MAX_WR, fails with
 *     EINVAL; IB_SRQ_LIMIT needs nothing.
 *
 * GIFT_IB_METHOD_SRQ_PREPARE_RESIZE:
 * @GIFT_IB_ATTR_SRQ_PREPARE_HANDLE: in, the SRQ (mapped)
 * @GIFT_IB_ATTR_SRQ_PREPARE_MAX_WR: in, u32: the new max_wr, or 0
 * @GIFT_IB_ATTR_SRQ_PREPARE_RESP: out, struct gift_wq_ring_resp (zero
 *	for max_wr 0)
 * Errors: EINVAL for an SRQ that is not mapped or a max_wr over the
 * device's max_srq_wr; ENOMEM.
 */
enum gift_create_srq_flags {
	GIFT_CREATE_SRQ_MAPPED = 1 << 0,
};

/**
 * struct gift_create_srq_req - driver data of create_srq
 * @flags: enum gift_create_srq_flags; unknown bits fail with EINVAL
 */
struct gift_create_srq_req {
	__aligned_u64 flags;
};

enum gift_modify_srq_flags {
	GIFT_MODIFY_SRQ_COMMIT = 1 << 0,
};

/**
 * struct gift_modify_srq_req - driver data of modify_srq
 * @flags: enum gift_modify_srq_flags; unknown bits fail with EINVAL
 */
struct gift_modify_srq_req {
	__aligned_u64 flags;
};

enum gift_ib_srq_methods {
	GIFT_IB_METHOD_SRQ_PREPARE_RESIZE = (1U << UVERBS_ID_NS_SHIFT),
};

enum gift_ib_srq_prepare_attrs {
	GIFT_IB_ATTR_SRQ_PREPARE_HANDLE = (1U << UVERBS_ID_NS_SHIFT),
	GIFT_IB_ATTR_SRQ_PREPARE_MAX_WR,
	GIFT_IB_ATTR_SRQ_PREPARE_RESP,
};

#endif /* GIFT_ABI_USER_H */
