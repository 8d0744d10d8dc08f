#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Perftest between two VMs (tools/testing/vm/run-pair: two QEMU/TCG
# guests on Debian's 6.12, joined by a -netdev dgram link over the host's
# loopback), one boot of the pair per pairing:
#   gift-gift, rxe-rxe, gift-rxe (gift0 serves, rxe0 requests) and
#   rxe-gift (rxe0 serves, gift0 requests);
#   ib_write_bw 64 KiB (average MB/s, higher is better) and ib_send_lat
#   2 B (typical usec, lower is better), with each pairing's ratio to
#   rxe-rxe. Printed as an RST table.
# Both guests share the host's 2 cores under TCG, and so does the link
# (QEMU's UDP sockets): numbers compare the drivers on this machine, not
# hardware.
#
#   tools/bench/interop.sh [ITERATIONS]    (default 2000)
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tools/bench/bench_lib.sh
. "$top/tools/bench/bench_lib.sh"
iters=${1:-2000}

if [ "${GIFT_VM:-}" = 1 ]; then
	# shellcheck source=tools/testing/vm/pair_lib.sh
	. "$top/tools/testing/vm/pair_lib.sh"
	dev=$GIFT_IBDEV
	g=/sys/class/infiniband/$dev/ports/1
	IFS=. read -ra b <<<"$GIFT_IP"
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "${b[@]}")
	for gidx in $(seq 0 15); do
		[ "$(cat "$g/gids/$gidx" 2>/dev/null)" = "$want" ] && break
	done
	n=0
	# run NAME COLUMN ARGS...: the server guest serves, the client guest
	# writes "NAME VALUE" from its result line to $GIFT_OUT/bench.
	run() {
		local name=$1 col=$2 pid
		shift 2
		n=$((n + 1))
		if [ "$GIFT_ROLE" = server ]; then
			timeout 300 "$@" -d "$dev" -x "$gidx" -F -p $((18800 + n)) \
				>/dev/null 2>&1 &
			pid=$!
			pair_listening "$pid" || true
			pair_mark "ready.$n"
			wait "$pid" || true
		elif pair_wait "ready.$n"; then
			timeout 300 "$@" -d "$dev" -x "$gidx" -F -p $((18800 + n)) \
				"$GIFT_PEER_IP" | awk -v n="$name" -v c="$col" \
				'/^ *[0-9]+ +[0-9]+ +[0-9.]+/ { print n, $c; exit }' \
				>>"$GIFT_OUT/bench" || true
		fi
		pair_barrier "done.$n" || true
	}
	run write_bw 4 ib_write_bw -s 65536 -n "$iters"
	run send_lat 5 ib_send_lat -s 2 -n "$iters"
	exit 0
fi

declare -A res
pairings=(gift-gift rxe-rxe gift-rxe rxe-gift)
for p in "${pairings[@]}"; do
	logs=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-bench.XXXXXX")
	"$top/tools/testing/vm/run-pair" --sync none --log-dir "$logs" \
		--server-driver "${p%-*}" --client-driver "${p#*-}" \
		--server "$top/tools/bench/interop.sh $iters" \
		--client "$top/tools/bench/interop.sh $iters" >/dev/null 2>&1 ||
		echo "bench: the $p pair failed (logs: $logs)" >&2
	if [ -f "$logs/out/bench" ]; then
		while read -r k v; do res[$p.$k]=$v; done <"$logs/out/bench"
	fi
done

rows=("pairing (server-client)|write_bw 64 KiB (MB/s)|vs rxe-rxe|send_lat 2 B (usec)|vs rxe-rxe")
for p in "${pairings[@]}"; do
	w=${res[$p.write_bw]:-n/a} l=${res[$p.send_lat]:-n/a}
	rows+=("$p|$w|$(bench_ratio "$w" "${res[rxe-rxe.write_bw]:-}")|$l|$(bench_ratio "$l" "${res[rxe-rxe.send_lat]:-}")")
done
bench_rst_table "${rows[@]}"
echo "($(date -u +%F), $(nproc)-core host, two QEMU TCG guests on $(bench_kernel_release ""), -netdev dgram link, $iters iterations)"
