#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds (or reuses) a guest kernel from the newest Linux source that
# tools/deps.sh fetched from Debian sid, and prints the directory holding
# it. Two flavours:
#
#   debug   `make allnoconfig` + tools/kernel/debug.config: the minimal
#           kernel the VM needs, with KASAN, lockdep, kmemleak, UBSAN,
#           KFENCE, fault injection, TEST_HMM and GUP_TEST. bzImage and
#           modules are built and installed into the cache.
#   stock   Debian sid's own config and Module.symvers, prepared with
#           `modules_prepare` and the host compiler only: the tree
#           out-of-tree modules build against for sid's binary kernel
#           (whose headers package ships kbuild tools linked against a
#           newer glibc than bookworm's, so they cannot run here).
#
# Usage: tools/kernel/build.sh debug|debug-config|stock
# (debug-config prints the debug kernel's .config, building it if needed)
#
# Output directory, $GIFT_CACHE/kernels/<flavour>-<version>/ (the debug
# flavour's is series-debug-<version>):
#   build/                  O= tree, the KDIR for module builds
#   kernelrelease           `uname -r` of the kernel
#   vmlinuz, lib/modules/   (debug) the bootable kernel and its modules
#   key                     hash of the config inputs and the compiler
#   build-seconds           how long the last build took
#   .done                   written last
# A tree whose key differs (the fragment or the compiler changed) is
# reconfigured and rebuilt in place, which make does incrementally; trees
# of other source versions are removed.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
FLAVOUR=${1:-}
JOBS=${GIFT_JOBS:-$(($(nproc) + 1))}

log() { echo "kernel: $*" >&2; }
die() { echo "kernel: error: $*" >&2; exit 1; }

# shellcheck source=/dev/null
[ -f "$CACHE/deps.mk" ] || die "run tools/deps.sh first"
NEW_SRC=$(sed -n 's/^NEW_SRC := //p' "$CACHE/deps.mk")
NEW_KVER=$(sed -n 's/^NEW_KVER := //p' "$CACHE/deps.mk")
NEW_HDRS=$(sed -n 's/^NEW_HDRS := //p' "$CACHE/deps.mk")
[ -f "$NEW_SRC/Makefile" ] || die "no newest-kernel source (NEW_SRC) in deps.mk"

srcver=$(make -s -C "$NEW_SRC" kernelversion 2>/dev/null)

# Checks that every symbol the fragment sets kept its value.
check_fragment() {
	local frag=$1 config=$2 bad='' k v cur
	while IFS='=' read -r k v; do
		cur=$(sed -n "s/^$k=//p" "$config")
		[ -n "$cur" ] || cur=n
		[ "$cur" = "$v" ] || bad+=" $k=$v(got $cur)"
	done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$frag")
	[ -z "$bad" ] || die "config lost:$bad"
}

# The debug kernel is built from the newest source with the linux-rdma
# series applied (tools/upstream/series.sh): one build serves the debug
# lane, the patched rxe's tests and the series check.
build_debug() {
	local frag=$HERE/debug.config key dir b t0 krel src
	src=$(bash "$HERE/../upstream/series.sh" tree)
	key=$( (cat "$frag"; gcc --version | head -n1; echo "$src";
		cat "$src/.git/series-key") | sha256sum | cut -c1-12)
	# Not debug-*: trees whose build.sh predates the series build the
	# unpatched source there, and prune each other's flavours by name.
	dir=$CACHE/kernels/series-debug-$srcver
	if [ -f "$dir/.done" ] && [ "$(cat "$dir/key")" = "$key" ]; then
		echo "$dir"
		return 0
	fi
	rm -f "$dir/.done"
	b=$dir/build
	# An O= tree remembers its source tree: start over for another one.
	[ "$(cat "$dir/source" 2>/dev/null)" = "$src" ] || rm -rf "$b"
	mkdir -p "$b"
	echo "$src" >"$dir/source"
	log "building debug kernel $srcver ($key) in $dir, -j$JOBS"
	t0=$(date +%s)
	make -s -C "$src" O="$b" KCONFIG_ALLCONFIG="$frag" allnoconfig \
		>"$dir/config.log" 2>&1 || die "allnoconfig failed, see $dir/config.log"
	check_fragment "$frag" "$b/.config"
	make -C "$src" O="$b" -j"$JOBS" bzImage modules \
		>"$dir/build.log" 2>&1 ||
		{ tail -n 30 "$dir/build.log" >&2; die "build failed, see $dir/build.log"; }
	krel=$(cat "$b/include/config/kernel.release")
	rm -rf "$dir/lib"
	make -s -C "$src" O="$b" INSTALL_MOD_PATH="$dir" \
		INSTALL_MOD_STRIP=1 modules_install >>"$dir/build.log" 2>&1 ||
		die "modules_install failed, see $dir/build.log"
	# The guest resolves modules through the host root; the module
	# tree's build link would point into the cache anyway.
	rm -f "$dir/lib/modules/$krel/build" "$dir/lib/modules/$krel/source"
	cp "$b/arch/x86/boot/bzImage" "$dir/vmlinuz"
	echo "$krel" >"$dir/kernelrelease"
	echo "$key" >"$dir/key"
	echo $(($(date +%s) - t0)) >"$dir/build-seconds"
	log "debug kernel $krel built in $(cat "$dir/build-seconds") s"
	touch "$dir/.done"
	prune series-debug "$dir"
	echo "$dir"
}

build_stock() {
	local hdrs=$NEW_HDRS key dir b t0
	[ -f "$hdrs/.config" ] || die "no sid headers (NEW_HDRS) in deps.mk"
	key=$( (cat "$hdrs/.config"; gcc --version | head -n1) |
		sha256sum | cut -c1-12)
	dir=$CACHE/kernels/stock-$srcver
	if [ -f "$dir/.done" ] && [ "$(cat "$dir/key")" = "$key" ]; then
		echo "$dir"
		return 0
	fi
	rm -f "$dir/.done"
	b=$dir/build
	mkdir -p "$b"
	log "preparing $NEW_KVER module build tree in $dir"
	t0=$(date +%s)
	cp "$hdrs/.config" "$b/.config"
	# Sid's config names gcc-16 and rustc; olddefconfig re-derives the
	# compiler-dependent symbols for the host gcc. The module ABI (struct
	# layouts, exported symbols) does not depend on them.
	make -s -C "$NEW_SRC" O="$b" olddefconfig >"$dir/config.log" 2>&1 ||
		die "olddefconfig failed, see $dir/config.log"
	make -C "$NEW_SRC" O="$b" -j"$JOBS" KERNELRELEASE="$NEW_KVER" \
		modules_prepare >"$dir/build.log" 2>&1 ||
		{ tail -n 30 "$dir/build.log" >&2; die "modules_prepare failed"; }
	# vermagic must be the binary kernel's release string.
	echo "$NEW_KVER" >"$b/include/config/kernel.release"
	cp "$hdrs/Module.symvers" "$b/Module.symvers"
	echo "$NEW_KVER" >"$dir/kernelrelease"
	echo "$key" >"$dir/key"
	echo $(($(date +%s) - t0)) >"$dir/build-seconds"
	touch "$dir/.done"
	prune stock "$dir"
	echo "$dir"
}

# Removes the trees of a flavour built from other source versions.
prune() {
	local d
	for d in "$CACHE/kernels/$1"-*; do
		[ "$d" = "$2" ] || [ ! -d "$d" ] || rm -rf "$d"
	done
}

case $FLAVOUR in
debug) build_debug ;;
debug-config) echo "$(build_debug)/build/.config" ;;
stock) build_stock ;;
*) die "usage: $0 debug|debug-config|stock" ;;
esac
