import ClickdTestSupport
import ClickdTestTraits
import Foundation
import Testing

/// deploy/systemd: the units parse cleanly (`systemd-analyze verify`, no warning allowed)
/// and stay hardened (`systemd-analyze security --offline`, exposure at most 2.0 of 10).
@Suite(.ownThreads) struct SystemdUnitTests {
    static let units = ["clickd-edge.service", "clickd-ingest.service", "clickd-report.service"]

    /// The units as shipped, with ExecStart pointing at the binary just built (verify
    /// checks that the command exists).
    static func stagedUnits() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for unit in units {
            let text = try String(contentsOfFile: RepositoryPaths.root.appendingPathComponent("deploy/systemd/\(unit)").path, encoding: .utf8)
            #expect(text.contains("ExecStart=/usr/local/bin/clickd "))
            try text.replacingOccurrences(of: "/usr/local/bin/clickd", with: RepositoryPaths.product("clickd"))
                .write(toFile: dir.appending(unit), atomically: true, encoding: .utf8)
        }
        return dir
    }

    @Test func unitsVerifyWithoutWarnings() throws {
        let dir = try Self.stagedUnits()
        defer { dir.remove() }
        let result = try ChildProcess.run("/usr/bin/env", ["systemd-analyze", "verify", "--man=no"] + Self.units.map { dir.appending($0) })
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    @Test func unitsAreHardened() throws {
        let dir = try Self.stagedUnits()
        defer { dir.remove() }
        for unit in Self.units {
            let result = try ChildProcess.run(
                "/usr/bin/env", ["systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager", dir.appending(unit)])
            #expect(result.status == 0, "\(unit): \(result.stdout.split(separator: "\n").last ?? "")")
        }
    }

    @Test func unitsAskForWhatTheIssueSays() throws {
        for unit in Self.units {
            let text = try String(contentsOfFile: RepositoryPaths.root.appendingPathComponent("deploy/systemd/\(unit)").path, encoding: .utf8)
            // The report reads no file of clickd's: a user of its own for each run.
            let user = unit == "clickd-report.service" ? "DynamicUser=yes" : "User=clickd"
            for directive in [
                "Type=notify", "WatchdogSec=", "Restart=on-failure", user, "LoadCredential=",
                "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
            ] {
                #expect(text.contains("\n" + directive), "\(unit) lacks \(directive)")
            }
        }
        let edge = try String(contentsOfFile: RepositoryPaths.root.appendingPathComponent("deploy/systemd/clickd-edge.service").path, encoding: .utf8)
        #expect(edge.contains("\nStateDirectory=clickd/edge"))
        let report = try String(
            contentsOfFile: RepositoryPaths.root.appendingPathComponent("deploy/systemd/clickd-report.service").path, encoding: .utf8)
        #expect(report.contains("\nExecStart=/usr/local/bin/clickd report --listen 127.0.0.1:8090 --auth-file %d/htpasswd"))
    }
}
