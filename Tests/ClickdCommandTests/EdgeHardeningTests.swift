import ClickdTestSupport
import ClickdTestTraits
import Dispatch
import Foundation
import Testing

/// Issue 12, the edge: hostile and careless clients against a real `clickd edge` on a real
/// port. Each case failed on the edge before these limits (docs/edge.md, "Limits"); the
/// edge's memory and a well-behaved client's clicks are checked while the attack runs.
@Suite(.ownThreads) struct EdgeHardeningTests {
    /// A well-behaved client clicking once every 50 ms on fresh connections while `attack`
    /// runs: the latencies of its clicks, in seconds (a failed click counts as infinity).
    static func probe(port: Int, during attack: () throws -> Void) rethrows -> [Double] {
        let stop = Locked(false)
        let latencies = Locked<[Double]>([])
        let done = DispatchSemaphore(value: 0)
        let token = EdgeTests.token(delivery: "probe")
        Thread.detachNewThread {
            while !stop.value {
                let started = Date()
                let status = (try? HTTPTestConnection(port: port, timeoutSeconds: 5).request("GET", "/c/" + token))?.status
                let took = status == 302 ? Date().timeIntervalSince(started) : .infinity
                latencies.mutate { $0.append(took) }
                usleep(50_000)
            }
            done.signal()
        }
        defer {
            stop.mutate { $0 = true }
            done.wait()
        }
        try attack()
        return latencies.value
    }

    /// Runs `body` against a fresh edge (its log and key ring in a temporary directory),
    /// then stops it with SIGTERM, which it must survive cleanly.
    static func withEdge(_ arguments: [String] = [], wrapper: [String] = [], _ body: (EdgeProcess, _ keys: String) throws -> Void) throws {
        let (dir, keys, log) = try EdgeTests.setUp()
        defer { dir.remove() }
        let edge = try EdgeProcess(log: log, keys: keys, arguments: arguments, wrapper: wrapper)
        try body(edge, keys)
        edge.signal(SIGTERM)
        #expect(try edge.wait() == 0)
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// Item 1: one connection pipelining requests and never reading its answers grew the
    /// edge by gigabytes. Now the edge stops reading it once 64 KiB of answers wait (TCP then
    /// holds the client back), and closes it when they stay unread past the write timeout.
    @Test func aClientThatNeverReadsItsAnswersIsHeldBackAndClosed() throws {
        try Self.withEdge(["--write-timeout", "2"]) { edge, keys in
            let before = edge.residentMiB
            let request = Array(
                String(
                    repeating: "GET /c/forged-token-\(String(repeating: "x", count: 200)) HTTP/1.1\r\nHost: t\r\n\r\n",
                    count: 64
                ).utf8)
            var sent = 0
            var peak = 0.0
            var closed = false
            let latencies = try Self.probe(port: edge.port) {
                let attacker = try HTTPTestConnection(port: edge.port)
                let deadline = Date().addingTimeInterval(8)
                while Date() < deadline {
                    guard let n = attacker.trySend(request) else {
                        closed = true
                        break
                    }
                    sent += n
                    if n == 0 { usleep(1_000) }
                    peak = max(peak, edge.residentMiB)
                }
            }
            #expect(closed, "the edge closed the connection whose answers were never read (sent \(sent) bytes)")
            #expect(peak < 100, "edge RSS \(before) MiB before, \(peak) MiB at most during the attack")
            #expect(latencies.count >= 20 && latencies.allSatisfy { $0 < 2 }, "probe latencies \(latencies.max() ?? 0) s at worst")
            #expect(Self.median(latencies) < 0.2)
            #expect(try edge.metric("clickd_connections_timed_out_total{reason=\"write\"}") == 1)
        }
    }

    /// Item 2: a stream of CRLF was kept and scanned again on every read (a core busy,
    /// clicks beside it 170× slower). Empty lines are consumed, and past the request-line
    /// limit the connection gets a 400 and is closed.
    @Test func aFloodOfEmptyLinesIsConsumedAndCutOff() throws {
        try Self.withEdge { edge, keys in
            let crlf: [UInt8] = (0..<65536).map { $0 % 2 == 0 ? 13 : 10 }
            var sent = 0
            let attacker = try HTTPTestConnection(port: edge.port)
            let latencies = try Self.probe(port: edge.port) {
                let deadline = Date().addingTimeInterval(5)
                while Date() < deadline, let n = attacker.trySend(crlf) {
                    sent += n
                    if n == 0 { usleep(1_000) }
                }
                usleep(300_000)  // the probe runs on after the flood
            }
            #expect(sent < 64 << 20, "the edge stopped taking empty lines (\(sent) bytes sent)")
            #expect(try attacker.readResponse().status == 400)
            #expect(attacker.isClosedByPeer())
            #expect(edge.residentMiB < 100)
            #expect(latencies.count >= 5 && latencies.allSatisfy { $0 < 2 } && Self.median(latencies) < 0.2, "\(latencies)")
            // Blank lines between pipelined requests are still allowed (RFC 9112 §2.2).
            let polite = try HTTPTestConnection(port: edge.port)
            try polite.send(Array("\r\n\r\nGET /c/\(EdgeTests.token()) HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
            #expect(try polite.readResponse().status == 302)
        }
    }

    /// Item 3: clients sending a byte a second held their connections for ever, and with
    /// the descriptor limit at 256, 300 of them made every click time out. Now the soft
    /// limit is raised to the hard one, the connection cap is kept below it (new clients
    /// wait in the backlog), and a head not complete within --head-timeout gets a 408.
    @Test(arguments: [false, true]) func slowClientsCannotHoldTheEdge(lowDescriptorLimit: Bool) throws {
        let arguments = lowDescriptorLimit ? ["--head-timeout", "1"] : ["--head-timeout", "1", "--max-connections", "20"]
        try Self.withEdge(arguments, wrapper: lowDescriptorLimit ? ["/usr/bin/prlimit", "--nofile=96:96"] : []) { edge, _ in
            if lowDescriptorLimit {
                #expect(edge.stderrLines.contains { $0.contains("the descriptor limit allows fewer connections") }, "\(edge.stderrLines)")
            }
            let slowCount = lowDescriptorLimit ? 64 : 40  // twice the cap either way (96 descriptors: a cap of 32)
            let cpuBefore = edge.cpuSeconds
            var slow: [HTTPTestConnection] = []
            let latencies = try Self.probe(port: edge.port) {
                for _ in 0..<slowCount {
                    let c = try HTTPTestConnection(port: edge.port, timeoutSeconds: 10)
                    _ = c.trySend(Array("G".utf8))
                    slow.append(c)
                }
                // A byte a second for four seconds: each head's deadline passes meanwhile.
                for _ in 0..<4 {
                    for c in slow { _ = c.trySend(Array("E".utf8)) }
                    sleep(1)
                }
            }
            let cpu = edge.cpuSeconds - cpuBefore
            #expect(latencies.count >= 20)
            #expect(latencies.allSatisfy { $0 < 4 }, "a click waited at most one head deadline and a bit: \(latencies.max() ?? 0) s")
            #expect(cpu < 3, "no spinning on accept errors: \(cpu) CPU seconds")
            #expect(try edge.metric("clickd_connection_cap_reached_total") ?? 0 >= 1)
            #expect(try edge.metric("clickd_connections_timed_out_total{reason=\"head\"}") ?? 0 >= 1)
            #expect(edge.stderrLines.contains { $0.contains("connection cap reached") })
            // The slow connections that were accepted got a 408 and were closed.
            let answered = slow.compactMap { try? $0.readResponse().status }
            #expect(!answered.isEmpty && answered.allSatisfy { $0 == 408 }, "\(answered)")
            slow.removeAll()
        }
    }

    /// Item 11 end to end: the longest destination `links sign` accepts is redirected by the
    /// edge, byte for byte; one byte more is refused by `links sign`.
    @Test func theLongestSignableLinkIsRedirected() throws {
        try Self.withEdge { edge, keys in
            func sign(_ length: Int) throws -> CommandResult {
                try ChildProcess.clickd([
                    "links", "sign", "--keys", keys, "--base", "http://127.0.0.1:\(edge.port)", "--delivery", "d-1",
                    "--customer", "c-1", "--campaign", "17", "--link-id", "hero",
                    "--url", "https://example.com/" + String(repeating: "p", count: length),
                ])
            }
            var low = 11_000
            var high = 13_000  // signable at low, not at high
            while high - low > 1 {
                let mid = (low + high) / 2
                if try sign(mid).status == 0 { low = mid } else { high = mid }
            }
            let tracked = try sign(low).stdout.split(separator: "\n").last.map(String.init) ?? ""
            let path = String(tracked.dropFirst("http://127.0.0.1:\(edge.port)".count))
            let response = try HTTPTestConnection(port: edge.port).request("GET", path)
            #expect(response.status == 302)
            #expect(response.header("Location") == "https://example.com/" + String(repeating: "p", count: low))
            let refused = try sign(high)
            #expect(refused.status == 1 && refused.stderr.contains("too long to track"))
        }
    }
}
