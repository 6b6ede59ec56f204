import Dispatch
import Foundation

/// Runs `body` on a new thread. Not Dispatch's global queue: on Linux its pool grows past
/// one thread per core only when its monitor sees threads blocked, about a second later,
/// and blocked global threads delay Swift's cooperative jobs meanwhile (measured: 1.7 s).
public func runOnOwnThread(_ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.stackSize = 8 << 20
    thread.start()
}

/// Runs a blocking `body` on a thread of its own (never on Swift's cooperative pool, which a
/// blocking wait would starve) and returns its result.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        runOnOwnThread { continuation.resume(with: Result { try body() }) }
    }
}

/// The CPU time (user + system) the calling thread has used, in seconds.
public func threadCPUSeconds() -> Double {
    var usage = rusage()
    // 1 is RUSAGE_THREAD, a macro Swift does not import.
    getrusage(1, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Hands a value that is not Sendable (a reader, a worker) to another thread; the test makes
/// sure only one side uses it at a time.
public final class HandOff<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
