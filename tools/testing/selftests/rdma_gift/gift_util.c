// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the rdma_gift selftests; see gift_util.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>

#include "gift_util.h"

const char *gift_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr, "missing environment variable %s\n", name);
		exit(1);
	}
	return v;
}

int gift_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	return 0;
}

long gift_read_long(const char *path)
{
	char buf[64];

	if (gift_read_file(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 0);
}

bool gift_path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

int gift_sh(const char *fmt, ...)
{
	char *cmd, *quiet;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -1;
	ret = asprintf(&quiet, "(%s) >/dev/null 2>&1", cmd);
	free(cmd);
	if (ret < 0)
		return -1;
	ret = system(quiet);
	free(quiet);
	if (ret < 0 || !WIFEXITED(ret))
		return -1;
	return WEXITSTATUS(ret);
}

bool gift_wait_for(bool (*cond)(const void *arg), const void *arg,
		   int timeout_ms)
{
	int waited;

	for (waited = 0; waited <= timeout_ms; waited += 10) {
		if (cond(arg))
			return true;
		usleep(10000);
	}
	return false;
}

static bool ibdev_sysfs(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s", name);
	return gift_path_exists(path);
}

bool gift_ibdev_exists(const void *name)
{
	return ibdev_sysfs(name);
}

bool gift_ibdev_gone(const void *name)
{
	return !ibdev_sysfs(name);
}

static void nl_put_str(struct nlmsghdr *nlh, int type, const char *s)
{
	struct nlattr *a = (void *)nlh + NLMSG_ALIGN(nlh->nlmsg_len);
	size_t len = strlen(s) + 1;

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, s, len);
	nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

int gift_nl_newlink(const char *name, const char *type, const char *ndev)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	union {
		struct nlmsghdr nlh;
		char buf[1024];
	} req = {}, ans = {};
	struct nlmsgerr *e;
	ssize_t n;
	int fd, ret;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA);
	if (fd < 0)
		return -errno;

	req.nlh.nlmsg_len = NLMSG_LENGTH(0);
	req.nlh.nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV,
					      RDMA_NLDEV_CMD_NEWLINK);
	req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nlh.nlmsg_seq = 1;
	nl_put_str(&req.nlh, RDMA_NLDEV_ATTR_DEV_NAME, name);
	nl_put_str(&req.nlh, RDMA_NLDEV_ATTR_LINK_TYPE, type);
	nl_put_str(&req.nlh, RDMA_NLDEV_ATTR_NDEV_NAME, ndev);

	ret = -EPROTO;
	if (sendto(fd, &req, req.nlh.nlmsg_len, 0, (void *)&sa,
		   sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	n = recv(fd, &ans, sizeof(ans), 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(*e)) &&
	    ans.nlh.nlmsg_type == NLMSG_ERROR) {
		e = NLMSG_DATA(&ans.nlh);
		ret = e->error;
	}
out:
	close(fd);
	return ret;
}

int gift_link_del(const char *name)
{
	return gift_sh("rdma link delete %s", name) ? -1 : 0;
}

int gift_dummy_add(const char *name)
{
	return gift_sh("ip link add %s type dummy && ip link set %s up",
		       name, name) ? -1 : 0;
}

int gift_dummy_del(const char *name)
{
	return gift_sh("ip link del %s", name) ? -1 : 0;
}

#define GIFT_SHORTCUT_PARAM "/sys/module/rdma_gift/parameters/local_shortcut"

int gift_local_shortcut(int on)
{
	char buf[8];
	int old;

	if (gift_read_file(GIFT_SHORTCUT_PARAM, buf, sizeof(buf)))
		return -1;
	old = buf[0] == 'Y' || buf[0] == '1';
	if (gift_write_file(GIFT_SHORTCUT_PARAM, "%d", !!on))
		return -1;
	return old;
}

struct ibv_context *gift_open(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list)
		return NULL;
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	return ctx;
}

bool gift_wait_async(struct ibv_context *ctx, enum ibv_event_type type,
		     int timeout_ms)
{
	struct pollfd pfd = { .fd = ctx->async_fd, .events = POLLIN };
	struct ibv_async_event ev;
	int flags = fcntl(ctx->async_fd, F_GETFL);
	bool found = false;

	fcntl(ctx->async_fd, F_SETFL, flags | O_NONBLOCK);
	while (!found && poll(&pfd, 1, timeout_ms) > 0) {
		if (ibv_get_async_event(ctx, &ev))
			break;
		found = ev.event_type == type;
		ibv_ack_async_event(&ev);
	}
	fcntl(ctx->async_fd, F_SETFL, flags);
	return found;
}

long long gift_slab_bytes(void)
{
	long long total = 0, active, objsize;
	char line[512], name[128];
	FILE *f;

	sync();
	gift_sh("echo 3 > /proc/sys/vm/drop_caches");
	/* Let RCU-deferred frees (kernfs nodes, ib_device) complete. */
	usleep(200000 * gift_slow());
	/*
	 * Shrinking a cache also empties KASAN's quarantine of its freed
	 * objects, which on the debug kernel swings the sum by ~1 MiB.
	 */
	gift_sh("for f in /sys/kernel/slab/*/shrink; do echo 1 > $f; done "
		"2>/dev/null");

	f = fopen("/proc/slabinfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* kmemleak's own bookkeeping follows every allocation. */
		if (sscanf(line, "%127s %lld %*d %lld", name, &active,
			   &objsize) == 3 && strcmp(name, "kmemleak_object"))
			total += active * objsize;
	}
	fclose(f);
	return total;
}

int gift_find_v4_gid(struct ibv_context *ctx, union ibv_gid *gid)
{
	static const uint8_t v4_prefix[12] = { [10] = 0xff, [11] = 0xff };
	struct ibv_gid_entry ent[64];
	ssize_t n, i;

	n = ibv_query_gid_table(ctx, ent, 64, 0);
	for (i = 0; i < n; i++) {
		if (ent[i].gid_type != IBV_GID_TYPE_ROCE_V2 ||
		    memcmp(ent[i].gid.raw, v4_prefix, sizeof(v4_prefix)))
			continue;
		*gid = ent[i].gid;
		return ent[i].gid_index;
	}
	return -1;
}

bool gift_have_v4_gid(const void *ctx)
{
	union ibv_gid gid;

	return gift_find_v4_gid((struct ibv_context *)ctx, &gid) >= 0;
}

int gift_drain_cq(struct ibv_cq *cq)
{
	struct ibv_wc wc[16];
	int n = 0, ret;

	while ((ret = ibv_poll_cq(cq, 16, wc)) > 0)
		n += ret;
	return n;
}

bool gift_cq_event(struct ibv_comp_channel *ch, int ms)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
	struct ibv_cq *cq;
	void *cq_ctx;

	if (poll(&pfd, 1, ms) <= 0 || ibv_get_cq_event(ch, &cq, &cq_ctx))
		return false;
	ibv_ack_cq_events(cq, 1);
	return true;
}

int gift_write_file(const char *path, const char *fmt, ...)
{
	char *s;
	va_list ap;
	ssize_t n;
	int fd, ret;

	va_start(ap, fmt);
	ret = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return -ENOMEM;
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		ret = -errno;
		free(s);
		return ret;
	}
	n = write(fd, s, strlen(s));
	ret = n < 0 ? -errno : n == (ssize_t)strlen(s) ? 0 : -EIO;
	close(fd);
	free(s);
	return ret;
}

/* pread() of exactly len bytes at off; 0 or -errno. */
static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	while (len) {
		n = pread(fd, buf, len, off);
		if (n < 0)
			return -errno;
		if (!n)
			return -EIO;
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
	return 0;
}

int gift_pagemap(const void *addr, size_t npages, uint64_t *ent)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd, ret;

	fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = pread_all(fd, ent, npages * sizeof(*ent),
			(uintptr_t)addr / page * sizeof(*ent));
	close(fd);
	return ret;
}

int gift_kpageflags(uint64_t pfn, uint64_t *flags)
{
	int fd, ret;

	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0)
		return -errno;
	ret = pread_all(fd, flags, sizeof(*flags), pfn * sizeof(*flags));
	close(fd);
	return ret;
}

int gift_foll_pins(long long *acquired, long long *released)
{
	char name[64];
	long long val;
	FILE *f;

	gift_write_file("/proc/sys/vm/stat_refresh", "1");
	*acquired = -1;
	*released = -1;
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &val) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			*acquired = val;
		else if (!strcmp(name, "nr_foll_pin_released"))
			*released = val;
	}
	fclose(f);
	return *acquired < 0 || *released < 0 ? -1 : 0;
}

#define GIFT_DEBUGFS		"/sys/kernel/debug"
#define GIFT_UMEM_PAGES		GIFT_DEBUGFS "/rdma_gift/umem_pages"

bool gift_is_rxe(void)
{
	const char *drv = getenv("GIFT_DRIVER");
	const char *dev = getenv("GIFT_IBDEV");

	if (drv && *drv)
		return !strcmp(drv, "rxe");
	return dev && !strncmp(dev, "rxe", 3);
}

unsigned int gift_access_gift(void)
{
	return gift_is_rxe() ? GIFT_ACCESS_GIFT_UPSTREAM :
			       GIFT_ACCESS_GIFT_GIFT0;
}

/*
 * Runs "rdma -dd resource show @kind FILTER @ibdev" and calls fn(line,
 * arg) for every line of its output; 0, or -EIO when it fails. MRs are
 * filtered by "dev", QPs by "link".
 */
static int res_lines(const char *kind, const char *ibdev,
		     void (*fn)(const char *line, void *arg), void *arg)
{
	char cmd[128], line[2048];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "rdma -dd resource show %s %s %s 2>&1",
		 kind, strcmp(kind, "qp") ? "dev" : "link", ibdev);
	f = popen(cmd, "r");
	if (!f)
		return -EIO;
	while (fgets(line, sizeof(line), f))
		fn(line, arg);
	return pclose(f) ? -EIO : 0;
}

/* A "drv_NAME VALUE" attribute of line into *val; false if absent. */
static bool res_drv_attr(const char *line, const char *name, long long *val)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), " drv_%s ", name);
	p = strstr(line, key);
	if (!p)
		return false;
	*val = strtoll(p + strlen(key), NULL, 0);
	return true;
}

/* The object whose line has @key: its attribute @name. */
struct res_query {
	char key[32];
	const char *name;
	long long val;
	int ret;
};

static void res_match(const char *line, void *arg)
{
	struct res_query *q = arg;

	if (!strstr(line, q->key))
		return;
	q->ret = res_drv_attr(line, q->name, &q->val) ? 0 : -ENODATA;
}

/* Attribute @name of the @kind line that has @key (see gift_util.h). */
static int res_attr(const char *kind, const char *key, const char *ibdev,
		    const char *name, long long *val)
{
	struct res_query q = { .name = name, .ret = -ENOENT };
	int ret;

	snprintf(q.key, sizeof(q.key), "%s", key);
	ret = res_lines(kind, ibdev, res_match, &q);
	if (ret)
		return ret;
	if (!q.ret)
		*val = q.val;
	return q.ret;
}

int gift_res_mr_attr(const char *ibdev, uint32_t lkey, const char *name,
		     long long *val)
{
	char key[32];

	snprintf(key, sizeof(key), " lkey 0x%x ", lkey);
	return res_attr("mr", key, ibdev, name, val);
}

int gift_res_qp_attr(const char *ibdev, uint32_t qpn, const char *name,
		     long long *val)
{
	char key[32];

	snprintf(key, sizeof(key), " lqpn %u ", qpn);
	return res_attr("qp", key, ibdev, name, val);
}

static void res_mr_sum_shared(const char *line, void *arg)
{
	long long *sum = arg, v;

	if (res_drv_attr(line, "shared_pages", &v))
		*sum += v;
}

int gift_umem_pages(long *pinned, long *referenced)
{
	long long acq, rel, shared = 0;
	char buf[256], *p;
	int ret;

	if (gift_is_rxe()) {
		if (gift_foll_pins(&acq, &rel))
			return -EIO;
		ret = res_lines("mr", gift_env("GIFT_IBDEV"), res_mr_sum_shared,
				   &shared);
		if (ret)
			return ret;
		*pinned = acq - rel;
		*referenced = shared;
		return 0;
	}
	if (!gift_path_exists(GIFT_DEBUGFS "/rdma_gift") &&
	    mount("debugfs", GIFT_DEBUGFS, "debugfs", 0, NULL) &&
	    errno != EBUSY)
		return -errno;
	ret = gift_read_file(GIFT_UMEM_PAGES, buf, sizeof(buf));
	if (ret)
		return ret;
	p = strstr(buf, "pinned ");
	if (!p || sscanf(p, "pinned %ld", pinned) != 1)
		return -EPROTO;
	p = strstr(buf, "referenced ");
	if (!p || sscanf(p, "referenced %ld", referenced) != 1)
		return -EPROTO;
	return 0;
}

#define GIFT_CGROUP		"/sys/fs/cgroup"

int gift_memcg_create(const char *name, char *path, size_t len)
{
	char buf[256];
	int ret;

	if (!gift_path_exists(GIFT_CGROUP "/cgroup.controllers") &&
	    mount("cgroup2", GIFT_CGROUP, "cgroup2", 0, NULL))
		return -errno;
	ret = gift_read_file(GIFT_CGROUP "/cgroup.subtree_control", buf,
			     sizeof(buf));
	if (ret)
		return ret;
	if (!strstr(buf, "memory")) {
		ret = gift_write_file(GIFT_CGROUP "/cgroup.subtree_control",
				      "+memory");
		if (ret)
			return ret;
	}
	snprintf(path, len, "%s/%s", GIFT_CGROUP, name);
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	snprintf(buf, sizeof(buf), "%s/memory.current", path);
	return gift_path_exists(buf) ? 0 : -ENOENT;
}

int gift_memcg_move(const char *path, pid_t pid)
{
	char procs[256];

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	return gift_write_file(procs, "%d", (int)pid);
}

long long gift_memcg_current(const char *path)
{
	char file[256], buf[64];

	snprintf(file, sizeof(file), "%s/memory.current", path);
	if (gift_read_file(file, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 10);
}

int gift_memcg_destroy(const char *path)
{
	return rmdir(path) ? -errno : 0;
}

#define GIFT_ZRAM	"/sys/block/zram0"
#define GIFT_SWAPFILE	"/tmp/gift-swap.img"

static int gift_zram_make(struct gift_swap *s, unsigned long bytes)
{
	long long t0 = gift_now_us();

	if (!gift_path_exists(GIFT_ZRAM)) {
		if (gift_sh("modprobe zram num_devices=1"))
			return -1;
		s->loaded = true;
	}
	if (gift_read_long(GIFT_ZRAM "/disksize") != 0)
		return -EBUSY;
	/* udev may still be creating the node. */
	while (!gift_path_exists("/dev/zram0")) {
		if (gift_now_us() - t0 > 10000000)
			return -1;
		usleep(10000);
	}
	if (gift_write_file(GIFT_ZRAM "/disksize", "%lu", bytes))
		return -1;
	s->made = true;
	snprintf(s->dev, sizeof(s->dev), "/dev/zram0");
	return 0;
}

static int gift_loop_make(struct gift_swap *s, unsigned long bytes)
{
	FILE *f;

	if (gift_sh("modprobe loop 2>/dev/null; truncate -s %lu %s",
		    bytes, GIFT_SWAPFILE))
		return -1;
	s->made = true;
	f = popen("losetup -f --show " GIFT_SWAPFILE, "r");
	if (!f)
		return -1;
	if (!fgets(s->dev, sizeof(s->dev), f))
		s->dev[0] = 0;
	pclose(f);
	s->dev[strcspn(s->dev, "\n")] = 0;
	return strncmp(s->dev, "/dev/loop", 9) ? -1 : 0;
}

int gift_swap_on(struct gift_swap *s, enum gift_swap_kind kind,
		 unsigned long bytes)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	ret = kind == GIFT_SWAP_ZRAM ? gift_zram_make(s, bytes) :
				       gift_loop_make(s, bytes);
	if (ret)
		return ret;
	if (gift_sh("mkswap %s", s->dev) || gift_sh("swapon %s", s->dev))
		return -1;
	s->on = true;
	return 0;
}

int gift_swap_off(struct gift_swap *s)
{
	int ret = 0;

	if (s->on && gift_sh("swapoff %s", s->dev))
		ret = -1;
	if (s->made && s->kind == GIFT_SWAP_ZRAM)
		gift_write_file(GIFT_ZRAM "/reset", "1");
	if (s->made && s->kind == GIFT_SWAP_LOOP) {
		if (s->dev[0])
			gift_sh("losetup -d %s", s->dev);
		unlink(GIFT_SWAPFILE);
	}
	if (s->loaded)
		gift_sh("modprobe -r zram");
	memset(s, 0, sizeof(*s));
	return ret;
}

long long gift_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int gift_slow(void)
{
	const char *s = getenv("GIFT_SLOW");
	char *end;
	long v;

	if (!s || !*s)
		return 1;
	v = strtol(s, &end, 10);
	return (*end || v < 1 || v > 1000) ? 1 : v;
}

long gift_slow_div(long n, long floor)
{
	long v = n / gift_slow();

	return v < floor ? floor : v;
}

uint8_t gift_slow_qp_timeout(uint8_t t)
{
	int slow = gift_slow();

	/*
	 * One step per doubling, and one more: a debug kernel's delays
	 * come in bursts (kmemleak scans, RCU callbacks, lockdep) far above
	 * its mean slowdown, and a lossy link retransmits in bursts too.
	 */
	if (slow > 1 && t < 31)
		t++;
	while (slow > 1 && t < 31) {
		slow = (slow + 1) / 2;
		t++;
	}
	return t;
}

int gift_run_child(int (*fn)(const char *arg), const char *arg)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int gift_become_nobody(unsigned long memlock)
{
	const struct rlimit rl = { memlock, memlock };
	char status[4096];

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return -1;
	/* A uid change from root clears every capability. */
	if (setgid(65534) || setuid(65534))
		return -1;
	if (gift_read_file("/proc/self/status", status, sizeof(status)) ||
	    !strstr(status, "CapEff:\t0000000000000000"))
		return -1;
	return 0;
}

/* CRC-32 of Ethernet, without the initial and final inversion. */
static uint32_t crc32_le(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
	}
	return crc;
}


uint32_t gift_icrc(const struct gift_flow *f, const void *bth, size_t len)
{
	uint8_t ph[8 + 40 + 8 + GIFT_BTH_BYTES], *ip = ph + 8, *udp;
	size_t udp_len = 8 + len + GIFT_ICRC_BYTES;
	size_t iplen;
	uint32_t crc;

	memset(ph, 0xff, 8);
	if (f->family == AF_INET) {
		iplen = 20;
		ip[0] = 0x45;
		ip[1] = 0xff;				/* TOS */
		gift_put16(&ip[2], 20 + udp_len);		/* total length */
		gift_put16(&ip[4], f->ip_id);		/* identification */
		gift_put16(&ip[6], f->ip_frag);		/* flags, offset */
		ip[8] = 0xff;				/* TTL */
		ip[9] = IPPROTO_UDP;
		gift_put16(&ip[10], 0xffff);			/* checksum */
		memcpy(&ip[12], f->saddr, 4);
		memcpy(&ip[16], f->daddr, 4);
	} else {
		iplen = 40;
		gift_put32(&ip[0], 0x6fffffff);		/* class, flow label */
		gift_put16(&ip[4], udp_len);			/* payload length */
		ip[6] = IPPROTO_UDP;
		ip[7] = 0xff;				/* hop limit */
		memcpy(&ip[8], f->saddr, 16);
		memcpy(&ip[24], f->daddr, 16);
	}
	udp = ip + iplen;
	gift_put16(&udp[0], f->sport);
	gift_put16(&udp[2], GIFT_ROCE_PORT);
	gift_put16(&udp[4], udp_len);
	gift_put16(&udp[6], 0xffff);			/* checksum */
	memcpy(udp + 8, bth, GIFT_BTH_BYTES);
	udp[8 + 4] = 0xff;			/* resv8a: FECN, BECN, resv6 */

	crc = crc32_le(0xffffffff, ph, 8 + iplen + 8 + GIFT_BTH_BYTES);
	crc = crc32_le(crc, (const uint8_t *)bth + GIFT_BTH_BYTES,
		       len - GIFT_BTH_BYTES);
	return ~crc;
}

void gift_put_icrc(void *p, uint32_t icrc)
{
	uint8_t *b = p;
	int i;

	for (i = 0; i < 4; i++)
		b[i] = icrc >> (8 * i);
}

int gift_flow_socket(int family, const char *addr, const char *ifname,
		     struct gift_flow *f, struct sockaddr_storage *dst)
{
	struct sockaddr_storage ss = {};
	socklen_t sl = sizeof(ss);
	int fd, pmtu = IP_PMTUDISC_DO;

	memset(f, 0, sizeof(*f));
	f->family = family;
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			goto err;
		if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu,
			       sizeof(pmtu)))
			goto err;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_scope_id = if_nametoindex(ifname);
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			goto err;
	}
	if (bind(fd, (struct sockaddr *)&ss, sizeof(ss)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl))
		goto err;

	*dst = ss;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		memcpy(f->saddr, &sin->sin_addr, 4);
		memcpy(f->daddr, &sin->sin_addr, 4);
		f->sport = ntohs(sin->sin_port);
		f->ip_frag = 0x4000;
		((struct sockaddr_in *)dst)->sin_port = htons(GIFT_ROCE_PORT);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		memcpy(f->saddr, &sin6->sin6_addr, 16);
		memcpy(f->daddr, &sin6->sin6_addr, 16);
		f->sport = ntohs(sin6->sin6_port);
		((struct sockaddr_in6 *)dst)->sin6_port = htons(GIFT_ROCE_PORT);
	}
	return fd;
err:
	close(fd);
	return -1;
}
