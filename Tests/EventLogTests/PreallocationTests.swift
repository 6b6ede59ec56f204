import ClickdTestSupport
import Foundation
import Testing

@testable import EventLog

/// Segments are zero-filled ahead of time; zeros after the last record are free space,
/// never damage, and sealed segments end exactly at their seal footer.
@Suite struct PreallocationTests {
    @Test func segmentsArePreparedAheadAndSealedExactly() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(segmentSize: 1024), logger: LogFixtures.quiet)
        for i in 1...120 {
            _ = try await writer.append(LogFixtures.payload(i))
            // Let the preparer finish what the append asked for before the next one can roll
            // (a fixed pause was not enough with the suite and a fuzzer on 2 cores).
            let deadline = ContinuousClock.now + .seconds(10)
            while writer.preparer?.isPreparing == true, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        }
        let stats = writer.statistics
        writer.close()
        #expect(stats.segmentsCreated >= 5)
        #expect(stats.preparedSegmentsUsed >= 1)
        let scan = try LogScanner.scan(directory: path)
        #expect(scan.tornTail == nil)
        #expect(scan.lastLSN == 120)
        for segment in scan.segments.dropLast() {
            #expect(segment.fileSize == segment.validEnd + Int64(SegmentFooter.size), "\(segment.path)")
            #expect(segment.footer?.lastLSN == segment.lastLSN, "\(segment.path)")
        }
        #expect(scan.segments.last!.fileSize == 1024)
        #expect(scan.allocatedBytes > scan.bytes)
        // No prepared file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".tmp") }.isEmpty)
        #expect(try LogFixtures.readAll(path).map(\.payload) == (1...120).map(LogFixtures.payload))
    }

    @Test func damageInsidePreallocatedSpaceIsATornTailUpToTheLastNonZeroByte() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 3, segmentSize: 4096)
        let segment = try LogFixtures.segments(path)[0]
        let end = try LogScanner.scan(directory: path).segments[0].validEnd
        // Garbage 100 bytes into the zeros (a write that reached the disk out of order).
        try LogFixtures.corrupt(segment) { bytes in
            #expect(bytes.count == 4096)
            for i in 0..<5 { bytes[Int(end) + 100 + i] = 0xee }
        }
        let scan = try LogScanner.scan(directory: path)
        #expect(scan.tornTail?.offset == end)
        #expect(scan.tornTail?.length == 105)
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(segmentSize: 4096), logger: LogFixtures.quiet)
        #expect(writer.durable == 3)
        #expect(try await writer.append([1]) == 4)
        writer.close()
        let kept = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment + ".broken")))
        #expect(kept.count == 105)
        #expect(kept.suffix(5) == [0xee, 0xee, 0xee, 0xee, 0xee])
        #expect(try LogScanner.scan(directory: path).tornTail == nil)
    }

    /// The scan of the preallocated tail finds the last non-zero byte wherever it lies:
    /// at either side of the scanner's 1 MiB chunk boundaries, at the file's last byte,
    /// before the start of the range (ignored), or nowhere.
    @Test func theLastNonZeroByteIsFoundAcrossChunkBoundaries() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let chunk = 1 << 20
        let size = 2 * chunk + 4096
        for (from, marks, expected) in [
            (0, [Int](), 0), (10, [3], 10), (0, [0], 1), (0, [chunk - 1], chunk), (0, [chunk], chunk + 1),
            (100, [50, chunk + 7], chunk + 8), (0, [5, size - 1], size), (chunk + 1, [chunk], chunk + 1),
        ] {
            let path = dir.appending("f\(from)-\(marks)")
            var bytes = [UInt8](repeating: 0, count: size)
            for mark in marks { bytes[mark] = 0x5A }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            let file = try LogFile(path: path, flags: O_RDONLY)
            let end = try LogScanner.endOfNonZeroBytes(file: file, from: Int64(from), size: Int64(size))
            #expect(end == Int64(expected), "from \(from), marks \(marks)")
        }
    }
}
