import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Reads a pipe through a private duplicate of its descriptor with read(2). Foundation's
/// `FileHandle` reading calls `try!` internally and crashes the whole test process if the
/// descriptor is closed under it (seen in CI); a duplicate cannot be closed by anyone else.
public final class DescriptorReader: @unchecked Sendable {
    private let fd: Int32

    public init(_ handle: FileHandle) {
        fd = dup(handle.fileDescriptor)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// The next chunk; empty at end of stream (or on an error).
    public func next() -> [UInt8] {
        guard fd >= 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            return n > 0 ? Array(buffer[0..<n]) : []
        }
    }

    /// Everything until end of stream.
    public func readToEnd() -> [UInt8] {
        var all: [UInt8] = []
        while case let chunk = next(), !chunk.isEmpty { all += chunk }
        return all
    }

    /// One byte, or nil at end of stream.
    /// The text up to the next newline (not included), or to the end of the stream.
    public func line() -> String {
        var bytes: [UInt8] = []
        while let byte = byte(), byte != UInt8(ascii: "\n") { bytes.append(byte) }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func byte() -> UInt8? {
        guard fd >= 0 else { return nil }
        var b: UInt8 = 0
        while true {
            let n = read(fd, &b, 1)
            if n < 0, errno == EINTR { continue }
            return n == 1 ? b : nil
        }
    }
}
