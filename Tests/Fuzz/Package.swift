// swift-tools-version: 6.1
// The libFuzzer executable of clickd's fuzz targets (docs/fuzzing.md). Built and run by
// `make fuzz` (scripts/fuzz) with `-sanitize=fuzzer,address`; it is
// a thin entry point into `FuzzHarness` of the main package, where the targets and their
// invariants live (and where `make test` replays the committed corpora).
import PackageDescription

let package = Package(
    name: "clickd-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "clickd", path: "../..")],
    targets: [
        // `clickd-fuzz TARGET …`: every target of FuzzHarness behind one libFuzzer driver.
        .executableTarget(name: "clickd-fuzz", dependencies: [.product(name: "FuzzHarness", package: "clickd")])
    ]
)
