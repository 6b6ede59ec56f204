/// A click as the edge records it: the verified token's fields and the request's facts.
public struct ClickEvent: Equatable, Sendable {
    public enum Method: Sendable, Equatable {
        case get
        /// HEAD: a prefetch (link scanners, previews), recorded but never a human click.
        case head
    }

    /// When the edge received the request, in milliseconds since the Unix epoch.
    public var occurredAt: UInt64
    public var method: Method
    public var token: LinkToken
    /// The key that signed the token.
    public var keyID: String
    /// The User-Agent, cropped to `ClickEvent.maxUserAgentBytes` at a character boundary.
    public var userAgent: String
    /// The client address after the edge's privacy mode: 4 or 16 bytes, or empty.
    public var clientIP: [UInt8]
    /// Which edge answered (one log per edge).
    public var edgeID: String

    public static let maxUserAgentBytes = 512

    public init(occurredAt: UInt64, method: Method, token: LinkToken, keyID: String, userAgent: String, clientIP: [UInt8], edgeID: String) {
        self.occurredAt = occurredAt
        self.method = method
        self.token = token
        self.keyID = keyID
        self.userAgent = Self.crop(userAgent)
        self.clientIP = clientIP
        self.edgeID = edgeID
    }

    /// `text` cut to at most `maxUserAgentBytes` bytes without splitting a character.
    public static func crop(_ text: String) -> String {
        guard text.utf8.count > maxUserAgentBytes else { return text }
        var bytes = 0
        var end = text.unicodeScalars.startIndex
        for index in text.unicodeScalars.indices {
            let size = UTF8.width(text.unicodeScalars[index])
            if bytes + size > maxUserAgentBytes { break }
            bytes += size
            end = text.unicodeScalars.index(after: index)
        }
        return String(text.unicodeScalars[..<end])
    }
}
