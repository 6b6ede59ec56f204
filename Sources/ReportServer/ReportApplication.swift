import Foundation
import Hummingbird
import LinkTracking
import Logging
import NIOCore
import Projections
import ServiceLifecycle
import Systemd
import UnixSignals

/// Everything that decides how `clickd report` runs: what the command line gives, and
/// what a test sets directly.
public struct ReportSetup: Sendable {
    /// The database: a conninfo or URL (libpq's), for a role that can only read.
    public var conninfo: String
    public var host = "127.0.0.1"
    /// 0 picks a free port (tests).
    public var port = 8090
    /// The prefix of every URL, "" or "/clicks" (no trailing slash).
    public var basePath = ""
    public var auth: AuthFile?
    /// `--trust-proxy`: peers whose `X-Forwarded-For` names the client in the log and whose
    /// `X-Forwarded-Prefix` is put before `--base-path` in every link.
    public var trustedProxies: [CIDR] = []
    /// Database connections, each on a thread of its own.
    public var connections = 4
    public var version = "dev"
    /// Days since the epoch, for the default date range (tests fix it).
    public var today: @Sendable () -> Int = { Int(Date().timeIntervalSince1970 / 86_400) }
    /// NOTIFY_SOCKET and WATCHDOG_USEC, when run by systemd.
    public var environment: [String: String] = [:]
    public var stopSignals: [UnixSignal] = [.sigterm, .sigint]

    public init(conninfo: String) { self.conninfo = conninfo }

    /// A base path as `--base-path` takes it: empty, or `/` then segments, no trailing `/`.
    public static func validBasePath(_ path: String) -> Bool {
        path.isEmpty
            || (path.hasPrefix("/") && !path.hasSuffix("/") && !path.contains("//")
                && path.utf8.allSatisfy { PageContext.unreserved.contains($0) || $0 == UInt8(ascii: "/") })
    }
}

/// A built report server: its service group and how to reach it.
public struct Report: Sendable {
    public let services: ServiceGroup
    public let database: ReportDatabase
    let bound: OneShot<Int>

    /// The port the listener bound, once it listens.
    public func port() async throws -> Int { try await bound.value() }
}

/// The report server's composition root — what `clickd report` and the tests both call:
/// checks the database and the role (a role that can write is refused, one line), then
/// returns the service group: the database's thread pool, the Hummingbird listener, and
/// systemd's notifications (READY once the listener is bound).
public func buildReport(_ setup: ReportSetup, logger: Logger) async throws -> Report {
    guard ReportSetup.validBasePath(setup.basePath) else {
        throw ReportRefusal("--base-path \(setup.basePath): expected empty or /segment[/segment…] without a trailing /")
    }
    let database = ReportDatabase(conninfo: setup.conninfo, threads: setup.connections)
    do {
        try await database.read { db in try ReportStartChecks.check(db) }
    } catch {
        await database.shutdown()
        if error is ReportRefusal { throw error }
        throw ReportRefusal("cannot check the database: \(error)")
    }
    let responder = ReportResponder(
        pages: ReportPages(database: database), base: setup.basePath, version: setup.version, today: setup.today, logger: logger,
        auth: setup.auth, pool: database.pool, trustedProxies: setup.trustedProxies)
    let bound = OneShot<Int>()
    let application = Application(
        responder: CallbackResponder<ReportRequestContext> { request, context in
            await responder.handle(request, peer: context.remoteAddress)
        },
        configuration: .init(address: .hostname(setup.host, port: setup.port), serverName: "clickd-report"),
        onServerRunning: { channel in
            let port = channel.localAddress?.port ?? 0
            logger.info("report listening", metadata: ["report.listen": "\(setup.host):\(port)", "report.base": "\(setup.basePath)/"])
            bound.fulfil(.success(port))
        },
        logger: logger)
    let notifier = SystemdNotifier(environment: setup.environment)
    let systemd = SystemdService(notifier: notifier, status: "serving report pages", ready: { _ = try await bound.value() })
    let services = ServiceGroup(
        configuration: .init(
            services: [
                DatabaseService(database: database), ReportListener(application: application, bound: bound, address: "\(setup.host):\(setup.port)"),
                systemd,
            ], gracefulShutdownSignals: setup.stopSignals,
            logger: logger))
    return Report(services: services, database: database, bound: bound)
}

/// The Hummingbird application, telling `bound` why when it could not listen (the tests and
/// READY wait on it).
struct ReportListener: Service {
    let application: Application<CallbackResponder<ReportRequestContext>>
    let bound: OneShot<Int>
    let address: String

    func run() async throws {
        do {
            try await application.run()
        } catch {
            let listening = ReportRefusal("cannot listen on \(address): \(error)")
            if bound.fulfil(.failure(listening)) { throw listening }
            throw error
        }
        bound.fulfil(.failure(ReportRefusal("the report listener stopped before it listened")))
    }
}

/// Hummingbird's basic context plus the peer's address, which the access log and
/// `--trust-proxy` need (the documented pattern: `RemoteAddressRequestContext`).
struct ReportRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Holds the database's threads and connections for the group's life; closes them last.
struct DatabaseService: Service {
    let database: ReportDatabase

    func run() async throws {
        try? await gracefulShutdown()
        await database.shutdown()
    }
}
