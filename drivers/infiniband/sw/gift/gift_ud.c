// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift datagrams: the engine's side of UD QPs and the GSI QP.
 *
 * What this file owns: turning a UD or GSI send WQE into its one packet
 * (BTH + DETH [+ ImmDt], IBA 9.8.4, carried over RoCEv2 like any other),
 * and a received UD packet into a receive completion whose buffer starts
 * with the 40-byte GRH area (IBA 11.4.1.1, RoCEv2 annex A17.4.5.1).
 *
 * Send: a datagram has no connection, PSN window, ACK or retry. The
 * requester sends the oldest send WQE to the destination its AH named
 * (copied into the WQE at post time) and completes it at once: UD is
 * unreliable, a datagram lost later is not the sender's error. The
 * DETH's Q_Key is the WR's, or the QP's when the WR's has the high bit
 * set (IBA 10.2.5, C10-15); the GSI QP always sends IB_QP1_QKEY. Posting
 * refused messages longer than the port's MTU; one that is longer when
 * sent (the netdev's MTU shrank since) is not sent, and completes
 * successfully as C10-93.1.1 requires (counted in send_errors).
 *
 * Receive: a packet is taken when its opcode is a UD one, its P_Key
 * matches the port's, and its Q_Key is the QP's (the GSI QP's is
 * IB_QP1_QKEY); otherwise it is dropped and counted (qkey_violations
 * for the Q_Key, dropped_pkts for the rest), as is a packet that finds no
 * receive WQE posted (UD has no RNR). The receive buffer gets the GRH area
 * first: for IPv6 the packet's IPv6 header, for IPv4 twenty zero bytes
 * then its IPv4 header, as rxe and RoCE NICs deliver it; byte_len counts
 * those 40 bytes. A buffer too short for the GRH and the payload
 * completes with IB_WC_LOC_LEN_ERR; the QP stays usable.
 *
 * Multicast (gift_mcast.c): a datagram to a group reaches here once per
 * attached QP, a clone each, and is checked and delivered like any other;
 * its GRH area's destination is the group's address. Sending to a group
 * is sending to an AH whose GID is the group's.
 *
 * An ODP page missing on either side stops the engine as for RC: the
 * send WQE is sent again once the fault ended; the received packet is
 * parked with its receive WQE held (in_send) and copied again from the
 * start.
 *
 * Locking: everything here runs under the QP's engine lock, in an engine
 * pass (gift_proto.c).
 */

#include <linux/ip.h>
#include <linux/ipv6.h>
#include <rdma/ib_mad.h>

#include "gift.h"
#include "gift_net.h"
#include "gift_stats.h"

/* The GRH area at the start of a UD receive buffer. */
#define GIFT_UD_GRH_BYTES	sizeof(struct ib_grh)

static void gift_ud_stats(struct gift_qp *qp, enum gift_counter c)
{
	gift_stats_inc(to_gift_dev(qp->ibqp.device), c);
}

/* The Q_Key a datagram of @wqe carries. */
static u32 gift_ud_send_qkey(struct gift_qp *qp, const struct gift_send_wqe *wqe)
{
	if (qp->ibqp.qp_type == IB_QPT_GSI)
		return IB_QP1_QKEY;
	if (wqe->wr.ud.remote_qkey & GIFT_QKEY_CONTROLLED)
		return qp->proto.attr.qkey;
	return wqe->wr.ud.remote_qkey;
}

/*
 * Builds and sends the packet of @wqe. Returns 0 once it is sent (or not
 * sent, see C10-93.1.1 above), -EAGAIN to try again later (no memory, or
 * an ODP fault pending), or -EFAULT/-EINVAL/-EACCES for SGEs it may not
 * read.
 */
static int gift_ud_send(struct gift_qp *qp, struct gift_send_wqe *wqe)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	const struct gift_av *av = &wqe->wr.ud.av;
	bool imm = wqe->opcode == IB_WR_SEND_WITH_IMM;
	u8 opcode = imm ? IB_OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE :
			  IB_OPCODE_UD_SEND_ONLY;
	const struct gift_opcode_info *op = gift_opcode_info(opcode);
	struct gift_qp_proto *p = &qp->proto;
	struct sk_buff *skb;
	int err;

	if (wqe->length > READ_ONCE(gdev->mtu)) {
		gift_ud_stats(qp, GIFT_CNT_SEND_ERRORS);
		return 0;
	}
	skb = gift_net_alloc_skb(gdev, av, op->length, wqe->length, GFP_ATOMIC);
	if (!skb) {
		/* Nothing else would run the engine again: back off. */
		p->rnr_wait = true;
		mod_timer(&p->rnr_timer, jiffies + 1);
		return -EAGAIN;
	}
	gift_pkt(skb)->opcode = opcode;
	gift_bth_init(gift_pkt_bth(skb), opcode,
		      wqe->send_flags & IB_SEND_SOLICITED, IB_DEFAULT_PKEY_FULL,
		      wqe->wr.ud.remote_qpn, false, p->req_psn);
	gift_deth_set(gift_pkt_deth(skb), gift_ud_send_qkey(qp, wqe),
		      qp->ibqp.qp_num);
	if (imm)
		gift_immdt_set(gift_pkt_immdt(skb), wqe->ex.imm_data);

	/*
	 * Copied, never sent zero-copy (gift_sge_skb()): a UD send
	 * completes once the packet is handed to the IP stack, where it may
	 * still wait in a qdisc or the local shortcut while the
	 * application, told its buffer is free, writes it again.
	 */
	if (wqe->send_flags & IB_SEND_INLINE) {
		memcpy(skb->data + op->length, wqe->inline_data, wqe->length);
	} else {
		err = gift_sge_copy(qp, wqe->sge, wqe->num_sge, 0,
				    skb->data + op->length, wqe->length, false);
		if (err) {
			kfree_skb(skb);
			return err;
		}
	}

	p->req_psn = gift_psn_add(p->req_psn, 1);
	if (p->budget)
		p->budget--;
	lockdep_assert_held(&p->lock);
	err = gift_net_xmit(gdev, av, skb,
			    gift_net_udp_sport(av, qp->ibqp.qp_num,
					       wqe->wr.ud.remote_qpn),
			    &p->route);
	if (err)
		ibdev_dbg(&gdev->ibdev, "QP[%u] xmit: %d\n", qp->ibqp.qp_num,
			  err);
	return 0;
}

/**
 * gift_ud_req_run() - send the datagrams the pass's budget allows
 * @qp: UD or GSI QP; runs under its engine lock
 *
 * Each WQE completes once its packet is sent. A WQE whose SGEs cannot be
 * read completes with IB_WC_LOC_PROT_ERR and moves the QP to ERR (through
 * the completer, gift_comp_local()). In SQD nothing is sent: no datagram
 * is ever half-sent, so the send queue is drained already.
 */
void gift_ud_req_run(struct gift_qp *qp)
{
	struct gift_qp_proto *p = &qp->proto;
	struct gift_send_wqe *wqe;
	struct gift_wqe_state *st;
	int err;

	lockdep_assert_held(&p->lock);
	if (gift_qp_state(qp) != IB_QPS_RTS || p->rnr_wait)
		return;

	while (p->budget && (wqe = gift_qp_sq_peek(qp, 0))) {
		st = gift_wqe_state(wqe);
		if (st->flags & GIFT_WQE_FAILED)
			break;
		err = gift_ud_send(qp, wqe);
		if (err == -EAGAIN)
			break;
		if (err) {
			st->flags |= GIFT_WQE_FAILED;
			st->status = IB_WC_LOC_PROT_ERR;
			break;
		}
		gift_qp_sq_complete(qp, IB_WC_SUCCESS, 0);
	}
}

/*
 * The GRH area of @skb's receive buffer: the IPv6 header, or the IPv4
 * header in its last 20 bytes (the network header still points at it).
 */
static void gift_ud_grh(struct sk_buff *skb, u8 *grh)
{
	if (gift_pkt(skb)->flags & GIFT_PKT_IPV4) {
		memset(grh, 0, GIFT_UD_GRH_BYTES - sizeof(struct iphdr));
		memcpy(grh + GIFT_UD_GRH_BYTES - sizeof(struct iphdr),
		       skb_network_header(skb), sizeof(struct iphdr));
	} else {
		memcpy(grh, skb_network_header(skb), sizeof(struct ipv6hdr));
	}
}

/* Is @skb a datagram for @qp? Counts and returns false when it is not. */
static bool gift_ud_pkt_ok(struct gift_qp *qp, struct sk_buff *skb)
{
	const struct gift_pkt_info *pkt = gift_pkt(skb);
	u32 qkey = qp->ibqp.qp_type == IB_QPT_GSI ? IB_QP1_QKEY :
						    qp->proto.attr.qkey;

	if ((pkt->opcode & 0xe0) != IB_OPCODE_UD ||
	    !gift_pkey_match(gift_bth_pkey(gift_pkt_bth(skb)),
			     IB_DEFAULT_PKEY_FULL) ||
	    pkt->payload_len > ib_mtu_enum_to_int(IB_MTU_4096)) {
		gift_ud_stats(qp, GIFT_CNT_DROPPED_PKTS);
		return false;
	}
	if (gift_deth_qkey(gift_pkt_deth(skb)) != qkey) {
		gift_ud_stats(qp, GIFT_CNT_QKEY_VIOLATIONS);
		return false;
	}
	return true;
}

/* Copies the GRH area and the payload; -EAGAIN for an ODP fault. */
static int gift_ud_copy(struct gift_qp *qp, struct sk_buff *skb)
{
	const struct gift_pkt_info *pkt = gift_pkt(skb);
	struct gift_recv_wqe *recv = qp->proto.recv;
	u8 grh[GIFT_UD_GRH_BYTES];
	int err;

	gift_ud_grh(skb, grh);
	err = gift_sge_copy(qp, recv->sge, recv->num_sge, 0, grh, sizeof(grh),
			    true);
	if (err)
		return err;
	return gift_sge_copy_skb(qp, recv->sge, recv->num_sge, sizeof(grh),
				 skb, pkt->payload_off, pkt->payload_len);
}

/* Completes the held receive WQE with @status (and @wc's details). */
static void gift_ud_complete(struct gift_qp *qp, struct sk_buff *skb,
			     struct ib_wc *wc, enum ib_wc_status status)
{
	qp->proto.in_send = false;
	wc->status = status;
	gift_qp_rq_complete(qp, qp->proto.recv, wc,
			    gift_pkt(skb)->flags & GIFT_PKT_SE);
}

/**
 * gift_ud_rcv() - deliver a datagram to a UD or GSI QP
 * @qp: the QP, in RTR, RTS, SQD or SQE; under its engine lock
 * @skb: the packet; consumed
 * @resume: @skb was parked for an ODP fault with its receive WQE held
 *
 * See the file comment for what is dropped and what the completion says.
 */
void gift_ud_rcv(struct gift_qp *qp, struct sk_buff *skb, bool resume)
{
	const struct gift_pkt_info *pkt = gift_pkt(skb);
	struct gift_qp_proto *p = &qp->proto;
	struct ib_wc wc = {
		.opcode = IB_WC_RECV,
		.byte_len = GIFT_UD_GRH_BYTES + pkt->payload_len,
		.wc_flags = IB_WC_GRH | IB_WC_WITH_NETWORK_HDR_TYPE,
		.network_hdr_type = pkt->flags & GIFT_PKT_IPV4 ?
				    RDMA_NETWORK_IPV4 : RDMA_NETWORK_IPV6,
		.port_num = GIFT_PORT,
	};
	int err;

	lockdep_assert_held(&p->lock);
	if (!resume) {
		/* Any opcode may come here: no DETH before this check. */
		if (!gift_ud_pkt_ok(qp, skb))
			goto free;
		err = gift_qp_rq_pop(qp, p->recv);
		if (err == -EIO) {
			/* A corrupt mapped receive ring. */
			gift_qp_error(qp);
			goto free;
		}
		if (err) {
			gift_ud_stats(qp, GIFT_CNT_DROPPED_PKTS);
			goto free;
		}
		p->in_send = true;
	}
	wc.src_qp = gift_deth_sqp(gift_pkt_deth(skb));
	if (gift_pkt_op(skb)->immdt) {
		wc.wc_flags |= IB_WC_WITH_IMM;
		wc.ex.imm_data = gift_immdt_imm(gift_pkt_immdt(skb));
	}
	if (p->recv->flags & GIFT_RWQE_BAD) {
		gift_ud_complete(qp, skb, &wc, IB_WC_LOC_QP_OP_ERR);
		gift_qp_error(qp);
		goto free;
	}
	if (wc.byte_len > p->recv->length) {
		gift_ud_complete(qp, skb, &wc, IB_WC_LOC_LEN_ERR);
		goto free;
	}
	err = gift_ud_copy(qp, skb);
	if (err == -EAGAIN) {
		gift_proto_park(qp, skb, true);
		goto free;
	}
	if (err) {
		gift_ud_complete(qp, skb, &wc, IB_WC_LOC_PROT_ERR);
		gift_qp_error(qp);
		goto free;
	}
	gift_ud_complete(qp, skb, &wc, IB_WC_SUCCESS);
free:
	kfree_skb(skb);
}
