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
