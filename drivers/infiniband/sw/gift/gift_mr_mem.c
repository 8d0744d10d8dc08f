// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift MR memory: the accessor layer between the data path and the
 * memory behind an MR.
 *
 * Which kind of memory an MR has is decided once, when it is created,
 * by the ops table it gets (struct gift_mr.mem, constant):
 *
 *   ops                        MR                       memory
 *   gift_mr_mem_umem           reg_user_mr              pinned pages of a
 *                                                       gift_umem (gift
 *                                                       or not)
 *   gift_mr_mem_odp            reg_user_mr, ODP         a gift_odp page
 *                                                       table
 *   gift_mr_mem_odp_implicit   reg_user_mr(NULL,        leaf page tables
 *                              SIZE_MAX), ODP           per 2 MiB chunk
 *   gift_mr_mem_fr             alloc_mr + REG_MR        page list of
 *                                                       kernel addresses
 *   gift_mr_mem_dma            get_dma_mr               kernel addresses,
 *                                                       identity mapped
 *
 * Each kind implements one operation, span(): translate an address of
 * the MR into where that byte lives (a struct page and an offset, or a
 * kernel address) and how many bytes after it are contiguous there, for
 * a read, a write or an atomic, or say why not. gift_mr_copy() and
 * gift_mr_atomic() (gift_mr.c) are the only callers: they check the MR's
 * state and range, then loop over span() a page (or page-list entry) at
 * a time, map, copy and unmap. So the data path costs one indirect call
 * per page, and knows nothing about the kinds.
 *
 * The contract of span(mr, iova, access, span):
 *
 * - Called with mr->lock held (shared or exclusive, interrupts off), the
 *   MR valid and iova inside it (gift_mr_check_range()); the answer holds
 *   until the lock is dropped, and the caller accesses at most span->len
 *   bytes from span before that, in that hold.
 * - Never sleeps, never fails for lack of memory, changes nothing but
 *   the dirty tracking of an ODP page (set for a write or atomic, before
 *   the caller writes, still under the same hold of the lock).
 * - Errors, each answered before the next (gift_mr_mem_allowed()):
 *   -EACCES for a write or atomic to memory that must not be written
 *   (pinned or faulted read-only); -EINVAL for an atomic operand that
 *   is not 8-byte aligned in memory; -EAGAIN, ODP only, for a page not
 *   mapped for this access yet: nothing was changed, the engine faults
 *   it (gift_mr_fault()) and tries the same copy again.
 *
 * Locking: mr->lock protects everything span() reads: the umem pointer
 * (rereg swaps it), the page list (REG_MR replaces it), the ODP entries
 * and leaves (faults, invalidations and the reaper change them holding
 * it exclusively). See struct gift_mr and struct gift_odp.
 */

#include "gift.h"

/**
 * gift_mr_mem_umem_span() - span() of a user MR with pinned pages
 * @mr: MR whose lock is held; its umem covers [iova, iova + length)
 * @iova: address of the byte in the MR
 * @access: what the caller will do
 * @span: set to the pinned page and the bytes left in it
 *
 * Context: under @mr->lock; does not sleep.
 *
 * Return: 0, or the errors of gift_umem_span().
 */
static int gift_mr_mem_umem_span(struct gift_mr *mr, u64 iova,
				 enum gift_mr_mem_access access,
				 struct gift_mr_mem_span *span)
{
	lockdep_assert_held(&mr->lock);
	return gift_umem_span(mr->umem, iova - mr->iova, access, span);
}

/**
 * gift_mr_mem_odp_span() - span() of an explicit ODP MR
 * @mr: MR whose lock is held; its page table covers [iova, iova + length)
 * @iova: address of the byte in the MR
 * @access: what the caller will do
 * @span: set to the page the device's page table maps there
 *
 * Context: under @mr->lock; does not sleep.
 *
 * Return: 0, or the errors of gift_odp_span() (-EAGAIN: not mapped yet).
 */
static int gift_mr_mem_odp_span(struct gift_mr *mr, u64 iova,
				enum gift_mr_mem_access access,
				struct gift_mr_mem_span *span)
{
	lockdep_assert_held(&mr->lock);
	return gift_odp_span(mr->odp, iova - mr->iova, access, span);
}

/**
 * gift_mr_mem_odp_implicit_span() - span() of an implicit ODP MR
 * @mr: MR whose lock is held; its iova is 0, so iova is the user address
 * @iova: address of the byte, a user virtual address
 * @access: what the caller will do
 * @span: set to the page the leaf of @iova's chunk maps there
 *
 * Context: under @mr->lock; does not sleep.
 *
 * Return: 0, or the errors of gift_odp_implicit_span().
 */
static int gift_mr_mem_odp_implicit_span(struct gift_mr *mr, u64 iova,
					 enum gift_mr_mem_access access,
					 struct gift_mr_mem_span *span)
{
	lockdep_assert_held(&mr->lock);
	return gift_odp_implicit_span(mr->odp, iova, access, span);
}

/**
 * gift_mr_mem_fr_span() - span() of a registered fast-register MR
 * @mr: MR whose lock is held; its live page list (mr->fr) covers
 *	[iova, iova + length) from mr->fr.offset on
 * @iova: address of the byte in the MR
 * @access: what the caller will do
 * @span: set to the byte's kernel address and the bytes left in its
 *	page-list entry (the ULP's page size, 512 bytes or more)
 *
 * The iova may have been rebased (zero-based) after mapping, so an
 * atomic operand is checked for alignment at its place in the page list,
 * where an aligned 8 bytes never straddle two entries.
 *
 * Context: under @mr->lock; does not sleep.
 *
 * Return: 0, or -EINVAL for an atomic operand not 8-byte aligned in
 * memory.
 */
static int gift_mr_mem_fr_span(struct gift_mr *mr, u64 iova,
			       enum gift_mr_mem_access access,
			       struct gift_mr_mem_span *span)
{
	const struct gift_mr_pages *fr = &mr->fr;
	u64 pos = fr->offset + (iova - mr->iova);
	u64 size = 1ULL << fr->shift;
	u64 in = pos & (size - 1);
	int err;

	lockdep_assert_held(&mr->lock);
	err = gift_mr_mem_allowed(true, access, pos);
	if (err)
		return err;
	span->page = NULL;
	span->kaddr = (void *)(uintptr_t)(fr->addrs[pos >> fr->shift] + in);
	span->len = size - in;
	return 0;
}

/**
 * gift_mr_mem_dma_span() - span() of the DMA MR of a kernel PD
 * @mr: MR whose lock is held
 * @iova: a kernel virtual address (the device has no DMA device, so
 *	ib_core's DMA addresses are kernel virtual addresses)
 * @access: what the caller will do; an atomic's iova, which is its
 *	address, was checked for alignment by the caller
 * @span: set to @iova itself, without boundary
 *
 * Context: under @mr->lock; does not sleep.
 *
 * Return: 0.
 */
static int gift_mr_mem_dma_span(struct gift_mr *mr, u64 iova,
				enum gift_mr_mem_access access,
				struct gift_mr_mem_span *span)
{
	lockdep_assert_held(&mr->lock);
	span->page = NULL;
	span->kaddr = (void *)(uintptr_t)iova;
	span->len = SIZE_MAX;
	return 0;
}

const struct gift_mr_mem_ops gift_mr_mem_umem = {
	.name = "umem",
	.span = gift_mr_mem_umem_span,
};

const struct gift_mr_mem_ops gift_mr_mem_odp = {
	.name = "odp",
	.span = gift_mr_mem_odp_span,
};

const struct gift_mr_mem_ops gift_mr_mem_odp_implicit = {
	.name = "odp_implicit",
	.span = gift_mr_mem_odp_implicit_span,
};

const struct gift_mr_mem_ops gift_mr_mem_fr = {
	.name = "fr",
	.span = gift_mr_mem_fr_span,
};

const struct gift_mr_mem_ops gift_mr_mem_dma = {
	.name = "dma",
	.span = gift_mr_mem_dma_span,
};
