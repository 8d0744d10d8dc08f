// SPDX-License-Identifier: GPL-2.0
/*
 * Device-level verbs of gift devices, through libibverbs, our provider and
 * uverbs: enumeration, device and port attributes, the RoCEv2 GID table,
 * port events, device removal under an open context, PDs and contexts.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "../../../../include/uapi/rdma/gift-abi.h"
#include "gift_util.h"
#include "gift_harness.h"

#define GIFT_MAX_PD 0x10000

/* EUI-64 node GUID derived from the netdev's MAC, as the driver must. */
static __be64 guid_from_mac(const char *netdev)
{
	unsigned int m[6];
	uint8_t g[8];
	char path[256], buf[64];
	__be64 guid;

	snprintf(path, sizeof(path), "/sys/class/net/%s/address", netdev);
	if (gift_read_file(path, buf, sizeof(buf)) ||
	    sscanf(buf, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3],
		   &m[4], &m[5]) != 6)
		return 0;
	g[0] = m[0] ^ 2;
	g[1] = m[1];
	g[2] = m[2];
	g[3] = 0xff;
	g[4] = 0xfe;
	g[5] = m[3];
	g[6] = m[4];
	g[7] = m[5];
	memcpy(&guid, g, sizeof(guid));
	return guid;
}

/* Counts "pd N" / "ctx N" for a device in "rdma resource show" output. */
static long res_count(const char *dev, const char *kind)
{
	char cmd[128], line[512], key[32], *p;
	long n = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma resource show %s", dev);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	snprintf(key, sizeof(key), " %s ", kind);
	while (fgets(line, sizeof(line), f))
		if ((p = strstr(line, key)))
			n = strtol(p + strlen(key), NULL, 10);
	pclose(f);
	return n;
}

/* True if the GID table of ctx holds addr (v4-mapped for IPv4) as RoCEv2. */
static bool gid_present(struct ibv_context *ctx, int family, const char *addr)
{
	struct ibv_gid_entry ent[64];
	union ibv_gid want = {};
	ssize_t n, i;

	if (family == AF_INET) {
		want.raw[10] = 0xff;
		want.raw[11] = 0xff;
		inet_pton(AF_INET, addr, &want.raw[12]);
	} else {
		inet_pton(AF_INET6, addr, want.raw);
	}
	n = ibv_query_gid_table(ctx, ent, 64, 0);
	for (i = 0; i < n; i++)
		if (!memcmp(&ent[i].gid, &want, sizeof(want)) &&
		    ent[i].gid_type == IBV_GID_TYPE_ROCE_V2)
			return true;
	return false;
}

struct gid_wait {
	struct ibv_context *ctx;
	int family;
	const char *addr;
	bool present;
};

static bool gid_state_reached(const void *arg)
{
	const struct gid_wait *w = arg;

	return gid_present(w->ctx, w->family, w->addr) == w->present;
}

static bool wait_gid(struct ibv_context *ctx, int family, const char *addr,
		     bool present)
{
	struct gid_wait w = { ctx, family, addr, present };

	return gift_wait_for(gid_state_reached, &w, 5000);
}

FIXTURE(dev) {
	struct ibv_context *ctx;
	const char *name;
	const char *netdev;
};

FIXTURE_SETUP(dev)
{
	self->name = gift_env("GIFT_IBDEV");
	self->netdev = gift_env("GIFT_NETDEV");
	self->ctx = gift_open(self->name);
	ASSERT_NE(NULL, self->ctx);
}

FIXTURE_TEARDOWN(dev)
{
	if (self->ctx)
		ibv_close_device(self->ctx);
}

/* The device is listed, matched by our provider, and named what we asked. */
TEST_F(dev, enumerated_by_our_provider)
{
	struct giftdv_device_attr dv = {};
	struct ibv_device *ibdev = self->ctx->device;
	char path[256], buf[64];

	EXPECT_STREQ(self->name, ibv_get_device_name(ibdev));
	EXPECT_EQ(IBV_NODE_CA, ibdev->node_type);
	EXPECT_EQ(IBV_TRANSPORT_IB, ibdev->transport_type);
	EXPECT_EQ(guid_from_mac(self->netdev), ibv_get_device_guid(ibdev));

	/* Only libgift answers giftdv_query_device with 0 for a context. */
	ASSERT_EQ(0, giftdv_query_device(self->ctx, &dv));
	EXPECT_EQ(GIFT_UVERBS_ABI_VERSION, dv.abi_version);
	/*
	 * The gift access flag is implemented, the QP method that posts
	 * FLUSH and ATOMIC WRITE exists, CQs and work queues are mapped;
	 * nothing else is claimed.
	 */
	EXPECT_EQ(GIFTDV_DEV_CAP_ACCESS_GIFT | GIFTDV_DEV_CAP_POST_EX |
		  GIFTDV_DEV_CAP_MAPPED_CQ | GIFTDV_DEV_CAP_MAPPED_WQ,
		  dv.dev_caps);

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/hca_type",
		 self->name);
	ASSERT_EQ(0, gift_read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ(GIFT_HCA_TYPE, buf);
	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/parent",
		 self->name);
	ASSERT_EQ(0, gift_read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ(self->netdev, buf);
}

/* Device attributes report what the driver enforces, nothing more. */
TEST_F(dev, query_device)
{
	struct ibv_device_attr attr;

	ASSERT_EQ(0, ibv_query_device(self->ctx, &attr));
	EXPECT_EQ(0xffffff, attr.vendor_id);
	EXPECT_EQ(1, attr.phys_port_cnt);
	EXPECT_EQ(GIFT_MAX_PD, attr.max_pd);
	EXPECT_EQ(1, attr.max_pkeys);
	EXPECT_EQ((uint64_t)sysconf(_SC_PAGESIZE), attr.page_size_cap);
	EXPECT_EQ(attr.node_guid, attr.sys_image_guid);
	EXPECT_EQ(guid_from_mac(self->netdev), attr.node_guid);
	EXPECT_STREQ("1.0", attr.fw_ver);
}

/* A RoCE port whose state and MTU follow the netdev. */
TEST_F(dev, query_port)
{
	struct ibv_port_attr pa;
	enum ibv_mtu want;
	char path[256];
	uint16_t pkey;
	long mtu;

	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &pa));
	EXPECT_EQ(IBV_PORT_ACTIVE, pa.state);
	EXPECT_EQ(5, pa.phys_state);	/* LinkUp */
	EXPECT_EQ(IBV_LINK_LAYER_ETHERNET, pa.link_layer);
	EXPECT_EQ(IBV_MTU_4096, pa.max_mtu);
	EXPECT_EQ(1024, pa.gid_tbl_len);
	EXPECT_EQ(1, pa.pkey_tbl_len);
	/* What post_send enforces: 2 GiB. */
	EXPECT_EQ(1U << 31, pa.max_msg_sz);

	snprintf(path, sizeof(path), "/sys/class/net/%s/mtu", self->netdev);
	mtu = gift_read_long(path);
	ASSERT_GT(mtu, 0);
	/* Largest IB MTU that fits the netdev MTU minus RoCEv2 headers. */
	want = mtu >= 4096 + 78 ? IBV_MTU_4096 :
	       mtu >= 2048 + 78 ? IBV_MTU_2048 : IBV_MTU_1024;
	EXPECT_EQ(want, pa.active_mtu);

	ASSERT_EQ(0, ibv_query_pkey(self->ctx, 1, 0, &pkey));
	EXPECT_EQ(0xffff, ntohs(pkey));
	EXPECT_NE(0, ibv_query_pkey(self->ctx, 1, 1, &pkey));
	EXPECT_NE(0, ibv_query_port(self->ctx, 2, &pa));
}

/* The netdev's IPv4 address is in the GID table as a RoCEv2 GID. */
TEST_F(dev, ipv4_address_is_roce_v2_gid)
{
	struct ifaddrs *ifa, *i;
	char addr[INET_ADDRSTRLEN];
	int found = 0;

	ASSERT_EQ(0, getifaddrs(&ifa));
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, self->netdev))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
			  addr, sizeof(addr));
		EXPECT_TRUE(wait_gid(self->ctx, AF_INET, addr, true));
		found++;
	}
	freeifaddrs(ifa);
	ASSERT_GT(found, 0);
}

/* PDs are real kernel objects, tracked by ib_core, and freed again. */
TEST_F(dev, pd_alloc_free)
{
	enum { N = 1000 };
	struct ibv_pd **pds = calloc(N, sizeof(*pds));
	long base = res_count(self->name, "pd");
	int i;

	ASSERT_NE(NULL, pds);
	ASSERT_GE(base, 0);
	for (i = 0; i < N; i++) {
		pds[i] = ibv_alloc_pd(self->ctx);
		ASSERT_NE(NULL, pds[i]);
	}
	EXPECT_EQ(base + N, res_count(self->name, "pd"));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, ibv_dealloc_pd(pds[i]));
	EXPECT_EQ(base, res_count(self->name, "pd"));
	free(pds);
}

/* max_pd is enforced: one more fails with ENOMEM, and frees make room. */
TEST_F(dev, pd_limit)
{
	struct ibv_pd **pds = calloc(GIFT_MAX_PD + 1, sizeof(*pds));
	/* The kernel's: ib_mad's PD for the GSI QP. */
	long kernel = res_count(self->name, "pd");
	struct ibv_pd *extra;
	int i, n;

	ASSERT_NE(NULL, pds);
	ASSERT_GE(kernel, 0);
	for (n = 0; n <= GIFT_MAX_PD; n++) {
		pds[n] = ibv_alloc_pd(self->ctx);
		if (!pds[n])
			break;
	}
	/* Other tests hold no PDs on this device while we run. */
	EXPECT_EQ(GIFT_MAX_PD - kernel, n);
	EXPECT_EQ(ENOMEM, errno);
	ASSERT_EQ(0, ibv_dealloc_pd(pds[0]));
	extra = ibv_alloc_pd(self->ctx);
	EXPECT_NE(NULL, extra);
	if (extra)
		ibv_dealloc_pd(extra);
	for (i = 1; i < n; i++)
		ASSERT_EQ(0, ibv_dealloc_pd(pds[i]));
	free(pds);
}

/* Opening and closing contexts repeatedly leaves nothing behind. */
TEST_F(dev, contexts_loop)
{
	enum { LOOPS = 200, HELD = 64 };
	struct ibv_context *held[HELD];
	long base = res_count(self->name, "ctx");
	struct ibv_context *c;
	int i;

	ASSERT_GE(base, 1);
	for (i = 0; i < LOOPS; i++) {
		c = gift_open(self->name);
		ASSERT_NE(NULL, c);
		ASSERT_EQ(0, ibv_close_device(c));
	}
	for (i = 0; i < HELD; i++) {
		held[i] = gift_open(self->name);
		ASSERT_NE(NULL, held[i]);
	}
	EXPECT_EQ(base + HELD, res_count(self->name, "ctx"));
	for (i = 0; i < HELD; i++)
		ASSERT_EQ(0, ibv_close_device(held[i]));
	EXPECT_EQ(base, res_count(self->name, "ctx"));
}

/*
 * Devices on a dummy netdev we own, so the tests can change its addresses,
 * take it down and unregister it.
 */
FIXTURE(dummy) {
	char netdev[IFNAMSIZ];
	char name[32];
	struct ibv_context *ctx;
};

FIXTURE_SETUP(dummy)
{
	snprintf(self->netdev, sizeof(self->netdev), "gtd%d", getpid() % 1000);
	snprintf(self->name, sizeof(self->name), "giftd%d", getpid() % 1000);
	ASSERT_EQ(0, gift_dummy_add(self->netdev));
	ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
	self->ctx = gift_open(self->name);
	ASSERT_NE(NULL, self->ctx);
}

FIXTURE_TEARDOWN(dummy)
{
	if (self->ctx)
		ibv_close_device(self->ctx);
	if (gift_ibdev_exists(self->name))
		gift_link_del(self->name);
	gift_sh("ip link del %s", self->netdev);
}

/* GIDs appear and disappear with the netdev's IPv4 and IPv6 addresses. */
TEST_F(dummy, gids_follow_addresses)
{
	ASSERT_EQ(0, gift_sh("ip addr add 198.51.100.7/24 dev %s",
			     self->netdev));
	EXPECT_TRUE(wait_gid(self->ctx, AF_INET, "198.51.100.7", true));
	ASSERT_EQ(0, gift_sh("ip addr add 2001:db8::7/64 dev %s nodad",
			     self->netdev));
	EXPECT_TRUE(wait_gid(self->ctx, AF_INET6, "2001:db8::7", true));

	ASSERT_EQ(0, gift_sh("ip addr del 198.51.100.7/24 dev %s",
			     self->netdev));
	EXPECT_TRUE(wait_gid(self->ctx, AF_INET, "198.51.100.7", false));
	ASSERT_EQ(0, gift_sh("ip addr del 2001:db8::7/64 dev %s",
			     self->netdev));
	EXPECT_TRUE(wait_gid(self->ctx, AF_INET6, "2001:db8::7", false));
}

/* Port state follows the netdev, announced by PORT_ERR / PORT_ACTIVE. */
TEST_F(dummy, port_follows_netdev)
{
	struct ibv_port_attr pa;

	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &pa));
	EXPECT_EQ(IBV_PORT_ACTIVE, pa.state);

	ASSERT_EQ(0, gift_sh("ip link set %s down", self->netdev));
	EXPECT_TRUE(gift_wait_async(self->ctx, IBV_EVENT_PORT_ERR, 5000));
	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &pa));
	EXPECT_EQ(IBV_PORT_DOWN, pa.state);
	EXPECT_EQ(3, pa.phys_state);	/* Disabled */

	ASSERT_EQ(0, gift_sh("ip link set %s up", self->netdev));
	EXPECT_TRUE(gift_wait_async(self->ctx, IBV_EVENT_PORT_ACTIVE, 5000));
	ASSERT_EQ(0, ibv_query_port(self->ctx, 1, &pa));
	EXPECT_EQ(IBV_PORT_ACTIVE, pa.state);
}

/*
 * Unregistering the netdev removes the device even while a context is
 * open: the context is told DEVICE_FATAL and its verbs fail from then on.
 */
TEST_F(dummy, netdev_unregister_removes_device)
{
	struct ibv_pd *pd = ibv_alloc_pd(self->ctx);

	ASSERT_NE(NULL, pd);
	ASSERT_EQ(0, gift_dummy_del(self->netdev));
	EXPECT_TRUE(gift_wait_for(gift_ibdev_gone, self->name, 5000));
	EXPECT_TRUE(gift_wait_async(self->ctx, IBV_EVENT_DEVICE_FATAL, 5000));
	EXPECT_EQ(NULL, ibv_alloc_pd(self->ctx));
	/* Destroying objects of a removed device still succeeds. */
	EXPECT_EQ(0, ibv_dealloc_pd(pd));
}

TEST_HARNESS_MAIN
