/// What a message's open pixel carries: who the message went to, and no destination
/// (docs/link-tokens.md, "Open tokens"). Signed with the same key ring as link tokens, in
/// a format of its own (version 2), so that the edge's `/o/` never takes a link token
/// and its `/c/` never takes an open token.
public struct OpenToken: Equatable, Sendable, Codable {
    public var deliveryID: String
    public var customerID: String
    public var sourceKind: LinkToken.SourceKind
    public var sourceID: String
    public var messageType: LinkToken.MessageType
    /// When the pixel was signed (the message rendered for sending), in seconds since the epoch.
    public var issuedAt: UInt64

    public init(
        deliveryID: String, customerID: String, sourceKind: LinkToken.SourceKind, sourceID: String,
        messageType: LinkToken.MessageType, issuedAt: UInt64
    ) {
        self.deliveryID = deliveryID
        self.customerID = customerID
        self.sourceKind = sourceKind
        self.sourceID = sourceID
        self.messageType = messageType
        self.issuedAt = issuedAt
    }

    /// The open token of the message a link token was signed for.
    public init(of link: LinkToken) {
        self.init(
            deliveryID: link.deliveryID, customerID: link.customerID, sourceKind: link.sourceKind, sourceID: link.sourceID,
            messageType: link.messageType, issuedAt: link.issuedAt)
    }

    /// The first problem of this token's ids, or nil.
    public var idProblem: String? {
        LinkToken.idProblem(sourceID, name: "source id") ?? LinkToken.idProblem(deliveryID, name: "delivery id")
            ?? LinkToken.idProblem(customerID, name: "customer id")
    }
}
