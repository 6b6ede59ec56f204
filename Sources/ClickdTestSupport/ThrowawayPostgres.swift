import Foundation
import Projections

/// A private PostgreSQL cluster for tests, started by `scripts/throwaway-pg serve`.
///
/// The script's standard input is a pipe held by this process: when the test process
/// exits — normally, on a failed test, or killed — the pipe closes and the script stops
/// the server and removes its directory. `stop()` does the same at once.
public final class ThrowawayPostgres: @unchecked Sendable {
    /// A libpq connection string for the cluster's superuser and database `postgres`.
    public let conninfo: String
    private let process: Process
    private let stdin: Pipe

    /// One cluster shared by every test in this process, started on first use.
    public static let shared: Result<ThrowawayPostgres, any Error> = Result { try ThrowawayPostgres() }

    public init() throws {
        let script = RepositoryPaths.root.appendingPathComponent("scripts/throwaway-pg").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, "serve"]
        stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        // Read the "ready …" line (the script fails fast and prints why on stderr otherwise).
        let text = DescriptorReader(stdout.fileHandleForReading).line()
        guard text.hasPrefix("ready ") else {
            process.terminate()
            throw TestSupportError("throwaway PostgreSQL did not start (see stderr above); got: \(text)")
        }
        conninfo = String(text.dropFirst("ready ".count))
    }

    /// Creates a fresh database and returns its connection string.
    /// `name` must be a plain identifier (letters, digits, underscore): it cannot be bound.
    public func createDatabase(_ name: String, latin1: Bool = false) throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw TestSupportError("not a plain database name: \(name)")
        }
        let admin = try PostgresConnection(conninfo)
        defer { admin.close() }
        try admin.query("CREATE DATABASE " + name + (latin1 ? " ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" : ""))
        return conninfo.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(name)")
    }

    /// The cluster's directory (above its socket directory).
    public var directory: String {
        let host = conninfo.split(separator: " ").first { $0.hasPrefix("host=") }.map { String($0.dropFirst(5)) } ?? ""
        return (host as NSString).deletingLastPathComponent
    }

    /// Takes the server down — cleanly (`immediate: false`, connections are closed) or as a
    /// crash — while the cluster stays; `startServer` brings it back on the same socket.
    public func stopServer(immediate: Bool) throws {
        try control(["stop", directory, immediate ? "immediate" : "fast"])
    }

    public func startServer() throws { try control(["start", directory]) }

    private func control(_ arguments: [String]) throws {
        let script = RepositoryPaths.root.appendingPathComponent("scripts/throwaway-pg").path
        let result = try ChildProcess.run("/bin/bash", [script] + arguments)
        guard result.status == 0 else { throw TestSupportError("throwaway-pg \(arguments.joined(separator: " ")): \(result.stderr)") }
    }

    public func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
