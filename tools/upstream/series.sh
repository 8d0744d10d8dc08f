#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The patch series for linux-rdma, kept as patches against the newest
# Linux source that tools/deps.sh fetched (Debian sid's linux-source; see
# Documentation/upstream.rst for why that is the base).
#
#   tools/upstream/series        the patches in order, one file name a line
#   tools/upstream/patches/      each as `git format-patch` wrote it
#   tools/upstream/cover-letter  the cover letter: subject line, blank
#                                line, body
#
# Usage: tools/upstream/series.sh COMMAND
#   tree            prints the patched tree (a git repository in the cache,
#                   base commit tagged `base`, one commit per patch),
#                   building it when the series changed
#   patches [DIR]   writes the series to mail into DIR (default
#                   build/patches): numbered patches, the cover letter,
#                   To/Cc from scripts/get_maintainer.pl
#   check           every patch passes checkpatch --strict, and the tree
#                   after every patch builds drivers/infiniband/ with W=1
#                   (and the rdma selftests, where a patch touches them)
#                   without a warning in the files that patch touches;
#                   TAP output
#   export          writes the tree's commits back into patches/ and
#                   series (after editing commits in the tree)
#
# The tree is a hard-linked copy of the unpacked source: git replaces a
# file it changes (unlink, create), so the shared source never changes.
# Never edit a file of the tree in place: write a new file and rename it
# over the old one, or let git do it.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${GIFT_CACHE:-$HOME/.cache/rdma-gift}
JOBS=${GIFT_JOBS:-$(($(nproc) + 1))}
IDENT=(-c user.name="rdma-gift series" -c user.email=series@rdma-gift.invalid)

log() { echo "series: $*" >&2; }
die() { echo "series: error: $*" >&2; exit 1; }

[ -f "$CACHE/deps.mk" ] || die "run tools/deps.sh first"
NEW_SRC=$(sed -n 's/^NEW_SRC := //p' "$CACHE/deps.mk")
[ -f "$NEW_SRC/Makefile" ] || die "no newest-kernel source (NEW_SRC) in deps.mk"
srcver=$(make -s -C "$NEW_SRC" kernelversion 2>/dev/null)
TREE=$CACHE/upstream/linux-$srcver

read_series() {
	PATCHES=()
	[ -f "$HERE/series" ] || return 0
	mapfile -t PATCHES < <(grep -v '^#' "$HERE/series" | sed '/^$/d')
}
read_series

series_key() {
	(cd "$HERE" && cat series "${PATCHES[@]/#/patches/}") |
		sha256sum | cut -c1-12
}

# The base repository: the source as one commit, tagged base.
base_tree() {
	[ -f "$TREE/.git/base-done" ] && return 0
	log "creating the base tree of $srcver in $TREE"
	rm -rf "$TREE"
	mkdir -p "$(dirname "$TREE")"
	cp -al "$NEW_SRC" "$TREE"
	# Debian's top-level .gitignore ignores everything: add with -f.
	git -C "$TREE" init -q
	git -C "$TREE" add -A -f
	git -C "$TREE" "${IDENT[@]}" commit -q \
		-m "Linux $srcver (Debian linux-source-${srcver%.*})"
	git -C "$TREE" tag base
	touch "$TREE/.git/base-done"
}

# The tree is shared by every worktree: one command at a time changes or
# walks it (tree, check, export). A check walks HEAD through the commits;
# one interrupted, or run next to another, leaves HEAD short of the last
# patch (seen 2026-12-02: HEAD at patch 9 of 11, the key still current,
# so later checks and kselftest installs saw 9 patches).
# Commands it runs (build.sh debug-config runs "series.sh tree") hold
# the lock through the parent: exported, so they do not wait for it.
tree_lock() {
	[ -n "${SERIES_LOCKED:-}" ] && return 0
	mkdir -p "$CACHE/upstream"
	exec 9>"$CACHE/upstream/tree.lock"
	flock 9
	export SERIES_LOCKED=1
}

cmd_tree() {
	local key p tip
	tree_lock
	key=$(series_key)
	base_tree
	# HEAD short of the tip the series was applied with, on the same
	# line (a walk left there, not an edit): back to the tip.
	tip=$(cat "$TREE/.git/series-tip" 2>/dev/null) || tip=''
	if [ -n "$tip" ] && [ "$(git -C "$TREE" rev-parse HEAD)" != "$tip" ] &&
		git -C "$TREE" merge-base --is-ancestor HEAD "$tip" 2>/dev/null; then
		log "tree: HEAD was short of the series, back to its last patch"
		git -C "$TREE" checkout -q --detach "$tip"
	fi
	if [ "$(cat "$TREE/.git/series-key" 2>/dev/null)" != "$key" ]; then
		log "applying ${#PATCHES[@]} patches to $srcver"
		rm -f "$TREE/.git/series-key"
		git -C "$TREE" am --abort >/dev/null 2>&1 || true
		git -C "$TREE" checkout -q -f --detach base
		git -C "$TREE" clean -q -f -d
		for p in "${PATCHES[@]}"; do
			git -C "$TREE" "${IDENT[@]}" am -q --committer-date-is-author-date \
				"$HERE/patches/$p" >&2 || die "$p does not apply"
		done
		git -C "$TREE" rev-parse HEAD >"$TREE/.git/series-tip"
		echo "$key" >"$TREE/.git/series-key"
	fi
	echo "$TREE"
}

# get_maintainer.pl's maintainers (To) and lists and reviewers (Cc) of
# the whole series, as --to/--cc options for git format-patch.
recipients() {
	local dir=$1 gm=(perl scripts/get_maintainer.pl --no-git --no-git-fallback --no-rolestats --no-multiline)
	local to cc
	to=$(cd "$TREE" && "${gm[@]}" --no-l --no-r "$dir"/0*.patch)
	cc=$(cd "$TREE" && "${gm[@]}" --no-m --l --r "$dir"/0*.patch)
	local IFS=,
	for a in $to; do printf -- '--to=%s\n' "${a# }"; done
	for a in $cc; do printf -- '--cc=%s\n' "${a# }"; done
}

cmd_patches() {
	local out=${1:-$TOP/build/patches} subject tmp
	local -a rcpt
	cmd_tree >/dev/null
	rm -rf "$out"
	mkdir -p "$out"
	tmp=$(mktemp -d)
	git -C "$TREE" format-patch -q -o "$tmp" base..HEAD
	mapfile -t rcpt < <(recipients "$tmp")
	rm -rf "$tmp"
	git -C "$TREE" format-patch -q --cover-letter --thread=shallow \
		"${rcpt[@]}" -o "$out" base..HEAD
	subject=$(head -n1 "$HERE/cover-letter")
	python3 - "$out"/0000-cover-letter.patch "$HERE/cover-letter" "$subject" <<-'EOF'
		import sys
		path, cover, subject = sys.argv[1:]
		body = open(cover).read().split("\n", 2)[2].rstrip("\n")
		text = open(path).read()
		text = text.replace("*** SUBJECT HERE ***", subject, 1)
		text = text.replace("*** BLURB HERE ***", body, 1)
		open(path, "w").write(text)
	EOF
	log "$(ls "$out" | wc -l) files in $out"
	echo "$out"
}

# checkpatch --strict, less what cannot apply to a series generated here:
# the submitter adds Signed-off-by; the base has no upstream history to
# look Fixes: ids up in (each was checked against the upstream log); a
# new file's MAINTAINERS entry is checked by get_maintainer.pl instead
# (FILE_PATH_CHANGES fires on every added file).
CP_IGNORE=MISSING_SIGN_OFF,UNKNOWN_COMMIT_ID,FILE_PATH_CHANGES

cmd_check() {
	local tmp n=0 fail=0 i p files f out b warn commit
	local -a commits
	cmd_tree >/dev/null
	tmp=$(mktemp -d)
	git -C "$TREE" format-patch -q -o "$tmp" base..HEAD
	mapfile -t commits < <(git -C "$TREE" rev-list --reverse base..HEAD)
	b=$CACHE/upstream/bisect-$srcver
	bisect_prepare "$b" || die "cannot prepare the bisect tree $b"
	echo "TAP version 13"
	echo "1..$((${#commits[@]} * 3))"
	for ((i = 0; i < ${#commits[@]}; i++)); do
		commit=${commits[$i]}
		p=$(ls "$tmp" | sed -n "$((i + 1))p")
		# checkpatch
		n=$((n + 1))
		# Debian's python3 (with python3-ply) for spdxcheck.py, not
		# whatever python3 comes first in PATH.
		if out=$(cd "$TREE" && PATH=/usr/bin:$PATH perl scripts/checkpatch.pl --strict -q \
			--ignore "$CP_IGNORE" --show-types "$tmp/$p" 2>&1) &&
			! grep -q Traceback <<<"$out"; then
			echo "ok $n checkpatch --strict $p"
		else
			echo "$out" | sed 's/^/# /'
			echo "not ok $n checkpatch --strict $p"
			fail=$((fail + 1))
		fi
		# every file it touches has a maintainer who is not just a list
		n=$((n + 1))
		git -C "$TREE" checkout -q --detach "$commit"
		files=$(git -C "$TREE" diff-tree --no-commit-id --name-only -r "$commit")
		out=''
		for f in $files; do
			(cd "$TREE" && perl scripts/get_maintainer.pl --no-git \
				--no-git-fallback --no-l --no-r -f "$f" 2>/dev/null) |
				grep -q '@' || out+=" $f"
		done
		if [ -z "$out" ]; then
			echo "ok $n get_maintainer.pl names a maintainer for every file of $p"
		else
			echo "not ok $n no maintainer for:$out"
			fail=$((fail + 1))
		fi
		# bisectable build
		n=$((n + 1))
		if out=$(bisect_build "$b" "$files" 2>&1); then
			echo "ok $n W=1 build after $p${out:+ ($out)}"
		else
			echo "$out" | tail -n 30 | sed 's/^/# /'
			echo "not ok $n W=1 build after $p"
			fail=$((fail + 1))
		fi
	done
	git -C "$TREE" checkout -q --detach "${commits[-1]:-base}"
	rm -rf "$tmp"
	echo "# series: $((n - fail)) passed, $fail failed"
	[ "$fail" -eq 0 ]
}

# The bisect builds compile through ccache (tools/deps.sh installs it),
# its cache in the project's: a check that has run before moves the tree
# back to the first patch and forward again, and only what ccache has not
# seen is compiled. ccache replays each object's warnings on a hit, so
# the W=1 check sees them either way.
export CCACHE_DIR=$CACHE/ccache
KCC=(CC="ccache gcc")
command -v ccache >/dev/null || KCC=()

# bisect_prepare O: the O= tree of the bisect builds, configured as the
# debug kernel is (built first if need be), prepared once per config.
bisect_prepare() {
	local b=$1 cfg
	cfg=$(bash "$TOP/tools/kernel/build.sh" debug-config)
	mkdir -p "$b"
	cmp -s "$cfg" "$b/.config.want" && return 0
	cp "$cfg" "$b/.config"
	make -s -C "$TREE" O="$b" "${KCC[@]}" olddefconfig >/dev/null
	make -s -C "$TREE" O="$b" "${KCC[@]}" -j"$JOBS" modules_prepare >/dev/null
	cp "$cfg" "$b/.config.want"
}

# bisect_build O FILES: builds drivers/infiniband/ of the tree's checkout
# into O (bisect_prepare), W=1, and the rdma selftests when FILES has
# some; fails on a warning in FILES.
bisect_build() {
	local b=$1 files=$2 log f bad=''
	log=$b/last.log
	make -C "$TREE" O="$b" "${KCC[@]}" -j"$JOBS" W=1 drivers/infiniband/ \
		>"$log" 2>&1 ||
		{ cat "$log"; return 1; }
	if grep -q '^tools/testing/selftests/rdma/' <<<"$files"; then
		mkdir -p "$b/selftests-rdma"
		make -C "$TREE/tools/testing/selftests/rdma" \
			OUTPUT="$b/selftests-rdma" >>"$log" 2>&1 ||
			{ cat "$log"; return 1; }
	fi
	for f in $files; do
		grep -E "(^|/)$f:[0-9]+:[0-9]+: (warning|error)" "$log" && bad+=" $f"
	done
	[ -z "$bad" ] || return 1
	echo "$(grep -c 'warning:' "$log") warnings elsewhere"
}

cmd_export() {
	local tmp
	tree_lock
	[ -d "$TREE/.git" ] || die "no tree; run $0 tree"
	tmp=$(mktemp -d)
	git -C "$TREE" format-patch -q -N --zero-commit --no-signature \
		-o "$tmp" base..HEAD
	rm -f "$HERE"/patches/*.patch
	mkdir -p "$HERE/patches"
	cp "$tmp"/*.patch "$HERE/patches/"
	{
		echo "# The series, in order (tools/upstream/series.sh)."
		(cd "$tmp" && ls *.patch)
	} >"$HERE/series"
	rm -rf "$tmp"
	read_series
	cmd_tree >/dev/null
	log "exported $(ls "$HERE"/patches/*.patch | wc -l) patches"
}

case ${1:-} in
tree) cmd_tree ;;
patches) shift; cmd_patches "$@" ;;
check) cmd_check ;;
export) cmd_export ;;
*) die "usage: $0 tree|patches [DIR]|check|export" ;;
esac
