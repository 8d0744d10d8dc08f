/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift address handles.
 */
#ifndef GIFT_AH_H
#define GIFT_AH_H

#include <linux/in6.h>
#include <rdma/ib_verbs.h>

struct gift_dev;

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

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_ah_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_ah_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_AH_H */
