#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The fast-path goal table of issue 13, gift0 against stock rxe0, with
# both drivers measured in ONE VM boot: each repetition loads rdma_gift,
# runs every test on gift0, unloads it, loads rdma_rxe, runs every test
# on rxe0 and unloads it (the two cannot be loaded together: both bind
# UDP port 4791). Alternating within one boot exposes both drivers to
# the same guest and the same load from other VMs on the host; ratios
# are only comparable within one run of this script.
#
#   write_bw, read_bw, send_bw   64 KiB, average MB/s (higher is better)
#   send_lat, write_lat          2 B, typical usec (lower is better)
#   send_rate_q1, send_rate_q4   ib_send_bw -s 64 with -q 1 / -q 4,
#                                Mpps (higher is better)
#   write_bw_bidir, send_bw_bidir  64 KiB, both ends sending at once
#                                (perftest -b), MB/s of both directions;
#                                only with --tests
#
# Prints every sample, then per test the median of each driver, the
# spread (min-max) and the gift/rxe ratio of the medians. Server and
# client run in the VM over the device's own IPv4 GID (loopback).
#
# Each repetition also measures the guest's memcpy bandwidth of 64 KiB
# messages (tools/bench/memcpy_bw: cache-hot, as perftest's buffers are,
# and over a 64 MiB working set), the ceiling of a software device; the
# summary gives the best gift0 bandwidth as a fraction of it.
#
#   tools/bench/fastpath.sh [--kernel K] [--module KO] [--reps N]
#                           [--iters N] [--shortcut 0|1] [--tests LIST]
#
#   --module    rdma_gift.ko to measure (default: the runner's default)
#   --reps      repetitions per driver (default 3)
#   --iters     iterations of the bandwidth and latency tests (default
#               2000; the 64-byte message-rate tests run 10 times more)
#   --shortcut  rdma_gift's local_shortcut module parameter (default: the
#               module's default; modules without it ignore it)
#   --tests     the tests to run, a quoted space-separated list of the
#               names above (default: all of them)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/bench/bench_lib.sh
. "$top/tools/bench/bench_lib.sh"

tests="write_bw read_bw send_bw send_lat write_lat send_rate_q1 send_rate_q4"

if [ "${GIFT_VM:-}" = 1 ]; then
	reps=$FP_REPS iters=$FP_ITERS
	# want TEST: TEST is among those asked for (--tests)
	want() {
		[[ " $FP_TESTS " == *" $1 "* ]]
	}
	# run DRV DEV GIDX NAME COLUMN ARGS...
	run() {
		local drv=$1 dev=$2 gidx=$3 name=$4 col=$5 port v
		port=$((18700 + RANDOM % 100))
		shift 5
		timeout 300 "$@" -d "$dev" -x "$gidx" -F -p $port >/dev/null 2>&1 &
		sleep 1
		v=$(timeout 300 "$@" -d "$dev" -x "$gidx" -F -p $port "$GIFT_IP" 2>/dev/null |
			awk -v c="$col" '/^ *[0-9]+ +[0-9]+ +[0-9.]+/ { print $c; exit }') || true
		wait || true
		echo "$drv $name ${v:-n/a}"
	}
	one() {
		local drv=$1 dev=$2 g
		g=$(bench_gid_index "$dev")
		want write_bw &&
			run "$drv" "$dev" "$g" write_bw 4 ib_write_bw -s 65536 -n "$iters"
		want read_bw &&
			run "$drv" "$dev" "$g" read_bw 4 ib_read_bw -s 65536 -n "$iters"
		want send_bw &&
			run "$drv" "$dev" "$g" send_bw 4 ib_send_bw -s 65536 -n "$iters"
		want send_lat &&
			run "$drv" "$dev" "$g" send_lat 5 ib_send_lat -s 2 -n "$iters"
		want write_lat &&
			run "$drv" "$dev" "$g" write_lat 5 ib_write_lat -s 2 -n "$iters"
		want send_rate_q1 &&
			run "$drv" "$dev" "$g" send_rate_q1 5 ib_send_bw -s 64 -q 1 -n $((iters * 10))
		want send_rate_q4 &&
			run "$drv" "$dev" "$g" send_rate_q4 5 ib_send_bw -s 64 -q 4 -n $((iters * 10))
		want write_bw_bidir &&
			run "$drv" "$dev" "$g" write_bw_bidir 4 ib_write_bw -b -s 65536 -n "$iters"
		want send_bw_bidir &&
			run "$drv" "$dev" "$g" send_bw_bidir 4 ib_send_bw -b -s 65536 -n "$iters"
		return 0
	}
	libgift=$RDMAV_DRIVERS
	modparam=()
	[ -n "${FP_SHORTCUT:-}" ] &&
		modinfo -F parm "$GIFT_MODULE" | grep -q '^local_shortcut:' &&
		modparam=("local_shortcut=$FP_SHORTCUT")
	# The runner set up gift0; the loop starts by taking it down.
	for rep in $(seq "$reps"); do
		if [ ! -e /sys/module/rdma_gift ]; then
			insmod "$GIFT_MODULE" "${modparam[@]}"
			rdma link add gift0 type gift netdev "$GIFT_NETDEV"
		elif [ ${#modparam[@]} -gt 0 ]; then
			echo "$FP_SHORTCUT" >/sys/module/rdma_gift/parameters/local_shortcut
		fi
		bench_wait_active gift0
		RDMAV_DRIVERS=$libgift one gift gift0
		rdma link delete gift0
		rmmod rdma_gift
		modprobe rdma_rxe
		rdma link add rxe0 type rxe netdev "$GIFT_NETDEV"
		bench_wait_active rxe0
		RDMAV_DRIVERS=/usr/lib/x86_64-linux-gnu/libibverbs/librxe one rxe rxe0
		rdma link delete rxe0
		rmmod rdma_rxe
		for ws in 65536 67108864; do
			v=$("$top/tools/bench/memcpy_bw" -s 65536 -w $ws -t 2 |
				awk '{ print $4 }') || v=
			echo "cpu memcpy_$((ws >> 10))k ${v:-n/a}"
		done
	done | tee "$GIFT_OUT/samples"
	exit 0
fi

kernel=() module=() reps=3 iters=2000 shortcut=
while [ $# -gt 0 ]; do
	case $1 in
	--tests) tests=$2; shift 2 ;;
	--kernel) kernel=(--kernel "$2"); shift 2 ;;
	--module) module=(--module "$2"); shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--iters) iters=$2; shift 2 ;;
	--shortcut) shortcut=$2; shift 2 ;;
	*) echo "usage: $0 [--kernel K] [--module KO] [--reps N] [--iters N] [--shortcut 0|1] [--tests LIST]" >&2
	   exit 2 ;;
	esac
done

make -s -C "$top/tools/bench" memcpy_bw
out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-fastpath.XXXXXX")
bench_boot fastpath gift "$out" "${kernel[@]}" "${module[@]}" \
	--timeout $((600 + reps * 600)) \
	--env "FP_REPS=$reps" --env "FP_ITERS=$iters" \
	--env "FP_SHORTCUT=$shortcut" --env "FP_TESTS=$tests" \
	-- "$top/tools/bench/fastpath.sh" >/dev/null || true
[ -f "$out/samples" ] || { echo "fastpath: no samples" >&2; exit 1; }
echo "# $(date -u '+%F %T UTC'), kernel $(bench_kernel_release "${kernel[1]:-}"), $reps reps, $iters iterations"
sed 's/^/# sample: /' "$out/samples"
# stat DRV TEST median|spread
stat() {
	awk -v d="$1" -v t="$2" '$1 == d && $2 == t && $3 + 0 > 0 { print $3 + 0 }' \
		"$out/samples" | sort -g | awk -v what="$3" '
		{ v[++n] = $1 }
		END {
			if (!n) { print "n/a"; exit }
			if (what == "median")
				printf "%g\n", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			else
				printf "%g-%g\n", v[1], v[n]
		}'
}
rows=("test|gift0 median|spread|rxe0 median|spread|gift/rxe")
for t in $tests; do
	g=$(stat gift "$t" median) r=$(stat rxe "$t" median)
	rows+=("$t|$g|$(stat gift "$t" spread)|$r|$(stat rxe "$t" spread)|$(bench_ratio "$g" "$r")")
done
bench_rst_table "${rows[@]}"
# The ceiling: the best gift0 bandwidth against the guest's memcpy.
hot=$(stat cpu memcpy_64k median) cold=$(stat cpu memcpy_65536k median)
best=$(for t in write_bw read_bw send_bw; do stat gift "$t" median; done |
	sort -g | tail -n 1)
echo
echo "memcpy of 64 KiB messages in the guest, MB/s (median, spread):" \
	"cache-hot $hot ($(stat cpu memcpy_64k spread))," \
	"64 MiB working set $cold ($(stat cpu memcpy_65536k spread))"
echo "best gift0 bandwidth $best MB/s = $(bench_ratio "$best" "$hot") of" \
	"cache-hot memcpy, $(bench_ratio "$best" "$cold") of 64 MiB memcpy"
rm -rf "$out"
