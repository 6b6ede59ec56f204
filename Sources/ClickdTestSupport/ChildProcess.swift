import Foundation

/// The outcome of running a command to its end.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// True when the process was killed by a signal (then `status` is the signal number).
    public var signalled: Bool
}

public enum ChildProcess {
    /// Runs `executable` with `arguments`, feeding `input` on stdin, and waits at most
    /// `timeout` seconds (then kills it and throws).
    public static func run(
        _ executable: String, _ arguments: [String], input: String? = nil,
        environment: [String: String]? = nil, timeout: TimeInterval = 120
    ) throws -> CommandResult {
        var attempt = 0
        var process: Process
        var out: Pipe
        var err: Pipe
        var inp: Pipe
        var outReader: DescriptorReader
        var errReader: DescriptorReader
        while true {
            process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if let environment {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            }
            (out, err, inp) = (Pipe(), Pipe(), Pipe())
            // Our own duplicates of the read ends, taken at once: a descriptor closed twice
            // elsewhere in the process (Foundation's Process on Linux) can close a number
            // another thread has just been given, and `Process.run` is milliseconds of that.
            (outReader, errReader) = (DescriptorReader(out.fileHandleForReading), DescriptorReader(err.fileHandleForReading))
            process.standardOutput = out
            process.standardError = err
            process.standardInput = inp
            do {
                try process.run()
                break
            } catch  where attempt < 5 && Self.isSpawnRace(error) {
                attempt += 1
                usleep(20_000)
            }
        }
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try? inp.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty child never blocks.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData: [UInt8] = []
        nonisolated(unsafe) var errData: [UInt8] = []
        let (stdoutReader, stderrReader) = (outReader, errReader)
        group.enter()
        DispatchQueue.global().async {
            outData = stdoutReader.readToEnd()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            errData = stderrReader.readToEnd()
            group.leave()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(2_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            group.wait()
            throw TestSupportError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
        }
        process.waitUntilExit()
        group.wait()
        return CommandResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self),
            signalled: process.terminationReason == .uncaughtSignal)
    }

    /// Foundation's `Process.run` on Linux fails with EBADF when another thread closes a
    /// descriptor while it prepares the child's descriptors (seen in a CI dry run while the
    /// edge-hardening tests opened and closed hundreds of sockets): nothing was started,
    /// so the launch is tried again with a fresh `Process`.
    public static func isSpawnRace(_ error: any Error) -> Bool {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        return [error as NSError, underlying].contains { $0?.domain == NSPOSIXErrorDomain && $0?.code == Int(EBADF) }
    }

    /// Runs the built `clickd`.
    /// `clickd ARGUMENTS` started in the background with its stderr discarded: a daemon
    /// under test, to be signalled and waited for.
    public static func startClickd(_ arguments: [String]) throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: RepositoryPaths.product("clickd"))
        child.arguments = arguments
        child.standardError = FileHandle.nullDevice
        try child.run()
        return child
    }

    public static func clickd(
        _ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
        timeout: TimeInterval = 120
    ) throws -> CommandResult {
        try run(RepositoryPaths.product("clickd"), arguments, input: input, environment: environment, timeout: timeout)
    }
}
