#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs and prepares everything rdma-gift needs, idempotently:
#   - Debian packages (build tools, the 6.12 guest kernel and headers,
#     QEMU, busybox, rdma-core userspace, perftest, sparse, and the
#     Debian packaging tools: dkms, dh-dkms, debhelper, lintian, rst2man);
#   - from linux-source-6.12: checkpatch.pl and kselftest_harness.h,
#     extracted into the cache (never into the repo);
#   - an rdma-core source tree with the installed libibverbs's private
#     provider ABI, configured with cmake, for building the provider;
#   - the newest Linux in Debian sid (image, modules, headers and
#     linux-source), downloaded with a private apt state under the cache
#     and unpacked with dpkg -x: never installed, the host's apt and dpkg
#     state are not touched. apt-get verifies each .deb against the
#     signed index. The stock kernel boots as the newest-kernel lane;
#     its source builds the debug kernel (tools/kernel/build.sh).
#
# A second run only checks and prints one summary line.
# Output: writes $GIFT_CACHE/deps.mk with the paths the Makefile uses.

set -euo pipefail

CACHE=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
PACKAGES=(
	build-essential bc bison flex libelf-dev libssl-dev sparse perl
	linux-image-6.12-amd64 linux-headers-6.12-amd64 linux-source-6.12
	qemu-system-x86 busybox-static kmod iproute2 cpio xz-utils gzip
	rdma-core ibverbs-utils libibverbs-dev librdmacm-dev rdmacm-utils
	perftest binutils cmake ninja-build pkg-config python3 tcpdump
	libnl-3-dev libnl-route-3-dev libudev-dev
	dkms dh-dkms debhelper fakeroot lintian python3-docutils
	git python3-ply python3-git rsync ccache
)
SRC_LIST=/etc/apt/sources.list.d/rdma-gift-src.sources

log() { echo "deps: $*" >&2; }
die() { echo "deps: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (installs Debian packages)"
mkdir -p "$CACHE"

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	apt-get update -qq >/dev/null || die "apt-get update failed"
	apt_updated=1
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	apt_update
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install failed"
}

# Source packages only: deb-src entries never change installed binaries.
enable_deb_src() {
	[ -f "$SRC_LIST" ] && return 0
	cat >"$SRC_LIST" <<-EOF
		Types: deb-src
		URIs: http://deb.debian.org/debian
		Suites: bookworm trixie
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	apt_updated=
	apt_update
}

# Newest installed 6.12 Debian kernel with a module build tree.
guest_kver() {
	local v
	for v in $(ls -1 /lib/modules | grep -E '^6\.12\..*-amd64$' | sort -rV); do
		if [ -d "/lib/modules/$v/build" ] && [ -f "/boot/vmlinuz-$v" ]; then
			echo "$v"
			return 0
		fi
	done
	die "no linux-image/linux-headers 6.12 pair installed"
}

# checkpatch.pl (+ its data files) and the kselftest headers.
extract_linux_source() {
	local tarball dir stamp
	tarball=$(ls -1 /usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n1)
	[ -n "$tarball" ] || die "linux-source-6.12 tarball missing"
	dir="$CACHE/linux-source-6.12"
	stamp="$dir/.rdma-gift-extracted"
	if [ -f "$stamp" ] && [ "$stamp" -nt "$tarball" ]; then
		echo "$dir"
		return 0
	fi
	mkdir -p "$CACHE"
	tar -xf "$tarball" -C "$CACHE" \
		linux-source-6.12/scripts/checkpatch.pl \
		linux-source-6.12/scripts/spelling.txt \
		linux-source-6.12/scripts/const_structs.checkpatch \
		linux-source-6.12/tools/testing/selftests/kselftest_harness.h \
		linux-source-6.12/tools/testing/selftests/kselftest.h ||
		die "cannot extract from $tarball"
	touch "$stamp"
	echo "$dir"
}

# apt-get (or apt-cache, as $1) with its own sources, lists and cache
# under $CACHE/sid-apt.
sid_apt() {
	local d=$CACHE/sid-apt tool=$1
	shift
	"$tool" -o Dir::Etc::sourcelist="$d/sources.list" \
		-o Dir::Etc::sourceparts=- -o Dir::State::Lists="$d/lists" \
		-o Dir::Cache="$d/cache" -o APT::Sandbox::User=root "$@"
}

# Newest sid kernel: sets NEW_KVER, NEW_DIR (a VM runner kernel directory:
# vmlinuz, kernelrelease, lib/modules/<ver>/), NEW_HDRS (Debian's headers
# tree: .config, Module.symvers) and NEW_SRC (linux-source, unpacked).
# GIFT_SID_KVER pins a version; otherwise the newest in sid's index,
# refreshed once a day.
prepare_newest_kernel() {
	local d=$CACHE/sid-apt ver mm dir pkgs p f tarball
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/debs"
	printf 'deb http://deb.debian.org/debian sid main\ndeb-src http://deb.debian.org/debian sid main\n' \
		>"$d/sources.list"
	if [ -z "$(find "$d/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null)" ]; then
		sid_apt apt-get -qq update >/dev/null 2>&1 || die "apt-get update (sid) failed"
	fi
	ver=${GIFT_SID_KVER:-$(sid_apt apt-cache pkgnames linux-image- 2>/dev/null |
		sed -n 's,^linux-image-\([0-9].*\)-amd64$,\1,p' |
		grep -v -e -cloud -e -rt | sort -V | tail -n1)}
	[ -n "$ver" ] || die "no linux-image-*-amd64 in sid's index"
	mm=$(echo "$ver" | cut -d. -f1,2)
	NEW_KVER=$ver-amd64
	dir=$CACHE/kernels/sid-$NEW_KVER
	NEW_DIR=$dir
	NEW_HDRS=$dir/root/usr/src/linux-headers-$NEW_KVER
	NEW_SRC=$CACHE/src/linux-source-$mm
	if [ ! -f "$dir/.done" ]; then
		log "fetching Linux $NEW_KVER from sid"
		pkgs=(linux-binary-$NEW_KVER linux-modules-$NEW_KVER linux-base-$NEW_KVER
		      linux-headers-$NEW_KVER linux-headers-$ver-common
		      linux-source-$mm)
		(cd "$d/debs" && sid_apt apt-get -qq download "${pkgs[@]}" >/dev/null 2>&1) ||
			die "apt-get download (sid) ${pkgs[*]} failed"
		rm -rf "$dir"
		mkdir -p "$dir/root"
		for p in "${pkgs[@]}"; do
			f=$(ls -1 "$d/debs/${p}_"*.deb | sort -V | tail -n1)
			dpkg -x "$f" "$dir/root"
		done
		ln -s root/usr/lib "$dir/lib"
		ln -s "lib/modules/$NEW_KVER/vmlinuz" "$dir/vmlinuz"
		echo "$NEW_KVER" >"$dir/kernelrelease"
		depmod -b "$dir/root/usr" "$NEW_KVER" ||
			die "depmod $NEW_KVER failed"
		rm -f "$d/debs"/linux-binary-* "$d/debs"/linux-modules-* \
		      "$d/debs"/linux-headers-*
		touch "$dir/.done"
	fi
	tarball=$dir/root/usr/src/linux-source-$mm.tar.xz
	if [ ! -f "$NEW_SRC/.rdma-gift-extracted" ]; then
		log "unpacking linux-source-$mm"
		rm -rf "$NEW_SRC"
		mkdir -p "$CACHE/src"
		tar -xf "$tarball" -C "$CACHE/src" || die "cannot unpack $tarball"
		touch "$NEW_SRC/.rdma-gift-extracted"
	fi
	# Only the newest version's trees are kept.
	for p in "$CACHE"/kernels/sid-*; do
		[ "$p" = "$dir" ] || [ ! -d "$p" ] || rm -rf "$p"
	done
}

# Sparse new enough for the newest kernel's checker-valid.sh (it needs
# __typeof_unqual__; bookworm's 0.6.4 lacks it), built from sid's source
# package into the cache; sets NEW_CHECK. Runs after
# prepare_newest_kernel (sid's index, NEW_SRC).
prepare_sparse() {
	local ver dir tmp
	ver=$(sid_apt apt-cache showsrc sparse 2>/dev/null |
		sed -n 's/^Version: //p' | sort -V | tail -n1)
	[ -n "$ver" ] || die "no sparse source in sid's index"
	dir=$CACHE/sparse-$ver
	NEW_CHECK=$dir/sparse
	if [ ! -x "$NEW_CHECK" ]; then
		log "building sparse $ver from sid's source"
		tmp=$(mktemp -d "$CACHE/sparse-build.XXXXXX")
		(cd "$tmp" && sid_apt apt-get -qq source --download-only "sparse=$ver" \
			>/dev/null 2>&1) || die "apt-get source sparse=$ver failed"
		tar -xzf "$tmp"/sparse_*.orig.tar.gz -C "$tmp"
		make -C "$tmp"/sparse-*/ -j"$(nproc)" sparse HAVE_LLVM=no \
			HAVE_SQLITE=no HAVE_GTK=no HAVE_LIBXML=no >"$tmp/build.log" 2>&1 ||
			die "sparse build failed, see $tmp/build.log"
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$tmp"/sparse-*/sparse "$NEW_CHECK"
		rm -rf "$tmp"
	fi
	[ "$("$NEW_SRC/scripts/checker-valid.sh" "$NEW_CHECK" -m64)" = 1 ] ||
		die "$NEW_CHECK does not pass $NEW_SRC/scripts/checker-valid.sh"
}

# IBVERBS_PRIVATE_<n> exported by the installed libibverbs.
installed_private_abi() {
	objdump -T /usr/lib/x86_64-linux-gnu/libibverbs.so.1 |
		grep -o 'IBVERBS_PRIVATE_[0-9]*' | sort -u | head -n1
}

# Private ABI of an rdma-core source tree (IBVERBS_PABI_VERSION).
tree_private_abi() {
	sed -n 's/^ *set(IBVERBS_PABI_VERSION "\([0-9]*\)").*/IBVERBS_PRIVATE_\1/p' \
		"$1/CMakeLists.txt" 2>/dev/null | head -n1
}

# Fetch the orig tarball of rdma-core version $1 into $CACHE/dl; true if
# it is there afterwards. apt-get's exit status is not trusted: the .dsc
# or debian tarball may 404 while the orig tarball is fine, so the tarball
# is checked against the Sources index checksum instead.
fetch_rdma_core() {
	local ver=$1 upstream=${1%-*} file sum
	file="rdma-core_${upstream}.orig.tar.gz"
	mkdir -p "$CACHE/dl"
	sum=$(apt-cache showsrc rdma-core 2>/dev/null |
		awk -v v="$ver" -v f="$file" '
			/^Version:/ { cur = $2 }
			/^Checksums-Sha256:/ { s = 1; next }
			/^[^ ]/ { s = 0 }
			s && cur == v && $3 == f { print $1; exit }')
	[ -n "$sum" ] || return 1
	if ! echo "$sum  $CACHE/dl/$file" | sha256sum -c --status 2>/dev/null; then
		(cd "$CACHE/dl" && apt-get source -qq --download-only \
			"rdma-core=$ver" >/dev/null 2>&1) || true
	fi
	echo "$sum  $CACHE/dl/$file" | sha256sum -c --status 2>/dev/null
}

# Chooses and prepares the rdma-core tree; prints its path.
prepare_rdma_core() {
	local want installed abi ver upstream dir
	installed=$(dpkg-query -W -f='${Version}' libibverbs1)
	want=$(installed_private_abi)
	[ -n "$want" ] || die "installed libibverbs exports no private ABI"

	# Reuse the tree chosen last time while it still fits.
	dir=$(sed -n 's/^RDMA_CORE := //p' "$CACHE/deps.mk" 2>/dev/null || true)
	if [ -n "$dir" ] && [ -f "$dir/build/build.ninja" ] &&
	   [ "$(tree_private_abi "$dir")" = "$want" ]; then
		echo "$dir"
		return 0
	fi

	for ver in "$installed" $(apt-cache showsrc rdma-core 2>/dev/null |
			awk '/^Version:/{print $2}' | sort -rV | uniq); do
		upstream=${ver%-*}
		dir="$CACHE/rdma-core-$upstream"
		if [ ! -f "$dir/CMakeLists.txt" ]; then
			fetch_rdma_core "$ver" || continue
			tar -xzf "$CACHE/dl/rdma-core_${upstream}.orig.tar.gz" -C "$CACHE"
		fi
		abi=$(tree_private_abi "$dir")
		[ "$abi" = "$want" ] || continue
		if [ ! -f "$dir/build/build.ninja" ]; then
			log "configuring rdma-core $upstream ($abi)"
			mkdir -p "$dir/build"
			(cd "$dir/build" && cmake -GNinja -DNO_MAN_PAGES=1 \
				-DNO_PYVERBS=1 -DENABLE_STATIC=0 .. >cmake.log 2>&1) ||
				die "rdma-core cmake failed, see $dir/build/cmake.log"
		fi
		[ "$upstream" = "${installed%-*}" ] ||
			log "rdma-core ${installed%-*} source not in the archive; using $upstream (same $abi)"
		echo "$dir"
		return 0
	done
	die "no rdma-core source with $want found in the archive"
}

install_packages
enable_deb_src
KVER=$(guest_kver)
LINUX_SRC=$(extract_linux_source)
RDMA_CORE=$(prepare_rdma_core)
prepare_newest_kernel
prepare_sparse

tmp=$(mktemp "$CACHE/deps.mk.XXXXXX")
cat >"$tmp" <<EOF
# Generated by tools/deps.sh; do not edit.
GUEST_KVER := $KVER
LINUX_SRC := $LINUX_SRC
RDMA_CORE := $RDMA_CORE
NEW_KVER := $NEW_KVER
NEW_DIR := $NEW_DIR
NEW_HDRS := $NEW_HDRS
NEW_SRC := $NEW_SRC
NEW_CHECK := $NEW_CHECK
EOF
mv "$tmp" "$CACHE/deps.mk"
log "ok: kernels $KVER and $NEW_KVER, rdma-core $(basename "$RDMA_CORE"), cache $CACHE"
