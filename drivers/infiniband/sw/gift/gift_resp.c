// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift responder: executes RC request packets.
 *
 * Packets are taken strictly in PSN order. A packet ahead of the expected
 * PSN gets one PSN sequence error NAK per gap; a packet behind it is a
 * duplicate: SEND and WRITE duplicates are acknowledged again. READs and
 * atomics are remembered in the responder resources (struct
 * gift_rd_res): a READ duplicate is executed again only inside the bounds
 * of a remembered READ, after the access checks, atomic duplicates replay
 * the remembered result and are never executed twice, nor are FLUSH and
 * ATOMIC WRITE duplicates, which get their empty READ response again; other READ and
 * atomic duplicates are dropped and counted. A SEND (or a WRITE with immediate) finding
 * no receive WQE gets an RNR NAK and is not consumed: the requester
 * retransmits it after the back-off.
 *
 * Running out of atomic memory for a request's payload is transient: the
 * packet is dropped and counted without advancing the expected PSN, and
 * the requester retransmits it, as the completer does with responses.
 *
 * A page of an ODP MR that is not in the device's page table yet
 * (gift_odp.c) stops the responder where it is: a SEND or WRITE packet
 * is parked after its checks and first-packet work (gift_proto_park())
 * and its copy resumes once the fault ended; an atomic is handled anew;
 * a READ reply stops at the packet that missed and continues from there.
 * Requests behind it wait in the receive queue, in order, and the
 * requester sees nothing but a slower responder, until the fault outlasts
 * its ACK timeout: what it then sends again of the parked request gets an
 * RNR NAK (gift_resp_parked_verdict()), so that a long fault spends RNR
 * retries, not transport retries.
 *
 * Errors the requester caused (access violations, bad lengths, opcode
 * sequence errors, misaligned atomics) are answered with the matching
 * NAK and move this QP to ERR too, completing a receive WQE in progress
 * with the error first.
 *
 * UC (IBTA vol. 1 chapter 9, unreliable service, and the UC column of
 * the responder's error classes): SEND and RDMA WRITE only, never
 * answered (gift_proto_send_ack() sends nothing) and never retransmitted,
 * so there are no duplicates. A packet that does not start a message is
 * taken only at the expected PSN and in sequence; otherwise packets were
 * lost (or the requester erred), and the message in progress is
 * abandoned and the rest of it dropped silently (@uc_drop, struct
 * gift_qp_proto), counted in dropped_pkts. So are a message finding no
 * receive WQE, an RDMA WRITE the QP's access flags or its rkey do not
 * allow, and bad lengths. A packet that starts a message (FIRST or ONLY)
 * is taken at any PSN: the expected PSN follows it, and it abandons what
 * was in progress (rdma_rxe drops such a packet, and with it the whole
 * new message, when it comes at the expected PSN in the middle of a
 * message). A SEND abandoned after it took its receive WQE does not
 * complete: the WQE is kept (@recv_kept) and the next message that needs
 * one, a SEND or an RDMA WRITE with immediate, uses it from its start.
 * An abandoned WRITE leaves what it wrote and no completion. Errors of
 * the receive WQE itself (its SGEs) complete it with the error and move
 * the QP to ERR, as for RC.
 */

#include "gift.h"
#include "gift_net.h"
#include "gift_stats.h"

#define GIFT_ACK_SYNDROME	(GIFT_AETH_ACK | GIFT_AETH_CREDIT_INVALID)

static void gift_resp_stats(struct gift_qp *qp, enum gift_counter c)
{
	gift_stats_inc(to_gift_dev(qp->ibqp.device), c);
}

static void gift_resp_end_write(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;

	if (p->wr_mr)
		gift_mr_put(p->wr_mr);
	p->wr_mr = NULL;
	p->in_write = false;
}

/**
 * gift_resp_reset() - forget the responder's state
 * @qp: QP being reset, errored or destroyed; under its engine lock
 */
void gift_resp_reset(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;

	lockdep_assert_held(&p->lock);
	gift_resp_end_write(qp);
	if (p->rr_mr)
		gift_mr_put(p->rr_mr);
	p->rr_mr = NULL;
	p->rr_active = false;
	p->in_send = false;
	p->recv_kept = false;
	p->uc_drop = false;
	p->recv_off = 0;
	p->nak_sent = false;
	p->msn = 0;
	p->rd_next = 0;
	if (p->rd_res)
		memset(p->rd_res, 0, p->rd_res_n * sizeof(*p->rd_res));
}

/**
 * gift_resp_swap_rd_res() - give the responder a new resource ring
 * @qp: QP; under its engine lock
 * @rd_res: a zeroed ring of @n entries; on return, the old ring (or
 *	NULL), for the caller to free outside the lock
 * @n: entries of the ring: the QP's max_dest_rd_atomic, at least 1
 *
 * The newest @n requests the old ring remembers move over, oldest first,
 * so that a depth changed in SQD still replays what a duplicate may ask
 * for.
 */
void gift_resp_swap_rd_res(struct gift_qp *qp, struct gift_rd_res **rd_res,
			   u32 n)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_rd_res *old = p->rd_res, *res = *rd_res;
	u32 old_n = p->rd_res_n, keep = min(old_n, n), i;

	lockdep_assert_held(&p->lock);
	for (i = 0; i < keep; i++)
		res[i] = old[(p->rd_next + old_n - keep + i) % old_n];
	p->rd_res = res;
	p->rd_res_n = n;
	p->rd_next = keep % n;
	*rd_res = old;
}

/*
 * The slot of the responder resources a new READ or atomic request takes
 * (the oldest one's); NULL when the QP has none (modify_qp never set
 * max_dest_rd_atomic).
 */
static struct gift_rd_res *gift_resp_new_res(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_rd_res *res;

	if (!p->rd_res_n)
		return NULL;
	res = &p->rd_res[p->rd_next];
	p->rd_next = (p->rd_next + 1) % p->rd_res_n;
	return res;
}

/* Completes the receive WQE in progress with an error status. */
static void gift_resp_recv_error(struct gift_qp *qp, enum ib_wc_status status)
{
	struct gift_qp_proto *p = &qp->proto;
	struct ib_wc wc = {
		.status = status,
		.opcode = IB_WC_RECV,
		.src_qp = qp->proto.attr.dest_qpn,
	};

	if (!p->in_send && !p->recv_kept)
		return;
	p->in_send = false;
	p->recv_kept = false;
	gift_qp_rq_complete(qp, p->recv, &wc, false);
}

/*
 * UC: abandons the message in progress, if any. A SEND's receive WQE is
 * kept for the next message, a WRITE's MR reference dropped.
 */
static void gift_resp_uc_abandon(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;

	if (p->in_send) {
		p->in_send = false;
		p->recv_kept = true;
	}
	p->recv_off = 0;
	gift_resp_end_write(qp);
}

/*
 * UC: drops the packet being handled and the rest of its message, which
 * is abandoned (see the file comment).
 */
static void gift_resp_uc_drop(struct gift_qp *qp)
{
	gift_resp_uc_abandon(qp);
	qp->proto.uc_drop = true;
	gift_resp_stats(qp, GIFT_CNT_DROPPED_PKTS);
}

/**
 * gift_resp_flush() - complete the receive in progress with a flush error
 * @qp: QP about to enter ERR, or just entered it; under its engine lock
 *
 * A WQE taken from an SRQ belongs to the engine alone once popped: the
 * QP's flush does not see it, so it completes here, or the consumer
 * never gets its buffer back. A WQE of the QP's own receive queue
 * completes here too when the QP is not flushed yet, or is found already
 * retired by the flush (gift_qp_rq_complete() then posts nothing).
 */
void gift_resp_flush(struct gift_qp *qp)
{
	lockdep_assert_held(&qp->proto.lock);
	gift_resp_recv_error(qp, IB_WC_WR_FLUSH_ERR);
}

/* NAKs @psn with @code and moves the QP to ERR. */
static void gift_resp_fatal(struct gift_qp *qp, u32 psn, u8 code,
			    enum ib_wc_status recv_status)
{
	gift_proto_send_ack(qp, GIFT_AETH_NAK | code, psn);
	gift_resp_recv_error(qp, recv_status);
	gift_resp_end_write(qp);
	gift_qp_error(qp);
}

/*
 * A request the requester got wrong: RC NAKs it and moves the QP to ERR
 * (gift_resp_fatal()), UC drops the rest of the message.
 */
static void gift_resp_refuse(struct gift_qp *qp, u32 psn, u8 code,
			     enum ib_wc_status recv_status)
{
	if (gift_qp_is_uc(qp))
		gift_resp_uc_drop(qp);
	else
		gift_resp_fatal(qp, psn, code, recv_status);
}

/*
 * Copies the @len payload bytes of @skb straight into @mr at @va, or into
 * the receive WQE: the one copy of the receive path, fragments included;
 * -EAGAIN when an ODP page must be faulted first (gift_proto_fault()).
 */
static int gift_resp_copy(struct gift_qp *qp, struct sk_buff *skb, u32 len,
			  struct gift_mr *mr, u64 va)
{
	u32 off = gift_pkt(skb)->payload_off;
	int err;

	if (!len)
		return 0;
	if (mr) {
		err = gift_mr_copy_skb(mr, va, skb, off, len);
		if (err == -EAGAIN)
			err = gift_proto_fault(qp, mr, va, len, true);
		return err;
	}
	return gift_sge_copy_skb(qp, qp->proto.recv->sge,
				 qp->proto.recv->num_sge, qp->proto.recv_off,
				 skb, off, len);
}

/* Length rules of multi-packet messages; false for a bad payload size. */
static bool gift_resp_len_ok(struct gift_qp *qp, struct sk_buff *skb)
{
	u32 len = gift_pkt(skb)->payload_len, mtu = gift_qp_mtu(qp);

	if (len > mtu)
		return false;
	return (gift_pkt_op(skb)->flags & GIFT_OPF_LAST) || len == mtu;
}

/*
 * An RNR NAK for @psn, with the QP's min_rnr_timer; counted. Like a PSN
 * sequence error NAK it is the only NAK of its gap: the requests behind
 * @psn that are already on their way are dropped without another NAK
 * (@nak_sent) until the requester, after its RNR wait, sends @psn again.
 * A sequence error NAK for them would make the requester resend them
 * once more, behind the resend the RNR NAK asked for.
 */
static void gift_resp_rnr_nak(struct gift_qp *qp, u32 psn)
{
	gift_proto_send_ack(qp, GIFT_AETH_RNR_NAK |
			    (qp->proto.attr.min_rnr_timer &
			     GIFT_AETH_VALUE_MASK), psn);
	gift_resp_stats(qp, GIFT_CNT_RNR_NAKS_SENT);
	qp->proto.nak_sent = true;
}

/*
 * A mapped receive ring whose producer index is corrupt (@wqe false), or
 * whose slot held no valid work request (@wqe true: it completes with
 * IB_WC_LOC_QP_OP_ERR): the QP fails, RC with a remote operational
 * error NAK, as for any local error of the responder.
 */
static void gift_resp_ring_bad(struct gift_qp *qp, u32 psn, bool wqe)
{
	qp->proto.in_send = wqe;
	if (gift_qp_is_uc(qp)) {
		gift_resp_recv_error(qp, IB_WC_LOC_QP_OP_ERR);
		gift_resp_uc_drop(qp);
		gift_qp_error(qp);
	} else {
		gift_resp_fatal(qp, psn, GIFT_NAK_REM_OP_ERR,
				IB_WC_LOC_QP_OP_ERR);
	}
}

/*
 * Takes a receive WQE for a new message, or the one a dropped UC message
 * left; false when there is none (RC sent an RNR NAK, UC drops the
 * message) or the receive queue is a corrupt mapped ring (the QP failed).
 */
static bool gift_resp_get_recv(struct gift_qp *qp, u32 psn)
{
	struct gift_qp_proto *p = &qp->proto;
	int err;

	if (p->recv_kept) {
		p->recv_kept = false;
	} else {
		err = gift_qp_rq_pop(qp, p->recv);
		if (err == -EIO || (!err && (p->recv->flags & GIFT_RWQE_BAD))) {
			gift_resp_ring_bad(qp, psn, !err);
			return false;
		}
		if (err) {
			if (gift_qp_is_uc(qp))
				gift_resp_uc_drop(qp);
			else
				gift_resp_rnr_nak(qp, psn);
			return false;
		}
	}
	p->in_send = true;
	p->recv_off = 0;
	return true;
}

/* Completes the receive WQE of a finished message. */
static void gift_resp_complete_recv(struct gift_qp *qp, struct sk_buff *skb,
				    struct ib_wc *wc)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);

	wc->status = IB_WC_SUCCESS;
	wc->src_qp = qp->proto.attr.dest_qpn;
	if (op->immdt) {
		wc->wc_flags |= IB_WC_WITH_IMM;
		wc->ex.imm_data = gift_immdt_imm(gift_pkt_immdt(skb));
	}
	p->in_send = false;
	p->msn = gift_psn_add(p->msn, 1);
	gift_qp_rq_complete(qp, p->recv, wc,
			    gift_pkt(skb)->flags & GIFT_PKT_SE);
}

/*
 * SEND_FIRST/MIDDLE/LAST/ONLY (with immediate or invalidate); @resume:
 * parked after its checks.
 */
static void gift_resp_send(struct gift_qp *qp, struct sk_buff *skb,
			   bool resume)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn, len = gift_pkt(skb)->payload_len;
	struct ib_wc wc = { .opcode = IB_WC_RECV };
	u32 rkey;
	int err;

	if ((op->flags & GIFT_OPF_FIRST) && !resume) {
		if (!gift_resp_get_recv(qp, psn))
			return;
	}
	if (!gift_resp_len_ok(qp, skb)) {
		gift_resp_refuse(qp, psn, GIFT_NAK_INVALID_REQ,
				 IB_WC_LOC_LEN_ERR);
		return;
	}
	/* A u32 offset: never past max_msg_sz, whatever the buffer. */
	if ((u64)p->recv_off + len >
	    min_t(u64, p->recv->length, GIFT_MAX_MSG_SIZE)) {
		gift_resp_refuse(qp, psn, GIFT_NAK_INVALID_REQ,
				 IB_WC_LOC_LEN_ERR);
		return;
	}
	err = gift_resp_copy(qp, skb, len, NULL, 0);
	if (err == -EAGAIN) {
		gift_proto_park(qp, skb, true);
		return;
	}
	if (err) {
		gift_resp_fatal(qp, psn, GIFT_NAK_REM_OP_ERR,
				IB_WC_LOC_PROT_ERR);
		return;
	}
	p->recv_off += len;
	p->resp_psn = gift_psn_add(psn, 1);
	if (!(op->flags & GIFT_OPF_LAST)) {
		if (gift_pkt(skb)->flags & GIFT_PKT_ACK_REQ)
			gift_proto_send_ack(qp, GIFT_ACK_SYNDROME, psn);
		return;
	}

	if (op->ieth) {
		rkey = gift_ieth_rkey(gift_pkt_ieth(skb));
		if (gift_mr_remote_inv(to_gift_dev(qp->ibqp.device), rkey,
				       qp->ibqp.pd, qp->ibqp.qp_num)) {
			gift_resp_fatal(qp, psn, GIFT_NAK_INVALID_REQ,
					IB_WC_LOC_QP_OP_ERR);
			return;
		}
		wc.wc_flags |= IB_WC_WITH_INVALIDATE;
		wc.ex.invalidate_rkey = rkey;
	}
	wc.byte_len = p->recv_off;
	gift_resp_complete_recv(qp, skb, &wc);
	gift_proto_send_ack(qp, GIFT_ACK_SYNDROME, psn);
}

/*
 * The MR behind a RETH or AtomicETH, with a reference, when @rkey names a
 * valid MR of the QP's PD that allows @access to [@va, @va + @len), or a
 * memory window that does (gift_mw_resolve(); @va becomes the address in
 * its MR, which must allow the matching local access); else NULL.
 */
static struct gift_mr *gift_resp_mr(struct gift_qp *qp, u32 rkey, u64 *va,
				    u32 len, int access)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	struct gift_mr *mr = NULL;
	int err;

	err = gift_mw_resolve(gdev, rkey, qp->ibqp.pd, qp->ibqp.qp_num, va,
			      len, access, &mr);
	if (err && err != -ENOENT)
		return NULL;
	if (err)
		mr = gift_mr_get(gdev, rkey);
	else	/* the window's MR: remote read needs only local read */
		access = access & IB_ACCESS_REMOTE_READ ? 0 :
			 IB_ACCESS_LOCAL_WRITE;
	if (mr && gift_mr_check(mr, qp->ibqp.pd, *va, len, access)) {
		gift_mr_put(mr);
		return NULL;
	}
	return mr;
}

/* The RETH of a WRITE_FIRST/ONLY: look up and check the target. */
static bool gift_resp_start_write(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_reth *reth = gift_pkt_reth(skb);
	struct gift_qp_proto *p = &qp->proto;
	u32 len = gift_reth_len(reth);
	u64 va = gift_reth_va(reth);
	struct gift_mr *mr = NULL;

	if (len) {
		mr = gift_resp_mr(qp, gift_reth_rkey(reth), &va, len,
				  IB_ACCESS_REMOTE_WRITE);
		if (!mr)
			return false;
	}
	p->wr_mr = mr;
	p->wr_va = va;
	p->wr_left = len;
	p->wr_len = len;
	p->in_write = true;
	return true;
}

/*
 * RDMA_WRITE_FIRST/MIDDLE/LAST/ONLY (with immediate); @resume: parked
 * after its checks.
 */
static void gift_resp_write(struct gift_qp *qp, struct sk_buff *skb,
			    bool resume)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn, len = gift_pkt(skb)->payload_len;
	struct ib_wc wc = { .opcode = IB_WC_RECV_RDMA_WITH_IMM };
	int err;

	/* A receive WQE is needed for the immediate: check before writing. */
	if (op->immdt && !p->in_send && !gift_resp_get_recv(qp, psn))
		return;
	if ((op->flags & GIFT_OPF_FIRST) && !resume &&
	    !gift_resp_start_write(qp, skb)) {
		gift_resp_refuse(qp, psn, GIFT_NAK_REM_ACCESS_ERR,
				 IB_WC_REM_ACCESS_ERR);
		return;
	}
	if (!gift_resp_len_ok(qp, skb) || len > p->wr_left ||
	    ((op->flags & GIFT_OPF_LAST) && len != p->wr_left)) {
		gift_resp_refuse(qp, psn, GIFT_NAK_INVALID_REQ,
				 IB_WC_LOC_LEN_ERR);
		return;
	}
	err = gift_resp_copy(qp, skb, len, p->wr_mr, p->wr_va);
	if (err == -EAGAIN) {
		gift_proto_park(qp, skb, true);
		return;
	}
	if (err) {
		gift_resp_refuse(qp, psn, GIFT_NAK_REM_ACCESS_ERR,
				 IB_WC_REM_ACCESS_ERR);
		return;
	}
	p->wr_va += len;
	p->wr_left -= len;
	p->resp_psn = gift_psn_add(psn, 1);
	if (!(op->flags & GIFT_OPF_LAST)) {
		if (gift_pkt(skb)->flags & GIFT_PKT_ACK_REQ)
			gift_proto_send_ack(qp, GIFT_ACK_SYNDROME, psn);
		return;
	}

	wc.byte_len = p->wr_len;
	gift_resp_end_write(qp);
	if (op->immdt)
		gift_resp_complete_recv(qp, skb, &wc);
	else
		p->msn = gift_psn_add(p->msn, 1);
	gift_proto_send_ack(qp, GIFT_ACK_SYNDROME, psn);
}

/*
 * Attaches @n bytes of the READ's MR at @va to @skb (gift_mr_skb_frags()),
 * or copies them into a page fragment when its memory cannot be attached
 * (ODP): 0, -EAGAIN for an ODP fault (gift_mr_copy()'s errors), -ENOMEM.
 */
static int gift_resp_read_frags(struct gift_qp *qp, u64 va,
				struct sk_buff *skb, u32 n)
{
	struct gift_mr *mr = qp->proto.rr_mr;
	void *buf;
	int done;

	done = gift_mr_skb_frags(mr, va, skb, n, MAX_SKB_FRAGS - 2);
	if (done < 0)
		return done;
	if (done == n)
		return 0;
	n -= done;
	buf = gift_net_add_frag(skb, n);
	if (!buf)
		return -ENOMEM;
	return gift_mr_copy(mr, va + done, buf, n, false);
}

/**
 * gift_resp_read_continue() - send what the pass allows of a READ reply
 * @qp: QP; runs under its engine lock
 *
 * A READ reply goes out across as many engine passes as its length
 * needs (GIFT_PASS_BUDGET packets each); requests behind it wait. It is
 * abandoned once the QP is in ERR, and waits at a packet whose ODP page
 * is being faulted (a fault that fails NAKs the READ with a remote
 * access error).
 *
 * Return: true when no reply is pending (any more), so the next request
 * may be handled.
 */
bool gift_resp_read_continue(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	u32 mtu = gift_qp_mtu(qp), npkts, n;
	struct sk_buff *skb;
	bool wait = false, zc;
	u64 va;
	u8 opcode;
	int err;

	lockdep_assert_held(&p->lock);
	if (!p->rr_active)
		return true;
	npkts = gift_npkts(p->rr_len, mtu);
	/* gift_qp_error() does not reset the engine: stop here. */
	if (gift_qp_state(qp) == IB_QPS_ERR)
		p->rr_next = npkts;
	for (; p->rr_next < npkts && p->budget; p->rr_next++) {
		n = min(mtu, p->rr_len - p->rr_next * mtu);
		if (npkts == 1)
			opcode = IB_OPCODE_RC_RDMA_READ_RESPONSE_ONLY;
		else if (!p->rr_next)
			opcode = IB_OPCODE_RC_RDMA_READ_RESPONSE_FIRST;
		else if (p->rr_next == npkts - 1)
			opcode = IB_OPCODE_RC_RDMA_READ_RESPONSE_LAST;
		else
			opcode = IB_OPCODE_RC_RDMA_READ_RESPONSE_MIDDLE;
		/*
		 * Zero-copy as the requester's SENDs and WRITEs
		 * (gift_req_zc()): a READ's memory is the responder's to
		 * keep still until the requester has all of it; changed
		 * meanwhile, a response fails its ICRC and is asked again.
		 */
		zc = n >= GIFT_ZC_MIN_BYTES;
		skb = gift_proto_alloc(qp, opcode,
				       gift_psn_add(p->rr_psn, p->rr_next),
				       false, false, zc ? 0 : n);
		if (!skb)
			break;		/* the requester will ask again */
		if (gift_pkt_op(skb)->aeth)
			gift_aeth_set(gift_pkt_aeth(skb), GIFT_ACK_SYNDROME,
				      p->msn);
		va = p->rr_va + (u64)p->rr_next * mtu;
		if (zc)
			err = gift_resp_read_frags(qp, va, skb, n);
		else
			err = n ? gift_mr_copy(p->rr_mr, va, skb->data +
					       gift_pkt_op(skb)->length, n,
					       false) : 0;
		if (err == -EAGAIN)
			err = gift_proto_fault(qp, p->rr_mr, va, n, false);
		if (err == -ENOMEM) {
			kfree_skb(skb);
			break;		/* the requester will ask again */
		}
		if (err) {
			kfree_skb(skb);
			wait = err == -EAGAIN;
			/* A fault that failed: the memory is not there. */
			if (!wait && p->rr_mr->odp)
				gift_resp_fatal(qp, gift_psn_add(p->rr_psn,
								 p->rr_next),
						GIFT_NAK_REM_ACCESS_ERR,
						IB_WC_REM_ACCESS_ERR);
			break;
		}
		gift_proto_xmit(qp, skb);
	}
	if (wait)
		return false;
	if (p->rr_next < npkts && p->budget)
		p->rr_next = npkts;	/* failed: abandon, the requester retries */
	if (p->rr_next < npkts)
		return false;
	if (p->rr_mr)
		gift_mr_put(p->rr_mr);
	p->rr_mr = NULL;
	p->rr_active = false;
	return true;
}

/*
 * RDMA_READ_REQUEST, new or a checked duplicate (@dup: do not advance the
 * PSN or MSN, nor remember it again). A new READ is remembered in the
 * responder resources. Returns false when the request must be NAKed.
 */
static bool gift_resp_read(struct gift_qp *qp, struct sk_buff *skb, bool dup)
{
	struct gift_reth *reth = gift_pkt_reth(skb);
	u32 psn = gift_pkt(skb)->psn, len = gift_reth_len(reth);
	u32 npkts = gift_npkts(len, gift_qp_mtu(qp));
	u64 va = gift_reth_va(reth);
	struct gift_mr *mr = NULL;
	struct gift_rd_res *res;

	if (len) {
		mr = gift_resp_mr(qp, gift_reth_rkey(reth), &va, len,
				  IB_ACCESS_REMOTE_READ);
		if (!mr)
			return false;
	}
	if (!dup) {
		res = gift_resp_new_res(qp);
		if (res)
			*res = (struct gift_rd_res){
				.psn = psn, .npkts = npkts,
				.va = gift_reth_va(reth),
				.rkey = gift_reth_rkey(reth), .len = len,
			};
		qp->proto.msn = gift_psn_add(qp->proto.msn, 1);
		qp->proto.resp_psn = gift_psn_add(psn, npkts);
	}
	/* The reply keeps the MR reference until it is sent. */
	qp->proto.rr_mr = mr;
	qp->proto.rr_va = va;
	qp->proto.rr_len = len;
	qp->proto.rr_psn = psn;
	qp->proto.rr_next = 0;
	qp->proto.rr_active = true;
	gift_resp_read_continue(qp);
	return true;
}

static void gift_resp_atomic_reply(struct gift_qp *qp, u32 psn, u64 orig)
{
	struct sk_buff *skb;

	skb = gift_proto_alloc(qp, IB_OPCODE_RC_ATOMIC_ACKNOWLEDGE, psn, false,
			       false, 0);
	if (!skb)
		return;
	gift_aeth_set(gift_pkt_aeth(skb), GIFT_ACK_SYNDROME, qp->proto.msn);
	gift_atmack_set(gift_pkt_atmack(skb), orig);
	gift_proto_xmit(qp, skb);
}

/*
 * Runs one device atomic (gift_mr_atomic(): @op, @compare_add, @swap) on
 * the 8 bytes at @va of what @rkey names, which must grant @access,
 * faulting ODP pages in first when they are missing. True with *@orig
 * when it ran; false when @skb is finished with: parked to be tried
 * again (pages being faulted in), or NAKed as a remote access error.
 */
static bool gift_resp_run_atomic(struct gift_qp *qp, struct sk_buff *skb,
				 u32 rkey, u64 va, int access,
				 enum gift_atomic_op op, u64 compare_add,
				 u64 swap, u64 *orig)
{
	struct gift_mr *mr;
	int err;

	mr = gift_resp_mr(qp, rkey, &va, sizeof(u64), access);
	err = mr ? gift_mr_atomic(mr, va, op, compare_add, swap, orig) :
		   -EINVAL;
	if (err == -EAGAIN)
		err = gift_proto_fault(qp, mr, va, sizeof(u64), true);
	if (mr)
		gift_mr_put(mr);
	if (err == -EAGAIN) {
		gift_proto_park(qp, skb, false);
		return false;
	}
	if (err) {
		gift_resp_fatal(qp, gift_pkt(skb)->psn, GIFT_NAK_REM_ACCESS_ERR,
				IB_WC_REM_ACCESS_ERR);
		return false;
	}
	return true;
}

/* COMPARE_SWAP and FETCH_ADD. */
static void gift_resp_atomic(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_atmeth *ae = gift_pkt_atmeth(skb);
	bool cmp_swap = gift_pkt(skb)->opcode == IB_OPCODE_RC_COMPARE_SWAP;
	struct gift_qp_proto *p = &qp->proto;
	u32 psn = gift_pkt(skb)->psn;
	u64 va = gift_atmeth_va(ae), orig;
	struct gift_rd_res *res;

	if (va & 7) {
		gift_resp_fatal(qp, psn, GIFT_NAK_INVALID_REQ,
				IB_WC_REM_INV_REQ_ERR);
		return;
	}
	if (!gift_resp_run_atomic(qp, skb, gift_atmeth_rkey(ae), va,
				  IB_ACCESS_REMOTE_ATOMIC,
				  cmp_swap ? GIFT_ATOMIC_CMP_SWAP :
					     GIFT_ATOMIC_FETCH_ADD,
				  cmp_swap ? gift_atmeth_compare(ae) :
					     gift_atmeth_swap_add(ae),
				  gift_atmeth_swap_add(ae), &orig))
		return;

	res = gift_resp_new_res(qp);
	if (res)
		*res = (struct gift_rd_res){
			.psn = psn, .npkts = 1, .atomic = true, .orig = orig,
		};
	p->msn = gift_psn_add(p->msn, 1);
	p->resp_psn = gift_psn_add(psn, 1);
	gift_resp_atomic_reply(qp, psn, orig);
}

/*
 * The empty RDMA READ response only that answers a FLUSH or an ATOMIC
 * WRITE (and its duplicates), as rxe sends it.
 */
static void gift_resp_rd_ack(struct gift_qp *qp, u32 psn)
{
	struct sk_buff *skb;

	skb = gift_proto_alloc(qp, IB_OPCODE_RC_RDMA_READ_RESPONSE_ONLY, psn,
			       false, false, 0);
	if (!skb)
		return;		/* the requester asks again */
	gift_aeth_set(gift_pkt_aeth(skb), GIFT_ACK_SYNDROME, qp->proto.msn);
	gift_proto_xmit(qp, skb);
}

/* Remembers an executed FLUSH or ATOMIC WRITE and answers it. */
static void gift_resp_rd_done(struct gift_qp *qp, u32 psn)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_rd_res *res = gift_resp_new_res(qp);

	if (res)
		*res = (struct gift_rd_res){
			.psn = psn, .npkts = 1, .atomic = true,
			.ack_only = true,
		};
	p->msn = gift_psn_add(p->msn, 1);
	p->resp_psn = gift_psn_add(psn, 1);
	gift_resp_rd_ack(qp, psn);
}

/*
 * ATOMIC_WRITE (IBTA 1.5 A19.4): 8 bytes of payload stored at an 8-byte
 * aligned address of an MR with remote write access, as one atomic
 * exchange: atomic with respect to the device's other atomics on the
 * word, and after everything this QP placed before it. A RETH length or
 * payload other than 8 bytes, or a misaligned address, is an invalid
 * request; an rkey that does not grant the write, a remote access error.
 */
static void gift_resp_atomic_write(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_reth *reth = gift_pkt_reth(skb);
	struct gift_pkt_info *pkt = gift_pkt(skb);
	u64 va = gift_reth_va(reth), value, orig;
	u32 psn = pkt->psn;

	if (gift_reth_len(reth) != sizeof(value) ||
	    pkt->payload_len != sizeof(value) ||
	    skb_copy_bits(skb, pkt->payload_off, &value, sizeof(value)) ||
	    !IS_ALIGNED(va, sizeof(value))) {
		gift_resp_fatal(qp, psn, GIFT_NAK_INVALID_REQ,
				IB_WC_REM_INV_REQ_ERR);
		return;
	}
	if (gift_resp_run_atomic(qp, skb, gift_reth_rkey(reth), va,
				 IB_ACCESS_REMOTE_WRITE, GIFT_ATOMIC_WRITE, 0,
				 value, &orig))
		gift_resp_rd_done(qp, psn);
}

/*
 * FLUSH (IBTA 1.5 A19.3): answered once everything the QP received
 * before it is placed. The responder executes requests in PSN order and
 * every WRITE, SEND and atomic before it has been copied into memory by
 * the time it is handled, so the global placement type needs a write
 * barrier only. The MR must grant IB_ACCESS_FLUSH_GLOBAL (persistent: no
 * MR grants IB_ACCESS_FLUSH_PERSISTENT, see gift_mr.c, so such a FLUSH
 * is a remote access error), and with IB_FLUSH_RANGE the range must lie
 * inside it; IB_FLUSH_MR names the whole MR by any address, as rxe reads
 * it. An undefined placement type or selectivity level is an invalid
 * request.
 */
static void gift_resp_flush_op(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_feth *feth = gift_pkt_feth(skb);
	struct gift_reth *reth = gift_pkt_reth(skb);
	u8 type = gift_feth_type(feth), level = gift_feth_level(feth);
	u32 psn = gift_pkt(skb)->psn;
	struct gift_mr *mr;
	int access = 0;

	if (!type || (type & ~(IB_FLUSH_GLOBAL | IB_FLUSH_PERSISTENT)) ||
	    (level != IB_FLUSH_RANGE && level != IB_FLUSH_MR)) {
		gift_resp_fatal(qp, psn, GIFT_NAK_INVALID_REQ,
				IB_WC_REM_INV_REQ_ERR);
		return;
	}
	if (type & IB_FLUSH_GLOBAL)
		access |= IB_ACCESS_FLUSH_GLOBAL;
	if (type & IB_FLUSH_PERSISTENT)
		access |= IB_ACCESS_FLUSH_PERSISTENT;
	mr = gift_mr_get(to_gift_dev(qp->ibqp.device), gift_reth_rkey(reth));
	if (mr && gift_mr_check(mr, qp->ibqp.pd,
				level == IB_FLUSH_MR ? mr->ibmr.iova :
				gift_reth_va(reth),
				level == IB_FLUSH_MR ? 0 : gift_reth_len(reth),
				access)) {
		gift_mr_put(mr);
		mr = NULL;
	}
	if (!mr) {
		gift_resp_fatal(qp, psn, GIFT_NAK_REM_ACCESS_ERR,
				IB_WC_REM_ACCESS_ERR);
		return;
	}
	gift_mr_put(mr);
	/* Make every earlier placement visible before the answer leaves. */
	wmb();
	gift_resp_rd_done(qp, psn);
}

/*
 * Is @op enabled by the QP's remote access flags? RDMA WRITE, READ and
 * atomics at a QP that does not allow them are invalid requests, whatever
 * the rkey says (rxe and rdmavt NAK them the same way). A multi-packet
 * WRITE is checked at its first packet. ATOMIC WRITE needs remote write,
 * FLUSH the QP's flush access for each of its placement types (as rxe).
 */
static bool gift_resp_access_ok(struct gift_qp *qp,
				const struct gift_opcode_info *op,
				struct sk_buff *skb)
{
	int access = qp->proto.attr.access;
	u8 type;

	switch (op->cls) {
	case GIFT_OPC_ATOMIC_WRITE:
		return access & IB_ACCESS_REMOTE_WRITE;
	case GIFT_OPC_FLUSH:
		type = gift_feth_type(gift_pkt_feth(skb));
		return (!(type & IB_FLUSH_GLOBAL) ||
			(access & IB_ACCESS_FLUSH_GLOBAL)) &&
		       (!(type & IB_FLUSH_PERSISTENT) ||
			(access & IB_ACCESS_FLUSH_PERSISTENT));
	case GIFT_OPC_WRITE:
		return !(op->flags & GIFT_OPF_FIRST) ||
		       (access & IB_ACCESS_REMOTE_WRITE);
	case GIFT_OPC_READ_REQ:
		return access & IB_ACCESS_REMOTE_READ;
	case GIFT_OPC_ATOMIC:
		return access & IB_ACCESS_REMOTE_ATOMIC;
	default:
		return true;
	}
}

/*
 * The responder resource of the READ (@atomic: atomic) request whose PSNs
 * hold @psn, among those behind the expected PSN; NULL if none does.
 */
static const struct gift_rd_res *gift_resp_find_res(struct gift_qp *qp,
						    u32 psn, bool atomic)
{
	const struct gift_rd_res *res;
	u32 i;

	for (i = 0; i < qp->proto.rd_res_n; i++) {
		res = &qp->proto.rd_res[i];
		if (res->npkts && res->atomic == atomic &&
		    gift_psn_cmp(res->psn, qp->proto.resp_psn) < 0 &&
		    gift_psn_cmp(psn, res->psn) >= 0 &&
		    gift_psn_cmp(psn, gift_psn_add(res->psn, res->npkts)) < 0)
			return res;
	}
	return NULL;
}

/**
 * gift_resp_dup_read() - a duplicate RDMA READ request
 * @qp: QP; runs under its engine lock
 * @skb: the request
 *
 * Replayed only inside a READ the responder resources remember (IBTA
 * 9.7.5.2.x): its PSN among that READ's response PSNs, the same rkey, its
 * VA at the offset its PSN implies (a requester asks again for the
 * responses it is missing, gift_req_rewind()) and its length within the
 * original one. Anything else is dropped and counted. A replay passes the
 * QP's access flags and the MR checks again, and is NAKed as a new READ
 * would be when they fail.
 */
static void gift_resp_dup_read(struct gift_qp *qp, struct sk_buff *skb)
{
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	struct gift_reth *reth = gift_pkt_reth(skb);
	u32 psn = gift_pkt(skb)->psn, off;
	const struct gift_rd_res *res;

	res = gift_resp_find_res(qp, psn, false);
	if (!res || gift_reth_rkey(reth) != res->rkey)
		goto drop;
	off = ((psn - res->psn) & GIFT_PSN_MASK) * gift_qp_mtu(qp);
	if (off > res->len || gift_reth_va(reth) != res->va + off ||
	    gift_reth_len(reth) > res->len - off)
		goto drop;
	if (!gift_resp_access_ok(qp, op, skb))
		gift_resp_fatal(qp, psn, GIFT_NAK_INVALID_REQ,
				IB_WC_REM_INV_REQ_ERR);
	else if (!gift_resp_read(qp, skb, true))
		gift_resp_fatal(qp, psn, GIFT_NAK_REM_ACCESS_ERR,
				IB_WC_REM_ACCESS_ERR);
	return;
drop:
	gift_resp_stats(qp, GIFT_CNT_DROPPED_PKTS);
}

/* A request with a PSN before the expected one. */
static void gift_resp_duplicate(struct gift_qp *qp, struct sk_buff *skb)
{
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn;
	const struct gift_rd_res *res;
	bool ack_only;

	gift_resp_stats(qp, GIFT_CNT_DUPLICATE_REQUESTS);
	switch (op->cls) {
	case GIFT_OPC_READ_REQ:
		gift_resp_dup_read(qp, skb);
		return;
	case GIFT_OPC_ATOMIC:
	case GIFT_OPC_FLUSH:
	case GIFT_OPC_ATOMIC_WRITE:
		res = gift_resp_find_res(qp, psn, true);
		/* The resource of that PSN, and of this kind of request. */
		ack_only = op->cls != GIFT_OPC_ATOMIC;
		if (res && res->ack_only != ack_only)
			res = NULL;
		if (res && res->ack_only)
			gift_resp_rd_ack(qp, psn);
		else if (res)
			gift_resp_atomic_reply(qp, psn, res->orig);
		else	/* too old to replay, or never seen: drop */
			gift_resp_stats(qp, GIFT_CNT_DROPPED_PKTS);
		return;
	default:
		if ((gift_pkt(skb)->flags & GIFT_PKT_ACK_REQ) ||
		    (op->flags & GIFT_OPF_LAST))
			gift_proto_send_ack(qp, GIFT_ACK_SYNDROME,
					    gift_psn_add(qp->proto.resp_psn,
							 GIFT_PSN_MASK));
	}
}

/* Is @op allowed now, given the message in progress? */
static bool gift_resp_in_sequence(struct gift_qp *qp,
				  const struct gift_opcode_info *op)
{
	struct gift_qp_proto *p = &qp->proto;
	bool first = op->flags & GIFT_OPF_FIRST;

	switch (op->cls) {
	case GIFT_OPC_SEND:
		return !p->in_write && first == !p->in_send;
	case GIFT_OPC_WRITE:
		/* A WRITE with immediate may hold a receive WQE already. */
		return first ? !p->in_write && !p->in_send : p->in_write;
	case GIFT_OPC_READ_REQ:
	case GIFT_OPC_ATOMIC:
	case GIFT_OPC_FLUSH:
	case GIFT_OPC_ATOMIC_WRITE:
		return !p->in_send && !p->in_write;
	default:
		return false;
	}
}

/*
 * The DMA length of a RETH is at most the port's max_msg_sz; a longer one
 * is an invalid request (and could not be counted in u32 packets).
 */
static bool gift_resp_reth_ok(struct sk_buff *skb)
{
	const struct gift_opcode_info *op = gift_pkt_op(skb);

	return !op->reth || gift_reth_len(gift_pkt_reth(skb)) <= GIFT_MAX_MSG_SIZE;
}

/*
 * Is @skb the requester's retransmission of what waits for the pending
 * fault: the parked request (a SEND or WRITE packet, or an atomic), or a
 * READ request asking again for the response packet at which the READ
 * reply waits?
 */
static bool gift_resp_waits_for(struct gift_qp *qp, struct sk_buff *skb)
{
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	struct gift_qp_proto *p = &qp->proto;
	u32 psn = gift_pkt(skb)->psn;

	if (!p->fault.busy)
		return false;
	if (op->cls == GIFT_OPC_READ_REQ)
		return p->rr_active && psn == gift_psn_add(p->rr_psn,
							   p->rr_next);
	return p->parked && (gift_pkt_op(p->parked)->flags & GIFT_OPF_REQ) &&
	       gift_pkt_op(p->parked)->cls == op->cls &&
	       gift_pkt(p->parked)->psn == psn && psn == p->resp_psn;
}

/**
 * gift_resp_parked_verdict() - a request queued while one is parked
 * @qp: QP whose engine waits for a fault (qp->proto.fault.busy); under
 *	its engine lock
 * @skb: a packet of the QP's connection in its receive queue
 *
 * A requester cannot tell a slow responder from a lost packet: a fault
 * that outlasts its ACK timeout makes it send the parked request again,
 * and every further timeout spends one of its transport retries (at most
 * seven, then the WQE fails with RETRY_EXC). So a retransmission of the
 * parked SEND or WRITE packet (the expected PSN) is answered at once with
 * an RNR NAK for it (gift_resp_rcv_parked()): the requester waits
 * min_rnr_timer and spends RNR retries (seven means forever) instead. The
 * NAK acknowledges exactly the PSNs before the parked one, which were
 * executed. The parked packet still runs when the fault ends; what the
 * requester sends again after its RNR wait is then a duplicate,
 * acknowledged as such. Duplicates of earlier SEND and WRITE packets,
 * which only get an ACK again, are answered at once too. A READ reply
 * that waits for a fault at one of its response packets is treated the
 * same: the requester asks again for that response (a READ request with
 * its PSN) and gets an RNR NAK for it; the reply goes on when the fault
 * ends, and the requester's later request is a duplicate READ, replayed.
 * So is a parked atomic: it runs once when the fault ends, and the
 * requester's later retransmission is a duplicate whose result the
 * responder resources replay, never executing it twice.
 *
 * After an RNR NAK the requester sends everything from the parked PSN on
 * again, so requests queued after it are dropped: without that, every
 * RNR round would queue the rest of the message once more, until the
 * queue overflowed and the retransmission of the parked packet itself was
 * lost. READ and atomic duplicates and everything else wait for the
 * fault, in order.
 *
 * Return: what to do with @skb now.
 */
enum gift_parked_verdict gift_resp_parked_verdict(struct gift_qp *qp,
						  struct sk_buff *skb)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn;
	int cmp = gift_psn_cmp(psn, p->resp_psn);

	lockdep_assert_held(&p->lock);
	/* UC: nothing is sent again, everything waits in order. */
	if (!(op->flags & GIFT_OPF_REQ) || gift_qp_is_uc(qp))
		return GIFT_PARKED_KEEP;
	if (cmp > 0)
		return p->wait_rnr ? GIFT_PARKED_DROP : GIFT_PARKED_KEEP;
	if (gift_resp_waits_for(qp, skb))
		return GIFT_PARKED_ANSWER;
	if (cmp < 0 &&
	    (op->cls == GIFT_OPC_SEND || op->cls == GIFT_OPC_WRITE))
		return GIFT_PARKED_ANSWER;
	return GIFT_PARKED_KEEP;
}

/**
 * gift_resp_rcv_parked() - answer a request while one is parked
 * @qp: QP whose engine waits for a fault; under its engine lock
 * @skb: a request gift_resp_parked_verdict() chose; consumed
 */
void gift_resp_rcv_parked(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_qp_proto *p = &qp->proto;
	u32 psn = gift_pkt(skb)->psn;

	lockdep_assert_held(&p->lock);
	if (gift_psn_cmp(psn, p->resp_psn) < 0 &&
	    !gift_resp_waits_for(qp, skb)) {
		gift_resp_duplicate(qp, skb);
	} else {
		gift_resp_rnr_nak(qp, psn);
		gift_resp_stats(qp, GIFT_CNT_ODP_RNR_NAKS);
		p->wait_rnr = true;
	}
	consume_skb(skb);
}

/*
 * RC: may the responder execute @skb now? Handles what it may not (a
 * PSN gap, a duplicate, an invalid request).
 */
static bool gift_resp_rc_check(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn;
	int cmp = gift_psn_cmp(psn, p->resp_psn);

	if (cmp > 0) {
		if (!p->nak_sent) {
			gift_proto_send_ack(qp, GIFT_AETH_NAK |
					    GIFT_NAK_PSN_SEQ_ERR, p->resp_psn);
			gift_resp_stats(qp, GIFT_CNT_SEQ_NAKS_SENT);
			p->nak_sent = true;
		}
		return false;
	}
	if (cmp < 0) {
		gift_resp_duplicate(qp, skb);
		return false;
	}
	p->nak_sent = false;

	if (!gift_resp_in_sequence(qp, op) || !gift_resp_access_ok(qp, op, skb) ||
	    !gift_resp_reth_ok(skb)) {
		gift_resp_fatal(qp, psn, GIFT_NAK_INVALID_REQ,
				IB_WC_REM_INV_REQ_ERR);
		return false;
	}
	return true;
}

/*
 * UC: may the responder execute @skb now? A packet that starts a message
 * is taken at any PSN and abandons the message in progress; any other
 * one must be the expected PSN and continue the message in progress.
 * What may not run is dropped with the rest of its message (see the file
 * comment).
 */
static bool gift_resp_uc_check(struct gift_qp *qp, struct sk_buff *skb)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn;

	if (op->flags & GIFT_OPF_FIRST) {
		gift_resp_uc_abandon(qp);
		p->uc_drop = false;
		p->resp_psn = psn;
	} else if (p->uc_drop || psn != p->resp_psn ||
		   !gift_resp_in_sequence(qp, op)) {
		gift_resp_uc_drop(qp);
		return false;
	}
	if (!gift_resp_access_ok(qp, op, skb) || !gift_resp_reth_ok(skb)) {
		gift_resp_uc_drop(qp);
		return false;
	}
	return true;
}

/**
 * gift_resp_rcv() - handle a request packet
 * @qp: QP in RTR or RTS; runs under its engine lock
 * @skb: the request; consumed
 * @resume: @skb was parked by gift_resp_send() or gift_resp_write() after
 *	its checks: only the rest of its handling runs
 */
void gift_resp_rcv(struct gift_qp *qp, struct sk_buff *skb, bool resume)
{
	struct gift_qp_proto *p = &qp->proto;
	const struct gift_opcode_info *op = gift_pkt_op(skb);
	u32 psn = gift_pkt(skb)->psn;

	lockdep_assert_held(&p->lock);
	if (resume)
		goto payload;
	if (!(gift_qp_is_uc(qp) ? gift_resp_uc_check(qp, skb) :
				  gift_resp_rc_check(qp, skb)))
		goto out;
	switch (op->cls) {
	case GIFT_OPC_SEND:
	case GIFT_OPC_WRITE:
payload:
		if (op->cls == GIFT_OPC_SEND)
			gift_resp_send(qp, skb, resume);
		else
			gift_resp_write(qp, skb, resume);
		break;
	case GIFT_OPC_READ_REQ:
		if (!gift_resp_read(qp, skb, false))
			gift_resp_fatal(qp, psn, GIFT_NAK_REM_ACCESS_ERR,
					IB_WC_REM_ACCESS_ERR);
		break;
	case GIFT_OPC_ATOMIC:
		gift_resp_atomic(qp, skb);
		break;
	case GIFT_OPC_ATOMIC_WRITE:
		gift_resp_atomic_write(qp, skb);
		break;
	case GIFT_OPC_FLUSH:
		gift_resp_flush_op(qp, skb);
		break;
	}
out:
	consume_skb(skb);
}
