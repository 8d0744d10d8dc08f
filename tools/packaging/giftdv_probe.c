// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * giftdv_probe DEVICE: an application of the packaged giftdv.h and
 * provider (tools/packaging/check_packages.sh builds it the way giftdv(3)
 * says). Queries the gift capabilities of DEVICE, registers a gift MR over
 * 16 pages that only map the zero page and checks what giftdv_query_mr()
 * reports for it: 16 pages, all held shared, none stale. Exits 0 on
 * success, 1 with a message otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <infiniband/giftdv.h>

#define NPAGES 16

static int probe(struct ibv_context *ctx)
{
	struct giftdv_device_attr dattr = { 0 };
	struct giftdv_mr_attr mattr = { 0 };
	long psz = sysconf(_SC_PAGESIZE);
	size_t len = NPAGES * psz;
	volatile unsigned char *p;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	uint64_t stale = ~0ULL;
	int ret = 1, err;
	size_t i;

	err = giftdv_query_device(ctx, &dattr);
	if (err) {
		fprintf(stderr, "giftdv_query_device: %s\n", strerror(err));
		return 1;
	}
	if (!(dattr.dev_caps & GIFTDV_DEV_CAP_ACCESS_GIFT)) {
		fprintf(stderr, "dev_caps %#x lacks GIFTDV_DEV_CAP_ACCESS_GIFT\n",
			dattr.dev_caps);
		return 1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (i = 0; i < len; i += psz)	/* map the zero page: read only */
		(void)p[i];
	pd = ibv_alloc_pd(ctx);
	if (!pd) {
		perror("ibv_alloc_pd");
		goto out_unmap;
	}
	mr = ibv_reg_mr(pd, (void *)p, len,
			IBV_ACCESS_REMOTE_READ | IBV_ACCESS_GIFT);
	if (!mr) {
		perror("ibv_reg_mr(IBV_ACCESS_GIFT)");
		goto out_pd;
	}
	err = giftdv_query_mr(mr, &mattr);
	if (err)
		fprintf(stderr, "giftdv_query_mr: %s\n", strerror(err));
	else if (mattr.npages != NPAGES || mattr.shared_pages != NPAGES ||
		 mattr.stale_pages)
		fprintf(stderr, "giftdv_query_mr: npages %llu shared %llu stale %llu, want %d %d 0\n",
			(unsigned long long)mattr.npages,
			(unsigned long long)mattr.shared_pages,
			(unsigned long long)mattr.stale_pages, NPAGES, NPAGES);
	else if ((err = giftdv_mr_stale_pages(mr, &stale)) || stale)
		fprintf(stderr, "giftdv_mr_stale_pages: %s, stale %llu\n",
			strerror(err), (unsigned long long)stale);
	else
		ret = 0;
	if (ibv_dereg_mr(mr)) {
		perror("ibv_dereg_mr");
		ret = 1;
	}
out_pd:
	if (ibv_dealloc_pd(pd)) {
		perror("ibv_dealloc_pd");
		ret = 1;
	}
out_unmap:
	munmap((void *)p, len);
	if (!ret)
		printf("%s: dev_caps %#x abi %u, gift MR of %d zero pages: %llu shared, 0 stale\n",
		       ibv_get_device_name(ctx->device), dattr.dev_caps,
		       dattr.abi_version, NPAGES,
		       (unsigned long long)mattr.shared_pages);
	return ret;
}

int main(int argc, char **argv)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, num, ret = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DEVICE\n", argv[0]);
		return 1;
	}
	list = ibv_get_device_list(&num);
	if (!list) {
		perror("ibv_get_device_list");
		return 1;
	}
	for (i = 0; i < num; i++)
		if (!strcmp(ibv_get_device_name(list[i]), argv[1]))
			ctx = ibv_open_device(list[i]);
	if (ctx) {
		ret = probe(ctx);
		ibv_close_device(ctx);
	} else {
		fprintf(stderr, "%s: not found or cannot be opened\n", argv[1]);
	}
	ibv_free_device_list(list);
	return ret;
}
