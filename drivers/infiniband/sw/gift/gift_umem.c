// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift user memory: a struct gift_umem pins the pages behind a user
 * address range [addr, addr + length) for as long as a memory region
 * needs them, and gives the data path CPU access to them.
 *
 * This is rdma_gift's own version of what ib_umem_get() does for drivers
 * with a DMA device. The device has none (ib_core stores kernel virtual
 * addresses in its scatterlists), so nothing is DMA mapped: the data path
 * copies to and from the pinned pages with the CPU. It is kept separate
 * from ib_umem because read-only "gift" registrations, which must not
 * break copy-on-write, will change exactly how pages are pinned here.
 *
 * Invariants
 * ----------
 * - Every page in pages[0, npages) holds exactly one FOLL_PIN reference
 *   taken by this umem, and gift_umem_release() drops each exactly once.
 *   A failed gift_umem_get() leaves no pin behind: whatever a partial
 *   batch pinned is unpinned before it returns. The kernel's
 *   nr_foll_pin_acquired and nr_foll_pin_released counters balance once
 *   every umem is released; the test VM checks that after every run.
 * - A umem never changes after gift_umem_get() returns. Replacing the
 *   translation of an MR (rereg) builds a new umem and releases the old
 *   one once no reader can be using it; that exclusion is the MR's job
 *   (gift_mr.c), not the umem's.
 * - pages[i] backs the user page ALIGN_DOWN(addr, PAGE_SIZE) + i *
 *   PAGE_SIZE as it was mapped at registration time. Later changes to the
 *   process's page tables (munmap, mremap, a new mmap over the range) are
 *   not seen: the device keeps using the pinned pages, as with ib_umem.
 *
 * Pinning
 * -------
 * The range is pinned with pin_user_pages_fast() in batches of one page
 * worth of page pointers (PAGE_SIZE / sizeof(struct page *) pages),
 * directly into the final page array, with a cond_resched() between
 * batches. An unmapped or PROT_NONE part of the range makes GUP fail with
 * -EFAULT, and so do a writable pin of a read-only mapping, VM_IO/VM_PFNMAP
 * mappings, and a writable long-term pin of a shared file mapping that
 * needs dirty tracking (only shmem and hugetlbfs may be pinned writable
 * when shared); fsdax mappings fail with -EOPNOTSUPP.
 *
 * FOLL_LONGTERM: the pin lasts until the MR is destroyed, which user space
 * controls, so GUP first migrates the pages out of ZONE_MOVABLE and CMA
 * (whose pages must stay migratable for memory hot-unplug and contiguous
 * allocations) and refuses mappings whose pages must not be written behind
 * the filesystem's back for an unbounded time.
 *
 * FOLL_WRITE is used when anyone may write the memory through the MR
 * (local write, remote write, remote atomic): GUP then breaks
 * copy-on-write first, so that the process and the device share the one
 * page the process writes to. The zero page, KSM pages, pages shared
 * with a parent or child after fork and the page cache behind a
 * MAP_PRIVATE file mapping are all replaced by a private anonymous copy
 * before they are pinned. A registration nobody may write is pinned
 * without FOLL_WRITE, as ib_umem does today; for private anonymous memory
 * GUP then still unshares COW-shared pages (FAULT_FLAG_UNSHARE) so that a
 * later write by the process cannot leave the device with a stale copy,
 * which costs a page of RAM per zero-page or KSM page. Avoiding that cost
 * is what the gift registration flag will change here.
 *
 * Fork: a pinned private anonymous page is exclusive to the process that
 * pinned it. At fork() the kernel copies such a page into the child
 * right away instead of sharing it copy-on-write; the parent keeps the
 * pinned page mapped, so the parent and the device go on seeing each
 * other's writes, and the child gets a snapshot. Shared mappings stay
 * shared with the child. MADV_DONTFORK is therefore not needed.
 *
 * Accounting
 * ----------
 * As ib_umem: the pages count against RLIMIT_MEMLOCK of the registering
 * task in mm->pinned_vm (not locked_vm). The pages are added to
 * pinned_vm with atomic64_add_return() before pinning, so two
 * registrations racing each other cannot both pass the limit; over the
 * limit, without CAP_IPC_LOCK, the registration fails with -ENOMEM and
 * the pages are subtracted again. A zero limit without CAP_IPC_LOCK fails
 * with -EPERM (can_do_mlock()). The mm is mmgrab()'d, so the
 * subtraction at release works even when the registering process has
 * exited (the uverbs file may be closed by another process, or the
 * objects destroyed on device removal). The page array is charged to the
 * memory cgroup (GFP_KERNEL_ACCOUNT).
 *
 * Release unpins with unpin_user_pages_dirty_lock(), marking the pages
 * dirty when the umem was writable so that the device's writes reach
 * swap or the file; a read-only umem never dirties its pages.
 *
 * Locking and contexts
 * --------------------
 * gift_umem_get() and gift_umem_release() run in process context and
 * sleep. gift_umem_copy() and gift_umem_atomic() never sleep (pages are
 * mapped with kmap_local_page()) and may be called in any context but
 * NMI, with the umem kept alive by the caller. gift_atomic_lock
 * serialises every atomic operation of every gift device; it is a leaf
 * lock, taken with interrupts disabled.
 */

#include <linux/capability.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "gift_umem.h"

/* Pages pinned per pin_user_pages_fast() call: one page of pointers. */
#define GIFT_UMEM_BATCH		(PAGE_SIZE / sizeof(struct page *))

/*
 * Serialises the 8-byte atomic operations of all gift devices, so that
 * they are atomic with respect to each other (IB_ATOMIC_HCA semantics),
 * not with respect to CPU accesses of the application.
 */
static DEFINE_SPINLOCK(gift_atomic_lock);

/* Adds npages to mm->pinned_vm, within RLIMIT_MEMLOCK unless privileged. */
static int gift_umem_account(struct mm_struct *mm, unsigned long npages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	u64 pinned;

	pinned = atomic64_add_return(npages, &mm->pinned_vm);
	if (pinned > limit && !capable(CAP_IPC_LOCK)) {
		atomic64_sub(npages, &mm->pinned_vm);
		return -ENOMEM;
	}
	return 0;
}

static void gift_umem_unaccount(struct mm_struct *mm, unsigned long npages)
{
	atomic64_sub(npages, &mm->pinned_vm);
}

/* Unpins pages[0, npages) in batches, so that huge ranges can reschedule. */
static void gift_umem_unpin(struct page **pages, unsigned long npages,
			    bool dirty)
{
	unsigned long n;

	while (npages) {
		n = min_t(unsigned long, npages, GIFT_UMEM_BATCH);
		unpin_user_pages_dirty_lock(pages, n, dirty);
		pages += n;
		npages -= n;
		cond_resched();
	}
}

/**
 * gift_umem_get() - pin a user address range of the current process
 * @addr: user address of the first byte; need not be page aligned
 * @length: bytes, at most GIFT_UMEM_MAX_LEN
 * @access: IB_ACCESS_* flags of the registration; only whether it is
 *	writable (gift_access_writable()) matters here
 *
 * Context: process context; sleeps.
 *
 * Return: the umem, or ERR_PTR() of: -EINVAL for an empty or too long
 * range, -EOVERFLOW for a range wrapping the address space, -EFAULT when
 * part of the range is not mapped, not accessible (PROT_NONE, or
 * read-only for a writable registration) or cannot be pinned, or there
 * is no user address space, -EPERM when RLIMIT_MEMLOCK is 0 and the
 * caller lacks CAP_IPC_LOCK, -ENOMEM over RLIMIT_MEMLOCK or out of
 * memory, or another error of pin_user_pages_fast() (-EOPNOTSUPP for
 * fsdax, -EINTR or -ERESTARTSYS on a fatal signal).
 */
struct gift_umem *gift_umem_get(u64 addr, u64 length, int access)
{
	unsigned int gup_flags = FOLL_LONGTERM;
	struct mm_struct *mm = current->mm;
	unsigned long npages, done;
	struct gift_umem *umem;
	u64 first, cur;
	int pinned, err;

	err = gift_umem_check_range(addr, length);
	if (err)
		return ERR_PTR(err);
	if (length > GIFT_UMEM_MAX_LEN)
		return ERR_PTR(-EINVAL);
	/* A user range must fit unsigned long (32-bit kernels). */
	if (!mm || (unsigned long)(addr + length - 1) != addr + length - 1)
		return ERR_PTR(-EFAULT);
	if (!can_do_mlock())
		return ERR_PTR(-EPERM);

	first = ALIGN_DOWN(addr, PAGE_SIZE);
	npages = (PAGE_ALIGN(addr + length) - first) >> PAGE_SHIFT;

	umem = kzalloc(sizeof(*umem), GFP_KERNEL_ACCOUNT);
	if (!umem)
		return ERR_PTR(-ENOMEM);
	umem->addr = addr;
	umem->length = length;
	umem->npages = npages;
	umem->writable = gift_access_writable(access);
	umem->mm = mm;
	mmgrab(mm);

	err = gift_umem_account(mm, npages);
	if (err)
		goto out_mmdrop;

	umem->pages = kvcalloc(npages, sizeof(*umem->pages),
			       GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!umem->pages) {
		err = -ENOMEM;
		goto out_unaccount;
	}

	if (umem->writable)
		gup_flags |= FOLL_WRITE;

	for (done = 0, cur = first; done < npages; done += pinned) {
		pinned = pin_user_pages_fast(cur,
					     min_t(unsigned long,
						   npages - done,
						   GIFT_UMEM_BATCH),
					     gup_flags, umem->pages + done);
		if (pinned <= 0) {
			/* GUP pins at least one page or fails. */
			err = pinned ? pinned : -EFAULT;
			goto out_unpin;
		}
		cur += (u64)pinned << PAGE_SHIFT;
		cond_resched();
	}
	return umem;

out_unpin:
	gift_umem_unpin(umem->pages, done, false);
	kvfree(umem->pages);
out_unaccount:
	gift_umem_unaccount(mm, npages);
out_mmdrop:
	mmdrop(mm);
	kfree(umem);
	return ERR_PTR(err);
}

/**
 * gift_umem_release() - unpin and free a umem
 * @umem: umem from gift_umem_get(), no longer read by anyone; may be NULL
 *
 * Dirties the pages of a writable umem, undoes the RLIMIT_MEMLOCK
 * accounting in the mm the pages were pinned from (whichever process
 * calls this) and drops the reference on that mm.
 *
 * Context: process context; sleeps.
 */
void gift_umem_release(struct gift_umem *umem)
{
	if (!umem)
		return;
	gift_umem_unpin(umem->pages, umem->npages, umem->writable);
	kvfree(umem->pages);
	gift_umem_unaccount(umem->mm, umem->npages);
	mmdrop(umem->mm);
	kfree(umem);
}

/**
 * gift_umem_copy() - copy between a kernel buffer and pinned user pages
 * @umem: pinned range, kept alive by the caller
 * @offset: offset of the first byte from @umem->addr
 * @buf: kernel buffer of @len bytes
 * @len: bytes to copy; 0 is allowed
 * @to_umem: true to copy @buf into the umem, false to copy out of it
 *
 * Each page is mapped with kmap_local_page() for the duration of its
 * memcpy(). Writing into a read-only umem is the caller's bug (the MR
 * access checks prevent it) and is not caught here.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0, or -EFAULT when [@offset, @offset + @len) is not inside the
 * umem.
 */
int gift_umem_copy(struct gift_umem *umem, u64 offset, void *buf, size_t len,
		   bool to_umem)
{
	unsigned long idx;
	unsigned int in;
	size_t n;
	void *va;
	u64 pos;

	if (offset > umem->length || len > umem->length - offset)
		return -EFAULT;

	pos = offset_in_page(umem->addr) + offset;
	idx = pos >> PAGE_SHIFT;
	in = offset_in_page(pos);
	while (len) {
		n = min_t(size_t, len, PAGE_SIZE - in);
		va = kmap_local_page(umem->pages[idx]);
		if (to_umem) {
			memcpy(va + in, buf, n);
			flush_dcache_page(umem->pages[idx]);
		} else {
			memcpy(buf, va + in, n);
		}
		kunmap_local(va);
		buf += n;
		len -= n;
		idx++;
		in = 0;
	}
	return 0;
}

/**
 * gift_atomic64() - one 8-byte atomic operation on kernel-mapped memory
 * @va: 8-byte aligned kernel address
 * @op: operation
 * @compare_add: compare value (GIFT_ATOMIC_CMP_SWAP) or addend
 *	(GIFT_ATOMIC_FETCH_ADD)
 * @swap: value stored by a successful compare & swap; unused by fetch & add
 *
 * The operation runs under gift_atomic_lock, which every atomic of every
 * gift device takes: the operations are atomic with respect to each other
 * (what IB_ATOMIC_HCA promises), not with respect to plain CPU accesses.
 * Values are in host byte order.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: the value at @va before the operation.
 */
u64 gift_atomic64(u64 *va, enum gift_atomic_op op, u64 compare_add, u64 swap)
{
	unsigned long flags;
	u64 orig;

	spin_lock_irqsave(&gift_atomic_lock, flags);
	orig = READ_ONCE(*va);
	if (op == GIFT_ATOMIC_FETCH_ADD)
		WRITE_ONCE(*va, orig + compare_add);
	else if (orig == compare_add)
		WRITE_ONCE(*va, swap);
	spin_unlock_irqrestore(&gift_atomic_lock, flags);
	return orig;
}

/**
 * gift_umem_atomic() - 8-byte atomic operation on pinned user memory
 * @umem: pinned range, kept alive by the caller; must be writable
 * @offset: offset of the operand from @umem->addr
 * @op: operation
 * @compare_add: compare value or addend, see gift_atomic64()
 * @swap: swap value, see gift_atomic64()
 * @orig: set to the operand's value before the operation
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0, -EFAULT when the 8 bytes are not inside the umem, or -EINVAL
 * when the operand's user address is not 8-byte aligned.
 */
int gift_umem_atomic(struct gift_umem *umem, u64 offset,
		     enum gift_atomic_op op, u64 compare_add, u64 swap,
		     u64 *orig)
{
	struct page *page;
	void *va;
	u64 pos;

	if (offset > umem->length || sizeof(u64) > umem->length - offset)
		return -EFAULT;
	pos = offset_in_page(umem->addr) + offset;
	/* Aligned, the operand cannot straddle two pages. */
	if (!IS_ALIGNED(pos, sizeof(u64)))
		return -EINVAL;

	page = umem->pages[pos >> PAGE_SHIFT];
	va = kmap_local_page(page);
	*orig = gift_atomic64(va + offset_in_page(pos), op, compare_add, swap);
	flush_dcache_page(page);
	kunmap_local(va);
	return 0;
}
