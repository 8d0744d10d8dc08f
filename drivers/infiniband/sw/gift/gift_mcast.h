/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift multicast: UD QPs attached to RoCEv2 multicast groups.
 *
 * A group is a multicast GID: an IPv6 multicast address (ff00::/8) or a
 * v4-mapped IPv4 one (::ffff:224.0.0.0/100). The device keeps a table of
 * the groups that have at least one QP attached, each with the list of its
 * QPs; the first attach joins the group on the device's netdev, the last
 * detach leaves it (gift_mcast.c says how). A packet whose destination IP
 * is a multicast address and whose BTH DestQP is 0xFFFFFF is delivered to
 * every QP attached to that group, each with its own copy.
 */
#ifndef GIFT_MCAST_H
#define GIFT_MCAST_H

#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <rdma/ib_verbs.h>

struct gift_dev;
struct gift_qp;

/* Limits advertised in query_device and enforced by attach_mcast. */
#define GIFT_MAX_MCAST_GRP		1024
#define GIFT_MAX_MCAST_QP_ATTACH	56
#define GIFT_MAX_TOTAL_MCAST_QP_ATTACH	4096

#define GIFT_MCAST_HASH_BITS		6

/*
 * struct gift_mcast_table
 *
 * Lock -> fields:
 *   @lock        @groups (writers), @num_groups, @num_attach, every
 *                group's @qps (writers) and @num_qps, every QP's
 *                gift_qp.mcast_list
 *   RCU          @groups and the groups' @qps, for the receive path
 *
 * Lock order: @lock -> RTNL (joining and leaving a group takes RTNL, so
 * attach, detach and destroy_qp must not be called with RTNL held).
 */

/**
 * struct gift_mcast_table - per-device multicast groups
 * @lock: see the lock table above
 * @groups: struct gift_mcast_group by GID
 * @num_groups: groups in @groups, at most GIFT_MAX_MCAST_GRP
 * @num_attach: attachments of all groups, at most
 *	GIFT_MAX_TOTAL_MCAST_QP_ATTACH
 */
struct gift_mcast_table {
	struct mutex lock;	/* see the lock table above */
	DECLARE_HASHTABLE(groups, GIFT_MCAST_HASH_BITS);
	unsigned int num_groups;
	unsigned int num_attach;
};

void gift_mcast_table_init(struct gift_mcast_table *table);
void gift_mcast_table_destroy(struct gift_mcast_table *table);
void gift_mcast_init_attr(struct ib_device_attr *attr);
void gift_mcast_qp_destroy(struct gift_qp *qp);
void gift_mcast_rcv(struct gift_dev *gdev, struct sk_buff *skb);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_mcast_ops;

#endif /* GIFT_MCAST_H */
