// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift address handles.
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
}

const struct ib_device_ops gift_ah_ops = {
};
