#if canImport(Glibc)
    import Glibc
#endif

/// How an appender learns that its record is durable (or why it is not).
enum AppendCompletion {
    /// An async caller suspended in `append`.
    case continuation(UnsafeContinuation<UInt64, Error>)
    /// A callback (`append(_:completion:)`), for callers on an event loop.
    case callback(@Sendable (Result<UInt64, LogError>) -> Void)

    func succeed(_ lsn: UInt64) {
        switch self {
        case .continuation(let c): c.resume(returning: lsn)
        case .callback(let f): f(.success(lsn))
        }
    }

    func fail(_ error: LogError) {
        switch self {
        case .continuation(let c): c.resume(throwing: error)
        case .callback(let f): f(.failure(error))
        }
    }
}

/// One appender waiting for its record to become durable.
struct AppendWaiter {
    var completion: AppendCompletion
    var lsn: UInt64
    /// Offset just past this record's frame in the writer's pending buffer.
    var end: Int
}

/// Resumes appenders on a thread of its own, so that the flusher can start the next
/// write and `fdatasync` the moment one finishes instead of spending that time waking
/// hundreds of tasks (measured: see docs/benchmarks.md). Batches complete in order.
final class CompletionQueue: @unchecked Sendable {
    private struct Completion {
        var succeeded: [AppendWaiter]
        var failed: [AppendWaiter]
        var error: LogError?
    }

    private let state = ConditionLock()
    private var queue: [Completion] = []
    private var stopping = false
    private var thread: pthread_t?

    init() {
        thread = startThread { [self] in self.run() }
    }

    func complete(succeeded: [AppendWaiter], failed: [AppendWaiter] = [], error: LogError? = nil) {
        state.lock()
        let wasEmpty = queue.isEmpty
        queue.append(Completion(succeeded: succeeded, failed: failed, error: error))
        state.unlock()
        if wasEmpty { state.signal() }
    }

    /// Resumes everything queued, then stops the thread.
    func stop() {
        state.withLock { stopping = true }
        state.signal()
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run() {
        var work: [Completion] = []
        state.lock()
        while true {
            if queue.isEmpty {
                if stopping { break }
                state.wait()
                continue
            }
            swap(&queue, &work)
            state.unlock()
            for completion in work {
                for waiter in completion.succeeded { waiter.completion.succeed(waiter.lsn) }
                if let error = completion.error {
                    for waiter in completion.failed { waiter.completion.fail(error) }
                }
            }
            work.removeAll(keepingCapacity: true)
            state.lock()
        }
        state.unlock()
    }
}
