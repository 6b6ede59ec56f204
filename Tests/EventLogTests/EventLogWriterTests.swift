import ClickdTestSupport
import Foundation
import Testing

@testable import EventLog

@Suite struct EventLogWriterTests {
    @Test func concurrentAppendersGetContiguousUniqueLSNs() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let writer = try EventLogWriter(
            directory: path, configuration: LogFixtures.configuration(segmentSize: 8 << 10, sync: .fdatasync),
            logger: LogFixtures.quiet)
        let writers = 64
        let each = 50
        let acked = try await withThrowingTaskGroup(of: [(UInt64, [UInt8])].self) { group in
            for w in 0..<writers {
                group.addTask {
                    var mine: [(UInt64, [UInt8])] = []
                    for i in 0..<each {
                        let payload = Array("w\(w) i\(i)".utf8)
                        mine.append((try await writer.append(payload), payload))
                    }
                    return mine
                }
            }
            var all: [(UInt64, [UInt8])] = []
            for try await part in group { all += part }
            return all
        }
        let stats = writer.statistics
        writer.close()
        #expect(acked.count == writers * each)
        #expect(Set(acked.map(\.0)) == Set((1...UInt64(writers * each))))
        // Group commit happened: fewer syncs than records.
        #expect(stats.syncs < writers * each)
        #expect(stats.segmentsCreated > 0)
        let records = try LogFixtures.readAll(path)
        let byLSN = Dictionary(uniqueKeysWithValues: acked.map { ($0.0, $0.1) })
        #expect(records.map(\.lsn) == Array(1...UInt64(writers * each)))
        for record in records { #expect(byLSN[record.lsn] == record.payload) }
        let scan = try LogScanner.scan(directory: path)
        #expect(scan.tornTail == nil)
        #expect(scan.segments.count > 1)
        #expect(scan.segments.allSatisfy { $0.fileSize <= 8 << 10 })
    }

    @Test func reopeningContinuesTheSequence() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 10, segmentSize: 256)
        let id = try LogScanner.scan(directory: path).metadata.logID
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(segmentSize: 256), logger: LogFixtures.quiet)
        #expect(writer.logID == id)
        #expect(writer.durable == 10)
        #expect(try await writer.append(LogFixtures.payload(11)) == 11)
        writer.close()
        #expect(try LogFixtures.readAll(path).map(\.payload) == (1...11).map(LogFixtures.payload))
    }

    @Test func batchDelayGathersRecords() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = LogFixtures.configuration()
        configuration.maxBatchDelay = .milliseconds(20)
        let writer = try EventLogWriter(directory: dir.appending("log"), configuration: configuration, logger: LogFixtures.quiet)
        try await withThrowingTaskGroup(of: UInt64.self) { group in
            for i in 0..<40 { group.addTask { try await writer.append(LogFixtures.payload(i)) } }
            try await group.waitForAll()
        }
        let stats = writer.statistics
        writer.close()
        #expect(stats.records == 40)
        #expect(stats.batches <= 4, "40 concurrent appends within a 20 ms window took \(stats.batches) batches")
    }

    @Test func oversizedAndEmptyRecordsAreRefused() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let writer = try EventLogWriter(directory: dir.appending("log"), configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
        defer { writer.close() }
        await #expect(throws: LogError.self) { try await writer.append([]) }
        await #expect(throws: LogError.self) { try await writer.append([UInt8](repeating: 1, count: RecordFrame.maxPayloadSize + 1)) }
        #expect(try await writer.append([1]) == 1)
    }

    @Test func appendsAfterCloseFail() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let writer = try EventLogWriter(directory: dir.appending("log"), configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
        writer.close()
        do {
            _ = try await writer.append([1])
            Issue.record("append after close succeeded")
        } catch let error as LogError {
            #expect(error.code == .closed)
        }
    }

    @Test func secondWriterIsRefusedNamingTheHolder() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let first = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
        do {
            _ = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
            Issue.record("second writer was allowed")
        } catch let error as LogError {
            #expect(error.code == .locked)
            #expect(error.message.contains("pid \(getpid())"))
        }
        first.close()
        // Released on close: a new writer may open it.
        let again = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
        again.close()
    }

    @Test func directoryProblemsGiveClearErrors() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        func code(_ path: String) -> LogError.Code? {
            do {
                let w = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
                w.close()
                return nil
            } catch let error as LogError {
                #expect(!error.description.contains("\n"))
                return error.code
            } catch {
                return nil
            }
        }
        #expect(code(dir.appending("missing/parent/log")) == .directory)
        FileManager.default.createFile(atPath: dir.appending("file"), contents: Data("x".utf8))
        #expect(code(dir.appending("file")) == .directory)
        try FileManager.default.createDirectory(atPath: dir.appending("other"), withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: dir.appending("other/notes.txt"), contents: Data("mine".utf8))
        #expect(code(dir.appending("other")) == .notALog)
        // Nothing was written into the foreign directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appending("other")) == ["notes.txt"])
        #expect(throws: LogError.self) { _ = try LogReader(directory: dir.appending("missing")) }
    }

    @Test func unknownFormatVersionsAreRefused() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 3)
        try LogFixtures.copyDirectory(path, to: dir.appending("v2"))
        try LogFixtures.corrupt(dir.appending("v2/LOG")) { bytes in
            bytes = Array(String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "format 1", with: "format 2").utf8)
        }
        do {
            _ = try EventLogWriter(directory: dir.appending("v2"), logger: LogFixtures.quiet)
            Issue.record("format 2 accepted")
        } catch let error as LogError {
            #expect(error.code == .unsupportedVersion)
            #expect(error.message.contains("format 2"))
        }
        // A segment header of a newer version (with a valid checksum) is refused too.
        try LogFixtures.copyDirectory(path, to: dir.appending("seg2"))
        let segment = try LogFixtures.segments(dir.appending("seg2"))[0]
        try LogFixtures.corrupt(segment) { bytes in
            bytes[8] = 3
            let crc = CRC32C.checksum(Array(bytes[0..<44]))
            withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[44 + i] = $0[i] } }
        }
        do {
            _ = try LogScanner.scan(directory: dir.appending("seg2"))
            Issue.record("newer segment version accepted")
        } catch let error as LogError {
            #expect(error.code == .unsupportedVersion)
            #expect(error.message.contains(segment))
        }
    }
}
