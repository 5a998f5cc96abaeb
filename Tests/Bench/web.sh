#!/usr/bin/env bash
# The web page's figures (issue 13) with 128 cameras configured and on the bus: status page time to first byte
# (goal ≤ 100 ms) and page weight, /metrics scrape time (goal ≤ 50 ms), the login's cost (the bcrypt hash, the
# users' cost), and hallwatch-web's CPU with 10 live status pages open (goal ≤ 5 % of a core). mosquitto and
# hallwatch-web on 127.0.0.1 and a private directory; every process started here is stopped by PID.
# Prints markdown table rows (| area | figure | Hallwatch | peer | ratio | notes |); writes .bench/web.json.
# Usage: Tests/Bench/web.sh [BIN_DIR] [CAMERAS] [REQUESTS]     (defaults .build/release 128 30)
set -euo pipefail
BIN=${1:-.build/release}; N=${2:-128}; REQ=${3:-30}
work=$(mktemp -d /tmp/hw-bench-web-XXXX); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="https://127.0.0.1:$port"

cat > "$work/mosquitto.conf" <<CONF
listener 0 $work/bus.sock
allow_anonymous true
persistence false
user $(id -un)
CONF
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & pids+=($!)
{
  echo "box: bench"; echo "building: Bench Elementary"; echo "bus:"; echo "  socket: $work/bus.sock"
  echo "recorder:"; echo "  socket: $work/recorder.sock"; echo "  disks:"; echo "    - name: disk0"; echo "      path: $work/disk0"
  echo "cameras:"
  for i in $(seq -f '%03g' 1 "$N"); do echo "  - id: cam-$i"; echo "    source: rtsp://127.0.0.1:1/cam-$i"; done
} > "$work/hallwatch.yaml"
head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$work/admin.password"
head -c 48 /dev/urandom | base64 | tr -d '/+=' > "$work/metrics.token"
hash=$("$BIN/hallwatchctl" user hash < "$work/admin.password")
cat > "$work/web.yaml" <<CONF
web:
  listen: [127.0.0.1]
  httpsPort: $port
  stateDirectory: $work/state
  metricsTokenFile: $work/metrics.token
users:
  - name: admin
    role: district-admin
    passwordHash: "$hash"
CONF
for _ in $(seq 50); do [ -S "$work/bus.sock" ] && break; sleep 0.1; done
# Every camera online with its recording statistics, retained, as the capture workers and recorder publish them.
python3 - "$work/bus.sock" "$N" <<'PY'
import subprocess, sys, time
sock, n = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1e6)
lines = []
for i in range(1, n + 1):
    c = "cam-%03d" % i
    lines.append(("hallwatch/v1/bench/camera/%s/state" % c,
                  '{"camera":"%s","state":"online","codec":"h264","width":1920,"height":1080,"fps":25,"bitrateBps":4000000,"at":%d}' % (c, now)))
    lines.append(("hallwatch/v1/bench/camera/%s/recording" % c,
                  '{"camera":"%s","recordedSeconds":3600,"recordedBytes":1800000000,"lastFragmentAt":%d,"run":1,"at":%d}' % (c, now, now)))
procs = [subprocess.Popen(["mosquitto_pub", "--unix", sock, "-r", "-t", t, "-m", m]) for t, m in lines]
for p in procs:
    p.wait()
PY
"$BIN/hallwatch-web" --config "$work/hallwatch.yaml" --web-config "$work/web.yaml" > "$work/web.log" 2>&1 & web=$!; pids+=($web)
for _ in $(seq 100); do curl -sk -o /dev/null "$base/login" && break; sleep 0.1; done

# Login: the round trip of a right password minus that of the sign-in page (both new TLS connections): the hash.
curl_t() { curl -sk -o /dev/null -w '%{time_appconnect} %{time_starttransfer} %{time_total} %{size_download}\n' "$@"; }
for _ in $(seq 5); do
  curl_t -H "Origin: $base" -d username=admin --data-urlencode "password=$(cat "$work/admin.password")" "$base/login" -c "$work/jar"
done > "$work/login.txt"
for _ in $(seq 5); do curl_t "$base/login"; done > "$work/loginpage.txt"
sleep 2  # the bus's retained state reaches the web
for _ in $(seq "$REQ"); do curl_t -b "$work/jar" "$base/"; done > "$work/status.txt"
for _ in $(seq "$REQ"); do curl_t -H "Authorization: Bearer $(cat "$work/metrics.token")" "$base/metrics"; done > "$work/metrics.txt"
assets=0
for a in /static/status.js /static/status.css /static/plots.js /static/chart.min.js; do
  assets=$((assets + $(curl -sk -o /dev/null -w '%{size_download}' "$base$a")))
done
cams=$(curl -sk -b "$work/jar" "$base/api/v1/cameras" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["cameras"]))')

# Full load in Chromium (when the test virtualenv has selenium): signed in, the page reloaded 5 times; the
# navigation's loadEventEnd (HTML, scripts, style, 128 thumbnail requests answered 404: nothing recorded here).
load_ms=""
if [ -x .venv-test/bin/python3 ] && [ -x /usr/bin/chromium ] && .venv-test/bin/python3 -c 'import selenium' 2>/dev/null; then
  load_ms=$(.venv-test/bin/python3 - "$base/" "$work/admin.password" "$N" <<'PY' 2> "$work/chromium.log" || true
import statistics, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
url, pw, n = sys.argv[1], open(sys.argv[2]).read().strip(), int(sys.argv[3])
o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--window-size=1366,768"]:
    o.add_argument(a)
d = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=o)
try:
    d.get(url + "login")
    d.find_element(By.ID, "username").send_keys("admin")
    d.find_element(By.ID, "password").send_keys(pw)
    d.find_element(By.CSS_SELECTOR, "form button").click()
    times = []
    for _ in range(5):
        d.get(url)
        for _ in range(100):
            t = d.execute_script("var e = performance.getEntriesByType('navigation')[0]; return e && e.loadEventEnd;")
            if t:
                break
            time.sleep(0.05)
        assert len(d.find_elements(By.CSS_SELECTOR, "#cameras tbody tr")) == n
        times.append(t)
    print("%.0f" % statistics.median(times))
finally:
    d.quit()
PY
)
fi

# CPU of the web with 10 live pages (server-sent events, one update a second each) for 20 s.
for _ in $(seq 10); do curl -skN -b "$work/jar" "$base/api/v1/status/events" > /dev/null & pids+=($!); done
sleep 3
t0=$(awk '{print $14 + $15}' "/proc/$web/stat"); s0=$(date +%s.%N)
sleep 20
t1=$(awk '{print $14 + $15}' "/proc/$web/stat"); s1=$(date +%s.%N)

mkdir -p .bench
python3 - "$work" "$N" "$cams" "$assets" "$t0" "$t1" "$s0" "$s1" "$(getconf CLK_TCK)" "$hash" "$load_ms" <<'PY'
import json, statistics, sys
work, n, cams, assets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t0, t1, s0, s1, hz = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
cost = sys.argv[10].split("$")[2]
load_ms = float(sys.argv[11]) if sys.argv[11] else None
def rows(name):
    return [list(map(float, l.split())) for l in open(f"{work}/{name}.txt") if l.strip()]
med = statistics.median
status, metrics, login, page = rows("status"), rows("metrics"), rows("login"), rows("loginpage")
ttfb = med(r[1] - r[0] for r in status) * 1000          # after the TLS handshake
ttfb_all = med(r[1] for r in status) * 1000             # with connect and TLS
scrape = med(r[2] - r[0] for r in metrics) * 1000
hash_ms = (med(r[2] for r in login) - med(r[2] for r in page)) * 1000
html = med(r[3] for r in status)
cpu = (t1 - t0) / hz / (s1 - s0) * 100
result = {"benchmark": "web", "cameras": n, "camerasShown": cams, "statusTTFBms": ttfb, "statusTTFBWithTLSms": ttfb_all,
          "statusHTMLBytes": html, "assetBytes": assets, "metricsScrapeMs": scrape, "metricsBytes": med(r[3] for r in metrics),
          "loginHashMs": hash_ms, "bcryptCost": cost, "cpuPercentTenPages": cpu, "chromiumLoadMs": load_ms}
json.dump(result, open(".bench/web.json", "w"), indent=1)
print(f"| web | status page time to first byte, {n} cameras, ms (median of {len(status)}) | {ttfb:.1f} | goal ≤ 100 | {ttfb / 100:.2f}× | "
      f"after the TLS handshake; {ttfb_all:.1f} ms with connect and TLS; {cams} cameras on the page |")
if load_ms is not None:
    print(f"| web | status page full load in headless Chromium, {n} cameras, ms (median of 5) | {load_ms:.0f} | goal ≤ 1000 | "
          f"{load_ms / 1000:.2f}× | navigation loadEventEnd, signed in, 1366×768; {n} thumbnail requests (404 here) |")
else:
    print("| web | status page full load in headless Chromium | not measured | goal ≤ 1000 | — | needs chromium and selenium (make test-deps) |")
print(f"| web | status page weight, kB | {(html + assets) / 1000:.0f} | — | — | HTML {html / 1000:.0f} kB + script and style "
      f"{assets / 1000:.0f} kB (Chart.js {'' if assets > 100000 else 'not '}installed), thumbnails not counted |")
print(f"| web | /metrics scrape, {n} cameras, ms (median of {len(metrics)}) | {scrape:.1f} | goal ≤ 50 | {scrape / 50:.2f}× | "
      f"{med(r[3] for r in metrics) / 1000:.0f} kB of Prometheus text |")
print(f"| web | login cost (the bcrypt hash), ms | {hash_ms:.0f} | — | — | bcrypt cost {cost}; sign-in round trip minus the sign-in page's |")
print(f"| web | hallwatch-web CPU with 10 live status pages, {n} cameras, % of a core | {cpu:.1f} | goal ≤ 5 | {cpu / 5:.2f}× | "
      f"server-sent events, one status a second per page, 20 s |")
PY
