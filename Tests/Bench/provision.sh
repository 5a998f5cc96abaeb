#!/usr/bin/env bash
# The USB config drop (issue 17): plug → "safe to remove" for a 20 MiB bundle, health gate included, and the
# time to refuse a stick with a flipped signature byte. A running box (mosquitto, recorder, pruner, web under
# `hallwatchctl supervise`, from the store's `current`) takes ROUNDS bundles in turn (default 5), each changing
# the retention policy (the pruner restarts, the recorder adopts it); each is a FAT32 image file (mkfs.vfat +
# mcopy, made before the clock starts) processed by `hallwatch-provision --once` exactly as a plugged stick.
# Prints markdown rows in the columns of Tests/Bench/bench.sh's table; writes .bench/provision.json.
# Usage: Tests/Bench/provision.sh [BIN_DIR] [ROUNDS]      (as root: the reader's sandbox uses unshare)
set -euo pipefail
BIN=${1:-.build/release}; ROUNDS=${2:-5}
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d /tmp/hw-bench-prov-XXXX)
sup=
cleanup() {
  if [ -n "$sup" ]; then kill -TERM "$sup" 2>/dev/null || true; wait "$sup" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export MTOOLS_SKIP_CHECK=1
minisign -G -W -p "$work/district.pub" -s "$work/district.sec" >/dev/null
mkdir -p "$work/keyring" "$work/disk0" "$work/web"
cp "$work/district.pub" "$work/keyring/district.pub"; echo 1 > "$work/keyring/version"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'web:\n  listen: [127.0.0.1]\n  httpsPort: %s\n  stateDirectory: %s/web\n' "$port" "$work" > "$work/web.yaml"
head -c $((20 * 1024 * 1024)) /dev/urandom > "$work/payload.bin"

# stick VERSION [flip]: a FAT32 image with bundle VERSION (hallwatch.yaml + the 20 MiB payload), signed.
stick() {
  local v=$1 tree="$work/tree-$1" d="$work/tree-$1/HALLWATCH/bench-es"
  mkdir -p "$d/files"
  cat > "$d/files/hallwatch.yaml" <<YAML
box: bench
bus: {socket: $work/bus.sock}
recorder: {socket: $work/rec.sock, slotSizeBytes: 8388608, slotCount: 16, disks: [{name: disk0, path: $work/disk0}]}
retention: {maxAge: $((30 + v))d}
YAML
  cp "$work/payload.bin" "$d/files/payload.bin"
  "$BIN/hallwatchctl" config bundle "$d" --district bench-usd --version "$v" --expires 2099-01-01T00:00:00Z >/dev/null
  minisign -S -s "$work/district.sec" -m "$d/bundle.txt" -x "$d/bundle.txt.minisig" -t bench >/dev/null
  if [ "${2:-}" = flip ]; then
    python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[110]^=1; open(p,"wb").write(b)' "$d/bundle.txt.minisig"
  fi
  mkfs.vfat -C -F 32 "$work/stick-$v.img" 60000 >/dev/null
  mcopy -s -i "$work/stick-$v.img" "$tree/HALLWATCH" ::/
  rm -rf "$tree"
}
provision() {
  "$BIN/hallwatch-provision" --once --device "$1" --keyring "$work/keyring" --store "$work/store" --serial SN-BENCH \
    --building bench-es --district bench-usd "${@:2}"
}
now() { python3 -c 'import time; print(time.monotonic())'; }

stick 1
provision "$work/stick-1.img" --health-timeout 0 >/dev/null
"$BIN/hallwatchctl" supervise --config "$work/store/current/hallwatch.yaml" --run-directory "$work/run" \
  --status-every 0 --max-restart-delay 500ms --web-config "$work/web.yaml" > "$work/supervise.log" 2>&1 &
sup=$!
sleep 8   # the box is up (the gate would wait for it anyway; this keeps the first round comparable)

applied=()
for i in $(seq 2 $((ROUNDS + 1))); do
  stick "$i"
  t0=$(now)
  out=$(provision "$work/stick-$i.img") || { echo "round $i: $out" >&2; exit 1; }
  t1=$(now)
  grep -q 'result: applied' <<< "$out" || { echo "round $i: $out" >&2; exit 1; }
  applied+=("$(python3 -c "print(round($t1 - $t0, 2))")")
done
stick $((ROUNDS + 2)) flip
t0=$(now)
out=$(provision "$work/stick-$((ROUNDS + 2)).img") && { echo "the flipped stick was applied" >&2; exit 1; }
t1=$(now)
refused=$(python3 -c "print(round($t1 - $t0, 2))")

read -r p50 p95 <<< "$(python3 -c 'import sys, statistics as s; v=sorted(map(float, sys.argv[1:]));
print(round(s.median(v), 2), round(v[min(len(v) - 1, int(0.95 * len(v)))], 2))' "${applied[@]}")"
echo "| USB config drop | plug → safe to remove, 20 MiB bundle on a FAT32 image, health gate included (recorder, web, pruner, bus), s: median / p95 of $ROUNDS | $p50 / $p95 | — | goal ≤ 45 s p95 | mtools read + SHA-256 + staged fsyncs + 3 s settle |"
echo "| USB config drop | refusal of a stick with a flipped signature byte, s | $refused | — | goal ≤ 10 s | signature checked before any file is copied |"
mkdir -p .bench
printf '{"bench":"provision","rounds":%d,"bundleBytes":%d,"appliedSeconds":[%s],"p50":%s,"p95":%s,"refusedSeconds":%s}\n' \
  "$ROUNDS" $((20 * 1024 * 1024)) "$(IFS=,; echo "${applied[*]}")" "$p50" "$p95" "$refused" > .bench/provision.json
