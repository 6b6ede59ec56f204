import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Logging
import Testing

@testable import Projections

/// The shard function (docs/design/sharding.md) and what rests on it.
@Suite(.ownThreads) struct ShardingTests {
    typealias I = IngestTests

    static let oddIDs = [
        "", "a", "cust-1", "CUST-1", "é", "e\u{301}", "日本語", "😀👩‍👩‍👧", "a\u{1}b", "tab\there", "O'Brien", "\"quoted\"",
        "\u{202E}evil", " spaced ", "%00", "\\x00", String(repeating: "long-", count: 400), "Ω≈ç√∫", "\u{FEFF}bom",
    ]

    /// Swift and SQL agree on every id and shard count (the migration and any analyst's
    /// `clickd.shard_of` must find the rows where the daemon put them).
    @Test func swiftAndSQLAgree() throws {
        let url = try I.database()
        let db = try PostgresConnection(url)
        defer { db.close() }
        var ids = Self.oddIDs
        var rng = SplitMix64(seed: 77)
        for _ in 0..<200 { ids.append("c\(UInt64.random(in: 0...UInt64.max, using: &rng))") }
        for shards in [1, 2, 7, 32, 1000, 1024] {
            for id in ids {
                let sql = try db.query("SELECT clickd.shard_of($1, $2)", [id, String(shards)])[0][0]
                #expect(sql == String(ShardFunction.shard(ofCustomer: id, shards: shards)), "\(id.debugDescription) with \(shards) shards")
            }
        }
        // Spread: 32 shards over 10,000 ids, none more than 1.5 times its share.
        var counts = [Int](repeating: 0, count: 32)
        for i in 0..<10_000 { counts[ShardFunction.shard(ofCustomer: "customer-\(i)", shards: 32)] += 1 }
        #expect(counts.max()! < 10_000 / 32 * 3 / 2 && counts.min()! > 10_000 / 32 / 2, "\(counts)")
    }

    /// A record's shard is its customer's, read from its bytes whether or not the rest
    /// decodes; a record that does not reach a customer field is in shard `lsn mod S`.
    @Test func aRecordsShardIsItsCustomers() {
        for id in Self.oddIDs {
            for event in [I.click(5, customer: id, delivery: "d", link: "l"), I.delivered(5, customer: id, delivery: "d")] {
                let bytes = EventCodec.encode(event)
                let expected = ShardFunction.shard(ofCustomer: id, shards: 32)
                #expect(bytes.withUnsafeBytes { ShardFunction.shard(ofRecord: $0, lsn: 99, shards: 32) } == expected)
                // Every prefix: the customer's shard once the field is whole, else lsn mod S.
                for cut in 0..<bytes.count {
                    let prefix = Array(bytes[..<cut])
                    let shard = prefix.withUnsafeBytes { ShardFunction.shard(ofRecord: $0, lsn: 1_000_003, shards: 32) }
                    let reaches = prefix.withUnsafeBytes { EventCodec.customerField($0) } != nil
                    #expect(shard == (reaches ? expected : 1_000_003 % 32))
                }
            }
        }
        let garbage: [UInt8] = [0xde, 0xad]
        #expect(garbage.withUnsafeBytes { ShardFunction.shard(ofRecord: $0, lsn: 70, shards: 32) } == 70 % 32)
    }

    /// The burst rule looks at one delivery, and a delivery is one person's: classifying
    /// each shard's clicks apart gives every click the verdict it gets in the whole log
    /// (times that never step back, as an edge's clock), for any shard count.
    @Test func classifyingPerShardEqualsClassifyingTheWholeLog() {
        let records = WorkersTests.burstyRecords(events: 20_000, seed: 3)
        func verdicts(shards: Int) -> [UInt64: String] {
            var classifiers = [ClickClassifier](repeating: ClickClassifier(), count: shards)
            var result: [UInt64: String] = [:]
            for (i, bytes) in records.enumerated() {
                let lsn = UInt64(i + 1)
                guard case .click(let click) = try? EventCodec.decode(bytes) else { continue }
                let shard = ShardFunction.shard(ofCustomer: click.token.customerID, shards: shards)
                let (verdict, corrections) = classifiers[shard].classify(lsn: lsn, click)
                result[lsn] = verdict.botReason?.rawValue ?? "human"
                for correction in corrections { result[correction.lsn] = correction.botReason?.rawValue ?? "human" }
            }
            return result
        }
        let whole = verdicts(shards: 1)
        #expect(whole.values.filter { $0 == "burst" }.count > 100)
        #expect(whole.values.filter { $0 == "human" }.count > 1000)
        for shards in [2, 7, 32] { #expect(verdicts(shards: shards) == whole, "\(shards) shards") }
    }
}
