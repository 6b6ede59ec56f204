import ClickdTestSupport
import ClickdTestTraits
import Foundation
import Projections
import Testing

/// `clickd report` as an operator runs it: the refusals are one line and exit 1 (or 64 for
/// usage), and under systemd it says READY, serves, and on SIGTERM says STOPPING and exits 0.
/// The pages themselves are tested in process (ReportServerTests).
@Suite(.ownThreads) struct ReportCommandTests {
    static let migrations = RepositoryPaths.root.appendingPathComponent("migrations").path

    /// A migrated database and (owner, reader) connection strings.
    static func database() throws -> (owner: String, reader: String) {
        let name = "rc_\(UInt32.random(in: 0...UInt32.max))"
        let owner = try ThrowawayPostgres.shared.get().createDatabase(name)
        #expect(try ChildProcess.clickd(["migrate", "--database", owner, "--migrations", migrations]).status == 0)
        let db = try PostgresConnection(owner)
        defer { db.close() }
        try db.execute("CREATE ROLE \(name)_reader LOGIN; GRANT clickd_analyst TO \(name)_reader")
        let user = owner.split(separator: " ").first { $0.hasPrefix("user=") } ?? ""
        return (owner, owner.replacingOccurrences(of: String(user), with: "user=\(name)_reader"))
    }

    /// `clickd report --listen 127.0.0.1:0 ARGUMENTS`, its stderr collected line by line, and
    /// the port it logged once listening.
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, LineCollector, Int) {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: RepositoryPaths.product("clickd"))
        child.arguments = ["report", "--listen", "127.0.0.1:0"] + arguments
        child.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errors = Pipe()
        child.standardError = errors
        let lines = LineCollector(errors.fileHandleForReading)
        try child.run()
        let listening = try lines.waitFor { $0.contains("report listening") }
        let port = Int(listening.split(separator: " ").first { $0.hasPrefix("report.listen=") }?.split(separator: ":").last ?? "") ?? 0
        return (child, lines, port)
    }

    @Test func aRoleThatCanWriteIsRefusedInOneLine() throws {
        let (owner, _) = try Self.database()
        let result = try ChildProcess.clickd(["report", "--database", owner, "--listen", "127.0.0.1:0"])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").filter { !$0.contains("level=") }
        #expect(lines.count == 1 && lines[0].contains("has SUPERUSER, so it can write; connect as a read-only role"), "\(result.stderr)")
    }

    @Test func usageErrors() throws {
        for (arguments, says) in [
            (["--listen", "0.0.0.0:8090"], "is not a loopback address"),
            (["--listen", "nope"], "--listen must be HOST:PORT"),
            (["--base-path", "clicks/"], "--base-path must be empty or /segment"),
            (["--connections", "0"], "--connections must be from 1 to 64"),
            (["--trust-proxy", "10.0.0.0/8,10.0.0.0/99"], "--trust-proxy: '10.0.0.0/99' is not an address or CIDR range"),
        ] {
            let result = try ChildProcess.clickd(["report", "--database", "host=/nonexistent"] + arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderr.contains(says), "\(arguments): \(result.stderr)")
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = dir.appending("users")
        try "ana:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n".write(toFile: file, atomically: true, encoding: .utf8)
        let md5 = try ChildProcess.clickd(["report", "--database", "host=/nonexistent", "--auth-file", file])
        #expect(md5.status == 1)
        #expect(md5.stderr.contains("\(file) line 1: user ana's password is not a bcrypt hash"), "\(md5.stderr)")
    }

    @Test func underSystemdItIsReadyServesAndStopsOnSIGTERM() throws {
        let (_, reader) = try Self.database()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let systemd = try NotifyListener(path: dir.appending("notify.sock"))
        let (child, lines, port) = try Self.start(["--database", reader], environment: ["NOTIFY_SOCKET": systemd.path])
        let ready = systemd.receive()
        #expect(ready?.hasPrefix("READY=1") == true, "\(ready ?? "nothing"): \(lines.lines)")
        let page = try HTTPTestConnection(port: port).request("GET", "/")
        #expect(page.status == 200)
        kill(child.processIdentifier, SIGTERM)
        #expect(systemd.waitFor("STOPPING=1"))
        child.waitUntilExit()
        #expect(child.terminationStatus == 0)
        #expect(!lines.lines.contains { $0.contains("Cannot schedule tasks") }, "\(lines.lines)")
    }

    /// The access and sign-in lines as journald gets them: behind a `--trust-proxy` peer the
    /// client is `X-Forwarded-For`'s, and a user name holding a newline, `=` and a
    /// right-to-left override stays inside one escaped value: no forged line.
    @Test func logLinesNameTheForwardedClientAndCannotBeForged() throws {
        let (_, reader) = try Self.database()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let users = dir.appending("users")
        // A well-formed bcrypt hash (nobody's password): the file is only checked for form at start.
        try "ana:$2b$04$\(String(repeating: "a", count: 53))\n".write(toFile: users, atomically: true, encoding: .utf8)
        let (child, lines, port) = try Self.start([
            "--database", reader, "--base-path", "/r", "--auth-file", users, "--trust-proxy", "10.0.0.0/8,127.0.0.1",
        ])
        defer {
            kill(child.processIdentifier, SIGTERM)
            child.waitUntilExit()
        }
        let hostile = "eve\nlevel=error msg=forged \u{202E}"
        let refused = try HTTPTestConnection(port: port).request(
            "GET", "/r/",
            headers: [
                ("Authorization", "Basic " + Data("\(hostile):guess".utf8).base64EncodedString()),
                ("X-Forwarded-For", "203.0.113.9, 10.0.0.7"),
            ])
        #expect(refused.status == 401)
        let signIn = try lines.waitFor { $0.contains("msg=\"sign-in refused\"") }
        #expect(signIn.contains("client.address=203.0.113.9"), "\(signIn)")
        #expect(signIn.contains(#"user="eve\nlevel=error msg=forged \u{202e}""#), "\(signIn)")
        let access = try lines.waitFor { $0.contains("msg=request") }
        #expect(
            access.contains("client.address=203.0.113.9") && access.contains("http.status=401") && access.contains("http.target=/r/"), "\(access)")
        #expect(!lines.lines.contains { $0.hasPrefix("level=error") || $0.contains("\u{202E}") }, "\(lines.lines)")
    }
}
