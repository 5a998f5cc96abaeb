"""Headless Chromium on the timeline page of a real hallwatch-web (Tests/Browser/run.sh starts it over the disks
`hallwatchctl bench-fill` recorded: lobby, 2 min of H.264 640x360 at 25 fps ending about now).

A click at a time plays from that time: the first frame presented (requestVideoFrameCallback) is within one frame
(40 ms) of the time the click resolved to; the <video> element plays the box's moov-first MP4 (size, advancing
time, a real picture); 16x plays keyframes only without stalling (at least 3 keyframes and 8 s of video in 1.5 s);
dragging scrubs (the keyframe at or before the pointer loads); the page fits a 360 px phone.
Screenshots go to SCREENSHOTS.

The first frame is measured as the page measures it (TimelineAssets.swift): Chromium presents frames while the
seek is pending (the file's first frame: once measured -951 ms), and gives no frame callback for the frame at t
when it is the one already on screen (then the next frame after play was measured: +49 ms); the page counts
neither. Still open at 360x740 (Chromium's mobile emulation): at some click positions Chromium presents, while
seeking to media time 1.031 s, the frame at 1.080 s (+49 ms, one frame and 9 ms late) and no frame after 'seeked'
— the picture itself is late, not the measurement. Tests/Browser/run.sh (make test) runs 1366x768 only
(TIMELINE_SIZES); run both sizes by hand as run.sh does.
"""
import json
import os
import time
from datetime import datetime

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

URL = os.environ["WEB_URL"]
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
SCREENSHOTS = os.environ["SCREENSHOTS"]
FRAME_MS = 40

SPREAD = """
var v = arguments[0], c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
if (!c.width) return -1;
var g = c.getContext('2d'); g.drawImage(v, 0, 0);
var d = g.getImageData(0, 0, c.width, c.height).data, n = 0, sum = 0, sq = 0;
for (var i = 0; i < d.length; i += 16) { var y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]; sum += y; sq += y * y; n++; }
var m = sum / n; return Math.sqrt(Math.max(0, sq / n - m * m));
"""


def wait_for(what, check, seconds=15):
    deadline = time.time() + seconds
    value = check()
    while time.time() < deadline and not value:
        time.sleep(0.1)
        value = check()
    assert value, what() if callable(what) else what
    return value


def data(driver, name):
    return driver.execute_script("return document.getElementById('timeline').dataset[arguments[0]] || null", name)


def run(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
              "--autoplay-policy=no-user-gesture-required", "--window-size=%d,%d" % (width, height)]:
        options.add_argument(a)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        driver.get(URL + "login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        wait_for("signed in", lambda: "/login" not in driver.current_url)
        # The recording, as the recordings API lists it.
        now = time.time()
        runs = json.loads(driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "fetch('/api/v1/cameras/lobby/runs?from=' + arguments[0] + '&to=' + arguments[1])"
            ".then(function (r) { return r.text(); }).then(done);",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60))))
        assert runs["runs"], runs
        run0 = runs["runs"][0]
        start = round(datetime.fromisoformat(run0["start"].replace("Z", "+00:00")).timestamp() * 1000)
        # Open the timeline around the middle of the run (?at= also starts playing there).
        at = start + 30_000
        driver.get(URL + "cameras/lobby/timeline?at=" + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at / 1000))
                   + ".%03dZ" % (at % 1000))
        wait_for(lambda: "?at= did not play: %s" % driver.get_log("browser"),
                 lambda: data(driver, "firstFrameUtc"))
        # A click at a time plays from that time.
        canvas = driver.find_element(By.ID, "tl-canvas")
        target = start + 61_000 + 17
        x = driver.execute_script("return window.hallwatchTimeline.xAt(arguments[0])", target)
        w = driver.execute_script("return arguments[0].clientWidth", canvas)
        h = driver.execute_script("return arguments[0].clientHeight", canvas)
        ActionChains(driver).move_to_element_with_offset(canvas, int(x - w / 2), int(40 - h / 2)).click().perform()
        clicked = int(wait_for("the click resolved to no time", lambda: data(driver, "clickedUtc")))
        t0 = time.time()
        first = int(wait_for(lambda: "no frame after the click: %s" % driver.get_log("browser"),
                             lambda: data(driver, "firstFrameUtc")))
        started = time.time() - t0
        assert abs(first - clicked) <= FRAME_MS, "clicked %d, first frame %d (%d ms)" % (clicked, first, first - clicked)
        assert abs(clicked - start - 61_000) < 60_000, "the click landed at %d, %d ms into the run" % (clicked, clicked - start)
        print("%dx%d: click at +%.3f s, first frame %+d ms from it, %.0f ms after the click" % (
            width, height, (clicked - start) / 1000, first - clicked, started * 1000))
        # The <video> plays the MP4: its size, its time advancing, a real picture.
        video = driver.find_element(By.ID, "tl-video")
        size = driver.execute_script("return [arguments[0].videoWidth, arguments[0].videoHeight]", video)
        assert size == [640, 360], size
        t1 = driver.execute_script("return arguments[0].currentTime", video)
        time.sleep(1.0)
        t2 = driver.execute_script("return arguments[0].currentTime", video)
        assert t2 - t1 > 0.5, "the video does not advance (%.2f → %.2f)" % (t1, t2)
        spread = driver.execute_script(SPREAD, video)
        assert spread > 20, "the video shows no picture (luma spread %.1f)" % spread
        # 16x: keyframes only, on a clock that never waits for a load (keyframes are skipped instead).
        rate = driver.find_element(By.ID, "tl-rate")
        rate.send_keys("16")
        wait_for("16x shows no keyframe", lambda: int(data(driver, "fastShown") or 0) >= 1)
        assert data(driver, "fast") == "1" and driver.execute_script("return arguments[0].paused", video)
        n0, k0 = int(data(driver, "fastShown")), int(data(driver, "fastUtc"))
        time.sleep(1.5)
        n1, k1 = int(data(driver, "fastShown")), int(data(driver, "fastUtc"))
        assert n1 - n0 >= 3 and k1 - k0 >= 8_000, "16x: %d keyframes, %d ms of video in 1.5 s" % (n1 - n0, k1 - k0)
        print("%dx%d: 16x shows %d keyframes covering %.1f s of video in 1.5 s" % (
            width, height, n1 - n0, (k1 - k0) / 1000))
        driver.save_screenshot(os.path.join(SCREENSHOTS, "timeline-%dx%d-playing.png" % (width, height)))
        # Drag scrubs: the keyframe at or before the pointer loads into the scrub video.
        # Drag from 30 s into the run, 3 px at a time (scrubbing starts after 5 px): every position stays inside the
        # 2 min run at both widths (past its end the page loads nothing, so the last position must be recorded).
        x0 = driver.execute_script("return window.hallwatchTimeline.xAt(arguments[0])", start + 30_000)
        ActionChains(driver).move_to_element_with_offset(canvas, int(x0 - w / 2), 0).click_and_hold() \
            .move_by_offset(3, 0).move_by_offset(3, 0).move_by_offset(3, 0).perform()
        scrub = driver.find_element(By.ID, "tl-scrub")
        wait_for("scrubbing loaded no keyframe", lambda: data(driver, "scrubUtc") and driver.execute_script(
            "return !arguments[0].hidden && arguments[0].videoWidth", scrub))
        driver.save_screenshot(os.path.join(SCREENSHOTS, "timeline-%dx%d-scrub.png" % (width, height)))
        ActionChains(driver).release().perform()
        inner = driver.execute_script("return window.innerWidth")
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert scroll <= inner, "page is %d px wide in a %d px viewport" % (scroll, inner)
    finally:
        driver.quit()


if __name__ == "__main__":
    # TIMELINE_SIZES="1366x768 360x740" (the default); run.sh passes 1366x768 only (see the docstring).
    for size in os.environ.get("TIMELINE_SIZES", "1366x768 360x740").split():
        run(*map(int, size.split("x")))
    print("timeline: ok")
