#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where the time of a 64-byte message goes: `ib_send_bw -s 64` (the
# message-rate test of fastpath.sh) over gift0 and over stock rxe0, in
# one VM boot, profiled with perf in the guest. For each driver and
# each QP count (-q 1, -q 4):
#
#   1. a run under `perf stat -a` (system-wide counts: context switches,
#      CPU migrations, system calls, softirqs, work items executed), and
#      the client's message rate;
#   2. a run under `perf record -a -g -e cpu-clock` (software sampling:
#      the only event QEMU/TCG gives), reported flat (self time per
#      symbol) and inclusive (children) per symbol, and per command.
#
# Server and client run in the VM over the device's own IPv4 GID
# (loopback), as in fastpath.sh. Both processes poll their CQs, so both
# vCPUs are busy all the time: a symbol's share of the samples times
# 2 / message rate is its CPU time per message.
#
#   tools/bench/fastpath_prof.sh [--kernel K] [--module KO] [--iters N]
#                                [--qps "1 4"] [--drivers "gift rxe"]
#                                [--freq HZ] [--out DIR]
#
#   --iters    ib_send_bw iterations (default 20000, as fastpath.sh's
#              message-rate tests)
#   --freq     perf record's sampling frequency per CPU (default 1000;
#              TCG pays dearly for each sample and its call chain)
#   --out      where the reports go (default: a new directory in /tmp,
#              printed at the end)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/bench/bench_lib.sh
. "$top/tools/bench/bench_lib.sh"

if [ "${GIFT_VM:-}" = 1 ]; then
	echo 0 >/proc/sys/kernel/kptr_restrict
	echo -1 >/proc/sys/kernel/perf_event_paranoid
	# client DEV Q WRAPPER...: one ib_send_bw -s 64 pair, the client
	# under WRAPPER; prints the client's message rate (Mpps)
	client() {
		local dev=$1 q=$2 g port
		shift 2
		g=$(bench_gid_index "$dev")
		port=$((18700 + RANDOM % 100))
		timeout 300 ib_send_bw -s 64 -q "$q" -n "$PROF_ITERS" -d "$dev" \
			-x "$g" -F -p $port >/dev/null 2>&1 &
		sleep 1
		"$@" timeout 300 ib_send_bw -s 64 -q "$q" -n "$PROF_ITERS" \
			-d "$dev" -x "$g" -F -p $port "$GIFT_IP" 2>/dev/null |
			awk '/^ *[0-9]+ +[0-9]+ +[0-9.]+/ { print $5; exit }' || true
		wait || true
	}
	events=context-switches,cpu-migrations,raw_syscalls:sys_enter
	events=$events,irq:softirq_entry,workqueue:workqueue_execute_start
	# profile DRV DEV
	profile() {
		local drv=$1 dev=$2 q d rate
		for q in $PROF_QPS; do
			d=$GIFT_OUT/$drv-q$q
			mkdir -p "$d"
			rate=$(client "$dev" "$q" perf stat -a -x, -e "$events" \
				-o "$d/stat.csv" --)
			echo "$drv q$q stat_rate ${rate:-n/a}"
			rate=$(client "$dev" "$q" perf record -a -g -e cpu-clock \
				-F "$PROF_FREQ" -o /tmp/perf.data --)
			echo "$drv q$q record_rate ${rate:-n/a}"
			perf report -i /tmp/perf.data --stdio --no-children \
				-g none --sort sym --percent-limit 0.2 \
				>"$d/self.txt" 2>/dev/null || true
			perf report -i /tmp/perf.data --stdio --children \
				-g none --sort sym --percent-limit 1 \
				>"$d/children.txt" 2>/dev/null || true
			perf report -i /tmp/perf.data --stdio --no-children \
				-g none --sort comm --percent-limit 0.2 \
				>"$d/comm.txt" 2>/dev/null || true
			perf report -i /tmp/perf.data --stdio --no-children \
				-g caller,0.5,callee,function,percent \
				--sort sym --percent-limit 2 \
				>"$d/graph.txt" 2>/dev/null || true
			perf script -i /tmp/perf.data -F comm,cpu,ip,sym \
				2>/dev/null | gzip >"$d/script.txt.gz" || true
			rm -f /tmp/perf.data
		done
	}
	libgift=$RDMAV_DRIVERS
	for drv in $PROF_DRIVERS; do
		case $drv in
		gift)
			[ -e /sys/module/rdma_gift ] || {
				insmod "$GIFT_MODULE"
				rdma link add gift0 type gift netdev "$GIFT_NETDEV"
			}
			bench_wait_active gift0
			RDMAV_DRIVERS=$libgift profile gift gift0
			rdma link delete gift0
			rmmod rdma_gift
			;;
		rxe)
			[ -e /sys/module/rdma_gift ] && {
				rdma link delete gift0
				rmmod rdma_gift
			}
			modprobe rdma_rxe
			rdma link add rxe0 type rxe netdev "$GIFT_NETDEV"
			bench_wait_active rxe0
			RDMAV_DRIVERS=/usr/lib/x86_64-linux-gnu/libibverbs/librxe \
				profile rxe rxe0
			rdma link delete rxe0
			rmmod rdma_rxe
			;;
		esac
	done | tee "$GIFT_OUT/rates"
	exit 0
fi

kernel=() module=() iters=20000 qps="1 4" drivers="gift rxe" out='' freq=1000
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=(--kernel "$2"); shift 2 ;;
	--module) module=(--module "$2"); shift 2 ;;
	--iters) iters=$2; shift 2 ;;
	--qps) qps=$2; shift 2 ;;
	--drivers) drivers=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--freq) freq=$2; shift 2 ;;
	*) echo "usage: $0 [--kernel K] [--module KO] [--iters N] [--qps LIST] [--drivers LIST] [--freq HZ] [--out DIR]" >&2
	   exit 2 ;;
	esac
done
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-prof.XXXXXX")
bench_boot fastpath_prof gift "$out" "${kernel[@]}" "${module[@]}" \
	--timeout 3000 \
	--env "PROF_ITERS=$iters" --env "PROF_QPS=$qps" \
	--env "PROF_DRIVERS=$drivers" --env "PROF_FREQ=$freq" \
	-- "$top/tools/bench/fastpath_prof.sh" || true
echo "# $(date -u '+%F %T UTC'), kernel $(bench_kernel_release "${kernel[1]:-}"), $iters iterations; reports in $out"
