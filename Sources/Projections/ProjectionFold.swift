import Crypto
import EventLog
import LinkTracking

/// The deltas one batch of one log adds to the projections — computed in memory, pure,
/// so that each table gets one upsert per key (docs/design/ingest.md).
public struct ProjectionBatch: Sendable {
    public struct ActivityRow: Sendable, Equatable {
        public var lsn: UInt64
        public var customerID: String
        public var occurredAt: UInt64  // ms
        public var kind: String  // clicked_link | delivered | opened_email
        public var deliveryID: String
        public var sourceKind: String
        public var sourceID: String
        public var messageType: String
        public var linkID: String?
        public var url: String?
        public var human: Bool?
        public var botReason: String?
        public var userAgent: String?
        public var ip: [UInt8]
        /// An open's reason (`OpenClassifier.Reason`), nil for a person's own fetch and for
        /// other kinds; an open's `human` and `botReason` are nil (they are about clicks).
        public var openReason: String? = nil
    }

    public struct LinkKey: Hashable, Comparable, Sendable {
        public var sourceKind: String, sourceID: String, linkID: String
        public static func < (a: Self, b: Self) -> Bool { (a.sourceKind, a.sourceID, a.linkID) < (b.sourceKind, b.sourceID, b.linkID) }

        /// The link's number, `link_key` in `link_totals` and `link_clickers` (migration
        /// 0004): the first 16 bytes of SHA-256 over the three fields as netstrings
        /// (`8:campaign,5:src_1,6:link-4,`, lengths in UTF-8 bytes), written as a UUID. A
        /// function of the key alone, so every daemon and every rebuild numbers a link the
        /// same way without asking the database; 128 bits make two links sharing a number
        /// as unlikely as two git objects sharing a name.
        public var numberBytes: [UInt8] { ProjectionBatch.keyNumber([sourceKind, sourceID, linkID]) }

        /// `numberBytes` as PostgreSQL writes a uuid.
        public var number: String { LogID.uuidText(numberBytes) }
    }
    /// The first 16 bytes of SHA-256 over `fields` as netstrings (`8:campaign,5:src_1,`):
    /// a key's number, the same in SQL (migrations 0004 and 0005).
    public static func keyNumber(_ fields: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count + 8 })
        for field in fields {
            bytes += String(field.utf8.count).utf8
            bytes.append(UInt8(ascii: ":"))
            bytes += field.utf8
            bytes.append(UInt8(ascii: ","))
        }
        return Array(SHA256.hash(data: bytes).prefix(16))
    }

    public struct ClickerKey: Hashable, Comparable, Sendable {
        public var link: LinkKey, customerID: String
        public static func < (a: Self, b: Self) -> Bool { (a.link, a.customerID) < (b.link, b.customerID) }
    }
    public struct SourceKey: Hashable, Comparable, Sendable {
        public var sourceKind: String, sourceID: String
        public static func < (a: Self, b: Self) -> Bool { (a.sourceKind, a.sourceID) < (b.sourceKind, b.sourceID) }
        /// `source_key` in `source_totals` and `source_clickers` (migration 0005).
        public var numberBytes: [UInt8] { ProjectionBatch.keyNumber([sourceKind, sourceID]) }
    }
    public struct SourceClickerKey: Hashable, Sendable {
        public var source: SourceKey, customerID: String
    }
    /// A source and a UTC hour (hours since the epoch): `source_hourly` (migration 0006), for
    /// charts by the hour.
    public struct HourlyKey: Hashable, Sendable {
        public var source: SourceKey, hour: Int64
    }
    /// A source, a UTC day (days since 1970-01-01) and a reason: a bot click's in `bot_daily`
    /// (migration 0006), for bot clicks by reason over a range of days, or an open's (never a
    /// person's own fetch) in `open_daily` (migration 0010).
    public struct ReasonDailyKey: Hashable, Sendable {
        public var source: SourceKey, day: Int64, reason: String
    }
    /// A source's deltas: deliveries, clicks, human clicks, opens, machine opens.
    public struct SourceCounts: Sendable, Equatable {
        public var delivered: Int64 = 0, clicks: Int64 = 0, human: Int64 = 0, opens: Int64 = 0, machineOpens: Int64 = 0
    }
    /// A source's deltas in one hour: deliveries, clicks, human clicks, opens, a person's opens.
    public struct HourCounts: Sendable, Equatable {
        public var delivered: Int64 = 0, total: Int64 = 0, human: Int64 = 0, opens: Int64 = 0, personOpens: Int64 = 0
    }
    /// A link and a UTC day (days since 1970-01-01).
    public struct DailyKey: Hashable, Sendable {
        public var link: LinkKey, day: Int64
    }

    public struct Counts: Sendable, Equatable {
        public var total: Int64 = 0
        public var human: Int64 = 0
        public var first: UInt64? = nil
        public var last: UInt64? = nil
        public var url: String? = nil

        mutating func add(total: Int64, human: Int64, at: UInt64?) {
            self.total += total
            self.human += human
            if let at {
                first = min(first ?? at, at)
                last = max(last ?? at, at)
            }
        }
    }

    public var activity: [ActivityRow] = []
    /// Clicks of earlier batches that this batch turned into bot clicks.
    public var corrections: [(lsn: UInt64, reason: String)] = []
    public var links: [LinkKey: Counts] = [:]
    public var clickers: [ClickerKey: Counts] = [:]
    public var sources: [SourceKey: SourceCounts] = [:]
    /// Changes of each (source, customer)'s human clicks (none for a change of 0).
    public var sourceClickers: [SourceClickerKey: Int64] = [:]
    /// Changes of each (source, customer)'s opens as a person, a human click counting as one
    /// (a person who clicked opened): the opened-customer count moves with them.
    public var sourceOpeners: [SourceClickerKey: Int64] = [:]
    /// Opens per source, day and reason (a person's own fetches not kept here).
    public var openDaily: [ReasonDailyKey: Int64] = [:]
    /// Clicks per link and day: (total, human).
    public var daily: [DailyKey: (total: Int64, human: Int64)] = [:]
    /// Deliveries, clicks, human clicks, opens and a person's opens per source and hour.
    public var hourly: [HourlyKey: HourCounts] = [:]
    /// Bot clicks per source, day and reason.
    public var botDaily: [ReasonDailyKey: Int64] = [:]
    /// The records folded into this batch, and the first one's LSN.
    public var records = 0
    public var firstLSN: UInt64 = 0
    public var deadLetters: [(lsn: UInt64, error: String, payload: [UInt8])] = []
    /// Where each click's row is in `activity`, for corrections within the batch.
    var rowOfLSN: [UInt64: Int] = [:]
    /// The last LSN folded.
    public var lastLSN: UInt64 = 0
}

/// Folds a log's records, in order, into `ProjectionBatch`es, classifying clicks on the way.
/// One fold per log; its classifier state carries across batches.
public struct ProjectionFold: Sendable {
    public private(set) var classifier = ClickClassifier()
    /// Clicks still inside the classifier's window, for corrections.
    private var window: [UInt64: ClickEvent] = [:]
    /// The window is pruned when it grows past this. A worker holds one fold per (log,
    /// shard) it owns, so the floor is per shard: 4096 clicks of ~700 bytes in each of 16
    /// shards kept ~90 MB of long-closed clicks alive in a 2-worker daemon (issue 13).
    private static let windowFloor = 256
    private var windowLimit = Self.windowFloor

    /// Records the database refused for their content (found by isolating them, see
    /// `Ingestor`), with its error: folded as dead letters, so that neither the batch nor
    /// the classifier sees them again.
    public var refused: [UInt64: String] = [:]

    /// The erased people whose records this fold drops, as if the log had never held them
    /// (docs/design/erasure.md, 2a); each customer's answer remembered (one HMAC per
    /// person, not per record).
    public var erased = ErasureMatcher.none

    /// Activity before this instant (ms) has been dropped by the retention
    /// (`clickd_ingest.activity_retention.dropped_before`): a record older keeps counting in
    /// every counter but writes no activity row — a rebuild brings no dropped month back.
    public var activityFrom: UInt64 = 0

    public init() {}

    /// Appends an activity row unless the retention has dropped its month; returns its index.
    @discardableResult
    private func keep(_ row: ProjectionBatch.ActivityRow, in batch: inout ProjectionBatch) -> Int? {
        guard row.occurredAt >= activityFrom else { return nil }
        batch.activity.append(row)
        return batch.activity.count - 1
    }

    /// Where a restarted fold must start re-reading (see `ClickClassifier.oldestOpenLSN`).
    public var replayStart: UInt64? { classifier.oldestOpenLSN }

    /// Feeds a record that was already projected (rebuilding state after a restart).
    public mutating func replay(lsn: UInt64, payload: UnsafeRawBufferPointer) {
        var ignored = ProjectionBatch()
        fold(lsn: lsn, payload: payload, into: &ignored)
    }

    public mutating func fold(lsn: UInt64, payload: UnsafeRawBufferPointer, into batch: inout ProjectionBatch) {
        if batch.records == 0 { batch.firstLSN = lsn }
        batch.records += 1
        batch.lastLSN = lsn
        // A redaction record (an erased person's, rewritten) counts for nothing and is no dead letter.
        if EventCodec.isRedaction(payload) { return }
        if erased.holds(record: payload) { return }
        let event: TrackingEvent
        do {
            event = try EventCodec.decode(payload)
        } catch {
            batch.deadLetters.append((lsn, error.message, Array(payload)))
            return
        }
        if let field = Self.fieldHoldingNUL(event) {
            // Valid UTF-8, but PostgreSQL's text cannot hold U+0000 (22021): the whole batch
            // would be refused, for ever. Known before sending, so decided here, purely.
            batch.deadLetters.append((lsn, "\(field) holds a NUL character, which PostgreSQL text cannot store", Array(payload)))
            return
        }
        if let error = refused[lsn] {
            batch.deadLetters.append((lsn, error, Array(payload)))
            return
        }
        switch event {
        case .delivered(let d):
            keep(
                .init(
                    lsn: lsn, customerID: d.customerID, occurredAt: d.occurredAt, kind: "delivered",
                    deliveryID: d.deliveryID, sourceKind: d.sourceKind.name, sourceID: d.sourceID,
                    messageType: d.messageType.name, linkID: nil, url: nil, human: nil, botReason: nil,
                    userAgent: nil, ip: []), in: &batch)
            let source = ProjectionBatch.SourceKey(sourceKind: d.sourceKind.name, sourceID: d.sourceID)
            batch.sources[source, default: .init()].delivered += 1
            batch.hourly[.init(source: source, hour: Int64(d.occurredAt / Self.msPerHour)), default: .init()].delivered += 1
        case .opened(let o):
            // A pure function of the record: no window, nothing to correct later.
            let reason = OpenClassifier.reason(o)
            let persons = reason?.isPersons ?? true
            keep(
                .init(
                    lsn: lsn, customerID: o.token.customerID, occurredAt: o.occurredAt, kind: "opened_email",
                    deliveryID: o.token.deliveryID, sourceKind: o.token.sourceKind.name, sourceID: o.token.sourceID,
                    messageType: o.token.messageType.name, linkID: nil, url: nil, human: nil, botReason: nil,
                    userAgent: o.userAgent, ip: o.clientIP, openReason: reason?.rawValue), in: &batch)
            let source = ProjectionBatch.SourceKey(sourceKind: o.token.sourceKind.name, sourceID: o.token.sourceID)
            batch.sources[source, default: .init()].opens += 1
            if !persons { batch.sources[source]!.machineOpens += 1 }
            let hour = ProjectionBatch.HourlyKey(source: source, hour: Int64(o.occurredAt / Self.msPerHour))
            batch.hourly[hour, default: .init()].opens += 1
            if persons {
                batch.hourly[hour]!.personOpens += 1
                batch.sourceOpeners[.init(source: source, customerID: o.token.customerID), default: 0] += 1
            }
            if let reason {
                batch.openDaily[.init(source: source, day: Int64(o.occurredAt / Self.msPerDay), reason: reason.rawValue), default: 0] += 1
            }
        case .click(let c):
            let (verdict, corrections) = classifier.classify(lsn: lsn, c)
            window[lsn] = c
            for correction in corrections {
                guard let earlier = window[correction.lsn] else { continue }
                let reason = correction.botReason?.rawValue ?? "burst"
                if let row = batch.rowOfLSN[correction.lsn] {
                    batch.activity[row].human = false
                    batch.activity[row].botReason = reason
                } else {
                    batch.corrections.append((correction.lsn, reason))
                }
                count(earlier, total: 0, human: -1, at: nil, into: &batch)
                // In its hour it is no longer a human click; on its day, one of the reason's.
                countTime(earlier, total: 0, human: -1, botReason: reason, into: &batch)
            }
            let human = verdict.isHuman
            batch.rowOfLSN[lsn] = keep(
                .init(
                    lsn: lsn, customerID: c.token.customerID, occurredAt: c.occurredAt, kind: "clicked_link",
                    deliveryID: c.token.deliveryID, sourceKind: c.token.sourceKind.name, sourceID: c.token.sourceID,
                    messageType: c.token.messageType.name, linkID: c.token.linkID, url: c.token.destination,
                    human: human, botReason: verdict.botReason?.rawValue, userAgent: c.userAgent, ip: c.clientIP), in: &batch)
            count(c, total: 1, human: human ? 1 : 0, at: c.occurredAt, into: &batch)
            countTime(c, total: 1, human: human ? 1 : 0, botReason: human ? nil : verdict.botReason?.rawValue ?? "unknown", into: &batch)
            // Forget clicks that left the window, now and then (corrections only name clicks inside it).
            // The limit doubles with what stays, so that a window held open for long (the
            // edge's clock stepped back) costs amortised O(1) per click, not a filter each.
            if window.count > windowLimit {
                if let start = classifier.oldestOpenLSN { window = window.filter { $0.key >= start } } else { window.removeAll() }
                windowLimit = max(Self.windowFloor, window.count * 2)
            }
        }
    }

    /// The name of the first text field of `event` that holds U+0000, or nil.
    static func fieldHoldingNUL(_ event: TrackingEvent) -> String? {
        // No array per event: this runs for every record ingested.
        func nul(_ text: String) -> Bool {
            var text = text
            return text.withUTF8 { $0.contains(0) }
        }
        switch event {
        case .click(let c):
            if nul(c.token.customerID) { return "customer id" }
            if nul(c.token.deliveryID) { return "delivery id" }
            if nul(c.token.sourceID) { return "source id" }
            if nul(c.token.linkID) { return "link id" }
            if nul(c.token.destination) { return "destination" }
            if nul(c.userAgent) { return "user agent" }
            if nul(c.keyID) { return "key id" }
            if nul(c.edgeID) { return "edge id" }
            return nil
        case .delivered(let d):
            if nul(d.customerID) { return "customer id" }
            if nul(d.deliveryID) { return "delivery id" }
            if nul(d.sourceID) { return "source id" }
            return nil
        case .opened(let o):
            if nul(o.token.customerID) { return "customer id" }
            if nul(o.token.deliveryID) { return "delivery id" }
            if nul(o.token.sourceID) { return "source id" }
            if nul(o.userAgent) { return "user agent" }
            if nul(o.keyID) { return "key id" }
            if nul(o.edgeID) { return "edge id" }
            return nil
        }
    }

    /// Milliseconds in a day: a click's UTC day is `occurredAt / msPerDay`.
    static let msPerDay: UInt64 = 86_400_000
    /// Milliseconds in an hour: a click's UTC hour is `occurredAt / msPerHour`.
    static let msPerHour: UInt64 = 3_600_000

    /// Adds a click of `c`'s (or a correction of one) to its source's hour, and a bot click
    /// to its source's day under `botReason`.
    private func countTime(_ c: ClickEvent, total: Int64, human: Int64, botReason: String?, into batch: inout ProjectionBatch) {
        let source = ProjectionBatch.SourceKey(sourceKind: c.token.sourceKind.name, sourceID: c.token.sourceID)
        let key = ProjectionBatch.HourlyKey(source: source, hour: Int64(c.occurredAt / Self.msPerHour))
        batch.hourly[key, default: .init()].total += total
        batch.hourly[key]!.human += human
        if let botReason { batch.botDaily[.init(source: source, day: Int64(c.occurredAt / Self.msPerDay), reason: botReason), default: 0] += 1 }
    }

    /// Adds a click (or, with `total` 0, a correction of one) to every counter it counts in.
    private func count(_ c: ClickEvent, total: Int64, human: Int64, at: UInt64?, into batch: inout ProjectionBatch) {
        let source = ProjectionBatch.SourceKey(sourceKind: c.token.sourceKind.name, sourceID: c.token.sourceID)
        let link = ProjectionBatch.LinkKey(sourceKind: source.sourceKind, sourceID: source.sourceID, linkID: c.token.linkID)
        batch.links[link, default: .init()].add(total: total, human: human, at: at)
        batch.links[link]!.url = c.token.destination
        batch.clickers[.init(link: link, customerID: c.token.customerID), default: .init()].add(total: total, human: human, at: at)
        batch.sources[source, default: .init()].clicks += total
        batch.sources[source]!.human += human
        if human != 0 {
            let customer = ProjectionBatch.SourceClickerKey(source: source, customerID: c.token.customerID)
            batch.sourceClickers[customer, default: 0] += human
            // A person who clicked opened: a human click is one of their opens (and a burst
            // correction takes it back from both).
            batch.sourceOpeners[customer, default: 0] += human
        }
        // The day of the click itself, also for a correction (decoded times are bounded).
        let day = Int64(c.occurredAt / Self.msPerDay)
        let key = ProjectionBatch.DailyKey(link: link, day: day)
        batch.daily[key, default: (0, 0)].total += total
        batch.daily[key]!.human += human
    }
}

extension ProjectionBatch {
    /// Every counter delta with its sign turned (an erasure subtracts a person's own fold:
    /// docs/design/erasure.md, 2a). First and last times are left out — a minimum or maximum
    /// cannot be subtracted; the eraser takes them again from the rows that stay — and so
    /// are the activity rows, corrections and dead letters, which it deletes instead.
    public func negated() -> ProjectionBatch {
        var out = ProjectionBatch()
        func flip(_ c: Counts) -> Counts { Counts(total: -c.total, human: -c.human, first: nil, last: nil, url: c.url) }
        out.links = links.mapValues(flip)
        out.clickers = clickers.mapValues(flip)
        out.sources = sources.mapValues {
            SourceCounts(delivered: -$0.delivered, clicks: -$0.clicks, human: -$0.human, opens: -$0.opens, machineOpens: -$0.machineOpens)
        }
        out.sourceClickers = sourceClickers.mapValues { -$0 }
        out.sourceOpeners = sourceOpeners.mapValues { -$0 }
        out.daily = daily.mapValues { (-$0.total, -$0.human) }
        out.hourly = hourly.mapValues {
            HourCounts(delivered: -$0.delivered, total: -$0.total, human: -$0.human, opens: -$0.opens, personOpens: -$0.personOpens)
        }
        out.botDaily = botDaily.mapValues { -$0 }
        out.openDaily = openDaily.mapValues { -$0 }
        out.records = records
        out.firstLSN = firstLSN
        out.lastLSN = lastLSN
        return out
    }
}
