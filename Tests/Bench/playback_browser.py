"""Timeline figures in headless Chromium (Tests/Bench/playback.sh runs it against its hallwatch-web): click to first
frame — from the pointer's release on the timeline to the first frame of the video presented at that time
(requestVideoFrameCallback, as the page reports it in data-first-frame-utc), measured in the page with
performance.now() — and scrub step — from a pointer move while dragging to the keyframe at or before it shown in
the scrub video (its first presented frame). Each is the median of ROUNDS, the page cache warm after the first
round. Prints one JSON object: {"clickMs": [...], "scrubMs": [...]}.
Environment: WEB_URL, ADMIN_PASSWORD_FILE, CAMERA, FROM_MS (the recording's first ms), ROUNDS.
"""
import json
import os
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

URL = os.environ["WEB_URL"]
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
CAMERA = os.environ.get("CAMERA", "cam-1")
FROM_MS = int(os.environ["FROM_MS"])
ROUNDS = int(os.environ.get("ROUNDS", "9"))

# Times in the page: the last pointer event on the canvas, when the first frame at the click was reported, when the
# scrub video presented a new frame.
PROBE = """
var root = document.getElementById('timeline'), canvas = document.getElementById('tl-canvas');
var scrub = document.getElementById('tl-scrub');
window.bench = { up: null, move: null, first: null, scrubShown: null };
canvas.addEventListener('pointerup', function () { bench.up = performance.now(); }, true);
canvas.addEventListener('pointermove', function () { bench.move = performance.now(); }, true);
new MutationObserver(function () {
  if (root.dataset.firstFrameUtc && bench.first === null) bench.first = performance.now();
}).observe(root, { attributes: true, attributeFilter: ['data-first-frame-utc'] });
function onScrubFrame() { bench.scrubShown = performance.now(); scrub.requestVideoFrameCallback(onScrubFrame); }
scrub.requestVideoFrameCallback(onScrubFrame);
"""


def wait_for(what, check, seconds=20):
    deadline = time.time() + seconds
    value = check()
    while time.time() < deadline and not value:
        time.sleep(0.02)
        value = check()
    assert value, what
    return value


def main():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
              "--autoplay-policy=no-user-gesture-required", "--window-size=1366,768"]:
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    clicks, scrubs = [], []
    try:
        driver.get(URL + "login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        wait_for("signed in", lambda: "/login" not in driver.current_url)
        at = FROM_MS + 30_000
        driver.get(URL + "cameras/%s/timeline?at=%s.%03dZ" % (
            CAMERA, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at / 1000)), at % 1000))
        wait_for("?at= did not play", lambda: driver.execute_script(
            "return document.getElementById('timeline').dataset.firstFrameUtc"))
        driver.execute_script(PROBE)
        canvas = driver.find_element(By.ID, "tl-canvas")
        w = driver.execute_script("return arguments[0].clientWidth", canvas)
        h = driver.execute_script("return arguments[0].clientHeight", canvas)
        for i in range(ROUNDS):
            # Click a different second each round (10 s apart inside the first 100 s of the recording).
            x = driver.execute_script("return window.hallwatchTimeline.xAt(arguments[0])", FROM_MS + 5_000 + 10_000 * i)
            driver.execute_script("bench.first = null; bench.up = null;")
            ActionChains(driver).move_to_element_with_offset(canvas, int(x - w / 2), int(40 - h / 2)).click().perform()
            wait_for("no first frame after click %d" % i, lambda: driver.execute_script("return bench.first"))
            clicks.append(driver.execute_script("return bench.first - bench.up"))
            time.sleep(0.3)
        # Scrub: hold at 5 s, then one step per 8 s of the recording (at least 1 px), each waited for.
        def x_at(ms):
            return driver.execute_script("return window.hallwatchTimeline.xAt(arguments[0])", ms)
        x = x_at(FROM_MS + 5_000)
        ActionChains(driver).move_to_element_with_offset(canvas, int(x - w / 2), 0).click_and_hold() \
            .move_by_offset(6, 0).perform()
        x += 6
        time.sleep(0.5)
        for i in range(ROUNDS):
            dx = max(1, round(x_at(FROM_MS + 20_000 + 8_000 * i) - x))
            x += dx
            driver.execute_script("bench.scrubShown = null; bench.move = null;")
            ActionChains(driver).move_by_offset(dx, 0).perform()
            wait_for("no keyframe after scrub step %d" % i, lambda: driver.execute_script(
                "return bench.scrubShown !== null && bench.move !== null && bench.scrubShown > bench.move"))
            scrubs.append(driver.execute_script("return bench.scrubShown - bench.move"))
            time.sleep(0.2)
        ActionChains(driver).release().perform()
    finally:
        driver.quit()
    print(json.dumps({"clickMs": clicks, "scrubMs": scrubs}))


if __name__ == "__main__":
    main()
