/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift per-port hardware counters, exposed through ib_core's hw
 * stats ("rdma statistic show link gift0/1",
 * /sys/class/infiniband/gift0/ports/1/hw_counters/).
 *
 * The network layer (gift_net.c) and the protocol engine count events
 * with gift_stats_inc() and gift_stats_add(). Each dropped packet is
 * counted once: in icrc_errors when its ICRC is wrong, in dropped_pkts
 * for every other reason, whether the network layer or the engine drops
 * it. Counters only ever grow; they are never reset.
 */
#ifndef GIFT_STATS_H
#define GIFT_STATS_H

#include <linux/atomic.h>
#include <rdma/ib_verbs.h>

struct gift_dev;

/**
 * enum gift_counter - the device's counters
 * @GIFT_CNT_SENT_PKTS: packets handed to the IP stack (net)
 * @GIFT_CNT_RCVD_PKTS: packets the network layer accepted and handed to
 *	the engine, including those the engine then drops (net)
 * @GIFT_CNT_SENT_BYTES: bytes of the packets in sent_pkts, BTH to ICRC
 *	inclusive (net)
 * @GIFT_CNT_RCVD_BYTES: the same for rcvd_pkts (net)
 * @GIFT_CNT_SEND_ERRORS: packets that could not be sent: no route, source
 *	address gone, IP stack refused (net)
 * @GIFT_CNT_ICRC_ERRORS: received packets dropped for a bad ICRC (net)
 * @GIFT_CNT_DROPPED_PKTS: received packets dropped for any other reason:
 *	too short, bad TVer, unknown opcode, unsupported IP options (net);
 *	unknown QPN, bad state, bad P_Key, a multicast packet for a group
 *	no QP is attached to or without DestQP 0xFFFFFF... (engine)
 * @GIFT_CNT_RETRANSMITS: request packets sent again after a timeout or a
 *	NAK (engine)
 * @GIFT_CNT_RNR_NAKS_SENT: RNR NAKs sent by the responder (engine)
 * @GIFT_CNT_RNR_NAKS_RCVD: RNR NAKs received by the requester (engine)
 * @GIFT_CNT_SEQ_NAKS_SENT: PSN sequence error NAKs sent (engine)
 * @GIFT_CNT_SEQ_NAKS_RCVD: PSN sequence error NAKs received (engine)
 * @GIFT_CNT_DUPLICATE_REQUESTS: duplicate requests the responder
 *	received (engine)
 * @GIFT_CNT_RETRY_EXCEEDED: send queues that failed with transport retry
 *	counter exceeded (engine)
 * @GIFT_CNT_RNR_RETRY_EXCEEDED: send queues that failed with RNR retry
 *	counter exceeded (engine)
 * @GIFT_CNT_ODP_FAULTS: faults of ODP MRs served, for the engine or a
 *	prefetch (odp)
 * @GIFT_CNT_ODP_PAGES_FAULTED: pages they added to device page tables
 * @GIFT_CNT_ODP_FAULT_RETRIES: faults started again because an
 *	invalidation overlapped them
 * @GIFT_CNT_ODP_INVALIDATIONS: invalidations of ODP MR ranges
 * @GIFT_CNT_ODP_PAGES_INVALIDATED: pages they removed from device page
 *	tables
 * @GIFT_CNT_ODP_PREFETCHES: advise_mr prefetch requests
 * @GIFT_CNT_ODP_ENGINE_WAITS: times a QP's engine stopped to wait for a
 *	fault of an ODP page it needed (engine)
 * @GIFT_CNT_ODP_RNR_NAKS: RNR NAKs the responder sent because a request
 *	the requester sent again was still waiting for a fault (engine);
 *	also counted in rnr_naks_sent
 * @GIFT_CNT_QKEY_VIOLATIONS: UD and GSI packets dropped because their
 *	DETH Q_Key was not the receiving QP's (engine); also the port's
 *	qkey_viol_cntr, which saturates at 0xffff
 * @GIFT_NUM_COUNTERS: number of counters
 *
 * Add a counter by adding it here, before GIFT_NUM_COUNTERS, and its name
 * in gift_stats.c (the build checks that every counter has a name).
 */
enum gift_counter {
	GIFT_CNT_SENT_PKTS,
	GIFT_CNT_RCVD_PKTS,
	GIFT_CNT_SENT_BYTES,
	GIFT_CNT_RCVD_BYTES,
	GIFT_CNT_SEND_ERRORS,
	GIFT_CNT_ICRC_ERRORS,
	GIFT_CNT_DROPPED_PKTS,
	GIFT_CNT_RETRANSMITS,
	GIFT_CNT_RNR_NAKS_SENT,
	GIFT_CNT_RNR_NAKS_RCVD,
	GIFT_CNT_SEQ_NAKS_SENT,
	GIFT_CNT_SEQ_NAKS_RCVD,
	GIFT_CNT_DUPLICATE_REQUESTS,
	GIFT_CNT_RETRY_EXCEEDED,
	GIFT_CNT_RNR_RETRY_EXCEEDED,
	GIFT_CNT_ODP_FAULTS,
	GIFT_CNT_ODP_PAGES_FAULTED,
	GIFT_CNT_ODP_FAULT_RETRIES,
	GIFT_CNT_ODP_INVALIDATIONS,
	GIFT_CNT_ODP_PAGES_INVALIDATED,
	GIFT_CNT_ODP_PREFETCHES,
	GIFT_CNT_ODP_ENGINE_WAITS,
	GIFT_CNT_ODP_RNR_NAKS,
	GIFT_CNT_QKEY_VIOLATIONS,
	GIFT_NUM_COUNTERS
};

/**
 * struct gift_stats - counter storage, embedded in struct gift_dev
 * @cnt: one counter per enum gift_counter
 *
 * Locking: none; every counter is an atomic64_t, updated from any context
 * (process, softirq) and read by ib_core's get_hw_stats. Zeroed by
 * ib_alloc_device(), so it needs no initialisation.
 */
struct gift_stats {
	atomic64_t cnt[GIFT_NUM_COUNTERS];
};

void gift_stats_inc(struct gift_dev *gdev, enum gift_counter c);
void gift_stats_add(struct gift_dev *gdev, enum gift_counter c, u64 n);
u64 gift_stats_read(struct gift_dev *gdev, enum gift_counter c);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_stats_ops;

#endif /* GIFT_STATS_H */
