"""Headless Chromium on the evidence exports page of a real hallwatch-web (Tests/Browser/run.sh starts it over the
disks `hallwatchctl bench-fill` recorded: lobby and gym, 2 min of H.264 ending about now).

The admin picks lobby and gym, a range, a reason and a case number and starts an export; the page's progress
reaches "done"; the "Download zip" link downloads the bundle (a real browser download); unzipped, `sha256sum -c`
and `hallwatchctl export verify` pass on it, and the bundle has one file per camera. The export and the download are
in the audit log. Screenshots go to SCREENSHOTS.
"""
import os
import subprocess
import tempfile
import time
import zipfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL = os.environ["WEB_URL"]
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
SCREENSHOTS = os.environ["SCREENSHOTS"]
CTL = os.environ.get("HALLWATCHCTL", ".build/debug/hallwatchctl")
AUDIT = os.environ["AUDIT_LOG"]


def wait_for(what, check, seconds=30):
    deadline = time.time() + seconds
    value = check()
    while time.time() < deadline and not value:
        time.sleep(0.2)
        value = check()
    assert value, what() if callable(what) else what
    return value


def main():
    downloads = tempfile.mkdtemp(prefix="hallwatch-exports-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--window-size=1366,900"]:
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    try:
        driver.get(URL + "login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        wait_for("signed in", lambda: "/login" not in driver.current_url)
        driver.get(URL + "exports")
        for camera in ["lobby", "gym"]:
            driver.find_element(By.CSS_SELECTOR, "input[name=camera][value=%s]" % camera).click()
        now = time.time()
        for field, value in [
            ("export-from", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 90))),
            ("export-to", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 30))),
            ("export-reason", "Browser test: fight near the lobby doors"),
            ("export-case", "BT-2026-0001"),
        ]:
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        driver.find_element(By.ID, "export-start").click()
        message = wait_for("no answer to the export", lambda: driver.find_element(By.ID, "export-message").text)
        assert message.startswith("Export x-") and message.endswith("queued."), message
        export_id = message.split()[1]
        row = "#export-list tr[data-id='%s']" % export_id
        wait_for("the export is not listed", lambda: driver.find_elements(By.CSS_SELECTOR, row))
        driver.save_screenshot(os.path.join(SCREENSHOTS, "exports-started.png"))
        wait_for(lambda: "the export did not finish: " + driver.find_element(By.CSS_SELECTOR, row).text,
                 lambda: driver.find_element(By.CSS_SELECTOR, row).get_attribute("data-state") == "done", 120)
        driver.save_screenshot(os.path.join(SCREENSHOTS, "exports-done.png"))
        driver.find_element(By.CSS_SELECTOR, row + " a.export-download").click()
        name = "hallwatch-%s.zip" % export_id
        path = os.path.join(downloads, name)
        wait_for("the zip was not downloaded", lambda: os.path.exists(path) and not any(
            f.endswith(".crdownload") for f in os.listdir(downloads)), 60)
    finally:
        driver.quit()
    with zipfile.ZipFile(path) as z:
        z.extractall(downloads)
    bundle = os.path.join(downloads, export_id)
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=bundle, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    verify = subprocess.run([CTL, "export", "verify", bundle], capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout + verify.stderr
    for camera in ["lobby", "gym"]:
        files = os.listdir(os.path.join(bundle, "video", camera))
        assert len(files) == 1 and files[0].endswith(".mp4"), (camera, files)
    audit = open(AUDIT).read()
    for action in ["export.create", "export.done", "export.download"]:
        assert '"action":"%s"' % action in audit, action
    print("exports page: export %s done, zip downloaded (%d bytes), sha256sum -c and export verify pass: %s" % (
        export_id, os.path.getsize(path), verify.stdout.strip()))


if __name__ == "__main__":
    main()
