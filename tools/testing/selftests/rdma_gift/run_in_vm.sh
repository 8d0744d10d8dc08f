#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the rdma_gift selftests: runs the test programs of the
# suites named as arguments ("main", the default, "movable_pmem", "odp"
# or "debug"; see run_all.sh) in the VM created by
# tools/testing/vm/run (--driver gift), prints their TAP
# output, and writes "PASS FAIL" totals to $GIFT_OUT/totals. It exits 0
# whenever the totals were written, so that the runner's exit status
# speaks only for the VM's own health checks.
#
# A kselftest_harness program counts its "# Totals:" line, where skips and
# errors count as failures (a test that needs a missing feature fails);
# a program that dies without totals counts as one failure. A shell TAP
# program counts its ok / not ok lines.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${GIFT_IBDEV:?}" "${GIFT_NETDEV:?}" "${GIFT_MODULE:?}"
pass=0
fail=0

run_harness() {
	local prog=$1 out totals p f s e t0=$SECONDS
	echo "# === $*"
	out=$("$here/$prog" "${@:2}" 2>&1)
	printf '%s\n' "$out"
	echo "# $*: $((SECONDS - t0)) s"
	totals=$(grep -E '^# Totals: ' <<<"$out" | tail -n1)
	if [ -z "$totals" ]; then
		echo "# $prog: no totals (crashed?), counted as one failure"
		fail=$((fail + 1))
		return
	fi
	p=$(sed -E 's/.* pass:([0-9]+).*/\1/' <<<"$totals")
	f=$(sed -E 's/.* fail:([0-9]+).*/\1/' <<<"$totals")
	s=$(sed -E 's/.*skip:([0-9]+).*/\1/' <<<"$totals")
	e=$(sed -E 's/.*error:([0-9]+).*/\1/' <<<"$totals")
	pass=$((pass + p))
	fail=$((fail + f + s + e))
}

# run_prog DESCRIPTION PROGRAM [ARGS...]: one test, passing on exit 0.
run_prog() {
	local desc=$1 status
	shift
	echo "# === $desc"
	"$here/$1" "${@:2}" 2>&1
	status=$?
	if [ "$status" -eq 0 ]; then
		echo "ok $desc"
		pass=$((pass + 1))
	else
		echo "not ok $desc (exit status $status)"
		fail=$((fail + 1))
	fi
}

# Soak lengths of the debug suite (seconds): `make check` runs short ones,
# `make fuzz` / `make stress` long ones.
fuzz_secs=${GIFT_FUZZ_SECS:-60}
stress_secs=${GIFT_STRESS_SECS:-120}

run_tap() {
	local prog=$1 out t0=$SECONDS
	echo "# === $prog"
	out=$("$here/$prog" 2>&1)
	printf '%s\n' "$out"
	echo "# $prog: $((SECONDS - t0)) s"
	pass=$((pass + $(grep -cE '^ok ' <<<"$out")))
	fail=$((fail + $(grep -cE '^not ok ' <<<"$out")))
}

run_suite() {
case $1 in
main)
	run_tap tools_test.sh
	run_tap clients_test.sh
	run_tap cm_test.sh
	run_tap netns_test.sh
	run_tap ktest_test.sh
	run_harness device_test
	run_harness link_test
	run_harness mr_test
	run_harness gift_test
	run_harness qp_test
	run_harness net_test
	run_harness data_test
	run_harness ud_test
	# Local traffic through the IP stack's lo instead of the local
	# shortcut (gift_net.c): the fixtures that drive every transport
	# (RC, UC, UD), error completions and SRQs over it; the opcode, MTU
	# and SGE matrix (xfer), ODP and the soaks are path-independent and
	# stay on the default path, and multicast never takes the shortcut.
	# data_test's netpath fixture covers both paths itself.
	echo 0 >/sys/module/rdma_gift/parameters/local_shortcut
	run_harness data_test -f rc -f uc -f remote_err -f srq
	run_harness ud_test -f ud
	echo 1 >/sys/module/rdma_gift/parameters/local_shortcut
	run_harness verbs_ex_test
	run_harness pmem_ops_test
	run_harness mw_test
	;;
movable_pmem)
	# A guest booted with a movable zone and a legacy pmem region
	# (run_all.sh: movablecore=, memmap=).
	run_harness movable_test
	run_harness dax_test
	;;
odp)
	# The ODP fixture alone: make check runs it on the debug kernel
	# (faults, invalidations and the reaper under lockdep and KASAN).
	run_harness data_test -f odp
	;;
debug)
	# Programs that need the debug kernel's features (fault injection)
	# or its checkers to mean anything: run only in that lane.
	run_harness failnth_test
	run_prog "gift_fuzz -t $fuzz_secs" fuzz/gift_fuzz -t "$fuzz_secs"
	run_prog "gift_stress -t $stress_secs" stress/gift_stress -t "$stress_secs"
	;;
*)
	echo "run_in_vm.sh: unknown suite $1" >&2
	fail=$((fail + 1))
	;;
esac
}

for suite in "${@:-main}"; do
	run_suite "$suite"
done

echo "$pass $fail" >"${GIFT_OUT:?}/totals"
