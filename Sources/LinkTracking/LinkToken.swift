/// What a tracked link carries: where it leads and who it was sent to. Signed, not
/// encrypted — anyone holding the link can read these fields (docs/link-tokens.md).
public struct LinkToken: Equatable, Sendable, Codable {
    public enum MessageType: UInt8, CaseIterable, Sendable, Codable {
        case email = 0, sms, push, webhook, slack

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
        case campaign = 0, newsletter, transactional

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

    public init(destination: String, deliveryID: String, customerID: String, sourceKind: SourceKind, sourceID: String,
                messageType: MessageType, linkID: String? = nil, issuedAt: UInt64) {
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
