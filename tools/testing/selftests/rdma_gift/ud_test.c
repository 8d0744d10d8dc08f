// SPDX-License-Identifier: GPL-2.0
/*
 * UD queue pairs of gift devices: two UD QPs on the device sending to
 * each other in loopback through an address handle for its own RoCEv2
 * GID, IPv4 (v4-mapped) and IPv6 (link-local) alike (FIXTURE_VARIANT).
 *
 * Every received byte is checked: the 40-byte GRH area holds the IP header
 * of the packet as it arrived (IPv4: 20 zero bytes, then the IPv4 header),
 * the payload follows it byte for byte (a pattern of the sender's), and
 * the rest of the buffer keeps its sentinel. Completions carry the exact
 * length (GRH included), the sender's QPN and IBV_WC_GRH. A wrong Q_Key
 * is dropped and counted (qkey_violations and the port's qkey_viol_cntr),
 * a controlled Q_Key in the WR means the QP's own, a datagram over the
 * MTU fails at post with EMSGSIZE, a receive buffer too short for the
 * GRH and payload completes with IBV_WC_LOC_LEN_ERR, and multicast
 * attach is refused.
 *
 * Every wait has a deadline: nothing here hangs on a lost completion.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "gift_util.h"
#include "gift_harness.h"

#define GRH		40
#define QKEY		0x1234abcdu
#define BUF		8192	/* each of the send and receive areas */
#define SENTINEL	0xa5
#define WAIT_MS		(10000 * gift_slow())
#define QUIET_MS	(300 * gift_slow())

/* Index and value of the device's first RoCEv2 GID of @family. */
static int find_gid(struct ibv_context *ctx, int family, union ibv_gid *gid)
{
	static const uint8_t v4_prefix[12] = { [10] = 0xff, [11] = 0xff };
	struct ibv_gid_entry ent[64];
	ssize_t n, i;
	bool v4;

	if (family == AF_INET)
		return gift_find_v4_gid(ctx, gid);
	n = ibv_query_gid_table(ctx, ent, 64, 0);
	for (i = 0; i < n; i++) {
		v4 = !memcmp(ent[i].gid.raw, v4_prefix, sizeof(v4_prefix));
		if (ent[i].gid_type != IBV_GID_TYPE_ROCE_V2 || v4)
			continue;
		*gid = ent[i].gid;
		return ent[i].gid_index;
	}
	return -1;
}

static long hw_counter(const char *ibdev, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s", ibdev, name);
	return gift_read_long(path);
}

static struct ibv_qp *ud_qp(struct ibv_pd *pd, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr init = {
		.send_cq = cq,
		.recv_cq = cq,
		.cap = { .max_send_wr = 16, .max_recv_wr = 16,
			 .max_send_sge = 2, .max_recv_sge = 2,
			 .max_inline_data = 64 },
		.qp_type = IBV_QPT_UD,
		.sq_sig_all = 1,
	};

	return ibv_create_qp(pd, &init);
}

static int ud_to_rts(struct ibv_qp *qp, uint32_t qkey)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qkey = qkey,
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_QKEY))
		return -1;
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		return -1;
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0x4242;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

FIXTURE(ud) {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *a, *b;
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	uint8_t *buf;		/* send area, then receive area */
	union ibv_gid gid;
	uint32_t mtu;
	const char *ibdev;
};

FIXTURE_VARIANT(ud) {
	int family;
};

FIXTURE_VARIANT_ADD(ud, ipv4) {
	.family = AF_INET,
};

FIXTURE_VARIANT_ADD(ud, ipv6) {
	.family = AF_INET6,
};

FIXTURE_SETUP(ud)
{
	struct ibv_ah_attr ah = { .is_global = 1, .port_num = 1 };
	struct ibv_port_attr port;
	int idx;

	self->ibdev = gift_env("GIFT_IBDEV");
	self->ctx = gift_open(self->ibdev);
	ASSERT_NE(NULL, self->ctx);
	ASSERT_TRUE(gift_wait_for(gift_have_v4_gid, self->ctx, 10000));
	idx = find_gid(self->ctx, variant->family, &self->gid);
	ASSERT_LE(0, idx);
	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &port));
	self->mtu = 128 << port.active_mtu;
	ASSERT_GE(BUF - GRH, self->mtu + 64);

	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	self->cq = ibv_create_cq(self->ctx, 64, NULL, NULL, 0);
	ASSERT_NE(NULL, self->cq);
	self->a = ud_qp(self->pd, self->cq);
	self->b = ud_qp(self->pd, self->cq);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->b);
	ASSERT_EQ(0, ud_to_rts(self->a, QKEY));
	ASSERT_EQ(0, ud_to_rts(self->b, QKEY));

	ah.grh.dgid = self->gid;
	ah.grh.sgid_index = idx;
	ah.grh.hop_limit = 64;
	self->ah = ibv_create_ah(self->pd, &ah);
	ASSERT_NE(NULL, self->ah);

	self->buf = aligned_alloc(4096, 2 * BUF);
	ASSERT_NE(NULL, self->buf);
	self->mr = ibv_reg_mr(self->pd, self->buf, 2 * BUF,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->mr);
}

FIXTURE_TEARDOWN(ud)
{
	if (self->mr)
		ibv_dereg_mr(self->mr);
	free(self->buf);
	if (self->ah)
		ibv_destroy_ah(self->ah);
	if (self->b)
		ibv_destroy_qp(self->b);
	if (self->a)
		ibv_destroy_qp(self->a);
	if (self->cq)
		ibv_destroy_cq(self->cq);
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/* The receive area, @len bytes of it posted to @qp, sentinel-filled. */
static int post_recv(FIXTURE_DATA(ud) *self, struct ibv_qp *qp, uint32_t len,
		     uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(self->buf + BUF),
		.length = len,
		.lkey = self->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;

	memset(self->buf + BUF, SENTINEL, BUF);
	return ibv_post_recv(qp, &wr, &bad);
}

/* @len bytes of pattern @seed from @from to @to_qpn, in two SGEs. */
static int send_to(FIXTURE_DATA(ud) *self, struct ibv_qp *from,
		   uint32_t to_qpn, uint32_t len, uint32_t seed,
		   uint32_t qkey, const uint32_t *imm)
{
	uint32_t half = len / 2;
	struct ibv_sge sge[2] = {
		{ (uintptr_t)self->buf, half, self->mr->lkey },
		{ (uintptr_t)self->buf + half + 100, len - half,
		  self->mr->lkey },
	};
	struct ibv_send_wr wr = {
		.wr_id = seed,
		.sg_list = sge,
		.num_sge = 2,
		.opcode = imm ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND,
		.wr.ud = { .ah = self->ah, .remote_qpn = to_qpn,
			   .remote_qkey = qkey },
	};
	struct ibv_send_wr *bad = NULL;
	uint32_t i;
	int ret;

	for (i = 0; i < half; i++)
		self->buf[i] = gift_pat(i, seed);
	for (i = half; i < len; i++)
		self->buf[i + 100] = gift_pat(i, seed);
	if (imm)
		wr.imm_data = htonl(*imm);
	ret = ibv_post_send(from, &wr, &bad);
	if (ret && bad != &wr)
		return -1;
	return ret;
}

/* Polls one completion within @ms; false when none came. */
static bool poll_one(struct ibv_cq *cq, struct ibv_wc *wc, int ms)
{
	long long end = gift_now_us() + ms * 1000LL;

	do {
		if (ibv_poll_cq(cq, 1, wc) == 1)
			return true;
		usleep(200);
	} while (gift_now_us() < end);
	return false;
}

/* The send completion and the receive completion of one datagram. */
static bool complete_both(struct ibv_cq *cq, struct ibv_wc *swc,
			  struct ibv_wc *rwc)
{
	struct ibv_wc wc[2];
	int i;

	for (i = 0; i < 2; i++)
		if (!poll_one(cq, &wc[i], WAIT_MS))
			return false;
	if (wc[0].opcode & IBV_WC_RECV) {
		*rwc = wc[0];
		*swc = wc[1];
	} else {
		*swc = wc[0];
		*rwc = wc[1];
	}
	return true;
}

static uint16_t get16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

/*
 * The GRH area of a received datagram of @len payload bytes sent from and
 * to @gid: IPv4 or IPv6 header as the packet carried it.
 */
static bool grh_ok(const uint8_t *grh, const union ibv_gid *gid, int family,
		   uint32_t len, bool imm)
{
	/* UDP, BTH, DETH, ImmDt, payload, pad, ICRC */
	uint32_t l4 = 8 + 12 + 8 + (imm ? 4 : 0) + len + (-len & 3) + 4;
	static const uint8_t zero[20];
	const uint8_t *ip = grh + 20;

	if (family == AF_INET)
		return !memcmp(grh, zero, 20) && ip[0] == 0x45 &&
		       get16(ip + 2) == 20 + l4 && ip[9] == 17 &&
		       !memcmp(ip + 12, gid->raw + 12, 4) &&
		       !memcmp(ip + 16, gid->raw + 12, 4);
	return (grh[0] >> 4) == 6 && get16(grh + 4) == l4 && grh[6] == 17 &&
	       !memcmp(grh + 8, gid->raw, 16) &&
	       !memcmp(grh + 24, gid->raw, 16);
}

/* Payload of pattern @seed after the GRH, then sentinel to the end. */
static bool payload_ok(const uint8_t *rbuf, uint32_t len, uint32_t seed)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		if (rbuf[GRH + i] != gift_pat(i, seed))
			return false;
	for (i = GRH + len; i < BUF; i++)
		if (rbuf[i] != SENTINEL)
			return false;
	return true;
}

/*
 * Datagrams of 0 bytes to the MTU, with and without immediate data: the
 * receiver gets the GRH, then every byte, then its own sentinel; the
 * completion says GRH + length, the sender's QPN and IBV_WC_GRH.
 */
TEST_F(ud, send_sizes)
{
	uint32_t sizes[] = { 0, 1, 3, 255, 1000, self->mtu - 1, self->mtu };
	struct ibv_wc swc, rwc;
	uint32_t imm = 0xfeedf00d;
	unsigned int i;

	for (i = 0; i < 2 * sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t len = sizes[i / 2], seed = 1000 + i;
		bool with_imm = i & 1;

		ASSERT_EQ(0, post_recv(self, self->b, GRH + self->mtu + 64, i));
		ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, len, seed,
				     QKEY, with_imm ? &imm : NULL));
		ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
		EXPECT_EQ(IBV_WC_SUCCESS, swc.status);
		EXPECT_EQ(IBV_WC_SEND, swc.opcode);
		EXPECT_EQ(seed, swc.wr_id);
		ASSERT_EQ(IBV_WC_SUCCESS, rwc.status);
		EXPECT_EQ(IBV_WC_RECV, rwc.opcode);
		EXPECT_EQ(i, rwc.wr_id);
		EXPECT_EQ(GRH + len, rwc.byte_len);
		EXPECT_EQ(self->a->qp_num, rwc.src_qp);
		EXPECT_EQ(self->b->qp_num, rwc.qp_num);
		EXPECT_TRUE(rwc.wc_flags & IBV_WC_GRH);
		EXPECT_EQ(with_imm, !!(rwc.wc_flags & IBV_WC_WITH_IMM));
		if (with_imm)
			EXPECT_EQ(imm, ntohl(rwc.imm_data));
		EXPECT_TRUE(grh_ok(self->buf + BUF, &self->gid,
				   variant->family, len, with_imm));
		if (!grh_ok(self->buf + BUF, &self->gid, variant->family, len,
			    with_imm))
			for (int k = 0; k < GRH; k++)
				TH_LOG("grh[%d] %02x", k, self->buf[BUF + k]);
		EXPECT_TRUE(payload_ok(self->buf + BUF, len, seed));
	}
}

/* Both ways: b's datagram to a names b as its source. */
TEST_F(ud, src_qp_both_ways)
{
	struct ibv_wc swc, rwc;

	ASSERT_EQ(0, post_recv(self, self->a, BUF, 7));
	ASSERT_EQ(0, send_to(self, self->b, self->a->qp_num, 100, 77, QKEY,
			     NULL));
	ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
	ASSERT_EQ(IBV_WC_SUCCESS, rwc.status);
	EXPECT_EQ(self->b->qp_num, rwc.src_qp);
	EXPECT_EQ(self->a->qp_num, rwc.qp_num);
	EXPECT_TRUE(payload_ok(self->buf + BUF, 100, 77));
}

/*
 * A datagram with the wrong Q_Key is dropped and counted, and leaves the
 * receive WQE for the next one; a controlled Q_Key (high bit) in the WR
 * sends the QP's own, which the receiver accepts.
 */
TEST_F(ud, qkey_mismatch_dropped)
{
	long before = hw_counter(self->ibdev, "qkey_violations");
	struct ibv_port_attr p0, p1;
	struct ibv_wc swc, rwc;

	ASSERT_LE(0, before);
	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &p0));
	ASSERT_EQ(0, post_recv(self, self->b, BUF, 1));
	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, 64, 5, QKEY + 1,
			     NULL));
	ASSERT_TRUE(poll_one(self->cq, &swc, WAIT_MS));
	EXPECT_EQ(IBV_WC_SUCCESS, swc.status);
	EXPECT_EQ(IBV_WC_SEND, swc.opcode);
	EXPECT_FALSE(poll_one(self->cq, &rwc, QUIET_MS));
	EXPECT_EQ(before + 1, hw_counter(self->ibdev, "qkey_violations"));
	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &p1));
	EXPECT_EQ(p0.qkey_viol_cntr + 1, p1.qkey_viol_cntr);
	EXPECT_TRUE(payload_ok(self->buf + BUF - GRH, 0, 0));

	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, 64, 6,
			     0x80000000u, NULL));
	ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
	ASSERT_EQ(IBV_WC_SUCCESS, rwc.status);
	EXPECT_EQ(1, rwc.wr_id);
	EXPECT_TRUE(payload_ok(self->buf + BUF, 64, 6));
	EXPECT_EQ(before + 1, hw_counter(self->ibdev, "qkey_violations"));
}

/* A datagram to a QP with no receive posted is dropped and counted. */
TEST_F(ud, no_receive_dropped)
{
	long before = hw_counter(self->ibdev, "dropped_pkts");
	struct ibv_wc swc, rwc;

	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, 10, 8, QKEY,
			     NULL));
	ASSERT_TRUE(poll_one(self->cq, &swc, WAIT_MS));
	EXPECT_EQ(IBV_WC_SUCCESS, swc.status);
	ASSERT_EQ(0, post_recv(self, self->b, BUF, 2));
	EXPECT_FALSE(poll_one(self->cq, &rwc, QUIET_MS));
	EXPECT_EQ(before + 1, hw_counter(self->ibdev, "dropped_pkts"));
	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, 10, 9, QKEY,
			     NULL));
	ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
	ASSERT_EQ(IBV_WC_SUCCESS, rwc.status);
	EXPECT_TRUE(payload_ok(self->buf + BUF, 10, 9));
}

/* Over the port's MTU: refused at post, nothing sent, the QP unharmed. */
TEST_F(ud, over_mtu_refused_at_post)
{
	struct ibv_wc swc, rwc;

	/*
	 * Nothing of the refused message reaches the receive posted
	 * first: the next one fills it. (Not sent_pkts: ib_mad's and
	 * ib_cm's MADs go out on the same device at any time.)
	 */
	ASSERT_EQ(0, post_recv(self, self->b, BUF, 3));
	EXPECT_EQ(EMSGSIZE, send_to(self, self->a, self->b->qp_num,
				    self->mtu + 1, 3, QKEY, NULL));
	EXPECT_FALSE(poll_one(self->cq, &swc, QUIET_MS));
	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, self->mtu, 4,
			     QKEY, NULL));
	ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
	EXPECT_EQ(IBV_WC_SUCCESS, rwc.status);
	EXPECT_TRUE(payload_ok(self->buf + BUF, self->mtu, 4));
}

/*
 * A receive buffer shorter than the GRH plus the payload completes with
 * IBV_WC_LOC_LEN_ERR and the QP goes on receiving.
 */
TEST_F(ud, short_buffer_len_error)
{
	struct ibv_wc swc, rwc;

	ASSERT_EQ(0, post_recv(self, self->b, GRH + 10, 4));
	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, 11, 10, QKEY,
			     NULL));
	ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
	EXPECT_EQ(IBV_WC_SUCCESS, swc.status);
	EXPECT_EQ(IBV_WC_LOC_LEN_ERR, rwc.status);
	EXPECT_EQ(4, rwc.wr_id);

	ASSERT_EQ(0, post_recv(self, self->b, GRH + 10, 5));
	ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num, 10, 11, QKEY,
			     NULL));
	ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
	EXPECT_EQ(IBV_WC_SUCCESS, rwc.status);
	EXPECT_EQ(GRH + 10, rwc.byte_len);
	EXPECT_TRUE(payload_ok(self->buf + BUF, 10, 11));
}

/*
 * Forged from user space over IPv4 to the device's address (the harness
 * socket of gift_util.h): a packet of RC opcode @opcode (no DETH) with a
 * 4-byte payload to @qpn, valid ICRC. 0 once sent.
 */
static int forge_rc(uint32_t qpn, uint8_t opcode)
{
	struct sockaddr_storage dst;
	uint8_t b[GIFT_BTH_BYTES + 4 + GIFT_ICRC_BYTES] = {};
	struct gift_flow f;
	ssize_t n;
	int fd;

	fd = gift_flow_socket(AF_INET, gift_env("GIFT_IP"), NULL, &f, &dst);
	if (fd < 0)
		return -1;
	b[0] = opcode;
	gift_put16(b + 2, 0xffff);
	gift_put32(b + 4, qpn & 0xffffff);
	gift_put32(b + 8, 1u << 31);	/* AckReq, PSN 0 */
	gift_put_icrc(b + GIFT_BTH_BYTES + 4,
		      gift_icrc(&f, b, GIFT_BTH_BYTES + 4));
	n = sendto(fd, b, sizeof(b), 0, (struct sockaddr *)&dst,
		   sizeof(struct sockaddr_in));
	close(fd);
	return n == sizeof(b) ? 0 : -1;
}

/*
 * Packets of other transports sent to a UD QP and to the GSI QP (QPN 1)
 * have no DETH: dropped and counted, nothing delivered, no crash (the
 * fuzzer found the DETH read before the opcode check).
 */
TEST_F(ud, rc_opcodes_to_ud_qps_dropped)
{
	long before = hw_counter(self->ibdev, "dropped_pkts");
	const uint8_t ops[] = { 0x04, 0x0a, 0x0c, 0x11 };
	struct ibv_wc wc;
	unsigned int i;

	if (variant->family != AF_INET)
		return;
	ASSERT_EQ(0, post_recv(self, self->b, BUF, 1));
	for (i = 0; i < sizeof(ops); i++) {
		ASSERT_EQ(0, forge_rc(self->b->qp_num, ops[i]));
		ASSERT_EQ(0, forge_rc(1, ops[i]));
	}
	EXPECT_FALSE(poll_one(self->cq, &wc, QUIET_MS));
	EXPECT_EQ(before + 2 * sizeof(ops),
		  hw_counter(self->ibdev, "dropped_pkts"));
	EXPECT_TRUE(payload_ok(self->buf + BUF - GRH, 0, 0));
}

/*
 * Multicast is not implemented: attaching a UD QP to a multicast GID is
 * refused (never accepted and then dropped).
 */
TEST_F(ud, attach_mcast_refused)
{
	union ibv_gid mgid = { .raw = { 0xff, 0x0e, [15] = 1 } };

	EXPECT_EQ(EOPNOTSUPP, ibv_attach_mcast(self->a, &mgid, 0));
}

static int drop_cap_net_raw(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_NET_RAW / 32].effective &= ~(1u << (CAP_NET_RAW % 32));
	return syscall(SYS_capset, &h, d);
}

/* In a child: a controlled Q_Key needs CAP_NET_RAW; 0 when it does. */
static int controlled_qkey_child(const char *ibdev)
{
	struct ibv_context *ctx = gift_open(ibdev);
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qkey = 0x80000001u };
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
		   IBV_QP_QKEY;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;

	if (!ctx)
		return 10;
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, 4, NULL, NULL, 0) : NULL;
	qp = cq ? ud_qp(pd, cq) : NULL;
	if (!qp)
		return 11;
	if (drop_cap_net_raw())
		return 12;
	if (ibv_modify_qp(qp, &a, mask) != EPERM)
		return 13;
	a.qkey = 0x7fffffffu;
	if (ibv_modify_qp(qp, &a, mask))
		return 14;
	return 0;
}

/*
 * Controlled Q_Keys (IBA 10.2.5) are for privileged consumers: root sets
 * one, a process without CAP_NET_RAW gets EPERM (and sets any other).
 */
TEST_F(ud, controlled_qkey_needs_cap_net_raw)
{
	struct ibv_qp_attr a = { .qkey = 0x80000001u };
	struct ibv_qp_init_attr init;

	ASSERT_EQ(0, ibv_modify_qp(self->a, &a, IBV_QP_QKEY));
	ASSERT_EQ(0, ibv_query_qp(self->a, &a, IBV_QP_QKEY, &init));
	EXPECT_EQ(0x80000001u, a.qkey);
	EXPECT_EQ(0, gift_run_child(controlled_qkey_child, self->ibdev));
}

TEST_HARNESS_MAIN
