import LinkTracking
import Synchronization

/// A value in use, swapped whole on reload (SIGHUP): a request sees the old value or the
/// new one, never a mixture. The key ring and Apple's egress ranges live in one each.
public final class Swappable<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    public init(_ value: Value) { self.value = Mutex(value) }

    public var current: Value { value.withLock { $0 } }

    public func replace(with new: Value) { value.withLock { $0 = new } }
}

/// The key ring in use.
public typealias KeyRingStore = Swappable<KeyRing>
