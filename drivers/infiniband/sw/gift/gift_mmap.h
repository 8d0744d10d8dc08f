/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift memory mapped into user space (see gift_mmap.c).
 */
#ifndef GIFT_MMAP_H
#define GIFT_MMAP_H

#include <rdma/ib_verbs.h>

/**
 * struct gift_mmap - driver pages a process may map
 * @rdma: ib_core's entry (offset, length, reference count)
 * @pages: the pages, zeroed, charged to the creator's memory cgroup
 * @npages: number of @pages
 * @vaddr: the driver's mapping of @pages, contiguous
 */
struct gift_mmap {
	struct rdma_user_mmap_entry rdma;
	struct page **pages;
	unsigned long npages;
	void *vaddr;
};

struct gift_mmap *gift_mmap_create(struct ib_ucontext *uctx, size_t len);
void gift_mmap_remove(struct gift_mmap *map);

int gift_mmap(struct ib_ucontext *uctx, struct vm_area_struct *vma);
void gift_mmap_free(struct rdma_user_mmap_entry *entry);

#endif /* GIFT_MMAP_H */
