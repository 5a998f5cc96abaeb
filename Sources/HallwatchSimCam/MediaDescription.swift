import CGStreamer
import Foundation
import HallwatchCore
import Synchronization

/// A codec the simcam can serve without transcoding, with the GStreamer elements that handle it.
public enum StreamCodec: String, Sendable, Hashable, CaseIterable {
    /// H.264/AVC video, RTP payload per RFC 6184.
    case h264
    /// H.265/HEVC video, RTP payload per RFC 7798.
    case h265
    /// MPEG-4 AAC audio, RTP payload `mpeg4-generic` (AAC-hbr) per RFC 3640.
    case aac

    /// Whether this is a video codec.
    public var isVideo: Bool { self != .aac }

    /// Parser element between `qtdemux` and the payloader (keeps `codec_data`, aligns access units).
    var parser: String {
        switch self {
        case .h264: "h264parse"
        case .h265: "h265parse"
        case .aac: "aacparse"
        }
    }

    /// Payloader element with its options. `config-interval=-1` sends the parameter sets (SPS/PPS, and VPS
    /// for H.265) in-band before every IDR picture, so a client can start decoding at any keyframe; the SDP
    /// also carries them (`sprop-parameter-sets`, RFC 6184 §8.1; `sprop-vps/sps/pps`, RFC 7798 §7.1).
    var payloader: String {
        switch self {
        case .h264: "rtph264pay config-interval=-1"
        case .h265: "rtph265pay config-interval=-1"
        case .aac: "rtpmp4gpay"
        }
    }

    /// Maps the caps name (and `mpegversion`) that qtdemux gives a pad to a codec, nil if unsupported.
    static func from(capsName: String, mpegVersion: Int32?) -> StreamCodec? {
        switch capsName {
        case "video/x-h264": .h264
        case "video/x-h265": .h265
        case "audio/mpeg" where mpegVersion == 4: .aac
        default: nil
        }
    }
}

/// One elementary stream of a clip, as qtdemux exposes it.
public struct StreamDescription: Sendable, Hashable {
    /// qtdemux source pad name, e.g. `video_0`, `audio_0`.
    public let padName: String
    /// The codec.
    public let codec: StreamCodec
    /// Caps of the demuxed stream, for logs.
    public let caps: String
    /// Picture width in pixels (video only).
    public let width: Int?
    /// Picture height in pixels (video only).
    public let height: Int?
    /// Audio channel count (audio only).
    public let channels: Int?
    /// Audio sampling rate in Hz (audio only).
    public let sampleRate: Int?
    /// Segment start of the stream in ns: qtdemux's first presentation time (after the edit list).
    public let segmentStart: UInt64
    /// Segment stop of the stream in ns: the track's end, nil if qtdemux gave none.
    public let segmentStop: UInt64?
}

/// What the simcam learned about one clip before serving it: its streams and its loop period.
public struct MediaDescription: Sendable, Hashable {
    /// Absolute path of the MP4 file.
    public let path: String
    /// The servable streams in qtdemux order (unsupported ones, e.g. subtitles, are left out).
    public let streams: [StreamDescription]
    /// Index into ``streams`` of the stream that defines the loop period: the first video stream, else 0.
    public let primaryIndex: Int
    /// Loop period in ns: the primary stream's segment length (falls back to the container duration).
    public let period: UInt64

    /// The primary stream.
    public var primary: StreamDescription { streams[primaryIndex] }

    /// The timeline that restamps passes over this clip.
    public func makeTimeline() -> LoopTimeline {
        LoopTimeline(period: period, primaryStart: primary.segmentStart)
    }

    /// Opens `path` with `filesrc ! qtdemux`, prerolls it into fakesinks (reads the headers and the first
    /// sample of each track; no decoding) and describes its streams.
    /// - Parameters:
    ///   - timeout: how long to wait for preroll, in seconds.
    ///   - clocks: where the timeout is measured.
    /// - Throws: ``SimCamError/missingFile(_:)`` if the file cannot be read, ``SimCamError/unsupportedMedia(_:)``
    ///   if it is not an MP4 with at least one H.264, H.265 or AAC stream.
    public static func probe(path: String, timeout: Double = 10, clocks: any Clocks = SystemClocks())
        throws(SimCamError) -> MediaDescription
    {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw .missingFile("\(path) does not exist or is not readable")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw .missingFile("\(path) is a directory")
        }
        let pipeline = try Pipeline(launch: "filesrc name=file ! qtdemux name=demux")
        guard let file: GObjectRef<GstElement> = pipeline.child(named: "file"),
            let demux: GObjectRef<GstElement> = pipeline.child(named: "demux")
        else { throw .pipeline("probe pipeline lacks its elements") }
        hw_object_set_string(file.object, "location", path)

        let probe = ProbeState(pipeline: pipeline.element)
        let context = Unmanaged.passRetained(probe)
        defer { context.release() }
        hw_element_connect_pad_added(
            demux.pointer,
            { element, pad, userData in
                guard let pad, let userData else { return }
                Unmanaged<ProbeState>.fromOpaque(userData).takeUnretainedValue().padAdded(pad)
            }, context.toOpaque())

        guard let bus = pipeline.bus else { throw .pipeline("probe pipeline has no bus") }
        if pipeline.setState(GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE {
            // The bus says why (e.g. qtdemux: "This file is invalid and cannot be played").
            throw .unsupportedMedia("\(path): \(Self.firstError(on: bus) ?? "cannot be opened")")
        }
        let deadline = clocks.monotonicNow() + .milliseconds(Int64(timeout * 1000))
        var prerolled = false
        while !prerolled, clocks.monotonicNow() < deadline {
            let filter = GstMessageType(
                rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_ASYNC_DONE.rawValue)
            guard let message = gst_bus_timed_pop_filtered(bus.pointer, 50_000_000, filter) else { continue }
            defer { gst_message_unref(message) }
            if message.pointee.type == GST_MESSAGE_ERROR {
                var error: UnsafeMutablePointer<GError>? = nil
                var debug: UnsafeMutablePointer<gchar>? = nil
                gst_message_parse_error(message, &error, &debug)
                let text = takeErrorText(error, debug)
                // A stream we linked to a fakesink cannot fail; an error is about the file itself.
                throw .unsupportedMedia("\(path): \(text)")
            }
            if message.pointee.type == GST_MESSAGE_ASYNC_DONE { prerolled = true }
        }
        guard prerolled else { throw .unsupportedMedia("\(path): no preroll within \(Int(timeout)) s") }

        var containerDuration: gint64 = -1
        if !gst_element_query_duration(pipeline.element, GST_FORMAT_TIME, &containerDuration).asBool {
            containerDuration = -1
        }
        let streams = probe.describe()
        let seen = streams.isEmpty ? probe.seenCaps() : ""  // caps are gone once the pipeline is down
        pipeline.setState(GST_STATE_NULL)
        guard !streams.isEmpty else {
            throw .unsupportedMedia("\(path) has no H.264, H.265 or AAC stream (found: \(seen))")
        }
        let primaryIndex = streams.firstIndex { $0.codec.isVideo } ?? 0
        let primary = streams[primaryIndex]
        var period: UInt64 = 0
        if let stop = primary.segmentStop, stop > primary.segmentStart {
            period = stop - primary.segmentStart
        } else if containerDuration > 0 {
            period = UInt64(containerDuration)
        }
        guard period > 0 else { throw .unsupportedMedia("\(path): duration unknown, cannot loop it") }
        return MediaDescription(path: path, streams: streams, primaryIndex: primaryIndex, period: period)
    }

    private static func firstError(on bus: GObjectRef<GstBus>) -> String? {
        guard let message = gst_bus_pop_filtered(bus.pointer, GST_MESSAGE_ERROR) else { return nil }
        defer { gst_message_unref(message) }
        var error: UnsafeMutablePointer<GError>? = nil
        var debug: UnsafeMutablePointer<gchar>? = nil
        gst_message_parse_error(message, &error, &debug)
        return takeErrorText(error, debug)
    }
}

extension gboolean {
    /// C `gboolean` as `Bool`.
    var asBool: Bool { self != 0 }
}

/// Collects qtdemux's pads during a probe; `padAdded` runs on the demuxer's streaming thread.
private final class ProbeState: @unchecked Sendable {
    private let pipeline: UnsafeMutablePointer<GstElement>
    private let sinks = Mutex<[(pad: String, sink: Unchecked<UnsafeMutablePointer<GstElement>>)]>([])

    init(pipeline: UnsafeMutablePointer<GstElement>) { self.pipeline = pipeline }

    func padAdded(_ pad: UnsafeMutablePointer<GstPad>) {
        // queue ! fakesink: qtdemux pushes every stream from one thread, and a sink waiting in preroll
        // would otherwise block it before the other streams got their first buffer.
        guard let queue = gst_element_factory_make("queue", nil),
            let sink = gst_element_factory_make("fakesink", nil)
        else { return }
        hw_object_set_bool(UnsafeMutableRawPointer(sink), "sync", 0)
        let bin: UnsafeMutablePointer<GstBin> = gcast(pipeline)
        gst_bin_add(bin, queue)
        gst_bin_add(bin, sink)
        _ = gst_element_link(queue, sink)
        _ = gst_element_sync_state_with_parent(sink)
        _ = gst_element_sync_state_with_parent(queue)
        if let queuePad = gst_element_get_static_pad(queue, "sink") {
            _ = gst_pad_link(pad, queuePad)
            gst_object_unref(UnsafeMutableRawPointer(queuePad))
        }
        let name = objectName(pad)
        let entry = (pad: name, sink: Unchecked(sink))
        sinks.withLock { $0.append(entry) }
    }

    func seenCaps() -> String {
        let all = sinks.withLock { $0 }
        return all.map { "\($0.pad): \(capsText(currentCaps(of: $0.sink.value)))" }.joined(separator: "; ")
    }

    private func currentCaps(of sink: UnsafeMutablePointer<GstElement>) -> UnsafeMutablePointer<GstCaps>? {
        guard let pad = gst_element_get_static_pad(sink, "sink") else { return nil }
        defer { gst_object_unref(UnsafeMutableRawPointer(pad)) }
        return gst_pad_get_current_caps(pad)
    }

    func describe() -> [StreamDescription] {
        let all = sinks.withLock { $0 }
        var out: [StreamDescription] = []
        for (padName, sink) in all {
            guard let pad = gst_element_get_static_pad(sink.value, "sink") else { continue }
            defer { gst_object_unref(UnsafeMutableRawPointer(pad)) }
            guard let caps = gst_pad_get_current_caps(pad) else { continue }
            defer { gst_caps_unref(caps) }
            guard let structure = gst_caps_get_structure(caps, 0) else { continue }
            let capsName = String(cString: gst_structure_get_name(structure))
            func int(_ field: String) -> Int32? {
                var v: gint = 0
                return gst_structure_get_int(structure, field, &v).asBool ? v : nil
            }
            guard let codec = StreamCodec.from(capsName: capsName, mpegVersion: int("mpegversion")) else {
                continue
            }
            var start: UInt64 = 0
            var stop: UInt64? = nil
            if let event = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0) {
                var segment: UnsafePointer<GstSegment>? = nil
                gst_event_parse_segment(event, &segment)
                if let segment {
                    start = UInt64(segment.pointee.start)
                    stop = segment.pointee.stop == hw_clock_time_none() ? nil : UInt64(segment.pointee.stop)
                }
                gst_event_unref(event)
            }
            out.append(
                StreamDescription(
                    padName: padName, codec: codec, caps: capsText(caps),
                    width: int("width").map(Int.init), height: int("height").map(Int.init),
                    channels: int("channels").map(Int.init), sampleRate: int("rate").map(Int.init),
                    segmentStart: start, segmentStop: stop))
        }
        return out
    }
}

/// `gst_object_get_name` as a Swift string.
func objectName<T>(_ object: UnsafeMutablePointer<T>) -> String {
    guard let name = gst_object_get_name(gcast(object) as UnsafeMutablePointer<GstObject>) else { return "" }
    defer { g_free(name) }
    return String(cString: name)
}
