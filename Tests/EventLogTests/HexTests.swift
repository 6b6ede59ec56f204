import EventLog
import Testing

@Suite struct HexTests {
    @Test func bytesAreTwoLowerCaseDigitsEach() {
        #expect(Hex.string([UInt8]()) == "")
        #expect(Hex.string([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
        #expect(Hex.string(0...255 as ClosedRange<UInt8>).count == 512)
    }

    @Test func numbersArePaddedToTheirWidth() {
        #expect(Hex.padded(UInt64(1), width: 16) == "0000000000000001")
        #expect(Hex.padded(UInt32.max, width: 8) == "ffffffff")
        #expect(Hex.padded(UInt64.max, width: 4) == "ffffffffffffffff")
        #expect(SegmentName.fileName(firstLSN: 0xabc) == "0000000000000abc.seg")
        #expect(LogID.uuidText(Array(0..<16)) == "00010203-0405-0607-0809-0a0b0c0d0e0f")
    }
}
