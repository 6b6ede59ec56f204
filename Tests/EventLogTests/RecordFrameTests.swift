import CEventLog
import ClickdTestSupport
import Testing

@testable import EventLog

@Suite struct RecordFrameTests {
    func frame(lsn: UInt64, _ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        payload.withUnsafeBytes { RecordFrame.append(lsn: lsn, payload: $0, to: &out) }
        return out
    }

    @Test func crc32cKnownAnswer() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    @Test func hardwareAndPortableAgree() {
        var rng = SplitMix64(seed: 7)
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for offset in 0..<min(8, max(1, length)) {
                let slice = Array(bytes[min(offset, length)...])
                let hw = slice.withUnsafeBytes { clickd_crc32c(0, $0.baseAddress, $0.count) }
                let sw = slice.withUnsafeBytes { clickd_crc32c_portable(0, $0.baseAddress, $0.count) }
                #expect(hw == sw, "length \(slice.count)")
            }
        }
        // Incremental use gives the same value as one call.
        let whole = CRC32C.checksum(Array("hello, world".utf8))
        let part = CRC32C.checksum(Array(", world".utf8), seed: CRC32C.checksum(Array("hello".utf8)))
        #expect(whole == part)
    }

    @Test func roundTripsRandomPayloads() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<500 {
            let length = Int.random(in: 1...3000, using: &rng)
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let lsn = UInt64.random(in: 1...UInt64.max, using: &rng)
            let bytes = frame(lsn: lsn, payload)
            #expect(bytes.count == RecordFrame.headerSize + length)
            let decoded = bytes.withUnsafeBytes { RecordFrame.decode($0) }
            guard case .record(let gotLSN, let range, let size) = decoded else {
                Issue.record("expected a record, got \(decoded)")
                return
            }
            #expect(gotLSN == lsn)
            #expect(size == bytes.count)
            #expect(Array(bytes[range]) == payload)
        }
    }

    @Test func decoderFedAtEverySplitPoint() {
        // Three frames back to back, decoded from every prefix length: a prefix that ends
        // inside a frame asks for more bytes, never reports garbage or reads past the end.
        let stream =
            frame(lsn: 1, Array("first".utf8)) + frame(lsn: 2, [UInt8](repeating: 9, count: 300))
            + frame(lsn: 3, [0])
        for split in 0...stream.count {
            var position = 0
            var lsns: [UInt64] = []
            while true {
                let decoded = stream.withUnsafeBytes { raw in
                    RecordFrame.decode(UnsafeRawBufferPointer(rebasing: raw[position..<split]))
                }
                if case .record(let lsn, _, let size) = decoded {
                    lsns.append(lsn)
                    position += size
                    continue
                }
                if case .invalid(let reason) = decoded { Issue.record("split \(split): invalid \(reason)") }
                if case .needMoreBytes(let needed) = decoded, position < split {
                    #expect(needed > 0)
                    #expect(split + needed <= stream.count)
                }
                break
            }
            let complete = [21, 21 + 316, stream.count].filter { $0 <= split }.count
            #expect(lsns == Array((0..<complete).map { UInt64($0 + 1) }), "split \(split)")
        }
    }

    @Test func everySingleByteChangeIsDetected() {
        let original = frame(lsn: 77, Array("a click, more or less".utf8))
        for index in original.indices {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var damaged = original
                damaged[index] ^= mask
                let decoded = damaged.withUnsafeBytes { RecordFrame.decode($0) }
                switch decoded {
                case .record: Issue.record("byte \(index) ^ \(mask) went unnoticed")
                case .invalid, .needMoreBytes: break  // a damaged length may ask for more
                }
            }
        }
    }

    @Test func zeroLengthAndOversizedAreInvalid() {
        let zeros = [UInt8](repeating: 0, count: 64)
        #expect(zeros.withUnsafeBytes { RecordFrame.decode($0) } == .invalid(reason: "zero length"))
        var huge = [UInt8](repeating: 0, count: 16)
        huge[3] = 0x7f
        guard case .invalid = huge.withUnsafeBytes({ RecordFrame.decode($0) }) else {
            Issue.record("oversized length accepted")
            return
        }
    }

    @Test func segmentHeaderRoundTripAndDamage() {
        var rng = SplitMix64(seed: 1)
        let header = SegmentHeader(logID: .random(using: &rng), firstLSN: 123_456)
        let bytes = header.encoded()
        #expect(bytes.withUnsafeBytes { SegmentHeader.decode($0) } == .success(header))
        for index in 0..<SegmentHeader.size {
            var damaged = bytes
            damaged[index] ^= 0x10
            if case .success = damaged.withUnsafeBytes({ SegmentHeader.decode($0) }) {
                Issue.record("header byte \(index) damage went unnoticed")
            }
        }
        #expect(SegmentName.fileName(firstLSN: 0x1f) == "000000000000001f.seg")
        #expect(SegmentName.firstLSN(of: "000000000000001f.seg") == 0x1f)
        #expect(SegmentName.firstLSN(of: "000000000000001f.seg.broken") == nil)
        #expect(LogID(header.logID.description) == header.logID)
    }
}
