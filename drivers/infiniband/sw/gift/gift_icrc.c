// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift RoCEv2 invariant CRC (IBTA vol. 1 section 7.8.1, annex A17).
 *
 * The ICRC is the CRC-32 of Ethernet (reflected polynomial 0xedb88320,
 * initial value ~0, final inversion) over:
 *
 *   8 bytes of 0xff                  stand-in for the IB LRH, fully masked
 *   the IP header, variant fields set to all ones:
 *     IPv4: TOS (DSCP + ECN), TTL, header checksum
 *     IPv6: traffic class, flow label, hop limit
 *   the UDP header, checksum set to all ones
 *   the BTH, its resv8a byte (FECN, BECN, 6 reserved bits) set to all ones
 *   everything after the BTH up to the ICRC: extension headers, payload,
 *   pad bytes
 *
 * and is stored little-endian: the least significant byte of the
 * inverted CRC goes first on the wire, as for the Ethernet FCS.
 *
 * This is bit for bit what stock rdma_rxe computes. rxe seeds the crypto
 * API "crc32" shash (which is crc32_le() without pre- or post-inversion)
 * with 0xdebb20e3 == crc32_le(~0, 8 x 0xff), runs it over the same masked
 * headers and data, inverts the result and stores the u32 in CPU byte
 * order, i.e. little-endian on the x86 and arm64 hosts it runs on. This
 * file uses crc32_le() directly and an explicit little-endian store, which
 * is the same value there and also correct on big-endian hosts.
 *
 * One exception, RC_FLUSH: stock rxe (6.2 to at least 7.2) gives that
 * opcode no payload offset in its opcode table, so its ICRC continues,
 * after the headers, over the packet's first bytes again as if they were
 * payload: the raw BTH, FETH and RETH (32 bytes, resv8a as sent). rxe
 * drops a FLUSH with the IBTA ICRC, unanswered. To interoperate, a FLUSH
 * is sent with rxe's ICRC, and one received is accepted with either
 * (gift_icrc_check()); every other opcode has the IBTA ICRC only.
 *
 * Only the fixed IPv4 header (no options) and an IPv6 header directly
 * followed by UDP (no extension headers) are supported, as in rxe; the
 * receive path drops anything else before computing the ICRC.
 *
 * No state, no locking.
 */

#include <linux/crc32.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/skbuff.h>
#include <linux/udp.h>
#include <linux/unaligned.h>
#include <net/checksum.h>

#include "gift_net.h"

/* The masked LRH of the pseudo header. */
static const u8 gift_icrc_lrh[8] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* Is the packet whose BTH is at @bth_off an RC_FLUSH? */
static bool gift_icrc_is_flush(struct sk_buff *skb, unsigned int bth_off)
{
	return skb->data[bth_off] == IB_OPCODE_RC_FLUSH;
}

/* CRC over @len bytes at @off, whether linear or in fragments. */
static u32 gift_icrc_skb(u32 crc, struct sk_buff *skb, unsigned int off,
			 unsigned int len)
{
	struct skb_seq_state st;
	unsigned int consumed = 0, n;
	const u8 *data;

	if (off + len <= skb_headlen(skb))
		return crc32_le(crc, skb->data + off, len);

	skb_prepare_seq_read(skb, off, off + len, &st);
	while (consumed < len &&
	       (n = skb_seq_read(consumed, &data, &st)) != 0) {
		/* The block may run past the range (into the ICRC itself). */
		n = min(n, len - consumed);
		crc = crc32_le(crc, data, n);
		consumed += n;
	}
	if (consumed >= len)
		skb_abort_seq_read(&st);
	return crc;
}

/*
 * The ICRC of the RoCEv2 packet in @skb: the IP header at the network
 * header, the UDP header at the transport header, the BTH right after it,
 * and the ICRC in the last GIFT_ICRC_BYTES of the skb. skb->data must be
 * at or before the BTH, and the skb must hold at least a BTH and an ICRC
 * after the UDP header. @rxe_flush: for an RC_FLUSH, rxe's ICRC (see the
 * top of this file) instead of the IBTA one.
 */
static u32 gift_icrc(struct sk_buff *skb, bool rxe_flush)
{
	u8 pshdr[sizeof(struct ipv6hdr) + sizeof(struct udphdr) +
		 GIFT_BTH_BYTES] __aligned(4);
	const u8 *nh = skb_network_header(skb);
	unsigned int bth_off, iplen;
	struct udphdr *uh;
	u32 crc;

	if ((nh[0] >> 4) == 4) {
		struct iphdr *iph = (struct iphdr *)pshdr;

		iplen = sizeof(*iph);
		memcpy(iph, nh, iplen);
		iph->tos = 0xff;
		iph->ttl = 0xff;
		iph->check = CSUM_MANGLED_0;
	} else {
		__be32 *vtcfl = (__be32 *)pshdr;

		iplen = sizeof(struct ipv6hdr);
		memcpy(pshdr, nh, iplen);
		/* Keep the version: traffic class and flow label are variant. */
		*vtcfl |= cpu_to_be32(0x0fffffff);
		((struct ipv6hdr *)pshdr)->hop_limit = 0xff;
	}

	uh = (struct udphdr *)(pshdr + iplen);
	memcpy(uh, skb_transport_header(skb), sizeof(*uh));
	uh->check = CSUM_MANGLED_0;

	bth_off = skb_transport_header(skb) + sizeof(*uh) - skb->data;
	memcpy(pshdr + iplen + sizeof(*uh), skb->data + bth_off,
	       GIFT_BTH_BYTES);
	/* resv8a: the byte in front of the destination QPN. */
	pshdr[iplen + sizeof(*uh) + offsetof(struct gift_bth, qpn)] = 0xff;

	crc = crc32_le(~0U, gift_icrc_lrh, sizeof(gift_icrc_lrh));
	crc = crc32_le(crc, pshdr, iplen + sizeof(*uh) + GIFT_BTH_BYTES);
	crc = gift_icrc_skb(crc, skb, bth_off + GIFT_BTH_BYTES,
			    skb->len - bth_off - GIFT_BTH_BYTES -
			    GIFT_ICRC_BYTES);
	if (rxe_flush && gift_icrc_is_flush(skb, bth_off))
		crc = gift_icrc_skb(crc, skb, bth_off,
				    skb->len - bth_off - GIFT_ICRC_BYTES);
	return ~crc;
}

/**
 * gift_icrc_check() - verify the ICRC of a received packet
 * @skb: packet whose network and transport headers are set, with
 *	skb->data at or before the BTH (which must be in the linear area),
 *	and whose last GIFT_ICRC_BYTES are the ICRC. The caller has checked
 *	that the skb holds at least a BTH and an ICRC after the UDP header
 *	and that the IP header has the supported form (see above).
 *
 * An RC_FLUSH may carry the IBTA ICRC or rxe's (see the top of this file).
 *
 * Return: 0 if the ICRC is good, -EBADMSG if not.
 */
int gift_icrc_check(struct sk_buff *skb)
{
	__le32 buf;
	const __le32 *icrc;
	u32 val;

	icrc = skb_header_pointer(skb, skb->len - GIFT_ICRC_BYTES,
				  sizeof(buf), &buf);
	if (WARN_ON_ONCE(!icrc))
		return -EBADMSG;
	val = le32_to_cpu(get_unaligned(icrc));
	if (val == gift_icrc(skb, false) || val == gift_icrc(skb, true))
		return 0;
	return -EBADMSG;
}

/**
 * gift_icrc_generate() - fill in the ICRC of a packet to send
 * @skb: packet with its IP and UDP headers built (network and transport
 *	headers set), and room for the ICRC already put at the end; the pad
 *	bytes and BTH PadCnt must be final. The payload may be in page
 *	fragments (zero-copy transmit); the ICRC's own 4 bytes must be in
 *	the linear area or in a fragment of the sender's own memory.
 *
 * Every ICRC-covered field of the IP and UDP headers must hold its final
 * value (addresses, lengths, IPv4 identification and flags).
 */
void gift_icrc_generate(struct sk_buff *skb)
{
	__le32 icrc = cpu_to_le32(gift_icrc(skb, true));

	if (!skb_is_nonlinear(skb)) {
		memcpy(skb_tail_pointer(skb) - GIFT_ICRC_BYTES, &icrc,
		       sizeof(icrc));
		return;
	}
	WARN_ON_ONCE(skb_store_bits(skb, skb->len - GIFT_ICRC_BYTES, &icrc,
				    sizeof(icrc)));
}
