import CEventLog

#if canImport(Glibc)
    import Glibc
#endif

/// One record as read back from the log.
public struct LogRecord: Sendable, Equatable {
    public var lsn: UInt64
    public var payload: [UInt8]

    public init(lsn: UInt64, payload: [UInt8]) {
        self.lsn = lsn
        self.payload = payload
    }
}

/// Reads a log from any LSN, in batches, across segments, in this or any other process,
/// never past the durable watermark the writer publishes. Needs no lock: many readers
/// and the writer work on one directory at once.
///
/// A reader is not thread-safe: one task uses it at a time.
public final class LogReader {
    public let directory: String
    public let logID: LogID
    /// The LSN the next `read` returns first.
    public private(set) var nextLSN: UInt64
    /// Where sealed segments the log directory no longer holds are read from: the
    /// archive's directory for this log (`<archive>/<log id>`), or nil.
    public let archiveDirectory: String?

    private var segment: (file: LogFile, firstLSN: UInt64, cursor: FrameCursor)?
    private var watch: LogWatch?

    /// `archive`: the root of an archive directory (what `clickd edge --archive-dir`
    /// writes); segments retention removed from `directory` are read from it, so a
    /// rebuild replays the whole log (docs/design/archive.md).
    public init(directory: String, from lsn: UInt64 = 1, archive: String? = nil) throws {
        guard FileSystem.isDirectory(directory) else {
            throw LogError(.directory, "log directory \(directory) does not exist or is not a directory", path: directory)
        }
        self.directory = directory
        let logID = try LogMetadata.read(directory: directory).logID
        self.logID = logID
        self.nextLSN = max(1, lsn)
        archiveDirectory = archive.map { FileSystem.join($0, logID.description) }
    }

    /// The highest durable LSN the writer has published.
    public func durableWatermark() throws -> UInt64 {
        try DurableWatermark.read(directory: directory)
    }

    /// The highest durable LSN the writer of the log in `directory` has published (any thread).
    public static func durableWatermark(directory: String) throws -> UInt64 {
        try DurableWatermark.read(directory: directory)
    }

    /// Positions the reader so that the next record read is `lsn`.
    public func seek(to lsn: UInt64) {
        nextLSN = max(1, lsn)
        segment = nil
    }

    /// Returns up to `maxRecords` records (and about `maxBytes` of payload) starting at
    /// `nextLSN`, all at or below the durable watermark; an empty array when there are none yet.
    public func read(maxRecords: Int = 1024, maxBytes: Int = 4 << 20) throws -> [LogRecord] {
        var records: [LogRecord] = []
        var bytes = 0
        try read(maxRecords: maxRecords, maxBytes: maxBytes) { lsn, payload in
            records.append(LogRecord(lsn: lsn, payload: Array(payload)))
            bytes += payload.count
        }
        return records
    }

    /// Like `read(maxRecords:maxBytes:)`, handing each payload to `visit` without copying it.
    /// Returns the number of records visited. Damage is thrown once the records before it
    /// have been handed over (by the next call, when this one visited any).
    @discardableResult
    public func read(
        maxRecords: Int = 1024, maxBytes: Int = 4 << 20,
        visit: (UInt64, UnsafeRawBufferPointer) throws -> Void
    ) throws -> Int {
        try readWhile(maxRecords: maxRecords, maxBytes: maxBytes) { lsn, payload in
            try visit(lsn, payload)
            return true
        }
    }

    /// Like `read(maxRecords:maxBytes:visit:)`, stopping after the record for which `visit`
    /// returns false (that record is read: the next read starts after it).
    @discardableResult
    public func readWhile(
        maxRecords: Int = 1024, maxBytes: Int = 4 << 20,
        _ visit: (UInt64, UnsafeRawBufferPointer) throws -> Bool
    ) throws -> Int {
        let watermark = try durableWatermark()
        var count = 0
        var bytes = 0
        var retried = false
        while count < maxRecords, bytes < maxBytes, nextLSN <= watermark {
            if segment == nil { try openSegment(containing: nextLSN) }
            let frameOffset = segment!.cursor.offset
            let step = try segment!.cursor.step()
            switch step {
            case .record(let lsn, let offset, let payload):
                if lsn < nextLSN { continue }  // seeking forward within the segment
                guard lsn == nextLSN else {
                    if count > 0 {  // as below: what came before first
                        segment!.cursor.reset(to: frameOffset)
                        return count
                    }
                    throw LogError(
                        .corrupt, "segment \(segment!.file.path) byte \(offset): record has LSN \(lsn), expected \(nextLSN)",
                        path: segment!.file.path, offset: offset)
                }
                let more = try segment!.cursor.bytes.withUnsafeBytes { raw in
                    try visit(lsn, UnsafeRawBufferPointer(rebasing: raw[payload]))
                }
                nextLSN += 1
                count += 1
                bytes += payload.count
                retried = false
                if !more { return count }
            case .end, .seal, .incomplete, .invalid:
                // A segment is sealed (cut to its last record) before the next one is
                // created, so a segment named after the next LSN means this one is done —
                // unless that is this very segment, whose first record is then missing or
                // damaged (reopening it would loop forever).
                if nextLSN != segment!.firstLSN, segmentExists(firstLSN: nextLSN) {
                    segment = nil
                    retried = false
                    continue
                }
                // Bytes read ahead may predate the writer's last write (preallocated zeros,
                // or a tail rewritten by recovery): read the file again once.
                segment!.cursor.reset(to: frameOffset)
                if !retried {
                    retried = true
                    continue
                }
                // The records before the damage are handed over first; the next read
                // starts at the damage and throws (so a follower projects up to it).
                if count > 0 { return count }
                var detail = "the log ends before LSN \(nextLSN) although the writer published \(watermark) as durable"
                if case .invalid(_, let reason) = step { detail = "invalid record (\(reason))" }
                throw LogError(
                    .corrupt, "segment \(segment!.file.path) byte \(frameOffset): \(detail)",
                    path: segment!.file.path, offset: frameOffset)
            }
        }
        return count
    }

    /// Every durable record from `nextLSN` on (tools and tests; a large log wants `read` in batches).
    public func readToEnd() throws -> [LogRecord] {
        var all: [LogRecord] = []
        while case let batch = try read(maxRecords: 4096), !batch.isEmpty { all += batch }
        return all
    }

    /// Blocks until records past `nextLSN - 1` are durable or `timeout` passes, using
    /// inotify (no CPU while idle). Returns whether there are new records.
    public func waitForRecords(timeout: Duration) throws -> Bool {
        if try durableWatermark() >= nextLSN { return true }
        if watch == nil { watch = try LogWatch(directories: [directory]) }
        return try watch!.wait(timeout: timeout) { try durableWatermark() >= nextLSN }
    }

    public func close() {
        segment = nil
        watch = nil
    }

    private func segmentExists(firstLSN: UInt64) -> Bool {
        let name = SegmentName.fileName(firstLSN: firstLSN)
        return FileSystem.exists(FileSystem.join(directory, name)) || archiveDirectory.map { FileSystem.exists(FileSystem.join($0, name)) } ?? false
    }

    /// Opens the segment holding `lsn`: the log directory's, or — for an LSN before its
    /// first segment, or a segment removed between listing and opening — the archive's.
    private func openSegment(containing lsn: UInt64) throws {
        let names = try LogScanner.segmentNames(directory: directory)
        var file: LogFile?
        var firstLSN: UInt64 = 0
        if let entry = names.last(where: { $0.firstLSN <= lsn }) {
            do {
                file = try LogFile(path: FileSystem.join(directory, entry.name), flags: O_RDONLY)
                firstLSN = entry.firstLSN
            } catch let error as LogError where error.errno == ENOENT && archiveDirectory != nil {
                file = nil  // pruned meanwhile: the archive has it
            }
        }
        if file == nil, let archiveDirectory, FileSystem.isDirectory(archiveDirectory),
            let entry = try LogScanner.segmentNames(directory: archiveDirectory).last(where: { $0.firstLSN <= lsn })
        {
            file = try LogFile(path: FileSystem.join(archiveDirectory, entry.name), flags: O_RDONLY)
            firstLSN = entry.firstLSN
        }
        guard let file else {
            let first = names.first.map { "\($0.firstLSN)" } ?? "none"
            let hint =
                archiveDirectory.map { " nor in the archive \($0)" }
                ?? " (segments before it were removed by retention: read them from the archive, e.g. clickd rebuild --archive-dir)"
            throw LogError(.invalidArgument, "LSN \(lsn) is before the start of log \(directory) (first LSN \(first))\(hint)")
        }
        _ = try LogScanner.readHeader(file: file, nameLSN: firstLSN, logID: logID)
        segment = (file, firstLSN, FrameCursor(file: file, offset: Int64(SegmentHeader.size)))
    }
}

/// An inotify watch on one or more log directories: wakes a waiting follower when a writer
/// publishes (every durable-watermark update is an `IN_MODIFY`), so that waiting costs no
/// CPU. One inotify instance holds every directory's watch, so a follower of several logs
/// waits for any of them in one `poll`. Not thread-safe: one thread waits on it.
public final class LogWatch {
    private let fd: Int32

    public init(directories: [String]) throws {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0 { throw LogError.system("inotify_init1", path: directories.first ?? "") }
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE)
        for directory in directories where inotify_add_watch(fd, directory, mask) < 0 {
            let err = errno
            Glibc.close(fd)
            throw LogError.system("inotify_add_watch", path: directory, errno: err)
        }
    }

    deinit { Glibc.close(fd) }

    /// Waits until `ready` says so, `timeout` passes or `stop` says so; returns whether
    /// `ready` said so. `ready` is asked first, again after the queued events are discarded
    /// (an update between the two is caught), and after every event; `stop` (cheap: a flag)
    /// every 50 ms while no event comes.
    public func wait(timeout: Duration, until ready: () throws -> Bool, unless stop: () -> Bool = { false }) rethrows -> Bool {
        if try ready() { return true }
        drain()
        if try ready() { return true }
        let nanoseconds = max(0, timeout.components.seconds) * 1_000_000_000 + max(0, timeout.components.attoseconds) / 1_000_000_000
        let deadline = monotonicNanoseconds() + UInt64(nanoseconds)
        while !stop() {
            let now = monotonicNanoseconds()
            if now >= deadline { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, Int32(min(50, (deadline - now) / 1_000_000 + 1))) > 0 {
                drain()
                if try ready() { return true }
            }
        }
        return false
    }

    /// Discards queued events.
    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while buffer.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }
}
