// SPDX-License-Identifier: GPL-2.0
/*
 * gift_fuzz - a structure-aware RoCEv2 packet fuzzer for the receive path
 * of a gift device ($GIFT_IBDEV), run as root in the VM:
 *
 *   gift_fuzz [-t SECONDS] [-s SEED] [-r PACKETS_PER_SECOND] [-v]
 *
 * 1. Corpus. RC QP pairs are created on the device and connected to each
 *    other in loopback through its RoCEv2 IPv4 GID: four "victim" pairs
 *    (MTUs 1024, 256, 4096 and 1024 with an SRQ; short timers) and one
 *    "witness" pair. A scripted run of verified transfers on the victims
 *    sends every opcode the device implements - SEND first/middle/last/
 *    only (with immediate, with invalidate), RDMA WRITE of all segments
 *    (with immediate), RDMA READ requests and single and multi-packet
 *    responses, compare & swap and fetch & add with their ACKs, ACKs and
 *    RNR, PSN sequence, invalid request, remote access and remote
 *    operation NAKs - and every packet is captured on lo (AF_PACKET, UDP
 *    port 4791; loopback traffic to the device's address goes through
 *    lo). The captured IPv4 datagrams are the corpus; a missing opcode
 *    fails the run.
 * 2. Fuzz, for -t seconds at a bounded rate: a corpus packet, or one
 *    synthesised for a live QP (also whole multi-packet messages), is
 *    retargeted at a live victim QP with the PSN it expects (tracked
 *    from the capture) and mutated field-wise - opcode, flags, PadCnt,
 *    P_Key, QPN (live, stale, random), PSN (near, far, wrapped), AckReq,
 *    RETH VA/rkey/length, AETH syndrome/MSN, AtomicETH, ImmDt/IETH,
 *    truncation at every header boundary, extra bytes, payload length,
 *    bit flips, splices - then sent to $GIFT_IP:4791 from a UDP socket
 *    with a recomputed ICRC (gift_icrc(); sometimes a bad one), in corked
 *    pieces, over IPv6 to the device's link-local GID, or from a raw
 *    socket as IPv4 fragments, with options, with ECN CE or a short UDP
 *    length. Meanwhile the victims carry random traffic, pause in SQD,
 *    are moved to ERR by the application now and then, and are reset or
 *    recreated (new QPNs, re-registered MRs: stale ones exist) when they
 *    fail; work requests that stop completing for 15 s (times GIFT_SLOW)
 *    are a hang and fail the run. The witness pair, which the fuzzer
 *    never targets, runs byte-verified transfers that must all succeed.
 *    /dev/kmsg is watched after every packet: a kernel splat stops the
 *    run and the last packets sent are dumped.
 * 3. Check: counts per mutation class, the device's hw_counters, then a
 *    byte-verified SEND, RDMA WRITE, RDMA READ and atomics on a fresh
 *    pair.
 *
 * Exit status 0: no splat seen, every witness and final transfer was
 * exact. The VM runner's health checks (dmesg, kmemleak, pins, unload)
 * judge the rest. -s makes the fuzzer's choices deterministic; the live
 * state they apply to (QPNs, keys, PSNs) depends on timing. -v writes
 * every packet to $GIFT_OUT/gift_fuzz.pkts before sending it, which
 * survives a guest panic. The rate defaults to 2000/s divided by
 * GIFT_SLOW (gift_util.h).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../gift_util.h"

#define ROCE_PORT	GIFT_ROCE_PORT
#define BTH		GIFT_BTH_BYTES
#define ICRC		GIFT_ICRC_BYTES
#define MAX_PKT		65536	/* UDP payload buffers */
#define PKT_ROOM	(MAX_PKT - 64 - ICRC)	/* the most a packet grows to */
#define REG		(256 << 10)	/* one region of an end's buffer */
#define R_SRC		0	/* what it sends */
#define R_RECV		1	/* receive and READ/atomic result target */
#define R_RDMA		2	/* remote WRITE/READ target */
#define R_ATOM		3	/* atomic operands */
#define BUF_LEN		(4 * REG)
#define SENTINEL	0xa5
#define NVICTIM		4
#define NPAIRS		(NVICTIM + 1)	/* the last one is the witness */
#define CORPUS_PER_OP	48
#define RING		64	/* packets remembered for a splat report */
#define RING_BYTES	256
#define MAX_STALE	64
#define RECV_DEPTH	16	/* receives kept posted on victims */
#define SEND_DEPTH	8	/* victim send WRs kept in flight, at most */

/* Wire layout of the opcodes the device knows (drivers/.../gift_hdr.c). */
#define L_PAYLOAD	0x01
#define L_REQ		0x02
#define L_FIRST		0x04
#define L_LAST		0x08

struct layout {
	const char *name;
	uint8_t len;		/* BTH + extension headers */
	uint8_t reth, aeth, atmeth, atmack, immdt, ieth, deth, feth;
	uint8_t flags;
};

#define PRL	(L_PAYLOAD | L_REQ)
static const struct layout layouts[256] = {
	[0x00] = { "SEND_FIRST", 12, .flags = PRL | L_FIRST },
	[0x01] = { "SEND_MIDDLE", 12, .flags = PRL },
	[0x02] = { "SEND_LAST", 12, .flags = PRL | L_LAST },
	[0x03] = { "SEND_LAST_IMM", 16, .immdt = 12, .flags = PRL | L_LAST },
	[0x04] = { "SEND_ONLY", 12, .flags = PRL | L_FIRST | L_LAST },
	[0x05] = { "SEND_ONLY_IMM", 16, .immdt = 12,
		   .flags = PRL | L_FIRST | L_LAST },
	[0x06] = { "WRITE_FIRST", 28, .reth = 12, .flags = PRL | L_FIRST },
	[0x07] = { "WRITE_MIDDLE", 12, .flags = PRL },
	[0x08] = { "WRITE_LAST", 12, .flags = PRL | L_LAST },
	[0x09] = { "WRITE_LAST_IMM", 16, .immdt = 12, .flags = PRL | L_LAST },
	[0x0a] = { "WRITE_ONLY", 28, .reth = 12,
		   .flags = PRL | L_FIRST | L_LAST },
	[0x0b] = { "WRITE_ONLY_IMM", 32, .reth = 12, .immdt = 28,
		   .flags = PRL | L_FIRST | L_LAST },
	[0x0c] = { "READ_REQUEST", 28, .reth = 12,
		   .flags = L_REQ | L_FIRST | L_LAST },
	[0x0d] = { "READ_RESP_FIRST", 16, .aeth = 12,
		   .flags = L_PAYLOAD | L_FIRST },
	[0x0e] = { "READ_RESP_MIDDLE", 12, .flags = L_PAYLOAD },
	[0x0f] = { "READ_RESP_LAST", 16, .aeth = 12,
		   .flags = L_PAYLOAD | L_LAST },
	[0x10] = { "READ_RESP_ONLY", 16, .aeth = 12,
		   .flags = L_PAYLOAD | L_FIRST | L_LAST },
	[0x11] = { "ACK", 16, .aeth = 12, .flags = L_FIRST | L_LAST },
	[0x12] = { "ATOMIC_ACK", 24, .aeth = 12, .atmack = 16,
		   .flags = L_FIRST | L_LAST },
	[0x13] = { "CMP_SWAP", 40, .atmeth = 12,
		   .flags = L_REQ | L_FIRST | L_LAST },
	[0x14] = { "FETCH_ADD", 40, .atmeth = 12,
		   .flags = L_REQ | L_FIRST | L_LAST },
	[0x16] = { "SEND_LAST_INV", 16, .ieth = 12, .flags = PRL | L_LAST },
	[0x17] = { "SEND_ONLY_INV", 16, .ieth = 12,
		   .flags = PRL | L_FIRST | L_LAST },
	[0x1c] = { "FLUSH", 32, .feth = 12, .reth = 16,
		   .flags = L_REQ | L_FIRST | L_LAST },
	[0x1d] = { "ATOMIC_WRITE", 28, .reth = 12,
		   .flags = PRL | L_FIRST | L_LAST },
	[0x64] = { "UD_SEND_ONLY", 20, .deth = 12,
		   .flags = PRL | L_FIRST | L_LAST },
	[0x65] = { "UD_SEND_ONLY_IMM", 24, .deth = 12, .immdt = 20,
		   .flags = PRL | L_FIRST | L_LAST },
};

/* The opcodes the device sends, which the corpus must hold. */
static const uint8_t required_ops[] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16,
	0x17,
};

#define NREQUIRED	(sizeof(required_ops) / sizeof(required_ops[0]))

/* Every opcode with a layout, for opcode mutations. */
static uint8_t known_ops[32];
static int nknown;

/* AETH syndromes the corpus must hold besides plain ACKs. */
static const struct {
	uint8_t mask, val;
	const char *name;
} required_naks[] = {
	{ 0xe0, 0x20, "RNR NAK" },
	{ 0xff, 0x60, "PSN sequence error NAK" },
	{ 0xff, 0x61, "invalid request NAK" },
	{ 0xff, 0x62, "remote access error NAK" },
	{ 0xff, 0x63, "remote operational error NAK" },
};

#define NREQUIRED_NAKS	(sizeof(required_naks) / sizeof(required_naks[0]))

/* Mutation classes, counted per packet sent. */
enum mclass {
	C_REPLAY, C_GEN, C_SEQ, C_OPCODE, C_FLAGS, C_PAD, C_PKEY, C_QPN,
	C_PSN, C_ACKREQ, C_RETH_VA, C_RETH_RKEY, C_RETH_LEN, C_AETH,
	C_ATOMIC, C_IMM_IETH, C_TRUNC, C_EXTEND, C_PAYLEN, C_BITFLIP,
	C_BYTES, C_SPLICE, C_BAD_ICRC, C_CORK, C_IPV6, C_RAW_ID, C_RAW_FRAG,
	C_RAW_OPTS, C_RAW_UDPLEN, C_RAW_ECN, NCLASS
};

static_assert(NCLASS <= 32, "classes are a 32-bit mask");

static const char *const class_names[NCLASS] = {
	"replay", "generated", "sequence", "opcode", "flags", "padcnt",
	"pkey", "qpn", "psn", "ackreq", "reth_va", "reth_rkey", "reth_len",
	"aeth", "atomiceth", "imm_ieth", "truncate", "extend", "payload_len",
	"bitflip", "bytes", "splice", "bad_icrc", "corked", "ipv6",
	"raw_ip_id",
	"raw_fragments", "raw_ip_options", "raw_short_udp_len", "raw_ecn_ce",
};

/* Work request kinds. */
enum {
	OP_SEND, OP_SEND_IMM, OP_WRITE, OP_WRITE_IMM, OP_READ, OP_CMP_SWP,
	OP_FADD, OP_SEND_INV, NOPS
};

static const char *const op_names[NOPS] = {
	"SEND", "SEND_IMM", "WRITE", "WRITE_IMM", "READ", "CMP_SWP", "FADD",
	"SEND_INV",
};

struct pattr {
	enum ibv_mtu mtu;
	uint8_t timeout, retry, rnr_retry, min_rnr, rd_atomic;
	bool srq;
};

static const struct pattr victim_attr[NVICTIM] = {
	{ IBV_MTU_1024, 12, 3, 2, 1, 8, false },
	{ IBV_MTU_256, 10, 2, 7, 1, 4, false },
	{ IBV_MTU_4096, 14, 7, 3, 5, 16, false },
	{ IBV_MTU_1024, 12, 3, 7, 1, 8, true },
};

/* The witness and final pairs; the timeout grows with GIFT_SLOW. */
static struct pattr safe_attr = {
	IBV_MTU_1024, 14, 7, 7, 12, 8, false
};

struct end {
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	uint8_t *buf;
	struct ibv_mr *mr;	/* whole buffer, all access */
	struct ibv_mr *ro;	/* R_SRC region, remote read only */
	uint32_t qpn;
	uint32_t sq_psn;	/* first PSN it sends */
	uint32_t exp_psn;	/* PSN its responder expects next (tracked) */
	uint32_t sent_psn;	/* last request PSN it sent (tracked) */
	int recv_posted;
	int send_out;
};

struct pair {
	int id;
	bool witness;
	struct pattr attr;
	struct ibv_srq *srq;
	int srq_posted;
	struct end e[2];
	bool broken;
	long long progress_us;
	long long sqd_until;	/* e[0] is paused in SQD until then */
	long posted, ok, errors, recreated, sqd, user_err;
};

/* A packet being built: the UDP payload up to, not including, the ICRC. */
struct fpkt {
	uint8_t b[MAX_PKT];
	size_t len;
	uint32_t classes;
	bool bad_icrc;
	bool plain;		/* exactly as built: good ICRC, one datagram */
};

struct corpus_ent {
	uint8_t *b;		/* UDP payload, ICRC included */
	size_t len;
	uint16_t mtu;		/* path MTU of its QP */
};

struct ring_ent {
	long seq;
	uint32_t classes;
	size_t len;
	uint8_t b[RING_BYTES];
};

static struct {
	const char *ibdev;
	const char *ip;
	struct ibv_context *ctx;
	int gid_index;
	union ibv_gid gid;
	struct pair pairs[NPAIRS];
	struct pair final;

	/* injection: IPv4 UDP and raw sockets, IPv6 UDP (or -1) */
	int udp_fd, raw_fd, udp6_fd;
	struct gift_flow flow, flow6;
	struct sockaddr_storage dst, dst6;
	uint8_t addr[4];
	uint16_t sport;

	/* capture */
	int cap_fd;
	bool cap_corpus;
	long cap_pkts;
	struct corpus_ent corpus[256][CORPUS_PER_OP];
	int ncorpus[256];
	int corpus_total;
	bool nak_seen[NREQUIRED_NAKS];

	/* stale identifiers */
	uint32_t stale_qpn[MAX_STALE];
	int nstale_qpn;
	uint32_t stale_rkey[MAX_STALE];
	int nstale_rkey;

	/* fuzzing */
	uint64_t rng;		/* the fuzzer's choices */
	uint64_t trng;		/* live traffic */
	struct fpkt pkt, seqpkt[8];
	long sent, send_failed;
	long class_count[NCLASS];
	struct ring_ent ring[RING];
	long ring_seq;
	int kmsg_fd;
	regex_t splat_re;
	bool splat;
	int log_fd;

	int slow;
	int depth;		/* victim send WRs kept in flight */
	long long t_inject, t_witness, t_rebuild;	/* microseconds */
	const char *why;	/* the verb that failed, for messages */
	bool failed;
	long witness_ops;
} g;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("# FAIL: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	g.failed = true;
}

/* Random numbers: splitmix64, one stream per purpose. */
static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd64(void)
{
	return rnd_next(&g.rng);
}

/* Uniform in [0, n). */
static uint32_t rnd(uint32_t n)
{
	return n ? rnd64() % n : 0;
}

static bool chance(int pct)
{
	return rnd(100) < (uint32_t)pct;
}

static uint32_t trnd(uint32_t n)
{
	return n ? rnd_next(&g.trng) % n : 0;
}

/* Big-endian fields */

static uint16_t get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, v);
}

static const struct layout *layout_of(uint8_t opcode)
{
	return layouts[opcode].len ? &layouts[opcode] : NULL;
}

static uint32_t bth_qpn(const uint8_t *b)
{
	return get32(b + 4) & 0xffffff;
}

static void bth_set_qpn(uint8_t *b, uint32_t qpn)
{
	put32(b + 4, (get32(b + 4) & 0xff000000) | (qpn & 0xffffff));
}

static uint32_t bth_psn(const uint8_t *b)
{
	return get32(b + 8) & 0xffffff;
}

static void bth_set_psn(uint8_t *b, uint32_t psn)
{
	put32(b + 8, (get32(b + 8) & 0xff000000) | (psn & 0xffffff));
}

static void bth_set_pad(uint8_t *b, unsigned int pad)
{
	b[1] = (b[1] & ~0x30) | (pad & 3) << 4;
}

/* BTH: P_Key 0xffff, TVer 0, PadCnt 0, AckReq as asked. */
static void bth_init(uint8_t *b, uint8_t opcode, uint32_t qpn, bool ack_req,
		     uint32_t psn)
{
	memset(b, 0, BTH);
	b[0] = opcode;
	put16(b + 2, 0xffff);
	put32(b + 4, qpn & 0xffffff);
	put32(b + 8, (ack_req ? 0x80000000u : 0) | (psn & 0xffffff));
}

static uint32_t mtu_bytes(enum ibv_mtu mtu)
{
	return 128u << mtu;
}

/* Verbs plumbing */

static uint8_t *region(struct end *e, int r)
{
	return e->buf + (size_t)r * REG;
}

static uint64_t raddr(struct end *e, int r)
{
	return (uintptr_t)region(e, r);
}

static struct end *peer_of(struct pair *p, struct end *e)
{
	return e == &p->e[0] ? &p->e[1] : &p->e[0];
}

static int reg_mrs(struct end *e)
{
	g.why = "reg_mr";
	e->mr = ibv_reg_mr(e->pd, e->buf, BUF_LEN, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_REMOTE_ATOMIC);
	e->ro = ibv_reg_mr(e->pd, region(e, R_SRC), REG,
			   IBV_ACCESS_REMOTE_READ);
	return e->mr && e->ro ? 0 : -1;
}

static void remember(uint32_t *list, int *n, uint32_t v)
{
	if (*n < MAX_STALE)
		list[(*n)++] = v;
	else
		list[trnd(MAX_STALE)] = v;
}

static void dereg_mrs(struct end *e)
{
	if (e->mr) {
		remember(g.stale_rkey, &g.nstale_rkey, e->mr->rkey);
		ibv_dereg_mr(e->mr);
	}
	if (e->ro) {
		remember(g.stale_rkey, &g.nstale_rkey, e->ro->rkey);
		ibv_dereg_mr(e->ro);
	}
	e->mr = NULL;
	e->ro = NULL;
}

static int create_qp(struct pair *p, struct end *e)
{
	struct ibv_qp_init_attr init = {
		.send_cq = e->cq,
		.recv_cq = e->cq,
		.srq = e == &p->e[1] ? p->srq : NULL,
		.cap = {
			.max_send_wr = 64,
			.max_recv_wr = 64,
			.max_send_sge = 2,
			.max_recv_sge = 2,
		},
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
	};

	g.why = "create_qp";
	e->qp = ibv_create_qp(e->pd, &init);
	if (!e->qp)
		return -1;
	e->qpn = e->qp->qp_num;
	return 0;
}

static int end_open(struct pair *p, struct end *e)
{
	e->pd = ibv_alloc_pd(g.ctx);
	if (!e->pd)
		return -1;
	e->cq = ibv_create_cq(g.ctx, 512, NULL, NULL, 0);
	if (!e->cq)
		return -1;
	e->buf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e->buf == MAP_FAILED) {
		e->buf = NULL;
		return -1;
	}
	memset(e->buf, 0, BUF_LEN);
	if (reg_mrs(e))
		return -1;
	if (e == &p->e[1] && p->attr.srq) {
		struct ibv_srq_init_attr sa = {
			.attr = { .max_wr = 64, .max_sge = 2 },
		};

		p->srq = ibv_create_srq(e->pd, &sa);
		if (!p->srq)
			return -1;
	}
	return create_qp(p, e);
}

static void end_close(struct end *e)
{
	if (e->qp)
		ibv_destroy_qp(e->qp);
	dereg_mrs(e);
	if (e->buf)
		munmap(e->buf, BUF_LEN);
	if (e->cq)
		ibv_destroy_cq(e->cq);
	e->qp = NULL;
	e->buf = NULL;
	e->cq = NULL;
}

static void pair_close(struct pair *p)
{
	end_close(&p->e[0]);
	end_close(&p->e[1]);
	if (p->srq)
		ibv_destroy_srq(p->srq);
	if (p->e[0].pd)
		ibv_dealloc_pd(p->e[0].pd);
	if (p->e[1].pd)
		ibv_dealloc_pd(p->e[1].pd);
	memset(p, 0, sizeof(*p));
}

static enum ibv_qp_state qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	return ibv_query_qp(qp, &a, IBV_QP_STATE, &init) ? -1 : a.qp_state;
}

static int modify_reset(struct end *e)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RESET };

	return ibv_modify_qp(e->qp, &a, IBV_QP_STATE);
}

/* RESET -> INIT -> RTR -> RTS, sending from sq_psn, expecting rq_psn. */
static int qp_connect(const struct pattr *pa, struct end *e, uint32_t dqpn,
		      uint32_t rq_psn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC,
	};

	g.why = "modify_qp(INIT)";
	if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = pa->mtu;
	a.dest_qp_num = dqpn;
	a.rq_psn = rq_psn;
	a.max_dest_rd_atomic = pa->rd_atomic;
	a.min_rnr_timer = pa->min_rnr;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = g.gid;
	a.ah_attr.grh.sgid_index = g.gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	g.why = "modify_qp(RTR)";
	if (ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_AV |
			  IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = e->sq_psn;
	a.timeout = pa->timeout;
	a.retry_cnt = pa->retry;
	a.rnr_retry = pa->rnr_retry;
	a.max_rd_atomic = pa->rd_atomic;
	g.why = "modify_qp(RTS)";
	return ibv_modify_qp(e->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
			     IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			     IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* Fresh PSNs, a quarter of them just before the wrap. */
static uint32_t new_psn(void)
{
	if (!trnd(4))
		return 0xffffff - trnd(64);
	return trnd(0x1000000);
}

static int pair_connect(struct pair *p, const struct pattr *pa)
{
	int i;

	for (i = 0; i < 2; i++) {
		p->e[i].sq_psn = new_psn();
		p->e[i].send_out = 0;
		p->e[i].recv_posted = 0;
	}
	for (i = 0; i < 2; i++) {
		struct end *e = &p->e[i], *o = &p->e[!i];

		if (qp_connect(pa, e, o->qpn, o->sq_psn))
			return -1;
		e->exp_psn = o->sq_psn;
		e->sent_psn = (e->sq_psn - 1) & 0xffffff;
	}
	p->broken = false;
	p->progress_us = gift_now_us();
	return 0;
}

static int pair_open(struct pair *p, int id, const struct pattr *pa,
		     bool witness)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->witness = witness;
	p->attr = *pa;
	if (end_open(p, &p->e[0]) || end_open(p, &p->e[1]))
		return -1;
	return pair_connect(p, pa);
}

static void drain_cq(struct ibv_cq *cq)
{
	struct ibv_wc wc[16];

	while (ibv_poll_cq(cq, 16, wc) > 0)
		;
}

/*
 * After an error or a stall: reset both QPs and connect them again, now
 * and then destroying them (their QPNs become stale) or re-registering
 * their MRs (stale rkeys). The SRQ pair is always rebuilt with a new SRQ:
 * its WQEs cannot be taken back.
 */
static int pair_recreate(struct pair *p)
{
	bool renew = p->attr.srq || !trnd(3);
	int i;

	/*
	 * Completions are polled before a QP is destroyed: the debug lane
	 * may run a module from before 8e5122b, where the CQ kept them
	 * pointing at the freed QP (qp_test covers that bug now).
	 */
	for (i = 0; i < 2; i++) {
		if (modify_reset(&p->e[i]))
			printf("# pair %d: modify_qp(RESET) from state %d: %s\n",
			       p->id, qp_state(p->e[i].qp), strerror(errno));
		drain_cq(p->e[i].cq);
	}
	if (renew) {
		for (i = 0; i < 2; i++) {
			remember(g.stale_qpn, &g.nstale_qpn, p->e[i].qpn);
			ibv_destroy_qp(p->e[i].qp);
			p->e[i].qp = NULL;
		}
		if (p->srq) {
			ibv_destroy_srq(p->srq);
			p->srq = NULL;
		}
	}
	for (i = 0; i < 2; i++) {
		drain_cq(p->e[i].cq);
		if (!trnd(5)) {
			dereg_mrs(&p->e[i]);
			if (reg_mrs(&p->e[i]))
				return -1;
		}
	}
	if (renew) {
		if (p->attr.srq) {
			struct ibv_srq_init_attr sa = {
				.attr = { .max_wr = 64, .max_sge = 2 },
			};

			g.why = "create_srq";
			p->srq = ibv_create_srq(p->e[1].pd, &sa);
			if (!p->srq)
				return -1;
		}
		p->srq_posted = 0;
		for (i = 0; i < 2; i++)
			if (create_qp(p, &p->e[i]))
				return -1;
	}
	p->recreated++;
	return pair_connect(p, &p->attr);
}

/* Posting */

static int post_recv(struct pair *p, struct end *e, uint32_t lkey)
{
	struct ibv_sge sge = {
		.addr = raddr(e, R_RECV),
		.length = REG,
		.lkey = lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = 0x5ec0,
		.sg_list = &sge,
		.num_sge = 1,
	}, *bad;

	if (e == &p->e[1] && p->srq)
		return ibv_post_srq_recv(p->srq, &wr, &bad);
	return ibv_post_recv(e->qp, &wr, &bad);
}

/*
 * Posts op of len bytes from s to r: sources at s's R_SRC, remote
 * targets at r's R_RDMA + roff (R_ATOM + roff for atomics), READ and
 * atomic results at s's R_RECV. a0: immediate, rkey to invalidate,
 * compare or add value; a1: swap value.
 */
static int post_op(struct end *s, struct end *r, int op, size_t len,
		   size_t roff, uint64_t a0, uint64_t a1)
{
	struct ibv_sge sge = {
		.addr = raddr(s, R_SRC),
		.length = len,
		.lkey = s->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = op,
		.sg_list = &sge,
		.num_sge = len ? 1 : 0,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;

	switch (op) {
	case OP_SEND:
		wr.opcode = IBV_WR_SEND;
		break;
	case OP_SEND_IMM:
		wr.opcode = IBV_WR_SEND_WITH_IMM;
		wr.imm_data = htonl(a0);
		break;
	case OP_SEND_INV:
		wr.opcode = IBV_WR_SEND_WITH_INV;
		wr.invalidate_rkey = a0;
		break;
	case OP_WRITE:
	case OP_WRITE_IMM:
		wr.opcode = op == OP_WRITE ? IBV_WR_RDMA_WRITE :
					     IBV_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = htonl(a0);
		wr.wr.rdma.remote_addr = raddr(r, R_RDMA) + roff;
		wr.wr.rdma.rkey = r->mr->rkey;
		break;
	case OP_READ:
		wr.opcode = IBV_WR_RDMA_READ;
		sge.addr = raddr(s, R_RECV);
		wr.wr.rdma.remote_addr = raddr(r, R_RDMA) + roff;
		wr.wr.rdma.rkey = r->mr->rkey;
		break;
	default:
		wr.opcode = op == OP_CMP_SWP ? IBV_WR_ATOMIC_CMP_AND_SWP :
					       IBV_WR_ATOMIC_FETCH_AND_ADD;
		sge.addr = raddr(s, R_RECV);
		sge.length = 8;
		wr.num_sge = 1;
		wr.wr.atomic.remote_addr = raddr(r, R_ATOM) + roff;
		wr.wr.atomic.rkey = r->mr->rkey;
		wr.wr.atomic.compare_add = a0;
		wr.wr.atomic.swap = a1;
		break;
	}
	return ibv_post_send(s->qp, &wr, &bad);
}

static bool op_needs_recv(int op)
{
	return op == OP_SEND || op == OP_SEND_IMM || op == OP_SEND_INV ||
	       op == OP_WRITE_IMM;
}

static bool op_is_atomic(int op)
{
	return op == OP_CMP_SWP || op == OP_FADD;
}

/* Capture: every RoCEv2 packet on lo, for the corpus and PSN tracking */

static struct end *end_by_qpn(uint32_t qpn, struct pair **pp)
{
	int i, k;

	for (i = 0; i < NPAIRS; i++) {
		for (k = 0; k < 2; k++) {
			struct pair *p = &g.pairs[i];

			if (p->e[k].qp && p->e[k].qpn == qpn) {
				if (pp)
					*pp = p;
				return &p->e[k];
			}
		}
	}
	return NULL;
}

static int cap_open(void)
{
	/* IPv4, UDP, no IP options, destination port 4791. */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x45, 0, 5),
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
		BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 22),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ROCE_PORT, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0xffff),
		BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_fprog prog = {
		.len = sizeof(code) / sizeof(code[0]),
		.filter = code,
	};
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(0x0800),
		.sll_ifindex = if_nametoindex("lo"),
	};
	int fd, size = 8 << 20;

	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    htons(0x0800));
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog,
		       sizeof(prog)) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void corpus_add(const uint8_t *b, size_t len, uint16_t mtu)
{
	struct corpus_ent *c;
	uint8_t op = b[0];

	if (g.ncorpus[op] >= CORPUS_PER_OP)
		return;
	c = &g.corpus[op][g.ncorpus[op]];
	c->b = malloc(len);
	if (!c->b)
		return;
	memcpy(c->b, b, len);
	c->len = len;
	c->mtu = mtu;
	g.ncorpus[op]++;
	g.corpus_total++;
}

static void cap_one(const uint8_t *ip, size_t n)
{
	const struct layout *l;
	const uint8_t *b;
	struct pair *p = NULL;
	struct end *t, *s;
	size_t len;
	uint32_t psn, npsn = 1, mtu;
	unsigned int k;

	if (n < 20 + 8 + BTH + ICRC || get16(ip + 20 + 2) != ROCE_PORT)
		return;
	/* Our own injections are not the device's traffic. */
	if (get16(ip + 20) == g.sport)
		return;
	len = get16(ip + 20 + 4);
	if (len < 8 + BTH + ICRC || 20 + len > n)
		return;
	len -= 8;
	b = ip + 28;
	g.cap_pkts++;
	l = layout_of(b[0]);
	t = end_by_qpn(bth_qpn(b), &p);
	if (!l || !t)
		return;
	mtu = mtu_bytes(p->attr.mtu);
	s = peer_of(p, t);
	psn = bth_psn(b);
	if (l->flags & L_REQ) {
		if (b[0] == 0x0c && len >= 28 + ICRC)
			npsn = get32(b + 12 + 12) ?
			       (get32(b + 12 + 12) + mtu - 1) / mtu : 1;
		t->exp_psn = (psn + npsn) & 0xffffff;
		s->sent_psn = (psn + npsn - 1) & 0xffffff;
	}
	if (!g.cap_corpus)
		return;
	if (l->aeth && len >= l->aeth + 4u + ICRC)
		for (k = 0; k < NREQUIRED_NAKS; k++)
			if ((b[l->aeth] & required_naks[k].mask) ==
			    required_naks[k].val)
				g.nak_seen[k] = true;
	corpus_add(b, len, mtu);
}

static void cap_drain(void)
{
	static uint8_t buf[70000];
	struct sockaddr_ll from;
	socklen_t fl;
	ssize_t n;

	for (;;) {
		fl = sizeof(from);
		n = recvfrom(g.cap_fd, buf, sizeof(buf), 0,
			     (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		/* lo shows each packet twice: leaving, and arriving. */
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		cap_one(buf, n);
	}
}

/* Kernel log watch */

static int kmsg_open(void)
{
	static const char re[] =
		"(^|[^A-Za-z])BUG[: ]|WARNING:|Oops|general protection fault|"
		"Kernel panic|possible circular locking|"
		"possible recursive locking|inconsistent lock state|"
		"suspicious RCU usage|INFO: trying to register non-static key|"
		"DEBUG_LOCKS_WARN_ON|KASAN:|UBSAN:|KFENCE:|ODEBUG:|"
		"refcount_t:|list_add corruption|list_del corruption|"
		"Call Trace:|blocked for more than|detected stalls";

	if (regcomp(&g.splat_re, re, REG_EXTENDED | REG_NOSUB))
		return -1;
	g.kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (g.kmsg_fd < 0)
		return -1;
	lseek(g.kmsg_fd, 0, SEEK_END);
	return 0;
}

/* True when a splat was logged since the last call. */
static bool kmsg_splat(void)
{
	char rec[8192];
	bool found = false;
	ssize_t n;
	char *msg;

	for (;;) {
		n = read(g.kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records */
		if (n <= 0)
			break;
		rec[n] = 0;
		msg = strchr(rec, ';');
		msg = msg ? msg + 1 : rec;
		if (!regexec(&g.splat_re, msg, 0, NULL, 0)) {
			if (!found)
				printf("# kernel: %s", msg);
			found = true;
		}
	}
	return found;
}

static void hexdump(FILE *f, const uint8_t *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!(i % 32))
			fprintf(f, "%s#     ", i ? "\n" : "");
		fprintf(f, "%02x", b[i]);
	}
	fprintf(f, "\n");
}

static void classes_str(uint32_t cls, char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < NCLASS && off < len; i++)
		if (cls & (1u << i))
			off += snprintf(buf + off, len - off, "%s%s",
					off ? "," : "", class_names[i]);
}

/* The last packets sent, oldest first, to @f. */
static void ring_dump(FILE *f)
{
	long first = g.ring_seq > RING ? g.ring_seq - RING : 0, s;
	char cls[256];

	fprintf(f, "# last %ld packets sent (UDP payloads), oldest first:\n",
		g.ring_seq - first);
	for (s = first; s < g.ring_seq; s++) {
		struct ring_ent *r = &g.ring[s % RING];

		classes_str(r->classes, cls, sizeof(cls));
		fprintf(f, "# pkt %ld len %zu [%s]\n", r->seq, r->len, cls);
		hexdump(f, r->b, r->len < RING_BYTES ? r->len : RING_BYTES);
	}
}

static void splat_report(void)
{
	char path[512];
	const char *out = getenv("GIFT_OUT");
	FILE *f;

	g.splat = true;
	fail("kernel splat after packet %ld", g.ring_seq - 1);
	ring_dump(stdout);
	if (!out)
		return;
	snprintf(path, sizeof(path), "%s/gift_fuzz-splat.txt", out);
	f = fopen(path, "w");
	if (f) {
		ring_dump(f);
		fclose(f);
		printf("# also in %s\n", path);
	}
}

/* Sending */

static void record(const uint8_t *b, size_t len, uint32_t classes)
{
	struct ring_ent *r = &g.ring[g.ring_seq % RING];
	int i;

	r->seq = g.ring_seq++;
	r->classes = classes;
	r->len = len;
	memcpy(r->b, b, len < RING_BYTES ? len : RING_BYTES);
	g.sent++;
	for (i = 0; i < NCLASS; i++)
		if (classes & (1u << i))
			g.class_count[i]++;
	if (g.log_fd >= 0) {
		char line[128 + 2 * 2048], cls[256];
		size_t n, k;

		classes_str(classes, cls, sizeof(cls));
		n = snprintf(line, sizeof(line), "%ld %zu %s ", r->seq, len,
			     cls);
		for (k = 0; k < len && k < 2048; k++)
			n += snprintf(line + n, sizeof(line) - n, "%02x",
				      b[k]);
		line[n++] = '\n';
		if (write(g.log_fd, line, n) < 0)
			g.log_fd = -1;
	}
}

/* The device's IPv6 link-local address, once usable (DAD done). */
static bool ll_open(const void *arg)
{
	const char *ifname = arg;
	struct ifaddrs *ifa, *i;
	char addr[INET6_ADDRSTRLEN];
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		struct sockaddr_in6 *sin6 = (void *)i->ifa_addr;

		if (!sin6 || sin6->sin6_family != AF_INET6 ||
		    strcmp(i->ifa_name, ifname) ||
		    !IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
			continue;
		found = inet_ntop(AF_INET6, &sin6->sin6_addr, addr,
				  sizeof(addr));
	}
	freeifaddrs(ifa);
	if (found)
		g.udp6_fd = gift_flow_socket(AF_INET6, addr, ifname, &g.flow6,
					     &g.dst6);
	return g.udp6_fd >= 0;
}

/*
 * The sockets: UDP over IPv4 (net_test's: DF, so the identification is
 * 0), raw IPv4 for headers of our own, and UDP over IPv6 to the
 * device's link-local GID when there is one.
 */
static int sockets_open(void)
{
	g.udp_fd = gift_flow_socket(AF_INET, g.ip, NULL, &g.flow, &g.dst);
	if (g.udp_fd < 0)
		return -1;
	g.sport = g.flow.sport;
	g.udp6_fd = -1;
	gift_wait_for(ll_open, gift_env("GIFT_NETDEV"), 5000);
	g.raw_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	return g.raw_fd < 0 ? -1 : 0;
}

/* Sends @len bytes from the UDP socket, in up to 3 corked pieces. */
static int send_udp(const uint8_t *b, size_t len, bool cork, bool v6)
{
	int fd = v6 ? g.udp6_fd : g.udp_fd, pieces = cork ? 2 + rnd(2) : 1;
	const struct sockaddr *dst = (void *)(v6 ? &g.dst6 : &g.dst);
	socklen_t sl = v6 ? sizeof(struct sockaddr_in6) :
			    sizeof(struct sockaddr_in);
	size_t off = 0, n;

	while (--pieces > 0 && len - off > 1) {
		n = 1 + rnd(len - off - 1);
		if (sendto(fd, b + off, n, MSG_MORE, dst, sl) != (ssize_t)n)
			return -1;
		off += n;
	}
	n = len - off;
	return sendto(fd, b + off, n, 0, dst, sl) == (ssize_t)n ? 0 : -1;
}

static int send_ip(const uint8_t *ip, size_t len)
{
	return sendto(g.raw_fd, ip, len, 0, (struct sockaddr *)&g.dst,
		      sizeof(struct sockaddr_in)) == (ssize_t)len ? 0 : -1;
}

/*
 * From the raw socket: @b (UDP payload, ICRC included, computed by the
 * caller for flow @f: its port, IP identification and flags as the
 * receiver will see them) as one IPv4 datagram, or as fragments (the
 * flags must then be 0, what reassembly leaves); @kind selects the
 * variation, @udp_len the UDP length field.
 */
static int send_raw(const uint8_t *b, size_t len, const struct gift_flow *f,
		    int kind, size_t udp_len)
{
	static uint8_t dg[MAX_PKT + 64], ip[MAX_PKT + 128];
	size_t dlen = 8 + len, hl = 20, off, n, fsz, end;
	int err = 0;

	put16(dg, f->sport);
	put16(dg + 2, ROCE_PORT);
	put16(dg + 4, udp_len);
	put16(dg + 6, 0);
	memcpy(dg + 8, b, len);

	memset(ip, 0, 24);
	ip[0] = 0x45;
	put16(ip + 4, f->ip_id);
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, g.addr, 4);
	memcpy(ip + 16, g.addr, 4);
	if (kind == C_RAW_OPTS) {
		ip[0] = 0x46;
		memset(ip + 20, 1, 4);	/* four NOPs */
		hl = 24;
	} else if (kind == C_RAW_ECN) {
		ip[1] = 0x03 | rnd(64) << 2;
	}
	if (kind != C_RAW_FRAG) {
		put16(ip + 6, f->ip_frag);
		memcpy(ip + hl, dg, dlen);
		return send_ip(ip, hl + dlen);
	}
	/* Fragments of a multiple of 8 bytes, in order or the last first. */
	fsz = 8 * (1 + rnd(dlen / 16 + 1));
	end = dlen;
	if (chance(30) && dlen > fsz) {
		off = (dlen - 1) / fsz * fsz;
		memcpy(ip + hl, dg + off, dlen - off);
		put16(ip + 6, off / 8);
		err |= send_ip(ip, hl + dlen - off);
		end = off;
	}
	for (off = 0; off < end && !err; off += n) {
		n = end - off > fsz ? fsz : end - off;
		memcpy(ip + hl, dg + off, n);
		put16(ip + 6, (off + n < dlen ? 0x2000 : 0) | off / 8);
		err |= send_ip(ip, hl + n);
	}
	return err;
}

/*
 * Finishes @p (witness QPNs are never targeted) and sends it: ICRC good
 * or bad, over the UDP socket (whole or corked) or the raw socket.
 */
static void send_fpkt(struct fpkt *p, struct end *t)
{
	static uint8_t wire[MAX_PKT + ICRC];
	struct gift_flow f = g.flow;
	size_t len = p->len, udp_len;
	int err, kind = -1;
	uint32_t v, qpn;

	if (len >= 8) {
		qpn = bth_qpn(p->b);
		if (g.pairs[NVICTIM].e[0].qpn == qpn ||
		    g.pairs[NVICTIM].e[1].qpn == qpn)
			bth_set_qpn(p->b, t->qpn);
	}
	if (len > PKT_ROOM)
		len = PKT_ROOM;
	memcpy(wire, p->b, len);
	if (len >= BTH) {
		if (!p->plain && chance(6)) {
			kind = C_RAW_ID + rnd(C_RAW_ECN - C_RAW_ID + 1);
			p->classes |= 1u << kind;
			f.sport = chance(80) ? 0xc000 + rnd(0x4000) :
					       rnd(0x10000);
			f.ip_id = 1 + rnd(0xffff);
			f.ip_frag = kind == C_RAW_FRAG || chance(50) ? 0 :
				    0x4000;
		} else if (!p->plain && g.udp6_fd >= 0 && chance(5)) {
			p->classes |= 1u << C_IPV6;
			f = g.flow6;
		}
		v = gift_icrc(&f, wire, len);
		if (p->bad_icrc || (!p->plain && chance(5))) {
			p->classes |= 1u << C_BAD_ICRC;
			v ^= chance(50) ? 1u << rnd(32) : (uint32_t)rnd64() | 1;
		}
		gift_put_icrc(wire + len, v);
		len += ICRC;
	}
	if (kind < 0) {
		if (!p->plain && chance(7))
			p->classes |= 1u << C_CORK;
		record(wire, len, p->classes);
		err = send_udp(wire, len, p->classes & (1u << C_CORK),
			       p->classes & (1u << C_IPV6));
	} else {
		udp_len = 8 + len;
		if (kind == C_RAW_UDPLEN) {
			/* The UDP length ends early: the stack trims there. */
			size_t cut = 1 + rnd(8);

			if (cut > len)
				cut = len;
			udp_len -= cut;
			if (len - cut >= BTH + ICRC)
				gift_put_icrc(wire + len - cut - ICRC,
					      gift_icrc(&f, wire,
							len - cut - ICRC));
		}
		record(wire, len, p->classes);
		err = send_raw(wire, len, &f, kind, udp_len);
	}
	if (err)
		g.send_failed++;
	if (kmsg_splat())
		splat_report();
}

/* Targets: live victim QPs and what they expect */

static struct end *pick_end(struct pair **pp)
{
	struct pair *p = &g.pairs[rnd(NVICTIM)];

	if (pp)
		*pp = p;
	return &p->e[rnd(2)];
}

/* A victim end of a pair with path MTU @mtu, mostly. */
static struct end *pick_end_mtu(uint32_t mtu, struct pair **pp)
{
	int i, n = 0, cand[NVICTIM];

	for (i = 0; i < NVICTIM; i++)
		if (mtu_bytes(g.pairs[i].attr.mtu) == mtu)
			cand[n++] = i;
	if (!n || chance(25))
		return pick_end(pp);
	*pp = &g.pairs[cand[rnd(n)]];
	return &(*pp)->e[rnd(2)];
}

/* Near what @t expects (requests) or what it sent (responses), or not. */
static uint32_t pick_psn(struct end *t, bool req)
{
	uint32_t base = req ? t->exp_psn : t->sent_psn;

	switch (rnd(10)) {
	case 0: case 1: case 2: case 3:
		break;
	case 4: case 5:
		base += rnd(7) - 3;
		break;
	case 6:
		base -= 16 + rnd(0x7ffff0);
		break;
	case 7:
		base += 16 + rnd(0x7ffff0);
		break;
	case 8:
		base += chance(50) ? 0x800000 : 0x7fffff;
		break;
	default:
		base = chance(33) ? 0 : chance(50) ? 0xffffff : rnd(0x1000000);
	}
	return base & 0xffffff;
}

static uint32_t pick_qpn(struct end *t)
{
	static const uint32_t special[] = {
		0, 1, 2, 0xffffff, 0xfffffe, 0x800000,
	};
	int r = rnd(100);

	if (r < 60)
		return pick_end(NULL)->qpn;
	if (r < 72 && g.nstale_qpn)
		return g.stale_qpn[rnd(g.nstale_qpn)];
	if (r < 82)
		return t->qpn + rnd(7) - 3;
	if (r < 90)
		return rnd(0x1000000);
	return special[rnd(sizeof(special) / sizeof(special[0]))];
}

static uint32_t pick_rkey(struct pair *p, struct end *t)
{
	switch (rnd(10)) {
	case 0: case 1: case 2: case 3:
		return t->mr->rkey;
	case 4:
		return t->ro->rkey;		/* live, remote read only */
	case 5:
		return peer_of(p, t)->mr->rkey;	/* live, another PD */
	case 6:
		if (g.nstale_rkey)
			return g.stale_rkey[rnd(g.nstale_rkey)];
		/* fall through */
	case 7:
		return t->mr->rkey ^ (1 + rnd(255));	/* other key byte */
	case 8:
		return chance(50) ? 0 : 0xffffffff;
	default:
		return rnd64();
	}
}

static uint64_t pick_va(struct end *t, int r, uint32_t len)
{
	uint64_t base = raddr(t, 0);

	switch (rnd(12)) {
	case 0: case 1: case 2: case 3:
		return raddr(t, r) + rnd(len < REG ? REG - len + 1 : 1);
	case 4:
		return base + BUF_LEN - rnd(17);
	case 5:
		return base + BUF_LEN - len + rnd(3);
	case 6:
		return base - 1 - rnd(8);
	case 7:
		return 0;
	case 8:
		return ~0ULL - rnd(8);
	case 9:
		return ~0ULL - len + 1 - rnd(4096);
	case 10:
		return 1ULL << 63;
	default:
		return rnd64();
	}
}

static uint32_t pick_dma_len(uint32_t plen, uint32_t mtu)
{
	static const uint32_t v[] = {
		0, 1, 8, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff8,
		0xfffff000, BUF_LEN, BUF_LEN + 1, REG, 1 << 20,
	};

	switch (rnd(6)) {
	case 0:
		return plen;
	case 1:
		return plen + rnd(3) - 1;
	case 2:
		return mtu * (1 + rnd(3)) + rnd(3) - 1;
	case 3: case 4:
		return v[rnd(sizeof(v) / sizeof(v[0]))];
	default:
		return rnd64();
	}
}

static void fill_bytes(uint8_t *b, size_t len)
{
	uint32_t seed = rnd64();
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = gift_pat(i, seed);
}

/* Plausible extension headers of layout @l for a packet to @t. */
static void fill_headers(uint8_t *b, const struct layout *l, struct pair *p,
			 struct end *t, uint32_t plen)
{
	uint32_t mtu = mtu_bytes(p->attr.mtu), len;

	if (l->reth) {
		len = b[0] == 0x0c ? 1 + rnd(4 * mtu) : plen;
		put64(b + l->reth, raddr(t, R_RDMA) + (rnd(REG - len) & ~7));
		put32(b + l->reth + 8, t->mr->rkey);
		put32(b + l->reth + 12, len);
	}
	if (l->aeth)
		put32(b + l->aeth, 0x1f000000 | rnd(0x1000000));
	if (l->atmeth) {
		put64(b + l->atmeth, raddr(t, R_ATOM) + 8 * rnd(64));
		put32(b + l->atmeth + 8, t->mr->rkey);
		put64(b + l->atmeth + 12, rnd64());
		put64(b + l->atmeth + 20, chance(50) ? 0 : rnd64());
	}
	if (l->atmack)
		put64(b + l->atmack, rnd64());
	if (l->immdt)
		put32(b + l->immdt, rnd64());
	if (l->ieth)
		put32(b + l->ieth, pick_rkey(p, t));
	if (l->deth) {
		put32(b + l->deth, rnd64());
		put32(b + l->deth + 4, peer_of(p, t)->qpn);
	}
	if (l->feth)
		put32(b + l->feth, rnd(64));
}

/* Payload of @plen bytes and its pad after the headers of @l. */
static void put_payload(struct fpkt *p, const struct layout *l, uint32_t plen)
{
	unsigned int pad = -plen & 3;

	fill_bytes(p->b + l->len, plen);
	memset(p->b + l->len + plen, 0, pad);
	bth_set_pad(p->b, pad);
	p->len = l->len + plen + pad;
}

/* Mutations */

static const struct {
	enum mclass c;
	int weight;
} mutation_weights[] = {
	{ C_OPCODE, 8 }, { C_FLAGS, 5 }, { C_PAD, 5 }, { C_PKEY, 3 },
	{ C_QPN, 8 }, { C_PSN, 12 }, { C_ACKREQ, 3 }, { C_RETH_VA, 6 },
	{ C_RETH_RKEY, 6 }, { C_RETH_LEN, 8 }, { C_AETH, 8 },
	{ C_ATOMIC, 6 }, { C_IMM_IETH, 4 }, { C_TRUNC, 6 }, { C_EXTEND, 4 },
	{ C_PAYLEN, 6 }, { C_BITFLIP, 6 }, { C_BYTES, 4 }, { C_SPLICE, 3 },
};

#define NWEIGHTS	(sizeof(mutation_weights) / sizeof(mutation_weights[0]))

static const struct corpus_ent *corpus_pick(void)
{
	int op, k;

	if (chance(70)) {
		do
			op = rnd(256);
		while (!g.ncorpus[op]);
		return &g.corpus[op][rnd(g.ncorpus[op])];
	}
	k = rnd(g.corpus_total);
	for (op = 0; k >= g.ncorpus[op]; op++)
		k -= g.ncorpus[op];
	return &g.corpus[op][k];
}

/* Can class @c apply to @p? */
static bool applicable(const struct fpkt *p, enum mclass c)
{
	const struct layout *l = p->len >= BTH ? layout_of(p->b[0]) : NULL;

	switch (c) {
	case C_OPCODE: case C_FLAGS: case C_PAD: case C_PKEY: case C_QPN:
	case C_PSN: case C_ACKREQ:
		return p->len >= BTH;
	case C_RETH_VA: case C_RETH_RKEY: case C_RETH_LEN:
		return l && l->reth && p->len >= l->reth + 16u;
	case C_AETH:
		return l && l->aeth && p->len >= l->aeth + 4u;
	case C_ATOMIC:
		return l && ((l->atmeth && p->len >= l->atmeth + 28u) ||
			     (l->atmack && p->len >= l->atmack + 8u));
	case C_IMM_IETH:
		return l && p->len >= l->len &&
		       (l->immdt || l->ieth || l->deth || l->feth);
	case C_PAYLEN:
		return !!l;
	case C_TRUNC: case C_BITFLIP: case C_BYTES:
		return p->len > 0;
	default:
		return true;
	}
}

static void mutate_trunc(struct fpkt *p, const struct layout *l)
{
	size_t cuts[24];
	int n = 0;

	cuts[n++] = 0;
	cuts[n++] = 1 + rnd(BTH - 1);
	cuts[n++] = BTH;
	if (l) {
		const uint8_t offs[][2] = {
			{ l->reth, 16 }, { l->aeth, 4 }, { l->atmeth, 28 },
			{ l->atmack, 8 }, { l->immdt, 4 }, { l->ieth, 4 },
			{ l->deth, 8 }, { l->feth, 4 },
		};
		unsigned int i;

		for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			if (!offs[i][0])
				continue;
			cuts[n++] = offs[i][0] + rnd(offs[i][1]);
			cuts[n++] = offs[i][0] + offs[i][1];
		}
		cuts[n++] = l->len + 1 + rnd(3);
	}
	cuts[n++] = p->len ? rnd(p->len) : 0;
	n = cuts[rnd(n)];
	p->len = (size_t)n < p->len ? (size_t)n : p->len - 1;
}

/* Opcode @op with the headers rebuilt around the old payload. */
static void reshape(struct fpkt *p, const struct layout *old, struct pair *pp,
		    struct end *t, uint8_t op)
{
	const struct layout *l = layout_of(op);
	size_t hl = old ? old->len : BTH, plen;

	plen = p->len > hl ? p->len - hl : 0;
	if (!(l->flags & L_PAYLOAD) && chance(80))
		plen = 0;
	if (l->len + plen > PKT_ROOM)
		plen = 0;
	memmove(p->b + l->len, p->b + hl, plen);
	memset(p->b + BTH, 0, l->len - BTH);
	p->b[0] = op;
	fill_headers(p->b, l, pp, t, plen);
	p->len = l->len + plen;
}

static void mutate(struct fpkt *p, struct pair *pp, struct end *t)
{
	const struct layout *l = p->len >= BTH ? layout_of(p->b[0]) : NULL;
	uint32_t mtu = mtu_bytes(pp->attr.mtu), v, plen;
	uint8_t *b = p->b;
	int total = 0, tries, w;
	enum mclass c = C_BITFLIP;
	unsigned int i;
	size_t n;

	for (i = 0; i < NWEIGHTS; i++)
		total += mutation_weights[i].weight;
	for (tries = 0; tries < 20; tries++) {
		w = rnd(total);
		for (i = 0; w >= mutation_weights[i].weight; i++)
			w -= mutation_weights[i].weight;
		c = mutation_weights[i].c;
		if (applicable(p, c))
			break;
	}
	if (!applicable(p, c))
		return;
	p->classes |= 1u << c;
	plen = l && p->len > l->len ? p->len - l->len : 0;

	switch (c) {
	case C_OPCODE:
		v = rnd(10);
		v = v < 8 ? known_ops[rnd(nknown)] :
		    v == 8 ? (b[0] & ~3u) | rnd(4) : rnd(256);
		if (layout_of(v) && chance(50))
			reshape(p, l, pp, t, v);
		else
			b[0] = v;
		break;
	case C_FLAGS:
		switch (rnd(6)) {
		case 0:
			b[1] ^= 0x80;			/* SE */
			break;
		case 1:
			b[1] ^= 0x40;			/* MigReq */
			break;
		case 2:
			b[1] = (b[1] & 0xf0) | (1 + rnd(15));	/* TVer */
			break;
		case 3:
			b[4] = rnd(256);		/* resv8a: FECN, BECN */
			break;
		case 4:
			b[8] = (b[8] & 0x80) | rnd(128);	/* reserved */
			break;
		default:
			b[1] = rnd(256);
		}
		break;
	case C_PAD:
		bth_set_pad(b, rnd(4));
		if (chance(30) && l && p->len > l->len)
			p->len = l->len + rnd(4);	/* pad > payload */
		break;
	case C_PKEY: {
		static const uint16_t keys[] = { 0x7fff, 0, 0x8000, 0x8001 };

		put16(b + 2, chance(80) ? keys[rnd(4)] : rnd(0x10000));
		break;
	}
	case C_QPN:
		bth_set_qpn(b, pick_qpn(t));
		break;
	case C_PSN:
		bth_set_psn(b, pick_psn(t, l && (l->flags & L_REQ)));
		break;
	case C_ACKREQ:
		b[8] ^= 0x80;
		break;
	case C_RETH_VA:
		put64(b + l->reth, pick_va(t, chance(80) ? R_RDMA : R_SRC,
					   get32(b + l->reth + 12)));
		break;
	case C_RETH_RKEY:
		put32(b + l->reth + 8, pick_rkey(pp, t));
		break;
	case C_RETH_LEN:
		put32(b + l->reth + 12, pick_dma_len(plen, mtu));
		break;
	case C_AETH: {
		static const uint8_t syn[] = {
			0x1f, 0x00, 0x20, 0x3f, 0x60, 0x61, 0x62, 0x63, 0x64,
			0x65, 0x7f, 0x40, 0x5f, 0x80, 0x9f, 0xff,
		};

		v = chance(70) ? syn[rnd(sizeof(syn))] : rnd(256);
		put32(b + l->aeth, v << 24 | (chance(50) ?
			get32(b + l->aeth) & 0xffffff : rnd(0x1000000)));
		break;
	}
	case C_ATOMIC:
		if (l->atmack && (!l->atmeth || chance(20))) {
			put64(b + l->atmack, rnd64());
			break;
		}
		switch (rnd(4)) {
		case 0: {
			uint64_t va = raddr(t, R_ATOM) + 8 * rnd(64);

			switch (rnd(6)) {
			case 0:
				va += 1 + rnd(7);
				break;
			case 1:
				va = raddr(t, 0) + BUF_LEN - 8 + 4 * rnd(3);
				break;
			case 2:
				va = chance(50) ? 0 : ~0ULL - 7;
				break;
			case 3:
				va = rnd64();
				break;
			}
			put64(b + l->atmeth, va);
			break;
		}
		case 1:
			put32(b + l->atmeth + 8, pick_rkey(pp, t));
			break;
		default:
			put64(b + l->atmeth + 12, rnd64());
			put64(b + l->atmeth + 20, rnd64());
		}
		break;
	case C_IMM_IETH:
		if (l->immdt)
			put32(b + l->immdt, rnd64());
		if (l->ieth)
			put32(b + l->ieth, pick_rkey(pp, t));
		if (l->deth)
			put64(b + l->deth, rnd64());
		if (l->feth)
			put32(b + l->feth, rnd64());
		break;
	case C_TRUNC:
		mutate_trunc(p, l);
		break;
	case C_EXTEND:
		n = chance(70) ? 1 + rnd(64) :
		    chance(80) ? rnd(2 * mtu) : rnd(MAX_PKT);
		if (p->len + n > PKT_ROOM)
			n = PKT_ROOM - p->len;
		fill_bytes(b + p->len, n);
		p->len += n;
		break;
	case C_PAYLEN: {
		static const int deltas[] = { -4, -1, 0, 1, 3, 4 };

		if (p->len < l->len) {
			memset(b + p->len, 0, l->len - p->len);
			p->len = l->len;
		}
		switch (rnd(4)) {
		case 0:
			n = rnd(5);
			break;
		case 1:
			n = mtu * (1 + rnd(2)) + deltas[rnd(6)];
			break;
		case 2:
			n = chance(50) ? 4096 + rnd(2) : 8192;
			break;
		default:
			n = rnd(mtu + 1);
		}
		if (l->len + n > PKT_ROOM)
			n = 0;
		if (n > plen)
			fill_bytes(b + l->len + plen, n - plen);
		p->len = l->len + n;
		if (chance(50))
			bth_set_pad(b, -n & 3);
		break;
	}
	case C_BITFLIP:
		for (i = 1 + rnd(8); i; i--) {
			n = chance(70) && p->len > 48 ? rnd(48) : rnd(p->len);
			b[n] ^= 1 << rnd(8);
		}
		break;
	case C_BYTES: {
		static const uint8_t vals[] = { 0, 0xff, 0x7f, 0x80, 0x01, 0xfe };

		for (i = 1 + rnd(4); i; i--) {
			n = rnd(p->len < 48 ? p->len : 48);
			b[n] = chance(80) ? vals[rnd(6)] : rnd(256);
		}
		break;
	}
	case C_SPLICE: {
		const struct corpus_ent *o = corpus_pick();
		size_t keep = l && chance(70) ? l->len : rnd(p->len + 1);
		size_t from = rnd(o->len - ICRC + 1);

		if (keep > p->len)
			keep = p->len;
		n = o->len - ICRC - from;
		if (keep + n > PKT_ROOM)
			n = PKT_ROOM - keep;
		memcpy(b + keep, o->b + from, n);
		p->len = keep + n;
		break;
	}
	default:
		break;
	}
}

/* A well-formed packet for live QP @t: a request, or a response to it. */
static void gen_valid(struct fpkt *p, struct pair *pp, struct end *t)
{
	static const uint8_t reqs[] = {
		0x04, 0x05, 0x0a, 0x0b, 0x0c, 0x13, 0x14, 0x17, 0x1c, 0x1d,
		0x64, 0x65,
	};
	static const uint8_t resps[] = { 0x11, 0x11, 0x12, 0x10, 0x0d, 0x0f };
	uint32_t mtu = mtu_bytes(pp->attr.mtu), plen = 0;
	bool req = chance(70);
	const struct layout *l;
	uint8_t op;

	op = req ? reqs[rnd(sizeof(reqs))] : resps[rnd(sizeof(resps))];
	l = layout_of(op);
	if (l->flags & L_PAYLOAD)
		plen = op == 0x0d ? mtu : chance(70) ? rnd(mtu + 1) : rnd(64);
	if (op == 0x1d)
		plen = 8;
	bth_init(p->b, op, t->qpn, chance(80),
		 req ? t->exp_psn : t->sent_psn);
	memset(p->b + BTH, 0, l->len - BTH);
	fill_headers(p->b, l, pp, t, plen);
	put_payload(p, l, plen);
	p->classes |= 1u << C_GEN;
	if (req)
		t->exp_psn = (t->exp_psn + 1) & 0xffffff;
}

/*
 * A whole multi-packet SEND or RDMA WRITE message (or READ response) to
 * live QP @t at the PSN it expects, one packet of it perhaps mutated,
 * perhaps reordered, duplicated or lost.
 */
static void gen_sequence(void)
{
	static const uint8_t kinds[][4] = {
		/* first, middle, last, only */
		{ 0x00, 0x01, 0x02 }, { 0x00, 0x01, 0x03 },
		{ 0x00, 0x01, 0x16 }, { 0x06, 0x07, 0x08 },
		{ 0x06, 0x07, 0x09 }, { 0x0d, 0x0e, 0x0f },
	};
	struct pair *pp;
	struct end *t = pick_end(&pp);
	uint32_t mtu = mtu_bytes(pp->attr.mtu), total, psn0, plen;
	int k = rnd(6), n = 2 + rnd(5), i, m = -1, order[8], tmp;
	bool resp = kinds[k][0] == 0x0d;

	total = (n - 1) * mtu + 1 + rnd(mtu);
	psn0 = chance(85) ? (resp ? t->sent_psn : t->exp_psn) :
			    pick_psn(t, !resp);
	for (i = 0; i < n; i++) {
		struct fpkt *p = &g.seqpkt[i];
		uint8_t op = kinds[k][i ? (i == n - 1 ? 2 : 1) : 0];
		const struct layout *l = layout_of(op);

		plen = i < n - 1 ? mtu : total - (n - 1) * mtu;
		bth_init(p->b, op, t->qpn, i == n - 1 || chance(10),
			 psn0 + i);
		memset(p->b + BTH, 0, l->len - BTH);
		fill_headers(p->b, l, pp, t, plen);
		if (l->reth) {
			put64(p->b + l->reth, raddr(t, R_RDMA) +
			      (rnd(REG - total) & ~7));
			put32(p->b + l->reth + 12, total);
		}
		put_payload(p, l, plen);
		p->classes = 1u << C_SEQ;
		p->bad_icrc = false;
		order[i] = i;
	}
	if (chance(60)) {
		m = rnd(n);
		mutate(&g.seqpkt[m], pp, t);
		if (chance(30))
			mutate(&g.seqpkt[m], pp, t);
	}
	if (chance(10)) {
		i = rnd(n - 1);
		tmp = order[i];
		order[i] = order[i + 1];
		order[i + 1] = tmp;
	} else if (chance(5)) {
		order[rnd(n)] = order[rnd(n)];	/* one lost, one twice */
	}
	for (i = 0; i < n && !g.splat; i++)
		send_fpkt(&g.seqpkt[order[i]], t);
	if (m < 0 && !resp)
		t->exp_psn = (psn0 + n) & 0xffffff;
}

static void fuzz_one(void)
{
	struct fpkt *p = &g.pkt;
	const struct corpus_ent *c;
	const struct layout *l;
	struct pair *pp;
	struct end *t;
	int r = rnd(100), n;

	if (r < 6) {
		gen_sequence();
		return;
	}
	p->classes = 0;
	p->bad_icrc = false;
	if (r < 18) {
		t = pick_end(&pp);
		gen_valid(p, pp, t);
	} else {
		c = corpus_pick();
		t = pick_end_mtu(c->mtu, &pp);
		memcpy(p->b, c->b, c->len - ICRC);
		p->len = c->len - ICRC;
		/* Retarget: the live QP, its PSN, its memory. */
		l = layout_of(p->b[0]);
		if (chance(95))
			bth_set_qpn(p->b, t->qpn);
		if (chance(70))
			bth_set_psn(p->b, l->flags & L_REQ ? t->exp_psn :
							     t->sent_psn);
		if (l->reth && chance(70)) {
			uint32_t len = get32(p->b + l->reth + 12);

			put64(p->b + l->reth, raddr(t, R_RDMA) +
			      (len < REG ? rnd(REG - len + 1) : 0));
			put32(p->b + l->reth + 8, t->mr->rkey);
		}
		if (l->atmeth && chance(70)) {
			put64(p->b + l->atmeth, raddr(t, R_ATOM) + 8 * rnd(64));
			put32(p->b + l->atmeth + 8, t->mr->rkey);
		}
	}
	r = rnd(100);
	n = r < 12 ? 0 : r < 60 ? 1 : r < 85 ? 2 : 3 + rnd(3);
	while (n--)
		mutate(p, pp, t);
	if (!p->classes)
		p->classes = 1u << C_REPLAY;
	send_fpkt(p, t);
}

/* Live traffic */

static int wait_wc(struct end *e, struct ibv_wc *wc, int ms)
{
	long long deadline = gift_now_us() + ms * 1000LL;
	int n;

	do {
		n = ibv_poll_cq(e->cq, 1, wc);
		if (n)
			return n < 0 ? -1 : 0;
		cap_drain();
		usleep(100);
	} while (gift_now_us() < deadline);
	return -1;
}

static bool bytes_are(const uint8_t *b, size_t len, size_t off, int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != (seed < 0 ? SENTINEL : gift_pat(off + i, seed)))
			return false;
	return true;
}

/*
 * One verified transfer of op, len bytes, over pair @p from e[dir]: the
 * completions must be exact and the target must hold the pattern where
 * it belongs and the sentinel around it. Returns 0 or -1 (after fail()).
 */
static int xfer(struct pair *p, int dir, int op, size_t len, uint32_t seed)
{
	static const enum ibv_wc_opcode wc_op[NOPS] = {
		IBV_WC_SEND, IBV_WC_SEND, IBV_WC_RDMA_WRITE, IBV_WC_RDMA_WRITE,
		IBV_WC_RDMA_READ, IBV_WC_COMP_SWAP, IBV_WC_FETCH_ADD,
		IBV_WC_SEND,
	};
	struct end *s = &p->e[dir], *r = &p->e[!dir];
	size_t doff = 0, span = len + 64;
	uint64_t v0 = 0, a0 = seed, a1 = 0, got, want;
	const char *what = NULL;
	int ms = 20000 * g.slow;
	struct ibv_wc wc;
	uint8_t *dst;

	for (got = 0; got < len; got++)
		region(s, R_SRC)[got] = gift_pat(got, seed);
	switch (op) {
	case OP_SEND:
	case OP_SEND_IMM:
		dst = region(r, R_RECV);
		break;
	case OP_WRITE:
	case OP_WRITE_IMM:
		doff = seed % 61;
		dst = region(r, R_RDMA);
		span += doff;
		break;
	case OP_READ:
		doff = seed % 61;
		for (got = 0; got < len; got++)
			region(r, R_RDMA)[doff + got] = gift_pat(got, seed);
		dst = region(s, R_RECV);
		break;
	default:
		doff = 8 * (seed % 64);
		v0 = (uint64_t)seed * 0x9e3779b97f4a7c15ULL;
		memcpy(region(r, R_ATOM) + doff, &v0, 8);
		a0 = op == OP_FADD ? seed | 1 : seed & 1 ? v0 : v0 + 1;
		a1 = ~v0;
		dst = region(s, R_RECV);
		span = 16;
	}
	memset(dst, SENTINEL, span);
	if (op_needs_recv(op) && post_recv(p, r, r->mr->lkey)) {
		fail("pair %d: post_recv: %s", p->id, strerror(errno));
		return -1;
	}
	if (post_op(s, r, op, len, doff, a0, a1)) {
		fail("pair %d: post %s: %s", p->id, op_names[op],
		     strerror(errno));
		return -1;
	}
	if (wait_wc(s, &wc, ms))
		what = "no send completion";
	else if (wc.status != IBV_WC_SUCCESS)
		what = ibv_wc_status_str(wc.status);
	else if (wc.wr_id != (uint64_t)op || wc.opcode != wc_op[op])
		what = "wrong send completion";
	else if ((op == OP_READ && wc.byte_len != len) ||
		 (op_is_atomic(op) && wc.byte_len != 8))
		what = "wrong send byte_len";
	if (!what && op_needs_recv(op)) {
		if (wait_wc(r, &wc, ms))
			what = "no receive completion";
		else if (wc.status != IBV_WC_SUCCESS)
			what = ibv_wc_status_str(wc.status);
		else if (wc.opcode != (op == OP_WRITE_IMM ?
				       IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV))
			what = "wrong receive opcode";
		else if (wc.byte_len != len)
			what = "wrong receive byte_len";
		else if ((op == OP_SEND_IMM || op == OP_WRITE_IMM) &&
			 (!(wc.wc_flags & IBV_WC_WITH_IMM) ||
			  wc.imm_data != htonl(seed)))
			what = "wrong immediate";
	}
	if (!what) {
		switch (op) {
		case OP_SEND:
		case OP_SEND_IMM:
		case OP_READ:
			if (!bytes_are(dst, len, 0, seed) ||
			    !bytes_are(dst + len, 64, 0, -1))
				what = "data mismatch";
			break;
		case OP_WRITE:
		case OP_WRITE_IMM:
			if (!bytes_are(dst, doff, 0, -1) ||
			    !bytes_are(dst + doff, len, 0, seed) ||
			    !bytes_are(dst + doff + len, 64, 0, -1))
				what = "data mismatch";
			break;
		default:
			memcpy(&got, dst, 8);
			want = op == OP_FADD ? v0 + a0 : a0 == v0 ? a1 : v0;
			if (got != v0 || !bytes_are(dst + 8, 8, 0, -1))
				what = "wrong atomic result";
			memcpy(&got, region(r, R_ATOM) + doff, 8);
			if (!what && got != want)
				what = "wrong atomic target";
		}
	}
	if (what) {
		fail("pair %d: %s of %zu bytes (seed %u, dir %d): %s", p->id,
		     op_names[op], len, seed, dir, what);
		return -1;
	}
	return 0;
}

static void victim_poll(struct pair *p)
{
	struct ibv_wc wc[16];
	int i, k, n;

	for (k = 0; k < 2; k++) {
		struct end *e = &p->e[k];

		while ((n = ibv_poll_cq(e->cq, 16, wc)) > 0) {
			for (i = 0; i < n; i++) {
				if (wc[i].wr_id == 0x5ec0) {
					if (k && p->srq)
						p->srq_posted--;
					else
						e->recv_posted--;
				} else {
					e->send_out--;
				}
				if (wc[i].status == IBV_WC_SUCCESS) {
					p->ok++;
					p->progress_us = gift_now_us();
				} else {
					p->errors++;
					p->broken = true;
				}
			}
		}
	}
}

static void victim_post(struct pair *p)
{
	static const uint8_t mix[] = {
		OP_SEND, OP_SEND, OP_SEND, OP_SEND_IMM, OP_WRITE, OP_WRITE,
		OP_WRITE_IMM, OP_READ, OP_READ, OP_CMP_SWP, OP_FADD,
	};
	struct end *s, *r;
	size_t len, roff;
	int k, op;

	if (p->broken)
		return;
	for (k = 0; k < 2; k++) {
		struct end *e = &p->e[k];
		int *cnt = k && p->srq ? &p->srq_posted : &e->recv_posted;

		while (*cnt < RECV_DEPTH && !post_recv(p, e, e->mr->lkey))
			(*cnt)++;
	}
	while (p->e[0].send_out + p->e[1].send_out < g.depth) {
		k = trnd(2);
		s = &p->e[k];
		r = &p->e[!k];
		op = trnd(200) ? mix[trnd(sizeof(mix))] : OP_SEND_INV;
		len = trnd(10) < 7 ? trnd(1500) : trnd(10) < 9 ?
		      trnd(16384 / g.slow) : trnd(REG / g.slow);
		roff = op_is_atomic(op) ? 8 * trnd(64) : trnd(REG - len + 1);
		if (post_op(s, r, op, len, roff,
			    op == OP_SEND_INV ? r->mr->rkey : trnd(1000), 0)) {
			p->broken = true;
			return;
		}
		s->send_out++;
		p->posted++;
	}
}

/* QP events: a victim whose QP went to ERR is rebuilt. */
static void async_drain(void)
{
	struct ibv_async_event ev;
	int i, k;

	while (!ibv_get_async_event(g.ctx, &ev)) {
		for (i = 0; i < NVICTIM; i++)
			for (k = 0; k < 2; k++)
				if (ev.element.qp == g.pairs[i].e[k].qp)
					g.pairs[i].broken = true;
		ibv_ack_async_event(&ev);
	}
}

static int modify_state(struct ibv_qp *qp, enum ibv_qp_state state)
{
	struct ibv_qp_attr a = { .qp_state = state };

	return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

/*
 * Now and then a victim's requester pauses in SQD (posting goes on) or
 * the application moves a QP to ERR itself. Work requests must complete,
 * with an error at worst, in bounded time: every victim has finite
 * transport retries and keeps receives posted, so no completion for
 * 15 s (times GIFT_SLOW) while work is outstanding is a hang.
 */
static void victims_maintain(void)
{
	long long now = gift_now_us();
	int i;

	async_drain();
	for (i = 0; i < NVICTIM; i++) {
		struct pair *p = &g.pairs[i];

		if (p->sqd_until && now > p->sqd_until) {
			p->sqd_until = 0;
			if (!p->broken && modify_state(p->e[0].qp, IBV_QPS_RTS))
				p->broken = true;
			p->progress_us = now;
		}
		if (!p->broken && !p->sqd_until && !trnd(60)) {
			if (modify_state(p->e[0].qp, IBV_QPS_SQD))
				p->broken = true;
			p->sqd_until = now + (20 + trnd(200)) * 1000LL * g.slow;
			p->sqd++;
		} else if (!p->broken && !trnd(200)) {
			modify_state(p->e[trnd(2)].qp, IBV_QPS_ERR);
			p->user_err++;
			p->broken = true;
		}
		if (!p->broken && !p->sqd_until &&
		    (p->e[0].send_out || p->e[1].send_out) &&
		    now - p->progress_us > 15000000LL * g.slow) {
			fail("pair %d: no completion in %d s, %d and %d send WRs outstanding, QP states %d and %d: hung",
			     p->id, 15 * g.slow, p->e[0].send_out,
			     p->e[1].send_out, qp_state(p->e[0].qp),
			     qp_state(p->e[1].qp));
			ring_dump(stdout);
			return;
		}
		if (p->broken) {
			long long t0 = gift_now_us();

			p->sqd_until = 0;
			if (pair_recreate(p))
				fail("pair %d: cannot recreate: %s: %s (QP states %d, %d)",
				     p->id, g.why, strerror(errno),
				     p->e[0].qp ? (int)qp_state(p->e[0].qp) : -1,
				     p->e[1].qp ? (int)qp_state(p->e[1].qp) : -1);
			g.t_rebuild += gift_now_us() - t0;
		}
	}
}

/* Phase 1: the corpus */

/* A request that fails on the responder; the pair is rebuilt after. */
static void provoke(struct pair *p, int op, size_t len, size_t roff,
		    uint32_t a0, bool recv, uint32_t lkey)
{
	struct end *s = &p->e[0], *r = &p->e[1];
	struct ibv_wc wc;

	if (recv)
		post_recv(p, r, lkey);
	if (!post_op(s, r, op, len, roff, a0, 0))
		wait_wc(s, &wc, 10000 * g.slow);
	usleep(20000);
	cap_drain();
	if (pair_recreate(p))
		fail("pair %d: cannot recreate: %s", p->id, strerror(errno));
}

static void corpus_build(void)
{
	static const int ops[] = {
		OP_SEND, OP_SEND_IMM, OP_WRITE, OP_WRITE_IMM, OP_READ,
	};
	struct fpkt *f = &g.pkt;
	unsigned int i, k, j;
	uint32_t seed = 1;

	g.cap_corpus = true;
	for (i = 0; i < NVICTIM && !g.failed; i++) {
		struct pair *p = &g.pairs[i];
		uint32_t mtu = mtu_bytes(p->attr.mtu);
		size_t sizes[] = { 0, 64, 2 * mtu + 1, 3 * mtu + 5 };

		for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
			for (j = 0; j < 4; j++)
				if (xfer(p, j & 1, ops[k], sizes[j], seed++))
					return;
		if (xfer(p, 0, OP_CMP_SWP, 8, seed++) ||
		    xfer(p, 1, OP_FADD, 8, seed++))
			return;

		/* NAKs: invalid request, remote access, remote operation. */
		provoke(p, OP_SEND_INV, 64, 0, p->e[1].mr->rkey, true,
			p->e[1].mr->lkey);
		provoke(p, OP_SEND_INV, 2 * mtu + 1, 0, p->e[1].mr->rkey, true,
			p->e[1].mr->lkey);
		provoke(p, OP_WRITE, 64, 2 * REG + 8, 0, false, 0);
		provoke(p, OP_SEND, 64, 0, 0, true, p->e[1].mr->lkey ^ 0x80);
		/* RNR NAK: nothing posted, no RNR retries. */
		p->attr.rnr_retry = 0;
		if (pair_recreate(p))
			fail("pair %d: cannot recreate", p->id);
		p->attr.rnr_retry = victim_attr[i].rnr_retry;
		provoke(p, OP_SEND, 64, 0, 0, false, 0);
		/* PSN sequence error NAK: a packet ahead of the expected PSN. */
		f->classes = 1u << C_GEN;
		f->bad_icrc = false;
		f->plain = true;
		bth_init(f->b, 0x04, p->e[1].qpn, true, p->e[1].exp_psn + 5);
		f->len = BTH;
		send_fpkt(f, &p->e[1]);
		usleep(20000);
	}
	usleep(200000);
	cap_drain();
	g.cap_corpus = false;
	f->plain = false;
	if (kmsg_splat())
		splat_report();
}

static int corpus_check(void)
{
	int missing = 0;
	unsigned int i;

	printf("# corpus: %d packets of %ld captured:", g.corpus_total,
	       g.cap_pkts);
	for (i = 0; i < 256; i++)
		if (g.ncorpus[i])
			printf(" %s:%d", layouts[i].name ? layouts[i].name :
			       "?", g.ncorpus[i]);
	printf("\n");
	for (i = 0; i < NREQUIRED; i++) {
		if (!g.ncorpus[required_ops[i]]) {
			fail("no %s packet captured",
			     layouts[required_ops[i]].name);
			missing++;
		}
	}
	for (i = 0; i < NREQUIRED_NAKS; i++) {
		if (!g.nak_seen[i]) {
			fail("no %s captured", required_naks[i].name);
			missing++;
		}
	}
	return missing ? -1 : 0;
}

/* Phase 3: report and check */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_counters(void)
{
	char dir[256], path[512], *names[64];
	struct dirent *d;
	int n = 0, i;
	DIR *dp;

	snprintf(dir, sizeof(dir),
		 "/sys/class/infiniband/%s/ports/1/hw_counters", g.ibdev);
	dp = opendir(dir);
	if (!dp) {
		fail("no %s", dir);
		return;
	}
	while ((d = readdir(dp)) && n < 64)
		if (d->d_name[0] != '.' && strcmp(d->d_name, "lifespan"))
			names[n++] = strdup(d->d_name);
	closedir(dp);
	qsort(names, n, sizeof(names[0]), cmp_str);
	printf("# hw_counters:");
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		printf("%s %s %ld", i % 4 ? "," : "\n#  ", names[i],
		       gift_read_long(path));
		free(names[i]);
	}
	printf("\n");
}

static void report(double secs)
{
	int i;

	printf("# sent %ld packets in %.1f s (%ld not sent); time spent injecting %.1f s, in witness transfers %.1f s, rebuilding victims %.1f s\n",
	       g.sent, secs, g.send_failed, g.t_inject / 1e6,
	       g.t_witness / 1e6, g.t_rebuild / 1e6);
	printf("# mutation classes:");
	for (i = 0; i < NCLASS; i++)
		printf("%s %s %ld", i % 5 ? "," : "\n#  ", class_names[i],
		       g.class_count[i]);
	printf("\n");
	for (i = 0; i < NVICTIM; i++)
		printf("# victim pair %d (MTU %u%s): %ld WRs posted, %ld completions ok, %ld errors, %ld rebuilds, %ld SQD pauses, %ld moved to ERR\n",
		       i, mtu_bytes(g.pairs[i].attr.mtu),
		       g.pairs[i].attr.srq ? ", SRQ" : "", g.pairs[i].posted,
		       g.pairs[i].ok, g.pairs[i].errors, g.pairs[i].recreated,
		       g.pairs[i].sqd, g.pairs[i].user_err);
	printf("# witness: %ld verified transfers\n", g.witness_ops);
	print_counters();
}

/* Verified transfers on a fresh pair, and on every rebuilt victim. */
static void final_check(void)
{
	static const size_t sizes[] = { 1, 1000, 4097, 65539, REG - 256 };
	static const int ops[] = { OP_SEND, OP_WRITE, OP_READ };
	uint32_t seed = 0x1000;
	unsigned int i, k;

	/* The victims go quiet first: their retries would load the device. */
	for (i = 0; i < NVICTIM; i++) {
		victim_poll(&g.pairs[i]);
		modify_reset(&g.pairs[i].e[0]);
		modify_reset(&g.pairs[i].e[1]);
	}
	if (pair_open(&g.final, 99, &safe_attr, true)) {
		fail("cannot open the final pair: %s", strerror(errno));
		return;
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (k = 0; k < 3; k++)
			if (xfer(&g.final, i & 1, ops[k], sizes[i], seed++))
				return;
	if (xfer(&g.final, 0, OP_SEND_IMM, 4097, seed++) ||
	    xfer(&g.final, 1, OP_WRITE_IMM, 3000, seed++) ||
	    xfer(&g.final, 0, OP_CMP_SWP, 8, seed++) ||
	    xfer(&g.final, 1, OP_FADD, 8, seed++))
		return;
	for (i = 0; i < NVICTIM; i++) {
		struct pair *p = &g.pairs[i];

		victim_poll(p);
		if (pair_recreate(p)) {
			fail("pair %d: cannot recreate", i);
			return;
		}
		for (k = 0; k < 3; k++)
			if (xfer(p, k & 1, ops[k], 5000 + k, seed++))
				return;
	}
	printf("# final transfers verified\n");
}

static void fuzz_loop(int secs, long rate)
{
	long long start = gift_now_us(), now = start, last = start;
	long long end = start + secs * 1000000LL, next_maint = 0;
	long long next_witness = start;
	double tokens = 0;
	int i;

	while (now < end && !g.failed) {
		cap_drain();
		for (i = 0; i < NVICTIM; i++) {
			victim_poll(&g.pairs[i]);
			victim_post(&g.pairs[i]);
		}
		if (now >= next_maint) {
			victims_maintain();
			next_maint = now + 50000;
		}
		if (now >= next_witness) {
			uint32_t seed = trnd(1 << 30);
			int op = trnd(OP_FADD + 1);
			size_t len = op_is_atomic(op) ? 8 : trnd(4) ?
				     trnd(5000) : trnd(65536 / g.slow);

			if (xfer(&g.pairs[NVICTIM], trnd(2), op, len, seed))
				break;
			g.witness_ops++;
			next_witness = gift_now_us();
			g.t_witness += next_witness - now;
			next_witness += 250000LL * g.slow;
		}
		now = gift_now_us();
		tokens += (now - last) * rate / 1e6;
		last = now;
		if (tokens > 32)
			tokens = 32;
		if (tokens < 1) {
			usleep(500);
			now = gift_now_us();
			continue;
		}
		for (; tokens >= 1 && !g.splat; tokens--) {
			long before = g.sent;

			fuzz_one();
			tokens -= g.sent - before - 1;
		}
		g.t_inject += gift_now_us() - now;
		now = gift_now_us();
	}
	for (i = 0; i < NVICTIM; i++)
		victim_poll(&g.pairs[i]);
	report((now - start) / 1e6);
}

/*
 * GIFT_SLOW, or when it is not set, 8 on a debug kernel (the value of
 * the debug lane of run_all.sh), so that a bare run there is sane too.
 */
static int slowness(void)
{
	struct utsname u;

	if (getenv("GIFT_SLOW") || uname(&u) || !strstr(u.release, "debug"))
		return gift_slow();
	return 8;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: gift_fuzz [-t SECONDS] [-s SEED] [-r PACKETS_PER_SECOND] [-v]\n");
	exit(2);
}

/* local_shortcut as it was before the run, restored at exit */
static int saved_shortcut = -1;

static void restore_shortcut(void)
{
	if (saved_shortcut >= 0)
		gift_local_shortcut(saved_shortcut);
}

int main(int argc, char **argv)
{
	unsigned long long seed = gift_now_us();
	int secs = 60, opt, i;
	long rate = 0;

	while ((opt = getopt(argc, argv, "t:s:r:v")) != -1) {
		switch (opt) {
		case 't':
			secs = atoi(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			rate = atol(optarg);
			break;
		case 'v':
			g.log_fd = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || secs < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	g.slow = slowness();
	g.depth = SEND_DEPTH / g.slow > 2 ? SEND_DEPTH / g.slow : 2;
	for (i = g.slow; i > 1; i /= 2)
		safe_attr.timeout++;
	if (rate <= 0)
		rate = 2000 / g.slow > 50 ? 2000 / g.slow : 50;
	g.rng = seed;
	g.trng = seed ^ 0x5a5a5a5a5a5a5a5aULL;
	g.ibdev = gift_env("GIFT_IBDEV");
	g.ip = gift_env("GIFT_IP");
	if (inet_pton(AF_INET, g.ip, g.addr) != 1) {
		fprintf(stderr, "bad GIFT_IP %s\n", g.ip);
		return 2;
	}
	if (g.log_fd) {
		char path[512];
		const char *out = getenv("GIFT_OUT");

		snprintf(path, sizeof(path), "%s/gift_fuzz.pkts",
			 out ? out : ".");
		g.log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND,
				0644);
	} else {
		g.log_fd = -1;
	}
	for (i = 0; i < 256; i++)
		if (layouts[i].len)
			known_ops[nknown++] = i;
	if (kmsg_open() || sockets_open()) {
		perror("kmsg or sockets");
		return 1;
	}
	printf("# gift_fuzz: %s, seed %llu, %d s, %ld packets/s, GIFT_SLOW %d%s\n",
	       g.ibdev, seed, secs, rate, g.slow,
	       g.udp6_fd < 0 ? ", no IPv6" : "");
	/*
	 * The corpus and the witness transfers are captured on lo: local
	 * traffic must cross it, not the driver's local shortcut.
	 */
	saved_shortcut = gift_local_shortcut(0);
	if (saved_shortcut < 0) {
		fprintf(stderr, "cannot set rdma_gift's local_shortcut to 0\n");
		return 1;
	}
	atexit(restore_shortcut);
	g.cap_fd = cap_open();
	g.ctx = gift_open(g.ibdev);
	if (g.cap_fd < 0 || !g.ctx) {
		fprintf(stderr, "no capture socket or no device %s\n", g.ibdev);
		return 1;
	}
	fcntl(g.ctx->async_fd, F_SETFL,
	      fcntl(g.ctx->async_fd, F_GETFL) | O_NONBLOCK);
	gift_wait_for(gift_have_v4_gid, g.ctx, 5000);
	g.gid_index = gift_find_v4_gid(g.ctx, &g.gid);
	if (g.gid_index < 0) {
		fprintf(stderr, "%s has no RoCEv2 IPv4 GID\n", g.ibdev);
		return 1;
	}
	for (i = 0; i < NPAIRS; i++) {
		if (pair_open(&g.pairs[i], i,
			      i < NVICTIM ? &victim_attr[i] : &safe_attr,
			      i == NVICTIM)) {
			fprintf(stderr, "pair %d: %s\n", i, strerror(errno));
			return 1;
		}
	}

	corpus_build();
	if (!g.failed && !corpus_check())
		fuzz_loop(secs, rate);
	if (!g.splat && kmsg_splat())
		splat_report();
	final_check();
	if (!g.splat && kmsg_splat())
		splat_report();

	pair_close(&g.final);
	for (i = 0; i < NPAIRS; i++)
		pair_close(&g.pairs[i]);
	ibv_close_device(g.ctx);
	printf("# gift_fuzz: %s\n", g.failed ? "FAIL" : "ok");
	return g.failed ? 1 : 0;
}
