import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import LogArchive
import Testing

/// The log's lifecycle as an operator meets it (docs/design/archive.md): `clickd edge`
/// archiving its sealed segments, `clickd log verify --archive`, `clickd log restore`
/// after a lost disk — real processes, real files, kill -9.
@Suite(.ownThreads) struct LogArchiveCommandTests {
    /// Sends `count` clicks over one connection; returns the delivery ids answered with a 302.
    static func click(port: Int, prefix: String, count: Int) throws -> Set<String> {
        let connection = try HTTPTestConnection(port: port, timeoutSeconds: 10)
        var answered: Set<String> = []
        for i in 0..<count {
            let delivery = "\(prefix)-\(i)"
            if try connection.request("GET", "/c/" + EdgeTests.token(delivery: delivery)).status == 302 { answered.insert(delivery) }
        }
        return answered
    }

    /// Waits until `condition` holds, `timeout` seconds at most.
    static func eventually(_ what: String, timeout: TimeInterval = 20, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline else { throw TestSupportError("timed out waiting for \(what)") }
            usleep(20_000)
        }
    }

    static func logID(_ log: String) throws -> LogID { try LogReader(directory: log).logID }

    /// The delivery ids of every click in the log in `directory`.
    static func deliveries(_ directory: String) throws -> [String] {
        try EdgeTests.clicks(directory).map(\.token.deliveryID)
    }

    /// Waits until the edge has nothing left to archive: every click it answered sealed
    /// (by time: a quiet spell past --seal-after) and shipped.
    static func waitUntilArchived(_ edge: EdgeProcess, log: String, archive: String) throws {
        let logID = try Self.logID(log)
        try eventually("every sealed segment archived") {
            let durable = try LogReader.durableWatermark(directory: log)
            guard try edge.metric("clickd_archive_waiting_segments") == 0 else { return false }
            let archived = try SegmentName.list(in: archive + "/" + logID.description)
            guard let last = archived.last else { return false }
            let segment = try SealedSegment.check(
                path: archive + "/" + logID.description + "/" + last.name, fileName: last.name, logID: logID)
            return segment.lastLSN == durable
        }
    }

    /// An edge archives into a directory; its log directory is then lost whole (after a
    /// kill -9). `clickd log verify --archive` passes, `clickd log restore` (from the
    /// directory, and through a restore command) brings back every click the edge
    /// answered, and the edge refuses to append to the restored log. A damaged and a
    /// missing archived segment are each named by verify.
    @Test func aLostLogIsRestoredFromTheArchive() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let archive = dir.appending("archive")
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        let edge = try EdgeProcess(
            log: log, keys: keys, arguments: ["--archive-dir", archive, "--seal-after", "0.3", "--segment-size", "1"])
        var answered: Set<String> = []
        for round in 0..<4 {
            answered.formUnion(try Self.click(port: edge.port, prefix: "r\(round)", count: 2500))
            usleep(350_000)
        }
        #expect(answered.count == 10_000)
        try Self.waitUntilArchived(edge, log: log, archive: archive)
        #expect(try edge.metric("clickd_archived_segments_total") ?? 0 >= 5)
        #expect(try edge.metric("clickd_archive_failures_total") == 0)
        edge.signal(SIGKILL)
        _ = try edge.wait()
        let logID = try Self.logID(log)

        let verified = try ChildProcess.clickd(["log", "verify", "--archive", archive])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("ok: log \(logID): 10000 records"), "\(verified.stdout)")

        try FileManager.default.removeItem(atPath: log)
        let restored = dir.appending("restored")
        let restore = try ChildProcess.clickd(["log", "restore", "--from", archive, restored])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stdout.contains("restored log \(logID): 10000 records"), "\(restore.stdout)")
        #expect(Set(try Self.deliveries(restored)) == answered)
        #expect(try Self.logID(restored) == logID)
        #expect(try ChildProcess.clickd(["log", "verify", restored]).status == 0)

        // The same through a restore command that copies from the archive (and fails,
        // as PostgreSQL's contract asks, for a file the archive lacks).
        let byCommand = dir.appending("by-command")
        let command = try ChildProcess.clickd([
            "log", "restore", "--restore-command", "cp \(archive)/%l/%f %p", "--log-id", logID.description, byCommand,
        ])
        #expect(command.status == 0, "\(command.stderr)")
        #expect(try Self.deliveries(byCommand) == Self.deliveries(restored))

        // Into a directory that is not empty: refused, nothing touched.
        let again = try ChildProcess.clickd(["log", "restore", "--from", archive, restored])
        #expect(again.status == 1 && again.stderr.contains("is not empty"), "\(again.stderr)")

        // The edge never appends to a restored log.
        let refused = try ChildProcess.clickd(["edge", "--log", restored, "--keys", keys, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        #expect(refused.status != 0 && refused.stderr.contains("restored from its archive"), "\(refused.stderr)")

        // A damaged archived segment and a missing one are each named.
        let segments = try SegmentName.list(in: archive + "/" + logID.description)
        #expect(segments.count >= 5)
        let damaged = archive + "/" + logID.description + "/" + segments[1].name
        try FileDamage.corrupt(damaged) { $0[200] ^= 0xff }
        try FileManager.default.removeItem(atPath: archive + "/" + logID.description + "/" + segments[3].name)
        let bad = try ChildProcess.clickd(["log", "verify", "--archive", archive])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains(segments[1].name) && bad.stderr.contains("damaged"), "\(bad.stderr)")
        #expect(bad.stderr.contains(segments[3].name) && bad.stderr.contains("missing"), "\(bad.stderr)")
        #expect(bad.stdout.contains("DAMAGED: log \(logID)"), "\(bad.stdout)")
        let stopped = try ChildProcess.clickd(["log", "restore", "--from", archive, dir.appending("from-damaged")])
        #expect(stopped.status == 1 && stopped.stderr.contains(segments[1].name), "\(stopped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appending("from-damaged") + "/" + RestoredLog.markerName))
    }

    /// Bad archive options: one line naming the option, usage exit status, nothing started.
    @Test func badArchiveOptionsAreOneClearLine() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        for (arguments, says) in [
            (["--keep-local", "5x"], "--keep-local must be an age"),
            (["--archive-command", "cp %q"], "'%q' in \"cp %q\" is not one of"),
            (["--archive-dir", dir.appending("missing")], "is not a directory"),
            (["--archive-dir", dir.path, "--archive-command", "true"], "not both"),
        ] {
            let result = try ChildProcess.clickd(["edge", "--log", log, "--keys", keys] + arguments)
            #expect(result.status == 64 && result.stderr.contains(says), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: log))
        let restore = try ChildProcess.clickd(["log", "restore", "--restore-command", "cp %p %f", dir.appending("r")])
        #expect(restore.status == 1 && restore.stderr.contains("--log-id is needed"), "\(restore.stderr)")
    }

    /// A graceful stop leaves nothing unarchived: the writer seals its last segment as it
    /// closes (long before --seal-after) and the archiver's last pass ships it.
    @Test func aStoppedEdgeLeavesNothingUnarchived() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let archive = dir.appending("archive")
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        var answered: Set<String> = []
        for run in 0..<2 {
            let edge = try EdgeProcess(log: log, keys: keys, arguments: ["--archive-dir", archive])
            answered.formUnion(try Self.click(port: edge.port, prefix: "run\(run)", count: 500))
            edge.signal(SIGTERM)
            #expect(try edge.wait() == 0)
        }
        let restored = dir.appending("restored")
        let restore = try ChildProcess.clickd(["log", "restore", "--from", archive, restored])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(Set(try Self.deliveries(restored)) == answered)
        #expect(answered.count == 1000)
    }

    /// kill -9 of the edge at random moments while it answers clicks, and of the archive
    /// command in every other round (slow, so kills land inside it too) while it ships
    /// segments, and retention (--keep-local 0s)
    /// removes what `clickd ingest` has projected, over 50 rounds: every click answered is
    /// in the local segments or the archive, every segment in both has the same bytes,
    /// nothing was removed before it was archived (the archive holds every segment the
    /// disk lacks) or projected (an ingest without the archive still finds all it needs).
    @Test func kill9WhileArchivingLosesAndDoublesNothing() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let archive = dir.appending("archive")
        // rclone copyto --immutable's contract, in sh: an identical copy is a success, a
        // different one a failure; a new one is written aside, synced and renamed.
        let script = dir.appending("archive.sh")
        try """
        #!/bin/sh
        set -e
        mkdir -p "$2"
        if [ -e "$2/$3" ]; then exec cmp -s "$1" "$2/$3"; fi
        sleep 0.0$(( $$ % 7 ))
        cp "$1" "$2/$3.part.$$"
        sync "$2/$3.part.$$"
        mv "$2/$3.part.$$" "$2/$3"
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let arguments = [
            "--archive-command", "\(script) %p \(archive)/%l %f", "--seal-after", "0.1", "--segment-size", "1", "--keep-local", "0s",
        ]
        let url = try ThrowawayPostgres.shared.get().createDatabase("archive_\(UInt32.random(in: 0...UInt32.max))")
        let migrations = RepositoryPaths.root.appendingPathComponent("migrations").path
        #expect(try ChildProcess.clickd(["migrate", "--database", url, "--migrations", migrations]).status == 0)
        var answered: Set<String> = []
        var generator = SplitMix64(seed: 27)
        var commandsKilled = 0
        for round in 0..<50 {
            let edge = try EdgeProcess(log: log, keys: keys, arguments: arguments)
            let load = ClickLoad(port: edge.port, workers: 3, prefix: "r\(round)")
            usleep(UInt32(50_000 + generator.next() % 400_000))
            // Every other round the archive command is killed first, mid-copy if it is
            // running (its .part file stays behind); the edge lives on and retries it.
            if round % 2 == 0 {
                if try ChildProcess.run("/usr/bin/pkill", ["-KILL", "-f", script]).status == 0 { commandsKilled += 1 }
                usleep(UInt32(20_000 + generator.next() % 200_000))
            }
            edge.signal(SIGKILL)
            _ = try? edge.wait()
            answered.formUnion(load.stop())
            // Projected now and then, without the archive: retention never removed what a
            // follower still needed, or this fails (the LSN is before the log's start).
            if round % 5 == 4 {
                let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url])
                #expect(ingest.status == 0, "round \(round): \(ingest.stderr)")
            }
        }
        #expect(commandsKilled > 0, "no archive command was running when the kills came")
        // Undisturbed at last: everything sealed reaches the archive.
        let edge = try EdgeProcess(log: log, keys: keys, arguments: arguments)
        usleep(300_000)
        try Self.eventually("the archive to catch up", timeout: 60) { try edge.metric("clickd_archive_waiting_segments") == 0 }
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)

        let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let logged = try LogReader(directory: log, archive: archive).readToEnd().map { record -> String in
            guard case .click(let click) = try EventCodec.decode(record.payload) else { return "" }
            return click.token.deliveryID
        }
        let missing = answered.subtracting(logged)
        #expect(missing.isEmpty, "\(missing.count) answered clicks missing, e.g. \(missing.prefix(3))")
        #expect(Set(logged).count == logged.count, "a click is in the log twice")
        let logID = try Self.logID(log)
        let archived = try SegmentName.list(in: archive + "/" + logID.description)
        let local = try SegmentName.list(in: log)
        #expect(archived.count >= 50, "\(archived.count) segments archived")
        let pruned = archived.filter { $0.firstLSN < local.first!.firstLSN }
        #expect(!pruned.isEmpty, "retention removed nothing")
        // The archive holds every sealed segment, the removed ones first.
        #expect(archived.map(\.name) == pruned.map(\.name) + local.dropLast().map(\.name))
        for segment in archived where !pruned.contains(where: { $0.name == segment.name }) {
            #expect(
                FileManager.default.contentsEqual(
                    atPath: log + "/" + segment.name, andPath: archive + "/" + logID.description + "/" + segment.name), "\(segment.name)")
        }
        #expect(try ChildProcess.clickd(["log", "verify", "--archive", archive]).status == 0)
    }
}

/// The RPO `--seal-after` promises, measured: under a trickle of clicks, how old the
/// oldest click not yet in the archive ever gets.
@Suite(.ownThreads) struct ArchiveRecoveryPointTests {
    @Test func theUnarchivedTailStaysYoungerThanSealPlusArchive() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let archive = dir.appending("archive")
        try FileManager.default.createDirectory(atPath: archive, withIntermediateDirectories: false)
        let sealAfter = 2.0
        let edge = try EdgeProcess(log: log, keys: keys, arguments: ["--archive-dir", archive, "--seal-after", "\(sealAfter)"])
        let logID = try LogReader(directory: log).logID
        let connection = try HTTPTestConnection(port: edge.port, timeoutSeconds: 10)
        // (when, archived through LSN), sampled between clicks.
        var samples: [(at: Double, through: UInt64)] = []
        var newest: String?
        var through: UInt64 = 0
        let started = Date()
        var i = 0
        while Date().timeIntervalSince(started) < 10 {
            #expect(try connection.request("GET", "/c/" + EdgeTests.token(delivery: "t-\(i)")).status == 302)
            i += 1
            for _ in 0..<2 {
                usleep(50_000)
                let names = try SegmentName.list(in: archive + "/\(logID)")
                if let last = names.last, last.name != newest {
                    through = try SealedSegment.check(path: archive + "/\(logID)/" + last.name, fileName: last.name, logID: logID).lastLSN
                    newest = last.name
                }
                samples.append((Date().timeIntervalSince1970, through))
            }
        }
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
        // Each click's time by LSN; at each sample the oldest unarchived click is LSN
        // through + 1, if it had been taken by then.
        let taken = try LogReader(directory: log).readToEnd().map { record -> Double in
            guard case .click(let click) = try EventCodec.decode(record.payload) else { return 0 }
            return Double(click.occurredAt) / 1000
        }
        var worst = 0.0
        for sample in samples where Int(sample.through) < taken.count {
            let oldest = taken[Int(sample.through)]
            if oldest <= sample.at { worst = max(worst, sample.at - oldest) }
        }
        print(
            "RPO under a trickle (--seal-after \(sealAfter) s, archive on a local directory): oldest unarchived click at most \(String(format: "%.2f", worst)) s old over \(samples.count) samples, \(i) clicks"
        )
        #expect(through > 0, "nothing was archived")
        // Seal-after, plus the archive's copy and the scheduling of a loaded machine.
        #expect(worst < sealAfter + 2, "the unarchived tail held a click \(worst) s old")
    }
}
