#if canImport(Glibc)
    import Glibc
#endif

/// What a database that follows a log still needs of it: `<log>/followers/<database id>`,
/// written by the ingest daemon (temp file + rename), read by the edge's retention, which
/// never removes a segment a follower may read again (docs/design/archive.md, "Retention";
/// docs/log-format.md). Like a PostgreSQL replication slot: a follower that stops holds
/// the log from its `needed_from` on until its file is removed.
///
///     clickd-follower
///     log_id 6f1c2e1a-…
///     database 0b3e…
///     needed_from 48213
///     updated 1765100000000
public struct FollowerFile: Sendable, Equatable {
    public static let directoryName = "followers"
    static let magic = "clickd-follower"

    public var logID: LogID
    /// The database's id (`clickd_internal.database_identity`), also the file's name.
    public var database: String
    /// The lowest LSN this database may still read again.
    public var neededFrom: UInt64
    /// Milliseconds since the Unix epoch when the daemon wrote it.
    public var updated: UInt64

    public init(logID: LogID, database: String, neededFrom: UInt64, updated: UInt64) {
        self.logID = logID
        self.database = database
        self.neededFrom = neededFrom
        self.updated = updated
    }

    /// A database id is a file name: letters, digits and '-' only, 1 to 64 of them.
    public static func isValidDatabaseID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { $0 == UInt8(ascii: "-") || ($0 < 128 && isalnum(Int32($0)) != 0) }
    }

    public func encoded() -> [UInt8] {
        Array("\(Self.magic)\nlog_id \(logID)\ndatabase \(database)\nneeded_from \(neededFrom)\nupdated \(updated)\n".utf8)
    }

    public static func parse(_ text: String) -> FollowerFile? {
        let lines = text.split(separator: "\n")
        guard lines.first == Substring(magic) else { return nil }
        var fields: [Substring: Substring] = [:]
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: " ") else { return nil }
            fields[line[..<space]] = line[line.index(after: space)...]
        }
        guard let id = fields["log_id"].flatMap({ LogID(String($0)) }), let database = fields["database"].map(String.init),
            isValidDatabaseID(database), let needed = fields["needed_from"].flatMap({ UInt64($0) }), needed >= 1,
            let updated = fields["updated"].flatMap({ UInt64($0) })
        else { return nil }
        return FollowerFile(logID: id, database: database, neededFrom: needed, updated: updated)
    }

    public static func directory(of logDirectory: String) -> String { FileSystem.join(logDirectory, directoryName) }

    /// Replaces this database's file in `logDirectory/followers` (which the edge makes).
    /// Not fsynced: a file lost to a crash only prunes less until the next write.
    public func write(logDirectory: String) throws {
        let directory = Self.directory(of: logDirectory)
        guard FileSystem.isDirectory(directory) else {
            throw LogError(.directory, "\(directory) does not exist: the edge makes it when it starts", path: directory)
        }
        try FileSystem.replace(FileSystem.join(directory, database), contents: encoded())
    }

    /// One entry of `followers/`: the file's name and what it says (nil: unreadable or
    /// not a follower file — retention then holds everything, and says so).
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var file: FollowerFile?

        public init(name: String, file: FollowerFile?) {
            self.name = name
            self.file = file
        }
    }

    /// Every follower file of the log in `logDirectory` (temporary files skipped).
    public static func readAll(logDirectory: String) throws -> [Entry] {
        let directory = directory(of: logDirectory)
        guard FileSystem.isDirectory(directory) else { return [] }
        return try FileSystem.list(directory).filter { !$0.hasSuffix(".tmp") }.sorted().map { name in
            let bytes = try? LogFile(path: FileSystem.join(directory, name), flags: O_RDONLY).read(count: 4096, at: 0)
            let file = bytes.flatMap { parse(String(decoding: $0, as: UTF8.self)) }
            return Entry(name: name, file: file?.database == name ? file : nil)
        }
    }
}
