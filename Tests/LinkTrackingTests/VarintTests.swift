import Testing

@testable import LinkTracking

@Suite struct VarintTests {
    func read(_ bytes: [UInt8]) throws(Varint.Failure) -> (UInt64, Int) {
        var index = 0
        let result = bytes.withUnsafeBytes { raw in Result { () throws(Varint.Failure) in try Varint.read(raw, at: &index) } }
        return (try result.get(), index)
    }

    @Test func everyBoundaryRoundTripsInItsShortestSpelling() throws {
        var values: [UInt64] = [0, 1, 127, 128, 255, 300, UInt64(Int64.max), .max]
        for bits in stride(from: 7, through: 63, by: 7) { values += [(1 << UInt64(bits)) - 1, 1 << UInt64(bits)] }
        for value in values {
            var bytes: [UInt8] = []
            Varint.append(value, to: &bytes)
            #expect(bytes.count == max(1, (64 - value.leadingZeroBitCount + 6) / 7))
            let (decoded, used) = try read(bytes + [0xAA])
            #expect(decoded == value && used == bytes.count)
        }
    }

    @Test func otherSpellingsAreRefused() {
        #expect(throws: Varint.Failure.invalid) { try read([0x80, 0x00]) }  // 0 with a trailing zero group
        #expect(throws: Varint.Failure.invalid) { try read([0xFF, 0x00]) }  // 127 likewise
        #expect(throws: Varint.Failure.invalid) { try read([UInt8](repeating: 0xFF, count: 9) + [0x02]) }  // bit 64
        #expect(throws: Varint.Failure.invalid) { try read([UInt8](repeating: 0xFF, count: 10) + [0x01]) }  // 11 bytes
        #expect(throws: Varint.Failure.truncated) { try read([]) }
        #expect(throws: Varint.Failure.truncated) { try read([0x80, 0x80]) }
    }

    @Test func anEventWithAnotherSpellingOfANumberDoesNotDecode() throws {
        let event = TrackingEvent.delivered(
            .init(
                occurredAt: 5, messageType: .email, sourceKind: .campaign, sourceID: "s",
                deliveryID: "d", customerID: "c", trackedLinks: 1))
        let bytes = EventCodec.encode(event)
        #expect(try bytes.withUnsafeBytes { try EventCodec.decode($0) } == event)
        // The same event with its occurred_at (5, after the version and kind bytes) spelled 0x85 0x00.
        #expect(bytes[2] == 5)
        var other = bytes
        other.replaceSubrange(2...2, with: [0x85, 0x00])
        #expect(throws: (any Error).self) { try other.withUnsafeBytes { try EventCodec.decode($0) } }
    }
}
