#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The memory table of the cover letter, for the patched rxe: what a
# read-only registration costs in RAM and time over copy-on-write shared
# memory, with IB_ACCESS_GIFT and without, on rxe0 of the debug kernel
# (tools/kernel/build.sh debug: the newest source plus the series, KASAN
# and lockdep on, so times are slower than on a production kernel).
#
# It measures as tools/bench/gift_mem.sh measures gift0: one gift_mem
# process per measurement (memory.current of its own memory cgroup
# around ibv_reg_mr(), PFNs from pagemap), built here from
# tools/bench/gift_mem.c with IBV_ACCESS_GIFT as the series defines it
# (the optional bit after relaxed ordering, 1 << 21, not gift0's 1 << 29)
# and without the gift provider (no giftdv_query_mr()). Without gift the
# registration takes the unchanged stock path of rxe.
#
#   tools/upstream/rxe_mem.sh [--sizes "256"] [--kinds "zero fork excl"]
#                             [--mem 4G] [--timeout S]
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out_bin=$top/build/upstream/gift_mem_rxe

# In the VM: rxe_mem.sh --in-vm "KIND..." SIZE...
if [ "${GIFT_VM:-}" = 1 ]; then
	read -ra kinds <<<"$2"
	shift 2
	echo "kernel=$(uname -r)" >"$GIFT_OUT/info"
	for size; do
		for kind in "${kinds[@]}"; do
			for acc in gift normal; do
				flag=()
				[ "$acc" = gift ] && flag=(-g)
				sync
				echo 3 >/proc/sys/vm/drop_caches
				line=$(timeout 900 "$out_bin" -d "$GIFT_IBDEV" \
					-s "$size" -m "$kind" "${flag[@]}") ||
					line="size_mib=$size mem=$kind access=$acc err=gift_mem_failed"
				echo "$line" | tee -a "$GIFT_OUT/gift_mem"
			done
		done
	done
	exit 0
fi

sizes=256 kinds="zero fork excl" mem=4G timeout=2400
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) sizes=$2; shift 2 ;;
	--kinds) kinds=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	*) sed -n '/^#   tools\/upstream/,/^set/p' "$0" | sed '$d;s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
read -ra size_list <<<"$sizes"

# gift_mem.c without the gift provider: the series' bit, no MR query.
mkdir -p "$(dirname "$out_bin")"
shim=$(dirname "$out_bin")/giftdv.h
cat >"$shim" <<-'SHIM'
	/* SPDX-License-Identifier: GPL-2.0 */
	/* tools/upstream/rxe_mem.sh: gift_mem on rxe, IB_UVERBS_ACCESS_GIFT */
	#include <errno.h>
	#include <stdint.h>
	#define IBV_ACCESS_GIFT (IBV_ACCESS_RELAXED_ORDERING << 1)
	struct giftdv_mr_attr { uint64_t shared_pages; };
	static inline int giftdv_query_mr(struct ibv_mr *mr,
					  struct giftdv_mr_attr *a)
	{
		(void)mr; (void)a;
		return EOPNOTSUPP;
	}
SHIM
cc -O2 -g -Wall -Wextra -Werror -I"$(dirname "$out_bin")" -o "$out_bin" \
	"$top/tools/bench/gift_mem.c" -libverbs

work=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-rxemem.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$top/tools/testing/vm/run" --kernel debug --driver rxe --mem "$mem" \
	--timeout "$timeout" --quiet --out "$work" -- \
	"$top/tools/upstream/rxe_mem.sh" --in-vm "$kinds" "${size_list[@]}" >&2 ||
	echo "rxe_mem: the VM run failed" >&2

# The table: size, memory, then gift and normal on the patched rxe0.
declare -A R
while read -r line; do
	declare -A f=()
	for kv in $line; do f[${kv%%=*}]=${kv#*=}; done
	for k in "${!f[@]}"; do R[${f[size_mib]}.${f[mem]}.${f[access]}.$k]=${f[$k]}; done
	unset f
done <"$work/gift_mem"
cell() {
	local e=${R[$1.err]:-} k=${R[$1.extra_kib]:-} t=${R[$1.reg_s]:-}
	local m=${R[$1.pfns_moved]:-} a=${R[$1.pfns_absent]:-}
	if [ -z "$e" ]; then echo "n/a|n/a|n/a"; return; fi
	if [ "$e" != none ]; then echo "failed ($e)|n/a|n/a"; return; fi
	awk -v k="$k" -v t="$t" -v m="$m" -v a="$a" 'BEGIN {
		printf "%+.1f MiB|", k / 1024
		if (t < 1) printf "%.0f ms|", t * 1000; else printf "%.2f s|", t
		if (m == 0 && a == 0) print "yes"; else printf "no (%d moved)\n", m
	}'
}
echo "kernel: $(cat "$work/info" 2>/dev/null || echo unknown)"
widths=(8 12 10 9 10 11 9 17)
row() {
	local -a a=("$@")
	local i s out=''
	for ((i = 0; i < ${#widths[@]}; i++)); do
		printf -v s '%-*s ' "${widths[$i]}" "${a[$i]:-}"
		out+=$s
	done
	echo "${out%"${out##*[! ]}"}"
}
border() {
	local w s out=''
	for w in "${widths[@]}"; do
		printf -v s '%*s' "$w" ''
		out+="${s// /=} "
	done
	echo "${out% }"
}
border
row size memory "gift RAM" "gift reg" "gift PFNs" "normal RAM" "norm reg" "norm PFNs kept"
border
for s in "${size_list[@]}"; do
	for kind in $kinds; do
		case $kind in
		zero) label="zero page" ;; ksm) label=KSM-merged ;;
		fork) label=fork-shared ;; excl) label=exclusive ;; *) label=$kind ;;
		esac
		IFS='|' read -r gr gt gp <<<"$(cell "$s.$kind.gift")"
		IFS='|' read -r nr nt np <<<"$(cell "$s.$kind.normal")"
		row "$s MiB" "$label" "$gr" "$gt" "$gp" "$nr" "$nt" "$np"
	done
done
border
