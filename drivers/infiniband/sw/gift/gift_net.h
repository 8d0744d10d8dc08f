/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift RoCEv2 network layer: UDP encapsulation on port 4791, the
 * ICRC, and the interface between the IP stack and the protocol engine.
 *
 * Transmit (the engine, any context that may use GFP_ATOMIC):
 *
 *   skb = gift_net_alloc_skb(gdev, av, hdr_len, payload_len, GFP_ATOMIC);
 *   bth = (struct gift_bth *)skb->data;     BTH + extension headers,
 *   gift_bth_init(bth, ...);                hdr_len bytes, zeroed
 *   ... fill the extension headers at skb->data + GIFT_BTH_BYTES ...
 *   memcpy(skb->data + hdr_len, ...);       payload_len bytes, not zeroed
 *   err = gift_net_xmit(gdev, av, skb, sport, route);   consumes skb
 *
 * gift_net_xmit() adds the pad bytes and sets the BTH PadCnt itself,
 * appends the ICRC, prepends UDP and IP headers, routes and sends. The
 * engine never deals with padding or the ICRC. The UDP source port is the
 * caller's: gift_net_udp_sport() derives one per flow.
 *
 * Receive: the UDP socket's encap handler validates a packet, fills
 * struct gift_pkt_info in skb->cb and calls the engine's
 * gift_proto_rcv() (gift_proto.h) in softirq context, under
 * rcu_read_lock(), with a reference on the device held for the duration
 * of the call; the engine consumes the skb. What it may rely on is
 * documented at struct gift_pkt_info.
 */
#ifndef GIFT_NET_H
#define GIFT_NET_H

#include <linux/in6.h>
#include <linux/skbuff.h>
#include <net/dst_cache.h>

#include "gift_hdr.h"

struct gift_dev;
struct gift_av;
struct net;

/* Per-packet flags in gift_pkt_info.flags. */
#define GIFT_PKT_ACK_REQ	BIT(0)	/* BTH AckReq */
#define GIFT_PKT_SE		BIT(1)	/* BTH SE (solicited event) */
#define GIFT_PKT_MIG		BIT(2)	/* BTH MigReq */
#define GIFT_PKT_IPV4		BIT(3)	/* arrived over IPv4 */
#define GIFT_PKT_ECN		BIT(4)	/* BTH FECN set, or IP ECN CE */
#define GIFT_PKT_MCAST		BIT(5)	/* to a multicast IP address */

/**
 * struct gift_pkt_info - a received packet, parsed; lives in skb->cb
 * @gdev: the device the packet is addressed to: the one whose GID table
 *	holds the destination IP as a RoCEv2 GID
 * @saddr: source IP address (IPv4 in v4-mapped form), where replies go
 * @psn: BTH PSN
 * @qpn: BTH destination QP number
 * @payload_len: payload bytes, excluding pad and ICRC (may be 0)
 * @sgid_index: GID table index of the destination address
 * @sport: UDP source port of the packet, host order
 * @opcode: BTH opcode; gift_opcode_info(@opcode) is never NULL
 * @payload_off: offset of the payload from skb->data (the header length
 *	of @opcode)
 * @pad: BTH PadCnt
 * @flags: GIFT_PKT_*
 *
 * When gift_proto_rcv() is called, skb->data points at the BTH and
 * the BTH and all extension headers are in the linear area: read them
 * with the gift_pkt_*() helpers below. The payload is the @payload_len
 * bytes at offset @payload_off and may be in page fragments: copy it with
 * skb_copy_bits(skb, pkt->payload_off, dst, len). Pad bytes and the ICRC
 * follow it in the skb (skb->len == payload_off + payload_len + pad +
 * ICRC). The network and transport header pointers still point at the
 * IP and UDP headers.
 *
 * Guaranteed by the network layer: the ICRC is good, TVer is 0, the
 * opcode is known, the packet holds the opcode's headers, pad and ICRC,
 * and opcodes without payload carry none (and no pad). Nothing else: the
 * P_Key, QPN, PSN, header fields and payload length are for the engine
 * to check.
 *
 * The engine may reuse the cb once it has read what it needs, but must
 * not free or modify the skb's data while someone else holds a clone.
 */
struct gift_pkt_info {
	struct gift_dev *gdev;
	struct in6_addr saddr;
	u32 psn;
	u32 qpn;
	u16 payload_len;
	u16 sgid_index;
	u16 sport;
	u8 opcode;
	u8 payload_off;
	u8 pad;
	u8 flags;
};

static inline struct gift_pkt_info *gift_pkt(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct gift_pkt_info) > sizeof(skb->cb));
	return (struct gift_pkt_info *)skb->cb;
}

static inline const struct gift_opcode_info *gift_pkt_op(struct sk_buff *skb)
{
	return gift_opcode_info(gift_pkt(skb)->opcode);
}

static inline struct gift_bth *gift_pkt_bth(struct sk_buff *skb)
{
	return (struct gift_bth *)skb->data;
}

/* Extension header at @off from the BTH, or NULL when @off is 0 (absent). */
static inline void *gift_pkt_hdr(struct sk_buff *skb, unsigned int off)
{
	return off ? skb->data + off : NULL;
}

static inline struct gift_reth *gift_pkt_reth(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->reth);
}

static inline struct gift_aeth *gift_pkt_aeth(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->aeth);
}

static inline struct gift_atmeth *gift_pkt_atmeth(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->atmeth);
}

static inline struct gift_atmack *gift_pkt_atmack(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->atmack);
}

static inline struct gift_immdt *gift_pkt_immdt(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->immdt);
}

static inline struct gift_ieth *gift_pkt_ieth(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->ieth);
}

static inline struct gift_deth *gift_pkt_deth(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->deth);
}

static inline struct gift_feth *gift_pkt_feth(struct sk_buff *skb)
{
	return gift_pkt_hdr(skb, gift_pkt_op(skb)->feth);
}

/**
 * struct gift_net_route - a sender's cached route (gift_net.c, "Routes")
 * @cache: the route, one per CPU; each use checks it against the
 *	namespace's routing generation (dst_cache, dst_check())
 * @saddr: source address the route is for
 * @daddr: destination address
 * @gid_gen: the device's GID generation (gift_dev.gid_gen) when the
 *	source GID was checked
 * @sport: UDP source port the route was looked up with (policy routing
 *	may match on it)
 * @sgid_index: source GID index
 * @ipv4: the addresses are IPv4
 * @valid: the fields above describe the routes in @cache
 * @loopq: the local shortcut's packets of this sender not delivered yet,
 *	in the order sent (gift_net.c, "Local shortcut"); its own lock
 *	guards @loop_queued and adding or removing @loop_node
 * @loop_node: on the list of the CPU that delivers @loopq while
 *	@loop_queued (struct gift_net_loop.routes)
 * @loop_queued: a CPU is to deliver @loopq: set by the packet that
 *	finds it false, cleared by the CPU that finds @loopq empty
 *
 * One per QP (struct gift_qp_proto.route): RC and UC QPs send to one
 * address vector, UD QPs mostly to a few; a UD QP sending to another AV
 * than the cached one replaces the cache.
 *
 * Locking: the owner's engine lock (gift_qp_proto.lock), which every
 * sender holds with bottom halves disabled (dst_cache needs them off),
 * except for the loop fields as said.
 */
struct gift_net_route {
	struct dst_cache cache;
	struct in6_addr saddr;
	struct in6_addr daddr;
	u32 gid_gen;
	u16 sport;
	u8 sgid_index;
	bool ipv4;
	bool valid;
	struct sk_buff_head loopq;
	struct list_head loop_node;
	bool loop_queued;
};

/* gift_net.c */
int gift_net_route_init(struct gift_net_route *route);
void gift_net_route_reset(struct gift_net_route *route);
void gift_net_route_destroy(struct gift_net_route *route);
void gift_net_gid_changed(struct gift_dev *gdev);
int gift_net_init(void);
void gift_net_exit(void);
int gift_net_dev_add(struct gift_dev *gdev, struct net *net);
void gift_net_dev_del(struct gift_dev *gdev);
struct sk_buff *gift_net_alloc_skb(struct gift_dev *gdev,
				   const struct gift_av *av,
				   unsigned int hdr_len,
				   unsigned int payload_len, gfp_t gfp);
void *gift_net_add_frag(struct sk_buff *skb, u32 len);
bool gift_net_loop_hold(void);
void gift_net_loop_release(void);
int gift_net_xmit(struct gift_dev *gdev, const struct gift_av *av,
		  struct sk_buff *skb, u16 src_port,
		  struct gift_net_route *route);
u16 gift_net_udp_sport(const struct gift_av *av, u32 lqpn, u32 rqpn);

/* gift_icrc.c */
int gift_icrc_check(struct sk_buff *skb);
void gift_icrc_generate(struct sk_buff *skb);

#endif /* GIFT_NET_H */
