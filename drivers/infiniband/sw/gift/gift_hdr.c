// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift opcode table: for every opcode the driver speaks, the
 * extension headers that follow the BTH (in wire order), the header
 * length, and what the packet means (see struct gift_opcode_info).
 *
 * The layouts are IBTA vol. 1 table 38 ("Packet header layout"):
 * extension headers appear in the order DETH, FETH, RETH, AtomicETH,
 * AETH, AtomicAckETH, ImmDt, IETH, and at most the combinations below
 * occur. All RC opcodes are listed; UC has SEND and RDMA WRITE only
 * (without invalidate), laid out as RC's; for UD only SEND only and SEND
 * only with immediate exist. RD is not supported, so its opcodes are
 * unknown and such packets are dropped.
 *
 * Constant data; no locking.
 */

#include "gift_hdr.h"

#define BTH		GIFT_BTH_BYTES
#define RETH		GIFT_RETH_BYTES
#define AETH		GIFT_AETH_BYTES
#define ATMETH		GIFT_ATMETH_BYTES
#define ATMACK		GIFT_ATMACK_BYTES
#define IMMDT		GIFT_IMMDT_BYTES
#define IETH		GIFT_IETH_BYTES
#define DETH		GIFT_DETH_BYTES
#define FETH		GIFT_FETH_BYTES

#define REQ_DATA	(GIFT_OPF_REQ | GIFT_OPF_PAYLOAD)
#define RESP_DATA	GIFT_OPF_PAYLOAD

const struct gift_opcode_info gift_opcode_table[GIFT_NUM_OPCODES] = {
	/* RC SEND */
	[IB_OPCODE_RC_SEND_FIRST] = {
		.name = "RC_SEND_FIRST",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_FIRST,
		.length = BTH,
	},
	[IB_OPCODE_RC_SEND_MIDDLE] = {
		.name = "RC_SEND_MIDDLE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_MIDDLE,
		.length = BTH,
	},
	[IB_OPCODE_RC_SEND_LAST] = {
		.name = "RC_SEND_LAST",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_LAST,
		.length = BTH,
	},
	[IB_OPCODE_RC_SEND_LAST_WITH_IMMEDIATE] = {
		.name = "RC_SEND_LAST_WITH_IMMEDIATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_LAST | GIFT_OPF_IMM,
		.length = BTH + IMMDT,
		.immdt = BTH,
	},
	[IB_OPCODE_RC_SEND_ONLY] = {
		.name = "RC_SEND_ONLY",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY,
		.length = BTH,
	},
	[IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE] = {
		.name = "RC_SEND_ONLY_WITH_IMMEDIATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY | GIFT_OPF_IMM,
		.length = BTH + IMMDT,
		.immdt = BTH,
	},
	[IB_OPCODE_RC_SEND_LAST_WITH_INVALIDATE] = {
		.name = "RC_SEND_LAST_WITH_INVALIDATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_LAST | GIFT_OPF_INV,
		.length = BTH + IETH,
		.ieth = BTH,
	},
	[IB_OPCODE_RC_SEND_ONLY_WITH_INVALIDATE] = {
		.name = "RC_SEND_ONLY_WITH_INVALIDATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY | GIFT_OPF_INV,
		.length = BTH + IETH,
		.ieth = BTH,
	},

	/* RC RDMA WRITE */
	[IB_OPCODE_RC_RDMA_WRITE_FIRST] = {
		.name = "RC_RDMA_WRITE_FIRST",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_FIRST,
		.length = BTH + RETH,
		.reth = BTH,
	},
	[IB_OPCODE_RC_RDMA_WRITE_MIDDLE] = {
		.name = "RC_RDMA_WRITE_MIDDLE",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_MIDDLE,
		.length = BTH,
	},
	[IB_OPCODE_RC_RDMA_WRITE_LAST] = {
		.name = "RC_RDMA_WRITE_LAST",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_LAST,
		.length = BTH,
	},
	[IB_OPCODE_RC_RDMA_WRITE_LAST_WITH_IMMEDIATE] = {
		.name = "RC_RDMA_WRITE_LAST_WITH_IMMEDIATE",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_LAST | GIFT_OPF_IMM,
		.length = BTH + IMMDT,
		.immdt = BTH,
	},
	[IB_OPCODE_RC_RDMA_WRITE_ONLY] = {
		.name = "RC_RDMA_WRITE_ONLY",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_ONLY,
		.length = BTH + RETH,
		.reth = BTH,
	},
	[IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE] = {
		.name = "RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_ONLY | GIFT_OPF_IMM,
		.length = BTH + RETH + IMMDT,
		.reth = BTH,
		.immdt = BTH + RETH,
	},

	/* RC RDMA READ */
	[IB_OPCODE_RC_RDMA_READ_REQUEST] = {
		.name = "RC_RDMA_READ_REQUEST",
		.cls = GIFT_OPC_READ_REQ,
		.flags = GIFT_OPF_REQ | GIFT_OPF_ONLY,
		.length = BTH + RETH,
		.reth = BTH,
	},
	[IB_OPCODE_RC_RDMA_READ_RESPONSE_FIRST] = {
		.name = "RC_RDMA_READ_RESPONSE_FIRST",
		.cls = GIFT_OPC_READ_RESP,
		.flags = RESP_DATA | GIFT_OPF_FIRST,
		.length = BTH + AETH,
		.aeth = BTH,
	},
	[IB_OPCODE_RC_RDMA_READ_RESPONSE_MIDDLE] = {
		.name = "RC_RDMA_READ_RESPONSE_MIDDLE",
		.cls = GIFT_OPC_READ_RESP,
		.flags = RESP_DATA | GIFT_OPF_MIDDLE,
		.length = BTH,
	},
	[IB_OPCODE_RC_RDMA_READ_RESPONSE_LAST] = {
		.name = "RC_RDMA_READ_RESPONSE_LAST",
		.cls = GIFT_OPC_READ_RESP,
		.flags = RESP_DATA | GIFT_OPF_LAST,
		.length = BTH + AETH,
		.aeth = BTH,
	},
	[IB_OPCODE_RC_RDMA_READ_RESPONSE_ONLY] = {
		.name = "RC_RDMA_READ_RESPONSE_ONLY",
		.cls = GIFT_OPC_READ_RESP,
		.flags = RESP_DATA | GIFT_OPF_ONLY,
		.length = BTH + AETH,
		.aeth = BTH,
	},

	/* RC acknowledgements */
	[IB_OPCODE_RC_ACKNOWLEDGE] = {
		.name = "RC_ACKNOWLEDGE",
		.cls = GIFT_OPC_ACK,
		.flags = GIFT_OPF_ONLY,
		.length = BTH + AETH,
		.aeth = BTH,
	},
	[IB_OPCODE_RC_ATOMIC_ACKNOWLEDGE] = {
		.name = "RC_ATOMIC_ACKNOWLEDGE",
		.cls = GIFT_OPC_ACK,
		.flags = GIFT_OPF_ONLY,
		.length = BTH + AETH + ATMACK,
		.aeth = BTH,
		.atmack = BTH + AETH,
	},

	/* RC atomics */
	[IB_OPCODE_RC_COMPARE_SWAP] = {
		.name = "RC_COMPARE_SWAP",
		.cls = GIFT_OPC_ATOMIC,
		.flags = GIFT_OPF_REQ | GIFT_OPF_ONLY,
		.length = BTH + ATMETH,
		.atmeth = BTH,
	},
	[IB_OPCODE_RC_FETCH_ADD] = {
		.name = "RC_FETCH_ADD",
		.cls = GIFT_OPC_ATOMIC,
		.flags = GIFT_OPF_REQ | GIFT_OPF_ONLY,
		.length = BTH + ATMETH,
		.atmeth = BTH,
	},

	/* RC persistent memory extensions (IBTA 1.5) */
	[IB_OPCODE_RC_FLUSH] = {
		.name = "RC_FLUSH",
		.cls = GIFT_OPC_FLUSH,
		.flags = GIFT_OPF_REQ | GIFT_OPF_ONLY,
		.length = BTH + FETH + RETH,
		.feth = BTH,
		.reth = BTH + FETH,
	},
	[IB_OPCODE_RC_ATOMIC_WRITE] = {
		.name = "RC_ATOMIC_WRITE",
		.cls = GIFT_OPC_ATOMIC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_ONLY,
		.length = BTH + RETH,
		.reth = BTH,
	},

	/*
	 * UC: SEND and RDMA WRITE, each UC opcode laid out as the RC one
	 * with the same operation bits (IBTA table 38).
	 */
	[IB_OPCODE_UC_SEND_FIRST] = {
		.name = "UC_SEND_FIRST",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_FIRST,
		.length = BTH,
	},
	[IB_OPCODE_UC_SEND_MIDDLE] = {
		.name = "UC_SEND_MIDDLE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_MIDDLE,
		.length = BTH,
	},
	[IB_OPCODE_UC_SEND_LAST] = {
		.name = "UC_SEND_LAST",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_LAST,
		.length = BTH,
	},
	[IB_OPCODE_UC_SEND_LAST_WITH_IMMEDIATE] = {
		.name = "UC_SEND_LAST_WITH_IMMEDIATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_LAST | GIFT_OPF_IMM,
		.length = BTH + IMMDT,
		.immdt = BTH,
	},
	[IB_OPCODE_UC_SEND_ONLY] = {
		.name = "UC_SEND_ONLY",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY,
		.length = BTH,
	},
	[IB_OPCODE_UC_SEND_ONLY_WITH_IMMEDIATE] = {
		.name = "UC_SEND_ONLY_WITH_IMMEDIATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY | GIFT_OPF_IMM,
		.length = BTH + IMMDT,
		.immdt = BTH,
	},
	[IB_OPCODE_UC_RDMA_WRITE_FIRST] = {
		.name = "UC_RDMA_WRITE_FIRST",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_FIRST,
		.length = BTH + RETH,
		.reth = BTH,
	},
	[IB_OPCODE_UC_RDMA_WRITE_MIDDLE] = {
		.name = "UC_RDMA_WRITE_MIDDLE",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_MIDDLE,
		.length = BTH,
	},
	[IB_OPCODE_UC_RDMA_WRITE_LAST] = {
		.name = "UC_RDMA_WRITE_LAST",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_LAST,
		.length = BTH,
	},
	[IB_OPCODE_UC_RDMA_WRITE_LAST_WITH_IMMEDIATE] = {
		.name = "UC_RDMA_WRITE_LAST_WITH_IMMEDIATE",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_LAST | GIFT_OPF_IMM,
		.length = BTH + IMMDT,
		.immdt = BTH,
	},
	[IB_OPCODE_UC_RDMA_WRITE_ONLY] = {
		.name = "UC_RDMA_WRITE_ONLY",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_ONLY,
		.length = BTH + RETH,
		.reth = BTH,
	},
	[IB_OPCODE_UC_RDMA_WRITE_ONLY_WITH_IMMEDIATE] = {
		.name = "UC_RDMA_WRITE_ONLY_WITH_IMMEDIATE",
		.cls = GIFT_OPC_WRITE,
		.flags = REQ_DATA | GIFT_OPF_ONLY | GIFT_OPF_IMM,
		.length = BTH + RETH + IMMDT,
		.reth = BTH,
		.immdt = BTH + RETH,
	},

	/* UD */
	[IB_OPCODE_UD_SEND_ONLY] = {
		.name = "UD_SEND_ONLY",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY,
		.length = BTH + DETH,
		.deth = BTH,
	},
	[IB_OPCODE_UD_SEND_ONLY_WITH_IMMEDIATE] = {
		.name = "UD_SEND_ONLY_WITH_IMMEDIATE",
		.cls = GIFT_OPC_SEND,
		.flags = REQ_DATA | GIFT_OPF_ONLY | GIFT_OPF_IMM,
		.length = BTH + DETH + IMMDT,
		.deth = BTH,
		.immdt = BTH + DETH,
	},
};
