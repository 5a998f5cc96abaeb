#!/usr/bin/env python3
"""Measurement and report helpers for Tests/Bench/bench.sh (stdlib only).

  benchlib.py sample --label L --out RESULTS.jsonl --windows K --seconds S [--pss GROUP] [--extra JSON]
                     --group NAME=PID,PID,... [--group ...] [--stats NAME=FILE]
      Measures K consecutive windows of S seconds. Per group and window: CPU (user+sys from /proc/PID/stat,
      % of one core, summed over the group's processes). Per window also the box's CPU busy % from
      /proc/stat. For --stats files (JSON with a "fragments" counter, e.g. hallwatch-loadgen's), the counter's
      increase per window. After the last window, PSS (smaps_rollup) of each process of the --pss groups.
      Appends one JSON record to RESULTS.jsonl.
  benchlib.py perf --label L --out RESULTS.jsonl --pid PID --seconds S [--stats FILE]
      Counts the process's syscalls (all, fdatasync, fsync) with perf's tracepoints over S seconds.
  benchlib.py record --out RESULTS.jsonl --json JSON     appends a record as is.
  benchlib.py table RESULTS.jsonl --json OUT.json --meta JSON
      Prints the markdown table and writes the JSON report.
"""
import argparse, json, os, statistics, subprocess, sys, time

TICKS = os.sysconf("SC_CLK_TCK")


def ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None


def box_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]), idle


def counter(path, key="fragments"):
    try:
        with open(path) as f:
            return json.load(f).get(key, 0)
    except (FileNotFoundError, ValueError):
        return None


def sample(a):
    groups = {}
    for g in a.group:
        name, pids = g.split("=", 1)
        groups[name] = [int(p) for p in pids.split(",") if p]
    stats = dict(s.split("=", 1) for s in a.stats)
    windows = []
    for _ in range(a.windows):
        t0 = time.monotonic(); c0 = {n: {p: ticks(p) for p in ps} for n, ps in groups.items()}
        b0 = box_cpu(); s0 = {n: counter(f) for n, f in stats.items()}; y0 = {n: counter(f, "bytes") for n, f in stats.items()}
        time.sleep(a.seconds)
        t1 = time.monotonic(); c1 = {n: {p: ticks(p) for p in ps} for n, ps in groups.items()}
        b1 = box_cpu(); s1 = {n: counter(f) for n, f in stats.items()}; y1 = {n: counter(f, "bytes") for n, f in stats.items()}
        dt = t1 - t0
        w = {"seconds": dt, "cpu": {}, "dead": {}, "boxBusyPercent": 100.0 * (1 - (b1[1] - b0[1]) / max(1, b1[0] - b0[0]))}
        for n, ps in groups.items():
            alive = [p for p in ps if c0[n][p] is not None and c1[n][p] is not None]
            w["cpu"][n] = 100.0 * sum(c1[n][p] - c0[n][p] for p in alive) / TICKS / dt
            w["dead"][n] = len(ps) - len(alive)
        w["counters"] = {n: (None if s0[n] is None or s1[n] is None else (s1[n] - s0[n]) / dt) for n in stats}
        w["bytesPerSecond"] = {n: (None if y0[n] is None or y1[n] is None else (y1[n] - y0[n]) / dt) for n in stats}
        windows.append(w)
    rec = {"label": a.label, "windows": windows, "pss": {}, "processes": {n: len(ps) for n, ps in groups.items()}}
    for n in a.pss:
        rec["pss"][n] = [k for k in (pss_kb(p) for p in groups.get(n, [])) if k is not None]
    if a.extra:
        rec.update(json.loads(a.extra))
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    med = {n: statistics.median(w["cpu"][n] for w in windows) for n in groups}
    print(json.dumps({"label": a.label, "cpuMedian": med}), file=sys.stderr)


def perf(a):
    events = ["raw_syscalls:sys_enter", "syscalls:sys_enter_fdatasync", "syscalls:sys_enter_fsync"]
    s0 = counter(a.stats) if a.stats else None
    t0 = time.monotonic()
    r = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(events), "-p", str(a.pid), "--", "sleep", str(a.seconds)],
                       capture_output=True, text=True)
    dt = time.monotonic() - t0
    s1 = counter(a.stats) if a.stats else None
    counts = {}
    for line in r.stderr.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2] in events:
            counts[parts[2]] = int(parts[0]) if parts[0].isdigit() else None
    rec = {"label": a.label, "seconds": dt, "syscalls": counts.get(events[0]), "fdatasync": counts.get(events[1]),
           "fsync": counts.get(events[2]), "fragments": None if s0 is None or s1 is None else s1 - s0,
           "perfError": None if counts else r.stderr[-300:]}
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")


def record(a):
    with open(a.out, "a") as f:
        f.write(json.dumps(json.loads(a.json)) + "\n")


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, d=2):
    return "—" if x is None else f"{x:.{d}f}"


def camera_side_health(stats):
    """The loadgen rtsp's own trouble during the step (packets sent > 50 ms late, clients dropped), or nothing."""
    if not stats or not (stats.get("packetsLate") or stats.get("clientsDropped")):
        return ""
    late = 100 * stats["packetsLate"] / max(1, stats["packetsSent"])
    return f" ({late:.1f} % of its packets > 50 ms late, {stats['clientsDropped']} clients dropped)"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def table(a):
    recs = [json.loads(l) for l in open(a.results) if l.strip()]
    by = {}
    for r in recs:
        by.setdefault(r["label"], []).append(r)
    meta = json.loads(a.meta)
    rows = []
    report = {"meta": meta, "rows": [], "records": recs}

    def row(area, figure, ours, peer, rat, note=""):
        rows.append(f"| {area} | {figure} | {ours} | {peer} | {rat} | {note} |")
        report["rows"].append({"area": area, "figure": figure, "hallwatch": ours, "peer": peer, "ratio": rat, "note": note})

    def cpu_per_cam(label, group="tool"):
        # Per live process: a peer that exited (GStreamer's splitmuxsink does under load) is not averaged in
        # as a free camera; the notes say how many exited.
        rs = by.get(label)
        if not rs:
            return None, None
        r = rs[-1]; n = r["processes"].get(group) or 1
        return med(w["cpu"][group] / (n - w["dead"][group]) for w in r["windows"] if n > w["dead"][group]), r

    def pss_per_proc(r, group="tool"):
        return None if r is None or not r["pss"].get(group) else med(r["pss"][group]) / 1024

    # 1. ingest
    for mbit in meta["ingestRates"]:
        for n in meta["ingestCounts"]:
            c_hw, r_hw = cpu_per_cam(f"ingest/hallwatch/{mbit}/{n}")
            c_ff, r_ff = cpu_per_cam(f"ingest/ffmpeg/{mbit}/{n}")
            c_gs, r_gs = cpu_per_cam(f"ingest/gstreamer/{mbit}/{n}")
            c_cam = None if not r_hw else med(w["cpu"]["camera"] for w in r_hw["windows"]) / n
            notes = []
            if r_hw:
                notes.append(f"camera side {fmt(c_cam)} %/stream, excluded")
                if r_hw.get("gaps") or r_hw.get("short"):
                    notes.append(f"sink saw {r_hw.get('gaps', 0)} gaps, {r_hw.get('short', 0)} cameras short of fragments")
            for name, r in (("hallwatch", r_hw), ("ffmpeg", r_ff), ("gst", r_gs)):
                dead = max((w["dead"]["tool"] for w in r["windows"]), default=0) if r else 0
                if dead:
                    notes.append(f"{name}: {dead} of {n} processes exited (figure over the others; see logs)")
            row("ingest", f"CPU % of a core per camera, {mbit} Mbit/s × {n}", fmt(c_hw),
                f"ffmpeg {fmt(c_ff)} · gst {fmt(c_gs)}", f"{ratio(c_hw, c_ff)} · {ratio(c_hw, c_gs)}",
                "; ".join(["goal ≤ 0.5× ffmpeg"] + notes))
            p_hw, p_ff, p_gs = pss_per_proc(r_hw), pss_per_proc(r_ff), pss_per_proc(r_gs)
            row("ingest", f"PSS MB per process, {mbit} Mbit/s × {n}", fmt(p_hw, 1),
                f"ffmpeg {fmt(p_ff, 1)} · gst {fmt(p_gs, 1)}", f"{ratio(p_hw, p_ff)} · {ratio(p_hw, p_gs)}", "goal ≤ 8 MB")

    # 2. whole box
    steps = sorted((r for r in recs if r["label"].startswith("box/")), key=lambda r: r["cameras"])
    best = None
    for r in steps:
        if r.get("ok"):
            best = r["cameras"]
        else:
            break
    searched = [r["cameras"] for r in steps]
    if steps:
        failed = next((r for r in steps if not r.get("ok")), None)
        why = f"first failing step: {failed['cameras']} ({failed.get('why')})" if failed else f"every step passed (searched up to {max(searched)})"
        row("whole box", "largest N of 4 Mbit/s cameras with ≥ 40 % CPU idle, no dropped fragment",
            str(best) if best else "none", "—", "—", f"steps {searched}; {why}")
    for r in steps:
        if r["cameras"] in meta["boxReport"]:
            per = med(w["cpu"]["hallwatch"] for w in r["windows"]) / r["cameras"]
            row("whole box", f"CPU % of a core per camera at {r['cameras']} cameras (capture + recorder + bus)",
                fmt(per), "—", "—",
                f"idle {fmt(r.get('idlePercent'), 0)} % of the box excluding the cameras; recorder {fmt(r.get('recorderPercent'))} %; "
                f"cameras ({r.get('cameraSide', 'simcam')}) {fmt(r.get('cameraPercent', r.get('simcamPercent', 0)) / r['cameras'], 3)} %/stream "
                f"on the same cores{camera_side_health(r.get('cameraStats'))}; "
                f"{'ok' if r.get('ok') else 'FAILED: ' + str(r.get('why'))}")
    lv = next((r for r in recs if r["label"] == "box-live"), None)
    if lv:
        n = lv["cameras"]
        trouble = [f"{lv[k]} {what}" for k, what in (("recordedShort", "cameras recorded short"),
                                                     ("captureWarnings", "capture warnings (offline/drop)"),
                                                     ("reconnects", "subscriber reconnects")) if lv.get(k)]
        row("whole box", f"live chunks on vs off, {n} cameras (capture + recorder CPU, % of a core)",
            f"{fmt(lv['onPercent'], 1)} %", f"{fmt(lv['offPercent'], 1)} % off", ratio(lv["onPercent"], lv["offPercent"]),
            f"goal ≤ 1.15×; {lv['camerasDelivered']} of {n} cameras delivered live, {lv['drops']} drops; "
            f"capture {fmt(lv['capturePercent']['on'], 1)} vs {fmt(lv['capturePercent']['off'], 1)} %, "
            f"recorder {fmt(lv['recorderPercent']['on'], 1)} vs {fmt(lv['recorderPercent']['off'], 1)} %; "
            f"off before {fmt(lv['offBeforePercent'], 1)} %, after {fmt(lv['offAfterPercent'], 1)} %; "
            f"{fmt(lv['chunksPerSecond'], 0)} chunks/s, {fmt(lv['liveMBs'], 1)} MB/s to the subscriber "
            f"(hallwatch-loadgen live, {fmt(lv['subscriberPercent'], 1)} %, excluded); "
            f"workers chunks on {lv['workersChunksOn']}, off again {lv['workersChunksOff']}"
            + "".join(f"; {t}" for t in trouble))
    if not steps:
        row("whole box", "largest N of 4 Mbit/s cameras", "not run", "—", "—", "")

    # 3. recorder
    rr = [r for r in recs if r["label"].startswith("recorder/")]
    main = next((r for r in rr if r["label"] == "recorder/128"), None)
    perfs = [r for r in recs if r["label"] == "perf/recorder/128"]
    if main:
        cpu = med(w["cpu"]["recorder"] for w in main["windows"])
        feed = main.get("feed", {})
        fr = med(w["counters"].get("feed") for w in main["windows"])
        mbs = med(w["bytesPerSecond"].get("feed") for w in main["windows"])
        mbs = None if mbs is None else mbs / 1e6
        sc = med(p["syscalls"] / p["fragments"] for p in perfs if p.get("syscalls") and p.get("fragments"))
        fs = med((p["fdatasync"] or 0) / p["seconds"] + (p["fsync"] or 0) / p["seconds"] for p in perfs if p.get("syscalls") is not None)
        cond = "128 streams × 4 Mbit/s"
        row("recorder", f"MB/s accepted, {cond}", fmt(mbs, 1), f"offered {fmt(main.get('offeredMBs'), 1)}",
            ratio(mbs, main.get("offeredMBs")),
            f"disk: dd {fmt(meta.get('diskMBs'), 0)} MB/s with fdatasync; lag p99 {fmt(feed.get('lagMs', {}).get('p99'), 0)} ms")
        row("recorder", f"fragments/s, {cond}", fmt(fr, 1), f"offered {fmt(main.get('offeredFragments'), 1)}", ratio(fr, main.get("offeredFragments")), "")
        row("recorder", f"fsyncs/s (fdatasync + fsync), {cond}", fmt(fs, 1), "—", "—", "perf tracepoints")
        row("recorder", f"CPU % of a core, {cond}", fmt(cpu), "—", "—", f"median of {len(main['windows'])} windows")
        row("recorder", f"syscalls per fragment, {cond}", fmt(sc, 1), "—", "—", "perf raw_syscalls:sys_enter / fragments fed")
    search = sorted((r for r in rr if r["label"].startswith("recorder/search/")), key=lambda r: r["streams"])
    if search:
        best = None
        for r in search:
            if r.get("ok"):
                best = r["streams"]
            else:
                break
        failed = next((r for r in search if not r.get("ok")), None)
        why = f"first failing: {failed['streams']} ({failed.get('why')})" if failed else "every step passed"
        row("recorder", "largest N of 4 Mbit/s streams sustained with 1 s cadence", str(best) if best else "none", "—", "—",
            f"steps {[r['streams'] for r in search]}; {why}")
    elif main:
        row("recorder", "largest N of 4 Mbit/s streams sustained with 1 s cadence", "not searched", "—", "—", "quick mode")

    # 4. durability
    d = next((r for r in recs if r["label"] == "durability"), None)
    if d:
        losses = sorted(x for xs in d["lossSeconds"].values() for x in xs)
        row("durability", f"RPO: media lost per camera per kill -9, s (median / max, {d['rounds']} kills × {len(d['lossSeconds'])} cameras)",
            f"{fmt(med(losses))} / {fmt(max(losses) if losses else None)}", "promise ≤ cadence + 1 fragment = 2.00", "—",
            f"cadence {d['cadence']}")
        rt = d["restartSeconds"]
        row("durability", "recorder restart to recording, s (median / max)", f"{fmt(med(rt))} / {fmt(max(rt) if rt else None)}", "—", "—",
            "exec of the new recorder → every camera's next fragment indexed (bus)")
        if d.get("flapServed"):
            share = d["flapRecorded"] / d["flapServed"]
            row("durability", "flapping camera (TCP reset every 5 s, reconnect accepted at once): recorded ÷ served s",
                f"{share:.2f}", "before issue 12: 34.5 s of 60 = 0.58", "—",
                f"{d['flapRecorded']:.1f} s recorded of {d['flapServed']:.1f} s")
    # 5. the drop-in scripts' rows (bench.sh section 5), in the order they ran; a script that failed says so
    names = []
    for r in recs:
        if r["label"].startswith("dropin/") and r["label"][7:] not in names:
            names.append(r["label"][7:])
    for name in names:
        found = [r for r in recs if r["label"] == f"dropin/{name}"]
        if all(x.get("row") for x in found):
            for x in found:
                rows.append(x["row"].strip()); report["rows"].append({"area": name, "markdown": x["row"].strip()})
        else:
            error = next((x.get("error", "") for x in found if not x.get("row")), "")
            row(name, f"Tests/Bench/{name}.sh", "failed", "—", "—", error)

    head = ["| area | figure | Hallwatch | peer (same run, same input) | ratio | notes |", "|---|---|---|---|---|---|"]
    print("\n".join(head + rows))
    print(f"\n{meta['mode']} run, {meta['started']}, {fmt(meta.get('elapsedSeconds'), 0)} s; {meta['conditions']}")
    with open(a.json, "w") as f:
        json.dump(report, f, indent=1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--label", required=True); s.add_argument("--out", required=True)
    s.add_argument("--windows", type=int, default=3); s.add_argument("--seconds", type=float, default=5)
    s.add_argument("--group", action="append", default=[]); s.add_argument("--pss", action="append", default=[])
    s.add_argument("--stats", action="append", default=[]); s.add_argument("--extra")
    s = sub.add_parser("perf")
    s.add_argument("--label", required=True); s.add_argument("--out", required=True)
    s.add_argument("--pid", type=int, required=True); s.add_argument("--seconds", type=float, default=3); s.add_argument("--stats")
    s = sub.add_parser("record"); s.add_argument("--out", required=True); s.add_argument("--json", required=True)
    s = sub.add_parser("table"); s.add_argument("results"); s.add_argument("--json", required=True); s.add_argument("--meta", required=True)
    a = p.parse_args()
    {"sample": sample, "perf": perf, "record": record, "table": table}[a.cmd](a)


if __name__ == "__main__":
    main()
