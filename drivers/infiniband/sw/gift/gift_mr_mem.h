/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift MR memory: the one interface through which the data path
 * reaches the bytes behind a memory region, whatever holds them (pinned
 * user pages, a fast-register page list, kernel memory of the DMA MR, an
 * ODP page table). See gift_mr_mem.c for the design.
 */
#ifndef GIFT_MR_MEM_H
#define GIFT_MR_MEM_H

#include <linux/align.h>
#include <linux/errno.h>
#include <linux/highmem.h>
#include <linux/types.h>

struct gift_mr;

/**
 * enum gift_mr_mem_access - what the caller of a translation will do
 * @GIFT_MR_MEM_READ: read the bytes
 * @GIFT_MR_MEM_WRITE: write the bytes, before dropping the MR's lock
 * @GIFT_MR_MEM_ATOMIC: an 8-byte atomic operation (a write) on the word
 *	at the address, which must be 8-byte aligned in memory
 */
enum gift_mr_mem_access {
	GIFT_MR_MEM_READ,
	GIFT_MR_MEM_WRITE,
	GIFT_MR_MEM_ATOMIC,
};

/**
 * enum gift_atomic_op - 8-byte atomic operations of the responder
 * @GIFT_ATOMIC_CMP_SWAP: if *va == compare, *va = swap
 * @GIFT_ATOMIC_FETCH_ADD: *va += add
 * @GIFT_ATOMIC_WRITE: *va = swap (RDMA ATOMIC WRITE)
 */
enum gift_atomic_op {
	GIFT_ATOMIC_CMP_SWAP,
	GIFT_ATOMIC_FETCH_ADD,
	GIFT_ATOMIC_WRITE,
};

/**
 * struct gift_mr_mem_span - where one translated address lives
 * @page: the page holding the byte, to be mapped with kmap_local_page();
 *	NULL when @kaddr is a kernel address usable as it is
 * @kaddr: kernel address of the byte when @page is NULL
 * @offset: offset of the byte in @page
 * @len: bytes from the byte on that are contiguous at the mapped address
 *	and belong to this translation, at least 1 (SIZE_MAX: no boundary)
 *
 * Valid while the MR's lock is held, the way it was held for the
 * translation; the mapping of @page is the caller's, inside that hold.
 */
struct gift_mr_mem_span {
	struct page *page;
	void *kaddr;
	unsigned int offset;
	size_t len;
};

/**
 * struct gift_mr_mem_ops - one kind of MR memory
 * @name: the kind, for debug messages
 * @span: translate an address of the MR into a &struct gift_mr_mem_span,
 *	see gift_mr_mem.c for the contract of every implementation
 *
 * Chosen once when the MR is created (gift_mr.mem) and never changed;
 * the data path calls @span once per page (or page-list entry) it
 * touches, under the MR's lock.
 */
struct gift_mr_mem_ops {
	const char *name;
	int (*span)(struct gift_mr *mr, u64 iova,
		    enum gift_mr_mem_access access,
		    struct gift_mr_mem_span *span);
};

extern const struct gift_mr_mem_ops gift_mr_mem_umem;
extern const struct gift_mr_mem_ops gift_mr_mem_fr;
extern const struct gift_mr_mem_ops gift_mr_mem_dma;
extern const struct gift_mr_mem_ops gift_mr_mem_odp;
extern const struct gift_mr_mem_ops gift_mr_mem_odp_implicit;

/**
 * gift_mr_mem_allowed() - the checks every kind makes before translating
 * @writable: the memory may be written through this MR at all (pinned
 *	or faulted for writing)
 * @access: what the caller will do
 * @pos: the byte's place in memory (its user address, or its offset from
 *	a page-aligned origin): only its alignment matters
 *
 * In this order, which the errnos of gift_mr_atomic() depend on: a write
 * or atomic to read-only memory, then an atomic operand that is not
 * 8-byte aligned in memory (its iova may be, when the MR maps it with
 * another in-page offset). Nothing else a translation may answer
 * (-EAGAIN of an unmapped ODP page) comes before these.
 *
 * Return: 0, -EACCES or -EINVAL.
 */
static inline int gift_mr_mem_allowed(bool writable,
				      enum gift_mr_mem_access access, u64 pos)
{
	if (access != GIFT_MR_MEM_READ && !writable)
		return -EACCES;
	if (access == GIFT_MR_MEM_ATOMIC && !IS_ALIGNED(pos, sizeof(u64)))
		return -EINVAL;
	return 0;
}

/**
 * gift_mr_mem_map() - kernel address of a translated byte
 * @span: translation from a &struct gift_mr_mem_ops span call
 *
 * Context: under the MR's lock, as for the translation; does not sleep.
 *
 * Return: the address; undo with gift_mr_mem_unmap() in reverse order.
 */
static inline void *gift_mr_mem_map(const struct gift_mr_mem_span *span)
{
	if (!span->page)
		return span->kaddr;
	return kmap_local_page(span->page) + span->offset;
}

/**
 * gift_mr_mem_unmap() - end an access begun with gift_mr_mem_map()
 * @span: the translation
 * @va: what gift_mr_mem_map() returned
 * @written: the bytes were written: flush the page from the data cache
 *	for user mappings (a no-op on x86)
 */
static inline void gift_mr_mem_unmap(const struct gift_mr_mem_span *span,
				     void *va, bool written)
{
	if (!span->page)
		return;
	if (written)
		flush_dcache_page(span->page);
	kunmap_local(va);
}

#endif /* GIFT_MR_MEM_H */
