import LinkTracking
import Synchronization

/// The key ring in use, swapped whole on reload (SIGHUP): a request sees the old ring or
/// the new one, never a mixture.
public final class KeyRingStore: Sendable {
    private let ring: Mutex<KeyRing>

    public init(_ ring: KeyRing) { self.ring = Mutex(ring) }

    public var current: KeyRing { ring.withLock { $0 } }

    public func replace(with new: KeyRing) { ring.withLock { $0 = new } }
}
