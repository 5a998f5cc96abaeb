#!/usr/bin/env bash
# Live view's latency figures (issue 14) on a real box (`hallwatchctl demo`: simcam, capture workers, recorder,
# web), in headless Chromium playing the `entrance` camera's main stream (1080p H.264, 25 fps, 4 Mbit/s CBR, the
# bench clip of Tests/Bench/make-inputs.sh) with a keyframe every 1, 2 and 4 s — one demo per GOP:
#   - latency, chunk received by the recorder → frame presented (goal p50 ≤ 0.5 s, p95 ≤ 1.0 s), and from the
#     capture worker taking the frame in (goal p95 ≤ 1.2 s): the times each chunk carries against
#     requestVideoFrameCallback, over 30 s of playing;
#   - the live page opened 10 times → first presented frame (goal p95 ≤ 1 s), each open at a random point of
#     the GOP (the recorder's ring starts the viewer at the most recent keyframe).
# Everything on 127.0.0.1 and a private directory; each demo is stopped by PID.
# Prints markdown table rows (| area | figure | Hallwatch | peer | ratio | notes |); writes .bench/live.json.
# Usage: Tests/Bench/live.sh [BIN_DIR] [WATCH_SECONDS]  (default .build/release, 30; needs make clips, make test-deps)
set -euo pipefail
BIN=${1:-.build/release}
WATCH=${2:-30}
work=$(mktemp -d /tmp/hw-bench-live-XXXX)
demo=""
stop_demo() { [ -n "$demo" ] && { kill -INT "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; }; demo=""; }
cleanup() { stop_demo; rm -rf "$work"; }
trap cleanup EXIT
# The clips: one per GOP (made once, cached in .media beside the other bench clips).
for g in 1 2 4; do GOPS=$g bash Tests/Bench/make-inputs.sh .media 4; done
mkdir -p .bench
: > "$work/results.jsonl"
for g in 1 2 4; do
  clip=bench-4M.mp4; [ "$g" = 1 ] || clip=bench-4M-g${g}s.mp4
  # The demo's clips, with its entrance camera's replaced by this GOP's.
  mkdir -p "$work/media-$g"
  for f in .media/*.mp4; do ln -s "$PWD/$f" "$work/media-$g/"; done
  ln -sf "$PWD/.media/$clip" "$work/media-$g/fullhd.mp4"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$BIN/hallwatchctl" demo --media "$work/media-$g" --run-directory "$work/demo-$g" --web-port "$port" \
    --status-every 600 > "$work/demo-$g.log" 2>&1 & demo=$!
  for _ in $(seq 600); do grep -qs 'floor-plan map added' "$work/demo-$g.log" && break; sleep 0.2; done
  grep -q 'floor-plan map added' "$work/demo-$g.log" || { echo "live bench: the demo did not start" >&2; tail "$work/demo-$g.log" >&2; exit 1; }
  sleep 5  # every camera's first fragments
  WEB_URL="https://127.0.0.1:$port/" ADMIN_PASSWORD_FILE="$work/demo-$g/admin.password" SCREENSHOTS="$work" \
    CAMERAS=entrance GOP_SECONDS=$g WATCH_SECONDS=$WATCH .venv-test/bin/python3 Tests/Bench/live_bench.py >> "$work/results.jsonl"
  stop_demo
done
python3 - "$work/results.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json.dump({"benchmark": "live", "runs": runs}, open(".bench/live.json", "w"), indent=1)
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] / 1000 if xs else None
for r in runs:
    g, rec, cap, first = r["gopSeconds"], r["latencyMs"], r["captureLatencyMs"], r["firstFrameMs"]
    if not rec:
        print(f"| live | latency, GOP {g} s | not measured | goal p50 ≤ 0.5 s | — | no frame presented: {r.get('note')} |")
        continue
    note = (f"1080p H.264 4 Mbit/s, {len(rec)} frames over {r['watchSeconds']} s; per-frame chunks; "
            f"drops {r['drops']}, reconnects {r['reconnects']}")
    print(f"| live | latency, recorder → frame presented, GOP {g} s, s (p50) | {q(rec, 0.5):.2f} | goal ≤ 0.5 | "
          f"{q(rec, 0.5) / 0.5:.2f}× | p95 {q(rec, 0.95):.2f} s (goal ≤ 1.0); {note} |")
    print(f"| live | latency, capture worker → frame presented, GOP {g} s, s (p95) | {q(cap, 0.95):.2f} | goal ≤ 1.2 | "
          f"{q(cap, 0.95) / 1.2:.2f}× | p50 {q(cap, 0.5):.2f} s |")
    if first:
        print(f"| live | page opened → first frame, GOP {g} s, s (p95; {len(first)} opens) | {q(first, 0.95):.2f} | "
              f"goal ≤ 1.0 | {q(first, 0.95):.2f}× | p50 {q(first, 0.5):.2f} s, max {max(first) / 1000:.2f} s; "
              f"from the player's start (MediaSource, then the socket) |")
PY
