#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Perftest on gift0 and on stock rxe0 in the same VM kernel, one boot per
# driver, printed as a table with the gift/rxe ratio:
#   ib_write_bw 64 KiB, ib_read_bw 64 KiB (average MB/s, higher is better),
#   ib_send_lat 2 B (typical usec, lower is better).
# Server and client run in the VM over the device's own IPv4 GID. Numbers
# are for comparing the two drivers on this machine (QEMU/TCG), not
# absolute hardware numbers.
#
#   tools/bench/perftest.sh [ITERATIONS]
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
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
	} >"$GIFT_OUT/bench"
	exit 0
fi

declare -A res
for drv in gift rxe; do
	out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-bench.XXXXXX")
	"$top/tools/testing/vm/run" --driver "$drv" --quiet --out "$out" \
		-- "$top/tools/bench/perftest.sh" "$iters" >/dev/null ||
		echo "bench: the $drv run failed; its numbers are n/a" >&2
	if [ -f "$out/bench" ]; then
		while read -r k v; do res[$drv.$k]=$v; done <"$out/bench"
	fi
	rm -rf "$out"
done

printf '%-28s %12s %12s %10s\n' test gift0 rxe0 gift/rxe
for k in write_bw read_bw send_lat; do
	case $k in
	*_bw) unit="MB/s" label="${k/_bw/} 64 KiB bw ($unit)" ;;
	*) unit="usec" label="send 2 B lat ($unit)" ;;
	esac
	g=${res[gift.$k]:-n/a} r=${res[rxe.$k]:-n/a}
	ratio=$(awk -v g="$g" -v r="$r" 'BEGIN { if (g+0 > 0 && r+0 > 0) printf "%.2f", g / r; else print "n/a" }')
	printf '%-28s %12s %12s %10s\n' "$label" "$g" "$r" "$ratio"
done
echo "($(date -u +%F), $(nproc) vCPU host, QEMU TCG guest $(ls /lib/modules | grep -E '^6\.12\..*-amd64$' | sort -V | tail -1), $iters iterations)"
