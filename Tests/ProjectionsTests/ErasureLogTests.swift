import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

@testable import Projections

/// The log and the archive forget (docs/design/erasure.md, section 3): after `clickd erase`,
/// a real edge rewrites every sealed segment holding the person — on its disk and in its
/// `--archive-dir` archive, pruned ones included — and clicks they make after the erasure
/// are redacted once their segment seals; no byte of the log or the archive holds their id
/// or address; the log and the archive verify; a rebuild from them equals the live views.
/// And `kill -9` in the middle of a rewrite leaves the old segment or the new one.
@Suite(.ownThreads) struct ErasureLogTests {
    typealias A = ArchiveRebuildTests
    static let victim = "victim-7c1a"
    static let victimAddress = "198.51.100.77"
    static let victimAgent = "VictimBrowser/7.1"

    static func token(_ i: Int, customer: String) -> String {
        try! A.signer.sign(
            LinkToken(
                destination: "https://example.com/p/\(i % 7)", deliveryID: "d-\(i % 300)", customerID: customer,
                sourceKind: .campaign, sourceID: "s\(i % 3)", messageType: .email, linkID: "L\(i % 5)", issuedAt: 1_790_000_000))
    }

    /// Clicks `count` links through the edge; every 25th is the victim's, from their own
    /// address and browser. Returns how many were the victim's.
    @discardableResult
    static func click(_ connection: HTTPTestConnection, from start: Int, count: Int) throws -> Int {
        var victims = 0
        for i in start..<(start + count) {
            let isVictim = i % 25 == 0
            let headers: [(String, String)] =
                isVictim
                ? [("X-Forwarded-For", victimAddress), ("User-Agent", victimAgent)]
                : [("X-Forwarded-For", "10.0.\(i % 200).\(i % 250 + 1)"), ("User-Agent", "Mozilla/5.0 (iPhone)")]
            let response = try connection.request("GET", "/c/" + token(i, customer: isVictim ? victim : "c-\(i % 97)"), headers: headers)
            #expect(response.status == 302)
            if isVictim { victims += 1 }
        }
        return victims
    }

    /// Every file under `directories` that holds any of `needles`, with the needle.
    static func grep(_ directories: [String], for needles: [[UInt8]]) throws -> [String] {
        var found: [String] = []
        for directory in directories {
            let enumerator = FileManager.default.enumerator(atPath: directory)!
            while let name = enumerator.nextObject() as? String {
                let path = directory + "/" + name
                guard !FileSystem.isDirectory(path), let bytes = FileManager.default.contents(atPath: path) else { continue }
                for needle in needles where bytes.range(of: Data(needle)) != nil { found.append("\(path): \(needle)") }
            }
        }
        return found
    }

    static var needles: [[UInt8]] {
        [Array(victim.utf8), Array(victimAddress.utf8), [198, 51, 100, 77], Array(victimAgent.utf8)]
    }

    /// The archive's options: an archive directory (rewritten in place), or commands that keep
    /// the same layout (an object store's CLI would stand there), with the replace and
    /// restore commands that let the edge rewrite copies it cannot reach as files.
    static func archiveArguments(_ kind: String, _ archive: String) -> [String] {
        guard kind == "command" else { return ["--archive-dir", archive] }
        let object = "'\(archive)'/%l/%f"
        return [
            "--archive-command",
            "mkdir -p '\(archive)'/%l && if [ -f \(object) ]; then cmp -s %p \(object); else cp %p \(object).tmp && mv \(object).tmp \(object); fi",
            "--archive-replace-command", "cp %p \(object).tmp && mv \(object).tmp \(object)",
            "--restore-command", "cp \(object) %p",
        ]
    }

    @Test(arguments: ["directory", "command"]) func theLogAndTheArchiveForgetAndARebuildAgrees(_ kind: String) throws {
        let dir = try TemporaryDirectory("clickd-erasure-log")
        defer { dir.remove() }
        let (_, log, archive, url, edge, connection) = try A.archivingEdge(dir) {
            Self.archiveArguments(kind, $0) + [
                "--seal-after", "0.2", "--segment-size", "1", "--keep-local", "0.3s", "--trust-proxy", "127.0.0.1/32", "--erase-within", "1h",
            ]
        }
        var clicks = 0
        var victimClicks = 0
        for _ in 0..<5 {
            victimClicks += try Self.click(connection, from: clicks, count: 1200)
            clicks += 1200
            usleep(300_000)
            #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
        }
        try A.eventually("segments to be pruned to the archive") { try SegmentName.list(in: log).first!.firstLSN > 1 }
        #expect(try !Self.grep([log, archive], for: Self.needles).isEmpty, "the victim is in the log before")

        let erased = try ChildProcess.clickd(["erase", "--customer", Self.victim, "--log", log, "--archive-dir", archive, "--database", url])
        #expect(erased.status == 0, "\(erased.stderr)")
        // The edge learnt the list from the erasures file `clickd erase` wrote: the MAC, never the id.
        let files = try ErasuresFile.readAll(logDirectory: log)
        #expect(files.count == 1 && files[0].macs.count == 1)
        // They click an old link after the erasure: the edge still answers, ingestion drops it,
        // and the segment that holds it is rewritten once it seals.
        victimClicks += try Self.click(connection, from: clicks, count: 600)
        clicks += 600
        try A.eventually("every followed log clean for the erasure", timeout: 60) {
            #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
            let grepped = try Self.grep([log, archive], for: Self.needles)
            let clean = try IngestTests.rows(url, "SELECT count(*) FROM clickd.erasures WHERE log_clean_at IS NOT NULL")
            return grepped.isEmpty && clean == [["1"]]
        }
        #expect(try Self.grep([log, archive], for: Self.needles) == [])
        #expect((try edge.metric("clickd_erasure_redacted_records_total") ?? 0) >= Double(victimClicks))
        #expect(try edge.metric("clickd_erasure_overdue") == 0)
        #expect(try IngestTests.rows(url, "SELECT count(*) FROM clickd.activity WHERE customer_id = '\(Self.victim)'") == [["0"]])
        let status = try ChildProcess.clickd(["status", "--log", log, "--database", url])
        #expect(status.stdout.contains("\(log) erasure=done "), "\(status.stdout)")
        #expect(status.stdout.contains("erasures=1 projections_pending=0 logs_pending=0 oldest_pending_seconds=0"), "\(status.stdout)")
        #expect(!status.stdout.contains(Self.victim))

        // Every LSN is still there, each of the victim's a redaction record; log and archive verify.
        let records = try LogReader(directory: log, archive: archive).readToEnd()
        #expect(records.count == clicks)
        #expect(records.filter { $0.payload == EventCodec.redaction }.count == victimClicks)
        let verify = try ChildProcess.clickd(["log", "verify", log])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let verifyArchive = try ChildProcess.clickd(["log", "verify", "--archive", archive])
        #expect(verifyArchive.status == 0, "\(verifyArchive.stdout)\(verifyArchive.stderr)")
        // A rebuild from the rewritten archive and log gives the live views: nobody comes back.
        let rebuilt = try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--archive-dir", archive, "--database", url])
        #expect(
            rebuilt.status == 0 && rebuilt.stdout.contains("the rebuilt projections equal the live ones"),
            "\(rebuilt.stdout.suffix(3000))\(rebuilt.stderr.suffix(3000))")
        edge.signal(SIGTERM)
        _ = try edge.wait()
    }

    /// A command archive without `--archive-replace-command`: the local segments are
    /// rewritten, the archived copies cannot be, and the edge says so (status `blocked`, the
    /// overdue gauge, no `done`) rather than reporting the log clean.
    @Test func aCommandArchiveWithoutReplaceIsReportedNotCleaned() throws {
        let dir = try TemporaryDirectory("clickd-erasure-blocked")
        defer { dir.remove() }
        let (_, log, archive, url, edge, connection) = try A.archivingEdge(dir) {
            Array(Self.archiveArguments("command", $0).prefix(2)) + ["--seal-after", "0.2", "--segment-size", "1", "--trust-proxy", "127.0.0.1/32"]
        }
        try Self.click(connection, from: 0, count: 1500)
        try A.eventually("segments archived") { try edge.metric("clickd_archived_segments_total") ?? 0 >= 3 }
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
        let erased = try ChildProcess.clickd(["erase", "--customer", Self.victim, "--log", log, "--database", url])
        #expect(erased.status == 0, "\(erased.stderr)")
        try A.eventually("the edge to report the pass blocked") { try edge.metric("clickd_erasure_overdue") == 1 }
        let status = ErasureStatus.read(logDirectory: log)
        #expect(!status.stale.isEmpty && status.blocked?.contains("--archive-replace-command") == true, "\(status)")
        #expect(status.done.isEmpty)
        let sealed = try SegmentName.list(in: log).dropLast().map { FileSystem.join(log, $0.name) }
        #expect(try Self.grep(sealed, for: Self.needles) == [], "the local segments are rewritten")
        #expect(try !Self.grep([archive], for: Self.needles).isEmpty, "the archived copies are not")
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
        #expect(try IngestTests.rows(url, "SELECT count(*) FROM clickd.erasures WHERE log_clean_at IS NULL") == [["1"]])
        let shown = try ChildProcess.clickd(["status", "--log", log, "--database", url])
        #expect(shown.stdout.contains("\(log) erasure=blocked ") && shown.stdout.contains("--archive-replace-command"), "\(shown.stdout)")
        #expect(shown.stdout.contains("erasures=1 projections_pending=0 logs_pending=1 oldest_pending_seconds="), "\(shown.stdout)")
        edge.signal(SIGTERM)
        _ = try edge.wait()
    }

    /// `kill -9` while the edge rewrites a large sealed segment: the segment is the old one,
    /// byte for byte, beside a `.rewrite` the next start removes; the restarted edge then
    /// rewrites it whole.
    @Test func kill9DuringASegmentRewriteLeavesTheOldOrTheNew() async throws {
        let dir = try TemporaryDirectory("clickd-erasure-kill")
        defer { dir.remove() }
        let keys = try A.keys(dir)
        let log = dir.appending("log")
        // One sealed segment of ~24 MiB, every 50th record the victim's, and a small open one.
        var configuration = EventLogConfiguration()
        configuration.sync = .none
        configuration.segmentSize = 24 << 20
        let writer = try EventLogWriter(directory: log, configuration: configuration, logger: IngestTests.quiet)
        var lsn: UInt64 = 0
        var victims: [UInt64] = []
        var i = 0
        while true {
            let victim = i % 50 == 0
            let event = IngestTests.click(
                UInt64(i), customer: victim ? Self.victim : "c-\(i % 997)", delivery: "d-\(i % 300)", link: "L\(i % 5)",
                ua: victim
                    ? Self.victimAgent : "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
                ip: victim ? [198, 51, 100, 77] : [10, 0, UInt8(i % 200), UInt8(i % 250)])
            lsn = try await writer.append(EventCodec.encode(event))
            if victim { victims.append(lsn) }
            i += 1
            if try SegmentName.list(in: log).count == 2, i % 50 == 1 { break }
        }
        writer.close()
        let logID = try LogReader(directory: log).logID
        let sealed = try SegmentName.list(in: log)[0].name
        let sealedPath = FileSystem.join(log, sealed)
        let original = try Data(contentsOf: URL(fileURLWithPath: sealedPath))
        #expect(original.count > 16 << 20)

        // What an ingest daemon would write: the list's key and the victim's MAC.
        let key = [UInt8](repeating: 0x33, count: 32)
        let mac = ErasureList(key: key, macs: []).mac(customer: Array(Self.victim.utf8))
        try FileManager.default.createDirectory(atPath: ErasuresFile.directory(of: log), withIntermediateDirectories: false)
        try ErasuresFile(database: "db-1", revision: "1-1", key: key, macs: [.init(mac: mac, requestedAt: 1)]).write(logDirectory: log)

        let killedEdge = try EdgeProcess(log: log, keys: keys, arguments: ["--seal-after", "0.2"])
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !FileSystem.exists(sealedPath + SegmentRewrite.suffix) { usleep(200) }
        killedEdge.signal(SIGKILL)
        _ = try killedEdge.wait()
        #expect(FileSystem.exists(sealedPath + SegmentRewrite.suffix), "the kill came while the new file was written")
        // The segment is the old one, byte for byte, and checks whole.
        #expect(try Data(contentsOf: URL(fileURLWithPath: sealedPath)) == original)
        #expect(try SealedSegment.check(path: sealedPath, fileName: sealed, logID: logID).records > 0)
        // A restarted edge removes the stale .rewrite and rewrites the segment whole.
        let edge = try EdgeProcess(log: log, keys: keys, arguments: ["--seal-after", "0.2"])
        try A.eventually("the restarted edge's pass", timeout: 60) {
            ErasureStatus.read(logDirectory: log).done["db-1"]?.revision == "1-1"
        }
        edge.signal(SIGTERM)
        _ = try edge.wait()
        #expect(!FileSystem.exists(sealedPath + SegmentRewrite.suffix))
        // Every sealed segment (the restarted edge sealed the open one by age too) is clean.
        let segments = try SegmentName.list(in: log)
        let sealedPaths = segments.dropLast().map { FileSystem.join(log, $0.name) }
        #expect(sealedPaths.count >= 1)
        #expect(try Self.grep(sealedPaths, for: Self.needles) == [])
        let lastSealed = try SealedSegment.check(path: sealedPaths.last!, fileName: segments[segments.count - 2].name, logID: logID).lastLSN
        let records = try LogReader(directory: log).readToEnd()
        let redacted = Set(records.filter { $0.payload == EventCodec.redaction }.map(\.lsn))
        #expect(redacted == Set(victims.filter { $0 <= lastSealed }))
        #expect(records.map(\.lsn) == Array(1...lsn))
        let verify = try ChildProcess.clickd(["log", "verify", log])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}
