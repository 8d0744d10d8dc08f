#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check-patches: the linux-rdma series, checked as a build product.
#
#  1. series.sh check: the series applies to the newest source, every
#     patch passes checkpatch --strict and names its maintainers, and the
#     tree after every patch builds drivers/infiniband/ with W=1.
#  2. rdma-core.sh check: the rdma-core patches (IBV_ACCESS_GIFT) apply
#     with git to a fresh copy of sid's rdma-core source, libibverbs
#     builds, and its flag is the kernel's bit.
#  3. The series' own kselftests (TARGETS=rdma, the tests the series
#     adds), installed from the patched tree, run in one boot of the
#     debug kernel, which tools/kernel/build.sh builds from the patched
#     tree: stock-path rxe with the series, no rdma_gift module loaded,
#     under KASAN, lockdep, kmemleak and UBSAN. The boot's health checks
#     count as one more test.
#  4. In the same boot, after them: our gift and ODP behaviour tests
#     (gift_test, data_test's odp fixture, from `make selftests`)
#     against rxe0 of the patched kernel through the stock rxe provider
#     (rxe_gift_tests.sh, which names the tests it excludes and why).
#     Each of their results counts.
#
# Ends with "N passed, N failed"; exits non-zero on any failure.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
SLOW=${GIFT_DEBUG_SLOW:-8}
# The kselftests the series adds (in tools/testing/selftests/rdma/).
TESTS=(rxe_odp.sh rxe_gift.sh rxe_odp_implicit.sh)
pass=0
fail=0

# A skipped test counts as failed: the series' tests skip only when the
# kernel lacks what the series adds, which the patched kernel must not.
count_tap() {
	local p f
	p=$(grep -E '^ok [0-9]+' <<<"$1" | grep -cv '# SKIP')
	f=$(grep -cE '^not ok [0-9]+|^ok [0-9]+.*# SKIP' <<<"$1")
	pass=$((pass + p))
	fail=$((fail + f))
}

# tap_check SCRIPT: runs "SCRIPT check" (TAP), counts its results; a run
# without a plan counts as one failure.
tap_check() {
	local t0=$SECONDS out
	echo "# === $1 check"
	out=$(bash "$HERE/$1" check 2>&1)
	echo "$out"
	count_tap "$out"
	grep -qE '^1\.\.[1-9]' <<<"$out" || { echo "# $1 check: no plan"; fail=$((fail + 1)); }
	echo "# $1 check: $((SECONDS - t0)) s"
}

tap_check series.sh
tap_check rdma-core.sh

t0=$SECONDS
echo "# === the series' kselftests on the debug kernel (rxe, no rdma_gift)"
tree=$(bash "$HERE/series.sh" tree) || exit 2
ver=${tree##*/linux-}
inst=$CACHE/upstream/kselftest-$ver
rm -rf "$inst"
if ! make -s -C "$tree/tools/testing/selftests" TARGETS=rdma \
	O="$CACHE/upstream/kselftest-build-$ver" INSTALL_PATH="$inst" install \
	>"$CACHE/upstream/kselftest-build.log" 2>&1; then
	tail -n 20 "$CACHE/upstream/kselftest-build.log" | sed 's/^/# /'
	echo "not ok building the series' kselftests"
	fail=$((fail + 1))
else
	# The kselftest runner appends the tests' output to /dev/stdout,
	# which the VM's minimal /dev lacks (it would become a file there):
	# link it, and hand the runner a pipe, as appending with an offset
	# of its own to a file stdout would overwrite its other lines.
	# Then our tests, whose failures their TAP reports: the exit
	# status stays the kselftests' and the health checks'.
	sel=()
	for t in "${TESTS[@]}"; do sel+=(-t "rdma:$t"); done
	mark='# === rdma_gift tests on rxe0'
	out=$(cd "$inst" && "$TOP/tools/testing/vm/run" --kernel debug \
		--driver none --quiet --env GIFT_SLOW="$SLOW" \
		--timeout $((600 * SLOW / 8 + 300 + 1800 * SLOW / 8)) \
		-- bash -o pipefail -c \
		"[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout;
		./run_kselftest.sh -o $((60 * SLOW)) ${sel[*]} | cat; st=\$?
		echo '$mark'
		bash $TOP/tools/upstream/rxe_gift_tests.sh
		exit \$st" 2>&1)
	status=$?
	echo "$out"
	ks=$(sed "/^$mark\$/,\$d" <<<"$out")
	ours=$(sed -n "/^$mark\$/,\$p" <<<"$out")
	# run_kselftest.sh prints the tests' TAP lines indented by "# ".
	inner=$(sed -n 's/^# \(\(not \)\?ok [0-9]\)/\1/p' <<<"$ks")
	count_tap "$inner"
	count_tap "$(grep -E '^(not )?ok [0-9]+ selftests: ' <<<"$ks")"
	[ -n "$inner" ] || { echo "# no TAP from the kselftests"; fail=$((fail + 1)); }
	# Ours print theirs at the top level.
	count_tap "$(grep -E '^(not )?ok [0-9]+ ' <<<"$ours")"
	grep -qE '^ok [0-9]+ ' <<<"$ours" ||
		{ echo "# no TAP from the rdma_gift tests"; fail=$((fail + 1)); }
	if [ "$status" -eq 0 ]; then
		echo "ok VM health checks (dmesg, kmemleak, pins)"
		pass=$((pass + 1))
	else
		echo "not ok VM health checks or the run (status $status)"
		fail=$((fail + 1))
	fi
fi
echo "# kselftests: $((SECONDS - t0)) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
