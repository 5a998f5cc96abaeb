#!/usr/bin/env bash
# Playback figures (issue 15): time to the first bytes of a playback (`video.mp4` and `video.m4s` of a 10-minute
# window, the first 64 KiB as a <video> element asks them; median of REQUESTS), and the rate at which the box serves
# a whole moov-first MP4 built from the stored fragments, beside `sha256sum` reading the same bytes from the page
# cache in the same run; then, with headless Chromium (.venv-test's selenium), click to first frame and scrub step
# on the timeline page (Tests/Bench/playback_browser.py). One camera recorded for SECONDS through the real writer (`hallwatchctl bench-fill --clip`,
# a 10 s 720p clip at 4 Mbit/s, keyframe every 2 s), mosquitto and hallwatch-web on 127.0.0.1 in a private
# directory; every process started here is stopped by PID.
# Prints markdown table rows (| area | figure | Hallwatch | peer | ratio | notes |); writes .bench/playback.json.
# Usage: Tests/Bench/playback.sh [BIN_DIR] [SECONDS] [REQUESTS]     (defaults .build/release 1200 15)
set -euo pipefail
BIN=${1:-.build/release}; SECONDS_RECORDED=${2:-1200}; REQ=${3:-15}
work=$(mktemp -d /var/tmp/hw-bench-playback-XXXX); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="https://127.0.0.1:$port"

ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=25" -vf "noise=alls=20:allf=t" -t 10 -an \
  -c:v libx264 -preset ultrafast -b:v 4M -minrate 4M -maxrate 4M -bufsize 2M -x264-params nal-hrd=cbr -g 50 \
  -video_track_timescale 90000 -movflags +frag_keyframe+empty_moov+default_base_moof -f mp4 "$work/clip.mp4"
"$BIN/hallwatchctl" bench-fill "$work/disk0" --box bench --clip "$work/clip.mp4" --clip-camera cam-1 \
  --seconds "$SECONDS_RECORDED" --slots $((SECONDS_RECORDED / 60 + 8)) --slot-size $((32 << 20)) > "$work/fill.txt"
from=$(sed -n 's/.*from \([0-9T:.-]*Z\).*/\1/p' "$work/fill.txt")

cat > "$work/mosquitto.conf" <<CONF
listener 0 $work/bus.sock
allow_anonymous true
persistence false
user $(id -un)
CONF
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
cat > "$work/hallwatch.yaml" <<YAML
box: bench
building: Bench Elementary
bus: {socket: $work/bus.sock}
recorder: {socket: $work/recorder.sock, disks: [{name: disk0, path: $work/disk0}]}
cameras: [{id: cam-1, source: "rtsp://127.0.0.1:1/cam-1"}]
YAML
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$work/admin.password"
hash=$("$BIN/hallwatchctl" user hash < "$work/admin.password")
cat > "$work/web.yaml" <<CONF
web:
  listen: [127.0.0.1]
  httpsPort: $port
  stateDirectory: $work/state
users:
  - name: admin
    role: district-admin
    passwordHash: "$hash"
CONF
"$BIN/hallwatch-web" --config "$work/hallwatch.yaml" --web-config "$work/web.yaml" > "$work/web.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -sk -o /dev/null "$base/login" && break; sleep 0.1; done
curl -sk -c "$work/jar" -o /dev/null -H "Origin: $base" -d username=admin \
  --data-urlencode "password=$(cat "$work/admin.password")" "$base/login"

# A window starting 37 s into the second minute: the body starts at the keyframe before it.
start=$(python3 -c "import datetime,sys; t=datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00'))+datetime.timedelta(seconds=97); print(t.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]+'Z')" "$from")
end=$(python3 -c "import datetime,sys; t=datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00'))+datetime.timedelta(seconds=600); print(t.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]+'Z')" "$start")
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
first_bytes_ms() {
  for _ in $(seq "$REQ"); do
    curl -sk -b "$work/jar" -H 'Range: bytes=0-65535' -o /dev/null -w '%{time_starttransfer} %{time_appconnect}\n' \
      "$base/api/v1/cameras/cam-1/video.$1?from=$start&to=$end" | awk '{ printf "%.2f\n", ($1 - $2) * 1000 }'
  done | median
}
mp4_ms=$(first_bytes_ms mp4); m4s_ms=$(first_bytes_ms m4s)

# The whole 10-minute MP4: served MB/s, then sha256sum over the same bytes (page cache) in the same run.
curl -sk -b "$work/jar" -o "$work/body.mp4" -w '%{size_download} %{time_total}\n' \
  "$base/api/v1/cameras/cam-1/video.mp4?from=$start&to=$end" > "$work/serve.txt"
read -r bytes serve_s < "$work/serve.txt"
cat "$work/body.mp4" > /dev/null
t0=$(date +%s.%N); sha256sum "$work/body.mp4" > /dev/null; t1=$(date +%s.%N)
mbs=$(awk -v b="$bytes" -v s="$serve_s" 'BEGIN { printf "%.0f", b / 1e6 / s }')
sha=$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", b / 1e6 / (c - a) }')
ratio=$(awk -v a="$mbs" -v b="$sha" 'BEGIN { printf "%.2f", a / b }')
frames=$(ffprobe -v error -select_streams v:0 -show_entries stream=nb_frames -of csv=p=0 "$work/body.mp4")

echo "| playback | first 64 KiB of a 10-min video.mp4 (moov built from the stored fragments), ms (median of $REQ) | $mp4_ms | video.m4s $m4s_ms | — | after TLS; goal: click to first frame ≤ 300 ms |"
echo "| playback | video.mp4 served, 10 min of a 4 Mbit/s camera ($((bytes / 1000000)) MB, $frames frames), MB/s | $mbs | sha256sum $sha | ${ratio}× | one HTTPS connection, curl to a file; sha256sum on the same bytes from the page cache |"

# The timeline in headless Chromium (Tests/Bench/playback_browser.py): click to first frame and scrub step, medians.
click_ms=null; scrub_ms=null
if [ -x .venv-test/bin/python3 ] && [ -x /usr/bin/chromium ]; then
  from_ms=$(python3 -c "import datetime,sys; print(round(datetime.datetime.fromisoformat(sys.argv[1].replace('Z','+00:00')).timestamp()*1000))" "$from")
  WEB_URL="$base/" ADMIN_PASSWORD_FILE="$work/admin.password" CAMERA=cam-1 FROM_MS="$from_ms" ROUNDS=9 \
    .venv-test/bin/python3 Tests/Bench/playback_browser.py > "$work/browser.json"
  cat "$work/browser.json" >&2
  click_ms=$(python3 -c "import json,statistics,sys; print('%.0f' % statistics.median(json.load(open(sys.argv[1]))['clickMs']))" "$work/browser.json")
  scrub_ms=$(python3 -c "import json,statistics,sys; print('%.0f' % statistics.median(json.load(open(sys.argv[1]))['scrubMs']))" "$work/browser.json")
  echo "| playback | click to first frame on the timeline, headless Chromium 1366x768, ms (median of 9) | $click_ms | goal 300 | $(awk -v a="$click_ms" 'BEGIN { printf "%.2f", a / 300 }') | release of the click to the frame at that time presented (requestVideoFrameCallback), page cache warm |"
  echo "| playback | scrub step (keyframe at or before the pointer shown), ms (median of 9) | $scrub_ms | goal 150 | $(awk -v a="$scrub_ms" 'BEGIN { printf "%.2f", a / 150 }') | pointer move while dragging to the scrub video's first presented frame |"
fi
mkdir -p .bench
printf '{"bench":"playback","firstBytesMP4Ms":%s,"firstBytesM4SMs":%s,"bytes":%d,"servedMBps":%s,"sha256sumMBps":%s,"frames":%s,"clickToFirstFrameMs":%s,"scrubStepMs":%s}\n' \
  "$mp4_ms" "$m4s_ms" "$bytes" "$mbs" "$sha" "${frames:-0}" "$click_ms" "$scrub_ms" > .bench/playback.json
