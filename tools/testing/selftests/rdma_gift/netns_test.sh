#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Network namespaces: devices created on netdevs inside namespaces serve
# RoCEv2 there, in both of ib_core's netns modes. Two namespaces are
# joined by veth pairs to the VM's own (init_net): gift_ns1 holds veth
# vB1 (10.77.0.2, fd77::2) whose peer vA1 (10.77.0.1, fd77::1) stays in
# init_net; gift_ns2 holds vB2 with the same addresses as vB1 (its peer
# vA2 has none), and its device is created first, so a receive path that
# looks a GID up in every namespace finds the wrong device.
#
#   shared mode (ib_core's default: every device visible everywhere)
#     devices inside namespaces, RC pingpong over IPv4 and IPv6 (data
#     checked) and rping (rdma_cm) between init_net and gift_ns1, the
#     namespace's UDP port released with its last device and refused
#     (EADDRINUSE) when taken, devices gone with their namespace;
#   exclusive mode ("rdma system set netns exclusive")
#     a device belongs to one namespace: a device created inside a
#     namespace is moved there (kernels that create it there directly
#     need no move), it is visible only there, RC traffic across, and
#     "rdma dev set ... netns" moves it away and back while a process
#     holds objects on it (their context is disassociated);
#     then the mode is set back to shared.
# Each step is one TAP test. Needs the gift driver (rdma_gift's sockets
# are per namespace).
set -u

driver=${GIFT_DRIVER:-gift}
limit=$((120 * ${GIFT_SLOW:-1}))
slow=${GIFT_SLOW:-1}
n=0
failed=0
ns1=gift_ns1
ns2=gift_ns2
root=gift_root

result() {
	n=$((n + 1))
	if [ "$1" = ok ]; then
		echo "ok $n $2"
	else
		failed=$((failed + 1))
		echo "not ok $n $2${3:+ ($3)}"
	fi
}

# inns NS CMD...: CMD in namespace NS ("" for init_net).
inns() {
	local ns=$1

	shift
	if [ -n "$ns" ]; then
		ip netns exec "$ns" "$@"
	else
		"$@"
	fi
}

# bg_in NS CMD...: CMD in the background in NS; bgpid is its PID (ip
# netns exec execs CMD, so the PID is CMD's, which a kill must reach: a
# process left in a namespace keeps it alive).
bgpid=
bg_in() {
	local ns=$1

	shift
	if [ -n "$ns" ]; then
		ip netns exec "$ns" "$@" &
	else
		"$@" &
	fi
	bgpid=$!
}

# has_dev NS NAME: NAME is among the RDMA devices NS sees.
has_dev() {
	inns "$1" rdma dev show 2>/dev/null | grep -Eq "^[0-9]+: $2:"
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
	local i end=$(($1 * slow * 5))

	shift
	for ((i = 0; i < end; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# gid_index NS DEV ADDR: index of DEV's RoCEv2 GID holding ADDR, an IPv4
# or a full IPv6 address as sysfs prints it.
gid_index() {
	local g=/sys/class/infiniband/$2/ports/1 want=$3 i b

	case $want in
	*.*)
		IFS=. read -ra b <<<"$want"
		want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' \
			"${b[@]}")
		;;
	esac
	for i in $(seq 0 15); do
		[ "$(inns "$1" cat "$g/gids/$i" 2>/dev/null)" = "$want" ] &&
		[ "$(inns "$1" cat "$g/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ] &&
		{ echo "$i"; return 0; }
	done
	return 1
}

# shellcheck disable=SC2317 # called through wait_for
devs_gone() {
	local d

	for d in "$@"; do
		rdma link show 2>/dev/null | grep -q " $d/" && return 1
	done
	return 0
}

# Namespace NS with veth VB inside, peer VA in init_net; ADDR given to VB
# (and its IPv6 twin), VA gets .1 when PEER_ADDR is set.
make_ns() {
	local ns=$1 va=$2 vb=$3 peer=$4

	ip netns add "$ns" &&
	ip link add "$va" type veth peer name "$vb" &&
	ip link set "$vb" netns "$ns" &&
	ip -n "$ns" link set lo up &&
	ip -n "$ns" addr add 10.77.0.2/24 dev "$vb" &&
	ip -n "$ns" addr add fd77::2/64 dev "$vb" nodad &&
	ip -n "$ns" link set "$vb" up &&
	{ [ -z "$peer" ] || {
		ip addr add 10.77.0.1/24 dev "$va" &&
		ip addr add fd77::1/64 dev "$va" nodad
	}; } &&
	ip link set "$va" up
}

cleanup() {
	rdma link delete nsA1 2>/dev/null
	ip netns del $ns1 2>/dev/null
	ip netns del $ns2 2>/dev/null
	ip link del vA1 2>/dev/null
	ip link del vA2 2>/dev/null
	wait_for 30 devs_gone nsA1 nsB1 nsB2
}

# listening NS PORT PID: the TCP port is open in NS or PID is gone.
listening() {
	wait_for 30 eval "[ -n \"\$(inns '$1' ss -Hltn 'sport = :$2')\" ] ||
		! kill -0 $3 2>/dev/null"
}

# run_pair DESC PATTERN SERVER-NS READY SERVER-CMD... -- CLIENT-CMD...:
# the server in SERVER-NS in the background, then, once the shell
# condition READY holds (PID is the server's), the client in init_net;
# both must exit 0 and the client's output match PATTERN.
run_pair() {
	local desc=$1 pattern=$2 sns=$3 ready=$4 sout cout spid cst sst
	local -a srv=()

	shift 4
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		srv+=("$1")
		shift
	done
	shift
	sout=$(mktemp) cout=$(mktemp)
	bg_in "$sns" timeout $limit "${srv[@]}" >"$sout" 2>&1
	spid=$bgpid
	wait_for 30 eval "${ready//PID/$spid} || ! kill -0 $spid 2>/dev/null"
	timeout $limit "$@" >"$cout" 2>&1
	cst=$?
	wait $spid
	sst=$?
	if [ $cst -eq 0 ] && [ $sst -eq 0 ] && grep -Eq "$pattern" "$cout"; then
		result ok "$desc"
	else
		result fail "$desc" "client $cst, server $sst"
		sed 's/^/# client: /' "$cout" | tail -n 8
		sed 's/^/# server: /' "$sout" | tail -n 8
	fi
	rm -f "$sout" "$cout"
}

# pingpong DESC SERVER-NS SERVER-DEV SERVER-GID CLIENT-DEV CLIENT-GID ADDR
# ibv_rc_pingpong with data check (-c) from init_net to SERVER-NS; ADDR
# is the server's address for the out-of-band TCP exchange (IPv4: the
# server listens on the first address getaddrinfo() offers), the GIDs
# say what RoCE runs over.
port=18900
pingpong() {
	port=$((port + 1))
	run_pair "$1" "409600 bytes in" "$2" \
		"[ -n \"\$(inns '$2' ss -Hltn 'sport = :$port')\" ]" \
		ibv_rc_pingpong -d "$3" -g "$4" -c -s 4096 -n 50 -p $port -- \
		ibv_rc_pingpong -d "$5" -g "$6" -c -s 4096 -n 50 -p $port "$7"
}

# rping_ns DESC: rping -V between init_net and gift_ns1; rdma_listen()
# shows LISTEN before ib_cm listens: a second more.
rping_ns() {
	run_pair "$1" 'ping data: rdma-ping-4: ' $ns1 \
		"inns $ns1 rdma resource show cm_id 2>/dev/null |
		 grep -q 'state LISTEN .*:18999 ' && sleep 1" \
		rping -s -a 10.77.0.2 -p 18999 -C 5 -V -- \
		rping -c -a 10.77.0.2 -p 18999 -C 5 -V -v
}

# traffic MODE: the pingpongs and rping between nsA1 and nsB1.
traffic() {
	local a4 b4 a6 b6

	a4=$(gid_index "" nsA1 10.77.0.1)
	b4=$(gid_index $ns1 nsB1 10.77.0.2)
	a6=$(gid_index "" nsA1 fd77:0000:0000:0000:0000:0000:0000:0001)
	b6=$(gid_index $ns1 nsB1 fd77:0000:0000:0000:0000:0000:0000:0002)
	if [ -z "$a4" ] || [ -z "$b4" ] || [ -z "$a6" ] || [ -z "$b6" ]; then
		result fail "$1: GIDs of the veth addresses" \
			"indexes '$a4' '$b4' '$a6' '$b6'"
		return
	fi
	result ok "$1: GIDs of the veth addresses"
	pingpong "$1: ibv_rc_pingpong -c init_net -> $ns1 over IPv4" \
		$ns1 nsB1 "$b4" nsA1 "$a4" 10.77.0.2
	pingpong "$1: ibv_rc_pingpong -c init_net -> $ns1 over IPv6" \
		$ns1 nsB1 "$b6" nsA1 "$a6" 10.77.0.2
	rping_ns "$1: rping -V init_net -> $ns1 (rdma_cm)"
}

echo "TAP version 13"

if [ "$driver" != gift ]; then
	echo "# netns_test.sh needs the gift driver, not $driver"
fi
# A name for init_net, for "rdma dev set ... netns".
ip netns attach $root 1

# --- shared mode ---
mode=$(rdma system show 2>/dev/null)
if grep -q "netns shared" <<<"$mode"; then
	result ok "shared: ib_core starts in shared mode"
else
	result fail "shared: ib_core starts in shared mode" "$mode"
fi

if make_ns $ns2 vA2 vB2 "" && make_ns $ns1 vA1 vB1 peer &&
   inns $ns2 rdma link add nsB2 type "$driver" netdev vB2 &&
   inns $ns1 rdma link add nsB1 type "$driver" netdev vB1 &&
   rdma link add nsA1 type "$driver" netdev vA1; then
	result ok "shared: rdma link add inside two namespaces and in init_net"
else
	result fail "shared: rdma link add inside two namespaces and in init_net"
fi

if has_dev "" nsB1 && has_dev $ns1 nsB1 && has_dev $ns1 nsA1 &&
   has_dev $ns2 nsB1; then
	result ok "shared: every namespace sees every device"
else
	result fail "shared: every namespace sees every device"
fi

# nsB2 in gift_ns2 has the same addresses as nsB1 and was created first.
traffic shared

if [ -n "$(inns $ns2 ss -Hlun 'sport = :4791')" ]; then
	result ok "shared: $ns2 has a RoCEv2 socket while it has a device"
else
	result fail "shared: $ns2 has a RoCEv2 socket while it has a device"
fi
if inns $ns2 rdma link delete nsB2 &&
   wait_for 10 eval "[ -z \"\$(inns $ns2 ss -Hlun 'sport = :4791')\" ]"; then
	result ok "shared: the socket goes with $ns2's last device"
else
	result fail "shared: the socket goes with $ns2's last device" \
		"$(inns $ns2 ss -Hlun 'sport = :4791')"
fi

# Someone else holds the port in gift_ns2: a device there is refused.
bg_in $ns2 python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 4791))
time.sleep(600)'
holder=$bgpid
wait_for 10 eval "[ -n \"\$(inns $ns2 ss -Hlun 'sport = :4791')\" ]"
out=$(inns $ns2 rdma link add nsB2 type "$driver" netdev vB2 2>&1)
st=$?
kill $holder 2>/dev/null
wait $holder 2>/dev/null
if [ $st -ne 0 ] && grep -qi "address already in use" <<<"$out" &&
   ! has_dev "" nsB2; then
	result ok "shared: rdma link add with UDP 4791 taken: EADDRINUSE"
else
	result fail "shared: rdma link add with UDP 4791 taken: EADDRINUSE" \
		"exit $st: $out"
fi

ip netns del $ns2
ip netns del $ns1
# vB1 died with gift_ns1, and vA1 with it: all three devices go.
if wait_for 30 devs_gone nsA1 nsB1 nsB2; then
	result ok "shared: devices go with their namespace"
else
	result fail "shared: devices go with their namespace" \
		"$(rdma link show)"
fi

# --- exclusive mode ---
# ib_core refuses to switch while namespaces other than init_net exist,
# and a deleted namespace is destroyed asynchronously: retry.
if wait_for 30 rdma system set netns exclusive 2>/dev/null &&
   rdma system show | grep -q "netns exclusive"; then
	result ok "exclusive: rdma system set netns exclusive"
else
	result fail "exclusive: rdma system set netns exclusive" \
		"$(rdma system show 2>&1)"
fi

make_ns $ns1 vA1 vB1 peer
rdma link add nsA1 type "$driver" netdev vA1
inns $ns1 rdma link add nsB1 type "$driver" netdev vB1
# Kernels with ib_alloc_device_with_net() create it in gift_ns1.
if has_dev $ns1 nsB1; then
	echo "# nsB1 was created in $ns1"
else
	echo "# nsB1 was created in init_net, moved to $ns1"
	rdma dev set nsB1 netns $ns1
fi
if has_dev $ns1 nsB1 && ! has_dev "" nsB1 && ! has_dev $ns1 nsA1 &&
   has_dev "" nsA1; then
	result ok "exclusive: a device is visible in its namespace only"
else
	result fail "exclusive: a device is visible in its namespace only" \
		"init_net: $(rdma dev show | tr '\n' ' ') $ns1: $(inns $ns1 rdma dev show | tr '\n' ' ')"
fi

if inns $ns1 ibv_devices | grep -qw nsB1 &&
   ! inns $ns1 ibv_devices | grep -qw nsA1; then
	result ok "exclusive: ibv_devices in $ns1 lists nsB1 only"
else
	result fail "exclusive: ibv_devices in $ns1 lists nsB1 only" \
		"$(inns $ns1 ibv_devices | tr '\n' ' ')"
fi

traffic exclusive

# A process holding a PD, MR, CQs and a QP on nsB1 (a pingpong server
# waiting for its peer) while the device moves out and back: its context
# is disassociated, it exits when killed, and the device works after.
bg_in $ns1 ibv_rc_pingpong -d nsB1 -p 18950 >/dev/null 2>&1
holder=$bgpid
listening $ns1 18950 $holder
if inns $ns1 rdma dev set nsB1 netns $root && has_dev "" nsB1 &&
   ! has_dev $ns1 nsB1 && rdma dev set nsB1 netns $ns1 &&
   has_dev $ns1 nsB1; then
	result ok "exclusive: rdma dev set netns, out and back, with a user on it"
else
	result fail "exclusive: rdma dev set netns, out and back, with a user on it"
fi
kill $holder 2>/dev/null
if wait_for 30 eval "! kill -0 $holder 2>/dev/null"; then
	result ok "exclusive: the disassociated process exits"
else
	result fail "exclusive: the disassociated process exits"
	kill -9 $holder 2>/dev/null
fi
wait $holder 2>/dev/null

pingpong "exclusive: ibv_rc_pingpong -c after the moves" \
	$ns1 nsB1 "$(gid_index $ns1 nsB1 10.77.0.2)" \
	nsA1 "$(gid_index "" nsA1 10.77.0.1)" 10.77.0.2

# The namespace dies with nsB1 in it: ib_core moves the device back to
# init_net, and its netdev's end takes it down.
ip netns del $ns1
if wait_for 30 devs_gone nsA1 nsB1; then
	result ok "exclusive: devices go with their namespace"
else
	result fail "exclusive: devices go with their namespace" \
		"$(rdma link show)"
fi

ip netns del $root
if wait_for 30 rdma system set netns shared 2>/dev/null &&
   rdma system show | grep -q "netns shared"; then
	result ok "rdma system set netns shared again"
else
	result fail "rdma system set netns shared again" \
		"$(rdma system show 2>&1)"
fi
cleanup
echo "1..$n"
exit $((failed > 0))
