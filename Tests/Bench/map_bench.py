"""Times tap-on-pin to the pop-up's first presented frame, weighs the map page, and times a POSTed door.forced to
its door pin flashing (Tests/Bench/map.sh)."""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Browser"))
from live_view import URL, browser, sign_in  # noqa: E402
from map_view import doors, popup, post_event, wait  # noqa: E402

TAPS = 10


def main():
    d = browser()
    try:
        sign_in(d)
        d.get(URL + "map")
        wait(lambda: d.execute_script("return document.body.getAttribute('data-map-ready')"), 15)
        time.sleep(1)
        weight = d.execute_script(
            "var n = performance.getEntriesByType('navigation')[0];"
            " var r = performance.getEntriesByType('resource');"
            " return {html: n.decodedBodySize, resources: r.map(function (e) { return [e.name, e.decodedBodySize]; })};")
        cameras = [c for c in d.execute_script(
            "return Array.from(document.querySelectorAll('.pin[data-camera]')).map(function (p) {"
            " return p.getAttribute('data-camera'); });")]
        times, played = [], []
        for camera in cameras:
            for _ in range(TAPS):
                tapped = time.time()
                d.execute_script("document.querySelector('.pin[data-camera=\"' + arguments[0] + '\"]').click();", camera)
                first = wait(lambda: (popup(d) or {}).get("frames", 0) > 0 and time.time(), 5, 0.01)
                state = (popup(d) or {}).get("state")
                d.execute_script("window.hallwatchMap.map.closePopup();")
                if not first:
                    break  # a codec this Chromium cannot play (the tile says so): not timed
                times.append(first - tapped)
                if camera not in played:
                    played.append(camera)
                time.sleep(0.3)
        flashes = []
        for _ in range(TAPS):
            posted = time.time()
            post_event("door.forced", "gym-hall")
            on = wait(lambda: doors(d).get("gym-hall", {}).get("alarm") == "true" and time.time(), 10, 0.01)
            if on:
                flashes.append(on - posted)
            post_event("door.closed", "gym-hall")
            wait(lambda: doors(d).get("gym-hall", {}).get("alarm") == "false", 10, 0.05)
    finally:
        d.quit()
    total = weight["html"] + sum(s for _, s in weight["resources"] if "/api/v1/map/events" not in _)
    leaflet = sum(s for n, s in weight["resources"] if "/leaflet/" in n)
    floor = sum(s for n, s in weight["resources"] if "/map/floors/" in n)
    times.sort()
    p50 = statistics.median(times) if times else None
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))] if times else None
    json.dump({"benchmark": "map", "tapToFirstFrameSeconds": times, "p50": p50, "p95": p95, "camerasPlayed": played,
               "pageBytes": total, "leafletBytes": leaflet, "floorImageBytes": floor,
               "doorForcedToFlashSeconds": flashes}, open(".bench/map.json", "w"),
              indent=1)
    if p50 is None:
        print("| map | tap on a pin to the pop-up's first frame | not measured | goal ≤ 1.5 s | — | no camera played |")
    else:
        print(f"| map | tap on a pin to the pop-up's first frame, s (p50; {len(times)} taps) | {p50:.2f} | goal ≤ 1.5 | "
              f"{p50 / 1.5:.2f}× | p95 {p95:.2f} s; cameras {', '.join(played)}; sub streams |")
    flashes.sort()
    if flashes:
        f50, fmax = statistics.median(flashes), flashes[-1]
        print(f"| map | POST door.forced -> door pin flashing, s (p50; {len(flashes)} of {TAPS}) | {f50:.2f} | goal ≤ 1 | "
              f"{f50:.2f}× | max {fmax:.2f} s; the map feed is checked every 250 ms |")
    else:
        print("| map | POST door.forced -> door pin flashing | not measured | goal ≤ 1 s | — | the pin never flashed |")
    print(f"| map | map page weight, kB | {total / 1000:.0f} | — | — | Leaflet {leaflet / 1000:.0f} kB, floor plan "
          f"{floor / 1000:.0f} kB (SVG), the rest HTML, scripts, styles and the map's JSON; uncompressed |")


if __name__ == "__main__":
    main()
