#if canImport(Glibc)
    import Glibc
#endif

/// Starts a detached-from-Swift-concurrency OS thread running `body`; returns its handle for `join`.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let body: @Sendable () -> Void
        init(_ b: @escaping @Sendable () -> Void) { body = b }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, context)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}
