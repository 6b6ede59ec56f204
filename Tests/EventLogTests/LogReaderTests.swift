import ClickdTestSupport
import ClickdTestTraits
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import EventLog

@Suite(.ownThreads) struct LogReaderTests {
    @Test func readsFromAnyLSNAcrossSegments() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        try await LogFixtures.makeLog(path, count: 120, segmentSize: 400)
        #expect(try LogFixtures.segments(path).count > 5)
        for start in [1, 2, 17, 60, 119, 120] {
            let reader = try LogReader(directory: path, from: UInt64(start))
            var lsns: [UInt64] = []
            while case let batch = try reader.read(maxRecords: 7), !batch.isEmpty {
                lsns += batch.map(\.lsn)
                for record in batch { #expect(record.payload == LogFixtures.payload(Int(record.lsn))) }
            }
            #expect(lsns == Array(UInt64(start)...120))
        }
        // Past the end: nothing, and no error.
        #expect(try LogReader(directory: path, from: 500).read().isEmpty)
    }

    /// A record written but not yet synced is invisible to readers — in this process and in
    /// another one (`clickd log dump`) — until the writer publishes it after fdatasync.
    @Test func readersNeverSeePastTheDurableWatermark() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let gate = Gate()
        var configuration = LogFixtures.configuration(sync: .fdatasync)
        configuration.testHookBeforeSync = { gate.passIfOpen() }
        gate.open()
        let writer = try EventLogWriter(directory: path, configuration: configuration, logger: LogFixtures.quiet)
        for i in 1...3 { _ = try await writer.append(LogFixtures.payload(i)) }
        gate.close()
        let pending = Task { try await writer.append(Array("not yet durable".utf8)) }
        try await gate.waitUntilHeld()
        // The record is in the segment file now, but not synced.
        let segment = try LogFixtures.segments(path)[0]
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: segment))
        #expect(onDisk.range(of: Data("not yet durable".utf8)) != nil)
        #expect(try LogFixtures.readAll(path).map(\.lsn) == [1, 2, 3])
        let dump = try ChildProcess.clickd(["log", "dump", path])
        #expect(dump.status == 0)
        #expect(dump.stdout.split(separator: "\n").count == 3)
        #expect(!dump.stdout.contains("not yet durable"))
        gate.open()
        #expect(try await pending.value == 4)
        let after = try ChildProcess.clickd(["log", "dump", path])
        #expect(after.stdout.contains("lsn=4 bytes=15 payload=\"not yet durable\""))
        writer.close()
    }

    /// A tailer started before the writer sees every record exactly once, in order, across
    /// many segment rollovers, while the writer appends from many tasks.
    @Test func tailerSeesEveryRecordOnceAcrossRollovers() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(segmentSize: 2048), logger: LogFixtures.quiet)
        let total = 3000
        let tail = Task {
            var seen: [LogRecord] = []
            var tailer = LogTailer(directory: path)
            tailer.maxRecords = 100
            for try await batch in tailer {
                seen += batch
                if seen.count >= total { break }
            }
            return seen
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in 0..<10 {
                group.addTask {
                    for i in 0..<(total / 10) { _ = try await writer.append(Array("w\(w)-\(i)".utf8)) }
                }
            }
            try await group.waitForAll()
        }
        let seen = try await tail.value
        writer.close()
        #expect(seen.count == total)
        #expect(seen.map(\.lsn) == Array(1...UInt64(total)))
        #expect(Set(seen.map(\.payload)).count == total)
        #expect(try LogFixtures.segments(path).count > 10)
    }

    /// An idle reader waits on inotify: it wakes promptly for a new record and its thread
    /// burns no CPU meanwhile.
    @Test func idleWaitIsWokenByInotify() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let writer = try EventLogWriter(directory: path, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet)
        defer { writer.close() }
        let reader = try LogReader(directory: path)
        let box = LogTailer.ReaderBox(reader: reader)
        // The blocking waits run on their own thread, as LogTailer runs them.
        let (idle, idleCPU) = try await onOwnThread { () throws -> (Bool, Double) in
            let before = threadCPUSeconds()
            let woke = try box.reader.waitForRecords(timeout: .milliseconds(600))
            return (woke, threadCPUSeconds() - before)
        }
        #expect(!idle)
        #expect(idleCPU < 0.05, "an idle wait of 600 ms used \(idleCPU) s of CPU")
        async let woke = onOwnThread { try box.reader.waitForRecords(timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await writer.append([7]) == 1)
        // Durable now (the append returned): the wait ends at once, not at its timeout.
        let appended = ContinuousClock.now
        #expect(try await woke)
        #expect(ContinuousClock.now - appended < .seconds(3))
        #expect(try reader.read().map(\.payload) == [[7]])
    }

    /// One watch over several logs: it waits without CPU while none grows, and wakes for a
    /// record published in any of them (a follower of several logs waits in one poll).
    @Test func oneWatchWakesForAnyOfSeveralLogs() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let paths = [dir.appending("a"), dir.appending("b"), dir.appending("c")]
        let writers = try paths.map { try EventLogWriter(directory: $0, configuration: LogFixtures.configuration(), logger: LogFixtures.quiet) }
        defer { for writer in writers { writer.close() } }
        let readers = HandOff(try paths.map { try LogReader(directory: $0) })
        let watch = HandOff(try LogWatch(directories: paths))
        @Sendable func anyNew() throws -> Bool { try readers.value.contains { try $0.durableWatermark() >= $0.nextLSN } }
        let (idle, idleCPU) = try await onOwnThread { () throws -> (Bool, Double) in
            let before = threadCPUSeconds()
            let woke = try watch.value.wait(timeout: .milliseconds(600), until: anyNew)
            return (woke, threadCPUSeconds() - before)
        }
        #expect(!idle)
        #expect(idleCPU < 0.05, "an idle wait of 600 ms used \(idleCPU) s of CPU")
        for (i, writer) in writers.enumerated().reversed() {
            async let woke = onOwnThread { try watch.value.wait(timeout: .seconds(10), until: anyNew) }
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await writer.append([UInt8(i)]) == 1)
            let appended = ContinuousClock.now
            #expect(try await woke)
            #expect(ContinuousClock.now - appended < .seconds(3))
            #expect(try readers.value[i].read().map(\.payload) == [[UInt8(i)]])
        }
    }
}

/// Holds the writer's flusher between write and sync while closed.
final class Gate: Sendable {
    private let state = Mutex((open: true, held: false))

    func open() { state.withLock { $0.open = true } }
    func close() { state.withLock { $0.open = false } }

    /// Called on the flusher thread: blocks while the gate is closed.
    func passIfOpen() {
        while true {
            let go = state.withLock { s -> Bool in
                if s.open {
                    s.held = false
                    return true
                }
                s.held = true
                return false
            }
            if go { return }
            usleep(1000)
        }
    }

    func waitUntilHeld() async throws {
        for _ in 0..<10_000 {
            if state.withLock({ $0.held }) { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        throw TestSupportError("the flusher never reached the gate")
    }
}
