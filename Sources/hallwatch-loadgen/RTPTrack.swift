// The RTSP load generator's media: a video track turned once into RTP packets that every client shares.
import Foundation
import HallwatchMedia

/// Where one RTP packet sits in ``RTPTrack/bytes`` and when it is due.
struct RTPPacketEntry {
    /// Offset of the packet's interleaved frame (`$`, channel, 2-byte length, then the RTP packet), bytes.
    var offset: Int
    /// Length of the whole interleaved frame: 4 + 12-byte RTP header + payload, bytes.
    var frameBytes: Int
    /// When to send it, nanoseconds after the start of a loop (from the sample's decoding time).
    var sendNanos: Int64
    /// The RTP timestamp relative to the start of a loop, 90 kHz ticks (from the sample's presentation time).
    var rtpTimestamp90k: UInt32
}

/// A whole video track pre-packetised for RTP over RTSP's interleaved TCP framing, built once at start.
///
/// Layout of ``bytes``: for each RTP packet in sending order, an interleaved frame (RFC 7826 §14, RFC 2326
/// §10.12): `0x24` (`$`), channel `0`, the RTP packet's length as a big-endian `UInt16`, then the RTP packet
/// (RFC 3550 §5.1): V=2, no padding/extension/CSRC, marker set on the last packet of an access unit, payload
/// type ``payloadType``, sequence number 0, the timestamp ``RTPPacketEntry/rtpTimestamp90k``, SSRC 0, then
/// the payload. A client copies the first ``frameHeaderBytes`` bytes of a frame, patches its channel,
/// sequence number, timestamp and SSRC into the copy (``patchHeader(_:entry:channel:sequence:timestamp:ssrc:)``)
/// and sends the payload bytes from here unchanged, so the payload is shared by every client.
///
/// Payload formats: H.264 per RFC 6184 — single NAL unit packets (§5.6) and FU-A fragments (§5.8), no
/// aggregation; H.265 per RFC 7798 — single NAL unit packets (§4.4.1) and fragmentation units (§4.4.3).
/// The parameter sets from the decoder configuration record go into the SDP and are also sent in-band
/// before every keyframe that does not carry its own.
final class RTPTrack {
    /// `$`, channel, length (4 bytes) + the RTP fixed header (12 bytes): what each client patches.
    static let frameHeaderBytes = 16
    static let payloadType: UInt8 = 96

    let codec: VideoCodec
    /// All interleaved frames of one loop, back to back. Owned; freed in `deinit`.
    let bytes: UnsafeMutableRawBufferPointer
    let entries: [RTPPacketEntry]
    /// One loop of the file, 90 kHz ticks: the next loop's timestamps are this much later.
    let loopDuration90k: Int64
    var loopNanos: Int64 { loopDuration90k * 100_000 / 9 }
    /// The SDP `a=rtpmap` encoding name and the `a=fmtp` parameters (RFC 6184 §8.1, RFC 7798 §7.1).
    let encodingName: String
    let fmtp: String
    let accessUnits: Int

    /// Packetises `track` from its first keyframe to its end.
    /// - Parameter maxPacketBytes: largest RTP packet (header + payload), bytes; the payload limit is 12 less.
    /// - Throws: ``RTPTrackError`` when the track has no keyframe, no usable configuration record, or a
    ///   sample whose length prefixes run past its end.
    init(_ track: VideoTrackFile, maxPacketBytes: Int = 1400) throws {
        codec = track.codec
        guard let lengthBytes = track.nalLengthBytes else {
            throw RTPTrackError("the track's configuration record is not avcC/hvcC")
        }
        let sets = try ParameterSetRecord(codec: track.codec, record: track.extradata)
        guard let first = track.samples.firstIndex(where: \.isKey) else {
            throw RTPTrackError("the track has no keyframe")
        }
        let samples = track.samples[first...]
        let basePts = samples.map(\.pts90k).min()!
        let baseDts = samples[first].dts90k
        loopDuration90k = Self.loopDuration90k(samples)
        guard loopDuration90k > 0 else { throw RTPTrackError("the track lasts no time") }
        (encodingName, fmtp) = sets.sdp

        let maxPayload = maxPacketBytes - 12
        var out: [UInt8] = []
        var index: [RTPPacketEntry] = []
        out.reserveCapacity(samples.reduce(0) { $0 + $1.data.count } * 103 / 100 + 4096)
        for sample in samples {
            var nals = try Self.nalUnits(sample.data, lengthBytes: lengthBytes)
            if sample.isKey && !nals.contains(where: sets.isParameterSet) { nals = sets.units + nals }
            let sendNanos = (sample.dts90k - baseDts) * 100_000 / 9
            let timestamp = UInt32(truncatingIfNeeded: sample.pts90k - basePts)
            for (n, nal) in nals.enumerated() {
                for (payloadHeader, body, isLast) in Self.fragments(nal, codec: codec, maxPayload: maxPayload) {
                    let marker = isLast && n == nals.count - 1
                    let rtpBytes = 12 + payloadHeader.count + body.count
                    index.append(
                        RTPPacketEntry(
                            offset: out.count, frameBytes: 4 + rtpBytes, sendNanos: sendNanos,
                            rtpTimestamp90k: timestamp))
                    out += [0x24, 0, UInt8(rtpBytes >> 8), UInt8(rtpBytes & 0xFF)]
                    out += [0x80, (marker ? 0x80 : 0) | Self.payloadType, 0, 0]
                    out += [
                        UInt8(timestamp >> 24), UInt8((timestamp >> 16) & 0xFF), UInt8((timestamp >> 8) & 0xFF),
                        UInt8(timestamp & 0xFF),
                    ]
                    out += [0, 0, 0, 0]
                    out += payloadHeader
                    out += body
                }
            }
        }
        accessUnits = samples.count
        entries = index
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: out.count, alignment: 16)
        out.withUnsafeBytes { bytes.copyMemory(from: $0) }
    }

    deinit { bytes.deallocate() }

    /// One loop: from the earliest presentation time to the end of the last-shown picture, 90 kHz ticks.
    /// A sample without a duration counts as long as the median gap between decoding times.
    static func loopDuration90k(_ samples: ArraySlice<VideoTrackFile.Sample>) -> Int64 {
        let gaps = zip(samples.dropFirst(), samples).map { $0.dts90k - $1.dts90k }.sorted()
        let typical = gaps.isEmpty ? 3600 : gaps[gaps.count / 2]
        let end = samples.map { $0.pts90k + ($0.duration90k > 0 ? $0.duration90k : typical) }.max()!
        return end - samples.map(\.pts90k).min()!
    }

    /// Splits a sample of length-prefixed NAL units (ISO/IEC 14496-15 §5.3.2) into its NAL units.
    /// - Throws: ``RTPTrackError`` when a length runs past the end of the sample.
    static func nalUnits(_ sample: [UInt8], lengthBytes: Int) throws -> [ArraySlice<UInt8>] {
        var units: [ArraySlice<UInt8>] = []
        var i = 0
        while i + lengthBytes <= sample.count {
            let length = sample[i..<i + lengthBytes].reduce(0) { $0 << 8 | Int($1) }
            i += lengthBytes
            guard length <= sample.count - i else {
                throw RTPTrackError("a NAL unit length (\(length) bytes) runs past its sample")
            }
            if length > 0 { units.append(sample[i..<i + length]) }
            i += length
        }
        return units
    }

    /// The RTP payloads for one NAL unit: (payload header, body, last of this unit).
    ///
    /// Fits in `maxPayload` bytes → one single NAL unit packet: the unit itself (RFC 6184 §5.6, RFC 7798
    /// §4.4.1). Otherwise fragments: H.264 FU-A (RFC 6184 §5.8) — FU indicator `F|NRI|28`, FU header
    /// `S|E|R|type`, then the unit without its 1-byte header; H.265 FU (RFC 7798 §4.4.3) — payload header
    /// with type 49 and the unit's layer id and TID, FU header `S|E|type`, then the unit without its
    /// 2-byte header.
    static func fragments(_ nal: ArraySlice<UInt8>, codec: VideoCodec, maxPayload: Int) -> [(
        [UInt8], ArraySlice<UInt8>, Bool
    )] {
        if nal.count <= maxPayload { return [([], nal, true)] }
        let h = nal.startIndex
        let (indicator, type, nalHeaderBytes): ([UInt8], UInt8, Int) =
            switch codec {
            case .h264: ([nal[h] & 0xE0 | 28], nal[h] & 0x1F, 1)
            case .hevc: ([nal[h] & 0x81 | 49 << 1, nal[h + 1]], (nal[h] >> 1) & 0x3F, 2)
            }
        let chunk = maxPayload - indicator.count - 1
        var out: [([UInt8], ArraySlice<UInt8>, Bool)] = []
        var i = h + nalHeaderBytes
        while i < nal.endIndex {
            let end = min(i + chunk, nal.endIndex)
            let start: UInt8 = i == h + nalHeaderBytes ? 0x80 : 0
            let stop: UInt8 = end == nal.endIndex ? 0x40 : 0
            out.append((indicator + [start | stop | type], nal[i..<end], end == nal.endIndex))
            i = end
        }
        return out
    }

    /// Writes a client's channel, sequence number, timestamp and SSRC into `header`, a copy of an entry's
    /// first ``frameHeaderBytes`` bytes.
    @inline(__always)
    static func patchHeader(
        _ header: UnsafeMutableRawPointer, channel: UInt8, sequence: UInt16, timestamp: UInt32, ssrc: UInt32
    ) {
        header.storeBytes(of: channel, toByteOffset: 1, as: UInt8.self)
        header.storeBytes(of: sequence.bigEndian, toByteOffset: 6, as: UInt16.self)
        header.storeBytes(of: timestamp.bigEndian, toByteOffset: 8, as: UInt32.self)
        header.storeBytes(of: ssrc.bigEndian, toByteOffset: 12, as: UInt32.self)
    }
}

struct RTPTrackError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The parameter sets of a decoder configuration record: H.264 SPS/PPS from `avcC` (ISO/IEC 14496-15
/// §5.3.3.1), H.265 VPS/SPS/PPS from `hvcC` (§8.3.3.1).
struct ParameterSetRecord {
    let codec: VideoCodec
    /// Every parameter-set NAL unit, in sending order (VPS, SPS, PPS).
    private(set) var units: [ArraySlice<UInt8>] = []

    /// - Throws: ``RTPTrackError`` when the record is truncated or holds no SPS.
    init(codec: VideoCodec, record: [UInt8]) throws {
        self.codec = codec
        var r = Reader(record)
        switch codec {
        case .h264:
            try r.skip(5)
            let spsCount = Int(try r.byte() & 0x1F)
            for _ in 0..<spsCount { units.append(try r.unit()) }
            let ppsCount = Int(try r.byte())
            for _ in 0..<ppsCount { units.append(try r.unit()) }
        case .hevc:
            try r.skip(22)
            for _ in 0..<Int(try r.byte()) {
                try r.skip(1)
                let count = Int(try r.byte()) << 8 | Int(try r.byte())
                for _ in 0..<count { units.append(try r.unit()) }
            }
            units.sort { Self.hevcType($0) < Self.hevcType($1) }
        }
        guard units.contains(where: { isParameterSet($0) && type($0) == (codec == .h264 ? 7 : 33) }) else {
            throw RTPTrackError("the configuration record holds no SPS")
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var i = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        mutating func skip(_ n: Int) throws {
            guard i + n <= bytes.count else { throw RTPTrackError("truncated configuration record") }
            i += n
        }
        mutating func byte() throws -> UInt8 {
            try skip(1)
            return bytes[i - 1]
        }
        mutating func unit() throws -> ArraySlice<UInt8> {
            let n = Int(try byte()) << 8 | Int(try byte())
            try skip(n)
            return bytes[i - n..<i]
        }
    }

    static func hevcType(_ nal: ArraySlice<UInt8>) -> UInt8 { nal.first.map { ($0 >> 1) & 0x3F } ?? 0 }
    func type(_ nal: ArraySlice<UInt8>) -> UInt8 { codec == .h264 ? (nal.first ?? 0) & 0x1F : Self.hevcType(nal) }
    /// SPS/PPS (H.264 types 7, 8) or VPS/SPS/PPS (H.265 types 32–34).
    func isParameterSet(_ nal: ArraySlice<UInt8>) -> Bool {
        let t = type(nal)
        return codec == .h264 ? t == 7 || t == 8 : (32...34).contains(t)
    }

    /// The SDP encoding name and `fmtp` parameters: RFC 6184 §8.1 `packetization-mode=1`, `profile-level-id`
    /// (the SPS's profile_idc, constraint flags, level_idc in hex) and `sprop-parameter-sets` (base64 SPS,PPS);
    /// RFC 7798 §7.1 `sprop-vps`, `sprop-sps`, `sprop-pps`.
    var sdp: (encodingName: String, fmtp: String) {
        func b64(_ t: UInt8) -> String {
            units.filter { type($0) == t }.map { Data($0).base64EncodedString() }.joined(separator: ",")
        }
        switch codec {
        case .h264:
            let sps = units.first { type($0) == 7 }!
            let profile = sps.dropFirst().prefix(3).map { String(format: "%02X", $0) }.joined()
            return ("H264", "packetization-mode=1;profile-level-id=\(profile);sprop-parameter-sets=\(b64(7)),\(b64(8))")
        case .hevc:
            return ("H265", "sprop-vps=\(b64(32));sprop-sps=\(b64(33));sprop-pps=\(b64(34))")
        }
    }
}
