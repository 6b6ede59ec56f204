#if canImport(Glibc)
    import Glibc
#endif

/// Rewrites one sealed segment with some of its records replaced by a payload of the caller's
/// (the redaction record, `EventCodec.redaction`), keeping every LSN: how the log forgets an
/// erased person (docs/design/erasure.md, section 3; docs/log-format.md).
///
/// The segment is checked as it is read — every frame's CRC, the LSN sequence, and the seal
/// footer with the checksum of every byte before it — so a damaged segment is never laundered
/// into one with fresh checksums: the rewrite stops with the damage's offset. The new bytes go
/// to `<segment>.rewrite`, with each rewritten frame's CRC, the segment checksum and the seal
/// footer computed anew (the footer keeps its `sealed_at`); the file is fsynced, renamed over
/// the segment, and the directory fsynced. A crash leaves the old segment or the new one,
/// never a mixture; a `.rewrite` left by a crash is removed by `removeStale`. Nothing is
/// written for a segment with no record to replace.
///
/// Readers are unaffected: they find records by LSN from the segment's header on, never by a
/// remembered offset, and one that has the old file open reads the old bytes to its end.
public enum SegmentRewrite {
    public static let suffix = ".rewrite"

    public struct Outcome: Sendable, Equatable {
        /// Records replaced by this rewrite.
        public var replaced = 0
        public var records = 0
        /// The segment's last LSN.
        public var lastLSN: UInt64 = 0
        public var bytesRead: Int64 = 0
        /// The new file's size (0: nothing was written).
        public var bytesWritten: Int64 = 0
        /// The seal footer's `sealed_at` (0 for a format-1 segment, which has none).
        public var sealedAt: UInt64 = 0
    }

    /// Rewrites the sealed segment at `path` (named `fileName`, of log `logID`), replacing the
    /// payload of each record for which `replace(lsn, payload)` is true by `replacement`. A
    /// record whose payload already is `replacement` is kept as it is, so a second rewrite with
    /// the same rule writes nothing. `beforeRename` runs once the new file is durable and
    /// before it replaces the old one (the archiver records there that an archived copy is
    /// now stale, so a crash after the rename cannot forget it).
    public static func rewrite(
        path: String, fileName: String, logID: LogID, replacement: [UInt8],
        beforeRename: () throws -> Void = {},
        replace: (UInt64, UnsafeRawBufferPointer) -> Bool
    ) throws -> Outcome {
        guard let nameLSN = SegmentName.firstLSN(of: fileName) else {
            throw LogError(.invalidArgument, "\(fileName) is not a segment name (16 lowercase hex digits and .seg)", path: path)
        }
        precondition(!replacement.isEmpty && replacement.count <= RecordFrame.maxPayloadSize)
        let input = try LogFile(path: path, flags: O_RDONLY)
        defer { input.close() }
        var st = stat()
        guard fstat(input.fd, &st) == 0 else { throw LogError.system("fstat", path: path) }
        let size = Int64(st.st_size)
        guard size >= Int64(SegmentHeader.size) else {
            throw LogError(.corrupt, "segment \(path) is \(size) bytes, shorter than its header", path: path, offset: 0)
        }
        let header = try LogScanner.readHeader(file: input, nameLSN: nameLSN, logID: logID)
        var output: Output?
        let temp = path + suffix
        var outcome = Outcome(bytesRead: size)
        do {
            let (segment, _) = try LogScanner.walk(input, name: fileName, header: header, size: size, sealed: true) { lsn, payload, offset in
                let same = payload.count == replacement.count && payload.elementsEqual(replacement)
                let replacing = !same && replace(lsn, payload)
                if replacing, output == nil {
                    output = try Output(path: temp, mode: st.st_mode & 0o777)
                    try output!.copy(from: input, upTo: offset)
                }
                guard output != nil else { return }
                if replacing {
                    outcome.replaced += 1
                    try replacement.withUnsafeBytes { try output!.append(lsn: lsn, payload: $0) }
                } else {
                    try output!.append(lsn: lsn, payload: payload)
                }
            }
            outcome.records = segment.records
            outcome.lastLSN = segment.lastLSN
            outcome.sealedAt = segment.footer?.sealedAt ?? 0
            guard var output else { return outcome }
            if let old = segment.footer {
                let footer = SegmentFooter(
                    firstLSN: old.firstLSN, lastLSN: old.lastLSN, records: old.records, offset: output.size,
                    sealedAt: old.sealedAt, segmentChecksum: output.checksum)
                try output.appendRaw(footer.encoded())
            }
            try output.finish()
            outcome.bytesWritten = output.size
            try beforeRename()
            if rename(temp, path) != 0 { throw LogError.system("rename to", path: path) }
            try FileSystem.syncDirectory(FileSystem.parent(of: path))
            return outcome
        } catch {
            output?.file.close()
            unlink(temp)
            throw error
        }
    }

    /// Removes every `<segment>.rewrite` in `directory` (a rewrite a crash cut short; the
    /// segment itself is whole). Returns how many.
    @discardableResult
    public static func removeStale(in directory: String) throws -> Int {
        var removed = 0
        for name in try FileSystem.list(directory) where name.hasSuffix(SegmentName.suffix + suffix) {
            if unlink(FileSystem.join(directory, name)) == 0 { removed += 1 }
        }
        return removed
    }

    /// The new file, written in 1 MiB chunks, with a running CRC-32C of every byte (the seal
    /// footer's `segcrc`).
    private struct Output {
        let file: LogFile
        var buffer: [UInt8] = []
        var size: Int64 = 0
        var checksum: UInt32 = 0
        var written: Int64 = 0

        init(path: String, mode: mode_t) throws {
            file = try LogFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
            buffer.reserveCapacity(Self.chunk + RecordFrame.headerSize + RecordFrame.maxPayloadSize)
        }

        static let chunk = 1 << 20

        /// The input's bytes before `offset` (header and the frames kept as they were).
        mutating func copy(from input: LogFile, upTo offset: Int64) throws {
            var at: Int64 = 0
            while at < offset {
                let bytes = try input.read(count: Int(min(Int64(Self.chunk), offset - at)), at: at)
                guard !bytes.isEmpty else { throw LogError(.io, "segment \(input.path) ended at byte \(at) while it was copied", path: input.path) }
                try appendRaw(bytes)
                at += Int64(bytes.count)
            }
        }

        mutating func append(lsn: UInt64, payload: UnsafeRawBufferPointer) throws {
            let start = buffer.count
            RecordFrame.append(lsn: lsn, payload: payload, to: &buffer)
            checksum = buffer.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...]), seed: checksum) }
            size += Int64(buffer.count - start)
            if buffer.count >= Self.chunk { try flush() }
        }

        /// Bytes that go into the checksum as they are; the seal footer last, which the
        /// checksum does not cover, so it is computed before the footer is appended.
        mutating func appendRaw(_ bytes: [UInt8]) throws {
            checksum = CRC32C.checksum(bytes, seed: checksum)
            buffer.append(contentsOf: bytes)
            size += Int64(bytes.count)
            if buffer.count >= Self.chunk { try flush() }
        }

        mutating func flush() throws {
            guard !buffer.isEmpty else { return }
            try file.write(buffer, at: written)
            written += Int64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }

        mutating func finish() throws {
            try flush()
            try file.sync()
            file.close()
        }
    }
}
