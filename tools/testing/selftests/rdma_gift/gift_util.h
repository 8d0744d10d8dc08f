/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the rdma_gift selftests: environment, sysfs, shell
 * commands, rdma netlink and verbs device lookup.
 *
 * The tests run as root inside the VM, where tools/testing/vm/run
 * exports:
 *   GIFT_IBDEV    the device the runner created (gift0)
 *   GIFT_NETDEV   its netdev
 *   GIFT_MODULE   absolute path of rdma_gift.ko
 */
#ifndef GIFT_UTIL_H
#define GIFT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <infiniband/verbs.h>

const char *gift_env(const char *name);

/* Reads a whole (small) file, strips one trailing newline. -errno on error. */
int gift_read_file(const char *path, char *buf, size_t len);
/* Reads a decimal integer from a file; -1 on error. */
long gift_read_long(const char *path);
bool gift_path_exists(const char *path);

/* Runs a shell command quietly; returns its exit status or -1. */
int gift_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Polls cond(arg) every 10 ms for up to timeout_ms; true if it held. */
bool gift_wait_for(bool (*cond)(const void *arg), const void *arg,
		   int timeout_ms);

bool gift_ibdev_exists(const void *name);
bool gift_ibdev_gone(const void *name);

/*
 * RDMA_NLDEV_CMD_NEWLINK, as "rdma link add NAME type TYPE netdev NDEV"
 * sends it. Returns 0 or the kernel's negative errno, exactly.
 */
int gift_nl_newlink(const char *name, const char *type, const char *ndev);
/* "rdma link delete NAME"; 0 or -1. */
int gift_link_del(const char *name);

/* Creates a dummy netdev that is up; 0 or -1. */
int gift_dummy_add(const char *name);
int gift_dummy_del(const char *name);

/* Opens the verbs device called name, or NULL. */
struct ibv_context *gift_open(const char *name);

/*
 * Waits up to timeout_ms for an async event of the given type on ctx,
 * acknowledging every event read. True if it arrived.
 */
bool gift_wait_async(struct ibv_context *ctx, enum ibv_event_type type,
		     int timeout_ms);

/*
 * Index of the first RoCEv2 IPv4 (v4-mapped) GID of ctx, its GID in *gid;
 * -1 when there is none.
 */
int gift_find_v4_gid(struct ibv_context *ctx, union ibv_gid *gid);
/* gift_wait_for() condition: ctx (a struct ibv_context) has such a GID. */
bool gift_have_v4_gid(const void *ctx);

/* Completions still queued on cq, consumed; their number. */
int gift_drain_cq(struct ibv_cq *cq);
/* True if a completion event arrived on ch within ms; acknowledges it. */
bool gift_cq_event(struct ibv_comp_channel *ch, int ms);

/* Sum of active_objs * objsize over /proc/slabinfo, after a cache drop. */
long long gift_slab_bytes(void);

#endif /* GIFT_UTIL_H */
