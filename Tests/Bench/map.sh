#!/usr/bin/env bash
# The floor-plan map's figures (issue 14): on a real box (`hallwatchctl demo`: simcam, capture workers, recorder,
# web, the demo school's map), headless Chromium taps a pin and times the pop-up's first presented frame
# (goal ≤ 1.5 s; 10 taps on each demo camera it can play), and weighs the page (HTML, scripts, styles, Leaflet,
# the floor image, the map's JSON), and times a POSTed door.forced to its door pin flashing (goal ≤ 1 s; 10 times,
# each followed by a door.closed). Everything on 127.0.0.1 and a private directory; the demo is stopped by PID.
# Prints markdown table rows (| area | figure | Hallwatch | peer | ratio | notes |); writes .bench/map.json.
# Usage: Tests/Bench/map.sh [BIN_DIR]     (default .build/release; needs .media clips and make test-deps)
set -euo pipefail
BIN=${1:-.build/release}
work=$(mktemp -d /tmp/hw-bench-map-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/hallwatchctl" demo --media .media --run-directory "$work/demo" --web-port "$port" --status-every 600 \
  > "$work/demo.log" 2>&1 & demo=$!
cleanup() { kill -INT "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 600); do grep -q 'floor-plan map added' "$work/demo.log" && break; sleep 0.2; done
grep -q 'floor-plan map added' "$work/demo.log" || { echo "map bench: the demo added no map" >&2; exit 1; }
sleep 5  # every camera's first fragments
mkdir -p .bench
token=$("$BIN/hallwatchctl" event-source add maptest --state-directory "$work/demo/web" 2> /dev/null)
WEB_URL="https://127.0.0.1:$port/" ADMIN_PASSWORD_FILE="$work/demo/admin.password" SCREENSHOTS="$work" \
  PIDS="$work/demo/pids" TOKEN="$token" .venv-test/bin/python3 Tests/Bench/map_bench.py
