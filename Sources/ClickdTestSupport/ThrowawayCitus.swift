import Foundation

/// A private Citus cluster for the Citus test tier (make test-citus): a coordinator and two
/// workers started by `scripts/throwaway-citus serve`, each a throwaway PostgreSQL with the
/// installed Citus extension preloaded. Like `ThrowawayPostgres`, the script's standard
/// input is a pipe held by this process: when the process ends, however, every node stops
/// and is removed. Without Citus installed it throws the script's one line — the tier
/// fails, never skips.
public final class ThrowawayCitus: @unchecked Sendable {
    /// The nodes' libpq connection strings (database `postgres`), the coordinator first.
    public let nodes: [String]
    private let process: Process
    private let stdin: Pipe

    public static let shared: Result<ThrowawayCitus, any Error> = Result { try ThrowawayCitus() }

    static var script: String { RepositoryPaths.root.appendingPathComponent("scripts/throwaway-citus").path }

    public init(workers: Int = 2) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.script, "serve", String(workers)]
        stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let errors = DescriptorReader(stderr.fileHandleForReading)
        try process.run()
        let text = DescriptorReader(stdout.fileHandleForReading).line()
        guard text.hasPrefix("ready ") else {
            process.waitUntilExit()
            let why = String(decoding: errors.readToEnd(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw TestSupportError("the Citus cluster did not start: \(why.isEmpty ? text : why)")
        }
        nodes = text.dropFirst("ready ".count).split(separator: "|").map(String.init)
    }

    /// Creates database `name` on every node with the citus extension, makes the
    /// coordinator's a cluster of them, and returns its coordinator connection string.
    public func createDatabase(_ name: String) throws -> String {
        let result = try ChildProcess.run("/bin/bash", [Self.script, "createdb", name, nodes.joined(separator: "|")])
        guard result.status == 0 else { throw TestSupportError("throwaway-citus createdb \(name): \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Node `index`'s connection string for database `name` (0 is the coordinator).
    public func node(_ index: Int, database name: String) -> String {
        nodes[index].replacingOccurrences(of: "dbname=postgres", with: "dbname=\(name)")
    }

    public func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
