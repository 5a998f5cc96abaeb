# Shared set-up of the browser and end-to-end shell tests (run.sh, kill_web.sh, gap_cause.sh, events.sh, live_one.sh):
# sourced, never run.
# Everything on 127.0.0.1 under one run directory; processes started here are stopped by PID on exit.
#
#   source Tests/Browser/lib.sh
#   hw_init .run/some-test          # cd to the repository, BIN, RUN (emptied, with RUN/state), pids, fail, wait_for
#   hw_mosquitto                    # mosquitto on RUN/bus.sock (its PID in pids)
#   hw_admin_user                   # RUN/admin.password (random) and HASH, its bcrypt hash
#   hw_web_yaml PORT [EXTRA...]     # RUN/web.yaml: listen 127.0.0.1:PORT, state RUN/state, user admin; EXTRA lines
#                                   # go under `web:`
#   hw_sign_in BASE JAR             # a signed-in session of admin in the cookie jar JAR
#   hw_live_demo DIR                # `hallwatchctl demo` in DIR (LIVE, LIVE_PORT; stop_demo on exit), every
#                                   # stream online and recording

hw_init() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.."
  BIN=.build/debug
  RUN=$1
  rm -rf "$RUN"; mkdir -p "$RUN/state" .run/screenshots
  pids=()
  trap hw_cleanup EXIT
}

# Stops what the script started (by PID), newest last.
hw_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds.
wait_for() { local n=$1; shift; for _ in $(seq "$((n * 5))"); do "$@" && return 0; sleep 0.2; done; return 1; }

hw_mosquitto() {
  cat > "$RUN/mosquitto.conf" <<CONF
listener 0 $PWD/$RUN/bus.sock
allow_anonymous true
persistence false
user $(id -un)
CONF
  mosquitto -c "$RUN/mosquitto.conf" > "$RUN/mosquitto.log" 2>&1 & pids+=($!)
}

hw_admin_user() {
  python3 -c 'import secrets; print(secrets.token_urlsafe(15))' > "$RUN/admin.password"
  HASH=$("$BIN/hallwatchctl" user hash < "$RUN/admin.password")
}

hw_web_yaml() {
  local port=$1; shift
  {
    echo "web:"
    echo "  listen: [127.0.0.1]"
    echo "  httpsPort: $port"
    echo "  stateDirectory: $PWD/$RUN/state"
    for line in "$@"; do echo "  $line"; done
    echo "users:"
    echo "  - name: admin"
    echo "    role: district-admin"
    echo "    passwordHash: \"$HASH\""
  } > "$RUN/web.yaml"
}

hw_sign_in() {
  curl -sk -c "$2" -o /dev/null -H "Origin: $1" -d username=admin \
    --data-urlencode "password=$(cat "$RUN/admin.password")" "$1/login"
}

hw_live_demo() {
  LIVE=$1
  rm -rf "$LIVE"
  LIVE_PORT=$(free_port)
  "$BIN/hallwatchctl" demo --media .media --run-directory "$LIVE" --web-port "$LIVE_PORT" --status-every 60 \
    > "$RUN/live-demo.log" 2>&1 & demo=$!
  stop_demo() { kill -INT "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; }
  trap 'stop_demo; hw_cleanup' EXIT
  for _ in $(seq 150); do
    [ -s "$LIVE/admin.password" ] && curl -sk -o /dev/null "https://127.0.0.1:$LIVE_PORT/login" && \
      [ "$(grep -c 'capture worker started' "$RUN/live-demo.log")" -ge 8 ] && break
    sleep 0.2
  done
  # Every stream online and recorded (on a loaded machine the simcam's `lobby` mount, H.264 with 6-channel AAC,
  # has been seen to send nothing to its first sessions for up to 50 s; its worker retries every 5 s).
  for _ in $(seq 120); do
    [ "$("$BIN/hallwatchctl" status --config "$LIVE/hallwatch.yaml" 2>/dev/null | grep -cE '^[a-z0-9_/-]+ +online ')" -ge 8 ] && break
    sleep 1
  done
  sleep 4  # the first fragments of every camera
}
