#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host side of `make check` (LANE "check") and `make check-debug` (LANE
# "debug"): boots the VM with gift0 once per suite of run_in_vm.sh and
# adds up what the suites report:
#   stock  every suite on Debian's 6.12, the default guest;
#   debug  every suite on the debug kernel (Linux 7.2 from Debian sid's
#          source with KASAN, lockdep, kmemleak, UBSAN, KFENCE and fault
#          injection; tools/kernel/build.sh), with GIFT_SLOW
#          (gift_util.h), plus the suite that needs its features (fail-nth
#          sweep, packet fuzzer, stress);
#   check  stock, then one debug-kernel boot running the debug suite and
#          the ODP tests, then the interop pairings on 6.12 (two VMs,
#          interop/run_interop.sh check): what fits the CI budget (the
#          whole debug lane takes about 40 minutes under TCG);
#   all    stock and debug.
# Usage: run_all.sh [stock|check|debug|all]
# Suites:
#   main     every selftest, in a guest as the runner boots it;
#   movable_pmem  movable_test and dax_test, in a guest booted with
#            movablecore=1G (half its memory in ZONE_MOVABLE) and
#            memmap=64M!1536M (a legacy pmem region, for fsdax).
#   debug    (debug kernel only) failnth_test, gift_fuzz, gift_stress.
#   odp      data_test's odp fixture.
# Each boot's own health checks (clean dmesg, balanced pins, no page
# still held by rdma_gift, device delete + rmmod) count as one more test.
# Ends with the line "N passed, N failed" and exits non-zero on any
# failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../.." && pwd)
pass=0
fail=0

# The debug kernel is this many times slower than 6.12 under TCG
# (measured: a 4 MiB READ 4.7 s against 0.3 s; whole suites about 5x).
DEBUG_SLOW=${GIFT_DEBUG_SLOW:-8}

# suite NAMES [runner options...]: one boot running the run_in_vm.sh
# suites NAMES (space-separated), its totals and its health.
suite() {
	local name=$1 out p f status t0
	shift
	out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-check.XXXXXX")
	echo "# === suite $name ($*)"
	t0=$SECONDS
	# shellcheck disable=SC2086 # NAMES are words
	"$top/tools/testing/vm/run" --driver gift --out "$out" --quiet "$@" \
		-- "$here/run_in_vm.sh" $name
	status=$?
	if read -r p f <"$out/totals" 2>/dev/null; then
		pass=$((pass + p))
		fail=$((fail + f))
	else
		echo "# suite $name: no totals from the VM: it did not run to the end"
		fail=$((fail + 1))
	fi
	# run_in_vm.sh exits 0 once it has written totals, so a non-zero
	# status is the VM's health checks (or the VM itself) failing.
	if [ "$status" -eq 0 ]; then
		pass=$((pass + 1))
	else
		echo "# suite $name: vm health checks failed (status $status), see the log above"
		fail=$((fail + 1))
	fi
	echo "# suite $name ($*): $((SECONDS - t0)) s"
}

# sub_run NAME COMMAND...: a host-side run that ends with its own "N
# passed, N failed" line (shown here as a comment), its totals added.
sub_run() {
	local name=$1 log out f t0=$SECONDS
	shift
	echo "# === $name"
	log=$(mktemp "${TMPDIR:-/tmp}/rdma-gift-$name.XXXXXX")
	"$@" 2>&1 | tee "$log" |
		sed -u "s/^\([0-9]* passed, \)/# $name: \1/"
	out=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	rm -f "$log"
	if [ -z "$out" ]; then
		echo "# $name: no totals"
		fail=$((fail + 1))
	else
		f=${out#*passed, }
		pass=$((pass + ${out%% passed*}))
		fail=$((fail + ${f%% failed}))
	fi
	echo "# $name: $((SECONDS - t0)) s"
}

# The interop pairings (two VMs each).
interop() {
	sub_run interop "$here/interop/run_interop.sh" check
}

# The linux-rdma series: applied, checked, built, and its kselftests
# on the debug kernel built from it (tools/upstream/check.sh).
series() {
	sub_run series "$top/tools/upstream/check.sh"
}

# The packages installed with apt and used in one VM boot.
packages() {
	sub_run packages "$top/tools/packaging/check_packages.sh"
}

cd "$top" || exit 2
# vsyscall=emulate: the vsyscall page is readable, so mr_test's range
# checks meet the one page GUP serves without a VMA.
main=(--append vsyscall=emulate)
pmem=(--append 'movablecore=1G memmap=64M!1536M')
debug=(--kernel debug --timeout 3600 --env "GIFT_SLOW=$DEBUG_SLOW")
lane=${1:-stock}
case $lane in
stock | check | debug | all) ;;
*) echo "run_all.sh: unknown lane $lane" >&2; exit 2 ;;
esac
if [ "$lane" != debug ]; then
	suite main "${main[@]}"
	suite movable_pmem "${pmem[@]}"
fi
if [ "$lane" = check ]; then
	suite "debug odp" "${debug[@]}"
	series
	interop
	packages
elif [ "$lane" != stock ]; then
	suite "main debug" "${debug[@]}" "${main[@]}"
	suite movable_pmem "${debug[@]}" "${pmem[@]}"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
