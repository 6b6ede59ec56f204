import ClickdTestSupport
import Foundation
import Testing

@testable import EventLog

/// Rewriting a sealed segment with some records redacted (docs/design/erasure.md, section 3):
/// every LSN kept, every checksum and the seal footer made anew, a damaged segment never
/// laundered, and the files the edge and the daemon exchange about it.
@Suite struct SegmentRewriteTests {
    static let redaction: [UInt8] = [1, 4]

    @Test func replacedRecordsKeepTheirLSNsAndTheSegmentChecksAlone() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        try await LogFixtures.makeLog(log, count: 3000, segmentSize: 64 << 10)
        let logID = try LogReader(directory: log).logID
        let segments = try SegmentName.list(in: log)
        #expect(segments.count >= 3)
        var replaced = 0
        for segment in segments.dropLast() {
            let path = FileSystem.join(log, segment.name)
            let before = try SealedSegment.check(path: path, fileName: segment.name, logID: logID)
            let outcome = try SegmentRewrite.rewrite(path: path, fileName: segment.name, logID: logID, replacement: Self.redaction) { lsn, _ in
                lsn % 7 == 0
            }
            let after = try SealedSegment.check(path: path, fileName: segment.name, logID: logID)
            #expect(outcome.replaced == (before.firstLSN...before.lastLSN).filter { $0 % 7 == 0 }.count)
            #expect(outcome.bytesWritten == after.bytes && after.bytes < before.bytes)
            #expect(after.firstLSN == before.firstLSN && after.lastLSN == before.lastLSN && after.records == before.records)
            #expect(after.footer?.sealedAt == before.footer?.sealedAt)
            var st = stat()
            #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == LogFile.fileMode)
            replaced += outcome.replaced
            // Again with the same rule: nothing to replace, nothing written.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let again = try SegmentRewrite.rewrite(path: path, fileName: segment.name, logID: logID, replacement: Self.redaction) { lsn, _ in
                lsn % 7 == 0
            }
            #expect(again.replaced == 0 && again.bytesWritten == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        }
        #expect(replaced > 300)
        #expect(try FileManager.default.contentsOfDirectory(atPath: log).allSatisfy { !$0.hasSuffix(SegmentRewrite.suffix) })
        // A reader sees every LSN, the redaction where a record was replaced.
        let lastSealed = try SealedSegment.check(
            path: FileSystem.join(log, segments[segments.count - 2].name), fileName: segments[segments.count - 2].name, logID: logID
        ).lastLSN
        let records = try LogFixtures.readAll(log)
        #expect(records.map(\.lsn) == Array(1...3000))
        for record in records {
            let expected = record.lsn <= lastSealed && record.lsn % 7 == 0 ? Self.redaction : LogFixtures.payload(Int(record.lsn))
            if record.payload != expected { Issue.record("LSN \(record.lsn): \(record.payload.prefix(12))") }
        }
        // The writer opens the log again (recovery reads the rewritten segments' headers).
        let writer = try EventLogWriter(directory: log, configuration: LogFixtures.configuration(segmentSize: 64 << 10), logger: LogFixtures.quiet)
        #expect(try await writer.append([9, 9, 9]) == 3001)
        writer.close()
    }

    /// A segment damaged on the disk is not rewritten with fresh checksums over the damage:
    /// the rewrite stops naming the offset, and the segment and its directory are as they were.
    @Test func aDamagedSegmentIsNeverLaundered() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        try await LogFixtures.makeLog(log, count: 2000, segmentSize: 64 << 10)
        let logID = try LogReader(directory: log).logID
        let first = try SegmentName.list(in: log)[0].name
        let path = FileSystem.join(log, first)
        try LogFixtures.corrupt(path) { bytes in bytes[bytes.count / 2] ^= 0x40 }
        let damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: LogError.self) {
            try SegmentRewrite.rewrite(path: path, fileName: first, logID: logID, replacement: Self.redaction) { _, _ in true }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged)
        #expect(!FileSystem.exists(path + SegmentRewrite.suffix))
        // A checksum that no longer matches the footer (a frame's bytes and CRC both changed)
        // is caught by the segment checksum.
        let second = try SegmentName.list(in: log)[1].name
        let secondPath = FileSystem.join(log, second)
        try LogFixtures.corrupt(secondPath) { bytes in
            // The first frame's payload changed and its CRC made to match: only the seal
            // footer's segment checksum can tell.
            let start = SegmentHeader.size
            let length = bytes.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: start, as: UInt32.self)) }
            let lsn = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self) }
            var payload = Array(bytes[(start + RecordFrame.headerSize)..<(start + RecordFrame.headerSize + length)])
            payload[0] ^= 0x01
            var frame: [UInt8] = []
            payload.withUnsafeBytes { RecordFrame.append(lsn: lsn, payload: $0, to: &frame) }
            bytes.replaceSubrange(start..<(start + frame.count), with: frame)
        }
        #expect(throws: LogError.self) {
            try SegmentRewrite.rewrite(path: secondPath, fileName: second, logID: logID, replacement: Self.redaction) { _, _ in true }
        }
        #expect(!FileSystem.exists(secondPath + SegmentRewrite.suffix))
    }

    @Test func staleRewritesAreRemovedAndNothingElse() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for name in ["0000000000000001.seg.rewrite", "0000000000000001.seg", "LOG", "0000000000000001.seg.tmp"] {
            FileManager.default.createFile(atPath: dir.appending(name), contents: Data([1, 2, 3]))
        }
        #expect(try SegmentRewrite.removeStale(in: dir.path) == 1)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["0000000000000001.seg", "LOG", "0000000000000001.seg.tmp"])
    }

    @Test func erasuresAndStatusFilesRoundTripAndRefuseWhatTheyAreNot() {
        let file = ErasuresFile(
            database: "0b3e-1", revision: "2-1765100000000", key: [UInt8](repeating: 7, count: 32),
            macs: [
                .init(mac: [UInt8](repeating: 1, count: 32), requestedAt: 1),
                .init(mac: [UInt8](repeating: 2, count: 32), requestedAt: 1_765_100_000_000),
            ])
        #expect(ErasuresFile.parse(String(decoding: file.encoded(), as: UTF8.self)) == file)
        let text = String(decoding: file.encoded(), as: UTF8.self)
        #expect(ErasuresFile.parse(text.replacingOccurrences(of: "clickd-erasures", with: "clickd-followers")) == nil)
        #expect(ErasuresFile.parse(text.replacingOccurrences(of: "mac 0101", with: "mac 01")) == nil, "a short MAC")
        #expect(ErasuresFile.parse(text.replacingOccurrences(of: "database 0b3e-1", with: "database ../x")) == nil)
        #expect(ErasuresFile.parse(text.replacingOccurrences(of: " 1765100000000\n", with: " -1\n")) == nil)
        var status = ErasureStatus()
        status.lists = ["0b3e-1=2-1765100000000"]
        status.clean = ["0000000000000001.seg", "0000000000000400.seg"]
        status.stale = ["0000000000000001.seg"]
        status.done = ["0b3e-1": .init(revision: "2-1765100000000", coveredUntil: 42)]
        status.blocked = "two\nlines"
        var parsed = ErasureStatus.parse(String(decoding: status.encoded(), as: UTF8.self))
        #expect(parsed?.blocked == "two lines")
        parsed?.blocked = status.blocked
        #expect(parsed == status)
        #expect(ErasureStatus.parse("clickd-erasure-status\nclean ../../etc/passwd\n") == nil)
    }
}
