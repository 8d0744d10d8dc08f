#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Second stage of the rdma-gift test VM, run as PID 1 by the initramfs /init
# after switch_root into the (read-only) host root.  The host's `run` script
# copies this file and a generated config.sh into the control share ($CTL).
#
# Sets up networking and the RDMA driver, runs the command, then does the
# health checks (teardown, kernel splats, pinned pages, pages rdma_gift
# still holds).  Results go to $CTL:
#   status  - exit status of the command (missing if it never ran)
#   health  - one line per failed check (empty when all passed)
#   dmesg   - full kernel log after teardown
#   splats  - the offending dmesg lines, if any
#   done    - written last

set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
CTL=/run/gift-ctl
# shellcheck source=/dev/null
. "$CTL/config.sh"

NIC=
IBDEV=
: >"$CTL/health"
: >"$CTL/splats"

log() { local up; read -r up _ </proc/uptime; echo "vm-guest: [$up] $*"; }
fail() { log "FAIL: $*"; echo "$*" >>"$CTL/health"; }

# modprobe the given modules unless already loaded (most are, by /init).
load() {
	local m
	for m; do
		[[ -e /sys/module/${m//-/_} ]] || modprobe "$m" || return 1
	done
}

setup_net() {
	local d drv
	log "setting up network"
	load virtio_net || return 1
	for d in /sys/class/net/*; do
		drv=$(readlink "$d/device/driver" 2>/dev/null) || continue
		[[ ${drv##*/} == virtio_net ]] && NIC=${d##*/} && break
	done
	[[ -n $NIC ]] || { log "no virtio-net interface"; return 1; }
	# No SLAAC: keep the address (and so the GID table) deterministic.
	echo 0 >"/proc/sys/net/ipv6/conf/$NIC/accept_ra"
	ip -batch - <<-EOF
		link set lo up
		addr add $GIFT_IP/24 dev $NIC
		link set $NIC up
	EOF
}

# Wait (up to ~5 s) for port 1 of $IBDEV to become ACTIVE.
wait_active() {
	local i state=''
	for ((i = 0; i < 50; i++)); do
		read -r state </sys/class/infiniband/"$IBDEV"/ports/1/state
		[[ $state == *ACTIVE* ]] && return 0
		sleep 0.1
	done
	log "warning: $IBDEV port 1 not ACTIVE: $state"
}

setup_driver() {
	local deps
	log "setting up driver $GIFT_DRIVER"
	load ib_uverbs rdma_ucm || return 1
	case $GIFT_DRIVER in
	gift)
		[[ -f $GIFT_MODULE ]] || { log "module $GIFT_MODULE not found"; return 1; }
		deps=$(modinfo -F depends "$GIFT_MODULE") || return 1
		if [[ -n $deps ]]; then
			local -a deplist
			IFS=, read -ra deplist <<<"$deps"
			load "${deplist[@]}" || return 1
		fi
		insmod "$GIFT_MODULE" || { log "insmod $GIFT_MODULE failed"; return 1; }
		IBDEV=gift0
		rdma link add "$IBDEV" type gift netdev "$NIC" || return 1
		# Only our provider: hide the system provider list.
		mount -t tmpfs -o mode=755 none /etc/libibverbs.d || return 1
		[[ -e $GIFT_LIBGIFT-rdmav34.so ]] ||
			log "warning: provider $GIFT_LIBGIFT-rdmav34.so not found"
		;;
	rxe)
		load rdma_rxe || return 1
		IBDEV=rxe0
		rdma link add "$IBDEV" type rxe netdev "$NIC" || return 1
		;;
	none) ;;
	esac
	[[ -z $IBDEV ]] || wait_active
}

# Kill everything the command left behind (background jobs, daemons): all
# user-space processes except PID 1 and this shell.
kill_leftovers() {
	local p stat pid ppid comm found=''
	for p in /proc/[0-9]*; do
		read -r stat <"$p/stat" 2>/dev/null || continue
		pid=${stat%% *}
		comm=${stat#*\(}
		comm=${comm%\)*}
		stat=${stat##*) }
		read -r _ ppid _ <<<"$stat"
		((pid == 1 || pid == 2 || ppid == 2 || pid == BASHPID)) && continue
		found+=" $pid($comm)"
		kill -9 "$pid" 2>/dev/null
	done
	[[ -z $found ]] && return
	log "killed leftover processes:$found"
	sleep 0.5
}

run_cmd() {
	local env=(PATH="$GIFT_PATH" HOME=/tmp USER=root LOGNAME=root
		GIFT_VM=1 GIFT_OUT="$GIFT_OUT" GIFT_DRIVER="$GIFT_DRIVER"
		GIFT_MODULE="$GIFT_MODULE" GIFT_KTEST="$GIFT_KTEST"
		GIFT_NETDEV="$NIC" GIFT_IBDEV="$IBDEV"
		GIFT_IP="$GIFT_IP")
	[[ $GIFT_DRIVER == gift ]] && env+=(RDMAV_DRIVERS="$GIFT_LIBGIFT")
	env+=("${GIFT_ENV[@]}")

	if ! cd "$GIFT_CWD" 2>/dev/null; then
		fail "working directory $GIFT_CWD is not visible in the guest"
		return
	fi
	log "running command"
	echo "$GIFT_MARK start"
	# Background + setsid: the command gets its own session, stdin /dev/null.
	setsid env -i "${env[@]}" "${GIFT_CMD[@]}" </dev/null &
	wait $!
	local rc=$?
	echo "$GIFT_MARK end $rc"
	echo "$rc" >"$CTL/status"
	cd /
}

teardown() {
	local mod='' dev=''
	case $GIFT_DRIVER in
	gift) mod=rdma_gift dev=gift0 ;;
	rxe) mod=rdma_rxe dev=rxe0 ;;
	none) mod=rdma_gift ;;
	esac
	if [[ -n $dev && -e /sys/class/infiniband/$dev ]]; then
		rdma link delete "$dev" || fail "teardown: rdma link delete $dev failed"
	fi
	check_umem_pages
	if [[ -e /sys/module/$mod ]]; then
		rmmod "$mod" || fail "teardown: rmmod $mod failed"
	elif [[ $GIFT_DRIVER != none ]]; then
		log "note: module $mod was already unloaded"
	fi
}

# With every gift device gone, rdma_gift holds no user page: neither pins
# (also seen by check_pins) nor the plain references of gift MRs, which
# only the module's own counters see.
check_umem_pages() {
	local f=/sys/kernel/debug/rdma_gift/umem_pages key val
	[[ -r $f ]] || return 0
	while read -r key val; do
		log "umem pages: $key=$val"
		[[ $val == 0 ]] ||
			fail "rdma_gift still holds user pages after teardown: $key $val"
	done <"$f"
}

check_pins() {
	local acq='' rel='' key val
	# Fold the per-CPU vmstat deltas first, or the two can disagree.
	echo 1 >/proc/sys/vm/stat_refresh
	while read -r key val; do
		case $key in
		nr_foll_pin_acquired) acq=$val ;;
		nr_foll_pin_released) rel=$val ;;
		esac
	done </proc/vmstat
	log "pins: acquired=$acq released=$rel"
	[[ $acq == "$rel" ]] ||
		fail "pinned pages leaked: nr_foll_pin_acquired=$acq nr_foll_pin_released=$rel"
}

# Kernel splats.  Case-sensitive.  Lockdep's reports are "WARNING: ..."
# and "BUG: ..." lines; its boot banner ("RCU lockdep checking is
# enabled.") and kmemleak's init message are not splats.
SPLAT='\bBUG[: ]|WARNING:|Oops|general protection fault|Kernel panic'
SPLAT+='|possible circular locking|possible recursive locking'
SPLAT+='|inconsistent lock state|suspicious RCU usage'
SPLAT+='|INFO: trying to register non-static key|DEBUG_LOCKS_WARN_ON'
SPLAT+='|turning off the locking correctness validator'
SPLAT+='|KASAN:|UBSAN:|KFENCE:|ODEBUG:'
SPLAT+='|kmemleak: .*suspected|unreferenced object|refcount_t:'
SPLAT+='|list_add corruption|list_del corruption|Call Trace:'
SPLAT+='|blocked for more than [0-9]+ seconds|rcu: .*detected stalls'
# A process's own general protection fault is reported as "traps:
# NAME[PID] general protection fault ip:..." (the kernel's own say
# "Oops: general protection fault"): not a kernel splat. The test that
# ran the process sees it die; perftest 4.5-0.17 does so retrying a
# rejected rdma_cm connection (see cm_test.sh).
USER_FAULT='\] traps: [^ ]+\[[0-9]+\] general protection fault ip:'

# kmemleak (debug kernels): what leaked during the run. kmemleak_begin
# forgets what boot leaked; kmemleak_check scans after teardown, twice, as
# an object is only reported once it has gone unreferenced through a scan
# and is older than kmemleak's minimum age (5 s).
KMEMLEAK=/sys/kernel/debug/kmemleak
kmemleak_begin() {
	[[ -w $KMEMLEAK ]] || return 0
	echo scan >"$KMEMLEAK" && echo clear >"$KMEMLEAK" ||
		fail "kmemleak: cannot scan (disabled after an error?)"
}

kmemleak_check() {
	[[ -w $KMEMLEAK ]] || return 0
	log "kmemleak scan"
	echo scan >"$KMEMLEAK"
	sleep 6
	echo scan >"$KMEMLEAK"
	cat "$KMEMLEAK" >"$CTL/kmemleak"
	[[ -s $CTL/kmemleak ]] || return 0
	log "kmemleak reports leaks:"
	head -n 60 "$CTL/kmemleak"
	fail "kmemleak: $(grep -c '^unreferenced object' "$CTL/kmemleak") unreferenced objects: $(head -n 1 "$CTL/kmemleak")"
	cat "$CTL/kmemleak" >>"$CTL/splats"
}

check_dmesg() {
	dmesg >"$CTL/dmesg" 2>&1
	local found
	found=$(grep -E "$SPLAT" "$CTL/dmesg" | grep -Ev "$USER_FAULT") ||
		return 0
	log "kernel splat in dmesg:"
	head -n 40 <<<"$found"
	fail "kernel splat in dmesg: $(head -n 1 <<<"$found")"
	printf '%s\n' "$found" >>"$CTL/splats"
}

main() {
	echo 1 >/proc/sys/kernel/sysrq
	log "stage 2 started"
	if ! setup_net; then
		fail "setup: network setup failed"
	elif ! setup_driver; then
		fail "setup: driver $GIFT_DRIVER setup failed"
	else
		kmemleak_begin
		run_cmd
		kill_leftovers
	fi
	log "health checks"
	teardown
	check_pins
	kmemleak_check
	check_dmesg
	echo ok >"$CTL/done"
}

# Run in a subshell: PID 1 must not exit, or the kernel panics.
(main)
sync
umount "$GIFT_OUT" "$CTL" 2>/dev/null
# A kernel without ACPI (the debug kernel) cannot power off: it reboots,
# which QEMU (-no-reboot) turns into an exit.
if [[ -d /sys/firmware/acpi ]]; then
	echo o >/proc/sysrq-trigger
else
	echo b >/proc/sysrq-trigger
fi
sleep 60
