// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift memory regions: user MRs pinned by gift_umem, the DMA MR of
 * kernel PDs, fast-register MRs of kernel ULPs, their keys, and the
 * functions the data path uses to find MRs and access their memory.
 *
 * Objects
 * -------
 * Every MR is a struct gift_mr allocated here (ib_core does not allocate
 * MRs for drivers) and returned to ib_core as &mr->ibmr. Three types:
 *
 * - IB_MR_TYPE_USER (reg_user_mr): a gift_umem pins the user range; the
 *   MR maps [iova, iova + length) onto it, and iova may differ from the
 *   user address. With IB_ACCESS_ON_DEMAND a gift_odp page table takes
 *   the umem's place: nothing is pinned, pages are faulted in when the
 *   device needs them (gift_odp.c) and copies of pages not mapped yet
 *   fail with -EAGAIN until gift_mr_fault() mapped them.
 * - IB_MR_TYPE_DMA (get_dma_mr, one per kernel PD): the device has no DMA
 *   device, so ib_core puts kernel virtual addresses into sge.addr; the
 *   DMA MR maps every address onto itself and accesses it with memcpy().
 * - IB_MR_TYPE_MEM_REG (alloc_mr): a page list of kernel virtual
 *   addresses, filled by map_mr_sg and made accessible by an IB_WR_REG_MR
 *   work request (gift_mr_fast_reg()), which also sets the key's low byte
 *   and the access flags; IB_WR_LOCAL_INV and IB_WR_SEND_WITH_INV make it
 *   inaccessible again (gift_mr_local_inv(), gift_mr_remote_inv()).
 *
 * How the data path reaches an MR's bytes is not decided by its type but
 * by its memory kind, an ops table chosen at creation (gift_mr.mem):
 * pinned umem, explicit ODP, implicit ODP, DMA, fast-register page list
 * (gift_mr_mem.c). gift_mr_copy() and gift_mr_atomic() check the MR's
 * state and range and then only ask that table where each page is.
 *
 * Keys
 * ----
 * lkey == rkey == index << 8 | key byte. The 24-bit index is random (so
 * keys do not reveal or predict each other) and never 0, so key 0 is never
 * valid; the key byte is random at creation and chosen by the ULP for
 * fast-register MRs. gdev->mr_table.keys maps index to MR; an MR is
 * inserted only once it is completely built, so that nothing can fail
 * after it became visible, and is removed first thing in dereg_mr.
 *
 * Lifetime
 * --------
 * The ib_mr handle holds one reference; the data path holds one per
 * in-flight use (gift_mr_get() by key, or gift_mr_hold()), and each bound
 * memory window one (gift_mw.c). dereg_mr fails only while windows are
 * bound (-EBUSY, counted in @nr_mw) and never waits for other users:
 *
 *   1. under @lock (exclusive), check @nr_mw, mark the MR GIFT_MR_DEAD
 *      and detach its backing memory (umem, page lists). Every access to
 *      that memory happens under @lock (shared) after checking the state,
 *      so once the lock is taken no one uses the memory any more, and no
 *      one will; no window can bind a dead MR;
 *   2. remove the key from the table: no new lookups find the MR;
 *   3. release the backing memory (unpin: this sleeps, hence here and not
 *      in the last put, which may run in softirq);
 *   4. drop the handle's reference.
 *
 * The struct itself is freed when the last reference is dropped, after an
 * RCU grace period (kfree_rcu()), because gift_mr_get() finds MRs in the
 * xarray without a lock and may still be looking at one whose reference
 * count just dropped to 0. The MR counts against max_mr until then.
 *
 * Locking
 * -------
 * @lock is an rwlock taken with interrupts disabled, so the data path may
 * use MRs from any context (process, softirq, under its own irq-safe
 * locks), and so may the work requests that change an MR (REG_MR,
 * invalidation); the verbs that change one (rereg, dereg) run in process
 * context, as they pin or unpin, and hold @lock only to publish. Copies drop
 * and retake it every page so that interrupts are never disabled for
 * longer than one page's memcpy(). The page table of an ODP MR is
 * protected by @lock as well (gift_odp.c). @lock is a leaf lock. The key
 * table's own lock is taken only in process context and never together
 * with @lock.
 *
 * The verbs themselves are serialised per MR by ib_core (rereg and dereg
 * take the uobject exclusively), so they read their own MR's fields
 * without @lock and take it only to publish changes to the data path.
 */

#include <linux/log2.h>
#include <linux/overflow.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <rdma/restrack.h>
#include <rdma/uverbs_ioctl.h>

#include "gift.h"

/* Largest key index; indices are drawn from [1, GIFT_MR_INDEX_MAX]. */
#define GIFT_MR_INDEX_MAX	0xffffff
/*
 * Random indices tried before giving up. The table is at most
 * GIFT_MAX_MR / GIFT_MR_INDEX_MAX (0.4%) full, so a second try is already
 * rare; running out means something is badly wrong.
 */
#define GIFT_MR_INDEX_TRIES	32

/*
 * Access flags an MR keeps: what it grants, and IB_ACCESS_GIFT, which
 * only user MRs honour (gift_umem.c) and which rereg must see to keep.
 * IB_ACCESS_FLUSH_GLOBAL lets RDMA FLUSH with the global placement type
 * at the MR (gift_resp.c). IB_ACCESS_FLUSH_PERSISTENT is not among them:
 * making an MR's bytes persistent needs pmem behind it and a cache
 * write-back of its pages, and the device has neither (pinned MRs are
 * refused over fs-dax mappings, gift_umem.c, and nothing writes back an
 * ODP MR's pages), so the flag is refused with -EOPNOTSUPP, as ib_core
 * does first for user MRs: the device does not claim
 * IB_DEVICE_FLUSH_PERSISTENT.
 */
#define GIFT_MR_ACCESS		(IB_ACCESS_LOCAL_WRITE | IB_ACCESS_REMOTE_READ | \
				 IB_ACCESS_REMOTE_WRITE | \
				 IB_ACCESS_REMOTE_ATOMIC | IB_ACCESS_GIFT | \
				 IB_ACCESS_ON_DEMAND | IB_ACCESS_FLUSH_GLOBAL | \
				 IB_ACCESS_MW_BIND)
/*
 * Access flags accepted and ignored: the HUGETLB hint, and the rest of
 * the optional range (bits 20..29: relaxed ordering and bits not defined
 * yet), which drivers must ignore when they do not implement a bit.
 */
#define GIFT_MR_ACCESS_IGNORED	(IB_ACCESS_HUGETLB | IB_ACCESS_OPTIONAL)

/**
 * gift_mr_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 *
 * IB_DEVICE_MEM_MGT_EXTENSIONS: fast-register MRs (REG_MR), local
 * invalidation and send with invalidate work end to end through the
 * requester and the responder (tested by the ktest kernel module).
 *
 * On-demand paging: explicit and implicit ODP MRs of RC QPs, for every
 * opcode and for receive WQEs of QPs and SRQs, and prefetch (advise_mr).
 */
void gift_mr_init_attr(struct ib_device_attr *attr)
{
	attr->device_cap_flags |= IB_DEVICE_MEM_MGT_EXTENSIONS;
	attr->kernel_cap_flags |= IBK_ON_DEMAND_PAGING;
	attr->odp_caps.general_caps = IB_ODP_SUPPORT | IB_ODP_SUPPORT_IMPLICIT;
	attr->odp_caps.per_transport_caps.rc_odp_caps =
		IB_ODP_SUPPORT_SEND | IB_ODP_SUPPORT_RECV |
		IB_ODP_SUPPORT_WRITE | IB_ODP_SUPPORT_READ |
		IB_ODP_SUPPORT_ATOMIC | IB_ODP_SUPPORT_SRQ_RECV;
	attr->max_mr = GIFT_MAX_MR;
	attr->max_mr_size = GIFT_MAX_MR_SIZE;
	attr->max_fast_reg_page_list_len = GIFT_MAX_FAST_REG_PAGES;
}

/**
 * gift_mr_table_init() - initialise an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_mr_table_init(struct gift_mr_table *table)
{
	xa_init(&table->keys);
	atomic_set(&table->num_mr, 0);
	atomic_set(&table->num_mw, 0);
}

/**
 * gift_mr_table_destroy() - release an empty table
 * @table: table embedded in struct gift_dev
 *
 * Every MR was deregistered and every data path reference dropped before
 * dealloc_driver; a leftover MR is a leaked reference.
 */
void gift_mr_table_destroy(struct gift_mr_table *table)
{
	WARN_ON(!xa_empty(&table->keys));
	WARN_ON(atomic_read(&table->num_mr));
	WARN_ON(atomic_read(&table->num_mw));
	xa_destroy(&table->keys);
}

/*
 * Validates access flags of a registration or of IB_WR_REG_MR: -EINVAL
 * for undefined bits, for remote write or atomic without local write
 * (ib_core checks both for user MRs first) and for IB_ACCESS_GIFT with
 * write access (gift_access_gift_ok()), -EOPNOTSUPP for defined
 * features the device does not implement (zero-based MRs, persistent
 * flush; on-demand paging and memory window binding except for user MRs,
 * @user: kernel ULPs have no bind verb).
 */
static int gift_mr_check_access(struct gift_dev *gdev, int access, bool user)
{
	if (access & ~IB_ACCESS_SUPPORTED) {
		gift_dbg(gdev, "undefined access flags %#x\n", access);
		return -EINVAL;
	}
	if (!gift_access_gift_ok(access)) {
		gift_dbg(gdev, "gift MR with write access %#x\n",
			 access);
		return -EINVAL;
	}
	if ((access & (IB_ACCESS_REMOTE_WRITE | IB_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IB_ACCESS_LOCAL_WRITE)) {
		gift_dbg(gdev, "remote write/atomic without local write\n");
		return -EINVAL;
	}
	if (!user && (access & (IB_ACCESS_ON_DEMAND | IB_ACCESS_MW_BIND))) {
		gift_dbg(gdev, "on-demand paging or MW bind of a kernel MR\n");
		return -EOPNOTSUPP;
	}
	if (access & ~(GIFT_MR_ACCESS | GIFT_MR_ACCESS_IGNORED)) {
		gift_dbg(gdev, "unsupported access flags %#x\n",
			 access & ~(GIFT_MR_ACCESS | GIFT_MR_ACCESS_IGNORED));
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * Allocates an unpublished MR holding one reference and counting against
 * max_mr: -ENOMEM at the limit or out of memory. Undo with gift_mr_put().
 * @mem is the kind of memory it will have, for good.
 */
static struct gift_mr *gift_mr_alloc(struct gift_dev *gdev, struct ib_pd *pd,
				     enum ib_mr_type type,
				     const struct gift_mr_mem_ops *mem,
				     int access)
{
	struct gift_mr *mr;

	if (!atomic_add_unless(&gdev->mr_table.num_mr, 1, gdev->attr.max_mr)) {
		gift_dbg(gdev, "max_mr (%d) reached\n", gdev->attr.max_mr);
		return ERR_PTR(-ENOMEM);
	}
	mr = kzalloc(sizeof(*mr), GFP_KERNEL);
	if (!mr) {
		atomic_dec(&gdev->mr_table.num_mr);
		return ERR_PTR(-ENOMEM);
	}
	mr->gdev = gdev;
	mr->type = type;
	mr->mem = mem;
	refcount_set(&mr->ref, 1);
	rwlock_init(&mr->lock);
	mr->state = GIFT_MR_FREE;
	mr->access = access & GIFT_MR_ACCESS;
	mr->pd = pd;
	return mr;
}

/**
 * gift_key_insert() - give an MR or a memory window a key index
 * @gdev: device
 * @entry: the MR, or the window tagged with xa_tag_pointer(GIFT_KEY_MW)
 * @index: set to the random index @entry is now found at
 *
 * Context: process context; sleeps.
 *
 * Return: 0, or -ENOMEM (out of memory, or, in theory only, no free index
 * found).
 */
int gift_key_insert(struct gift_dev *gdev, void *entry, u32 *index)
{
	int tries, err = -EBUSY;

	for (tries = 0; tries < GIFT_MR_INDEX_TRIES && err == -EBUSY; tries++) {
		*index = 1 + get_random_u32_below(GIFT_MR_INDEX_MAX);
		err = xa_insert(&gdev->mr_table.keys, *index, entry,
				GFP_KERNEL);
	}
	if (err) {
		gift_dbg(gdev, "no key index: %d\n", err);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Gives a fully built MR its keys and makes it visible to gift_mr_get().
 * Nothing may fail after this succeeded. Returns 0 or -ENOMEM.
 */
static int gift_mr_publish(struct gift_mr *mr)
{
	int err;

	/* Keys first: a lookup may find the MR as soon as it is inserted. */
	mr->index = 0;
	mr->key = 0;
	err = gift_key_insert(mr->gdev, mr, &mr->index);
	if (err)
		return err;
	WRITE_ONCE(mr->key, mr->index << 8 | get_random_u8());
	mr->ibmr.lkey = mr->key;
	mr->ibmr.rkey = mr->key;
	return 0;
}

/* Frees the MR once lockless lookups cannot see it any more. */
static void gift_mr_free(struct gift_mr *mr)
{
	gift_odp_free(mr->odp);
	atomic_dec(&mr->gdev->mr_table.num_mr);
	kfree_rcu(mr, rcu);
}

/**
 * gift_mr_get() - look an MR up by key, for the data path
 * @gdev: device
 * @key: lkey or rkey from a work request or a packet
 *
 * All 32 bits of @key must match, so a key whose low byte was changed by
 * IB_WR_REG_MR no longer finds the MR. A deregistered MR is not found.
 * The MR may be in any state; gift_mr_check() tells whether it may be
 * accessed.
 *
 * Context: any context but NMI.
 *
 * Return: the MR with a reference held (drop with gift_mr_put()), or NULL.
 */
struct gift_mr *gift_mr_get(struct gift_dev *gdev, u32 key)
{
	struct gift_mr *mr;
	void *entry;

	rcu_read_lock();
	entry = xa_load(&gdev->mr_table.keys, key >> 8);
	mr = entry;
	if (!entry || xa_pointer_tag(entry) ||
	    READ_ONCE(mr->key) != key || !refcount_inc_not_zero(&mr->ref))
		mr = NULL;
	rcu_read_unlock();
	return mr;
}

/**
 * gift_mr_hold() - take another reference on an MR
 * @mr: MR the caller already holds a reference on, or whose handle the
 *	caller's ULP keeps alive (the MR of an IB_WR_REG_MR work request)
 *
 * Context: any context but NMI.
 */
void gift_mr_hold(struct gift_mr *mr)
{
	refcount_inc(&mr->ref);
}

/**
 * gift_mr_put() - drop a reference
 * @mr: MR from gift_mr_get() or gift_mr_hold()
 *
 * The last reference frees the MR (after an RCU grace period). Its backing
 * memory was already released by dereg_mr, so this never sleeps.
 *
 * Context: any context but NMI.
 */
void gift_mr_put(struct gift_mr *mr)
{
	if (refcount_dec_and_test(&mr->ref))
		gift_mr_free(mr);
}

/* [iova, iova + len) inside the MR: 0 or -EFAULT. */
static int gift_mr_check_range(struct gift_mr *mr, u64 iova, u64 len)
{
	u64 off;

	lockdep_assert_held(&mr->lock);
	if (mr->type == IB_MR_TYPE_DMA)
		return iova + len < iova ? -EFAULT : 0;
	if (iova < mr->iova)
		return -EFAULT;
	off = iova - mr->iova;
	if (off > mr->length || len > mr->length - off)
		return -EFAULT;
	return 0;
}

/**
 * gift_mr_check() - may the data path access an MR this way?
 * @mr: MR from gift_mr_get()
 * @pd: the QP's protection domain
 * @iova: first address accessed
 * @len: bytes accessed; 0 is allowed anywhere inside the MR or at its end
 * @access: IB_ACCESS_LOCAL_WRITE, IB_ACCESS_REMOTE_READ,
 *	IB_ACCESS_REMOTE_WRITE and/or IB_ACCESS_REMOTE_ATOMIC needed; 0 for a
 *	local read, which every MR allows
 *
 * The answer holds until the MR is changed by a verb or work request
 * (rereg, dereg, invalidation); gift_mr_copy() and gift_mr_atomic()
 * recheck what memory safety needs.
 *
 * Context: any context but NMI.
 *
 * Return: 0; -EINVAL when the MR is not valid (a fast-register MR not
 * registered or invalidated, a deregistered MR) or belongs to another PD;
 * -EACCES when it lacks a requested access; -EFAULT when the range is not
 * inside it.
 */
int gift_mr_check(struct gift_mr *mr, struct ib_pd *pd, u64 iova, u64 len,
		  int access)
{
	unsigned long flags;
	int err;

	read_lock_irqsave(&mr->lock, flags);
	if (mr->state != GIFT_MR_VALID || mr->pd != pd)
		err = -EINVAL;
	else if (access & ~mr->access)
		err = -EACCES;
	else
		err = gift_mr_check_range(mr, iova, len);
	read_unlock_irqrestore(&mr->lock, flags);
	return err;
}

/*
 * Copies [iova, iova + len) of a valid MR under its lock: one span() of
 * the MR's memory kind per page (or page-list entry), then a memcpy(),
 * or, with @skb, a copy from the skb's bytes at @skb_off on (into the
 * MR only). An error of span() stops the copy there; bytes before it
 * were copied.
 */
static int gift_mr_copy_locked(struct gift_mr *mr, u64 iova, void *buf,
			       const struct sk_buff *skb, u32 skb_off,
			       size_t len, bool to_mr)
{
	enum gift_mr_mem_access access = to_mr ? GIFT_MR_MEM_WRITE :
						 GIFT_MR_MEM_READ;
	struct gift_mr_mem_span span;
	size_t n;
	void *va;
	int err;

	lockdep_assert_held(&mr->lock);
	if (mr->state != GIFT_MR_VALID)
		return -EINVAL;
	err = gift_mr_check_range(mr, iova, len);
	if (err)
		return err;

	while (len) {
		err = mr->mem->span(mr, iova, access, &span);
		if (err)
			return err;
		n = min(len, span.len);
		va = gift_mr_mem_map(&span);
		if (skb)
			err = skb_copy_bits(skb, skb_off, va, n);
		else if (to_mr)
			memcpy(va, buf, n);
		else
			memcpy(buf, va, n);
		gift_mr_mem_unmap(&span, va, to_mr);
		if (err)
			return -EFAULT;
		iova += n;
		buf += n;
		skb_off += n;
		len -= n;
	}
	return 0;
}

/* gift_mr_copy() and gift_mr_copy_skb(): a page at a time, each locked. */
static int gift_mr_xfer(struct gift_mr *mr, u64 iova, void *buf,
			const struct sk_buff *skb, u32 skb_off, size_t len,
			bool to_mr)
{
	unsigned long flags;
	size_t n;
	int err;

	do {
		n = min_t(size_t, len, PAGE_SIZE);
		read_lock_irqsave(&mr->lock, flags);
		err = gift_mr_copy_locked(mr, iova, buf, skb, skb_off, n,
					  to_mr);
		read_unlock_irqrestore(&mr->lock, flags);
		if (err)
			return err;
		iova += n;
		buf += n;
		skb_off += n;
		len -= n;
	} while (len);
	return 0;
}

/**
 * gift_mr_copy() - copy between a kernel buffer and an MR
 * @mr: MR from gift_mr_get(), checked with gift_mr_check()
 * @iova: first address in the MR
 * @buf: kernel buffer of @len bytes
 * @len: bytes to copy
 * @to_mr: true to copy @buf into the MR, false to copy out of it
 *
 * Works for every kind of MR memory (struct gift_mr_mem_ops): pinned
 * user pages, ODP page tables, the DMA MR's kernel addresses, the page
 * list of a fast-register MR. The copy is done a page at a time, each
 * under the MR's lock:
 * if the MR is invalidated, deregistered or re-registered meanwhile, the
 * copy stops (or continues in the new translation) at a page boundary,
 * and never touches memory the MR no longer holds.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EINVAL when the MR is not (or no longer) valid; -EFAULT when
 * the range is not inside the MR; -EACCES when writing a user MR whose
 * pages were pinned read-only (an access check the caller skipped);
 * -EAGAIN when a page of an ODP MR is not mapped for this access yet:
 * gift_mr_fault() it (in process context) and copy again.
 */
int gift_mr_copy(struct gift_mr *mr, u64 iova, void *buf, size_t len,
		 bool to_mr)
{
	return gift_mr_xfer(mr, iova, buf, NULL, 0, len, to_mr);
}

/**
 * gift_mr_copy_skb() - copy bytes of a received packet into an MR
 * @mr: MR from gift_mr_get(), checked with gift_mr_check()
 * @iova: first address in the MR
 * @skb: the packet, linear or not
 * @off: offset of the first byte in @skb (from skb->data)
 * @len: bytes to copy, all inside @skb
 *
 * The one copy of the receive path: from the skb, fragments included,
 * straight into the MR's memory, as gift_mr_copy() does from a buffer.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: as gift_mr_copy(); -EFAULT also when @skb is shorter than
 * @off + @len.
 */
int gift_mr_copy_skb(struct gift_mr *mr, u64 iova, const struct sk_buff *skb,
		     u32 off, size_t len)
{
	return gift_mr_xfer(mr, iova, NULL, skb, off, len, true);
}

/**
 * gift_mr_skb_frags() - attach bytes of an MR to a packet, without copying
 * @mr: MR from gift_mr_get(), checked with gift_mr_check()
 * @iova: first address in the MR
 * @skb: packet to append page fragments to
 * @len: bytes wanted
 * @max_frags: leave @skb with at most this many fragments
 *
 * Only memory whose pages stay put for the MR's life can be sent this
 * way: the pinned (or, for a gift MR, referenced) pages of a user MR
 * (gift_mr_mem_umem). Each fragment holds its own page reference, taken
 * here under the MR's lock, so the page outlives a dereg, rereg or
 * munmap while the packet is queued, looped back or dropped late; the
 * bytes are read when the ICRC is computed and again when the receiver
 * copies them, so the caller must only send memory the verbs say is
 * the device's until the send completes (see gift_req.c). Adjacent bytes
 * of one page extend the last fragment. Any other kind (ODP, whose
 * pages an invalidation may take away; fast-register and DMA MRs, whose
 * kernel addresses may be slab or vmalloc memory, which cannot be page
 * fragments) attaches nothing: copy instead.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: bytes attached, from 0 (another kind of memory, or no room for
 * a fragment) to @len; -EINVAL when the MR is not (or no longer) valid;
 * -EFAULT when the range is not inside it.
 */
int gift_mr_skb_frags(struct gift_mr *mr, u64 iova, struct sk_buff *skb,
		      u32 len, unsigned int max_frags)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	struct gift_mr_mem_span span;
	unsigned long flags;
	u32 done = 0, n;
	int i, err;

	if (mr->mem != &gift_mr_mem_umem)
		return 0;
	read_lock_irqsave(&mr->lock, flags);
	err = mr->state == GIFT_MR_VALID ? 0 : -EINVAL;
	if (!err)
		err = gift_mr_check_range(mr, iova, len);
	while (!err && done < len) {
		err = mr->mem->span(mr, iova + done, GIFT_MR_MEM_READ, &span);
		if (err)
			break;
		n = min_t(size_t, len - done, span.len);
		i = shinfo->nr_frags;
		if (skb_can_coalesce(skb, i, span.page, span.offset)) {
			skb_frag_size_add(&shinfo->frags[i - 1], n);
		} else {
			if (i >= max_frags)
				break;
			get_page(span.page);
			skb_fill_page_desc(skb, i, span.page, span.offset, n);
		}
		skb->len += n;
		skb->data_len += n;
		skb->truesize += n;
		done += n;
	}
	read_unlock_irqrestore(&mr->lock, flags);
	if (done)
		/* User pages: writable behind the skb's back (splice's rule). */
		shinfo->flags |= SKBFL_SHARED_FRAG;
	return done ? done : err;
}

/*
 * One 8-byte atomic operation on the mapped word @va (8-byte aligned):
 * a locked compare-and-exchange (or exchange, for an ATOMIC WRITE, which
 * is also a full barrier: every earlier store of the responder is
 * visible before it), atomic with respect to every other
 * atomic of any gift device and to the CPU's atomic instructions on the
 * same word; no lock of ours is involved. Returns the word's value
 * before the operation.
 */
static u64 gift_atomic64(u64 *va, enum gift_atomic_op op, u64 compare_add,
			 u64 swap)
{
	u64 orig;

	if (op == GIFT_ATOMIC_CMP_SWAP)
		return cmpxchg64(va, compare_add, swap);
	if (op == GIFT_ATOMIC_WRITE)
		return xchg(va, swap);
	orig = READ_ONCE(*va);
	while (!try_cmpxchg64(va, &orig, orig + compare_add))
		;
	return orig;
}

/**
 * gift_mr_atomic() - 8-byte atomic operation on an MR, for the responder
 * @mr: MR from gift_mr_get(), checked for IB_ACCESS_REMOTE_ATOMIC over
 *	8 bytes with gift_mr_check()
 * @iova: address of the operand; must be 8-byte aligned
 * @op: GIFT_ATOMIC_CMP_SWAP, GIFT_ATOMIC_FETCH_ADD or GIFT_ATOMIC_WRITE
 *	(for which the caller checked IB_ACCESS_REMOTE_WRITE instead)
 * @compare_add: compare value or addend
 * @swap: value a successful compare & swap stores
 * @orig: set to the operand's value before the operation, which the
 *	responder returns in the atomic ACK
 *
 * The operation is a locked compare-and-exchange on the word where the
 * MR's memory kind maps it (one span() call, GIFT_MR_MEM_ATOMIC). Values
 * are in host byte order.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EINVAL when the MR is not (or no longer) valid or the
 * operand is not 8-byte aligned (its iova, or the memory behind it: user
 * memory of a user MR registered with another in-page offset than its
 * iova, the page list of a fast-register MR whose iova was rebased; the
 * responder tests iova alignment itself when it must tell the cases
 * apart); -EFAULT when the 8 bytes are not inside the MR; -EACCES for
 * a user MR pinned (or an ODP MR registered) read-only; -EAGAIN when the
 * operand's page of an ODP MR is not mapped for writing yet (see
 * gift_mr_copy()).
 */
int gift_mr_atomic(struct gift_mr *mr, u64 iova, enum gift_atomic_op op,
		   u64 compare_add, u64 swap, u64 *orig)
{
	struct gift_mr_mem_span span;
	unsigned long flags;
	void *va;
	int err;

	read_lock_irqsave(&mr->lock, flags);
	err = -EINVAL;
	if (mr->state != GIFT_MR_VALID)
		goto out_unlock;
	err = gift_mr_check_range(mr, iova, sizeof(u64));
	if (err)
		goto out_unlock;
	err = -EINVAL;
	if (!IS_ALIGNED(iova, sizeof(u64)))
		goto out_unlock;

	err = mr->mem->span(mr, iova, GIFT_MR_MEM_ATOMIC, &span);
	if (err)
		goto out_unlock;
	va = gift_mr_mem_map(&span);
	*orig = gift_atomic64(va, op, compare_add, swap);
	gift_mr_mem_unmap(&span, va, true);
out_unlock:
	read_unlock_irqrestore(&mr->lock, flags);
	return err;
}

/**
 * gift_mr_fault() - map pages of an ODP MR for the device
 * @mr: MR, referenced by the caller
 * @iova: first address needed
 * @len: bytes needed, at least 1
 * @flags: GIFT_ODP_FAULT_WRITE and/or GIFT_ODP_FAULT_SNAPSHOT
 *
 * Also maps up to GIFT_ODP_FAULT_AHEAD bytes after the range, inside the
 * MR, when that works (gift_odp_fault()).
 *
 * Context: process context; sleeps.
 *
 * Return: 0; -EINVAL when the MR is not a valid ODP MR (any more);
 * -EFAULT when the range is not inside the MR, or as gift_odp_fault();
 * -EACCES for a write fault of a read-only MR; other errors of
 * gift_odp_fault().
 */
int gift_mr_fault(struct gift_mr *mr, u64 iova, u64 len, unsigned int flags)
{
	struct gift_odp *odp = NULL;
	unsigned long lflags;
	u64 off = 0, ahead = 0;
	int err;

	read_lock_irqsave(&mr->lock, lflags);
	err = -EINVAL;
	if (mr->state != GIFT_MR_VALID || !mr->odp || !len)
		goto out_unlock;
	err = gift_mr_check_range(mr, iova, len);
	if (err)
		goto out_unlock;
	err = -EACCES;
	if ((flags & GIFT_ODP_FAULT_WRITE) && !mr->odp->writable)
		goto out_unlock;
	err = 0;
	odp = mr->odp;
	off = iova - mr->iova;
	ahead = min_t(u64, GIFT_ODP_FAULT_AHEAD, mr->length - off - len);
out_unlock:
	read_unlock_irqrestore(&mr->lock, lflags);
	if (err)
		return err;
	return gift_odp_fault(odp, off, len, ahead, flags);
}

/* An asynchronous prefetch: its MRs are referenced until it ran. */
struct gift_prefetch {
	struct work_struct work;
	unsigned int flags;
	u32 num_sge;
	struct {
		struct gift_mr *mr;
		u64 addr;
		u32 length;
	} sge[] __counted_by(num_sge);
};

static void gift_prefetch_work(struct work_struct *work)
{
	struct gift_prefetch *pf = container_of(work, struct gift_prefetch,
						work);
	u32 i;

	for (i = 0; i < pf->num_sge; i++) {
		/* Advice: a prefetch that fails leaves faults for later. */
		gift_mr_fault(pf->sge[i].mr, pf->sge[i].addr,
			      pf->sge[i].length, pf->flags);
		gift_mr_put(pf->sge[i].mr);
	}
	kfree(pf);
}

/*
 * The ODP MR of @sge for a prefetch in @pd, referenced, or ERR_PTR():
 * -EINVAL for a key naming no MR, an MR of another PD or one without
 * on-demand paging, -EACCES for a write prefetch of an MR without local
 * write access, -EFAULT for a range outside the MR.
 */
static struct gift_mr *gift_prefetch_mr(struct gift_dev *gdev,
					struct ib_pd *pd,
					const struct ib_sge *sge, bool write)
{
	struct gift_mr *mr = gift_mr_get(gdev, sge->lkey);
	int err;

	if (!mr)
		return ERR_PTR(-EINVAL);
	err = gift_mr_check(mr, pd, sge->addr, sge->length,
			    write ? IB_ACCESS_LOCAL_WRITE : 0);
	if (!err && !mr->odp)
		err = -EINVAL;
	if (err) {
		gift_mr_put(mr);
		return ERR_PTR(err);
	}
	return mr;
}

/**
 * gift_advise_mr() - prefetch pages of ODP MRs
 * @pd: protection domain the MRs must belong to
 * @advice: IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH (fault for reading),
 *	_PREFETCH_WRITE (fault for writing) or _PREFETCH_NO_FAULT (map
 *	what the CPU page tables map, fault nothing)
 * @flags: IB_UVERBS_ADVISE_MR_FLAG_FLUSH: prefetch before returning;
 *	else the prefetch runs on a work item and this returns at once
 * @sg_list: ranges, by lkey
 * @num_sge: their number
 * @attrs: uverbs attributes (unused)
 *
 * Every range is checked before anything is prefetched. A synchronous
 * prefetch returns the first fault's error; an asynchronous one cannot
 * report any.
 *
 * Return: 0; -EOPNOTSUPP for another advice; -EINVAL for unknown flags,
 * bad keys, MRs of another PD or without on-demand paging; -EACCES for a
 * write prefetch of a read-only MR; -EFAULT for a range outside its MR;
 * -ENOMEM; the errors of gift_mr_fault() (synchronous only).
 */
static int gift_advise_mr(struct ib_pd *pd,
			  enum ib_uverbs_advise_mr_advice advice, u32 flags,
			  struct ib_sge *sg_list, u32 num_sge,
			  struct uverbs_attr_bundle *attrs)
{
	struct gift_dev *gdev = to_gift_dev(pd->device);
	unsigned int fflags = 0;
	struct gift_prefetch *pf;
	struct gift_mr *mr;
	int err = 0;
	u32 i;

	switch (advice) {
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH:
		break;
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_WRITE:
		fflags = GIFT_ODP_FAULT_WRITE;
		break;
	case IB_UVERBS_ADVISE_MR_ADVICE_PREFETCH_NO_FAULT:
		fflags = GIFT_ODP_FAULT_SNAPSHOT;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (flags & ~IB_UVERBS_ADVISE_MR_FLAG_FLUSH)
		return -EINVAL;

	pf = kzalloc(struct_size(pf, sge, num_sge), GFP_KERNEL);
	if (!pf)
		return -ENOMEM;
	pf->flags = fflags;
	for (i = 0; i < num_sge; i++) {
		mr = gift_prefetch_mr(gdev, pd, &sg_list[i],
				      fflags & GIFT_ODP_FAULT_WRITE);
		if (IS_ERR(mr)) {
			err = PTR_ERR(mr);
			goto out_put;
		}
		pf->sge[pf->num_sge].mr = mr;
		pf->sge[pf->num_sge].addr = sg_list[i].addr;
		pf->sge[pf->num_sge].length = sg_list[i].length;
		pf->num_sge++;
	}
	gift_stats_inc(gdev, GIFT_CNT_ODP_PREFETCHES);
	if (!(flags & IB_UVERBS_ADVISE_MR_FLAG_FLUSH)) {
		INIT_WORK(&pf->work, gift_prefetch_work);
		gift_odp_queue(&pf->work);
		return 0;
	}
	for (i = 0; i < pf->num_sge && !err; i++)
		if (pf->sge[i].length)
			err = gift_mr_fault(pf->sge[i].mr, pf->sge[i].addr,
					    pf->sge[i].length, fflags);
out_put:
	for (i = 0; i < pf->num_sge; i++)
		gift_mr_put(pf->sge[i].mr);
	kfree(pf);
	return err;
}

/**
 * gift_mr_fast_reg() - execute IB_WR_REG_MR
 * @mr: to_gift_mr(reg_wr(wr)->mr), kept alive by the ULP until the work
 *	request completes
 * @pd: the QP's protection domain
 * @key: new lkey and rkey (reg_wr(wr)->key); only its low byte may differ
 *	from the MR's current key
 * @access: access flags (reg_wr(wr)->access)
 *
 * Makes the page list last built by map_mr_sg, and the iova and length
 * ib_map_mr_sg() left in the ib_mr (the ULP may have changed the iova
 * since, e.g. to zero-based), accessible with the new key and access.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EINVAL when @mr is not a fast-register MR, is not free
 * (still valid, or deregistered), belongs to another PD than the QP, the
 * key's index differs, the access flags are invalid, or no page list
 * covering the length was mapped; -EOPNOTSUPP for access flags the device
 * does not implement.
 */
int gift_mr_fast_reg(struct gift_mr *mr, struct ib_pd *pd, u32 key,
		     int access)
{
	u64 iova = READ_ONCE(mr->ibmr.iova);
	u64 length = READ_ONCE(mr->ibmr.length);
	struct gift_dev *gdev = mr->gdev;
	unsigned long flags;
	u64 end;
	int err;

	if (mr->type != IB_MR_TYPE_MEM_REG) {
		gift_dbg(gdev, "MR %#x is not a fast-register MR\n", mr->key);
		return -EINVAL;
	}
	err = gift_mr_check_access(gdev, access, false);
	if (err)
		return err;

	write_lock_irqsave(&mr->lock, flags);
	err = -EINVAL;
	if (mr->state != GIFT_MR_FREE) {
		gift_dbg(gdev, "MR %#x is not free\n", mr->key);
		goto out_unlock;
	}
	if (mr->pd != pd) {
		gift_dbg(gdev, "MR %#x is in another PD\n", mr->key);
		goto out_unlock;
	}
	if (key >> 8 != mr->index) {
		gift_dbg(gdev, "key %#x is not MR %#x's\n", key, mr->key);
		goto out_unlock;
	}
	if (!mr->fr_map.shift || check_add_overflow(iova, length, &end) ||
	    mr->fr_map.offset + length >
	    (u64)mr->fr_map.npages << mr->fr_map.shift) {
		gift_dbg(gdev, "MR %#x: no page list for %#llx+%llu\n",
			 mr->key, iova, length);
		goto out_unlock;
	}

	memcpy(mr->fr.addrs, mr->fr_map.addrs,
	       mr->fr_map.npages * sizeof(*mr->fr.addrs));
	mr->fr.npages = mr->fr_map.npages;
	mr->fr.shift = mr->fr_map.shift;
	mr->fr.offset = mr->fr_map.offset;
	mr->iova = iova;
	mr->length = length;
	mr->access = access & GIFT_MR_ACCESS;
	WRITE_ONCE(mr->key, key);
	mr->state = GIFT_MR_VALID;
	err = 0;
out_unlock:
	write_unlock_irqrestore(&mr->lock, flags);
	return err;
}

/* Invalidates the fast-register MR of key; pd is the QP's, for remote. */
static int gift_mr_invalidate(struct gift_dev *gdev, u32 key,
			      struct ib_pd *pd, bool remote)
{
	struct gift_mr *mr;
	unsigned long flags;
	int err = -EINVAL;

	mr = gift_mr_get(gdev, key);
	if (!mr) {
		gift_dbg(gdev, "no MR with key %#x\n", key);
		return -ENOENT;
	}

	write_lock_irqsave(&mr->lock, flags);
	if (mr->type != IB_MR_TYPE_MEM_REG)
		gift_dbg(gdev, "MR %#x is not a fast-register MR\n", key);
	else if (mr->state == GIFT_MR_DEAD)
		gift_dbg(gdev, "MR %#x is being deregistered\n", key);
	else if (remote && mr->state != GIFT_MR_VALID)
		gift_dbg(gdev, "MR %#x is not valid\n", key);
	else if (remote && mr->pd != pd)
		gift_dbg(gdev, "MR %#x is in another PD\n", key);
	else
		err = 0;
	if (!err)
		mr->state = GIFT_MR_FREE;
	write_unlock_irqrestore(&mr->lock, flags);

	gift_mr_put(mr);
	return err;
}

/**
 * gift_mr_local_inv() - execute IB_WR_LOCAL_INV
 * @gdev: device
 * @key: wr->ex.invalidate_rkey: of a fast-register MR or of a type 2
 *	memory window
 * @pd: the QP's protection domain, which a window must be in
 *
 * Once this returns no access through the MR is in progress or will
 * happen until the next IB_WR_REG_MR, so the ULP may reuse its pages.
 * Invalidating an MR that is already free succeeds. A window is unbound
 * (gift_mw_invalidate()).
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -ENOENT when no MR or window has this key; -EINVAL when the
 * MR is not a fast-register MR or is being deregistered, or as
 * gift_mw_invalidate().
 */
int gift_mr_local_inv(struct gift_dev *gdev, u32 key, struct ib_pd *pd)
{
	int err = gift_mw_invalidate(gdev, key, pd, 0, false);

	if (err != -ENOENT)
		return err;
	return gift_mr_invalidate(gdev, key, NULL, false);
}

/**
 * gift_mr_remote_inv() - invalidate for an incoming SEND_WITH_INV
 * @gdev: device
 * @key: the packet's invalidate R_Key
 * @pd: the receiving QP's protection domain
 * @qpn: the receiving QP's number, which a type 2 window must be bound to
 *
 * As gift_mr_local_inv(), but the MR must also be valid and in @pd.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -ENOENT when no MR or window has this key; -EINVAL when the
 * MR is not a valid fast-register MR of @pd, or as gift_mw_invalidate().
 */
int gift_mr_remote_inv(struct gift_dev *gdev, u32 key, struct ib_pd *pd,
		       u32 qpn)
{
	int err = gift_mw_invalidate(gdev, key, pd, qpn, true);

	if (err != -ENOENT)
		return err;
	return gift_mr_invalidate(gdev, key, pd, true);
}

/**
 * gift_mr_bind_mw() - let a memory window use an MR
 * @mr: MR from gift_mr_get(), whose reference the window keeps
 * @pd: the binding QP's protection domain
 * @iova: first address of the window in the MR
 * @len: bytes of the window
 * @mw_access: the window's IB_ACCESS_REMOTE_* flags
 *
 * Counts the window in @mr->nr_mw, so that the MR cannot be deregistered
 * or re-registered until gift_mr_unbind_mw(). IBTA 10.6.7.2: the MR must
 * be valid, in @pd, registered with IB_ACCESS_MW_BIND, and have local
 * write for a window with remote write or atomic access; a gift MR never
 * lends write or atomic access, which would let the device write the
 * pages it holds copy-on-write shared.
 *
 * Context: any context but NMI; does not sleep.
 *
 * Return: 0; -EINVAL when the MR is not valid or in another PD; -EACCES
 * for a missing access right; -EFAULT when the range is not inside the
 * MR.
 */
int gift_mr_bind_mw(struct gift_mr *mr, struct ib_pd *pd, u64 iova, u64 len,
		    int mw_access)
{
	bool write = mw_access & (IB_ACCESS_REMOTE_WRITE |
				  IB_ACCESS_REMOTE_ATOMIC);
	unsigned long flags;
	int err;

	write_lock_irqsave(&mr->lock, flags);
	if (mr->state != GIFT_MR_VALID || mr->pd != pd)
		err = -EINVAL;
	else if (!(mr->access & IB_ACCESS_MW_BIND) ||
		 (write && (!(mr->access & IB_ACCESS_LOCAL_WRITE) ||
			    (mr->access & IB_ACCESS_GIFT))))
		err = -EACCES;
	else
		err = gift_mr_check_range(mr, iova, len);
	if (!err)
		atomic_inc(&mr->nr_mw);
	write_unlock_irqrestore(&mr->lock, flags);
	if (err)
		gift_dbg(mr->gdev, "MR %#x: bind %#llx+%llu access %#x: %d\n",
			 mr->key, iova, len, mw_access, err);
	return err;
}

/**
 * gift_mr_unbind_mw() - a window stopped using an MR
 * @mr: MR of a successful gift_mr_bind_mw(); its reference is dropped
 *
 * Context: any context but NMI; does not sleep.
 */
void gift_mr_unbind_mw(struct gift_mr *mr)
{
	atomic_dec(&mr->nr_mw);
	gift_mr_put(mr);
}

/**
 * gift_get_dma_mr() - the MR of a kernel PD covering all kernel memory
 * @pd: kernel protection domain
 * @access: IB_ACCESS_LOCAL_WRITE, plus remote read and write for a PD
 *	allocated with IB_PD_UNSAFE_GLOBAL_RKEY
 *
 * Addresses are kernel virtual addresses (the device has no DMA device).
 *
 * Return: the MR, or ERR_PTR(): -ENOMEM at max_mr or out of memory,
 * -EINVAL/-EOPNOTSUPP for bad access flags.
 */
static struct ib_mr *gift_get_dma_mr(struct ib_pd *pd, int access)
{
	struct gift_dev *gdev = to_gift_dev(pd->device);
	struct gift_mr *mr;
	int err;

	err = gift_mr_check_access(gdev, access, false);
	if (err)
		return ERR_PTR(err);
	mr = gift_mr_alloc(gdev, pd, IB_MR_TYPE_DMA, &gift_mr_mem_dma,
			   access);
	if (IS_ERR(mr))
		return ERR_CAST(mr);
	mr->iova = 0;
	mr->length = U64_MAX;
	mr->state = GIFT_MR_VALID;

	err = gift_mr_publish(mr);
	if (err)
		goto out_put_mr;
	return &mr->ibmr;

out_put_mr:
	gift_mr_put(mr);
	return ERR_PTR(err);
}

/*
 * Validates the translation of a user registration: -EINVAL for an empty
 * user range, one that wraps the address space (gift_umem_check_range()),
 * an iova range that wraps, or a length over max_mr_size.
 */
static int gift_mr_check_user_range(struct gift_dev *gdev, u64 start,
				    u64 length, u64 iova)
{
	u64 end;

	if (gift_umem_check_range(start, length) ||
	    check_add_overflow(iova, length, &end) ||
	    length > gdev->attr.max_mr_size) {
		gift_dbg(gdev, "bad range %#llx+%llu (iova %#llx)\n", start,
			 length, iova);
		return -EINVAL;
	}
	return 0;
}

/**
 * gift_reg_user_mr() - register user memory
 * @pd: protection domain
 * @start: user address of the first byte
 * @length: bytes
 * @iova: address of the first byte as the MR's users see it (the hca_va
 *	of the request); may differ from @start
 * @access: IB_ACCESS_* flags, already checked by ib_core for undefined
 *	bits and remote write/atomic without local write
 * @udata: user data; the provider sends none, kernel callers pass NULL
 *
 * Return: the MR, or ERR_PTR(): -EINVAL for a zero length, a length over
 * max_mr_size, a user or iova range that wraps, driver input in @udata,
 * bad access flags (IB_ACCESS_GIFT with write access among them) or an
 * implicit ODP MR with a non-zero @iova; -EOPNOTSUPP for access flags
 * the device does not implement; -ENOMEM at
 * max_mr, over RLIMIT_MEMLOCK or out of memory; -EFAULT (or -EPERM) as
 * gift_umem_get() fails to pin, or for an ODP range beyond the user
 * address space.
 *
 * With IB_ACCESS_ON_DEMAND nothing is pinned or faulted here: the range
 * may even be unmapped until the device first touches it (gift_odp.c).
 * @start 0 with @length U64_MAX (and @iova 0) is an implicit ODP MR:
 * the whole address space, addressed by virtual address.
 */
struct ib_mr *gift_reg_user_mr(struct ib_pd *pd, u64 start, u64 length,
			       u64 iova, int access, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(pd->device);
	const struct gift_mr_mem_ops *mem;
	struct gift_umem *umem;
	struct gift_mr *mr;
	bool implicit;
	int err;

	if (gift_udata_has_input(udata)) {
		gift_dbg(gdev, "unexpected driver input\n");
		return ERR_PTR(-EINVAL);
	}
	err = gift_mr_check_access(gdev, access, true);
	if (err)
		return ERR_PTR(err);
	implicit = (access & IB_ACCESS_ON_DEMAND) && !start &&
		   length == U64_MAX;
	if (implicit && iova) {
		gift_dbg(gdev, "implicit ODP MR with iova %#llx\n", iova);
		return ERR_PTR(-EINVAL);
	}
	err = implicit ? 0 : gift_mr_check_user_range(gdev, start, length,
						      iova);
	if (err)
		return ERR_PTR(err);

	if (implicit)
		mem = &gift_mr_mem_odp_implicit;
	else if (access & IB_ACCESS_ON_DEMAND)
		mem = &gift_mr_mem_odp;
	else
		mem = &gift_mr_mem_umem;
	mr = gift_mr_alloc(gdev, pd, IB_MR_TYPE_USER, mem, access);
	if (IS_ERR(mr))
		return ERR_CAST(mr);

	if (access & IB_ACCESS_ON_DEMAND) {
		mr->odp = gift_odp_create(gdev, &mr->lock, start, length,
					  access);
		if (IS_ERR(mr->odp)) {
			err = PTR_ERR(mr->odp);
			mr->odp = NULL;
			goto out_put_mr;
		}
		mr->iova = iova;
		mr->length = length;
		mr->state = GIFT_MR_VALID;
		err = gift_mr_publish(mr);
		if (err) {
			gift_odp_stop(mr->odp);
			goto out_put_mr;
		}
		return &mr->ibmr;
	}

	umem = gift_umem_get(start, length, access);
	if (IS_ERR(umem)) {
		err = PTR_ERR(umem);
		gift_dbg(gdev, "pinning %#llx+%llu failed: %d\n", start,
			 length, err);
		goto out_put_mr;
	}
	mr->umem = umem;
	mr->iova = iova;
	mr->length = length;
	mr->state = GIFT_MR_VALID;

	err = gift_mr_publish(mr);
	if (err)
		goto out_release_umem;
	return &mr->ibmr;

out_release_umem:
	gift_umem_release(umem);
out_put_mr:
	gift_mr_put(mr);
	return ERR_PTR(err);
}

/**
 * gift_rereg_user_mr() - change a user MR in place
 * @ibmr: MR to change, of type IB_MR_TYPE_USER
 * @flags: IB_MR_REREG_TRANS, IB_MR_REREG_PD and/or IB_MR_REREG_ACCESS
 * @start: new user address (IB_MR_REREG_TRANS)
 * @length: new length (IB_MR_REREG_TRANS)
 * @iova: new iova (IB_MR_REREG_TRANS)
 * @access: new access flags (IB_MR_REREG_ACCESS), checked by ib_core
 * @pd: new protection domain (IB_MR_REREG_PD)
 * @udata: user data; the provider sends none
 *
 * The keys never change. A new translation is pinned completely before
 * the old one is released, so a failure leaves the MR as it was; while
 * both are pinned, both count against RLIMIT_MEMLOCK. Without
 * IB_MR_REREG_TRANS, access can only be widened to writable if the pages
 * were pinned for writing, as with ib_umem_check_rereg(); adding or
 * dropping IB_ACCESS_GIFT takes the MR's range anew, since a gift MR
 * holds copy-on-write shared pages differently.
 *
 * An ODP MR may change its PD and its access flags (within the
 * writability it was registered with: -EACCES otherwise) but not its
 * range, and MRs do not switch between pinned and on-demand paging:
 * -EOPNOTSUPP.
 *
 * A range is only ever taken from the address space the MR was
 * registered in: a forked child shares the uverbs file, but a rereg from
 * it that takes a range would put the child's memory behind the
 * parent's keys, and is refused.
 *
 * Return: NULL (changed in place: ib_core then updates ibmr->pd, iova
 * and length), or ERR_PTR(): -EACCES when making a read-only pinned MR
 * writable without a new translation; -EINVAL for driver input in @udata;
 * -EPERM for a new translation (or a gift change) from another process's
 * address space; otherwise the errors of gift_reg_user_mr().
 */
static struct ib_mr *gift_rereg_user_mr(struct ib_mr *ibmr, int flags,
					u64 start, u64 length, u64 iova,
					int access, struct ib_pd *pd,
					struct ib_udata *udata)
{
	struct gift_mr *mr = to_gift_mr(ibmr);
	struct gift_dev *gdev = mr->gdev;
	struct gift_umem *umem = NULL;
	unsigned long lock_flags;
	int err;

	if (gift_udata_has_input(udata)) {
		gift_dbg(gdev, "unexpected driver input\n");
		return ERR_PTR(-EINVAL);
	}
	if (atomic_read(&mr->nr_mw)) {
		gift_dbg(gdev, "MR %#x has bound windows\n", mr->key);
		return ERR_PTR(-EBUSY);
	}
	if (!(flags & IB_MR_REREG_ACCESS))
		access = mr->access;
	err = gift_mr_check_access(gdev, access, true);
	if (err)
		return ERR_PTR(err);
	if (mr->odp || (access & IB_ACCESS_ON_DEMAND)) {
		/* An ODP MR keeps its range and stays ODP. */
		if (!mr->odp || !(access & IB_ACCESS_ON_DEMAND) ||
		    (flags & IB_MR_REREG_TRANS)) {
			gift_dbg(gdev, "MR %#x: rereg of ODP translation\n",
				 mr->key);
			return ERR_PTR(-EOPNOTSUPP);
		}
		if (gift_access_writable(access) && !mr->odp->writable) {
			gift_dbg(gdev, "MR %#x is a read-only ODP MR\n",
				 mr->key);
			return ERR_PTR(-EACCES);
		}
		goto publish;
	}

	if (flags & IB_MR_REREG_TRANS) {
		err = gift_mr_check_user_range(gdev, start, length, iova);
		if (err)
			return ERR_PTR(err);
	} else if (!(access & IB_ACCESS_GIFT) != !mr->umem->gift) {
		/* Adding or dropping gift takes the same range anew. */
		flags |= IB_MR_REREG_TRANS;
		start = mr->umem->addr;
		length = mr->umem->length;
		iova = mr->iova;
	} else if (gift_access_writable(access) && !mr->umem->writable) {
		gift_dbg(gdev, "MR %#x was pinned read-only\n", mr->key);
		return ERR_PTR(-EACCES);
	}
	if ((flags & IB_MR_REREG_TRANS) && current->mm != mr->umem->mm) {
		gift_dbg(gdev, "MR %#x: rereg from another address space\n",
			 mr->key);
		return ERR_PTR(-EPERM);
	}
	if (flags & IB_MR_REREG_TRANS) {
		umem = gift_umem_get(start, length, access);
		if (IS_ERR(umem)) {
			gift_dbg(gdev, "pinning %#llx+%llu failed: %ld\n",
				 start, length, PTR_ERR(umem));
			return ERR_CAST(umem);
		}
	}

publish:
	write_lock_irqsave(&mr->lock, lock_flags);
	if (umem) {
		swap(mr->umem, umem);
		mr->iova = iova;
		mr->length = length;
	}
	mr->access = access & GIFT_MR_ACCESS;
	if (flags & IB_MR_REREG_PD)
		mr->pd = pd;
	write_unlock_irqrestore(&mr->lock, lock_flags);

	/* The old translation, if replaced: no reader can still use it. */
	gift_umem_release(umem);
	return NULL;
}

/* Sets the next page-list entry; ib_sg_to_pages() callback. */
static int gift_mr_set_page(struct ib_mr *ibmr, u64 addr)
{
	struct gift_mr *mr = to_gift_mr(ibmr);

	if (mr->fr_map.npages == mr->fr_max)
		return -ENOMEM;
	mr->fr_map.addrs[mr->fr_map.npages++] = addr;
	return 0;
}

/**
 * gift_map_mr_sg() - build the page list of a fast-register MR
 * @ibmr: MR from alloc_mr; ibmr->page_size set by ib_map_mr_sg()
 * @sg: scatterlist mapped by ib_dma_map_sg(): kernel virtual addresses
 * @sg_nents: entries in @sg
 * @sg_offset: offset into the first entry, updated on a partial mapping
 *
 * Builds a page list that the next IB_WR_REG_MR makes live; the live one,
 * possibly still in use until it is invalidated, is not touched.
 *
 * Return: the number of scatterlist entries mapped, or -EINVAL for a page
 * size that is not a power of two of at least 512 bytes, or the error of
 * ib_sg_to_pages().
 */
static int gift_map_mr_sg(struct ib_mr *ibmr, struct scatterlist *sg,
			  int sg_nents, unsigned int *sg_offset)
{
	struct gift_mr *mr = to_gift_mr(ibmr);
	int n;

	mr->fr_map.npages = 0;
	mr->fr_map.shift = 0;
	if (!is_power_of_2(ibmr->page_size) || ibmr->page_size < SZ_512) {
		gift_dbg(mr->gdev, "bad page size %u\n", ibmr->page_size);
		return -EINVAL;
	}
	n = ib_sg_to_pages(ibmr, sg, sg_nents, sg_offset, gift_mr_set_page);
	mr->fr_map.shift = ilog2(ibmr->page_size);
	mr->fr_map.offset = ibmr->iova & (ibmr->page_size - 1);
	return n;
}

/**
 * gift_alloc_mr() - allocate a fast-register MR for a kernel ULP
 * @pd: protection domain
 * @type: only IB_MR_TYPE_MEM_REG
 * @max_num_sg: page list capacity, at most max_fast_reg_page_list_len
 *
 * The MR starts free (inaccessible) until an IB_WR_REG_MR.
 *
 * Return: the MR, or ERR_PTR(): -EOPNOTSUPP for another type; -EINVAL for
 * a capacity of 0 or over the limit; -ENOMEM at max_mr or out of memory.
 */
static struct ib_mr *gift_alloc_mr(struct ib_pd *pd, enum ib_mr_type type,
				   u32 max_num_sg)
{
	struct gift_dev *gdev = to_gift_dev(pd->device);
	struct gift_mr *mr;
	int err;

	if (type != IB_MR_TYPE_MEM_REG) {
		gift_dbg(gdev, "MR type %d not supported\n", type);
		return ERR_PTR(-EOPNOTSUPP);
	}
	if (!max_num_sg ||
	    max_num_sg > gdev->attr.max_fast_reg_page_list_len) {
		gift_dbg(gdev, "max_num_sg %u out of range\n", max_num_sg);
		return ERR_PTR(-EINVAL);
	}

	mr = gift_mr_alloc(gdev, pd, IB_MR_TYPE_MEM_REG, &gift_mr_mem_fr, 0);
	if (IS_ERR(mr))
		return ERR_CAST(mr);
	mr->fr_buf = kvcalloc(2 * max_num_sg, sizeof(*mr->fr_buf),
			      GFP_KERNEL);
	if (!mr->fr_buf) {
		err = -ENOMEM;
		goto out_put_mr;
	}
	mr->fr_max = max_num_sg;
	mr->fr.addrs = mr->fr_buf;
	mr->fr_map.addrs = mr->fr_buf + max_num_sg;

	err = gift_mr_publish(mr);
	if (err)
		goto out_free_pages;
	return &mr->ibmr;

out_free_pages:
	kvfree(mr->fr_buf);
out_put_mr:
	gift_mr_put(mr);
	return ERR_PTR(err);
}

/**
 * gift_dereg_mr() - destroy an MR
 * @ibmr: MR of any type
 * @udata: unused
 *
 * Makes the MR inaccessible, unpublishes the key and releases its backing
 * memory (unpinning user pages) before returning. Data path users still
 * holding references keep the struct alive, and find it dead. An MR that
 * memory windows are bound to stays as it is (ib_core keeps the uobject
 * and retries at close, once the windows are gone).
 *
 * Return: 0, or -EBUSY while memory windows are bound to the MR.
 */
static int gift_dereg_mr(struct ib_mr *ibmr, struct ib_udata *udata)
{
	struct gift_mr *mr = to_gift_mr(ibmr);
	struct gift_umem *umem;
	unsigned long flags;

	write_lock_irqsave(&mr->lock, flags);
	if (atomic_read(&mr->nr_mw)) {
		write_unlock_irqrestore(&mr->lock, flags);
		gift_dbg(mr->gdev, "MR %#x has bound windows\n", mr->key);
		return -EBUSY;
	}
	mr->state = GIFT_MR_DEAD;
	umem = mr->umem;
	mr->umem = NULL;
	mr->fr.addrs = NULL;
	mr->fr.npages = 0;
	write_unlock_irqrestore(&mr->lock, flags);

	xa_erase(&mr->gdev->mr_table.keys, mr->index);
	gift_umem_release(umem);
	/* The page table itself is freed with the MR (gift_mr_free()). */
	if (mr->odp)
		gift_odp_stop(mr->odp);
	kvfree(mr->fr_buf);
	mr->fr_buf = NULL;
	gift_mr_put(mr);
	return 0;
}

/**
 * gift_fill_res_mr_entry() - driver attributes of "rdma resource show mr -dd"
 * @msg: netlink message being built
 * @ibmr: MR, kept from being destroyed by restrack
 *
 * A user MR reports "gift" (1 when registered with IB_ACCESS_GIFT),
 * "odp" (1 for on-demand paging; then also its counters "faults",
 * "pages_faulted", "fault_retries", "invalidations" and
 * "pages_invalidated"), "pages" (of its range; 0 for an
 * implicit ODP MR, whose range is the address space, which reports its
 * "leaves": 2 MiB page tables) and either
 * "shared_pages" (pages held by reference, see gift_umem.c) or, for ODP,
 * "mapped_pages" (pages in the device's page table now).
 * The stale page count needs a page-table walk of the owner's address
 * space and is only available through GIFT_IB_METHOD_MR_QUERY.
 *
 * Return: 0, or -EMSGSIZE when @msg is full.
 */
static int gift_fill_res_mr_entry(struct sk_buff *msg, struct ib_mr *ibmr)
{
	struct gift_mr *mr = to_gift_mr(ibmr);
	static const char * const odp_names[GIFT_ODP_NUM_STATS] = {
		[GIFT_ODP_STAT_FAULTS] = "faults",
		[GIFT_ODP_STAT_PAGES_FAULTED] = "pages_faulted",
		[GIFT_ODP_STAT_FAULT_RETRIES] = "fault_retries",
		[GIFT_ODP_STAT_INVALIDATIONS] = "invalidations",
		[GIFT_ODP_STAT_PAGES_INVALIDATED] = "pages_invalidated",
	};
	unsigned long npages = 0, nshared = 0, nmapped = 0, nleaves = 0, flags;
	bool user = false, gift = false, odp = false, implicit = false;
	u64 odp_stats[GIFT_ODP_NUM_STATS] = {};
	struct nlattr *table;
	int i;

	read_lock_irqsave(&mr->lock, flags);
	if (mr->umem) {
		user = true;
		gift = mr->umem->gift;
		npages = mr->umem->npages;
		nshared = mr->umem->nshared;
	} else if (mr->odp && mr->state == GIFT_MR_VALID) {
		user = true;
		odp = true;
		gift = mr->access & IB_ACCESS_GIFT;
		npages = mr->odp->npages;
		nmapped = gift_odp_mapped_pages(mr->odp, &nleaves);
		implicit = mr->odp->implicit;
		for (i = 0; i < GIFT_ODP_NUM_STATS; i++)
			odp_stats[i] = atomic64_read(&mr->odp->stats[i]);
	}
	read_unlock_irqrestore(&mr->lock, flags);
	if (!user)
		return 0;

	table = nla_nest_start(msg, RDMA_NLDEV_ATTR_DRIVER);
	if (!table)
		return -EMSGSIZE;
	if (rdma_nl_put_driver_u32(msg, "gift", gift) ||
	    rdma_nl_put_driver_u32(msg, "odp", odp) ||
	    rdma_nl_put_driver_u64(msg, "pages", npages) ||
	    (odp && rdma_nl_put_driver_u64(msg, "mapped_pages", nmapped)) ||
	    (implicit && rdma_nl_put_driver_u64(msg, "leaves", nleaves)) ||
	    (!odp && rdma_nl_put_driver_u64(msg, "shared_pages", nshared)))
		goto err_cancel;
	for (i = 0; odp && i < GIFT_ODP_NUM_STATS; i++)
		if (rdma_nl_put_driver_u64(msg, odp_names[i], odp_stats[i]))
			goto err_cancel;
	nla_nest_end(msg, table);
	return 0;

err_cancel:
	nla_nest_cancel(msg, table);
	return -EMSGSIZE;
}

const struct ib_device_ops gift_mr_ops = {
	.advise_mr = gift_advise_mr,
	.alloc_mr = gift_alloc_mr,
	.dereg_mr = gift_dereg_mr,
	.fill_res_mr_entry = gift_fill_res_mr_entry,
	.get_dma_mr = gift_get_dma_mr,
	.map_mr_sg = gift_map_mr_sg,
	.reg_user_mr = gift_reg_user_mr_op,
	.rereg_user_mr = gift_rereg_user_mr,
};
