import EventLog
import Logging
import Synchronization

/// Logs lost clicks loudly but at most once per interval, with the count since the last line.
final class RateLimitedLog: Sendable {
    private let logger: Logger
    private let state = Mutex<(last: ContinuousClock.Instant?, suppressed: Int)>((nil, 0))
    private let interval: Duration

    init(logger: Logger, interval: Duration = .seconds(10)) {
        self.logger = logger
        self.interval = interval
    }

    func note(_ error: LogError) {
        let now = ContinuousClock.now
        let suppressed: Int? = state.withLock { s in
            if let last = s.last, now - last < interval {
                s.suppressed += 1
                return nil
            }
            defer { s = (now, 0) }
            return s.suppressed
        }
        guard let suppressed else { return }
        logger.error(
            "click redirected but NOT recorded: the log cannot be written",
            metadata: [
                "error": "\(error)", "edge.unrecorded_since_last_report": "\(suppressed + 1)",
            ])
    }
}
