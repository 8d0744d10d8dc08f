/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift user memory: pinning a user address range for the lifetime of
 * a memory region, and where each of its bytes lives for the data path.
 * See gift_umem.c for the design.
 */
#ifndef GIFT_UMEM_H
#define GIFT_UMEM_H

#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sizes.h>
#include <linux/types.h>
#include <rdma/ib_verbs.h>
#include <rdma/gift-abi.h>

#include "gift_mr_mem.h"

/*
 * IB_ACCESS_GIFT - a read-only registration that never breaks copy-on-write
 *
 * The driver's name for the uapi bit IB_UVERBS_ACCESS_GIFT, which lies in
 * ib_core's optional access range: ib_core passes it through to us
 * unchanged, and other drivers ignore it.
 */
#define IB_ACCESS_GIFT		((int)IB_UVERBS_ACCESS_GIFT)
static_assert((IB_ACCESS_GIFT & IB_ACCESS_OPTIONAL) == IB_ACCESS_GIFT);

/*
 * Longest range one umem pins: 256 GiB. Bounds the page array (one
 * pointer per page, kvmalloc'd) well below kvmalloc's INT_MAX limit.
 */
#define GIFT_UMEM_MAX_LEN	(256ULL * SZ_1G)

/**
 * struct gift_umem - a pinned user address range
 * @mm: address space the pages were pinned from; mmgrab()'d so that the
 *	pinned_vm accounting can be undone after the process exited
 * @addr: user address of the first byte (not page aligned)
 * @length: bytes in the range, at least 1
 * @npages: pages pinned, all of [ALIGN_DOWN(addr), PAGE_ALIGN(addr + length))
 * @writable: pinned with FOLL_WRITE; the pages are dirtied on release
 * @gift: registered with IB_ACCESS_GIFT: copy-on-write shared pages are
 *	held by reference instead of being unshared and pinned
 * @nshared: pages held by reference (only a gift umem has any)
 * @shared: bitmap of @npages bits, bit i set when pages[i] is held by a
 *	plain reference (FOLL_GET) rather than a FOLL_PIN pin; NULL when
 *	!@gift
 * @pages: @npages pinned pages, pages[0] holds @addr
 *
 * Immutable from gift_umem_get() to gift_umem_release(), so readers take
 * no lock; keeping the umem alive while it is read is the caller's job.
 */
struct gift_umem {
	struct mm_struct *mm;
	u64 addr;
	u64 length;
	unsigned long npages;
	bool writable;
	bool gift;
	unsigned long nshared;
	unsigned long *shared;
	struct page **pages;
};

/**
 * gift_access_writable() - whether an MR with these access flags is written
 * @access: IB_ACCESS_* flags
 *
 * Local write, remote write and remote atomic let someone write the
 * memory; such a registration is pinned with FOLL_WRITE.
 *
 * Return: true if the registration must be pinned for writing.
 */
static inline bool gift_access_writable(int access)
{
	return access & (IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE |
			 IB_ACCESS_REMOTE_ATOMIC);
}

/**
 * gift_access_gift_ok() - whether a gift registration's access is read-only
 * @access: IB_ACCESS_* flags including IB_ACCESS_GIFT
 *
 * A gift MR may be read (locally, and remotely with IB_ACCESS_REMOTE_READ)
 * and nothing else: anything that lets the device write the pages is
 * refused. IB_ACCESS_MW_BIND is allowed: a window bound to a gift MR may
 * only grant remote read (gift_mr_bind_mw()).
 *
 * Return: true if @access lacks IB_ACCESS_GIFT or is a valid gift access.
 */
static inline bool gift_access_gift_ok(int access)
{
	return !(access & IB_ACCESS_GIFT) ||
	       !(access & (IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_WRITE |
			   IB_ACCESS_REMOTE_ATOMIC));
}

/**
 * gift_umem_check_range() - validate a user range before pinning it
 * @addr: first byte
 * @length: bytes
 *
 * Return: 0, or -EINVAL for an empty range or one that (or whose
 * page-aligned end) wraps around the end of the address space, as
 * ib_umem_get() answers both.
 */
static inline int gift_umem_check_range(u64 addr, u64 length)
{
	u64 end;

	if (!length)
		return -EINVAL;
	if (check_add_overflow(addr, length, &end) ||
	    end > U64_MAX - PAGE_SIZE + 1)
		return -EINVAL;
	return 0;
}

struct gift_umem *gift_umem_get(u64 addr, u64 length, int access);
void gift_umem_release(struct gift_umem *umem);
int gift_umem_stale_pages(struct gift_umem *umem, u64 *stale);
void gift_umem_counts(long *pinned, long *referenced);
int gift_umem_span(const struct gift_umem *umem, u64 offset,
		   enum gift_mr_mem_access access,
		   struct gift_mr_mem_span *span);

#endif /* GIFT_UMEM_H */
