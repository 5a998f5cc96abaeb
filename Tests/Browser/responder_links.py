"""Responder links in headless Chromium against a real box (Tests/Browser/run.sh: `hallwatchctl demo`).

The admin makes a link with a PIN on /responder-links (URL and QR code shown once; the banner appears). A fresh
browser profile — the responder's phone, 360x740 — opens the URL, types the PIN, lands on the map, taps a pin
(the pop-up plays), opens full screen (plays); the status page, the audit log, thumbnails (recorded pictures)
and the links page are refused. The admin revokes the link: the responder's live socket closes within 2 s and
the page says the link was revoked (the server's own `live.end` in the audit log within 2 s of the revocation).
A link made to have expired (its row's expiry moved into the past in the web's database) is refused, and five
wrong PINs lock a third link. Screenshots go to SCREENSHOTS.

What a person sees: the responder's live page links only the map (no Status link, which would be refused); a page
the responder may not see is a page with the way back to the map, not JSON; a revoked responder who reloads, twice,
is told "This link was revoked" (not the staff sign-in page); on a 360x740 phone the admins' banner for two active
links is one line (at most 5 % of the screen's height).
"""
import json
import os
import sqlite3
import sys
import time

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(__file__))
from live_view import URL, SCREENSHOTS, browser, sign_in  # noqa: E402
from map_view import popup, wait  # noqa: E402

STATE = os.environ["WEB_STATE"]  # the web's state directory (web.sqlite, audit.log)


def make_link(admin, label, pin=None, minutes="240"):
    admin.get(URL + "responder-links")
    admin.find_element(By.NAME, "label").send_keys(label)
    admin.execute_script("document.querySelector('select[name=minutes]').value = arguments[0];", minutes)
    if pin:
        admin.find_element(By.NAME, "pin").send_keys(pin)
    admin.find_element(By.CSS_SELECTOR, "form[action='/responder-links/new'] button").click()
    # The click returns before the answer's page has loaded when the machine is busy: wait for it.
    shown = wait(lambda: admin.find_elements(By.ID, "link-url"), 15, 0.1)
    if not shown:
        body = admin.find_element(By.TAG_NAME, "body").text
        raise SystemExit("FAIL responder: no link shown after making %r: %r" % (label, body[:300]))
    url = shown[0].text
    qr = admin.execute_script(
        "var i = document.getElementById('link-qr'); return i.complete && i.naturalWidth > 0 ? i.naturalWidth : 0;")
    return url, qr


def submit(driver, button_id):
    """Clicks a form's submit button and waits until the answer's page replaced this one: the click returns
    before the navigation on a busy machine (CI: a stale body, and a next get() that cut the POST short)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()

    def replaced(_):
        # Chromium answers a node of the page being replaced either as stale or, mid-navigation, with "Node with
        # given id does not belong to the document" (a plain WebDriverException; seen in CI): both mean gone.
        try:
            page.is_enabled()
            return False
        except StaleElementReferenceException:
            return True
        except WebDriverException as e:
            if "does not belong to the document" in str(e):
                return True
            raise

    WebDriverWait(driver, 15).until(replaced)


def body_text(driver):
    """The page's text, read again while the page is being replaced."""
    for _ in range(50):
        try:
            return driver.find_element(By.TAG_NAME, "body").text
        except StaleElementReferenceException:
            time.sleep(0.1)
    return driver.find_element(By.TAG_NAME, "body").text


def link_id(admin, label):
    return admin.execute_script(
        "var label = arguments[0];"
        " var r = Array.from(document.querySelectorAll('#links tr[data-link]')).filter(function (r) {"
        " return r.querySelector('th').textContent === label; })[0]; return r && r.getAttribute('data-link');",
        label)


def audit(action=None):
    out = []
    for line in open(os.path.join(STATE, "audit.log")):
        e = json.loads(line)
        if action is None or e["action"] == action:
            out.append(e)
    return out


def phone():
    d = browser()  # a fresh profile: no cookie, no account
    d.set_window_size(360, 740)
    return d


def main():
    failures = []
    admin = browser()
    responder = None
    try:
        sign_in(admin)
        url, qr = make_link(admin, "Engine 3", pin="314159")
        print("responder link %s… (QR code %s px)" % (url[:40], qr))
        if "/r/" not in url or not qr:
            failures.append("no link URL or QR code shown: %r %r" % (url, qr))
        admin.save_screenshot(os.path.join(SCREENSHOTS, "responder-links-created.png"))
        admin.get(URL)
        banner = wait(lambda: admin.execute_script(
            "var b = document.getElementById('responder-banner'); return b && b.textContent;"), 5)
        if not banner or "Engine 3" not in banner:
            failures.append("no banner on the status page: %r" % banner)
        admin.save_screenshot(os.path.join(SCREENSHOTS, "responder-banner.png"))
        # Two active links on an admin's phone: one compact line, not a quarter of the screen.
        make_link(admin, "Ladder 12")
        admin.set_window_size(360, 740)
        admin.get(URL)
        wait(lambda: admin.execute_script(
            "var b = document.getElementById('responder-banner'); return b && b.textContent.indexOf('2 responder') === 0;"), 5)
        box = admin.execute_script(
            "var b = document.getElementById('responder-banner'); if (!b) return null; var r = b.getBoundingClientRect();"
            " return {height: r.height, screen: window.innerHeight, text: b.textContent,"
            " lines: Math.round(b.firstChild.getBoundingClientRect().height /"
            " parseFloat(getComputedStyle(b.firstChild).lineHeight))};")
        print("phone banner: %s" % box)
        if not box or box["height"] > 0.05 * box["screen"] or box["lines"] != 1 or "Engine 3" not in box["text"] \
                or "Ladder 12" not in box["text"]:
            failures.append("the admins' banner on a 360x740 phone is not one compact line: %r" % box)
        admin.save_screenshot(os.path.join(SCREENSHOTS, "responder-banner-phone.png"))
        admin.set_window_size(1366, 900)

        responder = phone()
        responder.get(url)
        responder.find_element(By.ID, "pin").send_keys("314159")
        responder.save_screenshot(os.path.join(SCREENSHOTS, "responder-pin.png"))
        responder.find_element(By.ID, "open").click()
        if not wait(lambda: responder.execute_script("return document.body.getAttribute('data-map-ready')"), 10):
            failures.append("the responder's map did not load (%s)" % responder.current_url)
        responder.execute_script("document.querySelector('.pin[data-camera=\"lobby\"]').click();")
        if not wait(lambda: (popup(responder) or {}).get("frames", 0) > 10, 10):
            failures.append("the responder's pop-up does not play: %r" % popup(responder))
        responder.save_screenshot(os.path.join(SCREENSHOTS, "responder-map.png"))
        for path in ["", "audit", "api/v1/status", "api/v1/cameras/lobby/thumbnail.jpg", "responder-links",
                     "api/v1/responder-links"]:
            responder.get(URL + path)
            text = responder.find_element(By.TAG_NAME, "body").text
            if path.startswith("api/"):
                if "access.denied" not in text:
                    failures.append("a responder reached /%s: %r" % (path, text[:120]))
                continue
            # A page: says so, with the way back to the map; no JSON.
            said = responder.find_elements(By.CSS_SELECTOR, "#ended[data-code='access.denied']")
            back = responder.find_elements(By.CSS_SELECTOR, "a#back[href='/map']")
            if not said or not back or "{" in text:
                failures.append("a responder's /%s is not a page with the way back: %r" % (path, text[:120]))
            if path == "":
                responder.save_screenshot(os.path.join(SCREENSHOTS, "responder-refused.png"))
        responder.get(URL + "live/lobby")
        nav = responder.execute_script(
            "return Array.from(document.querySelectorAll('header nav a')).map(function (a) { return a.getAttribute('href'); });")
        print("responder's live page links: %s" % nav)
        if nav != ["/map"]:
            failures.append("the responder's live page links %r, expected only the map" % nav)
        if not wait(lambda: responder.execute_script(
                "var t = (window.hallwatchLive || [])[0]; return t && t.frames > 25 && t.video.currentTime > 0.5;"), 10):
            failures.append("the responder's full-screen live view does not play")
        viewers = None
        admin.get(URL + "responder-links")
        ident = link_id(admin, "Engine 3")
        viewers = admin.execute_script(
            "return document.querySelector('#links tr[data-link=\"' + arguments[0] + '\"] td[data-label=Viewers]').textContent;",
            ident)
        print("links page: Engine 3 has %s viewer(s)" % viewers)
        if viewers != "1":
            failures.append("the links page shows %r viewers, expected 1" % viewers)

        # Revoke: the socket closes within 2 s and the page says so.
        revoked = time.time()
        admin.find_element(By.CSS_SELECTOR, "tr[data-link='%s'] button.revoke" % ident).click()
        # The tile leaves `playing` when its socket closes (the server's close, or the page's stop).
        closed = wait(lambda: responder.execute_script(
            "var t = (window.hallwatchLive || [])[0]; return !t || t.state !== 'playing';") and time.time(), 5, 0.05)
        said = wait(lambda: responder.execute_script(
            "var d = document.getElementById('responder-ended'); return d && d.textContent;"), 5, 0.05)
        print("revoked: socket closed after %.2f s; the page says %r" % ((closed or 99) - revoked, said))
        if not closed or closed - revoked > 2.0:
            failures.append("the live socket was not closed within 2 s of the revocation")
        if not said or "revoked" not in said:
            failures.append("the responder's page does not say the link was revoked: %r" % said)
        responder.save_screenshot(os.path.join(SCREENSHOTS, "responder-revoked.png"))
        # Reloading, twice: still told why, never the staff sign-in page.
        for attempt in range(2):
            responder.refresh()
            ended = responder.find_elements(By.CSS_SELECTOR, "#ended[data-code='responder.revoked']")
            text = ended[0].text if ended else responder.find_element(By.TAG_NAME, "body").text[:120]
            print("revoked, reload %d: %s %r" % (attempt + 1, responder.current_url, text))
            if not ended or text != "This link was revoked." or responder.find_elements(By.ID, "username"):
                failures.append("a revoked responder's reload shows %s %r" % (responder.current_url, text))
        responder.save_screenshot(os.path.join(SCREENSHOTS, "responder-revoked-reload.png"))
        time.sleep(2.5)
        rev = [e for e in audit("responderLink.revoke") if e["object"] == ident]
        ends = [e for e in audit("live.end") if e["actor"].startswith("responder:%s:" % ident)]
        if not rev or not ends:
            failures.append("no revocation or responder live.end in the audit log")
        else:
            gap = (max(e["timeMicros"] for e in ends) - rev[-1]["timeMicros"]) / 1e6
            print("server: the responder's live socket ended %.2f s after the revocation" % gap)
            if gap > 2.0:
                failures.append("the server ended the responder's live socket %.2f s after the revocation" % gap)
        opens = [e for e in audit("responderLink.open") if e["object"] == ident]
        if not opens or "agent " not in opens[0]["details"] or opens[0]["address"] in ("", "-"):
            failures.append("the opening was not audited with address and user agent: %r" % opens)
        responder.quit()

        # An expired link is refused.
        url2, _ = make_link(admin, "Medic 7", minutes="15")
        ident2 = link_id(admin, "Medic 7")
        db = sqlite3.connect(os.path.join(STATE, "web.sqlite"))
        db.execute("UPDATE responderLink SET expiresMicros = ? WHERE id = ?", (int(time.time() * 1e6) - 1, ident2))
        db.commit()
        db.close()
        responder = phone()
        responder.get(url2)
        text = responder.find_element(By.TAG_NAME, "body").text
        print("expired link: %r" % text[:80])
        if "expired" not in text or responder.find_elements(By.ID, "open"):
            failures.append("an expired link was not refused: %r" % text[:120])
        responder.save_screenshot(os.path.join(SCREENSHOTS, "responder-expired.png"))

        # Five wrong PINs lock a link.
        url3, _ = make_link(admin, "Sgt. Ruiz", pin="271828")
        for attempt in range(5):
            responder.get(url3)
            if not responder.find_elements(By.ID, "pin"):
                break
            responder.find_element(By.ID, "pin").send_keys("000000")
            submit(responder, "open")
        text = body_text(responder)
        print("after 5 wrong PINs: %r" % text[:80])
        if "locked" not in text:
            failures.append("five wrong PINs did not lock the link: %r" % text[:120])
        admin.get(URL)
        banner = wait(lambda: admin.execute_script(
            "var b = document.getElementById('responder-banner'); return b && b.textContent;"), 5)
        if not banner or "LOCKED" not in banner:
            failures.append("the admins' banner does not show the locked link: %r" % banner)
    finally:
        admin.quit()
        if responder:
            responder.quit()
    for f in failures:
        print("FAIL responder:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
