#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the interop tests: runs in both guests of one
# tools/testing/vm/run-pair boot (--sync none), which steps through RC
# exchanges between the two devices in both directions: first the
# run-pair server guest serves (is the responder, perftest's server)
# and the client guest requests, then the other way round. Each exchange:
#   ibv_rc_pingpong -c (4 KiB, data checked), ib_write_bw, ib_read_bw,
#   ib_send_bw, ib_atomic_bw, ib_send_lat (perftest, no rdma_cm, perftest's
#   defaults: 64 KiB, as many READs and atomics outstanding as the
#   devices allow, 128 with rxe), ibv_uc_pingpong -c (UC, 4 KiB, data
#   checked) and rc_xfer: 1 MiB messages of every RC
#   opcode, every byte checked on the receiving side; then (quick set
#   too) ibv_ud_pingpong (UD, 512 B) and over rdma_cm (ib_cm's MADs on
#   both GSI QPs): rping -V, ib_send_lat -R and ib_read_bw -R (4 KiB,
#   16 outstanding); and mckey, UD multicast through rdma_cm, with the
#   serving guest receiving.
# INTEROP_QUICK=1 (make check's budget): ibv_rc_pingpong -c, ib_write_bw,
#   ib_read_bw with 2 KiB messages and 32 READs outstanding (a depth
#   the old limit of 16 refused; 64 KiB ones 128 deep overflow the link,
#   see Documentation/interop.rst), ib_atomic_bw (128 deep), 100
#   iterations each, rc_xfer and mckey.
# INTEROP_ONLY_MCKEY=1: only the two mckey steps.
# With INTEROP_LOSSY=1, rc_xfer runs again in both directions with netem
# on both guests' NICs (1% loss, 1% duplication, 5 ms delay with 25%
# reordering), with 256 KiB messages and 300 s per step: every loss
# costs a NAK round trip or a retransmission timeout. INTEROP_CAPTURE=1 (the run-pair server guest) captures the
# first rc_xfer exchange with tcpdump and checks that it decodes as RoCE:
# UDP port 4791, the BTH opcodes of RDMA WRITE and READ requests and
# responses seen (the BTH is the first UDP payload byte).
#
# A step passes when both sides exit 0 and the client's output has its
# result line. The run-pair client guest prints one TAP line per step and
# writes "PASS FAIL" to $GIFT_OUT/totals; the server guest prints its
# sides' outputs only. Both exit 0 once done, so that run-pair's status
# speaks for the guests' health checks.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../../vm/pair_lib.sh
. "$here/../../../vm/pair_lib.sh"
dev=${GIFT_IBDEV:?}
ip=${GIFT_IP:?}
peer=${GIFT_PEER_IP:?}
limit=$((120 * ${GIFT_SLOW:-1}))
n=0
pass=0
fail=0
port=18700

gid_index() {
	local g=/sys/class/infiniband/$dev/ports/1 i want b
	IFS=. read -ra b <<<"$ip"
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' "${b[@]}")
	for i in $(seq 0 15); do
		[[ $(cat "$g/gids/$i" 2>/dev/null) == "$want" &&
			$(cat "$g/gid_attrs/types/$i" 2>/dev/null) == "RoCE v2" ]] &&
			{ echo "$i"; return 0; }
	done
	return 1
}

# cm_listening PID PORT: waits until an rdma_cm ID listens on PORT
# (rdma_cm servers have no TCP socket; the previous step's may still be
# listed on its own port), or PID exited, or 60 s passed; then a second
# more: rdma_listen() shows LISTEN before ib_cm listens on the device.
cm_listening() {
	local i
	for ((i = 0; i < 300; i++)); do
		rdma resource show cm_id 2>/dev/null |
			grep -q "state LISTEN .*src-addr [^ ]*:$2 " && break
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.2
	done
	sleep 1
}

# step_end STATUS OUT MINE DESC [SHOW]: ends step $n in this guest: its
# status for the other guest, both guests done, OUT (and SHOW MINE, a
# function printing more) shown when the step failed or INTEROP_VERBOSE
# is set; the client guest prints the step's TAP line and counts it.
step_end() {
	local st=$1 out=$2 mine=$3 desc=$4 show=${5-} theirs
	echo "$st" >"$GIFT_OUT/$GIFT_ROLE.st.$n"
	pair_mark "done.$n"
	pair_wait "done.$n" || true
	if ((st != 0)) || [[ -n ${INTEROP_VERBOSE-} ]]; then
		sed "s/^/# $mine: /" "$out" | tail -n 20
		[[ -z $show ]] || "$show" "$mine"
	fi
	rm -f "$out"
	[[ $GIFT_ROLE == client ]] || return 0
	theirs=$(cat "$GIFT_OUT/server.st.$n" 2>/dev/null || echo "missing")
	if [[ $st == 0 && $theirs == 0 ]]; then
		echo "ok $n $desc"
		pass=$((pass + 1))
	else
		echo "not ok $n $desc (this guest $st, the other $theirs)"
		fail=$((fail + 1))
	fi
}

# step SERVING-ROLE NAME PATTERN CMD...: the guest whose GIFT_ROLE is
# SERVING-ROLE runs CMD -p PORT, the other CMD -p PORT PEER-IP once it
# listens; GIDX in CMD is replaced by the guest's own GID index. Each
# side gets $limit seconds.
# step SERVING-ROLE NAME PATTERN SERVER-CMD... -- CLIENT-CMD...: the same
# with a command line per side, in which PORT and PEER are replaced and
# nothing is appended. With cm=1 the server is an rdma_cm server.
#
# perftest's rdma_cm mode (-R) connects twice on one port: a control
# connection, then the data connections, for which its server destroys
# its listening ID and creates a new one. A client quick enough to send
# its second REQ in between is rejected by the server's ib_cm with
# reason 8, "invalid service ID" (seen with gift and with rxe serving,
# 2026-12-01 and 2026-12-02 CI), and Debian's perftest 4.5-0.17 then
# crashes in its retry loop (fixed upstream by perftest 3d9d8d0,
# "Fix crashes and logical flaws in RDMA CM connection retry"). On that
# rejection, and on nothing else, the step is run again on a new port,
# up to 3 times in all, and the client guest says so.
cm=
step() {
	local serving=$1 name=$2 pattern=$3 try
	shift 3
	n=$((n + 1))
	for try in 1 2 3; do
		port=$((port + 1))
		step_try "$serving" "$pattern" "$try" "$@" && break
		[[ $GIFT_ROLE == client ]] &&
			echo "# step $n, try $try: perftest's data connection was rejected (no listener yet); again on port $((port + 1))"
	done
	if [[ $GIFT_ROLE == "$serving" ]]; then
		step_end "$st_try" "$out_try" responder \
			"$name, $GIFT_DRIVER serves $GIFT_PEER_DRIVER" ${cm:+cm_diag}
	else
		step_end "$st_try" "$out_try" requester \
			"$name, $GIFT_PEER_DRIVER serves $GIFT_DRIVER" ${cm:+cm_diag}
	fi
}

# step_try SERVING-ROLE PATTERN TRY CMD...: one run of step $n on $port;
# leaves the status in st_try and the output in out_try. Returns 1 when
# both guests agree to run it again: the requesting guest saw perftest's
# re-listen race (above) on try 1 or 2.
step_try() {
	local serving=$1 pattern=$2 try=$3 st=0 pid a split=''
	local cmd=() scmd=() ccmd=() tag="$n.$3"
	shift 3
	for a; do
		a=${a//GIDX/$gidx}
		a=${a//PORT/$port}
		a=${a//PEER/$peer}
		if [[ $a == -- ]]; then
			split=1
		elif [[ -n $split ]]; then
			ccmd+=("$a")
		else
			scmd+=("$a")
		fi
	done
	out_try=$(mktemp)
	if [[ $GIFT_ROLE == "$serving" ]]; then
		cmd=("${scmd[@]}")
		[[ -n $split ]] || cmd+=(-p "$port")
		timeout "$limit" "${cmd[@]}" >"$out_try" 2>&1 &
		pid=$!
		if [[ -n $cm ]]; then
			cm_listening "$pid" "$port"
		else
			pair_listening "$pid"
		fi
		pair_mark "ready.$tag"
		while kill -0 "$pid" 2>/dev/null; do
			[[ -e $GIFT_OUT/$GIFT_PEER_ROLE.again.$tag ]] &&
				kill "$pid" 2>/dev/null
			sleep 0.2
		done
		wait "$pid" || st=$?
		pair_wait "tried.$tag" || true
		st_try=$st
		if [[ -e $GIFT_OUT/$GIFT_PEER_ROLE.again.$tag ]]; then
			rm -f "$out_try"
			return 1
		fi
		return 0
	fi
	if pair_wait "ready.$tag"; then
		if [[ -n $split ]]; then
			cmd=("${ccmd[@]}")
		else
			cmd=("${scmd[@]}" -p "$port" "$peer")
		fi
		timeout "$limit" "${cmd[@]}" >"$out_try" 2>&1 || st=$?
		if ((st == 0)) && ! grep -Eq "$pattern" "$out_try"; then
			echo "# no result line matching '$pattern'"
			st=1
		fi
	else
		st=1
	fi
	st_try=$st
	if ((st != 0 && try < 3)) && [[ -n $cm ]] &&
		grep -q 'RDMA_CM_EVENT_REJECTED; error: 8\.' "$out_try"; then
		pair_mark "again.$tag"
		pair_mark "tried.$tag"
		sed "s/^/# requester, try $try: /" "$out_try" | tail -n 4
		rm -f "$out_try"
		return 1
	fi
	pair_mark "tried.$tag"
	return 0
}

# cm_diag MINE: after a failed rdma_cm step, what is left of its CM IDs
# and the device's packet counters, for the next flake's post-mortem
# (2026-12-01 CI: a gift requester got REJ "invalid service ID" from an
# rxe responder that kept listening until its timeout).
cm_diag() {
	local mine=$1 c
	rdma resource show cm_id 2>&1 | sed "s/^/# $mine cm_id: /"
	for c in /sys/class/infiniband/"$dev"/ports/1/hw_counters/*; do
		[[ $(cat "$c" 2>/dev/null) == 0 ]] ||
			echo "# $mine ${c##*/} $(cat "$c" 2>/dev/null)"
	done
	dmesg | tail -n 5 | sed "s/^/# $mine dmesg: /"
}

# With INTEROP_DIAG=1: counters, NIC and group state (step_end's SHOW).
mckey_diag() {
	local mine=$1 c
	[[ -n ${INTEROP_DIAG-} ]] || return 0
	for c in sent_pkts rcvd_pkts dropped_pkts; do
		echo "# $mine $c $(cat "/sys/class/infiniband/$dev/ports/1/hw_counters/$c" 2>/dev/null)"
	done
	ip -s link show "$GIFT_NETDEV" | sed "s/^/# $mine: /"
	ip maddr show dev "$GIFT_NETDEV" | sed "s/^/# $mine: /"
	nstat -az 2>/dev/null | grep -E "^Ip|^Udp[A-Z]" | grep -v " 0 " | sed "s/^/# $mine: /"
}

# mckey_step RECEIVING-ROLE GROUP: UD multicast through rdma_cm. The
# guest whose GIFT_ROLE is RECEIVING-ROLE runs an mckey receiver, which
# joins GROUP (rdma_cm, its QP attached by librdmacm) and waits for its
# datagrams; once it receives, the other guest joins and sends 10. The
# receiver passes when it got them all (mckey counts completions), the
# sender when it exits 0. From an rxe sender the receiver waits for one
# only: mckey's sender destroys its QP right after posting, and rxe,
# which sends from a work item, had sent one of them by then in our runs;
# gift sends while posting.
# The quick set (make check) leaves out the steps with an rxe sender:
# once in the full set of 2026-12-01 the gift receiver got nothing from
# rxe0 and timed out (rxe sends after mckey destroyed its QP, or not).
# INTEROP_DIAG=1 prints the counters, NIC and group state after a step.
mckey_step() {
	local receiving=$1 group=$2 st=0 out pid i want=10
	local sender=$GIFT_DRIVER
	[[ $GIFT_ROLE == "$receiving" ]] && sender=$GIFT_PEER_DRIVER
	[[ -n ${INTEROP_QUICK-} && $sender == rxe ]] && return 0
	n=$((n + 1))
	out=$(mktemp)
	[[ $GIFT_PEER_DRIVER == rxe ]] && want=1
	if [[ $GIFT_ROLE == "$receiving" ]]; then
		timeout "$limit" stdbuf -oL mckey -m "$group" -b "$ip" \
			-C "$want" >"$out" 2>&1 &
		pid=$!
		for ((i = 0; i < 300; i++)); do
			grep -q '^receiving data transfers' "$out" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		[[ -n ${INTEROP_DIAG-} ]] && ip maddr show dev "$GIFT_NETDEV" | sed "s/^/# joined: /"
		pair_mark "ready.$n"
		wait "$pid" || st=$?
		((st == 0)) && ! grep -q '^data transfers complete' "$out" &&
			st=1
	elif pair_wait "ready.$n"; then
		timeout "$limit" stdbuf -oL mckey -m "$group" -b "$ip" -C 10 -s \
			>"$out" 2>&1 || st=$?
	else
		st=1
	fi
	if [[ $GIFT_ROLE == "$receiving" ]]; then
		step_end "$st" "$out" receiver \
			"mckey $group, $GIFT_PEER_DRIVER sends to $GIFT_DRIVER" \
			mckey_diag
	else
		step_end "$st" "$out" sender \
			"mckey $group, $GIFT_DRIVER sends to $GIFT_PEER_DRIVER" \
			mckey_diag
	fi
}

# The exchanges with the guest of role $1 serving.
exchanges() {
	local s=$1 pp='bytes in .* seconds'
	local bw='^ *[0-9]+ +[0-9]+ +[0-9.]+ +[0-9.]+' pt=(-F -n 200 -u 16)
	if [[ -n ${INTEROP_QUICK-} ]]; then
		pt=(-F -n 100 -u 16)
		step "$s" "ibv_rc_pingpong -c" "$pp" \
			ibv_rc_pingpong -d "$dev" -g GIDX -c -s 4096 -n 50
		step "$s" "ib_write_bw" "$bw" \
			ib_write_bw -d "$dev" -x GIDX "${pt[@]}"
		step "$s" "ib_read_bw 2 KiB, 32 outstanding" "$bw" \
			ib_read_bw -d "$dev" -x GIDX "${pt[@]}" -s 2048 -o 32
		step "$s" "ib_atomic_bw" "$bw" \
			ib_atomic_bw -d "$dev" -x GIDX "${pt[@]}"
	else
		step "$s" "ibv_rc_pingpong -c" "$pp" \
			ibv_rc_pingpong -d "$dev" -g GIDX -c -s 4096 -n 100
		step "$s" "ib_write_bw" "$bw" \
			ib_write_bw -d "$dev" -x GIDX "${pt[@]}"
		step "$s" "ib_read_bw" "$bw" \
			ib_read_bw -d "$dev" -x GIDX "${pt[@]}"
		step "$s" "ib_send_bw" "$bw" \
			ib_send_bw -d "$dev" -x GIDX "${pt[@]}"
		step "$s" "ib_atomic_bw" "$bw" \
			ib_atomic_bw -d "$dev" -x GIDX "${pt[@]}"
		step "$s" "ib_send_lat" "$bw" \
			ib_send_lat -d "$dev" -x GIDX "${pt[@]}" -C
		step "$s" "ibv_uc_pingpong -c" "$pp" \
			ibv_uc_pingpong -d "$dev" -g GIDX -c -s 4096 -n 100
	fi
	step "$s" "rc_xfer 1 MiB, every RC opcode" "0 failed of" \
		"$here/rc_xfer" -d "$dev" -n 1
	step "$s" "ibv_ud_pingpong" "$pp" \
		ibv_ud_pingpong -d "$dev" -g GIDX -s 512 -n 50
	cm=1
	step "$s" "rping -V (rdma_cm)" 'ping data: rdma-ping-4: ' \
		rping -s -a 0.0.0.0 -p PORT -C 5 -V -- \
		rping -c -a PEER -p PORT -C 5 -V -v
	step "$s" "ib_send_lat -R" "$bw" \
		ib_send_lat -d "$dev" -R "${pt[@]}" -C -p PORT -- \
		ib_send_lat -d "$dev" -R "${pt[@]}" -C -p PORT PEER
	step "$s" "ib_read_bw -R" "$bw" \
		ib_read_bw -d "$dev" -R "${pt[@]}" -s 4096 -o 16 -p PORT -- \
		ib_read_bw -d "$dev" -R "${pt[@]}" -s 4096 -o 16 -p PORT PEER
	cm=
	mckey_step "$s" "239.255.75.$((n + 1))"
}

# Captures the next rc_xfer exchange (run-pair server guest).
capture_start() {
	tcpdump -i "$GIFT_NETDEV" -U -w "$GIFT_OUT/roce.pcap" \
		udp port 4791 2>"$GIFT_OUT/tcpdump.err" &
	cap_pid=$!
	sleep 2
}

# The capture decodes as RoCEv2: tcpdump sees UDP to port 4791 whose
# first payload byte (the BTH opcode) is RDMA WRITE FIRST (0x06) and
# READ REQUEST (0x0c) / READ RESPONSE FIRST (0x0d) among others.
capture_check() {
	local txt ops
	sleep 1
	kill "$cap_pid" 2>/dev/null
	wait "$cap_pid" 2>/dev/null
	sed 's/^/# tcpdump: /' "$GIFT_OUT/tcpdump.err"
	txt=$(tcpdump -r "$GIFT_OUT/roce.pcap" -nv 2>/dev/null)
	ops=$(tcpdump -r "$GIFT_OUT/roce.pcap" -nx 2>/dev/null |
		awk '/0x0010:/ { print substr($0, index($0, ":") + 2) }' |
		awk '{ print substr($7, 1, 2) }' | sort -u | paste -sd ' ')
	echo "# capture: $(grep -c '4791' <<<"$txt") packets to/from port 4791; BTH opcodes: $ops"
	grep -m2 '4791' <<<"$txt" | sed 's/^/# /'
	grep -q '> [0-9.]*\.4791: UDP' <<<"$txt" &&
		grep -qw 06 <<<"$ops" && grep -qw 0c <<<"$ops" && grep -qw 0d <<<"$ops"
}

netem() {
	modprobe sch_netem &&
		tc qdisc add dev "$GIFT_NETDEV" root netem delay 5ms \
			reorder 25% loss 1% duplicate 1%
}

if ! gidx=$(gid_index); then
	echo "Bail out! no RoCEv2 IPv4 GID for $ip on $dev"
	pair_mark gone
	exit 1
fi
[[ $GIFT_ROLE == client ]] && echo "TAP version 13"
if [[ -n ${INTEROP_ONLY_MCKEY-} ]]; then
	mckey_step server 239.255.75.1
	mckey_step client 239.255.75.2
	echo "1..$n" && echo "$pass $fail" >"$GIFT_OUT/totals"
	pair_mark gone
	exit 0
fi
exchanges server
exchanges client
if [[ -n ${INTEROP_CAPTURE-} ]]; then
	[[ $GIFT_ROLE == server ]] && capture_start
	step server "rc_xfer 4 KiB, captured" "0 failed of" \
		"$here/rc_xfer" -d "$dev" -n 1 -s 4096
	if [[ $GIFT_ROLE == server ]]; then
		capture_check
		echo "$?" >"$GIFT_OUT/capture.status"
	fi
	pair_barrier capture
	n=$((n + 1))
	if [[ $GIFT_ROLE == client ]]; then
		if [[ $(cat "$GIFT_OUT/capture.status") == 0 ]]; then
			echo "ok $n tcpdump: the exchange decodes as RoCEv2"
			pass=$((pass + 1))
		else
			echo "not ok $n tcpdump: the exchange decodes as RoCEv2"
			fail=$((fail + 1))
		fi
	fi
fi
if [[ -n ${INTEROP_LOSSY-} ]]; then
	netem || echo "# netem failed on $GIFT_NETDEV"
	limit=$((300 * ${GIFT_SLOW:-1}))
	step server "lossy link: rc_xfer 256 KiB" "0 failed of" \
		"$here/rc_xfer" -d "$dev" -n 1 -s 262144
	step client "lossy link: rc_xfer 256 KiB" "0 failed of" \
		"$here/rc_xfer" -d "$dev" -n 1 -s 262144
	tc qdisc del dev "$GIFT_NETDEV" root
fi
if [[ $GIFT_ROLE == client ]]; then
	echo "1..$n"
	echo "$pass $fail" >"$GIFT_OUT/totals"
fi
pair_mark gone
exit 0
