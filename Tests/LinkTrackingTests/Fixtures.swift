import ClickdTestSupport
import Foundation

@testable import LinkTracking

enum Fixtures {
    static let secretA = [UInt8](repeating: 0xA1, count: 32)
    static let secretB = [UInt8](repeating: 0xB2, count: 32)

    /// Two active keys ("old", then "new", which signs) and a retired one.
    static let ring = try! KeyRing(keys: [
        KeyRing.makeKey(kid: "old", secret: secretA, created: "2026-01-01T00:00:00Z"),
        KeyRing.makeKey(kid: "new", secret: secretB, created: "2026-06-01T00:00:00Z"),
        KeyRing.makeKey(kid: "gone", secret: [UInt8](repeating: 0xC3, count: 32), created: "2025-01-01T00:00:00Z", retired: true),
    ])

    static func token(_ destination: String = "https://shop.example.com/p/1?a=b#top") -> LinkToken {
        LinkToken(
            destination: destination, deliveryID: "dlv_01HXYZ9K2M4N6P8Q", customerID: "cust_48213",
            sourceKind: .campaign, sourceID: "17", messageType: .email, linkID: nil, issuedAt: 1_790_000_000)
    }

    /// Options for the link tests: the open pixel off, so that a body shows what its links
    /// did alone (OpenPixelTests turn it on).
    static func options(_ type: LinkToken.MessageType = .email) -> RewriteOptions {
        var options = RewriteOptions(
            baseURL: "https://t.example.com", messageType: type, deliveryID: "d1", customerID: "c1",
            sourceKind: .newsletter, sourceID: "n1", issuedAt: 1_790_000_000)
        options.openTracking = false
        return options
    }

    static func rewrite(_ body: String, _ options: RewriteOptions = options()) throws -> RewriteResult {
        try MessageRewriter(keyRing: ring).rewrite(Array(body.utf8), options: options)
    }

    /// The destination a tracked URL leads to.
    static func destination(of trackedURL: String) -> String? {
        guard let range = trackedURL.range(of: "/c/") else { return nil }
        return try? ring.verify(trackedURL[range.upperBound...]).get().destination
    }
}
