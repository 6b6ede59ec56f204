import EventLog
import ServiceLifecycle

/// Holds the edge's log open while the other services run. It is the first service of the
/// group, so the last one stopped: by then no listener can append, and closing the writer
/// makes every accepted record durable before the log is closed.
struct LogWriterService: Service {
    let writer: EventLogWriter

    func run() async throws {
        try? await gracefulShutdown()
        writer.close()
    }
}
