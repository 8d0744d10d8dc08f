#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host side of `make check`: boots the VM once with gift0, runs every
# selftest (run_in_vm.sh), and adds the VM's own health checks (clean
# dmesg, balanced pins, device delete + rmmod) as one more test. Ends with
# the line "N passed, N failed" and exits non-zero on any failure.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-check.XXXXXX")

cd "$top" || exit 2
"$top/tools/testing/vm/run" --driver gift --out "$out" --quiet \
	-- "$here/run_in_vm.sh"
vm_status=$?

pass=0
fail=0
if read -r p f <"$out/totals" 2>/dev/null; then
	pass=$p
	fail=$f
else
	echo "# no totals from the VM: the suite did not run to the end"
	fail=1
fi
# run_in_vm.sh exits 0 once it has written totals, so a non-zero status
# is the VM's health checks (or the VM itself) failing: one more failure.
if [ "$vm_status" -eq 0 ]; then
	pass=$((pass + 1))
else
	echo "# vm health checks failed (status $vm_status), see the log above"
	fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
