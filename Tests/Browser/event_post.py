"""POSTs one CloudEvent to a test box's /api/v1/events with an event source's token (the box's certificate is
self-signed: not verified). Shared by events_page.py and map_view.py."""
import json
import ssl
import urllib.request


def post_event(url, token, body):
    """POSTs `body` (a dict) to `url` + api/v1/events; returns the HTTP status (errors raise)."""
    request = urllib.request.Request(url + "api/v1/events", data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/cloudevents+json"})
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(request, context=context) as r:
        return r.status
