/// One record of the event log (the payload `EventLog` frames and checksums).
public enum TrackingEvent: Equatable, Sendable {
    case click(ClickEvent)
    case delivered(DeliveredEvent)
}
