#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: rst2man.sh DOC.rst OUT VERSION
#
# Renders a Documentation/ man page (titled "name(section)", with its own
# NAME section listing what it documents) with docutils' rst2man. rst2man
# makes the title the page name and adds a NAME section of its own from
# the title (here "giftdv(3) \-", which man-db cannot parse); this
# rewrites the .TH line as name, section, date, source and manual, and
# drops that generated NAME, so the document's own NAME section is the
# page's.
set -euo pipefail

in=$1 out=$2 version=$3
title=$(sed -n '/^=\{3,\}$/{n;p;q}' "$in")
name=${title%(*}
section=${title##*(}
section=${section%)}
[[ -n $name && $section =~ ^[0-9][a-z]*$ ]] ||
	{ echo "rst2man.sh: $in: title '$title' is not name(section)" >&2; exit 1; }
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$in")}" +%Y-%m-%d)

rst2man --no-generator --no-datestamp "$in" |
	awk -v th=".TH \"${name^^}\" \"$section\" \"$date\" \"rdma-gift $version\" \"rdma-gift\"" '
		/^\.TH / { print th; th_seen = 1; next }
		th_seen == 1 && /^\.SH NAME$/ { getline; th_seen = 2; next }
		{ print }' >"$out.tmp"
grep -q '^\.TH ' "$out.tmp" || { echo "rst2man.sh: no .TH from rst2man" >&2; exit 1; }
mv "$out.tmp" "$out"
