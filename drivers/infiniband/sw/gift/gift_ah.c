// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift address handles.
 *
 * What this file owns: resolving rdma_ah_attr into struct gift_av (for
 * AHs and for the primary path of RC QPs), and the AH verbs: create (for
 * kernel and user AHs), query and destroy.
 *
 * Invariants: an AH is constant once created; it carries a RoCEv2 AV
 * (GRH present, RoCEv2 source GID, both addresses of one IP family) and
 * port GIFT_PORT. At most max_ah AHs exist per device.
 *
 * Locking: none. AHs are immutable and their counter is atomic; create
 * and destroy may run in atomic context (without RDMA_CREATE_AH_SLEEPABLE
 * / RDMA_DESTROY_AH_SLEEPABLE) and neither allocates nor sleeps then.
 */

#include <rdma/ib_addr.h>
#include <rdma/ib_cache.h>

#include "gift.h"

/**
 * gift_av_from_attr() - resolve an address vector
 * @av: filled here
 * @attr: RoCE address with a GRH whose sgid_attr ib_core resolved
 *
 * Return: 0, or -EINVAL when the attribute has no GRH, its source GID is
 * not a RoCEv2 GID, or source and destination mix IPv4 and IPv6.
 */
int gift_av_from_attr(struct gift_av *av, const struct rdma_ah_attr *attr)
{
	const struct ib_global_route *grh;
	const struct ib_gid_attr *sgid_attr;

	if (!(rdma_ah_get_ah_flags(attr) & IB_AH_GRH))
		return -EINVAL;
	grh = rdma_ah_read_grh(attr);
	sgid_attr = grh->sgid_attr;
	if (!sgid_attr || sgid_attr->gid_type != IB_GID_TYPE_ROCE_UDP_ENCAP)
		return -EINVAL;

	memset(av, 0, sizeof(*av));
	av->sgid = sgid_attr->gid;
	av->dgid = grh->dgid;
	av->ipv4 = ipv6_addr_v4mapped((struct in6_addr *)av->sgid.raw);
	if (av->ipv4 != ipv6_addr_v4mapped((struct in6_addr *)av->dgid.raw))
		return -EINVAL;
	memcpy(&av->saddr, av->sgid.raw, sizeof(av->saddr));
	memcpy(&av->daddr, av->dgid.raw, sizeof(av->daddr));
	av->flow_label = grh->flow_label;
	av->hop_limit = grh->hop_limit;
	av->traffic_class = grh->traffic_class;
	av->sgid_index = grh->sgid_index;
	return 0;
}

/**
 * gift_ah_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_ah_init_attr(struct ib_device_attr *attr)
{
	attr->max_ah = GIFT_MAX_AH;
}

/**
 * gift_create_ah() - create an address handle (kernel and user AHs)
 * @ibah: AH allocated by ib_core
 * @init_attr: the RoCE address, its sgid_attr resolved by ib_core
 * @udata: user data (no driver data is exchanged), or NULL for kernel AHs
 *
 * Return: 0; -EINVAL for an address that is not RoCEv2 on port 1 (see
 * gift_av_from_attr()) or for driver input; -ENOMEM at max_ah.
 */
static int gift_create_ah(struct ib_ah *ibah, struct rdma_ah_init_attr *init_attr,
			  struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibah->device);
	struct rdma_ah_attr *attr = init_attr->ah_attr;
	struct gift_ah *ah = to_gift_ah(ibah);
	int err;

	if (gift_udata_has_input(udata))
		return -EINVAL;
	if (attr->type != RDMA_AH_ATTR_TYPE_ROCE ||
	    rdma_ah_get_port_num(attr) != GIFT_PORT) {
		gift_dbg(gdev, "not a RoCE address on port %u\n", GIFT_PORT);
		return -EINVAL;
	}
	err = gift_av_from_attr(&ah->av, attr);
	if (err) {
		gift_dbg(gdev, "not a RoCEv2 address vector\n");
		return err;
	}
	if (!atomic_add_unless(&gdev->ah_table.num, 1, gdev->attr.max_ah))
		return -ENOMEM;

	ah->attr = *attr;
	ah->attr.grh.sgid_attr = NULL;
	return 0;
}

/**
 * gift_query_ah() - report the address an AH was created with
 * @ibah: address handle
 * @attr: filled here; grh.sgid_attr is left NULL
 *
 * Return: 0.
 */
static int gift_query_ah(struct ib_ah *ibah, struct rdma_ah_attr *attr)
{
	*attr = to_gift_ah(ibah)->attr;
	return 0;
}

/**
 * gift_destroy_ah() - destroy an address handle
 * @ibah: address handle; WQEs built from it keep their own copy of the AV
 * @flags: RDMA_DESTROY_AH_SLEEPABLE or 0; nothing here sleeps
 *
 * Return: 0; destroy never fails.
 */
static int gift_destroy_ah(struct ib_ah *ibah, u32 flags)
{
	atomic_dec(&to_gift_dev(ibah->device)->ah_table.num);
	return 0;
}

const struct ib_device_ops gift_ah_ops = {
	.create_ah = gift_create_ah,
	.create_user_ah = gift_create_ah,
	.destroy_ah = gift_destroy_ah,
	.query_ah = gift_query_ah,

	INIT_RDMA_OBJ_SIZE(ib_ah, gift_ah, ibah),
};
