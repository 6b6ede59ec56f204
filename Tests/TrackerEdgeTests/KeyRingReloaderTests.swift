import ClickdTestSupport
import Foundation
import LinkTracking
import Logging
import Testing

@testable import TrackerEdge

/// What SIGHUP does, without a signal: the reloader swaps in the ring the file holds, and
/// keeps the one in use when the file does not load (a real SIGHUP to a real edge:
/// ClickdCommandTests/EdgeSystemdTests).
@Suite struct KeyRingReloaderTests {
    @Test func aGoodFileReplacesTheRingAndABadOneLeavesItAsItIs() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("keys")
        let store = KeyRingStore(InProcessEdge.ring)
        let reloader = await KeyRingReloader(store: store, path: path, logger: Logger(label: "test")) {
            try KeyRing.parse(try String(contentsOfFile: path, encoding: .utf8))
        }
        let fresh = "key fresh \(InProcessEdge.base64url([UInt8](repeating: 0x77, count: 32))) 2026-12-01T00:00:00Z active\n"
        try fresh.write(toFile: path, atomically: true, encoding: .utf8)
        reloader.reload()
        #expect(store.current.signingKey?.kid == "fresh")
        try "key broken\n".write(toFile: path, atomically: true, encoding: .utf8)
        reloader.reload()
        #expect(store.current.signingKey?.kid == "fresh", "the previous ring stays in use")
        try FileManager.default.removeItem(atPath: path)
        reloader.reload()
        #expect(store.current.signingKey?.kid == "fresh")
    }
}
