import EventLog

#if canImport(Glibc)
    import Glibc
#endif

/// Which sealed segments an edge removes from its disk (docs/design/archive.md, "The
/// rule"): oldest first, each only when it is archived (when archiving is on), every
/// follower's `needed_from` is past its last LSN, and it was sealed longer ago than
/// `--keep-local`. The first segment that fails a condition stops the run, so the local
/// segments stay one contiguous range ending at the open one. A pure plan over what a pass
/// read (`Retention.Facts`); `Retention.apply` does the removals.
public enum Retention {
    /// What one pass read from the log directory.
    public struct Facts: Sendable {
        public struct Segment: Sendable {
            public var name: String
            /// The last LSN it holds: the next segment's first LSN - 1.
            public var lastLSN: UInt64
            /// Milliseconds since the epoch: its footer's `sealed_at` (a format-1 segment:
            /// its file's last change).
            public var sealedAt: Int64
            public var archived: Bool

            public init(name: String, lastLSN: UInt64, sealedAt: Int64, archived: Bool) {
                self.name = name
                self.lastLSN = lastLSN
                self.sealedAt = sealedAt
                self.archived = archived
            }
        }

        /// The sealed segments, oldest first (never the open one).
        public var sealed: [Segment]
        public var followers: [FollowerFile.Entry]
        public var logID: LogID
        public var now: Int64

        public init(sealed: [Segment], followers: [FollowerFile.Entry], logID: LogID, now: Int64) {
            self.sealed = sealed
            self.followers = followers
            self.logID = logID
            self.now = now
        }
    }

    public struct Plan: Sendable, Equatable {
        /// Segment file names to remove, oldest first.
        public var remove: [String] = []
        /// What keeps the oldest remaining sealed segment (nil: none is sealed).
        public var waitsFor: String?

        public init(remove: [String] = [], waitsFor: String? = nil) {
            self.remove = remove
            self.waitsFor = waitsFor
        }
    }

    public static func plan(_ facts: Facts, keepLocal: Duration, archiving: Bool) -> Plan {
        var plan = Plan()
        let keepMilliseconds = keepLocal.components.seconds * 1000 + keepLocal.components.attoseconds / 1_000_000_000_000_000
        let unreadable = facts.followers.first { $0.file == nil || $0.file!.logID != facts.logID }
        let needed = facts.followers.compactMap(\.file).map(\.neededFrom).min()
        for segment in facts.sealed {
            if facts.followers.isEmpty {
                plan.waitsFor = "a follower: no ingest daemon has written a file in followers/ (nothing says this log is projected)"
            } else if let unreadable {
                plan.waitsFor = "followers/\(unreadable.name), which is not a follower file of this log (fix or remove it)"
            } else if let needed, segment.lastLSN >= needed {
                let holder = facts.followers.compactMap(\.file).min { $0.neededFrom < $1.neededFrom }!
                plan.waitsFor = "follower \(holder.database), which still needs LSN \(holder.neededFrom) on"
            } else if archiving, !segment.archived {
                plan.waitsFor = "the archive (\(segment.name) is not archived yet)"
            } else if facts.now - segment.sealedAt < keepMilliseconds {
                plan.waitsFor = "--keep-local (\(segment.name) was sealed \(max(0, facts.now - segment.sealedAt) / 1000) s ago)"
            } else {
                plan.remove.append(segment.name)
                continue
            }
            break
        }
        return plan
    }

    /// Reads the facts of the log in `logDirectory`.
    public static func facts(logDirectory: String, logID: LogID, states: [String: ArchiveStatus.State], now: Int64) throws -> Facts {
        let segments = try SegmentName.list(in: logDirectory)
        var sealed: [Facts.Segment] = []
        for (index, segment) in segments.enumerated().dropLast() {
            let path = FileSystem.join(logDirectory, segment.name)
            var sealedAt: Int64
            var st = stat()
            guard stat(path, &st) == 0 else { break }
            sealedAt = Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
            if st.st_size >= Int64(SegmentHeader.size + SegmentFooter.size),
                let tail = try? LogFile(path: path, flags: O_RDONLY).read(
                    count: SegmentFooter.size, at: Int64(st.st_size) - Int64(SegmentFooter.size)),
                case .success(let footer) = tail.withUnsafeBytes({ SegmentFooter.decode($0) })
            {
                sealedAt = Int64(clamping: footer.sealedAt)
            }
            sealed.append(
                Facts.Segment(
                    name: segment.name, lastLSN: segments[index + 1].firstLSN - 1, sealedAt: sealedAt, archived: states[segment.name] == .done))
        }
        return Facts(sealed: sealed, followers: try FollowerFile.readAll(logDirectory: logDirectory), logID: logID, now: now)
    }

    /// Removes the planned segments, oldest first: unlink, sync the directory, then forget
    /// its status file. Returns how many went.
    static func apply(_ plan: Plan, logDirectory: String) throws -> Int {
        let status = ArchiveStatus(logDirectory: logDirectory)
        for name in plan.remove {
            let path = FileSystem.join(logDirectory, name)
            if unlink(path) != 0, errno != ENOENT { throw LogError.system("unlink", path: path) }
            try FileSystem.syncDirectory(logDirectory)
            try status.forget(name)
        }
        return plan.remove.count
    }
}
