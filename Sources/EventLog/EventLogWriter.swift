import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The single writer of a log directory, with group commit.
///
/// Any number of tasks call `append` concurrently. Each record is framed and given its
/// LSN at once, under a short lock, into the pending buffer; a dedicated flusher thread
/// takes everything pending as one batch, writes it with one `pwrite` and makes it
/// durable with one `fdatasync`, then publishes the new durable watermark and hands the
/// appenders of that batch to a completion thread that resumes them, while the flusher
/// goes straight on to the next batch (callbacks, which are cheap, it calls itself). Appends that arrive during a sync form the next batch, so the
/// batch size grows with the load and the sync rate stays at what the disk can do.
///
/// Failure rules: a failed write (a full disk) truncates the segment back to its last
/// good length and fails that batch and everything queued behind it; the log stays valid
/// and later appends may succeed. A failed `fdatasync` leaves the page cache in an unknown
/// state (as PostgreSQL learned), so the writer refuses all further appends until the log
/// is reopened and recovered.
public final class EventLogWriter: @unchecked Sendable {
    public let directory: String
    public let logID: LogID
    public let configuration: EventLogConfiguration
    let logger: Logger

    private typealias Waiter = AppendWaiter
    /// Batches of at most this many appenders are resumed by the flusher itself.
    static let inlineResumeLimit = 32

    public struct Statistics: Sendable {
        /// Batches written (one write and, unless sync is off, one fdatasync each).
        public var batches: Int = 0
        public var syncs: Int = 0
        public var records: Int = 0
        public var bytes: Int64 = 0
        public var segmentsCreated: Int = 0
        /// Segments sealed, and of those, sealed because they were older than `sealAfter`.
        public var segmentsSealed: Int = 0
        public var segmentsSealedByTime: Int = 0
        /// Segments started from a prepared (zero-filled) file.
        public var preparedSegmentsUsed: Int = 0
        public var failedAppends: Int = 0
        /// `fdatasync` latencies: bucket i counts syncs that took less than 2^i µs
        /// (the last bucket takes the rest).
        public var syncLatencyBuckets = [Int](repeating: 0, count: 24)

        /// The upper bound, in µs, of the bucket holding the `p`-quantile sync latency.
        public func syncLatencyQuantile(_ p: Double) -> Int {
            let total = syncLatencyBuckets.reduce(0, +)
            guard total > 0 else { return 0 }
            var seen = 0
            for (i, count) in syncLatencyBuckets.enumerated() {
                seen += count
                if Double(seen) >= p * Double(total) { return 1 << i }
            }
            return 1 << (syncLatencyBuckets.count - 1)
        }
    }

    // Guarded by `state`.
    private let state = ConditionLock()
    private var pending: [UInt8] = []
    private var pendingWaiters: [Waiter] = []
    private var firstPendingAt: UInt64 = 0
    private var nextLSN: UInt64
    private var durableLSN: UInt64
    private var failure: LogError?
    private var closing = false
    private var flusherIdle = false
    private var stats = Statistics()

    // Owned by the flusher thread (and by open/close, when no flusher runs).
    private var segment: LogFile
    private var segmentFirstLSN: UInt64
    private var segmentLength: Int64
    /// The segment file's size: more than `segmentLength` when it is preallocated.
    private var segmentFileSize: Int64 = 0
    /// The segment format of the current segment (a format-1 segment is sealed without a footer).
    private var segmentVersion: UInt16
    /// CRC-32C of the current segment's bytes `0..<segmentLength`: the footer's `segcrc`,
    /// kept as batches are written, so sealing reads nothing back.
    private var segmentChecksum: UInt32
    /// The last LSN in the current segment (`segmentFirstLSN - 1` while it holds none).
    private var segmentLastLSN: UInt64
    /// When (monotonic ns) the current segment's first record was written: `sealAfter` counts from it.
    private var segmentFirstWriteAt: UInt64?
    /// The current segment is sealed and its successor not yet created (a failed creation
    /// is retried before the next batch: nothing is ever written after a footer).
    private var segmentSealed = false
    /// After a time seal failed (a full disk), when to try again.
    private var nextSealAttemptAt: UInt64 = 0
    /// Set once at open (internal for the tests: `SegmentPreparer.isPreparing`).
    private(set) var preparer: SegmentPreparer?
    /// Whether the preparer was asked for the segment after the current one.
    private var nextSegmentRequested = false
    private var batch: [UInt8] = []
    private var batchWaiters: [Waiter] = []
    private let watermark: LogFile
    private let lock: WriterLock
    private var flusher: pthread_t?
    private let completions = CompletionQueue()

    /// Opens the log in `directory` for writing, creating it when the directory is
    /// missing (its parent must exist) or empty, and recovering a torn tail.
    public init(directory: String, configuration: EventLogConfiguration = .init(), logger: Logger = Logger(label: "clickd.log")) throws {
        self.directory = directory
        self.configuration = configuration
        self.logger = logger
        try LogDirectory.prepareForWriting(directory)
        lock = try WriterLock(directory: directory)
        do {
            let metadata = try LogDirectory.ensureMetadata(directory)
            logID = metadata.logID
            let recovered = try LogDirectory.recover(directory, logger: logger)
            var last = recovered.lastLSN
            if recovered.segments.isEmpty {
                try LogDirectory.createSegment(directory, logID: logID, firstLSN: 1)
                last = 0
            }
            let names = try LogScanner.segmentNames(directory: directory)
            let tail = names.last!
            segment = try LogFile(path: FileSystem.join(directory, tail.name), flags: O_RDWR)
            segmentFirstLSN = tail.firstLSN
            let scanned = recovered.segments.last
            segmentLength = scanned?.validEnd ?? Int64(SegmentHeader.size)
            segmentFileSize = try segment.size()
            segmentVersion = scanned?.version ?? SegmentHeader.currentVersion
            segmentChecksum = scanned?.checksum ?? CRC32C.checksum(SegmentHeader(logID: logID, firstLSN: tail.firstLSN).encoded())
            segmentLastLSN = scanned?.lastLSN ?? tail.firstLSN - 1
            segmentSealed = scanned?.footer != nil
            // Records a killed writer wrote but never synced are still in the page cache:
            // make them durable before publishing them.
            try segment.dataSync()
            watermark = try DurableWatermark.openForWriting(directory: directory)
            try DurableWatermark.publish(last, to: watermark)
            nextLSN = last + 1
            durableLSN = last
        } catch {
            completions.stop()
            lock.release()
            throw error
        }
        do {
            try continueInCurrentFormat()
        } catch {
            close()
            throw error
        }
        if configuration.preallocate, segmentFileSize < configuration.segmentSize {
            preallocateCurrentSegment()
        }
        if configuration.preallocate {
            preparer = SegmentPreparer(directory: directory, size: configuration.segmentSize, logger: logger)
            requestNextSegmentIfHalfFull()
        }
        flusher = startThread { [self] in self.flushLoop() }
        logger.info(
            "log opened for writing",
            metadata: [
                "log.directory": "\(directory)", "log.id": "\(logID)", "log.next_lsn": "\(nextLSN)",
            ])
    }

    /// The highest LSN that is durable (and published to readers).
    public var durable: UInt64 { state.withLock { durableLSN } }

    public var statistics: Statistics { state.withLock { stats } }

    /// False once the writer refuses appends (closed, or after a failed sync).
    public var isAcceptingAppends: Bool { state.withLock { failure == nil && !closing } }

    /// Appends one record and returns its LSN once it is durable.
    /// Throws `LogError` (`.diskFull`, `.io`, `.closed`, `.invalidArgument`).
    public func append(_ payload: [UInt8]) async throws -> UInt64 {
        try await withUnsafeThrowingContinuation { continuation in
            payload.withUnsafeBytes { enqueue($0, .continuation(continuation)) }
        }
    }

    /// Appends one record from raw bytes, copied before this call suspends.
    public func append(bytes payload: UnsafeRawBufferPointer) async throws -> UInt64 {
        try await withUnsafeThrowingContinuation { continuation in
            enqueue(payload, .continuation(continuation))
        }
    }

    /// Appends one record (copied before this returns) and calls `completion` once it is
    /// durable, or with the reason it is not, on a thread of the writer's: hop to your own
    /// (an event loop) from there, and do not block in it.
    ///
    /// With `wakeLater`, the flusher is not woken for this record: the caller promises to
    /// call `wakeFlusher()` soon (an event loop does it once at the end of its burst of
    /// reads). A flusher woken by the first click of a burst syncs that one click while the
    /// loop is still parsing the rest; woken at the end, it takes the whole burst in one
    /// sync, sooner for all but the first (measured: bench/edge.sh, docs/benchmarks.md).
    public func append(
        bytes payload: UnsafeRawBufferPointer, wakeLater: Bool = false,
        completion: @escaping @Sendable (Result<UInt64, LogError>) -> Void
    ) {
        enqueue(payload, .callback(completion), wakeLater: wakeLater)
    }

    /// Wakes the flusher if it sleeps with records pending (see `append(bytes:wakeLater:completion:)`).
    public func wakeFlusher() {
        state.lock()
        let wake = flusherIdle && !pending.isEmpty
        state.unlock()
        if wake { state.signal() }
    }

    /// Frames the record into the pending batch and wakes the flusher if it sleeps.
    private func enqueue(_ payload: UnsafeRawBufferPointer, _ completion: AppendCompletion, wakeLater: Bool = false) {
        guard payload.count > 0, payload.count <= configuration.maxRecordSize else {
            completion.fail(
                LogError(.invalidArgument, "record of \(payload.count) bytes: a record must have 1 to \(configuration.maxRecordSize) bytes"))
            return
        }
        state.lock()
        if let failure {
            state.unlock()
            completion.fail(failure)
            return
        }
        if closing {
            state.unlock()
            completion.fail(LogError(.closed, "log \(directory) is closed"))
            return
        }
        let wasEmpty = pending.isEmpty
        let lsn = nextLSN
        nextLSN += 1
        RecordFrame.append(lsn: lsn, payload: payload, to: &pending)
        pendingWaiters.append(Waiter(completion: completion, lsn: lsn, end: pending.count))
        if wasEmpty { firstPendingAt = configuration.maxBatchDelay == .zero ? 0 : monotonicNanoseconds() }
        let wake = flusherIdle && ((wasEmpty && !wakeLater) || pending.count >= configuration.maxBatchBytes)
        state.unlock()
        if wake { state.signal() }
    }

    /// Makes every accepted append durable, stops the flusher and releases the lock.
    /// Appends after `close` fail with `.closed`.
    public func close() {
        state.lock()
        let alreadyClosing = closing
        closing = true
        state.unlock()
        if alreadyClosing { return }
        state.signal()
        if let flusher { pthread_join(flusher, nil) }
        flusher = nil
        completions.stop()
        preparer?.stop()
        segment.close()
        watermark.close()
        lock.release()
        logger.info("log closed", metadata: ["log.directory": "\(directory)", "log.durable_lsn": "\(durable)"])
    }

    // MARK: - Flusher thread

    private func flushLoop() {
        let delayNanos =
            UInt64(configuration.maxBatchDelay.components.seconds) * 1_000_000_000
            + UInt64(configuration.maxBatchDelay.components.attoseconds / 1_000_000_000)
        state.lock()
        while true {
            if let deadline = sealDeadline(), !closing, monotonicNanoseconds() >= deadline {
                state.unlock()
                sealByTime()
                state.lock()
                continue
            }
            if pending.isEmpty {
                if closing {
                    if configuration.sealOnClose, !segmentSealed, segmentLastLSN >= segmentFirstLSN, failure == nil {
                        state.unlock()
                        sealByTime()
                        state.lock()
                    }
                    break
                }
                flusherIdle = true
                if let deadline = sealDeadline() { state.wait(untilNanoseconds: deadline) } else { state.wait() }
                flusherIdle = false
                continue
            }
            if delayNanos > 0, !closing, pending.count < configuration.maxBatchBytes {
                let deadline = firstPendingAt + delayNanos
                if monotonicNanoseconds() < deadline {
                    flusherIdle = true
                    state.wait(untilNanoseconds: deadline)
                    flusherIdle = false
                    continue
                }
            }
            takeBatch()
            state.unlock()

            let outcome = writeBatch()

            state.lock()
            var succeeded = batchWaiters
            var failed: [Waiter] = []
            if let (durableThrough, error, fatal) = outcome {
                succeeded = batchWaiters.filter { $0.lsn <= durableThrough }
                failed = batchWaiters.filter { $0.lsn > durableThrough } + pendingWaiters
                pending.removeAll(keepingCapacity: true)
                pendingWaiters.removeAll(keepingCapacity: true)
                nextLSN = durableThrough + 1
                durableLSN = max(durableLSN, durableThrough)
                stats.failedAppends += failed.count
                if fatal {
                    failure = LogError(
                        .closed, "log \(directory) refuses appends after a failed write or sync (\(error.message)); reopen it to recover",
                        path: error.path)
                }
                resume(succeeded, failed: failed, error: error)
            } else {
                if let last = batchWaiters.last { durableLSN = last.lsn }
                resume(succeeded, failed: [], error: nil)
            }
            batchWaiters.removeAll(keepingCapacity: true)
        }
        state.unlock()
    }

    /// Resumes the waiters of a finished batch (state locked). A batch with many suspended
    /// tasks goes to the completion thread, so the flusher can start the next sync at once;
    /// callbacks and a few tasks (or any batch when there is no sync to overlap with) are
    /// resumed here, which saves the thread hop. The threshold was measured with
    /// bench/log-append.sh.
    private func resume(_ succeeded: [Waiter], failed: [Waiter], error: LogError?) {
        if configuration.sync == .fdatasync, Self.resumeCost(succeeded) + Self.resumeCost(failed) > Self.inlineResumeLimit {
            completions.complete(succeeded: succeeded, failed: failed, error: error)
        } else {
            state.unlock()
            for waiter in succeeded { waiter.completion.succeed(waiter.lsn) }
            if let error { for waiter in failed { waiter.completion.fail(error) } }
            state.lock()
        }
        if let error {
            logger.error(
                "log append failed", metadata: ["log.directory": "\(directory)", "log.failed_appends": "\(failed.count)", "error": "\(error)"])
        }
    }

    /// How many of `waiters` are suspended tasks, whose resumption is the costly part. Callbacks
    /// promise not to block and are cheap to call (the edge posts them to its event loops in
    /// bulk), so they never justify the hop to the completion thread: measured with
    /// bench/edge.sh, that hop cost a thread wake-up per group commit on a two-core machine.
    private static func resumeCost(_ waiters: [Waiter]) -> Int {
        var count = 0
        for waiter in waiters { if case .continuation = waiter.completion { count += 1 } }
        return count
    }

    /// Moves up to `maxBatchBytes` of whole frames from `pending` to `batch` (state locked).
    private func takeBatch() {
        var count = pendingWaiters.count
        if pending.count > configuration.maxBatchBytes {
            count = max(1, pendingWaiters.firstIndex { $0.end > configuration.maxBatchBytes } ?? count)
        }
        if count == pendingWaiters.count {
            swap(&pending, &batch)
            swap(&pendingWaiters, &batchWaiters)
            pending.removeAll(keepingCapacity: true)
            pendingWaiters.removeAll(keepingCapacity: true)
        } else {
            let cut = pendingWaiters[count - 1].end
            batch.removeAll(keepingCapacity: true)
            batch.append(contentsOf: pending[0..<cut])
            batchWaiters.append(contentsOf: pendingWaiters[0..<count])
            pending.removeFirst(cut)
            pendingWaiters.removeFirst(count)
            for i in pendingWaiters.indices { pendingWaiters[i].end -= cut }
        }
    }

    /// Writes `batch` (flusher thread, state unlocked), rolling segments as needed, and
    /// syncs. Returns nil on success, or the last durable LSN, the error, and whether the
    /// error leaves the files in a state the writer cannot vouch for (`fatal`).
    private func writeBatch() -> (UInt64, LogError, Bool)? {
        var start = 0
        var index = 0
        var durableThrough = batchWaiters.first!.lsn - 1
        let written = batch.count
        do {
            if segmentSealed { try startSegment(firstLSN: segmentLastLSN + 1) }
            while index < batchWaiters.count {
                // A sealed segment, footer included, stays within the segment size.
                let room = configuration.segmentSize - segmentLength - (segmentVersion >= 2 ? Int64(SegmentFooter.size) : 0)
                var last = index
                while last + 1 < batchWaiters.count, Int64(batchWaiters[last + 1].end - start) <= room { last += 1 }
                if Int64(batchWaiters[last].end - start) > room, segmentLength > Int64(SegmentHeader.size) {
                    // Seal the full segment (its records before this batch's are synced
                    // with it), and only then start the next.
                    do {
                        try sealCurrentSegment()
                    } catch {
                        let problem = error as? SealFailure ?? SealFailure(error: LogError.wrap(error), fatal: true)
                        return (durableThrough, problem.error, problem.fatal)
                    }
                    durableThrough = batchWaiters[index].lsn - 1
                    try DurableWatermark.publish(durableThrough, to: watermark)
                    try startSegment(firstLSN: batchWaiters[index].lsn)
                    continue
                }
                let end = batchWaiters[last].end
                let before = segmentLength
                do {
                    try batch.withUnsafeBytes { (raw) throws in
                        try segment.write(UnsafeRawBufferPointer(rebasing: raw[start..<end]), at: before)
                    }
                } catch {
                    // Never leave a partial batch behind: cut back to the last good length
                    // (giving up this segment's preallocated space).
                    do {
                        try segment.truncate(to: before)
                        segmentFileSize = before
                    } catch let truncateError {
                        return (durableThrough, LogError.wrap(truncateError), true)
                    }
                    throw error
                }
                segmentChecksum = batch.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<end]), seed: segmentChecksum) }
                segmentLength += Int64(end - start)
                segmentFileSize = max(segmentFileSize, segmentLength)
                segmentLastLSN = batchWaiters[last].lsn
                if segmentFirstWriteAt == nil { segmentFirstWriteAt = monotonicNanoseconds() }
                requestNextSegmentIfHalfFull()
                start = end
                index = last + 1
            }
            configuration.testHookBeforeSync?()
            var syncMicros = 0
            do {
                if configuration.sync == .fdatasync {
                    let started = monotonicNanoseconds()
                    try segment.dataSync()
                    syncMicros = Int((monotonicNanoseconds() - started) / 1000)
                }
                try DurableWatermark.publish(batchWaiters.last!.lsn, to: watermark)
            } catch {
                return (durableThrough, LogError.wrap(error), true)
            }
            durableThrough = batchWaiters.last!.lsn
            configuration.onBatchDurable?(batchWaiters.count)
            state.withLock {
                stats.batches += 1
                if configuration.sync == .fdatasync {
                    stats.syncs += 1
                    let bucket = min(stats.syncLatencyBuckets.count - 1, Int.bitWidth - syncMicros.leadingZeroBitCount)
                    stats.syncLatencyBuckets[bucket] += 1
                }
                stats.records += batchWaiters.count
                stats.bytes += Int64(written)
            }
            return nil
        } catch {
            return (durableThrough, LogError.wrap(error), false)
        }
    }

    /// A seal that did not happen, and whether it leaves the files in a state the writer
    /// cannot vouch for (a failed truncate or sync: `fatal`, as for a batch).
    private struct SealFailure: Error {
        var error: LogError
        var fatal: Bool
    }

    /// Seals the current segment (flusher thread): cuts its preallocated zeros, writes the seal
    /// footer (format 2; a format-1 segment ends at its last record) and syncs. A footer that
    /// cannot be written (a full disk) is cut off again and the segment stays open.
    private func sealCurrentSegment() throws {
        guard !segmentSealed else { return }
        do {
            if segmentFileSize > segmentLength {
                try segment.truncate(to: segmentLength)
                segmentFileSize = segmentLength
            }
        } catch {
            throw SealFailure(error: LogError.wrap(error), fatal: true)
        }
        if segmentVersion >= 2 {
            let footer = SegmentFooter(
                firstLSN: segmentFirstLSN, lastLSN: segmentLastLSN, records: segmentLastLSN - segmentFirstLSN + 1,
                offset: segmentLength, sealedAt: configuration.wallClock(), segmentChecksum: segmentChecksum)
            do {
                try segment.write(footer.encoded(), at: segmentLength)
            } catch {
                do { try segment.truncate(to: segmentLength) } catch { throw SealFailure(error: LogError.wrap(error), fatal: true) }
                throw SealFailure(error: LogError.wrap(error), fatal: false)
            }
            segmentFileSize = segmentLength + Int64(SegmentFooter.size)
        }
        do {
            if configuration.sync == .fdatasync { try segment.dataSync() }
        } catch {
            throw SealFailure(error: LogError.wrap(error), fatal: true)
        }
        segmentSealed = true
        state.withLock { stats.segmentsSealed += 1 }
    }

    /// When the current segment is due to be sealed by age (monotonic ns), or nil: time
    /// sealing is off, or the segment holds no records.
    private func sealDeadline() -> UInt64? {
        guard configuration.sealAfter > .zero, !segmentSealed, let first = segmentFirstWriteAt else { return nil }
        let after = configuration.sealAfter.components
        let nanos = UInt64(after.seconds) * 1_000_000_000 + UInt64(after.attoseconds / 1_000_000_000)
        return max(first + nanos, nextSealAttemptAt)
    }

    /// Seals the current segment because it is old enough and starts the next (flusher thread,
    /// state unlocked, between two batches). A full disk leaves the segment open and tries
    /// again in a second; a failed sync makes the writer refuse appends, as a batch's would.
    private func sealByTime() {
        let sealedBytes = segmentLength
        do {
            do {
                try sealCurrentSegment()
            } catch let problem as SealFailure {
                if problem.fatal {
                    state.withLock {
                        failure = LogError(
                            .closed, "log \(directory) refuses appends after a failed seal (\(problem.error.message)); reopen it to recover",
                            path: problem.error.path)
                    }
                }
                throw problem.error
            }
            try startSegment(firstLSN: segmentLastLSN + 1)
            state.withLock { stats.segmentsSealedByTime += 1 }
            // The next one will likely be as small: prepare twice this one's size, not the
            // full segment size (zero-filling 64 MiB every few seconds would write more zeros
            // than clicks).
            if let preparer, !nextSegmentRequested {
                let mib: Int64 = 1 << 20
                let hint = min(configuration.segmentSize, max(mib, (2 * sealedBytes + mib - 1) / mib * mib))
                nextSegmentRequested = true
                preparer.request(size: hint)
            }
        } catch {
            nextSealAttemptAt = monotonicNanoseconds() + 1_000_000_000
            logger.warning(
                "could not seal the segment by age; trying again in a second",
                metadata: ["log.directory": "\(directory)", "error": "\(error)"])
        }
    }

    /// At open: a log written by an earlier clickd ends in a format-1 segment, and a writer
    /// killed between a seal and the next segment leaves a sealed one last. Either way the
    /// writer goes on in a new segment of the current format (an empty format-1 segment just
    /// gets the current header).
    private func continueInCurrentFormat() throws {
        if segmentSealed {
            try startSegment(firstLSN: segmentLastLSN + 1)
            return
        }
        guard segmentVersion < SegmentHeader.currentVersion else { return }
        if segmentLastLSN < segmentFirstLSN {
            let header = SegmentHeader(logID: logID, firstLSN: segmentFirstLSN).encoded()
            try segment.write(header, at: 0)
            try segment.sync()
            segmentVersion = SegmentHeader.currentVersion
            segmentChecksum = CRC32C.checksum(header)
            return
        }
        do {
            try sealCurrentSegment()
        } catch let problem as SealFailure {
            throw problem.error
        }
        try startSegment(firstLSN: segmentLastLSN + 1)
    }

    /// Creates the next segment (durably) and makes it the one appended to. The current
    /// segment must already be sealed. Uses a prepared, zero-filled file when one is ready.
    private func startSegment(firstLSN: UInt64) throws {
        let sealedName = segmentSealed ? SegmentName.fileName(firstLSN: segmentFirstLSN) : nil
        let path = FileSystem.join(directory, SegmentName.fileName(firstLSN: firstLSN))
        let header = SegmentHeader(logID: logID, firstLSN: firstLSN).encoded()
        let next: LogFile
        var usedPrepared = false
        if let prepared = preparer?.take() {
            do {
                let file = try LogFile(path: prepared, flags: O_RDWR)
                try file.write(header, at: 0)
                try file.dataSync()
                if rename(prepared, path) != 0 { throw LogError.system("rename to", path: path) }
                try FileSystem.syncDirectory(directory)
                next = file
                usedPrepared = true
            } catch {
                unlink(prepared)
                throw error
            }
        } else {
            try LogDirectory.createSegment(directory, logID: logID, firstLSN: firstLSN)
            next = try LogFile(path: path, flags: O_RDWR)
        }
        nextSegmentRequested = false
        segment.close()
        segment = next
        segmentFirstLSN = firstLSN
        segmentLength = Int64(SegmentHeader.size)
        segmentFileSize = try next.size()
        segmentVersion = SegmentHeader.currentVersion
        segmentChecksum = CRC32C.checksum(header)
        segmentLastLSN = firstLSN - 1
        segmentFirstWriteAt = nil
        segmentSealed = false
        if let sealedName { configuration.onSegmentSealed?(sealedName) }
        state.withLock {
            stats.segmentsCreated += 1
            if usedPrepared { stats.preparedSegmentsUsed += 1 }
        }
        logger.debug("segment started", metadata: ["log.segment": "\(path)"])
    }

    /// Asks for the next segment to be prepared once the current one is half full: early
    /// enough to be ready at the roll under any sane load, late enough that its zero writes
    /// do not compete with the syncs of a segment that has just started.
    private func requestNextSegmentIfHalfFull() {
        guard let preparer, !nextSegmentRequested, segmentLength >= configuration.segmentSize / 2 else { return }
        nextSegmentRequested = true
        preparer.request()
    }

    /// Zero-fills the current segment up to the segment size (at open). Failure is not
    /// fatal: the segment then grows as it is written.
    private func preallocateCurrentSegment() {
        do {
            try SegmentPreparer.zeroFill(segment, from: segmentFileSize, to: configuration.segmentSize)
            try segment.dataSync()
            segmentFileSize = configuration.segmentSize
        } catch {
            try? segment.truncate(to: segmentFileSize)
            logger.warning(
                "could not preallocate the last segment; it will grow as it is written",
                metadata: ["log.directory": "\(directory)", "error": "\(error)"])
        }
    }
}
