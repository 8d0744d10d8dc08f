// SPDX-License-Identifier: GPL-2.0
/*
 * memcpy_bw: the guest's own copy bandwidth, the ceiling of a software
 * RDMA device. A soft-RoCE transfer moves every payload byte through the
 * CPU at least once (the receive copy into the target MR) and reads it
 * once more for the ICRC; a device that also copies on transmit moves it
 * twice. fastpath.sh prints the best bandwidth of gift0 against this.
 *
 *   memcpy_bw [-s BYTES] [-w WORKING_SET] [-t SECONDS]
 *
 * Copies BYTES-sized messages (default 65536, perftest's 64 KiB) from a
 * source to a destination region, walking a WORKING_SET of messages
 * (default BYTES: the same buffer each time, cache-hot as perftest's
 * buffers are), for SECONDS (default 1). Prints "memcpy BYTES WS MB/s"
 * with MB = 10^6 bytes as perftest reports bandwidth. The destination is
 * checked against the source pattern once at the end, so that the
 * compiler cannot drop the copies and a broken copy shows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t size = 65536, ws = 0, off = 0, i;
	double secs = 1, t0, t;
	unsigned long long copies = 0;
	unsigned char *src, *dst;
	int opt;

	while ((opt = getopt(argc, argv, "s:w:t:")) != -1) {
		switch (opt) {
		case 's':
			size = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			ws = strtoull(optarg, NULL, 0);
			break;
		case 't':
			secs = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr, "usage: %s [-s BYTES] [-w WORKING_SET] [-t SECONDS]\n",
				argv[0]);
			return 2;
		}
	}
	if (!ws)
		ws = size;
	if (!size || ws < size || secs <= 0) {
		fprintf(stderr, "memcpy_bw: need 0 < BYTES <= WORKING_SET, SECONDS > 0\n");
		return 2;
	}
	ws -= ws % size;
	src = malloc(ws);
	dst = malloc(ws);
	if (!src || !dst) {
		perror("malloc");
		return 1;
	}
	/* A pattern that differs at every offset of a page and between pages. */
	for (i = 0; i < ws; i++)
		src[i] = (unsigned char)(i * 131 + (i >> 12) * 7 + 1);
	memset(dst, 0, ws);

	t0 = now();
	do {
		for (i = 0; i < 64; i++) {
			memcpy(dst + off, src + off, size);
			off += size;
			if (off == ws)
				off = 0;
		}
		copies += 64;
		t = now() - t0;
	} while (t < secs);

	if (copies * size >= ws && memcmp(src, dst, ws)) {
		fprintf(stderr, "memcpy_bw: the copy differs from its source\n");
		return 1;
	}
	printf("memcpy %zu %zu %.2f\n", size, ws, copies * size / t / 1e6);
	return 0;
}
