#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make deb`: builds the Debian packages of debian/ (rdma-gift-dkms,
# libgift1, libgift-dev) with dpkg-buildpackage from a copy of the tree's
# sources (what git tracks, plus untracked files git does not ignore; no
# build outputs), then runs lintian on them, failing on any error.
#
# Output, $GIFT_DEB_OUT (default build/deb/, ignored by git):
#   *.deb, *.buildinfo, *.changes, build.log, lintian.log
# Prints the paths of the three .debs, one per line, on stdout.
# Needs no root (debian/control: Rules-Requires-Root: no).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
out=${GIFT_DEB_OUT:-$top/build/deb}

die() { echo "deb: error: $*" >&2; exit 1; }

rdma_core=$(sed -n 's/^RDMA_CORE := //p' "$cache/deps.mk" 2>/dev/null) ||
	true
[ -n "$rdma_core" ] || die "no RDMA_CORE in $cache/deps.mk: run tools/deps.sh"
ver=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
src=$out/rdma-gift-$ver

rm -rf "$out"
mkdir -p "$src"
git -C "$top" rev-parse --git-dir >/dev/null 2>&1 ||
	die "$top is not a git checkout (the file list comes from git)"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		[ -f "$f" ] && printf '%s\0' "$f"
	done | tar --null -T - -cf -) | tar -xf - -C "$src"

echo "deb: building rdma-gift $ver in $out" >&2
if ! (cd "$src" && RDMA_CORE=$rdma_core dpkg-buildpackage -us -uc -b \
		>"$out/build.log" 2>&1); then
	tail -n 40 "$out/build.log" >&2
	die "dpkg-buildpackage failed, see $out/build.log"
fi
rm -rf "$src"

debs=("$out/rdma-gift-dkms_${ver}_all.deb" "$out/libgift1_${ver}_$arch.deb"
      "$out/libgift-dev_${ver}_$arch.deb")
for d in "${debs[@]}"; do
	[ -f "$d" ] || die "$d was not built"
done

# lintian's exit status is non-zero on errors (--fail-on error); its
# warnings are shown, not fatal.
if ! lintian --fail-on error --info "${debs[@]}" >"$out/lintian.log" 2>&1; then
	cat "$out/lintian.log" >&2
	die "lintian reports errors"
fi
sed -i "/running with root privileges is not recommended/d" "$out/lintian.log"
if [ -s "$out/lintian.log" ]; then
	sed 's/^/deb: lintian: /' "$out/lintian.log" >&2
else
	echo "deb: lintian: clean" >&2
fi
printf '%s\n' "${debs[@]}"
