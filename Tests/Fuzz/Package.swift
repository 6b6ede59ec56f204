// swift-tools-version: 6.1
// The libFuzzer executables of clickd's fuzz targets (docs/fuzzing.md). Built and run by
// `make fuzz` (scripts/fuzz) with `-sanitize=fuzzer,address`; each one is
// a thin entry point into `FuzzHarness` of the main package, where the targets and their
// invariants live (and where `make test` replays the committed corpora).
import PackageDescription

let targets = ["token", "request-head", "event-codec", "frame", "html", "link-tag", "key-ring"]

let package = Package(
    name: "clickd-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "clickd", path: "../..")],
    targets: targets.map { name in
        .executableTarget(name: "fuzz-\(name)", dependencies: [.product(name: "FuzzHarness", package: "clickd")],
                          path: "Sources/fuzz-\(name)")
    }
)
