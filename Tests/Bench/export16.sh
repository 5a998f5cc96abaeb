#!/usr/bin/env bash
# Issue 15's row "a 1 h export of 16 cameras at 4 Mbit/s while 128 cameras record: no fragment dropped".
# A disk in /var/tmp is filled through the real writer with SECONDS of bench-4M.mp4 (1080p x264 CBR 4 Mbit/s,
# cut into keyframe fragments) for cameras bench-0 … bench-15 (`hallwatchctl bench-fill --clip-cameras`); then a
# real hallwatch-recorder on the same disk takes 128 streams from `hallwatch-loadgen feed` (the recorder
# bench's saved 4 Mbit/s fragments, each stream at its real rate) while `hallwatchctl export --bundle` writes
# the 16 cameras' SECONDS. Dropped: fragments the feeder sent minus those the recorder indexed for its
# cameras (the index, read after the recorder stopped), and the feeder's stream errors; the feeder's largest
# lag says whether the recorder kept up. A full hour is 2 × 29 GB (records and bundle): SECONDS is cut to what
# /var/tmp holds, and the row says so. Prints one markdown row; writes .bench/export16.json.
# Usage: Tests/Bench/export16.sh [BIN_DIR] [SECONDS] [EXPORTED] [RECORDING]   (default .build/release 3600 16 128)
# Needs .media/bench-4M.v2.frames, the recorder bench's fixture (made by `make bench` / `make bench-quick`).
set -euo pipefail
BIN=${1:-.build/release}; SECONDS_WANTED=${2:-3600}; EXPORTED=${3:-16}; RECORDING=${4:-128}
MEDIA=${BENCH_MEDIA:-.media}
FIXTURE="$MEDIA/bench-4M.v2.frames"
[ -s "$FIXTURE" ] || { echo "export16: $FIXTURE missing (make bench-quick records it)" >&2; exit 1; }
bash Tests/Bench/make-inputs.sh "$MEDIA" 4 >&2
work=$(mktemp -d /var/tmp/hw-bench-export16-XXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Each exported camera's hour is stored once and written once more into the bundle: 2 × 0.5 MB/s per camera.
free_mb=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
fits=$(( (free_mb - 8192 - RECORDING * 64) * 1000000 / (2 * EXPORTED * 510000) ))
secs=$SECONDS_WANTED; [ "$fits" -lt "$secs" ] && secs=$(( fits / 60 * 60 ))
[ "$secs" -ge 60 ] || { echo "export16: /var/tmp has room for ${fits} s only" >&2; exit 1; }

ffmpeg -v error -i "$MEDIA/bench-4M.mp4" -an -c:v copy -video_track_timescale 90000 \
  -movflags +frag_keyframe+empty_moov+default_base_moof -f mp4 "$work/clip.mp4"
# The feed lasts as long as the export would at 100 MB/s, and 30 s more (the row says when the export outlasted it).
feed_secs=$(( EXPORTED * secs * 510000 / 100000000 + 30 ))
# Slots of 8 MiB: the exported cameras' bytes with a margin, and per recording stream its open slot, one more and
# what it records during the feed (slots are preallocated: 128 streams hold 2 GiB of open slots).
slot=$((8 << 20))
slots=$(( EXPORTED * secs * 510000 / slot + EXPORTED * 2 + RECORDING * (feed_secs * 510000 / slot + 3) ))
"$BIN/hallwatchctl" bench-fill "$work/disk0" --box bench --clip "$work/clip.mp4" --clip-cameras "$EXPORTED" \
  --seconds "$secs" --slots "$slots" --slot-size "$slot" >&2
cat > "$work/hw.yaml" <<YAML
box: bench
bus: {socket: $work/bus.sock}
recorder: {socket: $work/rec.sock, disks: [{name: disk0, path: $work/disk0}], fsyncCadence: 1s}
cameras:
YAML
# The recorder takes configured cameras only (their sources are not used here).
for i in $(seq "$RECORDING"); do printf '  - {id: feed-%04d, source: "rtsp://127.0.0.1:9/feed"}\n' "$i"; done >> "$work/hw.yaml"
printf 'listener 0 %s\nallow_anonymous true\nuser %s\npersistence false\n' "$work/bus.sock" "$(id -un)" > "$work/mosquitto.conf"
/usr/sbin/mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
"$BIN/hallwatch-recorder" --config "$work/hw.yaml" > "$work/recorder.log" 2>&1 & rec=$!; pids+=($rec)
for _ in $(seq 300); do [ -S "$work/rec.sock" ] && break; sleep 0.1; done
[ -S "$work/rec.sock" ] || { tail -5 "$work/recorder.log" >&2; exit 1; }

"$BIN/hallwatch-loadgen" feed --socket "$work/rec.sock" --frames "$FIXTURE" --streams "$RECORDING" \
  --seconds "$feed_secs" --camera-prefix feed > "$work/feed.json" 2> "$work/feed.log" & feed=$!; pids+=($feed)
sleep 5
printf 'hallwatch-ed25519-private-v1\n%s\n' "$(head -c 32 /dev/urandom | base64)" > "$work/identity.key"
cams=(); for i in $(seq 0 $((EXPORTED - 1))); do cams+=(--camera "bench-$i"); done
t0=$(date +%s.%N)
/usr/bin/time -v -o "$work/time.txt" "$BIN/hallwatchctl" export --config "$work/hw.yaml" "${cams[@]}" \
  --from "-$((secs + 900))s" --to now --bundle "$work/bundle" --reason bench --case bench-16 --no-hold \
  --signing-key "$work/identity.key" > "$work/export.txt" 2>&1
t1=$(date +%s.%N)
wait "$feed" || true
sleep 3   # a cadence or two: the recorder commits what it took
kill "$rec"; wait "$rec" 2>/dev/null || true

bytes=$(find "$work/bundle/video" -name '*.mp4' -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
files=$(find "$work/bundle/video" -name '*.mp4' | wc -l)
rss=$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p' "$work/time.txt" | awk '{ printf "%.0f", $1 / 1024 }')
python3 - "$work" "$secs" "$EXPORTED" "$RECORDING" "$bytes" "$files" "$t0" "$t1" "$rss" "$SECONDS_WANTED" "$feed_secs" <<'EOF'
import json, os, sqlite3, sys
work, secs, exported, recording, nbytes, files, t0, t1, rss, wanted, feed_secs = sys.argv[1:]
secs, exported, recording, nbytes, files, rss = int(secs), int(exported), int(recording), int(nbytes), int(files), int(rss)
wall = float(t1) - float(t0)
feed = json.load(open(os.path.join(work, "feed.json")))
errors = feed["errors"]
db = sqlite3.connect(f"file:{os.path.join(work, 'disk0', 'index.sqlite')}?mode=ro", uri=True)
indexed, cameras = db.execute(
    "SELECT COALESCE(SUM(fragmentCount), 0), COUNT(DISTINCT camera) FROM chunk WHERE camera LIKE 'feed-%'").fetchone()
dropped = feed["fragments"] - indexed
# A stream the recorder refused or that failed is not "no fragment dropped": the figure says so.
figure = str(dropped) if errors == 0 and cameras == recording and feed["fragments"] > 0 else f"{dropped} (FAIL: streams failed)"
note = "" if secs == int(wanted) else f"; {secs} s of the {wanted} s asked (what /var/tmp holds twice)"
if wall + 5 > int(feed_secs):
    note += f"; the export outlasted the {feed_secs} s feed"
row = (f"| export | {exported} cameras × {secs} s at 4 Mbit/s exported while {recording} cameras record: fragments dropped "
       f"| {figure} | — | — | bundle {files} files, {nbytes / 1e6:.0f} MB in {wall:.1f} s ({nbytes / 1e6 / wall:.0f} MB/s), "
       f"max RSS {rss} MB; feeder sent {feed['fragments']} fragments on {recording} streams, indexed {indexed} "
       f"on {cameras}, stream errors {errors}, lag p99 {feed['lagMs']['p99']:.0f} ms{note} |")
print(row)
os.makedirs(".bench", exist_ok=True)
json.dump({"bench": "export16", "seconds": secs, "exported": exported, "recording": recording, "bundleBytes": nbytes,
           "bundleFiles": files, "bundleSeconds": wall, "maxRSSMB": rss, "feed": feed, "indexed": indexed,
           "dropped": dropped, "streamErrors": errors}, open(".bench/export16.json", "w"))
EOF
