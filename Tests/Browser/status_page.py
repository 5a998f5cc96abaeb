"""Headless Chromium against a real hallwatch-web (Tests/Browser/run.sh starts it, with mosquitto).

Signs in through the form, sees the cameras the bus announced with thumbnails that are real pictures (decoded
from the recordings run.sh made), the 24 h plots drawn, the box section (fingerprints, building time), sees one
camera go offline without a reload within 5 s, signs out; at 360x740 and 1366x768. Screenshots go to SCREENSHOTS. Selenium drives Debian's
chromium through Debian's chromedriver: nothing is downloaded.
"""
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL = os.environ["WEB_URL"]
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
SCREENSHOTS = os.environ["SCREENSHOTS"]
BUS = os.environ["BUS_SOCKET"]
BOX = os.environ["BOX"]
IDENTITY_FP = os.environ["IDENTITY_FP"]
TLS_FP = os.environ["TLS_FP"]

# The standard deviation of an element's pixels' luma, drawn into a canvas (an <img> or a <canvas>): a blank,
# uniform or missing picture gives 0.
PIXEL_SPREAD = """
var e = arguments[0], c = e, w, h;
if (e.tagName === 'IMG') {
  if (!e.complete || e.naturalWidth === 0) return -1;
  w = e.naturalWidth; h = e.naturalHeight;
  c = document.createElement('canvas'); c.width = w; c.height = h; c.getContext('2d').drawImage(e, 0, 0);
} else { w = e.width; h = e.height; }
var d = c.getContext('2d').getImageData(0, 0, w, h).data, n = 0, sum = 0, sq = 0;
for (var i = 0; i < d.length; i += 4) {
  var a = d[i + 3] / 255, y = a * (0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]) + (1 - a) * 255;
  sum += y; sq += y * y; n++;
}
var m = sum / n; return Math.sqrt(Math.max(0, sq / n - m * m));
"""


def wait_for(what, check, seconds=15):
    deadline = time.time() + seconds
    value = check()
    while time.time() < deadline and not value:
        time.sleep(0.25)
        value = check()
    assert value, what() if callable(what) else what
    return value


def publish_state(camera, state, reason=None):
    now = int(time.time() * 1e6)
    payload = '{"camera":"%s","state":"%s","codec":"h264","width":1280,"height":720,"fps":25,"at":%d%s}' % (
        camera, state, now, ',"reason":{"code":"%s","message":"test"}' % reason if reason else "")
    subprocess.run(["mosquitto_pub", "--unix", BUS, "-r", "-t", "hallwatch/v1/%s/camera/%s/state" % (BOX, camera),
                    "-m", payload], check=True)


def state_of(driver, camera):
    # Read in one script call: the live updates replace the rows every second (no stale element).
    return driver.execute_script(
        "var c = document.querySelector('#cameras tr[data-camera=\"' + arguments[0] + '\"] td[data-label=\"State\"]');"
        " return c ? c.className : null;", camera)


def run(width, height):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
              "--window-size=%d,%d" % (width, height)]:
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    # A desktop window cannot be narrower than ~500 px: emulate the phone's viewport instead.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        publish_state("lobby", "online")
        publish_state("gym", "online")
        driver.get(URL + "login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        deadline = time.time() + 10
        while time.time() < deadline and state_of(driver, "gym") != "state-online":
            time.sleep(0.2)
        assert state_of(driver, "gym") == "state-online", driver.page_source[:2000]
        assert state_of(driver, "lobby") == "state-online"
        # Thumbnails: the newest recorded keyframe of each camera, a real picture at most 320 px wide.
        for cam in ["lobby", "gym"]:
            img = driver.find_element(By.CSS_SELECTOR, "img.thumb[data-camera='%s']" % cam)
            wait_for("%s thumbnail loaded" % cam, lambda: driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", img))
            size = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img)
            assert size == [320, 180], "%s thumbnail is %s" % (cam, size)
            spread = driver.execute_script(PIXEL_SPREAD, img)
            assert spread > 20, "%s thumbnail is not a picture (luma spread %.1f)" % (cam, spread)
            print("%dx%d: %s thumbnail %dx%d, luma spread %.1f" % (width, height, cam, size[0], size[1], spread))
        # Plots: Chart.js drew one line per recorded stream (lobby, gym, gym/sub) and per disk (three).
        for canvas_id, lines in [("plot-bitrate", "3"), ("plot-disks", "3")]:
            canvas = driver.find_element(By.ID, canvas_id)
            wait_for(lambda: "%s not drawn: data-drawn %s, note %r, console %s" % (
                canvas_id, canvas.get_attribute("data-drawn"), driver.find_element(By.ID, "plots-note").text,
                driver.get_log("browser")), lambda: canvas.get_attribute("data-drawn") == lines)
            spread = driver.execute_script(PIXEL_SPREAD, canvas)
            assert spread > 5, "%s looks empty (spread %.1f)" % (canvas_id, spread)
        # The box section: both fingerprints as the files say, times in the building's zone with UTC on hover.
        assert driver.find_element(By.ID, "box-identity").text == IDENTITY_FP
        assert driver.find_element(By.ID, "box-tls").text == TLS_FP
        at = driver.find_element(By.ID, "at")
        assert at.get_attribute("title").endswith("Z"), at.get_attribute("title")
        assert at.text.endswith(" EST") or at.text.endswith(" EDT"), at.text
        driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "h-plots"))
        driver.save_screenshot(os.path.join(SCREENSHOTS, "status-%dx%d-plots.png" % (width, height)))
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(os.path.join(SCREENSHOTS, "status-%dx%d-online.png" % (width, height)))
        # Horizontal overflow would make the page unusable on a phone.
        inner = driver.execute_script("return window.innerWidth")
        scroll = driver.execute_script("return document.documentElement.scrollWidth")
        assert inner == width, "viewport %d px, wanted %d" % (inner, width)
        assert scroll <= width, "page is %d px wide in a %d px viewport" % (scroll, width)

        start = time.time()
        publish_state("gym", "offline", "rtsp.connect")
        while time.time() - start < 5 and state_of(driver, "gym") != "state-offline":
            time.sleep(0.1)
        seen = time.time() - start
        assert state_of(driver, "gym") == "state-offline", "gym not offline after 5 s without a reload"
        driver.save_screenshot(os.path.join(SCREENSHOTS, "status-%dx%d-offline.png" % (width, height)))
        print("%dx%d: gym offline on the page %.2f s after the bus said so" % (width, height, seen))

        # The audit log page: filtered to sign-ins, this session's among them, times in the building's zone.
        driver.find_element(By.CSS_SELECTOR, "header nav a[href='/audit']").click()
        wait_for("audit page", lambda: driver.find_elements(By.ID, "audit"))
        driver.find_element(By.ID, "action").send_keys("login.")
        driver.find_element(By.CSS_SELECTOR, "form.filter button").click()
        wait_for("filtered audit page", lambda: "action=login." in driver.current_url)
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#audit tbody tr')).map(function (r) {"
            " return [r.querySelector('[data-label=Action]').textContent, r.querySelector('time').title,"
            " r.querySelector('time').textContent]; })")
        assert rows and all(r[0].startswith("login.") for r in rows), rows
        assert any(r[0] == "login.success" for r in rows), rows
        assert all(r[1].endswith("Z") and (r[2].endswith("EST") or r[2].endswith("EDT")) for r in rows), rows
        href = driver.find_element(By.ID, "download").get_attribute("href")
        csv = driver.execute_async_script(
            "var done = arguments[1]; fetch(arguments[0]).then(function (r) { return r.text(); }).then(done);", href)
        assert csv.startswith("seq,time,actor,address,action,object,details,previousHash,hash"), csv[:200]
        driver.save_screenshot(os.path.join(SCREENSHOTS, "audit-%dx%d.png" % (width, height)))
        # Sign the audit chain's head on demand (same origin, the session's CSRF token).
        checkpoint = driver.execute_async_script(
            "var done = arguments[0]; fetch('/api/v1/audit/checkpoint', {method: 'POST', headers: {'X-CSRF-Token':"
            " document.querySelector('input[name=csrf]').value}}).then(function (r) { return r.json(); }).then(done);")
        assert checkpoint["seq"] > 0 and len(checkpoint["signature"]) == 88, checkpoint

        driver.find_element(By.CSS_SELECTOR, "header form button").click()
        deadline = time.time() + 5
        while time.time() < deadline and not driver.find_elements(By.ID, "password"):
            time.sleep(0.2)
        assert driver.find_elements(By.ID, "password"), "sign-out did not return to the sign-in page"
        driver.get(URL)
        assert driver.find_elements(By.ID, "password"), "the status page was shown after sign-out"
    finally:
        driver.quit()


if __name__ == "__main__":
    run(360, 740)
    run(1366, 768)
    print("browser test passed; screenshots in " + SCREENSHOTS)
    sys.exit(0)
