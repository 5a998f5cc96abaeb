"""What the headless-Chromium page tests share: the browser as Debian ships it, signing in, and waiting for what
a person would see. Imported by gap_cause.py; the older scripts still carry their own copies (to fold in)."""
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def wait_for(what, check, seconds=15):
    """Polls `check` every 0.1 s until it returns something true (returned), else fails with `what` (a string
    or a function giving one, called only then)."""
    deadline = time.time() + seconds
    value = check()
    while time.time() < deadline and not value:
        time.sleep(0.1)
        value = check()
    assert value, what() if callable(what) else what
    return value


def chromium(width=1366, height=768):
    """Debian's Chromium, headless, through its chromedriver; the page's console kept (get_log("browser"))."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors",
              "--autoplay-policy=no-user-gesture-required", "--window-size=%d,%d" % (width, height)]:
        options.add_argument(a)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def sign_in(driver, url, password, user="admin"):
    """Signs in through the page's own form at `url` + "login"."""
    driver.get(url + "login")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button").click()
    wait_for("signed in", lambda: "/login" not in driver.current_url)
