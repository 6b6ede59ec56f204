/// An open as the edge records it: a fetch of a message's pixel (`GET /o/<token>`), with
/// the verified open token's fields and the request's facts.
public struct OpenEvent: Equatable, Sendable {
    /// When the edge received the request, in milliseconds since the Unix epoch.
    public var occurredAt: UInt64
    public var token: OpenToken
    /// The key that signed the token.
    public var keyID: String
    /// The User-Agent, cropped like a click's (`ClickEvent.crop`).
    public var userAgent: String
    /// The client address after the edge's privacy mode: 4 or 16 bytes, or empty.
    public var clientIP: [UInt8]
    /// Which edge answered.
    public var edgeID: String
    /// Whether the client's full address was in Apple's Private Relay egress ranges, which
    /// Mail Privacy Protection fetches through: decided at the edge before the address is
    /// truncated (`AppleEgressRanges`), since the truncated one cannot tell.
    public var appleRelay: Bool

    public init(
        occurredAt: UInt64, token: OpenToken, keyID: String, userAgent: String, clientIP: [UInt8], edgeID: String,
        appleRelay: Bool
    ) {
        self.occurredAt = occurredAt
        self.token = token
        self.keyID = keyID
        self.userAgent = ClickEvent.crop(userAgent)
        self.clientIP = clientIP
        self.edgeID = edgeID
        self.appleRelay = appleRelay
    }
}
