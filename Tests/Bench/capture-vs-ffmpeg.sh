#!/usr/bin/env bash
# Measures one hallwatch-capture worker against `ffmpeg -c copy` on the same simulated RTSP stream:
# CPU (user+sys, % of one core) and RSS/PSS, over SECONDS. Everything on 127.0.0.1, stopped by PID.
# Usage: Tests/Bench/capture-vs-ffmpeg.sh [BIN_DIR] [SECONDS] [CLIP]
set -euo pipefail
BIN=${1:-.build/release}; SECS=${2:-60}; CLIP=${3:-.media/fullhd.mp4}
work=$(mktemp -d /tmp/hw-bench-XXXX); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/hallwatch-simcam" --port "$port" --mount cam="$CLIP" > "$work/simcam.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do grep -q "simcam ready" "$work/simcam.log" && break; sleep 0.2; done
url="rtsp://127.0.0.1:$port/cam"
cat > "$work/hw.yaml" <<YAML
box: bench
bus: {socket: $work/bus.sock}
recorder: {socket: $work/rec.sock, directory: $work/disk, slotSizeBytes: 33554432, slotCount: 16}
cameras:
  - {id: cam, source: "$url"}
YAML
printf 'listener 0 %s\nallow_anonymous true\nuser %s\npersistence false\n' "$work/bus.sock" "$(id -un)" > "$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
"$BIN/hallwatch-recorder" --config "$work/hw.yaml" > "$work/recorder.log" 2>&1 & pids+=($!)
sleep 3

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
measure() { # name pid
  local name=$1 pid=$2; sleep 5
  local c0; c0=$(cpu "$pid"); local t0; t0=$(date +%s.%N)
  sleep "$SECS"
  local c1; c1=$(cpu "$pid"); local t1; t1=$(date +%s.%N)
  local rss; rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  local pss; pss=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")
  python3 -c "print(f'| $name | {100*($c1-$c0)/$ticks/($t1-$t0):.2f} | {$rss/1024:.1f} | {$pss/1024:.1f} |')"
}
echo "| process (${CLIP##*/}, ${SECS}s) | CPU % of one core | RSS MB | PSS MB |"
echo "|---|---|---|---|"
"$BIN/hallwatch-capture" --config "$work/hw.yaml" --camera cam > "$work/capture.log" 2>&1 & cap=$!; pids+=($cap)
measure hallwatch-capture "$cap"
kill "$cap"
ffmpeg -nostdin -v error -rtsp_transport tcp -i "$url" -c copy -f mp4 -movflags frag_keyframe+empty_moov "$work/ff.mp4" & ff=$!; pids+=($ff)
measure "ffmpeg -c copy" "$ff"
kill "$ff"
