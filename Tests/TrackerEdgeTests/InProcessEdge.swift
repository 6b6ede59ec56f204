import ClickdTestSupport
import EventLog
import Foundation
import LinkTracking
import Logging
import ServiceLifecycle
import TrackerEdge

/// An edge built by `buildEdge` — the composition root `clickd edge` calls — and run in this
/// process: a real port, a real log in a temporary directory, a fixed clock, no signals
/// (`stop` shuts it down as SIGTERM does). For the click route's behaviour; what needs a
/// process (kill -9, real signals, sd_notify) stays in ClickdCommandTests.
final class InProcessEdge: Sendable {
    static let activeSecret = [UInt8](repeating: 0x5a, count: 32)
    static let retiredSecret = [UInt8](repeating: 0x6b, count: 32)
    static let signer = try! KeyRing(keys: [KeyRing.makeKey(kid: "live", secret: activeSecret, created: "2026-11-01T00:00:00Z")])
    static let retiredSigner = try! KeyRing(keys: [KeyRing.makeKey(kid: "old", secret: retiredSecret, created: "2026-01-01T00:00:00Z")])
    /// The edge's ring: the active key and a retired one (as ClickdCommandTests/EdgeTests' file).
    static let ring = try! KeyRing.parse(
        "key live \(base64url(activeSecret)) 2026-11-01T00:00:00Z active\nkey old \(base64url(retiredSecret)) 2026-01-01T00:00:00Z retired\n")

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
    /// The time every click is taken at: 2026-12-01T00:00:00.250Z.
    static let clock: UInt64 = 1_764_547_200_250

    let directory: TemporaryDirectory
    let edge: Edge
    private let running: Task<Void, any Error>
    let adminPort: Int

    var port: Int { edge.port }
    var log: String { directory.appending("log") }

    init(configure: (inout EdgeSetup) -> Void = { _ in }) async throws {
        directory = try TemporaryDirectory("clickd-edge-in-process")
        var configuration = EdgeConfiguration(edgeID: "test-edge")
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.threads = 2
        var admin = AdminServer.Settings(base: "https://t.example.com")
        admin.port = 0
        var setup = EdgeSetup(logDirectory: directory.appending("log"), keyRing: Self.ring, edge: configuration, admin: admin)
        setup.now = { Self.clock }
        setup.stopSignals = []
        configure(&setup)
        edge = try await buildEdge(setup, logger: Logger(label: "test.edge"))
        let services = edge.services
        running = Task { try await services.run() }
        adminPort = try await edge.adminPort()
    }

    /// The value of one Prometheus sample, as the admin listener's /metrics would serve it —
    /// read from the registry itself: the tests' blocking sockets run on Swift's cooperative
    /// threads, which the admin listener's handlers need too.
    func metric(_ sample: String) -> Double? {
        HTTPTestConnection.sample(sample, in: String(decoding: edge.counters.registry.emitToBuffer(), as: UTF8.self))
    }

    /// Stops the edge as SIGTERM does and waits until it has (the log closed).
    func stop() async throws {
        await edge.services.triggerGracefulShutdown()
        try await running.value
    }

    deinit { directory.remove() }

    /// Every event in the log (after `stop`, or what is durable so far).
    func events() throws -> [TrackingEvent] {
        try LogReader(directory: log).readToEnd().map { try EventCodec.decode($0.payload) }
    }

    func clicks() throws -> [ClickEvent] {
        try events().compactMap { if case .click(let c) = $0 { return c } else { return nil } }
    }

    static func token(_ destination: String = "https://example.com/landing", delivery: String = "d-1", signer: KeyRing = signer) -> String {
        try! signer.sign(
            LinkToken(
                destination: destination, deliveryID: delivery, customerID: "c-1", sourceKind: .campaign,
                sourceID: "17", messageType: .email, linkID: "hero", issuedAt: 1_790_000_000))
    }
}
