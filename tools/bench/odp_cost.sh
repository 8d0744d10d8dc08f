#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What on-demand paging costs, per page, on gift0 and on stock rxe0 in
# the same VM kernel (one boot per driver: they cannot be loaded
# together), with the gift/rxe ratio:
#   fault service: RDMA WRITE into and READ out of a fresh MR over a
#     loopback RC QP pair, pinned vs ODP first touch vs ODP prefetched
#     (ibv_advise_mr, FLAG_FLUSH, before the transfer), and the prefetch
#     call itself; 4 KiB pages and 2 MiB THPs;
#   invalidation: madvise(MADV_DONTNEED) and munmap() of a range not
#     registered, under an ODP MR not yet faulted, and under an ODP MR
#     the device mapped.
# Medians of REPS samples, in microseconds per page (4 KiB or 2 MiB);
# odp_cost.c says what each one measures. Every transfer's bytes are
# checked: a cell whose bytes were wrong is marked "!". QEMU TCG is
# noisy: compare the drivers on this machine, not with hardware.
#
#   tools/bench/odp_cost.sh [--kernel K] [--also-kernel K2] [--size MIB]
#                           [--reps N] [--msg KIB] [--pages 4k,thp]
#                           [--tests xfer,inval] [--netdev-mtu N]
#                           [--results FILE.rst] [--quiet]
#
#   --kernel       the VM kernel of the gift0 and rxe0 boots (the
#                  runner's --kernel), default newest: Debian sid's 7.2,
#                  whose stock rxe has ODP (6.12's has none)
#   --also-kernel  one more gift0 boot on K2 (6.12: Debian's 6.12, the
#                  runner's default), shown as one more column; repeatable
#   --size         MiB moved per sample (default 16; a multiple of 2)
#   --reps         samples per cell (default 7)
#   --msg          RDMA message size in KiB (default 1024)
#   --pages        4k, thp or both (default)
#   --tests        xfer, inval or both (default)
#   --netdev-mtu   set the guest NIC's MTU first (e.g. 9000 for a path
#                  MTU of 4096; default: leave it, path MTU 1024)
#   --results      also write the tables as an RST fragment to FILE.rst
#                  and the raw odp_cost lines to FILE.raw
#   --quiet        no progress on stderr
#
# Needs `make` first (module for the kernels, provider); builds odp_cost.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench=$top/tools/bench
# shellcheck source=tools/bench/bench_lib.sh
. "$bench/bench_lib.sh"

# In the VM: odp_cost.sh --in-vm NETDEV_MTU ODP_COST_ARGS...
if [ "${GIFT_VM:-}" = 1 ]; then
	[ "${1:-}" = --in-vm ] || { echo "odp_cost.sh: in the VM use --in-vm" >&2; exit 2; }
	mtu=$2
	shift 2
	if [ "$mtu" != - ]; then
		ip link set dev "$GIFT_NETDEV" mtu "$mtu"
		sleep 2
	fi
	{
		echo "kernel=$(uname -r)"
		echo "thp=$(grep -o '\[[a-z]*\]' /sys/kernel/mm/transparent_hugepage/enabled | tr -d '[]')"
		echo "netdev_mtu=$(cat "/sys/class/net/$GIFT_NETDEV/mtu")"
	} >"$GIFT_OUT/info"
	"$bench/odp_cost" -d "$GIFT_IBDEV" "$@" | tee "$GIFT_OUT/odp_cost"
	exit "${PIPESTATUS[0]}"
fi

cmdline=tools/bench/odp_cost.sh
for a; do cmdline+=" $a"; done
kernel=newest also=() size=16 reps=7 msg=1024 pages=4k,thp tests=xfer,inval
mtu=- results='' quiet=''
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--also-kernel) also+=("$2"); shift 2 ;;
	--size) size=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--msg) msg=$2; shift 2 ;;
	--pages) pages=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--netdev-mtu) mtu=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	*) sed -n '/^#   tools\/bench/,/^# Needs/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done

make -s -C "$bench" odp_cost

# Progress: one short line per measurement on stderr.
progress() {
	if [ -n "$quiet" ]; then cat >/dev/null; else
		awk '/ test=/ { m = e = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^median_us=/) m = substr($i, 11)
				if ($i ~ /^err=/) e = substr($i, 5)
			}
			printf "  %s %s %s %s %s: %s us%s\n", $1, $2, $3, $4, $5,
				m == "" ? "n/a" : m, e == "none" ? "" : " (" e ")"
			fflush(stderr) }' >&2
	fi
}

# Boots: gift and rxe on --kernel, then gift on each --also-kernel.
boots=("gift:$kernel" "rxe:$kernel")
for k in "${also[@]}"; do boots+=("gift:$k"); done

t_start=$EPOCHREALTIME
work=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-odp.XXXXXX")
trap 'rm -rf "$work"' EXIT
declare -A R      # R[boot.test.op.page.mode.key] = value
declare -a label  # label[boot]: column title
for i in "${!boots[@]}"; do
	drv=${boots[i]%%:*} k=${boots[i]#*:}
	kopt=()
	case $k in
	6.12 | '') ;;
	*) kopt=(--kernel "$k") ;;
	esac
	[ "$k" = 6.12 ] && k=''
	rel=$(bench_kernel_release "$k")
	label[i]="${drv}0 ${rel%%[-+]*}"
	out=$work/$i
	[ -n "$quiet" ] || echo "odp_cost: booting ${label[i]} ($rel)" >&2
	if ! bench_boot "${label[i]}" "$drv" "$out" "${kopt[@]}" --timeout 3600 \
		-- "$bench/odp_cost.sh" --in-vm "$mtu" -s "$size" -r "$reps" \
		-m "$msg" -p "$pages" -t "$tests" 2>"$out.err" | progress; then
		echo "odp_cost: the ${label[i]} boot failed:" >&2
		tail -n 5 "$out.err" >&2
	fi
	[ -f "$out/info" ] && label[i]="${drv}0 $(sed -n 's/^kernel=\([0-9]*\.[0-9]*\).*/\1/p' "$out/info")"
	[ -f "$out/odp_cost" ] || continue
	while read -r line; do
		[[ $line == *" test="* ]] || continue
		declare -A f=()
		for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
		for key in "${!f[@]}"; do
			R[$i.${f[test]}.${f[op]}.${f[page]}.${f[mode]}.$key]=${f[$key]}
		done
		unset f
	done <"$out/odp_cost"
done
elapsed=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# cell BOOT KEY: the median per page, "!" if bytes were wrong, n/a if
# the measurement failed
cell() {
	local k=$1.$2 v
	v=${R[$k.per_page_us]:-}
	[ -n "$v" ] || { echo n/a; return; }
	v=$(awk -v v="$v" 'BEGIN { printf (v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f"), v }')
	[ "${R[$k.bad_bytes]:-0}" = 0 ] || v="$v !"
	[ "${R[$k.advise_via]:-}" != cmd ] || v="$v c"
	echo "$v"
}
# diff BOOT TEST.OP.PAGE A B: per-page median of mode A minus that of B
diff_cell() {
	local a=${R[$1.$2.$3.per_page_us]:-} b=${R[$1.$2.$4.per_page_us]:-}
	if [ -z "$a" ] || [ -z "$b" ]; then echo n/a; return; fi
	awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; printf ((d < 10 && d > -10) ? "%+.2f" : "%+.0f"), d }'
}
# rows TITLE KEY-PREFIX MODE LABEL ...: one row per mode
header="measurement (us per page)"
for i in "${!boots[@]}"; do header+="|${label[i]}"; done
header+="|gift/rxe"
row() {
	local key=$1 title=$2 r i g x
	r=$title
	for i in "${!boots[@]}"; do r+="|$(cell "$i" "$key")"; done
	g=${R[0.$key.per_page_us]:-} x=${R[1.$key.per_page_us]:-}
	echo "$r|$(bench_ratio "$g" "$x")"
}
drow() {
	local key=$1 title=$2 r i
	r=$title
	for i in "${!boots[@]}"; do r+="|$(diff_cell "$i" "$key" first pinned)"; done
	echo "$r|"
}

xrows=() irows=()
for page in 4k thp; do
	[[ $pages == *$page* ]] || continue
	pname="4 KiB"
	[ $page = thp ] && pname="2 MiB THP"
	for op in write read; do
		[[ $tests == *xfer* ]] || continue
		opn="WRITE into"
		[ $op = read ] && opn="READ out of"
		base=xfer.$op.$page
		xrows+=("$(row "$base.pinned" "$pname, $opn: pinned")")
		xrows+=("$(row "$base.first" "$pname, $opn: ODP first touch")")
		xrows+=("$(row "$base.prefetch" "$pname, $opn: ODP prefetched")")
		xrows+=("$(row "$base.prefetch_call" "$pname, $opn: prefetch call")")
		xrows+=("$(drow "$base" "$pname, $opn: first touch - pinned")")
	done
	for op in dontneed munmap; do
		[[ $tests == *inval* ]] || continue
		opn=MADV_DONTNEED
		[ $op = munmap ] && opn=munmap
		base=inval.$op.$page
		irows+=("$(row "$base.unreg" "$pname, $opn: not registered")")
		irows+=("$(row "$base.reg" "$pname, $opn: ODP MR, not faulted")")
		irows+=("$(row "$base.mapped" "$pname, $opn: ODP MR, device-mapped")")
	done
done

tables() {
	if [ ${#xrows[@]} -gt 0 ]; then
		bench_rst_table "fault service: $header" "${xrows[@]}"
		echo
	fi
	if [ ${#irows[@]} -gt 0 ]; then
		bench_rst_table "invalidation: $header" "${irows[@]}"
		echo
	fi
	echo "Medians of $reps samples of $size MiB (messages of $msg KiB), per 4 KiB"
	echo "page or per 2 MiB THP. \"!\": the bytes moved were wrong in some"
	echo "sample (see the raw lines); \"c\": prefetched through"
	echo "ibv_cmd_advise_mr() because the provider has no advise_mr."
}

info=$work/0/info
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
qemu=$(qemu-system-x86_64 --version 2>/dev/null | awk 'NR == 1 { print $4 }')
machine="$(date -u +%F), host: $(nproc) x $cpu, Linux $(uname -r);"
machine+=" guest: QEMU ${qemu:-?} TCG, 2 vCPUs, kernels"
for i in "${!boots[@]}"; do
	machine+=" ${label[i]}:$(sed -n 's/^kernel=//p' "$work/$i/info" 2>/dev/null || echo n/a)"
done
[ ! -f "$info" ] || machine+=", THP $(sed -n 's/^thp=//p' "$info"), NIC MTU $(sed -n 's/^netdev_mtu=//p' "$info")"
pmtu=$(sed -n 's/.* info mtu=\([0-9]*\).*/\1/p' "$work/0/odp_cost" 2>/dev/null | head -n 1)
machine+=", path MTU ${pmtu:-n/a}"

tbl=$(tables)
echo "$tbl"
echo
echo "($machine; $elapsed s for the whole run, ${#boots[@]} VM boots)"

if [ -n "$results" ]; then
	raw=${results%.rst}.raw
	bench_rst_head odp_cost.sh "Measured $machine; $elapsed s end to end." \
		"$cmdline" "$tbl" >"$results"
	for i in "${!boots[@]}"; do
		[ ! -f "$work/$i/odp_cost" ] || sed "s/^/${label[i]// /_} /" "$work/$i/odp_cost"
	done >"$raw"
	echo "odp_cost: results written to $results and $raw" >&2
fi
