#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What a read-only MR registration costs in RAM and time over copy-on-write
# shared memory: gift registration (IBV_ACCESS_REMOTE_READ |
# IBV_ACCESS_GIFT) and normal registration (IBV_ACCESS_REMOTE_READ) on
# gift0, normal registration on stock rxe0, each over zero-page, KSM-merged
# and fork-shared memory, and over exclusive memory (written, not shared:
# the control case, nothing to copy). Two VM boots (gift and rdma_rxe both bind UDP
# 4791, so they cannot share one), one gift_mem process per measurement;
# prints an RST table.
#
#   tools/bench/gift_mem.sh [--sizes "256 1024"] [--kinds "zero ksm fork excl"]
#                           [--drivers "gift rxe"] [--ksm-wait S] [--mem SIZE]
#                           [--timeout S] [--results FILE.rst] [--module KO]
#                           [--note TEXT] [--quiet]
#
#   --sizes       MR sizes in MiB
#   --kinds       memory kinds, as gift_mem -m takes them
#   --drivers     which VM boots to do
#   --ksm-wait    longest wait for KSM to merge one range (default 300 s)
#   --mem         guest RAM (default 4G: 1 GiB fork-shared with a normal
#                 registration needs parent + copy, plus pagemap buffers)
#   --timeout     per VM boot (default 3600 s)
#   --results     also write the table and the machine to FILE.rst (an RST
#                 fragment) and the raw gift_mem lines to FILE.raw
#   --module      the rdma_gift.ko to test (default: the runner's,
#                 drivers/infiniband/sw/gift/rdma_gift.ko)
#   --note        a sentence for the results file (e.g. the module's commit)
#   --quiet       no per-measurement progress lines on stderr
#
# Needs `make module provider` first; builds gift_mem itself.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
bench=$top/tools/bench
# shellcheck source=tools/bench/bench_lib.sh
. "$bench/bench_lib.sh"

# In the VM: gift_mem.sh --in-vm KSM_WAIT "KIND..." SIZE...
if [ "${GIFT_VM:-}" = 1 ]; then
	[ "${1:-}" = --in-vm ] || { echo "gift_mem.sh: in the VM use --in-vm" >&2; exit 2; }
	ksm_wait=$2
	read -ra vm_kinds <<<"$3"
	shift 3
	case $GIFT_DRIVER in
	gift) accesses=(gift normal) ;;
	*) accesses=(normal) ;;
	esac
	{
		echo "kernel=$(uname -r)"
		echo "thp=$(grep -o '\[[a-z]*\]' /sys/kernel/mm/transparent_hugepage/enabled | tr -d '[]')"
		echo "ksm_max_page_sharing=$(cat /sys/kernel/mm/ksm/max_page_sharing)"
		echo "mem_total_kib=$(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
	} >"$GIFT_OUT/info"
	for size; do
		for kind in "${vm_kinds[@]}"; do
			for acc in "${accesses[@]}"; do
				flag=()
				[ "$acc" = gift ] && flag=(-g)
				# Start each measurement from a quiet memory state.
				sync
				echo 3 >/proc/sys/vm/drop_caches
				line=$(timeout $((ksm_wait + 900)) "$bench/gift_mem" \
					-d "$GIFT_IBDEV" -s "$size" -m "$kind" \
					-w "$ksm_wait" "${flag[@]}") ||
					line="dev=$GIFT_IBDEV size_mib=$size mem=$kind access=$acc err=gift_mem_failed"
				echo "$line" >>"$GIFT_OUT/gift_mem"
				echo "$line"
			done
		done
	done
	exit 0
fi

cmdline=tools/bench/gift_mem.sh
for a; do
	if [[ $a =~ ^[][A-Za-z0-9_./=:,+-]+$ ]]; then cmdline+=" $a"; else cmdline+=" \"$a\""; fi
done
sizes="256 1024" kinds="zero ksm fork excl" drivers="gift rxe" ksm_wait=300 mem=4G timeout=3600 results=
quiet='' module=() note=
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;;
	--kinds) kinds=$2; shift 2 ;;
	--drivers) drivers=$2; shift 2 ;;
	--ksm-wait) ksm_wait=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	--module) module=(--module "$2"); shift 2 ;;
	--note) note=$2; shift 2 ;;
	--quiet) quiet=1; shift ;;
	*) sed -n '/^#   tools\/bench/,/^# Needs/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
read -ra size_list <<<"$sizes"
read -ra kind_list <<<"$kinds"

make -s -C "$bench" gift_mem

progress() {
	if [ -n "$quiet" ]; then cat >/dev/null; else sed -u 's/^/  /' >&2; fi
}

t_start=$EPOCHREALTIME
work=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-mem.XXXXXX")
trap 'rm -rf "$work"' EXIT
declare -A R    # R[drv.size.kind.access.key] = value
info=
for drv in $drivers; do
	out=$work/$drv
	mkdir -p "$out"
	echo "gift_mem: booting the VM with --driver $drv (sizes: $sizes MiB)" >&2
	# Progress (one gift_mem line per measurement) goes to stderr.
	mod=()
	[ "$drv" != gift ] || mod=("${module[@]}")
	if ! "$top/tools/testing/vm/run" --driver "$drv" "${mod[@]}" --mem "$mem" \
		--timeout "$timeout" --quiet --out "$out" -- \
		"$bench/gift_mem.sh" --in-vm "$ksm_wait" "$kinds" "${size_list[@]}" \
		2>"$out/vm.err" | progress; then
		echo "gift_mem: the $drv run failed; its numbers are n/a:" >&2
		tail -n 5 "$out/vm.err" >&2
	fi
	[ -f "$out/info" ] && info=$out/info
	[ -f "$out/gift_mem" ] || continue
	while read -r line; do
		declare -A f=()
		for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
		d=${f[dev]%0}
		for k in "${!f[@]}"; do
			R[$d.${f[size_mib]}.${f[mem]}.${f[access]}.$k]=${f[$k]}
		done
		unset f
	done <"$out/gift_mem"
done
elapsed=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

# Cell formatting. key: drv.size.kind.access
extra() {
	local e=${R[$1.err]:-} k=${R[$1.extra_kib]:-}
	if [ -z "$e" ]; then echo n/a
	elif [ "$e" != none ]; then echo "failed ($e)"
	else awk -v k="$k" 'BEGIN { printf "%+.1f MiB", k / 1024 }'
	fi
}
regtime() {
	local e=${R[$1.err]:-} t=${R[$1.reg_s]:-}
	if [ -z "$e" ] || [ -z "$t" ]; then echo n/a
	else awk -v t="$t" 'BEGIN { if (t < 1) printf "%.0f ms", t * 1000; else printf "%.2f s", t }'
	fi
}
pfns() {
	local e=${R[$1.err]:-} m=${R[$1.pfns_moved]:-} a=${R[$1.pfns_absent]:-}
	if [ -z "$e" ] || [ "$e" != none ]; then echo n/a
	elif [ "$m" = 0 ] && [ "$a" = 0 ]; then echo yes
	elif [ "$a" = 0 ]; then echo "no ($m moved)"
	else echo "no ($m moved, $a absent)"
	fi
}
ksmtime() {
	local s=$1 v vals=()
	for key in gift.$s.ksm.gift gift.$s.ksm.normal rxe.$s.ksm.normal; do
		v=${R[$key.ksm_merge_s]:-}
		[ -z "$v" ] || vals+=("$v")
	done
	[ ${#vals[@]} -gt 0 ] || { echo n/a; return; }
	printf '%s\n' "${vals[@]}" | sort -n | awk '
		NR == 1 { lo = $1 } { hi = $1 }
		END { if (hi - lo < 0.05) printf "%.1f s", hi; else printf "%.1f-%.1f s", lo, hi }'
}

# Rows: size, memory, then the three configurations, then KSM merge time.
rows=()
for s in "${size_list[@]}"; do
	if [ $((s % 1024)) = 0 ]; then sz="$((s / 1024)) GiB"; else sz="$s MiB"; fi
	for kind in "${kind_list[@]}"; do
		case $kind in
		zero) label="zero page" ;;
		ksm) label="KSM-merged" ;;
		fork) label="fork-shared" ;;
		excl) label="exclusive" ;;
		*) label=$kind ;;
		esac
		g=gift.$s.$kind.gift n=gift.$s.$kind.normal r=rxe.$s.$kind.normal
		k=-
		[ "$kind" = ksm ] && k=$(ksmtime "$s")
		rows+=("$sz|$label|$(extra "$g")|$(regtime "$g")|$(pfns "$g")|$(extra "$n")|$(regtime "$n")|$(extra "$r")|$(regtime "$r")|$k")
	done
done

# An RST simple table with a spanning first header row.
table() {
	local h1='MR|gift on gift0|normal on gift0|normal on rxe0|KSM'
	local spans=(2 3 2 2 1)
	local h2='size|memory|extra RAM|reg time|PFNs kept|extra RAM|reg time|extra RAM|reg time|merge time'
	local -a w cells
	local r i j c line under border
	for r in "$h2" "${rows[@]}"; do
		IFS='|' read -ra cells <<<"$r"
		for i in "${!cells[@]}"; do
			c=${#cells[i]}
			[ "${w[i]:-0}" -ge "$c" ] || w[i]=$c
		done
	done
	# Widen the last column of a group if the group title is wider.
	IFS='|' read -ra cells <<<"$h1"
	i=0
	for j in "${!spans[@]}"; do
		local n=${spans[j]} sum=$((spans[j] - 1)) k
		for ((k = i; k < i + n; k++)); do sum=$((sum + w[k])); done
		[ "$sum" -ge "${#cells[j]}" ] ||
			w[i + n - 1]=$((w[i + n - 1] + ${#cells[j]} - sum))
		i=$((i + n))
	done
	border=
	for i in "${!w[@]}"; do
		border+=$(printf '%*s' "${w[i]}" '' | tr ' ' =)' '
	done
	border=${border% }
	line='' under='' i=0
	for j in "${!spans[@]}"; do
		local n=${spans[j]} sum=$((spans[j] - 1)) k
		for ((k = i; k < i + n; k++)); do sum=$((sum + w[k])); done
		line+=$(printf '%-*s' "$sum" "${cells[j]}")' '
		under+=$(printf '%*s' "$sum" '' | tr ' ' -)' '
		i=$((i + n))
	done
	row() {
		local out='' i
		IFS='|' read -ra cells <<<"$1"
		for i in "${!w[@]}"; do out+=$(printf '%-*s' "${w[i]}" "${cells[i]}")' '; done
		echo "${out%"${out##*[! ]}"}"
	}
	echo "$border"
	echo "${line%"${line##*[! ]}"}"
	echo "${under% }"
	row "$h2"
	echo "$border"
	for r in "${rows[@]}"; do row "$r"; done
	echo "$border"
}

kver=n/a thp=n/a mps=n/a
if [ -n "$info" ]; then
	kver=$(sed -n 's/^kernel=//p' "$info")
	thp=$(sed -n 's/^thp=//p' "$info")
	mps=$(sed -n 's/^ksm_max_page_sharing=//p' "$info")
fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
qemu=$(qemu-system-x86_64 --version 2>/dev/null | awk 'NR == 1 { print $4 }')
machine="$(date -u +%F), host: $(nproc) x $cpu, Linux $(uname -r);"
machine+=" guest: QEMU ${qemu:-?} TCG, 2 vCPUs, $mem RAM, Debian kernel $kver"
machine+=" (THP $thp, KSM max_page_sharing $mps)"

tbl=$(table)
nboots=$(wc -w <<<"$drivers")
echo "$tbl"
echo
echo "($machine; $elapsed s for the whole run)"

if [ -n "$results" ]; then
	raw=${results%.rst}.raw
	{
		bench_rst_head gift_mem.sh \
			"Measured $machine; $elapsed s end to end ($nboots VM boots).${note:+ $note}" \
			"$cmdline" "$tbl"
		echo
		echo "*extra RAM*: memory.current of the benchmark's memory cgroup right"
		echo "after minus right before ibv_reg_mr(); *reg time*: wall time of"
		echo "ibv_reg_mr(); *PFNs kept*: every page's PFN in /proc/self/pagemap is"
		echo "the same after the gift registration as before; *KSM merge time*:"
		echo "from MADV_MERGEABLE until ksmd had merged every page (pages_to_scan"
		echo "32768, sleep_millisecs 0), for each of the runs of that row;"
		echo "*exclusive*: memory written by the process and shared with nobody,"
		echo "the control case in which no registration copies anything. One"
		echo "run per cell; the raw measurements are in \`\`$(basename "$raw")\`\`."
	} >"$results"
	for drv in $drivers; do
		[ ! -f "$work/$drv/gift_mem" ] || cat "$work/$drv/gift_mem"
	done >"$raw"
	echo "gift_mem: results written to $results and $raw" >&2
fi
