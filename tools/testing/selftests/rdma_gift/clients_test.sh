#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Real RDMA clients on the runner's device, server and client in the VM
# talking over RoCEv2 to the device's own IPv4 GID: ibv_rc_pingpong (with
# and without CQ events, and with -g), ibv_uc_pingpong (UC: small and
# multi-packet messages, data checked), ibv_ud_pingpong (also over the
# IPv6 link-local GID) and the perftest RC benchmarks, the
# bandwidth ones also over on-demand-paging MRs (--odp). Each is one TAP
# test that passes when both sides exit 0 and the client reports its
# result line; a hang is a failure (timeout). An --odp run must also
# report a non-zero average bandwidth and, where the device has the
# odp_* hardware counters, make the device fault pages in.
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

# Index of the first RoCEv2 GID holding an IPv6 address (link-local).
gid_index_v6() {
	local g=/sys/class/infiniband/$dev/ports/1 i gid
	for i in $(seq 0 15); do
		gid=$(cat "$g/gids/$i" 2>/dev/null) || continue
		case $gid in
		0000:0000:0000:0000:0000:ffff:* | 0000:0000:0000:0000:0000:0000:0000:0000) continue ;;
		esac
		[ "$(cat "$g/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ] &&
		{ echo "$i"; return 0; }
	done
	return 1
}

# pair DESCRIPTION PATTERN SERVER-COMMAND...: runs the server in the
# background and the same command with the server's address as the
# client; both must exit 0 and the client's output must match PATTERN.
# listening PORT PID: waits until the server PID listens on TCP PORT (its
# out-of-band exchange), or exited, or 30 s (times GIFT_SLOW) passed: a
# fixed sleep loses the race on a loaded host.
listening() {
	local i

	if ! command -v ss >/dev/null; then
		sleep 1
		return
	fi
	for ((i = 0; i < 150 * ${GIFT_SLOW:-1}; i++)); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return
		kill -0 "$2" 2>/dev/null || return
		sleep 0.2
	done
}

# pair_check, when set, names a function that must also succeed; it may
# set pair_why to say why it did not.
port=18600
pair_check=
pair_why=
pair() {
	local desc=$1 pattern=$2 sout cout spid cst sst
	shift 2
	n=$((n + 1))
	port=$((port + 1))
	sout=$(mktemp) cout=$(mktemp)
	timeout $limit "$@" -p $port >"$sout" 2>&1 &
	spid=$!
	listening $port $spid
	timeout $limit "$@" -p $port "$ip" >"$cout" 2>&1
	cst=$?
	wait $spid
	sst=$?
	if [ $cst -eq 0 ] && [ $sst -eq 0 ] && grep -Eq "$pattern" "$cout" &&
	   { [ -z "$pair_check" ] || $pair_check; }; then
		echo "ok $n $desc"
	else
		failed=$((failed + 1))
		echo "not ok $n $desc (client $cst, server $sst${pair_why:+, $pair_why})"
		sed 's/^/# client: /' "$cout" | tail -n 15
		sed 's/^/# server: /' "$sout" | tail -n 15
	fi
	rm -f "$sout" "$cout"
	pair_why=
}

# The device's odp_pages_faulted counter, or nothing when it has none.
odp_counter=/sys/class/infiniband/$dev/ports/1/hw_counters/odp_pages_faulted
odp_faulted() {
	[ -r "$odp_counter" ] && cat "$odp_counter"
}

odp_before=
# Whose report to show: the client's, or (SEND, where the receiver
# measures the transfer) the server's.
odp_report=cout
# An --odp run passes on both sides' exit status 0 (every iteration
# completed successfully; the client's result line is checked by pair())
# and on pages faulted meanwhile. perftest's bandwidth figure is shown,
# not checked: it divides by a CPU frequency it measures with the TSC
# against gettimeofday(), which under TCG sometimes fails (0 MHz: both
# sides of a complete ib_send_bw --odp reported 0.00 MB/s in the CI of
# 2026-12-01 23:53, both pinned to one vCPU).
# shellcheck disable=SC2317 # called through pair_check
odp_check() {
	local now out=$cout bw_avg

	[ "$odp_report" = sout ] && out=$sout
	bw_avg=$(grep -E "$bw" "$out" | tail -n1 | awk '{ print $4 }')
	[ -z "$odp_before" ] && return 0
	now=$(odp_faulted)
	if [ "${now:-0}" -gt "$odp_before" ]; then
		echo "# ${bw_avg:-no} MB/s average (perftest's clock)," \
			"$((now - odp_before)) pages faulted"
		return 0
	fi
	pair_why="odp_pages_faulted $odp_before -> ${now:-?}"
	return 1
}

# odp_pair DESCRIPTION PATTERN COMMAND...: pair with --odp (perftest
# registers its buffers with IBV_ACCESS_ON_DEMAND), checking that the
# device faulted pages in meanwhile.
odp_pair() {
	local desc=$1 pattern=$2

	shift 2
	odp_before=$(odp_faulted)
	pair_check=odp_check
	# perftest times with the TSC: both sides on one vCPU, as TCG's
	# vCPUs' TSCs disagree (its figures still fail now and then: odp_check).
	pair "$desc" "$pattern" taskset -c 0 "$@" --odp
	pair_check=
}

echo "TAP version 13"
echo "1..16"
if ! gidx=$(gid_index); then
	echo "Bail out! no RoCEv2 IPv4 GID for $ip on $dev"
	exit 1
fi
gidx6=$(gid_index_v6)

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
pair "ibv_uc_pingpong" "$pp" ibv_uc_pingpong -d "$dev" -g "$gidx" -n 200 -c
pair "ibv_uc_pingpong 64 KiB messages, MTU 4096" "$pp" \
	ibv_uc_pingpong -d "$dev" -g "$gidx" -n 50 -s 65536 -m 4096 -c
pair "ibv_ud_pingpong" "$pp" ibv_ud_pingpong -d "$dev" -g "$gidx" -n 200
pair "ibv_ud_pingpong over the IPv6 GID" "$pp" \
	ibv_ud_pingpong -d "$dev" -g "${gidx6:-0}" -n 50
pair "ib_write_bw" "$bw" ib_write_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_read_bw" "$bw" ib_read_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_send_bw" "$bw" ib_send_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
pair "ib_atomic_bw" "$bw" ib_atomic_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
odp_pair "ib_write_bw --odp" "$bw" \
	ib_write_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
odp_pair "ib_read_bw --odp" "$bw" \
	ib_read_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
# The receiver measures a SEND transfer: show its report.
odp_report=sout
odp_pair "ib_send_bw --odp" "$bw" \
	ib_send_bw -d "$dev" -x "$gidx" -F -n 200 -u $qpto
odp_report=cout
pair "ib_write_lat" "$lat" ib_write_lat -d "$dev" -x "$gidx" -F -n 200 -u $qpto -C
pair "ib_send_lat" "$lat" ib_send_lat -d "$dev" -x "$gidx" -F -n 200 -u $qpto -C
exit $((failed > 0))
