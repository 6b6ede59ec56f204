import Dispatch
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the stop signals (SIGTERM, SIGINT) that arrive while a daemon starts, before its
/// service group runs and installs its own handlers (docs/design/lifecycle.md): without
/// this, such a signal meets the default action and ends the process on the spot (the bug
/// 0b56aca fixed for the edge). Made first thing; `handOver` gives the group any stop that
/// came, and every later one (the group then handles them itself as well: a second
/// graceful-shutdown request is ignored).
// @unchecked: `sources` is set once in init and only read by deinit; `state` is a Mutex.
final class EarlySignals: @unchecked Sendable {
    private enum State {
        case starting(stopRequested: Bool)
        case running(ServiceGroup)
    }
    private let state = Mutex(State.starting(stopRequested: false))
    private var sources: [any DispatchSourceSignal] = []

    /// `ignoringHangup`: SIGHUP, which a daemon traps later (the edge's key-ring reloader),
    /// is ignored until then instead of ending the process.
    init(ignoringHangup: Bool = false) {
        if ignoringHangup { signal(SIGHUP, SIG_IGN) }
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.stopRequested() }
            source.resume()
            sources.append(source)
        }
    }

    deinit { for source in sources { source.cancel() } }

    private func stopRequested() {
        let group: ServiceGroup? = state.withLock { state in
            switch state {
            case .starting:
                state = .starting(stopRequested: true)
                return nil
            case .running(let group): return group
            }
        }
        if let group { Task { await group.triggerGracefulShutdown() } }
    }

    /// From now on stop signals shut `group` down gracefully; one that came already does so
    /// as soon as it runs.
    func handOver(to group: ServiceGroup) async {
        let requested = state.withLock { state in
            defer { state = .running(group) }
            if case .starting(let requested) = state { return requested }
            return false
        }
        if requested { await group.triggerGracefulShutdown() }
    }
}
