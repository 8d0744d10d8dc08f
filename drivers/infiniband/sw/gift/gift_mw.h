/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift memory windows: type 1 and type 2B windows over user MRs,
 * bound by work requests on the send queue. See gift_mw.c for the design.
 */
#ifndef GIFT_MW_H
#define GIFT_MW_H

#include <linux/rcupdate.h>
#include <linux/spinlock.h>
#include <rdma/ib_verbs.h>

struct gift_dev;
struct gift_mr;
struct gift_qp;

/* Live memory windows per device, enforced (attr.max_mw). */
#define GIFT_MAX_MW		0x10000

/**
 * enum gift_mw_state - whether a window may be accessed
 * @GIFT_MW_FREE: not bound (allocated, unbound, or invalidated)
 * @GIFT_MW_VALID: bound to an MR; its rkey gives the window's access
 * @GIFT_MW_DEAD: deallocated; only lockless lookups still see it
 */
enum gift_mw_state {
	GIFT_MW_FREE,
	GIFT_MW_VALID,
	GIFT_MW_DEAD,
};

/**
 * struct gift_mw - a memory window
 * @gdev: device
 * @type: IB_MW_TYPE_1 or IB_MW_TYPE_2 (type 2B: bound to one QP)
 * @index: key index, bits 8..31 of every rkey of this window; never 0
 * @pd: protection domain, outlives the window (ib_core counts it)
 * @lock: protects everything below
 * @state: enum gift_mw_state
 * @rkey: the rkey that reaches the window while valid
 * @mr: the MR bound, referenced and counted in its nr_mw, while valid
 * @addr: first address of the window as rkey users name it (0 for a
 *	zero-based window)
 * @mr_iova: address of the window's first byte in @mr
 * @length: bytes
 * @access: IB_ACCESS_REMOTE_* granted, and IB_ZERO_BASED
 * @qpn: type 2: number of the QP the window is bound to
 * @rcu: frees the window after lockless lookups are done with it
 *
 * Locking:
 *   @gdev, @type, @index, @pd   constant
 *   the rest                    @lock, taken with interrupts disabled
 *                               (the requester binds, the responder
 *                               resolves, in any context); the MR's own
 *                               lock nests inside it
 *
 * ib_core allocates the struct ib_mw (struct gift_ib_mw) and frees it as
 * soon as dealloc_mw returns, so the window the data path finds by key
 * under RCU is this separate object.
 */
struct gift_mw {
	struct gift_dev *gdev;
	enum ib_mw_type type;
	u32 index;
	struct ib_pd *pd;
	spinlock_t lock;	/* see the lock table above */
	enum gift_mw_state state;
	u32 rkey;
	struct gift_mr *mr;
	u64 addr;
	u64 mr_iova;
	u64 length;
	int access;
	u32 qpn;
	struct rcu_head rcu;
};

/**
 * struct gift_ib_mw - the ib_core object of a window
 * @ibmw: ib_core's; must stay first
 * @mw: the window, freed (RCU deferred) by dealloc_mw
 */
struct gift_ib_mw {
	struct ib_mw ibmw;
	struct gift_mw *mw;
};

static inline struct gift_ib_mw *to_gift_ib_mw(struct ib_mw *ibmw)
{
	return container_of(ibmw, struct gift_ib_mw, ibmw);
}

/**
 * struct gift_mw_bind - a bind work request, as queued on the send queue
 * @mw_index: key index of the window (not a pointer: the window may be
 *	deallocated before the WQE executes, and is then not found)
 * @lkey: lkey of the MR (0: none, to unbind a type 1 window)
 * @rkey: the window's new rkey; its index must be @mw_index
 * @addr: first address of the window in the MR
 * @length: bytes; 0 unbinds a type 1 window
 * @access: IB_ACCESS_REMOTE_* and IB_ZERO_BASED
 */
struct gift_mw_bind {
	u32 mw_index;
	u32 lkey;
	u32 rkey;
	u64 addr;
	u64 length;
	int access;
};

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_mw_ops;

void gift_mw_init_attr(struct ib_device_attr *attr);

/* The data path; any context but NMI, never sleep. */
int gift_mw_bind(struct gift_qp *qp, const struct gift_mw_bind *b);
int gift_mw_invalidate(struct gift_dev *gdev, u32 rkey, struct ib_pd *pd,
		       u32 qpn, bool remote);
int gift_mw_resolve(struct gift_dev *gdev, u32 rkey, struct ib_pd *pd,
		    u32 qpn, u64 *va, u64 len, int access,
		    struct gift_mr **mrp);

#endif /* GIFT_MW_H */
