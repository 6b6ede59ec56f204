import ClickdTestSupport
import Foundation
import LinkTracking
import Logging
import Testing

@testable import TrackerEdge

/// What SIGHUP does, without a signal: the reloader swaps in the ring the file holds, and
/// keeps the one in use when the file does not load (a real SIGHUP to a real edge:
/// ClickdCommandTests/EdgeSystemdTests).
@Suite struct HangupReloaderTests {
    @Test func aGoodFileReplacesTheRingAndABadOneLeavesItAsItIs() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.appending("keys")
        let store = KeyRingStore(InProcessEdge.ring)
        let egressPath = dir.appending("egress.csv")
        let egress = Swappable(AddressRanges.empty)
        let reloader = await HangupReloader(
            files: [
                .into(store, name: "key ring", path: path) { try KeyRing.parse(try String(contentsOfFile: path, encoding: .utf8)) },
                .into(egress, name: "Apple egress ranges", path: egressPath) {
                    try AddressRanges.parseCSV(try String(contentsOfFile: egressPath, encoding: .utf8))
                },
            ], logger: Logger(label: "test"))
        try "172.224.226.0/27,GB,GB-EN,London,\n".write(toFile: egressPath, atomically: true, encoding: .utf8)
        let fresh = "key fresh \(InProcessEdge.base64url([UInt8](repeating: 0x77, count: 32))) 2026-12-01T00:00:00Z active\n"
        try fresh.write(toFile: path, atomically: true, encoding: .utf8)
        reloader.reload()
        #expect(store.current.signingKey?.kid == "fresh")
        #expect(egress.current.contains([172, 224, 226, 9]) && !egress.current.contains([172, 224, 226, 32]))
        // Each file on its own: a broken egress file keeps its ranges, the ring still reloads.
        try "not a range,GB\n".write(toFile: egressPath, atomically: true, encoding: .utf8)
        try "key broken\n".write(toFile: path, atomically: true, encoding: .utf8)
        reloader.reload()
        #expect(store.current.signingKey?.kid == "fresh", "the previous ring stays in use")
        #expect(egress.current.contains([172, 224, 226, 9]), "the previous ranges stay in use")
        try FileManager.default.removeItem(atPath: path)
        reloader.reload()
        #expect(store.current.signingKey?.kid == "fresh")
    }
}
