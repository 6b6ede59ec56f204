import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Creation and recovery of a log directory: the one place where files of the log are
/// created, cut and made durable (see docs/log-format.md, "Recovery").
enum LogDirectory {
    /// Files a log directory may hold before its `LOG` file exists (a creation that crashed).
    private static let creationLeftovers: Set<String> = [WriterLock.fileName, LogMetadata.fileName + ".tmp", DurableWatermark.fileName]

    /// The mode of a log directory clickd creates (an existing one keeps its mode).
    static let directoryMode: mode_t = 0o750

    /// Makes sure `directory` can hold a log: creates it if missing (its parent must
    /// exist), and refuses a non-empty directory that is not a log.
    static func prepareForWriting(_ directory: String) throws {
        if !FileSystem.exists(directory) {
            if mkdir(directory, directoryMode) != 0 && errno != EEXIST {
                let err = errno
                throw LogError(.directory, "cannot create log directory \(directory): \(String(cString: strerror(err)))", path: directory, errno: err)
            }
            // Exactly 0750 whatever the umask: the writer and its group (the ingest daemon).
            _ = chmod(directory, directoryMode)
            let parent = directory.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
            try FileSystem.syncDirectory(parent.isEmpty ? (directory.hasPrefix("/") ? "/" : ".") : parent)
        }
        guard FileSystem.isDirectory(directory) else {
            throw LogError(.directory, "\(directory) is not a directory", path: directory)
        }
        if access(directory, W_OK | X_OK) != 0 {
            let err = errno
            throw LogError(.directory, "log directory \(directory) is not writable: \(String(cString: strerror(err)))", path: directory, errno: err)
        }
        let names = try FileSystem.list(directory)
        if names.contains(RestoredLog.markerName) {
            throw LogError(
                .directory,
                "\(directory) holds a log restored from its archive (it has a \(RestoredLog.markerName) file): it is read by ingest and rebuild, never appended to — start the edge on a new, empty directory (a new log)",
                path: directory)
        }
        if !names.contains(LogMetadata.fileName), !names.allSatisfy(creationLeftovers.contains) {
            throw LogError(
                .notALog,
                "\(directory) is not empty and is not a clickd log (no \(LogMetadata.fileName) file); use an empty or new directory",
                path: directory)
        }
    }

    /// Reads `LOG`, creating it (with a fresh log id) for a new log. Call with the writer lock held.
    static func ensureMetadata(_ directory: String) throws -> LogMetadata {
        if FileSystem.exists(FileSystem.join(directory, LogMetadata.fileName)) {
            return try LogMetadata.read(directory: directory)
        }
        var rng = SystemRandomNumberGenerator()
        let metadata = LogMetadata(logID: .random(using: &rng), created: LogMetadata.now())
        try FileSystem.createDurably(directory: directory, name: LogMetadata.fileName, contents: metadata.encoded())
        return metadata
    }

    /// Creates an empty segment whose first record will be `firstLSN`, durably.
    static func createSegment(_ directory: String, logID: LogID, firstLSN: UInt64) throws {
        let header = SegmentHeader(logID: logID, firstLSN: firstLSN)
        try FileSystem.createDurably(directory: directory, name: SegmentName.fileName(firstLSN: firstLSN), contents: header.encoded())
    }

    /// Checks the whole log and repairs a torn tail: the damaged bytes after the last valid
    /// record of the last segment (up to the last non-zero byte) are copied to
    /// `<segment>.broken` (synced), then the segment is cut back to its last valid record.
    /// Corruption anywhere else throws. Call with the writer lock held.
    static func recover(_ directory: String, logger: Logger) throws -> LogScan {
        for name in try FileSystem.list(directory) where name.hasSuffix(".tmp") {
            unlink(FileSystem.join(directory, name))
        }
        var scan = try LogScanner.scan(directory: directory)
        if let torn = scan.tornTail {
            let file = try LogFile(path: torn.path, flags: O_RDWR)
            var keep = "nowhere (nothing to keep)"
            if torn.length > 0 {
                let cut = try file.read(count: Int(torn.length), at: torn.offset)
                keep = try brokenFileName(for: torn.path)
                let kept = try LogFile(path: keep, flags: O_WRONLY | O_CREAT | O_EXCL)
                try kept.write(cut, at: 0)
                try kept.sync()
                kept.close()
            }
            try file.truncate(to: torn.offset)
            if torn.offset < Int64(SegmentHeader.size) {
                // The header itself was torn: write it again (it holds no records yet).
                let segment = scan.segments[scan.segments.count - 1]
                let header = SegmentHeader(logID: scan.metadata.logID, firstLSN: segment.firstLSN).encoded()
                try file.write(header, at: 0)
                scan.segments[scan.segments.count - 1].validEnd = Int64(SegmentHeader.size)
                scan.segments[scan.segments.count - 1].version = SegmentHeader.currentVersion
                scan.segments[scan.segments.count - 1].checksum = CRC32C.checksum(header)
            }
            try file.sync()
            try FileSystem.syncDirectory(directory)
            var metadata: Logger.Metadata = [
                "log.segment": "\(torn.path)", "log.offset": "\(torn.offset)", "log.cut_bytes": "\(torn.length)",
                "log.kept_in": "\(keep)", "log.reason": "\(torn.reason)",
            ]
            if torn.losesAcknowledged {
                metadata["log.published_durable_lsn"] = "\(scan.publishedDurable)"
                logger.error("recovery cut records that had been acknowledged as durable: the disk lost data", metadata: metadata)
            } else {
                logger.warning("torn tail cut from the last segment (an interrupted write)", metadata: metadata)
            }
            scan.segments[scan.segments.count - 1].fileSize = max(torn.offset, Int64(SegmentHeader.size))
            scan.segments[scan.segments.count - 1].validEnd = max(torn.offset, Int64(SegmentHeader.size))
            scan.tornTail = nil
        }
        return scan
    }

    private static func brokenFileName(for path: String) throws -> String {
        var candidate = path + ".broken"
        var n = 1
        while FileSystem.exists(candidate) {
            n += 1
            candidate = path + ".broken.\(n)"
        }
        return candidate
    }
}

/// A log brought back from its archive by `clickd log restore` carries a `RESTORED` file
/// (what was restored, from where, up to which LSN), and no writer opens it: the archive
/// may lack the tail the lost disk held, and LSNs past the restored end may already be
/// projected, so new clicks under them would be skipped as seen (docs/design/archive.md).
public enum RestoredLog {
    public static let markerName = "RESTORED"
}
