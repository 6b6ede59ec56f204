/// A message handed to a person: the denominator of click rates.
public struct DeliveredEvent: Equatable, Sendable {
    public var occurredAt: UInt64
    public var messageType: LinkToken.MessageType
    public var sourceKind: LinkToken.SourceKind
    public var sourceID: String
    public var deliveryID: String
    public var customerID: String
    /// How many links of the message are tracked.
    public var trackedLinks: UInt32

    public init(
        occurredAt: UInt64, messageType: LinkToken.MessageType, sourceKind: LinkToken.SourceKind, sourceID: String,
        deliveryID: String, customerID: String, trackedLinks: UInt32
    ) {
        self.occurredAt = occurredAt
        self.messageType = messageType
        self.sourceKind = sourceKind
        self.sourceID = sourceID
        self.deliveryID = deliveryID
        self.customerID = customerID
        self.trackedLinks = trackedLinks
    }
}
