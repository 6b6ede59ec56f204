#if canImport(Glibc)
    import Glibc
#endif

/// The `durable` file: the highest LSN known to be on stable storage, published by the
/// writer after every `fdatasync` and read by readers in any process, which never read
/// past it. Layout (24 bytes, little-endian):
///
///     0           8        16
///     +-----------+--------+---------+
///     | "CLKDWMK1"|  lsn   |  ~lsn   |
///     +-----------+--------+---------+
///
/// The writer rewrites bytes 8..<24 with one `pwrite`; a reader that catches a half-done
/// update sees `lsn != ~(~lsn)` and reads again. The file is not fsynced: after a crash it
/// may lag behind the log (recovery republishes), but it is never ahead of what was synced.
/// Each update also raises an inotify `IN_MODIFY`, which wakes tailers.
public enum DurableWatermark {
    public static let fileName = "durable"
    static let magic: [UInt8] = Array("CLKDWMK1".utf8)

    static func encode(_ lsn: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: lsn.littleEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: (~lsn).littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        return bytes
    }

    /// Opens (creating if needed) the file for the writer.
    static func openForWriting(directory: String) throws -> LogFile {
        let file = try LogFile(path: FileSystem.join(directory, fileName), flags: O_RDWR | O_CREAT)
        try file.write(magic, at: 0)
        return file
    }

    static func publish(_ lsn: UInt64, to file: LogFile) throws {
        try file.write(encode(lsn), at: 8)
    }

    /// Writes `lsn` as the watermark of the log in `directory` and syncs it: for a log
    /// made by other means than a writer (`clickd log restore`), whose records are all
    /// durable already.
    package static func write(_ lsn: UInt64, directory: String) throws {
        let file = try openForWriting(directory: directory)
        try publish(lsn, to: file)
        try file.sync()
    }

    /// Reads the published watermark; 0 when the file is missing (nothing published yet).
    static func read(directory: String) throws -> UInt64 {
        let path = FileSystem.join(directory, fileName)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return 0 }
            throw LogError.system("open", path: path)
        }
        defer { Glibc.close(fd) }
        var raw = (UInt64(0), UInt64(0), UInt64(0))
        for _ in 0..<1000 {
            let n = withUnsafeMutableBytes(of: &raw) { pread(fd, $0.baseAddress, 24, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.system("read", path: path)
            }
            if n < 24 { return 0 }
            let lsn = UInt64(littleEndian: raw.1)
            let check = UInt64(littleEndian: raw.2)
            if lsn == ~check { return lsn }
            // A concurrent update was half done; read again.
        }
        throw LogError(.corrupt, "\(path) does not hold a consistent watermark", path: path)
    }
}
