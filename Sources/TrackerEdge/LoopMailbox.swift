import EventLog
import NIOConcurrencyHelpers
import NIOCore

/// Hands work from the log's completion thread to one event loop, waking the loop once
/// per burst instead of once per click: a group commit resumes a hundred clicks at once,
/// and one `execute` then answers all of those on this loop (measured: bench/edge.sh).
final class LoopMailbox: @unchecked Sendable {
    let loop: any EventLoop
    private let lock = NIOLock()
    // Guarded by `lock`.
    private var pending: [@Sendable () -> Void] = []
    private var scheduled = false

    /// Whether a wake-up of the log's flusher is already scheduled on this loop. Touched only
    /// on the loop's own thread.
    private var flusherWakeScheduled = false

    init(loop: any EventLoop) { self.loop = loop }

    /// Wakes `writer`'s flusher once, after this loop has handled every request of the
    /// current burst of reads (a task executed from the loop runs after its I/O). Call on
    /// the loop, after appending with `wakeLater`.
    func wakeFlusherAfterBurst(_ writer: EventLogWriter) {
        loop.assertInEventLoop()
        guard !flusherWakeScheduled else { return }
        flusherWakeScheduled = true
        loop.execute {
            self.flusherWakeScheduled = false
            writer.wakeFlusher()
        }
    }

    /// Runs `work` on the loop soon, in order with everything else posted.
    func post(_ work: @escaping @Sendable () -> Void) {
        let schedule = lock.withLock {
            pending.append(work)
            if scheduled { return false }
            scheduled = true
            return true
        }
        if schedule { loop.execute { self.drain() } }
    }

    private func drain() {
        var work: [@Sendable () -> Void] = []
        lock.withLock {
            swap(&work, &pending)
            scheduled = false
        }
        for item in work { item() }
    }
}
