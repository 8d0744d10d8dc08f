// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift memory windows (IBTA 10.6.7): type 1 and type 2B windows over
 * user MRs registered with IB_ACCESS_MW_BIND.
 *
 * Objects
 * -------
 * ib_core allocates the struct ib_mw (struct gift_ib_mw) and kfree()s it
 * as soon as dealloc_mw returns. The data path finds windows by rkey
 * without a lock, so the window itself is a separate struct gift_mw,
 * freed after an RCU grace period; the ib_mw only points to it.
 *
 * Keys
 * ----
 * Windows share the key table of MRs (gift_mr_table.keys): a window's
 * entry is its pointer tagged GIFT_KEY_MW, so an rkey names either one MR
 * or one window, and an index once given to a window is never an MR's.
 * rkey = index << 8 | key byte, as for MRs. The key byte of a type 1
 * window changes with every bind (the provider chooses it, as
 * ibv_inc_rkey() does); a type 2 window's is chosen by the consumer in
 * the bind work request.
 *
 * Binding
 * -------
 * A bind is a work request on the send queue (struct gift_mw_bind, posted
 * through the GIFT_IB_METHOD_QP_POST_MW method of gift_uapi.c) executed
 * in order by the requester like LOCAL_INV (gift_req.c); failing, it
 * completes with IB_WC_MW_BIND_ERR and the QP goes to the error state. A
 * bound window holds a reference on its MR and counts in the MR's nr_mw,
 * so the MR can be neither deregistered nor re-registered (-EBUSY) until
 * the window is unbound (type 1 bind of length 0, rebind elsewhere),
 * invalidated (type 2: LOCAL_INV, or a SEND_WITH_INV arriving on the QP
 * it is bound to) or deallocated. The work request names the window and
 * the MR by key, not by pointer: either may be gone by the time it
 * executes, and the bind then fails.
 *
 * A type 2 window remembers the number of its QP, not the QP: a window
 * whose QP was destroyed stays bound, and reachable by no request, until
 * it is invalidated locally or deallocated. QPNs are allocated cyclically
 * over 24 bits (gift_qp.c), so a new QP takes that number only after
 * some 16 million others.
 *
 * Access
 * ------
 * The responder (gift_resp.c) resolves an rkey naming a window into its
 * MR and the address in it (gift_mw_resolve()): the window must be valid,
 * of the QP's PD, bound to that QP for type 2, grant the access, and
 * contain the range; the MR then only needs the local access (write for
 * remote write and atomics). A request that resolved keeps its MR
 * reference to its end, as one through an MR's own rkey does; a window
 * unbound meanwhile stops new requests, not one already accepted.
 */

#include <linux/overflow.h>
#include <linux/random.h>
#include <linux/slab.h>

#include "gift.h"
#include "gift_mw.h"

/* Access flags a window may have. */
#define GIFT_MW_ACCESS	(IB_ACCESS_REMOTE_READ | IB_ACCESS_REMOTE_WRITE | \
			 IB_ACCESS_REMOTE_ATOMIC | IB_ZERO_BASED)

/**
 * gift_mw_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 *
 * Type 1 and type 2B windows (type 2A, not tied to a QP, is not offered).
 */
void gift_mw_init_attr(struct ib_device_attr *attr)
{
	attr->device_cap_flags |= IB_DEVICE_MEM_WINDOW |
				  IB_DEVICE_MEM_WINDOW_TYPE_2B;
	attr->max_mw = GIFT_MAX_MW;
}

/* The window at key index @index, or NULL; under rcu_read_lock(). */
static struct gift_mw *gift_mw_find(struct gift_dev *gdev, u32 index)
{
	void *entry = xa_load(&gdev->mr_table.keys, index);

	if (!entry || xa_pointer_tag(entry) != GIFT_KEY_MW)
		return NULL;
	return xa_untag_pointer(entry);
}

/*
 * Whether @mw may be bound by a QP of @pd as @b asks; under its lock.
 * -EINVAL for a deallocated window, one of another PD, a type 2 window
 * that is still bound, and a bind without an MR (except a type 1 unbind).
 */
static int gift_mw_bind_check(struct gift_mw *mw, struct ib_pd *pd,
			      const struct gift_mr *mr,
			      const struct gift_mw_bind *b)
{
	lockdep_assert_held(&mw->lock);
	if (mw->state == GIFT_MW_DEAD || mw->pd != pd)
		return -EINVAL;
	if (mw->type == IB_MW_TYPE_2 && mw->state != GIFT_MW_FREE)
		return -EINVAL;
	if (!mr && (b->length || mw->type == IB_MW_TYPE_2))
		return -EINVAL;
	return 0;
}

/*
 * Makes @mw a window of @b over @mr (NULL: unbinds a type 1 window);
 * under its lock. Returns the MR it was bound to before, if any.
 */
static struct gift_mr *gift_mw_set(struct gift_mw *mw, struct gift_mr *mr,
				   const struct gift_mw_bind *b, u32 qpn)
{
	struct gift_mr *old = mw->state == GIFT_MW_VALID ? mw->mr : NULL;

	lockdep_assert_held(&mw->lock);
	mw->rkey = b->rkey;
	mw->mr = mr;
	mw->state = mr ? GIFT_MW_VALID : GIFT_MW_FREE;
	mw->addr = b->access & IB_ZERO_BASED ? 0 : b->addr;
	mw->mr_iova = b->addr;
	mw->length = b->length;
	mw->access = b->access;
	mw->qpn = qpn;
	return old;
}

/**
 * gift_mw_bind() - execute a bind work request
 * @qp: the QP it was posted on
 * @b: the work request
 *
 * A type 1 window may be rebound while bound; a bind of length 0 unbinds
 * it. A type 2 window must be free, and is bound to @qp. The rkey's index
 * must be the window's. The MR must allow the binding (gift_mr_bind_mw()).
 *
 * Context: any context but NMI (the requester); does not sleep.
 *
 * Return: 0; -EINVAL when the window or the MR is not found, or for bad
 * fields (access flags other than remote read, write, atomic and
 * zero-based; a range that wraps; an rkey of another window); the errors
 * of gift_mw_bind_check() and gift_mr_bind_mw().
 */
int gift_mw_bind(struct gift_qp *qp, const struct gift_mw_bind *b)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	struct ib_pd *pd = qp->ibqp.pd;
	struct gift_mr *mr = NULL, *old = NULL;
	struct gift_mw *mw;
	unsigned long flags;
	bool use_mr;
	u64 end;
	int err;

	if ((b->access & ~GIFT_MW_ACCESS) || b->rkey >> 8 != b->mw_index ||
	    check_add_overflow(b->addr, b->length, &end)) {
		gift_dbg(gdev, "bind: bad rkey %#x or range %#llx+%llu\n",
			 b->rkey, b->addr, b->length);
		return -EINVAL;
	}
	if (b->lkey) {
		mr = gift_mr_get(gdev, b->lkey);
		if (!mr)
			return -EINVAL;
	}

	rcu_read_lock();
	mw = gift_mw_find(gdev, b->mw_index);
	if (!mw) {
		err = -EINVAL;
		goto out_unlock_rcu;
	}
	spin_lock_irqsave(&mw->lock, flags);
	err = gift_mw_bind_check(mw, pd, mr, b);
	use_mr = mr && (b->length || mw->type == IB_MW_TYPE_2);
	if (!err && use_mr)
		err = gift_mr_bind_mw(mr, pd, b->addr, b->length,
				      b->access & ~IB_ZERO_BASED);
	if (!err)
		old = gift_mw_set(mw, use_mr ? mr : NULL, b,
				  qp->ibqp.qp_num);
	spin_unlock_irqrestore(&mw->lock, flags);
out_unlock_rcu:
	rcu_read_unlock();

	if (old)
		gift_mr_unbind_mw(old);
	/* The window keeps the reference of an MR it was bound to. */
	if (mr && (err || !use_mr))
		gift_mr_put(mr);
	return err;
}

/**
 * gift_mw_invalidate() - invalidate a type 2 window
 * @gdev: device
 * @rkey: the rkey to invalidate
 * @pd: the QP's protection domain
 * @qpn: @remote: the QP the SEND_WITH_INV arrived on
 * @remote: for a SEND_WITH_INV, else for a LOCAL_INV
 *
 * The window must be a type 2 window of @pd with this rkey; a remote
 * invalidation needs it bound, to the QP the request came on. A local
 * invalidation of a free window succeeds, as for MRs.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -ENOENT when no window has @rkey's index (it may be an MR's);
 * -EINVAL otherwise.
 */
int gift_mw_invalidate(struct gift_dev *gdev, u32 rkey, struct ib_pd *pd,
		       u32 qpn, bool remote)
{
	struct gift_mr *old = NULL;
	struct gift_mw *mw;
	unsigned long flags;
	int err = -EINVAL;

	rcu_read_lock();
	mw = gift_mw_find(gdev, rkey >> 8);
	if (!mw) {
		rcu_read_unlock();
		return -ENOENT;
	}
	spin_lock_irqsave(&mw->lock, flags);
	if (mw->type == IB_MW_TYPE_2 && mw->state != GIFT_MW_DEAD &&
	    mw->rkey == rkey && mw->pd == pd &&
	    (!remote || (mw->state == GIFT_MW_VALID && mw->qpn == qpn))) {
		if (mw->state == GIFT_MW_VALID)
			old = mw->mr;
		mw->mr = NULL;
		mw->state = GIFT_MW_FREE;
		err = 0;
	}
	spin_unlock_irqrestore(&mw->lock, flags);
	rcu_read_unlock();

	if (old)
		gift_mr_unbind_mw(old);
	if (err)
		gift_dbg(gdev, "MW %#x: %s invalidation refused\n", rkey,
			 remote ? "remote" : "local");
	return err;
}

/**
 * gift_mw_resolve() - the MR behind a window's rkey, for the responder
 * @gdev: device
 * @rkey: the request's rkey
 * @pd: the QP's protection domain
 * @qpn: the QP's number
 * @va: the request's address; on success, the address in the MR
 * @len: bytes accessed
 * @access: IB_ACCESS_REMOTE_READ, _WRITE or _ATOMIC needed
 * @mrp: on success, the MR, with a reference for the caller
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -ENOENT when no window has @rkey's index (it may be an MR's);
 * -EINVAL when the window is not valid with this rkey, is of another PD
 * or, type 2, bound to another QP; -EACCES when it does not grant
 * @access; -EFAULT when the range is not inside it.
 */
int gift_mw_resolve(struct gift_dev *gdev, u32 rkey, struct ib_pd *pd,
		    u32 qpn, u64 *va, u64 len, int access,
		    struct gift_mr **mrp)
{
	struct gift_mw *mw;
	unsigned long flags;
	int err = -EINVAL;
	u64 off;

	rcu_read_lock();
	mw = gift_mw_find(gdev, rkey >> 8);
	if (!mw) {
		rcu_read_unlock();
		return -ENOENT;
	}
	spin_lock_irqsave(&mw->lock, flags);
	if (mw->state != GIFT_MW_VALID || mw->rkey != rkey || mw->pd != pd ||
	    (mw->type == IB_MW_TYPE_2 && mw->qpn != qpn))
		goto out_unlock;
	err = -EACCES;
	if (access & ~mw->access)
		goto out_unlock;
	err = -EFAULT;
	off = *va - mw->addr;
	if (*va < mw->addr || off > mw->length || len > mw->length - off)
		goto out_unlock;
	*va = mw->mr_iova + off;
	gift_mr_hold(mw->mr);
	*mrp = mw->mr;
	err = 0;
out_unlock:
	spin_unlock_irqrestore(&mw->lock, flags);
	rcu_read_unlock();
	return err;
}

/**
 * gift_alloc_mw() - allocate a memory window
 * @ibmw: ib_core's object, with its device, PD and type set
 * @udata: user data; the provider sends none
 *
 * The window starts free; ibmw->rkey is its first rkey.
 *
 * Return: 0; -EINVAL for driver input or an unknown type; -ENOMEM at
 * max_mw or out of memory.
 */
static int gift_alloc_mw(struct ib_mw *ibmw, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibmw->device);
	struct gift_mw *mw;
	unsigned long flags;
	int err;

	if (gift_udata_has_input(udata) ||
	    (ibmw->type != IB_MW_TYPE_1 && ibmw->type != IB_MW_TYPE_2)) {
		gift_dbg(gdev, "bad MW allocation (type %d)\n", ibmw->type);
		return -EINVAL;
	}
	if (!atomic_add_unless(&gdev->mr_table.num_mw, 1, gdev->attr.max_mw)) {
		gift_dbg(gdev, "max_mw (%d) reached\n", gdev->attr.max_mw);
		return -ENOMEM;
	}
	mw = kzalloc(sizeof(*mw), GFP_KERNEL);
	if (!mw) {
		err = -ENOMEM;
		goto out_dec;
	}
	mw->gdev = gdev;
	mw->type = ibmw->type;
	mw->pd = ibmw->pd;
	spin_lock_init(&mw->lock);
	mw->state = GIFT_MW_FREE;

	err = gift_key_insert(gdev, xa_tag_pointer(mw, GIFT_KEY_MW),
			      &mw->index);
	if (err)
		goto out_free;
	spin_lock_irqsave(&mw->lock, flags);
	mw->rkey = mw->index << 8 | get_random_u8();
	spin_unlock_irqrestore(&mw->lock, flags);
	ibmw->rkey = mw->rkey;
	to_gift_ib_mw(ibmw)->mw = mw;
	return 0;

out_free:
	kfree(mw);
out_dec:
	atomic_dec(&gdev->mr_table.num_mw);
	return err;
}

/**
 * gift_dealloc_mw() - free a memory window; never fails
 * @ibmw: the window
 *
 * A bound window is unbound first: its MR may then be deregistered.
 *
 * Return: 0.
 */
static int gift_dealloc_mw(struct ib_mw *ibmw)
{
	struct gift_mw *mw = to_gift_ib_mw(ibmw)->mw;
	struct gift_dev *gdev = mw->gdev;
	struct gift_mr *old = NULL;
	unsigned long flags;

	xa_erase(&gdev->mr_table.keys, mw->index);
	spin_lock_irqsave(&mw->lock, flags);
	if (mw->state == GIFT_MW_VALID)
		old = mw->mr;
	mw->mr = NULL;
	mw->state = GIFT_MW_DEAD;
	spin_unlock_irqrestore(&mw->lock, flags);

	if (old)
		gift_mr_unbind_mw(old);
	atomic_dec(&gdev->mr_table.num_mw);
	kfree_rcu(mw, rcu);
	return 0;
}

const struct ib_device_ops gift_mw_ops = {
	.alloc_mw = gift_alloc_mw,
	.dealloc_mw = gift_dealloc_mw,

	INIT_RDMA_OBJ_SIZE(ib_mw, gift_ib_mw, ibmw),
};
