import ClickdTestSupport
import Dispatch
import Foundation

/// Clicks (or, with `opens`, pixel fetches) sent to an edge from `workers` connections until
/// `stop`, each with a delivery id of its own (`<prefix>-w<worker>-<n>`): the ids answered
/// (302, or the pixel's 200) are what a kill -9 test holds the log to.
final class ClickLoad: Sendable {
    private let answeredIDs = Locked<[String]>([])
    private let stopped = Locked(false)
    private let group = DispatchGroup()

    init(port: Int, workers: Int, prefix: String, opens: Bool = false) {
        for worker in 0..<workers {
            // A thread each, not Dispatch's pool: its workers block on their sockets, and
            // under a loaded suite the pool let some start only after the edge was killed.
            group.enter()
            Thread { [answeredIDs, stopped, group] in
                defer { group.leave() }
                guard let connection = try? HTTPTestConnection(port: port, timeoutSeconds: 5) else { return }
                var i = 0
                while !stopped.value {
                    let delivery = "\(prefix)-w\(worker)-\(i)"
                    i += 1
                    let target = opens ? "/o/" + EdgeTests.openToken(delivery: delivery) : "/c/" + EdgeTests.token(delivery: delivery)
                    guard let response = try? connection.request("GET", target) else { return }
                    if response.status == (opens ? 200 : 302) { answeredIDs.mutate { $0.append(delivery) } }
                }
            }.start()
        }
    }

    /// The delivery ids answered so far.
    var answered: [String] { answeredIDs.value }

    /// Stops the workers (after the edge is gone, each ends at its next failed request)
    /// and returns every id answered.
    func stop() -> [String] {
        stopped.mutate { $0 = true }
        group.wait()
        return answeredIDs.value
    }
}
