import ServiceLifecycle
import Synchronization

/// `clickd ingest` as a `Service`: follows the logs (`Ingestor.run`, on its workers' threads)
/// until graceful shutdown, which stops each worker after its batch in flight has committed
/// (and wakes one waiting for records at once). Cancellation stops it the same way.
// @unchecked: the ingestor is used by `run` alone, on one task; the rest is Sendable.
public final class IngestService: Service, @unchecked Sendable {
    private let ingestor: Ingestor
    /// Told each change of state after the first ("ingesting", or why it is failing).
    private let status: @Sendable (String) -> Void
    private let lastHeartbeat = Mutex(ContinuousClock.now)

    public init(ingestor: Ingestor, status: @escaping @Sendable (String) -> Void = { _ in }) {
        self.ingestor = ingestor
        self.status = status
    }

    /// Whether the loop has turned within `window` (it does at least every 100 ms while it
    /// runs, also while PostgreSQL is down and it retries: the daemon is alive then).
    public func turned(within window: Duration) -> Bool {
        ContinuousClock.now - lastHeartbeat.withLock { $0 } < window
    }

    public func run() async throws {
        let stop = StopFlag()
        // The state READY carried: only changes from it are told.
        let told = Mutex("ingesting")
        await withTaskCancellationOrGracefulShutdownHandler {
            await ingestor.run(
                shouldStop: { stop.isSet },
                heartbeat: { self.lastHeartbeat.withLock { $0 = .now } },
                state: { state in
                    if told.withLock({ told in
                        defer { told = state }
                        return told != state
                    }) {
                        self.status(state)
                    }
                })
        } onCancelOrGracefulShutdown: {
            stop.set()
        }
    }
}
