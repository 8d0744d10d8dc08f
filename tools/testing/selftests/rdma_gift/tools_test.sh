#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stock rdma-core tools against the runner's gift device, as TAP:
# ibv_devices lists it, ibv_devinfo -v describes a RoCE port, and
# rdma tool shows the link on its netdev.
set -u

dev=${GIFT_IBDEV:?}
ndev=${GIFT_NETDEV:?}
n=0
failed=0

# check DESCRIPTION COMMAND...: one TAP line, command output on failure.
check() {
	local desc=$1 out
	shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n $desc"
	else
		failed=$((failed + 1))
		echo "not ok $n $desc"
		printf '%s\n' "$out" | sed 's/^/# /'
	fi
}

has() { grep -Eq "$1" <<<"$2"; }

devices=$(ibv_devices 2>&1)
devinfo=$(ibv_devinfo -d "$dev" -v 2>&1)
link=$(rdma link show "$dev/1" 2>&1)

echo "TAP version 13"
echo "1..7"
check "ibv_devices lists $dev" has "^[[:space:]]+$dev[[:space:]]" "$devices"
check "ibv_devinfo: transport InfiniBand" has "transport:[[:space:]]+InfiniBand" "$devinfo"
check "ibv_devinfo: port active" has "state:[[:space:]]+PORT_ACTIVE" "$devinfo"
check "ibv_devinfo: Ethernet link layer" has "link_layer:[[:space:]]+Ethernet" "$devinfo"
check "ibv_devinfo: max_pd 65536" has "max_pd:[[:space:]]+65536" "$devinfo"
check "ibv_devinfo: a RoCE v2 GID" has "GID\[ *[0-9]+\]:.*RoCE v2" "$devinfo"
check "rdma link: $dev/1 on $ndev" has "link $dev/1 .*netdev $ndev" "$link"
exit $((failed > 0))
