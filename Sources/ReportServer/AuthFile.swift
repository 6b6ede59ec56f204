import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix
import Synchronization

/// The `--auth-file`: htpasswd lines `user:$2y$…` (bcrypt only), checked against HTTP Basic
/// credentials. Why htpasswd and Basic: the readers are people in a browser, and only Basic
/// makes a browser ask for credentials without JavaScript; `htpasswd -B`, nginx and
/// Prometheus's web configuration use the same file (docs/design/report.md, "Auth").
public final class AuthFile: Sendable {
    /// bcrypt hashes by user name.
    let users: [String: String]
    /// SHA-256 of verified `user:password`s and when they were verified (monotonic seconds).
    private let verified = Mutex<[SHA256Digest: UInt64]>([:])
    /// bcrypt runs at most this many at once, so a client guessing passwords cannot take
    /// every thread of the pool the pages need.
    private let verifying = Mutex(0)

    static let maxRemembered = 1000
    static let rememberSeconds: UInt64 = 300
    static let maxConcurrentVerifications = 2

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses the file's text; `path` names it in errors. Blank lines and `#` comments are
    /// skipped; anything else must be `name:bcrypt-hash`.
    public init(text: String, path: String) throws {
        var users: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) || line.first == "#" { continue }
            let at = "\(path) line \(index + 1)"
            guard let colon = line.firstIndex(of: ":") else { throw Invalid(description: "\(at): expected user:bcrypt-hash") }
            let name = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard !name.isEmpty else { throw Invalid(description: "\(at): the user name is empty") }
            guard Self.isBcrypt(hash) else {
                throw Invalid(
                    description: "\(at): user \(name)'s password is not a bcrypt hash ($2a$, $2b$ or $2y$); make one with htpasswd -B")
            }
            guard users[name] == nil else { throw Invalid(description: "\(at): user \(name) appears twice") }
            users[name] = hash
        }
        guard !users.isEmpty else { throw Invalid(description: "\(path) names no user") }
        self.users = users
    }

    public convenience init(path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw Invalid(description: "cannot read \(path): \(error.localizedDescription)")
        }
        try self.init(text: text, path: path)
    }

    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost from 04 to 31, `$`, then 53 characters of
    /// bcrypt's base64: 60 in all.
    static func isBcrypt(_ hash: String) -> Bool {
        let b = Array(hash.utf8)
        guard b.count == 60, b[0] == UInt8(ascii: "$"), b[1] == UInt8(ascii: "2"), b[3] == UInt8(ascii: "$"), b[6] == UInt8(ascii: "$") else {
            return false
        }
        guard [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(b[2]) else { return false }
        guard let cost = Int(String(decoding: b[4..<6], as: UTF8.self)), (4...31).contains(cost) else { return false }
        let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return b[7...].allSatisfy(alphabet.contains)
    }

    /// The outcome of checking an `Authorization` header.
    public enum Outcome: Equatable, Sendable {
        case allowed(user: String)
        /// `user`: the name the credentials gave, nil without (readable) Basic credentials.
        case denied(user: String?)
        /// Too many bcrypt checks at once: try again (503).
        case busy
    }

    /// Checks `Authorization: Basic …`; bcrypt runs on `pool`, a verified pair is remembered.
    public func check(authorization: String?, pool: NIOThreadPool, now: UInt64) async -> Outcome {
        guard let authorization, let (user, password) = Self.basicCredentials(authorization) else { return .denied(user: nil) }
        guard let hash = users[user] else { return .denied(user: user) }
        let key = SHA256.hash(data: Array((user + ":" + password).utf8))
        if let at = verified.withLock({ $0[key] }), now &- at < Self.rememberSeconds { return .allowed(user: user) }
        let admitted = verifying.withLock { n in
            guard n < Self.maxConcurrentVerifications else { return false }
            n += 1
            return true
        }
        guard admitted else { return .busy }
        defer { verifying.withLock { $0 -= 1 } }
        // HummingbirdBcrypt's C code knows $2a$ and $2b$; $2y$ is $2b$ under PHP's name.
        let normalized = hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
        let ok = (try? await pool.runIfActive { Bcrypt.verify(password, hash: normalized) }) ?? false
        guard ok else { return .denied(user: user) }
        verified.withLock { remembered in
            if remembered.count >= Self.maxRemembered {
                remembered = remembered.filter { now &- $0.value < Self.rememberSeconds }
                if remembered.count >= Self.maxRemembered { remembered.removeAll() }
            }
            remembered[key] = now
        }
        return .allowed(user: user)
    }

    /// `(user, password)` of `Basic base64(user:password)` (RFC 7617); the scheme is
    /// case-insensitive.
    static func basicCredentials(_ value: String) -> (String, String)? {
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}
