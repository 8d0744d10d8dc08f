/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the kernels rdma_gift builds against.
 *
 * The module is developed against Debian's 6.12 and must also build
 * against the newest upstream kernel for submission (today 7.2). The rest
 * of the driver is written against one API; every difference is bridged
 * here and nowhere else.
 *
 * A difference is detected by feature, not by LINUX_VERSION_CODE: the
 * module's Kbuild greps the target kernel's headers and defines
 * GIFT_HAVE_<feature> (see there), so distribution backports are handled
 * too; a macro that appeared is tested with #ifdef.
 */
#ifndef GIFT_COMPAT_H
#define GIFT_COMPAT_H

#include <linux/timer.h>
#include <rdma/ib_verbs.h>

/*
 * from_timer() became timer_container_of() (6.16), and the old name went
 * away; the driver uses the new one.
 */
#ifndef timer_container_of
#define timer_container_of(var, callback_timer, timer_fieldname) \
	from_timer(var, callback_timer, timer_fieldname)
#endif

/*
 * Workqueues are to say whether they are per-CPU or unbound (6.17; one of
 * the two flags is required from 7.x on, and unbound becomes the
 * default). Before, per-CPU was the default: the flag is 0 there.
 */
#ifndef GIFT_HAVE_WQ_PERCPU
#define WQ_PERCPU 0
#endif

/*
 * ib_device_ops.resize_cq became resize_user_cq (7.0), with the entry
 * count unsigned, as user space passes it. gift_resize_cq() (gift_cq.c)
 * takes it unsigned; older kernels call it through gift_resize_cq_op(),
 * of their signature (ib_uverbs hands them the same u32, as an int).
 * The ops table names the member GIFT_RESIZE_CQ_OP.
 */
int gift_resize_cq(struct ib_cq *ibcq, unsigned int cqe,
		   struct ib_udata *udata);

#ifdef GIFT_HAVE_RESIZE_USER_CQ
#define GIFT_RESIZE_CQ_OP resize_user_cq
#define gift_resize_cq_op gift_resize_cq
#else
#define GIFT_RESIZE_CQ_OP resize_cq

static inline int gift_resize_cq_op(struct ib_cq *ibcq, int cqe,
				    struct ib_udata *udata)
{
	return gift_resize_cq(ibcq, cqe, udata);
}
#endif

/*
 * reg_user_mr gained a DMA handle (struct ib_dmah, 6.17: TPH steering
 * hints and a CPU affinity for the device's DMA). A software device does
 * no DMA: a handle is refused with -EOPNOTSUPP, as rxe does.
 * gift_reg_user_mr() (gift_mr.c) has the signature without the handle;
 * gift_reg_user_mr_op() is the kernel's.
 */
struct ib_mr *gift_reg_user_mr(struct ib_pd *pd, u64 start, u64 length,
			       u64 iova, int access, struct ib_udata *udata);

#ifdef GIFT_HAVE_REG_USER_MR_DMAH
static inline struct ib_mr *gift_reg_user_mr_op(struct ib_pd *pd, u64 start,
						u64 length, u64 iova,
						int access,
						struct ib_dmah *dmah,
						struct ib_udata *udata)
{
	if (dmah)
		return ERR_PTR(-EOPNOTSUPP);
	return gift_reg_user_mr(pd, start, length, iova, access, udata);
}
#else
#define gift_reg_user_mr_op gift_reg_user_mr
#endif

/*
 * IPv6 lost its indirection through ipv6_stub once it could no longer be
 * a module (7.1): ip6_dst_lookup_flow() is called directly.
 */
#ifdef GIFT_HAVE_IPV6_STUBS
#include <net/ipv6_stubs.h>

static inline struct dst_entry *
gift_ip6_dst_lookup_flow(struct net *net, const struct sock *sk,
			 struct flowi6 *fl6)
{
	return ipv6_stub->ipv6_dst_lookup_flow(net, sk, fl6, NULL);
}
#else
#include <net/ipv6.h>

static inline struct dst_entry *
gift_ip6_dst_lookup_flow(struct net *net, const struct sock *sk,
			 struct flowi6 *fl6)
{
	return ip6_dst_lookup_flow(net, sk, fl6, NULL);
}
#endif

/*
 * The UDP tunnel socket helpers take the struct sock, not the socket
 * (7.0); udp_sock_create() still hands out a struct socket.
 */
#include <net/udp_tunnel.h>

#ifdef GIFT_HAVE_UDP_TUNNEL_SK
static inline void gift_setup_udp_tunnel_sock(struct net *net,
					      struct socket *sock,
					      struct udp_tunnel_sock_cfg *cfg)
{
	setup_udp_tunnel_sock(net, sock->sk, cfg);
}

static inline void gift_udp_tunnel_sock_release(struct socket *sock)
{
	udp_tunnel_sock_release(sock->sk);
}
#else
static inline void gift_setup_udp_tunnel_sock(struct net *net,
					      struct socket *sock,
					      struct udp_tunnel_sock_cfg *cfg)
{
	setup_udp_tunnel_sock(net, sock, cfg);
}

static inline void gift_udp_tunnel_sock_release(struct socket *sock)
{
	udp_tunnel_sock_release(sock);
}
#endif

/*
 * ib_alloc_device_with_net() (in 7.2, not in 6.12) creates a device in a
 * given network namespace, which ib_core honours in its exclusive netns
 * mode. Before, every device started in init_net, from where an
 * administrator moves it with "rdma dev set NAME netns NS".
 */
#ifdef ib_alloc_device_with_net
#define gift_alloc_device(net) ib_alloc_device_with_net(gift_dev, ibdev, net)
#else
#define gift_alloc_device(net) ((void)(net), ib_alloc_device(gift_dev, ibdev))
#endif

#endif /* GIFT_COMPAT_H */
