import ClickdTestSupport
import ClickdTestTraits
import Foundation
import Testing

@testable import EventLog

/// Durability proven by killing: a child process appends from many concurrent writers
/// and prints each LSN once its append returned; the test kills it with SIGKILL at a
/// random moment, reopens the log and checks that every printed LSN is there.
@Suite(.ownThreads) struct CrashTests {
    @Test func everyAcknowledgedRecordSurvivesKill9() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        var rng = SystemRandomNumberGenerator()
        var highestAcked: UInt64 = 0
        for round in 1...20 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: RepositoryPaths.product("LogTorture"))
            // 32 writers, run until killed, 16 KiB segments so kills land around rollovers too.
            child.arguments = [path, "32", "0", "16384"]
            let out = Pipe()
            child.standardOutput = out
            child.standardError = FileHandle.nullDevice
            try child.run()
            let reader = LineCollector(out.fileHandleForReading)
            _ = try reader.waitFor { $0 == "ready" }
            usleep(UInt32.random(in: 20_000...250_000, using: &rng))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            let acked = try reader.waitForEnd().compactMap { UInt64($0) }
            #expect(child.terminationReason == .uncaughtSignal, "round \(round)")

            // Reopen (recovery), check, and append once more.
            let writer = try EventLogWriter(
                directory: path, configuration: LogFixtures.configuration(segmentSize: 16384),
                logger: LogFixtures.quiet)
            let last = writer.durable
            let maxAcked = acked.max() ?? 0
            #expect(maxAcked <= last, "round \(round): LSN \(maxAcked) was acknowledged but the log ends at \(last)")
            #expect(acked.allSatisfy { $0 > highestAcked || $0 <= last })
            let next = try await writer.append(Array("after round \(round)".utf8))
            #expect(next == last + 1)
            writer.close()
            highestAcked = next
            // Every LSN from 1 to the end is present exactly once, in order.
            let scan = try LogScanner.scan(directory: path)
            #expect(scan.tornTail == nil)
            #expect(scan.lastLSN == next)
            #expect(scan.records == Int(next))
            #expect(!acked.isEmpty || round > 1, "round \(round): the child acknowledged nothing")
        }
    }
}
