/// Turns a camera's RTP packets (RFC 3550) of H.264 (RFC 6184) or H.265 (RFC 7798) into access units:
/// Annex-B byte strings (4-byte start codes, ITU-T H.264 Annex B) with the RTP timestamp extended to 64 bits.
///
/// An access unit ends at the packet with the marker bit (RFC 6184 §5.1, RFC 7798 §4.1) or, for cameras
/// that never set it, when the timestamp changes. Packet formats:
/// - H.264: single NAL unit (types 1–23), STAP-A (24, §5.7.1), FU-A (28, §5.8). The interleaved-mode
///   formats STAP-B, MTAP and FU-B are not sent in `packetization-mode=1` and are dropped (counted).
/// - H.265: single NAL unit (0–47), aggregation packet (48, §4.4.2), fragmentation unit (49, §4.4.3);
///   PACI (50) is dropped. DONL fields are not expected (`sprop-max-don-diff` 0, the default).
///
/// A sequence-number gap (the camera dropped packets before they reached TCP) drops the fragmented NAL
/// unit it cut and is counted; the rest of the access unit is kept, as libavformat does.
///
/// One synchronization source per session (RFC 3550 §8, RFC 7826 §18.54 `ssrc=`): the SSRC the SETUP reply
/// named, else the one of the packet carrying the first sequence number PLAY's `RTP-Info` announced (RFC 7826
/// §18.45), else the first packet's. Packets of any other SSRC — an old live555 keeps sending the previous
/// session's RTP on the new connection for seconds — are dropped and counted (``packetsOtherSSRC``) instead of
/// breaking every fragmented NAL unit of this session's stream.
struct RTPDepacketizer {
    /// One access unit in Annex-B form.
    struct AccessUnit {
        /// RTP timestamp extended to 64 bits, in the media's clock rate (90 kHz for video).
        var timestamp: Int64
        /// Contains an IDR picture (H.264 type 5) or an IRAP picture (H.265 types 16–23).
        var keyframe: Bool
        var bytes: [UInt8]
    }

    let codec: VideoCodec
    let payloadType: UInt8
    /// The 4-byte Annex-B start code written before each NAL unit.
    static let startCode: [UInt8] = [0, 0, 0, 1]
    /// Largest access unit kept (bytes); a bigger one is dropped as garbage: 16 MiB.
    static let maxAccessUnitBytes = 16 << 20

    private var current: [UInt8] = []
    private var currentTS: Int64?
    private var currentKey = false
    /// A fragmented NAL unit is being reassembled into `current` (FU-A / FU).
    private var inFragment = false
    /// The current access unit outgrew ``maxAccessUnitBytes``: its remaining packets are skipped.
    private var oversize = false
    private var lastSequence: UInt16?
    private var lastRawTS: UInt32?
    private var extendedTS: Int64 = 0

    /// Counters: packets the camera lost (sequence gaps), packets dropped as unusable, and NAL units or
    /// access units dropped (cut by a loss, or larger than ``maxAccessUnitBytes``).
    private(set) var packetsLost = 0
    private(set) var packetsDropped = 0
    private(set) var unitsDropped = 0
    /// Packets dropped because they belong to another synchronization source than this session's.
    private(set) var packetsOtherSSRC = 0

    /// This session's SSRC; `nil` until known (see the type's description).
    var ssrc: UInt32?
    /// The first sequence number of this session (PLAY's `RTP-Info: seq=`), used to find its SSRC when the
    /// SETUP reply named none.
    var firstSequence: UInt16?
    /// Packets seen before the one with ``firstSequence``: after 64, the next packet's SSRC is taken.
    private var packetsBeforeFirst = 0

    init(codec: VideoCodec, payloadType: UInt8) {
        self.codec = codec
        self.payloadType = payloadType
        current.reserveCapacity(256 << 10)
    }

    /// Feeds one RTP packet; calls `emit` with each access unit it completes (zero, one or two: the previous
    /// unit when the timestamp changed, and this one when it carries the marker bit).
    /// Packets of another payload type or not RTP version 2 are dropped and counted.
    mutating func push(_ packet: UnsafeRawBufferPointer, emit: (AccessUnit) -> Void) {
        // RFC 3550 §5.1: V(2) P X CC(4) | M PT(7) | sequence(16) | timestamp(32) | SSRC(32) | CSRC…
        guard packet.count >= 12, packet[0] >> 6 == 2, packet[1] & 0x7F == payloadType else {
            packetsDropped += 1
            return
        }
        let marker = packet[1] & 0x80 != 0
        let sequence = UInt16(packet[2]) << 8 | UInt16(packet[3])
        let rawTS = UInt32(packet[4]) << 24 | UInt32(packet[5]) << 16 | UInt32(packet[6]) << 8 | UInt32(packet[7])
        let source = UInt32(packet[8]) << 24 | UInt32(packet[9]) << 16 | UInt32(packet[10]) << 8 | UInt32(packet[11])
        if ssrc == nil {
            if let first = firstSequence, sequence != first, packetsBeforeFirst < 64 {
                packetsBeforeFirst += 1
                packetsOtherSSRC += 1
                return
            }
            ssrc = source
        }
        guard source == ssrc else {
            packetsOtherSSRC += 1
            return
        }
        var start = 12 + Int(packet[0] & 0x0F) * 4
        var end = packet.count
        if packet[0] & 0x10 != 0 {  // header extension (§5.3.1)
            guard end >= start + 4 else {
                packetsDropped += 1
                return
            }
            start += 4 + (Int(packet[start + 2]) << 8 | Int(packet[start + 3])) * 4
        }
        if packet[0] & 0x20 != 0, end > 0 { end -= Int(packet[end - 1]) }  // padding (§5.1)
        guard start < end else {
            packetsDropped += 1
            return
        }

        if let last = lastSequence, sequence != last &+ 1 {
            packetsLost += Int(sequence &- last &- 1)
            if inFragment { dropFragment() }
        }
        lastSequence = sequence
        // Extend the 32-bit timestamp: the signed difference to the previous one (RFC 3550 §5.1 wraps).
        if let lastRaw = lastRawTS { extendedTS += Int64(Int32(bitPattern: rawTS &- lastRaw)) }
        lastRawTS = rawTS
        if let ts = currentTS, ts != extendedTS { finish(emit) }
        currentTS = extendedTS

        let payload = UnsafeRawBufferPointer(rebasing: packet[start..<end])
        if !oversize {
            switch codec {
            case .h264: pushH264(payload)
            case .hevc: pushH265(payload)
            }
            if current.count > Self.maxAccessUnitBytes {
                // A camera that never ends its access unit must not grow our memory: drop it, skip to the next.
                current = []
                current.reserveCapacity(256 << 10)
                inFragment = false
                oversize = true
                unitsDropped += 1
            }
        }
        if marker { finish(emit) }
    }

    /// Emits the access unit being assembled, if any.
    mutating func finish(_ emit: (AccessUnit) -> Void) {
        if inFragment { dropFragment() }
        defer {
            current.removeAll(keepingCapacity: true)
            currentKey = false
            currentTS = nil
            oversize = false
        }
        guard let ts = currentTS, !current.isEmpty, !oversize else { return }
        // A copy of exactly the unit's size: handing out `current` itself would make the next
        // `removeAll(keepingCapacity:)` allocate a fresh 256 KiB buffer (an mmap + munmap per frame).
        emit(AccessUnit(timestamp: ts, keyframe: currentKey, bytes: current.withUnsafeBufferPointer { Array($0) }))
    }

    // MARK: H.264, RFC 6184

    private mutating func pushH264(_ p: UnsafeRawBufferPointer) {
        let type = p[0] & 0x1F
        switch type {
        case 1...23:
            appendNAL(p, type: type)
        case 24:  // STAP-A: [hdr] ([size16] [NAL])…
            aggregated(p, from: 1) { nal in
                let t = nal[0] & 0x1F
                return t
            }
        case 28:  // FU-A: [indicator] [S E R type] payload
            guard p.count > 2 else {
                packetsDropped += 1
                return
            }
            let fu = p[1]
            let start = fu & 0x80 != 0
            let stop = fu & 0x40 != 0
            let nalType = fu & 0x1F
            fragment(
                start: start, stop: stop, header: (p[0] & 0xE0 | nalType, nil), type: nalType,
                body: UnsafeRawBufferPointer(rebasing: p[2...]))
        default:
            packetsDropped += 1
        }
    }

    // MARK: H.265, RFC 7798

    private mutating func pushH265(_ p: UnsafeRawBufferPointer) {
        guard p.count > 2 else {
            packetsDropped += 1
            return
        }
        let type = (p[0] >> 1) & 0x3F
        switch type {
        case 0...47:
            appendNAL(p, type: type)
        case 48:  // AP: [hdr16] ([size16] [NAL])…
            aggregated(p, from: 2) { nal in (nal[0] >> 1) & 0x3F }
        case 49:  // FU: [hdr16] [S E type] payload
            guard p.count > 3 else {
                packetsDropped += 1
                return
            }
            let fu = p[2]
            let start = fu & 0x80 != 0
            let stop = fu & 0x40 != 0
            let nalType = fu & 0x3F
            fragment(
                start: start, stop: stop, header: (p[0] & 0x81 | nalType << 1, p[1]), type: nalType,
                body: UnsafeRawBufferPointer(rebasing: p[3...]))
        default:
            packetsDropped += 1
        }
    }

    // MARK: shared

    private func isKey(_ type: UInt8) -> Bool {
        codec == .h264 ? type == 5 : (16...23).contains(type)
    }

    private mutating func appendNAL(_ nal: UnsafeRawBufferPointer, type: UInt8) {
        if inFragment { dropFragment() }
        current.append(contentsOf: Self.startCode)
        current.append(contentsOf: nal)
        if isKey(type) { currentKey = true }
    }

    /// STAP-A / AP: NAL units each behind a 16-bit size, starting at `offset`.
    private mutating func aggregated(
        _ p: UnsafeRawBufferPointer, from offset: Int, type: (UnsafeRawBufferPointer) -> UInt8
    ) {
        var i = offset
        while i + 2 <= p.count {
            let size = Int(p[i]) << 8 | Int(p[i + 1])
            i += 2
            guard size > 0, i + size <= p.count else {
                packetsDropped += 1
                return
            }
            let nal = UnsafeRawBufferPointer(rebasing: p[i..<(i + size)])
            appendNAL(nal, type: type(nal))
            i += size
        }
    }

    /// FU-A / FU: the first piece writes the start code and the rebuilt NAL header, the rest append.
    private var fragmentStart = 0
    /// `header`: the rebuilt NAL unit header, one byte (H.264) or two (H.265). Called per packet: no allocation.
    private mutating func fragment(
        start: Bool, stop: Bool, header: (UInt8, UInt8?), type: UInt8, body: UnsafeRawBufferPointer
    ) {
        if start {
            if inFragment { dropFragment() }
            fragmentStart = current.count
            current.append(contentsOf: Self.startCode)
            current.append(header.0)
            if let second = header.1 { current.append(second) }
            inFragment = true
        } else if !inFragment {
            packetsDropped += 1  // its start was lost
            return
        }
        current.append(contentsOf: body)
        if stop {
            inFragment = false
            if isKey(type) { currentKey = true }
        }
    }

    private mutating func dropFragment() {
        current.removeSubrange(fragmentStart...)
        inFragment = false
        unitsDropped += 1
    }
}
