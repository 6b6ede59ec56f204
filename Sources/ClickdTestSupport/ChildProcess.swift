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
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil,
                           environment: [String: String]? = nil, timeout: TimeInterval = 120) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inp
        try process.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try? inp.fileHandleForWriting.close()
        // Drain both pipes concurrently so a chatty child never blocks.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData: [UInt8] = [], errData: [UInt8] = []
        let outReader = DescriptorReader(out.fileHandleForReading), errReader = DescriptorReader(err.fileHandleForReading)
        group.enter()
        DispatchQueue.global().async { outData = outReader.readToEnd(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = errReader.readToEnd(); group.leave() }
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
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self),
                             signalled: process.terminationReason == .uncaughtSignal)
    }

    /// Runs the built `clickd`.
    public static func clickd(_ arguments: [String], input: String? = nil, environment: [String: String]? = nil,
                              timeout: TimeInterval = 120) throws -> CommandResult {
        try run(RepositoryPaths.product("clickd"), arguments, input: input, environment: environment, timeout: timeout)
    }
}
