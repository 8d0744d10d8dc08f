// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift module glue: the "gift" rdma link type, the device list and
 * the netdev notifier that drives port state and device removal.
 *
 * Device lifetime (see also gift.h):
 *
 *   gift_newlink()        ib_alloc_device, list add, ib_register_device
 *   rdma link delete  --> ib_unregister_device_and_put  --.
 *   NETDEV_UNREGISTER --> ib_unregister_device_queued  ---+-> gift_dealloc_driver
 *   module unload     --> gift_unregister_all           --'   (list del)
 *
 * gift_dealloc_driver() runs once per registered device, whichever of the
 * three paths gets there first; the others find the device already gone.
 */

#include <linux/debugfs.h>
#include <linux/if_arp.h>
#include <linux/if_vlan.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/spinlock.h>
#include <rdma/rdma_netlink.h>

#include "gift.h"
#include "gift_net.h"
#include "gift_umem.h"

/*
 * gift_dev_list_lock protects gift_dev_list. It is a leaf lock, taken in
 * the netdev notifier (RTNL held), in gift_dealloc_driver() (ib_core's
 * unregistration lock held) and by the network layer's receive path in
 * softirq (gift_dev_get_next()), hence always with BHs disabled; nothing
 * else is taken under it.
 */
static LIST_HEAD(gift_dev_list);
static DEFINE_SPINLOCK(gift_dev_list_lock);

/*
 * Serialises gift_newlink() so that the one-device-per-netdev check and
 * the list insertion are atomic. Never held by the notifier, so holding it
 * across ib_register_device() (which may take RTNL) cannot deadlock.
 */
static DEFINE_MUTEX(gift_newlink_lock);

/**
 * gift_dev_list_add() - publish a device to the notifier and module unload
 * @gdev: device about to be registered
 */
void gift_dev_list_add(struct gift_dev *gdev)
{
	spin_lock_bh(&gift_dev_list_lock);
	list_add_tail(&gdev->list, &gift_dev_list);
	spin_unlock_bh(&gift_dev_list_lock);
}

/**
 * gift_dev_list_del() - unpublish a device; idempotent
 * @gdev: device being deallocated
 */
void gift_dev_list_del(struct gift_dev *gdev)
{
	spin_lock_bh(&gift_dev_list_lock);
	list_del_init(&gdev->list);
	spin_unlock_bh(&gift_dev_list_lock);
}

/*
 * Returns the registered gift device bound to @ndev with an ib_device
 * reference held (release with ib_device_put()), or NULL. Devices that are
 * still registering or already unregistering are not returned.
 */
static struct gift_dev *gift_dev_get_by_netdev(struct net_device *ndev)
{
	struct gift_dev *gdev, *found = NULL;

	spin_lock_bh(&gift_dev_list_lock);
	list_for_each_entry(gdev, &gift_dev_list, list) {
		if (gdev->ndev == ndev && ib_device_try_get(&gdev->ibdev)) {
			found = gdev;
			break;
		}
	}
	spin_unlock_bh(&gift_dev_list_lock);
	return found;
}

/**
 * gift_dev_get_next() - walk the registered gift devices
 * @prev: the device the previous call returned, whose reference is
 *	dropped here, or NULL to start
 *
 * Returns the next device after @prev (the first one when @prev is NULL)
 * that is fully registered, with an ib_device reference held. A
 * referenced device stays on the list, so the walk can resume from it.
 * Stopping early, the caller puts the last device with ib_device_put():
 *
 *	for (gdev = gift_dev_get_next(NULL); gdev;
 *	     gdev = gift_dev_get_next(gdev))
 *		if (match(gdev))
 *			return gdev;
 *
 * Context: any, including softirq.
 *
 * Return: the next device, or NULL at the end of the list.
 */
struct gift_dev *gift_dev_get_next(struct gift_dev *prev)
{
	struct gift_dev *gdev, *found = NULL;

	spin_lock_bh(&gift_dev_list_lock);
	gdev = prev ? list_next_entry(prev, list) :
		      list_first_entry(&gift_dev_list, struct gift_dev, list);
	list_for_each_entry_from(gdev, &gift_dev_list, list) {
		if (ib_device_try_get(&gdev->ibdev)) {
			found = gdev;
			break;
		}
	}
	spin_unlock_bh(&gift_dev_list_lock);
	if (prev)
		ib_device_put(&prev->ibdev);
	return found;
}

static bool gift_netdev_bound(struct net_device *ndev)
{
	struct gift_dev *gdev = gift_dev_get_by_netdev(ndev);

	if (!gdev)
		return false;
	ib_device_put(&gdev->ibdev);
	return true;
}

static int gift_newlink(const char *ibdev_name, struct net_device *ndev)
{
	int err;

	if (ndev->type != ARPHRD_ETHER) {
		pr_debug("%s: not an Ethernet device\n", netdev_name(ndev));
		return -EINVAL;
	}
	if (is_vlan_dev(ndev)) {
		/* VLANs are reached through the real device's GID table. */
		pr_debug("%s: is a VLAN device\n", netdev_name(ndev));
		return -EPERM;
	}

	mutex_lock(&gift_newlink_lock);
	if (gift_netdev_bound(ndev)) {
		pr_debug("%s: already has a gift device\n", netdev_name(ndev));
		err = -EEXIST;
		goto out_unlock;
	}
	err = gift_dev_register(ibdev_name, ndev);
out_unlock:
	mutex_unlock(&gift_newlink_lock);
	return err;
}

static struct rdma_link_ops gift_link_ops = {
	.type = "gift",
	.newlink = gift_newlink,
};

static void gift_port_event(struct gift_dev *gdev)
{
	enum ib_port_state state = gift_port_state(gdev);
	struct ib_event ev = {
		.device = &gdev->ibdev,
		.element.port_num = GIFT_PORT,
	};

	ASSERT_RTNL();
	if (state == gdev->port_state)
		return;
	gdev->port_state = state;
	ev.event = state == IB_PORT_ACTIVE ? IB_EVENT_PORT_ACTIVE :
					     IB_EVENT_PORT_ERR;
	gift_dbg(gdev, "port %s\n", state == IB_PORT_ACTIVE ? "up" : "down");
	ib_dispatch_event(&ev);
}

static int gift_netdev_event(struct notifier_block *nb, unsigned long event,
			     void *arg)
{
	struct net_device *ndev = netdev_notifier_info_to_dev(arg);
	struct gift_dev *gdev;

	gdev = gift_dev_get_by_netdev(ndev);
	if (!gdev)
		return NOTIFY_DONE;

	switch (event) {
	case NETDEV_UNREGISTER:
		ib_unregister_device_queued(&gdev->ibdev);
		break;
	case NETDEV_UP:
	case NETDEV_DOWN:
	case NETDEV_CHANGE:
		gift_port_event(gdev);
		break;
	case NETDEV_CHANGEMTU:
		gift_dev_update_mtu(gdev, ndev);
		break;
	default:
		break;
	}

	ib_device_put(&gdev->ibdev);
	return NOTIFY_DONE;
}

static struct notifier_block gift_netdev_nb = {
	.notifier_call = gift_netdev_event,
};

/*
 * Unregisters every device still on the list. Link ops are unregistered
 * first, so no new device can appear; a device whose unregistration is
 * already queued or running is waited for inside ib_unregister_device().
 */
static void gift_unregister_all(void)
{
	struct gift_dev *gdev;

	for (;;) {
		spin_lock_bh(&gift_dev_list_lock);
		gdev = list_first_entry_or_null(&gift_dev_list,
						struct gift_dev, list);
		if (gdev)
			get_device(&gdev->ibdev.dev);
		spin_unlock_bh(&gift_dev_list_lock);
		if (!gdev)
			break;

		ib_unregister_device(&gdev->ibdev);
		/* dealloc_driver has run: the device left the list. */
		put_device(&gdev->ibdev.dev);
	}
}

/* debugfs rdma_gift/, removed at module exit; NULL or an error pointer */
static struct dentry *gift_debugfs;

/*
 * rdma_gift/umem_pages: pages held by all MRs of all gift devices,
 * "pinned N" (FOLL_PIN) and "referenced N" (plain references of gift
 * MRs). Both read 0 once every MR is gone; tests check that.
 */
static int gift_umem_pages_show(struct seq_file *m, void *unused)
{
	long pinned, referenced;

	gift_umem_counts(&pinned, &referenced);
	seq_printf(m, "pinned %ld\nreferenced %ld\n", pinned, referenced);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gift_umem_pages);

/*
 * rdma_gift/odp_pages: the device page table of one ODP MR, for
 * debugging (Documentation/odp.rst). Write the MR's key (lkey == rkey),
 * then read: one line per mapped page, see gift_odp_dump(). Reads
 * "none" when no MR of any gift device has that key, and nothing more
 * for an MR without on-demand paging.
 */
static DEFINE_MUTEX(gift_odp_pages_lock);
static u32 gift_odp_pages_key;

static int gift_odp_pages_show(struct seq_file *m, void *unused)
{
	struct gift_mr *mr = NULL;
	struct gift_dev *gdev;
	u32 key;

	mutex_lock(&gift_odp_pages_lock);
	key = gift_odp_pages_key;
	mutex_unlock(&gift_odp_pages_lock);

	spin_lock_bh(&gift_dev_list_lock);
	list_for_each_entry(gdev, &gift_dev_list, list) {
		mr = gift_mr_get(gdev, key);
		if (mr)
			break;
	}
	spin_unlock_bh(&gift_dev_list_lock);
	if (!mr) {
		seq_puts(m, "none\n");
		return 0;
	}
	seq_printf(m, "mr %#x dev %s\n", key, dev_name(&mr->gdev->ibdev.dev));
	/* Set before the MR was published and never changed: no lock. */
	if (mr->odp)
		gift_odp_dump(mr->odp, m);
	gift_mr_put(mr);
	return 0;
}

static int gift_odp_pages_open(struct inode *inode, struct file *file)
{
	return single_open(file, gift_odp_pages_show, NULL);
}

static ssize_t gift_odp_pages_write(struct file *file, const char __user *buf,
				    size_t count, loff_t *ppos)
{
	u32 key;
	int err;

	err = kstrtou32_from_user(buf, count, 0, &key);
	if (err)
		return err;
	mutex_lock(&gift_odp_pages_lock);
	gift_odp_pages_key = key;
	mutex_unlock(&gift_odp_pages_lock);
	return count;
}

static const struct file_operations gift_odp_pages_fops = {
	.owner = THIS_MODULE,
	.open = gift_odp_pages_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.write = gift_odp_pages_write,
	.release = single_release,
};

static int __init gift_init(void)
{
	int err;

	err = gift_proto_init();
	if (err)
		return err;
	err = gift_odp_init();
	if (err)
		goto out_proto;
	/* -EADDRINUSE when rdma_rxe (or anyone) holds UDP port 4791. */
	err = gift_net_init();
	if (err)
		goto out_odp;
	err = register_netdevice_notifier(&gift_netdev_nb);
	if (err)
		goto out_net;
	rdma_link_register(&gift_link_ops);
	/* Debugfs is best effort: its errors are not ours to fail on. */
	gift_debugfs = debugfs_create_dir("rdma_gift", NULL);
	debugfs_create_file("umem_pages", 0400, gift_debugfs, NULL,
			    &gift_umem_pages_fops);
	debugfs_create_file("odp_pages", 0600, gift_debugfs, NULL,
			    &gift_odp_pages_fops);
	debugfs_create_u32("odp_fault_delay_ms", 0600, gift_debugfs,
			   &gift_odp_fault_delay_ms);
	debugfs_create_u32("odp_leaf_idle_ms", 0600, gift_debugfs,
			   &gift_odp_leaf_idle_ms);
	return 0;

out_net:
	gift_net_exit();
out_odp:
	gift_odp_exit();
out_proto:
	gift_proto_exit();
	return err;
}

static void __exit gift_exit(void)
{
	debugfs_remove(gift_debugfs);
	rdma_link_unregister(&gift_link_ops);
	gift_unregister_all();
	unregister_netdevice_notifier(&gift_netdev_nb);
	gift_net_exit();
	/* Multicast attachments free themselves in RCU callbacks. */
	rcu_barrier();
	gift_odp_exit();
	gift_proto_exit();
}

module_init(gift_init);
module_exit(gift_exit);

MODULE_ALIAS_RDMA_LINK("gift");
MODULE_DESCRIPTION("Soft RoCEv2 device with read-only gift registrations");
MODULE_LICENSE("GPL");
MODULE_VERSION(GIFT_VERSION);
