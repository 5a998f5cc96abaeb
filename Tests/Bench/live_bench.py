"""Live view's latency on one camera of a running demo (Tests/Bench/live.sh): opens the camera's live page
OPENS times at random points of its GOP and times the first presented frame, then watches WATCH_SECONDS and
collects each presented frame's latency from the recorder's receipt and from the capture worker's (the times
each chunk carries, LiveView's header, against requestVideoFrameCallback). Prints one JSON line."""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Browser"))
from live_view import CAMERAS, URL, browser, sign_in  # noqa: E402

OPENS = 10
GOP = float(os.environ["GOP_SECONDS"])
WATCH = float(os.environ.get("WATCH_SECONDS", "30"))

TILE = """
var t = (window.hallwatchLive || [])[0];
if (!t) return null;
return {state: t.state, note: t.note.textContent, frames: t.frames, firstFrameMs: t.firstFrameMs, drops: t.drops,
        reconnects: t.reconnects, latencies: t.latencies.slice(), captureLatencies: t.captureLatencies.slice()};
"""


def tile(d):
    return d.execute_script(TILE) or {}


def main():
    camera = CAMERAS[0]
    d = browser()
    first, last = [], {}
    try:
        sign_in(d)
        for _ in range(OPENS):
            time.sleep(random.uniform(0, GOP))  # somewhere in the GOP: how far back the latest keyframe lies
            d.get(URL + "live/" + camera)
            deadline = time.time() + 10
            while time.time() < deadline and tile(d).get("firstFrameMs") is None:
                time.sleep(0.05)
            t = tile(d)
            if t.get("firstFrameMs") is not None:
                first.append(round(t["firstFrameMs"]))
        # The last open keeps playing: its latencies over the watch.
        d.execute_script("var t = window.hallwatchLive[0]; t.latencies.length = 0; t.captureLatencies.length = 0;")
        time.sleep(WATCH)
        last = tile(d)
        d.save_screenshot(os.path.join(os.environ["SCREENSHOTS"], "live-bench-gop%g.png" % GOP))
    finally:
        d.quit()
    print(json.dumps({"camera": camera, "gopSeconds": GOP, "watchSeconds": WATCH, "firstFrameMs": first,
                      "latencyMs": last.get("latencies", []), "captureLatencyMs": last.get("captureLatencies", []),
                      "drops": last.get("drops"), "reconnects": last.get("reconnects"), "state": last.get("state"),
                      "note": last.get("note")}))


if __name__ == "__main__":
    main()
