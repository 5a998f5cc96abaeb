#!/usr/bin/env bash
# The web page end to end on 127.0.0.1 (make test-browser): TLS checks with curl and openssl, then headless
# Chromium against a real hallwatch-web and mosquitto.
# Needs .build/debug (swift build), Debian's chromium and chromium-driver, selenium in .venv-test.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.build/debug
RUN=.run/browser-test
rm -rf "$RUN"; mkdir -p "$RUN/state" .run/screenshots
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
HTTP_PORT=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cat > "$RUN/mosquitto.conf" <<CONF
listener 0 $PWD/$RUN/bus.sock
allow_anonymous true
persistence false
user $(id -un)
CONF
mosquitto -c "$RUN/mosquitto.conf" > "$RUN/mosquitto.log" 2>&1 & pids+=($!)

cat > "$RUN/hallwatch.yaml" <<CONF
box: browsertest
building: Browser Test School
bus:
  socket: $PWD/$RUN/bus.sock
recorder:
  socket: $PWD/$RUN/recorder.sock
  disks:
    - name: disk0
      path: $PWD/$RUN/disk0
cameras:
  - id: lobby
    source: rtsp://127.0.0.1:1/lobby
  - id: gym
    source: rtsp://127.0.0.1:1/gym
CONF
python3 -c 'import secrets; print(secrets.token_urlsafe(15))' > "$RUN/admin.password"
HASH=$("$BIN/hallwatchctl" user hash < "$RUN/admin.password")
cat > "$RUN/web.yaml" <<CONF
web:
  listen: [127.0.0.1]
  httpsPort: $PORT
  httpRedirectPort: $HTTP_PORT
  stateDirectory: $PWD/$RUN/state
users:
  - name: admin
    role: district-admin
    passwordHash: "$HASH"
CONF
"$BIN/hallwatch-web" --config "$RUN/hallwatch.yaml" --web-config "$RUN/web.yaml" > "$RUN/web.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/login" && break; sleep 0.2; done

# TLS and HTTP: HTTP/2 through ALPN, the plain port only redirects, the key is 0600, the logged fingerprint
# is the certificate's.
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(curl -sk --http2 -o /dev/null -w '%{http_version}' "https://127.0.0.1:$PORT/login")" = 2 ] || fail "no HTTP/2"
[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$HTTP_PORT/x?y=1")" = \
  "308 https://127.0.0.1:$PORT/x?y=1" ] || fail "the HTTP port does not redirect to HTTPS"
[ "$(stat -c %a "$RUN/state/tls.key")" = 600 ] || fail "tls.key is not 0600"
FP=$(openssl x509 -in "$RUN/state/tls.crt" -noout -fingerprint -sha256 | cut -d= -f2)
grep -q "tls.sha256=$FP" "$RUN/web.log" || fail "the logged fingerprint is not the certificate's ($FP)"
echo "TLS: HTTP/2, redirect 308, key 0600, fingerprint $FP logged"

WEB_URL="https://127.0.0.1:$PORT/" ADMIN_PASSWORD_FILE="$RUN/admin.password" SCREENSHOTS="$PWD/.run/screenshots" \
  BUS_SOCKET="$PWD/$RUN/bus.sock" BOX=browsertest SE_OFFLINE=true \
  .venv-test/bin/python3 Tests/Browser/status_page.py
"$BIN/hallwatchctl" audit verify --state-directory "$RUN/state"

# Live view: a real box (`hallwatchctl demo`: simcam, capture workers, recorder, web) and headless Chromium
# playing every demo camera and the 2x2 grid, and resuming within 3 s when a capture worker is killed
# mid-view (Tests/Browser/live_view.py); every live view is audited.
LIVE=.run/browser-live
rm -rf "$LIVE"
LIVE_PORT=$(free_port)
"$BIN/hallwatchctl" demo --media .media --run-directory "$LIVE" --web-port "$LIVE_PORT" --status-every 60 \
  > "$RUN/live-demo.log" 2>&1 & demo=$!
stop_demo() { kill -INT "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; }
trap 'stop_demo; cleanup' EXIT
for _ in $(seq 150); do
  [ -s "$LIVE/admin.password" ] && curl -sk -o /dev/null "https://127.0.0.1:$LIVE_PORT/login" && \
    [ "$(grep -c 'capture worker started' "$RUN/live-demo.log")" -ge 4 ] && break
  sleep 0.2
done
sleep 4  # the first fragments of every camera
WEB_URL="https://127.0.0.1:$LIVE_PORT/" ADMIN_PASSWORD_FILE="$LIVE/admin.password" SCREENSHOTS="$PWD/.run/screenshots" \
  PIDS="$LIVE/pids" .venv-test/bin/python3 Tests/Browser/live_view.py
stop_demo
grep -q '"action":"live.end"' "$LIVE/web/audit.log" || fail "no live view was audited"
"$BIN/hallwatchctl" audit verify --state-directory "$LIVE/web"
