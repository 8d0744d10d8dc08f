/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift memory regions: user MRs pinned by gift_umem, the DMA MR,
 * fast-register MRs, keys, and the lookup and access functions of the
 * data path. See gift_mr.c for the design.
 */
#ifndef GIFT_MR_H
#define GIFT_MR_H

#include <linux/atomic.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/xarray.h>
#include <rdma/ib_verbs.h>

#include "gift_mr_mem.h"
#include "gift_odp.h"
#include "gift_umem.h"

struct gift_dev;

/* Live MRs per device (user, DMA and fast-register), enforced. */
#define GIFT_MAX_MR			0x10000
/* Longest user MR; bounded by the umem page array. */
#define GIFT_MAX_MR_SIZE		GIFT_UMEM_MAX_LEN
/* Page list entries of a fast-register MR (max_num_sg of alloc_mr). */
#define GIFT_MAX_FAST_REG_PAGES		4096

/**
 * struct gift_mr_table - per-device key table of MRs and memory windows
 * @keys: MRs, and memory windows (struct gift_mw, stored as pointers
 *	tagged GIFT_KEY_MW), by key index (key >> 8), see gift_mr.c
 * @num_mr: MRs allocated and not yet freed, at most attr.max_mr
 * @num_mw: memory windows allocated and not yet freed, at most attr.max_mw
 *
 * Locking: @keys has its own lock for insertions and removals (process
 * context only) and is read under RCU; @num_mr and @num_mw are atomic.
 */
struct gift_mr_table {
	struct xarray keys;
	atomic_t num_mr;
	atomic_t num_mw;
};

/* xa_pointer_tag() of a memory window's entry in gift_mr_table.keys. */
#define GIFT_KEY_MW	1

int gift_key_insert(struct gift_dev *gdev, void *entry, u32 *index);

void gift_mr_table_init(struct gift_mr_table *table);
/* Called from dealloc_driver: every object is gone by then. */
void gift_mr_table_destroy(struct gift_mr_table *table);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_mr_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_mr_init_attr(struct ib_device_attr *attr);

/**
 * enum gift_mr_state - whether an MR may be accessed
 * @GIFT_MR_FREE: a fast-register MR not registered yet, or invalidated;
 *	IB_WR_REG_MR makes it valid
 * @GIFT_MR_VALID: accessible, within its access flags
 * @GIFT_MR_DEAD: deregistered; only in-flight references remain and
 *	nothing is accessible
 */
enum gift_mr_state {
	GIFT_MR_FREE,
	GIFT_MR_VALID,
	GIFT_MR_DEAD,
};

/**
 * struct gift_mr_pages - page list of a fast-register MR
 * @addrs: kernel virtual addresses of the pages (the device has no DMA
 *	device, so ib_core's "DMA addresses" are kernel virtual addresses),
 *	each aligned to the page size
 * @npages: entries used in @addrs
 * @shift: log2 of the page size chosen by the ULP (ib_map_mr_sg())
 * @offset: offset of the MR's first byte in the first page
 */
struct gift_mr_pages {
	u64 *addrs;
	u32 npages;
	u32 shift;
	u32 offset;
};

/**
 * struct gift_mr - a memory region
 * @ibmr: the ib_core object; allocated by the driver, must stay first
 * @gdev: device, outlives every MR (all are freed before dealloc_driver)
 * @type: IB_MR_TYPE_USER, IB_MR_TYPE_DMA or IB_MR_TYPE_MEM_REG
 * @mem: the kind of memory behind the MR, chosen at creation: how the
 *	data path reaches its bytes (gift_mr_mem.c)
 * @index: key index, bits 8..31 of every key of this MR; never 0
 * @ref: references: one for the ib_mr handle until dereg, one per data
 *	path user (gift_mr_get(), gift_mr_hold())
 * @lock: protects the access state below
 * @state: enum gift_mr_state
 * @key: lkey == rkey; the low 8 bits change on IB_WR_REG_MR
 * @access: IB_ACCESS_LOCAL_WRITE / REMOTE_READ / REMOTE_WRITE /
 *	REMOTE_ATOMIC granted; local read is always granted. IB_ACCESS_GIFT
 *	is kept too for a user MR registered with it
 * @pd: protection domain the data path compares against the QP's
 * @iova: first address of the MR in the address space its users see
 * @length: bytes; U64_MAX for the DMA MR, which covers everything
 * @umem: pinned pages of a user MR
 * @odp: device page table of an on-demand paging user MR (instead of
 *	@umem); freed with the MR, after dereg stopped it
 * @fr: live page list of a fast-register MR
 * @fr_map: page list being built by map_mr_sg, copied into @fr by
 *	IB_WR_REG_MR
 * @fr_max: capacity of @fr and @fr_map (max_num_sg)
 * @fr_buf: the one allocation holding both page lists
 * @nr_mw: memory windows bound to the MR (gift_mw.c); dereg and rereg
 *	fail with -EBUSY while there are any
 * @rcu: frees the MR after lockless lookups are done with it
 *
 * Locking:
 *   @gdev, @type, @mem, @index,         constant
 *   @fr_max, @odp (the pointer)
 *   @nr_mw                               atomic; raised only under @lock
 *                                        (exclusive) of a valid MR, which
 *                                        dereg and rereg check it under
 *   @ref                                 atomic; the MR is freed (RCU
 *                                        deferred) when it drops to 0
 *   @state, @access, @pd, @iova,         @lock; always taken with
 *   @length, @umem, @fr, the page        interrupts disabled, readers
 *   table of @odp                        shared (data path), writers
 *                                        exclusive (verbs, REG_MR, inval,
 *                                        ODP faults and invalidations)
 *   @key                                 written under @lock (exclusive),
 *                                        read locklessly by gift_mr_get()
 *   @fr_map                              the ULP's: map_mr_sg and the
 *                                        REG_MR it posts are serialised
 *                                        by the ULP; read under @lock
 *   @fr_buf                              set at alloc_mr, freed at dereg
 *                                        after @fr.addrs was cleared
 *   @ibmr                                ib_core's and the ULP's
 */
struct gift_mr {
	struct ib_mr ibmr;
	struct gift_dev *gdev;
	enum ib_mr_type type;
	const struct gift_mr_mem_ops *mem;
	u32 index;
	refcount_t ref;
	rwlock_t lock;
	enum gift_mr_state state;
	u32 key;
	int access;
	struct ib_pd *pd;
	u64 iova;
	u64 length;
	struct gift_umem *umem;
	struct gift_odp *odp;
	struct gift_mr_pages fr;
	struct gift_mr_pages fr_map;
	u32 fr_max;
	u64 *fr_buf;
	atomic_t nr_mw;
	struct rcu_head rcu;
};

static inline struct gift_mr *to_gift_mr(struct ib_mr *ibmr)
{
	return container_of(ibmr, struct gift_mr, ibmr);
}

/*
 * The data path. All of these may be called in any context but NMI and
 * never sleep. See the kernel-doc in gift_mr.c for the exact errors.
 */
struct gift_mr *gift_mr_get(struct gift_dev *gdev, u32 key);
void gift_mr_hold(struct gift_mr *mr);
void gift_mr_put(struct gift_mr *mr);
int gift_mr_check(struct gift_mr *mr, struct ib_pd *pd, u64 iova, u64 len,
		  int access);
int gift_mr_copy(struct gift_mr *mr, u64 iova, void *buf, size_t len,
		 bool to_mr);
int gift_mr_copy_skb(struct gift_mr *mr, u64 iova, const struct sk_buff *skb,
		     u32 off, size_t len);
int gift_mr_skb_frags(struct gift_mr *mr, u64 iova, struct sk_buff *skb,
		      u32 len, unsigned int max_frags);
int gift_mr_atomic(struct gift_mr *mr, u64 iova, enum gift_atomic_op op,
		   u64 compare_add, u64 swap, u64 *orig);
int gift_mr_fault(struct gift_mr *mr, u64 iova, u64 len, unsigned int flags);
int gift_mr_fast_reg(struct gift_mr *mr, struct ib_pd *pd, u32 key,
		     int access);
int gift_mr_local_inv(struct gift_dev *gdev, u32 key, struct ib_pd *pd);
int gift_mr_remote_inv(struct gift_dev *gdev, u32 key, struct ib_pd *pd,
		       u32 qpn);
int gift_mr_bind_mw(struct gift_mr *mr, struct ib_pd *pd, u64 iova, u64 len,
		    int mw_access);
void gift_mr_unbind_mw(struct gift_mr *mr);

#endif /* GIFT_MR_H */
