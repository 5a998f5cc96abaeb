"""Headless Chromium keeps playing live video through faults of a real box (Tests/Browser/run.sh: `hallwatchctl
demo`; PIDS is the demo's pid directory, CONFIG its configuration file).

1. hallwatch-web killed (SIGKILL) mid-view: the supervisor restarts it; the tile reconnects by itself (its stall
   watchdog, no reload) and frames are presented again. Prints the time without a new frame.
2. A resolution and profile change mid-view: `gym`'s source is switched in the configuration to the 1080p
   `entrance` mount and its capture worker killed, so the restarted worker starts a new run with a new init
   segment; the same tile (no reload) shows the new size and codec and keeps presenting frames (the player's
   `changeType`). The source is switched back at the end. Run it last: it changes the demo's configuration.
Screenshots go to SCREENSHOTS.
"""
import os
import signal
import sys
import time

from live_view import SCREENSHOTS, URL, browser, sign_in, tiles

PIDS = os.environ["PIDS"]
CONFIG = os.environ["CONFIG"]


def pid(name):
    return int(open(os.path.join(PIDS, name + ".pid")).read().split()[0])


def longest_gap(driver, seconds, since, frames):
    """Watches the first tile for `seconds`; returns (the longest time without a new presented frame, counted from
    `since`, and the last sample)."""
    last_new, gap = since, 0.0
    while time.time() - since < seconds:
        t = tiles(driver)[0]
        now = time.time()
        if t["frames"] > frames:
            gap = max(gap, now - last_new)
            frames, last_new = t["frames"], now
        time.sleep(0.05)
    return max(gap, time.time() - last_new), tiles(driver)[0]


def main():
    failures = []
    driver = browser()
    original = open(CONFIG).read()
    try:
        sign_in(driver)

        # 1. The web process dies mid-view.
        driver.get(URL + "live/gym")
        time.sleep(4)
        before = tiles(driver)[0]
        web = pid("web")
        os.kill(web, signal.SIGKILL)
        killed = time.time()
        gap, t = longest_gap(driver, 25, killed, before["frames"])
        restarted = pid("web")
        print("fault: hallwatch-web (pid %d) killed mid-view, restarted as pid %d; longest time without a new frame "
              "%.1f s; reconnects %d; frames %d -> %d; note %r" % (
                  web, restarted, gap, t["reconnects"], before["frames"], t["frames"], t["note"]))
        driver.save_screenshot(os.path.join(SCREENSHOTS, "live-gym-after-web-kill.png"))
        if restarted == web:
            failures.append("hallwatch-web was not restarted")
        # The supervisor waits 1 s, the web needs a few seconds to listen, the tile retries with back-off (≤ 8 s).
        if gap > 15 or t["frames"] <= before["frames"] + 50 or t["state"] != "playing":
            failures.append("the tile did not resume after the web restart (gap %.1f s, state %s, frames %d -> %d)"
                            % (gap, t["state"], before["frames"], t["frames"]))

        # 2. A resolution (and profile) change mid-view: gym's camera now sends 1080p.
        driver.get(URL + "live/gym")
        time.sleep(4)
        before = tiles(driver)[0]
        changed = original.replace("/gym\"", "/entrance\"", 1)
        if changed == original:
            failures.append("gym's source is not in %s" % CONFIG)
        else:
            with open(CONFIG + ".tmp", "w") as f:
                f.write(changed)
            os.replace(CONFIG + ".tmp", CONFIG)
            time.sleep(1.5)  # the supervisor's configuration watcher reads it
            os.kill(pid("capture-gym"), signal.SIGKILL)
            switched = time.time()
            gap, t = longest_gap(driver, 15, switched, before["frames"])
            print("fault: gym switched from %s %s to %s %s mid-view; longest time without a new frame %.1f s; "
                  "reconnects %d; frames %d -> %d; note %r" % (
                      before["codec"], before["size"], t["codec"], t["size"], gap, t["reconnects"], before["frames"],
                      t["frames"], t["note"]))
            driver.save_screenshot(os.path.join(SCREENSHOTS, "live-gym-after-resolution-change.png"))
            if t["size"] != "1920×1080" or t["size"] == before["size"]:
                failures.append("the tile did not take the new resolution: %s -> %s" % (before["size"], t["size"]))
            if gap > 5 or t["frames"] <= before["frames"] + 50 or t["state"] != "playing":
                failures.append("playback did not continue across the change (gap %.1f s, state %s, frames %d -> %d)"
                                % (gap, t["state"], before["frames"], t["frames"]))
            if "1920×1080" not in t["note"]:
                failures.append("the tile does not say the new size: %r" % t["note"])
            if not (isinstance(t["spread"], (int, float)) and t["spread"] > 20):
                failures.append("the frame after the change is uniform (spread %s)" % t["spread"])
    finally:
        driver.quit()
        if open(CONFIG).read() != original:
            with open(CONFIG + ".tmp", "w") as f:
                f.write(original)
            os.replace(CONFIG + ".tmp", CONFIG)
            try:
                os.kill(pid("capture-gym"), signal.SIGKILL)
            except OSError:
                pass
    if failures:
        for f in failures:
            print("FAIL: " + f, file=sys.stderr)
        sys.exit(1)
    print("player faults: OK")


if __name__ == "__main__":
    main()
