import ClickdTestSupport
import Testing

/// `@Suite(.ownThreads)`: every test of the suite runs on threads of its own, never on
/// Swift's cooperative pool.
///
/// Why: Swift Testing calls a synchronous test from a task, so the test holds one of the
/// cooperative pool's threads for as long as it runs — and the pool has one per core, two
/// on these machines. Two tests that wait on a child process or a database at once (the
/// process tests do little else) left no thread for anything else in the process: the
/// in-process servers of other suites (the edge, the report) stopped answering until they
/// were done, which showed up as 10 s client timeouts and an edge whose graceful stop took
/// 11 s. Measured with a probe: a `Task.sleep(500 ms)` in an async test did not start until
/// two 4 s synchronous tests ended; with this trait on theirs, it took 0.5 s.
///
/// How: the test runs under a task executor preference for `OwnThreadExecutor`, so its
/// synchronous body and every job of its task (and child tasks) run on a new thread each.
/// At most two such tests (`gate`) run at once (the others wait without holding a thread):
/// the pool's width used to bound them, and the process tests measure latencies that a
/// machine running all of them at once would not give (tried: EdgeHardeningTests failed).
public struct OwnThreads: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// Two, as many as the cooperative pool let run before on these 2-core machines.
    static let gate = AsyncGate(width: 2)

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // Called once for the suite and once per test case: only the test's scope moves.
        guard testCase != nil else { return try await function() }
        await Self.gate.enter()
        do {
            try await withTaskExecutorPreference(OwnThreadExecutor.shared) { try await function() }
        } catch {
            await Self.gate.leave()
            throw error
        }
        await Self.gate.leave()
    }
}

/// A counting semaphore whose waiters suspend (no thread held) in arrival order.
actor AsyncGate {
    private let width: Int
    private var inside = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(width: Int) { self.width = width }

    func enter() async {
        if inside < width {
            inside += 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func leave() {
        // A waiter takes the leaver's place: `inside` stays the same.
        if waiting.isEmpty { inside -= 1 } else { waiting.removeFirst().resume() }
    }
}

extension Trait where Self == OwnThreads {
    /// Runs the suite's tests on threads of their own (see `OwnThreads`).
    public static var ownThreads: Self { OwnThreads() }
}

/// A task executor that runs each job on a new thread (`runOnOwnThread`). A thread costs
/// tens of microseconds; a test's task enqueues a job per resumption, a few thousand at most.
public final class OwnThreadExecutor: TaskExecutor {
    public static let shared = OwnThreadExecutor()

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        runOnOwnThread { job.runSynchronously(on: executor) }
    }
}
