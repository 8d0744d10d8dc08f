#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel's own HMM and GUP selftests on the debug kernel: the reference
# points for our ODP tests (test_hmm: mmu_interval_notifier, hmm_range_fault
# and migration done by the kernel's model driver; gup_test: the pinning
# paths gift_umem uses). Builds mm/hmm-tests and mm/gup_test from the
# debug kernel's own source (Debian sid's linux-source, tools/deps.sh)
# into build/mm-reference/, then boots the debug kernel once and runs
# them (test_hmm is a module there; CONFIG_GUP_TEST is built in).
#
#   tools/kernel/mm_reference.sh
#
# Prints their TAP lines; exits non-zero when any fails or the VM's
# health checks (splats, kmemleak) do. hmm-tests' device-coherent half
# skips: it needs SPM memory ranges the VM does not have.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/mm-reference

if [ "${GIFT_VM:-}" = 1 ]; then
	cd "$out"
	modprobe test_hmm
	fail=0
	res=$(./hmm-tests 2>&1) || fail=1
	grep -E '^(not )?ok |^# (Totals|PASSED|FAILED)' <<<"$res" || true
	for args in "-u" "-a" "-L" "-ct -F 0x1" "-ct -F 0x3" "-ct -w"; do
		# shellcheck disable=SC2086 # words
		if ./gup_test $args -n 64 -r 2 >/dev/null 2>&1; then
			echo "ok gup_test $args"
		else
			echo "not ok gup_test $args"
			fail=1
		fi
	done
	modprobe -r test_hmm
	exit $fail
fi

CACHE=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
[ -f "$CACHE/deps.mk" ] || { echo "run tools/deps.sh first" >&2; exit 2; }
src=$(sed -n 's/^NEW_SRC := //p' "$CACHE/deps.mk")
mm=$src/tools/testing/selftests/mm
mkdir -p "$out"
for prog in hmm-tests gup_test; do
	cc -O2 -Wall -I "$src" -I "$src/tools/testing/selftests" \
		-I "$src/tools/include/uapi" -I "$src/tools/include" \
		-isystem "$src/usr/include" -o "$out/$prog" "$mm/$prog.c" \
		"$mm/vm_util.c" "$mm/hugepage_settings.c" -lpthread
done
exec "$top/tools/testing/vm/run" --kernel debug --driver none \
	--timeout 1800 --quiet -- "$top/tools/kernel/mm_reference.sh"
