import Foundation

/// A value shared by test threads, behind a lock.
public final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    public init(_ value: T) { stored = value }
    public var value: T { lock.withLock { stored } }
    public func mutate(_ body: (inout T) -> Void) { lock.withLock { body(&stored) } }
}
