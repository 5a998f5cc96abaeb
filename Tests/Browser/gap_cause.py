"""Headless Chromium on the timeline of a camera with a gap whose cause the box knows (Tests/Browser/gap_cause.sh
sets it up: lobby's two runs 150 s apart, and lobby's worker offline with rtsp.connect 2 s into the gap).

What a person sees: the recordings API gives the gap `cause` camera.offline and the worker's words as `detail`;
the timeline, opened on the later run, draws the gap; a click 20 s into it says "Nothing recorded at HH:MM:SS:
the camera was offline (rtsp.connect: connection refused (from …))" and plays nothing; a click back on the later
run plays again. Screenshot in SCREENSHOTS (timeline-gap-cause.png).
"""
import json
import os
import sys
import time
from datetime import datetime

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browserlib import chromium, sign_in, wait_for  # noqa: E402

URL = os.environ["WEB_URL"]
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
SCREENSHOTS = os.environ["SCREENSHOTS"]


def ms(iso):
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t / 1000)) + ".%03dZ" % (t % 1000)


driver = chromium()
try:
    sign_in(driver, URL, PASSWORD)

    now = time.time() * 1000
    runs = json.loads(driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch('/api/v1/cameras/lobby/runs?from=' + arguments[0] + '&to=' + arguments[1])"
        ".then(function (r) { return r.text(); }).then(done);", iso(now - 3600e3), iso(now + 60e3)))
    assert len(runs["runs"]) == 2 and len(runs["gaps"]) == 1, runs
    gap = runs["gaps"][0]
    assert gap["cause"] == "camera.offline", gap
    assert gap["detail"].startswith("rtsp.connect: connection refused (from "), gap
    assert 148 <= gap["seconds"] <= 152, gap
    print("recordings API: gap of %.1f s, cause %s, detail %r" % (gap["seconds"], gap["cause"], gap["detail"]))

    # The timeline opened on the later run (?at= plays there), its hour in view: the gap is about 57 px wide.
    later = ms(runs["runs"][1]["start"]) + 30_000
    driver.get(URL + "cameras/lobby/timeline?at=" + iso(later))
    wait_for(lambda: "?at= did not play: %s" % driver.get_log("browser"),
             lambda: driver.execute_script("return document.getElementById('timeline').dataset.firstFrameUtc"))
    canvas = driver.find_element(By.ID, "tl-canvas")
    w = driver.execute_script("return arguments[0].clientWidth", canvas)
    h = driver.execute_script("return arguments[0].clientHeight", canvas)

    def click_at(t):
        x = driver.execute_script("return window.hallwatchTimeline.xAt(arguments[0])", t)
        ActionChains(driver).move_to_element_with_offset(canvas, int(x - w / 2), int(40 - h / 2)).click().perform()

    note = driver.find_element(By.ID, "tl-note")
    inside = ms(gap["from"]) + 20_000
    click_at(inside)
    said = wait_for(lambda: "the click in the gap said %r" % note.text,
                    lambda: note.text if note.text.startswith("Nothing recorded at ") else None)
    assert ": the camera was offline (rtsp.connect: connection refused (from " in said, said
    paused = driver.execute_script("return document.getElementById('tl-video').paused")
    assert paused, "the video plays after a click in the gap"
    driver.save_screenshot(os.path.join(SCREENSHOTS, "timeline-gap-cause.png"))
    print("click 20 s into the gap: %r" % said)

    # Back on the later run: it plays again, and the note no longer speaks of the gap.
    click_at(later + 20_000)
    wait_for(lambda: "no frame after clicking the later run again: %r" % note.text,
             lambda: not driver.execute_script("return document.getElementById('tl-video').paused")
             and "Nothing recorded" not in note.text)
    print("gap cause: ok")
finally:
    driver.quit()
