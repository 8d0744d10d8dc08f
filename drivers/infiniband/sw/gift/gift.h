/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift: a software RoCEv2 device.
 *
 * Object model
 * ------------
 * A gift device (struct gift_dev) is created by "rdma link add NAME type
 * gift netdev DEV" and lives until one of: "rdma link delete NAME", the
 * netdev going away (NETDEV_UNREGISTER), or module unload. All three end
 * in ib_unregister_device*(), which calls gift_dealloc_driver() exactly
 * once; the memory itself is freed by ib_core when the last reference to
 * the ib_device is put.
 *
 * Every device is on gift_dev_list from just before ib_register_device()
 * until gift_dealloc_driver(). The list is how the netdev notifier and
 * module unload find our devices: ib_device_get_by_netdev() cannot, as an
 * out-of-tree driver reports RDMA_DRIVER_UNKNOWN, which matches every
 * driver's devices (a stock rxe0 on the same netdev included).
 */
#ifndef GIFT_H
#define GIFT_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/netdevice.h>
#include <rdma/ib_verbs.h>
#include <rdma/uverbs_ioctl.h>

#include "gift_compat.h"
#include "gift_ah.h"
#include "gift_cq.h"
#include "gift_mcast.h"
#include "gift_mr.h"
#include "gift_mw.h"
#include "gift_proto.h"
#include "gift_qp.h"
#include "gift_srq.h"
#include "gift_stats.h"

#define GIFT_PORT		1
#define GIFT_GID_TBL_LEN	1024
#define GIFT_PKEY_TBL_LEN	1
#define GIFT_MAX_PD		0x10000
#define GIFT_MAX_UCONTEXT	512
#define GIFT_VENDOR_ID		0xffffff	/* no IEEE OUI: software device */

/**
 * struct gift_dev - one gift RDMA device
 * @ibdev: the ib_core device; must stay first (ib_alloc_device)
 * @list: entry in gift_dev_list
 * @ndev: the netdev the device was created on; identity only, compared
 *	by the netdev notifier and never dereferenced (ib_core holds the
 *	reference, see ib_device_set_netdev())
 * @net: the network namespace @ndev was in when the device was created,
 *	whose RoCEv2 sockets the device uses (gift_net.c); not referenced:
 *	the namespace's exit waits until the device is gone
 * @attr: device attributes, constant after gift_dev_init()
 * @port_state: last port state reported with an IB event
 * @mtu: the port's active MTU in bytes (from the netdev's MTU, as
 *	query_port reports it): the largest UD message
 * @num_ucontext: live user contexts
 * @num_pd: live protection domains (kernel and user)
 * @gid_gen: bumped by every change to the GID table (gift_add_gid(),
 *	gift_del_gid()), after the entry stopped being valid: cached
 *	routes (struct gift_net_route) recheck their source GID when it
 *	moved
 * @mr_table: memory region keys
 * @ah_table: address handle accounting
 * @cq_table: completion queue accounting
 * @srq_table: shared receive queue accounting
 * @qp_table: queue pair numbers
 * @stats: hardware counters (gift_stats.h)
 *
 * Locking:
 *   @list          gift_dev_list_lock
 *   @ndev, @net    constant after gift_dev_register()
 *   @port_state    RTNL once registered (the netdev notifier); set once
 *                  before registration, when the notifier cannot see it
 *   @mtu           written under RTNL by the notifier (and once before
 *                  registration); read with READ_ONCE() anywhere
 *   @num_*         atomic, bounded by the limits in @attr
 *   @gid_gen       atomic; fully ordered increments after the GID table
 *                  change, read with acquire semantics before the check
 *   @mr_table, @qp_table   their xarray locks (see gift_mr.c, gift_qp.c)
 *   @stats         atomic64 counters, no lock
 *   @ah_table, @cq_table, @srq_table   atomic counters
 */
struct gift_dev {
	struct ib_device ibdev;
	struct list_head list;
	struct net_device *ndev;
	struct net *net;
	struct ib_device_attr attr;
	enum ib_port_state port_state;
	u32 mtu;
	atomic_t num_ucontext;
	atomic_t num_pd;
	atomic_t gid_gen;
	struct gift_mr_table mr_table;
	struct gift_ah_table ah_table;
	struct gift_cq_table cq_table;
	struct gift_srq_table srq_table;
	struct gift_qp_table qp_table;
	struct gift_mcast_table mcast;
	struct gift_stats stats;
};

/**
 * struct gift_ucontext - a user verbs context
 * @ibuc: the ib_core object; must stay first
 */
struct gift_ucontext {
	struct ib_ucontext ibuc;
};

/**
 * struct gift_pd - a protection domain
 * @ibpd: the ib_core object; must stay first
 */
struct gift_pd {
	struct ib_pd ibpd;
};

/**
 * gift_udata_has_input() - whether a verb got driver input it cannot know
 * @udata: the verb's driver udata, or NULL (kernel callers)
 *
 * The provider sends no driver input to any verb; non-zero bytes are a
 * newer provider's or garbage, and the verb fails with -EINVAL rather than
 * ignore them. Zeros are allowed (a caller's zeroed extension).
 *
 * Return: true when @udata carries a non-zero byte (or cannot be read).
 */
static inline bool gift_udata_has_input(struct ib_udata *udata)
{
	return udata && udata->inlen &&
	       !ib_is_udata_cleared(udata, 0, udata->inlen);
}

/**
 * gift_udata_read() - read a verb's driver request
 * @udata: the verb's driver udata, or NULL (kernel callers)
 * @req: the request, zeroed by the caller: a shorter input (none at all
 *	for kernel callers) leaves the rest zero, an older provider's request
 * @len: its size
 *
 * Return: 0; -EINVAL when bytes past @len are not zero (a newer
 * provider's request, or garbage); -EFAULT.
 */
static inline int gift_udata_read(struct ib_udata *udata, void *req,
				  size_t len)
{
	if (!udata || !udata->inlen)
		return 0;
	if (udata->inlen > len &&
	    !ib_is_udata_cleared(udata, len, udata->inlen - len))
		return -EINVAL;
	return ib_copy_from_udata(req, udata, min(udata->inlen, len));
}

/* The user context a verb's udata belongs to. */
static inline struct ib_ucontext *gift_udata_uctx(struct ib_udata *udata)
{
	return rdma_udata_to_uverbs_attr_bundle(udata)->context;
}

static inline struct gift_dev *to_gift_dev(struct ib_device *ibdev)
{
	return container_of(ibdev, struct gift_dev, ibdev);
}

static inline struct gift_pd *to_gift_pd(struct ib_pd *ibpd)
{
	return container_of(ibpd, struct gift_pd, ibpd);
}

#define gift_dbg(gdev, fmt, ...) \
	ibdev_dbg(&(gdev)->ibdev, "%s: " fmt, __func__, ##__VA_ARGS__)

/* gift_main.c */
void gift_dev_list_add(struct gift_dev *gdev);
void gift_dev_list_del(struct gift_dev *gdev);
struct gift_dev *gift_dev_get_next(struct gift_dev *prev);

/* gift_verbs.c */
int gift_dev_register(const char *name, struct net_device *ndev);
enum ib_port_state gift_port_state(struct gift_dev *gdev);
void gift_dev_update_mtu(struct gift_dev *gdev, struct net_device *ndev);

#endif /* GIFT_H */
