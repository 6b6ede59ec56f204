import EventLog

#if canImport(Glibc)
    import Glibc
#endif

/// An archive on a mounted filesystem (`clickd edge --archive-dir DIR`): one directory per
/// log, named by its log id, holding `LOG` and the sealed segments under their own names
/// (docs/design/archive.md, "Layout").
public struct DirectoryArchive: Sendable, Equatable {
    public let root: String

    public init(root: String) { self.root = root }

    public func directory(of logID: LogID) -> String { FileSystem.join(root, logID.description) }

    /// Stores the file at `path` as `fileName` of log `logID`, durably: copied to
    /// `<name>.tmp`, fsynced, renamed, the directory fsynced. An archived file of that
    /// name with the same bytes is a success (fsynced again: a crash may have come before
    /// its sync); one with other bytes is an error, and it is never overwritten.
    public func store(path: String, fileName: String, logID: LogID) throws {
        let directory = directory(of: logID)
        if !FileSystem.isDirectory(directory) {
            try Self.makeDirectory(root)
            try Self.makeDirectory(directory)
            try FileSystem.syncDirectory(root)
        }
        let target = FileSystem.join(directory, fileName)
        if FileSystem.exists(target) {
            try Self.requireIdentical(path, target)
            try LogFile(path: target, flags: O_RDONLY).sync()
            try FileSystem.syncDirectory(directory)
            return
        }
        try FileCopy.durably(from: path, to: target)
    }

    /// Copies archived `fileName` of `logID` to `path`, durably; `.notFound` when the
    /// archive has no such file.
    public func fetch(fileName: String, logID: LogID, to path: String) throws -> FetchOutcome {
        let source = FileSystem.join(directory(of: logID), fileName)
        guard FileSystem.exists(source) else { return .notFound }
        try FileCopy.durably(from: source, to: path)
        return .fetched
    }

    public enum FetchOutcome: Sendable, Equatable {
        case fetched
        case notFound
    }

    /// The log ids the archive holds (its directories whose names parse as one).
    public func logIDs() throws -> [LogID] {
        guard FileSystem.isDirectory(root) else { return [] }
        return try FileSystem.list(root).compactMap { LogID($0) }.sorted { $0.description < $1.description }
    }

    private static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o750) != 0 && errno != EEXIST { throw LogError.system("mkdir", path: path) }
    }

    /// Throws unless the files at `a` and `b` hold the same bytes.
    static func requireIdentical(_ a: String, _ b: String) throws {
        let left = try LogFile(path: a, flags: O_RDONLY)
        let right = try LogFile(path: b, flags: O_RDONLY)
        let size = try left.size()
        guard try right.size() == size else {
            throw LogError(
                .corrupt, "\(b) already exists with \(try right.size()) bytes, not the \(size) of \(a): it is not overwritten",
                path: b)
        }
        var offset: Int64 = 0
        while offset < size {
            let count = Int(min(Int64(FileCopy.chunk), size - offset))
            guard try left.read(count: count, at: offset) == right.read(count: count, at: offset) else {
                throw LogError(
                    .corrupt, "\(b) already exists with other bytes than \(a) (from byte \(offset)): it is not overwritten",
                    path: b, offset: offset)
            }
            offset += Int64(count)
        }
    }
}

/// Durable file copies, the one way files enter an archive directory or a restored log.
enum FileCopy {
    static let chunk = 1 << 20

    /// Copies `source` to `target` through `target.tmp`: write, fsync, rename, fsync the
    /// directory. A crash leaves no `target` or the whole of it.
    static func durably(from source: String, to target: String) throws {
        let temp = target + ".tmp"
        let input = try LogFile(path: source, flags: O_RDONLY)
        do {
            let output = try LogFile(path: temp, flags: O_WRONLY | O_CREAT | O_TRUNC)
            var offset: Int64 = 0
            while true {
                let bytes = try input.read(count: chunk, at: offset)
                if bytes.isEmpty { break }
                try output.write(bytes, at: offset)
                offset += Int64(bytes.count)
            }
            try output.sync()
            output.close()
            if rename(temp, target) != 0 { throw LogError.system("rename to", path: target) }
            try FileSystem.syncDirectory(FileSystem.parent(of: target))
        } catch {
            unlink(temp)
            throw error
        }
    }
}
