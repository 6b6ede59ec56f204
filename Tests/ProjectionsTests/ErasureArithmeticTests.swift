import LinkTracking
import Testing

@testable import Projections

/// The premise of erasure (docs/design/erasure.md, 2a), checked before it is built on: a
/// person's records change no one else's figures but through sums. So the fold of a log
/// less the fold of one person's records alone equals the fold of the log without them —
/// every counter, distinct-count delta and activity verdict — bursts, prefetches, scanners
/// and opens of every reason included.
@Suite struct ErasureArithmeticTests {
    typealias Batch = ProjectionBatch

    static func fold(_ records: [(lsn: UInt64, payload: [UInt8])]) -> Batch {
        var fold = ProjectionFold()
        var batch = Batch()
        for (lsn, payload) in records { payload.withUnsafeBytes { fold.fold(lsn: lsn, payload: $0, into: &batch) } }
        return batch
    }

    static func customer(_ payload: [UInt8]) -> String? {
        payload.withUnsafeBytes { EventCodec.customerField($0).map { String(decoding: $0, as: UTF8.self) } }
    }

    /// `a - b` per key, keys whose every figure is 0 left out.
    static func minus<K: Hashable>(_ a: [K: Int64], _ b: [K: Int64]) -> [K: Int64] {
        var out = a
        for (k, v) in b { out[k, default: 0] -= v }
        return out.filter { $0.value != 0 }
    }

    @Test(arguments: ["c7", "c42", "c199"]) func aLogLessOnePersonsOwnFoldIsTheLogWithoutThem(_ person: String) {
        let records: [(lsn: UInt64, payload: [UInt8])] = WorkersTests.burstyRecords(events: 6_000, seed: 61).enumerated().map {
            (lsn: UInt64($0.offset + 1), payload: $0.element)
        }
        let theirs = records.filter { Self.customer($0.payload) == person }
        let others = records.filter { Self.customer($0.payload) != person }
        #expect(theirs.count > 10, "\(person) has records of every kind to erase")
        let (all, alone, without) = (Self.fold(records), Self.fold(theirs), Self.fold(others))

        // Sums: links, clickers, sources, per-customer counts, days, hours, reasons.
        func links(_ b: Batch) -> [String: Int64] {
            var out: [String: Int64] = [:]
            for (k, c) in b.links { (out["\(k) total"], out["\(k) human"]) = (c.total, c.human) }
            for (k, c) in b.clickers { (out["\(k) clicks"], out["\(k) humanClicks"]) = (c.total, c.human) }
            for (k, c) in b.sources {
                for (name, v) in [
                    ("delivered", c.delivered), ("clicks", c.clicks), ("human", c.human), ("opens", c.opens), ("machine", c.machineOpens),
                ] {
                    out["\(k) \(name)"] = v
                }
            }
            for (k, v) in b.sourceClickers { out["\(k) sourceClicker"] = v }
            for (k, v) in b.sourceOpeners { out["\(k) sourceOpener"] = v }
            for (k, c) in b.daily { (out["\(k) dayTotal"], out["\(k) dayHuman"]) = (c.total, c.human) }
            for (k, c) in b.hourly {
                for (name, v) in [("d", c.delivered), ("t", c.total), ("h", c.human), ("o", c.opens), ("p", c.personOpens)] {
                    out["\(k) hour \(name)"] = v
                }
            }
            for (k, v) in b.botDaily { out["\(k) bot"] = v }
            for (k, v) in b.openDaily { out["\(k) openReason"] = v }
            return out.filter { $0.value != 0 }
        }
        #expect(links(all) != links(without), "the person counts somewhere")
        #expect(Self.minus(links(all), links(alone)) == links(without))
        // Activity: the others' rows, verdicts (human, bot reason, open reason) as without the person.
        func rows(_ b: Batch) -> [String] {
            b.activity.filter { $0.customerID != person }.map {
                "\($0.lsn) \($0.kind) \($0.human.map(String.init) ?? "-") \($0.botReason ?? "-") \($0.openReason ?? "-")"
            }
        }
        #expect(rows(all) == rows(without))
        #expect(alone.activity.allSatisfy { $0.customerID == person } && alone.activity.count == theirs.count - alone.deadLetters.count)
        // And the person had a burst, a bot click and a machine open to take away.
        #expect(alone.activity.contains { $0.botReason == "burst" } || alone.activity.contains { $0.human == false })
        #expect(alone.activity.contains { $0.openReason != nil })
    }
}
