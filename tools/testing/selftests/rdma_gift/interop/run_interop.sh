#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host side of the interop tests (`make check-interop`: lane "all"; and
# lane "check", which `make check` runs through run_all.sh): one
# tools/testing/vm/run-pair boot per pairing, both guests running
# interop_test.sh, which goes through every exchange with each guest
# serving in turn:
#   gift-gift  gift0 <-> gift0 on 6.12, with a tcpdump capture checked
#              to decode as RoCEv2;
#   gift-rxe   gift0 <-> stock rdma_rxe on 6.12;
#   gift-rxe7  (lane "all" only) gift0 on 6.12 <-> upstream rdma_rxe on
#              Debian sid's Linux 7.2 (run --kernel newest).
# Lane "all" runs the whole set of exchanges and then the lossy link
# (netem) in every pairing; lane "check" the quick set
# (interop_test.sh, INTEROP_QUICK) without the lossy link.
# Each pairing's steps count as reported by the client guest; each
# guest's health checks (dmesg, teardown and unload, pins, kmemleak)
# count as one more test, as do run_all.sh's. Ends with the line
# "N passed, N failed" and exits non-zero on any failure.
#
# Usage: run_interop.sh [check|all]
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../../.." && pwd)
pass=0
fail=0
test=tools/testing/selftests/rdma_gift/interop/interop_test.sh

# pairing NAME RUN-PAIR-OPTIONS...
pairing() {
	local name=$1 logs p f role st t0=$SECONDS
	shift
	logs=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-interop.XXXXXX")
	echo "# === pairing $name ($*)"
	"$top/tools/testing/vm/run-pair" --sync none --log-dir "$logs" \
		--timeout 900 "$@" --server "$test" --client "$test"
	if read -r p f <"$logs/out/totals" 2>/dev/null; then
		pass=$((pass + p))
		fail=$((fail + f))
	else
		echo "# pairing $name: no totals from the client guest"
		fail=$((fail + 1))
	fi
	for role in server client; do
		st=$(cat "$logs/$role.status" 2>/dev/null || echo none)
		if [ "$st" = 0 ]; then
			pass=$((pass + 1))
		else
			echo "# pairing $name: $role guest's health checks failed (status $st), see $logs/$role.log"
			fail=$((fail + 1))
		fi
	done
	echo "# pairing $name: $((SECONDS - t0)) s"
}

cd "$top" || exit 2
lane=${1:-all}
case $lane in
check | all) ;;
*) echo "run_interop.sh: unknown lane $lane" >&2; exit 2 ;;
esac
if [ "$lane" = check ]; then
	set=(--env INTEROP_QUICK=1)
else
	set=(--env INTEROP_LOSSY=1)
fi
pairing gift-gift --driver gift --env INTEROP_CAPTURE=1 "${set[@]}"
pairing gift-rxe --server-driver gift --client-driver rxe "${set[@]}"
if [ "$lane" = all ]; then
	pairing gift-rxe7 --server-driver gift --client-driver rxe \
		--client-kernel newest "${set[@]}"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
