#if canImport(Glibc)
    import Glibc
#endif

/// `sd_notify` without libsystemd: datagrams to the socket systemd names in
/// `NOTIFY_SOCKET` (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=…`). Does nothing when
/// not run by systemd with `Type=notify`.
public struct SystemdNotifier: Sendable {
    private let path: [UInt8]?
    /// Half the watchdog interval systemd asked for (`WATCHDOG_USEC`), or nil.
    public let watchdogInterval: Duration?

    public init(environment: [String: String]) {
        if let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty {
            var bytes = Array(socket.utf8)
            if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
            path = bytes
        } else {
            path = nil
        }
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends one notification; failures are ignored (systemd may be gone at shutdown).
    public func notify(_ state: String) {
        guard let path, path.count < 108 else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.enumerated() { raw[i] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        var message = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeMutableBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, length) }
            }
        }
    }
}
