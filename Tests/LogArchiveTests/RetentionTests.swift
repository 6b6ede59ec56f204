import EventLog
import LogArchive
import Testing

/// The retention rule as a plan (docs/design/archive.md, "The rule"): each condition
/// alone holds the oldest segment, and with it every later one.
@Suite struct RetentionTests {
    static let log = LogID("6f1c2e1a-0000-4000-8000-000000000001")!
    static let other = LogID("6f1c2e1a-0000-4000-8000-000000000002")!

    /// Three sealed segments (LSN 1–100, 101–200, 201–300), sealed at 1 000, 2 000 and
    /// 3 000 ms; it is 10 000 ms now.
    static func facts(archived: [Bool] = [true, true, true], followers: [FollowerFile.Entry]) -> Retention.Facts {
        var sealed: [Retention.Facts.Segment] = []
        for i in 0..<3 {
            let first = UInt64(i * 100 + 1)
            sealed.append(
                .init(name: SegmentName.fileName(firstLSN: first), lastLSN: first + 99, sealedAt: Int64(i + 1) * 1000, archived: archived[i]))
        }
        return Retention.Facts(sealed: sealed, followers: followers, logID: log, now: 10_000)
    }

    static func follower(_ database: String, neededFrom: UInt64, log: LogID = log) -> FollowerFile.Entry {
        .init(name: database, file: FollowerFile(logID: log, database: database, neededFrom: neededFrom, updated: 0))
    }

    static let names = (0..<3).map { SegmentName.fileName(firstLSN: UInt64($0 * 100 + 1)) }

    @Test func everyConditionHoldsTheOldestSegment() {
        let all = Self.facts(followers: [Self.follower("a", neededFrom: 301), Self.follower("b", neededFrom: 1000)])
        #expect(Retention.plan(all, keepLocal: .seconds(1), archiving: true) == .init(remove: Self.names, waitsFor: nil))

        // The slowest follower holds from the segment holding its needed_from on.
        let slow = Self.facts(followers: [Self.follower("a", neededFrom: 150), Self.follower("b", neededFrom: 1000)])
        let held = Retention.plan(slow, keepLocal: .seconds(1), archiving: true)
        #expect(held.remove == [Self.names[0]])
        #expect(held.waitsFor?.contains("follower a") == true)

        // A needed_from at a segment's last LSN keeps it (it is read again).
        let edge = Self.facts(followers: [Self.follower("a", neededFrom: 100)])
        #expect(Retention.plan(edge, keepLocal: .zero, archiving: true).remove.isEmpty)

        // Not archived: held (and the ones after it, though archived), unless archiving is off.
        let unarchived = Self.facts(archived: [true, false, true], followers: [Self.follower("a", neededFrom: 301)])
        #expect(Retention.plan(unarchived, keepLocal: .zero, archiving: true).remove == [Self.names[0]])
        #expect(Retention.plan(unarchived, keepLocal: .zero, archiving: false).remove == Self.names)

        // --keep-local: sealed 9 s, 8 s, 7 s ago.
        let young = Self.facts(followers: [Self.follower("a", neededFrom: 301)])
        let kept = Retention.plan(young, keepLocal: .milliseconds(7500), archiving: true)
        #expect(kept.remove == Self.names.prefix(2).map { $0 })
        #expect(kept.waitsFor?.contains("--keep-local") == true)
    }

    /// No follower file, one that does not parse, or one of another log: nothing goes.
    @Test func withoutTrustworthyFollowersNothingIsRemoved() {
        for followers in [
            [], [FollowerFile.Entry(name: "junk", file: nil)],
            [Self.follower("a", neededFrom: 301), Self.follower("b", neededFrom: 301, log: Self.other)],
        ] {
            let plan = Retention.plan(Self.facts(followers: followers), keepLocal: .zero, archiving: true)
            #expect(plan.remove.isEmpty)
            #expect(plan.waitsFor != nil)
        }
    }

    @Test func followerFilesRoundTripAndRejectJunk() {
        let file = FollowerFile(logID: Self.log, database: "0b3e-77", neededFrom: 48_213, updated: 1_765_100_000_000)
        #expect(FollowerFile.parse(String(decoding: file.encoded(), as: UTF8.self)) == file)
        #expect(FollowerFile.parse("clickd-follower\nlog_id \(Self.log)\ndatabase ../etc\nneeded_from 5\nupdated 1\n") == nil)
        #expect(FollowerFile.parse("clickd-follower\nlog_id \(Self.log)\ndatabase a\nneeded_from 0\nupdated 1\n") == nil)
        #expect(FollowerFile.parse("clickd-follower\nlog_id \(Self.log)\ndatabase a\nneeded_from 99999999999999999999\nupdated 1\n") == nil)
        #expect(FollowerFile.parse("something else") == nil)
    }
}
