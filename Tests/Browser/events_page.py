"""Headless Chromium on the events page of a real hallwatch-web (Tests/Browser/events.sh starts it).

events.sh POSTed a door.forced five minutes ago (EVENT_AT) at door east (direct camera bench-0, pre-roll 10 s).
Signs in, opens /events filtered to door.forced: the row is there with its door's name and a "Play bench-0" link to the camera's timeline
at the event time minus the pre-roll. Then a new event POSTed now (curl's job here: urllib with the source's token)
shows after a reload, and the door filter keeps only door east's events. The admin's event sources page lists the
sources and makes a new token once. Screenshots go to SCREENSHOTS.
"""
import datetime
import os
import time

import event_post  # noqa: E402 (beside this file)
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ["WEB_URL"]
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
SCREENSHOTS = os.environ["SCREENSHOTS"]
EVENT_AT = os.environ["EVENT_AT"]
TOKEN = os.environ["TOKEN"]


def post_event(body):
    return event_post.post_event(URL, TOKEN, body)


def main():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--window-size=1366,900"]:
        options.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    try:
        driver.get(URL + "login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        # The sign-in's POST and redirect must finish before another navigation (else it is aborted, no session).
        WebDriverWait(driver, 20).until(lambda d: "/login" not in d.current_url)
        driver.get(URL + "events")
        Select(driver.find_element(By.ID, "type")).select_by_value("door.forced")
        driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
        # The filter is a GET form: wait for the filtered page, not the one the click left.
        WebDriverWait(driver, 10).until(lambda d: "type=door.forced" in d.current_url)
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        rows = driver.find_elements(By.CSS_SELECTOR, "#events tbody tr[data-type='door.forced']")
        assert len(rows) == 1, driver.page_source[:3000]
        row = rows[0]
        assert "East entrance" in row.text, row.text
        link = row.find_element(By.CSS_SELECTOR, "a.play")
        assert link.text == "Play bench-0", link.text
        at = datetime.datetime.strptime(EVENT_AT, "%Y-%m-%dT%H:%M:%SZ") - datetime.timedelta(seconds=10)
        expected = "/cameras/bench-0/timeline?at=" + at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert link.get_attribute("href").endswith(expected), (link.get_attribute("href"), expected)
        assert row.find_element(By.CSS_SELECTOR, "td[data-label='Video'] small").text == "held", row.text
        # Five minutes old on arrival: stored and flagged late.
        assert row.find_element(By.CSS_SELECTOR, "small.late").text == "late", row.text
        driver.save_screenshot(os.path.join(SCREENSHOTS, "events-page.png"))

        # A new event, POSTed now, shows after a reload; the door filter keeps only the door's events.
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert post_event({"specversion": "1.0", "id": "page-1", "source": "onguard", "type": "door.held",
                           "time": now, "subject": "east"}) == 201
        driver.get(URL + "events")
        assert driver.find_elements(By.CSS_SELECTOR, "#events tbody tr[data-type='door.held']"), "door.held not shown"
        Select(driver.find_element(By.ID, "door")).select_by_value("east")
        driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
        WebDriverWait(driver, 10).until(lambda d: "door=east" in d.current_url)
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
        doors = {r.get_attribute("data-door") for r in driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")}
        assert doors == {"east"}, doors
        types = [r.get_attribute("data-type") for r in driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")]
        assert types[-1] == "door.forced" and types.count("door.held") == 2 and "access.granted" not in types, types
        driver.save_screenshot(os.path.join(SCREENSHOTS, "events-page-door.png"))

        # The admin's sources page: both sources listed; a new source's token shown once.
        driver.get(URL + "admin/event-sources")
        names = [r.get_attribute("data-source") for r in driver.find_elements(By.CSS_SELECTOR, "#sources tbody tr")]
        assert names == ["axis", "onguard"], names
        driver.find_element(By.ID, "name").send_keys("genetec")
        driver.find_element(By.ID, "types").send_keys("access.denied, access.granted")
        driver.find_element(By.CSS_SELECTOR, "section form button").click()
        token = WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "new-token"))[0].text
        assert token.startswith("hwe_") and len(token) == 47, token
        driver.save_screenshot(os.path.join(SCREENSHOTS, "event-sources.png"))
        driver.get(URL + "admin/event-sources")
        assert token not in driver.page_source
        print("events page: door.forced shown with Play bench-0 at %s; door filter; token made once" % expected)
    finally:
        driver.quit()


main()
