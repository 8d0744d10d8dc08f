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
 * from ib_umem because read-only "gift" registrations (IB_ACCESS_GIFT),
 * which must not break copy-on-write, change how pages are held.
 *
 * Invariants
 * ----------
 * - Every page in pages[0, npages) holds exactly one reference taken by
 *   this umem: a FOLL_PIN pin, or, only in a gift umem and only where
 *   bit i of the shared bitmap is set, a plain FOLL_GET reference.
 *   gift_umem_release() drops each exactly once, the way it was taken.
 *   A failed gift_umem_get() leaves nothing behind: whatever a partial
 *   batch took is released before it returns. The kernel's
 *   nr_foll_pin_acquired and nr_foll_pin_released counters balance once
 *   every umem is released, and so do the module's own counters of
 *   pinned and referenced pages (debugfs rdma_gift/umem_pages); the test
 *   VM checks both after every run.
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
 * A range that is not a gift is pinned with pin_user_pages_fast() in
 * batches of one page worth of page pointers (PAGE_SIZE / sizeof(struct
 * page *) pages), directly into the final page array, with a
 * cond_resched() between batches. An unmapped or PROT_NONE part of the range makes GUP fail with
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
 * is what a gift registration is for.
 *
 * Fork: a pinned private anonymous page is exclusive to the process that
 * pinned it. At fork() the kernel copies such a page into the child
 * right away instead of sharing it copy-on-write; the parent keeps the
 * pinned page mapped, so the parent and the device go on seeing each
 * other's writes, and the child gets a snapshot. Shared mappings stay
 * shared with the child. MADV_DONTFORK is therefore not needed.
 *
 * Gift registrations
 * ------------------
 * A gift MR is read-only, and the application promises not to write the
 * range while it is registered. GUP offers no long-term read-only pin
 * that leaves copy-on-write sharing alone: FOLL_PIN without FOLL_WRITE
 * unshares (gup_must_unshare()) every anonymous page not exclusive to the
 * mm (KSM pages, pages shared with a parent or child after fork) and,
 * with FOLL_LONGTERM, the zero page and page cache in private mappings,
 * because a later write by the process would otherwise leave the pin on
 * a page the process no longer maps. That is exactly the situation a
 * gift registration accepts. So the range is first taken with
 * get_user_pages() and no flags: a plain reference (FOLL_GET), which is
 * never unshared, on the page the range maps right now; unpopulated
 * anonymous memory is read-faulted to the zero page (or huge zero
 * page), allocating nothing. Then each page is classified as
 * gup_must_unshare() would: copy-on-write shared pages keep the plain
 * reference, and every other page (exclusive anonymous pages, shared
 * mappings) trades it for a FOLL_PIN | FOLL_LONGTERM pin, which does not
 * copy them. The classification races with the page tables, harmlessly:
 * a page that was exclusive a moment ago may be unshared by the pin (it
 * costs a page, like any MR), a page that became exclusive keeps its
 * reference (it is the page the range maps).
 *
 * What the device sees: a page held by reference is write-protected in
 * every mapping, so a CPU write gives the writer a new page, and the
 * device keeps reading the registration-time content; the page is then
 * "stale" (gift_umem_stale_pages() counts those). A pinned page is
 * shared by the process and the device, as in any MR. Re-registering
 * the range (rereg with a new translation) takes the current pages.
 *
 * What a plain reference does not do, compared with a pin:
 * - FOLL_LONGTERM is only valid with FOLL_PIN, so GUP neither migrates
 *   referenced pages out of ZONE_MOVABLE or CMA nor refuses mappings
 *   that must not be held long-term. ZONE_MOVABLE pages are therefore
 *   pinned instead: a reference would keep the page from migrating for
 *   the MR's lifetime and so block offlining its memory block, while the
 *   pin migrates it first (and so unshares it: the memory-hotplug
 *   contract wins over the saving). The zero page is exempt: it never
 *   moves, though KASLR may put it inside the zone's range. fsdax
 *   mappings are refused with
 *   -EOPNOTSUPP, as a long-term pin would be. A referenced page in a CMA
 *   area (not detectable by a module: get_pfnblock_flags_mask() is not
 *   exported) stays there, and migration of it fails, until the MR is
 *   deregistered: cma_alloc() over it retries elsewhere or fails, as it
 *   does for any page with a transient extra reference.
 * - The page is not "maybe DMA pinned", so fork() shares it with the
 *   child copy-on-write as usual; that costs nothing and changes nothing
 *   for the device, which keeps reading the page whoever writes. A
 *   pinned exclusive page is copied into the child at fork(), as for any
 *   MR, so the parent keeps sharing it with the device.
 * - Reclaim may unmap a referenced page but cannot free it; it stays in
 *   the swap cache and a later fault maps the same page again.
 * - Copy-on-write must respect the reference. It does for small pages
 *   and THP (wp_can_reuse_anon_folio() checks the refcount, and large
 *   anonymous folios are never reused while shared), but hugetlb_wp()
 *   reuses an anonymous huge page mapped once regardless of references:
 *   fork-shared anonymous hugetlb pages are pinned, and so unshared,
 *   instead (gift_page_by_reference()).
 * - Referenced pages are not in nr_foll_pin_*; the module counts them
 *   itself (gift_umem_counts()).
 * They are held all the same, so they count against RLIMIT_MEMLOCK like
 * pinned pages.
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
 * swap or the file; a read-only umem never dirties its pages, and
 * referenced pages are released with put_page().
 *
 * Locking and contexts
 * --------------------
 * gift_umem_get() and gift_umem_release() run in process context and
 * sleep. gift_umem_span() never sleeps and may be called in any context
 * but NMI, with the umem kept alive by the caller: it tells the MR's
 * accessor layer (gift_mr_mem.c) where a byte lives, and the MR maps and
 * copies.
 */

#include <linux/capability.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "gift_umem.h"

/* Pages pinned per pin_user_pages_fast() call: one page of pointers. */
#define GIFT_UMEM_BATCH		(PAGE_SIZE / sizeof(struct page *))

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

/*
 * Pages held by all umems, for the debugfs file and the tests: pinned with
 * FOLL_PIN, and held by a plain reference (gift umems only).
 */
static atomic_long_t gift_umem_pinned;
static atomic_long_t gift_umem_referenced;

/**
 * gift_umem_counts() - pages currently held by all umems of the module
 * @pinned: set to the pages held with FOLL_PIN
 * @referenced: set to the pages held with a plain reference (FOLL_GET)
 *
 * Both are 0 once every umem is released; anything else is a leak.
 */
void gift_umem_counts(long *pinned, long *referenced)
{
	*pinned = atomic_long_read(&gift_umem_pinned);
	*referenced = atomic_long_read(&gift_umem_referenced);
}

/* Unpins pages[0, npages) in batches, so that huge ranges can reschedule. */
static void gift_umem_unpin(struct page **pages, unsigned long npages,
			    bool dirty)
{
	unsigned long n;

	atomic_long_sub(npages, &gift_umem_pinned);
	while (npages) {
		n = min_t(unsigned long, npages, GIFT_UMEM_BATCH);
		unpin_user_pages_dirty_lock(pages, n, dirty);
		pages += n;
		npages -= n;
		cond_resched();
	}
}

/* Drops the plain references of pages[0, npages); they were never written. */
static void gift_umem_put(struct page **pages, unsigned long npages)
{
	unsigned long i;

	atomic_long_sub(npages, &gift_umem_referenced);
	for (i = 0; i < npages; i++) {
		put_page(pages[i]);
		if (!(i % GIFT_UMEM_BATCH))
			cond_resched();
	}
}

/*
 * Releases the first @held pages of @umem, each as it was taken: a run of
 * bits set in umem->shared by put_page(), a run of clear bits by
 * unpinning.
 */
static void gift_umem_drop(struct gift_umem *umem, unsigned long held)
{
	unsigned long i = 0, end;

	while (i < held) {
		if (umem->shared && test_bit(i, umem->shared)) {
			end = find_next_zero_bit(umem->shared, held, i);
			gift_umem_put(umem->pages + i, end - i);
		} else {
			end = umem->shared ?
			      find_next_bit(umem->shared, held, i) : held;
			gift_umem_unpin(umem->pages + i, end - i,
					umem->writable);
		}
		i = end;
	}
}

/* Pins the whole range with pin_user_pages_fast(): every non-gift umem. */
static int gift_umem_pin_all(struct gift_umem *umem, u64 first,
			     unsigned int gup_flags)
{
	unsigned long done;
	int pinned;

	for (done = 0; done < umem->npages; done += pinned) {
		pinned = pin_user_pages_fast(first + ((u64)done << PAGE_SHIFT),
					     min_t(unsigned long,
						   umem->npages - done,
						   GIFT_UMEM_BATCH),
					     gup_flags, umem->pages + done);
		if (pinned <= 0) {
			/* GUP pins at least one page or fails. */
			gift_umem_drop(umem, done);
			return pinned ? pinned : -EFAULT;
		}
		atomic_long_add(pinned, &gift_umem_pinned);
		cond_resched();
	}
	return 0;
}

/*
 * Whether @page, mapped read-only by @vma, is shared copy-on-write: a
 * read-only long-term pin (FOLL_PIN | FOLL_LONGTERM without FOLL_WRITE)
 * would make GUP replace it by a private copy first. This is the
 * question gup_must_unshare() (mm/internal.h) answers inside GUP: an
 * anonymous page unless it is marked exclusive to this mm (KSM pages
 * never are), and any other page (the shared zero page, the huge zero
 * page, page cache) mapped by a private, possibly writable mapping.
 *
 * The answer can change as soon as the page table lock is dropped (a
 * fork, a KSM merge, the process writing); both ways of being wrong are
 * harmless, see "Gift registrations" at the top of the file.
 */
static bool gift_page_cow_shared(struct vm_area_struct *vma,
				 struct page *page)
{
	struct folio *folio = page_folio(page);

	if (!PageAnon(page))
		return is_cow_mapping(vma->vm_flags);
	if (PageAnonExclusive(page))
		return false;
	/*
	 * A PMD-mapped THP carries the exclusive flag on its first page
	 * only (__folio_add_anon_rmap(), RMAP_LEVEL_PMD), which is the
	 * page GUP checks for any address inside it. The subpage's own
	 * flag counts once the PMD is split. Reading the head's flag for a
	 * PTE-mapped THP can only err towards pinning (GUP then unshares
	 * that one page), never towards a reference on a page the process
	 * writes in place.
	 */
	return !(folio_test_large(folio) && !folio_test_hugetlb(folio) &&
		 PageAnonExclusive(&folio->page));
}

/*
 * Whether a gift umem may hold @page by a plain reference: it must be
 * copy-on-write shared (else a pin costs nothing), outside ZONE_MOVABLE
 * unless it is the zero page (see "Gift registrations"), and not an
 * anonymous hugetlb page.
 *
 * hugetlb_wp() reuses a private anonymous hugetlb folio for a write
 * whenever only one process maps it, without looking at other references
 * (mm/hugetlb.c says as much: "there can still be leaks between
 * processes, for example, with FOLL_GET users"). A referenced huge page
 * shared with a forked child would be written in place by the child once
 * the parent has written its own copy, and the device would read the
 * child's data. Such pages are pinned instead, which unshares them.
 * Page cache pages of a private hugetlbfs file mapping are never reused
 * that way (hugetlb_wp() copies non-anonymous pages) and stay referenced.
 */
static bool gift_page_by_reference(struct vm_area_struct *vma,
				   struct page *page)
{
	struct folio *folio = page_folio(page);

	/* No VMA (a gate page): nothing to classify by; pin it. */
	if (!vma)
		return false;
	if (folio_test_anon(folio) && folio_test_hugetlb(folio))
		return false;
	if (!gift_page_cow_shared(vma, page))
		return false;
	/*
	 * The zero page never moves, wherever it lies: with KASLR the
	 * kernel image, and so the zero page, can land in the range of
	 * ZONE_MOVABLE (folio_is_longterm_pinnable() exempts it as well).
	 */
	return is_zero_folio(folio) || !folio_is_zone_movable(folio);
}

/*
 * Refuses gift registrations of fsdax mappings, as FOLL_LONGTERM does:
 * a plain page reference held for the MR's lifetime would block
 * truncation of the file (the filesystem waits for DAX page references).
 * Holes are left to GUP, which fails with -EFAULT on them.
 */
static int gift_umem_check_vmas(struct mm_struct *mm, u64 start, u64 end)
{
	struct vm_area_struct *vma;
	u64 va;

	for (va = start; va < end; va = vma->vm_end) {
		vma = vma_lookup(mm, va);
		if (!vma)
			return 0;
		if (vma_is_fsdax(vma))
			return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * Takes pages[done, done + n) of a gift umem for the user range at
 * @start, with mmap_lock held for reading: a plain read-only reference
 * on every page first, which never unshares anything, then, for the
 * pages that are not copy-on-write shared, a long-term pin instead.
 * *held counts the pages taken for good, in order, and is what must be
 * released after a failure: the pages past it hold nothing.
 */
static int gift_umem_take_batch(struct gift_umem *umem, u64 start,
				unsigned long n, unsigned long *held)
{
	struct page **pages = umem->pages + *held;
	struct vm_area_struct *vma = NULL;
	unsigned long i, j, end, got;
	long ret;
	int err;

	err = gift_umem_check_vmas(umem->mm, start,
				   start + ((u64)n << PAGE_SHIFT));
	if (err)
		return err;
	ret = get_user_pages(start, n, 0, pages);
	if (ret <= 0)
		return ret ? ret : -EFAULT;
	got = ret;
	atomic_long_add(got, &gift_umem_referenced);

	for (i = 0; i < got; i++) {
		u64 va = start + ((u64)i << PAGE_SHIFT);

		/* GUP found the page; only a gate page lacks a VMA. */
		if (!vma || va >= vma->vm_end)
			vma = vma_lookup(umem->mm, va);
		if (gift_page_by_reference(vma, pages[i]))
			__set_bit(*held + i, umem->shared);
		else
			__clear_bit(*held + i, umem->shared);
	}

	for (i = 0; i < got; i = end) {
		if (test_bit(*held + i, umem->shared)) {
			end = find_next_zero_bit(umem->shared, *held + got,
						 *held + i) - *held;
			umem->nshared += end - i;
			continue;
		}
		end = find_next_bit(umem->shared, *held + got, *held + i) -
		      *held;
		/*
		 * Trade the references of [i, end) for pins. The pin may
		 * find other pages than the references did, if the
		 * mapping changed in between; it is what the range maps
		 * now, and it is exclusive, so the device and the process
		 * share it as they would with any other MR.
		 */
		gift_umem_put(pages + i, end - i);
		for (j = i; j < end; j += ret) {
			ret = pin_user_pages(start + ((u64)j << PAGE_SHIFT),
					     end - j, FOLL_LONGTERM, pages + j);
			if (ret <= 0) {
				/* Past j only references are held. */
				gift_umem_put(pages + end, got - end);
				*held += j;
				return ret ? ret : -EFAULT;
			}
			atomic_long_add(ret, &gift_umem_pinned);
		}
	}
	*held += got;
	return 0;
}

/* Takes the whole range of a gift umem, a batch per mmap_lock hold. */
static int gift_umem_take_gift(struct gift_umem *umem, u64 first)
{
	unsigned long held = 0;
	int err = 0;

	while (held < umem->npages) {
		if (mmap_read_lock_killable(umem->mm)) {
			err = -EINTR;
			break;
		}
		err = gift_umem_take_batch(umem,
					   first + ((u64)held << PAGE_SHIFT),
					   min_t(unsigned long,
						 umem->npages - held,
						 GIFT_UMEM_BATCH),
					   &held);
		mmap_read_unlock(umem->mm);
		if (err)
			break;
		cond_resched();
	}
	if (err)
		gift_umem_drop(umem, held);
	return err;
}

/**
 * gift_umem_get() - pin a user address range of the current process
 * @addr: user address of the first byte; need not be page aligned
 * @length: bytes, at most GIFT_UMEM_MAX_LEN
 * @access: IB_ACCESS_* flags of the registration; only whether it is
 *	writable (gift_access_writable()) and IB_ACCESS_GIFT matter here
 *
 * With IB_ACCESS_GIFT (only valid for a read-only registration, see
 * gift_access_gift_ok(), which the caller checks), pages that are shared
 * copy-on-write are held by reference instead of being unshared.
 *
 * Context: process context; sleeps.
 *
 * Return: the umem, or ERR_PTR() of: -EINVAL for an empty, wrapping or
 * too long range, -EFAULT when part of the range is not mapped, lies
 * beyond the user address space (TASK_SIZE), is not accessible
 * (PROT_NONE, or read-only for a writable registration) or cannot be
 * pinned, or there is no user address space, -EPERM when
 * RLIMIT_MEMLOCK is 0 and the caller lacks CAP_IPC_LOCK, -ENOMEM over
 * RLIMIT_MEMLOCK or out of memory, -EOPNOTSUPP for fsdax, -EINTR on a
 * fatal signal, or another error of GUP.
 */
struct gift_umem *gift_umem_get(u64 addr, u64 length, int access)
{
	struct mm_struct *mm = current->mm;
	struct gift_umem *umem;
	unsigned long npages;
	u64 first;
	int err;

	err = gift_umem_check_range(addr, length);
	if (err)
		return ERR_PTR(err);
	if (length > GIFT_UMEM_MAX_LEN)
		return ERR_PTR(-EINVAL);
	/*
	 * A user range lies below TASK_SIZE: above it GUP would still
	 * serve the gate (vsyscall) page, which has no VMA.
	 */
	if (!mm || addr + length > TASK_SIZE)
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
	umem->gift = access & IB_ACCESS_GIFT;
	umem->mm = mm;
	mmgrab(mm);

	err = gift_umem_account(mm, npages);
	if (err)
		goto out_mmdrop;

	err = -ENOMEM;
	umem->pages = kvcalloc(npages, sizeof(*umem->pages),
			       GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!umem->pages)
		goto out_unaccount;
	if (umem->gift) {
		umem->shared = bitmap_zalloc(npages, GFP_KERNEL_ACCOUNT |
						     __GFP_NOWARN);
		if (!umem->shared)
			goto out_free_pages;
		err = gift_umem_take_gift(umem, first);
	} else {
		err = gift_umem_pin_all(umem, first,
					FOLL_LONGTERM | (umem->writable ?
							 FOLL_WRITE : 0));
	}
	if (err)
		goto out_free_shared;
	return umem;

out_free_shared:
	bitmap_free(umem->shared);
out_free_pages:
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
	gift_umem_drop(umem, umem->npages);
	bitmap_free(umem->shared);
	kvfree(umem->pages);
	gift_umem_unaccount(umem->mm, umem->npages);
	mmdrop(umem->mm);
	kfree(umem);
}

/*
 * Counts, in the batch of @n pages at @start that pages[idx] begins, the
 * pages whose current mapping is not the page the umem holds; a page
 * that cannot be read at all (unmapped, PROT_NONE) counts too. mmap_lock
 * is held; @tmp has room for a batch.
 */
static long gift_umem_stale_batch(struct gift_umem *umem, u64 start,
				  unsigned long idx, unsigned long n,
				  struct page **tmp)
{
	unsigned long done = 0, i, stale = 0;
	long got;

	while (done < n) {
		/* A read fault never allocates: holes read the zero page. */
		got = get_user_pages_remote(umem->mm,
					    start + ((u64)done << PAGE_SHIFT),
					    n - done, 0, tmp, NULL);
		if (got == -EFAULT || !got) {
			stale++;
			done++;
			continue;
		}
		if (got < 0)
			return got;
		for (i = 0; i < got; i++) {
			if (tmp[i] != umem->pages[idx + done + i])
				stale++;
			put_page(tmp[i]);
		}
		done += got;
	}
	return stale;
}

/**
 * gift_umem_stale_pages() - count the pages that no longer back the range
 * @umem: umem, kept alive by the caller
 * @stale: set to the number of pages of @umem whose current mapping in
 *	the address space they were taken from is not the page @umem holds
 *
 * A page becomes stale when the process writes to a page the umem holds
 * by reference (copy-on-write gives the process a new page), or when the
 * range is unmapped or mapped anew. The walk faults pages in for reading
 * only, which allocates nothing for anonymous memory (the zero page is
 * mapped), takes no pin, and leaves the umem as it is. When the address
 * space is gone, every page is stale.
 *
 * Context: process context; sleeps.
 *
 * Return: 0, -ENOMEM, or -EINTR on a fatal signal.
 */
int gift_umem_stale_pages(struct gift_umem *umem, u64 *stale)
{
	u64 first = ALIGN_DOWN(umem->addr, PAGE_SIZE);
	unsigned long done, n;
	struct page **tmp;
	long ret = 0;

	*stale = 0;
	if (!mmget_not_zero(umem->mm)) {
		*stale = umem->npages;
		return 0;
	}
	tmp = kmalloc_array(GIFT_UMEM_BATCH, sizeof(*tmp), GFP_KERNEL);
	if (!tmp) {
		ret = -ENOMEM;
		goto out_mmput;
	}
	for (done = 0; done < umem->npages; done += n) {
		n = min_t(unsigned long, umem->npages - done,
			  GIFT_UMEM_BATCH);
		if (mmap_read_lock_killable(umem->mm)) {
			ret = -EINTR;
			break;
		}
		ret = gift_umem_stale_batch(umem,
					    first + ((u64)done << PAGE_SHIFT),
					    done, n, tmp);
		mmap_read_unlock(umem->mm);
		if (ret < 0)
			break;
		*stale += ret;
		ret = 0;
		cond_resched();
	}
	kfree(tmp);
out_mmput:
	mmput(umem->mm);
	return ret;
}

/**
 * gift_umem_span() - where a byte of pinned user memory lives
 * @umem: pinned range, kept alive by the caller
 * @offset: offset of the byte from @umem->addr
 * @access: what the caller will do with it
 * @span: set to the page holding the byte, its offset there and the
 *	bytes left in the page
 *
 * Writing is refused unless the pages were pinned for writing: the MR
 * access checks should have stopped the caller already, but a read-only
 * pin must never be written (it may be a copy-on-write shared page).
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EFAULT when @offset is not inside the umem; -EACCES or
 * -EINVAL as gift_mr_mem_allowed() answers.
 */
int gift_umem_span(const struct gift_umem *umem, u64 offset,
		   enum gift_mr_mem_access access,
		   struct gift_mr_mem_span *span)
{
	u64 pos = offset_in_page(umem->addr) + offset;
	int err;

	if (offset >= umem->length)
		return -EFAULT;
	err = gift_mr_mem_allowed(umem->writable, access, pos);
	if (err)
		return err;
	span->page = umem->pages[pos >> PAGE_SHIFT];
	span->offset = offset_in_page(pos);
	span->len = PAGE_SIZE - span->offset;
	return 0;
}
