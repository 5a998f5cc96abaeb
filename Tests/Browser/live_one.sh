#!/usr/bin/env bash
# One or more of the live-demo browser scripts on their own, against the box run.sh starts for them
# (`hallwatchctl demo`), without the rest of run.sh:
#   bash Tests/Browser/live_one.sh live_view responder_links
# map_view and responder_links need the demo's floor-plan map (waited for here); player_faults changes the demo's
# configuration, so run it last.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
hw_init .run/browser-one
hw_live_demo .run/browser-one-live
for _ in $(seq 100); do grep -q 'floor-plan map added' "$RUN/live-demo.log" && break; sleep 0.2; done
for script in "$@"; do
  echo "== $script"
  extra=()
  case $script in
    map_view) extra=(TOKEN="$("$BIN/hallwatchctl" event-source add maptest --state-directory "$LIVE/web" 2> /dev/null)") ;;
  esac
  env WEB_URL="https://127.0.0.1:$LIVE_PORT/" ADMIN_PASSWORD_FILE="$LIVE/admin.password" \
    SCREENSHOTS="$PWD/.run/screenshots" PIDS="$LIVE/pids" WEB_STATE="$LIVE/web" CONFIG="$LIVE/hallwatch.yaml" \
    "${extra[@]}" .venv-test/bin/python3 "Tests/Browser/$script.py"
done
stop_demo
