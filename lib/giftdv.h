/* SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB) */
/*
 * giftdv.h - direct-verbs extensions of the gift (rdma_gift) provider.
 *
 * The gift provider is a libibverbs plugin (libgift-rdmav34.so, loaded by
 * libibverbs through /etc/libibverbs.d/gift.driver). Besides the standard
 * verbs it exports the giftdv_*() functions below. Applications that
 * call them link with the provider directly, e.g.
 *
 *   cc app.c -libverbs -L/usr/lib/x86_64-linux-gnu/libibverbs \
 *      -lgift-rdmav34 -Wl,-rpath,/usr/lib/x86_64-linux-gnu/libibverbs
 *
 * (libdir as reported by "pkg-config --variable=libdir libibverbs"). The
 * dynamic loader then maps the same file that libibverbs dlopen()s, so the
 * provider is registered only once. Applications that merely want to pass
 * IBV_ACCESS_GIFT need no link with the provider: the flag is an ordinary
 * access bit handed to ibv_reg_mr().
 */
#ifndef GIFTDV_H
#define GIFTDV_H

#include <stdint.h>

#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * IBV_ACCESS_GIFT - register a read-only "gift" memory region.
 *
 * Bit 29 is the last bit of the optional access range
 * (IBV_ACCESS_OPTIONAL_RANGE, bits 20..29, the same bits as the kernel's
 * IB_UVERBS_ACCESS_OPTIONAL_FIRST..IB_UVERBS_ACCESS_OPTIONAL_LAST). Flags
 * in that range are best effort by definition: ib_core accepts every
 * optional bit instead of failing ibv_reg_mr() with EINVAL, a driver ignores
 * the optional bits it does not implement, and libibverbs strips the whole
 * range on kernels that cannot pass optional bits at all. So an application
 * may pass IBV_ACCESS_GIFT to any device, gift or not.
 *
 * The consequence is that a successful ibv_reg_mr() does NOT tell whether
 * the flag was honoured. Check GIFTDV_DEV_CAP_ACCESS_GIFT in the dev_caps
 * returned by giftdv_query_device() first; on any other device, or when the
 * capability is absent, the region is registered as if the flag were not
 * given.
 *
 * Note: with a flag from the optional range, the ibv_reg_mr() macro of
 * <infiniband/verbs.h> calls ibv_reg_mr_iova2() (libibverbs >= 1.8).
 */
#define IBV_ACCESS_GIFT (1 << 29)

/* Bits of giftdv_device_attr.dev_caps (mirror enum gift_dev_cap of the ABI) */
enum giftdv_dev_caps {
	/* The device honours IBV_ACCESS_GIFT in ibv_reg_mr / ibv_rereg_mr */
	GIFTDV_DEV_CAP_ACCESS_GIFT = 1 << 0,
	/*
	 * RDMA FLUSH and ATOMIC WRITE can be posted from user space:
	 * ibv_wr_atomic_write(), giftdv_wr_flush() (and ibv_wr_flush() with a
	 * libibverbs that has it)
	 */
	GIFTDV_DEV_CAP_POST_EX = 1 << 1,
	/*
	 * CQs are polled from a ring mapped into the process, without a
	 * system call (the provider uses it by itself)
	 */
	GIFTDV_DEV_CAP_MAPPED_CQ = 1 << 2,
	/*
	 * Send queues (RC, UC) and receive queues (without an SRQ) are
	 * rings mapped into the process, and so are SRQs:
	 * ibv_post_recv() and ibv_post_srq_recv() make no system call,
	 * ibv_post_send() one per call (the provider uses it by itself;
	 * see giftdv_query_qp_wqs())
	 */
	GIFTDV_DEV_CAP_MAPPED_WQ = 1 << 3,
};

/*
 * struct giftdv_device_attr - attributes returned by giftdv_query_device()
 * @comp_mask: in: optional fields the caller wants (none are defined yet,
 *             pass 0); out: the optional fields that were filled in. The
 *             fields below are always filled in.
 * @dev_caps: bitmask of enum giftdv_dev_caps
 * @abi_version: uverbs ABI version of the running rdma_gift kernel driver
 */
struct giftdv_device_attr {
	uint64_t comp_mask;
	uint32_t dev_caps;
	uint32_t abi_version;
};

/*
 * Semantics of IBV_ACCESS_GIFT (see Documentation/rdma_gift.rst, "Gift
 * memory regions", for the full table):
 *  - only for MRs nobody writes: with IBV_ACCESS_LOCAL_WRITE,
 *    IBV_ACCESS_REMOTE_WRITE or IBV_ACCESS_REMOTE_ATOMIC ibv_reg_mr() /
 *    ibv_rereg_mr() fail with EINVAL; with IBV_ACCESS_MW_BIND the MR
 *    takes read-only memory windows (a bind granting remote write or
 *    atomics completes with IBV_WC_MW_BIND_ERR);
 *  - registration never allocates memory or changes the page behind an
 *    address: zero-page, KSM, fork-shared, MAP_PRIVATE file pages and
 *    THP/hugetlbfs pages stay shared; such write-protected pages are held
 *    by reference ("shared pages" below), exclusive pages are pinned;
 *  - the application promises not to write the range. If it does, a write
 *    to a shared page gives the process a new page while the device keeps
 *    reading the registration-time content (the page becomes "stale"); a
 *    write to an exclusive page lands in the page the device reads.
 *    ibv_rereg_mr(IBV_REREG_MR_CHANGE_TRANSLATION) over the same range
 *    picks up the current pages.
 */

/*
 * struct giftdv_mr_attr - how a memory region holds its pages
 * @comp_mask: in: 0; out: 0 (no optional fields yet)
 * @npages: pages spanned by the MR
 * @shared_pages: pages of a gift MR held by reference because they were
 *                write-protected (copy-on-write shared) at registration;
 *                0 for an MR registered without IBV_ACCESS_GIFT
 * @stale_pages: pages whose current mapping in the registering process is
 *               not the page the MR holds (written after registration,
 *               unmapped, or replaced by a new mapping)
 */
struct giftdv_mr_attr {
	uint64_t comp_mask;
	uint64_t npages;
	uint64_t shared_pages;
	uint64_t stale_pages;
};

/*
 * giftdv_query_mr - report how a user MR of a gift device holds its pages
 * @mr: an MR from ibv_reg_mr() (gift or not) on a gift device
 * @attr: filled on success
 *
 * Computing stale_pages walks the MR's range in the registering process's
 * page tables (with read faults, which never allocate anonymous memory:
 * an unpopulated page reads as the zero page); it costs about as much as
 * the registration's page walk, without pinning anything.
 *
 * Return: 0, or a positive errno: EOPNOTSUPP if @mr is not from this
 * provider or the driver lacks GIFTDV_DEV_CAP_ACCESS_GIFT, EINVAL if
 * @attr is NULL, @attr->comp_mask is not 0, or the MR has no user pages.
 */
int giftdv_query_mr(struct ibv_mr *mr, struct giftdv_mr_attr *attr);

/*
 * giftdv_mr_stale_pages - pages of an MR whose mapping changed
 * @mr: as for giftdv_query_mr()
 * @stale: set to giftdv_mr_attr.stale_pages
 *
 * Migration code re-registers (or resends) an MR when this is not 0.
 *
 * Return: as giftdv_query_mr().
 */
int giftdv_mr_stale_pages(struct ibv_mr *mr, uint64_t *stale);

/*
 * giftdv_query_device - query gift specific device attributes
 * @ctx: a context opened on a gift device (ibv_open_device)
 * @attr: filled on success
 *
 * Return: 0, or a positive errno: EOPNOTSUPP if @ctx does not belong to the
 * gift provider (this copy of it), EINVAL if @attr is NULL.
 */
int giftdv_query_device(struct ibv_context *ctx,
			struct giftdv_device_attr *attr);

/*
 * giftdv_wr_flush - build an RDMA FLUSH work request (IBTA 1.5)
 * @qpx: an RC QP of a gift device made by ibv_create_qp_ex() with
 *       send_ops_flags, between ibv_wr_start() and ibv_wr_complete()
 * @rkey, @remote_addr, @len, @type, @level: as ibv_wr_flush() of
 *       libibverbs >= 45: @type IBV_FLUSH_GLOBAL (1; persistent placement,
 *       2, is refused by a gift responder), @level IBV_FLUSH_RANGE (0) or
 *       IBV_FLUSH_MR (1)
 *
 * The same as ibv_wr_flush(), for libibverbs releases whose struct
 * ibv_qp_ex has no wr_flush (44 and older), where the provider cannot
 * offer IBV_QP_EX_WITH_FLUSH. Errors are reported by ibv_wr_complete()
 * (EOPNOTSUPP when the device lacks GIFTDV_DEV_CAP_POST_EX).
 */
void giftdv_wr_flush(struct ibv_qp_ex *qpx, uint32_t rkey,
		     uint64_t remote_addr, size_t len, uint8_t type,
		     uint8_t level);

/*
 * struct giftdv_wq - where a mapped work queue of a QP is
 * @ring: the ring's header, struct gift_wq_ring of <rdma/gift-abi.h>;
 *        NULL when the queue is not mapped (then the fields below are 0)
 * @slots: slot 0; slot i is at @slots + (i & (@size - 1)) * @stride
 * @size: slots, a power of two
 * @stride: bytes per slot (struct gift_swqe or struct gift_rwqe and
 *          their tails)
 */
struct giftdv_wq {
	void *ring;
	void *slots;
	uint32_t size;
	uint32_t stride;
};

/*
 * giftdv_query_qp_wqs - where the mapped work queues of a QP are
 * @qp: a QP of a gift device
 * @sq, @rq: filled in (either may be NULL)
 *
 * For tools and tests that look at the rings (the format and the
 * protocol are in <rdma/gift-abi.h>): the provider owns the producer
 * indices, and anything written there but through ibv_post_send() and
 * ibv_post_recv() may fail the QP (never anything else: the kernel
 * checks every slot it reads).
 *
 * Return: 0, or EOPNOTSUPP if @qp does not belong to the gift provider.
 */
int giftdv_query_qp_wqs(struct ibv_qp *qp, struct giftdv_wq *sq,
			struct giftdv_wq *rq);

/*
 * giftdv_query_srq_wq - where the mapped ring of an SRQ is
 * @srq: an SRQ of a gift device
 * @wq: filled in as by giftdv_query_qp_wqs(); a resize moves the ring
 *
 * Return: 0, or EOPNOTSUPP if @srq does not belong to the gift provider.
 */
int giftdv_query_srq_wq(struct ibv_srq *srq, struct giftdv_wq *wq);

#ifdef __cplusplus
}
#endif

#endif /* GIFTDV_H */
