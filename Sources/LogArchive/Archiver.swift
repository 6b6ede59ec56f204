import EventLog
import LinkTracking
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Where and how an edge archives its sealed segments (`clickd edge --archive-dir`,
/// `--archive-command`, `--archive-timeout`; docs/design/archive.md).
public struct ArchiverConfiguration: Sendable {
    public enum Destination: Sendable, Equatable {
        /// A mounted filesystem: copy, fsync, rename, fsync the directory.
        case directory(DirectoryArchive)
        /// An operator's command, PostgreSQL's `archive_command` contract (`%p`, `%f`, `%l`).
        case command(CommandTemplate)
        /// Not archived: retention alone (`--keep-local` without an archive; then a rebuild
        /// can replay only what is still on the disk).
        case none
    }

    public var destination: Destination
    /// How long a sealed segment stays on the edge's disk at least (`--keep-local`); nil:
    /// nothing is removed. Removal also waits for the archive and every follower.
    public var keepLocal: Duration?
    var archives: Bool { destination != .none }
    /// How long an archive command may run before its process group is stopped.
    public var commandTimeout: Duration = .seconds(300)
    /// From SIGTERM to SIGKILL for a command past its timeout.
    public var killAfter: Duration = .seconds(5)
    /// The wait after a failure, doubled after each further one up to `maxRetry`.
    public var firstRetry: Duration = .seconds(1)
    public var maxRetry: Duration = .seconds(60)
    /// How often the directory is looked at again without a seal to wake the archiver
    /// (segments a crash sealed, and the age gauge's refresh).
    public var rescanInterval: Duration = .seconds(5)
    /// The bound on each command of the last pass at a graceful stop (systemd's stop
    /// timeout is 30 s in the shipped unit).
    public var finalPassTimeout: Duration = .seconds(10)
    /// How long after its request an erasure may take to reach every segment of this log
    /// and its archive (`--erase-within`, docs/design/erasure.md): past it the pass logs an
    /// error and `clickd_erasure_overdue` is 1.
    public var eraseWithin: Duration = .seconds(7 * 86_400)
    /// With a command archive: replaces an archived segment by its rewritten bytes
    /// (`--archive-replace-command`: `%p` the new file, `%f` its name, `%l` the log id; must
    /// replace atomically, as an S3 PUT does). Without it a command archive's copies of
    /// erased people are reported, not rewritten.
    public var replaceCommand: CommandTemplate?
    /// With a command archive: fetches archived segments no longer on this disk, to rewrite
    /// them (`--restore-command`, as `clickd log restore` runs it).
    public var restore: ArchiveSource?
    /// Milliseconds since the Unix epoch (the age of the oldest unarchived segment).
    public var wallClock: @Sendable () -> Int64 = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    public init(destination: Destination) { self.destination = destination }

    /// The placeholders an archive command may use.
    public static let commandPlaceholders: Set<Character> = ["p", "f", "l"]
}

/// The archive's metrics on the edge's `/metrics` (docs/design/archive.md, "Operator surface").
public final class ArchiveMetrics: Sendable {
    let archived: Prometheus.Counter
    let failures: Prometheus.Counter
    let oldestUnarchived: Gauge
    let waiting: Gauge
    let localBytes: Gauge
    let pruned: Prometheus.Counter
    let redacted: Prometheus.Counter
    let erasurePending: Gauge
    let erasureOverdue: Gauge

    public init(registry: PrometheusCollectorRegistry) {
        redacted = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_erasure_redacted_records", unitName: "total",
                helpText: "Records of erased people replaced by redaction records in this log's segments and its archive"))
        erasurePending = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_erasure_oldest_pending", unitName: "seconds",
                helpText: "Seconds since the oldest erasure not yet done in this log was asked for (0: none waits)"))
        erasureOverdue = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_erasure_overdue", unitName: "",
                helpText: "1 while an erasure has waited longer than --erase-within, or the pass is blocked; else 0"))
        archived = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_archived_segments", unitName: "total",
                helpText: "Sealed segments (and LOG files) the archive took a durable copy of"))
        failures = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_archive_failures", unitName: "total",
                helpText: "Archive attempts that failed (each is retried, with backoff, forever)"))
        oldestUnarchived = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_archive_oldest_unarchived", unitName: "seconds",
                helpText: "Seconds since the oldest sealed segment not yet archived was sealed (0: none waits)"))
        waiting = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_archive_waiting", unitName: "segments",
                helpText: "Sealed segments not yet archived"))
        localBytes = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_log_local", unitName: "bytes",
                helpText: "Bytes of segment files in the edge's log directory"))
        pruned = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "clickd_pruned_segments", unitName: "total",
                helpText: "Sealed segments removed from the edge's disk (archived, projected by every follower, older than --keep-local)"))
    }
}

/// Ships an edge's sealed segments to the archive, oldest first, `LOG` before them: a
/// service of the edge's group that the click path never waits on (docs/design/archive.md).
///
/// Each pass lists the log directory, marks newly sealed segments `.ready`, checks each
/// waiting segment alone (`SealedSegment.check`: a segment damaged on this disk is never
/// shipped), copies it, and renames its status to `.done`. A failure stops the pass — the
/// segments after it wait, as PostgreSQL's archiver does — and is retried after 1 s,
/// doubling to 60 s, forever, with a log line and `clickd_archive_failures_total`.
/// Passes start when the writer seals a segment and every `rescanInterval`.
public final class Archiver: Service, Sendable {
    /// What the archiver has done and what waits; for `clickd status` and tests.
    public struct Progress: Sendable, Equatable {
        /// Files (segments and LOG) archived since start.
        public var archived = 0
        public var failures = 0
        /// The last failure's log line, until the next success.
        public var lastFailure: String?
        /// Sealed segments not yet archived, oldest first.
        public var waiting: [String] = []
        /// Since the oldest of `waiting` was sealed (its file's last change).
        public var oldestWaitingAge: Duration?
        /// Bytes of segment files in the log directory.
        public var localBytes: Int64 = 0
        /// Passes finished (a test waits for one after it changed something).
        public var passes = 0
        /// Segments removed by retention since start.
        public var pruned = 0
        /// What keeps the oldest sealed segment on the disk (nil: no retention, or nothing sealed).
        public var retentionWaitsFor: String?
        /// Records replaced by redaction records since start.
        public var redacted = 0
        /// Erasure passes finished (a test waits for one).
        public var erasurePasses = 0
        /// Why the erasure pass cannot finish (a command archive's stale copies), if it cannot.
        public var erasureBlocked: String?
        /// Since the oldest erasure not yet done in this log was asked for.
        public var oldestPendingErasure: Duration?
    }

    public let logDirectory: String
    let configuration: ArchiverConfiguration
    let metrics: ArchiveMetrics?
    let logger: Logger
    private let wake = WakeSignal()
    private let state = Mutex(Progress())

    public init(logDirectory: String, configuration: ArchiverConfiguration, metrics: ArchiveMetrics?, logger: Logger) {
        self.logDirectory = Self.absolute(logDirectory)
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
    }

    /// The writer's `onSegmentSealed`: starts a pass now (called on the flusher thread; it
    /// only resumes a task).
    public func segmentSealed(_ name: String) { wake.signal() }

    public var progress: Progress { state.withLock { $0 } }

    public func run() async throws {
        // A graceful shutdown stops a running command (its teardown) and the wait; what
        // was not archived keeps its `.ready` and is archived at the next start.
        await cancelWhenGracefulShutdown {
            await self.loop()
        }
        // The edge's writer stops first and seals its last segment (`sealOnClose`): one
        // last pass ships it, each command bounded by `finalPassTimeout`, so a stopped edge
        // leaves nothing unarchived. A failure leaves `.ready` for the next start.
        guard !Task.isCancelled, configuration.archives else { return }
        do {
            let logID = try await Self.blocking { try self.start() }
            let survey = try await Self.blocking { try self.survey() }
            for name in survey.pending { try await ship(name, logID: logID, timeout: configuration.finalPassTimeout) }
            publish(try await Self.blocking { try self.survey() })
        } catch {
            logger.warning(
                "the last archive pass before stopping failed; the next start archives the rest",
                metadata: ["error": "\(error)", "log": "\(logDirectory)"])
        }
    }

    private func loop() async {
        var retry = configuration.firstRetry
        var logID: LogID?
        while !Task.isCancelled {
            do {
                if logID == nil { logID = try await Self.blocking { try self.start() } }
                let survey = try await Self.blocking { try self.survey() }
                publish(survey)
                try await erase(logID: logID!)
                for name in survey.pending {
                    try await ship(name, logID: logID!)
                    try Task.checkCancellation()
                    retry = configuration.firstRetry
                }
                if let keepLocal = configuration.keepLocal { try await retain(keepLocal: keepLocal, logID: logID!) }
                if survey.pending.isEmpty { await wake.wait(atMost: configuration.rescanInterval) }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                let line = "\(error)"
                state.withLock {
                    $0.failures += 1
                    $0.lastFailure = line
                }
                metrics?.failures.increment()
                logger.error(
                    "archiving failed; retrying", metadata: ["error": "\(line)", "retry_in": "\(retry.formatted)", "log": "\(logDirectory)"])
                try? await Task.sleep(for: retry)
                retry = min(retry * 2, configuration.maxRetry)
            }
        }
    }

    /// Reads the log's id and prepares the status directory and `followers/` (group
    /// writable: the ingest daemon may run as another user of the log's group).
    private func start() throws -> LogID {
        let logID = try LogMetadata.read(directory: logDirectory).logID
        if configuration.archives { try ArchiveStatus(logDirectory: logDirectory).prepare() }
        // followers/ and erasures/ are the ingest daemons' to write into.
        for directory in [FollowerFile.directory(of: logDirectory), ErasuresFile.directory(of: logDirectory)]
        where !FileSystem.isDirectory(directory) {
            if mkdir(directory, 0o770) != 0 && errno != EEXIST { throw LogError.system("mkdir", path: directory) }
            _ = chmod(directory, 0o770)
            try FileSystem.syncDirectory(logDirectory)
        }
        return logID
    }

    /// One erasure pass (`LogEraser`): rewrites the sealed segments, local and archived, that
    /// hold erased people; before the segments are shipped, so new ones leave clean.
    private func erase(logID: LogID) async throws {
        let eraser = LogEraser(logDirectory: logDirectory, logID: logID, destination: configuration.destination, wallClock: configuration.wallClock)
        let archives = configuration.archives
        var outcome = try await Self.blocking {
            try eraser.pass(states: archives ? try ArchiveStatus(logDirectory: self.logDirectory).states() : [:])
        }
        if case .command = configuration.destination, let replace = configuration.replaceCommand, outcome.people > 0 {
            try await rewriteCommandArchive(eraser, &outcome, replace: replace, logID: logID)
        }
        let now = configuration.wallClock()
        let pending = outcome.oldestPending.map { Duration.milliseconds(max(0, now - Int64(clamping: $0))) }
        let overdue = outcome.status.blocked != nil || (pending.map { $0 > configuration.eraseWithin } ?? false)
        let (wasBlocked, wasOverdue) = state.withLock { s -> (String?, Bool) in
            let before = (s.erasureBlocked, s.oldestPendingErasure.map { $0 > configuration.eraseWithin } ?? false)
            s.redacted += outcome.replaced
            s.erasurePasses += 1
            s.erasureBlocked = outcome.status.blocked
            s.oldestPendingErasure = pending
            return before
        }
        metrics?.redacted.increment(by: Int64(outcome.replaced))
        metrics?.erasurePending.set(pending.map { Double($0.components.seconds) } ?? 0)
        metrics?.erasureOverdue.set(Double(overdue ? 1 : 0))
        if outcome.rewritten > 0 {
            logger.notice(
                "rewrote sealed segments holding erased people",
                metadata: [
                    "segments": "\(outcome.rewritten)", "redacted_records": "\(outcome.replaced)", "read_bytes": "\(outcome.bytesRead)",
                    "people_listed": "\(outcome.people)",
                ])
        }
        if let blocked = outcome.status.blocked, blocked != wasBlocked {
            logger.error("erasure cannot finish in this log", metadata: ["reason": "\(blocked)", "log": "\(logDirectory)"])
        }
        if let pending, pending > configuration.eraseWithin, !wasOverdue {
            logger.error(
                "an erasure has waited longer than --erase-within",
                metadata: ["waited": "\(pending.formatted)", "erase_within": "\(configuration.eraseWithin.formatted)", "log": "\(logDirectory)"])
        }
    }

    /// A command archive's part of the erasure (docs/design/erasure.md, 3b): each `stale`
    /// segment (archived before its rewrite) replaced by its rewritten bytes, and — with
    /// `--restore-command` — each archived segment no longer on this disk fetched into
    /// `<log>/erasing/`, rewritten there and replaced if it held anyone. Progress is written
    /// after each segment; a failure throws (the loop retries with backoff).
    private func rewriteCommandArchive(
        _ eraser: LogEraser, _ outcome: inout LogEraser.Outcome, replace: CommandTemplate, logID: LogID
    ) async throws {
        var status = outcome.status
        let directory = logDirectory
        var matcher = eraser.matcher(outcome)
        var changed = false
        func rewriteFetched(_ name: String) async throws -> SegmentRewrite.Outcome? {
            guard let restore = configuration.restore else { return nil }
            try await Self.blocking {
                if !FileSystem.isDirectory(eraser.scratch), mkdir(eraser.scratch, 0o750) != 0, errno != EEXIST {
                    throw LogError.system("mkdir", path: eraser.scratch)
                }
            }
            let path = FileSystem.join(eraser.scratch, name)
            defer { unlink(path) }
            guard case .fetched = try await restore.fetch(fileName: name, logID: logID, to: path) else { return nil }
            let m = matcher
            let (result, used) = try await Self.blocking { () throws -> (SegmentRewrite.Outcome, ErasureMatcher) in
                var m = m
                let result = try SegmentRewrite.rewrite(path: path, fileName: name, logID: logID, replacement: EventCodec.redaction) { _, payload in
                    m.holds(record: payload)
                }
                return (result, m)
            }
            matcher = used
            if result.replaced > 0 { try await runReplace(replace, path: path, name: name, logID: logID) }
            outcome.checked += 1
            outcome.replaced += result.replaced
            outcome.bytesRead += result.bytesRead
            if result.replaced > 0 { outcome.rewritten += 1 }
            return result
        }
        for name in status.stale.sorted() {
            let local = FileSystem.join(directory, name)
            if FileSystem.exists(local) {
                try await runReplace(replace, path: local, name: name, logID: logID)
            } else if try await rewriteFetched(name) == nil {
                continue  // removed from the disk meanwhile, and no --restore-command: still stale
            }
            status.stale.remove(name)
            try await Self.blocking { [status] in try status.write(logDirectory: directory) }
            outcome.onDisk = status
            changed = true
        }
        while configuration.restore != nil, status.archiveCleanBelow < outcome.firstLocalLSN {
            let name = SegmentName.fileName(firstLSN: status.archiveCleanBelow)
            guard let result = try await rewriteFetched(name) else {
                throw ArchiveError(
                    "the restore command found no \(name) in the archive, so the erasure cannot reach the segments before \(SegmentName.fileName(firstLSN: outcome.firstLocalLSN)) there"
                )
            }
            status.archiveCleanBelow = result.lastLSN + 1
            try await Self.blocking { [status] in try status.write(logDirectory: directory) }
            outcome.onDisk = status
            changed = true
        }
        guard changed else { return }
        outcome.status = status
        outcome = try await Self.blocking { [outcome] in
            var finished = outcome
            try eraser.finish(&finished)
            return finished
        }
    }

    /// Runs `--archive-replace-command` for one segment; throws why not.
    private func runReplace(_ template: CommandTemplate, path: String, name: String, logID: LogID) async throws {
        let command = template.expand(["p": path, "f": name, "l": logID.description])
        let outcome = try await ShellCommand.run(command, timeout: configuration.commandTimeout, killAfter: configuration.killAfter)
        try Task.checkCancellation()
        guard outcome.succeeded else {
            throw ArchiveError(
                "archive replace command for \(name) failed (\(outcome.statusText)): \(command)"
                    + (outcome.output.isEmpty ? "" : " — it printed: \(outcome.output)"))
        }
        logger.info("replaced an archived segment by its rewrite", metadata: ["segment": "\(name)"])
    }

    /// One retention pass: plans what may go (`Retention.plan`) and removes it.
    private func retain(keepLocal: Duration, logID: LogID) async throws {
        let now = configuration.wallClock()
        let archives = configuration.archives
        let (plan, removed) = try await Self.blocking {
            let states = archives ? try ArchiveStatus(logDirectory: self.logDirectory).states() : [:]
            let facts = try Retention.facts(logDirectory: self.logDirectory, logID: logID, states: states, now: now)
            let plan = Retention.plan(facts, keepLocal: keepLocal, archiving: archives)
            return (plan, try Retention.apply(plan, logDirectory: self.logDirectory))
        }
        state.withLock {
            $0.pruned += removed
            $0.retentionWaitsFor = plan.waitsFor
        }
        if removed > 0 {
            metrics?.pruned.increment(by: Int64(removed))
            logger.info(
                "removed sealed segments from the disk", metadata: ["segments": "\(removed)", "through": "\(plan.remove.last!)"])
        }
    }

    struct Survey {
        /// `LOG` first when it is not archived, then the waiting segments, oldest first.
        var pending: [String]
        var waiting: [String]
        var oldestWaitingAge: Duration?
        var localBytes: Int64
    }

    /// Lists the directory: every segment but the last is sealed; a sealed one without a
    /// status file is marked `.ready` (durably) before anything is shipped.
    func survey() throws -> Survey {
        let status = ArchiveStatus(logDirectory: logDirectory)
        let segments = try SegmentName.list(in: logDirectory)
        let states = try status.states()
        var waiting: [String] = []
        var localBytes: Int64 = 0
        var oldestChange: Int64?
        for (index, segment) in segments.enumerated() {
            var st = stat()
            let path = logDirectory + "/" + segment.name
            guard stat(path, &st) == 0 else { continue }  // pruned meanwhile
            localBytes += Int64(st.st_size)
            guard configuration.archives, index < segments.count - 1, states[segment.name] != .done else { continue }
            if states[segment.name] == nil { try status.markReady(segment.name) }
            if waiting.isEmpty { oldestChange = Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000 }
            waiting.append(segment.name)
        }
        let age = oldestChange.map { Duration.milliseconds(max(0, configuration.wallClock() - $0)) }
        let pending = !configuration.archives || states[LogMetadata.fileName] == .done ? waiting : [LogMetadata.fileName] + waiting
        return Survey(pending: pending, waiting: waiting, oldestWaitingAge: age, localBytes: localBytes)
    }

    private func publish(_ survey: Survey) {
        state.withLock {
            $0.waiting = survey.waiting
            $0.oldestWaitingAge = survey.oldestWaitingAge
            $0.localBytes = survey.localBytes
            $0.passes += 1
        }
        metrics?.waiting.set(Double(survey.waiting.count))
        metrics?.localBytes.set(Double(survey.localBytes))
        metrics?.oldestUnarchived.set(survey.oldestWaitingAge.map { Double($0.components.seconds) } ?? 0)
    }

    /// Copies `name` to the archive and marks it `.done`; throws why not.
    private func ship(_ name: String, logID: LogID, timeout: Duration? = nil) async throws {
        let path = logDirectory + "/" + name
        let isSegment = name != LogMetadata.fileName
        switch configuration.destination {
        case .directory(let archive):
            try await Self.blocking {
                if isSegment { _ = try SealedSegment.check(path: path, fileName: name, logID: logID) }
                try archive.store(path: path, fileName: name, logID: logID)
            }
        case .none:
            return
        case .command(let template):
            if isSegment { _ = try await Self.blocking { try SealedSegment.check(path: path, fileName: name, logID: logID) } }
            let command = template.expand(["p": path, "f": name, "l": logID.description])
            let outcome = try await ShellCommand.run(
                command, timeout: min(timeout ?? configuration.commandTimeout, configuration.commandTimeout), killAfter: configuration.killAfter)
            try Task.checkCancellation()
            guard outcome.succeeded else {
                throw ArchiveError(
                    "archive command for \(name) failed (\(outcome.statusText)): \(command)"
                        + (outcome.output.isEmpty ? "" : " — it printed: \(outcome.output)"))
            }
        }
        try await Self.blocking { try ArchiveStatus(logDirectory: self.logDirectory).markDone(name) }
        let cleared = state.withLock { s -> Bool in
            s.archived += 1
            defer { s.lastFailure = nil }
            return s.lastFailure != nil
        }
        metrics?.archived.increment()
        if cleared { logger.notice("archiving works again", metadata: ["segment": "\(name)"]) }
        logger.debug("archived", metadata: ["file": "\(name)"])
    }

    /// File work (reads, fsyncs, renames) off the cooperative pool.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await BlockingThread.run(name: "clickd-archive", body)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return cwd + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
    }
}

public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
