#!/usr/bin/env python3
"""A small Hallwatch event adapter: polls a JSON feed of access-control records and forwards them to the box.

The feed is any URL answering a JSON list of records (an OnGuard OpenAccess `GET /api/access/onguard/openaccess/
logged_events` page reduced to its `item_list`, a Genetec Web SDK query, a vendor's export): each record has
at least an id, a time with an offset, an event kind and a door reference. MAPPING turns the vendor's kind into a
Hallwatch type; anything unmapped goes through as x.<vendor>.<kind>. Card numbers and PINs are never forwarded:
the adapter drops them, and the box would remove them anyway.

Resumes where the box says (GET /api/v1/sources/NAME/cursor): records up to the box's highest stored sequence
number are skipped, so a restart re-sends nothing the box has; a repeat would be answered 200 anyway (idempotent
by source and id). Sends batches of at most 500 (application/cloudevents-batch+json) and honours 429 Retry-After.

    HALLWATCH_TOKEN=hwe_… json_feed_adapter.py --box https://box.example --source onguard \
        --feed https://onguard.example/feed.json [--once] [--insecure]

Only the standard library; Python 3.9+.
"""
import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request

# Vendor kind → Hallwatch type (README, "Door and alarm events", adapter table).
MAPPING = {
    "Access Granted": "access.granted",
    "Access Denied": "access.denied",
    "Duress": "access.duress",
    "Door Forced Open": "door.forced",
    "Door Held Open": "door.held",
    "Door Opened": "door.opened",
    "Door Closed": "door.closed",
    "Reader Tamper": "door.tamper",
    "Alarm Input Active": "input.alarm",
    "Intercom Call": "intercom.call",
    "Panic": "panic",
}
SECRET_KEYS = {"pin", "cardnumber", "card", "cardno", "badgenumber", "credential", "facilitycode"}


def to_event(record, source, vendor):
    kind = str(record["kind"])
    slug = "".join(c if c.isalnum() else "-" for c in kind.lower()).strip("-")[:64] or "event"
    raw = {k: v for k, v in record.items() if k.lower().replace("_", "").replace("-", "") not in SECRET_KEYS}
    event = {
        "specversion": "1.0",
        "id": str(record["id"]),  # the vendor's own serial: stable across re-sends
        "source": source,
        "type": MAPPING.get(kind, "x.%s.%s" % (vendor, slug)),
        "time": record["time"],  # RFC 3339 with an offset, as the vendor logged it
        "data": {"raw": raw},
    }
    if "sequence" in record:
        event["sequence"] = int(record["sequence"])
    if "door" in record:
        event["doorref"] = str(record["door"])
    return event


class Box:
    def __init__(self, base, source, token, insecure):
        self.base, self.source, self.token = base.rstrip("/"), source, token
        self.context = ssl.create_default_context()
        if insecure:  # the box's self-signed certificate; pin its fingerprint in production instead
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def request(self, method, path, body=None, content_type=None):
        headers = {"Authorization": "Bearer " + self.token}
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        while True:
            try:
                with urllib.request.urlopen(req, context=self.context, timeout=30) as r:
                    return r.status, json.load(r)
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    time.sleep(int(e.headers.get("Retry-After", "1")))
                    continue
                return e.code, json.load(e)

    def cursor(self):
        status, body = self.request("GET", "/api/v1/sources/%s/cursor" % self.source)
        if status != 200:
            raise SystemExit("cursor: %d %s" % (status, body))
        return body

    def send(self, events):
        for i in range(0, len(events), 500):
            chunk = events[i:i + 500]
            status, body = self.request("POST", "/api/v1/events", json.dumps(chunk).encode(),
                                        "application/cloudevents-batch+json")
            if status != 200:
                raise SystemExit("batch refused: %d %s" % (status, body))
            for event, result in zip(chunk, body["results"]):
                if result["status"] not in (200, 201):
                    print("event %s: %s %s" % (event["id"], result.get("error"), result.get("message")), file=sys.stderr)


def fetch(feed, context):
    with urllib.request.urlopen(feed, context=context, timeout=30) as r:
        return json.load(r)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--box", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--feed", required=True)
    p.add_argument("--vendor", default="feed", help="the x.<vendor> prefix of unmapped kinds")
    p.add_argument("--every", type=float, default=5.0, help="seconds between polls")
    p.add_argument("--once", action="store_true")
    p.add_argument("--insecure", action="store_true", help="do not verify the box's certificate")
    a = p.parse_args()
    box = Box(a.box, a.source, os.environ["HALLWATCH_TOKEN"], a.insecure)
    while True:
        done = box.cursor().get("maxSequence") or -1
        records = [r for r in fetch(a.feed, box.context) if int(r.get("sequence", done + 1)) > done]
        box.send([to_event(r, a.source, a.vendor) for r in records])
        print("forwarded %d records" % len(records))
        if a.once:
            return
        time.sleep(a.every)


if __name__ == "__main__":
    main()
