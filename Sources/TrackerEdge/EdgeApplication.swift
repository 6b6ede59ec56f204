import EventLog
import LinkTracking
import LogArchive
import Logging
import ServiceLifecycle
import Systemd
import UnixSignals

/// Everything that decides how an edge runs: what `clickd edge` reads from its command line
/// and files, and what a test sets directly (docs/design/lifecycle.md).
public struct EdgeSetup: Sendable {
    public var logDirectory: String
    public var keyRing: KeyRing
    /// Where SIGHUP reloads the key ring from (`clickd edge --keys`); nil: no reloading, and
    /// SIGHUP is left alone (tests in one process).
    public var keysPath: String?
    /// Reads and parses `keysPath`.
    public var loadKeyRing: @Sendable (String) throws -> KeyRing = { path in
        throw EdgeError("no key-ring loader for \(path)")
    }
    /// Apple's Private Relay egress ranges (`--apple-egress`): an open fetched from one is
    /// recorded with its Apple-relay bit (docs/design/opens.md).
    public var appleEgress = AddressRanges.empty
    /// Where SIGHUP reloads them from; nil: not reloaded.
    public var appleEgressPath: String?
    /// Reads and parses `appleEgressPath`.
    public var loadAppleEgress: @Sendable (String) throws -> AddressRanges = { path in
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw EdgeError("cannot read \(path) as UTF-8 text") }
        return try AddressRanges.parseCSV(text)
    }
    public var edge: EdgeConfiguration
    public var admin: AdminServer.Settings
    public var log = EventLogConfiguration()
    /// Where sealed segments are archived (`--archive-dir`, `--archive-command`); nil: not
    /// archived (docs/design/archive.md).
    public var archive: ArchiverConfiguration?
    /// Milliseconds since the Unix epoch, for the clicks' and deliveries' times.
    public var now: @Sendable () -> UInt64 = EdgeServer.wallClockMilliseconds
    /// NOTIFY_SOCKET and WATCHDOG_USEC, when run by systemd.
    public var environment: [String: String] = [:]
    /// The signals that stop the edge gracefully (none in tests: they call
    /// `ServiceGroup.triggerGracefulShutdown`).
    public var stopSignals: [UnixSignal] = [.sigterm, .sigint]

    public init(logDirectory: String, keyRing: KeyRing, edge: EdgeConfiguration, admin: AdminServer.Settings) {
        self.logDirectory = logDirectory
        self.keyRing = keyRing
        self.edge = edge
        self.admin = admin
    }
}

/// A built edge: its service group, ready to run, and what its callers look at.
public struct Edge: Sendable {
    /// Runs the edge until SIGTERM/SIGINT (or `triggerGracefulShutdown`), then stops it in
    /// order: STOPPING, stop accepting, answer the clicks read, make them durable, close the log.
    public let services: ServiceGroup
    /// The click listener's port (bound by `buildEdge`).
    public let port: Int
    public let counters: EdgeCounters
    public let keys: KeyRingStore
    public let writer: EventLogWriter
    /// The archiver, when the setup archives.
    public let archiver: Archiver?
    let admin: AdminServer

    /// The admin listener's port, once the group runs it and it listens.
    public func adminPort() async throws -> Int { try await admin.port() }
}

/// The edge's composition root — what `clickd edge` and the in-process tests both call:
/// opens (and recovers) the log, binds the click listener, and returns the service group
/// that runs it with the admin listener, the key-ring reloader and systemd's notifications.
/// Services in start order; the group stops them in reverse:
///   archiver · log writer · SIGHUP reloader (key ring, Apple egress ranges) · admin listener · click listener · systemd.
public func buildEdge(_ setup: EdgeSetup, logger: Logger) async throws -> Edge {
    let counters = EdgeCounters()
    var log = setup.log
    let also = log.onBatchDurable
    log.onBatchDurable = { records in
        counters.recordBatch(records)
        also?(records)
    }
    let archiver = setup.archive.map {
        Archiver(
            logDirectory: setup.logDirectory, configuration: $0, metrics: ArchiveMetrics(registry: counters.registry),
            logger: Logger(label: "clickd.archive"))
    }
    if let archiver {
        // Sealed at a graceful stop, the last records are shipped by the archiver's last pass.
        if setup.archive?.destination != ArchiverConfiguration.Destination.none { log.sealOnClose = true }
        let sealed = log.onSegmentSealed
        log.onSegmentSealed = { name in
            archiver.segmentSealed(name)
            sealed?(name)
        }
    }
    let writer = try EventLogWriter(directory: setup.logDirectory, configuration: log, logger: Logger(label: "clickd.log"))
    let keys = KeyRingStore(setup.keyRing)
    let appleEgress = Swappable(setup.appleEgress)
    let server: EdgeServer
    do {
        server = try await EdgeServer(
            configuration: setup.edge, keys: keys, appleEgress: appleEgress, writer: writer, counters: counters, logger: logger,
            now: setup.now)
    } catch {
        writer.close()
        throw error
    }
    let admin = AdminServer(settings: setup.admin, keys: keys, writer: writer, counters: counters, logger: logger, now: setup.now)
    // The archiver before the writer, so that it stops after it: the writer seals its last
    // segment as it closes, and the archiver's last pass ships it.
    var services: [any Service] = []
    if let archiver { services.append(archiver) }
    services.append(LogWriterService(writer: writer))
    var reloaded: [HangupReloader.File] = []
    if let path = setup.keysPath {
        let load = setup.loadKeyRing
        reloaded.append(.into(keys, name: "key ring", path: path) { try load(path) })
    }
    if let path = setup.appleEgressPath {
        let load = setup.loadAppleEgress
        reloaded.append(.into(appleEgress, name: "Apple egress ranges", path: path) { try load(path) })
    }
    if !reloaded.isEmpty { services.append(await HangupReloader(files: reloaded, logger: logger)) }
    let notifier = SystemdNotifier(environment: setup.environment)
    // The watchdog is fed while the log still takes appends (a failed sync makes the writer
    // refuse them: then systemd restarts the edge, which recovers the log).
    let systemd = SystemdService(
        notifier: notifier, status: "answering clicks on \(setup.edge.host):\(server.port)",
        alive: { writer.isAcceptingAppends }, ready: { _ = try await admin.port() })
    services += [admin, ClickListener(server: server), systemd]
    let group = ServiceGroup(
        configuration: .init(services: services, gracefulShutdownSignals: setup.stopSignals, logger: logger))
    return Edge(services: group, port: server.port, counters: counters, keys: keys, writer: writer, archiver: archiver, admin: admin)
}
