import Crypto
import LinkTracking

/// Which shard a customer, and so a record, belongs to (docs/design/sharding.md):
///
///     shard(customer) = BE32(SHA-256(UTF-8 bytes of customer)[0..4]) mod S
///
/// The same as `clickd.shard_of(customer, shards)` in SQL (migration 0005); a
/// record too damaged to hold a customer field belongs to shard `lsn mod S`.
public enum ShardFunction {
    /// The shard counts a schema may have.
    public static let shardCounts: ClosedRange<Int> = 1...1024
    public static let defaultShards = 32

    public static func shard(ofCustomerBytes bytes: UnsafeRawBufferPointer, shards: Int) -> Int {
        precondition(shardCounts.contains(shards))
        var digest = SHA256()
        digest.update(bufferPointer: bytes)
        return digest.finalize().withUnsafeBytes { d in
            let word = UInt32(d[0]) << 24 | UInt32(d[1]) << 16 | UInt32(d[2]) << 8 | UInt32(d[3])
            return Int(word % UInt32(shards))
        }
    }

    public static func shard(ofCustomer customer: String, shards: Int) -> Int {
        var customer = customer
        return customer.withUTF8 { shard(ofCustomerBytes: UnsafeRawBufferPointer($0), shards: shards) }
    }

    /// The shard of a record: its customer field's bytes (whether or not the rest of the
    /// record decodes), or `lsn mod S` when the record does not reach one.
    public static func shard(ofRecord payload: UnsafeRawBufferPointer, lsn: UInt64, shards: Int) -> Int {
        if let customer = EventCodec.customerField(payload) {
            return shard(ofCustomerBytes: customer, shards: shards)
        }
        return Int(lsn % UInt64(shards))
    }
}
