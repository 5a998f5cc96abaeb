import CGStreamer
import Foundation

/// One-time GStreamer initialisation (`gst_init`); safe to call from any thread, any number of times.
public enum GStreamerRuntime {
    private static let initialised: Bool = {
        gst_init(nil, nil)
        return true
    }()

    /// Initialises GStreamer once per process. Reads `GST_DEBUG` and friends from the environment.
    public static func initialize() { _ = initialised }

    /// The runtime library's version, e.g. `"GStreamer 1.22.0"`.
    public static var version: String {
        initialize()
        guard let s = gst_version_string() else { return "GStreamer ?" }
        defer { g_free(s) }
        return String(cString: s)
    }
}

/// Reinterprets a GObject instance pointer as another type in its class hierarchy (the C `GST_ELEMENT()`,
/// `GST_BIN()`, … casts, unchecked). The caller guarantees the instance really is a `T`.
@inline(__always)
func gcast<T>(_ pointer: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<T>? {
    pointer?.assumingMemoryBound(to: T.self)
}

/// Same as ``gcast(_:)`` for a pointer that must not be nil.
@inline(__always)
func gcast<T, U>(_ pointer: UnsafeMutablePointer<U>) -> UnsafeMutablePointer<T> {
    UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: T.self)
}

/// An owned reference to a GObject-derived C instance (one `g_object_ref` held; released in `deinit`).
///
/// `T` is the C struct type (`GstElement`, `GstRTSPServer`, …). Sendable because GObject reference counting
/// is atomic and every GStreamer/gst-rtsp-server API used through it is thread-safe.
final class GObjectRef<T>: @unchecked Sendable {
    /// The instance; valid for the lifetime of this object.
    let pointer: UnsafeMutablePointer<T>

    /// Adopts a reference the caller already owns (a `transfer full` return value). Returns nil for nil.
    init?(adopting pointer: UnsafeMutablePointer<T>?) {
        guard let pointer else { return nil }
        self.pointer = pointer
    }

    /// Takes a new reference of its own (for `transfer none` return values). Sinks a floating reference.
    init(retaining pointer: UnsafeMutablePointer<T>) {
        g_object_ref_sink(UnsafeMutableRawPointer(pointer))
        self.pointer = pointer
    }

    /// The instance as an untyped `gpointer`, for the `g_object_*` and `hw_object_set_*` functions.
    var object: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pointer) }

    deinit { g_object_unref(UnsafeMutableRawPointer(pointer)) }
}

/// An owned GStreamer pipeline: set to `NULL` state and unreffed in `deinit`.
final class Pipeline: @unchecked Sendable {
    /// The `GstPipeline`, typed as its `GstElement` base.
    let element: UnsafeMutablePointer<GstElement>

    /// Builds a pipeline from a `gst-launch` description (`gst_parse_launch`).
    /// - Throws: ``SimCamError/pipeline(_:)`` with GStreamer's parse error message.
    init(launch description: String) throws(SimCamError) {
        GStreamerRuntime.initialize()
        var error: UnsafeMutablePointer<GError>? = nil
        let element = gst_parse_launch(description, &error)
        if let error {
            let message = String(cString: error.pointee.message)
            g_error_free(error)
            if let element { gst_object_unref(UnsafeMutableRawPointer(element)) }
            throw .pipeline("cannot build \"\(description)\": \(message)")
        }
        guard let element else { throw .pipeline("cannot build \"\(description)\"") }
        self.element = element
    }

    /// A named element inside the pipeline (`gst_bin_get_by_name`), owned by the returned reference.
    func child<T>(named name: String) -> GObjectRef<T>? {
        let bin: UnsafeMutablePointer<GstBin> = gcast(element)
        guard let child = gst_bin_get_by_name(bin, name) else { return nil }
        return GObjectRef<T>(adopting: gcast(UnsafeMutableRawPointer(child)))
    }

    /// Requests a state change; returns GStreamer's answer (may be `ASYNC`).
    @discardableResult
    func setState(_ state: GstState) -> GstStateChangeReturn {
        gst_element_set_state(element, state)
    }

    /// The pipeline's message bus (owned reference).
    var bus: GObjectRef<GstBus>? {
        GObjectRef(adopting: gst_element_get_bus(element))
    }

    deinit {
        gst_element_set_state(element, GST_STATE_NULL)
        gst_object_unref(UnsafeMutableRawPointer(element))
    }
}

/// Quotes a value for a `gst-launch` description (double quotes, backslash escapes).
func launchQuoted(_ value: String) -> String {
    var out = "\""
    for ch in value {
        if ch == "\"" || ch == "\\" { out.append("\\") }
        out.append(ch)
    }
    out.append("\"")
    return out
}

/// Text of a `GError` out-parameter plus its debug string, then frees both.
func takeErrorText(_ error: UnsafeMutablePointer<GError>?, _ debug: UnsafeMutablePointer<gchar>?) -> String {
    var text = "unknown error"
    if let error {
        text = String(cString: error.pointee.message)
        g_error_free(error)
    }
    if let debug {
        text += " (\(String(cString: debug)))"
        g_free(debug)
    }
    return text
}

/// Converts a `GstCaps` to its string form (`gst_caps_to_string`).
func capsText(_ caps: UnsafeMutablePointer<GstCaps>?) -> String {
    guard let caps, let s = gst_caps_to_string(caps) else { return "(none)" }
    defer { g_free(s) }
    return String(cString: s)
}

/// Carries a C pointer (or any value) across isolation boundaries where the surrounding type guarantees
/// thread safety itself (GObject refcounting, GStreamer's own locking).
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
