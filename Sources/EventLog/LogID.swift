/// The stable identity of one log directory: 128 random bits, written when the log is
/// created and repeated in every segment header, so a segment copied into the wrong
/// directory is recognised. Printed as a UUID.
public struct LogID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        self.bytes = bytes
    }

    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> LogID {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80  // RFC 4122 variant
        return LogID(bytes: bytes)
    }

    public init?(_ text: some StringProtocol) {
        guard let bytes = Hex.bytes(String(text.filter { $0 != "-" })), bytes.count == 16 else { return nil }
        self.init(bytes: bytes)
    }

    public var description: String { LogID.uuidText(bytes) }

    /// 16 bytes as a UUID is written (lower-case hex, 8-4-4-4-12), as PostgreSQL prints one.
    public static func uuidText(_ bytes: [UInt8]) -> String {
        precondition(bytes.count == 16)
        return [0..<4, 4..<6, 6..<8, 8..<10, 10..<16].map { Hex.string(bytes[$0]) }.joined(separator: "-")
    }
}
