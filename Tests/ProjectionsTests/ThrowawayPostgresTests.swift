import ClickdTestSupport
import ClickdTestTraits
import Foundation
import Testing

/// The throwaway cluster disappears with its caller, however the caller ends.
@Suite(.ownThreads) struct ThrowawayPostgresTests {
    @Test func clusterIsRemovedWhenItsCallerIsKilled() throws {
        let script = RepositoryPaths.root.appendingPathComponent("scripts/throwaway-pg").path
        // A caller that starts a cluster, prints its connection string, then dies by SIGKILL.
        let caller = "coproc PG { exec \"$0\" serve; }; read -r line <&\"${PG[0]}\"; echo \"$line\"; kill -9 $$"
        let result = try ChildProcess.run("/bin/bash", ["-c", caller, script], timeout: 60)
        #expect(result.signalled)
        let line = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.hasPrefix("ready host="), "\(result.stdout) \(result.stderr)")
        let socketDir = String(line.dropFirst("ready host=".count).prefix { $0 != " " })
        let clusterDir = URL(fileURLWithPath: socketDir).deletingLastPathComponent().path
        // Within a few seconds the server is stopped and its directory removed.
        var gone = false
        for _ in 0..<300 {
            if !FileManager.default.fileExists(atPath: clusterDir) {
                gone = true
                break
            }
            usleep(50_000)
        }
        #expect(gone, "\(clusterDir) still exists")
    }
}
