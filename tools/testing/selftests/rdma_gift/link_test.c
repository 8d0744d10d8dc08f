// SPDX-License-Identifier: GPL-2.0
/*
 * The "gift" rdma link type: creation and deletion through rdma netlink,
 * the errors of bad requests (exact errnos), leaks over many cycles, and
 * module unload with devices and open contexts present.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gift_util.h"
#include "gift_harness.h"

FIXTURE(link) {
	char netdev[16];
	char name[32];
};

FIXTURE_SETUP(link)
{
	snprintf(self->netdev, sizeof(self->netdev), "gtl%d", getpid() % 1000);
	snprintf(self->name, sizeof(self->name), "giftl%d", getpid() % 1000);
	ASSERT_EQ(0, gift_dummy_add(self->netdev));
}

FIXTURE_TEARDOWN(link)
{
	if (gift_ibdev_exists(self->name))
		gift_link_del(self->name);
	gift_sh("ip link del %s", self->netdev);
}

/*
 * 100 add/delete cycles leave no device, module reference or slab behind.
 * Each cycle registers and unregisters an ib_device; under TCG that is
 * about a second, hence the timeout. A slow kernel (GIFT_SLOW) runs
 * fewer cycles, at least 10: the debug kernel it stands for has kmemleak,
 * which the runner scans after the run and which finds a single leaked
 * object, where the slab sum below only sees many.
 */
TEST_F_TIMEOUT(link, add_delete_100_no_leak, 600)
{
	enum { WARMUP = 10 };
	const int cycles = gift_slow_div(100, 10);
	/*
	 * A leaked gift device holds at least its ib_device (several KiB),
	 * port data and sysfs objects; 100 leaks are well over 400 KiB. Slab
	 * noise of an idle VM over the same period is a few tens of KiB.
	 */
	const long long max_growth = 256 * 1024;
	long refcnt;
	long long slab;
	time_t start;
	int i;

	for (i = 0; i < WARMUP; i++) {
		ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
		ASSERT_EQ(0, gift_link_del(self->name));
	}
	refcnt = gift_read_long("/sys/module/rdma_gift/refcnt");
	ASSERT_GE(refcnt, 0);
	slab = gift_slab_bytes();
	ASSERT_GT(slab, 0);

	start = time(NULL);
	for (i = 0; i < cycles; i++) {
		ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
		ASSERT_TRUE(gift_ibdev_exists(self->name));
		ASSERT_EQ(0, gift_link_del(self->name));
		ASSERT_TRUE(gift_ibdev_gone(self->name));
	}
	TH_LOG("%d cycles in %ld s", cycles, (long)(time(NULL) - start));

	EXPECT_EQ(refcnt, gift_read_long("/sys/module/rdma_gift/refcnt"));
	TH_LOG("slab growth over %d cycles: %lld bytes", cycles,
	       gift_slab_bytes() - slab);
	EXPECT_LT(gift_slab_bytes() - slab, max_growth);
}

/* The created device is usable and deletable by name, like rxe's. */
TEST_F(link, rdma_tool_add_delete)
{
	ASSERT_EQ(0, gift_sh("rdma link add %s type gift netdev %s",
			     self->name, self->netdev));
	EXPECT_EQ(0, gift_sh("rdma link show %s/1 | grep -q 'netdev %s'",
			     self->name, self->netdev));
	EXPECT_EQ(0, gift_sh("rdma dev show %s", self->name));
	ASSERT_EQ(0, gift_sh("rdma link delete %s", self->name));
	EXPECT_NE(0, gift_sh("rdma dev show %s", self->name));
}

TEST_F(link, duplicate_name_is_eexist)
{
	ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
	ASSERT_EQ(0, gift_dummy_add("gtl_dup"));
	EXPECT_EQ(-EEXIST, gift_nl_newlink(self->name, "gift", "gtl_dup"));
	/* So does the name of the runner's device, on another netdev. */
	EXPECT_EQ(-EEXIST, gift_nl_newlink(gift_env("GIFT_IBDEV"), "gift",
					   "gtl_dup"));
	gift_dummy_del("gtl_dup");
}

TEST_F(link, second_device_on_netdev_is_eexist)
{
	char other[40];

	snprintf(other, sizeof(other), "%sb", self->name);
	ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
	EXPECT_EQ(-EEXIST, gift_nl_newlink(other, "gift", self->netdev));
	EXPECT_TRUE(gift_ibdev_gone(other));
}

TEST_F(link, missing_netdev_is_enodev)
{
	EXPECT_EQ(-ENODEV, gift_nl_newlink(self->name, "gift", "nosuchnet0"));
	EXPECT_TRUE(gift_ibdev_gone(self->name));
}

TEST_F(link, non_ethernet_netdev_is_einval)
{
	EXPECT_EQ(-EINVAL, gift_nl_newlink(self->name, "gift", "lo"));
	EXPECT_TRUE(gift_ibdev_gone(self->name));
}

TEST_F(link, vlan_netdev_is_eperm)
{
	char vlan[20];

	snprintf(vlan, sizeof(vlan), "%s.7", self->netdev);
	ASSERT_EQ(0, gift_sh("ip link add link %s name %s type vlan id 7",
			     self->netdev, vlan));
	EXPECT_EQ(-EPERM, gift_nl_newlink(self->name, "gift", vlan));
	EXPECT_TRUE(gift_ibdev_gone(self->name));
	gift_sh("ip link del %s", vlan);
}

TEST_F(link, unknown_link_type_is_einval)
{
	EXPECT_EQ(-EINVAL, gift_nl_newlink(self->name, "giftnosuch",
					   self->netdev));
}

/* Failed requests leave no trace: the name is free for the next add. */
TEST_F(link, name_reusable_after_failed_add)
{
	EXPECT_EQ(-EINVAL, gift_nl_newlink(self->name, "gift", "lo"));
	EXPECT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
	EXPECT_TRUE(gift_ibdev_exists(self->name));
}

/*
 * rmmod with devices present removes them all, even with a context open;
 * the module is then reloaded and the runner's device recreated.
 */
TEST_F(link, rmmod_with_devices_present)
{
	const char *dev = gift_env("GIFT_IBDEV");
	const char *ndev = gift_env("GIFT_NETDEV");
	const char *ko = gift_env("GIFT_MODULE");
	struct ibv_context *ctx;

	ASSERT_EQ(0, gift_nl_newlink(self->name, "gift", self->netdev));
	ctx = gift_open(self->name);
	ASSERT_NE(NULL, ctx);

	ASSERT_EQ(0, gift_sh("rmmod rdma_gift"));
	EXPECT_TRUE(gift_ibdev_gone(self->name));
	EXPECT_TRUE(gift_ibdev_gone(dev));
	EXPECT_FALSE(gift_path_exists("/sys/module/rdma_gift"));
	EXPECT_TRUE(gift_wait_async(ctx, IBV_EVENT_DEVICE_FATAL, 5000));
	EXPECT_EQ(0, ibv_close_device(ctx));

	ASSERT_EQ(0, gift_sh("insmod %s", ko));
	ASSERT_EQ(0, gift_nl_newlink(dev, "gift", ndev));
	EXPECT_TRUE(gift_ibdev_exists(dev));
}

TEST_HARNESS_MAIN
