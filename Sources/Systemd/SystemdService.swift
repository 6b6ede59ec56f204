import ServiceLifecycle

/// A daemon's conversation with systemd (`Type=notify`) as a `Service`: `READY=1` when the
/// service group runs it and `ready` has returned — after every other part was built and
/// the group's signal handlers were installed — `WATCHDOG=1` every half interval systemd asked for while `alive` says
/// so, and `STOPPING=1` as soon as graceful shutdown begins. Put it last in the group: the
/// group stops services in reverse order, so systemd hears STOPPING before anything stops.
public struct SystemdService: Service {
    public let notifier: SystemdNotifier
    /// The `STATUS=` sent with READY.
    public let status: String
    /// Whether the daemon can still do its work (the watchdog is fed only then; when it
    /// stops being fed, systemd restarts the daemon).
    public let alive: @Sendable () -> Bool
    /// Returns once the daemon serves (a listener the group starts has bound); throws if it
    /// cannot — then READY is never sent and the group ends with that error.
    public let ready: @Sendable () async throws -> Void

    public init(
        notifier: SystemdNotifier, status: String, alive: @escaping @Sendable () -> Bool = { true },
        ready: @escaping @Sendable () async throws -> Void = {}
    ) {
        self.notifier = notifier
        self.status = status
        self.alive = alive
        self.ready = ready
    }

    public func run() async throws {
        try await ready()
        notifier.notify("READY=1\nSTATUS=\(status)")
        let notifier = self.notifier
        await withGracefulShutdownHandler {
            guard let interval = notifier.watchdogInterval else {
                try? await gracefulShutdown()
                return
            }
            // Cancelled (the sleep ends) when graceful shutdown begins.
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    if alive() { notifier.notify("WATCHDOG=1") }
                    try? await Task.sleep(for: interval)
                }
            }
        } onGracefulShutdown: {
            notifier.notify("STOPPING=1")
        }
    }
}
