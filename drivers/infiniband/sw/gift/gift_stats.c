// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift per-port hardware counters (see gift_stats.h).
 *
 * The counters live in struct gift_dev (gdev->stats) as atomic64_t, so
 * that both the softirq receive path and process-context senders update
 * them without locks. ib_core asks for them through the hw stats ops:
 * alloc_hw_port_stats() describes them once per port, get_hw_stats()
 * copies the current values; both the sysfs hw_counters directory and
 * rdma netlink ("rdma statistic") go through these. The device has a
 * single port, so the port counters are also the device's.
 */

#include "gift.h"

static const struct rdma_stat_desc gift_counter_descs[] = {
	[GIFT_CNT_SENT_PKTS].name		= "sent_pkts",
	[GIFT_CNT_RCVD_PKTS].name		= "rcvd_pkts",
	[GIFT_CNT_SENT_BYTES].name		= "sent_bytes",
	[GIFT_CNT_RCVD_BYTES].name		= "rcvd_bytes",
	[GIFT_CNT_SEND_ERRORS].name		= "send_errors",
	[GIFT_CNT_ICRC_ERRORS].name		= "icrc_errors",
	[GIFT_CNT_DROPPED_PKTS].name		= "dropped_pkts",
	[GIFT_CNT_RETRANSMITS].name		= "retransmits",
	[GIFT_CNT_RNR_NAKS_SENT].name		= "rnr_naks_sent",
	[GIFT_CNT_RNR_NAKS_RCVD].name		= "rnr_naks_rcvd",
	[GIFT_CNT_SEQ_NAKS_SENT].name		= "seq_naks_sent",
	[GIFT_CNT_SEQ_NAKS_RCVD].name		= "seq_naks_rcvd",
	[GIFT_CNT_DUPLICATE_REQUESTS].name	= "duplicate_requests",
	[GIFT_CNT_RETRY_EXCEEDED].name		= "retry_exceeded",
	[GIFT_CNT_RNR_RETRY_EXCEEDED].name	= "rnr_retry_exceeded",
	[GIFT_CNT_ODP_FAULTS].name		= "odp_faults",
	[GIFT_CNT_ODP_PAGES_FAULTED].name	= "odp_pages_faulted",
	[GIFT_CNT_ODP_FAULT_RETRIES].name	= "odp_fault_retries",
	[GIFT_CNT_ODP_INVALIDATIONS].name	= "odp_invalidations",
	[GIFT_CNT_ODP_PAGES_INVALIDATED].name	= "odp_pages_invalidated",
	[GIFT_CNT_ODP_PREFETCHES].name		= "odp_prefetches",
	[GIFT_CNT_ODP_ENGINE_WAITS].name	= "odp_engine_waits",
	[GIFT_CNT_ODP_RNR_NAKS].name		= "odp_rnr_naks",
	[GIFT_CNT_QKEY_VIOLATIONS].name		= "qkey_violations",
};

static_assert(ARRAY_SIZE(gift_counter_descs) == GIFT_NUM_COUNTERS);

/**
 * gift_stats_add() - add to a counter
 * @gdev: device
 * @c: counter
 * @n: amount
 *
 * Context: any.
 */
void gift_stats_add(struct gift_dev *gdev, enum gift_counter c, u64 n)
{
	atomic64_add(n, &gdev->stats.cnt[c]);
}

/**
 * gift_stats_inc() - add one to a counter
 * @gdev: device
 * @c: counter
 *
 * Context: any.
 */
void gift_stats_inc(struct gift_dev *gdev, enum gift_counter c)
{
	atomic64_inc(&gdev->stats.cnt[c]);
}

/**
 * gift_stats_read() - current value of a counter
 * @gdev: device
 * @c: counter
 *
 * Context: any.
 *
 * Return: the value.
 */
u64 gift_stats_read(struct gift_dev *gdev, enum gift_counter c)
{
	return atomic64_read(&gdev->stats.cnt[c]);
}

/**
 * gift_alloc_hw_port_stats() - describe a port's counters to ib_core
 * @ibdev: device
 * @port: port number (always GIFT_PORT)
 *
 * Return: the stats structure (freed by ib_core), or NULL without memory.
 */
static struct rdma_hw_stats *gift_alloc_hw_port_stats(struct ib_device *ibdev,
						      u32 port)
{
	return rdma_alloc_hw_stats_struct(gift_counter_descs,
					  ARRAY_SIZE(gift_counter_descs),
					  RDMA_HW_STATS_DEFAULT_LIFESPAN);
}

/**
 * gift_get_hw_stats() - copy the counters for ib_core
 * @ibdev: device
 * @stats: structure from gift_alloc_hw_port_stats()
 * @port: port number
 * @index: the counter asked for; all are copied, as they are cheap to read
 *
 * Return: the number of counters copied.
 */
static int gift_get_hw_stats(struct ib_device *ibdev,
			     struct rdma_hw_stats *stats, u32 port, int index)
{
	struct gift_dev *gdev = to_gift_dev(ibdev);
	int i;

	for (i = 0; i < GIFT_NUM_COUNTERS; i++)
		stats->value[i] = gift_stats_read(gdev, i);
	return GIFT_NUM_COUNTERS;
}

const struct ib_device_ops gift_stats_ops = {
	.alloc_hw_port_stats = gift_alloc_hw_port_stats,
	.get_hw_stats = gift_get_hw_stats,
};
