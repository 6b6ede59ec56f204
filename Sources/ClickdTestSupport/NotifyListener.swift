#if canImport(Glibc)
    import Glibc
#endif

/// Stands in for systemd in tests: a datagram socket to name in `NOTIFY_SOCKET`, on which
/// the daemon's `READY=1`, `WATCHDOG=1`, `STOPPING=1`… arrive.
public final class NotifyListener {
    public let path: String
    private let fd: Int32

    public init(path: String, timeoutSeconds: Int = 10) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw TestSupportError("cannot bind a notify socket at \(path)") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Receives until a notification holds `state` (e.g. "STOPPING=1"): false when the
    /// timeout passes first.
    public func waitFor(_ state: String) -> Bool {
        while let message = receive() { if message.contains(state) { return true } }
        return false
    }

    /// The next notification, or nil after the timeout.
    public func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : nil
    }
}
