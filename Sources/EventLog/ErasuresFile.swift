#if canImport(Glibc)
    import Glibc
#endif

/// Who a database has erased, told to the edge that owns a log: `<log>/erasures/<database
/// id>`, written by the ingest daemon (temp file + rename, the `followers/` pattern), read by
/// the edge's archiver, which rewrites the sealed segments holding those people's records
/// (docs/design/erasure.md, section 3). The edge has no database; this file is how it
/// learns the list.
///
///     clickd-erasures
///     database 0b3e…
///     revision 3-1765100000000
///     key <64 hex digits>                  HMAC-SHA256 key of the list (clickd_ingest.erasure_key)
///     mac <64 hex digits> 1765100000000    one line per erased person: HMAC(key, customer id),
///                                          and when the erasure was asked for (ms since the epoch)
///
/// Ids are never written in clear: a MAC under the database's key, as in
/// `clickd_ingest.erasures`. `revision` names the list (its size and newest request; the
/// list only grows), and the edge echoes it in `erasure_status` once every segment
/// is clean for it, which is how the daemon learns that a log forgot (`log_clean_at`).
public struct ErasuresFile: Sendable, Equatable {
    public static let directoryName = "erasures"
    static let magic = "clickd-erasures"
    /// The largest file read (about 800,000 people at 80 bytes a line): a bound before the
    /// bytes are parsed, not a limit the daemon meets in practice.
    public static let maxBytes = 64 << 20

    public var database: String
    public var revision: String
    public var key: [UInt8]
    public var macs: [Entry]

    /// One erased person: the MAC of their id, and when the erasure was asked for.
    public struct Entry: Sendable, Equatable {
        public var mac: [UInt8]
        public var requestedAt: UInt64

        public init(mac: [UInt8], requestedAt: UInt64) {
            self.mac = mac
            self.requestedAt = requestedAt
        }
    }

    public init(database: String, revision: String, key: [UInt8], macs: [Entry]) {
        self.database = database
        self.revision = revision
        self.key = key
        self.macs = macs
    }

    public func encoded() -> [UInt8] {
        var text = "\(Self.magic)\ndatabase \(database)\nrevision \(revision)\nkey \(Hex.string(key))\n"
        text.reserveCapacity(text.utf8.count + macs.count * 84)
        for entry in macs { text += "mac \(Hex.string(entry.mac)) \(entry.requestedAt)\n" }
        return Array(text.utf8)
    }

    /// A revision is a token: letters, digits, '-' and '.', 1 to 64 of them.
    static func isValidToken(_ text: Substring) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") || ($0 < 128 && isalnum(Int32($0)) != 0) }
    }

    /// The file's contents, or nil when they are not an erasures file (every MAC and the key
    /// exactly 32 bytes).
    public static func parse(_ text: String) -> ErasuresFile? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(magic) else { return nil }
        var database: String?
        var revision: String?
        var key: [UInt8]?
        var macs: [Entry] = []
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: " ") else { return nil }
            let value = line[line.index(after: space)...]
            switch line[..<space] {
            case "database": database = String(value)
            case "revision":
                guard isValidToken(value) else { return nil }
                revision = String(value)
            case "key":
                guard value.utf8.count == 64, let bytes = Hex.bytes(value) else { return nil }
                key = bytes
            case "mac":
                let fields = value.split(separator: " ")
                guard fields.count == 2, fields[0].utf8.count == 64, let bytes = Hex.bytes(fields[0]), let time = UInt64(fields[1]) else {
                    return nil
                }
                macs.append(Entry(mac: bytes, requestedAt: time))
            default: continue  // a later field: ignored, as the follower file's are
            }
        }
        guard let database, FollowerFile.isValidDatabaseID(database), let revision, let key else { return nil }
        return ErasuresFile(database: database, revision: revision, key: key, macs: macs)
    }

    public static func directory(of logDirectory: String) -> String { FileSystem.join(logDirectory, directoryName) }

    /// Replaces this database's file in `logDirectory/erasures` (which the edge makes).
    /// fsynced: the edge must not forget a list it was told (a lost file would only delay
    /// the rewrite until the next write, but the daemon writes only when the list changes).
    public func write(logDirectory: String) throws {
        let directory = Self.directory(of: logDirectory)
        guard FileSystem.isDirectory(directory) else {
            throw LogError(.directory, "\(directory) does not exist: the edge makes it when it starts", path: directory)
        }
        try FileSystem.createDurably(directory: directory, name: database, contents: encoded())
    }

    /// The `revision` of database `database`'s file in `logDirectory` (nil: none, or not one),
    /// from its first lines alone: what the daemon compares every 10 s without reading the
    /// list (the writer puts `revision` third).
    public static func revision(logDirectory: String, database: String) -> String? {
        let path = FileSystem.join(directory(of: logDirectory), database)
        guard let file = try? LogFile(path: path, flags: O_RDONLY), let bytes = try? file.read(count: 512, at: 0) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard lines.first == Substring(magic), lines.count > 3, lines[1] == "database \(database)", lines[2].hasPrefix("revision ") else {
            return nil
        }
        return String(lines[2].dropFirst("revision ".count))
    }

    /// Every erasures file of the log in `logDirectory` (temporary files skipped). A file
    /// that does not parse is an error naming it: the edge must not go on as if it held
    /// nobody.
    public static func readAll(logDirectory: String) throws -> [ErasuresFile] {
        let directory = directory(of: logDirectory)
        guard FileSystem.isDirectory(directory) else { return [] }
        return try FileSystem.list(directory).filter { !$0.hasSuffix(".tmp") }.sorted().map { name in
            let path = FileSystem.join(directory, name)
            let file = try LogFile(path: path, flags: O_RDONLY)
            defer { file.close() }
            let size = try file.size()
            guard size <= Int64(maxBytes) else {
                throw LogError(.corrupt, "\(path) is \(size) bytes, over the \(maxBytes) an erasures file may hold", path: path)
            }
            let bytes = try file.read(count: Int(size), at: 0)
            guard let parsed = parse(String(decoding: bytes, as: UTF8.self)), parsed.database == name else {
                throw LogError(.corrupt, "\(path) is not an erasures file for database \(name)", path: path)
            }
            return parsed
        }
    }
}

/// What the edge's archiver has made of the erasures files: `<log>/erasure_status`, written
/// by the edge after each erasure pass (temp file + rename), read by the ingest daemon
/// (which sets `log_clean_at`) and by `clickd status`.
///
///     clickd-erasure-status
///     lists 0b3e…=3-1765100000000          the lists the segments below were checked against
///     clean 0000000000000001.seg           a sealed segment checked (and rewritten if it had to be)
///     done 0b3e…=3-1765100000000 1765100042000
///                                          every segment sealed by then is clean for that list
///     stale 0000000000000001.seg           rewritten here, but its archived copy (a command
///                                          archive's) still holds the old bytes
///     archive_clean_below 48213            a command archive's segments before this LSN that
///                                          are no longer on this disk were fetched and checked
///     blocked <reason>                     why a pass cannot finish (an archive it cannot rewrite)
///
/// `done`'s time is the newest seal footer's `sealed_at` among the segments checked: every
/// record written before it lies in a clean segment (records after it are in the open
/// segment, which ingestion filters, and are rewritten once it seals).
public struct ErasureStatus: Sendable, Equatable {
    public static let fileName = "erasure_status"
    static let magic = "clickd-erasure-status"

    /// `database=revision` of every list, sorted: the `clean` set holds only for these.
    public var lists: [String] = []
    public var clean: Set<String> = []
    /// Segments whose archived copy could not be rewritten; kept until it is (never reset
    /// with the lists: the old bytes are still out there).
    public var stale: Set<String> = []
    /// With a command archive: every archived segment before this LSN that retention removed
    /// from the disk was fetched, checked and (if it had to be) replaced, for these lists.
    public var archiveCleanBelow: UInt64 = 1
    /// database → (revision, covered until, in ms since the epoch).
    public var done: [String: Done] = [:]
    public var blocked: String?

    public struct Done: Sendable, Equatable {
        public var revision: String
        public var coveredUntil: UInt64

        public init(revision: String, coveredUntil: UInt64) {
            self.revision = revision
            self.coveredUntil = coveredUntil
        }
    }

    public init() {}

    public func encoded() -> [UInt8] {
        var text = "\(Self.magic)\nlists \(lists.joined(separator: ","))\n"
        for name in clean.sorted() { text += "clean \(name)\n" }
        for name in stale.sorted() { text += "stale \(name)\n" }
        text += "archive_clean_below \(archiveCleanBelow)\n"
        for (database, done) in done.sorted(by: { $0.key < $1.key }) {
            text += "done \(database)=\(done.revision) \(done.coveredUntil)\n"
        }
        if let blocked { text += "blocked \(blocked.split(whereSeparator: \.isNewline).joined(separator: " "))\n" }
        return Array(text.utf8)
    }

    public static func parse(_ text: String) -> ErasureStatus? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == Substring(magic) else { return nil }
        var status = ErasureStatus()
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard let name = parts.first else { continue }  // a line of spaces
            let value = parts.count > 1 ? parts[1] : ""
            switch name {
            case "lists": status.lists = value.split(separator: ",").map(String.init)
            case "clean":
                guard SegmentName.firstLSN(of: String(value)) != nil else { return nil }
                status.clean.insert(String(value))
            case "stale":
                guard SegmentName.firstLSN(of: String(value)) != nil else { return nil }
                status.stale.insert(String(value))
            case "done":
                let fields = value.split(separator: " ")
                guard fields.count == 2, let equals = fields[0].firstIndex(of: "="), let time = UInt64(fields[1]) else { return nil }
                status.done[String(fields[0][..<equals])] = Done(
                    revision: String(fields[0][fields[0].index(after: equals)...]), coveredUntil: time)
            case "archive_clean_below":
                guard let lsn = UInt64(value), lsn >= 1 else { return nil }
                status.archiveCleanBelow = lsn
            case "blocked": status.blocked = String(value)
            default: continue
            }
        }
        return status
    }

    /// The log's status (an empty one when the edge has written none yet, or when it does
    /// not parse: the edge then checks every segment again).
    public static func read(logDirectory: String) -> ErasureStatus {
        let path = FileSystem.join(logDirectory, fileName)
        guard let file = try? LogFile(path: path, flags: O_RDONLY) else { return ErasureStatus() }
        defer { file.close() }
        guard let size = try? file.size(), size <= Int64(ErasuresFile.maxBytes), let bytes = try? file.read(count: Int(size), at: 0) else {
            return ErasureStatus()
        }
        return parse(String(decoding: bytes, as: UTF8.self)) ?? ErasureStatus()
    }

    /// Replaces the file. Not fsynced: a status lost to a crash only makes the next pass
    /// check again what it had checked (a rewrite is idempotent).
    public func write(logDirectory: String) throws {
        try FileSystem.replace(FileSystem.join(logDirectory, Self.fileName), contents: encoded())
    }
}
