// link-bench: measures LinkTracking on one core and prints one JSON object (bench/links.sh).
//
//  - rewrite: a realistic 30 KB HTML email with 25 links, rewritten (tracked) over and over;
//    baseline in the same run: one pass over the same bytes counting '<' (the least work
//    any HTML scanner does).
//  - sign / verify: tokens for a 60-character destination; baseline in the same run: one
//    HMAC-SHA256 of the same token bytes with swift-crypto (the cryptographic floor).
import ClickdTestSupport
import Crypto
import EventLog
import Foundation
import LinkTracking

func seconds(_ body: () -> Void) -> Double {
    let start = ContinuousClock.now
    body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// Runs `body` `count` times per round, 5 rounds, and returns the best rate per second.
func rate(_ count: Int, _ body: () -> Void) -> Double {
    var best = 0.0
    for _ in 0..<5 {
        let t = seconds { for _ in 0..<count { body() } }
        best = max(best, Double(count) / t)
    }
    return best
}

let ring = try KeyRing(keys: [KeyRing.makeKey(kid: "k7f2", secret: [UInt8](repeating: 7, count: 32), created: "2026-11-29T00:00:00Z")])
let rewriter = MessageRewriter(keyRing: ring)
let email = Array(EmailCorpus.newsletter.utf8)
var options = RewriteOptions(
    baseURL: "https://t.example.com", messageType: .email, deliveryID: "dlv_01HXYZ9K2M4N6P8Q",
    customerID: "cust_48213", sourceKind: .campaign, sourceID: "17", issuedAt: 1_790_000_000)
options.urlParameters = [URLParameter(key: "utm_source", value: "newsletter"), URLParameter(key: "utm_medium", value: "email")]
let check = try rewriter.rewrite(email, options: options)
let links = check.links.count
let tracked = check.links.filter(\.tracked).count

/// Appends `records` from as many concurrent appenders (group commit), then empties it.
func appendConcurrently(_ records: inout [[UInt8]], to writer: EventLogWriter) async throws {
    let batch = records
    try await withThrowingTaskGroup(of: UInt64.self) { group in
        for record in batch { group.addTask { try await writer.append(record) } }
        try await group.waitForAll()
    }
    records.removeAll(keepingCapacity: true)
}

var sink = 0
if CommandLine.arguments.dropFirst().first == "generate-log", (4...5).contains(CommandLine.arguments.count),
    let count = Int(CommandLine.arguments[3]), let openPercent = CommandLine.arguments.count == 5 ? Int(CommandLine.arguments[4]) : 0,
    (0...80).contains(openPercent)
{
    // A realistic log for bench/ingest.sh: 100,000 customers, 500 sources of 20 links each,
    // one delivery per five events, a few prefetches and scanner user agents. With an open
    // percentage (bench/ingest-opens.sh, bench/report.sh), that share of all events are
    // opens instead of clicks, of every reason; without one, the random stream (and so the
    // log) is the click-only log of before.
    let openAgents: [(ua: String, relay: Bool, soon: Bool)] = [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Thunderbird/128.0", false, false),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", false, false),
        ("Mozilla/5.0", false, false), ("Mozilla/5.0", true, false),
        ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", false, false),
        ("Mimecast Security Services", false, false), ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)", false, true),
    ]
    var configuration = EventLogConfiguration()
    configuration.sync = .none
    let writer = try EventLogWriter(directory: CommandLine.arguments[2], configuration: configuration)
    var rng = SplitMix64(seed: 42)
    var time: UInt64 = 1_790_000_000_000
    var pending: [[UInt8]] = []
    for i in 0..<count {
        time += UInt64.random(in: 0...20, using: &rng)
        let customer = "cust_\(Int.random(in: 0..<100_000, using: &rng))"
        let source = Int.random(in: 0..<500, using: &rng)
        let delivery = "dlv_\(customer)_\(source)"
        let kind = LinkToken.SourceKind.allCases[source % 3]
        if i % 5 == 0 {
            pending.append(
                EventCodec.encode(
                    .delivered(
                        DeliveredEvent(
                            occurredAt: time, messageType: .email, sourceKind: kind,
                            sourceID: "src_\(source)", deliveryID: delivery, customerID: customer, trackedLinks: 20))))
        } else if openPercent > 0, Int.random(in: 0..<80, using: &rng) < openPercent {
            let agent = openAgents[Int.random(in: 0..<openAgents.count, using: &rng)]
            let open = OpenEvent(
                occurredAt: time,
                token: OpenToken(
                    deliveryID: delivery, customerID: customer, sourceKind: kind, sourceID: "src_\(source)", messageType: .email,
                    issuedAt: (time - (agent.soon ? 3_000 : 3_600_000)) / 1000),
                keyID: "k7f2", userAgent: agent.ua, clientIP: [17, 58, 0, 0], edgeID: "edge-1", appleRelay: agent.relay)
            pending.append(EventCodec.encode(.opened(open)))
        } else {
            let link = Int.random(in: 0..<20, using: &rng)
            let click = ClickEvent(
                occurredAt: time, method: Int.random(in: 0..<50, using: &rng) == 0 ? .head : .get,
                token: LinkToken(
                    destination: "https://shop.example.com/collections/spring/item-\(link)?ref=email", deliveryID: delivery,
                    customerID: customer, sourceKind: kind, sourceID: "src_\(source)", messageType: .email,
                    linkID: "link-\(link)", issuedAt: (time - 3_600_000) / 1000),
                keyID: "k7f2",
                userAgent: Int.random(in: 0..<20, using: &rng) == 0 ? "Barracuda Sentinel" : "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                clientIP: [203, 0, 113, 0], edgeID: "edge-1")
            pending.append(EventCodec.encode(.click(click)))
        }
        if pending.count == 4096 || i == count - 1 { try await appendConcurrently(&pending, to: writer) }
    }
    writer.close()
    print(count)
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "append-segment", CommandLine.arguments.count == 4, let count = Int(CommandLine.arguments[3]),
    count > 0, count <= 10_000_000
{
    // For bench/report.sh: one human click by each of cust_0 … cust_{count-1} on link "all"
    // of campaign "big", a second apart (a segment of `count` members), appended to a log.
    var configuration = EventLogConfiguration()
    configuration.sync = .none
    let writer = try EventLogWriter(directory: CommandLine.arguments[2], configuration: configuration)
    var pending: [[UInt8]] = []
    let start: UInt64 = 1_790_000_000_000
    for i in 0..<count {
        let time = start + UInt64(i) * 1000
        let customer = "cust_\(i)"
        let click = ClickEvent(
            occurredAt: time, method: .get,
            token: LinkToken(
                destination: "https://shop.example.com/sale?ref=email", deliveryID: "dlv_big_\(i)", customerID: customer, sourceKind: .campaign,
                sourceID: "big", messageType: .email, linkID: "all", issuedAt: (time - 3_600_000) / 1000),
            keyID: "k7f2", userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", clientIP: [203, 0, 113, 0], edgeID: "edge-1")
        pending.append(EventCodec.encode(.click(click)))
        if pending.count == 4096 || i == count - 1 { try await appendConcurrently(&pending, to: writer) }
    }
    writer.close()
    print(count)
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "rewrite-log", CommandLine.arguments.count == 4 {
    // For bench/rewrite.sh: the edge's erasure rewrite (SegmentRewrite with the list's
    // matching, as LogEraser runs it) over every sealed segment of a log, the people read
    // one id a line. Prints segments, bytes read and written, records replaced, seconds.
    let directory = CommandLine.arguments[2]
    let people = try String(contentsOfFile: CommandLine.arguments[3], encoding: .utf8).split(separator: "\n").map { Array($0.utf8) }
    let keyed = ErasureList(key: [UInt8](repeating: 0x33, count: 32), macs: [])
    var matcher = ErasureMatcher([ErasureList(key: keyed.key, macs: Set(people.map { keyed.mac(customer: $0) }))])
    let logID = try LogReader(directory: directory).logID
    var read: Int64 = 0
    var written: Int64 = 0
    var replaced = 0
    let sealed = try SegmentName.list(in: directory).dropLast()
    let start = ContinuousClock.now
    for segment in sealed {
        let outcome = try SegmentRewrite.rewrite(
            path: directory + "/" + segment.name, fileName: segment.name, logID: logID, replacement: EventCodec.redaction
        ) { _, payload in matcher.holds(record: payload) }
        read += outcome.bytesRead
        written += outcome.bytesWritten
        replaced += outcome.replaced
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print("segments=\(sealed.count) read_bytes=\(read) written_bytes=\(written) replaced=\(replaced) seconds=\(seconds)")
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "profile-rewrite" {
    // For `perf record`: the rewrite alone.
    for _ in 0..<3000 { sink &+= (try? rewriter.rewrite(email, options: options))?.body.count ?? 0 }
    print(sink)
    exit(0)
}
let messagesPerSecond = rate(300) {
    sink &+= (try? rewriter.rewrite(email, options: options))?.body.count ?? 0
}
let scansPerSecond = rate(3000) {
    email.withUnsafeBufferPointer { b in
        var n = 0
        for byte in b where byte == UInt8(ascii: "<") { n += 1 }
        sink &+= n
    }
}

let token = LinkToken(
    destination: "https://shop.example.com/collections/spring/blue-shoes?size=42", deliveryID: "dlv_01HXYZ9K2M4N6P8Q",
    customerID: "cust_48213", sourceKind: .campaign, sourceID: "17", messageType: .sms, issuedAt: 1_790_000_000)
let signed = try ring.sign(token)
let signsPerSecond = rate(100_000) { sink &+= (try? ring.sign(token))?.utf8.count ?? 0 }
let verifiesPerSecond = rate(100_000) {
    if case .success(let t) = ring.verify(signed) { sink &+= t.destination.utf8.count }
}
let tokenBytes = Array(signed.utf8)
let key = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
let hmacsPerSecond = rate(100_000) {
    sink &+= Int(HMAC<SHA256>.authenticationCode(for: tokenBytes, using: key).withUnsafeBytes { $0[0] })
}
let forged = String(signed.dropLast(2)) + (signed.hasSuffix("AA") ? "BA" : "AA")
let rejectsPerSecond = rate(100_000) {
    if case .failure = ring.verify(forged) { sink &+= 1 }
}

let mb = Double(email.count) / 1e6
print(
    """
    {"email_bytes":\(email.count),"links":\(links),"tracked":\(tracked),\
    "rewrite_messages_per_second":\(Int(messagesPerSecond)),"rewrite_mb_per_second":\(Int(messagesPerSecond * mb)),\
    "scan_baseline_mb_per_second":\(Int(scansPerSecond * mb)),\
    "sign_per_second":\(Int(signsPerSecond)),"verify_per_second":\(Int(verifiesPerSecond)),\
    "reject_forged_per_second":\(Int(rejectsPerSecond)),"hmac_baseline_per_second":\(Int(hmacsPerSecond)),\
    "token_chars":\(signed.utf8.count),"sink":\(sink & 1)}
    """)
