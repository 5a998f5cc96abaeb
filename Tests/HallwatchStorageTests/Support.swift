import Foundation
import HallwatchCore
import Logging

@testable import HallwatchStorage

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

/// Deterministic pseudo-random numbers for payloads.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n + 8)
        while out.count < n { withUnsafeBytes(of: next()) { out.append(contentsOf: $0) } }
        return Array(out.prefix(n))
    }
}

func fragmentMeta(
    run: UInt64, sequence: UInt32, duration90k: Int32 = 45_000, keyframe: Bool = true,
    runStartUTC: Int64 = 1_764_000_000_000_000
) -> FragmentMeta {
    let start = Int64(sequence - 1) * Int64(duration90k)
    return FragmentMeta(
        kind: .fragment, keyframe: keyframe, run: run, sequence: sequence, start90k: MediaTime90k(start),
        duration90k: duration90k, utc: UTCMicros(runStartUTC).adding(MediaTime90k(start)))
}

func initMeta(run: UInt64, runStartUTC: Int64 = 1_764_000_000_000_000) -> FragmentMeta {
    FragmentMeta(
        kind: .initSegment, keyframe: false, run: run, sequence: 0, start90k: .zero, duration90k: 0,
        utc: UTCMicros(runStartUTC))
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir {
    let path: String
    init(_ name: String = #function) {
        let base = FileManager.default.temporaryDirectory.path + "/hallwatch-storage-tests"
        try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let clean = name.filter { $0.isLetter || $0.isNumber }
        path = base + "/\(clean)-\(UUID().uuidString.prefix(8))"
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Clocks frozen at a settable instant.
final class TestClocks: Clocks, @unchecked Sendable {
    private let lock = NSLock()
    private var now: Int64
    init(_ micros: Int64 = 1_764_000_000_000_000) { now = micros }
    func utcNow() -> UTCMicros {
        lock.lock()
        defer { lock.unlock() }
        return UTCMicros(now)
    }
    func monotonicNanos() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return UInt64(now) * 1000
    }
    func advance(micros: Int64) {
        lock.lock()
        now += micros
        lock.unlock()
    }
}

let testLogger: Logger = {
    var l = Logger(label: "hallwatch.storage.test")
    l.logLevel = .warning
    return l
}()

/// A freshly initialised disk in a temporary directory.
struct Rig {
    let dir: TempDir
    let disk: RecordingDisk
    let clocks = TestClocks()

    init(slots: Int, slotSizeBytes: Int64, name: String = #function) throws {
        dir = TempDir(name)
        disk = try RecordingDisk.initialize(
            at: dir.path, box: "test-box", slotCount: slots, slotSizeBytes: slotSizeBytes, clocks: clocks)
    }

    func writer(_ options: DiskWriter.Options = .init(), opener: any SlotFileOpener = PosixSlotFileOpener()) throws
        -> DiskWriter
    {
        try DiskWriter(
            disk: RecordingDisk.open(at: dir.path, box: "test-box"), clocks: clocks, logger: testLogger,
            options: options, opener: opener)
    }

    func reader() throws -> RecordingReader { try RecordingReader(at: dir.path, box: "test-box") }
}

/// One camera's synthetic stream: an init segment and fragments with deterministic payloads.
struct Stream {
    let camera: CameraID
    let run: UInt64
    var rng: SplitMix
    var nextSequence: UInt32 = 1
    let fragment90k: Int32
    let payloadBytes: Int
    let keyframeEvery: UInt32
    var initPayload: [UInt8]
    /// Every fragment handed out, in order.
    var sent: [(meta: FragmentMeta, payload: [UInt8])] = []
    /// How much faster (ppm; negative: slower) the fragments' UTC advances than their media time, as
    /// the capture worker's wall clock slews to follow a camera whose clock is off.
    var slewPPM = 0.0

    init(
        _ camera: String, run: UInt64 = 1_764_000_000_000_000, fragment90k: Int32 = 45_000, payloadBytes: Int = 4_000,
        keyframeEvery: UInt32 = 1, seed: UInt64 = 1
    ) {
        self.camera = CameraID(camera)!
        self.run = run
        rng = SplitMix(seed: seed)
        self.fragment90k = fragment90k
        self.payloadBytes = payloadBytes
        self.keyframeEvery = keyframeEvery
        initPayload = Array("ftyp....moov init of \(camera) run \(run)".utf8) + rng.bytes(600)
    }

    var initMeta: FragmentMeta { HallwatchStorageTests.initMeta(run: run, runStartUTC: Int64(run)) }

    mutating func nextFragment() -> (meta: FragmentMeta, payload: [UInt8]) {
        let seq = nextSequence
        nextSequence += 1
        var meta = fragmentMeta(
            run: run, sequence: seq, duration90k: fragment90k, keyframe: (seq - 1) % keyframeEvery == 0,
            runStartUTC: Int64(run))
        meta.utc = UTCMicros(
            Int64(run) + Int64((Double(meta.start90k.ticks) * 100 / 9 * (1 + slewPPM * 1e-6)).rounded()))
        let f = (meta, rng.bytes(payloadBytes))
        sent.append(f)
        return f
    }

    /// Appends the init segment.
    func sendInit(_ w: DiskWriter) throws { try w.append(camera: camera, meta: initMeta, payload: initPayload) }

    /// Appends `n` fragments; returns the outcomes.
    @discardableResult
    mutating func send(_ n: Int, to w: DiskWriter) throws -> [AppendOutcome] {
        var out: [AppendOutcome] = []
        for _ in 0..<n {
            let f = nextFragment()
            out.append(try w.append(camera: camera, meta: f.meta, payload: f.payload))
        }
        return out
    }

    /// UTC of the run's start and of the end of the last fragment sent.
    var startUTC: UTCMicros { UTCMicros(Int64(run)) }
    var endUTC: UTCMicros { startUTC.adding(MediaTime90k(Int64(nextSequence - 1) * Int64(fragment90k))) }
}

/// Every fragment of every run of `camera` on the disk, via `segments` over all time.
func readAll(_ r: RecordingReader, _ camera: CameraID) throws -> [ExportRun] {
    try r.segments(camera: camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2), startAtKeyframe: false)
}

/// The record header at `offset` of `slot`'s file.
func recordHeader(_ disk: RecordingDisk, slot: Int, offset: Int64 = Int64(SlotHeader.byteCount)) throws -> RecordHeader
{
    let f = try PosixSlotFileOpener().open(disk.slotPath(slot), writable: false)
    return try RecordHeader.decode(try f.readBytes(RecordHeader.byteCount, at: offset))
}

func slotHeader(_ disk: RecordingDisk, slot: Int) throws -> SlotHeader {
    let f = try PosixSlotFileOpener().open(disk.slotPath(slot), writable: false)
    return try SlotHeader.decode(try f.readBytes(SlotHeader.byteCount, at: 0))
}

/// Overwrites bytes of a slot file in place (to simulate torn writes and bit rot).
func scribble(_ disk: RecordingDisk, slot: Int, at offset: Int64, _ bytes: [UInt8]) throws {
    let f = try PosixSlotFileOpener().open(disk.slotPath(slot), writable: true)
    try bytes.withUnsafeBytes { try f.write($0, UnsafeRawBufferPointer(start: nil, count: 0), at: offset) }
}

/// An opener whose files fail `fdatasync` with EIO when their path ends with `failSyncSuffix`.
final class FaultyOpener: SlotFileOpener, @unchecked Sendable {
    private let lock = NSLock()
    private var suffix: String?
    private var calls = 0
    /// Files whose path ends with this fail `fdatasync` (".slot" fails them all); `nil` fails none.
    var failSyncSuffix: String? {
        get {
            lock.lock()
            defer { lock.unlock() }
            return suffix
        }
        set {
            lock.lock()
            suffix = newValue
            lock.unlock()
        }
    }
    var syncCalls: Int {
        lock.lock()
        defer { lock.unlock() }
        return calls
    }
    func open(_ path: String, writable: Bool) throws(StorageError) -> any SlotFileHandle {
        FaultyFile(inner: try PosixSlotFileOpener().open(path, writable: writable), owner: self)
    }
    fileprivate func shouldFail(_ path: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        calls += 1
        return suffix.map { path.hasSuffix($0) } ?? false
    }

    final class FaultyFile: SlotFileHandle, @unchecked Sendable {
        let inner: any SlotFileHandle
        let owner: FaultyOpener
        init(inner: any SlotFileHandle, owner: FaultyOpener) {
            self.inner = inner
            self.owner = owner
        }
        var path: String { inner.path }
        func write(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, at offset: Int64) throws(StorageError) {
            try inner.write(a, b, at: offset)
        }
        func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageError) -> Int {
            try inner.read(into: buffer, at: offset)
        }
        func syncData() throws(StorageError) {
            if owner.shouldFail(path) { throw StorageError.io("fdatasync", path: path, errno: EIO) }
            try inner.syncData()
        }
    }
}

/// The code of the ``StorageError`` `body` throws; `nil` when it does not throw (or throws something else).
func storageCode<T>(_ body: () throws -> T) -> StorageError.Code? {
    do {
        _ = try body()
        return nil
    } catch let e as StorageError { return e.code } catch { return StorageError.Code(rawValue: "other: \(error)") }
}
