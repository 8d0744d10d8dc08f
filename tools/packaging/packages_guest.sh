#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of tools/packaging/check_packages.sh, run by the VM runner
# with --driver none on a host where the packages are installed: the
# module comes from DKMS (modprobe, never insmod of the build tree), the
# provider from libgift1 through /etc/libibverbs.d (no RDMAV_DRIVERS).
# TAP on stdout; "PASS FAIL" totals in $GIFT_OUT/totals. Exits 0 once the
# totals are written: the runner's status speaks for the VM's health.
#
# Environment: GIFT_PKG_VERSION (the package version), GIFT_PROBE (a
# program built against the packaged giftdv.h and provider),
# GIFT_NETDEV, GIFT_IP (from the runner).
set -u

ver=${GIFT_PKG_VERSION:?}
probe=${GIFT_PROBE:?}
ndev=${GIFT_NETDEV:?}
ip=${GIFT_IP:?}
dev=gift0
kver=$(uname -r)
provider=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/libibverbs/libgift-rdmav34.so
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n $1"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n $1"
	[ -z "${2-}" ] || printf '%s\n' "$2" | tail -n 20 | sed 's/^/# /'
}

# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}

# Index of the RoCEv2 GID holding $ip.
gid_index() {
	local g=/sys/class/infiniband/$dev/ports/1 i want a b c d
	IFS=. read -r a b c d <<<"$ip"
	want=$(printf '0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x' \
		"$a" "$b" "$c" "$d")
	for i in $(seq 0 15); do
		[ "$(cat "$g/gids/$i" 2>/dev/null)" = "$want" ] &&
		[ "$(cat "$g/gid_attrs/types/$i" 2>/dev/null)" = "RoCE v2" ] &&
		{ echo "$i"; return 0; }
	done
	return 1
}

port_active() {
	local i state=
	for ((i = 0; i < 100; i++)); do
		read -r state <"/sys/class/infiniband/$dev/ports/1/state" 2>/dev/null
		[[ $state == *ACTIVE* ]] && return 0
		sleep 0.1
	done
	echo "port state: ${state:-none}"
	return 1
}

# The packaged provider is what an ibv_rc_pingpong server mapped.
server_uses_provider() {
	grep -qF " $provider" "/proc/$1/maps" ||
		{ echo "$provider not mapped by pid $1:"; grep -F libibverbs "/proc/$1/maps"; return 1; }
}

# listening PORT PID: until PID listens on TCP PORT or exits (30 s).
listening() {
	local i
	for ((i = 0; i < 150; i++)); do
		[ -n "$(ss -Hltn "sport = :$1")" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

pingpong() {
	local gidx=$1 sout cout spid cst sst maps=0 port=18590
	sout=$(mktemp) cout=$(mktemp)
	timeout 120 ibv_rc_pingpong -d "$dev" -g "$gidx" -n 100 -p $port \
		>"$sout" 2>&1 &
	spid=$!
	listening $port $spid && server_uses_provider "$(pgrep -P $spid ibv_rc_pingpong)" \
		>>"$sout" 2>&1 || maps=1
	timeout 120 ibv_rc_pingpong -d "$dev" -g "$gidx" -n 100 -p $port "$ip" \
		>"$cout" 2>&1
	cst=$?
	wait $spid
	sst=$?
	if [ $cst -eq 0 ] && [ $sst -eq 0 ] && grep -q 'bytes in .* seconds' "$cout"; then
		ok "ibv_rc_pingpong over $dev"
	else
		not_ok "ibv_rc_pingpong over $dev (client $cst, server $sst)" \
			"$(sed 's/^/client: /' "$cout"; sed 's/^/server: /' "$sout")"
	fi
	if [ $maps -eq 0 ]; then
		ok "the pingpong server runs the packaged $provider"
	else
		not_ok "the pingpong server runs the packaged $provider" "$(cat "$sout")"
	fi
	rm -f "$sout" "$cout"
}

echo "TAP version 13"
echo "1..11"
check "RDMAV_DRIVERS is not set" test -z "${RDMAV_DRIVERS+set}"
check "rdma_gift is not loaded before modprobe" test ! -e /sys/module/rdma_gift
check "modprobe rdma_gift" modprobe rdma_gift
path=$(modinfo -n rdma_gift 2>&1)
case $path in
"/lib/modules/$kver/updates/dkms/rdma_gift.ko"*) ok "modprobe found the DKMS module ($path)" ;;
*) not_ok "modprobe found the DKMS module" "modinfo -n: $path" ;;
esac
loaded=$(cat /sys/module/rdma_gift/version 2>&1)
if [ "$loaded" = "$ver" ]; then
	ok "loaded module version $loaded is the package's"
else
	not_ok "loaded module version is the package's ($ver)" "got: $loaded"
fi
check "rdma link add $dev type gift netdev $ndev" \
	rdma link add "$dev" type gift netdev "$ndev"
check "$dev port 1 active" port_active
devinfo=$(ibv_devinfo -d "$dev" 2>&1)
if grep -Eq 'state:[[:space:]]+PORT_ACTIVE' <<<"$devinfo" &&
   ! grep -q 'couldn.t load driver' <<<"$devinfo"; then
	ok "ibv_devinfo -d $dev through the system provider list"
else
	not_ok "ibv_devinfo -d $dev through the system provider list" "$devinfo"
fi
if gidx=$(gid_index); then
	pingpong "$gidx"
else
	not_ok "ibv_rc_pingpong over $dev" "no RoCEv2 GID for $ip"
	not_ok "the pingpong server runs the packaged $provider"
fi
if out=$("$probe" "$dev" 2>&1); then
	ok "giftdv application on the packaged libgift: $out"
else
	not_ok "giftdv application on the packaged libgift" "$out"
fi
[ ! -e "/sys/class/infiniband/$dev" ] || rdma link delete "$dev" ||
	echo "# rdma link delete $dev failed"

echo "$((n - failed)) $failed" >"${GIFT_OUT:?}/totals"
