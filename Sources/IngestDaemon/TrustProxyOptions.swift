import ArgumentParser
import LinkTracking

/// `--trust-proxy`, shared by the edge and the report so that it means one thing: the peers
/// whose `X-Forwarded-*` headers are believed (docs/edge.md, docs/report.md).
struct TrustProxyOptions: ParsableArguments {
    @Option(
        name: .customLong("trust-proxy"), parsing: .upToNextOption,
        help: ArgumentHelp(
            "Proxies (addresses or CIDR ranges, by spaces or commas) whose X-Forwarded-* headers are believed, e.g. 10.0.0.0/8 ::1.",
            valueName: "cidr"))
    var trustProxy: [String] = []

    func validate() throws {
        if case .failure(let bad) = CIDR.list(trustProxy) { throw ValidationError("--trust-proxy: \(bad)") }
    }

    /// The ranges (valid once `validate` passed).
    var ranges: [CIDR] { (try? CIDR.list(trustProxy).get()) ?? [] }
}
