#if canImport(Glibc)
    import Glibc
#endif

/// The `LOG` file that marks a directory as a clickd log: a few lines of text, written
/// once (atomically) when the log is created and never changed.
///
///     clickd-log
///     format 1
///     log_id 6f1c2e1a-…
///     created 2026-11-29T03:40:00Z
public struct LogMetadata: Equatable, Sendable {
    public static let fileName = "LOG"
    public static let currentFormat = 1

    public var format: Int
    public var logID: LogID
    public var created: String

    public init(format: Int = LogMetadata.currentFormat, logID: LogID, created: String) {
        self.format = format
        self.logID = logID
        self.created = created
    }

    public func encoded() -> [UInt8] {
        Array("clickd-log\nformat \(format)\nlog_id \(logID)\ncreated \(created)\n".utf8)
    }

    /// Parses the file's text; `path` is only used in error messages.
    public static func parse(_ text: String, path: String) throws -> LogMetadata {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard lines.first == "clickd-log" else {
            throw LogError(.notALog, "\(path) is not a clickd log metadata file (first line is not 'clickd-log')", path: path)
        }
        var fields: [Substring: Substring] = [:]
        for line in lines.dropFirst() {
            guard let space = line.firstIndex(of: " ") else { continue }
            fields[line[..<space]] = line[line.index(after: space)...]
        }
        guard let formatText = fields["format"], let format = Int(formatText) else {
            throw LogError(.corrupt, "\(path) has no valid 'format' line", path: path)
        }
        guard format == currentFormat else {
            throw LogError(
                .unsupportedVersion,
                "\(path) is log format \(format); this clickd reads format \(currentFormat) only — use a matching clickd version",
                path: path)
        }
        guard let idText = fields["log_id"], let logID = LogID(idText) else {
            throw LogError(.corrupt, "\(path) has no valid 'log_id' line", path: path)
        }
        return LogMetadata(format: format, logID: logID, created: String(fields["created"] ?? ""))
    }

    package static func read(directory: String) throws -> LogMetadata {
        let path = FileSystem.join(directory, fileName)
        let file: LogFile
        do {
            file = try LogFile(path: path, flags: O_RDONLY)
        } catch {
            if (error as? LogError)?.errno == ENOENT {
                throw LogError(.notALog, "\(directory) is not a clickd log (it has no \(fileName) file)", path: directory)
            }
            throw error
        }
        let bytes = try file.read(count: 4096, at: 0)
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    /// The current UTC time as RFC 3339, without Foundation.
    static func now() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
