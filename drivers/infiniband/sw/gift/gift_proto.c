// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift RoCEv2 protocol engine: per-QP plumbing (see gift_proto.h).
 *
 * Packets for a QP arrive in softirq (gift_proto_rcv()) and are queued on
 * its rxq. One engine pass (gift_proto_run()) then handles, under the
 * QP's engine lock: every queued packet (requests to the responder, ACKs
 * and responses to the completer), a pending retransmission, and the
 * requester. The pass runs inline in the receiving softirq, or in a user
 * QP's post_send, when the lock is free; otherwise, and for timers and
 * kernel QPs' posts, the QP's work item on gift_proto_wq runs it.
 *
 * Destroy sets @stopped under the rxq lock (nothing queues packets or
 * work afterwards, and a pass that takes the engine lock later returns at
 * once), shuts the timers down, cancels the work and resets the state
 * under the engine lock; the QP code has unpublished the QPN before, and
 * waits for the receive path's QP references after.
 */

#include <linux/delay.h>
#include <linux/jiffies.h>
#include <net/ipv6.h>
#include <rdma/ib_mad.h>
#include <rdma/restrack.h>

#include "gift.h"
#include "gift_net.h"
#include "gift_stats.h"

static struct workqueue_struct *gift_proto_wq;

/**
 * gift_proto_init() - create the engine's workqueue
 *
 * Return: 0 or -ENOMEM.
 */
int gift_proto_init(void)
{
	/*
	 * Bound: a QP's work runs on the CPU that received its packet (or
	 * posted its WR), where the data is cache-hot.
	 */
	gift_proto_wq = alloc_workqueue("gift_proto", WQ_HIGHPRI | WQ_PERCPU, 0);
	return gift_proto_wq ? 0 : -ENOMEM;
}

/**
 * gift_proto_exit() - destroy the engine's workqueue (all QPs are gone)
 */
void gift_proto_exit(void)
{
	destroy_workqueue(gift_proto_wq);
}

/**
 * gift_wqe_state() - the engine's state of a send WQE
 * @wqe: posted send WQE
 *
 * Return: its state, stored in the WQE's proto[] area.
 */
struct gift_wqe_state *gift_wqe_state(struct gift_send_wqe *wqe)
{
	BUILD_BUG_ON(sizeof(struct gift_wqe_state) > sizeof(wqe->proto));
	return (struct gift_wqe_state *)wqe->proto;
}

/**
 * gift_wqe_is_rd_atomic() - does the WQE wait for a response?
 * @wqe: send WQE
 *
 * FLUSH and ATOMIC_WRITE are answered like a zero-length RDMA READ (an
 * RDMA READ response only, no payload), take a responder resource and
 * count against max_rd_atomic, as in rxe.
 *
 * Return: true for RDMA READ, atomics, FLUSH and ATOMIC_WRITE.
 */
bool gift_wqe_is_rd_atomic(const struct gift_send_wqe *wqe)
{
	return wqe->opcode == IB_WR_RDMA_READ ||
	       wqe->opcode == IB_WR_ATOMIC_CMP_AND_SWP ||
	       wqe->opcode == IB_WR_ATOMIC_FETCH_AND_ADD ||
	       wqe->opcode == IB_WR_FLUSH ||
	       wqe->opcode == IB_WR_ATOMIC_WRITE;
}

/**
 * gift_qp_mtu() - path MTU of a connected QP in bytes
 * @qp: QP in RTR or later
 *
 * Return: the MTU, at least 256.
 */
u32 gift_qp_mtu(struct gift_qp *qp)
{
	return qp->proto.attr.mtu;
}

/*
 * Moves *@i and *@offset past the SGEs that end before byte @offset of
 * the list's concatenation (empty ones included): false past the end.
 */
static bool gift_sge_seek(const struct ib_sge *sge, u32 num_sge, u32 *i,
			  u32 *offset)
{
	while (*i < num_sge && *offset >= sge[*i].length)
		*offset -= sge[(*i)++].length;
	return *i < num_sge;
}

/*
 * The MR of @sge's bytes [@offset, @offset + @n), referenced and checked
 * for @access in @qp's PD; ERR_PTR(-EINVAL) for an unknown lkey, or
 * gift_mr_check()'s error.
 */
static struct gift_mr *gift_sge_mr(struct gift_qp *qp, const struct ib_sge *sge,
				   u32 offset, u32 n, int access)
{
	struct gift_mr *mr;
	int err;

	mr = gift_mr_get(to_gift_dev(qp->ibqp.device), sge->lkey);
	if (!mr)
		return ERR_PTR(-EINVAL);
	err = gift_mr_check(mr, qp->ibqp.pd, sge->addr + offset, n, access);
	if (err) {
		gift_mr_put(mr);
		return ERR_PTR(err);
	}
	return mr;
}

/*
 * gift_sge_copy() and gift_sge_copy_skb(): @skb non-NULL copies from its
 * bytes at @skb_off into the SGEs, else between @buf and the SGEs.
 */
static int gift_sge_xfer(struct gift_qp *qp, const struct ib_sge *sge,
			 u32 num_sge, u32 offset, void *buf,
			 const struct sk_buff *skb, u32 skb_off, u32 len,
			 bool to_sge)
{
	int access = to_sge ? IB_ACCESS_LOCAL_WRITE : 0;
	struct gift_mr *mr;
	u32 i = 0, n;
	int err;

	for (; len && gift_sge_seek(sge, num_sge, &i, &offset); i++) {
		n = min(len, sge[i].length - offset);
		mr = gift_sge_mr(qp, &sge[i], offset, n, access);
		if (IS_ERR(mr))
			return PTR_ERR(mr);
		if (skb)
			err = gift_mr_copy_skb(mr, sge[i].addr + offset, skb,
					       skb_off, n);
		else
			err = gift_mr_copy(mr, sge[i].addr + offset, buf, n,
					   to_sge);
		if (err == -EAGAIN)
			err = gift_proto_fault(qp, mr, sge[i].addr + offset, n,
					       to_sge);
		gift_mr_put(mr);
		if (err)
			return err;
		if (!skb)
			buf += n;
		skb_off += n;
		len -= n;
		offset = 0;
	}
	return len ? -EFAULT : 0;
}

/**
 * gift_sge_copy() - copy between a buffer and a scatter/gather list
 * @qp: QP whose PD the SGEs' keys must belong to
 * @sge: the list
 * @num_sge: its length
 * @offset: byte offset into the list's concatenation
 * @buf: kernel buffer
 * @len: bytes to copy
 * @to_sge: copy @buf into the SGEs (needs local write access)
 *
 * Return: 0; -EFAULT when the list is shorter than @offset + @len;
 * the error of gift_mr_get()/gift_mr_check()/gift_mr_copy() otherwise
 * (-EINVAL for an invalid key or PD, -EACCES for missing access);
 * -EAGAIN when a page of an ODP MR must be faulted first: the fault is
 * requested (gift_proto_fault()), and the caller stops and copies again
 * when the engine runs next; the error of a fault that failed.
 */
int gift_sge_copy(struct gift_qp *qp, const struct ib_sge *sge, u32 num_sge,
		  u32 offset, void *buf, u32 len, bool to_sge)
{
	return gift_sge_xfer(qp, sge, num_sge, offset, buf, NULL, 0, len,
			     to_sge);
}

/**
 * gift_sge_copy_skb() - copy received payload into a scatter/gather list
 * @qp: QP whose PD the SGEs' keys must belong to
 * @sge: the list
 * @num_sge: its length
 * @offset: byte offset into the list's concatenation
 * @skb: the packet, linear or not
 * @skb_off: offset of the first byte to copy in @skb
 * @len: bytes to copy
 *
 * The receive side's only copy: skb (fragments included) to the MRs.
 *
 * Return: as gift_sge_copy() with @to_sge.
 */
int gift_sge_copy_skb(struct gift_qp *qp, const struct ib_sge *sge,
		      u32 num_sge, u32 offset, const struct sk_buff *skb,
		      u32 skb_off, u32 len)
{
	return gift_sge_xfer(qp, sge, num_sge, offset, NULL, skb, skb_off, len,
			     true);
}

/* Copies @len bytes of the SGEs from @offset into a new fragment of @skb. */
static int gift_sge_copy_frag(struct gift_qp *qp, const struct ib_sge *sge,
			      u32 num_sge, u32 offset, struct sk_buff *skb,
			      u32 len)
{
	void *buf = gift_net_add_frag(skb, len);

	if (!buf)
		return -ENOMEM;
	return gift_sge_copy(qp, sge, num_sge, offset, buf, len, false);
}

/**
 * gift_sge_skb() - append the payload of a scatter/gather list to a packet
 * @qp: QP whose PD the SGEs' keys must belong to
 * @sge: the list
 * @num_sge: its length
 * @offset: byte offset into the list's concatenation
 * @skb: packet without fragments yet (gift_proto_alloc() with no linear
 *	payload), in which gift_net_xmit() will still append a fragment
 * @len: payload bytes, at most a page (the largest MTU)
 *
 * Zero-copy transmit: bytes of MRs whose pages are held for the MR's
 * life (gift_mr_skb_frags()) become page fragments of @skb, holding a
 * reference on each page; the bytes of other MRs (ODP above all) are
 * copied into a page fragment of their own. When @skb runs out of
 * fragment slots, the rest is copied into one last fragment.
 *
 * Return: 0, or as gift_sge_copy() (-EAGAIN: an ODP fault is pending);
 * -ENOMEM without memory for a copy. On error @skb holds part of the
 * payload: the caller frees it.
 */
int gift_sge_skb(struct gift_qp *qp, const struct ib_sge *sge, u32 num_sge,
		 u32 offset, struct sk_buff *skb, u32 len)
{
	/* One slot for a copy of the rest, one for gift_net_xmit()'s tail. */
	const unsigned int max = MAX_SKB_FRAGS - 2;
	u32 i = 0, n, pos = offset;
	struct gift_mr *mr;
	int done;

	for (; len && gift_sge_seek(sge, num_sge, &i, &offset); i++) {
		n = min(len, sge[i].length - offset);
		mr = gift_sge_mr(qp, &sge[i], offset, n, 0);
		if (IS_ERR(mr))
			return PTR_ERR(mr);
		done = gift_mr_skb_frags(mr, sge[i].addr + offset, skb, n, max);
		gift_mr_put(mr);
		if (done < 0)
			return done;
		if (!done && skb_shinfo(skb)->nr_frags < max) {
			done = gift_sge_copy_frag(qp, sge, num_sge, pos, skb,
						  n);
			if (done)
				return done;
			done = n;
		}
		pos += done;
		len -= done;
		if (done < n)
			break;		/* out of fragment slots */
		offset = 0;
	}
	return len ? gift_sge_copy_frag(qp, sge, num_sge, pos, skb, len) : 0;
}

/**
 * gift_proto_fault() - wait for an ODP page the engine needs
 * @qp: QP; under its engine lock
 * @mr: ODP MR whose copy returned -EAGAIN
 * @iova: first address the copy needed
 * @len: bytes it needed
 * @write: it writes the MR
 *
 * Queues the fault when none is pending (see struct gift_proto_fault);
 * the engine runs again when it ends.
 *
 * Return: -EAGAIN: stop here and copy again later; or the error of the
 * last fault for this very address when it failed (-EFAULT: the process
 * does not map it that way), which the caller treats as it would an
 * access error of a pinned MR.
 */
int gift_proto_fault(struct gift_qp *qp, struct gift_mr *mr, u64 iova,
		     u32 len, bool write)
{
	struct gift_proto_fault *f = &qp->proto.fault;
	int err;

	lockdep_assert_held(&qp->proto.lock);
	if (f->busy)
		return -EAGAIN;
	if (f->err && f->key == mr->ibmr.lkey && f->iova == iova) {
		err = f->err;
		f->err = 0;
		return err;
	}
	gift_mr_hold(mr);
	f->mr = mr;
	f->key = mr->ibmr.lkey;
	f->iova = iova;
	f->len = len;
	f->flags = write ? GIFT_ODP_FAULT_WRITE : 0;
	f->err = 0;
	f->busy = true;
	gift_stats_inc(to_gift_dev(qp->ibqp.device), GIFT_CNT_ODP_ENGINE_WAITS);
	gift_odp_queue(&f->work);
	return -EAGAIN;
}

static void gift_proto_queue(struct gift_qp *qp);

/* Runs a QP's fault (process context), then the QP's engine. */
static void gift_proto_fault_work(struct work_struct *work)
{
	struct gift_qp *qp = container_of(work, struct gift_qp,
					  proto.fault.work);
	struct gift_proto_fault *f = &qp->proto.fault;
	struct gift_mr *mr;
	int err;

	if (READ_ONCE(gift_odp_fault_delay_ms))
		msleep(READ_ONCE(gift_odp_fault_delay_ms));
	/* The request does not change while busy. */
	err = gift_mr_fault(f->mr, f->iova, f->len, f->flags);
	spin_lock_bh(&qp->proto.lock);
	mr = f->mr;
	f->mr = NULL;
	f->err = f->stale ? 0 : err;
	f->stale = false;
	f->busy = false;
	/* The wait is over: a next one looks at every queued packet anew. */
	spin_lock_irq(&qp->proto.rxq.lock);
	qp->proto.rx_seen = 0;
	spin_unlock_irq(&qp->proto.rxq.lock);
	qp->proto.wait_rnr = false;
	spin_unlock_bh(&qp->proto.lock);
	gift_mr_put(mr);
	gift_proto_queue(qp);
}

/**
 * gift_proto_park() - keep a received packet until the fault ended
 * @qp: QP; under its engine lock; a fault is pending (gift_proto_fault()
 *	returned -EAGAIN)
 * @skb: the packet being handled; the caller still consumes its own
 *	reference
 * @resume: see struct gift_qp_proto
 */
void gift_proto_park(struct gift_qp *qp, struct sk_buff *skb, bool resume)
{
	lockdep_assert_held(&qp->proto.lock);
	WARN_ON_ONCE(qp->proto.parked);
	qp->proto.parked = skb_get(skb);
	qp->proto.resume = resume;
}

/* Drops the parked packet: the QP was reset or moved to ERR. */
static void gift_proto_unpark(struct gift_qp *qp)
{
	kfree_skb(qp->proto.parked);
	qp->proto.parked = NULL;
	qp->proto.resume = false;
	qp->proto.rx_seen = 0;
	qp->proto.wait_rnr = false;
}

static bool gift_proto_pkt_ok(struct gift_qp *qp, struct sk_buff *skb);

/*
 * While the engine waits for a fault (a packet parked, or a READ reply
 * stopped at a page): the requests in the receive queue that
 * gift_resp_parked_verdict() answers now (retransmissions of what waits,
 * duplicates of earlier SEND/WRITE packets) or drops (what the requester
 * sends again anyway after an RNR NAK). They can be anywhere behind the
 * rest of the original transmission, which stays queued, in order. Each
 * packet is looked at once per wait (@rx_seen), and once more after the
 * wait's first RNR NAK, so a flood costs linear time.
 */
static void gift_proto_while_waiting(struct gift_qp *qp)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	struct gift_qp_proto *p = &qp->proto;
	struct sk_buff_head now, drop;
	struct sk_buff *skb, *tmp;
	unsigned long flags;
	bool rnr;
	u32 i;

	if (gift_qp_state(qp) < IB_QPS_RTR || gift_qp_state(qp) == IB_QPS_ERR)
		return;
	__skb_queue_head_init(&now);
	__skb_queue_head_init(&drop);
again:
	rnr = p->wait_rnr;
	i = 0;
	spin_lock_irqsave(&p->rxq.lock, flags);
	skb_queue_walk_safe(&p->rxq, skb, tmp) {
		if (i++ < p->rx_seen)
			continue;
		switch (gift_proto_pkt_ok(qp, skb) ?
			gift_resp_parked_verdict(qp, skb) : GIFT_PARKED_KEEP) {
		case GIFT_PARKED_ANSWER:
			__skb_unlink(skb, &p->rxq);
			__skb_queue_tail(&now, skb);
			break;
		case GIFT_PARKED_DROP:
			__skb_unlink(skb, &p->rxq);
			__skb_queue_tail(&drop, skb);
			break;
		default:
			p->rx_seen++;
		}
	}
	spin_unlock_irqrestore(&p->rxq.lock, flags);
	while ((skb = __skb_dequeue(&now)))
		gift_resp_rcv_parked(qp, skb);
	while ((skb = __skb_dequeue(&drop))) {
		gift_stats_inc(gdev, GIFT_CNT_DROPPED_PKTS);
		kfree_skb(skb);
	}
	/* The first RNR NAK: what was kept before it may go now. */
	if (!rnr && p->wait_rnr) {
		spin_lock_irqsave(&p->rxq.lock, flags);
		p->rx_seen = 0;
		spin_unlock_irqrestore(&p->rxq.lock, flags);
		goto again;
	}
}

/*
 * The next received packet to handle: the parked one once its fault
 * ended (*@resume: it resumes, see struct gift_qp_proto), then the
 * receive queue; NULL while the fault is pending.
 */
static struct sk_buff *gift_proto_next_pkt(struct gift_qp *qp, bool *resume)
{
	struct gift_qp_proto *p = &qp->proto;
	struct sk_buff *skb = p->parked;

	*resume = false;
	if (!skb)
		return skb_dequeue(&p->rxq);
	if (p->fault.busy)
		return NULL;
	*resume = p->resume;
	p->parked = NULL;
	p->resume = false;
	return skb;
}

/**
 * gift_proto_alloc() - a packet of the QP's flow with its BTH filled
 * @qp: connected QP
 * @opcode: BTH opcode; its extension headers are zeroed for the caller
 * @psn: BTH PSN
 * @ack_req: BTH AckReq
 * @se: BTH SE
 * @payload_len: payload bytes the caller copies after the headers
 *
 * The opcode is also recorded in the skb's gift_pkt_info, so that the
 * gift_pkt_*() accessors find the extension headers until transmission.
 *
 * Return: the skb (data at the BTH), or NULL when out of memory.
 */
struct sk_buff *gift_proto_alloc(struct gift_qp *qp, u8 opcode, u32 psn,
				 bool ack_req, bool se, u32 payload_len)
{
	const struct gift_opcode_info *op = gift_opcode_info(opcode);
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	struct sk_buff *skb;

	skb = gift_net_alloc_skb(gdev, &qp->proto.attr.av, op->length,
				 payload_len,
				 GFP_ATOMIC);
	if (!skb)
		return NULL;
	/* The gift_pkt_*() header accessors work on our packets too. */
	gift_pkt(skb)->opcode = opcode;
	gift_bth_init(gift_pkt_bth(skb), opcode, se, IB_DEFAULT_PKEY_FULL,
		      qp->proto.attr.dest_qpn, ack_req, psn);
	return skb;
}

/**
 * gift_proto_xmit() - send a packet built by gift_proto_alloc()
 * @qp: its QP
 * @skb: the packet; consumed
 *
 * Lost packets are the protocol's business (retransmission); a local
 * routing failure looks the same to the peer, so it is only logged.
 * Counts against the pass's budget (GIFT_PASS_BUDGET).
 */
void gift_proto_xmit(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	int err;

	lockdep_assert_held(&qp->proto.lock);
	if (qp->proto.budget)
		qp->proto.budget--;

	err = gift_net_xmit(gdev, &qp->proto.attr.av, skb, qp->proto.sport,
			    &qp->proto.route);
	if (err)
		ibdev_dbg(&gdev->ibdev, "QP[%u] xmit: %d\n", qp->ibqp.qp_num,
			  err);
}

/**
 * gift_proto_send_ack() - send an ACK or NAK
 * @qp: responder QP
 * @syndrome: AETH syndrome (GIFT_AETH_ACK | credits, RNR NAK | timer,
 *	GIFT_AETH_NAK | code)
 * @psn: PSN of the packet acknowledged (or expected, for a sequence NAK)
 *
 * A UC responder never answers: nothing is sent for a UC QP.
 */
void gift_proto_send_ack(struct gift_qp *qp, u8 syndrome, u32 psn)
{
	struct sk_buff *skb;

	if (gift_qp_is_uc(qp))
		return;

	skb = gift_proto_alloc(qp, IB_OPCODE_RC_ACKNOWLEDGE, psn, false,
			       false, 0);
	if (!skb)
		return;
	gift_aeth_set(gift_pkt_aeth(skb), syndrome, qp->proto.msn);
	gift_proto_xmit(qp, skb);
}

/*
 * 4.096 us << timeout, in jiffies; timeout 0 means "wait forever" (no
 * timer). Computed in 64 bits: usecs_to_jiffies() takes an unsigned int,
 * which truncated timeouts 30 and 31 (about 4400 and 8800 s).
 */
static unsigned long gift_proto_timeout(struct gift_qp *qp)
{
	u8 t = min_t(u8, qp->proto.attr.timeout, 31);

	return t ? max_t(u64, 1, nsecs_to_jiffies64(4096ULL << t)) : 0;
}

/**
 * gift_proto_arm_retry() - (re)start the retransmission timer
 * @qp: requester with packets in flight
 */
void gift_proto_arm_retry(struct gift_qp *qp)
{
	unsigned long t = gift_proto_timeout(qp);

	if (t)
		mod_timer(&qp->proto.retry_timer, jiffies + t);
}

/**
 * gift_proto_fill_res() - the engine's driver attributes of a QP
 * @msg: netlink message being built, inside its RDMA_NLDEV_ATTR_DRIVER
 * @qp: QP, kept from being destroyed by restrack
 *
 * "ack_timeout_ms": the time for which the requester arms its
 * retransmission timer (4.096 us << the QP's timeout; 0: never);
 * "retry_armed": 1 while that timer is pending; "retry_left" and
 * "rnr_retry_left": the retries the requester has left for the message
 * in flight.
 *
 * Return: 0, or -EMSGSIZE when @msg is full.
 */
int gift_proto_fill_res(struct sk_buff *msg, struct gift_qp *qp)
{
	u64 timeout_ms;
	u8 retry, rnr;

	spin_lock_bh(&qp->proto.lock);
	timeout_ms = jiffies64_to_msecs(gift_proto_timeout(qp));
	retry = qp->proto.retry_left;
	rnr = qp->proto.rnr_left;
	spin_unlock_bh(&qp->proto.lock);

	if (rdma_nl_put_driver_u64(msg, "ack_timeout_ms", timeout_ms) ||
	    rdma_nl_put_driver_u32(msg, "retry_armed",
				   timer_pending(&qp->proto.retry_timer)) ||
	    rdma_nl_put_driver_u32(msg, "retry_left", retry) ||
	    rdma_nl_put_driver_u32(msg, "rnr_retry_left", rnr))
		return -EMSGSIZE;
	return 0;
}

static void gift_proto_queue(struct gift_qp *qp)
{
	unsigned long flags;

	spin_lock_irqsave(&qp->proto.rxq.lock, flags);
	if (!qp->proto.stopped)
		queue_work(gift_proto_wq, &qp->proto.work);
	spin_unlock_irqrestore(&qp->proto.rxq.lock, flags);
}

static void gift_proto_retry_timer(struct timer_list *t)
{
	struct gift_qp *qp = timer_container_of(qp, t, proto.retry_timer);

	WRITE_ONCE(qp->proto.retry_pending, true);
	gift_proto_queue(qp);
}

static void gift_proto_rnr_timer(struct timer_list *t)
{
	struct gift_qp *qp = timer_container_of(qp, t, proto.rnr_timer);

	gift_proto_queue(qp);
}

static void gift_proto_dispatch(struct gift_qp *qp, struct sk_buff *skb,
				bool resume)
{
	const struct gift_opcode_info *op = gift_pkt_op(skb);

	if (op->flags & GIFT_OPF_REQ)
		gift_resp_rcv(qp, skb, resume);
	else
		gift_comp_rcv(qp, skb);
}

/*
 * Does a packet belong to the connection of @qp? Its transport must be
 * the QP's (RC or UC), its P_Key must match the port's (the table holds
 * only the default P_Key) and it must come from the QP's path: the source
 * IP address is the destination GID of its address vector. The UDP source
 * port is flow entropy and may be anything.
 */
static bool gift_proto_pkt_ok(struct gift_qp *qp, struct sk_buff *skb)
{
	const struct gift_pkt_info *pkt = gift_pkt(skb);
	u8 transport = gift_qp_is_uc(qp) ? IB_OPCODE_UC : IB_OPCODE_RC;

	if ((pkt->opcode & GIFT_BTH_TRANSPORT_MASK) != transport)
		return false;
	if (!gift_pkey_match(gift_bth_pkey(gift_pkt_bth(skb)),
			     IB_DEFAULT_PKEY_FULL))
		return false;
	return ipv6_addr_equal(&pkt->saddr, &qp->proto.attr.av.daddr);
}

/*
 * IB_EVENT_SQ_DRAINED (IBTA 10.3.1, 11.6.3), for a QP that entered SQD
 * asking for it: once no send WQE it started is outstanding. WQEs
 * complete in order and start in order, so the oldest one tells: none, or
 * one not started (posted in SQD, or queued behind the drained ones).
 * Reported once per RTS -> SQD transition, from the engine pass, with
 * its lock held (as IB_EVENT_QP_FATAL from gift_qp_error()).
 */
static void gift_proto_sq_drained(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	struct ib_event ev = {
		.device = qp->ibqp.device,
		.element.qp = &qp->ibqp,
		.event = IB_EVENT_SQ_DRAINED,
	};
	struct gift_send_wqe *wqe;

	lockdep_assert_held(&p->lock);
	if (!p->sqd_notify || gift_qp_state(qp) != IB_QPS_SQD)
		return;
	wqe = gift_qp_sq_peek(qp, 0);
	if (wqe && (gift_wqe_state(wqe)->flags &
		    (GIFT_WQE_STARTED | GIFT_WQE_DONE)))
		return;
	p->sqd_notify = false;
	if (qp->ibqp.event_handler)
		qp->ibqp.event_handler(&ev, qp->ibqp.qp_context);
}

/*
 * One pass of the engine: queued packets, a pending retransmission, local
 * completions and the requester. Returns at once for a stopped QP (whose
 * state gift_proto_qp_destroy() is freeing).
 */
static void gift_proto_run(struct gift_qp *qp)
{
	struct sk_buff *skb;
	bool resume, more;

	lockdep_assert_held(&qp->proto.lock);
	if (READ_ONCE(qp->proto.stopped))
		return;
	/* A mapped send ring's posts skip the doorbell meanwhile. */
	gift_qp_sq_engine(qp, true);
	qp->proto.budget = GIFT_PASS_BUDGET;
	while (qp->proto.budget && gift_resp_read_continue(qp) &&
	       (skb = gift_proto_next_pkt(qp, &resume))) {
		/* Receiving is work too: a flood must not pin the CPU. */
		qp->proto.budget--;
		if (gift_qp_state(qp) < IB_QPS_RTR ||
		    gift_qp_state(qp) == IB_QPS_ERR ||
		    (!gift_qp_is_ud(qp) && !gift_proto_pkt_ok(qp, skb))) {
			gift_stats_inc(to_gift_dev(qp->ibqp.device),
				       GIFT_CNT_DROPPED_PKTS);
			kfree_skb(skb);
			continue;
		}
		if (gift_qp_is_ud(qp))
			gift_ud_rcv(qp, skb, resume);
		else
			gift_proto_dispatch(qp, skb, resume);
	}
	if (qp->proto.fault.busy && qp->proto.budget)
		gift_proto_while_waiting(qp);
	if (READ_ONCE(qp->proto.retry_pending)) {
		WRITE_ONCE(qp->proto.retry_pending, false);
		gift_comp_timeout(qp);
	}
	if (qp->proto.rnr_wait && !timer_pending(&qp->proto.rnr_timer))
		qp->proto.rnr_wait = false;
again:
	if (gift_qp_is_ud(qp)) {
		gift_ud_req_run(qp);
	} else {
		gift_qp_sq_poll(qp);
		gift_req_run(qp);
	}
	/* Local operations it executed, WQEs it failed: retire them. */
	gift_comp_local(qp);
	gift_proto_sq_drained(qp);
	/*
	 * WQEs posted in the mapped ring after the requester looked (their
	 * poster skipped the doorbell): sent now while the budget lasts.
	 * Out of budget with work left: the work item goes on. Each turn
	 * costs as a packet does, also when the requester sends nothing (a
	 * closed window, an RNR wait, SQD): a poster that moves prod at
	 * every turn cannot hold the pass.
	 */
	more = gift_qp_sq_engine(qp, false);
	if (more && qp->proto.budget) {
		qp->proto.budget--;
		gift_qp_sq_engine(qp, true);
		goto again;
	}
	if (more || !qp->proto.budget)
		gift_proto_queue(qp);
}

static void gift_proto_work(struct work_struct *work)
{
	struct gift_qp *qp = container_of(work, struct gift_qp, proto.work);

	spin_lock_bh(&qp->proto.lock);
	gift_proto_run(qp);
	spin_unlock_bh(&qp->proto.lock);
}

/**
 * gift_proto_rcv_qp() - queue a validated packet to one QP's engine
 * @gdev: device the packet is for
 * @qp: the QP, referenced by the caller, or NULL (the packet is dropped)
 * @skb: the packet, with struct gift_pkt_info in its cb; consumed
 *
 * Softirq. See gift_proto_rcv(); the multicast fan-out (gift_mcast.c)
 * calls this once per attached QP.
 */
void gift_proto_rcv_qp(struct gift_dev *gdev, struct gift_qp *qp,
		       struct sk_buff *skb)
{
	unsigned long flags;
	bool queued = false;

	if (qp) {
		spin_lock_irqsave(&qp->proto.rxq.lock, flags);
		if (!qp->proto.stopped &&
		    skb_queue_len(&qp->proto.rxq) < GIFT_RXQ_MAX) {
			__skb_queue_tail(&qp->proto.rxq, skb);
			queued = true;
		}
		spin_unlock_irqrestore(&qp->proto.rxq.lock, flags);
	}
	if (queued) {
		/* Run the engine right here unless someone else is in it. */
		if (spin_trylock(&qp->proto.lock)) {
			gift_proto_run(qp);
			spin_unlock(&qp->proto.lock);
		} else {
			gift_proto_queue(qp);
		}
	}
	if (!queued) {
		gift_stats_inc(gdev, GIFT_CNT_DROPPED_PKTS);
		kfree_skb(skb);
	}
}

/**
 * gift_proto_rcv() - receive a validated packet (see gift_net.h)
 * @gdev: device the packet is for
 * @skb: the packet, with struct gift_pkt_info in its cb; consumed
 *
 * Softirq. Packets to a multicast address or to the multicast QPN go to
 * gift_mcast_rcv(). Packets for unknown or destroyed QPs, or beyond
 * GIFT_RXQ_MAX waiting for the QP's engine, are counted as dropped, and
 * so are, when the engine takes them, packets for a QP not in RTR, RTS,
 * SQD or SQE and packets that are not of its connection
 * (gift_proto_pkt_ok(); UD and GSI QPs: gift_ud_rcv()). The engine runs
 * inline when the QP's engine lock is free, else its work item runs it.
 */
void gift_proto_rcv(struct gift_dev *gdev, struct sk_buff *skb)
{
	const struct gift_pkt_info *pkt = gift_pkt(skb);
	struct gift_qp *qp;

	if ((pkt->flags & GIFT_PKT_MCAST) || pkt->qpn == IB_MULTICAST_QPN) {
		gift_mcast_rcv(gdev, skb);
		return;
	}
	qp = gift_qp_get(gdev, pkt->qpn);
	gift_proto_rcv_qp(gdev, qp, skb);
	if (qp)
		gift_qp_put(qp);
}

/**
 * gift_proto_qp_init() - set up engine state of a new QP
 * @qp: QP being created, not yet published
 *
 * Return: 0 or -ENOMEM.
 */
int gift_proto_qp_init(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;

	p->recv = kzalloc(sizeof(*p->recv), GFP_KERNEL);
	if (!p->recv)
		return -ENOMEM;
	if (gift_net_route_init(&p->route)) {
		kfree(p->recv);
		p->recv = NULL;
		return -ENOMEM;
	}
	spin_lock_init(&p->lock);
	p->attr.mtu = 256;
	INIT_WORK(&p->work, gift_proto_work);
	INIT_WORK(&p->fault.work, gift_proto_fault_work);
	skb_queue_head_init(&p->rxq);
	timer_setup(&p->retry_timer, gift_proto_retry_timer, 0);
	timer_setup(&p->rnr_timer, gift_proto_rnr_timer, 0);
	return 0;
}

/* Forget all protocol state: the QP was reset (or is going away). */
static void gift_proto_reset(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;

	lockdep_assert_held(&p->lock);
	timer_delete(&p->retry_timer);
	timer_delete(&p->rnr_timer);
	skb_queue_purge(&p->rxq);
	gift_proto_unpark(qp);
	gift_resp_reset(qp);
	p->fault.err = 0;
	/* A fault still running must not leave its error behind. */
	p->fault.stale = p->fault.busy;
	p->rnr_wait = false;
	p->retry_pending = false;
	p->req_n = 0;
	p->req_off = 0;
	p->rd_atomic = 0;
	p->rd_sent = 0;
	p->rd_window = 0;
}

/* Copies the attributes modify_qp just stored (see gift_proto_attr). */
static void gift_proto_attr_update(struct gift_qp *qp)
{
	struct gift_proto_attr *pa = &qp->proto.attr;
	const struct ib_qp_attr *a = &qp->attr;
	int mtu = ib_mtu_enum_to_int(a->path_mtu);

	lockdep_assert_held(&qp->modify_lock);
	lockdep_assert_held(&qp->proto.lock);

	pa->av = qp->av;
	pa->dest_qpn = a->dest_qp_num;
	pa->mtu = mtu > 0 ? mtu : 256;
	pa->timeout = a->timeout;
	pa->retry_cnt = a->retry_cnt;
	pa->rnr_retry = a->rnr_retry;
	pa->min_rnr_timer = a->min_rnr_timer;
	pa->max_rd_atomic = a->max_rd_atomic;
	pa->access = a->qp_access_flags;
	pa->qkey = a->qkey;
}

/**
 * gift_proto_rd_res_alloc() - a responder resource ring for modify_qp
 * @max_dest_rd_atomic: the depth the modify asks for
 *
 * Allocated before modify_qp takes its locks, and handed to
 * gift_proto_qp_modified() once the modify succeeded (kfree() it if it
 * failed). Process context.
 *
 * Return: a zeroed array of max(@max_dest_rd_atomic, 1) entries, or NULL.
 */
struct gift_rd_res *gift_proto_rd_res_alloc(u8 max_dest_rd_atomic)
{
	return kcalloc(max_t(u32, max_dest_rd_atomic, 1),
		       sizeof(struct gift_rd_res), GFP_KERNEL);
}

/**
 * gift_proto_qp_modified() - react to new QP attributes
 * @qp: QP just modified
 * @attr: the attributes applied
 * @mask: which of @attr were applied
 * @rd_res: with IB_QP_MAX_DEST_RD_ATOMIC in @mask, the responder's new
 *	ring from gift_proto_rd_res_alloc(); otherwise NULL. Always
 *	consumed.
 *
 * Called with qp->modify_lock held, after every successful modify (and
 * by gift_qp_fatal(), which moves a QP whose CQ overflowed to ERR): takes
 * the engine's copy of the QP's attributes (struct gift_proto_attr) and
 * the new responder resource ring. Does nothing once
 * gift_proto_qp_destroy() has stopped the engine (a CQ's error work may
 * move a QP being destroyed to ERR).
 */
void gift_proto_qp_modified(struct gift_qp *qp, const struct ib_qp_attr *attr,
			    int mask, struct gift_rd_res *rd_res)
{
	struct gift_qp_proto *p = &qp->proto;

	spin_lock_bh(&p->lock);
	if (READ_ONCE(p->stopped)) {
		spin_unlock_bh(&p->lock);
		kfree(rd_res);
		return;
	}
	gift_proto_attr_update(qp);
	if (rd_res)
		gift_resp_swap_rd_res(qp, &rd_res,
				      max_t(u32, attr->max_dest_rd_atomic, 1));
	if ((mask & IB_QP_STATE) && attr->qp_state == IB_QPS_RESET)
		gift_proto_reset(qp);
	/*
	 * ib_modify_qp_is_ok() accepts en_sqd_async_notify only with
	 * RTS -> SQD; SQD -> SQD keeps what that asked for.
	 */
	if ((mask & IB_QP_STATE) && attr->qp_state != IB_QPS_SQD)
		p->sqd_notify = false;
	else if ((mask & IB_QP_EN_SQD_ASYNC_NOTIFY) && attr->en_sqd_async_notify)
		p->sqd_notify = true;
	if (mask & IB_QP_RQ_PSN)
		p->resp_psn = attr->rq_psn & GIFT_PSN_MASK;
	if (mask & IB_QP_SQ_PSN) {
		p->req_psn = attr->sq_psn & GIFT_PSN_MASK;
		p->req_psn_end = p->req_psn;
	}
	if (mask & IB_QP_RETRY_CNT)
		p->retry_left = attr->retry_cnt;
	if (mask & IB_QP_RNR_RETRY)
		p->rnr_left = attr->rnr_retry;
	if (mask & (IB_QP_AV | IB_QP_DEST_QPN))
		p->sport = gift_net_udp_sport(&p->attr.av, qp->ibqp.qp_num,
					      p->attr.dest_qpn);
	if (mask & IB_QP_AV)
		gift_net_route_reset(&p->route);
	if ((mask & IB_QP_STATE) && attr->qp_state == IB_QPS_ERR) {
		timer_delete(&p->retry_timer);
		timer_delete(&p->rnr_timer);
		skb_queue_purge(&p->rxq);
		gift_proto_unpark(qp);
		gift_resp_flush(qp);
		gift_resp_reset(qp);
	}
	spin_unlock_bh(&p->lock);
	kfree(rd_res);		/* the old ring */
	/* Packets may have waited for RTR, sends for RTS. */
	gift_proto_queue(qp);
}

/**
 * gift_proto_kick() - start processing newly posted send WQEs
 * @qp: QP in RTS or SQD; any context
 */
void gift_proto_kick(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;

	/*
	 * A user QP's poster (the uverbs post_send syscall) sends right away
	 * when the engine is idle, saving a work item hop per WR, and then
	 * delivers the packets that went to local QPs itself, saving a
	 * bottom-half work item per packet (gift_net_loop_hold()). Kernel
	 * QPs may post from hard irq or with the engine lock's users
	 * preempted: their work item sends.
	 */
	if (qp->is_user && spin_trylock_bh(&p->lock)) {
		bool held = gift_net_loop_hold();

		gift_proto_run(qp);
		spin_unlock(&p->lock);
		if (held)
			gift_net_loop_release();
		local_bh_enable();
		return;
	}
	gift_proto_queue(qp);
}

/**
 * gift_proto_qp_destroy() - stop all engine activity on a QP
 * @qp: QP being destroyed; its QPN is already unpublished
 */
void gift_proto_qp_destroy(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	unsigned long flags;

	spin_lock_irqsave(&p->rxq.lock, flags);
	p->stopped = true;
	spin_unlock_irqrestore(&p->rxq.lock, flags);

	timer_shutdown_sync(&p->retry_timer);
	timer_shutdown_sync(&p->rnr_timer);
	/*
	 * An engine pass that began before @stopped was set (the work
	 * item, the receive softirq, a poster) may still ask for a fault:
	 * let it end first, so that the fault it queued is cancelled
	 * below. Later passes see @stopped and return at once.
	 */
	spin_lock_bh(&p->lock);
	spin_unlock_bh(&p->lock);
	/* A fault that had not started yet still holds its MR. */
	if (cancel_work_sync(&p->fault.work)) {
		gift_mr_put(p->fault.mr);
		p->fault.mr = NULL;
		p->fault.busy = false;
	}
	cancel_work_sync(&p->work);

	spin_lock_bh(&p->lock);
	gift_proto_reset(qp);
	spin_unlock_bh(&p->lock);
	kfree(p->recv);
	p->recv = NULL;
	kfree(p->rd_res);
	p->rd_res = NULL;
	p->rd_res_n = 0;
	gift_net_route_destroy(&p->route);
}
