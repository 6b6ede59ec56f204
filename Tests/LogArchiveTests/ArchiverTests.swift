import ClickdTestSupport
import EventLog
import Foundation
import LogArchive
import Logging
import Synchronization
import Testing

/// The archiver against real logs, real archive directories and real shell commands
/// (docs/design/archive.md): what it ships, the status files, and failures of every kind.
@Suite struct ArchiverTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A writer sealing by size (small segments) and the archiver it wakes, running until
    /// `body` returns.
    struct Running {
        let writer: EventLogWriter
        let archiver: Archiver
        let logDirectory: String
    }

    static func withArchiver(
        log: String, destination: ArchiverConfiguration.Destination, segmentSize: Int64 = 4096,
        commandTimeout: Duration = .seconds(300), _ body: (Running) async throws -> Void
    ) async throws {
        var archive = ArchiverConfiguration(destination: destination)
        archive.firstRetry = .milliseconds(50)
        archive.maxRetry = .milliseconds(200)
        archive.rescanInterval = .milliseconds(200)
        archive.commandTimeout = commandTimeout
        let archiver = Archiver(logDirectory: log, configuration: archive, metrics: nil, logger: quiet)
        var configuration = EventLogConfiguration()
        configuration.segmentSize = segmentSize
        configuration.sync = .none
        configuration.onSegmentSealed = { archiver.segmentSealed($0) }
        let writer = try EventLogWriter(directory: log, configuration: configuration, logger: quiet)
        let task = Task { try await archiver.run() }
        do {
            try await body(Running(writer: writer, archiver: archiver, logDirectory: log))
        } catch {
            task.cancel()
            writer.close()
            throw error
        }
        task.cancel()
        _ = await task.result
        writer.close()
    }

    static func append(_ writer: EventLogWriter, _ range: ClosedRange<Int>) async throws {
        for i in range { _ = try await writer.append(Array("click \(i) ".utf8) + [UInt8](repeating: 0x61, count: 150)) }
    }

    /// Waits until `condition` holds (10 s at most).
    static func eventually(_ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while try !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func sealedSegments(_ log: String) throws -> [String] {
        Array(try SegmentName.list(in: log).map(\.name).dropLast())
    }

    /// Every sealed segment of `log` is in `archive` with the same bytes, and marked done.
    static func expectArchived(_ log: String, in archive: String) throws {
        let logID = try LogScannerFacts.logID(log)
        let dir = archive + "/" + logID.description
        #expect(FileManager.default.contentsEqual(atPath: log + "/LOG", andPath: dir + "/LOG"))
        let sealed = try sealedSegments(log)
        #expect(!sealed.isEmpty)
        for name in sealed {
            #expect(FileManager.default.contentsEqual(atPath: log + "/" + name, andPath: dir + "/" + name), "\(name)")
            #expect(ArchiveStatus(logDirectory: log).state(of: name) == .done, "\(name)")
        }
        let open = try SegmentName.list(in: log).last!.name
        #expect(!FileManager.default.fileExists(atPath: dir + "/" + open), "the open segment was shipped")
    }

    @Test func sealedSegmentsAreArchivedToADirectory() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        let archive = dir.appending("archive")
        try await Self.withArchiver(log: log, destination: .directory(DirectoryArchive(root: archive))) { run in
            try await Self.append(run.writer, 1...200)
            let sealed = try Self.sealedSegments(log)
            #expect(sealed.count >= 5)
            try await Self.eventually("everything archived") {
                run.archiver.progress.archived == sealed.count + 1 && run.archiver.progress.waiting.isEmpty
            }
            try Self.expectArchived(log, in: archive)
            #expect(run.archiver.progress.failures == 0)
            #expect(run.archiver.progress.localBytes > 0)
            // Every archived segment checks alone, in the archive.
            let logID = try LogScannerFacts.logID(log)
            for name in sealed {
                _ = try SealedSegment.check(path: archive + "/\(logID)/" + name, fileName: name, logID: logID)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: log + "/archive_status").allSatisfy { $0.hasSuffix(".done") })
    }

    /// PostgreSQL's rule: an identical re-archive succeeds (a crash after the copy and
    /// before `.done`), a different one fails and the archived file is never overwritten.
    @Test func reArchivesOfIdenticalFilesSucceedAndOfDifferentOnesFail() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let archive = DirectoryArchive(root: dir.appending("archive"))
        let logID = LogID(bytes: Array(repeating: 9, count: 16))
        let file = dir.appending("0000000000000001.seg")
        try Data("segment bytes".utf8).write(to: URL(fileURLWithPath: file))
        try archive.store(path: file, fileName: "0000000000000001.seg", logID: logID)
        try archive.store(path: file, fileName: "0000000000000001.seg", logID: logID)
        let stored = archive.directory(of: logID) + "/0000000000000001.seg"
        // A half copy a crash left is replaced.
        try Data("half".utf8).write(to: URL(fileURLWithPath: archive.directory(of: logID) + "/0000000000000002.seg.tmp"))
        try archive.store(path: file, fileName: "0000000000000002.seg", logID: logID)
        #expect(FileManager.default.contentsEqual(atPath: file, andPath: archive.directory(of: logID) + "/0000000000000002.seg"))

        for other in ["segment bytez", "segment bytes and more"] {
            try Data(other.utf8).write(to: URL(fileURLWithPath: file))
            do {
                try archive.store(path: file, fileName: "0000000000000001.seg", logID: logID)
                Issue.record("a different file replaced an archived one")
            } catch let error as LogError {
                #expect(error.message.contains("not overwritten"), "\(error)")
            }
            #expect(try String(contentsOfFile: stored, encoding: .utf8) == "segment bytes")
        }
        #expect(try archive.logIDs() == [logID])
        let back = dir.appending("fetched")
        #expect(try archive.fetch(fileName: "0000000000000001.seg", logID: logID, to: back) == .fetched)
        #expect(try String(contentsOfFile: back, encoding: .utf8) == "segment bytes")
        #expect(try archive.fetch(fileName: "0000000000000009.seg", logID: logID, to: back) == .notFound)
    }

    /// An archive command that fails for a while, then one that writes part of a file and
    /// fails, then one that hangs past its timeout: segments wait in order (none is marked
    /// done), the writer keeps taking appends, and once the command works everything is
    /// archived, whole.
    @Test func failingPartialAndHangingCommandsLoseNothing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        let archive = dir.appending("archive")
        let mode = dir.appending("mode")
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: true)
        // A stand-in for `rclone copyto --immutable`: identical re-copies succeed, different
        // ones fail, copies are made through a temporary name. `mode` makes it misbehave.
        let script = dir.appending("archive.sh")
        try """
        #!/bin/sh
        set -e
        mode=$(cat \(mode))
        dest=\(archive)/$3; mkdir -p "$dest"
        case "$mode" in
          fail) echo "bucket unreachable" >&2; exit 7 ;;
          partial) head -c 100 "$1" > "$dest/$2.part"; echo "connection reset" >&2; exit 1 ;;
          hang) sleep 600 ;;
        esac
        if [ -e "$dest/$2" ]; then cmp -s "$1" "$dest/$2" && exit 0; echo "different $2 exists" >&2; exit 1; fi
        cp "$1" "$dest/$2.part" && sync "$dest/$2.part" && mv "$dest/$2.part" "$dest/$2"
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let template = try CommandTemplate("\(script) %p %f %l", placeholders: ArchiverConfiguration.commandPlaceholders)
        try await Self.withArchiver(log: log, destination: .command(template), commandTimeout: .seconds(2)) { run in
            for failure in ["fail", "partial", "hang"] {
                try failure.write(toFile: mode, atomically: true, encoding: .utf8)
                let before = run.archiver.progress.failures
                try await Self.append(run.writer, 1...60)
                try await Self.eventually("\(failure): failures") { run.archiver.progress.failures >= before + 2 }
                let progress = run.archiver.progress
                // Oldest first: no segment after one that waits is archived.
                let states = try Self.sealedSegments(log).map { ArchiveStatus(logDirectory: log).state(of: $0) }
                let waiting = states.drop { $0 == .done }
                #expect(waiting.count >= 2 && !waiting.contains(.done), "\(failure): \(states)")
                let message = progress.lastFailure ?? ""
                switch failure {
                case "fail": #expect(message.contains("exit status 7") && message.contains("bucket unreachable"), "\(message)")
                case "partial": #expect(message.contains("connection reset"), "\(message)")
                // 2 s: a loaded machine running the whole suite has taken over 300 ms to run
                // the failing script, which a tighter timeout then reported as a hang.
                default: #expect(message.contains("no exit within 2 s"), "\(message)")
                }
            }
            try "ok".write(toFile: mode, atomically: true, encoding: .utf8)
            try await Self.eventually("archived after the failures") { run.archiver.progress.waiting.isEmpty }
            try Self.expectArchived(log, in: archive)
            #expect(run.archiver.progress.lastFailure == nil)
            #expect(try LogReader(directory: log).readToEnd().count == 180)
        }
    }

    /// A segment damaged on the edge's disk is never shipped: the archiver reports it by
    /// name and the segments after it wait.
    @Test func aDamagedSegmentIsNeverShipped() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        let archive = dir.appending("archive")
        // Written without an archiver, then one segment damaged, then the archiver started.
        var configuration = EventLogConfiguration()
        configuration.segmentSize = 4096
        configuration.sync = .none
        let writer = try EventLogWriter(directory: log, configuration: configuration, logger: Self.quiet)
        try await Self.append(writer, 1...100)
        writer.close()
        let sealed = try Self.sealedSegments(log)
        try FileDamage.corrupt(log + "/" + sealed[2]) { $0[200] ^= 0x40 }
        // No writer: it refuses to open a log with a damaged sealed segment.
        var settings = ArchiverConfiguration(destination: .directory(DirectoryArchive(root: archive)))
        settings.firstRetry = .milliseconds(50)
        settings.maxRetry = .milliseconds(200)
        let archiver = Archiver(logDirectory: log, configuration: settings, metrics: nil, logger: Self.quiet)
        let task = Task { try await archiver.run() }
        defer { task.cancel() }
        try await Self.eventually("the damage reported") { archiver.progress.failures >= 2 }
        #expect(archiver.progress.lastFailure?.contains(sealed[2]) == true, "\(archiver.progress.lastFailure ?? "")")
        #expect(archiver.progress.waiting.first == sealed[2])
        let logID = try LogScannerFacts.logID(log)
        let shipped = try FileManager.default.contentsOfDirectory(atPath: archive + "/\(logID)").sorted()
        #expect(shipped == (["LOG"] + sealed.prefix(2)).sorted())
    }
}

/// Facts about a log read the public way.
enum LogScannerFacts {
    static func logID(_ log: String) throws -> LogID {
        let text = try String(contentsOfFile: log + "/LOG", encoding: .utf8)
        return try LogMetadata.parse(text, path: log + "/LOG").logID
    }
}
