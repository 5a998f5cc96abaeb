#!/usr/bin/env bash
# kill -9 of hallwatch-web while a camera records (issue 13): the recorded seconds keep growing with no gap (the
# web is not on the recording path), and a session made before the kill still works after the restart (sessions
# are rows in web.sqlite). Real simcam, mosquitto, recorder and capture worker under the development supervisor;
# everything on 127.0.0.1 and under .run/kill-web-test. About 40 s. Run by `make test` after the browser test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
hw_init .run/kill-web-test
mkdir -p "$RUN/disk0"
PORT=$(free_port)
SIMCAM=""; SUPERVISOR=""; WEB=""
cleanup() {
  [ -n "$WEB" ] && kill "$WEB" 2>/dev/null || true
  # The supervisor stops its children (worker, recorder, bus) in order on SIGINT.
  if [ -n "$SUPERVISOR" ]; then kill -INT "$SUPERVISOR" 2>/dev/null || true; wait "$SUPERVISOR" 2>/dev/null || true; fi
  [ -n "$SIMCAM" ] && kill "$SIMCAM" 2>/dev/null || true
}
trap cleanup EXIT

ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=25 -t 20 -c:v libx264 -g 25 \
  -pix_fmt yuv420p "$RUN/cam.mp4"
"$BIN/hallwatch-simcam" --port 0 --mount cam="$RUN/cam.mp4" > "$RUN/simcam.log" 2>&1 & SIMCAM=$!
wait_for 20 grep -q "simcam ready" "$RUN/simcam.log" || fail "simcam did not start: $(cat "$RUN/simcam.log")"
URL=$(grep -o 'rtsp://127.0.0.1:[0-9]*' "$RUN/simcam.log" | head -1)

cat > "$RUN/hallwatch.yaml" <<CONF
box: killtest
building: Kill Test School
bus:
  socket: $PWD/$RUN/bus.sock
recorder:
  socket: $PWD/$RUN/recorder.sock
  # 16 slots of 8 MiB (the test records well under a minute of 640x360): the default 64 of 64 MiB are 4 GiB of
  # zeros written and synced before the first fragment, which once took CI longer than this test waits.
  slotCount: 16
  slotSizeBytes: 8388608
  disks:
    - name: disk0
      path: $PWD/$RUN/disk0
capture:
  maxFragmentDuration: 1s
cameras:
  - id: cam
    source: $URL/cam
CONF
hw_admin_user
hw_web_yaml "$PORT"
"$BIN/hallwatchctl" supervise --config "$RUN/hallwatch.yaml" --run-directory "$RUN/run" --status-every 0 \
  > "$RUN/supervise.log" 2>&1 & SUPERVISOR=$!
start_web() {
  "$BIN/hallwatch-web" --config "$RUN/hallwatch.yaml" --web-config "$RUN/web.yaml" >> "$RUN/web.log" 2>&1 & WEB=$!
  wait_for 20 curl -sk -o /dev/null "https://127.0.0.1:$PORT/login" || fail "the web did not start"
}
start_web

recorded() {
  "$BIN/hallwatchctl" recordings --config "$RUN/hallwatch.yaml" --camera cam --json --fragment-gaps 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["totalSeconds"])' 2>/dev/null || echo 0
}
above() { python3 -c "import sys; sys.exit(0 if float('$(recorded)') > $1 else 1)"; }
# On failure, every process's last lines: which of them did not do its part.
logs() { for f in "$RUN/supervise.log" "$RUN/simcam.log" "$RUN"/run/logs/*.log; do echo "== $f"; tail -8 "$f"; done; }
wait_for 40 above 5 || fail "nothing recorded: $("$BIN/hallwatchctl" recordings --config "$RUN/hallwatch.yaml" \
  --camera cam --json --fragment-gaps 2>&1 | head -c 600; echo; logs)"

JAR="$RUN/cookies"
hw_sign_in "https://127.0.0.1:$PORT" "$JAR"
[ "$(curl -sk -b "$JAR" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/api/v1/cameras")" = 200 ] ||
  fail "no session"

BEFORE=$(recorded); T0=$(date +%s.%N)
kill -9 "$WEB"; wait "$WEB" 2>/dev/null || true; WEB=""
sleep 5
start_web
# The session made before the kill: still signed in.
[ "$(curl -sk -b "$JAR" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/api/v1/cameras")" = 200 ] ||
  fail "the session made before the kill does not work after the restart"
sleep 3
AFTER=$(recorded); T1=$(date +%s.%N)
"$BIN/hallwatchctl" recordings --config "$RUN/hallwatch.yaml" --camera cam --json --fragment-gaps > "$RUN/recordings.json"
python3 - "$BEFORE" "$AFTER" "$T0" "$T1" "$RUN/recordings.json" <<'PY'
import json, sys
before, after, t0, t1 = map(float, sys.argv[1:5])
r = json.load(open(sys.argv[5]))
grew, elapsed = after - before, t1 - t0
hole = max(run["maxFragmentGap90k"] for run in r["runs"]) / 90000
print("kill -9 of the web: recorded %.1f s -> %.1f s over %.1f s of wall time (grew %.1f s); %d run(s), %d gap(s),"
      " largest hole between fragments %.3f s; the session made before the kill still works"
      % (before, after, elapsed, grew, len(r["runs"]), len(r["gaps"]), hole))
assert len(r["runs"]) == 1 and not r["gaps"], "the recording has a gap: %s" % r["gaps"]
assert hole < 1.5, "a hole of %.3f s" % hole
assert grew > elapsed - 3, "recording fell behind while the web was down"
PY
echo "kill -9 test passed"
