#if canImport(Glibc)
    import Glibc
#endif

/// How the writer batches and syncs. Defaults suit a tracker edge on an SSD.
public struct EventLogConfiguration: Sendable {
    public enum SyncMode: Sendable, Equatable {
        /// `fdatasync` after every batch: an append returns only when its record is on stable storage.
        case fdatasync
        /// No sync at all (tests and benchmarks only): records survive a process crash, not a power loss.
        case none
    }

    /// A segment is sealed and a new one started when the next batch would pass this size.
    /// A single record larger than this still gets a segment of its own.
    public var segmentSize: Int64 = 64 << 20
    /// How long the flusher may wait, after the first record of a batch arrives, for more
    /// records to join it. Zero (the default) writes as soon as the previous sync is done:
    /// appends that arrive during a sync form the next batch, which is usually the best trade.
    public var maxBatchDelay: Duration = .zero
    /// The most bytes written and synced as one batch; more waits for the next batch.
    public var maxBatchBytes: Int = 4 << 20
    public var sync: SyncMode = .fdatasync
    /// Zero-fill each segment to `segmentSize` before appending into it (the last segment
    /// when the log opens, later ones ahead of time on a background thread), so that a
    /// sync writes data without a file-size change. Costs the zero writes once per segment.
    public var preallocate: Bool = true
    /// A segment that holds records is sealed once its first record was written this long
    /// ago, even if it is not full, so that what is not yet archived is bounded in time
    /// (docs/design/archive.md). Zero (the library's default) seals on size only; `clickd
    /// edge` defaults to 60 s.
    public var sealAfter: Duration = .zero
    /// Seal the current segment (if it holds records) when the log is closed, so that an
    /// archiver can ship every record before the process ends (`clickd edge` with an archive).
    public var sealOnClose = false
    /// The largest payload accepted (at most `RecordFrame.maxPayloadSize`).
    public var maxRecordSize: Int = RecordFrame.maxPayloadSize

    /// Milliseconds since the Unix epoch, written into each seal footer (`sealed_at`).
    public var wallClock: @Sendable () -> UInt64 = EventLogConfiguration.wallClockMilliseconds

    /// Called on the flusher thread when a segment is sealed and its successor exists, with
    /// the sealed segment's file name (the archiver's wake-up). Must not block.
    public var onSegmentSealed: (@Sendable (String) -> Void)? = nil

    /// Called on the flusher thread after each batch is durable, with its record count
    /// (metrics). Must not block.
    public var onBatchDurable: (@Sendable (Int) -> Void)? = nil

    /// Test instrumentation: called on the flusher thread after a batch is written and before
    /// it is synced. Lets a test hold a batch in the written-but-not-durable state.
    public var testHookBeforeSync: (@Sendable () -> Void)? = nil

    public init() {}

    public static func wallClockMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
