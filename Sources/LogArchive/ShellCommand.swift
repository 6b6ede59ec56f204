import Subprocess
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// An operator's command template, PostgreSQL's `archive_command` / `restore_command`
/// syntax: `%p`, `%f`, `%l` are replaced by the values the caller gives for them and `%%`
/// by `%`. The values are inserted as they are, unquoted, as PostgreSQL does: quote `%p`
/// in the template if the log's path may hold spaces. Any other `%` sequence is refused
/// when the template is made, so a typo is an error at start, not a failing archive later.
public struct CommandTemplate: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    /// The placeholder letters this template may use.
    public let placeholders: Set<Character>

    public init(_ text: String, placeholders: Set<Character>) throws(CommandTemplateError) {
        guard !text.allSatisfy(\.isWhitespace) else { throw CommandTemplateError("the command is empty") }
        var escape = false
        for character in text {
            if escape {
                guard character == "%" || placeholders.contains(character) else {
                    let known = placeholders.sorted().map { "%\($0)" }.joined(separator: ", ")
                    throw CommandTemplateError("'%\(character)' in \"\(text)\" is not one of \(known) or %%")
                }
                escape = false
            } else if character == "%" {
                escape = true
            }
        }
        guard !escape else { throw CommandTemplateError("\"\(text)\" ends in a lone %") }
        self.text = text
        self.placeholders = placeholders
    }

    /// The command with every placeholder replaced (a letter without a value becomes "").
    public func expand(_ values: [Character: String]) -> String {
        var result = ""
        var escape = false
        for character in text {
            if escape {
                result += character == "%" ? "%" : values[character] ?? ""
                escape = false
            } else if character == "%" {
                escape = true
            } else {
                result.append(character)
            }
        }
        return result
    }

    public var description: String { text }
}

public struct CommandTemplateError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Runs an operator's shell command (`/bin/sh -c`) the way an archiver must: in a process
/// group of its own, with its standard input empty, its output kept (the last
/// `outputLimit` bytes, for the log line), and a deadline — past it the group gets
/// SIGTERM, and SIGKILL `killAfter` later, so a hung `rclone` and whatever it started
/// cannot hold the archive up forever.
///
/// Subprocess (swift-subprocess) spawns, reaps and runs the teardown; the output goes to
/// an unlinked temporary file rather than a pipe, so a command's background child that
/// keeps the descriptor open cannot make the wait hang.
public enum ShellCommand {
    public struct Outcome: Sendable, Equatable {
        public enum Status: Sendable, Equatable {
            case exited(Int32)
            case signaled(Int32)
            /// No exit within the timeout; the group was sent SIGTERM (then SIGKILL).
            case timedOut(Duration)
        }

        public var status: Status
        /// The end of what it wrote to stdout and stderr, trimmed.
        public var output: String

        public var succeeded: Bool { status == .exited(0) }

        /// "exit status 3", "killed by signal 9", "no exit within 5 min".
        public var statusText: String {
            switch status {
            case .exited(let code): "exit status \(code)"
            case .signaled(let signal): "killed by signal \(signal)"
            case .timedOut(let limit): "no exit within \(limit.formatted), stopped"
            }
        }
    }

    public static let outputLimit = 4096

    public static func run(_ command: String, timeout: Duration, killAfter: Duration = .seconds(5)) async throws -> Outcome {
        let output = try temporaryFile()
        defer { _ = try? output.close() }
        let options = {
            var options = PlatformOptions()
            // Its own process group (pgid = its pid), so the teardown reaches what it started.
            options.processGroupID = 0
            options.teardownSequence = [
                .send(signal: .terminate, toProcessGroup: true, allowedDurationToNextStep: killAfter),
                .send(signal: .kill, toProcessGroup: true, allowedDurationToNextStep: .seconds(1)),
            ]
            return options
        }()
        let group = ProcessGroup()
        let status = try await withThrowingTaskGroup(of: Outcome.Status?.self) { tasks in
            tasks.addTask {
                let result = try await Subprocess.run(
                    .path("/bin/sh"), arguments: ["-c", command], platformOptions: options, input: .none,
                    output: .fileDescriptor(output, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(output, closeAfterSpawningProcess: false)
                ) { execution in
                    group.id.store(execution.processIdentifier.value, ordering: .relaxed)
                }
                switch result.terminationStatus {
                case .exited(let code): return .exited(code)
                case .signaled(let signal): return .signaled(signal)
                }
            }
            tasks.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await tasks.next()!
            tasks.cancelAll()
            // The command's task ends once its teardown has run (or it exited).
            var late: Outcome.Status?
            while let next = try? await tasks.next() { late = late ?? next }
            if let first { return first }
            // The timer won, but the command may have exited by itself before the teardown
            // reached it (on a busy machine both wake late): a failing exit is its own,
            // better answer. A death by our signals is the timeout — and so is an exit 0,
            // which may be a command that exits cleanly on SIGTERM: never taken as durable
            // (the retry's identical re-archive succeeds if the copy was whole).
            if case .exited(let code) = late, code != 0 { return late! }
            return .timedOut(timeout)
        }
        // The teardown stops once the shell itself has exited; a member of its group that
        // ignored SIGTERM is still there. The group id cannot be reused while any member lives.
        if case .timedOut = status {
            let pgid = group.id.load(ordering: .relaxed)
            if pgid > 0 { kill(-pgid, SIGKILL) }
        }
        return Outcome(status: status, output: tail(of: output))
    }

    /// The command's process group id, once it is spawned.
    private final class ProcessGroup: Sendable {
        let id = Atomic<pid_t>(0)
    }

    /// An unlinked file in $TMPDIR (or /tmp): it vanishes with its last descriptor.
    private static func temporaryFile() throws -> FileDescriptor {
        let base = Glibc.getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/clickd-command-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw ShellCommandError("cannot create a file for the command's output in \(base): \(String(cString: strerror(errno)))")
        }
        // Kept from children other than the command (mkostemp is not visible to Swift here).
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        unlink(path)
        return FileDescriptor(rawValue: fd)
    }

    private static func tail(of file: FileDescriptor) -> String {
        var st = stat()
        guard fstat(file.rawValue, &st) == 0 else { return "" }
        let size = Int(st.st_size)
        let start = max(0, size - outputLimit)
        var bytes = [UInt8](repeating: 0, count: size - start)
        let n = bytes.withUnsafeMutableBytes { pread(file.rawValue, $0.baseAddress, $0.count, off_t(start)) }
        guard n > 0 else { return "" }
        let text = String(decoding: bytes[0..<n], as: UTF8.self)
        var trimmed = Substring(text)
        while trimmed.first?.isWhitespace == true { trimmed.removeFirst() }
        while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
        return (start > 0 ? "…" : "") + trimmed
    }
}

public struct ShellCommandError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    /// "300 ms", "5 s", "5 min": for log lines.
    var formatted: String {
        let ms = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        if ms % 60_000 == 0 && ms >= 60_000 { return "\(ms / 60_000) min" }
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        return "\(ms) ms"
    }
}
