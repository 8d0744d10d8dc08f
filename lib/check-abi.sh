#!/bin/sh
# SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
#
# check-abi.sh PROVIDER.so LIBIBVERBS.so.1 PABI
#
# Verify that a provider built against an rdma-core source tree can be loaded
# by the libibverbs installed on this system:
#  - every symbol it imports with an IBVERBS_* version (IBVERBS_1.x public,
#    IBVERBS_PRIVATE_N provider ABI) is exported by LIBIBVERBS with that
#    very version;
#  - it imports exactly one IBVERBS_PRIVATE_N version, N equals PABI (the
#    IBVERBS_PABI_VERSION of the rdma-core tree) and LIBIBVERBS defines it.
set -eu

so=$1
lib=$2
pabi=$3
OBJDUMP=${OBJDUMP:-objdump}

fail() {
	echo "check-abi: $so: $*" >&2
	exit 1
}

[ -r "$lib" ] || fail "installed libibverbs $lib not found"

# objdump -T line: ADDR FLAGS... SECTION SIZE [(]VERSION[)] NAME
# Prints "VERSION NAME" of the undefined (imported) IBVERBS_* symbols.
imports=$("$OBJDUMP" -T "$so" | awk '$0 ~ /\*UND\*/ {
	v = $(NF - 1); gsub(/[()]/, "", v);
	if (v ~ /^IBVERBS_/) print v, $NF }' | sort -u)
# Prints "VERSION NAME" of the symbols LIBIBVERBS defines.
exports=$("$OBJDUMP" -T "$lib" | awk '$0 !~ /\*UND\*/ && NF >= 6 {
	v = $(NF - 1); gsub(/[()]/, "", v);
	if (v ~ /^IBVERBS_/) print v, $NF }' | sort -u)

[ -n "$imports" ] || fail "imports no IBVERBS_* symbol (not linked with -libverbs?)"

missing=$(printf '%s\n' "$imports" | while read -r ver sym; do
	printf '%s\n' "$exports" | grep -qx "$ver $sym" || echo "$sym@$ver"
done)
if [ -n "$missing" ]; then
	echo "check-abi: $so imports symbols that $lib does not export:" >&2
	printf '  %s\n' $missing >&2
	exit 1
fi

privs=$(printf '%s\n' "$imports" | awk '$1 ~ /^IBVERBS_PRIVATE_/ { print $1 }' | sort -u)
[ -n "$privs" ] || fail "imports no IBVERBS_PRIVATE_* symbol"
[ "$(printf '%s\n' "$privs" | wc -l)" -eq 1 ] ||
	fail "imports several private ABIs:" $privs
[ "$privs" = "IBVERBS_PRIVATE_$pabi" ] ||
	fail "imports $privs but the rdma-core tree is IBVERBS_PRIVATE_$pabi"
lib_privs=$("$OBJDUMP" -p "$lib" | awk '/^Version definitions:/ { d = 1; next }
	/^Version References:/ { d = 0 } d && $NF ~ /^IBVERBS_PRIVATE_/ { print $NF }' | sort -u)
printf '%s\n' "$lib_privs" | grep -qx "$privs" ||
	fail "$lib provides private ABI '$lib_privs', provider needs $privs"

echo "check-abi: OK: $(printf '%s\n' "$imports" | wc -l) IBVERBS symbols," \
	"private ABI $privs provided by $lib"
