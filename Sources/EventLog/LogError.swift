#if canImport(Glibc)
    import Glibc
#endif

/// An error of the event log, written for an operator: what failed, where (file and
/// byte offset when there is one) and, through `code`, what kind of failure it was.
public struct LogError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// The directory does not exist, is not a directory, or cannot be used.
        case directory
        /// The directory holds files but is not a clickd log.
        case notALog
        /// Another process holds the writer lock.
        case locked
        /// A format version this build does not understand.
        case unsupportedVersion
        /// A checksum, header or sequence error in a sealed segment or in acknowledged data.
        case corrupt
        /// A system call failed (the errno is kept in `errno`).
        case io
        /// The disk is full (ENOSPC or EDQUOT); appending may succeed again once space is freed.
        case diskFull
        /// The log was closed, or an earlier fsync failure made it unsafe to append.
        case closed
        /// A caller's mistake: an oversized record, an LSN out of range.
        case invalidArgument
    }

    public var code: Code
    public var message: String
    /// The file concerned, when there is one.
    public var path: String?
    /// The byte offset in `path`, for corruption.
    public var offset: Int64?
    /// The errno of a failed system call.
    public var errno: Int32?

    public init(_ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    /// A failed system call: `what` names the operation ("fdatasync", "open"), `path` the file.
    package static func system(_ what: String, path: String, errno err: Int32 = Glibc.errno) -> LogError {
        let reason = String(cString: strerror(err))
        if err == ENOSPC || err == EDQUOT {
            return LogError(.diskFull, "\(what) \(path): \(reason) — free space on this filesystem", path: path, errno: err)
        }
        return LogError(.io, "\(what) \(path): \(reason)", path: path, errno: err)
    }

    /// `error` as a `LogError` (it always is one inside this module).
    package static func wrap(_ error: any Error) -> LogError {
        (error as? LogError) ?? LogError(.io, String(describing: error))
    }

    public var description: String {
        var text = message
        if let path, let offset, !message.contains(path) {
            text += " (\(path) at byte \(offset))"
        } else if let offset, !message.contains("byte") {
            text += " (at byte \(offset))"
        }
        return text
    }
}
