#!/usr/bin/env bash
# Times one hallwatch-pruner pass over an index of FRAGMENTS fragments (default 100 000): 4 cameras of
# 1 s fragments recorded through the real writer into 256 KiB slots, maxAge set so that about 40 % of
# the slots are due. Reports the planning pass (--dry-run: open, merge holds, snapshot, plan) and the
# real pass (plus steps D1-D4 for every due slot), then the next pass (nothing due). Prints a markdown row
# in the columns of Tests/Bench/bench.sh's table;
# writes .bench/pruner.json.
# Usage: Tests/Bench/pruner.sh [BIN_DIR] [FRAGMENTS]
set -euo pipefail
BIN=${1:-.build/release}; N=${2:-100000}
work=$(mktemp -d /tmp/hw-bench-prune-XXXX)
trap 'rm -rf "$work"' EXIT
cameras=4; per=$(( (N + cameras - 1) / cameras ))
"$BIN/hallwatchctl" bench-fill "$work/disk0" --box bench --fragments "$N" --cameras $cameras --payload 1000 --slots 600 >&2
# maxAge: 60 % of the recorded span, in minutes.
max_age=$(( per * 6 / 10 / 60 ))m
cat > "$work/hw.yaml" <<YAML
box: bench
bus: {socket: $work/bus.sock}
recorder: {disks: [{name: disk0, path: $work/disk0}]}
retention: {maxAge: $max_age, minAge: 0s, reserve: 0s, reserveSlots: 0}
YAML
ms() { sed -n 's/.* in \([0-9.]*\) ms$/\1/p' | tail -1; }
count() { sed -n 's/^\([0-9]*\) slots, .* in [0-9.]* ms$/\1/p' | tail -1; }
dry=$("$BIN/hallwatch-pruner" --config "$work/hw.yaml" --dry-run 2>/dev/null)
dry_ms=$(echo "$dry" | ms); due=$(echo "$dry" | count)
real=$("$BIN/hallwatch-pruner" --config "$work/hw.yaml" --once 2>/dev/null)
real_ms=$(echo "$real" | ms); deleted=$(echo "$real" | count)
steady_ms=$("$BIN/hallwatch-pruner" --config "$work/hw.yaml" --once 2>/dev/null | ms)   # the next pass: nothing due
index_bytes=$(stat -c %s "$work/disk0/index.sqlite")
echo "| pruner | one pass over $N fragments ($cameras cameras, index $((index_bytes / 1024)) KiB), ms: plan (dry run) / deleting $deleted of 600 slots / next pass, nothing due | $dry_ms / $real_ms / $steady_ms | — | — | D1–D4 per due slot: 3 SQLite commits + 1 fdatasync |"
mkdir -p .bench
printf '{"bench":"pruner","fragments":%d,"cameras":%d,"indexBytes":%d,"planMillis":%s,"passMillis":%s,"steadyPassMillis":%s,"slotsDue":%d,"slotsDeleted":%d}\n' \
  "$N" "$cameras" "$index_bytes" "$dry_ms" "$real_ms" "$steady_ms" "$due" "$deleted" > .bench/pruner.json
