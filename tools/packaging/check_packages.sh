#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check-packages` (make check runs it too): the packages installed
# and used the way a Debian user does, on this host:
#   1. make deb: rdma-gift-dkms, libgift1, libgift-dev, lintian-clean;
#   2. apt-get install ./*.deb: DKMS builds and installs rdma_gift for
#      every kernel in /lib/modules that has headers (the 6.12 guest
#      kernel, from Debian's linux-headers package) and for the
#      newest-kernel lane's kernel (see below); the running host kernel
#      has no /lib/modules tree here and is never built for or touched;
#   3. one VM boot on 6.12 (--driver none: nothing from the build tree),
#      packages_guest.sh: modprobe rdma_gift from updates/dkms, rdma link
#      add, ibv_devinfo and ibv_rc_pingpong with the provider libibverbs
#      finds through /etc/libibverbs.d (no RDMAV_DRIVERS), and a giftdv
#      program built the way giftdv(3) says against libgift-dev;
#   4. apt-get purge: no module file, no DKMS tree, no source, no provider,
#      driver file, header or man page left.
#
# The newest-kernel lane's kernel (Debian sid's, tools/deps.sh) is not
# installed on this host: its image and headers are unpacked in the
# cache, and sid's headers package cannot build here (its kbuild tools
# need a newer glibc), so its module build tree is tools/kernel/build.sh
# stock's. The test presents it to DKMS the way Debian's linux-headers
# package presents an installed kernel, as /lib/modules/<ver>/build, for
# the duration of the test only (when no such directory exists; removed
# again at the end), so the package's own postinst builds for it too.
# That kernel boots with its own module tree (the runner binds it over
# /lib/modules), so the one boot is 6.12's; for 7.2 the test checks the
# installed module's vermagic and version.
#
# Leaves the host as it found it, also when interrupted or failing midway
# (trap): the packages purged, the lane kernel's /lib/modules entry
# removed, and DKMS's signing key (/var/lib/dkms/mok.*, which dkms creates
# on its first build) removed if this run created it. Safe to run twice;
# a previous run's packages left installed are purged first.
#
# Prints TAP-style ok/not ok lines and ends with "N passed, N failed";
# exits non-zero on any failure.
set -u

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
PKGS=(rdma-gift-dkms libgift1 libgift-dev)
pass=0
fail=0
t0=$SECONDS

ok() { pass=$((pass + 1)); echo "ok $((pass + fail)) $1"; }
not_ok() {
	fail=$((fail + 1))
	echo "not ok $((pass + fail)) $1"
	[ -z "${2-}" ] || printf '%s\n' "$2" | tail -n 30 | sed 's/^/# /'
}
# check DESCRIPTION COMMAND...: passes when COMMAND exits 0.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}
finish() {
	echo "# check-packages: $((SECONDS - t0)) s"
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}

deps() { sed -n "s/^$1 := //p" "$cache/deps.mk" 2>/dev/null; }
guest=$(deps GUEST_KVER)
newest=$(deps NEW_KVER)
if [ -z "$guest" ] || [ -z "$newest" ]; then
	not_ok "tools/deps.sh has run ($cache/deps.mk)"
	finish
fi
[ "$(id -u)" = 0 ] || { not_ok "running as root (apt-get install/purge)"; finish; }

installed_pkgs() {
	dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PKGS[@]}" 2>/dev/null |
		awk '$1 != "not-installed" { print $2 }'
}

purge() {
	local left
	left=$(installed_pkgs)
	[ -z "$left" ] && return 0
	# shellcheck disable=SC2086 # package names are words
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 $left
}

link_made=
mok_made=
out=
# shellcheck disable=SC2317 # invoked via trap
cleanup() {
	trap - EXIT INT TERM HUP
	purge >/dev/null 2>&1 || echo "# cleanup: apt-get purge failed"
	if [ -n "$link_made" ]; then
		rm -rf "/lib/modules/$newest"
	fi
	[ -z "$mok_made" ] || rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
	[ -z "$out" ] || rm -rf "$out"
}
trap cleanup EXIT
trap 'echo "# interrupted"; exit 130' INT TERM HUP

# One run at a time on a host (other trees' make check included).
exec 9>/run/lock/rdma-gift-check-packages.lock
if ! flock -n 9; then
	echo "# another check_packages.sh runs on this host: waiting"
	flock 9
fi

echo "# === packages: build, apt install, VM on $guest, purge"
if [ -n "$(installed_pkgs)" ]; then
	echo "# purging packages left by an earlier run: $(installed_pkgs | xargs)"
	purge >/dev/null 2>&1
fi
[ -e /var/lib/dkms/mok.key ] || [ -e /var/lib/dkms/mok.pub ] || mok_made=1
# depmod's view of the guest kernel, to compare after the purge.
depmod_sum() {
	cat "/lib/modules/$guest"/modules.{dep,alias,symbols,softdep} | sha256sum
}
depmod_before=$(depmod_sum)

# 1. Build.
if debs=$(bash "$top/tools/packaging/deb.sh" 2>"$cache/deb.log"); then
	ok "make deb: ${PKGS[*]} built, lintian reports no errors"
	grep '^deb: lintian: [WE]:' "$cache/deb.log" | sed 's/^/# /'
else
	not_ok "make deb: ${PKGS[*]} built, lintian reports no errors" \
		"$(cat "$cache/deb.log")"
	finish
fi
mapfile -t debs <<<"$debs"
ver=$(dpkg-deb -f "${debs[0]}" Version)

# The lane kernel as an installed kernel with headers, for DKMS.
if ! lane_tree=$(bash "$top/tools/kernel/build.sh" stock 2>"$cache/lane.log"); then
	not_ok "the lane kernel's module build tree (tools/kernel/build.sh stock)" \
		"$(cat "$cache/lane.log")"
elif [ ! -e "/lib/modules/$newest" ]; then
	link_made=1
	mkdir -p "/lib/modules/$newest"
	ln -s "$lane_tree/build" "/lib/modules/$newest/build"
fi

echo "# built: $((SECONDS - t0)) s"

# 2. Install as a user does.
ilog=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 \
	--no-install-recommends "${debs[@]}" 2>&1)
st=$?
echo "$ilog" | grep -E '^(Building|Module build|Done|Skipped|It is likely)' |
	sed 's/^/# apt: /'
if [ $st -eq 0 ]; then
	ok "apt-get install ./rdma-gift-dkms ./libgift1 ./libgift-dev ($ver)"
else
	not_ok "apt-get install ./rdma-gift-dkms ./libgift1 ./libgift-dev" "$ilog"
	finish
fi

# dkms_module KVER: the installed module of KVER, or nothing.
dkms_module() {
	compgen -G "/lib/modules/$1/updates/dkms/rdma_gift.ko*" | head -n1
}
for k in "$guest" "$newest"; do
	st=$(dkms status -m rdma-gift -v "$ver" -k "$k" 2>&1)
	mod=$(dkms_module "$k")
	if [[ $st == *": installed"* && -n $mod ]]; then
		ok "DKMS built and installed rdma_gift for $k ($mod)"
	else
		not_ok "DKMS built and installed rdma_gift for $k" "dkms status: $st"
		continue
	fi
	info="$(modinfo -F version "$mod") $(modinfo -F vermagic "$mod")"
	if [[ $info == "$ver $k "* ]]; then
		ok "its modinfo: version $ver, vermagic $k"
	else
		not_ok "its modinfo: version $ver, vermagic $k" "got: $info"
	fi
done
running=$(uname -r)
st=$(dkms status -m rdma-gift -v "$ver" -k "$running" 2>&1)
if [[ $st != *": built"* && $st != *": installed"* ]] &&
   [ ! -e "/var/lib/dkms/rdma-gift/$ver/$running" ] &&
   [ -z "$(dkms_module "$running")" ]; then
	ok "nothing built or installed for the host kernel $running"
else
	not_ok "nothing built or installed for the host kernel $running" \
		"$st $(dkms_module "$running")"
fi
check "man -w giftdv_query_mr (libgift-dev)" man -w 3 giftdv_query_mr

# A giftdv application, built as giftdv(3) says.
# In the VM's --out directory, which the guest sees at the same path.
out=$(mktemp -d "${TMPDIR:-/tmp}/rdma-gift-pkg.XXXXXX")
vout=$out/vm
mkdir -p "$vout"
vlib=$(pkg-config --variable=libdir libibverbs)/libibverbs
check "giftdv_probe builds against the installed giftdv.h and provider" \
	cc -Wall -Werror -o "$vout/giftdv_probe" \
	"$top/tools/packaging/giftdv_probe.c" -libverbs -L"$vlib" \
	-lgift-rdmav34 -Wl,-rpath,"$vlib"

echo "# installed: $((SECONDS - t0)) s"

# 3. One boot of the 6.12 guest.
"$top/tools/testing/vm/run" --driver none --kernel "$guest" --out "$vout" \
	--quiet --env "GIFT_PKG_VERSION=$ver" \
	--env "GIFT_PROBE=$vout/giftdv_probe" \
	-- "$top/tools/packaging/packages_guest.sh"
st=$?
if read -r p f <"$vout/totals" 2>/dev/null; then
	pass=$((pass + p))
	fail=$((fail + f))
else
	not_ok "packages_guest.sh ran to the end in the VM"
fi
if [ $st -eq 0 ]; then
	ok "VM health checks (dmesg, pins, rmmod rdma_gift)"
else
	not_ok "VM health checks (dmesg, pins, rmmod rdma_gift): status $st"
fi

echo "# VM done: $((SECONDS - t0)) s"

# 4. Purge, and nothing may be left.
if plog=$(purge 2>&1) && [ -z "$(installed_pkgs)" ]; then
	ok "apt-get purge ${PKGS[*]}"
else
	not_ok "apt-get purge ${PKGS[*]}" "$plog"
fi
left=$( {
	compgen -G "/lib/modules/*/updates/dkms/rdma_gift.ko*"
	compgen -G "/lib/modules/*/*/rdma_gift.ko*"
	compgen -G "/usr/src/rdma-gift-*"
	compgen -G "/usr/lib/*/libibverbs/libgift-rdmav34.so"
	compgen -G "/usr/share/man/man3/giftdv*"
	ls -d /var/lib/dkms/rdma-gift /etc/libibverbs.d/gift.driver \
		/usr/include/infiniband/giftdv.h "/usr/share/doc/${PKGS[0]}" \
		/usr/share/doc/libgift1 /usr/share/doc/libgift-dev
	grep -l rdma_gift "/lib/modules/$guest/modules.dep"
} 2>/dev/null)
if [ -z "$left" ]; then
	ok "nothing of the packages is left (modules, DKMS tree, provider, driver file, header)"
else
	not_ok "nothing of the packages is left" "$left"
fi
if [ "$(depmod_sum)" = "$depmod_before" ]; then
	ok "depmod's files of $guest are as before"
else
	not_ok "depmod's files of $guest are as before"
fi
cleanup
if [ -n "$link_made" ] && [ -e "/lib/modules/$newest" ]; then
	not_ok "/lib/modules/$newest removed again"
else
	ok "the host's /lib/modules is as before"
fi
finish
