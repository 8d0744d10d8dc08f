/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the rdma_gift selftests: environment, sysfs, shell
 * commands, rdma netlink and verbs device lookup, and what memory looks
 * like (pagemap, kpageflags, FOLL_PIN and driver page counters, memcg).
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
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
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

/*
 * Sets rdma_gift's local_shortcut parameter (0: local traffic loops
 * through lo, for tests that drop or capture packets there); returns the
 * value it had (0 or 1), or -1 when it cannot be read or written.
 */
int gift_local_shortcut(int on);

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

/*
 * Byte @off of the test data pattern @seed: no short period, different
 * for different seeds, so a misplaced or stale byte shows.
 */
static inline uint8_t gift_pat(size_t off, uint32_t seed)
{
	uint32_t x = (uint32_t)off * 0x9e3779b1u + seed * 0x85ebca6bu;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 13;
	return x >> 24;
}

/* Fills @p[0, @len) with pattern @seed as it runs from byte @off. */
static inline void gift_fill_pat(uint8_t *p, size_t len, size_t off,
				 uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = gift_pat(off + i, seed);
}

/* True if @p[0, @len) holds pattern @seed as it runs from byte @off. */
static inline bool gift_is_pat(const uint8_t *p, size_t len, size_t off,
			       uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != gift_pat(off + i, seed))
			return false;
	return true;
}

/* True if every byte of @p[0, @len) is @byte (a sentinel fill). */
static inline bool gift_is_fill(const uint8_t *p, size_t len, uint8_t byte)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != byte)
			return false;
	return true;
}

/*
 * Runs fn(arg) in a forked child; its exit status (the child exits with
 * fn's return value), or -1 when it could not run or did not exit.
 */
int gift_run_child(int (*fn)(const char *arg), const char *arg);

/*
 * In a child about to test RLIMIT_MEMLOCK: sets the limit (soft and hard)
 * to memlock bytes, then drops to uid/gid 65534, which clears every
 * capability, CAP_IPC_LOCK included. 0, or -1 if a step failed or a
 * capability is left.
 */
int gift_become_nobody(unsigned long memlock);

/* CLOCK_MONOTONIC in microseconds. */
long long gift_now_us(void);

/*
 * GIFT_SLOW, the one knob for slow kernels: how many times slower than
 * Debian's stock kernel the guest runs (the debug kernel's lane sets it).
 * Timeouts are multiplied by it (gift_harness.h does the harness's);
 * iteration counts, sizes and soak durations may be divided by it
 * (gift_slow_div()), never below a floor that keeps the test meaningful.
 * No test is skipped for it. 1 when unset or invalid.
 */
int gift_slow(void);

/* @n divided by GIFT_SLOW, but at least @floor. */
long gift_slow_div(long n, long floor);

/*
 * An RC local ACK timeout (4.096 us << @t) stretched by GIFT_SLOW: one more
 * step per doubling plus one when slow, at most 31.
 */
uint8_t gift_slow_qp_timeout(uint8_t t);

/* Sum of active_objs * objsize over /proc/slabinfo, after a cache drop. */
long long gift_slab_bytes(void);

/* Writes a formatted string to a file (no newline added); 0 or -errno. */
int gift_write_file(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * /proc/self/pagemap entries of the npages pages from addr (rounded down
 * to a page) into ent[]; 0 or -errno. Root sees the PFNs.
 */
int gift_pagemap(const void *addr, size_t npages, uint64_t *ent);
#define GIFT_PM_PFN(e)		((e) & ((1ULL << 55) - 1))
#define GIFT_PM_EXCLUSIVE	(1ULL << 56)	/* mapped once */
#define GIFT_PM_FILE		(1ULL << 61)	/* file page or shared anon */
#define GIFT_PM_PRESENT		(1ULL << 63)

/* /proc/kpageflags of pfn into *flags (KPF_* bits); 0 or -errno. */
int gift_kpageflags(uint64_t pfn, uint64_t *flags);

/*
 * nr_foll_pin_acquired and nr_foll_pin_released of /proc/vmstat, per-CPU
 * deltas folded in first (vm.stat_refresh); 0 or -1.
 */
int gift_foll_pins(long long *acquired, long long *released);

/*
 * Pages held by the driver's user memory right now: pinned with FOLL_PIN,
 * and held by plain reference. 0 or -errno. On gift0 from debugfs
 * (rdma_gift/umem_pages, debugfs mounted if it is not). On rxe (the
 * upstream series, gift_is_rxe()) nothing counts them per driver: pinned
 * is the FOLL_PIN balance of /proc/vmstat (nothing else in the VM holds
 * long-term pins), referenced the sum of the "shared_pages" driver
 * attribute of every MR of $GIFT_IBDEV in restrack.
 */
int gift_umem_pages(long *pinned, long *referenced);

/*
 * The device under test: gift0 with our provider (the default), or rxe0
 * of the linux-rdma series (tools/upstream/) through the stock rxe
 * provider: $GIFT_DRIVER is "rxe", or $GIFT_IBDEV starts with "rxe".
 */
bool gift_is_rxe(void);

/*
 * The gift access flag of the device under test: our provider's
 * IBV_ACCESS_GIFT (lib/giftdv.h, bit 29) on gift0, and on rxe the bit the
 * series gives IB_UVERBS_ACCESS_GIFT and its rdma-core patch
 * IBV_ACCESS_GIFT (tools/upstream/rdma-core/: bit 21), which the stock
 * libibverbs passes on as an unknown optional access bit.
 */
#define GIFT_ACCESS_GIFT_GIFT0		(1U << 29)
#define GIFT_ACCESS_GIFT_UPSTREAM	(1U << 21)
unsigned int gift_access_gift(void);

/*
 * Driver attribute @name of the MR with @lkey of device @ibdev, as
 * "rdma -dd resource show mr" prints it ("drv_NAME VALUE"), into *val.
 * 0, -ENOENT when no MR has that lkey, -ENODATA when it lacks the
 * attribute, -EIO when rdma fails. The lkey is only shown to a caller
 * with CAP_NET_ADMIN.
 */
int gift_res_mr_attr(const char *ibdev, uint32_t lkey, const char *name,
		     long long *val);

/*
 * Driver attribute @name of QP @qpn of device @ibdev, as "rdma -dd
 * resource show qp" prints it, into *val; returns as gift_res_mr_attr().
 */
int gift_res_qp_attr(const char *ibdev, uint32_t qpn, const char *name,
		     long long *val);

/*
 * A memory cgroup v2 child of the root cgroup, NAME: mounts cgroup2 at
 * /sys/fs/cgroup if needed, enables +memory for the root's children and
 * creates the group; its directory in path. 0 or -errno.
 */
int gift_memcg_create(const char *name, char *path, size_t len);
/* Moves process pid into the cgroup at path (a directory); 0 or -errno. */
int gift_memcg_move(const char *path, pid_t pid);
/* memory.current of the cgroup at path, in bytes; -1 on error. */
long long gift_memcg_current(const char *path);
/* Removes the (empty) cgroup at path; 0 or -errno. */
int gift_memcg_destroy(const char *path);

/*
 * Swap for tests that swap pages out. GIFT_SWAP_ZRAM: /dev/zram0 (loads
 * zram if needed, sizes zram0), compressed in RAM, a synchronous device
 * (newer kernels drop the swap cache on every swap-in from it).
 * GIFT_SWAP_LOOP: a loop device over a file in /tmp, an ordinary block
 * device: pages swapped in by a read stay in the swap cache, clean.
 * gift_swap_on() sizes it to @bytes, runs mkswap and swapon;
 * gift_swap_off() undoes exactly what it did, in reverse, and is safe to
 * call after a partial gift_swap_on(). 0, -EBUSY (zram0 is in use) or -1.
 */
enum gift_swap_kind { GIFT_SWAP_ZRAM, GIFT_SWAP_LOOP };
struct gift_swap {
	enum gift_swap_kind kind;
	char dev[32];	/* the swap device, once it exists */
	bool loaded;	/* we loaded the zram module */
	bool made;	/* we sized zram0 / made the loop device and file */
	bool on;	/* we ran swapon */
};
int gift_swap_on(struct gift_swap *s, enum gift_swap_kind kind,
		 unsigned long bytes);
int gift_swap_off(struct gift_swap *s);

/*
 * RoCEv2 packets built in user space (net_test, fuzz/gift_fuzz): sent
 * from a UDP socket to the device's address, port 4791, they loop back
 * through lo into the driver's socket, with an ICRC computed here from
 * the IBTA definition (CRC-32 over a masked pseudo header and the packet,
 * stored little-endian). That needs the IP header the receiver sees: an
 * unconnected UDP socket with IP_PMTUDISC_DO sends IPv4 with DF and an
 * identification of 0; TOS, TTL, the IP checksum and everything variant
 * in IPv6 are masked out of the ICRC anyway.
 */
/* Big-endian stores into packet bytes. */
static inline void gift_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void gift_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

#define GIFT_ROCE_PORT		4791
#define GIFT_BTH_BYTES		12
#define GIFT_ICRC_BYTES		4

/* A flow: the addresses and ports the receiver will see. */
struct gift_flow {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t ip_id;		/* IPv4 identification */
	uint16_t ip_frag;	/* IPv4 flags and fragment offset: DF, 0x4000 */
};

/*
 * The ICRC of a packet of flow f whose UDP payload up to the ICRC is the
 * len bytes at bth (at least a BTH): 8 bytes of 0xff for the LRH, the IP
 * header with TOS, TTL and checksum (IPv4) or traffic class, flow label
 * and hop limit (IPv6) set to ones, the UDP header with its checksum set
 * to ones, the BTH with its resv8a byte set to ones, then the rest.
 */
uint32_t gift_icrc(const struct gift_flow *f, const void *bth, size_t len);
/* Stores an ICRC at p as it goes on the wire, least significant first. */
void gift_put_icrc(void *p, uint32_t icrc);

/*
 * A UDP socket bound to addr (port 0; an IPv6 link-local address is
 * scoped to ifname) that sends to addr, port 4791: its flow (the same
 * address both ways, DF, identification 0) in *f and the destination in
 * *dst. The socket, or -1.
 */
int gift_flow_socket(int family, const char *addr, const char *ifname,
		     struct gift_flow *f, struct sockaddr_storage *dst);

#endif /* GIFT_UTIL_H */
