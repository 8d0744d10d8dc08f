#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The rdma-core side of the linux-rdma series: IBV_ACCESS_GIFT in
# libibverbs/verbs.h and ibv_reg_mr(3), kept as patches in
# tools/upstream/rdma-core/ (series, patches/).
#
# The base is the pristine upstream source of Debian sid's rdma-core (the
# .orig tarball of the source package, checked against the SHA256 of
# sid's Sources index), fetched into the cache once. When it cannot be
# fetched, the rdma-core tree that tools/deps.sh prepared (trixie's 56.1,
# whose provider ABI matches the host's libibverbs) is the base instead,
# and the output says so.
#
# Usage: tools/upstream/rdma-core.sh check
#   applies the patches with `git apply` to a fresh copy of the base,
#   builds libibverbs (cmake + ninja lib/libibverbs.so), and checks that
#   IBV_ACCESS_GIFT of the patched verbs.h equals IB_UVERBS_ACCESS_GIFT
#   of the patched kernel tree (tools/upstream/series.sh tree); TAP
#   output, with the time each step took.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
PATCHES=$HERE/rdma-core

log() { echo "rdma-core: $*" >&2; }
die() { echo "rdma-core: error: $*" >&2; exit 1; }

sid_apt() {
	local d=$CACHE/sid-apt tool=$1
	shift
	"$tool" -o Dir::Etc::sourcelist="$d/sources.list" \
		-o Dir::Etc::sourceparts=- -o Dir::State::Lists="$d/lists" \
		-o Dir::Cache="$d/cache" -o APT::Sandbox::User=root "$@"
}

# Prints the path of sid's rdma-core orig tarball, fetching and checking
# it first if need be; fails when sid's index or the archive lacks it.
sid_orig() {
	local line url file sum have
	[ -f "$CACHE/sid-apt/sources.list" ] || return 1
	line=$(sid_apt apt-get --print-uris source rdma-core 2>/dev/null |
		grep -m1 "\.orig\.tar\.") || return 1
	read -r url file _ sum <<<"$line"
	url=${url//\'/}
	sum=${sum#SHA256:}
	mkdir -p "$CACHE/dl"
	if [ ! -f "$CACHE/dl/$file" ]; then
		curl -fsSL -o "$CACHE/dl/$file.part" "$url" || return 1
		mv "$CACHE/dl/$file.part" "$CACHE/dl/$file"
	fi
	have=$(sha256sum "$CACHE/dl/$file" | cut -d' ' -f1)
	[ "$have" = "$sum" ] || { rm -f "$CACHE/dl/$file"; return 1; }
	echo "$CACHE/dl/$file"
}

cmd_check() {
	local src orig base n=0 fail=0 p t0 out tree want got
	local -a patches
	mapfile -t patches < <(grep -v '^#' "$PATCHES/series" | sed '/^$/d')
	tmp=$(mktemp -d) # global: the EXIT trap removes it
	trap 'rm -rf "$tmp"' EXIT
	src=$tmp/src
	mkdir -p "$src"
	if orig=$(sid_orig); then
		tar -xzf "$orig" -C "$src" --strip-components=1
		base="Debian sid's ${orig##*/}"
	else
		orig=$(sed -n 's/^RDMA_CORE := //p' "$CACHE/deps.mk")
		[ -f "$orig/CMakeLists.txt" ] || die "no rdma-core source"
		(cd "$orig" && tar -c --exclude=./build .) | tar -x -C "$src"
		base="${orig##*/} from tools/deps.sh (sid's orig tarball could not be fetched)"
	fi
	echo "TAP version 13"
	echo "1..$((${#patches[@]} + 2))"
	echo "# base: $base"
	for p in "${patches[@]}"; do
		n=$((n + 1))
		if out=$(cd "$src" && git apply --whitespace=error-all \
			"$PATCHES/patches/$p" 2>&1); then
			echo "ok $n $p applies"
		else
			echo "$out" | sed 's/^/# /'
			echo "not ok $n $p applies"
			fail=$((fail + 1))
		fi
	done

	n=$((n + 1))
	t0=$SECONDS
	mkdir -p "$src/build"
	if (cd "$src/build" &&
		cmake -GNinja -DNO_MAN_PAGES=1 -DNO_PYVERBS=1 \
			-DENABLE_STATIC=0 .. >cmake.log 2>&1 &&
		ninja lib/libibverbs.so >ninja.log 2>&1); then
		echo "ok $n libibverbs builds ($((SECONDS - t0)) s)"
	else
		tail -n 20 "$src/build/cmake.log" "$src/build/ninja.log" 2>/dev/null |
			sed 's/^/# /'
		echo "not ok $n libibverbs builds"
		fail=$((fail + 1))
	fi

	# The library's flag is the kernel's bit.
	n=$((n + 1))
	tree=$(bash "$HERE/series.sh" tree)
	printf '#include <stdio.h>\n#include <infiniband/verbs.h>\nint main(void) { printf("%%#x\\n", IBV_ACCESS_GIFT); return 0; }\n' >"$tmp/lib.c"
	printf '#include <stdio.h>\n#include <rdma/ib_user_ioctl_verbs.h>\nint main(void) { printf("%%#x\\n", IB_UVERBS_ACCESS_GIFT); return 0; }\n' >"$tmp/kern.c"
	if cc -I"$src/build/include" -o "$tmp/lib" "$tmp/lib.c" 2>"$tmp/cc.log" &&
		cc -I"$tree/include/uapi" -o "$tmp/kern" "$tmp/kern.c" 2>>"$tmp/cc.log" &&
		got=$("$tmp/lib") && want=$("$tmp/kern") && [ "$got" = "$want" ]; then
		echo "ok $n IBV_ACCESS_GIFT ($got) is the kernel's IB_UVERBS_ACCESS_GIFT"
	else
		sed 's/^/# /' "$tmp/cc.log"
		echo "not ok $n IBV_ACCESS_GIFT (${got:-?}) is the kernel's IB_UVERBS_ACCESS_GIFT (${want:-?})"
		fail=$((fail + 1))
	fi
	echo "# rdma-core: $((n - fail)) passed, $fail failed"
	[ "$fail" -eq 0 ]
}

case ${1:-} in
check) cmd_check ;;
*) die "usage: $0 check" ;;
esac
