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
 * GRH and payload completes with IBV_WC_LOC_LEN_ERR.
 *
 * Multicast (FIXTURE mcast, an IPv4 and an IPv6 group): UD QPs attached
 * to a group each get their own copy of a datagram a third QP sends to it
 * (DestQP 0xFFFFFF), GRH and all; a QP detached, never attached or with
 * another Q_Key gets nothing; attach and detach errors are rxe's; a QP
 * destroyed while attached leaves the others receiving; the limits of
 * query_device are the ones enforced. These tests check the spec, not
 * gift: they run on stock rxe too (`run --driver rxe -- ./ud_test -f
 * mcast`), where gift's counters and limits are not read.
 *
 * Every wait has a deadline: nothing here hangs on a lost completion.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
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
 * The GRH area of a received datagram of @len payload bytes sent from
 * @sgid to @dgid: IPv4 or IPv6 header as the packet carried it.
 */
static bool grh_ok2(const uint8_t *grh, const union ibv_gid *sgid,
		    const union ibv_gid *dgid, int family, uint32_t len,
		    bool imm)
{
	/* UDP, BTH, DETH, ImmDt, payload, pad, ICRC */
	uint32_t l4 = 8 + 12 + 8 + (imm ? 4 : 0) + len + (-len & 3) + 4;
	static const uint8_t zero[20];
	const uint8_t *ip = grh + 20;

	if (family == AF_INET)
		return !memcmp(grh, zero, 20) && ip[0] == 0x45 &&
		       get16(ip + 2) == 20 + l4 && ip[9] == 17 &&
		       !memcmp(ip + 12, sgid->raw + 12, 4) &&
		       !memcmp(ip + 16, dgid->raw + 12, 4);
	return (grh[0] >> 4) == 6 && get16(grh + 4) == l4 && grh[6] == 17 &&
	       !memcmp(grh + 8, sgid->raw, 16) &&
	       !memcmp(grh + 24, dgid->raw, 16);
}

/* The same, for a datagram a device sent to its own @gid. */
static bool grh_ok(const uint8_t *grh, const union ibv_gid *gid, int family,
		   uint32_t len, bool imm)
{
	return grh_ok2(grh, gid, gid, family, len, imm);
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

/* Packets lo received (this namespace's /proc/net/dev); -1 on error. */
static long lo_rx_packets(void)
{
	unsigned long long rx;
	char line[512];
	long ret = -1;
	FILE *f;

	f = fopen("/proc/net/dev", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " lo: %*u %llu", &rx) == 1) {
			ret = (long)rx;
			break;
		}
	fclose(f);
	return ret;
}

/*
 * Datagrams to our own GID, IPv4 and IPv6: with local_shortcut on they
 * reach the receiver without crossing lo (the routes are RTN_LOCAL and
 * RTF_LOCAL), with it off every one of them loops through lo; the bytes
 * are the same either way. lo may carry unrelated packets meanwhile,
 * never as many as we send.
 */
#define UD_LOOP_N	40

TEST_F(ud, local_shortcut_both_paths)
{
	struct ibv_wc swc, rwc;
	long lo0, lo1;
	int old, mode, i;

	old = gift_local_shortcut(1);
	ASSERT_LE(0, old);
	for (mode = 0; mode < 2; mode++) {
		ASSERT_LE(0, gift_local_shortcut(!mode));
		lo0 = lo_rx_packets();
		ASSERT_LE(0, lo0);
		for (i = 0; i < UD_LOOP_N; i++) {
			ASSERT_EQ(0, post_recv(self, self->b, BUF, i));
			ASSERT_EQ(0, send_to(self, self->a, self->b->qp_num,
					     200 + i, 2000 + mode * 100 + i,
					     QKEY, NULL));
			ASSERT_TRUE(complete_both(self->cq, &swc, &rwc));
			ASSERT_EQ(IBV_WC_SUCCESS, rwc.status);
			EXPECT_TRUE(payload_ok(self->buf + BUF, 200 + i,
					       2000 + mode * 100 + i));
		}
		lo1 = lo_rx_packets();
		if (mode == 0) {
			EXPECT_GT(lo0 + UD_LOOP_N, lo1)
				TH_LOG("shortcut: lo received %ld", lo1 - lo0);
		} else {
			EXPECT_LE(lo0 + UD_LOOP_N, lo1)
				TH_LOG("IP path: lo received %ld", lo1 - lo0);
		}
	}
	gift_local_shortcut(old);
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

/* Multicast */

#define MC_RECV		3		/* receiving QPs of the mcast fixture */
#define MC_QPN		0xffffffu	/* IBA 10.5.2.3: a multicast DestQP */

static bool is_gift(const char *ibdev)
{
	return !strncmp(ibdev, "gift", 4);
}

/* @addr of @family as a GID (IPv4 v4-mapped); 0 or -1. */
static int to_gid(int family, const char *addr, union ibv_gid *gid)
{
	memset(gid, 0, sizeof(*gid));
	if (family == AF_INET6)
		return inet_pton(AF_INET6, addr, gid->raw) == 1 ? 0 : -1;
	gid->raw[10] = 0xff;
	gid->raw[11] = 0xff;
	return inet_pton(AF_INET, addr, gid->raw + 12) == 1 ? 0 : -1;
}

/*
 * Makes the host a member of group @addr on the test's netdev through a
 * UDP socket (closing it leaves). gift joins a group itself when the
 * first QP attaches; stock rxe only programs the NIC filter and leaves
 * IP membership to rdma_cm (cma_igmp_send()), and without it the IP stack
 * drops the group's datagrams before rxe sees them. So on rxe the tests
 * join as rdma_cm would; on gift it is how a datagram reaches the device
 * for a group no QP is attached to. Returns the socket, or -1.
 */
static int host_join(int family, const char *addr)
{
	unsigned int ifindex = if_nametoindex(gift_env("GIFT_NETDEV"));
	int fd = socket(family, SOCK_DGRAM, 0);
	int ret = -1;

	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct ip_mreqn m = { .imr_ifindex = ifindex };

		if (inet_pton(AF_INET, addr, &m.imr_multiaddr) == 1)
			ret = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m,
					 sizeof(m));
	} else {
		struct ipv6_mreq m = { .ipv6mr_interface = ifindex };

		if (inet_pton(AF_INET6, addr, &m.ipv6mr_multiaddr) == 1)
			ret = setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP,
					 &m, sizeof(m));
	}
	if (ret) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Whether the host is a member of group @addr, as /proc/net/igmp or
 * /proc/net/igmp6 lists it: 1, 0, or -1 when that cannot be read.
 */
static int host_member(int family, const char *addr)
{
	char want[33], text[16384];
	uint8_t a[16];
	uint32_t v4;
	int i;

	if (family == AF_INET) {
		if (inet_pton(AF_INET, addr, &v4) != 1 ||
		    gift_read_file("/proc/net/igmp", text, sizeof(text)))
			return -1;
		/* The kernel prints the __be32 as a host-order integer. */
		snprintf(want, sizeof(want), "%08X", v4);
	} else {
		if (inet_pton(AF_INET6, addr, a) != 1 ||
		    gift_read_file("/proc/net/igmp6", text, sizeof(text)))
			return -1;
		for (i = 0; i < 16; i++)
			snprintf(want + 2 * i, 3, "%02x", a[i]);
	}
	return !!strstr(text, want);
}

FIXTURE(mcast) {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq[MC_RECV];
	struct ibv_qp *s, *r[MC_RECV];
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	uint8_t *buf;		/* send area, then one per receiver */
	union ibv_gid sgid, mgid;
	int sgid_index;
	int host_fd;		/* rxe: the host's membership (host_join) */
	uint32_t mtu;
	const char *ibdev;
};

FIXTURE_VARIANT(mcast) {
	int family;
	const char *group;
	const char *other;	/* a group no QP is attached to */
};

FIXTURE_VARIANT_ADD(mcast, ipv4) {
	.family = AF_INET,
	.group = "239.255.71.1",
	.other = "239.255.71.2",
};

FIXTURE_VARIANT_ADD(mcast, ipv6) {
	.family = AF_INET6,
	.group = "ff12::4749:4601",
	.other = "ff12::4749:4602",
};

static struct ibv_ah *mc_ah(FIXTURE_DATA(mcast) *self,
			    const union ibv_gid *dgid)
{
	struct ibv_ah_attr ah = { .is_global = 1, .port_num = 1 };

	ah.grh.dgid = *dgid;
	ah.grh.sgid_index = self->sgid_index;
	ah.grh.hop_limit = 64;
	return ibv_create_ah(self->pd, &ah);
}

FIXTURE_SETUP(mcast)
{
	struct ibv_port_attr port;
	int i;

	self->host_fd = -1;
	self->ibdev = gift_env("GIFT_IBDEV");
	self->ctx = gift_open(self->ibdev);
	ASSERT_NE(NULL, self->ctx);
	ASSERT_TRUE(gift_wait_for(gift_have_v4_gid, self->ctx, 10000));
	self->sgid_index = find_gid(self->ctx, variant->family, &self->sgid);
	ASSERT_LE(0, self->sgid_index);
	ASSERT_EQ(0, to_gid(variant->family, variant->group, &self->mgid));
	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &port));
	self->mtu = 128 << port.active_mtu;
	ASSERT_GE(BUF - GRH, self->mtu);
	if (!is_gift(self->ibdev)) {
		self->host_fd = host_join(variant->family, variant->group);
		ASSERT_LE(0, self->host_fd);
	}

	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	self->scq = ibv_create_cq(self->ctx, 32, NULL, NULL, 0);
	ASSERT_NE(NULL, self->scq);
	self->s = ud_qp(self->pd, self->scq);
	ASSERT_NE(NULL, self->s);
	ASSERT_EQ(0, ud_to_rts(self->s, QKEY));
	for (i = 0; i < MC_RECV; i++) {
		self->rcq[i] = ibv_create_cq(self->ctx, 32, NULL, NULL, 0);
		ASSERT_NE(NULL, self->rcq[i]);
		self->r[i] = ud_qp(self->pd, self->rcq[i]);
		ASSERT_NE(NULL, self->r[i]);
		ASSERT_EQ(0, ud_to_rts(self->r[i], QKEY));
	}
	self->ah = mc_ah(self, &self->mgid);
	ASSERT_NE(NULL, self->ah);

	self->buf = aligned_alloc(4096, (1 + MC_RECV) * BUF);
	ASSERT_NE(NULL, self->buf);
	self->mr = ibv_reg_mr(self->pd, self->buf, (1 + MC_RECV) * BUF,
			      IBV_ACCESS_LOCAL_WRITE);
	ASSERT_NE(NULL, self->mr);
}

/*
 * uverbs refuses to destroy a QP still attached (EBUSY, see
 * destroy_attached_busy); closing the context then detaches and destroys
 * it, with whatever else is left.
 */
FIXTURE_TEARDOWN(mcast)
{
	int i;

	if (self->mr)
		ibv_dereg_mr(self->mr);
	free(self->buf);
	if (self->ah)
		ibv_destroy_ah(self->ah);
	for (i = 0; i < MC_RECV; i++) {
		if (self->r[i])
			ibv_destroy_qp(self->r[i]);
		if (self->rcq[i])
			ibv_destroy_cq(self->rcq[i]);
	}
	if (self->s)
		ibv_destroy_qp(self->s);
	if (self->scq)
		ibv_destroy_cq(self->scq);
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ctx)
		ibv_close_device(self->ctx);
	if (self->host_fd >= 0)
		close(self->host_fd);
}

static uint8_t *mc_rbuf(FIXTURE_DATA(mcast) *self, int i)
{
	return self->buf + (1 + i) * BUF;
}

/* Receiver @i's whole area, sentinel-filled, posted to it. */
static int mc_post_recv(FIXTURE_DATA(mcast) *self, int i, uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)mc_rbuf(self, i),
		.length = BUF,
		.lkey = self->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;

	memset(mc_rbuf(self, i), SENTINEL, BUF);
	return ibv_post_recv(self->r[i], &wr, &bad);
}

/* Posts @len bytes of pattern @seed from the sender through @ah. */
static int mc_post_send(FIXTURE_DATA(mcast) *self, struct ibv_ah *ah,
			uint32_t qpn, uint32_t len, uint32_t seed,
			uint32_t qkey, const uint32_t *imm)
{
	struct ibv_sge sge = { (uintptr_t)self->buf, len, self->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = seed,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = imm ? IBV_WR_SEND_WITH_IMM : IBV_WR_SEND,
		.wr.ud = { .ah = ah, .remote_qpn = qpn, .remote_qkey = qkey },
	};
	struct ibv_send_wr *bad;
	uint32_t i;

	for (i = 0; i < len; i++)
		self->buf[i] = gift_pat(i, seed);
	if (imm)
		wr.imm_data = htonl(*imm);
	return ibv_post_send(self->s, &wr, &bad);
}

/* The same to the group, waiting for its successful send completion. */
static int mc_send(FIXTURE_DATA(mcast) *self, uint32_t len, uint32_t seed,
		   uint32_t qkey, const uint32_t *imm)
{
	struct ibv_wc wc;

	if (mc_post_send(self, self->ah, MC_QPN, len, seed, qkey, imm))
		return -1;
	if (!poll_one(self->scq, &wc, WAIT_MS) ||
	    wc.status != IBV_WC_SUCCESS || wc.wr_id != seed)
		return -1;
	return 0;
}

/*
 * What is wrong with receiver @i's next completion, for a datagram of
 * @len bytes of pattern @seed to the group: NULL when nothing is.
 */
static const char *mc_check(FIXTURE_DATA(mcast) *self, int family, int i,
			    uint32_t len, uint32_t seed, uint64_t wr_id,
			    const uint32_t *imm)
{
	struct ibv_wc wc;

	if (!poll_one(self->rcq[i], &wc, WAIT_MS))
		return "no completion";
	if (wc.status != IBV_WC_SUCCESS)
		return "status";
	if (wc.opcode != IBV_WC_RECV)
		return "opcode";
	if (wc.wr_id != wr_id)
		return "wr_id";
	if (wc.byte_len != GRH + len)
		return "byte_len";
	if (wc.src_qp != self->s->qp_num)
		return "src_qp";
	if (wc.qp_num != self->r[i]->qp_num)
		return "qp_num";
	if (!(wc.wc_flags & IBV_WC_GRH))
		return "no IBV_WC_GRH";
	if (!!(wc.wc_flags & IBV_WC_WITH_IMM) != !!imm ||
	    (imm && ntohl(wc.imm_data) != *imm))
		return "immediate data";
	if (!grh_ok2(mc_rbuf(self, i), &self->sgid, &self->mgid, family, len,
		     imm))
		return "GRH";
	if (!payload_ok(mc_rbuf(self, i), len, seed))
		return "payload";
	return NULL;
}

#define EXPECT_MC_GOT(i, len, seed, wr_id, imm) do {			\
	const char *__why = mc_check(self, variant->family, (i), (len),	\
				     (seed), (wr_id), (imm));		\
									\
	if (__why)							\
		TH_LOG("receiver %d, seed %u: %s", (i), (seed), __why);	\
	EXPECT_EQ(NULL, __why);						\
} while (0)

/* Receiver @i got nothing, and its area is untouched. */
#define EXPECT_MC_NOTHING(i) do {					\
	struct ibv_wc __wc;						\
									\
	EXPECT_FALSE(poll_one(self->rcq[(i)], &__wc, QUIET_MS));	\
	EXPECT_TRUE(payload_ok(mc_rbuf(self, (i)) - GRH, 0, 0));	\
} while (0)

/*
 * Two QPs attached to the group each get every datagram the third QP
 * sends to it, 0 bytes to the MTU, with and without immediate data: their
 * own copy, GRH first (source: the sender's GID; destination: the group),
 * then the exact bytes, then their own sentinel; the completion names the
 * sender's QPN. A QP that never attached gets nothing.
 */
TEST_F(mcast, fanout)
{
	uint32_t sizes[] = { 0, 1, 3, 255, 1000, self->mtu };
	uint32_t imm = 0xc0ffee11;
	unsigned int i;
	int k;

	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	ASSERT_EQ(0, ibv_attach_mcast(self->r[1], &self->mgid, 0));
	ASSERT_EQ(0, mc_post_recv(self, 2, 99));
	for (i = 0; i < 2 * sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t len = sizes[i / 2], seed = 2000 + i;
		const uint32_t *im = i & 1 ? &imm : NULL;

		for (k = 0; k < 2; k++)
			ASSERT_EQ(0, mc_post_recv(self, k, i));
		ASSERT_EQ(0, mc_send(self, len, seed, QKEY, im));
		for (k = 0; k < 2; k++)
			EXPECT_MC_GOT(k, len, seed, i, im);
	}
	EXPECT_MC_NOTHING(2);
}

/*
 * A QP detached gets nothing while the others still do; once the last
 * one is detached nobody does (gift has left the group), and attaching
 * again works again.
 */
TEST_F(mcast, detached_gets_nothing)
{
	int k;

	for (k = 0; k < MC_RECV; k++)
		ASSERT_EQ(0, ibv_attach_mcast(self->r[k], &self->mgid, 0));
	/* gift joins the group on the netdev for its QPs. */
	if (is_gift(self->ibdev))
		EXPECT_EQ(1, host_member(variant->family, variant->group));
	ASSERT_EQ(0, ibv_detach_mcast(self->r[2], &self->mgid, 0));
	for (k = 0; k < MC_RECV; k++)
		ASSERT_EQ(0, mc_post_recv(self, k, k));
	ASSERT_EQ(0, mc_send(self, 100, 31, QKEY, NULL));
	EXPECT_MC_GOT(0, 100, 31, 0, NULL);
	EXPECT_MC_GOT(1, 100, 31, 1, NULL);
	EXPECT_MC_NOTHING(2);

	ASSERT_EQ(0, ibv_detach_mcast(self->r[0], &self->mgid, 0));
	ASSERT_EQ(0, ibv_detach_mcast(self->r[1], &self->mgid, 0));
	if (is_gift(self->ibdev))
		EXPECT_EQ(0, host_member(variant->family, variant->group));
	for (k = 0; k < 2; k++)
		ASSERT_EQ(0, mc_post_recv(self, k, 10 + k));
	ASSERT_EQ(0, mc_send(self, 100, 32, QKEY, NULL));
	for (k = 0; k < MC_RECV; k++)
		EXPECT_MC_NOTHING(k);

	ASSERT_EQ(0, ibv_attach_mcast(self->r[1], &self->mgid, 0));
	ASSERT_EQ(0, mc_send(self, 77, 33, QKEY, NULL));
	EXPECT_MC_GOT(1, 77, 33, 11, NULL);
	EXPECT_MC_NOTHING(0);
	EXPECT_MC_NOTHING(2);
}

/*
 * Each attached QP checks the Q_Key itself: the one with another Q_Key
 * drops the datagram (counted on gift) while the other takes it, and the
 * other way round.
 */
TEST_F(mcast, qkey_mismatch_dropped)
{
	struct ibv_qp_attr a = { .qkey = QKEY + 1 };
	bool gift = is_gift(self->ibdev);
	long before = gift ? hw_counter(self->ibdev, "qkey_violations") : 0;

	ASSERT_LE(0, before);
	ASSERT_EQ(0, ibv_modify_qp(self->r[1], &a, IBV_QP_QKEY));
	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	ASSERT_EQ(0, ibv_attach_mcast(self->r[1], &self->mgid, 0));
	ASSERT_EQ(0, mc_post_recv(self, 0, 1));
	ASSERT_EQ(0, mc_post_recv(self, 1, 2));

	ASSERT_EQ(0, mc_send(self, 64, 41, QKEY, NULL));
	EXPECT_MC_GOT(0, 64, 41, 1, NULL);
	EXPECT_MC_NOTHING(1);
	if (gift)
		EXPECT_EQ(before + 1,
			  hw_counter(self->ibdev, "qkey_violations"));

	ASSERT_EQ(0, mc_post_recv(self, 0, 3));
	ASSERT_EQ(0, mc_send(self, 65, 42, QKEY + 1, NULL));
	EXPECT_MC_GOT(1, 65, 42, 2, NULL);
	EXPECT_MC_NOTHING(0);
	if (gift)
		EXPECT_EQ(before + 2,
			  hw_counter(self->ibdev, "qkey_violations"));
}

/*
 * A datagram to a group no QP is attached to, which the host joined
 * (through a socket), reaches the device and is dropped: counted in
 * dropped_pkts on gift, delivered to no QP on either.
 */
TEST_F(mcast, no_group_dropped)
{
	bool gift = is_gift(self->ibdev);
	long before = gift ? hw_counter(self->ibdev, "dropped_pkts") : 0;
	union ibv_gid other;
	struct ibv_ah *ah;
	struct ibv_wc wc;
	int fd;

	ASSERT_LE(0, before);
	ASSERT_EQ(0, to_gid(variant->family, variant->other, &other));
	fd = host_join(variant->family, variant->other);
	ASSERT_LE(0, fd);
	ah = mc_ah(self, &other);
	ASSERT_NE(NULL, ah);
	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	ASSERT_EQ(0, mc_post_recv(self, 0, 1));

	ASSERT_EQ(0, mc_post_send(self, ah, MC_QPN, 50, 51, QKEY, NULL));
	ASSERT_TRUE(poll_one(self->scq, &wc, WAIT_MS));
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_MC_NOTHING(0);
	if (gift)
		EXPECT_EQ(before + 1, hw_counter(self->ibdev, "dropped_pkts"));

	/* The group's own datagrams still arrive. */
	ASSERT_EQ(0, mc_send(self, 52, 53, QKEY, NULL));
	EXPECT_MC_GOT(0, 52, 53, 1, NULL);
	EXPECT_EQ(0, ibv_destroy_ah(ah));
	close(fd);
}

/*
 * A datagram to the group's address with a unicast DestQP, the attached
 * QP's own number. IBA 10.5.2.3 requires DestQP 0xFFFFFF for a multicast
 * destination: gift drops it (counted); stock rxe looks the QPN up and
 * delivers it to that QP as a unicast datagram. Each driver's behaviour
 * is asserted.
 */
TEST_F(mcast, unicast_qpn_to_group)
{
	bool gift = is_gift(self->ibdev);
	long before = gift ? hw_counter(self->ibdev, "dropped_pkts") : 0;
	struct ibv_wc wc;

	ASSERT_LE(0, before);
	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	ASSERT_EQ(0, mc_post_recv(self, 0, 1));
	ASSERT_EQ(0, mc_post_send(self, self->ah, self->r[0]->qp_num, 60, 61,
				  QKEY, NULL));
	ASSERT_TRUE(poll_one(self->scq, &wc, WAIT_MS));
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	if (gift) {
		EXPECT_MC_NOTHING(0);
		EXPECT_EQ(before + 1, hw_counter(self->ibdev, "dropped_pkts"));
	} else {
		EXPECT_MC_GOT(0, 60, 61, 1, NULL);
	}
}

/*
 * Errors, as rxe answers them: an RC QP or a unicast GID is EINVAL;
 * attaching twice succeeds once and for all (one detach undoes it, a
 * second is EINVAL); detaching from a group the QP is not in, or that
 * does not exist, is EINVAL.
 */
TEST_F(mcast, errors)
{
	struct ibv_qp_init_attr init = {
		.send_cq = self->scq,
		.recv_cq = self->scq,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	union ibv_gid other;
	struct ibv_qp *rc;

	ASSERT_EQ(0, to_gid(variant->family, variant->other, &other));
	rc = ibv_create_qp(self->pd, &init);
	ASSERT_NE(NULL, rc);
	EXPECT_EQ(EINVAL, ibv_attach_mcast(rc, &self->mgid, 0));
	EXPECT_EQ(EINVAL, ibv_detach_mcast(rc, &self->mgid, 0));
	EXPECT_EQ(0, ibv_destroy_qp(rc));
	EXPECT_EQ(EINVAL, ibv_attach_mcast(self->r[0], &self->sgid, 0));

	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	EXPECT_EQ(EINVAL, ibv_detach_mcast(self->r[1], &self->mgid, 0));
	EXPECT_EQ(EINVAL, ibv_detach_mcast(self->r[0], &other, 0));
	ASSERT_EQ(0, ibv_attach_mcast(self->r[1], &self->mgid, 0));
	EXPECT_EQ(0, ibv_detach_mcast(self->r[0], &self->mgid, 0));
	EXPECT_EQ(EINVAL, ibv_detach_mcast(self->r[0], &self->mgid, 0));

	/* One detach undid both attaches: r0 gets nothing, r1 does. */
	ASSERT_EQ(0, mc_post_recv(self, 0, 1));
	ASSERT_EQ(0, mc_post_recv(self, 1, 2));
	ASSERT_EQ(0, mc_send(self, 70, 71, QKEY, NULL));
	EXPECT_MC_GOT(1, 70, 71, 2, NULL);
	EXPECT_MC_NOTHING(0);
	EXPECT_EQ(0, ibv_detach_mcast(self->r[1], &self->mgid, 0));
}

/*
 * uverbs refuses to destroy a QP still attached to a group (EBUSY, on
 * either driver: ib_core's rule), and the QP goes on receiving; detached,
 * it is destroyed.
 */
TEST_F(mcast, destroy_attached_busy)
{
	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	EXPECT_EQ(EBUSY, ibv_destroy_qp(self->r[0]));
	ASSERT_EQ(0, mc_post_recv(self, 0, 1));
	ASSERT_EQ(0, mc_send(self, 80, 81, QKEY, NULL));
	EXPECT_MC_GOT(0, 80, 81, 1, NULL);
	ASSERT_EQ(0, ibv_detach_mcast(self->r[0], &self->mgid, 0));
	EXPECT_EQ(0, ibv_destroy_qp(self->r[0]));
	self->r[0] = NULL;
}

/*
 * In a child: two QPs attached to @group ("v4 address" or "v6 address"),
 * receives posted, a burst of datagrams to the group posted, and the
 * process exits at once, everything still attached and in flight. 0 when
 * all of that was set up.
 */
static int exit_attached_child(const char *group)
{
	int family = strchr(group, ':') ? AF_INET6 : AF_INET;
	struct ibv_ah_attr aha = { .is_global = 1, .port_num = 1 };
	struct ibv_context *ctx = gift_open(gift_env("GIFT_IBDEV"));
	struct ibv_qp *qp[3];
	struct ibv_recv_wr rwr = { .num_sge = 1 }, *rbad;
	struct ibv_send_wr swr = { .num_sge = 1, .opcode = IBV_WR_SEND },
			   *sbad;
	struct ibv_sge sge;
	union ibv_gid sgid;
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_ah *ah;
	uint8_t *buf;
	int i, k, idx;

	if (!ctx)
		return 10;
	idx = find_gid(ctx, family, &sgid);
	pd = ibv_alloc_pd(ctx);
	cq = pd ? ibv_create_cq(ctx, 64, NULL, NULL, 0) : NULL;
	buf = malloc(BUF);
	mr = pd && buf ? ibv_reg_mr(pd, buf, BUF, IBV_ACCESS_LOCAL_WRITE) :
			 NULL;
	if (idx < 0 || !cq || !mr ||
	    to_gid(family, group, &aha.grh.dgid))
		return 11;
	aha.grh.sgid_index = idx;
	aha.grh.hop_limit = 64;
	ah = ibv_create_ah(pd, &aha);
	if (!ah)
		return 12;
	for (k = 0; k < 3; k++) {
		qp[k] = ud_qp(pd, cq);
		if (!qp[k] || ud_to_rts(qp[k], QKEY))
			return 13;
	}
	sge = (struct ibv_sge){ (uintptr_t)buf, BUF, mr->lkey };
	rwr.sg_list = &sge;
	swr.sg_list = &sge;
	swr.wr.ud.ah = ah;
	swr.wr.ud.remote_qpn = MC_QPN;
	swr.wr.ud.remote_qkey = QKEY;
	for (k = 0; k < 2; k++) {
		if (ibv_attach_mcast(qp[k], &aha.grh.dgid, 0))
			return 14;
		for (i = 0; i < 8; i++)
			if (ibv_post_recv(qp[k], &rwr, &rbad))
				return 15;
	}
	sge.length = 200;
	for (i = 0; i < 8; i++)
		if (ibv_post_send(qp[2], &swr, &sbad))
			return 16;
	return 0;
}

/*
 * A process that exits with QPs attached and datagrams in flight: its
 * QPs are detached and destroyed by the context's cleanup, nothing
 * leaks (the runner checks the kernel's log and the module's unload),
 * gift leaves the group (no QP is attached any more), and the group
 * works for the next QP to attach.
 */
TEST_F(mcast, exit_attached)
{
	bool gift = is_gift(self->ibdev);

	EXPECT_EQ(0, gift_run_child(exit_attached_child, variant->group));
	if (gift)
		EXPECT_EQ(0, host_member(variant->family, variant->group));
	ASSERT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	if (gift)
		EXPECT_EQ(1, host_member(variant->family, variant->group));
	ASSERT_EQ(0, mc_post_recv(self, 0, 1));
	ASSERT_EQ(0, mc_send(self, 82, 83, QKEY, NULL));
	EXPECT_MC_GOT(0, 82, 83, 1, NULL);
	ASSERT_EQ(0, ibv_detach_mcast(self->r[0], &self->mgid, 0));
	if (gift)
		EXPECT_EQ(0, host_member(variant->family, variant->group));
}

/*
 * query_device's limits are the ones enforced: max_mcast_qp_attach QPs
 * attach to one group and the next gets ENOMEM (the group still serves
 * the others). gift's values are its documented ones.
 */
TEST_F(mcast, qp_attach_limit)
{
	struct ibv_device_attr attr;
	struct ibv_qp **qps;
	int i, k, n;

	ASSERT_EQ(0, ibv_query_device(self->ctx, &attr));
	if (is_gift(self->ibdev)) {
		EXPECT_EQ(1024, attr.max_mcast_grp);
		EXPECT_EQ(56, attr.max_mcast_qp_attach);
		EXPECT_EQ(4096, attr.max_total_mcast_qp_attach);
	}
	ASSERT_LT(0, attr.max_mcast_grp);
	ASSERT_LT(MC_RECV, attr.max_mcast_qp_attach);
	ASSERT_LE(attr.max_mcast_qp_attach, attr.max_total_mcast_qp_attach);
	ASSERT_GE(256, attr.max_mcast_qp_attach);

	n = attr.max_mcast_qp_attach - MC_RECV;
	qps = calloc(n + 1, sizeof(*qps));
	ASSERT_NE(NULL, qps);
	for (k = 0; k < MC_RECV; k++)
		ASSERT_EQ(0, ibv_attach_mcast(self->r[k], &self->mgid, 0));
	for (i = 0; i <= n; i++) {
		qps[i] = ud_qp(self->pd, self->scq);
		ASSERT_NE(NULL, qps[i]);
		ASSERT_EQ(0, ud_to_rts(qps[i], QKEY));
	}
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, ibv_attach_mcast(qps[i], &self->mgid, 0));
	EXPECT_EQ(ENOMEM, ibv_attach_mcast(qps[n], &self->mgid, 0));

	ASSERT_EQ(0, mc_post_recv(self, 0, 1));
	ASSERT_EQ(0, mc_send(self, 20, 21, QKEY, NULL));
	EXPECT_MC_GOT(0, 20, 21, 1, NULL);
	for (i = 0; i <= n; i++) {
		if (i < n)
			EXPECT_EQ(0, ibv_detach_mcast(qps[i], &self->mgid, 0));
		EXPECT_EQ(0, ibv_destroy_qp(qps[i]));
	}
	free(qps);
}

/*
 * max_mcast_grp groups take a QP each and the next group gets ENOMEM; a
 * group freed by its last detach makes room again. IPv4 groups only (the
 * table is one for both families); a device advertising more than 2048
 * groups (rxe: 8192) is checked up to 2048, which must all succeed.
 */
TEST_F(mcast, group_limit)
{
	struct ibv_device_attr attr;
	union ibv_gid g;
	char addr[32];
	int i, n;

	if (variant->family != AF_INET)
		return;
	ASSERT_EQ(0, ibv_query_device(self->ctx, &attr));
	n = attr.max_mcast_grp < 2048 ? attr.max_mcast_grp : 2048;
	for (i = 0; i < n; i++) {
		snprintf(addr, sizeof(addr), "239.254.%d.%d", i / 256, i % 256);
		ASSERT_EQ(0, to_gid(AF_INET, addr, &g));
		ASSERT_EQ(0, ibv_attach_mcast(self->r[i % MC_RECV], &g, 0));
	}
	if (n == attr.max_mcast_grp) {
		EXPECT_EQ(ENOMEM, ibv_attach_mcast(self->r[0], &self->mgid,
						   0));
		ASSERT_EQ(0, to_gid(AF_INET, "239.254.0.0", &g));
		ASSERT_EQ(0, ibv_detach_mcast(self->r[0], &g, 0));
		EXPECT_EQ(0, ibv_attach_mcast(self->r[0], &self->mgid, 0));
	}
}

TEST_HARNESS_MAIN
