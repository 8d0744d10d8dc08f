#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Perftest on gift0 and on stock rxe0 in the same VM kernel, one boot per
# driver, printed as a table with the gift/rxe ratio:
#   ib_write_bw 64 KiB, ib_read_bw 64 KiB (average MB/s, higher is better),
#   ib_send_lat 2 B (typical usec, lower is better);
# with --odp also ib_write_bw, ib_read_bw and ib_send_bw 64 KiB with
# on-demand paging MRs (perftest --odp), and their ratio to the same
# test with pinned MRs on the same device.
# Server and client run in the VM over the device's own IPv4 GID. Numbers
# are for comparing the two drivers on this machine (QEMU/TCG), not
# absolute hardware numbers.
#
#   tools/bench/perftest.sh [--kernel K] [--odp] [ITERATIONS]
#
#   --kernel  the VM kernel (tools/testing/vm/run --kernel), default
#             Debian's 6.12; `newest` boots sid's 7.2, whose stock rxe
#             has ODP (6.12's has none: its ODP rows read n/a)
#   --odp     add the ODP rows
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/bench/bench_lib.sh
. "$top/tools/bench/bench_lib.sh"
kernel=() odp=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=(--kernel "$2"); shift 2 ;;
	--odp) odp=1; shift ;;
	*) break ;;
	esac
done
iters=${1:-2000}

if [ "${GIFT_VM:-}" = 1 ]; then
	dev=$GIFT_IBDEV
	g=/sys/class/infiniband/$dev/ports/1
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' \
		$(tr . ' ' <<<"$GIFT_IP"))
	for gidx in $(seq 0 15); do
		[ "$(cat "$g/gids/$gidx" 2>/dev/null)" = "$want" ] && break
	done
	# run NAME COLUMN ARGS...: prints "NAME VALUE" from the client's
	# result line (COLUMN of the first numeric line after the header).
	run() {
		local name=$1 col=$2 port=$((18700 + RANDOM % 100))
		shift 2
		timeout 300 "$@" -d "$dev" -x "$gidx" -F -p $port >/dev/null 2>&1 &
		sleep 1
		timeout 300 "$@" -d "$dev" -x "$gidx" -F -p $port "$GIFT_IP" |
			awk -v n="$name" -v c="$col" \
				'/^ *[0-9]+ +[0-9]+ +[0-9.]+/ { print n, $c; exit }' || true
		wait || true
	}
	{
		run write_bw 4 ib_write_bw -s 65536 -n "$iters"
		run read_bw 4 ib_read_bw -s 65536 -n "$iters"
		run send_lat 5 ib_send_lat -s 2 -n "$iters"
		if [ "${GIFT_BENCH_ODP:-0}" = 1 ]; then
			run send_bw 4 ib_send_bw -s 65536 -n "$iters"
			run write_bw_odp 4 ib_write_bw --odp -s 65536 -n "$iters"
			run read_bw_odp 4 ib_read_bw --odp -s 65536 -n "$iters"
			run send_bw_odp 4 ib_send_bw --odp -s 65536 -n "$iters"
		fi
	} >"$GIFT_OUT/bench"
	exit 0
fi

declare -A res
for drv in gift rxe; do
	out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-bench.XXXXXX")
	bench_boot "$drv" "$drv" "$out" "${kernel[@]}" \
		--env "GIFT_BENCH_ODP=$odp" \
		-- "$top/tools/bench/perftest.sh" "$iters" >/dev/null || true
	if [ -f "$out/bench" ]; then
		while read -r k v; do res[$drv.$k]=$v; done <"$out/bench"
	fi
	rm -rf "$out"
done

tests=(write_bw read_bw send_lat)
[ "$odp" = 1 ] && tests+=(send_bw write_bw_odp read_bw_odp send_bw_odp)
printf '%-32s %10s %10s %9s %11s %11s\n' test gift0 rxe0 gift/rxe \
	gift0/pinned rxe0/pinned
for k in "${tests[@]}"; do
	case $k in
	*_bw_odp) label="${k%_bw_odp} 64 KiB bw, ODP (MB/s)" ;;
	*_bw) label="${k%_bw} 64 KiB bw (MB/s)" ;;
	*) label="send 2 B lat (usec)" ;;
	esac
	g=${res[gift.$k]:-n/a} r=${res[rxe.$k]:-n/a}
	gp=- rp=-
	if [ "${k%_odp}" != "$k" ]; then
		gp=$(bench_ratio "$g" "${res[gift.${k%_odp}]:-n/a}")
		rp=$(bench_ratio "$r" "${res[rxe.${k%_odp}]:-n/a}")
	fi
	printf '%-32s %10s %10s %9s %11s %11s\n' "$label" "$g" "$r" \
		"$(bench_ratio "$g" "$r")" "$gp" "$rp"
done
kdesc=$(bench_kernel_release "${kernel[1]:-}")
echo "($(date -u +%F), $(nproc) vCPU host, QEMU TCG guest $kdesc, $iters iterations)"
