import LinkTracking
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads the key ring on SIGHUP (a `Service` of the edge's group). A file that does not
/// load leaves the ring in use as it is, with an error line: a bad edit never breaks links.
/// The signal is trapped when the reloader is made — before the edge says READY — so a
/// SIGHUP sent as soon as the edge answers is never met by the default action (which ends
/// the process: the bug 0b56aca fixed).
struct KeyRingReloader: Service {
    let store: KeyRingStore
    /// Reads and parses the key-ring file.
    let load: @Sendable () throws -> KeyRing
    let path: String
    let logger: Logger
    private let hangups: UnixSignalsSequence

    init(store: KeyRingStore, path: String, logger: Logger, load: @escaping @Sendable () throws -> KeyRing) async {
        self.store = store
        self.path = path
        self.logger = logger
        self.load = load
        hangups = await UnixSignalsSequence(trapping: .sighup)
    }

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() { reload() }
    }

    /// Loads the file and swaps the ring in whole, or keeps the old one.
    func reload() {
        do {
            store.replace(with: try load())
            logger.info("key ring reloaded", metadata: ["keys.path": "\(path)"])
        } catch {
            logger.error("key ring NOT reloaded; the previous one stays in use", metadata: ["error": "\(error)"])
        }
    }
}
