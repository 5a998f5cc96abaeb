#!/usr/bin/env bash
# Times ONVIF discovery of N simulated cameras (one hallwatch-simcam process, N ONVIF endpoints): one
# WS-Discovery round (Probe NVT + tds:Device, each repeated, LISTEN window) and the full HTTP description of
# every device (GetSystemDateAndTime, GetDeviceInformation, GetServices, GetProfiles, GetStreamUri with
# UsernameToken auth), by `hallwatch-discovery --once`. Loopback only: multicast leaves by 127.0.0.1 with TTL 1.
# Prints one markdown table row; writes .bench/discovery.json. Processes are stopped by PID.
# Usage: Tests/Bench/discovery.sh [BIN_DIR] [N] [RUNS] [LISTEN]     (defaults .build/release 50 5 1s)
set -euo pipefail
BIN=${1:-.build/release}; N=${2:-50}; RUNS=${3:-5}; LISTEN=${4:-1s}
CLIP=${CLIP:-.media/h264-aac.mp4}
work=$(mktemp -d /tmp/hw-bench-disc-XXXX); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$work/pw"; chmod 600 "$work/pw"
"$BIN/hallwatch-simcam" --address 127.0.0.1 --port 0 --mount cam="$CLIP" --onvif --onvif-devices "$N" \
  --onvif-user bench --onvif-password-file "$work/pw" --log-level warning > "$work/simcam.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do grep -q "simcam onvif" "$work/simcam.log" && break; sleep 0.1; done
grep -q "simcam onvif" "$work/simcam.log" || { cat "$work/simcam.log" >&2; exit 1; }
for i in $(seq "$RUNS"); do
  "$BIN/hallwatch-discovery" --once --interface 127.0.0.1 --username bench --password-file "$work/pw" --listen "$LISTEN" \
    > "$work/run$i.json" 2> "$work/run$i.log"
done
mkdir -p .bench
python3 - "$work" "$RUNS" "$N" "$LISTEN" <<'PY'
import json, statistics, sys
work, runs, n, listen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
secs, described = [], []
for i in range(1, runs + 1):
    r = json.load(open(f"{work}/run{i}.json"))
    secs.append(r["seconds"])
    described.append(sum(1 for d in r["devices"] if d["auth"] == "usernameToken" and any(s.get("uri") for s in d["streams"])))
result = {"benchmark": "discovery", "endpoints": n, "runs": runs, "listen": listen, "seconds": secs,
          "median_seconds": statistics.median(secs), "min_seconds": min(secs), "max_seconds": max(secs),
          "described_min": min(described), "target_seconds": 3.0}
json.dump(result, open(".bench/discovery.json", "w"), indent=1)
# The row in `make bench`'s table format: | area | figure | Hallwatch | peer | ratio | notes |
print(f"| discovery | time to discover and describe {n} ONVIF endpoints, s (median of {runs}) | "
      f"{result['median_seconds']:.2f} | target 3.00 | {result['median_seconds'] / 3.0:.2f}× | "
      f"{min(described)}/{n} described; range {result['min_seconds']:.2f}–{result['max_seconds']:.2f} s; {listen} listen window |")
PY
