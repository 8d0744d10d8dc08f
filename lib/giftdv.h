/* SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB) */
/*
 * giftdv.h - direct-verbs extensions of the gift (rdma_gift) provider.
 *
 * The gift provider is a libibverbs plugin (libgift-rdmav34.so, loaded by
 * libibverbs through /etc/libibverbs.d/gift.driver). Besides the standard
 * verbs it exports one function, giftdv_query_device(). Applications that
 * call it link with the provider directly, e.g.
 *
 *   cc app.c -libverbs -L/usr/lib/x86_64-linux-gnu/libibverbs \
 *      -lgift-rdmav34 -Wl,-rpath,/usr/lib/x86_64-linux-gnu/libibverbs
 *
 * (libdir as reported by "pkg-config --variable=libdir libibverbs"). The
 * dynamic loader then maps the same file that libibverbs dlopen()s, so the
 * provider is registered only once. Applications that merely want to pass
 * IBV_ACCESS_GIFT need no link with the provider: the flag is an ordinary
 * access bit handed to ibv_reg_mr().
 */
#ifndef GIFTDV_H
#define GIFTDV_H

#include <stdint.h>

#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * IBV_ACCESS_GIFT - register a read-only "gift" memory region.
 *
 * Bit 29 is the last bit of the optional access range
 * (IBV_ACCESS_OPTIONAL_RANGE, bits 20..29, the same bits as the kernel's
 * IB_UVERBS_ACCESS_OPTIONAL_FIRST..IB_UVERBS_ACCESS_OPTIONAL_LAST). Flags
 * in that range are best effort by definition: ib_core accepts every
 * optional bit instead of failing ibv_reg_mr() with EINVAL, a driver ignores
 * the optional bits it does not implement, and libibverbs strips the whole
 * range on kernels that cannot pass optional bits at all. So an application
 * may pass IBV_ACCESS_GIFT to any device, gift or not.
 *
 * The consequence is that a successful ibv_reg_mr() does NOT tell whether
 * the flag was honoured. Check GIFTDV_DEV_CAP_ACCESS_GIFT in the dev_caps
 * returned by giftdv_query_device() first; on any other device, or when the
 * capability is absent, the region is registered as if the flag were not
 * given.
 *
 * Note: with a flag from the optional range, the ibv_reg_mr() macro of
 * <infiniband/verbs.h> calls ibv_reg_mr_iova2() (libibverbs >= 1.8).
 */
#define IBV_ACCESS_GIFT (1 << 29)

/* Bits of giftdv_device_attr.dev_caps (mirror enum gift_dev_cap of the ABI) */
enum giftdv_dev_caps {
	/* The device honours IBV_ACCESS_GIFT in ibv_reg_mr / ibv_rereg_mr */
	GIFTDV_DEV_CAP_ACCESS_GIFT = 1 << 0,
};

/*
 * struct giftdv_device_attr - attributes returned by giftdv_query_device()
 * @comp_mask: in: optional fields the caller wants (none are defined yet,
 *             pass 0); out: the optional fields that were filled in. The
 *             fields below are always filled in.
 * @dev_caps: bitmask of enum giftdv_dev_caps
 * @abi_version: uverbs ABI version of the running rdma_gift kernel driver
 */
struct giftdv_device_attr {
	uint64_t comp_mask;
	uint32_t dev_caps;
	uint32_t abi_version;
};

/*
 * giftdv_query_device - query gift specific device attributes
 * @ctx: a context opened on a gift device (ibv_open_device)
 * @attr: filled on success
 *
 * Return: 0, or a positive errno: EOPNOTSUPP if @ctx does not belong to the
 * gift provider (this copy of it), EINVAL if @attr is NULL.
 */
int giftdv_query_device(struct ibv_context *ctx,
			struct giftdv_device_attr *attr);

#ifdef __cplusplus
}
#endif

#endif /* GIFTDV_H */
