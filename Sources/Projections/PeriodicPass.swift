import EventLog
import Logging
import ServiceLifecycle

/// The loop of a daemon's periodic pass (the follower files, activity's months): runs
/// `pass` on a thread of its own every `interval` until a graceful shutdown, and logs a
/// failure once per change of its text (a `warning`), and the recovery once (a `notice`) —
/// a database away for an hour is one line, not 360.
func runPeriodically(
    name: String, interval: Duration, logger: Logger, failure: String, recovered: String,
    _ pass: @escaping @Sendable () throws -> Void
) async {
    await cancelWhenGracefulShutdown {
        var failing: String?
        while !Task.isCancelled {
            do {
                try await BlockingThread.run(name: name) { try pass() }
                if failing != nil { logger.notice("\(recovered)") }
                failing = nil
            } catch {
                let line = "\(error)"
                if line != failing { logger.warning("\(failure)", metadata: ["error": "\(line)"]) }
                failing = line
            }
            try? await Task.sleep(for: interval)
        }
    }
}
