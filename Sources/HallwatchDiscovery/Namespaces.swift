/// Namespace URIs this library matches on. Elements are always matched by URI and local name, never by
/// the prefix a camera happened to choose (`SOAP-ENV:`, `env:`, `s:`, `MC1:` are all the same envelope).
public enum NS {
    /// SOAP 1.2 envelope (SOAP 1.2 Part 1 §5).
    public static let soap12 = "http://www.w3.org/2003/05/soap-envelope"
    /// SOAP 1.1 envelope (SOAP 1.1 §4).
    public static let soap11 = "http://schemas.xmlsoap.org/soap/envelope/"
    /// WS-Addressing as used by WS-Discovery April 2005, which ONVIF devices speak (ONVIF Core §7).
    public static let wsa2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
    /// WS-Addressing 1.0 (W3C), used by WS-Discovery 1.1.
    public static let wsa10 = "http://www.w3.org/2005/08/addressing"
    /// WS-Discovery April 2005 (the version ONVIF Core §7 requires).
    public static let wsd2005 = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
    /// WS-Discovery 1.1 (OASIS, 2009).
    public static let wsd11 = "http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01"
    /// ONVIF network WSDL: `dn:NetworkVideoTransmitter` (ONVIF Core §7.3.2).
    public static let onvifNetwork = "http://www.onvif.org/ver10/network/wsdl"
    /// ONVIF device service: `tds:`.
    public static let device = "http://www.onvif.org/ver10/device/wsdl"
    /// ONVIF media service version 1: `trt:`.
    public static let media = "http://www.onvif.org/ver10/media/wsdl"
    /// ONVIF media service version 2: `tr2:`.
    public static let media2 = "http://www.onvif.org/ver20/media/wsdl"
    /// ONVIF event service: `tev:` (ONVIF Core §9).
    public static let events = "http://www.onvif.org/ver10/events/wsdl"
    /// WS-BaseNotification 1.3: `wsnt:` (the notification messages, Renew, Unsubscribe).
    public static let wsnt = "http://docs.oasis-open.org/wsn/b-2"
    /// ONVIF topic namespace: `tns1:` (ONVIF Core §9.6; door topics in the Door Control spec §7, access
    /// control topics in the Access Control spec §7).
    public static let topics = "http://www.onvif.org/ver10/topics"
    /// ONVIF schema types: `tt:`.
    public static let schema = "http://www.onvif.org/ver10/schema"
    /// ONVIF error subcodes: `ter:` (ONVIF Core §5.11.2).
    public static let error = "http://www.onvif.org/ver10/error"
    /// WS-Security secext 1.0: `wsse:` (UsernameToken Profile 1.0; fault codes in WS-Security 1.0 §12).
    public static let wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    /// WS-Security utility 1.0: `wsu:Created`.
    public static let wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

    static let soap = [soap12, soap11]
    static let wsa = [wsa2004, wsa10]
    static let wsd = [wsd2005, wsd11]
}
