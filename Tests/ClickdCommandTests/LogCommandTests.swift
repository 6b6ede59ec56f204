import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

/// `clickd log …` run as a user would run it: the built binary, real directories.
@Suite(.ownThreads) struct LogCommandTests {
    /// A log made by `clickd log bench` (the real write path), 300 records.
    func makeLog(_ dir: TemporaryDirectory, events: Int = 300) throws -> String {
        let path = dir.appending("log")
        let result = try ChildProcess.clickd(["log", "bench", path, "--events", "\(events)", "--writers", "4", "--payload", "50", "--no-sync"])
        #expect(result.status == 0, "\(result.stderr)")
        return path
    }

    func segment(_ path: String) throws -> String {
        path + "/" + (try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".seg") }.sorted()[0])
    }

    @Test func verifyCleanLog() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try makeLog(dir)
        let result = try ChildProcess.clickd(["log", "verify", path])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("ok: 300 records in 1 segments, LSN 1–300"))
    }

    @Test func verifyReportsATornTailAndExitsZero() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try makeLog(dir)
        // Half a frame after the last record, as an interrupted write leaves it (the rest of
        // the preallocated segment stays zero).
        let seg = try segment(path)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: seg))
        try handle.seek(toOffset: UInt64(48 + 300 * 66))
        handle.write(Data([40, 0, 0, 0, 1, 2, 3, 4, 5]))
        try handle.close()
        let result = try ChildProcess.clickd(["log", "verify", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("torn tail: 9 bytes at the end of \(seg) from byte \(48 + 300 * 66)"), "\(result.stdout)")
        #expect(result.stdout.contains("ok: 300 records"))
    }

    @Test func verifyFailsOnCorruptionNamingSegmentAndOffset() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try makeLog(dir)
        let seg = try segment(path)
        // Damage the payload of the 11th record (frames are 16 + 50 bytes after a 48-byte header).
        let offset = 48 + 10 * 66
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: seg)))
        bytes[offset + 30] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: seg))
        let result = try ChildProcess.clickd(["log", "verify", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains(seg))
        #expect(result.stderr.contains("byte \(offset)"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func verifyFailsOnAFlippedBitInASealedSegment() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // 1 MiB segments of 66-byte frames: 20000 records fill one and start a second.
        let (path, segments) = try makeTwoSegmentLog(dir)
        let sealed = segments[0]
        let offset = 48 + 5000 * 66
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sealed)))
        #expect(bytes.count == 48 + (bytes.count - 48 - 64) / 66 * 66 + 64, "a sealed segment ends at its seal footer")
        bytes[offset + 20] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: sealed))
        let result = try ChildProcess.clickd(["log", "verify", path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("sealed segment \(sealed) is corrupt at byte \(offset)"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stdout.isEmpty)
    }

    /// Two 1 MiB segments made by the real write path (20,000 records of 50 bytes).
    func makeTwoSegmentLog(_ dir: TemporaryDirectory) throws -> (path: String, segments: [String]) {
        let path = dir.appending("log")
        let made = try ChildProcess.clickd([
            "log", "bench", path, "--events", "20000", "--writers", "8", "--payload", "50",
            "--no-sync", "--segment-size", "1",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let segments = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segments.count == 2)
        return (path, segments.map { path + "/" + $0 })
    }

    /// Issue 12, item 8: the first record of a segment damaged (or the segment cut to its
    /// header) made `log dump` reopen the same segment forever. Now every reader stops with
    /// one line naming the segment and the offset, as `verify` does.
    @Test(arguments: ["damaged", "missing"]) func aSegmentWithoutItsFirstRecordIsAnErrorNotALoop(_ how: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (path, segments) = try makeTwoSegmentLog(dir)
        try FileDamage.corrupt(segments[1]) { bytes in
            if how == "damaged" { bytes[48 + 20] ^= 0x40 } else { bytes.removeSubrange(48...) }
        }
        for args in [["log", "dump", path], ["log", "dump", path, "--json"]] {
            let result = try ChildProcess.clickd(args, timeout: 30)
            #expect(result.status == 1, "\(args): \(result.stderr)")
            #expect(result.stderr.contains(segments[1]), "\(result.stderr)")
            #expect(result.stderr.contains("byte 48"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
        let verify = try ChildProcess.clickd(["log", "verify", path], timeout: 30)
        #expect(verify.status == 1, "\(verify.stdout)")
    }

    /// Issue 12, item 9: a stray file named like a segment of LSN 0 (or with a sign, which
    /// `UInt64(_:radix:)` accepted) trapped `verify`, `stats` and the writer's recovery. It is
    /// an error naming the file; a file with upper-case hex is not a segment name either.
    @Test(arguments: ["0000000000000000.seg", "+000000000000000.seg", "00000000000000A1.seg", "-000000000000001.seg"])
    func aStrayFileNamedLikeASegmentIsRefusedByName(_ name: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try makeLog(dir, events: 10)
        let stray = path + "/" + name
        #expect(FileManager.default.createFile(atPath: stray, contents: Data(repeating: 0, count: 48)))
        for args in [
            ["log", "verify", path], ["log", "stats", path], ["log", "dump", path],
            ["log", "bench", path, "--events", "1"],
        ] {
            let result = try ChildProcess.clickd(args, timeout: 30)
            #expect(!result.signalled, "\(args) crashed: \(result.stderr)")
            #expect(result.status == 1, "\(args): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains(stray) && result.stderr.contains("is not a segment name"), "\(args): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(args): \(result.stderr)")
        }
        try FileManager.default.removeItem(atPath: stray)
        #expect(try ChildProcess.clickd(["log", "verify", path]).status == 0)
    }

    /// Issue 12, item 14: a log holds customer ids, addresses and user agents. Whatever the
    /// umask, clickd creates its directory 0750 and every file in it 0640.
    @Test(arguments: ["000", "077"]) func logFilesAreForTheWriterAndItsGroupWhateverTheUmask(_ mask: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let made = try ChildProcess.run(
            "/bin/sh",
            [
                "-c", "umask \(mask) && exec \"$0\" log bench \"$1\" --events 20000 --payload 50 --no-sync --segment-size 1",
                RepositoryPaths.product("clickd"), path,
            ])
        #expect(made.status == 0, "\(made.stderr)")
        func mode(_ p: String) throws -> Int { (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int) ?? -1 }
        #expect(try mode(path) == 0o750)
        let files = try FileManager.default.contentsOfDirectory(atPath: path)
        #expect(files.filter { $0.hasSuffix(".seg") }.count == 2)
        for name in files {
            let m = try mode(path + "/" + name)
            #expect(m == 0o640, "\(name) is \(String(m, radix: 8))")
        }
    }

    @Test func statsAndDump() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try makeLog(dir, events: 25)
        let stats = try ChildProcess.clickd(["log", "stats", path])
        #expect(stats.status == 0)
        for line in ["segments: 1", "records: 25", "first_lsn: 1", "last_lsn: 25", "durable_end: 25", "bytes: \(48 + 25 * 66)"] {
            #expect(stats.stdout.contains(line), "missing \(line) in \(stats.stdout)")
        }
        let dump = try ChildProcess.clickd(["log", "dump", path, "--from", "24"])
        #expect(dump.status == 0)
        let lines = dump.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("lsn=24 bytes=50 payload=0x"))
        let json = try ChildProcess.clickd(["log", "dump", path, "--json"])
        let objects = json.stdout.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 25)
        #expect(objects.last??["lsn"] as? Int == 25)
        let payload = Data(base64Encoded: objects.last??["payload_base64"] as? String ?? "")
        #expect(payload?.count == 50)
    }

    /// `clickd log dump` shows decoded clicks (moved from the edge's corpus test, which now
    /// runs in process): a log of clicks written by the real writer, dumped as text and JSON.
    @Test func dumpShowsDecodedClicks() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("log")
        let writer = try EventLogWriter(directory: path)
        for (i, url) in URLCorpus.destinations.prefix(3).enumerated() {
            let token = LinkToken(
                destination: url, deliveryID: "d\(i)", customerID: "c-1", sourceKind: .campaign, sourceID: "17", messageType: .email,
                linkID: "hero", issuedAt: 1_790_000_000)
            let click = ClickEvent(
                occurredAt: 1_790_000_001_000, method: i == 2 ? .head : .get, token: token, keyID: "live", userAgent: "Tester/1.0",
                clientIP: [127, 0, 0, 1], edgeID: "test-edge")
            _ = try await writer.append(EventCodec.encode(.click(click)))
        }
        writer.close()
        let dump = try ChildProcess.clickd(["log", "dump", path, "--from", "3"])
        #expect(dump.stdout.hasPrefix("lsn=3 bytes="), "\(dump.stdout.prefix(200))")
        #expect(dump.stdout.contains(" kind=click ") && dump.stdout.contains(" delivery=d2 ") && dump.stdout.contains(" method=HEAD "))
        let json = try ChildProcess.clickd(["log", "dump", path, "--json"])
        let first = try JSONSerialization.jsonObject(with: Data(json.stdout.split(separator: "\n")[0].utf8)) as? [String: Any]
        #expect((first?["event"] as? [String: String])?["url"] == URLCorpus.destinations[0])
    }

    @Test func badInputIsOneLineAndNonZero() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for args in [
            ["log", "verify", dir.appending("missing")],
            ["log", "stats", dir.path],
            ["log", "dump", dir.appending("missing")],
        ] {
            let result = try ChildProcess.clickd(args)
            #expect(result.status == 1, "\(args)")
            #expect(result.stderr.hasPrefix("clickd: error: "), "\(args): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(args): \(result.stderr)")
        }
        let usage = try ChildProcess.clickd(["log", "bench", dir.appending("b"), "--events", "0"])
        #expect(usage.status == 64)
        let zero = try ChildProcess.clickd(["log", "dump", dir.path, "--from", "0"])
        #expect(zero.status == 64)
    }

    @Test func benchRefusesALogWithRecordsAndAnotherWritersLog() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = try makeLog(dir, events: 10)
        let again = try ChildProcess.clickd(["log", "bench", path, "--events", "10"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("already holds a log"))
        // Records were not added.
        #expect(try ChildProcess.clickd(["log", "verify", path]).stdout.hasPrefix("ok: 10 records"))
    }

    @Test func benchPrintsTheFigures() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try ChildProcess.clickd(["log", "bench", dir.appending("b"), "--events", "2000", "--writers", "16", "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["events"] as? Int == 2000)
        #expect((object?["fsyncs"] as? Int ?? 0) > 0)
        #expect((object?["fsyncs"] as? Int ?? 0) < 2000)
        #expect((object?["appends_per_second"] as? Int ?? 0) > 0)
        #expect(object?["p99_us"] != nil)
    }

    /// A directory the writer may not write to: one clear line, exit 1, nothing created.
    @Test func unwritableDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let locked = dir.appending("ro")
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        chmod(locked, 0o555)
        chmod(dir.path, 0o755)
        // root may write anywhere: run the command as an unprivileged user then.
        let clickd = RepositoryPaths.product("clickd")
        let result =
            getuid() == 0
            ? try ChildProcess.run("/usr/sbin/runuser", ["-u", "nobody", "--", clickd, "log", "bench", locked, "--events", "1"])
            : try ChildProcess.clickd(["log", "bench", locked, "--events", "1"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("not writable") || result.stderr.contains("Permission denied"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: locked).isEmpty)
    }

    /// A full disk: appends fail with one clear error, the log stays valid, and once space
    /// is freed the log reopens and takes appends again. Uses a 1 MiB tmpfs in a private
    /// mount namespace (a user namespace when not root).
    @Test func fullDisk() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let mount = dir.appending("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: false)
        let script = """
            set -u
            mount -t tmpfs -o size=1m tmpfs "$1" || exit 90
            dd if=/dev/zero of="$1/filler" bs=64k count=4 2>/dev/null
            "$2" "$1/log" 8 200000 "$4" > "$1/../acks1" 2> "$1/../err1"; echo "torture1=$?"
            "$3" log verify "$1/log"; echo "verify1=$?"
            rm "$1/filler"
            "$2" "$1/log" 4 400 > "$1/../acks2" 2> "$1/../err2"; echo "torture2=$?"
            "$3" log verify "$1/log"; echo "verify2=$?"
            """
        let unshare = getuid() == 0 ? ["-m"] : ["--user", "--map-root-user", "--mount"]
        let result = try ChildProcess.run(
            "/usr/bin/unshare",
            unshare + [
                "/bin/sh", "-c", script, "sh", mount,
                RepositoryPaths.product("LogTorture"), RepositoryPaths.product("clickd"),
                "\(256 << 10)",
            ])
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        let out = result.stdout
        #expect(out.contains("torture1=1"), "\(out)")
        let err1 = (try? String(contentsOfFile: dir.appending("err1"), encoding: .utf8)) ?? ""
        #expect(err1.contains("No space left on device"), "\(err1)")
        // The helper's own error line (its log lines aside): one, naming the cause.
        #expect(err1.split(separator: "\n").filter { $0.hasPrefix("error: ") }.count == 1, "\(err1)")
        #expect(out.contains("verify1=0"), "\(out)")
        #expect(out.contains("torture2=0"), "\(out)")
        #expect(out.contains("verify2=0"), "\(out)")
        // Every LSN acknowledged before the disk filled is in the log, and the second run continued after them.
        let acks1 = ((try? String(contentsOfFile: dir.appending("acks1"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { UInt64($0) }
        let acks2 = ((try? String(contentsOfFile: dir.appending("acks2"), encoding: .utf8)) ?? "").split(separator: "\n").compactMap { UInt64($0) }
        #expect(!acks1.isEmpty)
        #expect(acks2.count == 400)
        #expect(acks2.min()! > acks1.max()!)
        let verified = out.split(separator: "\n").filter { $0.hasPrefix("ok: ") }
        #expect(verified.count == 2)
        #expect(verified.last?.contains("LSN 1–\(acks2.max()!)") == true, "\(verified)")
    }
}
