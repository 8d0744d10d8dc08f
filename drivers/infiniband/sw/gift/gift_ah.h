/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift address handles and address vectors.
 *
 * An AH holds a resolved RoCEv2 address vector (struct gift_av) for UD
 * sends; post_send copies it into the send WQE, so the AH may be
 * destroyed while WQEs built from it are still queued. RC QPs resolve
 * their primary path into a gift_av of their own (gift_qp.h).
 */
#ifndef GIFT_AH_H
#define GIFT_AH_H

#include <linux/in6.h>
#include <rdma/ib_verbs.h>

struct gift_dev;

#define GIFT_MAX_AH		0x10000

/**
 * struct gift_ah_table - per-device AH accounting
 * @num: live objects, bounded by the device limit; atomic, no lock
 */
struct gift_ah_table {
	atomic_t num;
};

/**
 * struct gift_av - a resolved RoCEv2 address vector
 * @sgid: source GID (from the GID table entry the AV names)
 * @dgid: destination GID
 * @saddr: source IP address; IPv4 in the v4-mapped form of @sgid
 * @daddr: destination IP address, same form
 * @ipv4: true when both addresses are IPv4 (v4-mapped GIDs)
 * @flow_label: IPv6 flow label, also hashed into the UDP source port
 * @hop_limit: IPv4 TTL / IPv6 hop limit
 * @traffic_class: IPv4 TOS / IPv6 traffic class
 * @sgid_index: GID table index of @sgid
 *
 * Built from an rdma_ah_attr by gift_av_from_attr(), for AHs and for the
 * primary path of connected QPs; read by the network layer for every
 * packet. Constant once built.
 */
struct gift_av {
	union ib_gid sgid;
	union ib_gid dgid;
	struct in6_addr saddr;
	struct in6_addr daddr;
	bool ipv4;
	u32 flow_label;
	u8 hop_limit;
	u8 traffic_class;
	u8 sgid_index;
};

int gift_av_from_attr(struct gift_av *av, const struct rdma_ah_attr *attr);

/*
 * struct gift_ah
 *
 * Lock -> fields: none; every field is constant once create_ah returns.
 */

/**
 * struct gift_ah - an address handle
 * @ibah: the ib_core object; must stay first
 * @av: the resolved address vector
 * @attr: the attribute it was created from, for query_ah; its
 *	grh.sgid_attr is NULL (ib_core holds the reference in ibah)
 */
struct gift_ah {
	struct ib_ah ibah;
	struct gift_av av;
	struct rdma_ah_attr attr;
};

static inline struct gift_ah *to_gift_ah(struct ib_ah *ibah)
{
	return container_of(ibah, struct gift_ah, ibah);
}

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_ah_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_ah_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_AH_H */
