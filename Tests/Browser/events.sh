#!/usr/bin/env bash
# Door and alarm events end to end on 127.0.0.1 (issue 16): a real hallwatch-web over HTTPS/HTTP2 with mosquitto and
# a recording disk; the contract's status codes with curl, an event source made and revoked with hallwatchctl, a
# door.forced that places the configured evidence hold (kept by a pruner pass that deletes everything else older
# than a minute), and headless Chromium seeing it on the events page with a playback link at time − pre-roll.
# Needs .build/debug (swift build), mosquitto, Debian's chromium and chromium-driver, selenium in .venv-test.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
hw_init .run/events-test
PORT=$(free_port)
hw_mosquitto

# The simulated ONVIF door controller (issue 16): its door takes one step of opened, closed, access granted, forced,
# closed every second; the discovery agent subscribes to its events once it starts (at the end of this script).
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x180:rate=25 -t 2 -c:v libx264 -g 25 \
  -pix_fmt yuv420p "$RUN/door.mp4"
python3 -c 'import secrets; print(secrets.token_urlsafe(15))' > "$RUN/onvif.password"
ONVIF_PORT=$(free_port)
"$BIN/hallwatch-simcam" --port 0 --mount door="$RUN/door.mp4" --onvif --no-discovery --onvif-port "$ONVIF_PORT" \
  --onvif-user hallwatch --onvif-password-file "$RUN/onvif.password" --onvif-auth usernametoken --clock-offset 3600 \
  --onvif-events-every 1s > "$RUN/simcam.log" 2>&1 & pids+=($!)
wait_for 20 grep -q "simcam onvif" "$RUN/simcam.log" || fail "simcam did not start: $(cat "$RUN/simcam.log")"

# Ten minutes of synthetic video of camera bench-0 (1 s fragments) ending now, through the real disk writer.
"$BIN/hallwatchctl" bench-fill "$RUN/disk0" --box eventstest --fragments 600 --cameras 1 --payload 2000 \
  --slots 40 --slot-size 65536 > /dev/null

write_config() {  # write_config MAXAGE (the pruner re-reads it before each pass)
cat > "$RUN/hallwatch.yaml.new" <<CONF
box: eventstest
building: Events Test School
bus:
  socket: $PWD/$RUN/bus.sock
recorder:
  socket: $PWD/$RUN/recorder.sock
  disks:
    - name: disk0
      path: $PWD/$RUN/disk0
retention:
  maxAge: $1
  period: 1s
  minAge: 0s
  reserve: 0s
  reserveSlots: 0
  maxHoldPercent: 90
cameras:
  - id: bench-0
    source: rtsp://127.0.0.1:1/bench
doors:
  - id: east
    name: East entrance
    refs:
      - source: onguard
        ref: "panel1/reader3"
    direct: [bench-0]
    preRoll: 10s
    postRoll: 20s
    holdOn: [door.forced]
  - id: west
    name: West door
    refs:
      - source: onvif:ctl
        ref: Door1
    direct: [bench-0]
    preRoll: 5s
    postRoll: 5s
    holdOn: [door.forced]
discovery:
  interfaces: [127.0.0.1]
  period: 1h
  username: hallwatch
  passwordFile: $PWD/$RUN/onvif.password
  eventDevices:
    - id: ctl
      xaddr: http://127.0.0.1:$ONVIF_PORT/onvif/0/device_service
CONF
mv "$RUN/hallwatch.yaml.new" "$RUN/hallwatch.yaml"
}
write_config 30d
hw_admin_user
hw_web_yaml "$PORT"
"$BIN/hallwatch-web" --config "$RUN/hallwatch.yaml" --web-config "$RUN/web.yaml" > "$RUN/web.log" 2>&1 & pids+=($!)
"$BIN/hallwatch-pruner" --config "$RUN/hallwatch.yaml" > "$RUN/pruner.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/login" && break; sleep 0.2; done
BASE="https://127.0.0.1:$PORT"

# Sources: a token printed once (only its hash stored), a second source bound to door types.
TOKEN=$("$BIN/hallwatchctl" event-source add onguard --state-directory "$RUN/state" 2> /dev/null)
AXIS=$("$BIN/hallwatchctl" event-source add axis --types door.opened,door.closed --state-directory "$RUN/state" 2> /dev/null)
[[ "$TOKEN" == hwe_* ]] || fail "no token printed"
! grep -qa "$TOKEN" "$RUN/state/events.sqlite" || fail "the token itself is stored"

post() {  # post TOKEN BODY [CONTENT-TYPE] → "status body"
  curl -sk --http2 -o "$RUN/answer.json" -w '%{http_code}' -H "Authorization: Bearer $1" \
    -H "Content-Type: ${3:-application/cloudevents+json}" --data-binary "$2" "$BASE/api/v1/events"
}
NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
AT=$(date -u -d '-300 seconds' +%Y-%m-%dT%H:%M:%SZ)
ev() { printf '{"specversion":"1.0","id":"%s","source":"%s","type":"%s","time":"%s"%s}' "$1" "$2" "$3" "$4" "${5:-}"; }
expect() { [ "$1" = "$2" ] || { cat "$RUN/answer.json" >&2; fail "$3: got $1, expected $2"; }; }

expect "$(post nope "$(ev a1 onguard access.denied "$NOW")")" 401 "a bad token"
expect "$(post "$AXIS" "$(ev a1 onguard door.opened "$NOW")")" 403 "another source's token"
expect "$(post "$TOKEN" "$(ev a1 onguard access.denied "${NOW%Z}")")" 400 "a naive time"
expect "$(post "$TOKEN" "$(ev a1 onguard access.denied "$NOW" ",\"data\":{\"raw\":\"$(head -c 17000 /dev/zero | tr '\0' x)\"}")")" 413 "a raw record over 16 KiB"
expect "$(post "$TOKEN" "$(ev a1 onguard access.denied "$NOW")")" 201 "a new event"
cp "$RUN/answer.json" "$RUN/first.json"
expect "$(post "$TOKEN" "$(ev a1 onguard access.denied "$NOW")")" 200 "an identical repeat"
cmp -s "$RUN/answer.json" "$RUN/first.json" || fail "the repeat's body differs from the first"
expect "$(post "$TOKEN" "$(ev a1 onguard access.granted "$NOW")")" 409 "a conflicting repeat"
BATCH="[$(for i in $(seq 1 500); do ev "b$i" onguard access.granted "$NOW"; if [ "$i" -lt 500 ]; then printf ,; fi; done)]"
expect "$(post "$TOKEN" "$BATCH" application/cloudevents-batch+json)" 200 "a batch of 500"
[ "$(grep -o '"status":201' "$RUN/answer.json" | wc -l)" = 500 ] || fail "the batch was not stored whole"
# The door.forced, five minutes ago at the door the source calls panel1/reader3.
expect "$(post "$TOKEN" "$(ev f1 onguard door.forced "$AT" ',"doorref":"panel1/reader3"')")" 201 "door.forced"
grep -q '"door":"east"' "$RUN/answer.json" || fail "door.forced not placed at door east"
HOLD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["holds"][0])' "$RUN/answer.json")
curl -sk -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/sources/onguard/cursor" | grep -q '"lastId":"f1"' \
  || fail "the cursor does not name the last event"
echo "contract: 401 403 400 413 201 200(same body) 409, batch of 500, door.forced → hold $HOLD"

# The web asked the pruner (on the bus) to place the hold; then a pruner pass with maxAge 1m deletes old video
# around it but keeps the held range.
for _ in $(seq 50); do
  "$BIN/hallwatchctl" hold list --config "$RUN/hallwatch.yaml" --json > "$RUN/holds.json"
  grep -q "\"$HOLD\"" "$RUN/holds.json" && break; sleep 0.2
done
grep -q "\"$HOLD\"" "$RUN/holds.json" || { cat "$RUN/pruner.log"; fail "hold $HOLD not placed on the disk"; }
write_config 1m
sleep 3
FROM=$(date -u -d "$AT - 10 seconds" +%s)
"$BIN/hallwatchctl" recordings --config "$RUN/hallwatch.yaml" --camera bench-0 --json > "$RUN/recordings.json"
python3 - "$RUN/recordings.json" "$FROM" <<'PY' || { tail -20 "$RUN/pruner.log"; fail "the pruner did not keep the held range (or kept everything)"; }
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
frm = int(sys.argv[2]) * 1_000_000
kept = sum(r["fragments"] for r in runs)
oldest = min(r["startMicros"] for r in runs)
print("recordings after the pass: %d fragments, oldest %s" % (kept, min(r["start"] for r in runs)))
assert oldest <= frm, "the held range's start is gone"
assert kept < 400, "nothing older than maxAge was deleted (%d fragments)" % kept
PY
echo "pruner: old video deleted, the held range kept"

"$BIN/hallwatchctl" events list --state-directory "$RUN/state" --from -1h --to +1h | grep -q "door.forced  door east" \
  || fail "events list does not show the door.forced"

# The example adapter (Examples/adapters/json_feed_adapter.py) forwards a JSON feed once, then resumes from the
# box's cursor and forwards nothing again; the card number in the feed is never stored.
mkdir -p "$RUN/feed"
cat > "$RUN/feed/feed.json" <<FEED
[{"id": "og-101", "sequence": 101, "kind": "Access Denied", "time": "$NOW", "door": "panel1/reader3", "cardNumber": "8812345"},
 {"id": "og-102", "sequence": 102, "kind": "Door Held Open", "time": "$NOW", "door": "panel1/reader3"},
 {"id": "og-103", "sequence": 103, "kind": "Alarm Acknowledged", "time": "$NOW"}]
FEED
FEED_PORT=$(free_port)
(cd "$RUN/feed" && exec python3 -m http.server --bind 127.0.0.1 "$FEED_PORT" > /dev/null 2>&1) & pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$FEED_PORT/feed.json" && break; sleep 0.1; done
adapter() { HALLWATCH_TOKEN=$TOKEN python3 Examples/adapters/json_feed_adapter.py --box "$BASE" --source onguard \
  --vendor lenel --feed "http://127.0.0.1:$FEED_PORT/feed.json" --once --insecure; }
[ "$(adapter)" = "forwarded 3 records" ] || fail "the adapter did not forward the feed"
[ "$(adapter)" = "forwarded 0 records" ] || fail "the adapter did not resume from the cursor"
"$BIN/hallwatchctl" events list --state-directory "$RUN/state" --json > "$RUN/list.json"
for t in '"type" : "x.lenel.alarm-acknowledged"' '"id" : "og-102"'; do grep -q "$t" "$RUN/list.json" || fail "events list lacks $t"; done
! grep -qa 8812345 "$RUN/state/events.sqlite" || fail "a card number was stored"
echo "adapter: 3 records forwarded, none again after a restart from the cursor"

WEB_URL="$BASE/" ADMIN_PASSWORD_FILE="$RUN/admin.password" SCREENSHOTS="$PWD/.run/screenshots" EVENT_AT="$AT" \
  TOKEN="$TOKEN" .venv-test/bin/python3 Tests/Browser/events_page.py

"$BIN/hallwatchctl" event-source revoke axis --state-directory "$RUN/state" > /dev/null
expect "$(post "$AXIS" "$(ev o1 axis door.opened "$NOW")")" 401 "a revoked token"
"$BIN/hallwatchctl" audit verify --state-directory "$RUN/state" > "$RUN/verify.txt" || { cat "$RUN/verify.txt"; fail "audit verify"; }
for action in eventsource.token eventsource.revoke event.conflict event.hold; do
  grep -q "\"action\":\"$action\"" "$RUN/state/audit.log" || fail "$action is not audited"
done
# ONVIF events: the discovery agent subscribes to the simulated controller (in its clock, an hour ahead), publishes
# what it pulls on the bus, and the web stores it as source onvif:ctl at door west (DoorToken Door1): each event once,
# and door.forced places the door's hold.
"$BIN/hallwatch-discovery" --config "$RUN/hallwatch.yaml" > "$RUN/discovery.log" 2>&1 & pids+=($!)
onvif_events() {
  "$BIN/hallwatchctl" events list --state-directory "$RUN/state" --from -1h --to +2h --json > "$RUN/onvif.json"
  python3 - "$RUN/onvif.json" <<'PY'
import json, sys
events = [e for e in json.load(open(sys.argv[1])) if e["source"] == "onvif:ctl"]
types = [e["type"] for e in events]
sys.exit(0 if types.count("door.forced") >= 1 and types.count("door.closed") >= 2 else 1)
PY
}
wait_for 60 onvif_events || { tail -5 "$RUN/discovery.log"; fail "no ONVIF door events stored"; }
python3 - "$RUN/onvif.json" <<'PY'
import collections, json, sys
events = [e for e in json.load(open(sys.argv[1])) if e["source"] == "onvif:ctl"]
assert all(e["door"] == "west" for e in events), events
# Each door step once: no two events of one type at the same device time (Initialized is state, not news).
keys = collections.Counter((e["type"], e["time"]) for e in events)
assert max(keys.values()) == 1, keys
forced = [e for e in events if e["type"] == "door.forced"]
assert forced[0]["holds"], "door.forced placed no hold"
print("ONVIF: %d events from onvif:ctl at door west (%s), door.forced held as %s"
      % (len(events), ", ".join(sorted(set(e["type"] for e in events))), forced[0]["holds"][0]))
PY
grep -q "event subscription made" "$RUN/discovery.log" || fail "the discovery agent made no subscription"
echo "events end to end: passed"
