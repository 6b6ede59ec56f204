import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM and SIGINT ask a long command to stop at its next safe point (after the batch
/// in flight) instead of ending the process.
// @unchecked: `sources` is set once in init and only cancelled in deinit.
final class StopRequest: @unchecked Sendable {
    private final class Flag: Sendable { let value = Atomic<Bool>(false) }
    private let flag = Flag()
    private let sources: [any DispatchSourceSignal]

    init() {
        for number in [SIGTERM, SIGINT] { signal(number, SIG_IGN) }
        let flag = self.flag
        sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { flag.value.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
    }

    deinit { for source in sources { source.cancel() } }

    var requested: Bool { flag.value.load(ordering: .relaxed) }
}
