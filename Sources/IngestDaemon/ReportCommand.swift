import ArgumentParser
import Foundation
import Logging
import ReportServer

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Serve the report pages: sources, a source's overview and Top Clicked Links, the clicked-link segment, a person's activity.",
        discussion: """
            Server-rendered HTML (no JavaScript, a strict Content-Security-Policy) over the \
            views of schema clickd, every table with a CSV twin (the same URL with .csv). It \
            refuses to start, with one line, when its database role can write to any table \
            of clickd or clickd_internal (on a Citus coordinator: there or on any worker): \
            connect as a login role that can only read (GRANT clickd_analyst TO …). Loopback by default; with --auth-file every page asks for \
            a user and password (htpasswd lines made by `htpasswd -B`, bcrypt). SIGTERM \
            finishes the requests in flight and exits. Under systemd (Type=notify) it sends \
            READY, WATCHDOG and STOPPING. Each request is one log line naming the client; from a \
            --trust-proxy peer, X-Forwarded-For names it and X-Forwarded-Prefix is put before \
            --base-path in every link the pages write. docs/report.md describes the pages and \
            their URLs.
            """
    )

    @OptionGroup var db: DatabaseOptions

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "host:port"))
    var listen: String = "127.0.0.1:8090"

    @Option(help: ArgumentHelp("Prefix of every URL, for a proxy that mounts the report below a path (e.g. /clicks).", valueName: "path"))
    var basePath: String = ""

    /// From these peers, X-Forwarded-For names the client in the log and X-Forwarded-Prefix
    /// goes before --base-path in every link.
    @OptionGroup var proxies: TrustProxyOptions

    @Option(help: ArgumentHelp("htpasswd file of users with bcrypt passwords (htpasswd -B); every page then asks for one.", valueName: "file"))
    var authFile: String?

    @Flag(help: "Listen on a non-loopback address without --auth-file (for a proxy that authenticates).")
    var allowUnauthenticated = false

    @Option(help: ArgumentHelp("Database connections (each on a thread of its own).", valueName: "n"))
    var connections: Int = 4

    func validate() throws {
        guard let (host, _) = EdgeCommand.split(listen) else { throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8090") }
        guard ReportSetup.validBasePath(basePath) else {
            throw ValidationError("--base-path must be empty or /segment[/segment…] without a trailing /, e.g. /clicks")
        }
        guard (1...64).contains(connections) else { throw ValidationError("--connections must be from 1 to 64") }
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard loopback || authFile != nil || allowUnauthenticated else {
            throw ValidationError(
                "--listen \(listen) is not a loopback address: give --auth-file, or --allow-unauthenticated if a proxy in front authenticates")
        }
    }

    func run() async throws {
        try await runReportingErrors {
            let signals = EarlySignals()
            let logger = Logger(label: "clickd.report")
            var setup = ReportSetup(conninfo: db.conninfo)
            (setup.host, setup.port) = EdgeCommand.split(listen)!
            setup.basePath = basePath
            setup.connections = connections
            setup.trustedProxies = proxies.ranges
            setup.version = Clickd.version
            setup.environment = ProcessInfo.processInfo.environment
            if let authFile { setup.auth = try AuthFile(path: authFile) }
            let report = try await buildReport(setup, logger: logger)
            await signals.handOver(to: report.services)
            try await report.services.run()
            logger.info("stopped")
        }
    }
}
