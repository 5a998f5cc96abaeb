"""Headless Chromium against a real hallwatch-web (Tests/Browser/run.sh starts it, with mosquitto).

Signs in through the form, sees the cameras the bus announced, sees one go offline without a reload
within 5 s, signs out; at 360x740 and 1366x768. Screenshots go to SCREENSHOTS. Selenium drives Debian's
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
