import ClickdTestSupport
import Foundation
import LinkTracking
import Testing

@testable import TrackerEdge

/// The open route, `GET|HEAD /o/<token>` (docs/design/opens.md), in process: the pixel's
/// bytes and headers, the same answer whatever the token (no oracle), HEAD and forgeries
/// recorded nowhere, the Apple-relay bit taken from the whole address before truncation.
/// kill -9 and a full disk: ClickdCommandTests/EdgeTests.
@Suite struct EdgeOpenRouteTests {
    static func openToken(delivery: String = "d-1", signer: KeyRing = InProcessEdge.signer) -> String {
        try! signer.sign(
            OpenToken(
                deliveryID: delivery, customerID: "c-1", sourceKind: .newsletter, sourceID: "weekly", messageType: .email,
                issuedAt: 1_790_000_000))
    }

    /// The 43-byte transparent GIF89a: its header, 1×1 size, transparency and trailer.
    static let gif: [UInt8] = Array("GIF89a".utf8) + [1, 0, 1, 0]

    @Test func aValidOpenIsRecordedAndAnsweredWithThePixel() async throws {
        let edge = try await InProcessEdge()
        let connection = try HTTPTestConnection(port: edge.port)
        let response = try connection.request("GET", "/o/" + Self.openToken() + "?utm=x", headers: [("User-Agent", "Thunderbird/128")])
        #expect(response.status == 200)
        #expect(response.body.count == 43 && Array(response.body.prefix(10)) == Self.gif && response.body.last == 0x3b)
        #expect(response.body == ClickHandler.pixelGIF)
        #expect(response.header("Content-Type") == "image/gif")
        #expect(response.header("Cache-Control") == "no-store, private")
        #expect(response.header("Referrer-Policy") == "no-referrer")
        #expect(response.header("Content-Length") == "43" && response.header("Location") == nil)
        // HEAD: the same headers, no body, nothing recorded.
        let head = try connection.request("HEAD", "/o/" + Self.openToken(delivery: "d-head"))
        #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Length") == "43")
        try await edge.stop()
        let events = try edge.events()
        #expect(events.count == 1)
        guard case .opened(let open) = events.first else {
            Issue.record("not an open: \(events)")
            return
        }
        #expect(open.token.deliveryID == "d-1" && open.token.sourceID == "weekly" && open.token.sourceKind == .newsletter)
        #expect(open.userAgent == "Thunderbird/128" && open.keyID == "live" && open.edgeID == "test-edge")
        #expect(open.occurredAt == InProcessEdge.clock && open.clientIP == [127, 0, 0, 0] && !open.appleRelay)
        #expect(edge.metric("clickd_opens_total{outcome=\"recorded\"}") == 1 && edge.metric("clickd_open_heads_total") == 1)
    }

    /// A forged, malformed, retired-key or link token gets exactly the valid pixel's answer,
    /// byte for byte, and nothing is recorded; each is counted by reason. An open token at
    /// /c/ is a 404, never a redirect.
    @Test func everyRefusedTokenGetsTheSameAnswerAndRecordsNothing() async throws {
        let edge = try await InProcessEdge()
        let connection = try HTTPTestConnection(port: edge.port)
        let valid = Self.openToken()
        // A MAC character changed (not the last one, whose unused bits must stay zero).
        var forged = Array(valid)
        forged[forged.count - 5] = forged[forged.count - 5] == "A" ? "B" : "A"
        let refused = [
            String(forged), "not-a-token!", "", Self.openToken(signer: InProcessEdge.retiredSigner), InProcessEdge.token(),
        ]
        for token in refused {
            let response = try connection.request("HEAD", "/o/" + token)
            #expect(response.status == 200 && response.header("Content-Type") == "image/gif")
        }
        let answers = try refused.map { try connection.request("GET", "/o/" + $0) }
        let reference = try HTTPTestConnection(port: edge.port).request("HEAD", "/o/" + valid)
        for answer in answers {
            #expect(answer.status == 200 && answer.body == ClickHandler.pixelGIF)
            #expect(answer.headers.map { "\($0.0): \($0.1)" } == reference.headers.map { "\($0.0): \($0.1)" })
        }
        let atClick = try connection.request("GET", "/c/" + valid)
        #expect(atClick.status == 404 && atClick.header("Location") == nil)
        #expect(edge.metric("clickd_invalid_tokens_total{reason=\"bad_signature\"}") == 2)
        #expect(edge.metric("clickd_invalid_tokens_total{reason=\"retired_key\"}") == 2)
        #expect(edge.metric("clickd_invalid_tokens_total{reason=\"wrong_kind\"}") == 3)
        try await edge.stop()
        #expect(try edge.events().isEmpty)
    }

    /// Apple's relay is recognised by the whole client address (here a trusted proxy
    /// forwards it), while the record keeps only what the privacy mode allows (/24).
    @Test func theAppleRelayBitIsTakenBeforeTheAddressIsCut() async throws {
        let edge = try await InProcessEdge { setup in
            setup.appleEgress = try! AddressRanges.parseCSV("172.224.226.0/28,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n")
            setup.edge.trustedProxies = [CIDR("127.0.0.1")!]
        }
        let connection = try HTTPTestConnection(port: edge.port)
        for (delivery, address) in [("relay", "172.224.226.7"), ("next-door", "172.224.226.200"), ("relay6", "2a02:26f7:b3c0:4000::1")] {
            let response = try connection.request(
                "GET", "/o/" + Self.openToken(delivery: delivery), headers: [("X-Forwarded-For", address), ("User-Agent", "Mozilla/5.0")])
            #expect(response.status == 200)
        }
        try await edge.stop()
        let opens = try edge.events().compactMap { if case .opened(let o) = $0 { return o } else { return nil } }
        #expect(opens.map(\.token.deliveryID) == ["relay", "next-door", "relay6"])
        #expect(opens.map(\.appleRelay) == [true, false, true])
        // Both /24: the cut address cannot tell the relay from its neighbour.
        #expect(opens[0].clientIP == [172, 224, 226, 0] && opens[1].clientIP == [172, 224, 226, 0])
        #expect(opens.map { OpenClassifier.reason($0) } == [.appleMPP, .appleMPP, .appleMPP], "the user agent alone says MPP too")
    }

    /// With `--ip none` no address is recorded, yet the relay bit is still taken from it.
    @Test func noAddressIsRecordedWithIPNoneButTheRelayBitIsKept() async throws {
        let edge = try await InProcessEdge { setup in
            setup.appleEgress = AddressRanges([CIDR("127.0.0.0/8")!])
            setup.edge.ipMode = .none
        }
        #expect(try HTTPTestConnection(port: edge.port).request("GET", "/o/" + Self.openToken()).status == 200)
        try await edge.stop()
        guard case .opened(let open) = try edge.events().first else {
            Issue.record("no open recorded")
            return
        }
        #expect(open.clientIP.isEmpty && open.appleRelay)
    }

    /// Opens and clicks pipelined on one connection are answered in order.
    @Test func opensAndClicksPipelineInOrder() async throws {
        let edge = try await InProcessEdge()
        let connection = try HTTPTestConnection(port: edge.port)
        var batch = ""
        for target in ["/o/" + Self.openToken(), "/c/" + InProcessEdge.token(), "/o/forged", "/o/" + Self.openToken(delivery: "d-2")] {
            batch += "GET \(target) HTTP/1.1\r\nHost: t\r\n\r\n"
        }
        try connection.send(Array(batch.utf8))
        let statuses = try (0..<4).map { _ in try connection.readResponse().status }
        #expect(statuses == [200, 302, 200, 200])
        try await edge.stop()
        #expect(try edge.events().count == 3)
    }
}

@Suite struct AddressRangesTests {
    @Test func rangesAreMergedAndSearched() throws {
        let ranges = try AddressRanges.parseCSV(
            """
            # Apple's egress ranges
            172.224.226.0/27,GB,GB-EN,London,
            172.224.226.32/27,GB,GB-EN,London,
            10.0.0.5,US,US-CA,Cupertino,

            2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,
            ::/0,XX,,,
            """)
        #expect(ranges.count == 3, "the two /27s merge; ::/0 takes in the /64")
        #expect(ranges.contains([172, 224, 226, 0]) && ranges.contains([172, 224, 226, 63]) && !ranges.contains([172, 224, 226, 64]))
        #expect(ranges.contains([10, 0, 0, 5]) && !ranges.contains([10, 0, 0, 4]) && !ranges.contains([10, 0, 0, 6]))
        #expect(ranges.contains([UInt8](repeating: 0xff, count: 16)) && !ranges.contains([]) && !ranges.contains([1, 2, 3]))
        #expect(!AddressRanges.empty.contains([172, 224, 226, 1]))
        let all = AddressRanges([CIDR("0.0.0.0/0")!])
        #expect(all.contains([0, 0, 0, 0]) && all.contains([255, 255, 255, 255]))
        #expect(throws: AddressRangesError(line: 2, message: "'172.224.999.0/27' is not an address or CIDR range")) {
            try AddressRanges.parseCSV("1.2.3.4/32,x\n172.224.999.0/27,GB\n")
        }
        // Against a linear scan of the CIDRs, at random.
        var rng = SplitMix64(seed: 41)
        let cidrs = (0..<300).map { _ in
            CIDR("\(UInt8.random(in: 0...255, using: &rng)).\(UInt8.random(in: 0...255, using: &rng)).0.0/\(Int.random(in: 8...24, using: &rng))")!
        }
        let set = AddressRanges(cidrs)
        for _ in 0..<20_000 {
            let address = (0..<4).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(set.contains(address) == cidrs.contains { $0.contains(address) })
        }
    }
}
