/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift RoCEv2 protocol engine: the interface the queue pair code
 * calls, and the engine's internal interface between its files:
 *
 *   gift_proto.c  per-QP work item, packet dispatch, timers, ACK/NAK tx
 *   gift_req.c    requester: send WQEs -> request packets
 *   gift_comp.c   completer: ACKs, NAKs, read/atomic responses -> CQEs
 *   gift_resp.c   responder: request packets -> memory, RQ, responses
 *   gift_ud.c     datagrams (UD and GSI QPs): send WQEs -> packets,
 *                 packets -> receive WQEs with their GRH
 *
 * The engine owns everything between a posted work request and its
 * completion; gift_qp.c owns the QP object, its state machine and queues.
 *
 * Execution model: all engine state of a QP changes under its
 * gift_qp_proto.lock, a spinlock taken with bottom halves disabled. One
 * engine pass (gift_proto_run(): received packets to the responder and
 * the completer, then the requester) runs under it, inline in softirq
 * receive and in a user QP's post_send when the lock is free, else in
 * the QP's work item; timers only queue the work item. So the protocol
 * code is single-threaded per QP, never sleeps and allocates atomically.
 */
#ifndef GIFT_PROTO_H
#define GIFT_PROTO_H

#include <linux/spinlock.h>
#include <linux/skbuff.h>
#include <linux/timer.h>
#include <linux/workqueue.h>
#include <rdma/ib_verbs.h>

#include "gift_ah.h"
#include "gift_net.h"

struct gift_dev;
struct gift_mr;
struct gift_qp;
struct gift_send_wqe;

/*
 * RDMA READs and atomics a QP may keep outstanding as requester
 * (max_qp_init_rd_atom) and accept as responder (max_qp_rd_atom): rxe's
 * 128, so that a peer asking for its own depth can connect. The
 * responder remembers max_dest_rd_atomic of them (struct gift_rd_res),
 * in a ring modify_qp allocates at that size.
 */
#define GIFT_MAX_RD_ATOMIC	128
/* Request packets in flight before the requester waits for ACKs. */
#define GIFT_MAX_INFLIGHT_PKTS	256
/*
 * A SEND or RDMA WRITE message asks for an acknowledgment (BTH AckReq)
 * every this many packets, besides its last one: each such ACK restarts
 * the retransmission timer and is where a retransmission resumes, so a
 * message that takes longer than the QP's timeout to transfer (1 GiB at
 * any speed, 1 MiB on a loaded host) still completes.
 */
#define GIFT_ACK_REQ_EVERY	32
/*
 * Payloads from this many bytes on are sent zero-copy (gift_sge_skb()):
 * the MR's pages become fragments of the packet. Smaller ones are copied
 * into its linear area, which costs less than the page references, the
 * separate fragment for the pad and ICRC and the fragment walks of the
 * ICRC and the receiver's copy. See Documentation/rdma_gift.rst,
 * "Zero-copy transmit", for the measurement.
 */
#define GIFT_ZC_MIN_BYTES	1024
/*
 * Packets one engine pass may transmit or take from the QP's receive
 * queue. A pass runs with bottom halves disabled, so loopback packets
 * pile up in the backlog until it ends: a bounded pass keeps that below
 * netdev_max_backlog, and a flood of received packets cannot keep a CPU
 * in one pass. The work item continues where a pass stopped.
 */
#define GIFT_PASS_BUDGET	64
/*
 * Packets a QP's receive queue holds for the engine; more are dropped
 * and counted. Four windows of requests: a peer that respects the window
 * never comes close, a flood to one QPN pins only this much memory.
 */
#define GIFT_RXQ_MAX		(4 * GIFT_MAX_INFLIGHT_PKTS)

/**
 * struct gift_rd_res - a remembered RDMA READ or atomic request
 * @psn: PSN of the request
 * @npkts: PSNs it consumed (READ: response packets; atomic: 1)
 * @atomic: an atomic request (or, with @ack_only, a FLUSH or ATOMIC
 *	WRITE); @orig is its result
 * @ack_only: a FLUSH or ATOMIC WRITE, executed once: a duplicate only
 *	gets its empty RDMA READ response again
 * @va: READ: remote address; @rkey and @len: the rest of its RETH
 * @rkey: READ rkey
 * @len: READ length
 * @orig: atomic: the value returned, replayed for a duplicate
 */
struct gift_rd_res {
	u32 psn;
	u32 npkts;
	bool atomic;
	bool ack_only;
	u64 va;
	u32 rkey;
	u32 len;
	u64 orig;
};

/**
 * struct gift_proto_fault - the one ODP fault a QP's engine waits for
 * @work: runs the fault on the ODP workqueue (gift_odp_queue())
 * @busy: @work is queued or running; the fields below describe it and
 *	stay unchanged until it ends
 * @mr: the MR to fault, referenced while @busy
 * @key: @mr's key, to recognise the request when it failed
 * @iova: first address needed
 * @len: bytes needed
 * @flags: GIFT_ODP_FAULT_WRITE or 0
 * @err: the result of the last fault that ended, for @key and @iova
 * @stale: the QP was reset while @busy: the running fault's result is
 *	for requests that are gone, and is not kept in @err
 *
 * A copy the engine makes into or out of an ODP MR fails with -EAGAIN
 * while a page is not in the device's page table; the engine then asks
 * for a fault here (gift_proto_fault()) and stops what it was doing at
 * that point, leaving PSNs and offsets where they were: the requester
 * stops sending, and a received packet waits in @parked (struct
 * gift_qp_proto) with the packets behind it in the receive queue. When
 * the fault ends, the engine runs again and makes the same copy again.
 * While @busy, a second copy that misses waits for this fault to end and
 * then asks for its own.
 *
 * Locking: the engine lock; @work runs without it and takes it to end.
 */
struct gift_proto_fault {
	struct work_struct work;
	bool busy;
	struct gift_mr *mr;
	u32 key;
	u64 iova;
	u32 len;
	unsigned int flags;
	int err;
	bool stale;
};

/**
 * struct gift_proto_attr - the QP attributes the engine uses
 * @av: primary path (qp->av)
 * @dest_qpn: destination QP number
 * @mtu: path MTU in bytes, at least 256
 * @timeout: local ACK timeout exponent
 * @retry_cnt: transport retries after a timeout
 * @rnr_retry: retries after RNR NAKs (7: infinite)
 * @min_rnr_timer: RNR NAK timer the responder asks for
 * @max_rd_atomic: READs and atomics the requester keeps outstanding
 * @access: remote access flags of the responder (qp_access_flags)
 * @qkey: UD and GSI: the QP's Q_Key
 *
 * A copy of qp->attr and qp->av made by gift_proto_qp_modified() under
 * the engine lock, in modify order: modify_qp writes those under the QP's
 * sq.lock and rq.lock, which the engine does not hold, and SQD -> SQD or
 * RTS -> RTS may change them while packets are in flight. The engine
 * reads only this copy.
 */
struct gift_proto_attr {
	struct gift_av av;
	u32 dest_qpn;
	u32 mtu;
	u8 timeout;
	u8 retry_cnt;
	u8 rnr_retry;
	u8 min_rnr_timer;
	u8 max_rd_atomic;
	int access;
	u32 qkey;
};

/**
 * struct gift_qp_proto - per-QP engine state, embedded in struct gift_qp
 * @lock: serialises all engine state below, taken with BHs disabled
 *	(see the file comment)
 * @attr: the QP's attributes as of its last modify
 * @work: runs gift_proto_work()
 * @rxq: received packets waiting for @work, at most GIFT_RXQ_MAX; its
 *	own spinlock also guards @stopped
 * @stopped: set once by gift_proto_qp_destroy(); nothing queues @work
 *	or packets after it
 * @retry_timer: retransmission timeout (QP attr timeout)
 * @rnr_timer: RNR NAK back-off, and the requester's after a packet
 *	allocation failed
 * @rnr_wait: the requester waits for @rnr_timer
 * @retry_pending: @retry_timer fired; retransmit on the next run
 * @sport: UDP source port of the QP's flow
 * @route: the route of the QP's packets (gift_net.c, "Routes"); used
 *	under @lock only
 * @sqd_notify: the QP entered SQD with en_sqd_async_notify, and
 *	IB_EVENT_SQ_DRAINED is owed once no started send WQE is outstanding
 * @req_psn: requester: PSN of the next packet to send
 * @req_psn_end: requester: one past the furthest PSN sent since the SQ
 *	PSN was set (a READ's: its last response's); a rewind leaves it
 *	alone. Responses must carry a PSN before it (gift_comp_rcv())
 * @req_n: requester: position, among outstanding send WQEs, of the WQE
 *	being sent
 * @req_off: requester: bytes of that WQE already sent
 * @rd_atomic: requester: READ and atomic WQEs sent and not completed
 * @rd_sent: requester: those of them whose request is out (GIFT_WQE_SENT)
 *	and unanswered: the responses the responder may be sending now
 * @rd_window: requester: at most this many in @rd_sent, 0 for no limit
 *	but max_rd_atomic. After a loss among READ responses (a rewind to
 *	a READ or atomic) it drops to 1 and doubles with every READ or
 *	atomic that completes, back to no limit at max_rd_atomic: a peer
 *	that answers a full pipeline of READs at once (rxe answers 128)
 *	would otherwise overrun the same queue again with the retries.
 * @retry_left: requester: retries left after a timeout
 * @rnr_left: requester: retries left after RNR NAKs (7: infinite)
 * @resp_psn: responder: expected PSN
 * @msn: responder: message sequence number
 * @in_send: responder: a SEND message is being received into @recv
 * @recv: responder: the receive WQE of that message
 * @recv_off: responder: bytes of it received so far
 * @in_write: responder: an RDMA WRITE message is being received
 * @wr_mr: responder: MR of that WRITE (referenced; NULL for 0 bytes)
 * @wr_va: responder: where its next payload byte goes
 * @wr_left: responder: bytes it may still carry
 * @wr_len: responder: its total length (the RETH DMA length)
 * @nak_sent: responder: a PSN sequence error NAK was sent for the
 *	current gap; cleared by the next in-order packet
 * @rd_res: responder resources, a ring of @rd_res_n indexed by @rd_next;
 *	allocated by modify_qp at the QP's max_dest_rd_atomic (at least
 *	1), NULL until the first modify that sets it
 * @rd_res_n: entries of @rd_res
 * @rd_next: next slot of @rd_res to fill, below @rd_res_n
 * @budget: packets the current pass may still transmit or take from
 *	@rxq
 * @rr_mr: responder: MR of the RDMA READ reply in progress (referenced;
 *	NULL for 0 bytes)
 * @rr_active: responder: a READ reply is being sent; requests behind it
 *	wait until it is complete
 * @rr_va: remote address of the READ
 * @rr_len: its length
 * @rr_psn: PSN of its request (its first response)
 * @rr_next: next response packet to send
 * @fault: the ODP fault the engine waits for, if any
 * @parked: a received packet whose handling stopped for @fault; handled
 *	again, before the receive queue, once the fault ended
 * @resume: @parked is a SEND or RDMA WRITE request whose checks and
 *	first-packet work were done: only its copy and what follows run again
 * @rx_seen: packets at the head of @rxq looked at during the current
 *	wait for @fault, and left there (gift_proto_while_waiting());
 *	modified under @rxq's lock with the engine lock held, so either
 *	lock reads it; 0 again when the wait ends
 * @wait_rnr: an RNR NAK was sent during the current wait for @fault
 *	(gift_resp_rcv_parked())
 * @recv_kept: UC responder: @recv holds the receive WQE of a SEND
 *	message that was dropped; the next message that needs one takes it
 *	instead of a new one (@in_send is false meanwhile)
 * @uc_drop: UC responder: the message in progress lost a packet or was
 *	refused; its remaining packets are dropped until one starts a new
 *	message
 */
struct gift_qp_proto {
	spinlock_t lock;		/* see the kernel-doc above */
	struct gift_proto_attr attr;
	struct work_struct work;
	struct sk_buff_head rxq;
	bool stopped;
	struct timer_list retry_timer;
	struct timer_list rnr_timer;
	bool rnr_wait;
	bool retry_pending;
	u16 sport;
	struct gift_net_route route;
	bool sqd_notify;

	u32 req_psn;
	u32 req_psn_end;
	u32 req_n;
	u32 req_off;
	u32 rd_atomic;
	u32 rd_sent;
	u32 rd_window;
	u8 retry_left;
	u8 rnr_left;

	u32 resp_psn;
	u32 msn;
	bool in_send;
	struct gift_recv_wqe *recv;
	u32 recv_off;
	bool in_write;
	struct gift_mr *wr_mr;
	u64 wr_va;
	u32 wr_left;
	u32 wr_len;
	bool nak_sent;
	struct gift_rd_res *rd_res;
	u32 rd_res_n;
	u32 rd_next;
	u32 budget;
	struct gift_mr *rr_mr;
	bool rr_active;
	u64 rr_va;
	u32 rr_len;
	u32 rr_psn;
	u32 rr_next;
	struct gift_proto_fault fault;
	struct sk_buff *parked;
	bool resume;
	u32 rx_seen;
	bool wait_rnr;
	bool recv_kept;
	bool uc_drop;
};

/*
 * Hooks called by gift_qp.c: in process context without the QP's
 * spinlocks; gift_proto_qp_modified() with qp->modify_lock held (so the
 * engine sees modifies in order); gift_proto_kick() in any context
 * (kernel QPs post from softirq), it only queues work.
 */
int gift_proto_qp_init(struct gift_qp *qp);
struct gift_rd_res *gift_proto_rd_res_alloc(u8 max_dest_rd_atomic);
void gift_proto_qp_modified(struct gift_qp *qp, const struct ib_qp_attr *attr,
			    int mask, struct gift_rd_res *rd_res);
void gift_proto_kick(struct gift_qp *qp);
void gift_proto_qp_destroy(struct gift_qp *qp);

/* Called by the network layer, see gift_net.h. */
void gift_proto_rcv(struct gift_dev *gdev, struct sk_buff *skb);
void gift_proto_rcv_qp(struct gift_dev *gdev, struct gift_qp *qp,
		       struct sk_buff *skb);

/* Module init/exit: the engine's workqueue. */
int gift_proto_init(void);
void gift_proto_exit(void);

/*
 * Internal interface of the engine. Everything below runs with
 * qp->proto.lock held (lockdep-asserted where it matters).
 */

/*
 * IBTA 10.9.3 P_Key matching: the low 15 bits equal and not the invalid
 * P_Key, and at least one of the two a full member.
 */
static inline bool gift_pkey_match(u16 a, u16 b)
{
	return (a & 0x7fff) && (a & 0x7fff) == (b & 0x7fff) &&
	       ((a | b) & 0x8000);
}

/* 24-bit PSN arithmetic: < 0 when @a is before @b. */
static inline int gift_psn_cmp(u32 a, u32 b)
{
	return (s32)((a - b) << 8) >> 8;
}

static inline u32 gift_psn_add(u32 psn, u32 n)
{
	return (psn + n) & 0xffffff;
}

/*
 * Packets (PSNs) of a @len-byte message at @mtu: at least one. Written
 * not to overflow, unlike DIV_ROUND_UP(), for any 32-bit length.
 */
static inline u32 gift_npkts(u32 len, u32 mtu)
{
	return max(1U, len / mtu + !!(len % mtu));
}

/**
 * struct gift_wqe_state - the engine's view of a send WQE, in its proto[]
 * @first_psn: PSN of its first request packet
 * @last_psn: PSN of its last packet (READ: of its last response)
 * @ack_psn: SEND/WRITE: first PSN of it the responder has not
 *	acknowledged yet, where a retransmission after a timeout resumes;
 *	READ: PSN of the first response to its latest request (the original
 *	one, or a re-request of the missing bytes)
 * @flags: GIFT_WQE_*
 * @status: error to complete it with (GIFT_WQE_FAILED)
 * @resp_len: READ: response bytes received so far
 */
struct gift_wqe_state {
	u32 first_psn;
	u32 last_psn;
	u32 ack_psn;
	u32 flags;
	u32 status;
	u32 resp_len;
};

#define GIFT_WQE_STARTED	BIT(0)	/* PSNs assigned, first packet sent */
#define GIFT_WQE_SENT		BIT(1)	/* every request packet sent */
#define GIFT_WQE_DONE		BIT(2)	/* local operation executed, UC sent */
#define GIFT_WQE_FAILED		BIT(3)	/* complete with @status, then ERR */

struct gift_wqe_state *gift_wqe_state(struct gift_send_wqe *wqe);
bool gift_wqe_is_rd_atomic(const struct gift_send_wqe *wqe);
u32 gift_qp_mtu(struct gift_qp *qp);

int gift_proto_fault(struct gift_qp *qp, struct gift_mr *mr, u64 iova,
		     u32 len, bool write);
void gift_proto_park(struct gift_qp *qp, struct sk_buff *skb, bool resume);
int gift_sge_copy(struct gift_qp *qp, const struct ib_sge *sge, u32 num_sge,
		  u32 offset, void *buf, u32 len, bool to_sge);
int gift_sge_copy_skb(struct gift_qp *qp, const struct ib_sge *sge,
		      u32 num_sge, u32 offset, const struct sk_buff *skb,
		      u32 skb_off, u32 len);
int gift_sge_skb(struct gift_qp *qp, const struct ib_sge *sge, u32 num_sge,
		 u32 offset, struct sk_buff *skb, u32 len);
void gift_proto_send_ack(struct gift_qp *qp, u8 syndrome, u32 psn);
void gift_proto_xmit(struct gift_qp *qp, struct sk_buff *skb);
struct sk_buff *gift_proto_alloc(struct gift_qp *qp, u8 opcode, u32 psn,
				 bool ack_req, bool se, u32 payload_len);
void gift_proto_arm_retry(struct gift_qp *qp);
int gift_proto_fill_res(struct sk_buff *msg, struct gift_qp *qp);

/* gift_req.c */
void gift_req_run(struct gift_qp *qp);
void gift_req_rewind(struct gift_qp *qp, u32 psn);

/* gift_comp.c */
void gift_comp_rcv(struct gift_qp *qp, struct sk_buff *skb);
void gift_comp_timeout(struct gift_qp *qp);
void gift_comp_local(struct gift_qp *qp);

/* gift_ud.c */
void gift_ud_req_run(struct gift_qp *qp);
void gift_ud_rcv(struct gift_qp *qp, struct sk_buff *skb, bool resume);

/* gift_resp.c */
void gift_resp_rcv(struct gift_qp *qp, struct sk_buff *skb, bool resume);
/* What gift_resp_parked_verdict() wants done with a queued packet. */
enum gift_parked_verdict {
	GIFT_PARKED_KEEP,	/* leave it queued, for after the fault */
	GIFT_PARKED_ANSWER,	/* gift_resp_rcv_parked() it now */
	GIFT_PARKED_DROP,	/* drop it: the requester sends it again */
};

enum gift_parked_verdict gift_resp_parked_verdict(struct gift_qp *qp,
						  struct sk_buff *skb);
void gift_resp_rcv_parked(struct gift_qp *qp, struct sk_buff *skb);
void gift_resp_reset(struct gift_qp *qp);
void gift_resp_swap_rd_res(struct gift_qp *qp, struct gift_rd_res **rd_res,
			   u32 n);
void gift_resp_flush(struct gift_qp *qp);
bool gift_resp_read_continue(struct gift_qp *qp);

#endif /* GIFT_PROTO_H */
