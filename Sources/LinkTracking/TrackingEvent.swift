/// One record of the event log (the payload `EventLog` frames and checksums).
public enum TrackingEvent: Equatable, Sendable {
    case click(ClickEvent)
    case delivered(DeliveredEvent)
    case opened(OpenEvent)
}

extension TrackingEvent {
    /// When the edge (or the sender, for a delivery) recorded it, in ms since the epoch.
    public var occurredAt: UInt64 {
        switch self {
        case .click(let c): c.occurredAt
        case .delivered(let d): d.occurredAt
        case .opened(let o): o.occurredAt
        }
    }

    /// Whom it is about: the shard key (docs/design/sharding.md).
    public var customerID: String {
        switch self {
        case .click(let c): c.token.customerID
        case .delivered(let d): d.customerID
        case .opened(let o): o.token.customerID
        }
    }
}
