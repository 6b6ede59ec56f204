import ClickdTestSupport
import Foundation
import LinkTracking
import Testing

@testable import TrackerEdge

/// The click route in process, through the edge's composition root (`InProcessEdge`): a real
/// port and a real log, no child process. Moved here from ClickdCommandTests/EdgeTests with
/// their assertions.
@Suite struct EdgeClickRouteTests {
    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let edge = try await InProcessEdge()
        let good = InProcessEdge.token()
        let connection = try HTTPTestConnection(port: edge.port)
        var batch = ""
        for target in ["/c/" + good, "/nothing", "/c/" + good, "/c/forged", "/c/" + good] {
            batch += "GET \(target) HTTP/1.1\r\nHost: t\r\nUser-Agent: pipelined\r\n\r\n"
        }
        batch += "HEAD /c/\(good) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        try connection.send(Array(batch.utf8))
        var statuses: [Int] = []
        for method in ["GET", "GET", "GET", "GET", "GET", "HEAD"] { statuses.append(try connection.readResponse(method: method).status) }
        #expect(statuses == [302, 404, 302, 404, 302, 302])
        let old = try HTTPTestConnection(port: edge.port)
        try old.send(Array("GET /c/\(good) HTTP/1.0\r\n\r\n".utf8))
        let response = try old.readResponse()
        #expect(response.status == 302 && response.header("Location") != nil && response.header("Connection") == "close")
        try await edge.stop()
        #expect(try edge.clicks().count == 5)
    }

    /// The click handler parses request heads itself: a head that arrives a few bytes at a
    /// time is answered once whole, the connection then serves the next request; a request
    /// that announces a body is answered and its connection closed (the body is never read).
    @Test func splitHeadsAndBodiesOverARealSocket() async throws {
        let edge = try await InProcessEdge()
        let good = InProcessEdge.token()
        let slow = try HTTPTestConnection(port: edge.port)
        let head = Array("GET /c/\(good) HTTP/1.1\r\nHost: t\r\nUser-Agent: slow client\r\n\r\n".utf8)
        var offset = 0
        while offset < head.count {
            let end = min(head.count, offset + 7)
            try slow.send(Array(head[offset..<end]))
            offset = end
            usleep(2_000)
        }
        #expect(try slow.readResponse().status == 302)
        #expect(try slow.request("GET", "/c/" + good).status == 302, "the connection is kept alive after a split head")
        let withBody = try HTTPTestConnection(port: edge.port)
        try withBody.send(Array("GET /c/\(good) HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".utf8))
        let answered = try withBody.readResponse()
        #expect(answered.status == 302 && answered.header("Connection") == "close")
        #expect(withBody.isClosedByPeer())
        try await edge.stop()
        let clicks = try edge.clicks()
        #expect(clicks.count == 3 && clicks[0].userAgent == "slow client")
    }

    /// Graceful shutdown (what SIGTERM starts) while a durable 302 waits for the log (a 100 ms
    /// group-commit delay holds it): the request already read is answered — its click on
    /// disk first — and its connection then closed; an idle keep-alive connection is closed
    /// at once; the edge stops within seconds.
    @Test func shutdownAnswersWhatWasReadThenClosesEveryConnection() async throws {
        let edge = try await InProcessEdge { $0.log.maxBatchDelay = .milliseconds(100) }
        let idle = try HTTPTestConnection(port: edge.port)
        #expect(try idle.request("GET", "/c/" + InProcessEdge.token(delivery: "idle")).status == 302)
        let waiting = try HTTPTestConnection(port: edge.port)
        try waiting.send(Array("GET /c/\(InProcessEdge.token(delivery: "in-flight")) HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
        try await Task.sleep(for: .milliseconds(30))  // read by the edge, waiting for the group commit
        let stopped = ContinuousClock.now
        async let stopping: Void = edge.stop()
        #expect(try waiting.readResponse().status == 302)
        #expect(waiting.isClosedByPeer())
        #expect(idle.isClosedByPeer())
        try await stopping
        #expect(ContinuousClock.now - stopped < .seconds(5))
        #expect(Set(try edge.clicks().map(\.token.deliveryID)) == ["idle", "in-flight"])
    }

    /// Time comes from the clock the composition root is given, never read inside: every
    /// click carries it, and the edge id and a HEAD's method are recorded.
    @Test func clicksCarryTheInjectedClock() async throws {
        let edge = try await InProcessEdge()
        let connection = try HTTPTestConnection(port: edge.port)
        #expect(try connection.request("GET", "/c/" + InProcessEdge.token(delivery: "a")).status == 302)
        #expect(try connection.request("HEAD", "/c/" + InProcessEdge.token(delivery: "b")).status == 302)
        try await edge.stop()
        let clicks = try edge.clicks()
        #expect(clicks.map(\.occurredAt) == [InProcessEdge.clock, InProcessEdge.clock])
        #expect(clicks.map(\.method) == [.get, .head])
        #expect(clicks.allSatisfy { $0.edgeID == "test-edge" })
    }
}
