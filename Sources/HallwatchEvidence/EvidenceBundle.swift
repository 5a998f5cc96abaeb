import Crypto
import Foundation
import HallwatchCore
import HallwatchMedia
import HallwatchStorage

/// Signs a bundle's `SHA256SUMS` with the box's Ed25519 identity key (RFC 8032): the public key and a
/// function returning the 64-byte signature of a message. The key itself stays with its owner (hallwatchctl
/// reads it from the web's state directory, HallwatchWeb's `BoxIdentityKey`).
public struct BundleSigner: Sendable {
    /// The 32-byte Ed25519 public key (RFC 8032 §5.1.5).
    public let publicKey: Data
    /// The 64-byte Ed25519 signature of its argument.
    public let sign: @Sendable (Data) -> Data

    /// A signer from its public key and signing function.
    public init(publicKey: Data, sign: @Sendable @escaping (Data) -> Data) {
        self.publicKey = publicKey
        self.sign = sign
    }
}

/// Why an evidence bundle could not be written (`export.bundle`, `export.signingKey`).
public struct EvidenceBundleError: HallwatchError, Equatable {
    /// The stable codes.
    public enum Code: String, Sendable {
        /// The output directory exists and is not empty, or cannot be made or written.
        case bundle = "export.bundle"
        /// The signing key file cannot be read or is not a key.
        case signingKey = "export.signingKey"
        /// The bundle's file system is full (`ENOSPC`): what the bundle wrote is removed.
        case noSpace = "export.noSpace"
    }
    /// What went wrong.
    public var code: Code
    /// One sentence for people.
    public var message: String
    /// An error with its code and message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    /// The code's text.
    public var stableCode: String { code.rawValue }
    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// What an evidence bundle holds, as `manifest.json` (keys sorted; times RFC 3339 UTC with µs; bytes as
/// integers; SHA-256 as lower-case hex). ``EvidenceBundle/formatVersion`` names this layout.
public struct BundleManifest: Codable, Sendable, Equatable {
    /// One exported MP4 (one recorded run, or the part of it in the range).
    public struct File: Codable, Sendable, Equatable {
        /// Path inside the bundle (`video/<camera>/<start>_<end>.mp4`).
        public var path: String
        /// Size, bytes.
        public var bytes: Int64
        /// SHA-256 of the file, lower-case hex.
        public var sha256: String
        /// Box UTC of the first frame (a keyframe), RFC 3339.
        public var firstFrameUTC: String
        /// Box UTC of the last frame in presentation order, RFC 3339.
        public var lastFrameUTC: String
        /// Video frames (access units) in the file.
        public var frames: Int
    }
    /// Time between two consecutive files of a camera with nothing recorded.
    public struct Gap: Codable, Sendable, Equatable {
        /// End of the earlier file's media, RFC 3339 UTC.
        public var from: String
        /// First frame of the later file, RFC 3339 UTC.
        public var to: String
        /// Length, seconds.
        public var seconds: Double
        /// Why, where the box knows (``GapCause/cause``); absent when it does not.
        public var cause: String?
        /// What the box said then (``GapCause/detail``).
        public var detail: String?
    }
    /// One camera's part of the export.
    public struct Camera: Codable, Sendable, Equatable {
        /// Camera id.
        public var camera: String
        /// The framehash file (`frames/<camera>.framehash`).
        public var framehash: String
        /// Files in time order.
        public var files: [File]
        /// Gaps between consecutive files.
        public var gaps: [Gap]
    }
    /// A time range, RFC 3339 UTC.
    public struct Range: Codable, Sendable, Equatable {
        /// Start.
        public var from: String
        /// End.
        public var to: String
    }
    /// ``EvidenceBundle/formatVersion``.
    public var formatVersion: Int
    /// Export id (`x-` and 12 hex digits).
    public var exportID: String
    /// When the bundle was made, box UTC.
    public var createdAt: String
    /// The box id (`box` in the configuration).
    public var box: String
    /// SHA-256 of the 32-byte signing public key, `:`-separated upper-case hex (as the status page shows).
    public var signingKeySHA256: String
    /// Who made it: the Unix user running `hallwatchctl`.
    public var exportedBy: String
    /// Why.
    public var reason: String
    /// Case or incident number.
    public var caseNumber: String
    /// The range asked for.
    public var requested: Range
    /// First frame to end of the last file's media over all cameras; `nil` when nothing was recorded.
    public var actual: Range?
    /// Evidence holds placed over the range by this export.
    public var holds: [String]
    /// Per camera.
    public var cameras: [Camera]
}

/// An evidence export bundle: a directory anyone can verify with standard tools (<doc:HallwatchEvidence>
/// § Evidence bundle).
///
/// Layout (every path relative to the bundle):
/// - `video/<camera>/<start>_<end>.mp4`: one file per recorded run in the range (a gap or a codec change
///   starts a new file), laid out by ``ProgressiveRun`` (``HallwatchMedia/ProgressiveMP4``: `moov` first,
///   starting on a keyframe, no edit list, HEVC `hvc1`, every sample the stored bytes) and written in one
///   pass by ``ProgressiveRunWriter`` while the framehash reads it and its SHA-256 is taken;
///   `<start>`/`<end>` are box UTC `yyyyMMddTHHmmssZ` of the first frame and the media's end.
/// - `frames/<camera>.framehash`: ``HallwatchMedia/FrameHash`` of each of the camera's files in name order,
///   concatenated: what the loop in `README.txt` prints with stock `ffmpeg`.
/// - `manifest.json`: ``BundleManifest``.
/// - `keys/box-ed25519.pem`: the signing public key, SubjectPublicKeyInfo PEM (RFC 8410 §4).
/// - `README.txt`: how to verify, in plain English.
/// - `SHA256SUMS`: `<sha256 hex>  <path>` for every file above, sorted by path (`sha256sum -c` reads it).
/// - `SHA256SUMS.sig`: the 64-byte raw Ed25519 signature of `SHA256SUMS` (RFC 8032 §5.1.6), checked by
///   `openssl pkeyutl -verify -pubin -inkey keys/box-ed25519.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig`.
/// - `SHA256SUMS.minisig` and `keys/box.minisign.pub`: the same key's pre-hashed minisign signature
///   (``Minisign``), checked by `minisign -V -p keys/box.minisign.pub -m SHA256SUMS`.
public enum EvidenceBundle {
    /// Version of the bundle layout and of ``BundleManifest``.
    public static let formatVersion = 1
    /// The public key's path in the bundle.
    public static let publicKeyPath = "keys/box-ed25519.pem"
    /// The same key in minisign's format (``Minisign``).
    public static let minisignKeyPath = "keys/box.minisign.pub"

    /// What to export and why.
    public struct Request: Sendable {
        /// Cameras, in the order given.
        public var cameras: [CameraID]
        /// Start, box UTC µs (the export starts at the keyframe at or before it).
        public var from: UTCMicros
        /// End, box UTC µs (exclusive).
        public var to: UTCMicros
        /// Why (checked as a hold's reason).
        public var reason: String
        /// Case number.
        public var caseNumber: String
        /// Who (Unix user).
        public var exportedBy: String
        /// The box id.
        public var box: String
        /// Hold ids already placed over the range, for the manifest.
        public var holds: [String]
        /// The export id (``newExportID()``); `nil`: a new one.
        public var exportID: String?
        /// Why a camera recorded nothing between two files (its end and the next file's first frame), where the
        /// exporter knows (the web asks its state history); `nil` when it does not.
        public var gapCause: @Sendable (CameraID, UTCMicros, UTCMicros) -> GapCause?
        /// A request from its fields.
        public init(
            cameras: [CameraID], from: UTCMicros, to: UTCMicros, reason: String, caseNumber: String,
            exportedBy: String, box: String, holds: [String] = [], exportID: String? = nil,
            gapCause: @escaping @Sendable (CameraID, UTCMicros, UTCMicros) -> GapCause? = { _, _, _ in nil }
        ) {
            self.exportID = exportID
            self.gapCause = gapCause
            self.cameras = cameras
            self.from = from
            self.to = to
            self.reason = reason
            self.caseNumber = caseNumber
            self.exportedBy = exportedBy
            self.box = box
            self.holds = holds
        }
    }

    /// A step of ``write(_:from:to:signer:now:progress:)`` for a progress display: after each file (``path``
    /// set), and while a file is remuxed, every ``progressStepBytes`` of recorded bytes read (``path`` empty).
    public struct Progress: Sendable {
        /// Files written so far, and the number of runs to write.
        public var done: Int
        /// Runs to write in all.
        public var total: Int
        /// The file just written (bundle path); empty for a step within a file.
        public var path: String
        /// Its size, bytes (0 for a step within a file).
        public var bytes: Int64
        /// Seconds spent writing it (remux, framehash, SHA-256).
        public var seconds: Double
        /// Recorded bytes (init segments and fragments as stored) remuxed so far, over all files.
        public var recordedBytesDone: Int64 = 0
        /// Recorded bytes of the whole export (``HallwatchStorage/RecordingStream/length`` of every camera).
        public var recordedBytesTotal: Int64 = 0
        /// The fraction done, 0…1, by recorded bytes (by files when nothing is recorded).
        public var fraction: Double {
            recordedBytesTotal > 0
                ? min(1, Double(recordedBytesDone) / Double(recordedBytesTotal))
                : Double(done) / Double(max(1, total))
        }
    }

    /// How often a file's remux reports progress: every 8 MiB of recorded bytes read.
    public static let progressStepBytes: Int64 = 8 << 20

    /// A new export id: `x-` and 12 lower-case hex digits (48 random bits).
    public static func newExportID() -> String {
        "x-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
    }

    /// Whether `id` has the form of ``newExportID()`` (it names a directory: nothing else is accepted).
    public static func isExportID(_ id: String) -> Bool {
        id.utf8.count == 14 && id.hasPrefix("x-")
            && id.dropFirst(2).allSatisfy { $0.isHexDigit && ($0.isNumber || $0.isLowercase) }
    }

    /// Writes a bundle of `request`'s cameras and range to the directory `dir` (made if missing; must be
    /// empty).
    /// - Throws: ``EvidenceBundleError`` `export.bundle`, or `export.noSpace` naming the file being written when
    ///   the file system is full (``HallwatchMedia/MediaError`` `export.noSpace` when that file is a video);
    ///   ``HallwatchMedia/MediaError`` `media.export` when nothing is recorded for any camera in the range or a
    ///   run cannot be remuxed; ``HallwatchStorage/StorageError`` when a record is overwritten or corrupt
    ///   meanwhile. On any failure what the bundle wrote is removed (`dir` itself when this call made it), so a
    ///   half bundle is never left to be taken for a whole one.
    public static func write(
        _ request: Request, from library: RecordingLibrary, to dir: String, signer: BundleSigner,
        now: UTCMicros, progress: (Progress) -> Void = { _ in }
    ) throws -> BundleManifest {
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: dir), !existing.isEmpty {
            throw EvidenceBundleError(.bundle, "\(printable(dir, limit: 200)) exists and is not empty")
        }
        let existed = fm.fileExists(atPath: dir)
        do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw EvidenceBundleError(
                isNoSpace(error) ? .noSpace : .bundle, "cannot make \(printable(dir, limit: 200)): \(error)")
        }
        do {
            return try writeContents(request, from: library, to: dir, signer: signer, now: now, progress: progress)
        } catch {
            if existed {
                for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
                    try? fm.removeItem(atPath: dir + "/" + name)
                }
            } else {
                try? fm.removeItem(atPath: dir)
            }
            throw error
        }
    }

    /// Whether `error` is the file system being full (`ENOSPC`), as Foundation or POSIX reports it.
    static func isNoSpace(_ error: any Error) -> Bool {
        if let e = error as? CocoaError, e.code == .fileWriteOutOfSpace { return true }
        if let e = error as? POSIXError, e.code == .ENOSPC { return true }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain && ns.code == Int(ENOSPC) { return true }
        return (ns.userInfo[NSUnderlyingErrorKey] as? NSError).map(isNoSpace) ?? false
    }

    /// ``write(_:from:to:signer:now:progress:)``'s steps once `dir` exists and is empty.
    static func writeContents(
        _ request: Request, from library: RecordingLibrary, to dir: String, signer: BundleSigner,
        now: UTCMicros, progress: (Progress) -> Void
    ) throws -> BundleManifest {
        let fm = FileManager.default
        let streams = try request.cameras.map { try library.stream(camera: $0, from: request.from, to: request.to) }
        guard streams.contains(where: { $0.fragmentCount > 0 }) else {
            throw MediaError(
                "media.export",
                "nothing recorded for \(request.cameras.map(\.rawValue).joined(separator: ", ")) between \(request.from.iso8601) and \(request.to.iso8601)"
            )
        }
        let total = streams.reduce(0) { $0 + $1.runs.filter { $0.fragmentCount > 0 }.count }
        let recordedTotal = streams.reduce(Int64(0)) { $0 + $1.length }
        var recordedDone: Int64 = 0
        var done = 0
        var cameras: [BundleManifest.Camera] = []
        var framehashSums: [String: String] = [:]
        var first: UTCMicros?
        var last: UTCMicros?
        for (camera, stream) in zip(request.cameras, streams) {
            let videoDir = "video/\(camera.rawValue)"
            try make(dir + "/" + videoDir)
            var entry = BundleManifest.Camera(
                camera: camera.rawValue, framehash: "frames/\(camera.rawValue).framehash", files: [], gaps: [])
            // Each run's framehash text goes to a file of its own (memory does not grow with the frames).
            var hashes: [(name: String, part: String)] = []
            try make(dir + "/frames")
            var previousEnd: UTCMicros?
            for run in stream.runs where run.fragmentCount > 0 {
                let t0 = Date()
                let partial = dir + "/" + videoDir + "/.partial.mp4"
                let part = dir + "/frames/.\(camera.rawValue)-\(hashes.count).part"
                // One pass over the run: the framehash's demuxer reads the planned MP4 from the records, and
                // the writer puts each byte in the file and through SHA-256 as it first goes by. A failed run
                // leaves no half-written file (the bundle, without SHA256SUMS, never verifies).
                let plan: ProgressiveRun
                let hash: FrameHash.Result
                let sha256: String
                let base = recordedDone
                let doneSoFar = done
                do {
                    guard let planned = try ProgressiveRun(run) else {
                        throw MediaError("media.export", "a stored run has no init segment before its fragments")
                    }
                    plan = planned
                    // The writer lives only for this run: `progress` does not escape the call.
                    (hash, sha256) = try withoutActuallyEscaping(progress) { progress in
                        let writer = try ProgressiveRunWriter(plan, to: partial) { written in
                            progress(
                                Progress(
                                    done: doneSoFar, total: total, path: "", bytes: 0,
                                    seconds: Date().timeIntervalSince(t0),
                                    recordedBytesDone: base + min(written, run.length),
                                    recordedBytesTotal: recordedTotal))
                        }
                        let hash = try FrameHash.compute(source: writer, textPath: part)
                        return (hash, try writer.finish())
                    }
                } catch {
                    unlink(partial)
                    unlink(part)
                    throw error
                }
                let start = run.firstFragmentUTC ?? request.from
                let firstFrame = start.adding(micros: 0)
                let lastFrame = start.adding(
                    micros: (hash.lastVideoMicros ?? 0) - (hash.firstVideoMicros ?? 0))
                let end = start.adding(micros: Int64((plan.seconds * 1e6).rounded()))
                var name = "\(compact(firstFrame))_\(compact(end)).mp4"
                var n = 2
                while fm.fileExists(atPath: dir + "/" + videoDir + "/" + name) {
                    name = "\(compact(firstFrame))_\(compact(end))-\(n).mp4"
                    n += 1
                }
                let path = videoDir + "/" + name
                guard rename(partial, dir + "/" + path) == 0 else {
                    throw EvidenceBundleError(.bundle, "cannot rename \(partial): \(String(cString: strerror(errno)))")
                }
                let bytes = plan.length
                entry.files.append(
                    .init(
                        path: path, bytes: bytes, sha256: sha256,
                        firstFrameUTC: firstFrame.iso8601, lastFrameUTC: lastFrame.iso8601, frames: hash.videoFrames))
                hashes.append((name, part))
                if let previousEnd {
                    let why = request.gapCause(camera, previousEnd, firstFrame)
                    entry.gaps.append(
                        .init(
                            from: previousEnd.iso8601, to: firstFrame.iso8601,
                            seconds: Double(firstFrame.micros - previousEnd.micros) / 1e6, cause: why?.cause,
                            detail: why?.detail))
                }
                previousEnd = end
                first = min(first ?? firstFrame, firstFrame)
                last = max(last ?? end, end)
                done += 1
                recordedDone = base + run.length
                progress(
                    Progress(
                        done: done, total: total, path: path, bytes: bytes, seconds: Date().timeIntervalSince(t0),
                        recordedBytesDone: recordedDone, recordedBytesTotal: recordedTotal))
            }
            // The README's loop reads the files in name order (the shell's glob): so does the framehash file.
            framehashSums[entry.framehash] = try concatenate(
                hashes.sorted { $0.name < $1.name }.map(\.part), to: dir + "/" + entry.framehash)
            cameras.append(entry)
        }
        let manifest = BundleManifest(
            formatVersion: formatVersion,
            exportID: request.exportID ?? newExportID(),
            createdAt: now.iso8601, box: request.box,
            signingKeySHA256: SHA256.hash(data: signer.publicKey).map { String(format: "%02X", $0) }.joined(
                separator: ":"),
            exportedBy: request.exportedBy, reason: request.reason, caseNumber: request.caseNumber,
            requested: .init(from: request.from.iso8601, to: request.to.iso8601),
            actual: first.map { BundleManifest.Range(from: $0.iso8601, to: (last ?? $0).iso8601) },
            holds: request.holds, cameras: cameras)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try writeFile(dir + "/manifest.json", String(decoding: try encoder.encode(manifest), as: UTF8.self) + "\n")
        try make(dir + "/keys")
        try writeFile(dir + "/" + publicKeyPath, pem(publicKey: signer.publicKey))
        try writeFile(dir + "/" + minisignKeyPath, Minisign.publicKeyFile(publicKey: signer.publicKey))
        try writeFile(dir + "/README.txt", readme(manifest))
        let known = Dictionary(
            cameras.flatMap { $0.files.map { ($0.path, $0.sha256) } }, uniquingKeysWith: { a, _ in a }
        ).merging(framehashSums) { a, _ in a }
        let sums = try sumsText(dir, known: known)
        try writeFile(dir + "/SHA256SUMS", sums)
        let signature = signer.sign(Data(sums.utf8))
        guard signature.count == 64 else { throw EvidenceBundleError(.signingKey, "the key did not sign SHA256SUMS") }
        try writeFile(dir + "/SHA256SUMS.sig", signature)
        try writeFile(
            dir + "/SHA256SUMS.minisig",
            Minisign.signatureFile(
                of: Data(sums.utf8), signer: signer,
                trustedComment:
                    "Hallwatch evidence export \(manifest.exportID) of box \(manifest.box), case \(manifest.caseNumber), made \(manifest.createdAt)"
            ))
        return manifest
    }

    /// The SubjectPublicKeyInfo PEM of a 32-byte Ed25519 public key (RFC 8410 §4: the DER prefix
    /// `30 2a 30 05 06 03 2b 65 70 03 21 00`, then the key).
    public static func pem(publicKey: Data) -> String {
        let der = spkiPrefix + publicKey
        return "-----BEGIN PUBLIC KEY-----\n\(der.base64EncodedString())\n-----END PUBLIC KEY-----\n"
    }

    /// The 32-byte Ed25519 key of a PEM written by ``pem(publicKey:)``; `nil` for anything else.
    public static func publicKey(pem text: String) -> Data? {
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: body), der.count == 44, der.prefix(12) == spkiPrefix else { return nil }
        return der.suffix(32)
    }

    static let spkiPrefix = Data([0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00])

    /// Box UTC as `yyyyMMddTHHmmssZ` (file names: no `:`, sorted in time order).
    static func compact(_ t: UTCMicros) -> String {
        var seconds = time_t(t.micros >= 0 ? t.micros / 1_000_000 : (t.micros - 999_999) / 1_000_000)
        var tm = tm()
        gmtime_r(&seconds, &tm)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
            Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }

    /// SHA-256 of a file, lower-case hex, read 1 MiB at a time.
    static func sha256Hex(file: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: file) else {
            throw EvidenceBundleError(.bundle, "cannot read \(printable(file, limit: 200))")
        }
        defer { try? h.close() }
        var hasher = SHA256()
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Writes `parts`' bytes, in order, to the new file `path` and removes them; returns the SHA-256 of what it
    /// wrote, lower-case hex (1 MiB at a time).
    static func concatenate(_ parts: [String], to path: String) throws -> String {
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let out = FileHandle(forWritingAtPath: path)
        else { throw EvidenceBundleError(.bundle, "cannot write \(printable(path, limit: 200))") }
        defer { try? out.close() }
        var hasher = SHA256()
        for part in parts {
            guard let h = FileHandle(forReadingAtPath: part) else {
                throw EvidenceBundleError(.bundle, "cannot read \(printable(part, limit: 200))")
            }
            defer {
                try? h.close()
                unlink(part)
            }
            do {
                while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty {
                    hasher.update(data: chunk)
                    try out.write(contentsOf: chunk)
                }
            } catch {
                throw EvidenceBundleError(.bundle, "cannot write \(printable(path, limit: 200)): \(error)")
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Every regular file under `dir` except the sums and their signatures, sorted by path (`/`-separated).
    static func listedFiles(_ dir: String) -> [String] {
        let skip: Set<String> = ["SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.minisig"]
        var out: [String] = []
        let e = FileManager.default.enumerator(atPath: dir)
        while let p = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir), !isDir.boolValue,
                !skip.contains(p)
            {
                out.append(p)
            }
        }
        return out.sorted()
    }

    /// `SHA256SUMS`' text for every file under `dir`; `known` gives hashes already computed (the video files,
    /// hashed once right after they were written) by bundle path.
    static func sumsText(_ dir: String, known: [String: String] = [:]) throws -> String {
        try listedFiles(dir).map { "\(try known[$0] ?? sha256Hex(file: dir + "/" + $0))  \($0)\n" }.joined()
    }

    static func make(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw failure(error, "cannot make", path)
        }
    }

    static func writeFile(_ path: String, _ text: String) throws { try writeFile(path, Data(text.utf8)) }

    static func writeFile(_ path: String, _ data: Data) throws {
        do { try data.write(to: URL(fileURLWithPath: path)) } catch {
            throw failure(error, "cannot write", path)
        }
    }

    /// `export.noSpace` ("no space left on device writing PATH") for a full file system, else `export.bundle`.
    static func failure(_ error: any Error, _ what: String, _ path: String) -> EvidenceBundleError {
        isNoSpace(error)
            ? EvidenceBundleError(.noSpace, "no space left on device writing \(printable(path, limit: 200))")
            : EvidenceBundleError(.bundle, "\(what) \(printable(path, limit: 200)): \(error)")
    }

    /// `README.txt`: the three checks a recipient runs, in plain English.
    static func readme(_ m: BundleManifest) -> String {
        let loops = m.cameras.map {
            """
                for f in video/\($0.camera)/*.mp4; do ffmpeg -v error -i "$f" -map 0 -c copy -fflags +bitexact -f framehash -hash sha256 -; done | cmp - \($0.framehash) && echo "\($0.camera): frames OK"
            """
        }.joined(separator: "\n")
        return """
            Hallwatch evidence export \(m.exportID)
            Box \(m.box), made \(m.createdAt) by \(m.exportedBy) for case \(m.caseNumber).
            Reason: \(m.reason)
            Requested range: \(m.requested.from) to \(m.requested.to) (UTC).

            The video is in video/<camera>/, one standard MP4 file per continuous recording, named by the UTC
            times of its first frame and its end. Each file holds the frames exactly as the camera sent them
            (copied, never re-encoded). manifest.json lists every file with its size, SHA-256, first and last
            frame time, frame count, and the gaps between files where nothing was recorded.

            How to check that nothing was changed (in this folder, with standard tools):

            1. Every file is the one the box wrote (GNU coreutils):
                sha256sum -c SHA256SUMS
               Each line must end in "OK".

            2. The list of files was signed by the box's identity key (OpenSSL 3):
                openssl pkeyutl -verify -pubin -inkey \(publicKeyPath) -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
               It must print "Signature Verified Successfully". Compare the key's fingerprint with the one
               recorded for the box (its status page, "Identity key"); it is \(m.signingKeySHA256):
                openssl pkey -pubin -in \(publicKeyPath) -outform DER | tail -c 32 | sha256sum

            3. Each video frame is as recorded (FFmpeg): these print one SHA-256 per frame; they must equal
               the lists in frames/:
            \(loops)

            The same signature in minisign's format, if minisign is at hand:
                minisign -V -p \(minisignKeyPath) -m SHA256SUMS
               It must print "Signature and comment signature verified".

            On a Hallwatch box, "hallwatchctl export verify <this folder>" runs all three checks.

            """
    }
}
