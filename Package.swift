// swift-tools-version: 6.1
import PackageDescription

// Module layout fixed by ../shared/DESIGN.md. Pure logic (framing, tokens, rewriting,
// folding) lives apart from I/O; see docs/ for the formats.
let package = Package(
    name: "clickd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "clickd", targets: ["IngestDaemon"]),
        .library(name: "EventLog", targets: ["EventLog"]),
        // The fuzz targets, for the libFuzzer package in Tests/Fuzz (docs/fuzzing.md).
        .library(name: "FuzzHarness", targets: ["FuzzHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // ServerQuiescingHelper: the edge's graceful shutdown without polling.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        // traits: [] keeps SwiftPM from re-planning (and rebuilding) Hummingbird on every
        // switch between build and test (BUILD-NOTES).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // The report pages: templates (every value escaped by the template) and bcrypt for
        // the htpasswd file.
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        // The archive and restore commands: a child in its own process group, with a
        // teardown (SIGTERM to the group, then SIGKILL) when its timeout cancels it.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        // FileDescriptor and FilePath, which Subprocess's API speaks.
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
    ],
    targets: [
        // Hardware CRC32C (SSE4.2) with a portable fallback, and the Linux headers
        // (inotify, flock) the log needs that Glibc's module does not export.
        .target(name: "CEventLog", cSettings: [.unsafeFlags(["-O3"])]),
        .target(
            name: "EventLog",
            dependencies: [
                "CEventLog",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The log's lifecycle past the writer: archiving sealed segments (a service of the
        // edge), restoring them, retention (docs/design/archive.md).
        .target(
            name: "LogArchive",
            dependencies: [
                "EventLog", "LinkTracking",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "LinkTracking",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]
        ),
        .target(
            name: "TrackerEdge",
            dependencies: [
                "EventLog", "LinkTracking", "LogArchive",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                "Systemd",
            ]
        ),
        // sd_notify for every daemon (READY, WATCHDOG, STOPPING), without libsystemd.
        .target(
            name: "Systemd",
            dependencies: [.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "Projections",
            dependencies: [
                "EventLog", "LinkTracking", "CLibPQ", "Systemd",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `clickd report`: the report pages over the analysts' views (docs/design/report.md).
        .target(
            name: "ReportServer",
            dependencies: [
                "Projections", "Systemd", "LinkTracking",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "IngestDaemon",
            dependencies: [
                "EventLog", "LinkTracking", "TrackerEdge", "Projections", "Systemd", "ReportServer", "LogArchive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Test-only helper: appends from many concurrent writers and prints each
        // acknowledged LSN, so tests can kill it with SIGKILL and check durability.
        .executableTarget(name: "LogTorture", dependencies: ["EventLog"]),
        .target(name: "ClickdTestSupport", dependencies: ["Projections"]),
        // Swift Testing traits of the test targets (imports Testing: no product depends on it).
        .target(name: "ClickdTestTraits", dependencies: ["ClickdTestSupport"]),
        // One function per decoder of untrusted bytes, with its invariant (debug builds only).
        .target(name: "FuzzHarness", dependencies: ["EventLog", "LinkTracking", "TrackerEdge", "ReportServer"]),
        .testTarget(name: "FuzzReplayTests", dependencies: ["FuzzHarness", "ClickdTestSupport", "ClickdTestTraits"]),
        .testTarget(name: "EventLogTests", dependencies: ["EventLog", "CEventLog", "ClickdTestSupport", "ClickdTestTraits"]),
        .testTarget(
            name: "ProjectionsTests",
            dependencies: [
                "Projections", "EventLog", "LinkTracking", "ClickdTestSupport", "ClickdTestTraits",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "LogArchiveTests",
            dependencies: [
                "LogArchive", "EventLog", "ClickdTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "ClickdCommandTests", dependencies: ["EventLog", "LinkTracking", "LogArchive", "ClickdTestSupport", "ClickdTestTraits"]),
        .testTarget(
            name: "LinkTrackingTests", dependencies: ["LinkTracking", "ClickdTestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "TrackerEdgeTests",
            dependencies: [
                "TrackerEdge", "EventLog", "LinkTracking", "ClickdTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ReportServerTests",
            dependencies: [
                "ReportServer", "Projections", "EventLog", "LinkTracking", "ClickdTestSupport",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmark helper (bench/links.sh): rewrite throughput and sign/verify rates.
        .executableTarget(
            name: "LinkBench",
            dependencies: ["LinkTracking", "EventLog", "ClickdTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)
