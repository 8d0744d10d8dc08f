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
 */
enum gift_dev_cap {
	GIFT_DEV_CAP_ACCESS_GIFT = 1 << 0,
	GIFT_DEV_CAP_POST_EX = 1 << 1,
	GIFT_DEV_CAP_MAPPED_CQ = 1 << 2,
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

#endif /* GIFT_ABI_USER_H */
