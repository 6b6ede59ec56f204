import Crypto
import Foundation

/// The people erased from the projections (docs/design/erasure.md, section 2): the MACs of
/// their ids under the database's erasure key (`clickd_ingest.erasures`, migration 0011). A
/// fold drops their records; the ids themselves are never stored.
public struct ErasureList: Sendable {
    public let key: [UInt8]
    public let macs: Set<[UInt8]>
    /// The HMAC with the key already absorbed, copied for each record: the fold checks
    /// every record of a shard with erased people (clickd ingest paid 2.5 µs of CPU per
    /// event keying a new HMAC each time; docs/benchmarks.md, "Erasure").
    private let keyed: Keyed

    public init(key: [UInt8], macs: Set<[UInt8]>) {
        self.key = key
        self.macs = macs
        keyed = Keyed(HMAC<SHA256>(key: SymmetricKey(data: key)))
    }

    /// An immutable value copied before use: safe to share between threads.
    private struct Keyed: @unchecked Sendable {
        let hmac: HMAC<SHA256>
        init(_ hmac: HMAC<SHA256>) { self.hmac = hmac }
    }

    public static let none = ErasureList(key: [], macs: [])

    public var isEmpty: Bool { macs.isEmpty }

    /// HMAC-SHA256 of a customer id's UTF-8 bytes under the list's key.
    public func mac(customer: some DataProtocol) -> [UInt8] {
        var hmac = keyed.hmac
        hmac.update(data: customer)
        return Array(hmac.finalize())
    }

    /// Whether the customer field's bytes (`EventCodec.customerField`) name an erased person;
    /// no MAC is computed while the list is empty.
    public func contains(customer: UnsafeRawBufferPointer) -> Bool {
        !macs.isEmpty && macs.contains(mac(customer: customer))
    }
}

/// Asks one or more erasure lists about a stream of records, remembering each customer id's
/// answer: a log holds each person many times (bench/rewrite.sh: 2 M records of 100,000
/// customers), and a lookup is far cheaper than an HMAC. The cache is exact (keyed by the
/// whole id, never a hash of it: a collision would leave an erased person's record in place)
/// and bounded (emptied at `cacheLimit` ids). Ids of up to 32 bytes — all of them in
/// practice — are kept inline in the key (a `[UInt8]` key cost 375 ns a lookup in cache
/// misses, measured with perf); a longer id is always MACed.
public struct ErasureMatcher: Sendable {
    public let lists: [ErasureList]
    private var known: [ShortID: Bool] = [:]
    public static let cacheLimit = 1 << 20
    public static let none = ErasureMatcher([])

    public init(_ lists: [ErasureList]) { self.lists = lists.filter { !$0.isEmpty } }

    public var isEmpty: Bool { lists.isEmpty }

    /// Whether the record's payload is an erased person's in any of the lists.
    public mutating func holds(record payload: UnsafeRawBufferPointer) -> Bool {
        guard !lists.isEmpty, let customer = EventCodec.customerField(payload) else { return false }
        guard let id = ShortID(customer) else { return isErased(customer) }
        if let answer = known[id] { return answer }
        let erased = isErased(customer)
        if known.count >= Self.cacheLimit { known.removeAll(keepingCapacity: true) }
        known[id] = erased
        return erased
    }

    private func isErased(_ customer: UnsafeRawBufferPointer) -> Bool {
        lists.contains { $0.contains(customer: customer) }
    }

    /// An id of at most 32 bytes, zero-padded into four words, with its length (so "a" and
    /// "a\0" differ).
    struct ShortID: Hashable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var count: Int

        init?(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count <= 32 else { return nil }
            count = bytes.count
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: bytes) }
        }

        static func == (a: ShortID, b: ShortID) -> Bool {
            a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(count)
            hasher.combine(words.0)
            hasher.combine(words.1)
            hasher.combine(words.2)
            hasher.combine(words.3)
        }
    }
}
