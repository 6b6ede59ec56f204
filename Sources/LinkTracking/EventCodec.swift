/// The binary form of a `TrackingEvent` in the log, version 1 (docs/log-format.md, "Payloads"):
///
///     version (1 byte, = 1) | kind (1 byte: 1 click, 2 delivered, 3 opened) | occurred_at (varint, ms)
///     click:     flags (1 byte: bit 0 HEAD, bits 1–3 message type, bits 4–5 source kind,
///                bit 6 link id is the destination) | issued_at (varint)
///                | kid | source_id | delivery_id | customer_id | [link_id] | destination
///                | user_agent | edge_id   (each: varint length + UTF-8)
///                | ip length (1 byte: 0, 4 or 16) | ip
///     delivered: type and source (1 byte: bits 1–3 message type, bits 4–5 source kind)
///                | source_id | delivery_id | customer_id | tracked_links (varint)
///     opened:    flags (1 byte: bit 0 Apple relay, bits 1–3 message type, bits 4–5 source
///                kind) | issued_at (varint) | kid | source_id | delivery_id | customer_id
///                | user_agent | edge_id | ip length (1 byte: 0, 4 or 16) | ip
///
/// Kind 3 is new in issue 29; a build before it dead-letters such a record by name
/// ("unknown event kind 3") and goes on. Kind 4, the redaction record (issue 30), is the
/// two bytes `1 4` and nothing else: what an erased person's record is replaced by in a
/// rewritten segment, at the same LSN (docs/design/erasure.md, 3). Readers skip it; it
/// does not decode to an event.
///
/// Decoding checks every length before using it and throws on anything else, so a
/// damaged or foreign record becomes a dead letter, never a crash.
public enum EventCodec {
    public static let version: UInt8 = 1

    /// The redaction record's payload (kind 4).
    public static let redaction: [UInt8] = [version, 4]

    /// Whether a payload is the redaction record: exactly `1 4`.
    public static func isRedaction(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count == 2 && bytes[0] == version && bytes[1] == 4
    }

    public static func encode(_ event: TrackingEvent) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(version)
        switch event {
        case .click(let click):
            out.append(1)
            Varint.append(click.occurredAt, to: &out)
            let token = click.token
            let linkIsDestination = token.linkID == token.destination
            out.append(
                (click.method == .head ? 1 : 0) | (token.messageType.rawValue << 1) | (token.sourceKind.rawValue << 4)
                    | (linkIsDestination ? 1 << 6 : 0))
            Varint.append(token.issuedAt, to: &out)
            for field in [click.keyID, token.sourceID, token.deliveryID, token.customerID] { TokenCodec.appendField(field, to: &out) }
            if !linkIsDestination { TokenCodec.appendField(token.linkID, to: &out) }
            for field in [token.destination, click.userAgent, click.edgeID] { TokenCodec.appendField(field, to: &out) }
            out.append(UInt8(click.clientIP.count))
            out.append(contentsOf: click.clientIP)
        case .delivered(let delivered):
            out.append(2)
            Varint.append(delivered.occurredAt, to: &out)
            out.append((delivered.messageType.rawValue << 1) | (delivered.sourceKind.rawValue << 4))
            for field in [delivered.sourceID, delivered.deliveryID, delivered.customerID] { TokenCodec.appendField(field, to: &out) }
            Varint.append(UInt64(delivered.trackedLinks), to: &out)
        case .opened(let open):
            out.append(3)
            Varint.append(open.occurredAt, to: &out)
            let token = open.token
            out.append((open.appleRelay ? 1 : 0) | (token.messageType.rawValue << 1) | (token.sourceKind.rawValue << 4))
            Varint.append(token.issuedAt, to: &out)
            for field in [open.keyID, token.sourceID, token.deliveryID, token.customerID, open.userAgent, open.edgeID] {
                TokenCodec.appendField(field, to: &out)
            }
            out.append(UInt8(open.clientIP.count))
            out.append(contentsOf: open.clientIP)
        }
        return out
    }

    public struct DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// 9999-12-31T23:59:59.999Z in milliseconds since the epoch.
    public static let latestOccurredAt: UInt64 = 253_402_300_799_999
    /// 9999-12-31T23:59:59Z in seconds since the epoch: the latest `issued_at` decoded.
    public static let latestIssuedAt: UInt64 = latestOccurredAt / 1000

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> TrackingEvent {
        var reader = Reader(bytes: bytes)
        let v = try reader.byte()
        guard v == version else { throw DecodeError(message: "unknown event version \(v)") }
        let kind = try reader.byte()
        if kind == 4 { throw DecodeError(message: "a redaction record (kind 4: an erased person's record), not an event") }
        let occurredAt = try reader.varint()
        // No edge clock reads past the year 9999, and neither PostgreSQL's timestamptz nor
        // the projections' arithmetic could hold it: such a record is a dead letter.
        guard occurredAt <= latestOccurredAt else { throw DecodeError(message: "occurred_at \(occurredAt) ms is after the year 9999") }
        switch kind {
        case 1:
            let flags = try reader.byte()
            guard flags & 0x80 == 0, let type = LinkToken.MessageType(rawValue: (flags >> 1) & 0b111),
                let source = LinkToken.SourceKind(rawValue: (flags >> 4) & 0b11)
            else { throw DecodeError(message: "invalid click flags \(flags)") }
            let (issuedAt, kid, sourceID, deliveryID, customerID) = try reader.signedFields()
            let linkID = flags & (1 << 6) != 0 ? nil : try reader.string()
            let destination = try reader.string()
            let userAgent = try reader.string()
            let edgeID = try reader.string()
            let ip = try reader.address()
            try reader.end()
            let token = LinkToken(
                destination: destination, deliveryID: deliveryID, customerID: customerID, sourceKind: source,
                sourceID: sourceID, messageType: type, linkID: linkID, issuedAt: issuedAt)
            return .click(
                ClickEvent(
                    occurredAt: occurredAt, method: flags & 1 != 0 ? .head : .get, token: token, keyID: kid,
                    userAgent: userAgent, clientIP: ip, edgeID: edgeID))
        case 2:
            let flags = try reader.byte()
            guard flags & 0b1100_0001 == 0, let type = LinkToken.MessageType(rawValue: (flags >> 1) & 0b111),
                let source = LinkToken.SourceKind(rawValue: (flags >> 4) & 0b11)
            else { throw DecodeError(message: "invalid delivery flags \(flags)") }
            let sourceID = try reader.string()
            let deliveryID = try reader.string()
            let customerID = try reader.string()
            let links = try reader.varint()
            guard links <= UInt64(UInt32.max) else { throw DecodeError(message: "invalid link count") }
            try reader.end()
            return .delivered(
                DeliveredEvent(
                    occurredAt: occurredAt, messageType: type, sourceKind: source, sourceID: sourceID,
                    deliveryID: deliveryID, customerID: customerID, trackedLinks: UInt32(links)))
        case 3:
            let flags = try reader.byte()
            guard flags & 0b1100_0000 == 0, let type = LinkToken.MessageType(rawValue: (flags >> 1) & 0b111),
                let source = LinkToken.SourceKind(rawValue: (flags >> 4) & 0b11)
            else { throw DecodeError(message: "invalid open flags \(flags)") }
            let (issuedAt, kid, sourceID, deliveryID, customerID) = try reader.signedFields()
            let userAgent = try reader.string()
            let edgeID = try reader.string()
            let ip = try reader.address()
            try reader.end()
            let token = OpenToken(
                deliveryID: deliveryID, customerID: customerID, sourceKind: source, sourceID: sourceID, messageType: type,
                issuedAt: issuedAt)
            return .opened(
                OpenEvent(
                    occurredAt: occurredAt, token: token, keyID: kid, userAgent: userAgent, clientIP: ip, edgeID: edgeID,
                    appleRelay: flags & 1 != 0))
        default:
            throw DecodeError(message: "unknown event kind \(kind)")
        }
    }

    /// The bytes of a record's customer field, found as `decode` finds it but without
    /// decoding the rest (nor checking that the field is UTF-8): nil when the record does
    /// not reach one. Sharding reads it for every record (docs/design/sharding.md).
    public static func customerField(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var reader = Reader(bytes: bytes)
        do {
            guard try reader.byte() == version else { return nil }
            let kind = try reader.byte()
            _ = try reader.varint()  // occurred_at
            _ = try reader.byte()  // flags
            switch kind {
            case 1, 3:
                _ = try reader.varint()  // issued_at
                for _ in 0..<3 { _ = try reader.field() }  // kid, source_id, delivery_id
            case 2:
                for _ in 0..<2 { _ = try reader.field() }  // source_id, delivery_id
            default:
                return nil
            }
            return try reader.field()
        } catch {
            return nil
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> TrackingEvent {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(DecodeError) in try decode(raw) } }
        return try result.get()
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        mutating func byte() throws(DecodeError) -> UInt8 {
            guard index < bytes.count else { throw DecodeError(message: "truncated event") }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func varint() throws(DecodeError) -> UInt64 {
            do {
                return try Varint.read(bytes, at: &index)
            } catch .truncated {
                throw DecodeError(message: "truncated event")
            } catch {
                throw DecodeError(message: "invalid varint")
            }
        }

        mutating func bytes(_ count: Int) throws(DecodeError) -> [UInt8] {
            guard count >= 0, count <= bytes.count - index else { throw DecodeError(message: "truncated event") }
            defer { index += count }
            return Array(bytes[index..<(index + count)])
        }

        /// A field's bytes (varint length + bytes), bounded by what is left.
        mutating func field() throws(DecodeError) -> UnsafeRawBufferPointer {
            let length = try varint()
            guard length <= UInt64(bytes.count - index) else { throw DecodeError(message: "truncated event") }
            let n = Int(length)
            defer { index += n }
            return UnsafeRawBufferPointer(rebasing: bytes[index..<(index + n)])
        }

        mutating func string() throws(DecodeError) -> String {
            guard let s = TokenCodec.utf8String(try field()) else { throw DecodeError(message: "field is not UTF-8") }
            return s
        }

        /// What a click and an open both carry from their token, after their flags: issued_at,
        /// the key id, source, delivery and customer.
        mutating func signedFields() throws(DecodeError) -> (
            issuedAt: UInt64, kid: String, sourceID: String, deliveryID: String, customerID: String
        ) {
            let issuedAt = try varint()
            // In seconds: bounded like occurred_at, so `issued_at * 1000` cannot overflow.
            guard issuedAt <= EventCodec.latestIssuedAt else { throw DecodeError(message: "issued_at \(issuedAt) s is after the year 9999") }
            return (issuedAt, try string(), try string(), try string(), try string())
        }

        /// An address: its length (0, 4 or 16) and its bytes.
        mutating func address() throws(DecodeError) -> [UInt8] {
            let length = Int(try byte())
            guard length == 0 || length == 4 || length == 16 else { throw DecodeError(message: "invalid address length \(length)") }
            return try bytes(length)
        }

        func end() throws(DecodeError) {
            guard index == bytes.count else { throw DecodeError(message: "\(bytes.count - index) trailing bytes") }
        }
    }
}
