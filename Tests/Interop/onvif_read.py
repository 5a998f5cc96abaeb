"""Independent ONVIF client (PyPI onvif-zeep-async): read device information, profiles and stream URIs from a
device, with a WS-UsernameToken password digest and adjust_time=True (the device's clock may be off).

Usage: onvif_read.py HOST PORT USER PASSWORD_FILE   → one JSON object on stdout
"""
import asyncio
import json
import sys

from onvif import ONVIFCamera


async def main():
    host, port, user, pwfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    password = open(pwfile).read().split("\n")[0]
    cam = ONVIFCamera(host, port, user, password, adjust_time=True, no_cache=True)
    await cam.update_xaddrs()
    try:
        devicemgmt = await cam.create_devicemgmt_service()
        info = await devicemgmt.GetDeviceInformation()
        media = await cam.create_media_service()
        profiles = await media.GetProfiles()
        out = {"manufacturer": info.Manufacturer, "model": info.Model, "serial": info.SerialNumber,
               "dt_diff_seconds": cam.dt_diff.total_seconds() if cam.dt_diff is not None else None, "profiles": []}
        for p in profiles:
            enc = p.VideoEncoderConfiguration
            req = media.create_type("GetStreamUri")
            req.ProfileToken = p.token
            req.StreamSetup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
            uri = await media.GetStreamUri(req)
            out["profiles"].append({"token": p.token, "encoding": str(enc.Encoding) if enc else None,
                                    "width": enc.Resolution.Width if enc else None, "uri": uri.Uri})
        print(json.dumps(out), flush=True)
    finally:
        await cam.close()


asyncio.run(main())
