import LinkTracking
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the edge's files on SIGHUP (a `Service` of the edge's group): the key ring and,
/// when given, Apple's egress ranges. A file that does not load leaves the value in use as
/// it is, with an error line: a bad edit never breaks links. The signal is trapped when the
/// reloader is made — before the edge says READY — so a SIGHUP sent as soon as the edge
/// answers is never met by the default action (which ends the process: the bug 0b56aca fixed).
struct HangupReloader: Service {
    /// One file the reloader reads again: what it is called in the log, and how it is
    /// read and swapped in.
    struct File: Sendable {
        let name: String
        let path: String
        let reload: @Sendable () throws -> Void

        /// A file whose parsed value replaces `store`'s.
        static func into<Value>(_ store: Swappable<Value>, name: String, path: String, load: @escaping @Sendable () throws -> Value) -> File {
            File(name: name, path: path) { store.replace(with: try load()) }
        }
    }

    let files: [File]
    let logger: Logger
    private let hangups: UnixSignalsSequence

    init(files: [File], logger: Logger) async {
        self.files = files
        self.logger = logger
        hangups = await UnixSignalsSequence(trapping: .sighup)
    }

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() { reload() }
    }

    /// Loads each file and swaps its value in whole, or keeps the old one.
    func reload() {
        for file in files {
            do {
                try file.reload()
                logger.info("\(file.name) reloaded", metadata: ["file.path": "\(file.path)"])
            } catch {
                logger.error(
                    "\(file.name) NOT reloaded; the previous one stays in use", metadata: ["error": "\(error)", "file.path": "\(file.path)"])
            }
        }
    }
}
