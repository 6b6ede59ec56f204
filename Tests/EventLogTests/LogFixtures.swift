import ClickdTestSupport
import Foundation
import Logging
import Testing

@testable import EventLog

/// Shared helpers of the log tests: temporary logs with known contents, and the one
/// place that damages files (`corrupt`).
enum LogFixtures {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func configuration(
        segmentSize: Int64 = 1 << 20, sync: EventLogConfiguration.SyncMode = .none,
        preallocate: Bool = true
    ) -> EventLogConfiguration {
        var c = EventLogConfiguration()
        c.segmentSize = segmentSize
        c.sync = sync
        c.preallocate = preallocate
        return c
    }

    static func payload(_ i: Int) -> [UInt8] {
        Array("record \(i) ".utf8) + [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: i % 37)
    }

    /// Creates a log with `count` records (payload(i) for LSN i), appended one at a time.
    static func makeLog(_ directory: String, count: Int, segmentSize: Int64 = 1 << 20, preallocate: Bool = true) async throws {
        let writer = try EventLogWriter(
            directory: directory, configuration: configuration(segmentSize: segmentSize, preallocate: preallocate),
            logger: quiet)
        for i in 1...count {
            let lsn = try await writer.append(payload(i))
            #expect(lsn == UInt64(i))
        }
        writer.close()
    }

    /// Every durable record, read with a fresh reader.
    static func readAll(_ directory: String) throws -> [LogRecord] {
        try LogReader(directory: directory).readToEnd()
    }

    static func segments(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted()
            .map { directory + "/" + $0 }
    }

    /// Damages a file in place: `corrupt` gets the file's bytes and changes them.
    static func corrupt(_ path: String, _ corrupt: (inout [UInt8]) -> Void) throws {
        try FileDamage.corrupt(path, corrupt)
    }

    static func copyDirectory(_ from: String, to: String) throws {
        try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }
}
