// link-bench: measures LinkTracking on one core and prints one JSON object (bench/links.sh).
//
//  - rewrite: a realistic 30 KB HTML email with 25 links, rewritten (tracked) over and over;
//    baseline in the same run: one pass over the same bytes counting '<' (the least work
//    any HTML scanner does).
//  - sign / verify: tokens for a 60-character destination; baseline in the same run: one
//    HMAC-SHA256 of the same token bytes with swift-crypto (the cryptographic floor).
import ClickdTestSupport
import Crypto
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
var options = RewriteOptions(baseURL: "https://t.example.com", messageType: .email, deliveryID: "dlv_01HXYZ9K2M4N6P8Q",
                             customerID: "cust_48213", sourceKind: .campaign, sourceID: "17", issuedAt: 1_790_000_000)
options.urlParameters = [URLParameter(key: "utm_source", value: "newsletter"), URLParameter(key: "utm_medium", value: "email")]
let check = try rewriter.rewrite(email, options: options)
let links = check.links.count, tracked = check.links.filter(\.tracked).count

var sink = 0
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

let token = LinkToken(destination: "https://shop.example.com/collections/spring/blue-shoes?size=42", deliveryID: "dlv_01HXYZ9K2M4N6P8Q",
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
print("""
    {"email_bytes":\(email.count),"links":\(links),"tracked":\(tracked),\
    "rewrite_messages_per_second":\(Int(messagesPerSecond)),"rewrite_mb_per_second":\(Int(messagesPerSecond * mb)),\
    "scan_baseline_mb_per_second":\(Int(scansPerSecond * mb)),\
    "sign_per_second":\(Int(signsPerSecond)),"verify_per_second":\(Int(verifiesPerSecond)),\
    "reject_forged_per_second":\(Int(rejectsPerSecond)),"hmac_baseline_per_second":\(Int(hmacsPerSecond)),\
    "token_chars":\(signed.utf8.count),"sink":\(sink & 1)}
    """)
