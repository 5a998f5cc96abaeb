#!/usr/bin/env bash
# The USB config drop (issue 17): plug → "safe to remove" for a 20 MiB bundle, health gate included, the first
# signal (plug → the "stick seen" LED pattern written), the time to refuse a stick with a flipped signature
# byte, and the recorder's fragments of the cameras an apply leaves unchanged. A running box (mosquitto,
# recorder, pruner, web and three capture workers of a simulated camera under `hallwatchctl supervise`, from the
# store's `current`) takes ROUNDS bundles in turn (default 5), each changing the retention policy (the pruner
# restarts, the recorder adopts it) and one camera (`hall` alternates between two streams: its worker restarts,
# `lobby`'s and `gym`'s adopt the release); each is a FAT32 image file (mkfs.vfat + mcopy, made before the clock
# starts) processed by `hallwatch-provision --once` exactly as a plugged stick, with an LED-class directory for
# the indicator (plain files here: the provisioner writes trigger/delay_on/delay_off as to sysfs).
# Prints markdown rows in the columns of Tests/Bench/bench.sh's table; writes .bench/provision.json.
# Usage: Tests/Bench/provision.sh [BIN_DIR] [ROUNDS]      (as root: the reader's sandbox uses unshare)
set -euo pipefail
BIN=${1:-.build/release}; ROUNDS=${2:-5}
BIN=$(cd "$BIN" && pwd)
CLIP=$(cd "${BENCH_MEDIA:-.media}" && pwd)/h264-bframes.mp4
[ -f "$CLIP" ] || { echo "no $CLIP (make clips)" >&2; exit 66; }
work=$(mktemp -d /tmp/hw-bench-prov-XXXX)
sup=; cam=
cleanup() {
  if [ -n "$sup" ]; then kill -TERM "$sup" 2>/dev/null || true; wait "$sup" 2>/dev/null || true; fi
  if [ -n "$cam" ]; then kill -TERM "$cam" 2>/dev/null || true; wait "$cam" 2>/dev/null || true; fi
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
rtsp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/led-blue"; : > "$work/led-blue/trigger"; : > "$work/led-blue/delay_on"; : > "$work/led-blue/delay_off"

# stick VERSION [flip]: a FAT32 image with bundle VERSION (hallwatch.yaml + the 20 MiB payload), signed.
stick() {
  local v=$1 tree="$work/tree-$1" d="$work/tree-$1/HALLWATCH/bench-es"
  mkdir -p "$d/files"
  cat > "$d/files/hallwatch.yaml" <<YAML
box: bench
bus: {socket: $work/bus.sock}
recorder: {socket: $work/rec.sock, slotSizeBytes: 8388608, slotCount: 16, disks: [{name: disk0, path: $work/disk0}]}
retention: {maxAge: $((30 + v))d}
capture: {maxFragmentDuration: 1s}
cameras:
  - {id: lobby, source: "rtsp://127.0.0.1:$rtsp/lobby"}
  - {id: gym, source: "rtsp://127.0.0.1:$rtsp/gym"}
  - {id: hall, source: "rtsp://127.0.0.1:$rtsp/hall$((v % 2))"}
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
    --building bench-es --district bench-usd --led "blue=$work/led-blue" "${@:2}"
}
now() { python3 -c 'import time; print(time.monotonic())'; }
# first_signal IMAGE: runs the provisioner on IMAGE; prints "<seconds to the stick-seen pattern> <seconds to the
# end>" and leaves its output in $work/out (the LED's trigger file is polled every 2 ms).
first_signal() {
  : > "$work/led-blue/trigger"
  python3 - "$work/led-blue/trigger" "$work/out" "$BIN/hallwatch-provision" --once --device "$1" \
    --keyring "$work/keyring" --store "$work/store" --serial SN-BENCH --building bench-es --district bench-usd \
    --led "blue=$work/led-blue" <<'PY'
import subprocess, sys, time
trigger, out = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[3:], stdout=open(out, "w"), stderr=subprocess.STDOUT)
seen = None
while p.poll() is None or seen is None:
    if seen is None and open(trigger).read().strip() == "timer":
        seen = time.monotonic() - t0
    if p.poll() is not None and seen is None:
        seen = float("nan")
        break
    time.sleep(0.002)
p.wait()
print("%.3f %.3f %d" % (seen, time.monotonic() - t0, p.returncode))
PY
}

stick 1
provision "$work/stick-1.img" --health-timeout 0 >/dev/null
"$BIN/hallwatch-simcam" --port "$rtsp" --mount "lobby=$CLIP" --mount "gym=$CLIP" --mount "hall0=$CLIP" \
  --mount "hall1=$CLIP" > "$work/simcam.log" 2>&1 &
cam=$!
"$BIN/hallwatchctl" supervise --config "$work/store/current/hallwatch.yaml" --run-directory "$work/run" \
  --status-every 0 --max-restart-delay 500ms --web-config "$work/web.yaml" > "$work/supervise.log" 2>&1 &
sup=$!
sleep 8   # the box is up (the gate would wait for it anyway; this keeps the first round comparable)
cfg="$work/store/current/hallwatch.yaml"
# fragments CAMERA: "<fragments> <runs> <gaps> <largest hole between fragments, s>" from the recorder's index.
fragments() {
  "$BIN/hallwatchctl" recordings --config "$cfg" --camera "$1" --json --fragment-gaps 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
print(sum(run.get("fragments", 0) for run in r["runs"]), len(r["runs"]), len(r["gaps"]),
      round(max([run.get("maxFragmentGap90k", 0) for run in r["runs"]] + [0]) / 90000, 3))'
}
read -r lobby0 _ <<< "$(fragments lobby)"; read -r gym0 _ <<< "$(fragments gym)"

applied=(); signals=()
for i in $(seq 2 $((ROUNDS + 1))); do
  stick "$i"
  read -r seen took status <<< "$(first_signal "$work/stick-$i.img")"
  out=$(cat "$work/out")
  [ "$status" = 0 ] && grep -q 'result: applied' <<< "$out" || { echo "round $i: $out" >&2; exit 1; }
  applied+=("$(python3 -c "print(round($took, 2))")"); signals+=("$seen")
done
sleep 3   # the last fragments of the last round indexed
read -r lobby1 lobbyRuns lobbyGaps lobbyHole <<< "$(fragments lobby)"
read -r gym1 gymRuns gymGaps gymHole <<< "$(fragments gym)"
stick $((ROUNDS + 2)) flip
read -r seen took status <<< "$(first_signal "$work/stick-$((ROUNDS + 2)).img")"
[ "$status" != 0 ] || { echo "the flipped stick was applied" >&2; exit 1; }
refused=$(python3 -c "print(round($took, 2))"); signals+=("$seen")

read -r p50 p95 <<< "$(python3 -c 'import sys, statistics as s; v=sorted(map(float, sys.argv[1:]));
print(round(s.median(v), 2), round(v[min(len(v) - 1, int(0.95 * len(v)))], 2))' "${applied[@]}")"
echo "| USB config drop | plug → safe to remove, 20 MiB bundle on a FAT32 image, health gate included (recorder, web, pruner, bus), s: median / p95 of $ROUNDS | $p50 / $p95 | — | goal ≤ 45 s p95 | mtools read + SHA-256 + staged fsyncs + 3 s settle |"
echo "| USB config drop | refusal of a stick with a flipped signature byte, s | $refused | — | goal ≤ 10 s | signature checked before any file is copied |"
read -r s50 smax <<< "$(python3 -c 'import sys, statistics as s; v=sorted(map(float, sys.argv[1:]));
print(round(s.median(v), 3), round(v[-1], 3))' "${signals[@]}")"
echo "| USB config drop | first signal: plug → \"stick seen\" LED pattern written, s: median / max of $((ROUNDS + 1)) | $s50 / $smax | — | goal ≤ 2 s | process start, volume sniffed, before any file is read |"
# A gap (>= 0.1 s between runs) or a hole of more than 1.5 s between fragments of a run (maxFragmentDuration 1 s)
# counts as dropped; a new run that continues at once (the looping clip's parameter sets) does not.
dropped=$(( lobbyGaps + gymGaps + $(python3 -c "print(int($lobbyHole > 1.5) + int($gymHole > 1.5))") ))
echo "| USB config drop | fragments of the unchanged cameras (lobby, gym) across $ROUNDS applies that change hall: recorded / dropped, largest hole s | $((lobby1 - lobby0 + gym1 - gym0)) / $dropped, $(python3 -c "print(max($lobbyHole, $gymHole))") | — | goal: none dropped | runs $lobbyRuns+$gymRuns, gaps $lobbyGaps+$gymGaps (ActivationTests: their workers keep their pids) |"
[ "$dropped" = 0 ] || echo "unchanged cameras lost fragments during an apply: lobby $lobbyRuns run(s) $lobbyGaps gap(s), gym $gymRuns run(s) $gymGaps gap(s)" >&2
mkdir -p .bench
printf '{"bench":"provision","rounds":%d,"bundleBytes":%d,"appliedSeconds":[%s],"p50":%s,"p95":%s,"refusedSeconds":%s,"firstSignalSeconds":[%s],"unchangedFragments":%d,"unchangedDropped":%d,"unchangedLargestHoleSeconds":%s}\n' \
  "$ROUNDS" $((20 * 1024 * 1024)) "$(IFS=,; echo "${applied[*]}")" "$p50" "$p95" "$refused" "$(IFS=,; echo "${signals[*]}")" \
  $((lobby1 - lobby0 + gym1 - gym0)) "$dropped" "$(python3 -c "print(max($lobbyHole, $gymHole))")" > .bench/provision.json
