"""Live viewers' cost (issue 14): N WebSocket viewers of one camera on a real box (Tests/Bench/viewers.sh starts
`hallwatchctl demo`), a load client reading the sockets — not a browser. aiohttp (asyncio; its WebSocket reader
is C; in .venv-test as onvif-zeep-async's dependency) in one process, the viewers spread over four loopback source addresses (the web allows 64 connections per
address). Measured from /proc over WINDOW seconds with no viewer, one, then N: hallwatch-web's CPU (% of
one core, TLS included) and resident memory (sampled every 0.5 s; the median's growth divided by N: memory per
viewer, and the largest sample's beside it), the recorder's CPU
(it must not grow with viewers: one subscription per camera, fanned out by the web), and what each viewer
received (bytes/s, media messages, drop notices). The memory per viewer is the growth from one viewer to N
(the camera's subscription and ring are made once, for the first).
Environment: WEB_URL, ADMIN_PASSWORD_FILE, PIDS (the demo's pid directory), CAMERA, VIEWERS, WINDOW, OUT (JSON).
"""
import asyncio
import json
import os
import ssl
import time

import aiohttp

URL = os.environ["WEB_URL"].rstrip("/")
PASSWORD = open(os.environ["ADMIN_PASSWORD_FILE"]).read().strip()
PIDS = os.environ["PIDS"]
CAMERA = os.environ.get("CAMERA", "entrance")
VIEWERS = int(os.environ.get("VIEWERS", "100"))
WINDOW = float(os.environ.get("WINDOW", "20"))
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def pid(name):
    return int(open(os.path.join(PIDS, name + ".pid")).read().strip())


def cpu_seconds(p):
    f = open("/proc/%d/stat" % p).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ


def rss_bytes(p):
    return int(open("/proc/%d/statm" % p).read().split()[1]) * PAGE


async def window(pids, seconds):
    """CPU % of one core of each process over `seconds`, and their resident memory sampled every 0.5 s meanwhile:
    the median and the largest sample (the web returns freed heap to the system every 10 s, so a sample at the
    end alone could fall either side of that)."""
    c0, t0 = {k: cpu_seconds(v) for k, v in pids.items()}, time.monotonic()
    samples = {k: [] for k in pids}
    while time.monotonic() - t0 < seconds:
        await asyncio.sleep(0.5)
        for k, v in pids.items():
            samples[k].append(rss_bytes(v))
    wall = time.monotonic() - t0
    return ({k: (cpu_seconds(v) - c0[k]) / wall * 100 for k, v in pids.items()},
            {k: sorted(s)[len(s) // 2] for k, s in samples.items()}, {k: max(s) for k, s in samples.items()})


class Viewer:
    def __init__(self):
        self.bytes = 0
        self.media = 0
        self.drops = 0
        self.errors = []


async def view(session, cookie, viewer, stop):
    ws_url = URL.replace("https://", "wss://") + "/api/v1/cameras/%s/live" % CAMERA
    try:
        async with session.ws_connect(ws_url, headers={"Cookie": cookie, "Origin": URL}, max_msg_size=0,
                                      autoping=True, heartbeat=None) as ws:
            while not stop.is_set():
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.BINARY:
                    viewer.bytes += len(msg.data)
                    viewer.media += 1
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    if '"drop"' in msg.data:
                        viewer.drops += 1
                else:
                    viewer.errors.append(str(msg.type))
                    return
    except Exception as e:  # counted: a refused or closed viewer is part of the figure
        viewer.errors.append(type(e).__name__ + ": " + str(e)[:120])


async def main():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    pids = {"web": pid("web"), "recorder": pid("recorder")}
    # Sign in once; every viewer carries the session cookie (and the page's origin, as a browser does).
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx),
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(URL + "/login", data={"username": "admin", "password": PASSWORD},
                          headers={"Origin": URL}, allow_redirects=False) as r:
            assert r.status == 303, "sign-in: HTTP %d" % r.status
            cookie = "; ".join("%s=%s" % (c.key, c.value) for c in s.cookie_jar)
    idle_cpu, idle_rss, _ = await window(pids, WINDOW)

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        ssl=ctx, local_addr=("127.0.0.%d" % (10 + i), 0), limit=0)) for i in range(4)]
    stop = asyncio.Event()
    # One viewer first: the camera's subscription and the web's ring for it are made once, whatever the number of
    # viewers; the growth from one viewer to N is what each further viewer costs.
    viewers = [Viewer()]
    tasks = [asyncio.create_task(view(sessions[0], cookie, viewers[0], stop))]
    await asyncio.sleep(5)
    one_cpu, one_rss, one_peak = await window(pids, WINDOW)
    viewers += [Viewer() for _ in range(VIEWERS - 1)]
    tasks += [asyncio.create_task(view(sessions[i % 4], cookie, v, stop)) for i, v in enumerate(viewers) if i > 0]
    await asyncio.sleep(5)  # every viewer connected and past its first keyframe
    b0 = [v.bytes for v in viewers]
    busy_cpu, busy_rss, busy_peak = await window(pids, WINDOW)
    received = [(v.bytes - b) / WINDOW for v, b in zip(viewers, b0)]
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in sessions:
        await s.close()

    live = [r for r in received if r > 0]
    result = {
        "camera": CAMERA, "viewers": VIEWERS, "windowSeconds": WINDOW,
        "webCPUPercent": {"idle": idle_cpu["web"], "one": one_cpu["web"], "viewers": busy_cpu["web"]},
        "recorderCPUPercent": {"idle": idle_cpu["recorder"], "one": one_cpu["recorder"], "viewers": busy_cpu["recorder"]},
        "webRSSBytes": {"idle": idle_rss["web"], "one": one_rss["web"], "viewers": busy_rss["web"]},
        "webRSSPeakBytes": {"one": one_peak["web"], "viewers": busy_peak["web"]},
        "bytesPerViewerPerSecond": {"min": min(received), "median": sorted(received)[len(received) // 2],
                                    "max": max(received)},
        "viewersReceiving": len(live), "drops": sum(v.drops for v in viewers),
        "errors": sorted({e for v in viewers for e in v.errors})[:5],
        "failedViewers": sum(1 for v in viewers if v.errors),
    }
    json.dump(result, open(os.environ.get("OUT", "/dev/null"), "w"), indent=1)
    per_viewer_kb = (busy_rss["web"] - one_rss["web"]) / max(1, VIEWERS - 1) / 1024
    peak_kb = (busy_peak["web"] - one_rss["web"]) / max(1, VIEWERS - 1) / 1024
    ok = lambda good: "✓" if good else "✗"
    web = busy_cpu["web"]
    print("| live | %d WebSocket viewers of %s (4 Mbit/s): hallwatch-web CPU, TLS included | %.0f %% of a core %s | one viewer %.0f %%, none %.0f %% "
          "| | goal ≤ 50 %%; %d of %d viewers receiving, median %.2f Mbit/s each, %d drop notices, %d failed |"
          % (VIEWERS, CAMERA, web, ok(web <= 50), one_cpu["web"], idle_cpu["web"], len(live), VIEWERS,
             result["bytesPerViewerPerSecond"]["median"] * 8 / 1e6, result["drops"], result["failedViewers"]))
    print("| live | memory per further viewer (hallwatch-web RSS from 1 to %d viewers ÷ %d, median of 0.5 s samples) | %.0f KB %s "
          "| | | goal ≤ 256 KB; at the largest sample %.0f KB; RSS %.1f (none) → %.1f (one) → %.1f MB (largest %.1f) |"
          % (VIEWERS, VIEWERS - 1, per_viewer_kb, ok(per_viewer_kb <= 256), peak_kb, idle_rss["web"] / 1e6,
             one_rss["web"] / 1e6, busy_rss["web"] / 1e6, busy_peak["web"] / 1e6))
    rec = busy_cpu["recorder"] / max(one_cpu["recorder"], 0.1)
    print("| live | recorder CPU with %d viewers vs one | %.1f %% | %.1f %% | %.2f× | none: %.1f %%; one subscription per camera, fanned out by the web: it must not grow with viewers |"
          % (VIEWERS, busy_cpu["recorder"], one_cpu["recorder"], rec, idle_cpu["recorder"]))


asyncio.run(main())
