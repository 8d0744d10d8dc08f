// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift on-demand paging (ODP): memory regions that pin nothing.
 *
 * An ODP MR (IB_ACCESS_ON_DEMAND) keeps its own page table, struct
 * gift_odp.entries, one word per page of the user range: the struct page
 * the process maps there, or nothing. The data path copies through
 * present entries only; a missing (or, for a write, read-only) entry
 * makes the copy fail with -EAGAIN, and the engine asks for a fault
 * (gift_proto_fault()), which runs gift_odp_fault() in process context
 * and then runs the engine again. The mm tells us, through an
 * mmu_interval_notifier on the MR's range, whenever a page is about to
 * be unmapped, write-protected or moved, and the entries go.
 *
 * No page is held: an entry is valid because the mm must call
 * gift_odp_invalidate() before the page leaves the process's page
 * tables, and the invalidation cannot finish while a copy uses it.
 *
 * Entries
 * -------
 * struct page pointers are at least 8-byte aligned; the low bits say:
 *   GIFT_ODP_PRESENT  the page is mapped for device reads
 *   GIFT_ODP_WRITE    ... and writes (the CPU mapping was writable and
 *                     the MR is writable)
 *   GIFT_ODP_DIRTY    the device wrote the page since it was mapped
 *
 * Locking: the MR's rwlock (struct gift_mr.lock, taken with interrupts
 * disabled) protects the entries. Copies and atomics hold it shared, for
 * at most a page's worth of bytes (gift_mr_copy()), and find pages
 * through gift_odp_span() (the MR's accessor layer, gift_mr_mem.c);
 * faults install and invalidations remove entries holding it
 * exclusively. GIFT_ODP_DIRTY is the one bit set under the shared lock,
 * with an atomic set_bit() by gift_odp_span() for a write; nothing
 * clears it then. @fault_mutex serialises the faults of one MR and the
 * MR's teardown. Lock order: fault_mutex, then mmap_lock (read), then the
 * MR's lock; the invalidation callback is entered with whatever the mm
 * holds and takes only the MR's lock.
 *
 * The retry protocol (Documentation/mm/hmm.rst)
 * ---------------------------------------------
 *   fault:                              invalidation (mm):
 *   seq = mmu_interval_read_begin()
 *   hmm_range_fault() under mmap_lock   [seq of the interval goes odd]
 *                                       write_lock(MR)
 *                                       mmu_interval_set_seq()
 *                                       clear the entries, collect dirty
 *                                       write_unlock(MR)
 *   write_lock(MR)                      dirty the collected pages
 *   mmu_interval_read_retry(seq)?       return; the mm unmaps the pages
 *     yes: unlock, start again
 *     no:  install the pages
 *   write_unlock(MR)
 *
 * mmu_interval_read_retry() is true when an invalidation of the range
 * began after mmu_interval_read_begin(), or is still running, so pages
 * that hmm_range_fault() returned are installed only if no invalidation
 * overlapped the fault; one that starts after the install finds them in
 * the entries and removes them. An MR registered while an invalidation
 * of its range is running gets a sequence number that
 * mmu_interval_read_begin() makes wait for that invalidation to end
 * (mmu_interval_notifier_insert() and the interval tree's deferred
 * insertion), so a registration can never miss it (seed 004).
 *
 * The invalidation never sleeps: the write lock waits at most for one
 * page's memcpy() of each reader, and the page table is cleared in
 * batches. So it serves non-blockable ranges (the OOM reaper) as well
 * and always returns true.
 *
 * Dirtying
 * --------
 * A page the device wrote has GIFT_ODP_DIRTY. When its entry is removed
 * (invalidation, or the MR's teardown) under the exclusive lock, a
 * reference is taken on it and it is marked dirty (set_page_dirty())
 * after the lock is dropped, since set_page_dirty() takes the mapping's
 * locks, which must not nest inside a lock the softirq data path takes.
 * The entry is cleared under the exclusive lock, so concurrent
 * invalidations never dirty a page twice, and a page whose entry is gone
 * is never dirtied at all. Device writes into a file's MAP_SHARED page
 * thus reach the file once the page is written back.
 *
 * Implicit ODP
 * ------------
 * An MR over the whole address space (addr 0, length U64_MAX) is a root
 * without page table or notifier: its children, one leaf struct gift_odp
 * per 2 MiB chunk (GIFT_ODP_CHUNK), are created by the first fault in
 * their chunk, each with its own interval notifier and 512 entries. The
 * data path finds a leaf with xa_load() under the MR's lock; no leaf
 * means -EAGAIN, like a missing entry. Faults of an implicit MR are
 * serialised by the root's fault_mutex, which also guards the children
 * array's writers. A leaf that an munmap (MMU_NOTIFY_UNMAP) left without
 * a mapped page is marked and the root's reaper (a work item) frees it
 * if nothing was faulted into it since; so is a leaf the device has not
 * used for gift_odp_leaf_idle_ms (the root's idle work, queued while it
 * has leaves). Freeing: erased from the array, then the MR's lock is
 * taken exclusively once (no copy still holds the leaf after that), and
 * it is stopped like an MR. The array's own lock is never taken under the
 * MR's lock (it is not irq-safe). The memory an implicit MR costs thus
 * follows what the process maps and the device uses, not the address
 * space.
 *
 * Memory: no page is pinned, so nothing counts against RLIMIT_MEMLOCK;
 * the page table (8 bytes a page) is charged to the memory cgroup.
 */

#include <linux/hmm.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "gift.h"

#define GIFT_ODP_PRESENT	BIT(0)
#define GIFT_ODP_WRITE		BIT(1)
#define GIFT_ODP_DIRTY_BIT	2
#define GIFT_ODP_DIRTY		BIT(GIFT_ODP_DIRTY_BIT)
#define GIFT_ODP_FLAGS		(GIFT_ODP_PRESENT | GIFT_ODP_WRITE | \
				 GIFT_ODP_DIRTY)
static_assert(__alignof__(struct page) > GIFT_ODP_FLAGS);

/* Pages faulted per hmm_range_fault() call: one page of pfns. */
#define GIFT_ODP_BATCH		(PAGE_SIZE / sizeof(unsigned long))
/* Dirty pages collected per exclusive hold while clearing entries. */
#define GIFT_ODP_DIRTY_BATCH	32

/*
 * Faults for the engine (gift_proto_fault()) and asynchronous prefetches
 * run here: unbound, since a fault may sleep for swap-in or I/O.
 */
static struct workqueue_struct *gift_odp_wq;

/*
 * debugfs rdma_gift/odp_fault_delay_ms: every fault the engine waits for
 * sleeps this long first. For tests of how a peer rides out a fault that
 * outlasts its ACK timeout (swap-in from a slow disk); 0 in production.
 */
u32 gift_odp_fault_delay_ms;

/*
 * debugfs rdma_gift/odp_leaf_idle_ms: a leaf of an implicit MR that the
 * device has not used for this long is freed (its pages unmapped from the
 * device, dirtied if written); 0 keeps idle leaves.
 */
u32 gift_odp_leaf_idle_ms = 60000;

/**
 * gift_odp_init() - module init: the fault workqueue
 *
 * Return: 0 or -ENOMEM.
 */
int gift_odp_init(void)
{
	gift_odp_wq = alloc_workqueue("gift_odp", WQ_UNBOUND, 0);
	return gift_odp_wq ? 0 : -ENOMEM;
}

/**
 * gift_odp_exit() - module exit: nothing can queue work any more
 */
void gift_odp_exit(void)
{
	destroy_workqueue(gift_odp_wq);
}

/**
 * gift_odp_queue() - run a fault or prefetch work item
 * @work: the work
 */
void gift_odp_queue(struct work_struct *work)
{
	queue_work(gift_odp_wq, work);
}

/**
 * gift_odp_flush() - wait for every queued fault and prefetch
 *
 * A device's MRs are all freed after this (dealloc_driver): the work
 * items hold MR references.
 *
 * Context: process context; sleeps.
 */
void gift_odp_flush(void)
{
	flush_workqueue(gift_odp_wq);
}

static struct page *gift_odp_page(unsigned long entry)
{
	return (struct page *)(entry & ~GIFT_ODP_FLAGS);
}

/* Counts @n of device counter @c and of the MR's counter @st. */
static void gift_odp_count(struct gift_odp *odp, enum gift_counter c,
			   enum gift_odp_stat st, u64 n)
{
	struct gift_odp *top = odp->parent ?: odp;

	gift_stats_add(odp->gdev, c, n);
	atomic64_add(n, &top->stats[st]);
}

/*
 * Clears entries [first, last] in batches. Each batch runs under the
 * exclusive lock; pages the device dirtied are referenced there and
 * marked dirty after the lock is dropped. @seq, when not 0, is the
 * invalidation's sequence number, recorded under the first hold.
 * Returns the number of present entries cleared.
 */
static unsigned long gift_odp_clear(struct gift_odp *odp, unsigned long first,
				    unsigned long last, unsigned long seq)
{
	struct page *dirty[GIFT_ODP_DIRTY_BATCH];
	unsigned long i = first, cleared = 0, flags, e;
	unsigned int ndirty, j, budget;

	do {
		ndirty = 0;
		budget = GIFT_ODP_BATCH;
		write_lock_irqsave(odp->lock, flags);
		if (seq) {
			mmu_interval_set_seq(&odp->notifier, seq);
			seq = 0;
		}
		for (; i <= last && budget && ndirty < GIFT_ODP_DIRTY_BATCH;
		     i++, budget--) {
			e = odp->entries[i];
			if (!(e & GIFT_ODP_PRESENT))
				continue;
			odp->entries[i] = 0;
			odp->npresent--;
			cleared++;
			if (e & GIFT_ODP_DIRTY) {
				/* Mapped until we return: alive. */
				get_page(gift_odp_page(e));
				dirty[ndirty++] = gift_odp_page(e);
			}
		}
		write_unlock_irqrestore(odp->lock, flags);
		for (j = 0; j < ndirty; j++) {
			set_page_dirty(dirty[j]);
			put_page(dirty[j]);
		}
	} while (i <= last);
	return cleared;
}

/*
 * mmu_interval_notifier_ops.invalidate: the mm is about to change the
 * mapping of [range->start, range->end); drop the device's view of the
 * part inside the MR. Never sleeps; see the file comment.
 */
static bool gift_odp_invalidate(struct mmu_interval_notifier *mni,
				const struct mmu_notifier_range *range,
				unsigned long cur_seq)
{
	struct gift_odp *odp = container_of(mni, struct gift_odp, notifier);
	u64 base = ALIGN_DOWN(odp->addr, PAGE_SIZE);
	u64 start = max_t(u64, range->start, base);
	u64 end = min_t(u64, range->end,
			base + ((u64)odp->npages << PAGE_SHIFT));
	unsigned long n;

	if (start >= end) {
		/* Still record the sequence, as the notifier requires. */
		unsigned long flags;

		write_lock_irqsave(odp->lock, flags);
		mmu_interval_set_seq(mni, cur_seq);
		write_unlock_irqrestore(odp->lock, flags);
		return true;
	}
	n = gift_odp_clear(odp, (start - base) >> PAGE_SHIFT,
			   ((end - base) >> PAGE_SHIFT) - 1, cur_seq);
	gift_odp_count(odp, GIFT_CNT_ODP_INVALIDATIONS,
		       GIFT_ODP_STAT_INVALIDATIONS, 1);
	gift_odp_count(odp, GIFT_CNT_ODP_PAGES_INVALIDATED,
		       GIFT_ODP_STAT_PAGES_INVALIDATED, n);
	/* A leaf of an implicit MR that munmap emptied: free it. */
	if (odp->parent && range->event == MMU_NOTIFY_UNMAP &&
	    !READ_ONCE(odp->npresent)) {
		WRITE_ONCE(odp->unmapped, true);
		gift_odp_queue(&odp->parent->reap);
	}
	return true;
}

static const struct mmu_interval_notifier_ops gift_odp_ops = {
	.invalidate = gift_odp_invalidate,
};

/*
 * Sets up @odp as a leaf: an empty page table over [addr, addr + length)
 * of @mm, in the interval tree. 0, -ENOMEM or the notifier's error.
 */
static int gift_odp_init_leaf(struct gift_odp *odp, struct mm_struct *mm,
			      u64 addr, u64 length)
{
	u64 first = ALIGN_DOWN(addr, PAGE_SIZE);
	int err;

	odp->addr = addr;
	odp->length = length;
	odp->npages = (PAGE_ALIGN(addr + length) - first) >> PAGE_SHIFT;
	odp->entries = kvcalloc(odp->npages, sizeof(*odp->entries),
				GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	if (!odp->entries)
		return -ENOMEM;
	err = mmu_interval_notifier_insert(&odp->notifier, mm, first,
					   (u64)odp->npages << PAGE_SHIFT,
					   &gift_odp_ops);
	if (err) {
		kvfree(odp->entries);
		odp->entries = NULL;
	}
	return err;
}

static void gift_odp_reap(struct work_struct *work);
static void gift_odp_idle(struct work_struct *work);

/**
 * gift_odp_create() - an empty device page table over a user range
 * @gdev: device, for the counters
 * @lock: the MR's lock, which will protect the page table
 * @addr: user address of the first byte, in the current process; 0 with
 *	@length U64_MAX for an implicit MR (the whole address space)
 * @length: bytes; checked by the caller (gift_umem_check_range(), at
 *	most GIFT_UMEM_MAX_LEN) unless implicit
 * @access: IB_ACCESS_* of the MR; only gift_access_writable() matters
 *
 * Maps nothing and pins nothing: pages come with faults.
 *
 * Context: process context; sleeps.
 *
 * Return: the page table, or ERR_PTR(): -EFAULT for a range beyond the
 * user address space or without an address space, -ENOMEM.
 */
struct gift_odp *gift_odp_create(struct gift_dev *gdev, rwlock_t *lock,
				 u64 addr, u64 length, int access)
{
	bool implicit = !addr && length == U64_MAX;
	struct gift_odp *odp;
	int err;

	if (!current->mm || (!implicit && addr + length > TASK_SIZE))
		return ERR_PTR(-EFAULT);
	odp = kzalloc(sizeof(*odp), GFP_KERNEL_ACCOUNT);
	if (!odp)
		return ERR_PTR(-ENOMEM);
	odp->gdev = gdev;
	odp->lock = lock;
	odp->writable = gift_access_writable(access);
	if (implicit) {
		/* The root's mutex: its own lockdep class, above leaves'. */
		mutex_init(&odp->fault_mutex);
		odp->implicit = true;
		odp->addr = 0;
		odp->length = U64_MAX;
		xa_init(&odp->children);
		INIT_WORK(&odp->reap, gift_odp_reap);
		INIT_DELAYED_WORK(&odp->idle, gift_odp_idle);
		odp->mm = current->mm;
		mmgrab(odp->mm);
		return odp;
	}
	mutex_init(&odp->fault_mutex);
	err = gift_odp_init_leaf(odp, current->mm, addr, length);
	if (err) {
		mutex_destroy(&odp->fault_mutex);
		kfree(odp);
		return ERR_PTR(err);
	}
	return odp;
}

/* Queues the idle work of @root, if it is not queued; under its mutex. */
static void gift_odp_arm_idle(struct gift_odp *root)
{
	u32 ms = READ_ONCE(gift_odp_leaf_idle_ms);

	lockdep_assert_held(&root->fault_mutex);
	if (ms && !root->dead)
		queue_delayed_work(gift_odp_wq, &root->idle,
				   msecs_to_jiffies(ms));
}

/* The leaf of implicit @root at address @va, or NULL; marks it used. */
static struct gift_odp *gift_odp_child(struct gift_odp *root, u64 va)
{
	struct gift_odp *leaf = xa_load(&root->children,
					va >> GIFT_ODP_CHUNK_SHIFT);
	unsigned long now = jiffies;

	/* A store only when the tick changed: the line stays shared. */
	if (leaf && READ_ONCE(leaf->last_use) != now)
		WRITE_ONCE(leaf->last_use, now);
	return leaf;
}

/*
 * The leaf of @root for chunk @idx, created (empty) if there is none;
 * under the root's fault_mutex, with its mm held. ERR_PTR() on failure.
 */
static struct gift_odp *gift_odp_leaf(struct gift_odp *root, unsigned long idx)
{
	struct gift_odp *leaf;
	int err;

	lockdep_assert_held(&root->fault_mutex);
	leaf = xa_load(&root->children, idx);
	if (leaf) {
		WRITE_ONCE(leaf->last_use, jiffies);
		return leaf;
	}
	if (((u64)idx + 1) << GIFT_ODP_CHUNK_SHIFT > TASK_SIZE)
		return ERR_PTR(-EFAULT);
	leaf = kzalloc(sizeof(*leaf), GFP_KERNEL_ACCOUNT);
	if (!leaf)
		return ERR_PTR(-ENOMEM);
	leaf->gdev = root->gdev;
	leaf->lock = root->lock;
	leaf->writable = root->writable;
	leaf->parent = root;
	leaf->last_use = jiffies;
	mutex_init(&leaf->fault_mutex);
	err = gift_odp_init_leaf(leaf, root->mm,
				 (u64)idx << GIFT_ODP_CHUNK_SHIFT,
				 GIFT_ODP_CHUNK);
	if (!err) {
		/* Published complete: xa_store() orders the stores above. */
		err = xa_err(xa_store(&root->children, idx, leaf,
				      GFP_KERNEL_ACCOUNT));
		if (err) {
			mmu_interval_notifier_remove(&leaf->notifier);
			kvfree(leaf->entries);
		}
	}
	if (err) {
		mutex_destroy(&leaf->fault_mutex);
		kfree(leaf);
		return ERR_PTR(err);
	}
	gift_odp_arm_idle(root);
	return leaf;
}

/* Stops a leaf: no fault after this, nothing mapped, out of the tree. */
static void gift_odp_stop_leaf(struct gift_odp *odp)
{
	mutex_lock(&odp->fault_mutex);
	odp->dead = true;
	mutex_unlock(&odp->fault_mutex);
	/* Before leaving the tree: only then is a present page mapped. */
	gift_odp_clear(odp, 0, odp->npages - 1, 0);
	mmu_interval_notifier_remove(&odp->notifier);
	kvfree(odp->entries);
	odp->entries = NULL;
}

/*
 * Frees the leaves of @root whose chunk was unmapped and that nothing was
 * faulted into since, and with @idle (jiffies, 0: none) those the device
 * has not used for that long. Under the root's fault_mutex.
 */
static void gift_odp_reap_leaves(struct gift_odp *root, unsigned long idle)
{
	struct gift_odp *leaf;
	unsigned long idx, flags;
	bool gone;

	lockdep_assert_held(&root->fault_mutex);
	xa_for_each(&root->children, idx, leaf) {
		/*
		 * Only faults add entries, and they wait for the mutex: an
		 * empty leaf stays empty until it is gone.
		 */
		read_lock_irqsave(root->lock, flags);
		gone = READ_ONCE(leaf->unmapped) && !leaf->npresent;
		read_unlock_irqrestore(root->lock, flags);
		if (idle && time_after(jiffies, READ_ONCE(leaf->last_use) + idle))
			gone = true;
		if (!gone)
			continue;
		/*
		 * Unpublish, then wait for copies that found it before:
		 * they hold the MR's lock shared. (The array's own lock is
		 * not irq-safe: never taken under the MR's lock.)
		 */
		xa_erase(&root->children, idx);
		write_lock_irqsave(root->lock, flags);
		write_unlock_irqrestore(root->lock, flags);
		gift_odp_stop_leaf(leaf);
		mutex_destroy(&leaf->fault_mutex);
		kfree(leaf);
		cond_resched();
	}
}

/* The root's reaper: frees the leaves an munmap emptied. */
static void gift_odp_reap(struct work_struct *work)
{
	struct gift_odp *root = container_of(work, struct gift_odp, reap);

	mutex_lock(&root->fault_mutex);
	if (!root->dead)
		gift_odp_reap_leaves(root, 0);
	mutex_unlock(&root->fault_mutex);
}

/* The root's idle work: frees idle leaves, then again while any is left. */
static void gift_odp_idle(struct work_struct *work)
{
	struct gift_odp *root = container_of(to_delayed_work(work),
					     struct gift_odp, idle);
	u32 ms = READ_ONCE(gift_odp_leaf_idle_ms);

	mutex_lock(&root->fault_mutex);
	if (!root->dead && ms) {
		gift_odp_reap_leaves(root, msecs_to_jiffies(ms));
		if (!xa_empty(&root->children))
			gift_odp_arm_idle(root);
	}
	mutex_unlock(&root->fault_mutex);
}

/**
 * gift_odp_stop() - tear the page table down for deregistration
 * @odp: page table of an MR that the data path no longer uses (its
 *	state is GIFT_MR_DEAD)
 *
 * Waits for a running fault and makes later ones fail, dirties what the
 * device wrote, then leaves the interval tree (waiting for running
 * invalidations). An implicit MR's leaves are freed. The struct stays,
 * for faults still queued, until gift_odp_free().
 *
 * Context: process context; sleeps.
 */
void gift_odp_stop(struct gift_odp *odp)
{
	struct gift_odp *leaf;
	unsigned long idx;

	if (!odp->implicit) {
		gift_odp_stop_leaf(odp);
		return;
	}
	mutex_lock(&odp->fault_mutex);
	odp->dead = true;
	mutex_unlock(&odp->fault_mutex);
	cancel_work_sync(&odp->reap);
	cancel_delayed_work_sync(&odp->idle);
	xa_for_each(&odp->children, idx, leaf)
		gift_odp_stop_leaf(leaf);
	/* The leaves' invalidations may have queued the reaper again. */
	cancel_work_sync(&odp->reap);
	xa_for_each(&odp->children, idx, leaf) {
		mutex_destroy(&leaf->fault_mutex);
		kfree(leaf);
	}
	xa_destroy(&odp->children);
}

/**
 * gift_odp_free() - free a page table after gift_odp_stop()
 * @odp: page table, or NULL
 *
 * Context: any context but NMI (the last MR reference may drop in
 * softirq).
 */
void gift_odp_free(struct gift_odp *odp)
{
	if (!odp)
		return;
	if (odp->implicit)
		mmdrop(odp->mm);
	mutex_destroy(&odp->fault_mutex);
	kfree(odp);
}

/**
 * gift_odp_mapped_pages() - pages in the device's page table now
 * @odp: page table; the MR's lock is held
 * @nleaves: set to the number of leaves of an implicit MR, else 0
 *
 * Return: the present entries (of every leaf, for an implicit MR).
 */
unsigned long gift_odp_mapped_pages(struct gift_odp *odp,
				    unsigned long *nleaves)
{
	struct gift_odp *leaf;
	unsigned long idx, n = 0;

	lockdep_assert_held(odp->lock);
	*nleaves = 0;
	if (!odp->implicit)
		return odp->npresent;
	xa_for_each(&odp->children, idx, leaf) {
		n += leaf->npresent;
		(*nleaves)++;
	}
	return n;
}

/*
 * Installs the pages hmm_range_fault() returned for entries
 * [idx, idx + n); under the exclusive lock, after the retry check.
 * Returns the number of entries that became present.
 */
static unsigned long gift_odp_install(struct gift_odp *odp, unsigned long idx,
				      const unsigned long *pfns,
				      unsigned long n)
{
	unsigned long i, e, old, added = 0;
	struct page *page;

	lockdep_assert_held_write(odp->lock);
	for (i = 0; i < n; i++) {
		if (!(pfns[i] & HMM_PFN_VALID) || (pfns[i] & HMM_PFN_ERROR))
			continue;
		page = hmm_pfn_to_page(pfns[i]);
		e = (unsigned long)page | GIFT_ODP_PRESENT;
		if (odp->writable && (pfns[i] & HMM_PFN_WRITE))
			e |= GIFT_ODP_WRITE;
		old = odp->entries[idx + i];
		if (old & GIFT_ODP_PRESENT) {
			/*
			 * The same page (anything else would have been
			 * invalidated first): keep what the device wrote.
			 */
			e |= old & GIFT_ODP_DIRTY;
		} else {
			odp->npresent++;
			added++;
		}
		odp->entries[idx + i] = e;
	}
	if (added)
		WRITE_ONCE(odp->unmapped, false);
	return added;
}

/*
 * Faults (or snapshots) entries [idx, idx + n) of at most GIFT_ODP_BATCH
 * pages, retrying while invalidations race with it. mm is held by
 * mmget_not_zero().
 */
static int gift_odp_fault_batch(struct gift_odp *odp, struct mm_struct *mm,
				unsigned long idx, unsigned long n,
				unsigned long *pfns, unsigned int flags)
{
	u64 start = ALIGN_DOWN(odp->addr, PAGE_SIZE) + ((u64)idx << PAGE_SHIFT);
	struct hmm_range range = {
		.notifier = &odp->notifier,
		.start = start,
		.end = start + ((u64)n << PAGE_SHIFT),
		.hmm_pfns = pfns,
	};
	unsigned long lflags, added;
	int ret;

	if (!(flags & GIFT_ODP_FAULT_SNAPSHOT)) {
		range.default_flags = HMM_PFN_REQ_FAULT;
		if (flags & GIFT_ODP_FAULT_WRITE)
			range.default_flags |= HMM_PFN_REQ_WRITE;
	}
	for (;;) {
		if (fatal_signal_pending(current))
			return -EINTR;
		range.notifier_seq = mmu_interval_read_begin(&odp->notifier);
		mmap_read_lock(mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY) {
			gift_odp_count(odp, GIFT_CNT_ODP_FAULT_RETRIES,
				       GIFT_ODP_STAT_FAULT_RETRIES, 1);
			cond_resched();
			continue;
		}
		if (ret)
			return ret;
		write_lock_irqsave(odp->lock, lflags);
		if (!mmu_interval_read_retry(&odp->notifier,
					     range.notifier_seq))
			break;
		write_unlock_irqrestore(odp->lock, lflags);
		gift_odp_count(odp, GIFT_CNT_ODP_FAULT_RETRIES,
			       GIFT_ODP_STAT_FAULT_RETRIES, 1);
		cond_resched();
	}
	added = gift_odp_install(odp, idx, pfns, n);
	write_unlock_irqrestore(odp->lock, lflags);
	gift_odp_count(odp, GIFT_CNT_ODP_PAGES_FAULTED,
		       GIFT_ODP_STAT_PAGES_FAULTED, added);
	return 0;
}

/* Faults pages [first, last] of the page table, a batch at a time. */
static int gift_odp_fault_pages(struct gift_odp *odp, struct mm_struct *mm,
				unsigned long first, unsigned long last,
				unsigned int flags)
{
	unsigned long *pfns, n;
	int err = 0;

	pfns = kmalloc_array(GIFT_ODP_BATCH, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	for (; first <= last && !err; first += n) {
		n = min_t(unsigned long, last - first + 1, GIFT_ODP_BATCH);
		err = gift_odp_fault_batch(odp, mm, first, n, pfns, flags);
		cond_resched();
	}
	kfree(pfns);
	return err;
}

/* gift_odp_fault() of one leaf (or explicit MR). */
static int gift_odp_fault_leaf(struct gift_odp *odp, u64 offset, u64 len,
			       u64 ahead, unsigned int flags)
{
	u64 pos = offset_in_page(odp->addr) + offset;
	unsigned long first = pos >> PAGE_SHIFT;
	unsigned long last = (pos + len - 1) >> PAGE_SHIFT, far;
	struct mm_struct *mm = odp->notifier.mm;
	int err;

	far = min_t(u64, (pos + len + ahead - 1) >> PAGE_SHIFT,
		    odp->npages - 1);
	mutex_lock(&odp->fault_mutex);
	if (odp->dead) {
		err = -EINVAL;
		goto out_unlock;
	}
	if (!mmget_not_zero(mm)) {
		err = -EFAULT;
		goto out_unlock;
	}
	gift_odp_count(odp, GIFT_CNT_ODP_FAULTS, GIFT_ODP_STAT_FAULTS, 1);
	err = gift_odp_fault_pages(odp, mm, first, far, flags);
	/* The pages ahead may be a hole: fault exactly what is needed. */
	if (err && far > last)
		err = gift_odp_fault_pages(odp, mm, first, last, flags);
	mmput(mm);
out_unlock:
	mutex_unlock(&odp->fault_mutex);
	if (err == -EPERM || err == -EACCES)
		err = -EFAULT;
	return err;
}

/*
 * An implicit MR's fault: the leaves of the chunks [@va, @va + @len)
 * touches, created as needed, each faulted for its part (and what of
 * @ahead falls in the last one).
 */
static int gift_odp_fault_implicit(struct gift_odp *root, u64 va, u64 len,
				   u64 ahead, unsigned int flags)
{
	struct gift_odp *leaf;
	u64 n, in, room;
	int err = 0;

	mutex_lock(&root->fault_mutex);
	if (root->dead) {
		err = -EINVAL;
		goto out_unlock;
	}
	if (!mmget_not_zero(root->mm)) {
		err = -EFAULT;
		goto out_unlock;
	}
	while (len && !err) {
		leaf = gift_odp_leaf(root, va >> GIFT_ODP_CHUNK_SHIFT);
		if (IS_ERR(leaf)) {
			err = PTR_ERR(leaf);
			break;
		}
		in = va & (GIFT_ODP_CHUNK - 1);
		room = GIFT_ODP_CHUNK - in;
		n = min(len, room);
		err = gift_odp_fault_leaf(leaf, in, n,
					  n == len ? min(ahead, room - n) : 0,
					  flags);
		/* Nothing there (a hole): do not keep an empty leaf for it. */
		if (err && !READ_ONCE(leaf->npresent)) {
			WRITE_ONCE(leaf->unmapped, true);
			gift_odp_queue(&root->reap);
		}
		va += n;
		len -= n;
	}
	mmput(root->mm);
out_unlock:
	mutex_unlock(&root->fault_mutex);
	return err;
}

/**
 * gift_odp_fault() - map pages of an ODP MR into the device's page table
 * @odp: page table, kept alive by the caller (an MR reference)
 * @offset: offset of the first byte needed from the MR's first byte (its
 *	address, for an implicit MR)
 * @len: bytes needed, at least 1; [@offset, @offset + @len) inside the MR
 * @ahead: bytes after them worth mapping too, if they can be: they are
 *	faulted along, and dropped from the request when that fails
 * @flags: GIFT_ODP_FAULT_WRITE: map for writing (breaking copy-on-write
 *	as a CPU write would); GIFT_ODP_FAULT_SNAPSHOT: only take what
 *	the CPU page tables map right now, fault nothing
 *
 * Context: process context; sleeps (page faults, swap-in).
 *
 * Return: 0; -EINVAL once the MR is being deregistered; -EFAULT when a
 * needed page is not mapped, not accessible that way (a write to a
 * read-only mapping), or the address space is gone; -EINTR on a fatal
 * signal; -ENOMEM; another error of hmm_range_fault().
 */
int gift_odp_fault(struct gift_odp *odp, u64 offset, u64 len, u64 ahead,
		   unsigned int flags)
{
	if (odp->implicit)
		return gift_odp_fault_implicit(odp, offset, len, ahead, flags);
	return gift_odp_fault_leaf(odp, offset, len, ahead, flags);
}

/**
 * gift_odp_span() - where a byte of an ODP MR (or leaf) lives, if mapped
 * @odp: page table of an explicit MR or a leaf; the MR's lock is held
 *	(shared) and the MR is valid
 * @offset: offset of the byte from @odp->addr, inside the range
 * @access: what the caller will do with it
 * @span: set to the page holding the byte, its offset there and the
 *	bytes left in the page
 *
 * A write or atomic access marks the page dirty in its entry (an atomic
 * set_bit(), the one change made under the shared lock) before the
 * caller writes: the caller writes before it drops the lock, and an
 * invalidation, which reads the bit, needs the lock exclusively. So the
 * bit is set exactly when the device writes the page while it is
 * mapped, and the page is dirtied once, when the entry goes.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EACCES or -EINVAL as gift_mr_mem_allowed() answers; -EAGAIN
 * when the page is not mapped for this access: fault it
 * (gift_odp_fault()) and try again.
 */
int gift_odp_span(struct gift_odp *odp, u64 offset,
		  enum gift_mr_mem_access access,
		  struct gift_mr_mem_span *span)
{
	u64 pos = offset_in_page(odp->addr) + offset;
	unsigned long idx = pos >> PAGE_SHIFT, e;
	bool write = access != GIFT_MR_MEM_READ;
	int err;

	lockdep_assert_held(odp->lock);
	err = gift_mr_mem_allowed(odp->writable, access, pos);
	if (err)
		return err;
	e = READ_ONCE(odp->entries[idx]);
	if (!(e & GIFT_ODP_PRESENT) || (write && !(e & GIFT_ODP_WRITE)))
		return -EAGAIN;
	if (write && !(e & GIFT_ODP_DIRTY))
		set_bit(GIFT_ODP_DIRTY_BIT, &odp->entries[idx]);
	span->page = gift_odp_page(e);
	span->offset = offset_in_page(pos);
	span->len = PAGE_SIZE - span->offset;
	return 0;
}

/**
 * gift_odp_implicit_span() - where a byte of an implicit ODP MR lives
 * @root: the implicit MR's root; the MR's lock is held (shared) and the
 *	MR is valid
 * @va: the byte's user address
 * @access: what the caller will do with it
 * @span: set as by gift_odp_span(), never past the end of the leaf
 *
 * The leaf of @va's chunk stays while the lock is held: the reaper takes
 * the lock exclusively after unpublishing a leaf and before freeing it.
 * Finding it marks it used (gift_odp_child()), for the idle reaper.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EACCES or -EINVAL as gift_mr_mem_allowed() answers (before
 * anything else); -EAGAIN when @va's chunk has no leaf yet or its page
 * is not mapped for this access.
 */
int gift_odp_implicit_span(struct gift_odp *root, u64 va,
			   enum gift_mr_mem_access access,
			   struct gift_mr_mem_span *span)
{
	struct gift_odp *leaf;
	int err;

	lockdep_assert_held(root->lock);
	err = gift_mr_mem_allowed(root->writable, access, va);
	if (err)
		return err;
	leaf = gift_odp_child(root, va);
	if (!leaf)
		return -EAGAIN;
	return gift_odp_span(leaf, va - leaf->addr, access, span);
}

/* Entries copied per hold of the MR's lock by gift_odp_dump(). */
#define GIFT_ODP_DUMP_BATCH	64

/* Prints the present entries of a leaf (or explicit MR) @odp. */
static void gift_odp_dump_leaf(struct gift_odp *odp, struct seq_file *m)
{
	u64 base = ALIGN_DOWN(odp->addr, PAGE_SIZE);
	unsigned long e[GIFT_ODP_DUMP_BATCH], idx, flags, i, n;

	for (idx = 0; idx < odp->npages; idx += n) {
		n = min_t(unsigned long, odp->npages - idx,
			  GIFT_ODP_DUMP_BATCH);
		read_lock_irqsave(odp->lock, flags);
		if (!odp->entries) {
			read_unlock_irqrestore(odp->lock, flags);
			return;
		}
		for (i = 0; i < n; i++)
			e[i] = READ_ONCE(odp->entries[idx + i]);
		read_unlock_irqrestore(odp->lock, flags);
		for (i = 0; i < n; i++) {
			if (!(e[i] & GIFT_ODP_PRESENT))
				continue;
			seq_printf(m, "%#llx %c%c%c\n",
				   base + ((u64)(idx + i) << PAGE_SHIFT),
				   'r', e[i] & GIFT_ODP_WRITE ? 'w' : '-',
				   e[i] & GIFT_ODP_DIRTY ? 'd' : '-');
		}
		cond_resched();
	}
}

/**
 * gift_odp_dump() - print the device's page table of an ODP MR
 * @odp: page table, kept alive by the caller (an MR reference)
 * @m: seq_file of the debugfs file rdma_gift/odp_pages
 *
 * One line per page the device has mapped: its user address, then "r"
 * (mapped for reading), "w" or "-" (for writing), "d" or "-" (written by
 * the device since it was mapped). The table may change while it is
 * printed; each batch of 64 entries is read at once. Faults (and the
 * reaper of an implicit MR) wait meanwhile.
 *
 * Context: process context; sleeps.
 */
void gift_odp_dump(struct gift_odp *odp, struct seq_file *m)
{
	struct gift_odp *leaf;
	unsigned long idx;

	mutex_lock(&odp->fault_mutex);
	if (odp->dead)
		goto out_unlock;
	if (!odp->implicit) {
		gift_odp_dump_leaf(odp, m);
		goto out_unlock;
	}
	xa_for_each(&odp->children, idx, leaf) {
		mutex_lock(&leaf->fault_mutex);
		gift_odp_dump_leaf(leaf, m);
		mutex_unlock(&leaf->fault_mutex);
	}
out_unlock:
	mutex_unlock(&odp->fault_mutex);
}
