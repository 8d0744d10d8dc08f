// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift completer: retires send WQEs from the front of the send queue
 * as the responder acknowledges them.
 *
 * An ACK with PSN n acknowledges every request packet up to n; an RDMA
 * READ response or atomic acknowledge with PSN n implicitly acknowledges
 * everything before n. SEND and RDMA WRITE WQEs complete when their last
 * PSN is acknowledged, READs when their last response arrived, atomics
 * with their acknowledge, FLUSH and ATOMIC WRITE with their (empty) RDMA
 * READ response. NAKs: a PSN sequence error rewinds the
 * requester to the expected PSN; an RNR NAK does the same after the
 * back-off the responder asked for, at most rnr_retry times (7: forever);
 * other NAKs complete the WQE they name with the matching error and move
 * the QP to ERR. A retransmission timeout rewinds to the oldest
 * unacknowledged WQE, at most retry_cnt times. Completions are always
 * generated in posting order.
 *
 * A READ response or atomic acknowledge whose data goes to a page of an
 * ODP MR that is not mapped yet is parked until the fault ended
 * (gift_proto_park()) and handled again from the start: nothing changed
 * before the copy. Timeouts spend no retry while it waits.
 *
 * Nothing is trusted beyond what was sent: a response whose PSN is
 * outside [oldest unacknowledged PSN, one past the furthest PSN sent) is
 * a duplicate or a ghost (IBTA 9.7.5.1.x) and is dropped and counted
 * before it can acknowledge anything.
 */

#include <linux/jiffies.h>

#include "gift.h"
#include "gift_net.h"
#include "gift_stats.h"

/* IBTA RNR NAK timer field -> microseconds (encoding 0 is the longest). */
static const u32 gift_rnr_usec[32] = {
	655360, 10, 20, 30, 40, 60, 80, 120, 160, 240, 320, 480, 640, 960,
	1280, 1920, 2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720,
	40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

static void gift_comp_stats(struct gift_qp *qp, enum gift_counter c)
{
	gift_stats_inc(to_gift_dev(qp->ibqp.device), c);
}

/* Completes the oldest send WQE with @status. */
static void gift_comp_head(struct gift_qp *qp, struct gift_send_wqe *wqe,
			   enum ib_wc_status status, u32 byte_len)
{
	struct gift_qp_proto *p = &qp->proto;
	u32 flags = gift_wqe_state(wqe)->flags;

	if (gift_wqe_is_rd_atomic(wqe)) {
		if ((flags & GIFT_WQE_STARTED) && p->rd_atomic)
			p->rd_atomic--;
		if ((flags & GIFT_WQE_SENT) && p->rd_sent)
			p->rd_sent--;
		/* Recovering from lost responses: widen the window. */
		if (p->rd_window && status == IB_WC_SUCCESS) {
			p->rd_window *= 2;
			if (p->rd_window >= p->attr.max_rd_atomic)
				p->rd_window = 0;
		}
	}
	if (p->req_n)
		p->req_n--;
	else
		p->req_off = 0;
	gift_qp_sq_complete(qp, status, byte_len);
}

/* Completes the oldest WQE with an error and moves the QP to ERR. */
static void gift_comp_fail(struct gift_qp *qp, struct gift_send_wqe *wqe,
			   enum ib_wc_status status)
{
	gift_comp_head(qp, wqe, status, 0);
	timer_delete(&qp->proto.retry_timer);
	gift_resp_flush(qp);
	gift_qp_error(qp);
}

/* Restarts or stops the retransmission timer after progress. */
static void gift_comp_progress(struct gift_qp *qp)
{
	struct gift_send_wqe *wqe = gift_qp_sq_peek(qp, 0);
	struct gift_qp_proto *p = &qp->proto;

	p->retry_left = p->attr.retry_cnt;
	p->rnr_left = p->attr.rnr_retry;
	if (wqe && (gift_wqe_state(wqe)->flags & GIFT_WQE_STARTED))
		gift_proto_arm_retry(qp);
	else
		timer_delete(&p->retry_timer);
}

/**
 * gift_comp_local() - retire finished local and failed WQEs at the front
 * @qp: QP; runs under its engine lock
 */
void gift_comp_local(struct gift_qp *qp)
{
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;

	lockdep_assert_held(&qp->proto.lock);
	while ((wqe = gift_qp_sq_peek(qp, 0))) {
		st = gift_wqe_state(wqe);
		if (st->flags & GIFT_WQE_FAILED) {
			gift_comp_fail(qp, wqe, st->status);
			return;
		}
		if (!(st->flags & GIFT_WQE_DONE))
			return;
		gift_comp_head(qp, wqe, IB_WC_SUCCESS, 0);
	}
}

/*
 * Acknowledges every request packet up to @psn. Returns the oldest
 * WQE still outstanding, or NULL.
 */
static struct gift_send_wqe *gift_comp_ack(struct gift_qp *qp, u32 psn)
{
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;
	bool progress = false;

	while ((wqe = gift_qp_sq_peek(qp, 0))) {
		st = gift_wqe_state(wqe);
		if (st->flags & (GIFT_WQE_DONE | GIFT_WQE_FAILED)) {
			gift_comp_local(qp);
			if (gift_qp_sq_peek(qp, 0) == wqe)
				break;
			continue;
		}
		if (!(st->flags & GIFT_WQE_SENT) ||
		    gift_psn_cmp(st->last_psn, psn) > 0)
			break;
		if (gift_wqe_is_rd_atomic(wqe)) {
			/* Acknowledged past its responses: they were lost. */
			gift_req_rewind(qp, st->first_psn);
			break;
		}
		gift_comp_head(qp, wqe, IB_WC_SUCCESS, 0);
		progress = true;
	}
	/*
	 * An acknowledgment inside a SEND or WRITE message (AckReq every
	 * GIFT_ACK_REQ_EVERY packets) is progress too: the timer restarts,
	 * the retries are refilled, and a timeout resumes after @psn. It
	 * may also have completed the messages before that one.
	 */
	if (wqe && !gift_wqe_is_rd_atomic(wqe)) {
		st = gift_wqe_state(wqe);
		if ((st->flags & GIFT_WQE_STARTED) &&
		    !(st->flags & (GIFT_WQE_DONE | GIFT_WQE_FAILED)) &&
		    gift_psn_cmp(psn, st->ack_psn) >= 0 &&
		    gift_psn_cmp(psn, st->last_psn) < 0) {
			st->ack_psn = gift_psn_add(psn, 1);
			progress = true;
		}
	}
	if (progress)
		gift_comp_progress(qp);
	return gift_qp_sq_peek(qp, 0);
}

/*
 * The answer to a FLUSH or ATOMIC_WRITE: an RDMA READ response only with
 * no payload, at the request's PSN (IBTA 1.5, as rxe sends it). Anything
 * else answering one is a bad response.
 */
static void gift_comp_flush_resp(struct gift_qp *qp, struct gift_send_wqe *wqe,
				 struct sk_buff *skb)
{
	struct gift_wqe_state *st = gift_wqe_state(wqe);

	if (!(st->flags & GIFT_WQE_SENT) || gift_pkt(skb)->psn != st->first_psn)
		return;		/* duplicate, or a gap: the timer recovers */
	if (gift_pkt(skb)->opcode != IB_OPCODE_RC_RDMA_READ_RESPONSE_ONLY ||
	    gift_pkt(skb)->payload_len) {
		gift_comp_fail(qp, wqe, IB_WC_BAD_RESP_ERR);
		return;
	}
	gift_comp_head(qp, wqe, IB_WC_SUCCESS, 0);
	gift_comp_progress(qp);
}

/* An RDMA READ response packet for the oldest WQE. */
static void gift_comp_read_resp(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_pkt_info *pkt = gift_pkt(skb);
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 mtu = gift_qp_mtu(qp), psn = pkt->psn, len = pkt->payload_len;
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;
	int err;

	wqe = gift_comp_ack(qp, gift_psn_add(psn, GIFT_PSN_MASK));
	if (wqe && (wqe->opcode == IB_WR_FLUSH ||
		    wqe->opcode == IB_WR_ATOMIC_WRITE)) {
		gift_comp_flush_resp(qp, wqe, skb);
		return;
	}
	if (!wqe || wqe->opcode != IB_WR_RDMA_READ)
		return;
	st = gift_wqe_state(wqe);
	if (!(st->flags & GIFT_WQE_SENT) ||
	    gift_psn_cmp(psn, gift_psn_add(st->first_psn, st->resp_len / mtu)))
		return;		/* duplicate, or a gap: the timer recovers */
	/*
	 * A reply starts with FIRST (or ONLY): the original one at the
	 * READ's first PSN, a reply to a re-request (gift_req_rewind()) at
	 * the PSN it resumed at, ack_psn. The bytes at a PSN are the same
	 * in either reply.
	 */
	if ((op->flags & GIFT_OPF_FIRST ?
	     st->resp_len && gift_psn_cmp(psn, st->ack_psn) : !st->resp_len) ||
	    (!(op->flags & GIFT_OPF_LAST) && len != mtu) || len > mtu ||
	    st->resp_len + len > wqe->length) {
		gift_comp_fail(qp, wqe, IB_WC_BAD_RESP_ERR);
		return;
	}

	err = gift_sge_copy_skb(qp, wqe->sge, wqe->num_sge, st->resp_len,
				skb, pkt->payload_off, len);
	if (err == -EAGAIN) {
		gift_proto_park(qp, skb, false);
		return;
	}
	if (err) {
		gift_comp_fail(qp, wqe, IB_WC_LOC_PROT_ERR);
		return;
	}
	st->resp_len += len;
	if (!(op->flags & GIFT_OPF_LAST)) {
		/*
		 * A response in order is progress: it restarts the timer,
		 * or a READ whose responses take longer than the timeout
		 * never completes, and refills the retries, since a
		 * timeout asks only for the bytes still missing.
		 */
		qp->proto.retry_left = qp->proto.attr.retry_cnt;
		gift_proto_arm_retry(qp);
		return;
	}
	if (st->resp_len != wqe->length) {
		gift_comp_fail(qp, wqe, IB_WC_BAD_RESP_ERR);
		return;
	}
	gift_comp_head(qp, wqe, IB_WC_SUCCESS, wqe->length);
	gift_comp_progress(qp);
}

/* An atomic acknowledge for the oldest WQE. */
static void gift_comp_atomic_ack(struct gift_qp *qp, struct sk_buff *skb)
{
	u32 psn = gift_pkt(skb)->psn;
	struct gift_send_wqe *wqe;
	u64 orig;
	int err;

	wqe = gift_comp_ack(qp, gift_psn_add(psn, GIFT_PSN_MASK));
	if (!wqe || (wqe->opcode != IB_WR_ATOMIC_CMP_AND_SWP &&
		     wqe->opcode != IB_WR_ATOMIC_FETCH_AND_ADD) ||
	    !(gift_wqe_state(wqe)->flags & GIFT_WQE_SENT) ||
	    gift_wqe_state(wqe)->first_psn != psn)
		return;
	orig = gift_atmack_orig(gift_pkt_atmack(skb));
	err = gift_sge_copy(qp, wqe->sge, wqe->num_sge, 0, &orig, sizeof(orig),
			    true);
	if (err == -EAGAIN) {
		gift_proto_park(qp, skb, false);
		return;
	}
	if (err) {
		gift_comp_fail(qp, wqe, IB_WC_LOC_PROT_ERR);
		return;
	}
	gift_comp_head(qp, wqe, IB_WC_SUCCESS, sizeof(orig));
	gift_comp_progress(qp);
}

static enum ib_wc_status gift_comp_nak_status(u8 code)
{
	switch (code) {
	case GIFT_NAK_INVALID_REQ:
		return IB_WC_REM_INV_REQ_ERR;
	case GIFT_NAK_REM_ACCESS_ERR:
		return IB_WC_REM_ACCESS_ERR;
	case GIFT_NAK_INVALID_RD_REQ:
		return IB_WC_REM_INV_RD_REQ_ERR;
	default:
		return IB_WC_REM_OP_ERR;
	}
}

/* RNR NAK for @psn: back off, then resend from @psn. */
static void gift_comp_rnr(struct gift_qp *qp, struct gift_send_wqe *wqe,
			  u32 psn, u8 syndrome)
{
	struct gift_qp_proto *p = &qp->proto;
	u32 usec = gift_rnr_usec[syndrome & GIFT_AETH_VALUE_MASK];

	gift_comp_stats(qp, GIFT_CNT_RNR_NAKS_RCVD);
	if (!p->rnr_left) {
		gift_comp_stats(qp, GIFT_CNT_RNR_RETRY_EXCEEDED);
		gift_comp_fail(qp, wqe, IB_WC_RNR_RETRY_EXC_ERR);
		return;
	}
	if (p->rnr_left != 7)
		p->rnr_left--;
	gift_req_rewind(qp, psn);
	/*
	 * The responder answered: no transport timeout while we back off
	 * (only rnr_retry limits RNR waits). Resending re-arms the timer.
	 */
	timer_delete(&p->retry_timer);
	p->rnr_wait = true;
	mod_timer(&p->rnr_timer, jiffies + max(1UL, usecs_to_jiffies(usec)));
}

/* An ACKNOWLEDGE packet: ACK, RNR NAK or NAK. */
static void gift_comp_ack_pkt(struct gift_qp *qp, struct sk_buff *skb)
{
	u8 syndrome = gift_aeth_syndrome(gift_pkt_aeth(skb));
	u32 psn = gift_pkt(skb)->psn;
	struct gift_send_wqe *wqe;

	switch (syndrome & GIFT_AETH_TYPE_MASK) {
	case GIFT_AETH_ACK:
		gift_comp_ack(qp, psn);
		return;
	case GIFT_AETH_RNR_NAK:
		wqe = gift_comp_ack(qp, gift_psn_add(psn, GIFT_PSN_MASK));
		if (wqe)
			gift_comp_rnr(qp, wqe, psn, syndrome);
		return;
	case GIFT_AETH_NAK:
		wqe = gift_comp_ack(qp, gift_psn_add(psn, GIFT_PSN_MASK));
		if (!wqe)
			return;
		if ((syndrome & GIFT_AETH_VALUE_MASK) == GIFT_NAK_PSN_SEQ_ERR) {
			gift_comp_stats(qp, GIFT_CNT_SEQ_NAKS_RCVD);
			gift_req_rewind(qp, psn);
			return;
		}
		gift_comp_fail(qp, wqe,
			       gift_comp_nak_status(syndrome &
						    GIFT_AETH_VALUE_MASK));
		return;
	default:
		gift_comp_stats(qp, GIFT_CNT_DROPPED_PKTS);
	}
}

/*
 * The oldest PSN a response may carry: the first unacknowledged one of
 * the oldest outstanding WQE (a SEND's or WRITE's ack_psn, a READ's next
 * response, an atomic's PSN), or req_psn_end when nothing is outstanding.
 * Executed local operations (GIFT_WQE_DONE) have no PSNs.
 */
static u32 gift_comp_una(struct gift_qp *qp)
{
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;
	u32 n;

	for (n = 0; (wqe = gift_qp_sq_peek(qp, n)); n++) {
		st = gift_wqe_state(wqe);
		if (st->flags & GIFT_WQE_DONE)
			continue;
		if (!(st->flags & GIFT_WQE_STARTED))
			break;
		if (wqe->opcode == IB_WR_RDMA_READ)
			return gift_psn_add(st->first_psn,
					    st->resp_len / gift_qp_mtu(qp));
		if (gift_wqe_is_rd_atomic(wqe))
			return st->first_psn;
		return st->ack_psn;
	}
	return qp->proto.req_psn_end;
}

/**
 * gift_comp_rcv() - handle a response packet for the requester side
 * @qp: QP; runs under its engine lock
 * @skb: ACKNOWLEDGE, ATOMIC_ACKNOWLEDGE or RDMA_READ_RESPONSE_*; consumed
 *
 * A response whose PSN is not in [gift_comp_una(), req_psn_end) answers
 * nothing outstanding: it is dropped and counted in dropped_pkts.
 */
void gift_comp_rcv(struct gift_qp *qp, struct sk_buff *skb)
{
	u32 psn = gift_pkt(skb)->psn;

	lockdep_assert_held(&qp->proto.lock);
	if (gift_psn_cmp(psn, gift_comp_una(qp)) < 0 ||
	    gift_psn_cmp(psn, qp->proto.req_psn_end) >= 0) {
		gift_comp_stats(qp, GIFT_CNT_DROPPED_PKTS);
		consume_skb(skb);
		return;
	}
	switch (gift_pkt_op(skb)->cls) {
	case GIFT_OPC_READ_RESP:
		gift_comp_read_resp(qp, skb);
		break;
	case GIFT_OPC_ACK:
		if (gift_pkt(skb)->opcode == IB_OPCODE_RC_ATOMIC_ACKNOWLEDGE)
			gift_comp_atomic_ack(qp, skb);
		else
			gift_comp_ack_pkt(qp, skb);
		break;
	default:
		gift_comp_stats(qp, GIFT_CNT_DROPPED_PKTS);
	}
	consume_skb(skb);
}

/**
 * gift_comp_timeout() - no acknowledgment within the QP's timeout
 * @qp: QP; runs under its engine lock
 */
void gift_comp_timeout(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_send_wqe *wqe = gift_qp_sq_peek(qp, 0);
	struct gift_wqe_state *st;

	lockdep_assert_held(&p->lock);
	if (!wqe || (gift_qp_state(qp) != IB_QPS_RTS &&
		     gift_qp_state(qp) != IB_QPS_SQD))
		return;
	st = gift_wqe_state(wqe);
	if (!(st->flags & GIFT_WQE_STARTED) ||
	    (st->flags & (GIFT_WQE_DONE | GIFT_WQE_FAILED)))
		return;
	/*
	 * In SQD too: the requester resends started WQEs to drain them.
	 * While this QP waits for a local ODP fault (a response parked, or
	 * the requester stopped at a page of its own it must read to build
	 * the retransmission) a timeout is no loss the peer caused and the
	 * resend may not even be possible: no retry is spent, but the timer
	 * runs on.
	 */
	if (p->parked || p->fault.busy) {
		gift_proto_arm_retry(qp);
		return;
	}
	if (!p->retry_left) {
		gift_comp_stats(qp, GIFT_CNT_RETRY_EXCEEDED);
		gift_comp_fail(qp, wqe, IB_WC_RETRY_EXC_ERR);
		return;
	}
	p->retry_left--;
	gift_req_rewind(qp, st->ack_psn);
	gift_proto_arm_retry(qp);
}
