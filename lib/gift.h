/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * libgift: private definitions of the gift libibverbs provider.
 *
 * The provider is thin: every verb is a generic uverbs command executed by
 * the rdma_gift kernel driver. The only state kept in user space is what
 * alloc_ucontext returned.
 */
#ifndef GIFT_H
#define GIFT_H

#include <stdint.h>

#include <infiniband/driver.h>
#include <infiniband/kern-abi.h>
#include <infiniband/verbs.h>

#include <rdma/gift-abi.h>
/* Generated from rdma/gift-abi.h by rdma-core's make_abi_structs.py */
#include <kernel-abi/gift-abi.h>

/*
 * GET_CONTEXT: no driver request, struct gift_alloc_ucontext_resp as driver
 * response (udata inlen 0, outlen sizeof(struct gift_alloc_ucontext_resp)).
 */
DECLARE_DRV_CMD(gift_get_context, IB_USER_VERBS_CMD_GET_CONTEXT,
		empty, gift_alloc_ucontext_resp);

struct gift_device {
	struct verbs_device ibv_dev;
};

struct gift_context {
	struct verbs_context ibv_ctx;
	uint32_t abi_version;	/* from gift_alloc_ucontext_resp */
	uint32_t dev_caps;	/* enum gift_dev_cap */
	char fw_ver[64];	/* sysfs fw_ver of the device, may be empty */
};

static inline struct gift_context *to_gctx(struct ibv_context *ibctx)
{
	return container_of(ibctx, struct gift_context, ibv_ctx.context);
}

#endif /* GIFT_H */
