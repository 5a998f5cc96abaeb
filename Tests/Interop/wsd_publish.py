"""Independent WS-Discovery target (PyPI wsdiscovery): publish one ONVIF-typed service until stdin closes or
SECONDS pass, printing its endpoint reference first.

Usage: wsd_publish.py XADDR SECONDS
"""
import sys
import time

from wsdiscovery import QName, Scope
from wsdiscovery.publishing import ThreadedWSPublishing

pub = ThreadedWSPublishing()
pub.start()
try:
    nvt = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
    pub.publishService(types=[nvt], scopes=[Scope("onvif://www.onvif.org/name/pyservice")], xAddrs=[sys.argv[1]])
    print("published " + str(pub.uuid), flush=True)
    time.sleep(float(sys.argv[2]))
finally:
    pub.stop()
