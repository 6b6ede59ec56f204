import ClickdTestSupport
import EventLog
import Foundation
import LinkTracking
import Testing

/// `clickd edge` as a person's browser meets it: a real process, a real port, a real log.
@Suite struct EdgeTests {
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
        try ring.write(toFile: dir.appending("keys"), atomically: true, encoding: .utf8)
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

    static func clicks(_ log: String) throws -> [ClickEvent] {
        try LogReaderHelper.events(log).compactMap { if case .click(let c) = $0 { return c } else { return nil } }
    }

    @Test func redirectsEveryCorpusDestinationByteExactAndRecordsTheClick() throws {
        let (dir, keys, log) = try Self.setUp()
        defer { dir.remove() }
        let edge = try EdgeProcess(log: log, keys: keys, arguments: ["--ip", "full"])
        let connection = try HTTPTestConnection(port: edge.port)
        for (i, url) in URLCorpus.destinations.enumerated() {
            let response = try connection.request("GET", "/c/" + Self.token(url, delivery: "d\(i)"), headers: [("User-Agent", "Tester/1.0")])
            #expect(response.status == 302, "\(url)")
            #expect(response.header("Location").map { Array($0.utf8) } == Array(url.utf8), "\(url)")
            #expect(response.header("Cache-Control") == "no-store")
            #expect(response.header("Referrer-Policy") == "no-referrer")
            #expect(response.header("X-Robots-Tag") == "noindex")
        }
        let head = try connection.request("HEAD", "/c/" + Self.token(delivery: "prefetch"))
        #expect(head.status == 302 && head.body.isEmpty)
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
        let clicks = try Self.clicks(log)
        #expect(clicks.count == URLCorpus.destinations.count + 1)
        for (i, url) in URLCorpus.destinations.enumerated() {
            let click = clicks[i]
            #expect(click.token.destination == url)
            #expect(click.token.deliveryID == "d\(i)" && click.token.customerID == "c-1" && click.token.linkID == "hero")
            #expect(click.method == .get && click.keyID == "live" && click.userAgent == "Tester/1.0" && click.edgeID == "test-edge")
            #expect(click.clientIP == [127, 0, 0, 1])
            #expect(click.occurredAt > 1_700_000_000_000)
        }
        #expect(clicks.last?.method == .head)
        // `clickd log dump` shows the decoded clicks.
        let dump = try ChildProcess.clickd(["log", "dump", log, "--from", "3"])
        #expect(dump.stdout.hasPrefix("lsn=3 bytes="), "\(dump.stdout.prefix(200))")
        #expect(dump.stdout.contains(" kind=click ") && dump.stdout.contains(" delivery=d2 ") && dump.stdout.contains(" method=HEAD "))
        let json = try ChildProcess.clickd(["log", "dump", log, "--json"])
        let first = try JSONSerialization.jsonObject(with: Data(json.stdout.split(separator: "\n")[0].utf8)) as? [String: Any]
        #expect((first?["event"] as? [String: String])?["url"] == URLCorpus.destinations[0])
    }

    /// A range that is not one is refused when the edge starts, with one line naming the option.
    @Test func aBadTrustedProxyRangeIsRefused() throws {
        let (dir, keys, log) = try Self.setUp()
        defer { dir.remove() }
        let untrusted = try ChildProcess.clickd(["edge", "--log", log, "--keys", keys, "--trust-proxy", "10.0.0.0/99"])
        #expect(untrusted.status == 64 && untrusted.stderr.contains("--trust-proxy"))
    }

    /// SIGTERM under load, then kill -9 under load (repeated): every click answered with a
    /// 302 before the signal is in the log, and the edge restarts on the same log.
    @Test func everyRedirectedClickSurvivesSIGTERMAndKill9() throws {
        let (dir, keys, log) = try Self.setUp()
        defer { dir.remove() }
        var redirected: Set<String> = []
        for round in 0..<6 {
            let edge = try EdgeProcess(log: log, keys: keys)
            let answered = Locked<[String]>([])
            let stop = Locked(false)
            let group = DispatchGroup()
            let port = edge.port
            for worker in 0..<8 {
                DispatchQueue.global().async(group: group) {
                    guard let connection = try? HTTPTestConnection(port: port, timeoutSeconds: 5) else { return }
                    var i = 0
                    while !stop.value {
                        let delivery = "r\(round)-w\(worker)-\(i)"
                        i += 1
                        guard let response = try? connection.request("GET", "/c/" + Self.token(delivery: delivery)) else { return }
                        if response.status == 302 { answered.mutate { $0.append(delivery) } }
                    }
                }
            }
            // Under load first: wait for answers to flow, then a little longer.
            let loaded = Date().addingTimeInterval(10)
            while answered.value.count < 50, Date() < loaded { usleep(2000) }
            usleep(UInt32(20_000 + round * 30_000))
            edge.signal(round == 0 ? SIGTERM : SIGKILL)
            _ = try? edge.wait()
            stop.mutate { $0 = true }
            group.wait()
            let got = answered.value
            #expect(!got.isEmpty, "round \(round): no click was answered")
            redirected.formUnion(got)
            let logged = Set(try Self.clicks(log).map(\.token.deliveryID))
            let missing = redirected.subtracting(logged)
            #expect(missing.isEmpty, "round \(round): \(missing.count) redirected clicks missing from the log, e.g. \(missing.prefix(3))")
        }
    }

    /// A full disk: the person is still redirected; the loss is logged (and counted).
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
        _ = try edge.stderrReaderWait { $0.contains("NOT recorded") }
        let unrecorded = try edge.metric("clickd_clicks_total{outcome=\"unrecorded\"}") ?? 0
        let recorded = try edge.metric("clickd_clicks_total{outcome=\"recorded\"}") ?? 0
        #expect(unrecorded > 0 && recorded > 0 && unrecorded + recorded == 1500, "\(recorded) + \(unrecorded)")
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

@Suite struct EdgeSystemdTests {
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
        var stopping = false
        while !stopping, let message = receive() { stopping = message.contains("STOPPING=1") }
        #expect(stopping)
        #expect(try edge.wait() == 0)
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

@Suite struct EdgeAdminTests {
    @Test func messagesAPIRewritesAndRecordsADelivery() throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        try "  an-admin-token-of-some-length\n".write(toFile: dir.appending("token"), atomically: true, encoding: .utf8)
        let edge = try EdgeProcess(
            log: log, keys: keys, arguments: ["--admin-token-file", dir.appending("token"), "--base", "https://t.example.com"])
        let auth = ("Authorization", "Bearer an-admin-token-of-some-length")
        func post(_ body: String, headers: [(String, String)]) throws -> HTTPTestConnection.Response {
            try HTTPTestConnection(port: edge.adminPort).request(
                "POST", "/v1/messages",
                headers: headers + [("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count))], body: body)
        }
        let message =
            #"{"body": "<a href=\"https://a.com/x?y=1&amp;z\">x</a> <a class=\"untracked\" href=\"https://a.com/u\">u</a>", "type": "email", "delivery": "d1", "customer": "c1", "newsletter": "n1", "url_params": {"utm_source": "news"}}"#
        #expect(try post(message, headers: []).status == 401)
        #expect(try post(message, headers: [("Authorization", "Bearer wrong")]).status == 401)
        #expect(try post(message, headers: [("Authorization", "Basic an-admin-token-of-some-length")]).status == 401)
        #expect(try post(message, headers: [("Authorization", "Bearer")]).status == 401)
        // Issue 12, item 5: the scheme is case-insensitive (RFC 9110 §11.1), spaces after it may repeat.
        for spelling in ["bearer an-admin-token-of-some-length", "BEARER  an-admin-token-of-some-length"] {
            let summary = #"{"body": "x", "type": "sms", "delivery": "d0", "customer": "c0", "campaign": "1"}"#
            #expect(try post(summary, headers: [("Authorization", spelling)]).status == 200, "\(spelling)")
        }
        // Issue 12, item 6a: a customer id with a NUL is refused with one clear line, and nothing is recorded.
        let nul = try post(
            #"{"body": "<a href=\"https://a.com\">x</a>", "type": "email", "delivery": "d", "customer": "c\u0000x", "campaign": "1"}"#,
            headers: [auth])
        #expect(
            nul.status == 400 && String(decoding: nul.body, as: UTF8.self).contains("customer id contains the control character U+0000"),
            "\(String(decoding: nul.body, as: UTF8.self))")
        let bad = try post("{not json", headers: [auth])
        #expect(bad.status == 400 && String(decoding: bad.body, as: UTF8.self).contains("not a valid JSON message"))
        let missing = try post(#"{"body": "x", "type": "sms", "customer": "c"}"#, headers: [auth])
        #expect(missing.status == 400 && String(decoding: missing.body, as: UTF8.self).contains("missing delivery"))
        let malformedTag = try post(#"{"body": "{% cio_link %}", "type": "sms", "delivery": "d", "customer": "c", "campaign": "1"}"#, headers: [auth])
        #expect(malformedTag.status == 400 && String(decoding: malformedTag.body, as: UTF8.self).contains("line 1, column 1"))
        let ok = try post(message, headers: [auth])
        #expect(ok.status == 200)
        let object = try JSONSerialization.jsonObject(with: Data(ok.body)) as? [String: Any]
        let links = object?["links"] as? [[String: Any]] ?? []
        #expect(links.count == 2)
        #expect(links.first?["destination"] as? String == "https://a.com/x?y=1&z&utm_source=news")
        #expect(links.last?["tracked"] as? Bool == false)
        #expect((object?["body"] as? String)?.hasPrefix(#"<a href="https://t.example.com/c/"#) == true)
        // The same message through `clickd links rewrite --json` gives the same summary.
        let cli = try ChildProcess.clickd(
            ["links", "rewrite", "--keys", keys, "--base", "https://t.example.com", "--jsonl"],
            input: message + "\n")
        let cliObject = try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [String: Any]
        let cliLinks = cliObject?["links"] as? [[String: Any]] ?? []
        #expect(cliLinks.map { $0["destination"] as? String } == links.map { $0["destination"] as? String })
        #expect(cliLinks.map { $0["tracked"] as? Bool } == links.map { $0["tracked"] as? Bool })
        #expect(try edge.metric("clickd_deliveries_total") == 3)
        #expect(try HTTPTestConnection(port: edge.adminPort).request("GET", "/healthz").status == 200)
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
        let events = try LogReaderHelper.events(log)
        #expect(events.count == 3)
        guard case .delivered(let delivered) = events.last else {
            Issue.record("no delivery recorded")
            return
        }
        #expect(delivered.deliveryID == "d1" && delivered.customerID == "c1" && delivered.sourceKind == .newsletter)
        #expect(delivered.sourceID == "n1" && delivered.messageType == .email && delivered.trackedLinks == 1)
    }

    /// Issue 12, item 14: secrets readable by every user are worth a warning at start.
    @Test func withoutATokenFileTheMessagesAPIIsOff() throws {
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
