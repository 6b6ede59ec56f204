import Synchronization

/// A value delivered once, by whichever side comes first: the producer (`fulfil`) or any
/// number of consumers (`value()`), each resumed with it. A daemon's listener fulfils it
/// with the port it bound (or why it could not); `SystemdService.ready` and the tests wait
/// on it. Here because every daemon's READY waits on one.
public final class OneShot<T: Sendable>: Sendable {
    public init() {}

    private let state = Mutex<(result: Result<T, any Error>?, waiters: [CheckedContinuation<T, any Error>])>((nil, []))

    /// The first result wins; later ones are ignored. Returns whether this one won.
    @discardableResult
    public func fulfil(_ result: Result<T, any Error>) -> Bool {
        let waiters: [CheckedContinuation<T, any Error>]? = state.withLock { s in
            guard s.result == nil else { return nil }
            s.result = result
            defer { s.waiters = [] }
            return s.waiters
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(with: result) }
        return true
    }

    public func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<T, any Error>? = state.withLock { s in
                if let result = s.result { return result }
                s.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
