import ArgumentParser
import Dispatch
import EventLog
import Foundation
import LinkTracking
import LogArchive
import Logging
import Metrics
import Prometheus
import Systemd
import TrackerEdge

extension EdgeConfiguration.IPMode: ExpressibleByArgument {}
extension EdgeConfiguration.Durability: ExpressibleByArgument {}

struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge",
        abstract: "Run the tracker edge: verify link tokens, record clicks, answer 302.",
        discussion: """
            GET /c/TOKEN verifies the token against the key ring, appends a click to the log \
            in DIR and answers 302 with Location set to the signed destination (HEAD is \
            answered the same way and recorded as a prefetch). A token that does not verify \
            gets a 404 page and is never redirected. By default the 302 goes out once the \
            click is on disk (group commit); if the log cannot be written the person is \
            still redirected and the loss is counted and logged.

            Signals: SIGTERM or SIGINT stop accepting, finish the clicks in flight, make them \
            durable and close the log; SIGHUP reloads the key ring from --keys.

            The admin listener (--admin-listen, loopback by default) serves GET /healthz (200 \
            while the log takes appends), GET /metrics (Prometheus text) and POST /v1/messages \
            (bearer token from --admin-token-file): it rewrites a JSON message exactly as \
            'clickd links rewrite --json' does, with --base as the tracking base, and records \
            a delivered event.

            Under systemd (Type=notify) it sends READY, WATCHDOG (while the log takes appends) \
            and STOPPING.
            """
    )

    @Option(help: ArgumentHelp("The log directory (created if missing; its parent must exist).", valueName: "dir"))
    var log: String

    @Option(help: ArgumentHelp("The key-ring file.", valueName: "file"))
    var keys: String

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "host:port"))
    var listen: String = "0.0.0.0:8080"

    @Option(help: ArgumentHelp("Client address recorded: full, truncated (IPv4 /24, IPv6 /48) or none.", valueName: "mode"))
    var ip: EdgeConfiguration.IPMode = .truncated

    /// From these peers, X-Forwarded-For names the client whose address a click records.
    @OptionGroup var proxies: TrustProxyOptions

    @Option(help: ArgumentHelp("durable: 302 after the click is on disk; none: 302 at once, click appended behind it.", valueName: "mode"))
    var durability: EdgeConfiguration.Durability = .durable

    @Option(help: ArgumentHelp("This edge's id, written into every click (default: the host name).", valueName: "id"))
    var edgeId: String?

    @Option(help: ArgumentHelp("Longest wait, in microseconds, for more clicks to join a group commit.", valueName: "us"))
    var commitDelay: Int = 0

    @Option(
        help: ArgumentHelp(
            "Seconds after its first click that a segment is sealed even if not full, bounding what a lost disk can lose (0: seal only when full).",
            valueName: "s"))
    var sealAfter: Double = 60

    @Option(help: ArgumentHelp("Segment size in MiB: a segment is sealed when the next write would pass it.", valueName: "mib"))
    var segmentSize: Int = 64

    @Option(
        help: ArgumentHelp(
            "Archive each sealed segment into DIR/<log id>/ (a mounted filesystem: copy, fsync, rename, fsync the directory).",
            valueName: "dir"))
    var archiveDir: String?

    @Option(
        help: ArgumentHelp(
            "Archive each sealed segment by running CMD under /bin/sh (%p its path, %f its file name, %l the log id, %% a %); exit 0 only once the copy is durable, and succeed for an identical re-archive. Failures are retried forever.",
            valueName: "cmd"))
    var archiveCommand: String?

    @Option(help: ArgumentHelp("Seconds an archive command may run before it is stopped (and retried).", valueName: "s"))
    var archiveTimeout: Double = 300

    @Option(
        help: ArgumentHelp(
            "With --archive-command: replace an archived segment by its rewrite (erasure) by running CMD under /bin/sh (%p the new file, %f the segment's name, %l the log id, %% a %). It must replace the object atomically (an S3 PUT does; with bucket versioning, also expire the old version). Without it, archived copies that hold erased people are reported, not rewritten.",
            valueName: "cmd"))
    var archiveReplaceCommand: String?

    @OptionGroup var restore: RestoreCommandOptions

    @Option(
        help: ArgumentHelp(
            "Remove a sealed segment from this disk once it is archived, projected by every database following the log (their files in DIR/followers/) and sealed this long ago: 90s, 30m, 1h, 7d (default 1h when archiving; without an archive nothing is removed unless this is given).",
            valueName: "age"))
    var keepLocal: String?

    @Option(
        help: ArgumentHelp(
            "The bound on forgetting: an erased person's records must be gone from every sealed segment and the archive this long after the erasure was asked for (90s, 30m, 1h, 7d); past it the edge logs an error and /metrics shows clickd_erasure_overdue 1. Needs a --seal-after under it.",
            valueName: "age"))
    var eraseWithin: String = "7d"

    @Option(help: ArgumentHelp("Event-loop threads for the click listener (default: one per core).", valueName: "n"))
    var threads: Int?

    @Option(help: ArgumentHelp("Address of the admin listener (/v1/messages, /healthz, /metrics); keep it private.", valueName: "host:port"))
    var adminListen: String = "127.0.0.1:8081"

    @Option(help: ArgumentHelp("File holding the bearer token for POST /v1/messages (without it that route answers 403).", valueName: "file"))
    var adminTokenFile: String?

    @Option(help: ArgumentHelp("Tracking base for messages rewritten through the admin API, e.g. https://t.example.com.", valueName: "url"))
    var base: String?

    @Option(
        help: ArgumentHelp(
            "Open client connections at most; at the cap new ones wait in the listen backlog (lowered to what the descriptor limit allows).",
            valueName: "n"))
    var maxConnections: Int = 16_384

    @Option(help: ArgumentHelp("Seconds a client has to send a whole request head from its first byte (then 408 and close).", valueName: "s"))
    var headTimeout: Double = 10

    @Option(help: ArgumentHelp("Seconds a client may leave its answers unread before its connection is closed.", valueName: "s"))
    var writeTimeout: Double = 10

    @Option(help: ArgumentHelp("Pipelined requests answered ahead of the client reading them, per connection.", valueName: "n"))
    var maxPipelined: Int = 32

    @Option(
        help: ArgumentHelp(
            "Apple's Private Relay egress ranges (egress-ip-ranges.csv from mask-api.icloud.com): opens fetched from them are Apple MPP's. Reloaded on SIGHUP.",
            valueName: "file"))
    var appleEgress: String?

    func validate() throws {
        guard (1...10_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1 to 10000000") }
        guard (0.1...3600).contains(headTimeout) else { throw ValidationError("--head-timeout must be 0.1 to 3600 seconds") }
        guard (0.1...3600).contains(writeTimeout) else { throw ValidationError("--write-timeout must be 0.1 to 3600 seconds") }
        guard (1...1024).contains(maxPipelined) else { throw ValidationError("--max-pipelined must be 1 to 1024") }
        guard Self.split(listen) != nil else { throw ValidationError("--listen must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080") }
        guard Self.split(adminListen) != nil else { throw ValidationError("--admin-listen must be HOST:PORT, e.g. 127.0.0.1:8081") }
        if adminTokenFile != nil, base == nil { throw ValidationError("--admin-token-file needs --base (the tracking base for rewritten messages)") }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be 1 to 256") }
        guard sealAfter == 0 || (0.1...86_400).contains(sealAfter) else {
            throw ValidationError("--seal-after must be 0 (off) or 0.1 to 86400 seconds")
        }
        guard (1...4096).contains(segmentSize) else { throw ValidationError("--segment-size must be 1 to 4096 MiB") }
        guard commitDelay >= 0, commitDelay <= 100_000 else { throw ValidationError("--commit-delay must be 0 to 100000 microseconds") }
        if archiveDir != nil, archiveCommand != nil { throw ValidationError("give --archive-dir or --archive-command, not both") }
        guard (1...86_400).contains(archiveTimeout) else { throw ValidationError("--archive-timeout must be 1 to 86400 seconds") }
        _ = try archiveConfiguration()
    }

    /// The archiver's configuration from the options. Every edge runs the archiver: without
    /// an archive and --keep-local it ships and removes nothing, but still makes followers/
    /// and erasures/ and rewrites the sealed segments that hold erased people.
    func archiveConfiguration() throws -> ArchiverConfiguration {
        var configuration: ArchiverConfiguration
        if let archiveDir {
            guard FileSystem.isDirectory(archiveDir) else {
                throw ValidationError("--archive-dir \(archiveDir) is not a directory (create it, or mount the archive there)")
            }
            configuration = ArchiverConfiguration(destination: .directory(DirectoryArchive(root: archiveDir)))
        } else if let archiveCommand {
            do {
                let template = try CommandTemplate(archiveCommand, placeholders: ArchiverConfiguration.commandPlaceholders)
                configuration = ArchiverConfiguration(destination: .command(template))
            } catch {
                throw ValidationError("--archive-command: \(error)")
            }
        } else {
            configuration = ArchiverConfiguration(destination: .none)
        }
        if let keepLocal {
            guard let age = AgeArgument.parse(keepLocal) else {
                throw ValidationError("--keep-local must be an age such as 90s, 30m, 1h or 7d (not \(keepLocal))")
            }
            configuration.keepLocal = age
        } else if configuration.destination != .none {
            configuration.keepLocal = .seconds(3600)
        }
        guard let within = AgeArgument.parse(eraseWithin), within >= .seconds(1) else {
            throw ValidationError("--erase-within must be an age of 1s or more such as 90s, 30m, 1h or 7d (not \(eraseWithin))")
        }
        // The open segment is never rewritten: it must seal well within the bound.
        guard sealAfter > 0, within > .milliseconds(Int64(sealAfter * 2000)) else {
            throw ValidationError(
                "--erase-within \(eraseWithin) needs --seal-after under half of it (now \(sealAfter == 0 ? "0, off" : "\(sealAfter) s")): the open segment is rewritten only once it is sealed"
            )
        }
        configuration.eraseWithin = within
        configuration.commandTimeout = .milliseconds(Int64(archiveTimeout * 1000))
        if archiveReplaceCommand != nil || restore.restoreCommand != nil {
            guard archiveCommand != nil else {
                throw ValidationError(
                    "--archive-replace-command and --restore-command are for an --archive-command archive (an --archive-dir archive is rewritten in place)"
                )
            }
        }
        if let archiveReplaceCommand {
            do {
                configuration.replaceCommand = try CommandTemplate(archiveReplaceCommand, placeholders: ArchiverConfiguration.commandPlaceholders)
            } catch {
                throw ValidationError("--archive-replace-command: \(error)")
            }
        }
        configuration.restore = try restore.source()?.0
        return configuration
    }

    /// Secrets readable by every user of the machine are worth a loud line at start (the
    /// edge still starts: refusing would break every link of a working installation).
    static func warnIfReadableByOthers(_ path: String, what: String, logger: Logger) {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & 0o004 != 0 else { return }
        logger.warning(
            "\(what) is readable by every user of this machine: chmod o-r it (600, or 640 for a group)",
            metadata: ["file.path": "\(path)", "file.mode": "\(String(st.st_mode & 0o777, radix: 8))"])
    }

    static func split(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        try await runReportingErrors {
            // First of all: a stop signal from here on is kept for the service group, and a
            // SIGHUP before the key-ring reloader traps it is ignored, not fatal.
            let signals = EarlySignals(ignoringHangup: true)
            let logger = Logger(label: "clickd.edge")
            let ring = try LinkOptions.loadKeyRing(path: keys)
            if ring.signingKey == nil { logger.warning("every key in the key ring is retired: no link verifies") }
            Self.warnIfReadableByOthers(keys, what: "the key ring", logger: logger)
            if let adminTokenFile { Self.warnIfReadableByOthers(adminTokenFile, what: "the admin token file", logger: logger) }
            var adminToken: String?
            if let adminTokenFile {
                guard let text = try? String(contentsOfFile: adminTokenFile, encoding: .utf8),
                    case let token = text.trimmingCharacters(in: .whitespacesAndNewlines), token.count >= 16
                else { throw ValidationFailure("cannot read an admin token of at least 16 characters from \(adminTokenFile)") }
                adminToken = token
            }
            var configuration = EdgeConfiguration(edgeID: edgeId ?? ProcessInfo.processInfo.hostName)
            (configuration.host, configuration.port) = Self.split(listen)!
            configuration.ipMode = ip
            if let threads { configuration.threads = threads }
            configuration.trustedProxies = proxies.ranges
            configuration.durability = durability
            configuration.headTimeout = .milliseconds(Int64(headTimeout * 1000))
            configuration.writeTimeout = .milliseconds(Int64(writeTimeout * 1000))
            configuration.maxPendingAnswers = maxPipelined
            let descriptors = FileDescriptorLimit.raiseToHard()
            configuration.maxConnections = FileDescriptorLimit.connectionCap(requested: maxConnections, descriptorLimit: descriptors)
            if configuration.maxConnections < maxConnections {
                logger.warning(
                    "the descriptor limit allows fewer connections than --max-connections: raise LimitNOFILE (systemd) or ulimit -n",
                    metadata: ["edge.max_connections": "\(configuration.maxConnections)", "process.nofile": "\(descriptors)"])
            }
            var admin = AdminServer.Settings(base: base ?? "")
            (admin.host, admin.port) = Self.split(adminListen)!
            admin.token = adminToken
            var setup = EdgeSetup(logDirectory: log, keyRing: ring, edge: configuration, admin: admin)
            setup.keysPath = keys
            setup.loadKeyRing = { try LinkOptions.loadKeyRing(path: $0) }
            setup.log.maxBatchDelay = .microseconds(commitDelay)
            setup.log.sealAfter = .milliseconds(Int64(sealAfter * 1000))
            setup.log.segmentSize = Int64(segmentSize) << 20
            setup.environment = ProcessInfo.processInfo.environment
            setup.archive = try archiveConfiguration()
            if let appleEgress {
                do {
                    setup.appleEgress = try setup.loadAppleEgress(appleEgress)
                } catch {
                    throw ValidationFailure("--apple-egress \(appleEgress): \(error)")
                }
                setup.appleEgressPath = appleEgress
                logger.info("Apple egress ranges loaded", metadata: ["file.path": "\(appleEgress)", "ranges": "\(setup.appleEgress.count)"])
            }
            if setup.archive?.destination == ArchiverConfiguration.Destination.none, setup.archive?.keepLocal == nil {
                logger.notice("sealed segments are not archived: give --archive-dir or --archive-command")
            } else if setup.archive?.destination == ArchiverConfiguration.Destination.none {
                logger.warning(
                    "--keep-local without an archive: removed segments are gone for good, and a rebuild replays only what is still on this disk")
            }
            let edge = try await buildEdge(setup, logger: logger)
            // One registry for the edge's own metrics and anything reported through swift-metrics.
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: edge.counters.registry))
            await signals.handOver(to: edge.services)
            try await edge.services.run()
            logger.info("stopped")
        }
    }
}
