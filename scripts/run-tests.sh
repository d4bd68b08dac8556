#!/usr/bin/env bash
# Runs the node-tap suite and ends with the plain line CI reads:
# "N passed, N failed", from tap's own final counts.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
out=build/test-output.txt
# Every temporary directory the tests make (homes, spools, nats-server stores: thousands a run, some of
# 74 MB) goes under one of this run's, removed at the end: /tmp is not left to fill. Mode 1777 like
# /tmp, for the tests that run a process as another user. --one-file-system: a tmpfs a failed test
# left mounted in it is not descended into.
TMPDIR=$(mktemp -d /tmp/wnt-tests-XXXXXX)
chmod 1777 "$TMPDIR"
export TMPDIR
# The taps' per-home locks (agent/parts/lock.ts, /run/wazuh-nats-tap by default: one file a home, kept)
# go there too: thousands of test homes left as many files in /run.
export WAZUH_NATS_TAP_LOCK_DIR="$TMPDIR/run-locks"
# And the notes of which directory each spool_dir was (agent/spool-note.ts, /var/lib/wazuh-nats-tap).
export WAZUH_NATS_TAP_STATE_DIR="$TMPDIR/state"
trap 'rm -rf --one-file-system "$TMPDIR" 2>/dev/null' EXIT
node_modules/.bin/tap "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
summary=$(grep -aE '^# \{ total: [0-9]+' "$out" | tail -n 1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
pass=${pass:-0}
fail=${fail:-0}
# A run that failed without counting a failure (a crash, a time-out) still failed.
if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
# CI keeps the tail of the output: the failures are named again just above the closing line.
if [ "$fail" != 0 ]; then node scripts/list-test-failures.mjs "$out" || true; fi
echo "$pass passed, $fail failed" | tee build/test-summary.txt
exit "$rc"
