import Foundation

/// Runs blocking work (libpq calls, joining worker threads) on a thread of its own and
/// awaits it: Swift's cooperative pool has one thread per core, and a service group's
/// signal handling needs one of them to stay free — on a one-core machine, the only one.
public enum BlockingThread {
    /// A value that is not Sendable (a connection's owner, a rebuilder) handed to the one
    /// thread that uses it until the caller is resumed.
    // @unchecked: the thread `run` starts is its only user while it runs.
    public final class Handed<Value>: @unchecked Sendable {
        public let value: Value
        public init(_ value: Value) { self.value = value }
    }

    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            let thread = Thread { done.resume(with: Result { try body() }) }
            thread.name = name
            thread.start()
        }
    }
}
