// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift device-level verbs: device and port queries, user contexts,
 * protection domains, and device registration.
 *
 * Attributes are honest: a limit is reported only for a resource the
 * driver implements and enforces; resources still missing report zero.
 */

#include <linux/etherdevice.h>
#include <net/addrconf.h>
#include <rdma/ib_addr.h>
#include <rdma/ib_mad.h>
#include <rdma/uverbs_ioctl.h>

#include <rdma/gift-abi.h>
#include "gift.h"
#include "gift_mmap.h"
#include "gift_net.h"
#include "gift_uapi.h"

/**
 * gift_port_state() - port state derived from the netdev
 * @gdev: device
 *
 * The port is active when the netdev is up and has carrier.
 *
 * Return: IB_PORT_ACTIVE or IB_PORT_DOWN.
 */
enum ib_port_state gift_port_state(struct gift_dev *gdev)
{
	struct net_device *ndev = ib_device_get_netdev(&gdev->ibdev, GIFT_PORT);
	enum ib_port_state state = IB_PORT_DOWN;

	if (!ndev)
		return state;
	if (netif_running(ndev) && netif_carrier_ok(ndev))
		state = IB_PORT_ACTIVE;
	dev_put(ndev);
	return state;
}

static void gift_init_attr(struct gift_dev *gdev, struct net_device *ndev)
{
	struct ib_device_attr *attr = &gdev->attr;

	attr->vendor_id = GIFT_VENDOR_ID;
	attr->max_mr_size = 0;
	attr->page_size_cap = PAGE_SIZE;
	attr->max_pd = GIFT_MAX_PD;
	attr->max_pkeys = GIFT_PKEY_TBL_LEN;
	attr->local_ca_ack_delay = 15;
	attr->kernel_cap_flags = IBK_ALLOW_USER_UNREG;
	addrconf_addr_eui48((u8 *)&gdev->ibdev.node_guid, ndev->dev_addr);
	attr->sys_image_guid = gdev->ibdev.node_guid;

	gift_ah_init_attr(attr);
	gift_cq_init_attr(attr);
	gift_mcast_init_attr(attr);
	gift_mr_init_attr(attr);
	gift_mw_init_attr(attr);
	gift_qp_init_attr(attr);
	gift_srq_init_attr(attr);
}

/**
 * gift_query_device() - report device attributes
 * @ibdev: device
 * @attr: filled with the attributes
 * @udata: extended query data from user space; must carry no input
 *
 * Return: 0 or -EINVAL for unknown user input.
 */
static int gift_query_device(struct ib_device *ibdev,
			     struct ib_device_attr *attr,
			     struct ib_udata *udata)
{
	if (gift_udata_has_input(udata))
		return -EINVAL;

	*attr = to_gift_dev(ibdev)->attr;
	return 0;
}

/**
 * gift_query_port() - report port attributes
 * @ibdev: device
 * @port: port number, always GIFT_PORT (checked by ib_core)
 * @attr: zeroed by ib_core, filled here
 *
 * While the device is being removed with its netdev, ib_core may still
 * query the port (cache updates after the last port event); the port then
 * reads as down and disabled rather than failing.
 *
 * Return: 0, or the error of ib_get_eth_speed().
 */
static int gift_query_port(struct ib_device *ibdev, u32 port,
			   struct ib_port_attr *attr)
{
	struct gift_dev *gdev = to_gift_dev(ibdev);
	struct net_device *ndev;

	attr->max_mtu = IB_MTU_4096;
	attr->active_mtu = IB_MTU_256;
	attr->gid_tbl_len = GIFT_GID_TBL_LEN;
	attr->pkey_tbl_len = GIFT_PKEY_TBL_LEN;
	attr->max_vl_num = 1;
	attr->max_msg_sz = GIFT_MAX_MSG_SIZE;
	attr->port_cap_flags = IB_PORT_CM_SUP;
	attr->state = IB_PORT_DOWN;
	attr->phys_state = IB_PORT_PHYS_STATE_DISABLED;

	ndev = ib_device_get_netdev(ibdev, port);
	if (!ndev)
		return 0;
	attr->state = gift_port_state(gdev);
	if (attr->state == IB_PORT_ACTIVE)
		attr->phys_state = IB_PORT_PHYS_STATE_LINK_UP;
	else if (netif_running(ndev))
		attr->phys_state = IB_PORT_PHYS_STATE_POLLING;
	attr->active_mtu = iboe_get_mtu(READ_ONCE(ndev->mtu));
	dev_put(ndev);
	attr->qkey_viol_cntr = min_t(u64, U16_MAX,
				     gift_stats_read(gdev,
						     GIFT_CNT_QKEY_VIOLATIONS));

	return ib_get_eth_speed(ibdev, port, &attr->active_speed,
				&attr->active_width);
}

/**
 * gift_get_port_immutable() - port properties fixed for the device's life
 * @ibdev: device
 * @port: port number
 * @immutable: filled here
 *
 * RoCEv2 only (no RoCE v1 GIDs: the device does not speak it), with the
 * MAD and CM capabilities: the GSI QP (QP1, gift_qp.c) carries ib_mad's
 * MADs, so ib_cm and rdma_cm run on the device.
 *
 * Return: 0 or the error of gift_query_port().
 */
static int gift_get_port_immutable(struct ib_device *ibdev, u32 port,
				   struct ib_port_immutable *immutable)
{
	struct ib_port_attr attr = {};
	int err;

	err = ib_query_port(ibdev, port, &attr);
	if (err)
		return err;

	immutable->core_cap_flags = RDMA_CORE_CAP_PROT_ROCE_UDP_ENCAP |
				    RDMA_CORE_CAP_IB_MAD |
				    RDMA_CORE_CAP_IB_CM |
				    RDMA_CORE_CAP_AF_IB |
				    RDMA_CORE_CAP_ETH_AH;
	immutable->max_mad_size = IB_MGMT_MAD_SIZE;
	immutable->gid_tbl_len = attr.gid_tbl_len;
	immutable->pkey_tbl_len = attr.pkey_tbl_len;
	return 0;
}

/**
 * gift_query_pkey() - the single default P_Key
 * @ibdev: device
 * @port: port number
 * @index: P_Key table index
 * @pkey: filled here
 *
 * Return: 0, or -EINVAL for an index past the table.
 */
static int gift_query_pkey(struct ib_device *ibdev, u32 port, u16 index,
			   u16 *pkey)
{
	if (index >= GIFT_PKEY_TBL_LEN)
		return -EINVAL;
	*pkey = IB_DEFAULT_PKEY_FULL;
	return 0;
}

static enum rdma_link_layer gift_get_link_layer(struct ib_device *ibdev,
						u32 port)
{
	return IB_LINK_LAYER_ETHERNET;
}

static void gift_get_dev_fw_str(struct ib_device *ibdev, char *str)
{
	snprintf(str, IB_FW_VERSION_NAME_MAX, "%d.%d", GIFT_UVERBS_ABI_VERSION, 0);
}

/**
 * gift_alloc_ucontext() - open a user verbs context
 * @ibuc: context allocated by ib_core
 * @udata: provider request (must be empty) and response
 *
 * Return: 0, -ENOMEM over GIFT_MAX_UCONTEXT, or -EFAULT/-EINVAL on udata.
 */
static int gift_alloc_ucontext(struct ib_ucontext *ibuc,
			       struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibuc->device);
	struct gift_alloc_ucontext_resp resp = {
		.abi_version = GIFT_UVERBS_ABI_VERSION,
		.dev_caps = GIFT_DEV_CAP_ACCESS_GIFT | GIFT_DEV_CAP_POST_EX |
			    GIFT_DEV_CAP_MAPPED_CQ | GIFT_DEV_CAP_MAPPED_WQ,
	};
	int err;

	if (gift_udata_has_input(udata))
		return -EINVAL;
	if (!atomic_add_unless(&gdev->num_ucontext, 1, GIFT_MAX_UCONTEXT))
		return -ENOMEM;

	err = ib_copy_to_udata(udata, &resp, min(udata->outlen, sizeof(resp)));
	if (err) {
		atomic_dec(&gdev->num_ucontext);
		return err;
	}
	return 0;
}

/**
 * gift_dealloc_ucontext() - close a user verbs context
 * @ibuc: context; all its objects were destroyed by ib_core first
 */
static void gift_dealloc_ucontext(struct ib_ucontext *ibuc)
{
	atomic_dec(&to_gift_dev(ibuc->device)->num_ucontext);
}

/**
 * gift_disassociate_ucontext() - revoke a context whose device is going away
 * @ibuc: context still open by user space
 *
 * Having this op lets ib_core remove a device while applications keep
 * their file open: it destroys their objects, reports
 * IB_EVENT_DEVICE_FATAL and fails later calls with -EIO, instead of
 * pinning the module and blocking removal until the application exits.
 * The driver has nothing to zap: the pages of mapped CQ rings stay with
 * the processes that map them (gift_mmap.c) and are no longer written.
 */
static void gift_disassociate_ucontext(struct ib_ucontext *ibuc)
{
}

/**
 * gift_alloc_pd() - allocate a protection domain
 * @ibpd: PD allocated by ib_core
 * @udata: user data (no driver data is exchanged), or NULL for kernel PDs
 *
 * Return: 0; -EINVAL for driver input in @udata; -ENOMEM once max_pd PDs
 * exist.
 */
static int gift_alloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	struct gift_dev *gdev = to_gift_dev(ibpd->device);

	if (gift_udata_has_input(udata))
		return -EINVAL;
	if (!atomic_add_unless(&gdev->num_pd, 1, gdev->attr.max_pd))
		return -ENOMEM;
	return 0;
}

/**
 * gift_dealloc_pd() - free a protection domain
 * @ibpd: PD with no objects left in it (ib_core's usecnt guarantees it)
 * @udata: unused
 *
 * Return: 0; destroy never fails.
 */
static int gift_dealloc_pd(struct ib_pd *ibpd, struct ib_udata *udata)
{
	atomic_dec(&to_gift_dev(ibpd->device)->num_pd);
	return 0;
}

/**
 * gift_dealloc_driver() - last driver callback of a device
 * @ibdev: device being unregistered
 *
 * Called once by ib_core after every client and user context is gone,
 * or by ib_dealloc_device() when gift_dev_register() failed after the
 * ops were set.
 */
static void gift_dealloc_driver(struct ib_device *ibdev)
{
	struct gift_dev *gdev = to_gift_dev(ibdev);

	gift_dev_list_del(gdev);
	gift_mcast_table_destroy(&gdev->mcast);
	gift_qp_table_destroy(&gdev->qp_table);
	/* Prefetches still queued hold MR references. */
	gift_odp_flush();
	gift_mr_table_destroy(&gdev->mr_table);
	gift_net_dev_del(gdev);
}

/**
 * gift_add_gid() - ib_core added an entry to the port's GID table
 * @attr: the new entry
 * @context: driver context of the entry (unused)
 *
 * The table is ib_core's; the driver only notes that it changed, see
 * gift_net_gid_changed(). Called under the table's mutex.
 *
 * Return: 0.
 */
static int gift_add_gid(const struct ib_gid_attr *attr, void **context)
{
	gift_net_gid_changed(to_gift_dev(attr->device));
	return 0;
}

/**
 * gift_del_gid() - ib_core removed an entry from the port's GID table
 * @attr: the entry, already invalid for lookups
 * @context: driver context of the entry (unused)
 *
 * Routes cached with this entry as their source must be checked again:
 * gift_net_gid_changed(). Called under the table's mutex.
 *
 * Return: 0.
 */
static int gift_del_gid(const struct ib_gid_attr *attr, void **context)
{
	gift_net_gid_changed(to_gift_dev(attr->device));
	return 0;
}

static ssize_t hca_type_show(struct device *device,
			     struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", GIFT_HCA_TYPE);
}
static DEVICE_ATTR_RO(hca_type);

static ssize_t parent_show(struct device *device,
			   struct device_attribute *attr, char *buf)
{
	struct gift_dev *gdev = rdma_device_to_drv_device(device,
							  struct gift_dev,
							  ibdev);
	struct net_device *ndev;
	ssize_t len;

	ndev = ib_device_get_netdev(&gdev->ibdev, GIFT_PORT);
	if (!ndev)
		return -ENODEV;
	len = sysfs_emit(buf, "%s\n", netdev_name(ndev));
	dev_put(ndev);
	return len;
}
static DEVICE_ATTR_RO(parent);

static struct attribute *gift_dev_attrs[] = {
	&dev_attr_hca_type.attr,
	&dev_attr_parent.attr,
	NULL
};

static const struct attribute_group gift_dev_attr_group = {
	.attrs = gift_dev_attrs,
};

static const struct ib_device_ops gift_dev_ops = {
	.owner = THIS_MODULE,
	.driver_id = RDMA_DRIVER_UNKNOWN,
	.uverbs_abi_ver = GIFT_UVERBS_ABI_VERSION,

	.add_gid = gift_add_gid,
	.alloc_pd = gift_alloc_pd,
	.alloc_ucontext = gift_alloc_ucontext,
	.dealloc_driver = gift_dealloc_driver,
	.dealloc_pd = gift_dealloc_pd,
	.dealloc_ucontext = gift_dealloc_ucontext,
	.del_gid = gift_del_gid,
	.device_group = &gift_dev_attr_group,
	.disassociate_ucontext = gift_disassociate_ucontext,
	.get_dev_fw_str = gift_get_dev_fw_str,
	.get_link_layer = gift_get_link_layer,
	.get_port_immutable = gift_get_port_immutable,
	.mmap = gift_mmap,
	.mmap_free = gift_mmap_free,
	.query_device = gift_query_device,
	.query_pkey = gift_query_pkey,
	.query_port = gift_query_port,

	INIT_RDMA_OBJ_SIZE(ib_pd, gift_pd, ibpd),
	INIT_RDMA_OBJ_SIZE(ib_ucontext, gift_ucontext, ibuc),
};

/**
 * gift_dev_update_mtu() - follow the netdev's MTU
 * @gdev: device
 * @ndev: its netdev
 *
 * The port's active MTU (what query_port reports) bounds UD messages.
 * Called before registration and, under RTNL, on NETDEV_CHANGEMTU.
 */
void gift_dev_update_mtu(struct gift_dev *gdev, struct net_device *ndev)
{
	int mtu = ib_mtu_enum_to_int(iboe_get_mtu(READ_ONCE(ndev->mtu)));

	WRITE_ONCE(gdev->mtu, max(mtu, 256));
}

/**
 * gift_dev_register() - create and register a gift device on a netdev
 * @name: ib device name requested by the user
 * @ndev: Ethernet netdev, referenced by the caller for the call's duration
 *
 * Return: 0, or a negative errno (-EEXIST/-ENFILE for a name in use).
 * On success the device may already be gone again when this returns, if
 * a concurrent unregistration won the race; the caller must not touch it.
 */
int gift_dev_register(const char *name, struct net_device *ndev)
{
	struct gift_dev *gdev;
	struct ib_device *ibdev;
	int err;

	/*
	 * In ib_core's exclusive netns mode, the device starts in its
	 * netdev's namespace where the kernel allows it (gift_compat.h);
	 * in shared mode ib_core puts every device in init_net.
	 */
	gdev = gift_alloc_device(dev_net(ndev));
	if (!gdev)
		return -ENOMEM;
	ibdev = &gdev->ibdev;
	INIT_LIST_HEAD(&gdev->list);
	gdev->ndev = ndev;
	err = gift_net_dev_add(gdev, dev_net(ndev));
	if (err) {
		ib_dealloc_device(ibdev);
		return err;
	}
	gift_mr_table_init(&gdev->mr_table);
	gift_qp_table_init(&gdev->qp_table);
	gift_mcast_table_init(&gdev->mcast);

	gift_init_attr(gdev, ndev);
	strscpy(ibdev->node_desc, "gift", sizeof(ibdev->node_desc));
	ibdev->node_type = RDMA_NODE_IB_CA;
	ibdev->phys_port_cnt = 1;
	ibdev->num_comp_vectors = 1;
	/*
	 * The provider is thin: posting and polling go through these write
	 * commands, which ib_core leaves disabled unless a driver opts in.
	 */
	ibdev->uverbs_cmd_mask |= BIT_ULL(IB_USER_VERBS_CMD_POST_SEND) |
				  BIT_ULL(IB_USER_VERBS_CMD_POST_RECV) |
				  BIT_ULL(IB_USER_VERBS_CMD_POST_SRQ_RECV) |
				  BIT_ULL(IB_USER_VERBS_CMD_POLL_CQ) |
				  BIT_ULL(IB_USER_VERBS_CMD_REQ_NOTIFY_CQ);
	ib_set_device_ops(ibdev, &gift_dev_ops);
	ib_set_device_ops(ibdev, &gift_ah_ops);
	ib_set_device_ops(ibdev, &gift_cq_ops);
	ib_set_device_ops(ibdev, &gift_mcast_ops);
	ib_set_device_ops(ibdev, &gift_mr_ops);
	ib_set_device_ops(ibdev, &gift_mw_ops);
	ib_set_device_ops(ibdev, &gift_qp_ops);
	ib_set_device_ops(ibdev, &gift_srq_ops);
	ib_set_device_ops(ibdev, &gift_stats_ops);
	ibdev->driver_def = gift_uapi_defs;

	err = ib_device_set_netdev(ibdev, ndev, GIFT_PORT);
	if (err)
		goto out_dealloc;

	/* Before registration: the notifier must see NETDEV_UNREGISTER. */
	gift_dev_list_add(gdev);
	gdev->port_state = gift_port_state(gdev);
	gift_dev_update_mtu(gdev, ndev);

	err = ib_register_device(ibdev, name, NULL);
	if (err == -ENFILE) {
		/*
		 * ib_core's word for a name any driver's device already
		 * has (names are global); for `rdma link add` it is -EEXIST.
		 */
		pr_debug("%s: device name in use\n", name);
		err = -EEXIST;
	}
	if (err)
		goto out_dealloc;
	return 0;

out_dealloc:
	/*
	 * The ops are set: ib_dealloc_device() calls gift_dealloc_driver(),
	 * which undoes the list, the tables and gift_net_dev_add().
	 */
	ib_dealloc_device(ibdev);
	return err;
}
