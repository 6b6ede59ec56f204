import LinkTracking
import Testing

@testable import Projections

/// The fold is pure: events in, deltas out, no database.
@Suite struct ProjectionFoldTests {
    typealias Batch = ProjectionBatch

    static func fold(_ fold: inout ProjectionFold, _ events: [(lsn: UInt64, event: LinkTracking.TrackingEvent)]) -> Batch {
        var batch = Batch()
        for (lsn, event) in events {
            EventCodec.encode(event).withUnsafeBytes { fold.fold(lsn: lsn, payload: $0, into: &batch) }
        }
        return batch
    }

    static let link = Batch.LinkKey(sourceKind: "campaign", sourceID: "17", linkID: "A")

    /// Issue 12: text PostgreSQL cannot store (U+0000) and records the database refused are
    /// dead letters, and the classifier never sees them (so a rebuild classifies the same).
    @Test func nulCharactersAndRefusedRecordsAreDeadLettersTheClassifierNeverSees() {
        var f = ProjectionFold()
        f.refused[3] = "PostgreSQL refused the record (SQLSTATE 54000, a program limit exceeded)"
        let batch = Self.fold(
            &f,
            [
                (1, IngestTests.click(60_000, customer: "ann\u{0}", delivery: "d1", link: "A")),
                (2, IngestTests.delivered(0, customer: "bob", delivery: "d\u{0}2")),
                (3, IngestTests.click(60_100, customer: "cy", delivery: "d3", link: "B")),
                (4, IngestTests.click(60_200, customer: "cy", delivery: "d3", link: "C", ua: "nul\u{0}agent")),
                (5, IngestTests.click(60_300, customer: "cy", delivery: "d3", link: "A")),
            ])
        #expect(batch.deadLetters.map(\.lsn) == [1, 2, 3, 4])
        #expect(
            batch.deadLetters.map(\.error) == [
                "customer id holds a NUL character, which PostgreSQL text cannot store",
                "delivery id holds a NUL character, which PostgreSQL text cannot store",
                "PostgreSQL refused the record (SQLSTATE 54000, a program limit exceeded)",
                "user agent holds a NUL character, which PostgreSQL text cannot store",
            ])
        // Three links of delivery d3 within a second would be a burst; two of them are dead letters.
        #expect(batch.activity.map(\.lsn) == [5] && batch.activity[0].human == true)
    }

    @Test func deliveriesAndClicksBecomeOneDeltaPerKey() {
        var f = ProjectionFold()
        let batch = Self.fold(
            &f,
            [
                (1, IngestTests.delivered(0, customer: "ann", delivery: "d1")),
                (2, IngestTests.delivered(10, customer: "bob", delivery: "d2")),
                (3, IngestTests.click(60_000, customer: "ann", delivery: "d1", link: "A")),
                (4, IngestTests.click(120_000, customer: "ann", delivery: "d1", link: "A")),
                (5, IngestTests.click(180_000, customer: "bob", delivery: "d2", link: "A", method: .head)),
            ])
        #expect(batch.lastLSN == 5)
        #expect(batch.activity.map(\.lsn) == [1, 2, 3, 4, 5])
        #expect(batch.activity.map(\.kind) == ["delivered", "delivered", "clicked_link", "clicked_link", "clicked_link"])
        #expect(batch.activity.map(\.human) == [nil, nil, true, true, false])
        #expect(batch.activity[4].botReason == "prefetch")
        #expect(batch.activity[2].url == "https://shop.example.com/A" && batch.activity[2].ip == [203, 0, 113, 0])

        #expect(batch.links.count == 1)
        let totals = batch.links[Self.link]!
        #expect((totals.total, totals.human) == (3, 2))
        #expect((totals.first, totals.last) == (IngestTests.t0 + 60_000, IngestTests.t0 + 180_000))
        #expect(totals.url == "https://shop.example.com/A")

        #expect(batch.clickers.count == 2)
        let ann = batch.clickers[.init(link: Self.link, customerID: "ann")]!
        #expect((ann.total, ann.human, ann.first, ann.last) == (2, 2, IngestTests.t0 + 60_000, IngestTests.t0 + 120_000))
        let bob = batch.clickers[.init(link: Self.link, customerID: "bob")]!
        #expect((bob.total, bob.human) == (1, 0))

        #expect(batch.sources.count == 1)
        let source = batch.sources[.init(sourceKind: "campaign", sourceID: "17")]!
        #expect((source.delivered, source.clicks, source.human) == (2, 3, 2))
        #expect(batch.corrections.isEmpty && batch.deadLetters.isEmpty)
    }

    /// A burst found by a later click turns the earlier clicks into bot clicks: in place
    /// when they are in the same batch, as corrections of earlier batches otherwise.
    @Test func aBurstCorrectsItsEarlierClicks() {
        let clicks: [(lsn: UInt64, event: LinkTracking.TrackingEvent)] = [
            (1, IngestTests.click(60_000, customer: "ann", delivery: "d1", link: "A")),
            (2, IngestTests.click(60_300, customer: "ann", delivery: "d1", link: "B")),
            (3, IngestTests.click(60_600, customer: "ann", delivery: "d1", link: "C")),
        ]
        var whole = ProjectionFold()
        let one = Self.fold(&whole, clicks)
        #expect(one.activity.map(\.human) == [false, false, false])
        #expect(one.activity.map(\.botReason) == ["burst", "burst", "burst"])
        #expect(one.corrections.isEmpty)
        #expect(one.links.values.map(\.human) == [0, 0, 0] && one.links.values.map(\.total) == [1, 1, 1])

        var split = ProjectionFold()
        let first = Self.fold(&split, Array(clicks[0..<2]))
        #expect(first.activity.map(\.human) == [true, true])
        let second = Self.fold(&split, [clicks[2]])
        #expect(second.activity.map(\.botReason) == ["burst"])
        #expect(second.corrections.map(\.lsn) == [1, 2] && second.corrections.allSatisfy { $0.reason == "burst" })
        let a = Batch.LinkKey(sourceKind: "campaign", sourceID: "17", linkID: "A")
        #expect((second.links[a]!.total, second.links[a]!.human) == (0, -1))
        #expect(second.clickers[.init(link: a, customerID: "ann")]!.human == -1)
        // The source loses the two human clicks its earlier batch counted.
        let source = Batch.SourceKey(sourceKind: "campaign", sourceID: "17")
        #expect(one.sources[source]!.human == 0 && first.sources[source]!.human == 2)
        #expect((second.sources[source]!.clicks, second.sources[source]!.human) == (1, -2))
        // Summed, the two batches say what the one batch says.
        for key in one.links.keys {
            #expect(first.links[key, default: .init()].human + second.links[key]!.human == one.links[key]!.human)
        }
    }

    /// Opens: every reason counted where it belongs, a person's opens (an image proxy's
    /// too) and human clicks make a customer an opener, a burst correction takes the click
    /// back from the openers as from the clickers, and an open corrects nothing.
    @Test func opensAreCountedByReasonAndAClickIsAnOpen() {
        let source = Batch.SourceKey(sourceKind: "campaign", sourceID: "17")
        func opener(_ c: String) -> Batch.SourceClickerKey { .init(source: source, customerID: c) }
        var f = ProjectionFold()
        let batch = Self.fold(
            &f,
            [
                (1, IngestTests.opened(10_000, customer: "ann", delivery: "d1")),
                (2, IngestTests.opened(11_000, customer: "ann", delivery: "d1", ua: "Mozilla/5.0")),
                (3, IngestTests.opened(12_000, customer: "bob", delivery: "d2", ua: "x (via ggpht.com GoogleImageProxy)")),
                (4, IngestTests.opened(13_000, customer: "cy", delivery: "d3", appleRelay: true)),
                (5, IngestTests.opened(14_000, customer: "cy", delivery: "d3", ua: "Mimecast Link Scanner")),
                (6, IngestTests.opened(15_000, customer: "dee", delivery: "d4", issued: 12_000)),
                (7, IngestTests.click(60_000, customer: "eve", delivery: "d5", link: "A")),
            ])
        #expect(batch.activity.map(\.kind) == Array(repeating: "opened_email", count: 6) + ["clicked_link"])
        #expect(batch.activity.map(\.openReason) == [nil, "apple_mpp", "image_proxy", "apple_mpp", "scanner", "prefetch", nil])
        #expect(batch.activity.prefix(6).allSatisfy { $0.human == nil && $0.botReason == nil && $0.linkID == nil })
        #expect(batch.sources[source]!.opens == 6 && batch.sources[source]!.machineOpens == 4)
        #expect(batch.sourceOpeners == [opener("ann"): 1, opener("bob"): 1, opener("eve"): 1])
        #expect(batch.sourceClickers == [opener("eve"): 1])
        #expect(
            batch.openDaily.map { "\($0.key.reason)=\($0.value)" }.sorted() == ["apple_mpp=2", "image_proxy=1", "prefetch=1", "scanner=1"])
        #expect(batch.hourly.values.reduce(0) { $0 + $1.opens } == 6 && batch.hourly.values.reduce(0) { $0 + $1.personOpens } == 2)
        #expect(batch.corrections.isEmpty && f.replayStart != nil)

        // eve's click, then two more within a second: a burst takes her human click back
        // from the openers too (her opener row goes to 0 and is removed at write).
        let later = Self.fold(
            &f,
            [
                (8, IngestTests.click(60_300, customer: "eve", delivery: "d5", link: "B")),
                (9, IngestTests.click(60_600, customer: "eve", delivery: "d5", link: "C")),
            ])
        #expect(later.sourceOpeners == [opener("eve"): -1] && later.sourceClickers == [opener("eve"): -1])
    }

    @Test func undecodableRecordsBecomeDeadLetters() {
        var f = ProjectionFold()
        var batch = Batch()
        let garbage: [UInt8] = [0xFF, 0x00, 0x13]
        garbage.withUnsafeBytes { f.fold(lsn: 7, payload: $0, into: &batch) }
        EventCodec.encode(IngestTests.delivered(0, customer: "ann", delivery: "d1")).withUnsafeBytes { f.fold(lsn: 8, payload: $0, into: &batch) }
        // A time no timestamptz holds (an edge's clock gone wild) is not projected either.
        let farFuture = IngestTests.click(UInt64.max - IngestTests.t0, customer: "ann", delivery: "d1", link: "A")
        EventCodec.encode(farFuture).withUnsafeBytes { f.fold(lsn: 9, payload: $0, into: &batch) }
        #expect(batch.deadLetters.map(\.lsn) == [7, 9])
        #expect(batch.deadLetters.first?.payload == garbage)
        #expect(batch.deadLetters.first?.error.isEmpty == false)
        #expect(batch.deadLetters.last?.error == "occurred_at \(UInt64.max) ms is after the year 9999")
        #expect(batch.activity.map(\.lsn) == [8] && batch.lastLSN == 9)
    }

    /// `link_key` (migration 0004 computes the same function in SQL for rows it carries over;
    /// MigrationTests checks the two agree). Vectors from Python's hashlib.
    @Test func linkNumbersAreAFunctionOfTheKey() {
        #expect(Batch.LinkKey(sourceKind: "campaign", sourceID: "src_1", linkID: "link-4").number == "e983acb8-51db-98b1-beb1-74b6dfee22db")
        #expect(Batch.LinkKey(sourceKind: "newsletter", sourceID: "é,1:x", linkID: "").number == "729aa0b7-606e-3506-8762-428fe7dcfba2")
        // Lengths keep fields apart: ("a", "bc") and ("ab", "c") differ.
        #expect(Batch.LinkKey(sourceKind: "campaign", sourceID: "a", linkID: "bc").number == "225c4691-ff43-59bc-5dc4-df161330d007")
        #expect(Batch.LinkKey(sourceKind: "campaign", sourceID: "ab", linkID: "c").number == "cba6bb19-75e5-96c6-b37c-cc927c6c580b")
    }
}
