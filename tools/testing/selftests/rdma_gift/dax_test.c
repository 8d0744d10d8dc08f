// SPDX-License-Identifier: GPL-2.0
/*
 * MRs over fsdax files. A long-term pin refuses fsdax mappings
 * (EOPNOTSUPP), since the filesystem waits for DAX page references to
 * drop before it truncates; a gift registration, which would hold such
 * pages by plain reference for as long as the MR lives, refuses them the
 * same way, shared or private, and holds nothing afterwards.
 *
 * Needs a pmem device: run_all.sh boots a guest with memmap=64M!1536M
 * (a legacy pmem region) for its second suite. The fixture makes an
 * ext4 on /dev/pmem0 and mounts it with -o dax=always; without the
 * device every test fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

#define DAX_DEV		"/dev/pmem0"
#define DAX_MNT		"/tmp/gift-dax"
#define DAX_FILE	DAX_MNT "/data"
#define DAX_LEN		(1UL << 20)

static bool dax_dev_present(const void *unused)
{
	return gift_path_exists(DAX_DEV);
}

FIXTURE(dax) {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	long pinned0, referenced0;
	int fd;
	uint8_t *shared, *priv;
};

FIXTURE_SETUP(dax)
{
	static uint8_t block[4096];
	size_t off;

	self->fd = -1;
	self->shared = MAP_FAILED;
	self->priv = MAP_FAILED;
	self->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, self->ctx);
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	ASSERT_EQ(0, gift_umem_pages(&self->pinned0, &self->referenced0));

	gift_sh("modprobe nd_pmem; modprobe nd_e820");
	ASSERT_TRUE(gift_wait_for(dax_dev_present, NULL, 5000))
		TH_LOG("no %s: boot with memmap=64M!1536M", DAX_DEV);
	ASSERT_EQ(0, gift_sh("mkdir -p %s && mkfs.ext4 -q -F -b 4096 %s && "
			     "mount -o dax=always %s %s", DAX_MNT, DAX_DEV,
			     DAX_DEV, DAX_MNT));
	self->fd = open(DAX_FILE, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ASSERT_LE(0, self->fd);
	memset(block, 0x6d, sizeof(block));
	for (off = 0; off < DAX_LEN; off += sizeof(block))
		ASSERT_EQ(sizeof(block),
			  pwrite(self->fd, block, sizeof(block), off));
	ASSERT_EQ(0, fsync(self->fd));

	self->shared = mmap(NULL, DAX_LEN, PROT_READ, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->shared);
	self->priv = mmap(NULL, DAX_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			  self->fd, 0);
	ASSERT_NE(MAP_FAILED, self->priv);
	/* Both really map the file's DAX pages, read-faulted in. */
	ASSERT_EQ(0x6d, self->shared[DAX_LEN - 1]);
	ASSERT_EQ(0x6d, self->priv[DAX_LEN - 1]);
	ASSERT_EQ(0, gift_sh("grep -q ' %s .*dax' /proc/mounts", DAX_MNT));
}

FIXTURE_TEARDOWN(dax)
{
	long pinned, referenced;

	if (self->shared != MAP_FAILED)
		munmap(self->shared, DAX_LEN);
	if (self->priv != MAP_FAILED)
		munmap(self->priv, DAX_LEN);
	if (self->fd >= 0)
		close(self->fd);
	gift_sh("umount %s", DAX_MNT);
	if (self->pd)
		EXPECT_EQ(0, ibv_dealloc_pd(self->pd));
	if (self->ctx)
		EXPECT_EQ(0, ibv_close_device(self->ctx));
	EXPECT_EQ(0, gift_umem_pages(&pinned, &referenced));
	EXPECT_EQ(self->pinned0, pinned);
	EXPECT_EQ(self->referenced0, referenced);
}

/* Registers [p, p + DAX_LEN) with access; expects EOPNOTSUPP. */
static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(dax) *self, uint8_t *p, int access)
{
	long pinned, referenced;
	struct ibv_mr *mr;

	errno = 0;
	mr = ibv_reg_mr(self->pd, p, DAX_LEN, access);
	EXPECT_EQ(NULL, mr);
	EXPECT_EQ(EOPNOTSUPP, errno);
	if (mr)
		ibv_dereg_mr(mr);
	/* Nothing is held after the refusal, not even partly. */
	ASSERT_EQ(0, gift_umem_pages(&pinned, &referenced));
	EXPECT_EQ(self->pinned0, pinned);
	EXPECT_EQ(self->referenced0, referenced);
}

/* Gift refuses fsdax, shared or private, as a long-term pin does. */
TEST_F(dax, gift_refused)
{
	expect_refused(_metadata, self, self->shared,
		       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	expect_refused(_metadata, self, self->priv,
		       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	expect_refused(_metadata, self, self->priv, IBV_ACCESS_GIFT);
}

/* Without gift: GUP's FOLL_LONGTERM refusal, as with ib_umem. */
TEST_F(dax, plain_refused)
{
	expect_refused(_metadata, self, self->shared, IBV_ACCESS_REMOTE_READ);
	expect_refused(_metadata, self, self->priv, IBV_ACCESS_REMOTE_READ);
}

TEST_HARNESS_MAIN
