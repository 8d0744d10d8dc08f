#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of tools/testing/vm/run-pair: runs one side's command
# (a bash -c string) in the guest `run` booted.
#
# Usage: pair.sh server|client SYNC CMD
#   SYNC listen: the server's command starts first; once it listens on a
#                TCP port (its out-of-band exchange, as ibv_rc_pingpong
#                and perftest have) the client's starts
#        none:   both start at once; the commands meet by themselves
#                (pair_lib.sh)
# Either side marks "gone" in the shared directory when its command ends,
# so that a peer waiting for it fails at once; a server still running 30 s
# after its client is gone is killed (and fails).
set -u

here=$(cd "$(dirname "$0")" && pwd)
export GIFT_ROLE=${1:?} GIFT_PAIR_SYNC=${2:?}
cmd=${3:?}
# shellcheck source=pair_lib.sh
. "$here/pair_lib.sh"

status=0
if [[ $GIFT_PAIR_SYNC == listen && $GIFT_ROLE == server ]]; then
	bash -c "$cmd" &
	pid=$!
	pair_listening "$pid"
	pair_mark ready
	left=300
	while kill -0 "$pid" 2>/dev/null && ((left > 0)); do
		[[ -e $GIFT_OUT/client.gone ]] && left=$((left - 1))
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null &&
		echo "pair: the server still runs 30 s after the client ended: killed" >&2 &&
		kill -9 "$pid"
	wait "$pid" || status=$?
else
	if [[ $GIFT_PAIR_SYNC == listen ]] && ! pair_wait ready; then
		status=1
	else
		bash -c "$cmd" || status=$?
	fi
fi
pair_mark gone
exit "$status"
