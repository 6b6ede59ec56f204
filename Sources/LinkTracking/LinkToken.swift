/// What a tracked link carries: where it leads and who it was sent to. Signed, not
/// encrypted — anyone holding the link can read these fields (docs/link-tokens.md).
public struct LinkToken: Equatable, Sendable, Codable {
    public enum MessageType: UInt8, CaseIterable, Sendable, Codable {
        case email = 0
        case sms, push, webhook, slack

        public var name: String {
            switch self {
            case .email: "email"
            case .sms: "sms"
            case .push: "push"
            case .webhook: "webhook"
            case .slack: "slack"
            }
        }

        public init?(name: String) {
            guard let match = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = match
        }
    }

    public enum SourceKind: UInt8, CaseIterable, Sendable, Codable {
        case campaign = 0
        case newsletter, transactional

        public var name: String {
            switch self {
            case .campaign: "campaign"
            case .newsletter: "newsletter"
            case .transactional: "transactional"
            }
        }

        public init?(name: String) {
            guard let match = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = match
        }
    }

    /// The exact URL the person is sent to (`Location` of the 302), byte for byte.
    public var destination: String
    public var deliveryID: String
    public var customerID: String
    public var sourceKind: SourceKind
    public var sourceID: String
    public var messageType: MessageType
    /// The link's id for per-link totals; the destination URL when none was given.
    public var linkID: String
    /// When the link was signed, in seconds since the Unix epoch.
    public var issuedAt: UInt64

    public init(
        destination: String, deliveryID: String, customerID: String, sourceKind: SourceKind, sourceID: String,
        messageType: MessageType, linkID: String? = nil, issuedAt: UInt64
    ) {
        self.destination = destination
        self.deliveryID = deliveryID
        self.customerID = customerID
        self.sourceKind = sourceKind
        self.sourceID = sourceID
        self.messageType = messageType
        self.linkID = linkID ?? destination
        self.issuedAt = issuedAt
    }
}

extension LinkToken {
    /// Whether `bytes` (UTF-8) hold a control character: C0 (U+0000–U+001F), DEL or C1
    /// (U+0080–U+009F). An id never needs one, and a NUL in an id is refused by PostgreSQL
    /// (`22021`) for the whole batch it is in (issue 12): so ids holding one are refused when
    /// signing and when verifying. Bytes, not scalars: this runs for every click.
    @inline(__always) static func hasControlCharacter(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c < 0x20 || c == 0x7f { return true }
            if c == 0xc2, i + 1 < bytes.count, bytes[i + 1] >= 0x80, bytes[i + 1] <= 0x9f { return true }
            i += 1
        }
        return false
    }

    /// Why `id` (named `name`: "customer id") cannot go into a token, or nil when it can.
    public static func idProblem(_ id: String, name: String) -> String? {
        var copy = id
        let control = copy.withUTF8 { hasControlCharacter(UnsafeRawBufferPointer($0)) }
        guard control, let scalar = id.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) else { return nil }
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return
            "\(name) contains the control character U+\(String(repeating: "0", count: max(0, 4 - hex.count)) + hex); ids may not hold control characters"
    }

    /// The first problem of this token's ids (source, delivery, customer, link), or nil.
    public var idProblem: String? {
        Self.idProblem(sourceID, name: "source id") ?? Self.idProblem(deliveryID, name: "delivery id")
            ?? Self.idProblem(customerID, name: "customer id") ?? (linkID == destination ? nil : Self.idProblem(linkID, name: "link id"))
    }
}
