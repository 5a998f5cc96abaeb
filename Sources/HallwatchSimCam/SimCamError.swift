import HallwatchCore

/// Errors of the simulated camera. Each message is written for the person running `hallwatch-simcam`.
public enum SimCamError: HallwatchError, Equatable {
    /// A `--mount` value that is not `NAME=FILE`, or whose name is empty, duplicated or not URL-safe.
    case badMountSpec(String)
    /// A mount's file does not exist or cannot be read.
    case missingFile(String)
    /// The file is readable but holds nothing the simcam can serve (not MP4, or no H.264/H.265/AAC stream).
    case unsupportedMedia(String)
    /// A GStreamer pipeline could not be built or run.
    case pipeline(String)
    /// The RTSP server could not listen on the requested address and port.
    case listen(String)

    /// One line for a person: what is wrong and with which argument or file.
    public var description: String {
        switch self {
        case .badMountSpec(let m): "bad --mount: \(m)"
        case .missingFile(let m): "missing file: \(m)"
        case .unsupportedMedia(let m): "unsupported media: \(m)"
        case .pipeline(let m): "GStreamer: \(m)"
        case .listen(let m): "cannot listen: \(m)"
        }
    }

    /// The stable code: `simcam.mountSpec`, `simcam.missingFile`, `simcam.unsupportedMedia`, `simcam.pipeline`,
    /// `simcam.listen`.
    public var stableCode: String {
        switch self {
        case .badMountSpec: "simcam.mountSpec"
        case .missingFile: "simcam.missingFile"
        case .unsupportedMedia: "simcam.unsupportedMedia"
        case .pipeline: "simcam.pipeline"
        case .listen: "simcam.listen"
        }
    }

    /// The case's detail (without the prefix ``description`` adds).
    public var message: String {
        switch self {
        case .badMountSpec(let m), .missingFile(let m), .unsupportedMedia(let m), .pipeline(let m), .listen(let m): m
        }
    }

    /// True for errors caused by the command line (the executable exits with 64, `EX_USAGE`).
    public var isUsageError: Bool {
        switch self {
        case .badMountSpec, .missingFile, .unsupportedMedia: true
        case .pipeline, .listen: false
        }
    }
}
