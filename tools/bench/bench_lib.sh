# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers sourced by the benchmark scripts (perftest.sh, odp_cost.sh).
# They expect $top, the repository's top directory.

# bench_boot LABEL DRIVER OUT [RUNNER OPTIONS...] -- CMD [ARGS...]:
# one VM boot (tools/testing/vm/run --driver DRIVER --quiet --out OUT
# ...) running CMD, whose stdout is passed on. A failed run is reported
# on stderr ("its numbers are n/a") and returns 1.
bench_boot() {
	local label=$1 drv=$2 out=$3
	shift 3
	mkdir -p "$out"
	"$top/tools/testing/vm/run" --driver "$drv" --quiet --out "$out" "$@" && return 0
	echo "bench: the $label run failed; its numbers are n/a" >&2
	return 1
}

# bench_kernel_release [K]: the release the runner boots for --kernel K
# (none: Debian's 6.12, as the runner's default).
bench_kernel_release() {
	local cache=${GIFT_CACHE:-${HOME:-/tmp}/.cache/rdma-gift}
	case ${1:-} in
	'') find /lib/modules -maxdepth 1 -name '6.12.*-amd64' -printf '%f\n' |
		sort -V | tail -n 1 ;;
	newest) sed -n 's/^NEW_KVER := //p' "$cache/deps.mk" 2>/dev/null ;;
	*/*) cat "$1/kernelrelease" 2>/dev/null ;;
	*) echo "$1" ;;
	esac
}

# bench_ratio A B: A / B to two places, n/a unless both are numbers > 0
bench_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else print "n/a" }'
}

# bench_rst_table HEADER ROW...: an RST simple table; cells separated by
# '|', the first column left-aligned, the others right-aligned.
bench_rst_table() {
	printf '%s\n' "$@" | awk -F'|' '
	{ rows[NR] = $0; n = split($0, c, "|"); if (n > nc) nc = n
	  for (i = 1; i <= n; i++) if (length(c[i]) > w[i]) w[i] = length(c[i]) }
	function border(   i, s) {
		s = ""
		for (i = 1; i <= nc; i++) {
			s = s (i > 1 ? " " : "")
			for (j = 0; j < w[i]; j++) s = s "="
		}
		print s
	}
	function row(r,   i, s, n, c) {
		n = split(r, c, "|"); s = ""
		for (i = 1; i <= nc; i++)
			s = s (i > 1 ? " " : "") sprintf(i == 1 ? "%-*s" : "%*s", w[i], c[i])
		sub(/ +$/, "", s); print s
	}
	END { border(); row(rows[1]); border()
	      for (k = 2; k <= NR; k++) row(rows[k]); border() }'
}
