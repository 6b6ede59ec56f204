/// Walks the frames of one segment file in order, reading it in large chunks. Shared by
/// recovery, `verify`, `dump` and the reader, so there is one decoder of files.
///
/// A cursor stopped at the end of the file (or at an incomplete frame) can be stepped
/// again later and will see bytes appended since: that is how a tailer follows a segment
/// that is still being written.
struct FrameCursor {
    enum Step {
        /// A valid frame at `offset`; its payload is `payload` within `bytes` until the next step.
        case record(lsn: UInt64, offset: Int64, payload: Range<Int>)
        /// The file ends exactly at a frame boundary.
        case end(offset: Int64)
        /// The file ends inside a frame (or inside what may be one) at `offset`.
        case incomplete(offset: Int64, reason: String)
        /// The bytes at `offset` are not a valid frame.
        case invalid(offset: Int64, reason: String)
        /// A valid seal footer at `offset`: the segment's records end here.
        case seal(offset: Int64, footer: SegmentFooter)
    }

    let file: LogFile
    private(set) var bytes: [UInt8]
    fileprivate(set) var bufferStart: Int64
    private var filled = 0
    private var position = 0
    private let chunkSize: Int
    /// The CRC-32C of the segment's bytes up to `offset`, when the cursor was asked to keep it
    /// (the scanner checks a seal footer's `segcrc` against it; readers do not pay for it).
    private(set) var checksum: UInt32?

    /// The file offset of the next frame.
    var offset: Int64 { bufferStart + Int64(position) }

    /// `checksumSeed`: the CRC-32C of the file's bytes before `offset`, to keep a running
    /// checksum from (nil: none is kept).
    init(file: LogFile, offset: Int64, chunkSize: Int = 1 << 20, checksumSeed: UInt32? = nil) {
        self.file = file
        self.bufferStart = offset
        self.chunkSize = chunkSize
        self.bytes = [UInt8](repeating: 0, count: chunkSize)
        self.checksum = checksumSeed
    }

    /// Decodes the frame at `offset`, reading from the file as needed.
    mutating func step() throws -> Step {
        var readMore = false
        while true {
            if readMore {
                if try !refill() {
                    // Nothing more in the file.
                    if filled == position { return .end(offset: offset) }
                    if case .needMoreBytes = lookForFooter() {
                        return .incomplete(offset: offset, reason: "the file ends inside the seal footer")
                    }
                    let reason: String
                    switch decodeHere() {
                    case .needMoreBytes(let needed): reason = "the file ends \(needed) bytes short of the frame"
                    case .invalid(let why): return .invalid(offset: offset, reason: why)
                    case .record: preconditionFailure("complete frame after refill")
                    }
                    return .incomplete(offset: offset, reason: reason)
                }
            }
            switch lookForFooter() {
            case .none: break
            case .footer(let footer): return .seal(offset: offset, footer: footer)
            case .invalid(let reason): return .invalid(offset: offset, reason: reason)
            case .needMoreBytes:
                readMore = true
                continue
            }
            switch decodeHere() {
            case .record(let lsn, let payload, let size):
                let frameOffset = offset
                let range = (position + payload.lowerBound)..<(position + payload.upperBound)
                if let seed = checksum {
                    checksum = bytes.withUnsafeBytes {
                        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[position..<(position + size)]), seed: seed)
                    }
                }
                position += size
                return .record(lsn: lsn, offset: frameOffset, payload: range)
            case .invalid(let reason):
                return .invalid(offset: offset, reason: reason)
            case .needMoreBytes(let needed):
                if filled - position + needed > bytes.count {
                    bytes.append(contentsOf: repeatElement(0, count: filled - position + needed - bytes.count))
                }
                readMore = true
            }
        }
    }

    private enum FooterLook {
        case none
        case footer(SegmentFooter)
        case invalid(String)
        case needMoreBytes
    }

    /// Whether a seal footer starts here (checked before a frame: its magic can never begin
    /// a valid frame, whose length is at most 1 MiB).
    private func lookForFooter() -> FooterLook {
        bytes.withUnsafeBytes { raw in
            let here = UnsafeRawBufferPointer(rebasing: raw[position..<filled])
            guard SegmentFooter.startsWithMagic(here) else { return .none }
            guard here.count >= SegmentFooter.size else { return .needMoreBytes }
            switch SegmentFooter.decode(here) {
            case .success(let footer): return .footer(footer)
            case .failure(let problem): return .invalid("\(problem)")
            }
        }
    }

    private func decodeHere() -> RecordFrame.Decoded {
        bytes.withUnsafeBytes { raw in
            RecordFrame.decode(UnsafeRawBufferPointer(rebasing: raw[position..<filled]))
        }
    }

    /// Moves unread bytes to the front and reads as much as fits. Returns false at end of file.
    private mutating func refill() throws -> Bool {
        let remaining = filled - position
        if position > 0 {
            if remaining > 0 {
                bytes.withUnsafeMutableBytes { raw in
                    raw.baseAddress!.copyMemory(from: raw.baseAddress! + position, byteCount: remaining)
                }
            }
            bufferStart += Int64(position)
            position = 0
            filled = remaining
        }
        if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: chunkSize)) }
        let start = filled
        let n = try bytes.withUnsafeMutableBytes { (raw) throws in
            try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[start...]), at: bufferStart + Int64(start))
        }
        filled += n
        return n > 0
    }

    /// Forgets buffered bytes past the current frame, so the next step re-reads the file
    /// (used after the file may have changed under a reader).
    mutating func discardReadAhead() {
        bufferStart += Int64(position)
        position = 0
        filled = 0
    }
}

extension FrameCursor {
    /// Moves the cursor back to `offset` (a frame boundary seen earlier) and forgets read-ahead.
    mutating func reset(to offset: Int64) {
        discardReadAhead()
        bufferStart = offset
    }
}
