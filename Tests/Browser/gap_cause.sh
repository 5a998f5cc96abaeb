#!/usr/bin/env bash
# A gap in the timeline says why it has no video (issue 15): lobby has two runs 150 s apart, recorded through the
# real disk writer (`hallwatchctl bench-fill`, one disk each), and the web's state history (`stateChange` in
# web.sqlite, as its watcher writes it from the bus) says lobby's capture worker reported `rtsp.connect` at the
# gap's start. Then headless Chromium (Tests/Browser/gap_cause.py): the recordings API gives the gap its cause,
# and a click inside it on the timeline says "Nothing recorded at …: the camera was offline (…)". Real mosquitto,
# hallwatch-web and SQLite; everything on 127.0.0.1 under .run/gap-cause-test. About 30 s. Run by `make test`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
hw_init .run/gap-cause-test
PORT=$(free_port)
hw_mosquitto

ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=25" -t 4 -c:v libx264 -b:v 300k \
  -g 25 -pix_fmt yuv420p -movflags +frag_keyframe+empty_moov+default_base_moof "$RUN/lobby.mp4"
# Run A: 60 s ending 270 s ago; run B: the last 120 s. The gap between them is 150 s, longer than the page's first
# playback window (60 s), so a click early in it finds nothing to play.
"$BIN/hallwatchctl" bench-fill "$RUN/disk0" --box gaptest --clip "$RUN/lobby.mp4" --clip-camera lobby \
  --seconds 60 --ends-ago 270 --slots 4 --slot-size 4194304 > /dev/null
"$BIN/hallwatchctl" bench-fill "$RUN/disk1" --box gaptest --clip "$RUN/lobby.mp4" --clip-camera lobby \
  --seconds 120 --slots 8 --slot-size 4194304 > /dev/null

cat > "$RUN/hallwatch.yaml" <<CONF
box: gaptest
building: Gap Test School
bus:
  socket: $PWD/$RUN/bus.sock
recorder:
  socket: $PWD/$RUN/recorder.sock
  disks:
    - name: disk0
      path: $PWD/$RUN/disk0
    - name: disk1
      path: $PWD/$RUN/disk1
cameras:
  - id: lobby
    source: rtsp://127.0.0.1:1/lobby
CONF
hw_admin_user
hw_web_yaml "$PORT"
"$BIN/hallwatch-web" --config "$RUN/hallwatch.yaml" --web-config "$RUN/web.yaml" > "$RUN/web.log" 2>&1 & pids+=($!)
wait_for 20 curl -sk -o /dev/null "https://127.0.0.1:$PORT/login" || fail "the web did not start: $(tail -5 "$RUN/web.log")"

# What the web's watcher wrote when lobby's worker went offline (CameraHistory.Change): 2 s into the gap, with the
# reason the worker published. Written into the web's own database, which it has open (SQLite WAL).
python3 - "$RUN/state/web.sqlite" "$RUN/hallwatch.yaml" "$BIN/hallwatchctl" <<'PY'
import json, sqlite3, subprocess, sys
db, config, ctl = sys.argv[1:4]
r = json.loads(subprocess.run([ctl, "recordings", "--config", config, "--camera", "lobby", "--json"],
                              check=True, capture_output=True, text=True).stdout)
assert len(r["runs"]) == 2 and len(r["gaps"]) == 1, r
gap = r["gaps"][0]
c = sqlite3.connect(db, timeout=10)
c.execute("INSERT INTO stateChange (subject, timeMicros, state, code, message) VALUES (?, ?, ?, ?, ?)",
          ("lobby", gap["fromMicros"] + 2_000_000, "offline", "rtsp.connect", "connection refused"))
c.commit()
print("gap: %s -> %s (%.1f s); lobby offline (rtsp.connect) written 2 s into it" % (gap["from"], gap["to"], gap["seconds"]))
PY

WEB_URL="https://127.0.0.1:$PORT/" ADMIN_PASSWORD_FILE="$RUN/admin.password" SCREENSHOTS="$PWD/.run/screenshots" \
  .venv-test/bin/python3 Tests/Browser/gap_cause.py
