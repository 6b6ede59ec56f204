import ClickdTestSupport
import Foundation
import LinkTracking
import Testing

@testable import TrackerEdge

/// The admin listener in process (`InProcessEdge`). Moved from ClickdCommandTests with
/// their assertions. Requests go out on Dispatch threads: the listener's Hummingbird
/// handlers run on Swift's cooperative threads, which a blocking socket must not hold.
@Suite struct EdgeAdminTests {
    static let token = "an-admin-token-of-some-length"

    static func post(_ edge: InProcessEdge, _ body: String, headers: [(String, String)]) async throws -> HTTPTestConnection.Response {
        let port = edge.adminPort
        return try await onOwnThread {
            try HTTPTestConnection(port: port).request(
                "POST", "/v1/messages",
                headers: headers + [("Content-Type", "application/json"), ("Content-Length", String(body.utf8.count))], body: body)
        }
    }

    static func get(_ edge: InProcessEdge, _ target: String) async throws -> HTTPTestConnection.Response {
        let port = edge.adminPort
        return try await onOwnThread { try HTTPTestConnection(port: port).request("GET", target) }
    }

    @Test func messagesAPIRewritesAndRecordsADelivery() async throws {
        let edge = try await InProcessEdge { $0.admin.token = Self.token }
        let auth = ("Authorization", "Bearer \(Self.token)")
        func post(_ body: String, headers: [(String, String)]) async throws -> HTTPTestConnection.Response {
            try await Self.post(edge, body, headers: headers)
        }
        let message =
            #"{"body": "<a href=\"https://a.com/x?y=1&amp;z\">x</a> <a class=\"untracked\" href=\"https://a.com/u\">u</a>", "type": "email", "delivery": "d1", "customer": "c1", "newsletter": "n1", "url_params": {"utm_source": "news"}}"#
        #expect(try await post(message, headers: []).status == 401)
        #expect(try await post(message, headers: [("Authorization", "Bearer wrong")]).status == 401)
        #expect(try await post(message, headers: [("Authorization", "Basic \(Self.token)")]).status == 401)
        #expect(try await post(message, headers: [("Authorization", "Bearer")]).status == 401)
        // Issue 12, item 5: the scheme is case-insensitive (RFC 9110 §11.1), spaces after it may repeat.
        for spelling in ["bearer \(Self.token)", "BEARER  \(Self.token)"] {
            let summary = #"{"body": "x", "type": "sms", "delivery": "d0", "customer": "c0", "campaign": "1"}"#
            #expect(try await post(summary, headers: [("Authorization", spelling)]).status == 200, "\(spelling)")
        }
        // Issue 12, item 6a: a customer id with a NUL is refused with one clear line, and nothing is recorded.
        let nul = try await post(
            #"{"body": "<a href=\"https://a.com\">x</a>", "type": "email", "delivery": "d", "customer": "c\u0000x", "campaign": "1"}"#,
            headers: [auth])
        #expect(
            nul.status == 400 && String(decoding: nul.body, as: UTF8.self).contains("customer id contains the control character U+0000"),
            "\(String(decoding: nul.body, as: UTF8.self))")
        let bad = try await post("{not json", headers: [auth])
        #expect(bad.status == 400 && String(decoding: bad.body, as: UTF8.self).contains("not a valid JSON message"))
        let missing = try await post(#"{"body": "x", "type": "sms", "customer": "c"}"#, headers: [auth])
        #expect(missing.status == 400 && String(decoding: missing.body, as: UTF8.self).contains("missing delivery"))
        let malformedTag = try await post(
            #"{"body": "{% cio_link %}", "type": "sms", "delivery": "d", "customer": "c", "campaign": "1"}"#, headers: [auth])
        #expect(malformedTag.status == 400 && String(decoding: malformedTag.body, as: UTF8.self).contains("line 1, column 1"))
        let ok = try await post(message, headers: [auth])
        #expect(ok.status == 200)
        let object = try JSONSerialization.jsonObject(with: Data(ok.body)) as? [String: Any]
        let links = object?["links"] as? [[String: Any]] ?? []
        #expect(links.count == 2)
        #expect(links.first?["destination"] as? String == "https://a.com/x?y=1&z&utm_source=news")
        #expect(links.last?["tracked"] as? Bool == false)
        #expect((object?["body"] as? String)?.hasPrefix(#"<a href="https://t.example.com/c/"#) == true)
        // The same message through the rewriter `clickd links rewrite --jsonl` uses gives the
        // same links (the command's own output is checked by LinkCommandTests).
        let request = try JSONDecoder().decode(MessageRequest.self, from: Data(message.utf8))
        let direct = try MessageRewriter(keyRing: InProcessEdge.ring).rewrite(
            Array(request.body.utf8), options: request.options(base: "https://t.example.com", issuedAt: InProcessEdge.clock / 1000))
        #expect(direct.links.map(\.destination) == links.map { $0["destination"] as? String })
        #expect(direct.links.map(\.tracked) == links.map { $0["tracked"] as? Bool })
        #expect(edge.metric("clickd_deliveries_total") == 3)
        #expect(try await Self.get(edge, "/healthz").status == 200)
        try await edge.stop()
        let events = try edge.events()
        #expect(events.count == 3)
        guard case .delivered(let delivered) = events.last else {
            Issue.record("no delivery recorded")
            return
        }
        #expect(delivered.deliveryID == "d1" && delivered.customerID == "c1" && delivered.sourceKind == .newsletter)
        #expect(delivered.sourceID == "n1" && delivered.messageType == .email && delivered.trackedLinks == 1)
        #expect(delivered.occurredAt == InProcessEdge.clock)
    }

    @Test func withoutATokenTheMessagesAPIIsOff() async throws {
        let edge = try await InProcessEdge()
        #expect(try await Self.post(edge, "{}", headers: []).status == 403)
        let metrics = try await Self.get(edge, "/metrics")
        #expect(metrics.status == 200 && String(decoding: metrics.body, as: UTF8.self).contains("clickd_clicks_total"))
        try await edge.stop()
    }
}
