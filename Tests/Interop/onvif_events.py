"""Independent ONVIF pull-point client (PyPI onvif-zeep-async's PullPointManager) against a device's event
service: CreatePullPointSubscription (absolute InitialTerminationTime in the device's clock, adjust_time=True),
PullMessages until a DoorAlarm DoorForcedOpen comes (or 30 s), then Unsubscribe.

Usage: onvif_events.py HOST PORT USER PASSWORD_FILE
Prints "subscribed" once the pull point exists, then one JSON object: {"messages": [{topic, operation, utc,
source, data}]}.
"""
import asyncio
import datetime as dt
import json
import sys

from onvif import ONVIFCamera

TT = "{http://www.onvif.org/ver10/schema}"


def read(message):
    """(UtcTime, PropertyOperation, Source items, Data items) of a tt:Message, which zeep gives as a typed
    object (the event WSDL imports the schema) or, for unknown content, as an lxml element."""
    if hasattr(message, "findall"):
        def items(part):
            element = message.find(TT + part)
            return {} if element is None else {i.get("Name"): i.get("Value") for i in element.findall(TT + "SimpleItem")}
        return message.get("UtcTime"), message.get("PropertyOperation"), items("Source"), items("Data")

    def items(part):
        element = getattr(message, part, None)
        return {} if element is None else {i.Name: i.Value for i in element.SimpleItem or []}
    return str(message.UtcTime), message.PropertyOperation, items("Source"), items("Data")


async def main():
    host, port, user, pwfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    password = open(pwfile).read().split("\n")[0]
    cam = ONVIFCamera(host, port, user, password, adjust_time=True, no_cache=True)
    await cam.update_xaddrs()
    manager = await cam.create_pullpoint_manager(dt.timedelta(seconds=60), lambda: None)
    try:
        pullpoint = manager.get_service()
        print("subscribed", flush=True)
        out = []
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            reply = await pullpoint.PullMessages({"MessageLimit": 100, "Timeout": dt.timedelta(seconds=1)})
            for n in reply.NotificationMessage or []:
                utc, operation, source, data = read(n.Message._value_1)
                out.append({"topic": n.Topic._value_1, "operation": operation, "utc": utc, "source": source,
                            "data": data})
            if any(m["data"].get("State") == "DoorForcedOpen" for m in out):
                break
        print(json.dumps({"messages": out}), flush=True)
    finally:
        await manager.shutdown()
        await cam.close()


asyncio.run(main())
