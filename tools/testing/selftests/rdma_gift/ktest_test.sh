#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Kernel RDMA users on the runner's device: loads ktest/gift_ktest.ko
# (dev=$GIFT_IBDEV), runs each of its kernel verbs tests through
# /sys/kernel/debug/gift_ktest/run, one TAP test each (rdma_cm among
# them: a kernel ULP connecting, sending both ways and disconnecting). Then the device goes
# away under the loaded module (rdma link delete: the client's remove
# callback) and comes back (the add callback), and the module is unloaded.
# Runs against stock rxe too (tools/testing/vm/run --driver rxe).
set -u

here=$(cd "$(dirname "$0")" && pwd)
ko=${GIFT_KTEST:-$here/ktest/gift_ktest.ko}
dbg=/sys/kernel/debug/gift_ktest
dev=${GIFT_IBDEV:?}
ndev=${GIFT_NETDEV:?}
ip=${GIFT_IP:?}
driver=${GIFT_DRIVER:-gift}
n=0
failed=0

result() {
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2"
	else
		failed=$((failed + 1))
		echo "not ok $n $2"
		[ -z "${3-}" ] || echo "# $3"
	fi
}

# run_test NAME: the test's result line, "ok" or "fail: <reason>".
run_test() {
	if ! echo "$1" >"$dbg/run"; then
		echo "fail: writing $1 to $dbg/run failed"
		return
	fi
	cat "$dbg/run"
}

# Wait (up to 10 s) for the port to be ACTIVE with the IPv4 RoCEv2 GID.
wait_ready() {
	local p=/sys/class/infiniband/$dev/ports/1 want i j
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' \
		$(tr . ' ' <<<"$ip"))
	for ((i = 0; i < 100; i++)); do
		if grep -q ACTIVE "$p/state" 2>/dev/null; then
			for j in $(seq 0 15); do
				[ "$(cat "$p/gids/$j" 2>/dev/null)" = "$want" ] &&
				[ "$(cat "$p/gid_attrs/types/$j" 2>/dev/null)" = "RoCE v2" ] &&
				return 0
			done
		fi
		sleep 0.1
	done
	return 1
}

echo "TAP version 13"
# The module uses rdma_cm (its rdma_cm test): insmod does not load it.
modprobe rdma_cm
if ! insmod "$ko" dev="$dev"; then
	echo "1..1"
	echo "not ok 1 insmod $ko"
	exit 1
fi
mapfile -t tests <"$dbg/tests"
echo "1..$((${#tests[@]} + 3))"

for t in "${tests[@]}"; do
	res=$(run_test "$t")
	result "$res" "$t" "$res"
done

# The device goes away: the client's remove callback drops it.
if ! rdma link delete "$dev"; then
	result fail "device removal" "rdma link delete $dev failed"
else
	res=$(run_test connect)
	case $res in
	"fail: no device $dev") result ok "device removal" ;;
	*) result fail "device removal" "after rdma link delete: $res" ;;
	esac
fi

# ... and comes back: the add callback finds it again.
if ! rdma link add "$dev" type "$driver" netdev "$ndev"; then
	result fail "device re-added" "rdma link add $dev failed"
elif ! wait_ready; then
	result fail "device re-added" "$dev not ready after rdma link add"
else
	res=$(run_test send_recv)
	result "$res" "device re-added" "$res"
fi

if rmmod gift_ktest; then
	result ok "rmmod gift_ktest"
else
	result fail "rmmod gift_ktest"
fi
exit $((failed > 0))
