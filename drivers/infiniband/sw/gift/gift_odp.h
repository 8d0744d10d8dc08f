/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift on-demand paging: the device's page table of an ODP memory
 * region, filled by faults (hmm_range_fault()) and emptied by the mm's
 * invalidations (mmu_interval_notifier). See gift_odp.c for the design.
 */
#ifndef GIFT_ODP_H
#define GIFT_ODP_H

#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <linux/workqueue.h>

#include "gift_mr_mem.h"
#include "gift_umem.h"

struct gift_dev;
struct seq_file;

/* Flags of gift_odp_fault(). */
#define GIFT_ODP_FAULT_WRITE	BIT(0)	/* the device will write */
#define GIFT_ODP_FAULT_SNAPSHOT	BIT(1)	/* map what is there, fault nothing */

/*
 * Bytes a fault for the engine maps beyond the one page it needs (when
 * they are mapped, or can be faulted, at all): a message is served by
 * one fault per this much instead of one per page.
 */
#define GIFT_ODP_FAULT_AHEAD	SZ_256K

/*
 * An implicit ODP MR (the whole address space) is a root holding one
 * leaf page table per 2 MiB chunk of addresses the device touched.
 */
#define GIFT_ODP_CHUNK_SHIFT	21
#define GIFT_ODP_CHUNK		BIT_ULL(GIFT_ODP_CHUNK_SHIFT)

/**
 * enum gift_odp_stat - per-MR counters of an ODP MR
 * @GIFT_ODP_STAT_FAULTS: faults served (odp_faults of the device)
 * @GIFT_ODP_STAT_PAGES_FAULTED: pages they mapped
 * @GIFT_ODP_STAT_FAULT_RETRIES: faults restarted by an invalidation
 * @GIFT_ODP_STAT_INVALIDATIONS: invalidations of the MR's range
 * @GIFT_ODP_STAT_PAGES_INVALIDATED: pages they unmapped
 * @GIFT_ODP_NUM_STATS: number of counters
 */
enum gift_odp_stat {
	GIFT_ODP_STAT_FAULTS,
	GIFT_ODP_STAT_PAGES_FAULTED,
	GIFT_ODP_STAT_FAULT_RETRIES,
	GIFT_ODP_STAT_INVALIDATIONS,
	GIFT_ODP_STAT_PAGES_INVALIDATED,
	GIFT_ODP_NUM_STATS
};

/**
 * struct gift_odp - the device's page table of one ODP MR
 * @notifier: the MR's range in the interval tree of @notifier.mm (which
 *	keeps the mm_struct, not the address space, alive)
 * @lock: the MR's lock (struct gift_mr.lock), which serialises the page
 *	table's readers (the data path: shared) against its writers (faults
 *	and invalidations: exclusive)
 * @fault_mutex: serialises faults and their end: a fault runs with it
 *	held and finds @dead set once the MR is being deregistered
 * @dead: set by gift_odp_stop(), under @fault_mutex
 * @addr: user address of the MR's first byte (not page aligned)
 * @length: bytes
 * @npages: entries in @entries
 * @writable: the MR may be written (local write, remote write, atomic)
 * @npresent: entries present; under @lock
 * @entries: one per page of [ALIGN_DOWN(addr), PAGE_ALIGN(addr + length)):
 *	the struct page pointer or'd with GIFT_ODP_PRESENT, GIFT_ODP_WRITE
 *	and GIFT_ODP_DIRTY (gift_odp.c). Written under @lock held
 *	exclusively; the data path sets GIFT_ODP_DIRTY with an atomic
 *	set_bit() under @lock held shared, and reads the rest.
 * @gdev: device, for the counters
 * @implicit: an implicit MR's root: no @notifier and no @entries, but
 *	@children; @addr is 0 and @length U64_MAX
 * @children: root only: leaf page tables by chunk index (address >>
 *	GIFT_ODP_CHUNK_SHIFT). Inserted by faults (under @fault_mutex) and
 *	erased by the reaper (under @fault_mutex and @lock exclusive), read
 *	by the data path under @lock shared
 * @mm: root only: the registering address space (mmgrab()'d), where
 *	leaves are created
 * @reap: root only: frees leaves whose range was unmapped
 * @idle: root only: frees leaves the device has not used for
 *	gift_odp_leaf_idle_ms; queued while the root has leaves
 * @parent: leaf only: its root
 * @unmapped: leaf only: an munmap left it empty since its last fault;
 *	the reaper frees it if it is still empty. Under @lock
 * @last_use: leaf only: jiffies when the data path or a fault last used
 *	it. Written and read without a lock (a stale value only delays or
 *	hastens freeing an idle leaf, which is always safe)
 * @stats: per-MR counters (enum gift_odp_stat); a leaf counts into its
 *	root's. Atomic, no lock
 */
struct gift_odp {
	struct mmu_interval_notifier notifier;
	rwlock_t *lock;
	struct mutex fault_mutex;	/* see the kernel-doc above */
	bool dead;
	u64 addr;
	u64 length;
	unsigned long npages;
	bool writable;
	unsigned long npresent;
	unsigned long *entries;
	struct gift_dev *gdev;
	bool implicit;
	struct xarray children;
	struct mm_struct *mm;
	struct work_struct reap;
	struct delayed_work idle;
	struct gift_odp *parent;
	bool unmapped;
	unsigned long last_use;
	atomic64_t stats[GIFT_ODP_NUM_STATS];
};

int gift_odp_init(void);
void gift_odp_exit(void);
void gift_odp_queue(struct work_struct *work);
void gift_odp_flush(void);
extern u32 gift_odp_fault_delay_ms;
extern u32 gift_odp_leaf_idle_ms;

struct gift_odp *gift_odp_create(struct gift_dev *gdev, rwlock_t *lock,
				 u64 addr, u64 length, int access);
void gift_odp_stop(struct gift_odp *odp);
void gift_odp_free(struct gift_odp *odp);
int gift_odp_fault(struct gift_odp *odp, u64 offset, u64 len, u64 ahead,
		   unsigned int flags);
int gift_odp_span(struct gift_odp *odp, u64 offset,
		  enum gift_mr_mem_access access,
		  struct gift_mr_mem_span *span);
int gift_odp_implicit_span(struct gift_odp *root, u64 va,
			   enum gift_mr_mem_access access,
			   struct gift_mr_mem_span *span);
void gift_odp_dump(struct gift_odp *odp, struct seq_file *m);
unsigned long gift_odp_mapped_pages(struct gift_odp *odp,
				    unsigned long *nleaves);

#endif /* GIFT_ODP_H */
