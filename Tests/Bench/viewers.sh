#!/usr/bin/env bash
# Live viewers' cost (issue 14): on a real box (`hallwatchctl demo`: simcam, capture workers, recorder, web), N
# WebSocket viewers of the demo's 4 Mbit/s 1080p camera (entrance) from a load client (Tests/Bench/viewers.py,
# aiohttp), beside the same box with no viewer: hallwatch-web's CPU (goal ≤ 50 % of one core with 100 viewers,
# TLS included) and memory per viewer (goal ≤ 256 KB), and the recorder's CPU (it must not grow with viewers).
# Everything on 127.0.0.1 (and 127.0.0.10–13 as the viewers' source addresses) and a private directory; the demo
# is stopped by PID. Prints markdown table rows (| area | figure | Hallwatch | peer | ratio | notes |); writes
# .bench/viewers.json.
# Usage: Tests/Bench/viewers.sh [BIN_DIR] [VIEWERS] [WINDOW_SECONDS]   (default .build/release 100 20)
set -euo pipefail
BIN=${1:-.build/release}; VIEWERS=${2:-100}; WINDOW=${3:-20}
work=$(mktemp -d /tmp/hw-bench-viewers-XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/hallwatchctl" demo --media .media --run-directory "$work/demo" --web-port "$port" --status-every 600 \
  > "$work/demo.log" 2>&1 & demo=$!
cleanup() { kill -INT "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 600); do curl -sk -o /dev/null "https://127.0.0.1:$port/login" && [ -s "$work/demo/pids/recorder.pid" ] && break; sleep 0.2; done
curl -sk -o /dev/null "https://127.0.0.1:$port/login" || { echo "viewers bench: the demo's web did not answer" >&2; exit 1; }
sleep 10  # every camera recording, the live tap warm
mkdir -p .bench
WEB_URL="https://127.0.0.1:$port/" ADMIN_PASSWORD_FILE="$work/demo/admin.password" PIDS="$work/demo/pids" \
  CAMERA=entrance VIEWERS="$VIEWERS" WINDOW="$WINDOW" OUT=.bench/viewers.json .venv-test/bin/python3 Tests/Bench/viewers.py
