import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Makes the next segment file ahead of time, on a thread of its own: a temporary file
/// zero-filled to the full segment size and synced. Appending into blocks that already
/// exist lets `fdatasync` write data alone, without a journal commit for the growing file
/// size — about twice as fast on ext4 here (docs/benchmarks.md), the same reason
/// PostgreSQL zero-fills its WAL segments. The writer renames a prepared file into place
/// when it rolls; when none is ready it starts a plain, growing segment instead.
final class SegmentPreparer: @unchecked Sendable {
    private let directory: String
    /// The full segment size: what a file is prepared to unless asked for less.
    private let size: Int64
    private var requestedSize: Int64
    private let logger: Logger
    private let state = ConditionLock()
    private var requested = false
    private var ready: String?
    private var stopping = false
    private var counter = 0
    private var thread: pthread_t?

    static let zeros = [UInt8](repeating: 0, count: 1 << 20)

    init(directory: String, size: Int64, logger: Logger) {
        self.directory = directory
        self.size = size
        self.requestedSize = size
        self.logger = logger
        thread = startThread { [self] in self.run() }
    }

    /// Asks for a file of `size` bytes (default: the segment size) to be prepared, unless one
    /// is ready or on its way.
    func request(size: Int64? = nil) {
        state.withLock {
            if !requested { requestedSize = min(self.size, size ?? self.size) }
            requested = true
        }
        state.signal()
    }

    /// A file was asked for and is not ready yet (the tests wait on it instead of guessing a
    /// delay: under load, a roll that comes first starts an unprepared segment, by design).
    var isPreparing: Bool { state.withLock { requested && ready == nil } }

    /// The path of a ready zero-filled file, now owned by the caller; nil if none is ready.
    func take() -> String? {
        state.withLock {
            defer { ready = nil }
            return ready
        }
    }

    /// Stops the thread and removes an unused prepared file.
    func stop() {
        state.withLock { stopping = true }
        state.signal()
        if let thread { pthread_join(thread, nil) }
        thread = nil
        if let path = take() { unlink(path) }
    }

    private func run() {
        state.lock()
        while !stopping {
            if !requested || ready != nil {
                state.wait()
                continue
            }
            counter += 1
            let path = FileSystem.join(directory, "prepared-\(counter).seg.tmp")
            let size = requestedSize
            state.unlock()
            let made = make(path, size: size)
            state.lock()
            requested = false
            if made {
                if stopping { unlink(path) } else { ready = path }
            }
        }
        state.unlock()
    }

    private func make(_ path: String, size: Int64) -> Bool {
        do {
            let file = try LogFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
            // Gently: a megabyte at a time, each synced, then a pause three times as long as
            // that sync took. Sixty-four megabytes of dirty pages flushed at once stalled the
            // log's own syncs (256 writers: p99 append 0.6 ms without preparation, 1.5–3.6 ms
            // and 24 ms stalls with it); paced like this, p99 ≈ 1 ms and no stall over 4 ms.
            var offset: Int64 = 0
            while offset < size {
                if state.withLock({ stopping }) { throw LogError(.closed, "stopping") }
                let end = min(size, offset + Int64(Self.zeros.count))
                try Self.zeroFill(file, from: offset, to: end)
                let started = monotonicNanoseconds()
                try file.dataSync()
                let took = monotonicNanoseconds() - started
                usleep(useconds_t(min(3 * took / 1000, 50_000)))
                offset = end
            }
            try file.sync()
            return true
        } catch {
            unlink(path)
            if (error as? LogError)?.code == .closed { return false }
            logger.warning(
                "could not prepare the next segment; the next one will grow as it is written",
                metadata: ["log.directory": "\(directory)", "error": "\(error)"])
            return false
        }
    }

    /// Writes zeros over `[from, to)` of `file`.
    static func zeroFill(_ file: LogFile, from: Int64, to: Int64) throws {
        var offset = from
        while offset < to {
            let n = Int(min(Int64(zeros.count), to - offset))
            try zeros.withUnsafeBytes { raw in try file.write(UnsafeRawBufferPointer(rebasing: raw[0..<n]), at: offset) }
            offset += Int64(n)
        }
    }
}
