import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import Projections

/// The ingest daemon built by its composition root (`buildIngest`, what `clickd ingest`
/// calls) and run in this process: it follows a log while an edge's writer appends to it,
/// and graceful shutdown (what SIGTERM starts) ends it after the batch in flight.
@Suite(.ownThreads) struct IngestServiceTests {
    /// The lowest checkpoint of any shard of the database's logs (0 while none is made).
    static func projected(_ url: String) throws -> Int {
        Int(try IngestTests.rows(url, "SELECT coalesce(min(lsn), 0) FROM clickd_internal.checkpoints")[0][0] ?? "0") ?? 0
    }

    @Test func followsALogAsItGrowsAndStopsGracefully() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let records = IngestTests.generatedRecords(events: 4_000, seed: 41)
        let log = dir.appending("log")
        let reference = dir.appending("reference")
        // The same records in another log: its projection, by `clickd ingest --once`, is the reference.
        try await IngestTests.write(records, to: reference)
        let expected = try IngestTests.database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", reference, "--database", expected]).status == 0)

        try await IngestTests.write(Array(records.prefix(1_000)), to: log)
        let database = try IngestTests.database()
        var setup = IngestSetup(logDirectories: [log], conninfo: database)
        setup.workers = 2
        setup.batchSize = 100
        setup.stopSignals = []
        let group = try buildIngest(setup, logger: IngestTests.quiet)
        let running = Task { try await group.run() }
        // The rest arrives while the daemon follows the log (inotify wakes it).
        var configuration = EventLogConfiguration()
        configuration.sync = .none
        let writer = try EventLogWriter(directory: log, configuration: configuration, logger: IngestTests.quiet)
        for record in records.dropFirst(1_000) { _ = try await writer.append(record) }
        writer.close()
        let deadline = ContinuousClock.now + .seconds(60)
        while try Self.projected(database) < records.count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(try Self.projected(database) == records.count)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try IngestTests.snapshot(database) == IngestTests.snapshot(expected))
    }

    /// Graceful shutdown in the middle of a long log: the daemon stops after the batch in
    /// flight, well before the end; what is left is projected by the next run as if nothing
    /// had happened.
    @Test func gracefulShutdownStopsAfterTheBatchInFlight() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (log, reference) = try await IngestTests.logAndReference(dir, events: 20_000, seed: 43)
        let database = try IngestTests.database()
        var setup = IngestSetup(logDirectories: [log], conninfo: database)
        setup.batchSize = 20
        setup.stopSignals = []
        let group = try buildIngest(setup, logger: IngestTests.quiet)
        let running = Task { try await group.run() }
        let deadline = ContinuousClock.now + .seconds(30)
        while try Self.projected(database) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try Self.projected(database) < 20_000, "stopped before the end of the log")
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", database]).status == 0)
        #expect(try IngestTests.snapshot(database) == IngestTests.snapshot(reference))
    }
}
