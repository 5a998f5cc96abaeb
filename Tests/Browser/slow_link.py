"""Headless Chromium watching live video through a link slower than the stream (Tests/Browser/run.sh: the demo).

A relay on 127.0.0.1 passes the web's bytes to the browser at RATE bytes/s (default 256 KiB/s: half of the 1080p
`entrance` camera's 4 Mbit/s); DevTools' network emulation does not slow WebSockets in Chromium (measured: no
effect), hence the relay. The browser must be told `drop` (skipped to a keyframe) and, once the first GOP went
through (after 10 s), the delay from the recorder's receipt to the frame on screen must stay at or under 2 s
(median of the samples). Prints the drops and the delay every 2 s; a screenshot goes to SCREENSHOTS.
"""
import os
import socket
import sys
import threading
import time
from urllib.parse import urlparse

from live_view import SCREENSHOTS, URL, browser, sign_in, tiles

RATE = int(os.environ.get("RATE", "262144"))  # bytes/s


def relay(upstream_port):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def slow(src, dst, rate):
        budget, last = 0.0, time.time()
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                while data:
                    now = time.time()
                    budget = min(rate * 0.1, budget + (now - last) * rate)
                    last = now
                    n = int(min(len(data), budget))
                    if n <= 0:
                        time.sleep(0.01)
                        continue
                    dst.sendall(data[:n])
                    data = data[n:]
                    budget -= n
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fast(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass

    def accept():
        while True:
            client, _ = listener.accept()
            up = socket.socket()
            # Small buffers, so the slow link pushes back on the web's socket instead of hiding in the kernel.
            up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            up.connect(("127.0.0.1", upstream_port))
            threading.Thread(target=fast, args=(client, up), daemon=True).start()
            threading.Thread(target=slow, args=(up, client, RATE), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def main():
    web = urlparse(URL)
    port = relay(web.port)
    slow_url = "https://127.0.0.1:%d/" % port
    driver = browser()
    failures = []
    try:
        sign_in(driver)  # directly: the cookie is the host's, whatever the port
        driver.get(slow_url + "live/entrance")
        samples = []
        for i in range(15):
            time.sleep(2)
            t = tiles(driver)[0]
            now = driver.execute_script("return document.querySelector('.tile').getAttribute('data-latency-ms')")
            samples.append((t["drops"], now))
            print("slow link %2d s: frames %d, latency now %s ms, p50 %s, drops %d, reconnects %d, note %r" % (
                2 * (i + 1), t["frames"], now, t["p50"] and round(t["p50"]), t["drops"], t["reconnects"], t["note"]))
        driver.save_screenshot(os.path.join(SCREENSHOTS, "live-slow-link.png"))
        t = tiles(driver)[0]
        late = [int(n) for _, n in samples[5:] if n]
        print("slow link: %d drops; delay after 10 s, ms: %s" % (t["drops"], late))
        if t["drops"] < 1:
            failures.append("no drop on a link at half the stream's bit rate")
        if not late or sorted(late)[len(late) // 2] > 2000:
            failures.append("latency on the slow link above 2 s: %s" % late)
    finally:
        driver.quit()
    if failures:
        for f in failures:
            print("FAIL: " + f, file=sys.stderr)
        sys.exit(1)
    print("slow link: OK")


if __name__ == "__main__":
    main()
