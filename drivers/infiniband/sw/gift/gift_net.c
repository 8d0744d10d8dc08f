// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift RoCEv2 network layer (see gift_net.h for the API).
 *
 * Sockets
 * -------
 * RoCEv2 is UDP to port 4791 (ROCE_V2_UDP_DPORT). The module owns one
 * kernel UDP tunnel socket per address family and network namespace,
 * bound to the wildcard address and port 4791: the IPv4 one, and an
 * IPv6-only one unless the kernel has no IPv6. A device sends and receives
 * through the sockets of the namespace its netdev was in when the device
 * was created (gift_dev.net); a netdev that changes namespace takes its
 * device down with it (NETDEV_UNREGISTER), as it does for rxe.
 *
 * init_net's sockets are opened at module load and closed at unload.
 * Stock rdma_rxe binds the same port the same way, so rdma_gift and
 * rdma_rxe cannot both be loaded: whichever loads second fails with
 * -EADDRINUSE (as does rdma_gift when any other socket holds the port).
 * Another namespace's sockets are opened by its first device and closed
 * with its last one, so a namespace without gift devices keeps the port
 * free; creating a device there fails with -EADDRINUSE when the port is
 * taken. A namespace that dies waits, in its pernet exit, until its
 * devices (whose netdevs left it first, so their unregistration is
 * queued) are gone.
 *
 * Receive
 * -------
 * The sockets' encap_rcv hook gets every datagram (softirq, under
 * rcu_read_lock()), after the UDP stack has checked the UDP checksum when
 * there is one and trimmed the skb to the UDP length. It
 *
 *   1. finds the gift device whose GID table holds the destination IP as
 *      a RoCEv2 GID (any netdev: packets to our own addresses come in on
 *      lo); if none does, the packet is counted on the device of the
 *      netdev it arrived on, if there is one, and dropped. A packet to a
 *      multicast address goes to the device of the netdev it arrived on
 *      (that netdev joined the group: gift_mcast.c), flagged
 *      GIFT_PKT_MCAST;
 *   2. checks the packet is long enough for a BTH and an ICRC, and the ICRC
 *      (bad: icrc_errors);
 *   3. checks TVer, the opcode, and that the packet is long enough for the
 *      opcode's headers, its pad and the ICRC (bad: dropped_pkts);
 *   4. fills struct gift_pkt_info in skb->cb and hands the skb to the
 *      engine, gift_proto_rcv(), counting rcvd_pkts and rcvd_bytes.
 *
 * Nothing in a packet is trusted before it has been checked, nothing is
 * logged above debug level, and every drop is counted on the device.
 *
 * Transmit
 * --------
 * The network layer builds the IP and UDP headers itself, computes the
 * ICRC over them and hands the packet to ip_local_out()/ip6_local_out(),
 * as rxe does. udp_tunnel_xmit_skb() cannot be used: the ICRC covers the
 * IPv4 identification field, which iptunnel_xmit() only assigns after the
 * caller has handed the packet over. Packets carry DF, and so an IPv4
 * identification of 0 (ip_select_ident()), and a zero UDP checksum over
 * IPv4 and IPv6 alike, as rxe's do: the ICRC protects the packet, and
 * the receive sockets accept zero checksums over IPv6 (RFC 6935), as
 * rxe's do.
 *
 * Routes
 * ------
 * A sender (a QP: struct gift_qp_proto.route) keeps the route of its
 * address vector in a struct gift_net_route, a dst_cache: no lookup per
 * packet. The route is looked up, and the AV's source GID checked
 * (gift_net_oif(): the entry still holds the AV's source address; the
 * lookup is bound to that GID's netdev), when the cache is empty, when
 * the AV differs from the cached one (a UD QP sending elsewhere, a
 * modify_qp changing the path), and when the cache is stale. Stale
 * means either of
 *
 *   - the route failed dst_check(): the namespace's IPv4 routing
 *     generation moved (every route, rule, address or link change
 *     flushes it: rt_cache_flush()), or the IPv6 route's fib6 node
 *     changed (its cookie), or the route's netdev went away. This is
 *     how sockets cache routes (sk_dst_check()), and the check is the
 *     kernel's own, made at every use;
 *   - the device's GID table changed since the GID was checked
 *     (gift_dev.gid_gen, bumped by the add_gid/del_gid callbacks ib_core
 *     makes after its own inet/inet6 address notifiers): an IPv6
 *     address removal need not change the fib6 node of a route to a
 *     remote host, and ib_core updates GIDs asynchronously, after the
 *     routing change. A removed source GID thus fails the next packet
 *     with -EADDRNOTAVAIL, as a per-packet check did.
 *
 * A failed lookup is not cached: every packet retries it, so traffic
 * resumes as soon as the route is back (a retransmission, for RC).
 *
 * Only a changed AV or GID generation resets the cache
 * (dst_cache_reset_now()). A stale or empty per-CPU entry is only looked
 * up and set again: dst_cache takes an entry as valid only if it was
 * refreshed in a later jiffy than the cache's last reset, so resetting on
 * every miss kept every use missing (a route lookup and a dst allocation
 * per packet, measured in Documentation/rdma_gift.rst, "Where the time
 * goes"). After a reset, uses miss until the jiffy changes.
 *
 * Local shortcut
 * --------------
 * A destination that is a local address, our own included, gets a local
 * route (RTN_LOCAL, RTF_LOCAL), through lo: the IP stack would loop the
 * packet back into this namespace's socket, where it is received like any
 * other. With the module parameter local_shortcut (default on) the packet
 * skips that trip: gift_net_xmit() builds it completely (IP and UDP
 * headers, IPv4 header checksum, ICRC) and queues it on its sender's
 * route (struct gift_net_route.loopq), which a per-CPU bottom-half work
 * item hands to the receive path
 * (gift_net_deliver()), exactly as the socket would, in softirq and
 * under rcu_read_lock(). The receiver sees the same bytes and the same
 * headers: it checks the ICRC, counts rcvd_pkts, finds the device owning
 * the destination GID. The decision is the route's, looked up in the
 * sender's namespace, and delivery is to the devices of that namespace,
 * the ones whose socket the IP stack would have delivered to: a device
 * in another namespace is reached only through the IP stack (over a veth,
 * say), even when it owns the same address. Multicast and broadcast
 * routes are not local and keep the IP path (the IP stack loops group
 * traffic back and sends it out too).
 *
 * What the shortcut skips is the IP stack itself: netfilter hooks
 * (OUTPUT, INPUT), packet sockets on lo (tcpdump -i lo), lo's counters,
 * and the UDP checksum check (our checksums are zero). Like the sockets
 * of the receive side, the bottom-half delivery keeps the engine of the
 * receiving QP out of the sender's: the packet is handled when the
 * sender re-enables bottom halves, as a packet looped through lo would
 * be. A user QP's post delivers them itself instead, on the same CPU,
 * once its engine pass dropped the engine lock and before it re-enables
 * bottom halves (gift_net_loop_hold()): the same order and context,
 * without a bottom-half work item per packet.
 *
 * The queue is the sender's, not the CPU's, so that a QP's packets reach
 * their receiver in the order its engine sent them even when its engine
 * passes run on several CPUs (a poster on one, the receive path of its
 * peer's traffic on another): each pass queues under the QP's engine
 * lock, and one CPU at a time delivers a route's queue, front to back.
 * With a queue per CPU, a pass on one CPU could deliver its packets
 * before an earlier pass's packets that still waited on another CPU, and
 * each such reordering cost a PSN sequence NAK and a go-back-N resend
 * (bidirectional traffic resent a third of its packets).
 *
 * local_shortcut=0 (writable at run time in
 * /sys/module/rdma_gift/parameters/) forces the IP path for every
 * device, e.g. for netfilter rules or packet captures on lo, and so
 * that the tests cover both paths. A module parameter rather than a
 * per-device attribute: ib_core asks new drivers not to add sysfs device
 * attributes (device parameters belong in rdma netlink, which a driver
 * cannot extend), and the reasons to want the IP path are host-wide.
 *
 * Locking: a namespace's socket pointers are set before its first device
 * exists and cleared after its last one is gone, so all paths of a device
 * read them unlocked (see struct gift_net_ns).
 * The device list is walked with gift_dev_get_next(), which takes a
 * reference on each device it returns.
 */

#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/moduleparam.h>
#include <linux/percpu.h>
#include <linux/udp.h>
#include <linux/workqueue.h>
#include <net/dsfield.h>
#include <net/dst.h>
#include <net/dst_cache.h>
#include <net/ip6_fib.h>
#include <net/inet_ecn.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/route.h>
#include <net/udp_tunnel.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_cache.h>

#include "gift.h"
#include "gift_net.h"

/* Room for the link-layer, IP and UDP headers in front of the BTH. */
#define GIFT_NET_HEADROOM	(LL_MAX_HEADER + sizeof(struct ipv6hdr) + \
				 sizeof(struct udphdr))

/* The largest payload whose packet an IPv4 total length can express. */
#define GIFT_NET_MAX_PAYLOAD	(IP_MAX_MTU - sizeof(struct iphdr) - \
				 sizeof(struct udphdr) - GIFT_MAX_HDR_BYTES - \
				 GIFT_MAX_PAD - GIFT_ICRC_BYTES)

static bool local_shortcut = true;
module_param(local_shortcut, bool, 0644);
MODULE_PARM_DESC(local_shortcut,
		 "Hand packets to local addresses straight to the receive path instead of looping them through the IP stack (default: on)");

/*
 * Packets the shortcut queues on one route before it drops (as
 * netif_rx()), and packets one run of the bottom half delivers.
 */
#define GIFT_NET_LOOP_MAX	1000

/**
 * struct gift_net_loop - one CPU's routes with packets for the local
 *	shortcut
 * @routes: routes (struct gift_net_route.loop_node) whose loopq this
 *	CPU delivers: each was put here by the first packet queued on it
 *	(on this CPU) since its queue was last found empty
 * @work: bottom-half work item that delivers them (gift_net_loop_work())
 * @held: a user QP's poster on this CPU delivers @routes itself once its
 *	engine pass is over (gift_net_loop_hold()); meanwhile a queued
 *	packet does not queue @work
 *
 * Locking: @routes and @held belong to this CPU and are read and written
 * only on it with bottom halves disabled (lockdep_assert_in_softirq()),
 * so that @work cannot run on this CPU while @held is set. @work may run
 * on another CPU only after this one went offline, when nothing else
 * uses them.
 */
struct gift_net_loop {
	struct list_head routes;
	struct work_struct work;
	bool held;
};

static DEFINE_PER_CPU(struct gift_net_loop, gift_net_loop);

/**
 * struct gift_net_ns - rdma_gift's state in one network namespace
 * @sock4: the IPv4 RoCEv2 socket, NULL while the namespace has none
 * @sock6: the IPv6 one, NULL without IPv6 or while there is none
 * @ndevs: gift devices whose netdev was in this namespace at creation
 *
 * Locking: gift_net_ns_lock; the namespace's exit also reads @ndevs
 * without it (READ_ONCE()). The socket pointers only change while @ndevs
 * is 0 (and, in init_net, only at module load and unload), so a device
 * reads its namespace's pointers without the lock: they are constant
 * while it exists.
 */
struct gift_net_ns {
	struct socket *sock4;
	struct socket *sock6;
	unsigned int ndevs;
};

static unsigned int gift_net_id;
static DEFINE_MUTEX(gift_net_ns_lock);
/* Woken when a namespace's @ndevs drops to 0; see gift_net_ns_exit(). */
static DECLARE_WAIT_QUEUE_HEAD(gift_net_ns_wq);

static struct gift_net_ns *gift_net_ns(const struct net *net)
{
	return net_generic(net, gift_net_id);
}

/* Receive */

/* The destination address of a received packet, as a GID. */
static void gift_net_dgid(struct sk_buff *skb, union ib_gid *dgid)
{
	if (ip_hdr(skb)->version == 4)
		ipv6_addr_set_v4mapped(ip_hdr(skb)->daddr,
				       (struct in6_addr *)dgid->raw);
	else
		memcpy(dgid->raw, &ipv6_hdr(skb)->daddr, sizeof(dgid->raw));
}

static void gift_net_saddr(struct sk_buff *skb, struct in6_addr *saddr)
{
	if (ip_hdr(skb)->version == 4)
		ipv6_addr_set_v4mapped(ip_hdr(skb)->saddr, saddr);
	else
		*saddr = ipv6_hdr(skb)->saddr;
}

/*
 * The device of namespace @net whose GID table holds @dgid as a RoCEv2
 * GID, referenced
 * (ib_device_put() it), with the GID's index; NULL if no device has it.
 */
static struct gift_dev *gift_net_find_dev(const struct net *net,
					  const union ib_gid *dgid,
					  u16 *sgid_index)
{
	const struct ib_gid_attr *attr;
	struct gift_dev *gdev;

	for (gdev = gift_dev_get_next(NULL); gdev;
	     gdev = gift_dev_get_next(gdev)) {
		/* Namespaces may use the same addresses. */
		if (!net_eq(gdev->net, net))
			continue;
		attr = rdma_find_gid_by_port(&gdev->ibdev, dgid,
					     IB_GID_TYPE_ROCE_UDP_ENCAP,
					     GIFT_PORT, NULL);
		if (!IS_ERR(attr)) {
			*sgid_index = attr->index;
			rdma_put_gid_attr(attr);
			return gdev;
		}
	}
	return NULL;
}

/*
 * The device on the netdev (or the VLAN's real netdev) @skb arrived on,
 * referenced; NULL if there is none, e.g. for packets that came in on lo.
 */
static struct gift_dev *gift_net_ingress_dev(struct sk_buff *skb)
{
	struct net_device *ndev = skb->dev;
	struct gift_dev *gdev;

	if (ndev && is_vlan_dev(ndev))
		ndev = vlan_dev_real_dev(ndev);
	for (gdev = gift_dev_get_next(NULL); gdev;
	     gdev = gift_dev_get_next(gdev)) {
		if (gdev->ndev == ndev)
			return gdev;
	}
	return NULL;
}

/* True if the IP header has the form the ICRC supports (gift_icrc.c). */
static bool gift_net_ip_supported(struct sk_buff *skb)
{
	if (ip_hdr(skb)->version == 4)
		return ip_hdr(skb)->ihl == sizeof(struct iphdr) / 4;
	return skb_transport_header(skb) ==
	       skb_network_header(skb) + sizeof(struct ipv6hdr);
}

static bool gift_net_ip_ce(struct sk_buff *skb)
{
	if (ip_hdr(skb)->version == 4)
		return INET_ECN_is_ce(ip_hdr(skb)->tos);
	return INET_ECN_is_ce(ipv6_get_dsfield(ipv6_hdr(skb)));
}

static bool gift_net_dst_is_mcast(struct sk_buff *skb)
{
	if (ip_hdr(skb)->version == 4)
		return ipv4_is_multicast(ip_hdr(skb)->daddr);
	return ipv6_addr_is_multicast(&ipv6_hdr(skb)->daddr);
}

static void gift_net_fill_pkt(struct gift_dev *gdev, struct sk_buff *skb,
			      const struct gift_opcode_info *op,
			      u16 sgid_index)
{
	struct gift_pkt_info *pkt = gift_pkt(skb);
	const struct gift_bth *bth = gift_pkt_bth(skb);

	memset(pkt, 0, sizeof(*pkt));
	pkt->gdev = gdev;
	gift_net_saddr(skb, &pkt->saddr);
	pkt->psn = gift_bth_psn(bth);
	pkt->qpn = gift_bth_qpn(bth);
	pkt->pad = gift_bth_pad(bth);
	pkt->payload_off = op->length;
	pkt->payload_len = skb->len - op->length - pkt->pad - GIFT_ICRC_BYTES;
	pkt->sgid_index = sgid_index;
	pkt->sport = ntohs(udp_hdr(skb)->source);
	pkt->opcode = gift_bth_opcode(bth);
	if (gift_bth_ack_req(bth))
		pkt->flags |= GIFT_PKT_ACK_REQ;
	if (gift_bth_se(bth))
		pkt->flags |= GIFT_PKT_SE;
	if (gift_bth_mig(bth))
		pkt->flags |= GIFT_PKT_MIG;
	if (ip_hdr(skb)->version == 4)
		pkt->flags |= GIFT_PKT_IPV4;
	if (gift_net_dst_is_mcast(skb))
		pkt->flags |= GIFT_PKT_MCAST;
	if (gift_bth_fecn(bth) || gift_net_ip_ce(skb))
		pkt->flags |= GIFT_PKT_ECN;
}

/*
 * Validates a packet addressed to @gdev and hands it to the engine, or
 * drops and counts it. @skb->data is at the UDP header. Consumes @skb.
 */
static void gift_net_rcv(struct gift_dev *gdev, struct sk_buff *skb,
			 u16 sgid_index)
{
	enum gift_counter counter = GIFT_CNT_DROPPED_PKTS;
	const struct gift_opcode_info *op;
	const struct gift_bth *bth;
	struct in6_addr saddr;
	unsigned int len;
	const char *why;

	if (!gift_net_ip_supported(skb)) {
		why = "IPv4 options or IPv6 extension headers";
		goto drop;
	}
	if (skb->len < sizeof(struct udphdr) + GIFT_BTH_BYTES +
		       GIFT_ICRC_BYTES) {
		why = "shorter than a BTH and an ICRC";
		goto drop;
	}
	if (!pskb_may_pull(skb, sizeof(struct udphdr) + GIFT_BTH_BYTES)) {
		why = "cannot pull the BTH";
		goto drop;
	}
	__skb_pull(skb, sizeof(struct udphdr));
	len = skb->len;

	if (gift_icrc_check(skb)) {
		why = "bad ICRC";
		counter = GIFT_CNT_ICRC_ERRORS;
		goto drop;
	}

	bth = gift_pkt_bth(skb);
	if (gift_bth_tver(bth) != GIFT_BTH_TVER) {
		why = "unknown TVer";
		goto drop;
	}
	op = gift_opcode_info(gift_bth_opcode(bth));
	if (!op) {
		why = "unknown opcode";
		goto drop;
	}
	if (len < op->length + gift_bth_pad(bth) + GIFT_ICRC_BYTES) {
		why = "shorter than its headers, pad and ICRC";
		goto drop;
	}
	if (!(op->flags & GIFT_OPF_PAYLOAD) &&
	    len != op->length + GIFT_ICRC_BYTES) {
		why = "payload or pad on an opcode without payload";
		goto drop;
	}
	if (!pskb_may_pull(skb, op->length)) {
		why = "cannot pull the extension headers";
		goto drop;
	}

	gift_net_fill_pkt(gdev, skb, op, sgid_index);
	gift_stats_inc(gdev, GIFT_CNT_RCVD_PKTS);
	gift_stats_add(gdev, GIFT_CNT_RCVD_BYTES, len);
	gift_proto_rcv(gdev, skb);
	return;

drop:
	gift_net_saddr(skb, &saddr);
	ibdev_dbg_ratelimited(&gdev->ibdev, "dropped packet from %pI6c: %s\n",
			      &saddr, why);
	gift_stats_inc(gdev, counter);
	kfree_skb(skb);
}

/*
 * Receives @skb, a datagram to port 4791 in namespace @net, skb->data at
 * the UDP header: for the device owning its destination (or, for a
 * group, the device of the netdev it came in on). Consumes @skb. Softirq,
 * under rcu_read_lock().
 */
static void gift_net_deliver(const struct net *net, struct sk_buff *skb)
{
	struct gift_dev *gdev;
	union ib_gid dgid;
	u16 sgid_index = 0;

	gift_net_dgid(skb, &dgid);
	/* A group: for the device of the netdev that joined it. */
	if (rdma_is_multicast_addr((struct in6_addr *)dgid.raw))
		gdev = gift_net_ingress_dev(skb);
	else
		gdev = gift_net_find_dev(net, &dgid, &sgid_index);
	if (gdev) {
		gift_net_rcv(gdev, skb, sgid_index);
		ib_device_put(&gdev->ibdev);
		return;
	}

	gdev = gift_net_ingress_dev(skb);
	if (gdev) {
		ibdev_dbg_ratelimited(&gdev->ibdev,
				      "dropped packet to %pI6c: not our GID\n",
				      dgid.raw);
		gift_stats_inc(gdev, GIFT_CNT_DROPPED_PKTS);
		ib_device_put(&gdev->ibdev);
	} else {
		net_dbg_ratelimited("rdma_gift: dropped packet to %pI6c: no device has this GID\n",
				    dgid.raw);
	}
	kfree_skb(skb);
}

/**
 * gift_net_encap_rcv() - receive a datagram sent to port 4791
 * @sk: our UDP tunnel socket
 * @skb: the datagram, skb->data at the UDP header
 *
 * Context: softirq, under rcu_read_lock().
 *
 * Return: 0, the packet is always consumed.
 */
static int gift_net_encap_rcv(struct sock *sk, struct sk_buff *skb)
{
	gift_net_deliver(sock_net(sk), skb);
	return 0;
}

/*
 * Delivers the packets queued on @loop's routes, as the socket would,
 * route after route, until none is left or @max packets went; a route
 * still holding packets goes back to the end of the list. Returns how
 * many packets went. Bottom halves disabled, on @loop's CPU.
 */
static unsigned int gift_net_loop_deliver(struct gift_net_loop *loop,
					  unsigned int max)
{
	struct gift_net_route *route;
	struct net_device *dev;
	unsigned int n = 0;
	struct sk_buff_head q;
	struct sk_buff *skb;
	bool empty;

	__skb_queue_head_init(&q);
	rcu_read_lock();
	while (n < max && !list_empty(&loop->routes)) {
		route = list_first_entry(&loop->routes, struct gift_net_route,
					 loop_node);
		list_del_init(&route->loop_node);
		spin_lock_irq(&route->loopq.lock);
		skb_queue_splice_init(&route->loopq, &q);
		spin_unlock_irq(&route->loopq.lock);
		while ((skb = __skb_dequeue(&q))) {
			dev = skb->dev;
			gift_net_deliver(dev_net(dev), skb);
			dev_put(dev);
			n++;
		}
		/* Its engine may have sent more meanwhile, in order behind. */
		spin_lock_irq(&route->loopq.lock);
		empty = skb_queue_empty(&route->loopq);
		if (empty)
			route->loop_queued = false;
		else
			list_add_tail(&route->loop_node, &loop->routes);
		spin_unlock_irq(&route->loopq.lock);
		/* The route may be freed from here on (gift_net_route_destroy()). */
		if (empty)
			wake_up_var(route);
	}
	rcu_read_unlock();
	return n;
}

/*
 * The local shortcut's bottom half: delivers the routes this CPU listed,
 * in softirq, including what the receivers send meanwhile, up to
 * GIFT_NET_LOOP_MAX packets; then runs again if routes are left.
 */
static void gift_net_loop_work(struct work_struct *work)
{
	struct gift_net_loop *loop = container_of(work, struct gift_net_loop,
						  work);

	gift_net_loop_deliver(loop, GIFT_NET_LOOP_MAX);
	if (!list_empty(&loop->routes))
		queue_work_on(smp_processor_id(), system_bh_wq, &loop->work);
}

/*
 * Packets a poster delivers itself (gift_net_loop_release()) before it
 * leaves the rest to the bottom half: its system call should not run
 * other QPs' traffic without bound.
 */
#define GIFT_NET_LOOP_INLINE	256

/**
 * gift_net_loop_hold() - let the caller deliver this CPU's local packets
 *
 * For a user QP's post, around its engine pass: the packets the pass
 * sends to local QPs wait on this CPU's shortcut queue, without a bottom
 * half scheduled for them, until gift_net_loop_release() delivers them,
 * after the caller dropped its engine lock. This saves the bottom-half
 * work item (queueing, softirq, worker) per packet; the packets go
 * through the same receive path on the same CPU, the receivers' engines
 * still run outside the sender's.
 *
 * Context: bottom halves disabled, from then until gift_net_loop_release().
 *
 * Return: true if the caller holds the queue now and must release it;
 * false if someone on this CPU already does.
 */
bool gift_net_loop_hold(void)
{
	struct gift_net_loop *loop = this_cpu_ptr(&gift_net_loop);

	lockdep_assert_in_softirq();
	if (loop->held)
		return false;
	loop->held = true;
	return true;
}

/**
 * gift_net_loop_release() - deliver the packets a hold kept back
 *
 * Delivers the queues of this CPU's routes, including what the receivers
 * send meanwhile (ACKs, responses, and requests their completers' requesters
 * send), up to GIFT_NET_LOOP_INLINE packets; the bottom half takes what
 * is left.
 *
 * Context: bottom halves disabled, after a gift_net_loop_hold() that
 * returned true, no engine lock held.
 */
void gift_net_loop_release(void)
{
	struct gift_net_loop *loop = this_cpu_ptr(&gift_net_loop);

	lockdep_assert_in_softirq();
	gift_net_loop_deliver(loop, GIFT_NET_LOOP_INLINE);
	loop->held = false;
	if (!list_empty(&loop->routes))
		queue_work_on(smp_processor_id(), system_bh_wq, &loop->work);
}

/*
 * Hands @skb, a complete packet (skb->data at the IP header) on a local
 * route @dst, to the receive path of @dst's namespace, behind the packets
 * @route's owner sent before. Consumes @skb and the reference on @dst.
 * Bottom halves disabled, @route's engine lock held.
 */
static int gift_net_loop_xmit(struct sk_buff *skb, struct dst_entry *dst,
			      struct gift_net_route *route)
{
	struct gift_net_loop *loop = this_cpu_ptr(&gift_net_loop);
	bool queued = false, listed = false;
	unsigned long flags;

	skb->dev = dst->dev;
	dev_hold(skb->dev);
	dst_release(dst);
	skb->pkt_type = PACKET_HOST;
	__skb_pull(skb, skb_transport_offset(skb));

	spin_lock_irqsave(&route->loopq.lock, flags);
	if (skb_queue_len(&route->loopq) < GIFT_NET_LOOP_MAX) {
		__skb_queue_tail(&route->loopq, skb);
		queued = true;
		/* Otherwise the CPU that listed it delivers it. */
		if (!route->loop_queued) {
			route->loop_queued = true;
			list_add_tail(&route->loop_node, &loop->routes);
			listed = true;
		}
	}
	spin_unlock_irqrestore(&route->loopq.lock, flags);
	if (!queued) {
		dev_put(skb->dev);
		kfree_skb(skb);
		return -ENOBUFS;
	}
	/* Held: the poster delivers it, see gift_net_loop_hold(). */
	if (listed && !loop->held)
		queue_work_on(smp_processor_id(), system_bh_wq, &loop->work);
	return 0;
}

/* True if the shortcut may take a packet on route @dst. */
static bool gift_net_loop_ok(struct dst_entry *dst, bool ipv4)
{
	if (!READ_ONCE(local_shortcut))
		return false;
	if (ipv4)
		return container_of(dst, struct rtable, dst)->rt_type ==
		       RTN_LOCAL;
#if IS_ENABLED(CONFIG_IPV6)
	return container_of(dst, struct rt6_info, dst)->rt6i_flags & RTF_LOCAL;
#else
	return false;
#endif
}

/* Transmit */

/**
 * gift_net_alloc_skb() - allocate a packet to send
 * @gdev: sending device
 * @av: address vector the packet will be sent to
 * @hdr_len: bytes of the BTH and extension headers, i.e. the opcode's
 *	gift_opcode_info.length
 * @payload_len: payload bytes, without pad
 * @gfp: allocation flags
 *
 * The returned skb's data starts at the BTH and holds @hdr_len zeroed
 * bytes for the caller's BTH and extension headers, followed by
 * @payload_len uninitialised bytes for the caller's payload (skb->len ==
 * @hdr_len + @payload_len). It reserves headroom for the Ethernet, IP and
 * UDP headers and tailroom for the pad and the ICRC, all of which
 * gift_net_xmit() adds. skb->cb is free for the caller until then.
 *
 * Context: any that @gfp allows.
 *
 * Return: the skb, or NULL without memory or for impossible lengths (a
 * caller bug, which warns).
 */
struct sk_buff *gift_net_alloc_skb(struct gift_dev *gdev,
				   const struct gift_av *av,
				   unsigned int hdr_len,
				   unsigned int payload_len, gfp_t gfp)
{
	struct sk_buff *skb;

	if (WARN_ON_ONCE(hdr_len < GIFT_BTH_BYTES ||
			 hdr_len > GIFT_MAX_HDR_BYTES ||
			 payload_len > GIFT_NET_MAX_PAYLOAD))
		return NULL;

	skb = alloc_skb(GIFT_NET_HEADROOM + hdr_len + payload_len +
			GIFT_MAX_PAD + GIFT_ICRC_BYTES, gfp);
	if (!skb)
		return NULL;
	skb_reserve(skb, GIFT_NET_HEADROOM);
	skb_put_zero(skb, hdr_len);
	skb_put(skb, payload_len);
	skb->protocol = av->ipv4 ? htons(ETH_P_IP) : htons(ETH_P_IPV6);
	return skb;
}

/**
 * gift_net_udp_sport() - UDP source port for a flow
 * @av: the flow's address vector
 * @lqpn: local QP number
 * @rqpn: remote QP number
 *
 * Derived from the AV's flow label, or from the QP numbers when it has
 * none, with ib_core's rdma_get_udp_sport(), as rxe and RoCE NICs do:
 * one port per flow in [0xc000, 0xffff], for ECMP entropy. Receivers
 * accept any source port.
 *
 * Return: the port, host order.
 */
u16 gift_net_udp_sport(const struct gift_av *av, u32 lqpn, u32 rqpn)
{
	return rdma_get_udp_sport(av->flow_label, lqpn, rqpn);
}

/*
 * The ifindex of the netdev of the AV's source GID, which routing must
 * use. -EADDRNOTAVAIL when that GID entry is gone or now holds another
 * address (the source address was removed).
 */
static int gift_net_oif(struct gift_dev *gdev, const struct gift_av *av,
			int *ifindex)
{
	const struct ib_gid_attr *attr;
	struct net_device *ndev;
	int err = 0;

	attr = rdma_get_gid_attr(&gdev->ibdev, GIFT_PORT, av->sgid_index);
	if (IS_ERR(attr))
		return -EADDRNOTAVAIL;
	if (memcmp(attr->gid.raw, av->sgid.raw, sizeof(av->sgid.raw))) {
		err = -EADDRNOTAVAIL;
		goto out;
	}
	rcu_read_lock();
	ndev = rdma_read_gid_attr_ndev_rcu(attr);
	if (IS_ERR(ndev))
		err = -EADDRNOTAVAIL;
	else
		*ifindex = ndev->ifindex;
	rcu_read_unlock();
out:
	rdma_put_gid_attr(attr);
	return err;
}

/* ip_local_out() and ip6_local_out() return -errno or NET_XMIT_*. */
static int gift_net_local_out_err(int ret)
{
	return ret > 0 ? net_xmit_errno(ret) : ret;
}

/* Routes */

/**
 * gift_net_route_init() - set up an empty route cache
 * @route: the cache, in a QP being created
 *
 * Context: process.
 *
 * Return: 0 or -ENOMEM.
 */
int gift_net_route_init(struct gift_net_route *route)
{
	route->valid = false;
	skb_queue_head_init(&route->loopq);
	INIT_LIST_HEAD(&route->loop_node);
	route->loop_queued = false;
	return dst_cache_init(&route->cache, GFP_KERNEL);
}

/**
 * gift_net_route_reset() - forget the cached route
 * @route: the cache; its owner's engine lock held (bottom halves off)
 *
 * The next packet looks its route up again. Cheap when nothing is
 * cached.
 */
void gift_net_route_reset(struct gift_net_route *route)
{
	if (!route->valid)
		return;
	/* The owner's lock excludes every other user of the cache. */
	dst_cache_reset_now(&route->cache);
	route->valid = false;
}

/* Is a CPU still to deliver packets of @route? */
static bool gift_net_route_loop_busy(struct gift_net_route *route)
{
	bool busy;

	spin_lock_irq(&route->loopq.lock);
	busy = route->loop_queued;
	spin_unlock_irq(&route->loopq.lock);
	return busy;
}

/**
 * gift_net_route_destroy() - free a route cache
 * @route: the cache of a QP whose engine is stopped
 *
 * Waits until the local shortcut delivered the packets its owner sent
 * (a bottom half, or a poster's gift_net_loop_release(), does soon).
 *
 * Context: process.
 */
void gift_net_route_destroy(struct gift_net_route *route)
{
	wait_var_event(route, !gift_net_route_loop_busy(route));
	WARN_ON_ONCE(!skb_queue_empty_lockless(&route->loopq));
	dst_cache_destroy(&route->cache);
	route->valid = false;
}

/**
 * gift_net_gid_changed() - the device's GID table changed
 * @gdev: the device
 *
 * Called by ib_core's add_gid/del_gid callbacks, after a removed entry
 * stopped being valid: routes cached before check their source GID
 * again. Fully ordered, pairs with the acquire in gift_net_route_get().
 */
void gift_net_gid_changed(struct gift_dev *gdev)
{
	atomic_inc_return(&gdev->gid_gen);
}

static bool gift_net_route_match(const struct gift_net_route *route,
				 const struct gift_av *av, u16 sport)
{
	return route->valid && route->ipv4 == av->ipv4 &&
	       route->sport == sport &&
	       route->sgid_index == av->sgid_index &&
	       ipv6_addr_equal(&route->daddr, &av->daddr) &&
	       ipv6_addr_equal(&route->saddr, &av->saddr);
}

static struct dst_entry *gift_net_lookup4(struct net *net,
					  const struct gift_av *av, int oif,
					  u16 sport)
{
	struct flowi4 fl4 = {
		.flowi4_oif = oif,
		.flowi4_proto = IPPROTO_UDP,
		.saddr = av->saddr.s6_addr32[3],
		.daddr = av->daddr.s6_addr32[3],
		.fl4_sport = htons(sport),
		.fl4_dport = htons(ROCE_V2_UDP_DPORT),
	};
	struct rtable *rt;

	rt = ip_route_output_key(net, &fl4);
	if (IS_ERR(rt))
		return ERR_CAST(rt);
	return &rt->dst;
}

static struct dst_entry *gift_net_lookup6(struct net *net,
					  const struct gift_av *av, int oif,
					  u16 sport)
{
	struct socket *sock = gift_net_ns(net)->sock6;
	struct flowi6 fl6 = {
		.flowi6_oif = oif,
		.flowi6_proto = IPPROTO_UDP,
		.daddr = av->daddr,
		.saddr = av->saddr,
		.fl6_sport = htons(sport),
		.fl6_dport = htons(ROCE_V2_UDP_DPORT),
	};
	struct dst_entry *dst;
	int err;

	if (!IS_ENABLED(CONFIG_IPV6) || !sock)
		return ERR_PTR(-EAFNOSUPPORT);
	dst = gift_ip6_dst_lookup_flow(net, sock->sk, &fl6);
	if (IS_ERR(dst))
		return dst;
	if (dst->error) {
		err = dst->error;
		dst_release(dst);
		return ERR_PTR(err);
	}
	return dst;
}

/*
 * The route of @av, referenced: @route's if it holds a valid one for
 * @av, else a fresh one (after checking the source GID), which @route
 * then caches. An error pointer when the source GID is gone or routing
 * fails. See "Routes" above.
 */
static struct dst_entry *gift_net_route_get(struct gift_dev *gdev,
					    struct gift_net_route *route,
					    const struct gift_av *av,
					    u16 sport)
{
	u32 gen = atomic_read_acquire(&gdev->gid_gen);
	struct dst_entry *dst = NULL;
	struct in6_addr saddr6;
	__be32 saddr4;
	int oif, err;

	if (gift_net_route_match(route, av, sport) && route->gid_gen == gen) {
		if (av->ipv4) {
			struct rtable *rt;

			rt = dst_cache_get_ip4(&route->cache, &saddr4);
			if (rt)
				dst = &rt->dst;
		} else if (IS_ENABLED(CONFIG_IPV6)) {
			dst = dst_cache_get_ip6(&route->cache, &saddr6);
		}
		if (dst)
			return dst;
		/*
		 * This CPU's entry is empty or stale, and dst_cache dropped
		 * it: look the route up and set the entry again, without a
		 * reset. dst_cache ignores entries set in the jiffy of its
		 * last reset, so a reset on every miss made every use miss.
		 */
	} else {
		gift_net_route_reset(route);
	}

	err = gift_net_oif(gdev, av, &oif);
	if (err)
		return ERR_PTR(err);
	if (av->ipv4)
		dst = gift_net_lookup4(gdev->net, av, oif, sport);
	else
		dst = gift_net_lookup6(gdev->net, av, oif, sport);
	if (IS_ERR(dst))
		return dst;

	if (av->ipv4)
		dst_cache_set_ip4(&route->cache, dst, av->saddr.s6_addr32[3]);
	else if (IS_ENABLED(CONFIG_IPV6))
		dst_cache_set_ip6(&route->cache, dst, &av->saddr);
	route->saddr = av->saddr;
	route->daddr = av->daddr;
	route->gid_gen = gen;
	route->sport = sport;
	route->sgid_index = av->sgid_index;
	route->ipv4 = av->ipv4;
	route->valid = true;
	return dst;
}

static void gift_net_push_udp(struct sk_buff *skb, u16 sport)
{
	struct udphdr *uh;

	__skb_push(skb, sizeof(*uh));
	skb_reset_transport_header(skb);
	uh = udp_hdr(skb);
	uh->source = htons(sport);
	uh->dest = htons(ROCE_V2_UDP_DPORT);
	uh->len = htons(skb->len);
	uh->check = 0;
}

/* Adds UDP and IPv4 headers and the ICRC, sends. Consumes @skb, @dst. */
static int gift_net_xmit4(struct gift_dev *gdev, const struct gift_av *av,
			  struct sk_buff *skb, struct dst_entry *dst,
			  u16 sport, struct gift_net_route *route)
{
	struct sock *sk = gift_net_ns(gdev->net)->sock4->sk;
	struct net *net = gdev->net;
	struct iphdr *iph;

	gift_net_push_udp(skb, sport);
	__skb_push(skb, sizeof(*iph));
	skb_reset_network_header(skb);
	iph = ip_hdr(skb);
	iph->version = 4;
	iph->ihl = sizeof(*iph) / 4;
	iph->tos = av->traffic_class;
	iph->tot_len = htons(skb->len);
	iph->frag_off = htons(IP_DF);
	iph->ttl = av->hop_limit ?: ip4_dst_hoplimit(dst);
	iph->protocol = IPPROTO_UDP;
	iph->check = 0;
	iph->saddr = av->saddr.s6_addr32[3];
	iph->daddr = av->daddr.s6_addr32[3];

	memset(IPCB(skb), 0, sizeof(*IPCB(skb)));
	skb->protocol = htons(ETH_P_IP);
	/* DF and no connected socket: the identification is 0. */
	ip_select_ident(net, skb, NULL);

	gift_icrc_generate(skb);
	if (gift_net_loop_ok(dst, true)) {
		/* What __ip_local_out() would have done. */
		ip_send_check(iph);
		return gift_net_loop_xmit(skb, dst, route);
	}
	skb->dev = dst->dev;
	skb_dst_set(skb, dst);
	return gift_net_local_out_err(ip_local_out(net, sk, skb));
}

/* Adds UDP and IPv6 headers and the ICRC, sends. Consumes @skb, @dst. */
static int gift_net_xmit6(struct gift_dev *gdev, const struct gift_av *av,
			  struct sk_buff *skb, struct dst_entry *dst,
			  u16 sport, struct gift_net_route *route)
{
	struct socket *sock = gift_net_ns(gdev->net)->sock6;
	struct ipv6hdr *ip6h;

	gift_net_push_udp(skb, sport);
	__skb_push(skb, sizeof(*ip6h));
	skb_reset_network_header(skb);
	ip6h = ipv6_hdr(skb);
	ip6_flow_hdr(ip6h, av->traffic_class,
		     cpu_to_be32(av->flow_label) & IPV6_FLOWLABEL_MASK);
	ip6h->payload_len = htons(skb->len - sizeof(*ip6h));
	ip6h->nexthdr = IPPROTO_UDP;
	ip6h->hop_limit = av->hop_limit ?: ip6_dst_hoplimit(dst);
	ip6h->saddr = av->saddr;
	ip6h->daddr = av->daddr;

	memset(IP6CB(skb), 0, sizeof(*IP6CB(skb)));
	skb->protocol = htons(ETH_P_IPV6);

	gift_icrc_generate(skb);
	if (gift_net_loop_ok(dst, false))
		return gift_net_loop_xmit(skb, dst, route);
	skb->dev = dst->dev;
	skb_dst_set(skb, dst);
	return gift_net_local_out_err(ip6_local_out(gdev->net, sock->sk, skb));
}

/**
 * gift_net_add_frag() - append a page fragment of the sender's own memory
 * @skb: packet being built; if filling the fragment fails, its caller
 *	frees it (the fragment's bytes are then undefined)
 * @len: bytes, at most a page
 *
 * For bytes that cannot be attached as they are: payload of ODP MRs, or
 * past the packet's fragment slots (gift_sge_skb()), and the pad and
 * ICRC after a payload of fragments (gift_net_xmit()). Any context.
 *
 * Return: the fragment's bytes, to be filled; NULL without memory.
 */
void *gift_net_add_frag(struct sk_buff *skb, u32 len)
{
	struct page *page;
	void *buf;

	buf = netdev_alloc_frag(len);
	if (!buf)
		return NULL;
	page = virt_to_head_page(buf);
	skb_add_rx_frag(skb, skb_shinfo(skb)->nr_frags, page,
			buf - page_address(page), len, len);
	return buf;
}

/*
 * Appends @tail zero bytes for the pad and the ICRC: in the linear area
 * of a linear skb, else in a page fragment of their own after the
 * payload's (gift_icrc_generate() writes the ICRC there, never into a
 * fragment of MR memory).
 */
static int gift_net_put_tail(struct sk_buff *skb, unsigned int tail)
{
	void *buf;

	if (!skb_is_nonlinear(skb)) {
		if (skb_tailroom(skb) < tail &&
		    pskb_expand_head(skb, 0, tail - skb_tailroom(skb),
				     GFP_ATOMIC))
			return -ENOMEM;
		skb_put_zero(skb, tail);
		return 0;
	}
	buf = gift_net_add_frag(skb, tail);
	if (!buf)
		return -ENOMEM;
	memset(buf, 0, tail);
	return 0;
}

/**
 * gift_net_xmit() - send a packet
 * @gdev: sending device
 * @av: destination, with the source GID to send from
 * @skb: packet from gift_net_alloc_skb() (or any skb laid out the
 *	same way: data at a fully built BTH and extension headers, in the
 *	linear area, then the payload), filled by the caller except for
 *	PadCnt; the payload may follow in page fragments (zero-copy
 *	transmit, gift_sge_skb()), at most MAX_SKB_FRAGS - 1 of them
 * @src_port: UDP source port, host order (gift_net_udp_sport())
 * @route: the sender's route cache (its engine lock held)
 *
 * Pads the payload with zeros to a multiple of 4 bytes and sets the BTH
 * PadCnt accordingly, appends the ICRC, prepends UDP and IP headers (the
 * AV's traffic class, hop limit, or the route's default when it is 0,
 * and flow label), routes from the AV's source address over the netdev of
 * its source GID (the route cached in @route while it is valid), and
 * sends. Local destinations take the local shortcut or, with
 * local_shortcut=0, loop back through lo; both end in our own receive
 * path. skb->cb is overwritten; the skb's data is modified, so it must
 * not be shared with a clone the caller still uses (the skb is made
 * private first if it is).
 *
 * Context: bottom halves disabled (the engine lock); does not sleep.
 *
 * Return: 0 once the IP stack or the local shortcut has taken the packet
 * (delivery is not guaranteed), or a negative errno: -EADDRNOTAVAIL when
 * the source GID is gone, -ENETUNREACH/-EHOSTUNREACH/-EACCES/-EINVAL and
 * others from routing, -ENOBUFS when the IP stack, qdisc or shortcut
 * dropped it, -EMSGSIZE over the path MTU, -EAFNOSUPPORT for IPv6 without
 * IPv6, -ENOMEM. The skb is consumed in every case. Successes count in
 * sent_pkts and sent_bytes, failures in send_errors.
 */
int gift_net_xmit(struct gift_dev *gdev, const struct gift_av *av,
		  struct sk_buff *skb, u16 src_port,
		  struct gift_net_route *route)
{
	unsigned int pad, tail, len;
	struct dst_entry *dst;
	int err;

	lockdep_assert_in_softirq();
	if (WARN_ON_ONCE(skb_headlen(skb) < GIFT_BTH_BYTES ||
			 skb_has_frag_list(skb) ||
			 skb_shinfo(skb)->nr_frags >= MAX_SKB_FRAGS)) {
		err = -EINVAL;
		goto drop;
	}
	/* All headers are multiples of 4 bytes: pad the payload to one. */
	pad = -skb->len & 3;
	tail = pad + GIFT_ICRC_BYTES;
	if (skb_cow_head(skb, GIFT_NET_HEADROOM) ||
	    gift_net_put_tail(skb, tail)) {
		err = -ENOMEM;
		goto drop;
	}
	gift_bth_set_pad((struct gift_bth *)skb->data, pad);
	len = skb->len;

	dst = gift_net_route_get(gdev, route, av, src_port);
	if (IS_ERR(dst)) {
		err = PTR_ERR(dst);
		goto drop;
	}

	if (av->ipv4)
		err = gift_net_xmit4(gdev, av, skb, dst, src_port, route);
	else
		err = gift_net_xmit6(gdev, av, skb, dst, src_port, route);
	if (err)
		goto fail;

	gift_stats_inc(gdev, GIFT_CNT_SENT_PKTS);
	gift_stats_add(gdev, GIFT_CNT_SENT_BYTES, len);
	return 0;

drop:
	kfree_skb(skb);
fail:
	ibdev_dbg_ratelimited(&gdev->ibdev, "send to %pI6c failed: %d\n",
			      &av->daddr, err);
	gift_stats_inc(gdev, GIFT_CNT_SEND_ERRORS);
	return err;
}

/* Setup */

static struct socket *gift_net_sock_create(struct net *net, bool ipv6)
{
	struct udp_port_cfg port_cfg = {
		.family = ipv6 ? AF_INET6 : AF_INET,
		.local_udp_port = htons(ROCE_V2_UDP_DPORT),
		.ipv6_v6only = ipv6,
		/* Accept IPv6 with a zero UDP checksum, which rxe sends. */
		.use_udp6_rx_checksums = 0,
	};
	struct udp_tunnel_sock_cfg tunnel_cfg = {
		/* Any non-zero type: only ESP-in-UDP gives them a meaning. */
		.encap_type = 1,
		.encap_rcv = gift_net_encap_rcv,
	};
	struct socket *sock;
	int err;

	err = udp_sock_create(net, &port_cfg, &sock);
	if (err)
		return ERR_PTR(err);
	gift_setup_udp_tunnel_sock(net, sock, &tunnel_cfg);
	/*
	 * The tunnel setup turns IPv4 multicast loopback off. On, the IP
	 * stack loops a datagram we send to a group the host joined back
	 * to us, so QPs of this host attached to it get it too, as from a
	 * RoCE NIC (gift_mcast.c). IPv6 sockets keep theirs on.
	 */
	if (!ipv6)
		inet_set_bit(MC_LOOP, sock->sk);
	return sock;
}

/* Closes @ns's sockets. udp_tunnel_sock_release() waits for receivers. */
static void gift_net_ns_close(struct gift_net_ns *ns)
{
	lockdep_assert_held(&gift_net_ns_lock);
	if (ns->sock6)
		gift_udp_tunnel_sock_release(ns->sock6);
	ns->sock6 = NULL;
	if (ns->sock4)
		gift_udp_tunnel_sock_release(ns->sock4);
	ns->sock4 = NULL;
}

/*
 * Opens @net's sockets: IPv4, and IPv6 unless the kernel or the
 * namespace has none. -EADDRINUSE when another socket holds the port.
 */
static int gift_net_ns_open(struct net *net, struct gift_net_ns *ns)
{
	struct socket *sock;

	lockdep_assert_held(&gift_net_ns_lock);
	sock = gift_net_sock_create(net, false);
	if (IS_ERR(sock))
		return PTR_ERR(sock);
	ns->sock4 = sock;

	sock = gift_net_sock_create(net, true);
	if (IS_ERR(sock)) {
		if (PTR_ERR(sock) != -EAFNOSUPPORT &&
		    PTR_ERR(sock) != -EPFNOSUPPORT) {
			gift_net_ns_close(ns);
			return PTR_ERR(sock);
		}
		sock = NULL;
	}
	ns->sock6 = sock;
	return 0;
}

/**
 * gift_net_dev_add() - give a new device its namespace's sockets
 * @gdev: device being created, before it can send or receive
 * @net: the namespace of its netdev
 *
 * Opens @net's sockets if it has none yet and sets @gdev->net. Undone by
 * gift_net_dev_del().
 *
 * Context: process; sleeps.
 *
 * Return: 0, or a negative errno: -EADDRINUSE when another socket holds
 * UDP port 4791 in @net (rdma_rxe has a device there, typically).
 */
int gift_net_dev_add(struct gift_dev *gdev, struct net *net)
{
	struct gift_net_ns *ns = gift_net_ns(net);
	int err = 0;

	mutex_lock(&gift_net_ns_lock);
	if (!ns->sock4)
		err = gift_net_ns_open(net, ns);
	if (!err) {
		WRITE_ONCE(ns->ndevs, ns->ndevs + 1);
		gdev->net = net;
	}
	mutex_unlock(&gift_net_ns_lock);
	if (err == -EADDRINUSE)
		pr_debug("UDP port %u is in use in this namespace\n",
			 ROCE_V2_UDP_DPORT);
	return err;
}

/**
 * gift_net_dev_del() - a device that will send and receive no more
 * @gdev: device after gift_net_dev_add(), whose QPs are all gone
 *
 * Closes its namespace's sockets with the namespace's last device,
 * except init_net's (closed at module unload, see gift_net_ns_exit()).
 *
 * Context: process; sleeps.
 */
void gift_net_dev_del(struct gift_dev *gdev)
{
	struct gift_net_ns *ns = gift_net_ns(gdev->net);

	mutex_lock(&gift_net_ns_lock);
	if (WARN_ON_ONCE(!ns->ndevs)) {
		mutex_unlock(&gift_net_ns_lock);
		return;
	}
	WRITE_ONCE(ns->ndevs, ns->ndevs - 1);
	if (!ns->ndevs) {
		if (!net_eq(gdev->net, &init_net))
			gift_net_ns_close(ns);
		wake_up_all(&gift_net_ns_wq);
	}
	mutex_unlock(&gift_net_ns_lock);
}

/*
 * A namespace going away. Its netdevs have already left it (the device
 * pernet exits run before the subsystems'), so the unregistration of
 * each gift device it still has is queued (NETDEV_UNREGISTER): wait for
 * them, they send through this namespace's sockets until they are gone.
 * Module unload (unregister_pernet_subsys()) gets here for every
 * namespace, init_net included, with no device left: this is where
 * init_net's sockets are closed.
 */
static void gift_net_ns_exit(struct net *net)
{
	struct gift_net_ns *ns = gift_net_ns(net);

	/* Written under gift_net_ns_lock, read here without it. */
	wait_event(gift_net_ns_wq, !READ_ONCE(ns->ndevs));
	mutex_lock(&gift_net_ns_lock);
	gift_net_ns_close(ns);
	mutex_unlock(&gift_net_ns_lock);
}

static struct pernet_operations gift_net_ops = {
	.exit = gift_net_ns_exit,
	.id = &gift_net_id,
	.size = sizeof(struct gift_net_ns),
};

/**
 * gift_net_init() - open init_net's RoCEv2 sockets
 *
 * Binds UDP port 4791 in init_net for IPv4, and for IPv6 unless the
 * kernel has none, and registers the per-namespace state. Called at
 * module load, before any device exists.
 *
 * Return: 0, or a negative errno: -EADDRINUSE when another socket holds
 * the port (rdma_rxe loaded, typically); the module load then fails.
 */
int gift_net_init(void)
{
	struct gift_net_ns *ns;
	int cpu, err;

	for_each_possible_cpu(cpu) {
		struct gift_net_loop *loop = per_cpu_ptr(&gift_net_loop, cpu);

		INIT_LIST_HEAD(&loop->routes);
		INIT_WORK(&loop->work, gift_net_loop_work);
	}

	err = register_pernet_subsys(&gift_net_ops);
	if (err)
		return err;

	ns = gift_net_ns(&init_net);
	mutex_lock(&gift_net_ns_lock);
	err = gift_net_ns_open(&init_net, ns);
	mutex_unlock(&gift_net_ns_lock);
	if (err) {
		if (err == -EADDRINUSE)
			pr_err("rdma_gift: UDP port %u is in use (is rdma_rxe loaded?)\n",
			       ROCE_V2_UDP_DPORT);
		else
			pr_err("rdma_gift: cannot open a RoCEv2 socket: %pe\n",
			       ERR_PTR(err));
		unregister_pernet_subsys(&gift_net_ops);
		return err;
	}
	if (!ns->sock6)
		pr_info("rdma_gift: no IPv6, RoCEv2 over IPv4 only\n");
	return 0;
}

/**
 * gift_net_exit() - close the RoCEv2 sockets
 *
 * Called at module unload, after the last device is gone: lets the
 * local shortcut's bottom halves finish, and every namespace's exit
 * closes its sockets.
 */
void gift_net_exit(void)
{
	struct gift_net_loop *loop;
	int cpu;

	/*
	 * No device is left to queue packets for the local shortcut, and
	 * every QP waited for its own (gift_net_route_destroy()).
	 */
	for_each_possible_cpu(cpu) {
		loop = per_cpu_ptr(&gift_net_loop, cpu);
		flush_work(&loop->work);
		WARN_ON_ONCE(!list_empty(&loop->routes));
	}
	unregister_pernet_subsys(&gift_net_ops);
}
