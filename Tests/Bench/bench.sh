#!/usr/bin/env bash
# `make bench`: Hallwatch's performance figures next to what a user would run instead, measured in the same
# run on the same input (README § Benchmarks explains how to read the table).
#
# Usage: Tests/Bench/bench.sh [--quick] [BIN_DIR]        (BIN_DIR: release binaries, default .build/release)
# Prints one markdown table; writes .bench/bench-<mode>-<time>.json and .bench/latest-<mode>.{json,md}.
#
# Sections (each figure is the median of several measurement windows; the process set stays up across them):
#   1. ingest      hallwatch-capture vs ffmpeg -c copy vs gst-launch rtspsrc…splitmuxsink, N cameras each
#                  (cameras: hallwatch-simcam, GStreamer's RTSP server)
#   2. whole box   capture + recorder + bus (+ pruner when built) on N 4 Mbit/s cameras, N ramped up
#                  (cameras: hallwatch-loadgen rtsp, pre-packetised, so they do not take the box's cores);
#                  at the largest reported N also with every camera watched (hallwatch-loadgen live on the
#                  recorder's live socket: per-frame live chunks on) against unwatched
#   3. recorder    the recorder alone, fed N synthetic streams by hallwatch-loadgen feed
#   4. durability  kill -9 the recorder in a loop: media lost per camera, restart-to-recording time
#   5. drop-ins    Tests/Bench/pruner.sh, discovery.sh, export.sh, export16.sh, web.sh, map.sh, live.sh, viewers.sh (rows from the
#                  other issues), else pending; export16.sh uses section 3's fixture
# Everything listens on 127.0.0.1 or Unix sockets in a private directory; every process started here is
# stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE=full
[ "${1:-}" = "--quick" ] && { MODE=quick; shift; }
BIN=${1:-.build/release}
MEDIA=${BENCH_MEDIA:-.media}
LIB="python3 Tests/Bench/benchlib.py"
for t in hallwatch-capture hallwatch-recorder hallwatch-simcam hallwatchctl hallwatch-loadgen; do
  [ -x "$BIN/$t" ] || { echo "bench: $BIN/$t missing (swift build -c release)" >&2; exit 1; }
done
BIN=$(cd "$BIN" && pwd)
mkdir -p .bench
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
T_START=$(date +%s.%N)
RUN=$(mktemp -d /var/tmp/hw-bench-XXXX)   # on the real disk: the recorder's fdatasync must mean something
# ffmpeg's and GStreamer's MP4 output goes to tmpfs (deleted after each step): a real write like the capture
# worker's send to the sink, without making the disk part of the ingest figure.
SHM=$(mktemp -d /dev/shm/hw-bench-XXXX)
RES=$RUN/results.jsonl; : > "$RES"
mkdir -p "$RUN/logs"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$SHM"
  [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $RUN" >&2 || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '[bench %6ss] %s\n' "$(since "$T_START")" "$*" >&2; }
# bg NAME CMD...: starts CMD in the background, logging to $RUN/logs/NAME.log; sets LAST.
bg() { local name=$1; shift; "$@" > "$RUN/logs/$name.log" 2>&1 & LAST=$!; PIDS+=("$LAST"); }
# stop PID...: SIGTERM, then wait (SIGKILL after 5 s).
stop() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0; for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
csv() { local IFS=,; echo "$*"; }
wait_for() { local secs=$1; shift; for _ in $(seq $((secs * 10))); do "$@" && return 0; sleep 0.1; done; return 1; }

if [ $MODE = quick ]; then
  RATES=(2 8); COUNTS=(16); WIN=2; WSEC=3; WARM=3
  BOX_STEPS=(16); BOX_REPORT=(16); REC_WIN=2; REC_WSEC=3; PERF_SEC=3; REC_SEARCH=(); KILLS=2
else
  RATES=(2 8); COUNTS=(1 16 64); WIN=3; WSEC=5; WARM=5
  BOX_STEPS=(16 32 64 96 128 192 256); BOX_REPORT=(16 64 128); REC_WIN=3; REC_WSEC=5; PERF_SEC=5; REC_SEARCH=(64 96 128 160 192 256); KILLS=8
fi

# BENCH_SECTIONS (default: all) picks sections, e.g. BENCH_SECTIONS="box" to rerun the whole-box search alone.
BENCH_SECTIONS=${BENCH_SECTIONS:-"ingest box recorder durability dropins"}
# BENCH_BOX_STEPS (space-separated camera counts) replaces the whole-box steps, e.g. BENCH_BOX_STEPS="128"
# to measure 128 cameras (and the live path there) without the ramp to 256.
if [ -n "${BENCH_BOX_STEPS:-}" ]; then read -ra BOX_STEPS <<< "$BENCH_BOX_STEPS"; fi
want() { [[ " $BENCH_SECTIONS " == *" $1 "* ]]; }

# ---------------------------------------------------------------- inputs, shared services
bash Tests/Bench/make-inputs.sh "$MEDIA" 2 4 8
disk_mbs=""
if [ $MODE = full ]; then
  # The disk's own speed, for reading the recorder figures (256 MB written with fdatasync).
  disk_mbs=$(dd if=/dev/zero of="$RUN/dd" bs=1M count=256 conv=fdatasync 2>&1 | awk '/copied/ {print $(NF-1) * ($NF == "GB/s" ? 1000 : 1)}'); rm -f "$RUN/dd"
fi
printf 'listener 0 %s\nallow_anonymous true\nuser %s\npersistence false\nmax_queued_messages 10000\n' "$RUN/bus.sock" "$(id -un)" > "$RUN/mosquitto.conf"
bg mosquitto /usr/sbin/mosquitto -c "$RUN/mosquitto.conf"; MQ=$LAST
bg simcam "$BIN/hallwatch-simcam" --port 0 --mount b2="$MEDIA/bench-2M.mp4" --mount b4="$MEDIA/bench-4M.mp4" --mount b8="$MEDIA/bench-8M.mp4"; SIMCAM=$LAST
wait_for 20 grep -q "simcam ready" "$RUN/logs/simcam.log" || { cat "$RUN/logs/simcam.log" >&2; exit 1; }
URL_BASE=$(grep -o 'rtsp://127.0.0.1:[0-9]*' "$RUN/logs/simcam.log" | head -1)

# config FILE RECORDER_SOCKET DISK_DIR SLOT_COUNT SOURCE N [PREFIX]: a box config with N cameras. SOURCE is a
# simcam mount name (every camera pulls $URL_BASE/SOURCE) or a URL in which {i} becomes the camera's index
# from 0 (rtsp://…/cam{i} for the loadgen's cameras).
config() {
  local file=$1 sock=$2 dir=$3 slots=$4 source=$5 n=$6 prefix=${7:-cam} i
  [[ $source == rtsp://* ]] || source="$URL_BASE/$source"
  {
    echo "box: bench"
    echo "bus: {socket: $RUN/bus.sock}"
    echo "recorder: {socket: $sock, disks: [{name: disk0, path: $dir}], slotSizeBytes: 4194304, slotCount: $slots, fsyncCadence: 1s}"
    echo "cameras:"
    for i in $(seq "$n"); do printf '  - {id: %s-%04d, source: "%s"}\n' "$prefix" "$i" "${source//\{i\}/$((i - 1))}"; done
  } > "$file"
}

# ---------------------------------------------------------------- 1. ingest
if want ingest; then
bg sink "$BIN/hallwatch-loadgen" sink --socket "$RUN/sink.sock" --stats "$RUN/sink.json"; SINK=$LAST
wait_for 10 test -S "$RUN/sink.sock"
maxn=$(printf '%s\n' "${COUNTS[@]}" | sort -n | tail -1)
for mbit in "${RATES[@]}"; do
  config "$RUN/ingest-$mbit.yaml" "$RUN/sink.sock" "$RUN/unused" 4 "b$mbit" "$maxn"
  for n in "${COUNTS[@]}"; do
    for tool in hallwatch ffmpeg gstreamer; do
      log "ingest: $tool, $n × $mbit Mbit/s"
      url="$URL_BASE/b$mbit"; tp=()
      for i in $(seq "$n"); do
        id=$(printf 'cam-%04d' "$i")
        case $tool in
          hallwatch) bg "cap-$mbit-$n-$i" "$BIN/hallwatch-capture" --config "$RUN/ingest-$mbit.yaml" --camera "$id" ;;
          ffmpeg) bg "ff-$mbit-$n-$i" ffmpeg -nostdin -v error -rtsp_transport tcp -i "$url" -c copy -f mp4 \
                    -movflags frag_keyframe+empty_moov -y "$SHM/ff-$i.mp4" ;;
          gstreamer) bg "gst-$mbit-$n-$i" gst-launch-1.0 -q rtspsrc location="$url" protocols=tcp latency=200 ! parsebin \
                       ! splitmuxsink location="$SHM/gst-$i-%03d.mp4" max-size-time=60000000000 ;;
        esac
        tp+=("$LAST")
      done
      sleep "$WARM"
      extra='{}'
      if [ $tool = hallwatch ]; then
        # Every worker must be delivering: fragments seen at the sink per camera, and no sequence gaps.
        extra=$(python3 - "$RUN/sink.json" "$n" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
ids = [f"cam-{i:04d}" for i in range(1, n + 1)]
print(json.dumps({"sinkSnapshot": {i: d["cameras"].get(i, {}).get("fragments", 0) for i in ids},
                  "gaps": sum(d["cameras"].get(i, {}).get("gaps", 0) for i in ids)}))
EOF
)
      fi
      $LIB sample --label "ingest/$tool/$mbit/$n" --out "$RES" --windows "$WIN" --seconds "$WSEC" \
        --group tool="$(csv "${tp[@]}")" --group camera="$SIMCAM" --pss tool --extra "$extra"
      if [ $tool = hallwatch ]; then
        # Workers whose fragment count did not grow during the windows: not recording.
        python3 - "$RUN/sink.json" "$RES" "$n" "$extra" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[3]); before = json.loads(sys.argv[4])["sinkSnapshot"]
short = [i for i, c in before.items() if d["cameras"].get(i, {}).get("fragments", 0) <= c]
lines = open(sys.argv[2]).read().splitlines(); last = json.loads(lines[-1]); last["short"] = len(short)
lines[-1] = json.dumps(last); open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOF
      fi
      stop "${tp[@]}"
      rm -f "$SHM"/*
    done
  done
done
stop "$SINK"

fi

# ---------------------------------------------------------------- fixture for the recorder bench
if want recorder; then
FIXTURE="$MEDIA/bench-4M.v2.frames"   # data-plane version 2 frames (HallwatchDataPlane.SegmentFile)
if [ ! -s "$FIXTURE" ]; then
  log "recorder fixture: recording 17 fragments of bench-4M.mp4 through hallwatch-capture (cached in $FIXTURE)"
  config "$RUN/fixture.yaml" "$RUN/fix.sock" "$RUN/unused" 4 b4 1
  bg fixsink "$BIN/hallwatch-loadgen" sink --socket "$RUN/fix.sock" --save "$RUN/fixture.frames" --save-fragments 17; fs=$LAST
  wait_for 10 test -S "$RUN/fix.sock"
  bg fixcap "$BIN/hallwatch-capture" --config "$RUN/fixture.yaml" --camera cam-0001; fc=$LAST
  wait_for 60 test -s "$RUN/fixture.frames" || { echo "bench: no fixture recorded" >&2; exit 1; }
  stop "$fc" "$fs"
  cp "$RUN/fixture.frames" "$FIXTURE.tmp-$$" && mv "$FIXTURE.tmp-$$" "$FIXTURE"
fi

fi

# ---------------------------------------------------------------- 2. whole box
if want box; then
if [ -x "$BIN/hallwatch-pruner" ]; then HAVE_PRUNER=1; else HAVE_PRUNER=0; fi
boxmax=${BOX_STEPS[-1]}
# The cameras: one hallwatch-loadgen rtsp serving bench-4M.mp4 on /cam0…, pre-packetised once (≈ 0.1 % of a
# core per stream here, against the simcam's 1–1.5 %), so at 128 cameras the camera side does not take the
# cores the box is being measured on. Its CPU is still measured and subtracted, and shown in the notes.
bg box-cameras "$BIN/hallwatch-loadgen" rtsp --media "$MEDIA/bench-4M.mp4" --port 0 --streams "$boxmax" --stats "$RUN/box-cameras.json"; BCAM=$LAST
wait_for 20 grep -q "loadgen rtsp ready" "$RUN/logs/box-cameras.log" || { cat "$RUN/logs/box-cameras.log" >&2; exit 1; }
BOX_URL=$(grep -o 'rtsp://127.0.0.1:[0-9]*' "$RUN/logs/box-cameras.log" | head -1)
config "$RUN/box.yaml" "$RUN/box-rec.sock" "$RUN/box-disk" $((boxmax * 2 + 32)) "$BOX_URL/cam{i}" "$boxmax"
log "whole box: disk init ($((boxmax * 2 + 32)) slots of 4 MiB)"
"$BIN/hallwatchctl" disk init "$RUN/box-disk" --config "$RUN/box.yaml" --slots $((boxmax * 2 + 32)) --slot-size 4M > "$RUN/logs/box-init.log" 2>&1
bg box-recorder "$BIN/hallwatch-recorder" --config "$RUN/box.yaml"; BREC=$LAST
wait_for 30 test -S "$RUN/box-rec.sock"
box_extra=(); PRUNER=""
if [ $HAVE_PRUNER = 1 ]; then bg box-pruner "$BIN/hallwatch-pruner" --config "$RUN/box.yaml"; PRUNER=$LAST; fi
bg box-recsub mosquitto_sub --unix "$RUN/bus.sock" -t 'hallwatch/v1/bench/camera/+/recording' -F '%t %p'
# The live path's cost (issue 14) is measured at LIVE_N cameras: the largest reported size among the steps
# (else the largest step).
LIVE_N=""
for r in "${BOX_REPORT[@]}"; do [[ " ${BOX_STEPS[*]} " == *" $r "* ]] && LIVE_N=$r; done
LIVE_N=${LIVE_N:-$boxmax}
# workers_logged TEXT: how many capture workers' logs hold TEXT.
workers_logged() { { grep -l -F "$1" "$RUN"/logs/box-cap-*.log || true; } | wc -l; }
# all_off N: at least N workers logged turning live chunks off.
all_off() { [ "$(workers_logged 'nobody watches: live chunks off')" -ge "$1" ]; }
# box_live N: after step N's own sample (nobody watches: chunks off), hallwatch-loadgen live subscribes to
# every camera on the recorder's live socket, so the recorder tells each capture worker someone watches (P7)
# and the workers send per-frame chunks beside their fragments (P6). Once every camera's chunks flow, the
# same groups are sampled (box-live/N); the subscriber is stopped by PID and, once the workers have turned
# chunks off, they are sampled again (box-liveoff/N). The subscriber's own CPU is a group of its own, not
# the box's. Appends the "box-live" record: capture + recorder CPU on against off (both off samples).
box_live() {
  local n=$1 live_sock=$RUN/box-rec-live.sock s0 s1 t0 t1 warn0 warn1 on_workers off_workers blive
  wait_for 10 test -S "$live_sock" || { log "whole box: no live socket at $live_sock"; return 0; }
  log "whole box: $n cameras watched (hallwatch-loadgen live)"
  bg box-live "$BIN/hallwatch-loadgen" live --socket "$live_sock" --cameras "$n" --prefix cam- --stats "$RUN/box-live.json"
  blive=$LAST
  wait_for 30 grep -q "loadgen live ready" "$RUN/logs/box-live.log" || log "whole box: loadgen live not ready"
  # A worker starts chunks at the next keyframe of a settled run (Protocol.md, P7): a few seconds.
  for _ in $(seq 30); do
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["camerasWithChunks"] < int(sys.argv[2]))' \
      "$RUN/box-live.json" "$n" 2>/dev/null && break
    sleep 1
  done
  sleep 2
  cp "$RUN/box-live.json" "$RUN/box-live-0.json"
  s0=$(snap); t0=$(date +%s.%N); warn0=$(cat "$RUN"/logs/box-cap-*.log | grep -c -E 'offline|dropp|backlog' || true)
  local groups=(--group hallwatch="$hw" --group capture="$(csv "${caps[@]}")" --group recorder="$BREC" --group camera="$BCAM")
  $LIB sample --label "box-live/$n" --out "$RES" --windows "$WIN" --seconds "$WSEC" "${groups[@]}" --group live="$blive"
  cp "$RUN/box-live.json" "$RUN/box-live-1.json"
  s1=$(snap); t1=$(date +%s.%N); warn1=$(cat "$RUN"/logs/box-cap-*.log | grep -c -E 'offline|dropp|backlog' || true)
  on_workers=$(workers_logged 'someone watches: live chunks on')
  stop "$blive"
  # The recorder notices the subscriber gone within 1 s (L5) and tells the workers (P7), which stop at once.
  wait_for 10 all_off "$on_workers" || true
  off_workers=$(workers_logged 'nobody watches: live chunks off')
  sleep 2
  $LIB sample --label "box-liveoff/$n" --out "$RES" --windows "$WIN" --seconds "$WSEC" "${groups[@]}"
  local v
  v=$(python3 - "$RES" "$n" "$RUN/box-live-0.json" "$RUN/box-live-1.json" "$s0" "$s1" "$t0" "$t1" "$warn0" "$warn1" \
    "$on_workers" "$off_workers" <<'EOF'
import json, statistics, sys
res, n = sys.argv[1], int(sys.argv[2])
l0, l1 = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
s0, s1 = json.loads(sys.argv[5]), json.loads(sys.argv[6])
wall = float(sys.argv[8]) - float(sys.argv[7]); warn = int(sys.argv[10]) - int(sys.argv[9])
recs = {}
for line in open(res):
    r = json.loads(line); recs[r["label"]] = r
def med(ws, key):
    return statistics.median(key(w) for w in ws) if ws else None
both = lambda w: w["cpu"]["capture"] + w["cpu"]["recorder"]
before, on, after = (recs[f"{l}/{n}"]["windows"] for l in ("box-raw", "box-live", "box-liveoff"))
ids = [f"cam-{i:04d}" for i in range(1, n + 1)]
grew = lambda k: [i for i in ids if l1["cameras"].get(i, {}).get(k, 0) > l0["cameras"].get(i, {}).get(k, 0)]
out = {"label": "box-live", "cameras": n,
       # capture + recorder, % of one core: chunks on, and off (the windows before and after, together)
       "onPercent": med(on, both), "offPercent": med(before + after, both),
       "offBeforePercent": med(before, both), "offAfterPercent": med(after, both),
       "capturePercent": {"on": med(on, lambda w: w["cpu"]["capture"]), "off": med(before + after, lambda w: w["cpu"]["capture"])},
       "recorderPercent": {"on": med(on, lambda w: w["cpu"]["recorder"]), "off": med(before + after, lambda w: w["cpu"]["recorder"])},
       "subscriberPercent": med(on, lambda w: w["cpu"]["live"]),
       # during the chunks-on windows: cameras whose chunks reached the subscriber, and the flow
       "camerasDelivered": len(grew("chunks")), "camerasWithMedia": len(grew("units")),
       "chunksPerSecond": (l1["chunks"] - l0["chunks"]) / wall, "liveMBs": (l1["bytes"] - l0["bytes"]) / wall / 1e6,
       "fragmentsForwarded": l1["fragments"] - l0["fragments"],
       # over the whole subscription
       "drops": l1["drops"], "skipped": l1["skipped"], "reconnects": l1["connections"] - n, "errors": l1["errors"],
       "workersChunksOn": int(sys.argv[11]), "workersChunksOff": int(sys.argv[12]),
       # the data plane while watched: cameras whose recorded seconds fell short, workers' warnings
       "recordedShort": len([i for i in ids if s1.get(i, 0) - s0.get(i, 0) < wall - 2.5]), "captureWarnings": warn,
       "wallSeconds": wall}
open(res, "a").write(json.dumps(out) + "\n")
ratio = out["onPercent"] / out["offPercent"] if out["offPercent"] else float("nan")
print(f"live on {out['onPercent']:.1f} % vs off {out['offPercent']:.1f} % ({ratio:.2f}x); "
      f"{out['camerasDelivered']} of {n} cameras delivered chunks, {out['drops']} drops")
EOF
)
  log "whole box: $n cameras watched: $v"
}
caps=(); started=0
for n in "${BOX_STEPS[@]}"; do
  log "whole box: $n cameras"
  for i in $(seq $((started + 1)) "$n"); do
    bg "box-cap-$i" "$BIN/hallwatch-capture" --config "$RUN/box.yaml" --camera "$(printf 'cam-%04d' "$i")"; caps+=("$LAST")
  done
  started=$n
  sleep $((WARM + 2))
  snap() { python3 - "$RUN/logs/box-recsub.log" <<'EOF'
import json, sys
last = {}
for line in open(sys.argv[1], errors="replace"):
    t, _, p = line.partition(" ")
    try: last[t.split("/")[4]] = json.loads(p)["recordedSeconds"]
    except Exception: pass
print(json.dumps(last))
EOF
  }
  s0=$(snap); t0=$(date +%s.%N); warn0=$(cat "$RUN"/logs/box-cap-*.log | grep -c -E 'offline|dropp|backlog' || true)
  cp "$RUN/box-cameras.json" "$RUN/box-cameras-0.json"
  hw=$(csv "${caps[@]}" "$BREC" "$MQ" ${PRUNER:+"$PRUNER"})
  $LIB sample --label "box-raw/$n" --out "$RES" --windows "$WIN" --seconds "$WSEC" \
    --group hallwatch="$hw" --group capture="$(csv "${caps[@]}")" --group recorder="$BREC" --group camera="$BCAM"
  sleep 2
  s1=$(snap); t1=$(date +%s.%N); warn1=$(cat "$RUN"/logs/box-cap-*.log | grep -c -E 'offline|dropp|backlog' || true)
  verdict=$(python3 - "$RES" "$n" "$s0" "$s1" "$t0" "$t1" "$warn0" "$warn1" "$RUN/box-cameras-0.json" "$RUN/box-cameras.json" <<'EOF'
import json, statistics, sys
res, n = sys.argv[1], int(sys.argv[2]); s0, s1 = json.loads(sys.argv[3]), json.loads(sys.argv[4])
wall = float(sys.argv[6]) - float(sys.argv[5]); warn = int(sys.argv[8]) - int(sys.argv[7])
c0, c1 = json.load(open(sys.argv[9])), json.load(open(sys.argv[10]))
r = json.loads(open(res).read().splitlines()[-1])
busy = statistics.median(w["cpu"]["hallwatch"] for w in r["windows"]) / 2   # % of the 2-core box
idle = 100 - busy
ids = [f"cam-{i:04d}" for i in range(1, n + 1)]
# recorded media per camera over the window: within cadence + one fragment + 0.5 s of the wall time
short = [i for i in ids if s1.get(i, 0) - s0.get(i, 0) < wall - 2.5]
why = []
if idle < 40: why.append(f"idle {idle:.0f} %")
if short: why.append(f"{len(short)} cameras recorded short")
if warn > 0: why.append(f"{warn} capture warnings (offline/drop)")
out = {"label": f"box/{n}", "cameras": n, "windows": r["windows"], "processes": r["processes"], "pss": {},
       "idlePercent": idle, "recorderPercent": statistics.median(w["cpu"]["recorder"] for w in r["windows"]),
       "cameraPercent": statistics.median(w["cpu"]["camera"] for w in r["windows"]), "cameraSide": "loadgen rtsp",
       # the camera side's own trouble over this step's windows: packets sent > 50 ms late, clients dropped
       "cameraStats": {k: c1[k] - c0[k] for k in ("packetsSent", "packetsLate", "clientsDropped")},
       "boxBusyPercentAll": statistics.median(w["boxBusyPercent"] for w in r["windows"]),
       "ok": not why, "why": ", ".join(why), "wallSeconds": wall}
open(res, "a").write(json.dumps(out) + "\n")
print(("ok" if not why else "FAIL " + ", ".join(why)) + f" (idle {idle:.0f} %)")
EOF
)
  log "whole box: $n cameras: $verdict"
  if [ "$n" = "$LIVE_N" ]; then box_live "$n"; fi
  # Past the reported sizes, the first failing step ends the search (it is the answer).
  case $verdict in FAIL*) [ "$n" -ge "${BOX_REPORT[-1]}" ] && break ;; esac
done
stop "${caps[@]}"; stop "$BREC" ${PRUNER:+"$PRUNER"}; stop "$BCAM"
rm -rf "$RUN/box-disk"

fi

# ---------------------------------------------------------------- 3. recorder alone (issue 3)
if want recorder; then
# One disk for every step, made once; slots of 4 MiB (8 s at 4 Mbit/s): the ring wraps during the steps,
# so slot reuse is part of the measured cost (as on a full disk without a pruner).
recmax=128; for n in "${REC_SEARCH[@]}"; do [ "$n" -gt $recmax ] && recmax=$n; done
# Two slots per stream and a reserve: with fewer (320 slots for 192 streams) ring reuse found no reusable
# slot and the recorder closed streams with storage.full, which measured the disk size, not the recorder.
recslots=$((recmax * 2 + 64))
config "$RUN/rec.yaml" "$RUN/rec.sock" "$RUN/rec-disk" $recslots b4 "$recmax" feed
log "recorder: disk init ($recslots slots of 4 MiB)"
"$BIN/hallwatchctl" disk init "$RUN/rec-disk" --config "$RUN/rec.yaml" --slots $recslots --slot-size 4M > "$RUN/logs/rec-init.log" 2>&1
fixture_rate=$(python3 - "$FIXTURE" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read(); o = 0; frags = 0; byts = 0; dur = 0
while o + 48 <= len(b):
    kind = b[o + 4]; d = struct.unpack_from("<I", b, o + 20)[0]; n = struct.unpack_from("<I", b, o + 40)[0]
    if kind == 3: frags += 1; byts += n + 48; dur += d
    o += 48 + n
print(frags / (dur / 90000), byts / (dur / 90000) / 1e6)
EOF
)
read -r FRAG_PER_S MB_PER_S <<< "$fixture_rate"
# recorder_run N SECONDS LABEL: a fresh recorder, N feeder streams; sets FEED (its JSON) and RECPID.
recorder_run() {
  local n=$1 secs=$2 label=$3
  bg "rec-$label" "$BIN/hallwatch-recorder" --config "$RUN/rec.yaml"; RECPID=$LAST
  wait_for 30 test -S "$RUN/rec.sock"
  rm -f "$RUN/feed.json"
  "$BIN/hallwatch-loadgen" feed --socket "$RUN/rec.sock" --frames "$FIXTURE" --streams "$n" --seconds "$secs" \
    --camera-prefix feed --stats "$RUN/feed.json" > "$RUN/feed-$label.json" 2> "$RUN/logs/feed-$label.log" & FEEDPID=$!; PIDS+=("$FEEDPID")
}
log "recorder: 128 streams × 4 Mbit/s"
secs=$((3 + REC_WIN * (REC_WSEC + PERF_SEC + 1) + 2))
recorder_run 128 "$secs" main
sleep 3
for w in $(seq "$REC_WIN"); do
  $LIB sample --label "recorder/128/w$w" --out "$RES" --windows 1 --seconds "$REC_WSEC" --group recorder="$RECPID" --stats feed="$RUN/feed.json"
  $LIB perf --label perf/recorder/128 --out "$RES" --pid "$RECPID" --seconds "$PERF_SEC" --stats "$RUN/feed.json"
done
wait "$FEEDPID" || true
stop "$RECPID"
python3 - "$RES" "$RUN/feed-main.json" "$FRAG_PER_S" "$MB_PER_S" <<'EOF'
import json, sys
res = sys.argv[1]; recs = [json.loads(l) for l in open(res)]
ws = [w for r in recs if r["label"].startswith("recorder/128/w") for w in r["windows"]]
feed = json.load(open(sys.argv[2]))
out = {"label": "recorder/128", "windows": ws, "feed": feed, "streams": 128,
       "offeredFragments": 128 * float(sys.argv[3]), "offeredMBs": 128 * float(sys.argv[4])}
open(res, "a").write(json.dumps(out) + "\n")
EOF
for n in "${REC_SEARCH[@]}"; do
  log "recorder: search, $n streams"
  recorder_run "$n" 15 "s$n"
  wait "$FEEDPID" || true
  stop "$RECPID"
  v=$(python3 - "$RES" "$RUN/feed-s$n.json" "$n" <<'EOF'
import json, sys
f = json.load(open(sys.argv[2])); n = int(sys.argv[3]); why = []
if f["errors"]: why.append(f"{f['errors']} stream errors")
if f["lagMs"]["p99"] > 1000: why.append(f"lag p99 {f['lagMs']['p99']:.0f} ms")
if f["lagMedianLastThirdMs"] > f["lagMedianFirstThirdMs"] + 250: why.append(f"lag grows {f['lagMedianFirstThirdMs']:.0f}→{f['lagMedianLastThirdMs']:.0f} ms")
open(sys.argv[1], "a").write(json.dumps({"label": f"recorder/search/{n}", "streams": n, "feed": f, "ok": not why, "why": ", ".join(why)}) + "\n")
print("ok" if not why else "FAIL " + ", ".join(why))
EOF
)
  log "recorder: $n streams: $v"
  [[ $v == FAIL* ]] && break
done
rm -rf "$RUN/rec-disk"

fi

# ---------------------------------------------------------------- 4. durability: kill -9 the recorder
if want durability; then
log "durability: $KILLS kills of the recorder, 4 cameras at 4 Mbit/s"
config "$RUN/dur.yaml" "$RUN/dur-rec.sock" "$RUN/dur-disk" 64 b4 4 dur
"$BIN/hallwatchctl" disk init "$RUN/dur-disk" --config "$RUN/dur.yaml" --slots 64 --slot-size 4M > "$RUN/logs/dur-init.log" 2>&1
bg dur-recsub mosquitto_sub --unix "$RUN/bus.sock" -t 'hallwatch/v1/bench/camera/+/recording' -F '%U %t %p'
bg dur-rec0 "$BIN/hallwatch-recorder" --config "$RUN/dur.yaml"; DREC=$LAST
wait_for 30 test -S "$RUN/dur-rec.sock"
dcaps=()
for i in 1 2 3 4; do bg "dur-cap-$i" "$BIN/hallwatch-capture" --config "$RUN/dur.yaml" --camera "dur-000$i"; dcaps+=("$LAST"); done
sleep 6
holes() { # seconds of media missing per camera so far, as JSON
  local i; for i in 1 2 3 4; do "$BIN/hallwatchctl" recordings --config "$RUN/dur.yaml" --camera "dur-000$i" --json 2>/dev/null || echo '{}'; echo '#'; done |
  python3 -c '
import json, sys
out = {}
for doc in sys.stdin.read().split("#")[:-1]:
    try: r = json.loads(doc)
    except ValueError: continue
    if not r: continue
    h = sum(max(0.0, (x["endMicros"] - x["startMicros"]) / 1e6 - x["mediaSeconds"]) for x in r["runs"])
    h += sum(max(0.0, g["seconds"]) for g in r["gaps"])
    out[r["camera"]] = h
print(json.dumps(out))'
}
h_prev=$(holes); restarts=(); losses=()
for k in $(seq "$KILLS"); do
  sleep "$(python3 -c 'import random; print(round(random.uniform(1, 3), 2))')"
  kill -9 "$DREC"; wait "$DREC" 2>/dev/null || true
  t_exec=$(date +%s.%N)
  bg "dur-rec$k" "$BIN/hallwatch-recorder" --config "$RUN/dur.yaml"; DREC=$LAST
  # Restart-to-recording: every camera's next commit announced on the bus after the new recorder's exec.
  r=""
  for _ in $(seq 300); do
    r=$(python3 - "$RUN/logs/dur-recsub.log" "$t_exec" <<'EOF'
import sys
t0 = float(sys.argv[2]); seen = {}
for line in open(sys.argv[1], errors="replace"):
    parts = line.split(" ", 2)
    try: t = float(parts[0]); cam = parts[1].split("/")[4]
    except (ValueError, IndexError): continue
    if t > t0 and cam not in seen: seen[cam] = t - t0
print(max(seen.values()) if len(seen) == 4 else "")
EOF
)
    [ -n "$r" ] && break; sleep 0.1
  done
  restarts+=("${r:-null}")
  sleep 3   # the workers' resent backlog is written and indexed
  h=$(holes)
  losses+=("$(python3 -c "import json; a=json.loads('$h_prev'); b=json.loads('$h'); print(json.dumps({c: round(b[c]-a.get(c,0),3) for c in b}))")")
  h_prev=$h
  log "durability: kill $k: restart-to-recording ${r:-timeout} s, loss ${losses[-1]}"
done
stop "${dcaps[@]}"
# The flapping camera (issue 12, case 1): the simcam behind a relay that resets every session after 5 s and
# accepts the next at once. Recorded ÷ served: the recording's media seconds over the worker's wall time.
FLAP_SECONDS=$([ $MODE = quick ] && echo 20 || echo 60)
log "durability: flapping camera, a TCP reset every 5 s, for $FLAP_SECONDS s"
bg flap-relay python3 Tests/Bench/flap_relay.py 0 "${URL_BASE##*:}" 5
wait_for 10 grep -q "relay ready" "$RUN/logs/flap-relay.log"
flap_port=$(awk '/relay ready/ {print $3}' "$RUN/logs/flap-relay.log")
sed -i "s|^cameras:|cameras:\n  - {id: dur-flap, source: \"rtsp://127.0.0.1:$flap_port/b4\"}|" "$RUN/dur.yaml"
stop "$DREC"; bg dur-rec-flap "$BIN/hallwatch-recorder" --config "$RUN/dur.yaml"; DREC=$LAST
wait_for 30 test -S "$RUN/dur-rec.sock"
t_flap=$(date +%s.%N)
bg dur-cap-flap "$BIN/hallwatch-capture" --config "$RUN/dur.yaml" --camera dur-flap; FCAP=$LAST
sleep "$FLAP_SECONDS"
stop "$FCAP"; flap_served=$(since "$t_flap"); sleep 2
flap_recorded=$("$BIN/hallwatchctl" recordings --config "$RUN/dur.yaml" --camera dur-flap --json 2>/dev/null |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["totalSeconds"])' || echo 0)
log "durability: flapping camera: $flap_recorded s recorded of $flap_served s"
stop "$DREC"
python3 - "$RES" "$(printf '%s\n' "${losses[@]}")" "$(csv "${restarts[@]}")" "$flap_recorded" "$flap_served" <<'EOF'
import json, sys
loss = {}
for line in sys.argv[2].splitlines():
    for c, v in json.loads(line).items(): loss.setdefault(c, []).append(v)
rs = [float(x) for x in sys.argv[3].split(",") if x != "null"]
open(sys.argv[1], "a").write(json.dumps({"label": "durability", "rounds": len(sys.argv[2].splitlines()), "lossSeconds": loss,
                                         "restartSeconds": rs, "restartTimeouts": sys.argv[3].split(",").count("null"), "cadence": "1s",
                                         "flapRecorded": float(sys.argv[4]), "flapServed": float(sys.argv[5])}) + "\n")
EOF
rm -rf "$RUN/dur-disk"

fi

# ---------------------------------------------------------------- 5. drop-in rows from other issues
if want dropins; then
for name in pruner discovery export export16 web map live viewers events playback provision; do
  if [ -f "Tests/Bench/$name.sh" ]; then
    log "drop-in: Tests/Bench/$name.sh"
    # Shorter runs than the scripts' own defaults where those would take the whole bench budget.
    args=("$BIN"); case $name in events) args+=(10 128);; viewers) args+=(100 20);; playback) args+=(120 15);; provision) args+=(3);;
      export16) [ $MODE = quick ] && args+=(120);; esac
    if out=$(bash "Tests/Bench/$name.sh" "${args[@]}" 2> "$RUN/logs/dropin-$name.log"); then
      # Every table row the script prints (web.sh prints several), each recorded on its own.
      printf '%s\n' "$out" | grep '^|' | grep -v -e '^|---' -e '^| *area' | while IFS= read -r row; do
        $LIB record --out "$RES" --json "$(python3 -c 'import json,sys; print(json.dumps({"label": "dropin/'$name'", "row": sys.argv[1]}))' "$row")"
      done
    else
      $LIB record --out "$RES" --json "$(python3 -c 'import json,sys; print(json.dumps({"label": "dropin/'$name'", "error": sys.argv[1][-200:]}))' "$(tail -3 "$RUN/logs/dropin-$name.log")")"
    fi
  fi
done

fi

# ---------------------------------------------------------------- report
elapsed=$(since "$T_START")
load=$(cut -d' ' -f1-3 /proc/loadavg)
meta=$(python3 -c 'import json,sys; print(json.dumps({"mode": sys.argv[1], "started": sys.argv[2], "elapsedSeconds": float(sys.argv[3]),
  "ingestRates": [int(x) for x in sys.argv[4].split()], "ingestCounts": [int(x) for x in sys.argv[5].split()],
  "boxReport": [int(x) for x in sys.argv[6].split()], "diskMBs": float(sys.argv[7]) if sys.argv[7] else None,
  "conditions": sys.argv[8]}))' "$MODE" "$STAMP" "$elapsed" "${RATES[*]}" "${COUNTS[*]}" "${BOX_REPORT[*]}" "$disk_mbs" \
  "$(nproc) cores, load average at the end $load (the VM is shared: other builds may have run), pruner $([ "${HAVE_PRUNER:-0}" = 1 ] && echo running || echo 'not built')")
$LIB table "$RES" --json ".bench/bench-$MODE-$STAMP.json" --meta "$meta" | tee ".bench/latest-$MODE.md"
cp ".bench/bench-$MODE-$STAMP.json" ".bench/latest-$MODE.json"
