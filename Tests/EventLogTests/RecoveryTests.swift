import ClickdTestSupport
import Foundation
import Testing

@testable import EventLog

@Suite struct RecoveryTests {
    /// Truncates the last segment at every byte offset: the writer's recovery keeps exactly
    /// the records that fit before the cut, keeps the cut bytes in a .broken file, and the
    /// log then takes appends and reopens cleanly.
    @Test func truncationAtEveryOffsetOfTheLastSegment() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = dir.appending("source")
        // Segments of ~200 bytes, then five more records in the last segment; no
        // preallocation, so the file ends at its last record.
        try await LogFixtures.makeLog(source, count: 14, segmentSize: 200, preallocate: false)
        let more = try EventLogWriter(
            directory: source, configuration: LogFixtures.configuration(segmentSize: 1 << 20, preallocate: false),
            logger: LogFixtures.quiet)
        for i in 15...19 { _ = try await more.append(LogFixtures.payload(i)) }
        more.close()
        let lastSegment = try LogFixtures.segments(source).last!
        let name = URL(fileURLWithPath: lastSegment).lastPathComponent
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: lastSegment)))
        let scan = try LogScanner.scan(directory: source)
        let last = scan.segments.last!
        #expect(last.records >= 5)
        // Offsets where a record of the last segment ends.
        var ends: [Int] = []
        var offset = SegmentHeader.size
        for lsn in last.firstLSN...last.lastLSN {
            offset += RecordFrame.headerSize + LogFixtures.payload(Int(lsn)).count
            ends.append(offset)
        }
        #expect(ends.last == original.count)

        for cut in 0..<original.count {
            let copy = dir.appending("cut")
            try LogFixtures.copyDirectory(source, to: copy)
            let truncate = open(copy + "/" + name, O_WRONLY)
            #expect(ftruncate(truncate, off_t(cut)) == 0)
            close(truncate)

            // The reopened segment is preallocated (zero-filled to 4 KiB) after recovery.
            let writer = try EventLogWriter(directory: copy, configuration: LogFixtures.configuration(segmentSize: 4096), logger: LogFixtures.quiet)
            let survivors = ends.filter { $0 <= cut }.count
            let expectedLast = last.firstLSN - 1 + UInt64(survivors)
            #expect(writer.durable == expectedLast, "cut at \(cut)")
            let next = try await writer.append(Array("after".utf8))
            #expect(next == expectedLast + 1)
            writer.close()

            let records = try LogFixtures.readAll(copy)
            #expect(records.map(\.lsn) == Array(1...(expectedLast + 1)), "cut at \(cut)")
            #expect(records.dropLast().map(\.payload) == (1...Int(expectedLast)).map(LogFixtures.payload), "cut at \(cut)")
            let broken = try FileManager.default.contentsOfDirectory(atPath: copy).filter { $0.contains(".broken") }
            let cutBytes = cut - (ends.filter { $0 <= cut }.last ?? (cut < SegmentHeader.size ? 0 : SegmentHeader.size))
            // What was cut is kept, up to its last non-zero byte.
            let from = cut < SegmentHeader.size ? 0 : cut - cutBytes
            var damaged = Array(original[from..<cut])
            while damaged.last == 0 { damaged.removeLast() }
            if !damaged.isEmpty {
                #expect(broken == [name + ".broken"], "cut at \(cut)")
                let kept = [UInt8](try Data(contentsOf: URL(fileURLWithPath: copy + "/" + name + ".broken")))
                #expect(kept == damaged, "cut at \(cut)")
            } else {
                #expect(broken.isEmpty, "cut at \(cut)")
            }
            // Reopening again finds a clean log.
            let rescan = try LogScanner.scan(directory: copy)
            #expect(rescan.tornTail == nil)
            #expect(rescan.segments.last?.fileSize == 4096)
            #expect(rescan.lastLSN == expectedLast + 1)
        }
    }

    /// A flipped bit anywhere in a sealed segment fails open, and names the file and offset.
    @Test(arguments: [0, 10, 20, 40, 48, 49, 52, 56, 64, 70, -1])
    func flippedBitInSealedSegment(position: Int) async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 30, segmentSize: 300)
        let segments = try LogFixtures.segments(path)
        #expect(segments.count >= 3)
        let sealed = segments[1]
        var at = position
        try LogFixtures.corrupt(sealed) { bytes in
            if at < 0 { at = bytes.count - 1 }
            bytes[at] ^= 0x04
        }
        do {
            _ = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(segmentSize: 300), logger: LogFixtures.quiet)
            Issue.record("open succeeded on a damaged sealed segment (byte \(at))")
        } catch let error as LogError {
            #expect(error.code == .corrupt)
            #expect(error.path == sealed)
            #expect(error.description.contains(sealed))
            // The offset named is the frame (or header field) holding the damaged byte.
            #expect(error.offset != nil && error.offset! <= Int64(at))
        }
        // Nothing was cut or repaired: the damaged file is untouched apart from our flip.
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.contains("broken") }.isEmpty)
    }

    /// Damage inside the last segment before records the writer acknowledged is not a torn
    /// write: the scan reports it as lost acknowledged data.
    @Test func damagedAcknowledgedRecordInLastSegmentIsReported() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 5)
        try LogFixtures.corrupt(try LogFixtures.segments(path)[0]) { $0[SegmentHeader.size + 20] ^= 1 }
        let scan = try LogScanner.scan(directory: path)
        #expect(scan.tornTail?.losesAcknowledged == true)
        #expect(scan.tornTail?.offset == Int64(SegmentHeader.size))
    }

    @Test func leftoverTemporaryFilesAreRemoved() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 2)
        FileManager.default.createFile(atPath: path + "/0000000000000003.seg.tmp", contents: Data([1, 2, 3]))
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
        writer.close()
        #expect(!FileManager.default.fileExists(atPath: path + "/0000000000000003.seg.tmp"))
    }
}
