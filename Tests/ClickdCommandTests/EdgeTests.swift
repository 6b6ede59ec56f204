import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

/// `clickd edge` as a person's browser meets it: a real process, a real port, a real log.
@Suite(.ownThreads) struct EdgeTests {
    static let activeSecret = [UInt8](repeating: 0x5a, count: 32)
    static let retiredSecret = [UInt8](repeating: 0x6b, count: 32)
    static let signer = try! KeyRing(keys: [KeyRing.makeKey(kid: "live", secret: activeSecret, created: "2026-11-01T00:00:00Z")])
    static let retiredSigner = try! KeyRing(keys: [KeyRing.makeKey(kid: "old", secret: retiredSecret, created: "2026-01-01T00:00:00Z")])

    /// A directory with a key ring (one active key, one retired) and room for a log.
    static func setUp() throws -> (TemporaryDirectory, keys: String, log: String) {
        let dir = try TemporaryDirectory("clickd-edge")
        let b64 = { (s: [UInt8]) in
            Data(s).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        let ring = "key live \(b64(activeSecret)) 2026-11-01T00:00:00Z active\nkey old \(b64(retiredSecret)) 2026-01-01T00:00:00Z retired\n"
        // Retried: Foundation's Process on Linux can close a descriptor twice while another
        // test spawns a child (ChildProcess), failing a write here with EBADF.
        var attempt = 0
        while true {
            do {
                try ring.write(toFile: dir.appending("keys"), atomically: true, encoding: .utf8)
                break
            } catch  where attempt < 3 {
                attempt += 1
                usleep(20_000)
            }
        }
        chmod(dir.appending("keys"), 0o600)
        return (dir, dir.appending("keys"), dir.appending("log"))
    }

    static func token(
        _ destination: String = "https://example.com/landing", delivery: String = "d-1",
        signer: KeyRing = EdgeTests.signer
    ) -> String {
        try! signer.sign(
            LinkToken(
                destination: destination, deliveryID: delivery, customerID: "c-1", sourceKind: .campaign,
                sourceID: "17", messageType: .email, linkID: "hero", issuedAt: 1_790_000_000))
    }

    static func openToken(delivery: String = "d-1") -> String {
        try! signer.sign(
            OpenToken(deliveryID: delivery, customerID: "c-1", sourceKind: .campaign, sourceID: "17", messageType: .email, issuedAt: 1_790_000_000))
    }

    static func opens(_ log: String) throws -> [OpenEvent] {
        try LogReaderHelper.events(log).compactMap { if case .opened(let o) = $0 { return o } else { return nil } }
    }

    static func clicks(_ log: String) throws -> [ClickEvent] {
        try LogReaderHelper.events(log).compactMap { if case .click(let c) = $0 { return c } else { return nil } }
    }

    /// A range that is not one is refused when the edge starts, with one line naming the option.
    @Test func aBadTrustedProxyRangeIsRefused() throws {
        let (dir, keys, log) = try Self.setUp()
        defer { dir.remove() }
        let untrusted = try ChildProcess.clickd(["edge", "--log", log, "--keys", keys, "--trust-proxy", "10.0.0.0/99"])
        #expect(untrusted.status == 64 && untrusted.stderr.contains("--trust-proxy"))
    }

    /// An egress file that is missing or holds a line that is no range is refused at start,
    /// in one line naming the option and the line.
    @Test func aBadAppleEgressFileIsRefused() throws {
        let (dir, keys, log) = try Self.setUp()
        defer { dir.remove() }
        let missing = try ChildProcess.clickd(["edge", "--log", log, "--keys", keys, "--apple-egress", dir.appending("nope.csv")])
        #expect(missing.status != 0 && missing.stderr.contains("--apple-egress") && missing.stderr.contains("cannot read"), "\(missing.stderr)")
        try "172.224.226.0/27,GB,GB-EN,London,\n172.224.226/27,GB\n".write(toFile: dir.appending("bad.csv"), atomically: true, encoding: .utf8)
        let bad = try ChildProcess.clickd(["edge", "--log", log, "--keys", keys, "--apple-egress", dir.appending("bad.csv")])
        let lines = bad.stderr.split(separator: "\n").filter { $0.contains("error") }
        #expect(bad.status != 0 && lines.count == 1 && lines[0].contains("line 2: '172.224.226/27' is not an address"), "\(bad.stderr)")
    }

    /// SIGTERM under load, then kill -9 under load (repeated): every click answered with a
    /// 302 and every open answered with the pixel before the signal is in the log, and the
    /// edge restarts on the same log.
    @Test func everyRedirectedClickSurvivesSIGTERMAndKill9() throws {
        let (dir, keys, log) = try Self.setUp()
        defer { dir.remove() }
        var redirected: Set<String> = []
        var pixels: Set<String> = []
        for round in 0..<6 {
            let edge = try EdgeProcess(log: log, keys: keys)
            let load = ClickLoad(port: edge.port, workers: 6, prefix: "r\(round)")
            // Opens take the same durable path: every pixel answered is in the log too.
            let opens = ClickLoad(port: edge.port, workers: 2, prefix: "o\(round)", opens: true)
            // Under load first: wait for answers to flow, then a little longer.
            let loaded = Date().addingTimeInterval(10)
            while load.answered.count < 50 || opens.answered.count < 20, Date() < loaded { usleep(2000) }
            usleep(UInt32(20_000 + round * 30_000))
            edge.signal(round == 0 ? SIGTERM : SIGKILL)
            _ = try? edge.wait()
            let got = load.stop()
            let fetched = opens.stop()
            #expect(!got.isEmpty && !fetched.isEmpty, "round \(round): no click or no open was answered")
            redirected.formUnion(got)
            pixels.formUnion(fetched)
            let logged = Set(try Self.clicks(log).map(\.token.deliveryID))
            let missing = redirected.subtracting(logged)
            #expect(missing.isEmpty, "round \(round): \(missing.count) redirected clicks missing from the log, e.g. \(missing.prefix(3))")
            let missingOpens = pixels.subtracting(try Self.opens(log).map(\.token.deliveryID))
            #expect(missingOpens.isEmpty, "round \(round): \(missingOpens.count) answered opens missing from the log, e.g. \(missingOpens.prefix(3))")
        }
    }

    /// A full disk: the person is still redirected, their mail still shows the pixel; the
    /// loss is logged (and counted).
    @Test func fullDiskStillRedirects() throws {
        let (dir, keys, _) = try Self.setUp()
        defer { dir.remove() }
        let mount = dir.appending("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: false)
        let unshare = getuid() == 0 ? ["-m"] : ["--user", "--map-root-user", "--mount"]
        // Mount a 256 KiB tmpfs over `mount`, then exec the edge with its log there.
        let wrapper = ["/usr/bin/unshare"] + unshare + ["/bin/sh", "-c", "mount -t tmpfs -o size=256k tmpfs \"$0\" && exec \"$@\"", mount]
        let edge = try EdgeProcess(log: mount + "/log", keys: keys, wrapper: wrapper)
        let connection = try HTTPTestConnection(port: edge.port)
        var statuses: [Int] = []
        let filler = String(repeating: "u", count: 500)
        for i in 0..<1500 {
            statuses.append(try connection.request("GET", "/c/" + Self.token(delivery: "full-\(i)"), headers: [("User-Agent", filler)]).status)
        }
        #expect(statuses.allSatisfy { $0 == 302 })
        // The disk is full by now: a pixel is still the GIF, never a broken image.
        var pixels: [[UInt8]] = []
        for i in 0..<100 {
            let response = try connection.request("GET", "/o/" + Self.openToken(delivery: "full-\(i)"), headers: [("User-Agent", filler)])
            #expect(response.status == 200 && response.header("Content-Type") == "image/gif")
            pixels.append(response.body)
        }
        #expect(pixels.count == 100 && pixels.allSatisfy { $0.count == 43 })
        _ = try edge.stderrReaderWait { $0.contains("NOT recorded") }
        let unrecorded = try edge.metric("clickd_clicks_total{outcome=\"unrecorded\"}") ?? 0
        let recorded = try edge.metric("clickd_clicks_total{outcome=\"recorded\"}") ?? 0
        #expect(unrecorded > 0 && recorded > 0 && unrecorded + recorded == 1500, "\(recorded) + \(unrecorded)")
        let opensLost = try edge.metric("clickd_opens_total{outcome=\"unrecorded\"}") ?? 0
        let opensKept = try edge.metric("clickd_opens_total{outcome=\"recorded\"}") ?? 0
        #expect(opensLost > 0 && opensLost + opensKept == 100, "\(opensKept) + \(opensLost)")
        #expect(try HTTPTestConnection(port: edge.adminPort).request("GET", "/healthz").status == 200 || unrecorded > 0)
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
    }
}

extension EdgeProcess {
    func stderrReaderWait(_ match: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let line = stderrLines.first(where: match) { return line }
            usleep(10_000)
        }
        throw TestSupportError("no such line in: \(stderrLines.joined(separator: "\n"))")
    }
}

/// Reads a whole log's events.
enum LogReaderHelper {
    static func events(_ log: String) throws -> [TrackingEvent] {
        try LogReader(directory: log).readToEnd().map { try EventCodec.decode($0.payload) }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

@Suite(.ownThreads) struct EdgeSystemdTests {
    /// A test stands in for systemd: it listens on the datagram socket named in
    /// NOTIFY_SOCKET and sees READY, WATCHDOG and STOPPING.
    @Test func sendsReadyWatchdogAndStopping() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let systemd = try NotifyListener(path: dir.appending("notify.sock"))
        func receive() -> String? { systemd.receive() }
        let edge = try EdgeProcess(log: log, keys: keys, environment: ["NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "200000"])
        var seen: [String] = []
        while seen.filter({ $0.contains("WATCHDOG=1") }).count < 2, let message = receive() { seen.append(message) }
        #expect(seen.first?.hasPrefix("READY=1") == true, "\(seen)")
        #expect(seen.filter { $0.contains("WATCHDOG=1") }.count >= 2, "\(seen)")
        edge.signal(SIGTERM)
        #expect(systemd.waitFor("STOPPING=1"))
        #expect(try edge.wait() == 0)
        // The shutdown touches no event loop it has shut down (NIO warns, and will trap).
        #expect(!edge.stderrLines.contains { $0.contains("Cannot schedule tasks") }, "\(edge.stderrLines)")
    }

    @Test func sighupReloadsTheKeyRing() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let edge = try EdgeProcess(log: log, keys: keys)
        let fresh = try KeyRing(keys: [KeyRing.makeKey(kid: "fresh", secret: [UInt8](repeating: 0x77, count: 32), created: "2026-12-01T00:00:00Z")])
        let token = EdgeTests.token(signer: fresh)
        #expect(try HTTPTestConnection(port: edge.port).request("GET", "/c/" + token).status == 404, "unknown before the reload")
        let line =
            "key fresh \(Data(repeating: 0x77, count: 32).base64EncodedString().replacingOccurrences(of: "=", with: "")) 2026-12-01T00:00:00Z active\n"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: keys))
        handle.seekToEndOfFile()
        handle.write(Data(line.utf8))
        try handle.close()
        edge.signal(SIGHUP)
        _ = try edge.stderrReaderWait { $0.contains("key ring reloaded") }
        #expect(try HTTPTestConnection(port: edge.port).request("GET", "/c/" + token).status == 302, "known after the reload")
        // A broken ring is refused and the previous one stays in use.
        try "key broken\n".write(toFile: keys, atomically: true, encoding: .utf8)
        edge.signal(SIGHUP)
        _ = try edge.stderrReaderWait { $0.contains("NOT reloaded") }
        #expect(try HTTPTestConnection(port: edge.port).request("GET", "/c/" + token).status == 302)
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
    }
}

/// What the admin listener needs a process for: the warnings `clickd edge` prints at start.
/// (The API itself is tested in process: TrackerEdgeTests/EdgeAdminTests.)
@Suite(.ownThreads) struct EdgeStartTests {
    /// Issue 12, item 14: secrets readable by every user are worth a warning at start.
    @Test func aKeyRingReadableByOthersIsWarnedAboutAndTheAPIIsOff() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        chmod(keys, 0o644)
        let edge = try EdgeProcess(log: log, keys: keys)
        #expect(edge.stderrLines.contains { $0.contains("the key ring is readable by every user") && $0.contains(keys) }, "\(edge.stderrLines)")
        let response = try HTTPTestConnection(port: edge.adminPort).request(
            "POST", "/v1/messages",
            headers: [("Content-Length", "2")], body: "{}")
        #expect(response.status == 403)
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
    }
}
