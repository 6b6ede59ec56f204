import ArgumentParser
import Dispatch
import EventLog
import Foundation
import LinkTracking
import Logging
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

            Under systemd (Type=notify) it sends READY, WATCHDOG (while the log takes appends) \
            and STOPPING. Not yet here (issue 4 continues): the admin listener \
            (POST /v1/messages, /healthz, /metrics) and --trust-proxy.
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

    @Option(help: ArgumentHelp("durable: 302 after the click is on disk; none: 302 at once, click appended behind it.", valueName: "mode"))
    var durability: EdgeConfiguration.Durability = .durable

    @Option(help: ArgumentHelp("This edge's id, written into every click (default: the host name).", valueName: "id"))
    var edgeId: String?

    @Option(help: ArgumentHelp("Longest wait, in microseconds, for more clicks to join a group commit.", valueName: "us"))
    var commitDelay: Int = 0

    func validate() throws {
        guard Self.split(listen) != nil else { throw ValidationError("--listen must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080") }
        guard commitDelay >= 0, commitDelay <= 100_000 else { throw ValidationError("--commit-delay must be 0 to 100000 microseconds") }
    }

    static func split(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        try await runReportingErrors {
            let logger = Logger(label: "clickd.edge")
            let ring = try LinkOptions.loadKeyRing(path: keys)
            if ring.signingKey == nil { logger.warning("every key in the key ring is retired: no link verifies") }
            var logConfiguration = EventLogConfiguration()
            logConfiguration.maxBatchDelay = .microseconds(commitDelay)
            let writer = try EventLogWriter(directory: log, configuration: logConfiguration, logger: Logger(label: "clickd.log"))
            var configuration = EdgeConfiguration(edgeID: edgeId ?? ProcessInfo.processInfo.hostName)
            (configuration.host, configuration.port) = Self.split(listen)!
            configuration.ipMode = ip
            configuration.durability = durability
            let store = KeyRingStore(ring)
            let server: EdgeServer
            do {
                server = try await EdgeServer(configuration: configuration, keys: store, writer: writer, logger: logger)
            } catch {
                writer.close()
                throw error
            }
            let systemd = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
            systemd.notify("READY=1\nSTATUS=answering clicks on \(listen)")
            // The watchdog is fed while the log still takes appends (a failed sync makes
            // the writer refuse them: then systemd restarts the edge, which recovers the log).
            let watchdog = systemd.watchdogInterval.map { interval in
                Task {
                    while !Task.isCancelled {
                        if writer.isAcceptingAppends { systemd.notify("WATCHDOG=1") }
                        try? await Task.sleep(for: interval)
                    }
                }
            }
            let signal = await SignalWaiter.wait(reloading: keys, into: store, logger: logger)
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            systemd.notify("STOPPING=1")
            watchdog?.cancel()
            await server.shutdown()
            writer.close()
        }
    }
}

/// Waits for SIGTERM or SIGINT (returned), reloading the key ring on every SIGHUP meanwhile.
enum SignalWaiter {
    static func wait(reloading keysPath: String, into store: KeyRingStore, logger: Logger) async -> String {
        await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            let queue = DispatchQueue(label: "clickd.signals")
            var sources: [DispatchSourceSignal] = []
            let resumed = NSLock()
            nonisolated(unsafe) var done = false
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGHUP, "SIGHUP")] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler {
                    if number == SIGHUP {
                        do {
                            store.replace(with: try LinkOptions.loadKeyRing(path: keysPath))
                            logger.info("key ring reloaded", metadata: ["keys.path": "\(keysPath)"])
                        } catch {
                            logger.error("key ring NOT reloaded; the previous one stays in use", metadata: ["error": "\(error)"])
                        }
                        return
                    }
                    resumed.lock()
                    defer { resumed.unlock() }
                    if !done {
                        done = true
                        continuation.resume(returning: name)
                    }
                }
                source.resume()
                sources.append(source)
            }
            // Keep the sources alive for the life of the process.
            nonisolated(unsafe) let keep = sources
            queue.async { _ = keep }
            SignalWaiter.retained = keep
        }
    }

    nonisolated(unsafe) static var retained: [DispatchSourceSignal] = []
}
