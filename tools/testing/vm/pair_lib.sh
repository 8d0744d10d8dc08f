# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Sourced by the guest side of a run-pair run (pair.sh, and scripts that
# step through several exchanges in one boot): rendezvous of the two
# guests through files in the directory both share, GIFT_OUT (run-pair
# gives both guests the same --out; 9p without caching shows one guest's
# files to the other at the next lookup).
#
#   pair_mark NAME       this guest reached NAME
#   pair_wait NAME       wait until the peer reached NAME; fails (1) after
#                        GIFT_PAIR_WAIT seconds (default 300) or at once
#                        when the peer's command has ended ("gone")
#   pair_barrier NAME    both: each waits for the other
#   pair_listening PID   wait until PID's command listens on a TCP port
#                        (any: nothing else listens in the guest), or
#                        exited, or 60 s passed
#
# GIFT_ROLE is "server" or "client", GIFT_PEER_ROLE the other one.

: "${GIFT_ROLE:?}" "${GIFT_OUT:?}"
if [[ $GIFT_ROLE == server ]]; then
	GIFT_PEER_ROLE=client
else
	GIFT_PEER_ROLE=server
fi

pair_mark() {
	: >"$GIFT_OUT/$GIFT_ROLE.$1"
}

pair_wait() {
	local i limit=$((${GIFT_PAIR_WAIT:-300} * 10))
	for ((i = 0; i < limit; i++)); do
		[[ -e $GIFT_OUT/$GIFT_PEER_ROLE.$1 ]] && return 0
		if [[ -e $GIFT_OUT/$GIFT_PEER_ROLE.gone ]]; then
			echo "pair: the $GIFT_PEER_ROLE ended before '$1'" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "pair: timed out waiting for the $GIFT_PEER_ROLE at '$1'" >&2
	return 1
}

pair_barrier() {
	pair_mark "$1"
	pair_wait "$1"
}

pair_listening() {
	local i
	for ((i = 0; i < 300; i++)); do
		[[ -n $(ss -Hltn) ]] && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
