import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

/// Retention and the archive with a real edge, a real ingest and a real PostgreSQL
/// (docs/design/archive.md): the edge removes what is archived and projected (learnt from
/// the follower file `clickd ingest` writes), a rebuild reads the archive and then the
/// local tail, and after the log directory is lost, `clickd log restore` + `clickd
/// rebuild` give the very views the live projections had, row for row.
@Suite(.ownThreads) struct ArchiveRebuildTests {
    static let secret = [UInt8](repeating: 0x5a, count: 32)
    static let signer = try! KeyRing(keys: [KeyRing.makeKey(kid: "live", secret: secret, created: "2026-11-01T00:00:00Z")])

    static func keys(_ dir: TemporaryDirectory) throws -> String {
        let b64 = Data(secret).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let path = dir.appending("keys")
        try "key live \(b64) 2026-11-01T00:00:00Z active\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    static func token(_ i: Int) -> String {
        try! signer.sign(
            LinkToken(
                destination: "https://example.com/p/\(i % 7)", deliveryID: "d-\(i % 300)", customerID: "c-\(i % 97)",
                sourceKind: .campaign, sourceID: "s\(i % 3)", messageType: .email, linkID: "L\(i % 5)", issuedAt: 1_790_000_000))
    }

    static func eventually(_ what: String, timeout: TimeInterval = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline else { throw TestSupportError("timed out waiting for \(what)") }
            usleep(50_000)
        }
    }

    /// An edge on `dir/log` archiving to `dir/archive` (`arguments`, given the archive's path,
    /// say how), a migrated database, and a connection to the edge.
    static func archivingEdge(_ dir: TemporaryDirectory, arguments: (String) -> [String]) throws -> (
        keys: String, log: String, archive: String, url: String, edge: EdgeProcess, connection: HTTPTestConnection
    ) {
        let keys = try Self.keys(dir)
        let log = dir.appending("log")
        let archive = dir.appending("archive")
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        let url = try IngestTests.database()
        let edge = try EdgeProcess(log: log, keys: keys, arguments: arguments(archive))
        let connection = try HTTPTestConnection(port: edge.port, timeoutSeconds: 10)
        return (keys, log, archive, url, edge, connection)
    }

    @Test func retentionPrunesThenTheArchiveRebuildsAndRestores() throws {
        let dir = try TemporaryDirectory("clickd-archive-rebuild")
        defer { dir.remove() }
        let (_, log, archive, url, edge, connection) = try Self.archivingEdge(dir) {
            ["--archive-dir", $0, "--seal-after", "0.2", "--segment-size", "1", "--keep-local", "0.3s"]
        }
        var clicks = 0
        for round in 0..<8 {
            for _ in 0..<1500 {
                #expect(try connection.request("GET", "/c/" + Self.token(clicks)).status == 302)
                clicks += 1
            }
            usleep(300_000)
            let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url])
            #expect(ingest.status == 0, "round \(round): \(ingest.stderr)")
        }
        // Quiet past --seal-after: every click sealed, archived and projected; then retention.
        let logID = try LogReader(directory: log).logID
        try Self.eventually("everything archived") {
            let durable = try LogReader.durableWatermark(directory: log)
            let archived = try SegmentName.list(in: archive + "/\(logID)")
            guard let last = archived.last, try edge.metric("clickd_archive_waiting_segments") == 0 else { return false }
            return try SealedSegment.check(path: archive + "/\(logID)/" + last.name, fileName: last.name, logID: logID).lastLSN == durable
        }
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
        let follower = try FollowerFile.readAll(logDirectory: log)
        // Every shard projected through the end; the classifier's window (repeat clicks
        // within it are judged against the earlier ones) holds the last stretch.
        let needed = follower.first?.file?.neededFrom ?? 0
        #expect(follower.count == 1 && needed > 1 && needed <= UInt64(clicks) + 1, "\(follower)")
        try Self.eventually("retention to remove the projected segments") {
            (try edge.metric("clickd_pruned_segments_total") ?? 0) >= 8
        }
        let local = try SegmentName.list(in: log)
        let archived = try SegmentName.list(in: archive + "/\(logID)")
        #expect(local.first!.firstLSN > 1, "nothing was pruned")
        #expect(archived.count > local.count, "\(archived.count) archived, \(local.count) local")
        let live = try IngestTests.snapshot(url)
        #expect(live.count > 100)
        // What an operator sees of it: nothing waits for the archive, the disk holds the
        // tail, the one follower's hold.
        let status = try ChildProcess.clickd(["status", "--log", log, "--database", url])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(
            status.stdout.contains("archiving=on unarchived_segments=0 oldest_unarchived_seconds=0 local_segments=\(local.count) "),
            "\(status.stdout)")
        #expect(status.stdout.contains("first_local_lsn=\(local.first!.firstLSN) followers=\(follower[0].name):\(needed)"), "\(status.stdout)")

        // Without the archive a rebuild cannot start at LSN 1, and says where to look.
        let blind = try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--database", url])
        #expect(blind.status != 0 && blind.stderr.contains("--archive-dir"), "\(blind.stderr)")
        // With it, the archive and then the local tail: the live projections exactly.
        let verified = try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--archive-dir", archive, "--database", url])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("the rebuilt projections equal the live ones"), "\(verified.stdout)")
        // An archive reached only by a command (an object store's CLI): --restore-command
        // fetches the archived segments into --archive-dir's DIR/<log id>/ first, each
        // checked, then reads them from there.
        let staging = dir.appending("staging")
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        let fetchCommand = "cp '\(archive)'/%l/%f %p"
        #expect(
            try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--restore-command", fetchCommand, "--database", url]).stderr.contains(
                "--restore-command needs --archive-dir DIR"))
        let fetched = try ChildProcess.clickd([
            "rebuild", "--verify", "--log", log, "--restore-command", fetchCommand, "--archive-dir", staging, "--database", url,
        ])
        #expect(fetched.status == 0 && fetched.stdout.contains("the rebuilt projections equal the live ones"), "\(fetched.stdout)\(fetched.stderr)")
        #expect(fetched.stderr.contains("archived segments fetched"), "\(fetched.stderr)")
        #expect(FileSystem.isDirectory(FileSystem.join(staging, try LogReader(directory: log).logID.description)))
        // Given again, the fetched copy is not overwritten: one line says what to do.
        let again = try ChildProcess.clickd([
            "rebuild", "--verify", "--log", log, "--restore-command", fetchCommand, "--archive-dir", staging, "--database", url,
        ])
        #expect(again.status != 0 && again.stderr.contains("exists already: remove it, or rebuild without --restore-command"), "\(again.stderr)")

        // The disk is lost: restore from the archive, rebuild from the restored log.
        edge.signal(SIGKILL)
        _ = try edge.wait()
        try FileManager.default.removeItem(atPath: log)
        let restored = dir.appending("restored")
        let restore = try ChildProcess.clickd(["log", "restore", "--from", archive, restored])
        #expect(restore.status == 0, "\(restore.stderr)")
        let rebuilt = try ChildProcess.clickd(["rebuild", "--log", restored, "--database", url])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(try IngestTests.snapshot(url) == live)
    }

    /// Two edges archive into one directory, keyed by their log ids: verify sees both,
    /// a restore must be told which, and both restored logs rebuild the live views.
    @Test func twoEdgesShareOneArchive() throws {
        let dir = try TemporaryDirectory("clickd-two-edges")
        defer { dir.remove() }
        let keys = try Self.keys(dir)
        let archive = dir.appending("archive")
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        let url = try IngestTests.database()
        let logs = [dir.appending("log-a"), dir.appending("log-b")]
        let edges = try logs.map {
            try EdgeProcess(log: $0, keys: keys, arguments: ["--archive-dir", archive, "--seal-after", "0.2", "--segment-size", "1"])
        }
        for (n, edge) in edges.enumerated() {
            let connection = try HTTPTestConnection(port: edge.port, timeoutSeconds: 10)
            for i in 0..<(3000 + n * 1000) { #expect(try connection.request("GET", "/c/" + Self.token(i * 2 + n)).status == 302) }
        }
        let ids = try logs.map { try LogReader(directory: $0).logID }
        for (edge, (log, id)) in zip(edges, zip(logs, ids)) {
            try Self.eventually("\(log) archived") {
                let durable = try LogReader.durableWatermark(directory: log)
                guard let last = try SegmentName.list(in: archive + "/\(id)").last, try edge.metric("clickd_archive_waiting_segments") == 0
                else { return false }
                return try SealedSegment.check(path: archive + "/\(id)/" + last.name, fileName: last.name, logID: id).lastLSN == durable
            }
        }
        let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", logs[0], "--log", logs[1], "--database", url])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let live = try IngestTests.snapshot(url)
        for edge in edges {
            edge.signal(SIGKILL)
            _ = try edge.wait()
        }
        let verify = try ChildProcess.clickd(["log", "verify", "--archive", archive])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(
            verify.stdout.contains("ok: log \(ids[0]): 3000 records") && verify.stdout.contains("ok: log \(ids[1]): 4000 records"), "\(verify.stdout)"
        )
        let unsaid = try ChildProcess.clickd(["log", "restore", "--from", archive, dir.appending("which")])
        #expect(unsaid.status == 1 && unsaid.stderr.contains("holds 2 logs; choose one with --log-id"), "\(unsaid.stderr)")
        var restored: [String] = []
        for (n, id) in ids.enumerated() {
            let target = dir.appending("restored-\(n)")
            let restore = try ChildProcess.clickd(["log", "restore", "--from", archive, "--log-id", id.description, target])
            #expect(restore.status == 0, "\(restore.stderr)")
            restored.append(target)
        }
        let rebuilt = try ChildProcess.clickd(["rebuild", "--log", restored[0], "--log", restored[1], "--database", url])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(try IngestTests.snapshot(url) == live)
    }
}
