/// Why a token was not accepted. Every case is distinct, so the edge can count them; none
/// crashes, and none ever leads to a redirect.
public enum TokenError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not base64url, or not its canonical form, or structurally wrong.
    case malformed(String)
    /// Longer than `TokenCodec.maxTokenLength`.
    case tooLong(Int)
    /// Ends before its fields or MAC do.
    case truncated
    /// A format version this build does not know.
    case unsupportedVersion(UInt8)
    /// A token of the other kind: an open token where a link token belongs, or the reverse.
    case wrongKind(String)
    /// Signed with a key that is not in the key ring.
    case unknownKey(String)
    /// Signed with a key the key ring marks retired.
    case retiredKey(String)
    /// The MAC does not match: altered or forged.
    case badSignature
    /// Signed correctly but holds a field that cannot be used (not UTF-8).
    case invalidField(String)

    /// A short stable name, for metrics labels.
    public var reason: String {
        switch self {
        case .malformed: "malformed"
        case .tooLong: "too_long"
        case .truncated: "truncated"
        case .unsupportedVersion: "unsupported_version"
        case .wrongKind: "wrong_kind"
        case .unknownKey: "unknown_key"
        case .retiredKey: "retired_key"
        case .badSignature: "bad_signature"
        case .invalidField: "invalid_field"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why): "malformed token (\(why))"
        case .tooLong(let n): "token of \(n) characters is longer than \(TokenCodec.maxTokenLength)"
        case .truncated: "truncated token"
        case .unsupportedVersion(let v): "token format version \(v) is not supported"
        case .wrongKind(let what): "token is \(what)"
        case .unknownKey(let kid): "token signed with unknown key '\(kid)'"
        case .retiredKey(let kid): "token signed with retired key '\(kid)'"
        case .badSignature: "token signature does not match"
        case .invalidField(let why): "token field is invalid (\(why))"
        }
    }
}
