import Synchronization

/// A request to stop, set from one thread (a signal's or a graceful shutdown's handler) and
/// read between batches by another.
public final class StopFlag: Sendable {
    private let value = Atomic(false)

    public init() {}

    public func set() { value.store(true, ordering: .relaxed) }

    public var isSet: Bool { value.load(ordering: .relaxed) }
}
