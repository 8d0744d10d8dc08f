// SPDX-License-Identifier: GPL-2.0
/*
 * gift_mem - what registering a read-only MR costs in RAM and time.
 *
 * One measurement per run: map SIZE MiB of private anonymous memory, make
 * it one of three kinds of copy-on-write shared memory, then register it
 * with ibv_reg_mr() and report the RAM the registration added and how long
 * it took:
 *
 *   zero  the range is only read: every page maps the shared zero page
 *         (the huge zero page where THP applies);
 *   ksm   every page is written with the same bytes and marked
 *         MADV_MERGEABLE; ksmd runs flat out (pages_to_scan large,
 *         sleep_millisecs 0) until all pages are merged, then is stopped
 *         (run=0 keeps the merged pages merged);
 *   fork  every page is written, then a child is forked that holds all of
 *         them (it just waits) while the parent registers;
 *   excl  every page is written and nothing else: exclusive pages, the
 *         control case where no registration needs to copy anything.
 *
 * The access is IBV_ACCESS_REMOTE_READ, plus IBV_ACCESS_GIFT with -g.
 *
 * RAM is memory.current of a cgroup v2 memory cgroup the program creates
 * and moves itself into (cgroup2 is mounted on /sys/fs/cgroup and +memory
 * enabled in the root's subtree_control if needed), read right before and
 * right after ibv_reg_mr(). It also reads the range's PFNs from
 * /proc/self/pagemap before and after and counts the pages whose PFN
 * changed. Needs root (cgroups, KSM knobs, PFNs in pagemap); meant for the
 * throw-away test VM (tools/bench/gift_mem.sh runs it there).
 *
 *   gift_mem -d DEV -s MIB -m zero|ksm|fork|excl [-g] [-w KSM_WAIT_S]
 *
 * Prints one line of key=value pairs (see report()); exits 0 if the
 * measurement was taken (even when the registration failed: err= says
 * why), 1 on setup errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include <infiniband/verbs.h>

#include "giftdv.h"

#define CG_ROOT		"/sys/fs/cgroup"
#define KSM_DIR		"/sys/kernel/mm/ksm"
#define PM_PRESENT	0x8000000000000000ULL	/* bit 63 */
#define PM_PFN_MASK	0x007fffffffffffffULL	/* bits 0-54 */

/* ksmd batch: large, but small enough that writing "run" (which waits for
 * the batch under ksm_thread_mutex) stays quick under TCG.
 */
#define KSM_PAGES_TO_SCAN	"32768"
#define KSM_FILL		0x5a

enum mem_kind { MEM_ZERO, MEM_KSM, MEM_FORK, MEM_EXCL, MEM_KINDS };

static const char * const mem_names[MEM_KINDS] = {
	"zero", "ksm", "fork", "excl"
};

static char cg_dir[64];
static pid_t child = -1;
static bool ksm_changed;
static char ksm_old_run[16], ksm_old_scan[16], ksm_old_sleep[16];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_str(const char *path, const char *s)
{
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int read_str(const char *path, char *buf, size_t len)
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
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static void cleanup(void)
{
	char path[96], pid[16];

	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	if (ksm_changed) {
		/* Restore the old knobs; "run" first, 0 keeps merged pages. */
		write_str(KSM_DIR "/run", ksm_old_run);
		write_str(KSM_DIR "/pages_to_scan", ksm_old_scan);
		write_str(KSM_DIR "/sleep_millisecs", ksm_old_sleep);
		ksm_changed = false;
	}
	if (cg_dir[0]) {
		snprintf(pid, sizeof(pid), "%d", getpid());
		write_str(CG_ROOT "/cgroup.procs", pid);
		snprintf(path, sizeof(path), "%s", cg_dir);
		cg_dir[0] = 0;
		rmdir(path);
	}
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gift_mem: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

/* Reads a decimal counter from an open fd without allocating. */
static unsigned long long read_counter(int fd)
{
	char buf[32];
	ssize_t n;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		die("reading a counter: %s", strerror(n < 0 ? errno : EIO));
	buf[n] = 0;
	return strtoull(buf, NULL, 10);
}

/*
 * Creates CG_ROOT/gift_mem.PID with the memory controller, moves this
 * process into it and returns an fd of its memory.current.
 */
static int cg_setup(void)
{
	struct statfs sfs;
	char path[96];
	int err, fd;

	if (statfs(CG_ROOT, &sfs) || sfs.f_type != CGROUP2_SUPER_MAGIC) {
		if (mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL))
			die("mount cgroup2 on %s: %s", CG_ROOT, strerror(errno));
	}
	err = write_str(CG_ROOT "/cgroup.subtree_control", "+memory");
	if (err)
		die("enable +memory in %s: %s", CG_ROOT, strerror(-err));
	snprintf(cg_dir, sizeof(cg_dir), CG_ROOT "/gift_mem.%d", getpid());
	if (mkdir(cg_dir, 0755)) {
		err = errno;
		cg_dir[0] = 0;
		die("mkdir %s/gift_mem.%d: %s", CG_ROOT, getpid(),
		    strerror(err));
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir);
	err = write_str(path, "0");
	if (err)
		die("join %s: %s", cg_dir, strerror(-err));
	snprintf(path, sizeof(path), "%s/memory.current", cg_dir);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	return fd;
}

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list)
		die("ibv_get_device_list: %s", strerror(errno));
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!ctx)
		die("cannot open RDMA device %s", name);
	return ctx;
}

/*
 * Turns ksmd on at full speed and waits (at most @wait_s seconds) until
 * all @npages pages of this process are merged; then stops ksmd. Returns
 * the number of merged pages and sets @secs to the time waited.
 */
static unsigned long ksm_merge(unsigned long npages, double wait_s,
			       double *secs)
{
	unsigned long merged = 0;
	double t0 = now();
	char buf[32];
	int err;

	if (read_str(KSM_DIR "/run", ksm_old_run, sizeof(ksm_old_run)) ||
	    read_str(KSM_DIR "/pages_to_scan", ksm_old_scan,
		     sizeof(ksm_old_scan)) ||
	    read_str(KSM_DIR "/sleep_millisecs", ksm_old_sleep,
		     sizeof(ksm_old_sleep)))
		die("KSM is not available (%s)", KSM_DIR);
	ksm_changed = true;
	err = write_str(KSM_DIR "/pages_to_scan", KSM_PAGES_TO_SCAN);
	if (!err)
		err = write_str(KSM_DIR "/sleep_millisecs", "0");
	if (!err)
		err = write_str(KSM_DIR "/run", "1");
	if (err)
		die("configuring ksmd: %s", strerror(-err));
	for (;;) {
		if (read_str("/proc/self/ksm_merging_pages", buf, sizeof(buf)))
			die("/proc/self/ksm_merging_pages: %s", strerror(errno));
		merged = strtoul(buf, NULL, 10);
		*secs = now() - t0;
		if (merged >= npages || *secs >= wait_s)
			break;
		usleep(50000);
	}
	/* run=0 stops ksmd and leaves the merged pages merged. */
	err = write_str(KSM_DIR "/run", "0");
	if (err)
		die("stopping ksmd: %s", strerror(-err));
	return merged;
}

/* Reads the pagemap entries of [addr, addr + npages pages) into @pm. */
static void read_pagemap(int fd, const void *addr, unsigned long npages,
			 unsigned long long *pm)
{
	size_t len = npages * sizeof(*pm), done = 0;
	off_t off = (uintptr_t)addr / getpagesize() * sizeof(*pm);
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)pm + done, len - done, off + done);
		if (n <= 0)
			die("reading /proc/self/pagemap: %s",
			    n < 0 ? strerror(errno) : "short read");
		done += n;
	}
}

static void bad_usage(void)
{
	fprintf(stderr,
		"usage: gift_mem -d DEV -s MIB -m zero|ksm|fork|excl [-g] [-w KSM_WAIT_S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long npages, i, absent = 0, moved = 0, merged = 0;
	double ksm_wait = 300, t_pop, t_ksm = 0, t0, t_reg;
	const char *dev = NULL, *err_str = "none";
	unsigned long long before, after, *pm0, *pm1, sum = 0;
	char shared[32] = "n/a";
	int c, kind = -1, mem_fd, pm_fd, pipefd[2];
	int access = IBV_ACCESS_REMOTE_READ;
	size_t size = 0, psz = getpagesize();
	struct giftdv_mr_attr mattr;
	struct ibv_context *ctx;
	struct ibv_mr *mr;
	struct ibv_pd *pd;
	bool gift = false;
	unsigned char *buf;
	char byte;

	while ((c = getopt(argc, argv, "d:s:m:gw:")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 's':
			size = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'm':
			for (i = 0; i < MEM_KINDS; i++)
				if (!strcmp(optarg, mem_names[i]))
					kind = i;
			break;
		case 'g':
			gift = true;
			access |= IBV_ACCESS_GIFT;
			break;
		case 'w':
			ksm_wait = strtod(optarg, NULL);
			break;
		default:
			bad_usage();
		}
	}
	if (!dev || !size || kind < 0 || optind != argc)
		bad_usage();
	npages = size / psz;

	mem_fd = cg_setup();
	ctx = open_dev(dev);
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		die("ibv_alloc_pd: %s", strerror(errno));
	pm_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pm_fd < 0)
		die("open /proc/self/pagemap: %s", strerror(errno));
	/* Allocated and touched now: charged before the measurement. */
	pm0 = malloc(npages * sizeof(*pm0));
	pm1 = malloc(npages * sizeof(*pm1));
	if (!pm0 || !pm1)
		die("out of memory");
	memset(pm0, 0, npages * sizeof(*pm0));
	memset(pm1, 0, npages * sizeof(*pm1));

	buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap %zu bytes: %s", size, strerror(errno));

	t0 = now();
	if (kind == MEM_ZERO) {
		for (i = 0; i < npages; i++)
			sum += buf[i * psz];
		if (sum)
			die("fresh anonymous memory reads non-zero");
	} else {
		memset(buf, KSM_FILL, size);
	}
	t_pop = now() - t0;

	if (kind == MEM_KSM) {
		if (madvise(buf, size, MADV_MERGEABLE))
			die("madvise(MADV_MERGEABLE): %s", strerror(errno));
		merged = ksm_merge(npages, ksm_wait, &t_ksm);
	} else if (kind == MEM_FORK) {
		if (pipe(pipefd))
			die("pipe: %s", strerror(errno));
		child = fork();
		if (child < 0)
			die("fork: %s", strerror(errno));
		if (!child) {
			/* Hold the pages until the parent kills us. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (write(pipefd[1], "x", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		close(pipefd[1]);
		if (read(pipefd[0], &byte, 1) != 1)
			die("the forked child did not start");
		close(pipefd[0]);
	}

	read_pagemap(pm_fd, buf, npages, pm0);
	before = read_counter(mem_fd);
	t0 = now();
	mr = ibv_reg_mr(pd, buf, size, access);
	t_reg = now() - t0;
	if (!mr)
		err_str = strerrorname_np(errno);
	after = read_counter(mem_fd);
	read_pagemap(pm_fd, buf, npages, pm1);

	for (i = 0; i < npages; i++) {
		if (!(pm0[i] & PM_PRESENT) || !(pm1[i] & PM_PRESENT))
			absent++;
		else if ((pm0[i] & PM_PFN_MASK) != (pm1[i] & PM_PFN_MASK))
			moved++;
	}
	if (mr && gift) {
		memset(&mattr, 0, sizeof(mattr));
		c = giftdv_query_mr(mr, &mattr);
		if (c)
			snprintf(shared, sizeof(shared), "n/a:%s",
				 strerrorname_np(c));
		else
			snprintf(shared, sizeof(shared), "%llu",
				 (unsigned long long)mattr.shared_pages);
	}

	printf("dev=%s size_mib=%zu mem=%s access=%s populate_s=%.2f",
	       dev, size >> 20, mem_names[kind], gift ? "gift" : "normal",
	       t_pop);
	if (kind == MEM_KSM)
		printf(" ksm_merge_s=%.2f ksm_merged=%lu", t_ksm, merged);
	printf(" npages=%lu before_kib=%llu after_kib=%llu extra_kib=%lld",
	       npages, before >> 10, after >> 10,
	       (long long)(after - before) / 1024);
	printf(" reg_s=%.4f pfns_moved=%lu pfns_absent=%lu shared_pages=%s err=%s\n",
	       t_reg, moved, absent, shared, mr ? "none" : err_str);
	fflush(stdout);

	if (mr)
		ibv_dereg_mr(mr);
	cleanup();
	munmap(buf, size);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}
