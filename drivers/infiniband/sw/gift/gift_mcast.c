// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift multicast (see gift_mcast.h): attach_mcast, detach_mcast and
 * the receive fan-out.
 *
 * Joining
 * -------
 * gift devices receive through the IP stack's UDP socket on port 4791
 * (gift_net.c), and the IP stack only takes a multicast datagram for a
 * group the host is a member of on the netdev it arrived on: the NIC
 * filter alone (dev_mc_add(), what stock rxe does) lets the frame in and
 * IP then drops it. So the first QP attached to a group joins it at the IP
 * level on the device's netdev, ip_mc_inc_group() or ipv6_dev_mc_inc(),
 * which also programs the group's link-layer address (01:00:5e:... or
 * 33:33:...) into the netdev's filter and announces the membership (IGMP,
 * MLD); the last detach leaves it. Memberships are counted by the IP
 * stack, so an application or rdma_cm joining the same group as well is
 * harmless. Once the host is a member, the IP stack also loops a copy of
 * every datagram the host sends to the group back to it (our socket has
 * IP_MULTICAST_LOOP), which is how QPs on the sending device receive.
 *
 * Receive
 * -------
 * The network layer hands a packet to a multicast destination to the
 * device of the netdev it arrived on (with GIFT_PKT_MCAST set), and the
 * engine's gift_proto_rcv() passes it here when it has that flag or the
 * multicast QPN. Both must hold (IBA 10.5.2.3: a multicast packet's DestQP
 * is 0xFFFFFF), and the group must have a QP attached; otherwise the
 * packet is dropped and counted in dropped_pkts. Every attached QP gets a
 * clone, queued to its engine like a unicast packet: there the QP's state,
 * P_Key and Q_Key are checked (a wrong Q_Key counts in qkey_violations, per
 * QP), and the receive buffer gets its GRH area (gift_ud.c). The fan-out
 * is unreliable: a clone that cannot be allocated is a packet dropped for
 * that QP (counted), and the others still get theirs.
 *
 * Transmit needs nothing of this file: an AH for a multicast GID resolves
 * to a multicast IP destination, the IP stack routes it out of the source
 * GID's netdev and the neighbour layer maps it to the group's MAC address.
 * The DestQP is the WR's remote_qpn, which a multicast send sets to
 * 0xFFFFFF; receivers drop anything else.
 *
 * Lifetimes
 * ---------
 * The receive path walks the table and the groups' QP lists under RCU;
 * attach and detach change them under the table's mutex. An attachment
 * holds a reference on its QP, dropped only after an RCU grace period
 * once it is unlinked, so the receive path may take its own reference on
 * any QP it finds on a list (gift_qp.ref; destroy_qp waits for those).
 * Groups are freed after a grace period too. ib_core refuses to destroy
 * a QP that is still attached (-EBUSY: ib_attach_mcast() counts in the
 * QP's usecnt; uverbs detaches a closing context's QPs first), so
 * destroy_qp should find none; should it, it warns once and detaches
 * them, before it unpublishes the QP, then waits for the attachments'
 * references like any other.
 */

#include <linux/igmp.h>
#include <linux/inetdevice.h>
#include <linux/jhash.h>
#include <linux/rtnetlink.h>
#include <net/addrconf.h>
#include <rdma/ib_addr.h>

#include "gift.h"
#include "gift_net.h"

/**
 * struct gift_mcast_group - a group with at least one QP attached
 * @node: entry in gift_mcast_table.groups
 * @mgid: the multicast GID
 * @qps: struct gift_mcast_attach.group_entry of the attached QPs
 * @num_qps: entries of @qps, at most GIFT_MAX_MCAST_QP_ATTACH
 * @rcu: frees the group after a grace period
 *
 * Locking: gift_mcast_table.lock for writers, RCU for readers; @mgid is
 * constant.
 */
struct gift_mcast_group {
	struct hlist_node node;
	union ib_gid mgid;
	struct list_head qps;
	unsigned int num_qps;
	struct rcu_head rcu;
};

/**
 * struct gift_mcast_attach - a QP attached to a group
 * @group_entry: entry in gift_mcast_group.qps (RCU)
 * @qp_entry: entry in gift_qp.mcast_list (table lock only)
 * @group: the group
 * @qp: the QP, referenced until an RCU grace period after the attachment
 *	is unlinked
 * @rcu: drops the reference and frees the attachment
 */
struct gift_mcast_attach {
	struct list_head group_entry;
	struct list_head qp_entry;
	struct gift_mcast_group *group;
	struct gift_qp *qp;
	struct rcu_head rcu;
};

static u32 gift_mcast_hash(const union ib_gid *mgid)
{
	return jhash(mgid->raw, sizeof(mgid->raw), 0);
}

static bool gift_mcast_gid_is_v4(const union ib_gid *mgid)
{
	return ipv6_addr_v4mapped((const struct in6_addr *)mgid->raw);
}

/* The group of @mgid, or NULL; under the table lock or RCU. */
static struct gift_mcast_group *
gift_mcast_find(struct gift_mcast_table *t, const union ib_gid *mgid)
{
	struct gift_mcast_group *grp;

	hash_for_each_possible_rcu(t->groups, grp, node, gift_mcast_hash(mgid),
				   lockdep_is_held(&t->lock)) {
		if (!memcmp(grp->mgid.raw, mgid->raw, sizeof(mgid->raw)))
			return grp;
	}
	return NULL;
}

/* @qp's attachment to @grp, or NULL; under the table lock. */
static struct gift_mcast_attach *
gift_mcast_find_attach(struct gift_mcast_table *t,
		       struct gift_mcast_group *grp, struct gift_qp *qp)
{
	struct gift_mcast_attach *att;

	lockdep_assert_held(&t->lock);
	list_for_each_entry(att, &qp->mcast_list, qp_entry) {
		if (att->group == grp)
			return att;
	}
	return NULL;
}

/*
 * Joins (@join) or leaves the IP multicast group of @mgid on @ndev. Leaving
 * never fails: a netdev whose IP state is gone (being unregistered) has
 * left every group already.
 */
static int gift_mcast_ip(struct net_device *ndev, const union ib_gid *mgid,
			 bool join)
{
	const struct in6_addr *addr = (const struct in6_addr *)mgid->raw;
	struct in_device *in_dev;
	int err = 0;

	rtnl_lock();
	if (gift_mcast_gid_is_v4(mgid)) {
		in_dev = __in_dev_get_rtnl(ndev);
		if (!in_dev)
			err = -ENODEV;
		else if (join)
			ip_mc_inc_group(in_dev, addr->s6_addr32[3]);
		else
			ip_mc_dec_group(in_dev, addr->s6_addr32[3]);
	} else if (IS_ENABLED(CONFIG_IPV6)) {
		if (join)
			err = ipv6_dev_mc_inc(ndev, addr);
		else
			ipv6_dev_mc_dec(ndev, addr);
	} else {
		err = -EAFNOSUPPORT;
	}
	rtnl_unlock();
	return join ? err : 0;
}

static void gift_mcast_attach_free(struct rcu_head *rcu)
{
	struct gift_mcast_attach *att =
		container_of(rcu, struct gift_mcast_attach, rcu);

	gift_qp_put(att->qp);
	kfree(att);
}

/* Unlinks @att; the last attachment of a group takes the group along. */
static void gift_mcast_unlink(struct gift_dev *gdev,
			      struct gift_mcast_attach *att)
{
	struct gift_mcast_table *t = &gdev->mcast;
	struct gift_mcast_group *grp = att->group;

	lockdep_assert_held(&t->lock);
	list_del_rcu(&att->group_entry);
	list_del(&att->qp_entry);
	grp->num_qps--;
	t->num_attach--;
	call_rcu(&att->rcu, gift_mcast_attach_free);
	if (grp->num_qps)
		return;
	hash_del_rcu(&grp->node);
	t->num_groups--;
	gift_mcast_ip(gdev->ndev, &grp->mgid, false);
	kfree_rcu(grp, rcu);
}

/*
 * What attach_mcast and detach_mcast accept: a UD QP (not the GSI QP) and
 * a multicast GID. ib_core checks the same before calling us.
 */
static int gift_mcast_check(struct ib_qp *ibqp, const union ib_gid *mgid)
{
	if (ibqp->qp_type != IB_QPT_UD ||
	    !rdma_is_multicast_addr((struct in6_addr *)mgid->raw)) {
		gift_dbg(to_gift_dev(ibqp->device),
			 "QP %u: not a UD QP or not a multicast GID %pI6c\n",
			 ibqp->qp_num, mgid->raw);
		return -EINVAL;
	}
	return 0;
}

/**
 * gift_attach_mcast() - attach a UD QP to a multicast group
 * @ibqp: UD QP, in any state
 * @mgid: multicast GID: IPv6 multicast or v4-mapped IPv4 multicast
 * @mlid: ignored (RoCE has no LIDs)
 *
 * The first QP attached to a group joins it on the netdev. Attaching a QP
 * that is attached already succeeds and changes nothing (as rxe does).
 * Process context; takes RTNL.
 *
 * Return: 0; -EINVAL for another QP type or a GID that is not multicast;
 * -ENOMEM at max_mcast_grp groups, max_mcast_qp_attach QPs in the group,
 * max_total_mcast_qp_attach attachments, or without memory; -ENODEV when
 * the netdev has no IPv4 (for an IPv4 group) or IPv6 state.
 */
static int gift_attach_mcast(struct ib_qp *ibqp, union ib_gid *mgid, u16 mlid)
{
	struct gift_dev *gdev = to_gift_dev(ibqp->device);
	struct gift_mcast_table *t = &gdev->mcast;
	struct gift_qp *qp = to_gift_qp(ibqp);
	struct gift_mcast_group *grp, *new_grp = NULL;
	struct gift_mcast_attach *att;
	int err;

	err = gift_mcast_check(ibqp, mgid);
	if (err)
		return err;
	att = kzalloc(sizeof(*att), GFP_KERNEL);
	if (!att)
		return -ENOMEM;

	mutex_lock(&t->lock);
	grp = gift_mcast_find(t, mgid);
	if (grp && gift_mcast_find_attach(t, grp, qp)) {
		err = 0;
		goto out_free;
	}
	if (t->num_attach >= GIFT_MAX_TOTAL_MCAST_QP_ATTACH ||
	    (grp && grp->num_qps >= GIFT_MAX_MCAST_QP_ATTACH) ||
	    (!grp && t->num_groups >= GIFT_MAX_MCAST_GRP)) {
		gift_dbg(gdev, "QP %u: multicast limit reached\n",
			 ibqp->qp_num);
		err = -ENOMEM;
		goto out_free;
	}
	if (!grp) {
		new_grp = kzalloc(sizeof(*new_grp), GFP_KERNEL);
		if (!new_grp) {
			err = -ENOMEM;
			goto out_free;
		}
		new_grp->mgid = *mgid;
		INIT_LIST_HEAD(&new_grp->qps);
		err = gift_mcast_ip(gdev->ndev, mgid, true);
		if (err) {
			kfree(new_grp);
			goto out_free;
		}
		grp = new_grp;
		hash_add_rcu(t->groups, &grp->node, gift_mcast_hash(mgid));
		t->num_groups++;
	}

	/* Released by gift_mcast_attach_free(), a grace period after unlink. */
	refcount_inc(&qp->ref);
	att->qp = qp;
	att->group = grp;
	list_add_tail(&att->qp_entry, &qp->mcast_list);
	list_add_tail_rcu(&att->group_entry, &grp->qps);
	grp->num_qps++;
	t->num_attach++;
	mutex_unlock(&t->lock);
	return 0;

out_free:
	mutex_unlock(&t->lock);
	kfree(att);
	return err;
}

/**
 * gift_detach_mcast() - detach a UD QP from a multicast group
 * @ibqp: UD QP
 * @mgid: the group's GID
 * @mlid: ignored
 *
 * The last QP detached leaves the group on the netdev. Packets already
 * queued to the QP's engine are still delivered. Process context; takes
 * RTNL.
 *
 * Return: 0; -EINVAL for another QP type, a GID that is not multicast, or
 * a QP not attached to the group (as rxe).
 */
static int gift_detach_mcast(struct ib_qp *ibqp, union ib_gid *mgid, u16 mlid)
{
	struct gift_dev *gdev = to_gift_dev(ibqp->device);
	struct gift_mcast_table *t = &gdev->mcast;
	struct gift_mcast_attach *att = NULL;
	struct gift_mcast_group *grp;
	int err;

	err = gift_mcast_check(ibqp, mgid);
	if (err)
		return err;

	mutex_lock(&t->lock);
	grp = gift_mcast_find(t, mgid);
	if (grp)
		att = gift_mcast_find_attach(t, grp, to_gift_qp(ibqp));
	if (att)
		gift_mcast_unlink(gdev, att);
	mutex_unlock(&t->lock);
	return att ? 0 : -EINVAL;
}

/**
 * gift_mcast_qp_destroy() - detach a QP being destroyed from every group
 * @qp: QP in destroy_qp, still published
 *
 * A safety net: ib_core does not destroy an attached QP (see the file
 * comment). Process context; takes RTNL when a group is left.
 */
void gift_mcast_qp_destroy(struct gift_qp *qp)
{
	struct gift_dev *gdev = to_gift_dev(qp->ibqp.device);
	struct gift_mcast_attach *att, *tmp;

	if (list_empty_careful(&qp->mcast_list))
		return;
	WARN_ON_ONCE(1);
	mutex_lock(&gdev->mcast.lock);
	list_for_each_entry_safe(att, tmp, &qp->mcast_list, qp_entry)
		gift_mcast_unlink(gdev, att);
	mutex_unlock(&gdev->mcast.lock);
}

/* The destination address of @skb, as a GID. */
static void gift_mcast_dgid(struct sk_buff *skb, union ib_gid *dgid)
{
	if (gift_pkt(skb)->flags & GIFT_PKT_IPV4)
		ipv6_addr_set_v4mapped(ip_hdr(skb)->daddr,
				       (struct in6_addr *)dgid->raw);
	else
		memcpy(dgid->raw, &ipv6_hdr(skb)->daddr, sizeof(dgid->raw));
}

/**
 * gift_mcast_rcv() - deliver a multicast packet to the group's QPs
 * @gdev: device of the netdev the packet arrived on
 * @skb: validated packet (see gift_net.h) with GIFT_PKT_MCAST or the
 *	multicast QPN; consumed
 *
 * Context: softirq, under rcu_read_lock() (the network layer's).
 */
void gift_mcast_rcv(struct gift_dev *gdev, struct sk_buff *skb)
{
	const struct gift_pkt_info *pkt = gift_pkt(skb);
	struct gift_qp *qp, *prev = NULL;
	struct gift_mcast_attach *att;
	struct gift_mcast_group *grp;
	struct sk_buff *clone;
	union ib_gid mgid;

	if (!(pkt->flags & GIFT_PKT_MCAST) || pkt->qpn != IB_MULTICAST_QPN)
		goto drop;
	/* Once here rather than in every clone. */
	if (skb_linearize(skb))
		goto drop;
	gift_mcast_dgid(skb, &mgid);

	rcu_read_lock();
	grp = gift_mcast_find(&gdev->mcast, &mgid);
	if (grp) {
		list_for_each_entry_rcu(att, &grp->qps, group_entry) {
			qp = att->qp;
			/* Cannot fail: the attachment holds one. */
			if (!refcount_inc_not_zero(&qp->ref))
				continue;
			if (prev) {
				clone = skb_clone(skb, GFP_ATOMIC);
				if (clone)
					gift_proto_rcv_qp(gdev, prev, clone);
				else
					gift_stats_inc(gdev,
						       GIFT_CNT_DROPPED_PKTS);
				gift_qp_put(prev);
			}
			prev = qp;
		}
	}
	rcu_read_unlock();
	if (prev) {
		gift_proto_rcv_qp(gdev, prev, skb);
		gift_qp_put(prev);
		return;
	}
drop:
	ibdev_dbg_ratelimited(&gdev->ibdev,
			      "dropped multicast packet: QPN %#x, no group\n",
			      pkt->qpn);
	gift_stats_inc(gdev, GIFT_CNT_DROPPED_PKTS);
	kfree_skb(skb);
}

/**
 * gift_mcast_table_init() - initialise an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_mcast_table_init(struct gift_mcast_table *table)
{
	mutex_init(&table->lock);
	hash_init(table->groups);
}

/**
 * gift_mcast_table_destroy() - release a table
 * @table: table embedded in struct gift_dev; empty, as every QP is gone
 */
void gift_mcast_table_destroy(struct gift_mcast_table *table)
{
	WARN_ON(table->num_groups || table->num_attach);
	mutex_destroy(&table->lock);
}

/**
 * gift_mcast_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_mcast_init_attr(struct ib_device_attr *attr)
{
	attr->max_mcast_grp = GIFT_MAX_MCAST_GRP;
	attr->max_mcast_qp_attach = GIFT_MAX_MCAST_QP_ATTACH;
	attr->max_total_mcast_qp_attach = GIFT_MAX_TOTAL_MCAST_QP_ATTACH;
}

const struct ib_device_ops gift_mcast_ops = {
	.attach_mcast = gift_attach_mcast,
	.detach_mcast = gift_detach_mcast,
};
