/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift wire format: the InfiniBand transport headers that RoCEv2
 * carries over UDP (IBTA vol. 1 chapter 9 and annex A17).
 *
 * A RoCEv2 packet, as the network layer builds and parses it:
 *
 *   IPv4 or IPv6 | UDP (dport 4791) | BTH | ext. headers | payload | pad | ICRC
 *
 * The BTH and the extension headers are fixed-size structures of
 * big-endian fields, declared here __packed with their exact wire sizes
 * (checked at build time). The extension headers that follow the BTH, and
 * their order, are a function of the opcode alone; struct gift_opcode_info
 * records them, and gift_opcode_info() looks an opcode up. The payload is
 * padded with 0 to 3 zero bytes (BTH PadCnt) to a multiple of 4 bytes, and
 * the 4-byte invariant CRC closes the packet (gift_icrc.c).
 *
 * The accessors below convert between wire and CPU byte order; they never
 * check lengths. A received packet's headers may only be read once the
 * network layer has validated its length (see gift_net.h).
 *
 * The opcode table is constant; nothing here needs locking.
 */
#ifndef GIFT_HDR_H
#define GIFT_HDR_H

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/nospec.h>
#include <linux/types.h>
#include <asm/byteorder.h>
#include <rdma/ib_pack.h>

#define GIFT_BTH_BYTES		12
#define GIFT_RETH_BYTES		16
#define GIFT_AETH_BYTES		4
#define GIFT_ATMETH_BYTES	28
#define GIFT_ATMACK_BYTES	8
#define GIFT_IMMDT_BYTES	4
#define GIFT_IETH_BYTES		4
#define GIFT_DETH_BYTES		8
#define GIFT_FETH_BYTES		4
#define GIFT_ICRC_BYTES		4
#define GIFT_MAX_PAD		3

/*
 * The longest BTH + extension headers of any opcode: the atomics (40),
 * ahead of RDMA WRITE only with immediate (32).
 */
#define GIFT_MAX_HDR_BYTES	(GIFT_BTH_BYTES + GIFT_ATMETH_BYTES)

/* Transport header version; the only one defined. */
#define GIFT_BTH_TVER		0

#define GIFT_PSN_MASK		0x00ffffff
#define GIFT_QPN_MASK		0x00ffffff

/**
 * struct gift_bth - Base Transport Header
 * @opcode: transport (bits 7-5) and operation (bits 4-0)
 * @flags: SE (bit 7), MigReq (bit 6), PadCnt (bits 5-4), TVer (bits 3-0)
 * @pkey: partition key
 * @qpn: resv8a (FECN bit 31, BECN bit 30, reserved bits 29-24) and the
 *	destination QP number (bits 23-0)
 * @apsn: AckReq (bit 31), reserved (bits 30-24), PSN (bits 23-0)
 *
 * The resv8a byte is a variant field: switches may set FECN/BECN, so it
 * is excluded from the ICRC.
 */
struct gift_bth {
	u8 opcode;
	u8 flags;
	__be16 pkey;
	__be32 qpn;
	__be32 apsn;
} __packed;

/* The transport bits of an opcode (IB_OPCODE_RC, IB_OPCODE_UC, ...). */
#define GIFT_BTH_TRANSPORT_MASK	0xe0

#define GIFT_BTH_SE		0x80
#define GIFT_BTH_MIG		0x40
#define GIFT_BTH_PAD_MASK	0x30
#define GIFT_BTH_PAD_SHIFT	4
#define GIFT_BTH_TVER_MASK	0x0f
#define GIFT_BTH_FECN		0x80000000
#define GIFT_BTH_BECN		0x40000000
#define GIFT_BTH_ACK_REQ	0x80000000

/**
 * struct gift_reth - RDMA Extended Transport Header
 * @va: remote virtual address
 * @rkey: remote key
 * @len: DMA length of the whole message, in bytes
 */
struct gift_reth {
	__be64 va;
	__be32 rkey;
	__be32 len;
} __packed;

/**
 * struct gift_aeth - ACK Extended Transport Header
 * @smsn: syndrome (bits 31-24) and message sequence number (bits 23-0)
 */
struct gift_aeth {
	__be32 smsn;
} __packed;

/*
 * AETH syndrome: bit 7 reserved, bits 6-5 the type, bits 4-0 a value whose
 * meaning depends on the type (credit count, RNR timer, NAK code).
 * Comparing (syndrome & GIFT_AETH_TYPE_MASK) with a type therefore also
 * rejects a set reserved bit.
 */
#define GIFT_AETH_TYPE_MASK	0xe0
#define GIFT_AETH_ACK		0x00
#define GIFT_AETH_RNR_NAK	0x20
#define GIFT_AETH_NAK		0x60
#define GIFT_AETH_VALUE_MASK	0x1f
/* ACK value: no end-to-end credits are advertised. */
#define GIFT_AETH_CREDIT_INVALID	0x1f

/* NAK codes (the value of a GIFT_AETH_NAK syndrome). */
enum gift_nak_code {
	GIFT_NAK_PSN_SEQ_ERR	= 0,
	GIFT_NAK_INVALID_REQ	= 1,
	GIFT_NAK_REM_ACCESS_ERR	= 2,
	GIFT_NAK_REM_OP_ERR	= 3,
	GIFT_NAK_INVALID_RD_REQ	= 4,
};

/**
 * struct gift_atmeth - Atomic Extended Transport Header
 * @va: remote virtual address, 8-byte aligned
 * @rkey: remote key
 * @swap_add: swap value (compare & swap) or addend (fetch & add)
 * @compare: compare value (compare & swap only)
 */
struct gift_atmeth {
	__be64 va;
	__be32 rkey;
	__be64 swap_add;
	__be64 compare;
} __packed;

/**
 * struct gift_atmack - Atomic Acknowledge Extended Transport Header
 * @orig: the original value at the remote address
 */
struct gift_atmack {
	__be64 orig;
} __packed;

/**
 * struct gift_immdt - Immediate Data Extended Transport Header
 * @imm: immediate data, opaque and passed on in network byte order
 */
struct gift_immdt {
	__be32 imm;
} __packed;

/**
 * struct gift_ieth - Invalidate Extended Transport Header
 * @rkey: remote key to invalidate
 */
struct gift_ieth {
	__be32 rkey;
} __packed;

/**
 * struct gift_deth - Datagram Extended Transport Header (UD)
 * @qkey: queue key
 * @sqp: reserved (bits 31-24) and source QP number (bits 23-0)
 */
struct gift_deth {
	__be32 qkey;
	__be32 sqp;
} __packed;

/**
 * struct gift_feth - Flush Extended Transport Header
 * @bits: reserved (bits 31-6), selectivity level (bits 5-4), placement
 *	type (bits 3-0)
 */
struct gift_feth {
	__be32 bits;
} __packed;

static_assert(sizeof(struct gift_bth) == GIFT_BTH_BYTES);
static_assert(sizeof(struct gift_reth) == GIFT_RETH_BYTES);
static_assert(sizeof(struct gift_aeth) == GIFT_AETH_BYTES);
static_assert(sizeof(struct gift_atmeth) == GIFT_ATMETH_BYTES);
static_assert(sizeof(struct gift_atmack) == GIFT_ATMACK_BYTES);
static_assert(sizeof(struct gift_immdt) == GIFT_IMMDT_BYTES);
static_assert(sizeof(struct gift_ieth) == GIFT_IETH_BYTES);
static_assert(sizeof(struct gift_deth) == GIFT_DETH_BYTES);
static_assert(sizeof(struct gift_feth) == GIFT_FETH_BYTES);

/* BTH */

static inline u8 gift_bth_opcode(const struct gift_bth *bth)
{
	return bth->opcode;
}

static inline bool gift_bth_se(const struct gift_bth *bth)
{
	return bth->flags & GIFT_BTH_SE;
}

static inline bool gift_bth_mig(const struct gift_bth *bth)
{
	return bth->flags & GIFT_BTH_MIG;
}

static inline unsigned int gift_bth_pad(const struct gift_bth *bth)
{
	return (bth->flags & GIFT_BTH_PAD_MASK) >> GIFT_BTH_PAD_SHIFT;
}

static inline void gift_bth_set_pad(struct gift_bth *bth, unsigned int pad)
{
	bth->flags = (bth->flags & ~GIFT_BTH_PAD_MASK) |
		     ((pad << GIFT_BTH_PAD_SHIFT) & GIFT_BTH_PAD_MASK);
}

static inline unsigned int gift_bth_tver(const struct gift_bth *bth)
{
	return bth->flags & GIFT_BTH_TVER_MASK;
}

static inline u16 gift_bth_pkey(const struct gift_bth *bth)
{
	return be16_to_cpu(bth->pkey);
}

static inline u32 gift_bth_qpn(const struct gift_bth *bth)
{
	return be32_to_cpu(bth->qpn) & GIFT_QPN_MASK;
}

static inline bool gift_bth_fecn(const struct gift_bth *bth)
{
	return bth->qpn & cpu_to_be32(GIFT_BTH_FECN);
}

static inline bool gift_bth_becn(const struct gift_bth *bth)
{
	return bth->qpn & cpu_to_be32(GIFT_BTH_BECN);
}

static inline bool gift_bth_ack_req(const struct gift_bth *bth)
{
	return bth->apsn & cpu_to_be32(GIFT_BTH_ACK_REQ);
}

static inline u32 gift_bth_psn(const struct gift_bth *bth)
{
	return be32_to_cpu(bth->apsn) & GIFT_PSN_MASK;
}

static inline void gift_bth_set_psn(struct gift_bth *bth, u32 psn)
{
	bth->apsn = (bth->apsn & cpu_to_be32(~GIFT_PSN_MASK)) |
		    cpu_to_be32(psn & GIFT_PSN_MASK);
}

static inline void gift_bth_set_ack_req(struct gift_bth *bth, bool ack_req)
{
	if (ack_req)
		bth->apsn |= cpu_to_be32(GIFT_BTH_ACK_REQ);
	else
		bth->apsn &= cpu_to_be32(~GIFT_BTH_ACK_REQ);
}

/**
 * gift_bth_init() - fill a whole BTH
 * @bth: header to fill
 * @opcode: IB_OPCODE_*
 * @se: solicited event
 * @pkey: partition key
 * @qpn: destination QP number (24 bits)
 * @ack_req: acknowledge request
 * @psn: packet sequence number (24 bits)
 *
 * MigReq, PadCnt, TVer, FECN, BECN and the reserved bits are zero; the
 * network layer sets PadCnt when it pads the packet (gift_net_xmit()).
 */
static inline void gift_bth_init(struct gift_bth *bth, u8 opcode, bool se,
				 u16 pkey, u32 qpn, bool ack_req, u32 psn)
{
	bth->opcode = opcode;
	bth->flags = se ? GIFT_BTH_SE : 0;
	bth->pkey = cpu_to_be16(pkey);
	bth->qpn = cpu_to_be32(qpn & GIFT_QPN_MASK);
	bth->apsn = cpu_to_be32((ack_req ? GIFT_BTH_ACK_REQ : 0) |
				(psn & GIFT_PSN_MASK));
}

/* RETH */

static inline u64 gift_reth_va(const struct gift_reth *reth)
{
	return be64_to_cpu(reth->va);
}

static inline u32 gift_reth_rkey(const struct gift_reth *reth)
{
	return be32_to_cpu(reth->rkey);
}

static inline u32 gift_reth_len(const struct gift_reth *reth)
{
	return be32_to_cpu(reth->len);
}

static inline void gift_reth_set(struct gift_reth *reth, u64 va, u32 rkey,
				 u32 len)
{
	reth->va = cpu_to_be64(va);
	reth->rkey = cpu_to_be32(rkey);
	reth->len = cpu_to_be32(len);
}

/* AETH */

static inline u8 gift_aeth_syndrome(const struct gift_aeth *aeth)
{
	return be32_to_cpu(aeth->smsn) >> 24;
}

static inline u32 gift_aeth_msn(const struct gift_aeth *aeth)
{
	return be32_to_cpu(aeth->smsn) & GIFT_PSN_MASK;
}

static inline void gift_aeth_set(struct gift_aeth *aeth, u8 syndrome, u32 msn)
{
	aeth->smsn = cpu_to_be32(((u32)syndrome << 24) | (msn & GIFT_PSN_MASK));
}

/* AtomicETH */

static inline u64 gift_atmeth_va(const struct gift_atmeth *atmeth)
{
	return be64_to_cpu(atmeth->va);
}

static inline u32 gift_atmeth_rkey(const struct gift_atmeth *atmeth)
{
	return be32_to_cpu(atmeth->rkey);
}

static inline u64 gift_atmeth_swap_add(const struct gift_atmeth *atmeth)
{
	return be64_to_cpu(atmeth->swap_add);
}

static inline u64 gift_atmeth_compare(const struct gift_atmeth *atmeth)
{
	return be64_to_cpu(atmeth->compare);
}

static inline void gift_atmeth_set(struct gift_atmeth *atmeth, u64 va,
				   u32 rkey, u64 swap_add, u64 compare)
{
	atmeth->va = cpu_to_be64(va);
	atmeth->rkey = cpu_to_be32(rkey);
	atmeth->swap_add = cpu_to_be64(swap_add);
	atmeth->compare = cpu_to_be64(compare);
}

/* AtomicAckETH */

static inline u64 gift_atmack_orig(const struct gift_atmack *atmack)
{
	return be64_to_cpu(atmack->orig);
}

static inline void gift_atmack_set(struct gift_atmack *atmack, u64 orig)
{
	atmack->orig = cpu_to_be64(orig);
}

/* ImmDt: kept in network byte order, as ib_wc.ex.imm_data is. */

static inline __be32 gift_immdt_imm(const struct gift_immdt *immdt)
{
	return immdt->imm;
}

static inline void gift_immdt_set(struct gift_immdt *immdt, __be32 imm)
{
	immdt->imm = imm;
}

/* IETH */

static inline u32 gift_ieth_rkey(const struct gift_ieth *ieth)
{
	return be32_to_cpu(ieth->rkey);
}

static inline void gift_ieth_set(struct gift_ieth *ieth, u32 rkey)
{
	ieth->rkey = cpu_to_be32(rkey);
}

/* DETH */

static inline u32 gift_deth_qkey(const struct gift_deth *deth)
{
	return be32_to_cpu(deth->qkey);
}

static inline u32 gift_deth_sqp(const struct gift_deth *deth)
{
	return be32_to_cpu(deth->sqp) & GIFT_QPN_MASK;
}

static inline void gift_deth_set(struct gift_deth *deth, u32 qkey, u32 sqp)
{
	deth->qkey = cpu_to_be32(qkey);
	deth->sqp = cpu_to_be32(sqp & GIFT_QPN_MASK);
}

/* FETH */

#define GIFT_FETH_PLT_MASK	0x0000000f
#define GIFT_FETH_SEL_MASK	0x00000030
#define GIFT_FETH_SEL_SHIFT	4

/* Placement type: IB_FLUSH_GLOBAL and/or IB_FLUSH_PERSISTENT. */
static inline u8 gift_feth_type(const struct gift_feth *feth)
{
	return be32_to_cpu(feth->bits) & GIFT_FETH_PLT_MASK;
}

/* Selectivity level: IB_FLUSH_RANGE or IB_FLUSH_MR. */
static inline u8 gift_feth_level(const struct gift_feth *feth)
{
	return (be32_to_cpu(feth->bits) & GIFT_FETH_SEL_MASK) >>
	       GIFT_FETH_SEL_SHIFT;
}

static inline void gift_feth_set(struct gift_feth *feth, u8 type, u8 level)
{
	feth->bits = cpu_to_be32(((level << GIFT_FETH_SEL_SHIFT) &
				  GIFT_FETH_SEL_MASK) |
				 (type & GIFT_FETH_PLT_MASK));
}

/* The opcode table. */

/**
 * enum gift_op_class - what an opcode does, for the protocol engine
 * @GIFT_OPC_SEND: SEND (any variant); consumes a receive WQE
 * @GIFT_OPC_WRITE: RDMA WRITE (any variant)
 * @GIFT_OPC_READ_REQ: RDMA READ request
 * @GIFT_OPC_READ_RESP: RDMA READ response
 * @GIFT_OPC_ATOMIC: compare & swap or fetch & add request
 * @GIFT_OPC_ACK: ACKNOWLEDGE or ATOMIC ACKNOWLEDGE
 * @GIFT_OPC_FLUSH: FLUSH request
 * @GIFT_OPC_ATOMIC_WRITE: ATOMIC WRITE request
 */
enum gift_op_class {
	GIFT_OPC_SEND,
	GIFT_OPC_WRITE,
	GIFT_OPC_READ_REQ,
	GIFT_OPC_READ_RESP,
	GIFT_OPC_ATOMIC,
	GIFT_OPC_ACK,
	GIFT_OPC_FLUSH,
	GIFT_OPC_ATOMIC_WRITE,
};

/*
 * Opcode flags. A single-packet message is both FIRST and LAST
 * (GIFT_OPF_ONLY): test "starts a message" with GIFT_OPF_FIRST and "ends
 * a message" with GIFT_OPF_LAST.
 */
#define GIFT_OPF_FIRST		BIT(0)	/* first packet of a message */
#define GIFT_OPF_MIDDLE		BIT(1)	/* neither first nor last */
#define GIFT_OPF_LAST		BIT(2)	/* last packet of a message */
#define GIFT_OPF_ONLY		(GIFT_OPF_FIRST | GIFT_OPF_LAST)
#define GIFT_OPF_PAYLOAD	BIT(3)	/* may carry payload (possibly 0 bytes) */
#define GIFT_OPF_REQ		BIT(4)	/* request: handled by the responder */
#define GIFT_OPF_IMM		BIT(5)	/* carries ImmDt */
#define GIFT_OPF_INV		BIT(6)	/* carries IETH (send with invalidate) */

/**
 * struct gift_opcode_info - the packet layout an opcode implies
 * @name: opcode name without IB_OPCODE_, for debug messages
 * @flags: GIFT_OPF_*
 * @cls: enum gift_op_class
 * @length: bytes of the BTH plus all extension headers; the payload (if
 *	any) starts at this offset from the BTH
 * @reth: offset of the RETH from the start of the BTH, 0 when absent
 * @aeth: offset of the AETH, 0 when absent
 * @atmeth: offset of the AtomicETH, 0 when absent
 * @atmack: offset of the AtomicAckETH, 0 when absent
 * @immdt: offset of the ImmDt, 0 when absent
 * @ieth: offset of the IETH, 0 when absent
 * @deth: offset of the DETH, 0 when absent
 * @feth: offset of the FETH, 0 when absent
 *
 * The BTH is always at offset 0, so 0 is free to mean "absent".
 */
struct gift_opcode_info {
	const char *name;
	u16 flags;
	u8 cls;
	u8 length;
	u8 reth;
	u8 aeth;
	u8 atmeth;
	u8 atmack;
	u8 immdt;
	u8 ieth;
	u8 deth;
	u8 feth;
};

/*
 * Every RC opcode, UC SEND and RDMA WRITE, and UD SEND only (with
 * immediate); 0x66 entries.
 */
#define GIFT_NUM_OPCODES	(IB_OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE + 1)

extern const struct gift_opcode_info gift_opcode_table[GIFT_NUM_OPCODES];

/**
 * gift_opcode_info() - look an opcode up
 * @opcode: BTH opcode, possibly from an untrusted packet
 *
 * Return: the opcode's layout, or NULL when the driver does not know the
 * opcode (RD, CNP, reserved and vendor opcodes, and UD opcodes other
 * than SEND only).
 */
static inline const struct gift_opcode_info *gift_opcode_info(unsigned int opcode)
{
	const struct gift_opcode_info *info;

	if (opcode >= GIFT_NUM_OPCODES)
		return NULL;
	info = &gift_opcode_table[array_index_nospec(opcode, GIFT_NUM_OPCODES)];
	return info->length ? info : NULL;
}

#endif /* GIFT_HDR_H */
