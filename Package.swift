// swift-tools-version:6.1
// Hallwatch — open firmware for a school building's network video recorder.
// Dependencies point one way: C system libraries → HallwatchCore → HallwatchConfig → domain libraries → executables.
import PackageDescription

let package = Package(
    name: "Hallwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hallwatch-capture", targets: ["hallwatch-capture"]),
        .executable(name: "hallwatch-recorder", targets: ["hallwatch-recorder"]),
        .executable(name: "hallwatch-pruner", targets: ["hallwatch-pruner"]),
        .executable(name: "hallwatch-simcam", targets: ["hallwatch-simcam"]),
        .executable(name: "hallwatchctl", targets: ["hallwatchctl"]),
        .executable(name: "hallwatch-loadgen", targets: ["hallwatch-loadgen"]),
        .executable(name: "hallwatch-discovery", targets: ["hallwatch-discovery"]),
        .executable(name: "hallwatch-web", targets: ["hallwatch-web"]),
        .executable(name: "hallwatch-provision", targets: ["hallwatch-provision"]),
        .executable(name: "hallwatch-generator", targets: ["hallwatch-generator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        // Only the simulated camera's ONVIF server (HallwatchSimONVIF) uses it.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        // The box's web page (HallwatchWeb): bcrypt, server-rendered pages, TLS, its self-signed certificate.
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
        // Live view (HallwatchWeb): the WebSocket upgrade on HTTP/1.1, beside HTTP/2 through ALPN.
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        // MARK: C libraries from Debian's -dev packages
        .systemLibrary(
            name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev"])]),
        .systemLibrary(
            name: "CGStreamer", path: "Sources/CGStreamer", pkgConfig: "gstreamer-rtsp-server-1.0",
            providers: [.apt(["libgstrtspserver-1.0-dev", "libgstreamer1.0-dev"])]),
        .systemLibrary(
            name: "CMosquitto", path: "Sources/CMosquitto", pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]),
        // Ed25519 (RFC 8032), BLAKE2b and SHA-256 for minisign signatures on USB config bundles.
        .systemLibrary(
            name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]),
        // The provisioner's monitor of USB block devices (udev netlink events) and its scan at start.
        .systemLibrary(
            name: "CUdev", path: "Sources/CUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
        // QR codes of responder links (HallwatchWeb's QRCodeSVG).
        .systemLibrary(
            name: "CQRencode", path: "Sources/CQRencode", pkgConfig: "libqrencode",
            providers: [.apt(["libqrencode-dev"])]),
        .systemLibrary(
            name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]),
        // glibc's malloc_trim(3): hallwatch-web returns the live view's freed bursts to the system.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        // Linux's sync_file_range(2): an evidence bundle's writer starts each chunk's writeback at once.
        .systemLibrary(name: "CWriteback", path: "Sources/CWriteback"),

        // MARK: our own C
        // CRC-32C of the recording format (RFC 3720 B.4) with SSE4.2 / ARMv8 CRC32C instructions and a slice-by-8
        // fallback: no library in the allowed list has it (Sources/CCRC32C/include/crc32c.h).
        .target(name: "CCRC32C"),

        // MARK: libraries (everything testable lives here)
        .target(
            name: "HallwatchCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),  // Digest authentication (RTSP and ONVIF)
            ]),
        // The configuration document: one file per section, the loader and its diagnostics. The only Yams user.
        .target(
            name: "HallwatchConfig",
            dependencies: [
                "HallwatchCore",
                .product(name: "Yams", package: "Yams"),
            ]),
        .target(
            name: "HallwatchBus",
            dependencies: [
                "HallwatchCore", "CMosquitto",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "HallwatchMedia",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "CFFmpeg",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),  // the framehash's per-packet SHA-256
            ]),
        .target(
            name: "HallwatchStorage",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "CCRC32C",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "HallwatchSimCam",
            dependencies: [
                "HallwatchCore", "CGStreamer",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "HallwatchDiscovery",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchProcess",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "HallwatchSimONVIF",
            dependencies: [
                "HallwatchCore", "HallwatchDiscovery",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The media data plane, both ends: framing, hello, the capture side's resend window, the recorder
        // side's duplicate skipping, and the recorder's live tap (L1–L6). Protocol steps in its DocC.
        .target(
            name: "HallwatchDataPlane",
            dependencies: [
                "HallwatchCore",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // MARK: one library per process (the executables stay thin)
        // What every long-running process does: logging, configuration or exit 78, presence on the bus, signals.
        .target(
            name: "HallwatchProcess",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "CSystemd",
                .product(name: "Crypto", package: "swift-crypto"),  // the digest of secret files (ReloadPolicy)
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // hallwatch-capture: RTSP in (HallwatchMedia), data plane out. No SQLite, no recording disk.
        .target(
            name: "HallwatchCapture",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchMedia", "HallwatchDiscovery",
                "HallwatchProcess", "HallwatchDataPlane",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // hallwatch-recorder: data plane in, HallwatchStorage's recording pool out. No FFmpeg.
        .target(
            name: "HallwatchRecorder",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchStorage", "HallwatchProcess",
                "HallwatchDataPlane",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // hallwatch-pruner: HallwatchStorage's Pruner on a period and on the recorder's low-free-slots event.
        .target(
            name: "HallwatchPruner",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchStorage", "HallwatchProcess",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // hallwatchctl only: disk maintenance, queries, the development supervisor, the demo plan.
        .target(
            name: "HallwatchControl",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchStorage", "HallwatchMedia",
                "HallwatchDiscovery", "HallwatchProcess", "HallwatchEvidence", "HallwatchStatus",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // hallwatch-web: the box's own web page (HTTPS, accounts, audit log, live status). Reads the bus;
        // its own state (sessions, audit log) in its own SQLite database. Never writes a recording disk: reads
        // recordings through HallwatchStorage (thumbnails decoded by HallwatchMedia; Evidence's byte source).
        .target(
            name: "HallwatchWeb",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchProcess", "HallwatchStatus",
                "HallwatchStorage", "HallwatchMedia", "HallwatchEvidence", "HallwatchDataPlane", "CQRencode", "CMalloc",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]),
        // Bus state → status snapshot, shared by hallwatchctl status and hallwatch-web (no storage, no FFmpeg).
        .target(
            name: "HallwatchStatus",
            dependencies: [
                "HallwatchCore", "HallwatchBus",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // The USB config drop (issue 17): the bundle manifest, minisign signatures, the user-space stick
        // reader (mtools), the atomic apply and the receipt. hallwatch-provision and hallwatchctl config use it.
        .target(
            name: "HallwatchProvision",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchSodium", "CSodium", "CUdev", "HallwatchBus",
                "HallwatchStatus",
                .product(name: "Logging", package: "swift-log"),
            ]),

        // MARK: libsodium's Ed25519, BLAKE2b and SHA-256, shared by the provisioner and the evidence bundle
        .target(name: "HallwatchSodium", dependencies: ["CSodium"]),

        // MARK: evidence: export through the streaming read path, evidence-hold input rules
        .target(
            name: "HallwatchEvidence",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchStorage", "HallwatchMedia", "HallwatchSodium",
                "CWriteback",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),  // bundle SHA-256 sums, Ed25519 verification
            ]),

        // MARK: one thin executable per process
        .executableTarget(
            name: "hallwatch-capture",
            dependencies: [
                "HallwatchCapture", "HallwatchProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hallwatch-recorder",
            dependencies: [
                "HallwatchRecorder", "HallwatchProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hallwatch-pruner",
            dependencies: [
                "HallwatchPruner", "HallwatchProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hallwatch-simcam",
            dependencies: [
                "HallwatchSimCam", "HallwatchSimONVIF",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hallwatch-discovery",
            dependencies: [
                "HallwatchDiscovery", "HallwatchProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hallwatch-web",
            dependencies: [
                "HallwatchWeb", "HallwatchConfig", "HallwatchProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The systemd generator: one hallwatch-capture@ instance per configured camera (Systemd/README.md).
        .executableTarget(
            name: "hallwatch-generator",
            dependencies: ["HallwatchConfig", "HallwatchProcess"]),
        .executableTarget(
            name: "hallwatch-provision",
            dependencies: [
                "HallwatchProvision",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "hallwatchctl",
            dependencies: [
                "HallwatchConfig", "HallwatchControl", "HallwatchProcess", "HallwatchCapture", "HallwatchDiscovery",
                "HallwatchEvidence", "HallwatchWeb", "HallwatchStatus", "HallwatchProvision",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Benchmark tool (`make bench`), not installed on the appliance: a data-plane sink and feeder, and
        // an RTSP server of pre-packetised cameras (reads its file through HallwatchMedia).
        .executableTarget(
            name: "hallwatch-loadgen",
            dependencies: [
                "HallwatchCore", "HallwatchMedia", "HallwatchDataPlane",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: tests
        .testTarget(name: "HallwatchCoreTests", dependencies: ["HallwatchCore"]),
        .testTarget(
            name: "HallwatchConfigTests", dependencies: ["HallwatchConfig", "HallwatchCore"], exclude: ["Golden"]),
        .testTarget(name: "HallwatchBusTests", dependencies: ["HallwatchBus"]),
        .testTarget(name: "HallwatchDataPlaneTests", dependencies: ["HallwatchDataPlane"]),
        .testTarget(
            name: "HallwatchProcessTests", dependencies: ["HallwatchProcess", "HallwatchBus", "HallwatchConfig"]),
        .testTarget(
            name: "HallwatchRecorderTests",
            dependencies: [
                "HallwatchRecorder", "HallwatchDataPlane", "HallwatchStorage", "HallwatchProcess", "HallwatchConfig",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(name: "HallwatchControlTests", dependencies: ["HallwatchControl", "HallwatchConfig"]),
        .testTarget(name: "HallwatchStatusTests", dependencies: ["HallwatchStatus", "HallwatchBus", "HallwatchCore"]),
        .testTarget(
            name: "HallwatchWebTests",
            dependencies: [
                "HallwatchWeb", "HallwatchCore", "HallwatchConfig", "HallwatchStatus", "HallwatchBus",
                "HallwatchDataPlane", "HallwatchStorage", "HallwatchMedia", "HallwatchEvidence",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]),
        .testTarget(
            name: "HallwatchCaptureTests", dependencies: ["HallwatchCapture", "HallwatchMedia", "HallwatchCore"]),
        .testTarget(
            name: "HallwatchEvidenceTests",
            dependencies: [
                "HallwatchEvidence", "HallwatchStorage", "HallwatchMedia", "HallwatchConfig", "CFFmpeg",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .testTarget(name: "HallwatchSodiumTests", dependencies: ["HallwatchSodium", "CSodium"]),
        .testTarget(
            name: "HallwatchProvisionTests",
            dependencies: [
                "HallwatchProvision", "HallwatchCore", "HallwatchConfig", "HallwatchSodium", "CSodium", "HallwatchBus",
            ]),
        .testTarget(name: "HallwatchMediaTests", dependencies: ["HallwatchMedia"]),
        .testTarget(name: "HallwatchStorageTests", dependencies: ["HallwatchStorage", "HallwatchConfig", "CCRC32C"]),
        .testTarget(name: "HallwatchSimCamTests", dependencies: ["HallwatchSimCam"]),
        .testTarget(name: "HallwatchDiscoveryTests", dependencies: ["HallwatchDiscovery"]),
        .testTarget(
            name: "HallwatchPrunerTests",
            dependencies: ["HallwatchPruner", "HallwatchConfig", "HallwatchCore", "HallwatchStorage"]),
        .testTarget(
            name: "DiscoveryEndToEndTests",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchCapture", "HallwatchDiscovery",
                "HallwatchSimONVIF", "HallwatchProcess",
            ]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "HallwatchCore", "HallwatchConfig", "HallwatchBus", "HallwatchStorage", "HallwatchMedia", "CFFmpeg",
                "HallwatchDataPlane",
                "HallwatchProcess",
            ]),
    ],
    swiftLanguageModes: [.v6]
)
