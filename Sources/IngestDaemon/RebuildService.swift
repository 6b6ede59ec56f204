import EventLog
import Projections
import ServiceLifecycle

/// `clickd rebuild`'s work as a `Service`, in a service group that owns SIGTERM and SIGINT
/// (docs/design/lifecycle.md): graceful shutdown (or cancellation) asks the work to stop —
/// the replay stops after its batch in flight, and the rebuild is abandoned. The work
/// blocks (libpq, worker threads), so it runs on a thread of its own.
struct RebuildService: Service {
    /// The rebuild, given a function that says whether to stop.
    let work: @Sendable (_ shouldStop: @escaping @Sendable () -> Bool) throws -> Void

    func run() async throws {
        let stop = StopFlag()
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await BlockingThread.run(name: "clickd-rebuild") { try work { stop.isSet } }
        } onCancelOrGracefulShutdown: {
            stop.set()
        }
    }
}
