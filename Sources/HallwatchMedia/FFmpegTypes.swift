import CFFmpeg
import Foundation
import Logging

/// An owned `AVPacket` (freed in `deinit`). Capture hands packets along without copying their payload.
final class Packet {
    let p: UnsafeMutablePointer<AVPacket>
    init() { p = av_packet_alloc() }
    deinit {
        var q: UnsafeMutablePointer<AVPacket>? = p
        av_packet_free(&q)
    }

    var streamIndex: Int { Int(p.pointee.stream_index) }
    var pts: Int64? { p.pointee.pts == hw_nopts_value() ? nil : p.pointee.pts }
    var dts: Int64? { p.pointee.dts == hw_nopts_value() ? nil : p.pointee.dts }
    var isKey: Bool { p.pointee.flags & AV_PKT_FLAG_KEY != 0 }
    var size: Int { Int(p.pointee.size) }
    var data: UnsafeBufferPointer<UInt8> {
        guard let d = p.pointee.data, p.pointee.size > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: d, count: Int(p.pointee.size))
    }

    /// Drops zero bytes at the end of an Annex-B access unit. They are `trailing_zero_8bits` (H.264 §B.1.2,
    /// H.265 §B.2.2), never part of a NAL unit (which cannot end in 0x00), but once the muxer turns start
    /// codes into length prefixes they would be counted into the last NAL unit. Seen on H.265 over RTP.
    /// Only the size shrinks; nothing is copied.
    func trimTrailingZeros() {
        guard let d = p.pointee.data else { return }
        var n = Int(p.pointee.size)
        while n > 0 && d[n - 1] == 0 { n -= 1 }
        p.pointee.size = Int32(n)
    }

    /// Appends `other`'s payload to this packet (joins an access unit that arrived in pieces).
    func append(_ other: Packet) throws {
        let old = Int(p.pointee.size)
        let add = Int32(other.size)
        guard add > 0 else { return }
        let r = av_grow_packet(p, add)
        guard r >= 0 else { throw MediaError("media.mux", "cannot grow packet", averror: r) }
        (p.pointee.data! + old).update(from: other.p.pointee.data!, count: Int(add))
        if other.isKey { p.pointee.flags |= AV_PKT_FLAG_KEY }
    }
}

/// An owned `AVDictionary` of options. After use, ``leftovers`` names the keys the callee did not consume
/// (a misspelt option is otherwise silently ignored).
final class Options {
    var dict: OpaquePointer?
    init(_ entries: [(String, String)]) {
        for (k, v) in entries { av_dict_set(&dict, k, v, 0) }
    }
    deinit { av_dict_free(&dict) }

    var leftovers: [String] {
        var keys: [String] = []
        var e: UnsafeMutablePointer<AVDictionaryEntry>? = nil
        while true {
            e = av_dict_get(dict, "", e, AV_DICT_IGNORE_SUFFIX)
            guard let entry = e else { break }
            keys.append(String(cString: entry.pointee.key))
        }
        return keys
    }
}

/// The video codecs Hallwatch stores (remuxed, never transcoded).
public enum VideoCodec: String, Sendable, Codable {
    case h264, hevc

    init?(_ id: AVCodecID) {
        switch id {
        case AV_CODEC_ID_H264: self = .h264
        case AV_CODEC_ID_HEVC: self = .hevc
        default: return nil
        }
    }
    var avID: AVCodecID { self == .h264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC }
}

func codecName(_ id: AVCodecID) -> String { String(cString: avcodec_get_name(id)) }

/// FFmpeg's own log (`av_log`), routed into swift-log (label `hallwatch.ffmpeg`) instead of raw stderr lines,
/// warnings and errors only: every failure that matters is also returned to us and logged with metadata.
enum FFmpegLog {
    static let logger = Logger(label: "hallwatch.ffmpeg")
    static let installed: Void = {
        av_log_set_level(AV_LOG_WARNING)
        av_log_set_callback { _, level, format, args in
            guard level <= AV_LOG_WARNING, let format, let args else { return }
            var buffer = [CChar](repeating: 0, count: 1024)
            _ = vsnprintf(&buffer, buffer.count, format, args)
            let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { return }
            if level <= AV_LOG_ERROR { FFmpegLog.logger.error("\(text)") } else { FFmpegLog.logger.warning("\(text)") }
        }
    }()
    static func install() { _ = installed }
}
