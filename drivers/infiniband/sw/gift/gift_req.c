// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift requester: turns posted send WQEs into RC request packets.
 *
 * The requester walks the outstanding send WQEs with a cursor (req_n,
 * req_off, req_psn; see struct gift_qp_proto). A WQE gets its PSN range
 * when its first packet goes out: one PSN per packet for SEND and RDMA
 * WRITE, one per response packet for RDMA READ (the responder answers on
 * those PSNs), one for an atomic, a FLUSH or an ATOMIC WRITE (IBTA 1.5:
 * RC_FLUSH carries a FETH and a RETH, RC_ATOMIC_WRITE a RETH and its 8
 * bytes as payload; both are answered like a zero-length RDMA READ).
 * Sending stops when the window of GIFT_MAX_INFLIGHT_PKTS unacknowledged
 * PSNs is full, when READ/atomic
 * WQEs reach max_rd_atomic, at a fenced WQE while READs/atomics are in
 * flight, and while an RNR back-off runs. The completer retires WQEs
 * from the front and rewinds the cursor to retransmit (gift_req_rewind()).
 *
 * A payload byte in a page of an ODP MR that is not mapped yet stops the
 * requester at that packet until the fault ended (gift_proto_fault());
 * the cursor has not moved, so the same packet is built again.
 *
 * Local operations (LOCAL_INV, REG_MR, BIND_MW) execute when the cursor
 * reaches them (a fenced one once everything before it has completed)
 * and complete in order once everything before them has.
 *
 * A UC QP sends the same packets with UC opcodes (SEND and RDMA WRITE
 * only, refused at post time otherwise), never asks for an
 * acknowledgment and has no window and no retransmission timer: a WQE is
 * done once its last packet went out, and gift_comp_local() completes it
 * with the local operations.
 */

#include "gift.h"
#include "gift_net.h"
#include "gift_stats.h"

/* The opcode of the next packet of @wqe; @first/@last: its position. */
static u8 gift_req_opcode(const struct gift_send_wqe *wqe, bool first,
			  bool last)
{
	switch (wqe->opcode) {
	case IB_WR_SEND:
		return first ? (last ? IB_OPCODE_RC_SEND_ONLY :
				       IB_OPCODE_RC_SEND_FIRST) :
			       (last ? IB_OPCODE_RC_SEND_LAST :
				       IB_OPCODE_RC_SEND_MIDDLE);
	case IB_WR_SEND_WITH_IMM:
		return first ? (last ? IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE :
				       IB_OPCODE_RC_SEND_FIRST) :
			       (last ? IB_OPCODE_RC_SEND_LAST_WITH_IMMEDIATE :
				       IB_OPCODE_RC_SEND_MIDDLE);
	case IB_WR_SEND_WITH_INV:
		return first ? (last ? IB_OPCODE_RC_SEND_ONLY_WITH_INVALIDATE :
				       IB_OPCODE_RC_SEND_FIRST) :
			       (last ? IB_OPCODE_RC_SEND_LAST_WITH_INVALIDATE :
				       IB_OPCODE_RC_SEND_MIDDLE);
	case IB_WR_RDMA_WRITE:
		return first ? (last ? IB_OPCODE_RC_RDMA_WRITE_ONLY :
				       IB_OPCODE_RC_RDMA_WRITE_FIRST) :
			       (last ? IB_OPCODE_RC_RDMA_WRITE_LAST :
				       IB_OPCODE_RC_RDMA_WRITE_MIDDLE);
	case IB_WR_RDMA_WRITE_WITH_IMM:
		return first ? (last ?
				IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE :
				IB_OPCODE_RC_RDMA_WRITE_FIRST) :
			       (last ?
				IB_OPCODE_RC_RDMA_WRITE_LAST_WITH_IMMEDIATE :
				IB_OPCODE_RC_RDMA_WRITE_MIDDLE);
	case IB_WR_RDMA_READ:
		return IB_OPCODE_RC_RDMA_READ_REQUEST;
	case IB_WR_ATOMIC_CMP_AND_SWP:
		return IB_OPCODE_RC_COMPARE_SWAP;
	case IB_WR_FLUSH:
		return IB_OPCODE_RC_FLUSH;
	case IB_WR_ATOMIC_WRITE:
		return IB_OPCODE_RC_ATOMIC_WRITE;
	default:
		return IB_OPCODE_RC_FETCH_ADD;
	}
}

/* PSNs a WQE consumes. */
static u32 gift_req_npsn(struct gift_qp *qp, const struct gift_send_wqe *wqe)
{
	u32 mtu = gift_qp_mtu(qp);

	if (gift_wqe_is_rd_atomic(wqe) && wqe->opcode != IB_WR_RDMA_READ)
		return 1;
	return gift_npkts(wqe->length, mtu);
}

/* Fills the extension headers of a request packet. */
static void gift_req_headers(struct sk_buff *skb,
			     const struct gift_send_wqe *wqe, u32 off)
{
	const struct gift_opcode_info *op = gift_pkt_op(skb);

	if (op->feth) {
		gift_feth_set(gift_pkt_feth(skb), wqe->wr.flush.type,
			      wqe->wr.flush.level);
		gift_reth_set(gift_pkt_reth(skb), wqe->wr.flush.remote_addr,
			      wqe->wr.flush.rkey, wqe->wr.flush.length);
	} else if (wqe->opcode == IB_WR_ATOMIC_WRITE) {
		gift_reth_set(gift_pkt_reth(skb),
			      wqe->wr.atomic_write.remote_addr,
			      wqe->wr.atomic_write.rkey,
			      sizeof(wqe->wr.atomic_write.data));
	} else if (op->reth) {
		if (wqe->opcode == IB_WR_RDMA_READ)
			gift_reth_set(gift_pkt_reth(skb),
				      wqe->wr.rdma.remote_addr + off,
				      wqe->wr.rdma.rkey, wqe->length - off);
		else
			gift_reth_set(gift_pkt_reth(skb),
				      wqe->wr.rdma.remote_addr,
				      wqe->wr.rdma.rkey, wqe->length);
	}
	if (op->atmeth)
		gift_atmeth_set(gift_pkt_atmeth(skb),
				wqe->wr.atomic.remote_addr,
				wqe->wr.atomic.rkey,
				wqe->opcode == IB_WR_ATOMIC_CMP_AND_SWP ?
				wqe->wr.atomic.swap :
				wqe->wr.atomic.compare_add,
				wqe->wr.atomic.compare_add);
	if (op->immdt)
		gift_immdt_set(gift_pkt_immdt(skb), wqe->ex.imm_data);
	if (op->ieth)
		gift_ieth_set(gift_pkt_ieth(skb), wqe->ex.invalidate_rkey);
}

/*
 * Is the payload of @wqe attached to its packets as page fragments
 * (zero-copy transmit, gift_sge_skb()) rather than copied? For RC SENDs
 * and WRITEs from SGEs of @len >= GIFT_ZC_MIN_BYTES only: those
 * complete once the responder acknowledged the bytes, so the buffers
 * stay the device's as long as a packet may still be read (a late
 * duplicate whose buffer changed fails its ICRC and is dropped, and a
 * responder never places a duplicate's payload anyway). A UC WQE
 * completes when its last packet is handed to the IP stack, while the
 * packet may still wait in a qdisc or the local shortcut: its buffer is
 * the application's again, so UC (as UD) copies.
 */
static bool gift_req_zc(struct gift_qp *qp, const struct gift_send_wqe *wqe,
			u32 len)
{
	return len >= GIFT_ZC_MIN_BYTES && !gift_qp_is_uc(qp) &&
	       wqe->opcode != IB_WR_ATOMIC_WRITE &&
	       !(wqe->send_flags & IB_SEND_INLINE);
}

/* Copies (or attaches) @len payload bytes of @wqe from @off into @skb. */
static int gift_req_payload(struct gift_qp *qp, struct gift_send_wqe *wqe,
			    struct sk_buff *skb, u32 off, u32 len)
{
	void *dst = skb->data + gift_pkt_op(skb)->length;

	if (!len)
		return 0;
	if (gift_req_zc(qp, wqe, len))
		return gift_sge_skb(qp, wqe->sge, wqe->num_sge, off, skb, len);
	if (wqe->opcode == IB_WR_ATOMIC_WRITE) {
		memcpy(dst, wqe->wr.atomic_write.data, len);
		return 0;
	}
	if (wqe->send_flags & IB_SEND_INLINE) {
		memcpy(dst, wqe->inline_data + off, len);
		return 0;
	}
	return gift_sge_copy(qp, wqe->sge, wqe->num_sge, off, dst, len, false);
}

/* Marks @wqe failed with @status: the completer errors the QP there. */
static void gift_req_fail(struct gift_qp *qp, struct gift_send_wqe *wqe,
			  enum ib_wc_status status)
{
	struct gift_wqe_state *st = gift_wqe_state(wqe);

	st->flags |= GIFT_WQE_FAILED | GIFT_WQE_SENT;
	st->status = status;
}

/*
 * LOCAL_INV, REG_MR and BIND_MW: executed by the requester, no packets,
 * no PSNs.
 */
static bool gift_req_is_local(const struct gift_send_wqe *wqe)
{
	return wqe->opcode == IB_WR_LOCAL_INV || wqe->opcode == IB_WR_REG_MR ||
	       wqe->opcode == IB_WR_BIND_MW;
}

/*
 * IB_SEND_FENCE on a local operation (the Local Invalidate Fence, IBA
 * 10.6.5.1): may it execute, i.e. has every WQE before it finished? Only
 * local operations and sent UC WQEs are GIFT_WQE_DONE before they
 * complete; anything else
 * before the cursor is still in flight (e.g. a READ whose responses land
 * in the MR a fenced LOCAL_INV invalidates).
 */
static bool gift_req_fence_ok(struct gift_qp *qp)
{
	struct gift_send_wqe *prev;
	u32 n;

	for (n = 0; n < qp->proto.req_n; n++) {
		prev = gift_qp_sq_peek(qp, n);
		if (prev && !(gift_wqe_state(prev)->flags & GIFT_WQE_DONE))
			return false;
	}
	return true;
}

/* Executes LOCAL_INV / REG_MR / BIND_MW; false when it failed. */
static bool gift_req_local(struct gift_qp *qp, struct gift_send_wqe *wqe)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	int err;

	if (wqe->opcode == IB_WR_LOCAL_INV)
		err = gift_mr_local_inv(gdev, wqe->ex.invalidate_rkey,
					qp->ibqp.pd);
	else if (wqe->opcode == IB_WR_BIND_MW)
		err = gift_mw_bind(qp, &wqe->wr.bind);
	else
		err = gift_mr_fast_reg(to_gift_mr(wqe->wr.reg.mr),
				       qp->ibqp.pd, wqe->wr.reg.key,
				       wqe->wr.reg.access);
	return !err;
}

/*
 * Sends the next packet of @wqe. Returns false when the requester must
 * stop (out of memory, or the WQE failed).
 */
static bool gift_req_packet(struct gift_qp *qp, struct gift_send_wqe *wqe)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_wqe_state *st = gift_wqe_state(wqe);
	u32 mtu = gift_qp_mtu(qp), len, off = p->req_off, idx;
	bool first = !off, last, rd = gift_wqe_is_rd_atomic(wqe);
	bool uc = gift_qp_is_uc(qp), ack_req;
	struct sk_buff *skb;
	u8 opcode;
	int err;

	/* Of the responder's rd/atomic operations, ATOMIC_WRITE has payload. */
	len = rd && wqe->opcode != IB_WR_ATOMIC_WRITE ? 0 :
	      min(mtu, wqe->length - off);
	last = rd || off + len >= wqe->length;
	opcode = gift_req_opcode(wqe, first, last);
	/* Index of this packet in the message, from 0. */
	idx = (p->req_psn - st->first_psn) & GIFT_PSN_MASK;
	ack_req = last || !((idx + 1) % GIFT_ACK_REQ_EVERY);
	if (uc) {
		/* The same operation in the UC transport; nothing to ACK. */
		opcode = (opcode & ~GIFT_BTH_TRANSPORT_MASK) | IB_OPCODE_UC;
		ack_req = false;
	}
	skb = gift_proto_alloc(qp, opcode, p->req_psn, ack_req,
			       last && (wqe->send_flags & IB_SEND_SOLICITED),
			       gift_req_zc(qp, wqe, len) ? 0 : len);
	if (!skb) {
		/*
		 * With nothing in flight, neither an ACK nor the
		 * retransmission timeout would run the requester again, and
		 * the WQE would wait for the next post: back off a jiffy,
		 * as after an RNR NAK, and try again.
		 */
		p->rnr_wait = true;
		mod_timer(&p->rnr_timer, jiffies + 1);
		return false;
	}
	gift_req_headers(skb, wqe, off);
	err = gift_req_payload(qp, wqe, skb, off, len);
	if (err) {
		kfree_skb(skb);
		/* -EAGAIN: an ODP page is being faulted; send it then. */
		if (err != -EAGAIN)
			gift_req_fail(qp, wqe, IB_WC_LOC_PROT_ERR);
		return false;
	}
	if (first)
		st->flags |= GIFT_WQE_STARTED;
	gift_proto_xmit(qp, skb);

	if (rd) {
		p->req_psn = gift_psn_add(st->last_psn, 1);
		st->flags |= GIFT_WQE_SENT;
		p->rd_sent++;
	} else {
		p->req_psn = gift_psn_add(p->req_psn, 1);
		p->req_off += len;
		if (last)
			st->flags |= GIFT_WQE_SENT;
		/* UC: sent is done; gift_comp_local() completes it. */
		if (last && uc)
			st->flags |= GIFT_WQE_DONE;
	}
	if (gift_psn_cmp(p->req_psn, p->req_psn_end) > 0)
		p->req_psn_end = p->req_psn;
	if (st->flags & GIFT_WQE_SENT) {
		p->req_n++;
		p->req_off = 0;
	}
	return true;
}

/* May @wqe start now? Assigns its PSN range when it may. */
static bool gift_req_may_start(struct gift_qp *qp, struct gift_send_wqe *wqe)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_wqe_state *st = gift_wqe_state(wqe);
	struct gift_send_wqe *oldest = gift_qp_sq_peek(qp, 0);
	u32 max_rd = max_t(u32, qp->proto.attr.max_rd_atomic, 1);

	if (st->flags & GIFT_WQE_STARTED)	/* retransmission */
		return true;
	if ((wqe->send_flags & IB_SEND_FENCE) && p->rd_atomic)
		return false;
	if (gift_wqe_is_rd_atomic(wqe) && p->rd_atomic >= max_rd)
		return false;
	/* UC: nothing is in flight, its WQEs are done once sent. */
	if (oldest && oldest != wqe && !gift_qp_is_uc(qp) &&
	    (gift_wqe_state(oldest)->flags & GIFT_WQE_STARTED) &&
	    gift_psn_cmp(p->req_psn, gift_wqe_state(oldest)->first_psn) >=
	    GIFT_MAX_INFLIGHT_PKTS)
		return false;

	st->first_psn = p->req_psn;
	st->ack_psn = p->req_psn;
	st->last_psn = gift_psn_add(p->req_psn, gift_req_npsn(qp, wqe) - 1);
	st->resp_len = 0;
	if (gift_wqe_is_rd_atomic(wqe))
		p->rd_atomic++;
	return true;
}

/**
 * gift_req_run() - send what the window allows
 * @qp: QP; runs under its engine lock
 *
 * In SQD only WQEs already started are sent (the rest of a message, or a
 * retransmission): the send queue drains, nothing new starts.
 */
void gift_req_run(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;
	enum ib_qp_state state;
	bool sent = false;

	lockdep_assert_held(&p->lock);
	state = gift_qp_state(qp);
	if ((state != IB_QPS_RTS && state != IB_QPS_SQD) || p->rnr_wait)
		return;

	while (p->budget && (wqe = gift_qp_sq_peek(qp, p->req_n))) {
		st = gift_wqe_state(wqe);
		if (st->flags & GIFT_WQE_FAILED)
			break;
		/* A slot of the mapped ring that held no valid request. */
		if (wqe->flags & GIFT_SWQE_BAD) {
			gift_req_fail(qp, wqe, IB_WC_LOC_QP_OP_ERR);
			break;
		}
		if (state == IB_QPS_SQD &&
		    !(st->flags & (GIFT_WQE_STARTED | GIFT_WQE_DONE)))
			break;
		if (gift_req_is_local(wqe)) {
			if (!(st->flags & GIFT_WQE_DONE)) {
				/* A fenced one waits, and so does all after it. */
				if ((wqe->send_flags & IB_SEND_FENCE) &&
				    !gift_req_fence_ok(qp))
					break;
				if (!gift_req_local(qp, wqe)) {
					gift_req_fail(qp, wqe,
						      wqe->opcode != IB_WR_LOCAL_INV ?
						      IB_WC_MW_BIND_ERR :
						      IB_WC_LOC_QP_OP_ERR);
					break;
				}
				st->flags |= GIFT_WQE_DONE | GIFT_WQE_SENT;
			}
			p->req_n++;
			continue;
		}
		/*
		 * Recovering from lost READ responses (rd_window, struct
		 * gift_qp_proto); before gift_req_may_start(), which counts
		 * a new READ as started.
		 */
		if (gift_wqe_is_rd_atomic(wqe) && p->rd_window &&
		    p->rd_sent >= p->rd_window)
			break;
		if (!p->req_off && !gift_req_may_start(qp, wqe))
			break;
		if (!gift_req_packet(qp, wqe))
			break;
		sent = true;
	}
	if (sent && !gift_qp_is_uc(qp) && !timer_pending(&p->retry_timer))
		gift_proto_arm_retry(qp);
}

/**
 * gift_req_rewind() - retransmit from a PSN
 * @qp: QP; runs under its engine lock
 * @psn: first PSN the responder has not acknowledged
 *
 * Every outstanding WQE is sent again from the one holding @psn. A SEND
 * or RDMA WRITE resumes at @psn itself: the responder has accepted every
 * packet before it, and is expecting that one (any later packets it
 * already has are duplicates it acknowledges again). A READ asks again
 * for the bytes it has not received yet; atomics are requested again.
 * Resuming at a READ or atomic means responses were lost: READs and
 * atomics then go out one at a time again, the window growing as they
 * complete (rd_window, struct gift_qp_proto).
 */
void gift_req_rewind(struct gift_qp *qp, u32 psn)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;
	u32 n;

	lockdep_assert_held(&p->lock);
	/*
	 * Local operations have no PSNs and are never GIFT_WQE_STARTED:
	 * step over them (they were executed once and stay GIFT_WQE_DONE)
	 * rather than stopping there, or the WQEs after an executed REG_MR
	 * or LOCAL_INV keep GIFT_WQE_SENT and are resent from their first
	 * packet only.
	 */
	for (n = 0; (wqe = gift_qp_sq_peek(qp, n)); n++) {
		st = gift_wqe_state(wqe);
		if (gift_req_is_local(wqe))
			continue;
		if (!(st->flags & GIFT_WQE_STARTED))
			break;
		if (gift_psn_cmp(st->last_psn, psn) >= 0)
			break;
	}
	if (!wqe || !(gift_wqe_state(wqe)->flags & GIFT_WQE_STARTED)) {
		/* Everything sent is acknowledged; nothing to resend. */
		return;
	}
	st = gift_wqe_state(wqe);
	p->req_n = n;
	p->req_off = 0;
	p->req_psn = st->first_psn;
	if (wqe->opcode == IB_WR_RDMA_READ) {
		/*
		 * Responses arrive in order, so resp_len bytes are in place:
		 * ask for the rest only, at the PSN of its first response
		 * (the responder treats it as a duplicate READ and replies
		 * from the new RETH).
		 */
		p->req_off = st->resp_len;
		p->req_psn = gift_psn_add(st->first_psn,
					  st->resp_len / gift_qp_mtu(qp));
		st->ack_psn = p->req_psn;
	} else if (!gift_wqe_is_rd_atomic(wqe) &&
		   gift_psn_cmp(psn, st->first_psn) > 0) {
		p->req_psn = psn;
		p->req_off = ((psn - st->first_psn) & GIFT_PSN_MASK) *
			     gift_qp_mtu(qp);
	}
	if (gift_wqe_is_rd_atomic(wqe))
		p->rd_window = 1;
	for (; (wqe = gift_qp_sq_peek(qp, n)); n++) {
		st = gift_wqe_state(wqe);
		if (gift_req_is_local(wqe))
			continue;
		if (!(st->flags & GIFT_WQE_STARTED))
			break;
		if (gift_wqe_is_rd_atomic(wqe) && (st->flags & GIFT_WQE_SENT) &&
		    p->rd_sent)
			p->rd_sent--;
		if (!(st->flags & GIFT_WQE_DONE))
			st->flags &= ~GIFT_WQE_SENT;
		/* Only the oldest READ can have responses; it resumes. */
		if (n != p->req_n)
			st->resp_len = 0;
	}
	gift_stats_inc(to_gift_dev(qp->ibqp.device), GIFT_CNT_RETRANSMITS);
}
