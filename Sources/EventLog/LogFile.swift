#if canImport(Glibc)
    import Glibc
#endif

/// A thin owner of one file descriptor: every call retries EINTR and turns failures into
/// `LogError`s that name the file. All durability decisions live in `LogDirectory` and
/// `EventLogWriter`; this type only carries them out.
package final class LogFile {
    package let path: String
    package private(set) var fd: Int32

    /// The mode of every file a log creates: the files hold customer ids, addresses and user
    /// agents, so they are for the writer and its group (the ingest daemon) only.
    package static let fileMode: mode_t = 0o640

    /// Opens `path`; with `O_CREAT` the file gets exactly `mode`, whatever the umask (a umask
    /// of 0 would otherwise leave it readable by everyone; one of 077 would shut out the
    /// ingest daemon's group).
    package init(path: String, flags: Int32, mode: mode_t = LogFile.fileMode) throws {
        self.path = path
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw LogError.system("open", path: path) }
        // An existing file owned by another user keeps its mode (EPERM is ignored).
        if flags & O_CREAT != 0 { _ = fchmod(fd, mode) }
        self.fd = fd
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    package func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    package func size() throws -> Int64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw LogError.system("fstat", path: path) }
        return Int64(st.st_size)
    }

    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.system("write", path: path)
            }
            if n == 0 { throw LogError(.io, "write \(path): wrote nothing", path: path) }
            done += n
        }
    }

    package func write(_ bytes: [UInt8], at offset: Int64) throws {
        try bytes.withUnsafeBytes { (raw) throws in try write(raw, at: offset) }
    }

    /// Reads up to `into.count` bytes at `offset`; fewer only at end of file.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.system("read", path: path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    package func read(count: Int, at offset: Int64) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try bytes.withUnsafeMutableBytes { (raw) throws in try read(into: raw, at: offset) }
        bytes.removeLast(count - n)
        return bytes
    }

    package func dataSync() throws {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw LogError.system("fdatasync", path: path)
        }
    }

    package func sync() throws {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            throw LogError.system("fsync", path: path)
        }
    }

    package func truncate(to size: Int64) throws {
        while ftruncate(fd, off_t(size)) != 0 {
            if errno == EINTR { continue }
            throw LogError.system("ftruncate", path: path)
        }
    }
}
