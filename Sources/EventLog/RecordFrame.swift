/// The framing of one log record, pure and I/O-free (see docs/log-format.md):
///
///     0        4        8                16
///     +--------+--------+----------------+----------------------+
///     | length | crc32c |      lsn       | payload (length B)   |
///     +--------+--------+----------------+----------------------+
///
/// All integers little-endian. `crc32c` covers the length field, the LSN and the payload,
/// so a damaged length is caught as surely as a damaged payload. A length of zero never
/// occurs in a valid record: zero-filled space (a file extended but never written) reads
/// as invalid, never as an empty record.
public enum RecordFrame {
    /// Bytes before the payload.
    public static let headerSize = 16
    /// The largest payload a record may carry (a click is a few hundred bytes).
    public static let maxPayloadSize = 1 << 20

    /// The outcome of looking at the bytes where a frame should start.
    public enum Decoded: Equatable {
        /// A whole valid frame: its LSN, where its payload lies within the buffer, and its full size.
        case record(lsn: UInt64, payload: Range<Int>, frameSize: Int)
        /// The bytes so far are a valid beginning; `needed` more must be read (at least).
        case needMoreBytes(needed: Int)
        /// These bytes are not a valid frame.
        case invalid(reason: String)
    }

    /// Writes the frame for `payload` with `lsn` at the end of `buffer`.
    @inlinable
    public static func append(lsn: UInt64, payload: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        let start = buffer.count
        let total = headerSize + payload.count
        buffer.reserveCapacity(start + total)
        buffer.append(contentsOf: repeatElement(0, count: total))
        buffer.withUnsafeMutableBytes { raw in
            let frame = UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + total)])
            encode(lsn: lsn, payload: payload, into: frame)
        }
    }

    /// Encodes into `frame`, which must be exactly `headerSize + payload.count` bytes.
    @inlinable
    public static func encode(lsn: UInt64, payload: UnsafeRawBufferPointer, into frame: UnsafeMutableRawBufferPointer) {
        precondition(frame.count == headerSize + payload.count)
        frame.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: 0, as: UInt32.self)
        frame.storeBytes(of: lsn.littleEndian, toByteOffset: 8, as: UInt64.self)
        if payload.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: frame[headerSize...]).copyMemory(from: payload)
        }
        let crc = checksum(frame: UnsafeRawBufferPointer(frame), payloadCount: payload.count)
        frame.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
    }

    @inlinable
    static func checksum(frame: UnsafeRawBufferPointer, payloadCount: Int) -> UInt32 {
        let lengthCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: frame[0..<4]))
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: frame[8..<(headerSize + payloadCount)]), seed: lengthCRC)
    }

    /// Looks at `bytes` (which start where a frame should start). Never reads past
    /// `bytes`, and checks the length before asking for more.
    public static func decode(_ bytes: UnsafeRawBufferPointer, maxPayloadSize: Int = RecordFrame.maxPayloadSize) -> Decoded {
        if bytes.count < headerSize {
            // A partial header can still be recognised as garbage if its length field is readable.
            if bytes.count >= 4 {
                let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
                if length == 0 { return .invalid(reason: "zero length") }
                if length > maxPayloadSize { return .invalid(reason: "length \(length) exceeds the maximum \(maxPayloadSize)") }
            }
            return .needMoreBytes(needed: headerSize - bytes.count)
        }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        if length == 0 { return .invalid(reason: "zero length") }
        if length > maxPayloadSize { return .invalid(reason: "length \(length) exceeds the maximum \(maxPayloadSize)") }
        let frameSize = headerSize + length
        if bytes.count < frameSize { return .needMoreBytes(needed: frameSize - bytes.count) }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let computed = checksum(frame: bytes, payloadCount: length)
        if stored != computed {
            return .invalid(reason: "checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))")
        }
        let lsn = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        return .record(lsn: lsn, payload: headerSize..<frameSize, frameSize: frameSize)
    }

    static func hex(_ value: UInt32) -> String { "0x" + Hex.padded(value, width: 8) }
}
