#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: boots the Debian 6.12 kernel in QEMU, creates gift0 over the
# guest NIC and walks through what a user sees of it. Later features add
# their own steps here. The last step runs on the host: the gift MR memory
# benchmark at 256 MiB (tools/bench/gift_mem.sh), which boots its own VMs.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" != --in-vm ]; then
	"$top/tools/testing/vm/run" --driver gift --quiet -- \
		"$top/tools/demo.sh" --in-vm
	# Gift MRs, live at 256 MiB. gift0 and stock rdma_rxe cannot share
	# a VM (both bind UDP 4791), so the benchmark boots two more.
	printf '\n\033[1m== %s\033[0m\n$ %s\n' \
		"Gift MRs: extra RAM and time of a read-only 256 MiB registration over zero-page, KSM and fork-shared memory (two more VM boots, gift0 and stock rxe0: ~80 s)" \
		"tools/bench/gift_mem.sh --sizes 256 --kinds 'zero ksm fork' --quiet"
	"$top/tools/bench/gift_mem.sh" --sizes 256 --kinds 'zero ksm fork' --quiet
	echo "(1 GiB and exclusive memory: tools/bench/results/gift_mem.rst)"
	echo
	echo "demo: done"
	exit 0
fi

dev=${GIFT_IBDEV:?} ndev=${GIFT_NETDEV:?}
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "$2"; bash -c "$2"; }

echo "rdma-gift demo: a soft-RoCE device '$dev' on '$ndev' (guest kernel $(uname -r))"
step "The link, created with: rdma link add $dev type gift netdev $ndev" \
	"rdma link show $dev/1"
step "libibverbs finds it through our provider (RDMAV_DRIVERS=$RDMAV_DRIVERS)" \
	"ibv_devices"
step "Device and port attributes" \
	"ibv_devinfo -d $dev -v | grep -E 'hca_id|transport|node_guid|vendor_id|fw_ver|phys_port_cnt|max_pd|state|mtu|link_layer|GID'"
step "The GID table follows $ndev's addresses (RoCEv2)" \
	"ip -br addr show $ndev; ibv_devinfo -d $dev -v | grep GID"
step "Adding an address adds a GID; removing it removes the GID" \
	"ip addr add 192.0.2.1/24 dev $ndev; sleep 1; ibv_devinfo -d $dev -v | grep GID; ip addr del 192.0.2.1/24 dev $ndev; sleep 1; echo '(removed)'; ibv_devinfo -d $dev -v | grep GID"
step "Port state follows the netdev" \
	"ip link set $ndev down; sleep 0.5; ibv_devinfo -d $dev | grep -E 'state:'; ip link set $ndev up; sleep 1; ibv_devinfo -d $dev | grep -E 'state:'"
step "Resources are tracked by ib_core" \
	"rdma resource show $dev"
echo
echo "demo: the VM now deletes $dev, unloads rdma_gift and checks dmesg."
