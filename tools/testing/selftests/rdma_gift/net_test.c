// SPDX-License-Identifier: GPL-2.0
/*
 * The RoCEv2 network layer: the hardware counters, and what the receive
 * path does with packets that are not valid RoCEv2.
 *
 * Packets are sent from user space with plain UDP sockets to the device's
 * address, port 4791; they loop back through lo into the driver's socket.
 * The test builds their ICRC itself (gift_icrc() in gift_util.c, from the
 * IBTA definition), so a packet the driver takes for valid is also a
 * cross-check of its ICRC code.
 *
 * Valid packets are addressed to a QP that does not exist and are
 * dropped as such, in dropped_pkts. The RC tests then forge packets at
 * live, connected RC QPs, as an attacker on the segment could: responses
 * outside the requester's window, duplicate READs, packets that are not
 * of the connection; they check the exact counters, completions and
 * what the device sends back (watched on lo with a packet socket).
 *
 * The last test reloads the module while another socket holds port 4791
 * and expects EADDRINUSE, then restores the runner's device.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gift_util.h"
#include "gift_harness.h"

/*
 * The top QPN the driver can allocate: QPNs are random, so a live QP has
 * it once in 16 million QPs.
 */
#define NO_SUCH_QPN	0xfffffe

/* IB_OPCODE_* values (include/rdma/ib_pack.h) */
enum {
	OP_RC_SEND_ONLY			= 0x04,
	OP_RC_RDMA_WRITE_ONLY		= 0x0a,
	OP_RC_RDMA_WRITE_ONLY_IMM	= 0x0b,
	OP_RC_RDMA_READ_REQUEST		= 0x0c,
	OP_RC_ACKNOWLEDGE		= 0x11,
	OP_RC_COMPARE_SWAP		= 0x13,
	OP_UD_SEND_ONLY			= 0x64,
};

static const char *const counter_names[] = {
	"sent_pkts", "rcvd_pkts", "sent_bytes", "rcvd_bytes", "send_errors",
	"icrc_errors", "dropped_pkts", "retransmits", "rnr_naks_sent",
	"rnr_naks_rcvd", "seq_naks_sent", "seq_naks_rcvd",
	"duplicate_requests", "retry_exceeded", "rnr_retry_exceeded",
};

/* The counters the receive tests watch. */
struct counts {
	long rcvd;
	long icrc;
	long dropped;
};

struct counts_wait {
	const char *ibdev;
	struct counts want;
};

static long read_counter(const char *ibdev, const char *name)
{
	char path[256];

	snprintf(path, sizeof(path),
		 "/sys/class/infiniband/%s/ports/1/hw_counters/%s", ibdev, name);
	return gift_read_long(path);
}

static struct counts read_counts(const char *ibdev)
{
	struct counts c = {
		.rcvd = read_counter(ibdev, "rcvd_pkts"),
		.icrc = read_counter(ibdev, "icrc_errors"),
		.dropped = read_counter(ibdev, "dropped_pkts"),
	};

	return c;
}

static bool counts_equal(struct counts a, struct counts b)
{
	return a.rcvd == b.rcvd && a.icrc == b.icrc && a.dropped == b.dropped;
}

static bool counts_reached(const void *arg)
{
	const struct counts_wait *w = arg;

	return counts_equal(read_counts(w->ibdev), w->want);
}

/*
 * Waits for the counters to reach @want, then a little longer to make
 * sure they do not go past it. sysfs caches hw counters for 10 ms.
 */
static struct counts settle(const char *ibdev, struct counts want)
{
	struct counts_wait w = { .ibdev = ibdev, .want = want };

	gift_wait_for(counts_reached, &w, 3000 * gift_slow());
	usleep(100 * 1000 * gift_slow());
	return read_counts(ibdev);
}

/*
 * Kernel log lines at warning level or worse. "callbacks suppressed" is
 * the ratelimit's own warning, which the driver's ratelimited debug
 * messages cause when they are enabled.
 */
static long dmesg_warnings(void)
{
	char line[1024];
	long n = 0;
	FILE *f;

	f = popen("dmesg --level=emerg,alert,crit,err,warn", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strstr(line, "callbacks suppressed"))
			n++;
	pclose(f);
	return n;
}

struct pkt {
	uint8_t b[2048];
	size_t len;
};

/* A BTH: P_Key 0xffff, AckReq set, PSN 0x123456. */
static void pkt_bth(struct pkt *p, uint8_t opcode, unsigned int pad,
		    unsigned int tver, uint32_t qpn)
{
	memset(p, 0, sizeof(*p));
	p->b[0] = opcode;
	p->b[1] = (pad << 4) | tver;
	gift_put16(&p->b[2], 0xffff);
	gift_put32(&p->b[4], qpn & 0xffffff);
	gift_put32(&p->b[8], 0x80000000 | 0x123456);
	p->len = GIFT_BTH_BYTES;
}

/* Appends @len bytes of a pattern (extension headers or payload). */
static void pkt_fill(struct pkt *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p->b[p->len + i] = 0xa0 + i;
	p->len += len;
}

/* Appends the ICRC for @f, XORed with @corrupt, least significant first. */
static void pkt_finish(struct pkt *p, const struct gift_flow *f,
		       uint32_t corrupt)
{
	gift_put_icrc(p->b + p->len, gift_icrc(f, p->b, p->len) ^ corrupt);
	p->len += GIFT_ICRC_BYTES;
}

static int send_pkt(int fd, const struct pkt *p,
		    const struct sockaddr_storage *dst)
{
	socklen_t len = dst->ss_family == AF_INET ?
			sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

	return sendto(fd, p->b, p->len, 0, (const struct sockaddr *)dst,
		      len) == (ssize_t)p->len ? 0 : -1;
}

/* A valid packet of @opcode with @ext bytes of headers and @payload bytes. */
static void valid_pkt(struct pkt *p, const struct gift_flow *f, uint8_t opcode,
		      size_t ext, size_t payload)
{
	pkt_bth(p, opcode, -payload & 3, 0, NO_SUCH_QPN);
	pkt_fill(p, ext + payload + (-payload & 3));
	pkt_finish(p, f, 0);
}

/* The "rdma statistic show link DEV/1" output, or NULL. */
static char *rdma_stats(const char *ibdev)
{
	static char out[4096];
	size_t n;
	char cmd[128];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma statistic show link %s/1", ibdev);
	f = popen(cmd, "r");
	if (!f)
		return NULL;
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	if (pclose(f))
		return NULL;
	return out;
}

/* The value of counter @name in rdma_stats() output, -1 if missing. */
static long rdma_stat(const char *out, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), " %s ", name);
	p = strstr(out, key);
	if (!p)
		return -1;
	return strtol(p + strlen(key), NULL, 10);
}

TEST(counters_listed_by_rdma_tool)
{
	const char *ibdev = gift_env("GIFT_IBDEV");
	char path[256];
	const char *out;
	size_t i;

	out = rdma_stats(ibdev);
	ASSERT_NE(NULL, out);
	TH_LOG("%s", out);
	for (i = 0; i < sizeof(counter_names) / sizeof(counter_names[0]); i++) {
		EXPECT_LE(0, rdma_stat(out, counter_names[i])) {
			TH_LOG("counter %s not listed", counter_names[i]);
		}
		snprintf(path, sizeof(path),
			 "/sys/class/infiniband/%s/ports/1/hw_counters/%s",
			 ibdev, counter_names[i]);
		EXPECT_TRUE(gift_path_exists(path));
	}
}

FIXTURE(fresh) {
	char netdev[16];
	char name[32];
};

FIXTURE_SETUP(fresh)
{
	snprintf(self->netdev, sizeof(self->netdev), "gnt%d", getpid() % 1000);
	snprintf(self->name, sizeof(self->name), "giftn%d", getpid() % 1000);
	ASSERT_EQ(0, gift_dummy_add(self->netdev));
	ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
}

FIXTURE_TEARDOWN(fresh)
{
	if (gift_ibdev_exists(self->name))
		gift_link_del(self->name);
	gift_dummy_del(self->netdev);
}

TEST_F(fresh, counters_zero_on_new_device)
{
	const char *out = rdma_stats(self->name);
	size_t i;

	ASSERT_NE(NULL, out);
	for (i = 0; i < sizeof(counter_names) / sizeof(counter_names[0]); i++) {
		EXPECT_EQ(0, rdma_stat(out, counter_names[i])) {
			TH_LOG("counter %s", counter_names[i]);
		}
		EXPECT_EQ(0, read_counter(self->name, counter_names[i]));
	}
}

FIXTURE(net) {
	const char *ibdev;
	int fd;
	struct gift_flow flow;
	struct sockaddr_storage dst;
	struct counts base;
	long warnings;
};

FIXTURE_SETUP(net)
{
	self->ibdev = gift_env("GIFT_IBDEV");
	self->fd = gift_flow_socket(AF_INET, gift_env("GIFT_IP"), NULL,
				    &self->flow, &self->dst);
	ASSERT_LE(0, self->fd);
	self->base = read_counts(self->ibdev);
	ASSERT_LE(0, self->base.rcvd);
	self->warnings = dmesg_warnings();
}

FIXTURE_TEARDOWN(net)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Expects the counters to have grown by exactly (rcvd, icrc, dropped)
 * since setup, and the kernel log to have no new warnings.
 */
#define EXPECT_DELTA(_rcvd, _icrc, _dropped) do {			\
	struct counts want = {						\
		.rcvd = self->base.rcvd + (_rcvd),			\
		.icrc = self->base.icrc + (_icrc),			\
		.dropped = self->base.dropped + (_dropped),		\
	};								\
	struct counts got = settle(self->ibdev, want);			\
									\
	EXPECT_EQ(want.rcvd, got.rcvd);					\
	EXPECT_EQ(want.icrc, got.icrc);					\
	EXPECT_EQ(want.dropped, got.dropped);				\
	EXPECT_EQ(self->warnings, dmesg_warnings());			\
} while (0)

/* Shorter than a BTH and an ICRC: dropped_pkts. */
TEST_F(net, short_packets_dropped)
{
	static const size_t sizes[] = { 0, 1, 4, 8, 11, 12, 15 };
	struct pkt p;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		pkt_bth(&p, OP_RC_SEND_ONLY, 0, 0, NO_SUCH_QPN);
		p.len = sizes[i];
		ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));
	}
	EXPECT_DELTA(0, 0, sizeof(sizes) / sizeof(sizes[0]));
}

/* A wrong ICRC, a corrupted payload, an ICRC for another flow. */
TEST_F(net, bad_icrc_counted)
{
	struct gift_flow other = self->flow;
	uint32_t psn;
	uint8_t *icrc;
	struct pkt p;
	int i;

	valid_pkt(&p, &self->flow, OP_RC_SEND_ONLY, 0, 8);
	p.b[p.len - 1] ^= 0x80;
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	valid_pkt(&p, &self->flow, OP_RC_SEND_ONLY, 0, 8);
	p.b[GIFT_BTH_BYTES + 3] ^= 1;
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	other.sport++;
	valid_pkt(&p, &other, OP_RC_SEND_ONLY, 0, 8);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/*
	 * Just a BTH and an ICRC, the ICRC byte-swapped: with a PSN whose
	 * ICRC is no palindrome, which would read the same swapped (the
	 * ICRC depends on the flow's random source port).
	 */
	for (psn = 0x123456; ; psn++) {
		pkt_bth(&p, OP_RC_SEND_ONLY, 0, 0, NO_SUCH_QPN);
		gift_put32(&p.b[8], 0x80000000 | psn);
		pkt_finish(&p, &self->flow, 0);
		icrc = &p.b[p.len - 4];
		if (icrc[0] != icrc[3] || icrc[1] != icrc[2])
			break;
	}
	for (i = 0; i < 2; i++) {
		uint8_t t = icrc[i];

		icrc[i] = icrc[3 - i];
		icrc[3 - i] = t;
	}
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	EXPECT_DELTA(0, 4, 0);
}

/* Unknown opcodes with a good ICRC: dropped_pkts. */
TEST_F(net, unknown_opcodes_dropped)
{
	/*
	 * RC reserved, UC reserved (UC has SEND and RDMA WRITE only), RD,
	 * UD other than SEND only, CNP, vendor
	 */
	static const uint8_t ops[] = { 0x15, 0x18, 0x1f, 0x2c, 0x31, 0x40,
				       0x60, 0x66, 0x81, 0xe0, 0xff };
	struct pkt p;
	size_t i;

	for (i = 0; i < sizeof(ops); i++) {
		valid_pkt(&p, &self->flow, ops[i], 0, 8);
		ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));
	}
	EXPECT_DELTA(0, 0, sizeof(ops));
}

/* Transport header versions other than 0: dropped_pkts. */
TEST_F(net, bad_tver_dropped)
{
	struct pkt p;

	pkt_bth(&p, OP_RC_SEND_ONLY, 0, 1, NO_SUCH_QPN);
	pkt_fill(&p, 8);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	pkt_bth(&p, OP_RC_SEND_ONLY, 0, 15, NO_SUCH_QPN);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	EXPECT_DELTA(0, 0, 2);
}

/* Too short for the opcode's headers and pad, or payload where none goes. */
TEST_F(net, truncated_headers_dropped)
{
	struct pkt p;

	/* RDMA WRITE only: RETH is 16 bytes. */
	pkt_bth(&p, OP_RC_RDMA_WRITE_ONLY, 0, 0, NO_SUCH_QPN);
	pkt_fill(&p, 8);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* ACK without its AETH */
	pkt_bth(&p, OP_RC_ACKNOWLEDGE, 0, 0, NO_SUCH_QPN);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* compare & swap: AtomicETH is 28 bytes */
	pkt_bth(&p, OP_RC_COMPARE_SWAP, 0, 0, NO_SUCH_QPN);
	pkt_fill(&p, 24);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* UD SEND only: DETH is 8 bytes */
	pkt_bth(&p, OP_UD_SEND_ONLY, 0, 0, NO_SUCH_QPN);
	pkt_fill(&p, 4);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* PadCnt 3 with 2 bytes of payload */
	pkt_bth(&p, OP_RC_SEND_ONLY, 3, 0, NO_SUCH_QPN);
	pkt_fill(&p, 2);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* ACK with 4 bytes after its AETH */
	pkt_bth(&p, OP_RC_ACKNOWLEDGE, 0, 0, NO_SUCH_QPN);
	pkt_fill(&p, 4 + 4);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* RDMA READ request with pad */
	pkt_bth(&p, OP_RC_RDMA_READ_REQUEST, 1, 0, NO_SUCH_QPN);
	pkt_fill(&p, 16 + 4);
	pkt_finish(&p, &self->flow, 0);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	EXPECT_DELTA(0, 0, 7);
}

/*
 * Valid packets (good ICRC, known opcode, complete headers) reach the
 * engine, which drops them for their unknown QPN: rcvd_pkts and
 * dropped_pkts, never icrc_errors. This is the ICRC cross-check.
 */
TEST_F(net, valid_packets_to_unknown_qpn_ipv4)
{
	static const struct {
		uint8_t opcode;
		size_t ext, payload;
	} pkts[] = {
		{ OP_RC_SEND_ONLY, 0, 0 },
		{ OP_RC_SEND_ONLY, 0, 5 },
		{ OP_RC_SEND_ONLY, 0, 1024 },
		{ OP_RC_RDMA_WRITE_ONLY_IMM, 16 + 4, 33 },
		{ OP_RC_RDMA_READ_REQUEST, 16, 0 },
		{ OP_RC_ACKNOWLEDGE, 4, 0 },
		{ OP_RC_COMPARE_SWAP, 28, 0 },
		{ OP_UD_SEND_ONLY, 8, 7 },
	};
	const int n = sizeof(pkts) / sizeof(pkts[0]);
	struct pkt p;
	int i;

	for (i = 0; i < n; i++) {
		valid_pkt(&p, &self->flow, pkts[i].opcode, pkts[i].ext,
			  pkts[i].payload);
		ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));
	}
	EXPECT_DELTA(n, 0, n);
}

/*
 * The variant fields are outside the ICRC: a TOS, a TTL and BTH
 * FECN/BECN/reserved bits the ICRC was not computed with do not matter.
 */
TEST_F(net, variant_fields_masked)
{
	int tos = 0xb8, ttl = 7;
	struct pkt p;

	ASSERT_EQ(0, setsockopt(self->fd, IPPROTO_IP, IP_TOS, &tos,
				sizeof(tos)));
	ASSERT_EQ(0, setsockopt(self->fd, IPPROTO_IP, IP_TTL, &ttl,
				sizeof(ttl)));
	valid_pkt(&p, &self->flow, OP_RC_SEND_ONLY, 0, 16);
	p.b[4] = 0xff;
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	/* ...but the ICRC does cover the PSN's reserved bits. */
	valid_pkt(&p, &self->flow, OP_RC_SEND_ONLY, 0, 16);
	p.b[8] ^= 0x01;
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));

	EXPECT_DELTA(1, 1, 1);
}

static bool ipv6_ll(const char *ifname, char *addr, size_t len)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		struct sockaddr_in6 *sin6 = (void *)i->ifa_addr;

		if (!sin6 || sin6->sin6_family != AF_INET6 ||
		    strcmp(i->ifa_name, ifname) ||
		    !IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr))
			continue;
		found = inet_ntop(AF_INET6, &sin6->sin6_addr, addr, len);
	}
	freeifaddrs(ifa);
	return found;
}

struct ll_socket {
	const char *ifname;
	char addr[INET6_ADDRSTRLEN];
	struct gift_flow flow;
	struct sockaddr_storage dst;
	int fd;
};

/* True once the link-local address exists and is usable (DAD done). */
static bool ll_socket_open(const void *arg)
{
	struct ll_socket *s = (struct ll_socket *)arg;

	if (!ipv6_ll(s->ifname, s->addr, sizeof(s->addr)))
		return false;
	s->fd = gift_flow_socket(AF_INET6, s->addr, s->ifname, &s->flow,
				 &s->dst);
	return s->fd >= 0;
}

/* The same over IPv6, to the device's link-local GID. */
TEST_F(net, valid_packets_to_unknown_qpn_ipv6)
{
	struct ll_socket s = { .ifname = gift_env("GIFT_NETDEV"), .fd = -1 };
	int tclass = 0x2e, hops = 3;
	struct pkt p;

	ASSERT_TRUE(gift_wait_for(ll_socket_open, &s, 5000));
	TH_LOG("from and to %s", s.addr);
	ASSERT_EQ(0, setsockopt(s.fd, IPPROTO_IPV6, IPV6_TCLASS, &tclass,
				sizeof(tclass)));
	ASSERT_EQ(0, setsockopt(s.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops,
				sizeof(hops)));

	valid_pkt(&p, &s.flow, OP_RC_SEND_ONLY, 0, 13);
	ASSERT_EQ(0, send_pkt(s.fd, &p, &s.dst));
	valid_pkt(&p, &s.flow, OP_RC_RDMA_WRITE_ONLY, 16, 100);
	ASSERT_EQ(0, send_pkt(s.fd, &p, &s.dst));
	valid_pkt(&p, &s.flow, OP_RC_SEND_ONLY, 0, 13);
	p.b[p.len - 2] ^= 0x10;
	ASSERT_EQ(0, send_pkt(s.fd, &p, &s.dst));
	close(s.fd);

	EXPECT_DELTA(2, 1, 2);
}

/*
 * A valid packet to a local address that is no device's GID (127.0.0.1,
 * arriving on lo, which has no device) is dropped without touching the
 * device's counters.
 */
TEST_F(net, unknown_destination_ignored)
{
	struct sockaddr_storage dst;
	struct gift_flow f;
	struct pkt p;
	int fd;

	fd = gift_flow_socket(AF_INET, "127.0.0.1", NULL, &f, &dst);
	ASSERT_LE(0, fd);
	valid_pkt(&p, &f, OP_RC_SEND_ONLY, 0, 8);
	ASSERT_EQ(0, send_pkt(fd, &p, &dst));
	close(fd);

	/* Then one that is counted, so the first one was processed too. */
	valid_pkt(&p, &self->flow, OP_RC_SEND_ONLY, 0, 8);
	ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));
	EXPECT_DELTA(1, 0, 1);
}

/*
 * Forged packets to live RC QPs. An attacker on the segment can send us
 * any RoCEv2 packet with a correct ICRC; here user space plays that part,
 * against two RC QPs a and b of the runner's device connected to each
 * other through its IPv4 GID, with b's path (where a's packets come
 * from) the same address our socket sends from. What the device sends in
 * reply is watched on lo with a packet socket, besides the counters.
 */
#define RC_BUF		(64 << 10)
#define A_PSN		0x000100	/* a's first PSN: b expects it */
#define B_PSN		0x000200	/* b's first PSN: a expects it */
#define RC_MTU		1024
#define RC_ACCESS	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | \
			 IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)
#define ACK_SYNDROME	0x1f		/* ACK, no credits */
#define NAK_INV_REQ	0x61
#define NAK_REM_ACCESS	0x62
#define MAX_SEEN	64

enum {
	OP_RC_RDMA_READ_RESP_ONLY	= 0x10,
	OP_RC_ATOMIC_ACKNOWLEDGE	= 0x12,
	OP_RC_RDMA_WRITE_FIRST		= 0x06,
};

/* The counters the RC tests watch. */
struct rcounts {
	long rcvd;
	long sent;
	long dropped;
	long dup;
};

struct rcounts_wait {
	const char *ibdev;
	struct rcounts want;
};

static struct rcounts read_rcounts(const char *ibdev)
{
	struct rcounts c = {
		.rcvd = read_counter(ibdev, "rcvd_pkts"),
		.sent = read_counter(ibdev, "sent_pkts"),
		.dropped = read_counter(ibdev, "dropped_pkts"),
		.dup = read_counter(ibdev, "duplicate_requests"),
	};

	return c;
}

static bool rcounts_reached(const void *arg)
{
	const struct rcounts_wait *w = arg;
	struct rcounts c = read_rcounts(w->ibdev);

	return !memcmp(&c, &w->want, sizeof(c));
}

/* One side: its CQ (send and receive), QP and a registered buffer. */
struct rc_end {
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;
};

/* A packet the device sent, as seen on lo. */
struct seen {
	uint8_t opcode;
	uint8_t syndrome;	/* AETH syndrome, 0 without AETH */
	uint8_t tos;		/* IPv4 TOS */
	uint32_t qpn;
	uint32_t psn;
};

FIXTURE(rc) {
	const char *ibdev;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	union ibv_gid gid;
	int gid_index;
	struct rc_end a, b;
	int fd;			/* forges packets from b's path address */
	struct gift_flow flow;
	struct sockaddr_storage dst;
	int sniff;		/* AF_PACKET on lo */
	int shortcut;		/* local_shortcut before the test, or -1 */
	uint16_t other_sport;	/* of another socket forging packets */
	enum ibv_mtu mtu;	/* path MTU of rc_connect(); 0: 1024 */
	uint8_t timeout;	/* ACK timeout of rc_connect(); 0: 24 */
	struct rcounts base;
	struct seen seen[MAX_SEEN];
	int nseen;
};

static int sniff_open(void)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = if_nametoindex("lo"),
	};
	int fd;

	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    htons(ETH_P_ALL));
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The RoCEv2 packets delivered on lo since the last call (not the
 * outgoing copies, nor those we forged), into self->seen: the BTH opcode, QPN, PSN and AETH
 * syndrome of each.
 */
static int sniff_read(FIXTURE_DATA(rc) *self)
{
	static const uint8_t has_aeth[] = { 0x0d, 0x0f, 0x10, 0x11, 0x12 };
	struct sockaddr_ll sll;
	socklen_t sl;
	uint8_t b[2048], *udp, *bth;
	ssize_t n;
	size_t i;

	self->nseen = 0;
	for (;;) {
		sl = sizeof(sll);
		n = recvfrom(self->sniff, b, sizeof(b), 0,
			     (struct sockaddr *)&sll, &sl);
		if (n < 0)
			return self->nseen;
		if (sll.sll_pkttype == PACKET_OUTGOING || n < 20 ||
		    (b[0] >> 4) != 4 || b[9] != IPPROTO_UDP ||
		    n < (b[0] & 15) * 4 + 8 + GIFT_BTH_BYTES + 4)
			continue;
		udp = b + (b[0] & 15) * 4;
		if (((udp[2] << 8) | udp[3]) != GIFT_ROCE_PORT ||
		    ((udp[0] << 8) | udp[1]) == self->flow.sport ||
		    ((udp[0] << 8) | udp[1]) == self->other_sport ||
		    self->nseen == MAX_SEEN)
			continue;
		bth = udp + 8;
		self->seen[self->nseen] = (struct seen){
			.opcode = bth[0],
			.tos = b[1],
			.qpn = (bth[5] << 16) | (bth[6] << 8) | bth[7],
			.psn = (bth[9] << 16) | (bth[10] << 8) | bth[11],
		};
		for (i = 0; i < sizeof(has_aeth); i++)
			if (bth[0] == has_aeth[i])
				self->seen[self->nseen].syndrome = bth[12];
		self->nseen++;
	}
}

/* Packets seen with @opcode to @qpn. */
static int seen_count(FIXTURE_DATA(rc) *self, uint8_t opcode, uint32_t qpn)
{
	int i, n = 0;

	for (i = 0; i < self->nseen; i++)
		n += self->seen[i].opcode == opcode && self->seen[i].qpn == qpn;
	return n;
}

static void rc_end_open(struct __test_metadata *_metadata,
			FIXTURE_DATA(rc) *self, struct rc_end *e)
{
	struct ibv_qp_init_attr init = {
		.cap = {
			.max_send_wr = 64,
			.max_recv_wr = 64,
			.max_send_sge = 1,
			.max_recv_sge = 1,
			.max_inline_data = 64,
		},
		.qp_type = IBV_QPT_RC,
		.sq_sig_all = 1,
	};

	e->cq = ibv_create_cq(self->ctx, 256, NULL, NULL, 0);
	ASSERT_NE(NULL, e->cq);
	init.send_cq = e->cq;
	init.recv_cq = e->cq;
	e->qp = ibv_create_qp(self->pd, &init);
	ASSERT_NE(NULL, e->qp);
	e->buf = aligned_alloc(4096, RC_BUF);
	ASSERT_NE(NULL, e->buf);
	memset(e->buf, 0, RC_BUF);
	e->mr = ibv_reg_mr(self->pd, e->buf, RC_BUF, RC_ACCESS);
	ASSERT_NE(NULL, e->mr);
}

/*
 * Moves @qp to INIT with @access, then unless @state is INIT to RTR
 * (path: our GID, QP @dqpn, expecting @rq_psn) and RTS (sending from
 * @sq_psn, with a timeout no test outlasts: nothing is retransmitted).
 */
static void rc_connect(struct __test_metadata *_metadata,
		       FIXTURE_DATA(rc) *self, struct ibv_qp *qp,
		       enum ibv_qp_state state, int access, uint32_t dqpn,
		       uint32_t rq_psn, uint32_t sq_psn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = access,
	};

	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS));
	if (state == IBV_QPS_INIT)
		return;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = self->mtu ? self->mtu : IBV_MTU_1024;
	a.dest_qp_num = dqpn;
	a.rq_psn = rq_psn;
	a.max_dest_rd_atomic = 4;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = self->gid;
	a.ah_attr.grh.sgid_index = self->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV |
				   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				   IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				   IBV_QP_MIN_RNR_TIMER));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = sq_psn;
	a.timeout = gift_slow_qp_timeout(self->timeout ? self->timeout : 24);
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 4;
	ASSERT_EQ(0, ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
				   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				   IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC));
}

/*
 * a and b connected to each other, b with remote access @b_access; or,
 * @b_state INIT, b left in INIT: what a sends it is dropped, and a's
 * requests stay outstanding.
 */
static void rc_pair(struct __test_metadata *_metadata, FIXTURE_DATA(rc) *self,
		    enum ibv_qp_state b_state, int b_access)
{
	rc_connect(_metadata, self, self->b.qp, b_state, b_access,
		   self->a.qp->qp_num, A_PSN, B_PSN);
	rc_connect(_metadata, self, self->a.qp, IBV_QPS_RTS, RC_ACCESS,
		   self->b.qp->qp_num, B_PSN, A_PSN);
}

FIXTURE_SETUP(rc)
{
	self->fd = -1;
	self->sniff = -1;
	/* The sniffer on lo must see the pair's packets: the IP path. */
	self->shortcut = -1;
	self->shortcut = gift_local_shortcut(0);
	ASSERT_LE(0, self->shortcut);
	self->ibdev = gift_env("GIFT_IBDEV");
	self->ctx = gift_open(self->ibdev);
	ASSERT_NE(NULL, self->ctx);
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	gift_wait_for(gift_have_v4_gid, self->ctx, 5000);
	self->gid_index = gift_find_v4_gid(self->ctx, &self->gid);
	ASSERT_LE(0, self->gid_index);
	rc_end_open(_metadata, self, &self->a);
	rc_end_open(_metadata, self, &self->b);
	self->fd = gift_flow_socket(AF_INET, gift_env("GIFT_IP"), NULL,
			       &self->flow, &self->dst);
	ASSERT_LE(0, self->fd);
	self->sniff = sniff_open();
	ASSERT_LE(0, self->sniff);
	self->base = read_rcounts(self->ibdev);
}

static void rc_end_close(struct rc_end *e)
{
	if (e->qp)
		ibv_destroy_qp(e->qp);
	if (e->mr)
		ibv_dereg_mr(e->mr);
	free(e->buf);
	if (e->cq)
		ibv_destroy_cq(e->cq);
}

FIXTURE_TEARDOWN(rc)
{
	rc_end_close(&self->a);
	rc_end_close(&self->b);
	if (self->pd)
		ibv_dealloc_pd(self->pd);
	if (self->ctx)
		ibv_close_device(self->ctx);
	if (self->fd >= 0)
		close(self->fd);
	if (self->sniff >= 0)
		close(self->sniff);
	if (self->shortcut >= 0)
		gift_local_shortcut(self->shortcut);
}

/*
 * Expects the counters to have grown by exactly (rcvd, sent, dropped,
 * dup) since the last RC_DELTA (or setup), then reads what was seen on lo.
 */
#define RC_DELTA(_rcvd, _sent, _dropped, _dup) do {			\
	struct rcounts_wait _w = { .ibdev = self->ibdev, .want = {	\
		.rcvd = self->base.rcvd + (_rcvd),			\
		.sent = self->base.sent + (_sent),			\
		.dropped = self->base.dropped + (_dropped),		\
		.dup = self->base.dup + (_dup),				\
	} };								\
	struct rcounts _got;						\
									\
	gift_wait_for(rcounts_reached, &_w, 3000 * gift_slow());	\
	usleep(100 * 1000 * gift_slow());				\
	_got = read_rcounts(self->ibdev);				\
	EXPECT_EQ(_w.want.rcvd, _got.rcvd);				\
	EXPECT_EQ(_w.want.sent, _got.sent);				\
	EXPECT_EQ(_w.want.dropped, _got.dropped);			\
	EXPECT_EQ(_w.want.dup, _got.dup);				\
	self->base = _got;						\
	sniff_read(self);						\
} while (0)

/* A BTH of @opcode to @qpn with @psn and P_Key @pkey, AckReq set. */
static void pkt_rc(struct pkt *p, uint8_t opcode, uint32_t qpn, uint32_t psn,
		   uint16_t pkey)
{
	memset(p, 0, sizeof(*p));
	p->b[0] = opcode;
	gift_put16(&p->b[2], pkey);
	gift_put32(&p->b[4], qpn & 0xffffff);
	gift_put32(&p->b[8], 0x80000000 | (psn & 0xffffff));
	p->len = GIFT_BTH_BYTES;
}

static void pkt_put32(struct pkt *p, uint32_t v)
{
	gift_put32(&p->b[p->len], v);
	p->len += 4;
}

static void pkt_put64(struct pkt *p, uint64_t v)
{
	pkt_put32(p, v >> 32);
	pkt_put32(p, v);
}

/* Appends a RETH. */
static void pkt_reth(struct pkt *p, uint64_t va, uint32_t rkey, uint32_t len)
{
	pkt_put64(p, va);
	pkt_put32(p, rkey);
	pkt_put32(p, len);
}

/* Appends @len bytes of pattern @seed and the pad, setting PadCnt. */
static void pkt_payload(struct pkt *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p->b[p->len++] = gift_pat(i, seed);
	p->b[1] |= (-len & 3) << 4;
	for (i = 0; i < (-len & 3); i++)
		p->b[p->len++] = 0;
}

/* Adds the ICRC for our flow and sends it. */
static int rc_send(FIXTURE_DATA(rc) *self, struct pkt *p)
{
	pkt_finish(p, &self->flow, 0);
	return send_pkt(self->fd, p, &self->dst);
}

/* An ACKNOWLEDGE to @qpn with @psn and AETH @syndrome. */
static int rc_send_ack(FIXTURE_DATA(rc) *self, uint32_t qpn, uint32_t psn,
		       uint8_t syndrome)
{
	struct pkt p;

	pkt_rc(&p, OP_RC_ACKNOWLEDGE, qpn, psn, 0xffff);
	pkt_put32(&p, syndrome << 24);
	return rc_send(self, &p);
}

/* Posts an 8-byte SEND of @wr_id from @e's buffer. */
static int rc_post_send(struct rc_end *e, uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)e->buf,
		.length = 8,
		.lkey = e->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_SEND,
	}, *bad;

	return ibv_post_send(e->qp, &wr, &bad);
}

/* Polls @cq for up to @ms; the number of completions, up to @n. */
static int rc_poll(struct ibv_cq *cq, struct ibv_wc *wc, int n, int ms)
{
	long long deadline = gift_now_us() + ms * 1000LL;
	int got = 0, ret;

	while (got < n && gift_now_us() < deadline) {
		ret = ibv_poll_cq(cq, n - got, wc + got);
		if (ret < 0)
			return ret;
		got += ret;
		if (!ret)
			usleep(1000);
	}
	return got;
}

/*
 * Responses outside the requester's window are ignored (IBTA 9.7.5.1.x):
 * four SENDs are outstanding (b never answers), and a forged ACK, READ
 * response or atomic ACK beyond them, or a duplicate ACK before them,
 * completes none of them; an ACK inside the window completes exactly
 * what it acknowledges.
 */
TEST_F(rc, ack_outside_window_ignored)
{
	uint32_t a = 0;
	struct ibv_wc wc[4];
	struct pkt p;
	int i;

	rc_pair(_metadata, self, IBV_QPS_INIT, 0);
	a = self->a.qp->qp_num;
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, rc_post_send(&self->a, i));
	/* b, in INIT, drops them. */
	RC_DELTA(4, 4, 4, 0);

	ASSERT_EQ(0, rc_send_ack(self, a, A_PSN + 1000, ACK_SYNDROME));
	ASSERT_EQ(0, rc_send_ack(self, a, A_PSN + 4, ACK_SYNDROME));
	ASSERT_EQ(0, rc_send_ack(self, a, A_PSN - 1, ACK_SYNDROME));
	pkt_rc(&p, OP_RC_RDMA_READ_RESP_ONLY, a, A_PSN + 4, 0xffff);
	pkt_put32(&p, ACK_SYNDROME << 24);
	pkt_payload(&p, 8, 1);
	ASSERT_EQ(0, rc_send(self, &p));
	pkt_rc(&p, OP_RC_ATOMIC_ACKNOWLEDGE, a, A_PSN + 4, 0xffff);
	pkt_put32(&p, ACK_SYNDROME << 24);
	pkt_put64(&p, 0);
	ASSERT_EQ(0, rc_send(self, &p));
	RC_DELTA(5, 0, 5, 0);
	EXPECT_EQ(0, rc_poll(self->a.cq, wc, 4, 100));

	/* In the window: completes the first two. */
	ASSERT_EQ(0, rc_send_ack(self, a, A_PSN + 1, ACK_SYNDROME));
	RC_DELTA(1, 0, 0, 0);
	ASSERT_EQ(2, rc_poll(self->a.cq, wc, 4, 1000));
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_SUCCESS, wc[i].status);
	}
	EXPECT_EQ(0, self->nseen);
}

/* A READ request to @qpn at @psn for @len bytes at @va with @rkey. */
static int rc_send_read(FIXTURE_DATA(rc) *self, uint32_t qpn, uint32_t psn,
			uint64_t va, uint32_t rkey, uint32_t len)
{
	struct pkt p;

	pkt_rc(&p, OP_RC_RDMA_READ_REQUEST, qpn, psn, 0xffff);
	pkt_reth(&p, va, rkey, len);
	return rc_send(self, &p);
}

/*
 * A duplicate READ (PSN behind the expected one) that b's responder
 * resources do not remember is dropped and counted, not executed: here
 * b's QP does not even allow remote reads.
 */
TEST_F(rc, dup_read_unknown_dropped)
{
	rc_pair(_metadata, self, IBV_QPS_RTS, 0);
	ASSERT_EQ(0, rc_send_read(self, self->b.qp->qp_num, A_PSN - 1,
				  (uintptr_t)self->b.buf, self->b.mr->rkey,
				  4096));
	RC_DELTA(1, 0, 1, 1);
	EXPECT_EQ(0, self->nseen);
}

/*
 * After a 4096-byte READ (four responses at MTU 1024), a duplicate asking
 * again for its last three responses is replayed, exactly those; one
 * reaching past the original length, at an offset its PSN does not
 * imply, or with another rkey (a's MR, in the same PD) is dropped. The
 * replayed responses reach a, which no longer waits for them: dropped.
 */
TEST_F(rc, dup_read_within_original)
{
	uint32_t b = 0, rkey = 0;
	uint64_t va = 0;
	struct ibv_sge sge = {
		.addr = (uintptr_t)self->a.buf,
		.length = 4096,
		.lkey = self->a.mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 7,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_READ,
	}, *bad;
	struct ibv_wc wc;
	int i;

	rc_pair(_metadata, self, IBV_QPS_RTS, RC_ACCESS);
	b = self->b.qp->qp_num;
	va = (uintptr_t)self->b.buf;
	rkey = self->b.mr->rkey;
	for (i = 0; i < 4096; i++)
		self->b.buf[i] = gift_pat(i, 8);
	wr.wr.rdma.remote_addr = va;
	wr.wr.rdma.rkey = rkey;
	ASSERT_EQ(0, ibv_post_send(self->a.qp, &wr, &bad));
	ASSERT_EQ(1, rc_poll(self->a.cq, &wc, 1, 5000 * gift_slow()));
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(0, memcmp(self->a.buf, self->b.buf, 4096));
	RC_DELTA(5, 5, 0, 0);

	ASSERT_EQ(0, rc_send_read(self, b, A_PSN + 1, va + 1024, rkey, 3072));
	RC_DELTA(4, 3, 3, 1);
	EXPECT_EQ(1, seen_count(self, 0x0d, self->a.qp->qp_num));
	EXPECT_EQ(1, seen_count(self, 0x0e, self->a.qp->qp_num));
	EXPECT_EQ(1, seen_count(self, 0x0f, self->a.qp->qp_num));

	ASSERT_EQ(0, rc_send_read(self, b, A_PSN, va, rkey, 4097));
	ASSERT_EQ(0, rc_send_read(self, b, A_PSN + 1, va, rkey, 1024));
	ASSERT_EQ(0, rc_send_read(self, b, A_PSN + 2, va + 1024, rkey, 1024));
	ASSERT_EQ(0, rc_send_read(self, b, A_PSN, va, self->a.mr->rkey, 8));
	RC_DELTA(4, 0, 4, 4);
	EXPECT_EQ(0, self->nseen);
	EXPECT_EQ(0, rc_poll(self->a.cq, &wc, 1, 100));
}

/* Posts a receive of RC_BUF - 4096 bytes at 4096 of @e's buffer. */
static int rc_post_recv(struct rc_end *e, uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)e->buf + 4096,
		.length = RC_BUF - 4096,
		.lkey = e->mr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
	}, *bad;

	return ibv_post_recv(e->qp, &wr, &bad);
}

/* An 8-byte SEND only of pattern @seed to @qpn at @psn with @pkey. */
static void pkt_send8(struct pkt *p, uint32_t qpn, uint32_t psn,
		      uint16_t pkey, uint32_t seed)
{
	pkt_rc(p, OP_RC_SEND_ONLY, qpn, psn, pkey);
	pkt_payload(p, 8, seed);
}

/*
 * RC packets must belong to the QP's connection: from the address of its
 * path (not 127.0.0.1, though that reaches the device too), of the RC
 * transport (not a UD SEND), with a P_Key matching the port's default
 * one. Each such forged SEND, at the PSN b expects, is dropped and
 * consumes nothing; a SEND from the right address, from any UDP port and
 * with the limited-member default P_Key, is received.
 */
TEST_F(rc, packets_tied_to_connection)
{
	struct sockaddr_storage dst;
	uint32_t b = 0;
	struct gift_flow f;
	struct ibv_wc wc;
	struct pkt p;
	int fd, i;

	rc_pair(_metadata, self, IBV_QPS_RTS, RC_ACCESS);
	b = self->b.qp->qp_num;
	ASSERT_EQ(0, rc_post_recv(&self->b, 1));

	fd = gift_flow_socket(AF_INET, "127.0.0.1", NULL, &f, &dst);
	ASSERT_LE(0, fd);
	self->other_sport = f.sport;
	ASSERT_EQ(1, inet_pton(AF_INET, gift_env("GIFT_IP"), f.daddr));
	memcpy(&((struct sockaddr_in *)&dst)->sin_addr, f.daddr, 4);
	pkt_send8(&p, b, A_PSN, 0xffff, 1);
	pkt_finish(&p, &f, 0);
	EXPECT_EQ(0, send_pkt(fd, &p, &dst));
	close(fd);

	pkt_rc(&p, OP_UD_SEND_ONLY, b, A_PSN, 0xffff);
	pkt_put32(&p, 0x11111111);		/* DETH: Q_Key, */
	pkt_put32(&p, self->a.qp->qp_num);	/* source QP */
	pkt_payload(&p, 8, 2);
	ASSERT_EQ(0, rc_send(self, &p));
	pkt_send8(&p, b, A_PSN, 0x1234, 3);
	ASSERT_EQ(0, rc_send(self, &p));
	pkt_send8(&p, b, A_PSN, 0x8000, 4);
	ASSERT_EQ(0, rc_send(self, &p));
	pkt_send8(&p, b, A_PSN, 0x7ffe, 5);
	ASSERT_EQ(0, rc_send(self, &p));
	RC_DELTA(5, 0, 5, 0);
	EXPECT_EQ(0, self->nseen);
	EXPECT_EQ(0, rc_poll(self->b.cq, &wc, 1, 100));

	/* b ACKs it to a, which has sent nothing: dropped there. */
	pkt_send8(&p, b, A_PSN, 0x7fff, 6);
	ASSERT_EQ(0, rc_send(self, &p));
	RC_DELTA(2, 1, 1, 0);
	EXPECT_EQ(1, seen_count(self, OP_RC_ACKNOWLEDGE, self->a.qp->qp_num));
	ASSERT_EQ(1, rc_poll(self->b.cq, &wc, 1, 1000));
	EXPECT_EQ(1, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(IBV_WC_RECV, wc.opcode);
	EXPECT_EQ(8, wc.byte_len);
	for (i = 0; i < 8; i++)
		EXPECT_EQ(gift_pat(i, 6), self->b.buf[4096 + i]);
}

/*
 * An RNR NAK is the only NAK of its gap (IBTA 9.7.5.2.8, as for a PSN
 * sequence error NAK): the requests behind the refused one that are
 * already on their way are dropped silently, without a PSN sequence
 * error NAK, which would make the requester resend them once more behind
 * the resend it owes after its RNR wait. Once receives are posted, the
 * resent requests complete in order, each ACKed.
 */
TEST_F(rc, rnr_nak_only_nak_of_its_gap)
{
	uint32_t a = 0, b = 0;
	struct ibv_wc wc[3];
	struct pkt p;
	int i;

	rc_pair(_metadata, self, IBV_QPS_RTS, RC_ACCESS);
	a = self->a.qp->qp_num;
	b = self->b.qp->qp_num;

	/* No receive posted: b refuses the first, drops the other two. */
	for (i = 0; i < 3; i++) {
		pkt_send8(&p, b, A_PSN + i, 0xffff, 11 + i);
		ASSERT_EQ(0, rc_send(self, &p));
	}
	/* a, with nothing outstanding, drops the RNR NAK. */
	RC_DELTA(4, 1, 1, 0);
	ASSERT_EQ(1, self->nseen);
	EXPECT_EQ(OP_RC_ACKNOWLEDGE, self->seen[0].opcode);
	EXPECT_EQ(a, self->seen[0].qpn);
	EXPECT_EQ(A_PSN, self->seen[0].psn);
	EXPECT_EQ(0x20 | 12, self->seen[0].syndrome);	/* RNR, timer 12 */
	EXPECT_EQ(0, rc_poll(self->b.cq, wc, 1, 100));

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, rc_post_recv(&self->b, 21 + i));
	for (i = 0; i < 3; i++) {
		pkt_send8(&p, b, A_PSN + i, 0xffff, 11 + i);
		ASSERT_EQ(0, rc_send(self, &p));
	}
	RC_DELTA(6, 3, 3, 0);
	ASSERT_EQ(3, self->nseen);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(OP_RC_ACKNOWLEDGE, self->seen[i].opcode);
		EXPECT_EQ(a, self->seen[i].qpn);
		EXPECT_EQ(A_PSN + i, self->seen[i].psn);
		EXPECT_EQ(0, self->seen[i].syndrome & 0x60);	/* an ACK */
	}
	ASSERT_EQ(3, rc_poll(self->b.cq, wc, 3, 1000));
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(21 + i, wc[i].wr_id);
		EXPECT_EQ(IBV_WC_SUCCESS, wc[i].status);
		EXPECT_EQ(IBV_WC_RECV, wc[i].opcode);
		EXPECT_EQ(8, wc[i].byte_len);
	}
	/* Every receive got the same buffer: the last SEND is there. */
	for (i = 0; i < 8; i++)
		EXPECT_EQ(gift_pat(i, 13), self->b.buf[4096 + i]);
}

/* One direction of rc.shortcut_keeps_qp_order_across_cpus. */
struct bidir_arg {
	struct rc_end *e;	/* writes from the first BIDIR_LEN bytes */
	uint64_t raddr;		/* to there in the peer's buffer */
	uint32_t rkey;
	int cpu;		/* the thread runs there */
	int n;			/* WRITEs, at most BIDIR_DEPTH outstanding */
	int err;		/* 0, or an errno saying what went wrong */
};

#define BIDIR_LEN	(16 << 10)	/* 16 packets at MTU 1024 */
#define BIDIR_DEPTH	8

static void *bidir_writer(void *arg)
{
	struct bidir_arg *w = arg;
	struct ibv_sge sge = {
		.addr = (uintptr_t)w->e->buf,
		.length = BIDIR_LEN,
		.lkey = w->e->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.rdma = { .remote_addr = w->raddr, .rkey = w->rkey },
	}, *bad;
	long long deadline = gift_now_us() + 120000000LL * gift_slow();
	int posted = 0, done = 0, k, i;
	struct ibv_wc wc[BIDIR_DEPTH];
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(w->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		w->err = errno;
		return NULL;
	}
	while (done < w->n) {
		while (posted < w->n && posted - done < BIDIR_DEPTH) {
			wr.wr_id = posted;
			if (ibv_post_send(w->e->qp, &wr, &bad)) {
				w->err = EIO;
				return NULL;
			}
			posted++;
		}
		k = ibv_poll_cq(w->e->cq, BIDIR_DEPTH, wc);
		if (k < 0) {
			w->err = EIO;
			return NULL;
		}
		for (i = 0; i < k; i++, done++) {
			if (wc[i].status != IBV_WC_SUCCESS ||
			    wc[i].opcode != IBV_WC_RDMA_WRITE ||
			    wc[i].wr_id != (uint64_t)done) {
				w->err = EPROTO;
				return NULL;
			}
		}
		if (gift_now_us() > deadline) {
			w->err = ETIMEDOUT;
			return NULL;
		}
	}
	return NULL;
}

/*
 * The local shortcut delivers each QP's packets in the order its engine
 * sent them, even when its engine runs on two CPUs: a's poster on CPU 0,
 * and b's traffic, posted on CPU 1 and delivered there, running a's
 * engine on CPU 1 too (a's responder, then its requester). Both ends
 * write at once; on a lossless local path nothing may be resent, so any
 * reordering shows as a PSN sequence NAK and a go-back-N resend. (The
 * shortcut once queued packets per CPU: this traffic then resent about a
 * third of its packets.) The bytes arrive intact both ways.
 */
TEST_F(rc, shortcut_keeps_qp_order_across_cpus)
{
	static const char *const names[] = {
		"retransmits", "seq_naks_sent", "seq_naks_rcvd",
		"duplicate_requests", "dropped_pkts",
	};
	struct bidir_arg wa, wb;
	long before[5], after;
	int i, bad_a = 0, bad_b = 0;
	pthread_t ta, tb;

	ASSERT_LE(2, sysconf(_SC_NPROCESSORS_ONLN));
	ASSERT_LE(0, gift_local_shortcut(1));
	rc_pair(_metadata, self, IBV_QPS_RTS, RC_ACCESS);
	for (i = 0; i < BIDIR_LEN; i++) {
		self->a.buf[i] = gift_pat(i, 31);
		self->b.buf[i] = gift_pat(i, 32);
	}
	for (i = 0; i < 5; i++)
		before[i] = read_counter(self->ibdev, names[i]);

	wa = (struct bidir_arg){
		.e = &self->a, .rkey = self->b.mr->rkey, .cpu = 0, .n = 300,
		.raddr = (uintptr_t)self->b.buf + RC_BUF / 2,
	};
	wb = (struct bidir_arg){
		.e = &self->b, .rkey = self->a.mr->rkey, .cpu = 1, .n = 300,
		.raddr = (uintptr_t)self->a.buf + RC_BUF / 2,
	};
	ASSERT_EQ(0, pthread_create(&ta, NULL, bidir_writer, &wa));
	ASSERT_EQ(0, pthread_create(&tb, NULL, bidir_writer, &wb));
	ASSERT_EQ(0, pthread_join(ta, NULL));
	ASSERT_EQ(0, pthread_join(tb, NULL));
	EXPECT_EQ(0, wa.err);
	EXPECT_EQ(0, wb.err);

	for (i = 0; i < 5; i++) {
		after = read_counter(self->ibdev, names[i]);
		EXPECT_EQ(before[i], after)
			TH_LOG("%s: %ld more", names[i], after - before[i]);
	}
	for (i = 0; i < BIDIR_LEN; i++) {
		bad_b += self->b.buf[RC_BUF / 2 + i] != gift_pat(i, 31);
		bad_a += self->a.buf[RC_BUF / 2 + i] != gift_pat(i, 32);
	}
	EXPECT_EQ(0, bad_a);
	EXPECT_EQ(0, bad_b);
}

/* UC opcodes (include/rdma/ib_pack.h) */
enum {
	OP_UC_SEND_FIRST		= 0x20,
	OP_UC_SEND_MIDDLE		= 0x21,
	OP_UC_SEND_LAST			= 0x22,
	OP_UC_SEND_LAST_IMM		= 0x23,
	OP_UC_SEND_ONLY			= 0x24,
	OP_UC_RDMA_WRITE_FIRST		= 0x26,
	OP_UC_RDMA_WRITE_MIDDLE		= 0x27,
	OP_UC_RDMA_WRITE_LAST_IMM	= 0x29,
};

/*
 * Replaces b by a UC QP connected to a (which it never sends to here),
 * expecting A_PSN, taking RDMA WRITEs: the UC attributes only.
 */
static void uc_b_open(struct __test_metadata *_metadata,
		      FIXTURE_DATA(rc) *self)
{
	struct ibv_qp_init_attr init = {
		.send_cq = self->b.cq,
		.recv_cq = self->b.cq,
		.cap = {
			.max_send_wr = 16,
			.max_recv_wr = 16,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
		.qp_type = IBV_QPT_UC,
	};
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};

	ASSERT_EQ(0, ibv_destroy_qp(self->b.qp));
	self->b.qp = ibv_create_qp(self->pd, &init);
	ASSERT_NE(NULL, self->b.qp);
	ASSERT_EQ(0, ibv_modify_qp(self->b.qp, &a, IBV_QP_STATE |
				   IBV_QP_PKEY_INDEX | IBV_QP_PORT |
				   IBV_QP_ACCESS_FLAGS));
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = self->a.qp->qp_num;
	a.rq_psn = A_PSN;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = self->gid;
	a.ah_attr.grh.sgid_index = self->gid_index;
	a.ah_attr.grh.hop_limit = 64;
	a.ah_attr.port_num = 1;
	ASSERT_EQ(0, ibv_modify_qp(self->b.qp, &a, IBV_QP_STATE | IBV_QP_AV |
				   IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				   IBV_QP_RQ_PSN));
}

/* A UC BTH (AckReq clear) and @len bytes of payload pattern @seed. */
static int uc_send(FIXTURE_DATA(rc) *self, uint8_t opcode, uint32_t psn,
		   size_t len, uint32_t seed)
{
	struct pkt p;

	pkt_rc(&p, opcode, self->b.qp->qp_num, psn, 0xffff);
	p.b[8] &= 0x7f;
	if (opcode == OP_UC_SEND_LAST_IMM ||
	    opcode == OP_UC_RDMA_WRITE_LAST_IMM)
		pkt_put32(&p, 0x1234abcd);
	if (opcode == OP_UC_RDMA_WRITE_FIRST)
		pkt_reth(&p, (uintptr_t)self->b.buf + 8192, self->b.mr->rkey,
			 2 * RC_MTU + 100);
	pkt_payload(&p, len, seed);
	return rc_send(self, &p);
}

/* A receive of 4096 bytes at @off of b's buffer. */
static int uc_post_recv(struct rc_end *e, uint64_t wr_id, size_t off)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)e->buf + off,
		.length = 4096,
		.lkey = e->mr->lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
	}, *bad;

	return ibv_post_recv(e->qp, &wr, &bad);
}

/* @len bytes at @p are pattern @seed. */
static bool is_pat(const uint8_t *p, size_t len, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != gift_pat(i, seed))
			return false;
	return true;
}

/* @len bytes at @p are 0, as b's buffer starts. */
static bool is_zero(const uint8_t *p, size_t len)
{
	while (len--)
		if (*p++)
			return false;
	return true;
}

/*
 * The UC responder loses a packet: forged UC packets at a UC
 * QP b, the loss chosen exactly (a lossy link would drop packets at
 * random, not a chosen one of a chosen message). A SEND that lost its
 * MIDDLE is dropped from the gap on, silently (nothing goes back, each
 * dropped packet counts in dropped_pkts), and its receive is not
 * consumed: the next SEND, starting with a FIRST at the PSN after the
 * gap, lands whole in that same receive. A WRITE_WITH_IMM that lost its
 * MIDDLE keeps only what its FIRST wrote, completes nothing and consumes
 * no receive: the SEND after it takes that receive. A MIDDLE out of the
 * blue is dropped too.
 */
TEST_F(rc, uc_lost_packet_drops_message)
{
	uint8_t *buf = self->b.buf;
	uint32_t psn = A_PSN;
	struct ibv_wc wc;

	uc_b_open(_metadata, self);
	ASSERT_EQ(0, uc_post_recv(&self->b, 7, 0));

	/* SEND: FIRST, the MIDDLE lost, LAST dropped. */
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_FIRST, psn, RC_MTU, 1));
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_LAST, psn + 2, 100, 1));
	RC_DELTA(2, 0, 1, 0);
	EXPECT_EQ(0, self->nseen);
	EXPECT_EQ(0, rc_poll(self->b.cq, &wc, 1, 100));

	/* The next SEND, three packets after the gap, fills receive 7. */
	psn += 3;
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_FIRST, psn, RC_MTU, 2));
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_MIDDLE, psn + 1, RC_MTU, 3));
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_LAST_IMM, psn + 2, 100, 4));
	RC_DELTA(3, 0, 0, 0);
	EXPECT_EQ(0, self->nseen);
	ASSERT_EQ(1, rc_poll(self->b.cq, &wc, 1, 2000 * gift_slow()));
	EXPECT_EQ(7, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(IBV_WC_RECV, wc.opcode);
	EXPECT_EQ(2 * RC_MTU + 100, wc.byte_len);
	EXPECT_TRUE(wc.wc_flags & IBV_WC_WITH_IMM);
	EXPECT_EQ(htonl(0x1234abcd), wc.imm_data);
	EXPECT_TRUE(is_pat(buf, RC_MTU, 2));
	EXPECT_TRUE(is_pat(buf + RC_MTU, RC_MTU, 3));
	EXPECT_TRUE(is_pat(buf + 2 * RC_MTU, 100, 4));
	EXPECT_TRUE(is_zero(buf + 2 * RC_MTU + 100, 4096 - 2 * RC_MTU - 100));

	/* WRITE_WITH_IMM: FIRST, the MIDDLE lost, LAST_IMM dropped. */
	ASSERT_EQ(0, uc_post_recv(&self->b, 8, 4096));
	psn += 3;
	ASSERT_EQ(0, uc_send(self, OP_UC_RDMA_WRITE_FIRST, psn, RC_MTU, 5));
	ASSERT_EQ(0, uc_send(self, OP_UC_RDMA_WRITE_LAST_IMM, psn + 2, 100,
			     5));
	/* And a MIDDLE at the PSN expected next, with no message open. */
	ASSERT_EQ(0, uc_send(self, OP_UC_RDMA_WRITE_MIDDLE, psn + 3, RC_MTU,
			     5));
	RC_DELTA(3, 0, 2, 0);
	EXPECT_EQ(0, self->nseen);
	EXPECT_EQ(0, rc_poll(self->b.cq, &wc, 1, 100));
	EXPECT_TRUE(is_pat(buf + 8192, RC_MTU, 5));
	EXPECT_TRUE(is_zero(buf + 8192 + RC_MTU, RC_MTU + 100));

	/* A SEND ONLY takes receive 8, which the WRITE left. */
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_ONLY, psn + 4, 100, 6));
	RC_DELTA(1, 0, 0, 0);
	ASSERT_EQ(1, rc_poll(self->b.cq, &wc, 1, 2000 * gift_slow()));
	EXPECT_EQ(8, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(IBV_WC_RECV, wc.opcode);
	EXPECT_EQ(100, wc.byte_len);
	EXPECT_FALSE(wc.wc_flags & IBV_WC_WITH_IMM);
	EXPECT_TRUE(is_pat(buf + 4096, 100, 6));
	EXPECT_TRUE(is_zero(buf + 4096 + 100, 4096 - 100));
}

/*
 * What the UC responder refuses it drops with the rest of the message,
 * silently, and the QP goes on (in RTR: no error, no flush): a SEND with
 * no receive posted; an RDMA WRITE with a bad rkey (nothing written); a
 * SEND longer than its receive (the receive is kept, and the next SEND
 * lands in it whole). A SEND ONLY at the expected PSN in the middle of a
 * SEND abandons that one and is received.
 */
TEST_F(rc, uc_refused_messages_dropped)
{
	uint8_t *buf = self->b.buf;
	uint32_t psn = A_PSN;
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr qa;
	struct ibv_wc wc;
	struct pkt p;
	int i;

	uc_b_open(_metadata, self);
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_ONLY, psn++, 100, 1));
	pkt_rc(&p, 0x2a /* UC RDMA WRITE ONLY */, self->b.qp->qp_num, psn++,
	       0xffff);
	p.b[8] &= 0x7f;
	pkt_reth(&p, (uintptr_t)buf, self->b.mr->rkey ^ 0x80, 64);
	pkt_payload(&p, 64, 2);
	ASSERT_EQ(0, rc_send(self, &p));
	RC_DELTA(2, 0, 2, 0);
	EXPECT_EQ(0, self->nseen);
	EXPECT_EQ(0, rc_poll(self->b.cq, &wc, 1, 100));
	EXPECT_TRUE(is_zero(buf, 64));

	/* Five packets into a 4096-byte receive: the fifth overflows. */
	ASSERT_EQ(0, uc_post_recv(&self->b, 9, 0));
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_FIRST, psn++, RC_MTU, 3));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, uc_send(self, OP_UC_SEND_MIDDLE, psn++, RC_MTU,
				     3));
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_LAST, psn++, 8, 3));
	RC_DELTA(5, 0, 1, 0);
	EXPECT_EQ(0, rc_poll(self->b.cq, &wc, 1, 100));

	/* A SEND FIRST, then a SEND ONLY at the next PSN: the ONLY wins. */
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_FIRST, psn++, RC_MTU, 4));
	ASSERT_EQ(0, uc_send(self, OP_UC_SEND_ONLY, psn++, 100, 5));
	RC_DELTA(2, 0, 0, 0);
	EXPECT_EQ(0, self->nseen);
	ASSERT_EQ(1, rc_poll(self->b.cq, &wc, 1, 2000 * gift_slow()));
	EXPECT_EQ(9, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(IBV_WC_RECV, wc.opcode);
	EXPECT_EQ(100, wc.byte_len);
	EXPECT_TRUE(is_pat(buf, 100, 5));
	ASSERT_EQ(0, ibv_query_qp(self->b.qp, &qa, IBV_QP_STATE, &init));
	EXPECT_EQ(IBV_QPS_RTR, qa.qp_state);
}

/*
 * QPNs are not handed out in sequence: of 16 new QPs, no two have
 * consecutive numbers, and none is 0, 1 or the multicast QPN. (A
 * sequential allocator fails at the first pair; a random one once in
 * about a million runs.)
 */
TEST_F(rc, qpns_unpredictable)
{
	enum { N = 16 };
	struct ibv_qp_init_attr init = {
		.send_cq = self->a.cq,
		.recv_cq = self->a.cq,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	struct ibv_qp *qps[N];
	uint32_t n, m;
	int i, j;

	for (i = 0; i < N; i++) {
		qps[i] = ibv_create_qp(self->pd, &init);
		ASSERT_NE(NULL, qps[i]);
	}
	for (i = 0; i < N; i++) {
		n = qps[i]->qp_num;
		EXPECT_LT(1, n);
		EXPECT_GT(0xffffff, n);
		for (j = 0; j < N; j++) {
			m = qps[j]->qp_num;
			EXPECT_NE(n + 1, m) TH_LOG("QPNs %#x, %#x", n, m);
		}
	}
	for (i = 0; i < N; i++)
		EXPECT_EQ(0, ibv_destroy_qp(qps[i]));
}

static enum ibv_qp_state rc_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &init))
		return -1;
	return a.qp_state;
}

/*
 * A RETH length over max_msg_sz (2 GiB) is an invalid request, whatever
 * the rkey: b NAKs it as such (a, which sent nothing, drops the NAK) and
 * goes to ERR. Near 2^32 the packet count would also overflow.
 */
TEST_F(rc, reth_over_max_msg_sz)
{
	static const uint32_t lens[] = { 0x80000001, 0xffffffff };
	struct ibv_qp_attr reset = { .qp_state = IBV_QPS_RESET };
	uint32_t b = 0;
	struct pkt p;
	int i, w;

	for (w = 0; w < 2; w++) {
		for (i = 0; i < 2; i++) {
			if (w || i)
				ASSERT_EQ(0, ibv_modify_qp(self->b.qp, &reset,
							   IBV_QP_STATE));
			rc_connect(_metadata, self, self->b.qp, IBV_QPS_RTS,
				   RC_ACCESS, self->a.qp->qp_num, A_PSN,
				   B_PSN);
			if (!w && !i)
				rc_connect(_metadata, self, self->a.qp,
					   IBV_QPS_RTS, RC_ACCESS,
					   self->b.qp->qp_num, B_PSN, A_PSN);
			b = self->b.qp->qp_num;
			pkt_rc(&p, w ? OP_RC_RDMA_WRITE_FIRST :
				       OP_RC_RDMA_READ_REQUEST, b, A_PSN,
			       0xffff);
			pkt_reth(&p, (uintptr_t)self->b.buf, self->b.mr->rkey,
				 lens[i]);
			if (w)
				pkt_payload(&p, RC_MTU, 1);
			ASSERT_EQ(0, rc_send(self, &p));
			RC_DELTA(2, 1, 1, 0);
			ASSERT_EQ(1, self->nseen);
			EXPECT_EQ(OP_RC_ACKNOWLEDGE, self->seen[0].opcode);
			EXPECT_EQ(self->a.qp->qp_num, self->seen[0].qpn);
			EXPECT_EQ(A_PSN, self->seen[0].psn);
			EXPECT_EQ(NAK_INV_REQ, self->seen[0].syndrome)
				TH_LOG("%s of %#x", w ? "WRITE" : "READ",
				       lens[i]);
			EXPECT_EQ(IBV_QPS_ERR, rc_state(self->b.qp));
		}
	}
}

/* An asynchronous event: its type and the QP or CQ it is about. */
struct aev {
	enum ibv_event_type type;
	void *obj;
};

/*
 * The asynchronous events of @ctx until none came for @ms, acknowledged;
 * the first @max of them in @ev. Their number.
 */
static int read_events(struct ibv_context *ctx, struct aev *ev, int max,
		       int ms)
{
	struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };
	int flags = fcntl(ctx->async_fd, F_GETFL), n = 0;
	struct ibv_async_event e;

	fcntl(ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
	while (poll(&pfd, 1, ms) > 0 && !ibv_get_async_event(ctx, &e)) {
		if (n < max) {
			ev[n].type = e.event_type;
			ev[n].obj = e.event_type == IBV_EVENT_CQ_ERR ?
				    (void *)e.element.cq : (void *)e.element.qp;
		}
		n++;
		ibv_ack_async_event(&e);
	}
	fcntl(ctx->async_fd, F_SETFL, flags);
	return n;
}

#define EVENT_MS	(1000 * gift_slow())	/* an event that must come */
#define NO_EVENT_MS	(300 * gift_slow())	/* watched for one that must not */

/*
 * A CQ overflow (IBTA 11.6.2, as rxe and mlx5 handle it): the CQ goes to
 * error, reported once with IBV_EVENT_CQ_ERR, and every QP using it (a,
 * whose send and receive CQ it is, and c, an idle QP in INIT whose
 * receive CQ only it is) moves to ERR with IBV_EVENT_QP_FATAL; b, on
 * another CQ, is left alone. Polling the CQ then fails with EOVERFLOW
 * rather than returning a ring with a hole, and so does resizing it:
 * nothing is lost silently. Here a's CQ holds 4 completions and one
 * forged ACK completes 6 SENDs.
 */
TEST_F(rc, cq_overflow_errors_its_qps)
{
	struct ibv_qp_init_attr init = {
		.send_cq = self->b.cq,
		.recv_cq = self->a.cq,
		.cap = { .max_send_wr = 1, .max_recv_wr = 1,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};
	int i, n, fatal_a = 0, fatal_c = 0;
	struct ibv_wc wc[8];
	struct aev ev[8];
	struct ibv_qp *c;

	rc_pair(_metadata, self, IBV_QPS_INIT, 0);
	c = ibv_create_qp(self->pd, &init);
	ASSERT_NE(NULL, c);
	rc_connect(_metadata, self, c, IBV_QPS_INIT, 0, 0, 0, 0);
	ASSERT_EQ(0, ibv_resize_cq(self->a.cq, 4));
	ASSERT_EQ(4, self->a.cq->cqe);
	for (i = 0; i < 6; i++)
		ASSERT_EQ(0, rc_post_send(&self->a, i));
	/* b, in INIT, drops them. */
	RC_DELTA(6, 6, 6, 0);

	ASSERT_EQ(0, rc_send_ack(self, self->a.qp->qp_num, A_PSN + 5,
				 ACK_SYNDROME));
	n = read_events(self->ctx, ev, 8, EVENT_MS);
	ASSERT_EQ(3, n);
	EXPECT_EQ(IBV_EVENT_CQ_ERR, ev[0].type);
	EXPECT_EQ((void *)self->a.cq, ev[0].obj);
	for (i = 1; i < 3; i++) {
		EXPECT_EQ(IBV_EVENT_QP_FATAL, ev[i].type);
		fatal_a += ev[i].obj == (void *)self->a.qp;
		fatal_c += ev[i].obj == (void *)c;
	}
	EXPECT_EQ(1, fatal_a);
	EXPECT_EQ(1, fatal_c);
	RC_DELTA(1, 0, 0, 0);
	EXPECT_EQ(IBV_QPS_ERR, rc_state(self->a.qp));
	EXPECT_EQ(IBV_QPS_ERR, rc_state(c));
	EXPECT_EQ(IBV_QPS_INIT, rc_state(self->b.qp));

	errno = 0;
	EXPECT_EQ(-1, ibv_poll_cq(self->a.cq, 8, wc));
	EXPECT_EQ(EOVERFLOW, errno);
	EXPECT_EQ(EOVERFLOW, ibv_resize_cq(self->a.cq, 64));
	errno = 0;
	EXPECT_EQ(-1, ibv_poll_cq(self->a.cq, 8, wc));
	EXPECT_EQ(EOVERFLOW, errno);
	/* A WR posted now is flushed into the failed CQ: no new event. */
	ASSERT_EQ(0, rc_post_send(&self->a, 6));
	EXPECT_EQ(0, read_events(self->ctx, ev, 8, NO_EVENT_MS));
	EXPECT_EQ(0, ibv_destroy_qp(c));
	/* b's CQ is fine. */
	EXPECT_EQ(0, ibv_poll_cq(self->b.cq, 8, wc));
}

/* RTS -> SQD, asking for IBV_EVENT_SQ_DRAINED or not. */
static int to_sqd(struct ibv_qp *qp, bool notify)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_SQD,
		.en_sqd_async_notify = notify,
	};

	return ibv_modify_qp(qp, &a, IBV_QP_STATE |
			     (notify ? IBV_QP_EN_SQD_ASYNC_NOTIFY : 0));
}

static int to_rts(struct ibv_qp *qp)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTS };

	return ibv_modify_qp(qp, &a, IBV_QP_STATE);
}

/*
 * IBV_EVENT_SQ_DRAINED (IBTA 10.3.1, 11.6.3): a QP moved to SQD with
 * en_sqd_async_notify reports it once no send WQE it started is
 * outstanding: at once with an empty send queue, only after the ACK of
 * its last outstanding SEND otherwise, and a WR posted in SQD (which is
 * not started) does not hold it back. Without en_sqd_async_notify there
 * is no event.
 */
TEST_F(rc, sq_drained_event)
{
	uint32_t a = 0;
	struct ibv_wc wc[4];
	struct aev ev[4];

	rc_pair(_metadata, self, IBV_QPS_INIT, 0);
	a = self->a.qp->qp_num;
	ASSERT_EQ(0, to_sqd(self->a.qp, true));
	ASSERT_EQ(1, read_events(self->ctx, ev, 4, EVENT_MS));
	EXPECT_EQ(IBV_EVENT_SQ_DRAINED, ev[0].type);
	EXPECT_EQ((void *)self->a.qp, ev[0].obj);
	ASSERT_EQ(0, to_rts(self->a.qp));

	ASSERT_EQ(0, to_sqd(self->a.qp, false));
	EXPECT_EQ(0, read_events(self->ctx, ev, 4, NO_EVENT_MS));
	ASSERT_EQ(0, to_rts(self->a.qp));

	/* Two SENDs outstanding: b, in INIT, drops them. */
	ASSERT_EQ(0, rc_post_send(&self->a, 0));
	ASSERT_EQ(0, rc_post_send(&self->a, 1));
	RC_DELTA(2, 2, 2, 0);
	ASSERT_EQ(0, to_sqd(self->a.qp, true));
	ASSERT_EQ(0, rc_post_send(&self->a, 2));
	EXPECT_EQ(0, read_events(self->ctx, ev, 4, NO_EVENT_MS));
	ASSERT_EQ(0, rc_send_ack(self, a, A_PSN, ACK_SYNDROME));
	RC_DELTA(1, 0, 0, 0);
	EXPECT_EQ(0, read_events(self->ctx, ev, 4, NO_EVENT_MS));
	ASSERT_EQ(0, rc_send_ack(self, a, A_PSN + 1, ACK_SYNDROME));
	ASSERT_EQ(1, read_events(self->ctx, ev, 4, EVENT_MS));
	EXPECT_EQ(IBV_EVENT_SQ_DRAINED, ev[0].type);
	EXPECT_EQ((void *)self->a.qp, ev[0].obj);
	RC_DELTA(1, 0, 0, 0);
	ASSERT_EQ(2, rc_poll(self->a.cq, wc, 4, 1000));
	EXPECT_EQ(0, wc[0].wr_id);
	EXPECT_EQ(1, wc[1].wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc[0].status);
	EXPECT_EQ(IBV_WC_SUCCESS, wc[1].status);
	/* Back in RTS, the WR posted in SQD goes out. */
	ASSERT_EQ(0, to_rts(self->a.qp));
	RC_DELTA(1, 1, 1, 0);
	EXPECT_EQ(1, seen_count(self, OP_RC_SEND_ONLY, self->b.qp->qp_num));
	EXPECT_EQ(0, read_events(self->ctx, ev, 4, NO_EVENT_MS));
}

/*
 * SQD -> SQD may change the path (IBTA 10.3.1): a new address vector,
 * here traffic class 0x28 instead of 0 (ib_core replaces the hop limit
 * by the route's), applies to what a sends once back in RTS, and a and b
 * still talk (b's ACKs, on b's path, keep 0).
 */
TEST_F(rc, sqd_changes_path)
{
	uint32_t b = 0;
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr qa;
	struct ibv_wc wc[2];
	struct aev ev[4];

	rc_pair(_metadata, self, IBV_QPS_RTS, RC_ACCESS);
	b = self->b.qp->qp_num;
	ASSERT_EQ(0, rc_post_recv(&self->b, 10));
	ASSERT_EQ(0, rc_post_recv(&self->b, 11));
	ASSERT_EQ(0, rc_post_send(&self->a, 0));
	RC_DELTA(2, 2, 0, 0);
	ASSERT_EQ(1, seen_count(self, OP_RC_SEND_ONLY, b));
	EXPECT_EQ(0, self->seen[0].tos);
	ASSERT_EQ(1, rc_poll(self->a.cq, wc, 1, 1000));
	EXPECT_EQ(IBV_WC_SUCCESS, wc[0].status);

	ASSERT_EQ(0, to_sqd(self->a.qp, true));
	ASSERT_EQ(1, read_events(self->ctx, ev, 4, EVENT_MS));
	EXPECT_EQ(IBV_EVENT_SQ_DRAINED, ev[0].type);
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_SQD;
	qa.ah_attr.is_global = 1;
	qa.ah_attr.grh.dgid = self->gid;
	qa.ah_attr.grh.sgid_index = self->gid_index;
	qa.ah_attr.grh.hop_limit = 64;
	qa.ah_attr.grh.traffic_class = 0x28;
	qa.ah_attr.port_num = 1;
	ASSERT_EQ(0, ibv_modify_qp(self->a.qp, &qa, IBV_QP_STATE | IBV_QP_AV));
	ASSERT_EQ(0, ibv_query_qp(self->a.qp, &qa, IBV_QP_AV, &init));
	EXPECT_EQ(0x28, qa.ah_attr.grh.traffic_class);
	ASSERT_EQ(0, to_rts(self->a.qp));

	ASSERT_EQ(0, rc_post_send(&self->a, 1));
	RC_DELTA(2, 2, 0, 0);
	ASSERT_EQ(2, self->nseen);
	EXPECT_EQ(1, seen_count(self, OP_RC_SEND_ONLY, b));
	EXPECT_EQ(1, seen_count(self, OP_RC_ACKNOWLEDGE, self->a.qp->qp_num));
	EXPECT_EQ(0x28, self->seen[0].opcode == OP_RC_SEND_ONLY ?
		  self->seen[0].tos : self->seen[1].tos);
	EXPECT_EQ(0, self->seen[0].opcode == OP_RC_SEND_ONLY ?
		  self->seen[1].tos : self->seen[0].tos);
	ASSERT_EQ(1, rc_poll(self->a.cq, wc, 1, 1000));
	EXPECT_EQ(1, wc[0].wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc[0].status);
	ASSERT_EQ(2, rc_poll(self->b.cq, wc, 2, 1000));
	EXPECT_EQ(IBV_WC_SUCCESS, wc[1].status);
	EXPECT_EQ(11, wc[1].wr_id);
}

/* The counters once they stopped moving for @ms. */
static struct rcounts rcounts_settled(const char *ibdev, int ms)
{
	struct rcounts c = read_rcounts(ibdev), prev;

	do {
		prev = c;
		usleep(ms * 1000);
		c = read_rcounts(ibdev);
	} while (memcmp(&c, &prev, sizeof(c)));
	return c;
}

/* A buffer of @len bytes registered for local write and @access. */
static struct ibv_mr *big_mr(struct ibv_pd *pd, size_t len, int access)
{
	void *p = aligned_alloc(4096, len);

	if (!p)
		return NULL;
	memset(p, 0x5a, len);
	return ibv_reg_mr(pd, p, len, IBV_ACCESS_LOCAL_WRITE | access);
}

static void big_mr_free(struct ibv_mr *mr)
{
	void *p = mr->addr;

	ibv_dereg_mr(mr);
	free(p);
}

/*
 * A READ reply stops when the responder's QP goes to ERR by itself
 * (gift_qp_error(), which leaves the engine's state alone): b's own
 * SEND, to a in INIT, times out with retry_cnt 0 (timeout 12, about
 * 17 ms) while b streams a forged 16 MiB READ's 16384 responses. b
 * completes the SEND with RETRY_EXC_ERR, and sends far fewer than the
 * 16384 responses; the code before stopped only at a modify to ERR.
 */
TEST_F(rc, read_reply_stops_in_err)
{
	const uint32_t len = 16 << 20;
	struct ibv_qp_attr qa;
	struct rcounts end;
	struct ibv_wc wc;
	struct ibv_mr *mr;
	long sent;

	rc_connect(_metadata, self, self->b.qp, IBV_QPS_RTS, RC_ACCESS,
		   self->a.qp->qp_num, A_PSN, B_PSN);
	rc_connect(_metadata, self, self->a.qp, IBV_QPS_INIT, 0, 0, 0, 0);
	ASSERT_EQ(0, to_sqd(self->b.qp, false));
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_SQD;
	qa.timeout = gift_slow_qp_timeout(12);
	qa.retry_cnt = 0;
	ASSERT_EQ(0, ibv_modify_qp(self->b.qp, &qa, IBV_QP_STATE |
				   IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT));
	ASSERT_EQ(0, to_rts(self->b.qp));
	mr = big_mr(self->pd, len, IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, mr);
	self->base = read_rcounts(self->ibdev);

	ASSERT_EQ(0, rc_post_send(&self->b, 1));
	ASSERT_EQ(0, rc_send_read(self, self->b.qp->qp_num, A_PSN,
				  (uintptr_t)mr->addr, mr->rkey, len));
	ASSERT_EQ(1, rc_poll(self->b.cq, &wc, 1, 10000 * gift_slow()));
	EXPECT_EQ(1, wc.wr_id);
	EXPECT_EQ(IBV_WC_RETRY_EXC_ERR, wc.status);
	EXPECT_EQ(IBV_QPS_ERR, rc_state(self->b.qp));
	end = rcounts_settled(self->ibdev, 500 * gift_slow());
	sent = end.sent - self->base.sent;
	TH_LOG("b sent %ld packets of the SEND and the READ reply", sent);
	EXPECT_LE(1 + 64, sent);	/* the reply did start */
	EXPECT_GT(1 + (long)len / 1024 / 2, sent);
	big_mr_free(mr);
}

/*
 * A flood to one QPN is bounded (GIFT_RXQ_MAX, 1024 packets waiting for
 * the QP's engine): while b streams a forged 64 MiB READ reply at path
 * MTU 256 (262144 responses, to a in INIT, which drops them), the
 * requests behind it wait in b's receive queue. 3000 duplicate SENDs
 * sent meanwhile: at most 1024 are kept (and, once the reply is done,
 * handled as duplicates, each ACKed); the others are dropped and counted
 * at once.
 * The code before queued all 3000.
 */
TEST_F_TIMEOUT(rc, rx_flood_bounded, 300)
{
	const uint32_t len = 64 << 20, npkts = len / 256;
	const int flood = 3000, rxq_max = 1024;
	struct rcounts end;
	struct ibv_mr *mr;
	long dup, dropped;
	struct pkt p;
	int i;

	self->mtu = IBV_MTU_256;
	rc_connect(_metadata, self, self->b.qp, IBV_QPS_RTS, RC_ACCESS,
		   self->a.qp->qp_num, A_PSN, B_PSN);
	rc_connect(_metadata, self, self->a.qp, IBV_QPS_INIT, 0, 0, 0, 0);
	mr = big_mr(self->pd, len, IBV_ACCESS_REMOTE_READ);
	ASSERT_NE(NULL, mr);
	self->base = read_rcounts(self->ibdev);

	ASSERT_EQ(0, rc_send_read(self, self->b.qp->qp_num, A_PSN,
				  (uintptr_t)mr->addr, mr->rkey, len));
	pkt_send8(&p, self->b.qp->qp_num, A_PSN - 1, 0xffff, 7);
	pkt_finish(&p, &self->flow, 0);
	for (i = 0; i < flood; i++)
		ASSERT_EQ(0, send_pkt(self->fd, &p, &self->dst));
	end = rcounts_settled(self->ibdev, 1000 * gift_slow());
	dup = end.dup - self->base.dup;
	/*
	 * a drops every response, and b's ACK of each duplicate; the rest
	 * of the drops are the flood's.
	 */
	dropped = end.dropped - self->base.dropped - npkts - dup;
	TH_LOG("flood of %d: %ld handled as duplicates, %ld dropped", flood,
	       dup, dropped);
	/* The READ, the flood, and at a the responses and ACKs. */
	EXPECT_EQ(1 + flood + npkts + dup, end.rcvd - self->base.rcvd);
	EXPECT_EQ(flood, dup + dropped);
	EXPECT_GE(rxq_max, dup);
	EXPECT_LE(flood - rxq_max, dropped);
	EXPECT_EQ(IBV_QPS_RTS, rc_state(self->b.qp));
	big_mr_free(mr);
}

/*
 * The retransmission timeout of @qp's requester, in ms, and whether its
 * timer is pending, from "rdma -dd resource show qp" (drv_ack_timeout_ms,
 * drv_retry_armed): a's timeout set to @t through SQD -> SQD, then a SEND
 * to b in INIT (which drops it) arms the timer. -1 when not read.
 */
static long long armed_timeout(struct __test_metadata *_metadata,
			       FIXTURE_DATA(rc) *self, uint8_t t,
			       long long *armed)
{
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_RESET };
	long long ms = -1;

	*armed = -1;
	if (ibv_modify_qp(self->a.qp, &qa, IBV_QP_STATE))
		return -1;
	rc_connect(_metadata, self, self->a.qp, IBV_QPS_RTS, RC_ACCESS,
		   self->b.qp->qp_num, B_PSN, A_PSN);
	if (to_sqd(self->a.qp, false))
		return -1;
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_SQD;
	qa.timeout = t;
	if (ibv_modify_qp(self->a.qp, &qa, IBV_QP_STATE | IBV_QP_TIMEOUT) ||
	    to_rts(self->a.qp))
		return -1;
	if (rc_post_send(&self->a, t))
		return -1;
	RC_DELTA(1, 1, 1, 0);
	if (gift_res_qp_attr(self->ibdev, self->a.qp->qp_num,
			     "ack_timeout_ms", &ms) ||
	    gift_res_qp_attr(self->ibdev, self->a.qp->qp_num, "retry_armed",
			     armed))
		return -1;
	return ms;
}

/* 4.096 us << t in ms, and whether @ms is that within a jiffy (HZ >= 100). */
static bool is_ack_timeout(long long ms, uint8_t t)
{
	long long want = (4096LL << t) / 1000000;

	return ms >= want - 10 && ms <= want + 10;
}

/*
 * Local ACK timeouts 30 and 31 (4.096 us << t: about 4398 and 8796 s)
 * arm the retransmission timer for that long, as timeout 20 (4.3 s)
 * does for its own; truncated to 32-bit microseconds they were 103 and
 * 206 s. Read from the QP's driver attributes while the timer is
 * pending, so that no test waits an hour. (It read the timer_start
 * tracepoint until a guest died patching that tracepoint's text under
 * TCG, 2026-12-02.)
 */
TEST_F(rc, retry_timeout_30_31_not_truncated)
{
	static const uint8_t ts[] = { 20, 30, 31 };
	long long ms, armed;
	unsigned int i;

	rc_pair(_metadata, self, IBV_QPS_INIT, 0);
	for (i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		ms = armed_timeout(_metadata, self, ts[i], &armed);
		TH_LOG("timeout %u: timer armed (%lld) for %lld ms", ts[i],
		       armed, ms);
		EXPECT_TRUE(is_ack_timeout(ms, ts[i]));
		EXPECT_EQ(1, armed);
	}
}

/*
 * SQD drains rather than pauses (IBTA 10.3.1): a 4 MiB RDMA WRITE (4096
 * packets, many engine passes) that a started just before RTS -> SQD is
 * sent to the end, acknowledged and completed in SQD, and then
 * IBV_EVENT_SQ_DRAINED comes. The code before paused the requester in
 * SQD, so the WRITE never completed there.
 */
TEST_F(rc, sqd_finishes_started_message)
{
	const uint32_t len = 4 << 20;
	struct ibv_mr *src, *dst;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc;
	struct aev ev[4];
	int i;

	/*
	 * 4096 packets through lo: a loaded host can drop the tail of the
	 * burst (lo's backlog), which only the timer recovers, and SQD must
	 * retransmit then too. 67 ms rather than the default 69 s lets it
	 * do so within the poll below (seen: CI of 86671fc).
	 */
	self->timeout = 14;
	rc_pair(_metadata, self, IBV_QPS_RTS, RC_ACCESS);
	src = big_mr(self->pd, len, 0);
	ASSERT_NE(NULL, src);
	dst = big_mr(self->pd, len, IBV_ACCESS_REMOTE_WRITE);
	ASSERT_NE(NULL, dst);
	memset(dst->addr, 0, len);
	sge = (struct ibv_sge){
		.addr = (uintptr_t)src->addr,
		.length = len,
		.lkey = src->lkey,
	};
	wr = (struct ibv_send_wr){
		.wr_id = 9,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = IBV_WR_RDMA_WRITE,
		.wr.rdma = { .remote_addr = (uintptr_t)dst->addr,
			     .rkey = dst->rkey },
	};
	ASSERT_EQ(0, ibv_post_send(self->a.qp, &wr, &bad));
	/*
	 * SQD finishes only WQEs that began: wait for the first packet to
	 * land (the post may leave the sending to the QP's work item).
	 */
	for (i = 0; i < 1000 * gift_slow() &&
	     memcmp(src->addr, dst->addr, 64); i++)
		usleep(1000);
	ASSERT_EQ(0, memcmp(src->addr, dst->addr, 64));
	ASSERT_EQ(0, to_sqd(self->a.qp, true));
	ASSERT_EQ(1, rc_poll(self->a.cq, &wc, 1, 10000 * gift_slow()));
	EXPECT_EQ(9, wc.wr_id);
	EXPECT_EQ(IBV_WC_SUCCESS, wc.status);
	EXPECT_EQ(IBV_QPS_SQD, rc_state(self->a.qp));
	ASSERT_EQ(1, read_events(self->ctx, ev, 4, EVENT_MS));
	EXPECT_EQ(IBV_EVENT_SQ_DRAINED, ev[0].type);
	EXPECT_EQ(0, memcmp(src->addr, dst->addr, len));
	big_mr_free(dst);
	big_mr_free(src);
}

static bool port_active(const void *ibdev)
{
	char path[256], state[64];

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/ports/1/state",
		 (const char *)ibdev);
	return !gift_read_file(path, state, sizeof(state)) &&
	       strstr(state, "ACTIVE");
}

/* finit_module() of rdma_gift.ko: 0 or -errno. */
static int load_module(const char *ko)
{
	int fd, ret;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/* A socket holding UDP port 4791 of @family, or -1. */
static int hold_port(int family)
{
	struct sockaddr_storage ss = {};
	int fd, one = 1;

	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(GIFT_ROCE_PORT);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(GIFT_ROCE_PORT);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			       sizeof(one)))
			goto err;
	}
	if (bind(fd, (struct sockaddr *)&ss, sizeof(ss)))
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

/*
 * With UDP port 4791 taken (by rdma_rxe, typically), for IPv4 or IPv6,
 * loading the module fails with EADDRINUSE and leaves nothing behind.
 * Last in the file, so that it runs last: the teardown reloads the module
 * and recreates the runner's device.
 */
FIXTURE(reload) {
	const char *ibdev;
	const char *ndev;
	const char *ko;
};

FIXTURE_SETUP(reload)
{
	self->ibdev = gift_env("GIFT_IBDEV");
	self->ndev = gift_env("GIFT_NETDEV");
	self->ko = gift_env("GIFT_MODULE");
}

FIXTURE_TEARDOWN(reload)
{
	if (!gift_path_exists("/sys/module/rdma_gift"))
		load_module(self->ko);
	if (!gift_ibdev_exists(self->ibdev))
		gift_nl_newlink(self->ibdev, "gift", self->ndev);
	gift_wait_for(port_active, self->ibdev, 5000);
}

TEST_F(reload, load_fails_when_port_taken)
{
	static const int families[] = { AF_INET, AF_INET6 };
	int i, fd;

	ASSERT_EQ(0, gift_sh("rmmod rdma_gift"));
	for (i = 0; i < 2; i++) {
		fd = hold_port(families[i]);
		ASSERT_LE(0, fd);
		EXPECT_EQ(-EADDRINUSE, load_module(self->ko));
		EXPECT_FALSE(gift_path_exists("/sys/module/rdma_gift"));
		close(fd);
	}

	ASSERT_EQ(0, load_module(self->ko));
	for (i = 0; i < 2; i++) {
		/* ...and the module now holds the port itself. */
		fd = hold_port(families[i]);
		EXPECT_EQ(-1, fd);
		EXPECT_EQ(EADDRINUSE, errno);
		if (fd >= 0)
			close(fd);
	}
	ASSERT_EQ(0, gift_nl_newlink(self->ibdev, "gift", self->ndev));
	EXPECT_TRUE(gift_wait_for(port_active, self->ibdev, 5000));
}

TEST_HARNESS_MAIN
