#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host side of `make check`: boots the VM with gift0 once per suite of
# run_in_vm.sh and adds up what the suites report:
#   main     every selftest, in a guest as the runner boots it;
#   movable_pmem  movable_test and dax_test, in a guest booted with
#            movablecore=1G (half its memory in ZONE_MOVABLE) and
#            memmap=64M!1536M (a legacy pmem region, for fsdax).
# Each boot's own health checks (clean dmesg, balanced pins, no page
# still held by rdma_gift, device delete + rmmod) count as one more test.
# Ends with the line "N passed, N failed" and exits non-zero on any
# failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../.." && pwd)
pass=0
fail=0

# suite NAME [runner options...]: one boot, its totals and its health.
suite() {
	local name=$1 out p f status
	shift
	out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-check.XXXXXX")
	echo "# === suite $name"
	"$top/tools/testing/vm/run" --driver gift --out "$out" --quiet "$@" \
		-- "$here/run_in_vm.sh" "$name"
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
}

cd "$top" || exit 2
suite main
suite movable_pmem --append 'movablecore=1G memmap=64M!1536M'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
