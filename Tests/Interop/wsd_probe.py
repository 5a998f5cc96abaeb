"""Independent WS-Discovery peer (PyPI wsdiscovery): probe for ONVIF cameras, print what answered as JSON.

Usage: wsd_probe.py TIMEOUT_SECONDS
"""
import json
import sys

from wsdiscovery import QName
from wsdiscovery.discovery import ThreadedWSDiscovery

wsd = ThreadedWSDiscovery()
wsd.start()
try:
    nvt = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
    found = wsd.searchServices(types=[nvt], timeout=float(sys.argv[1]))
    print(json.dumps([{"epr": s.getEPR(), "xaddrs": list(s.getXAddrs()),
                       "scopes": [str(x.getValue()) if hasattr(x, "getValue") else str(x) for x in s.getScopes()]}
                      for s in found]), flush=True)
finally:
    wsd.stop()
