import CEventLog

#if canImport(Glibc)
    import Glibc
#endif

/// Runs blocking work (libpq calls, file copies and fsyncs, joining worker threads) on a
/// thread of its own and awaits it: Swift's cooperative pool has one thread per core, and
/// a service group's signal handling needs one of them to stay free — on a one-core
/// machine, the only one.
public enum BlockingThread {
    /// A value that is not Sendable (a connection's owner, a rebuilder) handed to the one
    /// thread that uses it until the caller is resumed.
    // @unchecked: the thread `run` starts is its only user while it runs.
    public final class Handed<Value>: @unchecked Sendable {
        public let value: Value
        public init(_ value: Value) { self.value = value }
    }

    /// `name` shows in `top -H` and a debugger (at most 15 bytes are kept).
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            let thread = startThread {
                clickd_name_thread(name)
                done.resume(with: Result { try body() })
            }
            Glibc.pthread_detach(thread)
        }
    }
}
