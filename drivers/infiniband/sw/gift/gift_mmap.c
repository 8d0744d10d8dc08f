// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift memory mapped into user space: the rings of mapped CQs, work
 * queues and SRQs.
 *
 * What this file owns: struct gift_mmap, a buffer of whole pages that the
 * driver reads and writes through a kernel mapping and that a process
 * maps with mmap() on its uverbs file, at the offset ib_core's
 * rdma_user_mmap_entry table gave it.
 *
 * Lifetime:
 *  - gift_mmap_create() allocates the pages (zeroed, charged to the
 *    caller's memory cgroup), maps them for the driver and inserts the
 *    entry into the context's table, which holds one reference.
 *  - gift_mmap() maps the pages into a process with vm_insert_pages():
 *    every page mapped takes a page reference of its own, dropped when
 *    the process unmaps it (or exits), so the pages outlive the driver's
 *    use as long as a process maps them, and no process ever sees a page
 *    after it has been freed and reused.
 *  - The owner calls gift_mmap_remove() once it stops using the buffer
 *    (no later access through @vaddr); further mmap() of the offset
 *    fail. ib_core calls gift_mmap_free() when the last reference of the
 *    entry goes (at once, unless an mmap() is in progress), which drops
 *    the driver's mapping and its page references.
 *
 * The driver never trusts what the process writes into a mapped buffer:
 * each user (gift_cq.c, gift_wq.c) says which words it reads and how it
 * checks them.
 */

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <rdma/ib_verbs.h>

#include "gift_mmap.h"

static void gift_mmap_release(struct gift_mmap *map)
{
	unsigned long i;

	if (map->vaddr && map->npages > 1)
		vunmap(map->vaddr);
	/* After a failed allocation: no array, or the pages up to a NULL. */
	for (i = 0; map->pages && i < map->npages && map->pages[i]; i++)
		put_page(map->pages[i]);
	kvfree(map->pages);
	kfree(map);
}

/**
 * gift_mmap_create() - allocate a buffer a process may map
 * @uctx: the user context whose uverbs file maps it
 * @len: bytes, rounded up to whole pages
 *
 * Process context. The buffer is zeroed; @map->vaddr is the driver's
 * view of it. Over the memory cgroup's limit the allocation fails with
 * -ENOMEM rather than invoking the OOM killer (__GFP_RETRY_MAYFAIL), as
 * for the driver's other rings.
 *
 * Return: the buffer, or ERR_PTR(-ENOMEM).
 */
struct gift_mmap *gift_mmap_create(struct ib_ucontext *uctx, size_t len)
{
	struct gift_mmap *map;
	unsigned long i;
	int err = -ENOMEM;

	map = kzalloc(sizeof(*map), GFP_KERNEL_ACCOUNT);
	if (!map)
		return ERR_PTR(-ENOMEM);
	map->npages = PAGE_ALIGN(len) >> PAGE_SHIFT;
	map->pages = kvcalloc(map->npages, sizeof(*map->pages),
			      GFP_KERNEL_ACCOUNT);
	if (!map->pages)
		goto err_free;
	for (i = 0; i < map->npages; i++) {
		map->pages[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO |
					   __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
		if (!map->pages[i])
			goto err_free;
	}
	/* One page (most rings) needs no mapping of its own. */
	if (map->npages == 1)
		map->vaddr = page_address(map->pages[0]);
	else
		map->vaddr = vmap(map->pages, map->npages, VM_MAP, PAGE_KERNEL);
	if (!map->vaddr)
		goto err_free;
	err = rdma_user_mmap_entry_insert(uctx, &map->rdma,
					  map->npages << PAGE_SHIFT);
	if (err)
		goto err_free;
	return map;

err_free:
	gift_mmap_release(map);
	return ERR_PTR(err);
}

/**
 * gift_mmap_remove() - stop offering a buffer, the driver done with it
 * @map: buffer from gift_mmap_create(); NULL is a no-op
 *
 * The caller does not touch @map afterwards. Process context.
 */
void gift_mmap_remove(struct gift_mmap *map)
{
	if (map)
		rdma_user_mmap_entry_remove(&map->rdma);
}

/**
 * gift_mmap() - the mmap() of a uverbs file of a gift device
 * @uctx: the file's user context
 * @vma: the mapping being made; its length must be the buffer's
 *
 * Return: 0; -EINVAL for an offset that names no buffer of @uctx or a
 * length that is not the buffer's; -ENOMEM.
 */
int gift_mmap(struct ib_ucontext *uctx, struct vm_area_struct *vma)
{
	struct rdma_user_mmap_entry *entry;
	struct gift_mmap *map;
	unsigned long n;
	int err;

	/* The length is checked against the entry's here. */
	entry = rdma_user_mmap_entry_get(uctx, vma);
	if (!entry)
		return -EINVAL;
	map = container_of(entry, struct gift_mmap, rdma);
	n = map->npages;
	/*
	 * Not inherited by fork(): a ring belongs to the context that made
	 * it, and a child writing its parent's consumer index would fail
	 * the parent's CQ.
	 */
	vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);
	err = vm_insert_pages(vma, vma->vm_start, map->pages, &n);
	rdma_user_mmap_entry_put(entry);
	return err;
}

/**
 * gift_mmap_free() - free a buffer ib_core holds no reference to
 * @entry: the buffer's entry
 *
 * Pages a process still maps stay until it unmaps them.
 */
void gift_mmap_free(struct rdma_user_mmap_entry *entry)
{
	gift_mmap_release(container_of(entry, struct gift_mmap, rdma));
}
