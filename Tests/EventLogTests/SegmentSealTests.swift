import ClickdTestSupport
import Foundation
import Synchronization
import Testing

@testable import EventLog

/// Sealing (docs/design/archive.md): the seal footer, sealing by age, and what recovery,
/// the scanner and the readers make of sealed, half-sealed and format-1 segments.
@Suite struct SegmentSealTests {
    static let footer = SegmentFooter(firstLSN: 7, lastLSN: 9, records: 3, offset: 200, sealedAt: 1_765_000_000_123, segmentChecksum: 0xdead_beef)

    @Test func footerRoundTripsAndEveryFlippedBitIsCaught() {
        let bytes = Self.footer.encoded()
        #expect(bytes.count == SegmentFooter.size)
        #expect(bytes.withUnsafeBytes { SegmentFooter.decode($0) } == .success(Self.footer))
        for bit in 0..<(bytes.count * 8) {
            var damaged = bytes
            damaged[bit / 8] ^= 1 << (bit % 8)
            if case .success = damaged.withUnsafeBytes({ SegmentFooter.decode($0) }) { Issue.record("bit \(bit) flipped went unnoticed") }
        }
        #expect(bytes.dropLast().withUnsafeBytes { SegmentFooter.decode($0) } == .failure(.tooShort))
        // A footer never reads as a record frame: its first four bytes are a length over the limit.
        if case .record = bytes.withUnsafeBytes({ RecordFrame.decode($0) }) { Issue.record("a footer decoded as a frame") }
    }

    @Test func inconsistentFootersAreRefusedBeforeTheirNumbersAreUsed() {
        func decode(_ footer: SegmentFooter) -> Result<SegmentFooter, SegmentFooter.DecodeError> {
            footer.encoded().withUnsafeBytes { SegmentFooter.decode($0) }
        }
        var f = Self.footer
        f.records = 4
        #expect(throws: SegmentFooter.DecodeError.self) { try decode(f).get() }
        f = Self.footer
        f.lastLSN = 6
        #expect(throws: SegmentFooter.DecodeError.self) { try decode(f).get() }
        f = Self.footer
        f.offset = 50  // cannot hold three frames after the header
        #expect(throws: SegmentFooter.DecodeError.self) { try decode(f).get() }
        f = SegmentFooter(firstLSN: 1, lastLSN: .max, records: 0, offset: 100, sealedAt: 0, segmentChecksum: 0)
        #expect(throws: SegmentFooter.DecodeError.self) { try decode(f).get() }
    }

    /// A segment whose first record is older than `sealAfter` is sealed with a footer and
    /// the next one started, without an append to trigger it; an empty segment is never sealed.
    @Test func segmentsAreSealedByAge() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        var configuration = LogFixtures.configuration(segmentSize: 64 << 20)
        configuration.sealAfter = .seconds(1)
        configuration.wallClock = { 1_765_000_000_000 }
        let sealed = Mutex<[String]>([])
        configuration.onSegmentSealed = { name in sealed.withLock { $0.append(name) } }
        let writer = try EventLogWriter(directory: path, configuration: configuration, logger: LogFixtures.quiet)
        // One burst (a second is far longer than it takes, even on a loaded machine).
        try await withThrowingTaskGroup(of: UInt64.self) { group in
            for i in 1...3 { group.addTask { try await writer.append(LogFixtures.payload(i)) } }
            try await group.waitForAll()
        }
        try await waitUntil { sealed.withLock { $0.count } == 1 }
        #expect(sealed.withLock { $0 } == ["0000000000000001.seg"])
        // Idle with an empty open segment: nothing more is sealed.
        try await Task.sleep(for: .milliseconds(1500))
        #expect(sealed.withLock { $0.count } == 1)
        _ = try await writer.append(LogFixtures.payload(4))
        try await waitUntil { sealed.withLock { $0.count } == 2 }
        #expect(sealed.withLock { $0 } == ["0000000000000001.seg", "0000000000000004.seg"])
        _ = try await writer.append(LogFixtures.payload(5))
        let stats = writer.statistics
        writer.close()
        #expect(stats.segmentsSealedByTime == 2)

        let scan = try LogScanner.scan(directory: path)
        #expect(scan.segments.map(\.firstLSN) == [1, 4, 5])
        let first = try #require(scan.segments[0].footer)
        #expect(
            first
                == SegmentFooter(
                    firstLSN: 1, lastLSN: 3, records: 3, offset: scan.segments[0].validEnd, sealedAt: 1_765_000_000_000,
                    segmentChecksum: scan.segments[0].checksum))
        #expect(scan.segments[0].fileSize == scan.segments[0].validEnd + Int64(SegmentFooter.size))
        #expect(scan.segments[2].footer == nil)
        let payloads = try LogFixtures.readAll(path).map(\.payload)
        #expect(Set(payloads.prefix(3)) == Set((1...3).map(LogFixtures.payload)))
        #expect(Array(payloads.dropFirst(3)) == (4...5).map(LogFixtures.payload))
        // The file prepared after a time seal is sized from it (1 MiB), not 64 MiB.
        #expect(scan.segments[2].fileSize <= 1 << 20)
    }

    /// A sealed segment cut short at a frame boundary would look whole without its footer;
    /// with one, every kind of damage is named.
    @Test func damagedSealsAreCorruption() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 20, segmentSize: 512)
        let first = try LogScanner.scan(directory: path).segments[0]
        #expect(first.footer != nil)

        func expectCorrupt(_ what: String, containing text: String, _ damage: (inout [UInt8]) -> Void) throws {
            let copy = dir.appending("copy")
            try LogFixtures.copyDirectory(path, to: copy)
            try LogFixtures.corrupt(copy + "/" + first.fileName, damage)
            do {
                _ = try LogScanner.scan(directory: copy)
                Issue.record("\(what): accepted")
            } catch let error as LogError {
                #expect(error.code == .corrupt, "\(what)")
                #expect(error.message.contains(text), "\(what): \(error.message)")
            }
            #expect(throws: LogError.self, "\(what): the writer opened it") {
                try EventLogWriter(directory: copy, configuration: LogFixtures.configuration(segmentSize: 512), logger: LogFixtures.quiet).close()
            }
        }
        let end = Int(first.validEnd)
        try expectCorrupt("footer removed", containing: "without its seal footer") { $0.removeLast(SegmentFooter.size) }
        try expectCorrupt("footer cut in half", containing: first.fileName) { $0.removeLast(SegmentFooter.size / 2) }
        try expectCorrupt("bytes after the footer", containing: "followed by") { $0 += [0, 0, 0, 0] }
        try expectCorrupt("footer's LSNs", containing: "says LSNs") { bytes in
            var footer = try! bytes.withUnsafeBytes { try SegmentFooter.decode(UnsafeRawBufferPointer(rebasing: $0[end...])).get() }
            footer.lastLSN += 1
            footer.records += 1
            bytes.replaceSubrange(end..., with: footer.encoded())
        }
        // A payload byte changed and its frame's checksum made to match: only the footer's
        // checksum of the whole segment sees it.
        try expectCorrupt("record rewritten", containing: "does not match the segment's bytes") { bytes in
            let frame = SegmentHeader.size
            let length = Int(bytes[frame]) | Int(bytes[frame + 1]) << 8
            bytes[frame + RecordFrame.headerSize] ^= 0xff
            var rebuilt: [UInt8] = []
            let lsn = UInt64(1)
            Array(bytes[(frame + RecordFrame.headerSize)..<(frame + RecordFrame.headerSize + length)]).withUnsafeBytes {
                RecordFrame.append(lsn: lsn, payload: $0, to: &rebuilt)
            }
            bytes.replaceSubrange(frame..<(frame + rebuilt.count), with: rebuilt)
        }
    }

    /// A writer killed after sealing and before creating the next segment leaves a sealed
    /// segment last; a torn footer is a torn tail. Both reopen and go on.
    @Test func halfDoneSealsRecover() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 20, segmentSize: 512)
        let scan = try LogScanner.scan(directory: path)
        let sealed = scan.segments[scan.segments.count - 2]

        let lastLSN = sealed.lastLSN
        func withoutSuccessor(_ name: String) throws -> String {
            let copy = dir.appending(name)
            try LogFixtures.copyDirectory(path, to: copy)
            for segment in scan.segments where segment.firstLSN > lastLSN {
                try FileManager.default.removeItem(atPath: copy + "/" + segment.fileName)
            }
            return copy
        }
        try await expectReopens(try withoutSuccessor("no-successor"), through: lastLSN)

        let tornFooter = try withoutSuccessor("torn-footer")
        try LogFixtures.corrupt(tornFooter + "/" + sealed.fileName) { $0.removeLast(10) }
        try await expectReopens(tornFooter, through: lastLSN)
        #expect(FileManager.default.fileExists(atPath: tornFooter + "/" + sealed.fileName + ".broken"))
    }

    /// Logs written before segment format 2: sealed format-1 segments (no footer) are read as
    /// they are; a format-1 last segment is sealed the old way and the writer goes on in format 2.
    @Test func formatOneSegmentsAreReadAndContinuedInFormatTwo() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 20, segmentSize: 512, preallocate: false)
        // Make every segment format 1: drop the footers, set version 1 in the headers.
        for segment in try LogScanner.scan(directory: path).segments {
            try LogFixtures.corrupt(segment.path) { bytes in
                if segment.footer != nil { bytes.removeLast(SegmentFooter.size) }
                bytes[8] = 1
                let crc = CRC32C.checksum(Array(bytes[0..<44]))
                withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[44 + i] = $0[i] } }
            }
        }
        let old = try LogScanner.scan(directory: path)
        #expect(old.segments.allSatisfy { $0.version == 1 && $0.footer == nil })
        try await expectReopens(path, through: 20)
        let scan = try LogScanner.scan(directory: path)
        #expect(scan.segments.last!.version == 2)
        #expect(scan.segments[scan.segments.count - 2].version == 1)
    }

    /// `SealedSegment.check` judges one file alone, as the archiver and a restore do: a
    /// sealed segment passes with its numbers; the open one, another log's, a renamed one
    /// and a damaged one are refused, naming the file.
    @Test func aSealedSegmentIsCheckedAlone() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 20, segmentSize: 512)
        let scan = try LogScanner.scan(directory: path)
        let logID = scan.metadata.logID
        #expect(try SegmentName.list(in: path).map(\.firstLSN) == scan.segments.map(\.firstLSN))
        let first = scan.segments[0]
        let checked = try SealedSegment.check(path: first.path, fileName: first.fileName, logID: logID)
        #expect(checked.firstLSN == first.firstLSN && checked.lastLSN == first.lastLSN)
        #expect(checked.records == first.records && checked.bytes == first.fileSize && checked.footer == first.footer)

        let open = scan.segments.last!
        #expect(throws: LogError.self) { try SealedSegment.check(path: open.path, fileName: open.fileName, logID: logID) }
        #expect(throws: LogError.self) {
            try SealedSegment.check(path: first.path, fileName: first.fileName, logID: LogID(bytes: Array(repeating: 7, count: 16)))
        }
        let second = scan.segments[1]
        #expect(throws: LogError.self) { try SealedSegment.check(path: first.path, fileName: second.fileName, logID: logID) }
        let damaged = dir.appending("damaged.seg")
        try FileManager.default.copyItem(atPath: first.path, toPath: damaged)
        try LogFixtures.corrupt(damaged) { $0[SegmentHeader.size + RecordFrame.headerSize] ^= 1 }
        do {
            _ = try SealedSegment.check(path: damaged, fileName: first.fileName, logID: logID)
            Issue.record("a damaged segment passed")
        } catch let error as LogError {
            #expect(error.code == .corrupt && error.message.contains("damaged.seg"), "\(error.message)")
        }
    }

    /// The writer reopens `path`, takes one more record after `lsn`, and everything reads back.
    private func expectReopens(_ path: String, through lsn: UInt64) async throws {
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(segmentSize: 512), logger: LogFixtures.quiet)
        #expect(writer.durable == lsn)
        #expect(try await writer.append(Array("after".utf8)) == lsn + 1)
        writer.close()
        let records = try LogFixtures.readAll(path)
        #expect(records.map(\.lsn) == Array(1...(lsn + 1)))
        #expect(records.dropLast().map(\.payload) == (1...Int(lsn)).map(LogFixtures.payload))
        #expect(try LogScanner.scan(directory: path).tornTail == nil)
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
