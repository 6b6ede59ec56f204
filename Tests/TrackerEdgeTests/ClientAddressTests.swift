import LinkTracking
import NIOCore
import Testing

@testable import TrackerEdge

@Suite struct ClientAddressTests {
    @Test func privacyModes() {
        #expect(ClientAddress.truncate([203, 0, 113, 77], mode: .truncated) == [203, 0, 113, 0])
        #expect(ClientAddress.truncate([203, 0, 113, 77], mode: .full) == [203, 0, 113, 77])
        #expect(ClientAddress.truncate([203, 0, 113, 77], mode: .none) == [])
        let v6 = ClientAddressText.parse("2001:db8:abcd:12:1:2:3:4")!
        #expect(ClientAddress.truncate(v6, mode: .truncated) == ClientAddressText.parse("2001:db8:abcd::"))
        #expect(ClientAddressText.parse("::ffff:192.0.2.1") == [192, 0, 2, 1])
        #expect(ClientAddressText.parse("[::1]") == ClientAddressText.parse("::1"))
        #expect(ClientAddressText.parse("not an address") == nil)
    }

    /// Issue 12, item 10: an empty address (a peer with none) trapped in truncated mode.
    @Test func truncatingNoAddressOrAnOddLengthGivesNone() {
        for bytes: [UInt8] in [[], [1], [1, 2, 3, 4, 5], [UInt8](repeating: 7, count: 15)] {
            #expect(ClientAddress.truncate(bytes, mode: .truncated) == [], "\(bytes.count) bytes")
        }
    }

    @Test func cidrRanges() {
        let ten = CIDR("10.0.0.0/8")!
        #expect(ten.contains([10, 200, 1, 1]) && !ten.contains([11, 0, 0, 1]))
        #expect(CIDR("192.168.1.0/23")!.contains([192, 168, 0, 9]) && !CIDR("192.168.1.0/23")!.contains([192, 168, 2, 1]))
        #expect(CIDR("::1")!.contains(ClientAddressText.parse("::1")!))
        #expect(CIDR("2001:db8::/32")!.contains(ClientAddressText.parse("2001:db8:1::9")!))
        #expect(!CIDR("2001:db8::/32")!.contains([10, 0, 0, 1]), "IPv4 is never in an IPv6 range")
        #expect(CIDR("0.0.0.0/0")!.contains([8, 8, 8, 8]))
        for bad in ["10.0.0.0/33", "10.0.0/8", "abc", "::/129", "", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8/8"] {
            #expect(CIDR(bad) == nil, "\(bad)")
        }
    }

    @Test func trustProxyListsTakeCommasAndSeparateArguments() throws {
        let ranges = try CIDR.list(["10.0.0.0/8, ::1", "192.0.2.7"]).get()
        #expect(ranges.map(\.description) == ["10.0.0.0/8", "0:0:0:0:0:0:0:1/128", "192.0.2.7/32"])
        #expect(throws: CIDR.InvalidRange.self) { try CIDR.list(["10.0.0.0/8,", "::1"]).get() }
        do {
            _ = try CIDR.list(["10.0.0.0/8,bogus/4"]).get()
            Issue.record("bogus/4 was taken")
        } catch {
            #expect(error.description == "'bogus/4' is not an address or CIDR range")
        }
    }

    @Test func forwardedForIsBelievedOnlyFromTrustedProxies() throws {
        let proxy = try SocketAddress(ipAddress: "10.0.0.5", port: 4000)
        let stranger = try SocketAddress(ipAddress: "198.51.100.7", port: 4000)
        let trusted = [CIDR("10.0.0.0/8")!]
        // From a trusted proxy: the right-most untrusted hop is the client.
        #expect(ClientAddress.client(peer: proxy, forwardedFor: "203.0.113.9, 10.1.1.1", trusted: trusted) == [203, 0, 113, 9])
        #expect(
            ClientAddress.client(peer: proxy, forwardedFor: "1.2.3.4, 203.0.113.9", trusted: trusted) == [203, 0, 113, 9],
            "a client cannot spoof by prepending")
        #expect(ClientAddress.client(peer: proxy, forwardedFor: "garbage", trusted: trusted) == [10, 0, 0, 5])
        #expect(ClientAddress.client(peer: proxy, forwardedFor: nil, trusted: trusted) == [10, 0, 0, 5])
        // From anyone else, or with no trusted proxies: the peer.
        #expect(ClientAddress.client(peer: stranger, forwardedFor: "203.0.113.9", trusted: trusted) == [198, 51, 100, 7])
        #expect(ClientAddress.client(peer: proxy, forwardedFor: "203.0.113.9", trusted: []) == [10, 0, 0, 5])
    }
}
