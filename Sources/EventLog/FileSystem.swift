#if canImport(Glibc)
    import Glibc
#endif

/// Filesystem helpers: paths, listing, and the one place new files are made durable.
package enum FileSystem {
    package static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// The directory part of `path` ("." for a bare name, "/" for a file at the root).
    package static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    package static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    package static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in `directory`, unsorted, without `.` and `..`.
    package static func list(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else { throw LogError.system("list", path: directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// fsync of a directory, so that file creations, renames and removals in it survive a crash.
    package static func syncDirectory(_ directory: String) throws {
        let dir = try LogFile(path: directory, flags: O_RDONLY | O_DIRECTORY)
        try dir.sync()
    }

    /// Replaces the file at `path` with `contents` atomically (temp file + rename) but not
    /// durably: for files whose loss to a crash only repeats work (follower and erasure
    /// status files).
    package static func replace(_ path: String, contents: [UInt8]) throws {
        let temp = path + ".tmp"
        do {
            let file = try LogFile(path: temp, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(contents, at: 0)
            file.close()
            if rename(temp, path) != 0 { throw LogError.system("rename to", path: path) }
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Creates `name` in `directory` holding exactly `contents`, atomically and durably:
    /// written to a temporary file, fsynced, renamed into place, and the directory fsynced.
    /// A crash leaves either no file or the whole file (plus, at worst, a `.tmp` to remove).
    package static func createDurably(directory: String, name: String, contents: [UInt8]) throws {
        let final = join(directory, name)
        let temp = final + ".tmp"
        do {
            let file = try LogFile(path: temp, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(contents, at: 0)
            try file.sync()
            file.close()
            if rename(temp, final) != 0 { throw LogError.system("rename to", path: final) }
            try syncDirectory(directory)
        } catch {
            unlink(temp)
            throw error
        }
    }
}
