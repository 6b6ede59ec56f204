import CEventLog

#if canImport(Glibc)
    import Glibc
#endif

/// The `LOCK` file: one writer per log directory. Held with `flock`, so the kernel
/// releases it when the holder exits, however it exits (a `kill -9` included). The file's
/// text names the holder, for the error a second writer gets.
final class WriterLock {
    static let fileName = "LOCK"
    private let file: LogFile

    init(directory: String) throws {
        let path = FileSystem.join(directory, Self.fileName)
        file = try LogFile(path: path, flags: O_RDWR | O_CREAT)
        // A lock that names this very process may be held for a moment by a child it is
        // spawning: between fork and exec the child has a copy of every descriptor, close-
        // on-exec ones included, and the flock belongs to the open file description. So a
        // process that closes a log and opens it again while another of its threads starts
        // a program (the test suite does, all the time) retries for up to 250 ms before it
        // reports a second writer of its own.
        var selfHeldDeadline: UInt64?
        while flock(file.fd, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            if errno == EWOULDBLOCK {
                let holder = (try? file.read(count: 512, at: 0)).map { String(decoding: $0, as: UTF8.self) } ?? ""
                let who = holder.trimmingSuffixNewlines()
                if who.hasPrefix("pid \(getpid()) ") {
                    let now = monotonicNanoseconds()
                    let deadline = selfHeldDeadline ?? now + 250_000_000
                    selfHeldDeadline = deadline
                    if now < deadline {
                        usleep(2_000)
                        continue
                    }
                }
                throw LogError(
                    .locked,
                    "log \(directory) is already open for writing by \(who.isEmpty ? "another process" : who); one writer per log",
                    path: path)
            }
            throw LogError.system("lock", path: path)
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let text = "pid \(getpid()) on \(hostName) since \(LogMetadata.now())\n"
        try file.truncate(to: 0)
        try file.write(Array(text.utf8), at: 0)
    }

    /// Releases the lock (closing the descriptor releases the flock).
    func release() { file.close() }
}

extension String {
    func trimmingSuffixNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == "\r" || last == " " { s = s.dropLast() }
        return String(s)
    }
}
