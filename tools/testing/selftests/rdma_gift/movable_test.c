// SPDX-License-Identifier: GPL-2.0
/*
 * Gift MRs and ZONE_MOVABLE. A plain page reference held for the
 * lifetime of an MR would keep a page from migrating and so block the
 * offlining of its memory block; gift registrations therefore pin (and
 * migrate out of ZONE_MOVABLE) the copy-on-write shared pages they would
 * otherwise hold by reference, paying the copy, and keep references only
 * outside it, and on the zero page, which never moves.
 *
 * Needs a guest booted with a movable zone: run_all.sh boots one with
 * "movablecore=1G" (and a pmem region, for dax_test) for its second
 * suite. Without one every test fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include "../../../../lib/giftdv.h"
#include "gift_util.h"
#include "gift_harness.h"

#define MR_LEN		(16UL << 20)

/* [start, end) PFNs of the movable zone of node 0, from /proc/zoneinfo. */
static int movable_zone(uint64_t *start, uint64_t *end)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	unsigned long long v;
	bool in = false;
	uint64_t spanned = 0;
	char line[256];

	if (!f)
		return -1;
	*start = 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node ", 5)) {
			in = strstr(line, "zone  Movable") != NULL;
			continue;
		}
		if (in && sscanf(line, " spanned %llu", &v) == 1)
			spanned = v;
		if (in && sscanf(line, " start_pfn: %llu", &v) == 1)
			*start = v;
	}
	fclose(f);
	*end = *start + spanned;
	return spanned ? 0 : -1;
}

FIXTURE(movable) {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	uint64_t mov_start, mov_end;
	long pinned0, referenced0;
	size_t npages;
	uint64_t *before, *after;
};

FIXTURE_SETUP(movable)
{
	self->ctx = gift_open(gift_env("GIFT_IBDEV"));
	ASSERT_NE(NULL, self->ctx);
	self->pd = ibv_alloc_pd(self->ctx);
	ASSERT_NE(NULL, self->pd);
	ASSERT_EQ(0, movable_zone(&self->mov_start, &self->mov_end))
		TH_LOG("no ZONE_MOVABLE: boot with movablecore=");
	ASSERT_EQ(0, gift_umem_pages(&self->pinned0, &self->referenced0));
	self->npages = MR_LEN / getpagesize();
	self->before = calloc(self->npages, sizeof(uint64_t));
	self->after = calloc(self->npages, sizeof(uint64_t));
	ASSERT_NE(NULL, self->before);
	ASSERT_NE(NULL, self->after);
}

FIXTURE_TEARDOWN(movable)
{
	long pinned, referenced;

	EXPECT_EQ(0, ibv_dealloc_pd(self->pd));
	EXPECT_EQ(0, ibv_close_device(self->ctx));
	EXPECT_EQ(0, gift_umem_pages(&pinned, &referenced));
	EXPECT_EQ(self->pinned0, pinned);
	EXPECT_EQ(self->referenced0, referenced);
	free(self->before);
	free(self->after);
}

static bool in_movable(FIXTURE_DATA(movable) *self, uint64_t ent)
{
	uint64_t pfn = GIFT_PM_PFN(ent);

	return pfn >= self->mov_start && pfn < self->mov_end;
}

/*
 * Pages shared with a forked child: those in ZONE_MOVABLE are pinned,
 * which migrates them (and so gives the parent new pages); the others
 * stay shared and are held by reference.
 */
TEST_F(movable, fork_shared_movable_pages_are_pinned)
{
	size_t i, nmov = 0;
	struct giftdv_mr_attr attr = {};
	struct ibv_mr *mr;
	int pipefd[2];
	char *buf;
	pid_t child;

	buf = mmap(NULL, MR_LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, madvise(buf, MR_LEN, MADV_NOHUGEPAGE));
	memset(buf, 0x3c, MR_LEN);
	ASSERT_EQ(0, pipe(pipefd));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		char c;

		close(pipefd[1]);
		_exit(read(pipefd[0], &c, 1) < 0);
	}
	close(pipefd[0]);

	ASSERT_EQ(0, gift_pagemap(buf, self->npages, self->before));
	for (i = 0; i < self->npages; i++)
		nmov += in_movable(self, self->before[i]);
	/* The movable zone is the highest: user pages come from it. */
	ASSERT_LT(self->npages / 2, nmov);

	mr = ibv_reg_mr(self->pd, buf, MR_LEN,
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	ASSERT_NE(NULL, mr);
	ASSERT_EQ(0, giftdv_query_mr(mr, &attr));
	EXPECT_EQ(self->npages, attr.npages);
	EXPECT_EQ(self->npages - nmov, attr.shared_pages);

	ASSERT_EQ(0, gift_pagemap(buf, self->npages, self->after));
	for (i = 0; i < self->npages; i++) {
		if (in_movable(self, self->before[i])) {
			/* Migrated out of the zone, content kept. */
			ASSERT_FALSE(in_movable(self, self->after[i]));
		} else {
			ASSERT_EQ(GIFT_PM_PFN(self->before[i]),
				  GIFT_PM_PFN(self->after[i]));
		}
		ASSERT_EQ(0x3c, buf[i * getpagesize()]);
	}
	EXPECT_EQ(0, attr.stale_pages);

	EXPECT_EQ(0, ibv_dereg_mr(mr));
	close(pipefd[1]);
	ASSERT_EQ(child, waitpid(child, NULL, 0));
	munmap(buf, MR_LEN);
}

/*
 * The zero page never moves: gift keeps referencing it, even when KASLR
 * placed the kernel image (and the zero page with it) in the range of
 * ZONE_MOVABLE, as it did in a guest booted with movablecore=1G and a
 * memmap= pmem region.
 */
TEST_F(movable, zero_page_is_referenced)
{
	struct giftdv_mr_attr attr = {};
	volatile char sum = 0;
	struct ibv_mr *mr;
	size_t i;
	char *buf;

	buf = mmap(NULL, MR_LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_EQ(0, madvise(buf, MR_LEN, MADV_NOHUGEPAGE));
	for (i = 0; i < MR_LEN; i += getpagesize())
		sum += buf[i];
	ASSERT_EQ(0, gift_pagemap(buf, self->npages, self->before));

	mr = ibv_reg_mr(self->pd, buf, MR_LEN,
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	ASSERT_NE(NULL, mr);
	ASSERT_EQ(0, giftdv_query_mr(mr, &attr));
	EXPECT_EQ(self->npages, attr.shared_pages);
	ASSERT_EQ(0, gift_pagemap(buf, self->npages, self->after));
	for (i = 0; i < self->npages; i++)
		ASSERT_EQ(GIFT_PM_PFN(self->before[i]),
			  GIFT_PM_PFN(self->after[i]));
	TH_LOG("the zero page is %sin the movable range",
	       in_movable(self, self->before[0]) ? "" : "not ");
	EXPECT_EQ(0, ibv_dereg_mr(mr));
	munmap(buf, MR_LEN);
}

TEST_HARNESS_MAIN
