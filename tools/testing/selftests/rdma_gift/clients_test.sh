#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Real RDMA clients on the runner's device, server and client in the VM
# talking over RoCEv2 to the device's own IPv4 GID: ibv_rc_pingpong (with
# and without CQ events, and with -g) and the perftest RC benchmarks. Each
# is one TAP test that passes when both sides exit 0 and the client
# reports its result line; a hang is a failure (timeout).
set -u

dev=${GIFT_IBDEV:?}
ip=${GIFT_IP:?}
# Each client gets this long; TCG makes the VM ~20x slower than hardware,
# and a debug kernel GIFT_SLOW times slower again (gift_util.h).
limit=$((120 * ${GIFT_SLOW:-1}))
# perftest's QP ACK timeout (-u; 4.096 us << n), stretched alike
# (gift_slow_qp_timeout()): 14 (67 ms, perftest's default) plus one per
# doubling of GIFT_SLOW, plus one when slow.
qpto=14
((${GIFT_SLOW:-1} > 1)) && qpto=15
for ((s = ${GIFT_SLOW:-1}; s > 1 && qpto < 31; s = (s + 1) / 2)); do
	qpto=$((qpto + 1))
done
n=0
failed=0

# Index of the RoCEv2 GID holding the device's IPv4 address.
gid_index() {
	local g=/sys/class/infiniband/$dev/ports/1 i want
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' \
		$(tr . ' ' <<<"$ip"))
	for i in $(seq 0 15); do
		[ "$(cat "$g/gids/$i" 2>/dev/null)" = "$want" ] &&
		[ "$(cat "$g/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ] &&
		{ echo "$i"; return 0; }
	done
	return 1
}

# pair DESCRIPTION PATTERN SERVER-COMMAND...: runs the server in the
# background and the same command with the server's address as the
# client; both must exit 0 and the client's output must match PATTERN.
port=18600
pair() {
	local desc=$1 pattern=$2 sout cout spid cst sst
	shift 2
	n=$((n + 1))
	port=$((port + 1))
	sout=$(mktemp) cout=$(mktemp)
	timeout $limit "$@" -p $port >"$sout" 2>&1 &
	spid=$!
	sleep 1
	timeout $limit "$@" -p $port "$ip" >"$cout" 2>&1
	cst=$?
	wait $spid
	sst=$?
	if [ $cst -eq 0 ] && [ $sst -eq 0 ] && grep -Eq "$pattern" "$cout"; then
		echo "ok $n $desc"
	else
		failed=$((failed + 1))
		echo "not ok $n $desc (client $cst, server $sst)"
		sed 's/^/# client: /' "$cout" | tail -n 15
		sed 's/^/# server: /' "$sout" | tail -n 15
	fi
	rm -f "$sout" "$cout"
}

echo "TAP version 13"
echo "1..9"
if ! gidx=$(gid_index); then
	echo "Bail out! no RoCEv2 IPv4 GID for $ip on $dev"
	exit 1
fi

# The latency tests report CPU cycles (-C): the debug kernel has no TSC
# frequency under TCG without ACPI ("cpu MHz: 0.000"), so perftest's
# microseconds would be "inf" there.
pp='bytes in .* seconds'
bw='^ *[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+'
lat='^ *[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+'
pair "ibv_rc_pingpong" "$pp" ibv_rc_pingpong -d "$dev" -g "$gidx" -n 200
pair "ibv_rc_pingpong -e (CQ events)" "$pp" \
	ibv_rc_pingpong -d "$dev" -g "$gidx" -n 200 -e
pair "ibv_rc_pingpong 64 KiB messages, MTU 4096" "$pp" \
	ibv_rc_pingpong -d "$dev" -g "$gidx" -n 50 -s 65536 -m 4096
pair "ib_write_bw" "$bw" ib_write_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_read_bw" "$bw" ib_read_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_send_bw" "$bw" ib_send_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_atomic_bw" "$bw" ib_atomic_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_write_lat" "$lat" ib_write_lat -d "$dev" -x "$gidx" -F -n 200 -u $qpto -C
pair "ib_send_lat" "$lat" ib_send_lat -d "$dev" -x "$gidx" -F -n 200 -u $qpto -C
exit $((failed > 0))
