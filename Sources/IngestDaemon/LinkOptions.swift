import ArgumentParser
import Foundation
import LinkTracking

extension LinkToken.MessageType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.name) }
}

/// The options `links sign` and `links rewrite` share: the key ring, the tracking base and
/// who and what the message is for.
struct LinkOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The key-ring file.", valueName: "file"))
    var keys: String

    @Option(help: ArgumentHelp("The tracking base, e.g. https://t.example.com (links become BASE/c/TOKEN).", valueName: "url"))
    var base: String

    @Option(help: ArgumentHelp("The delivery id (one message to one person).", valueName: "id"))
    var delivery: String?

    @Option(help: ArgumentHelp("The customer (person) id.", valueName: "id"))
    var customer: String?

    @Option(help: ArgumentHelp("The campaign the message belongs to.", valueName: "id"))
    var campaign: String?

    @Option(help: ArgumentHelp("The newsletter the message belongs to.", valueName: "id"))
    var newsletter: String?

    @Option(help: ArgumentHelp("The transactional message it is.", valueName: "id"))
    var transactional: String?

    @Option(
        name: .customLong("url-param"),
        help: ArgumentHelp("A parameter appended to tracked destinations (repeatable), e.g. utm_source=newsletter.", valueName: "k=v"))
    var urlParams: [String] = []

    var source: (LinkToken.SourceKind, String)? {
        if let campaign { return (.campaign, campaign) }
        if let newsletter { return (.newsletter, newsletter) }
        if let transactional { return (.transactional, transactional) }
        return nil
    }

    func validate(requireMessage: Bool) throws {
        let sources = [campaign, newsletter, transactional].compactMap { $0 }
        if sources.count > 1 { throw ValidationError("give only one of --campaign, --newsletter, --transactional") }
        if requireMessage {
            if delivery == nil { throw ValidationError("missing --delivery") }
            if customer == nil { throw ValidationError("missing --customer") }
            if sources.isEmpty { throw ValidationError("give one of --campaign, --newsletter, --transactional") }
        }
        let lower = base.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://"), base.count > 8, !base.contains("?"), !base.contains("#") else {
            throw ValidationError("--base must be an http(s) URL without query or fragment, e.g. https://t.example.com")
        }
        _ = try parameters()
    }

    func parameters() throws -> [URLParameter] {
        try urlParams.map { pair in
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw ValidationError("--url-param must be KEY=VALUE, not '\(pair)'")
            }
            return URLParameter(key: String(pair[..<eq]), value: String(pair[pair.index(after: eq)...]))
        }
    }

    func loadKeyRing() throws -> KeyRing { try Self.loadKeyRing(path: keys) }

    static func loadKeyRing(path keys: String) throws -> KeyRing {
        let text: String
        do {
            text = try String(contentsOfFile: keys, encoding: .utf8)
        } catch {
            let reason = (error as NSError).userInfo[NSUnderlyingErrorKey].map { "\($0)" } ?? error.localizedDescription
            throw ValidationFailure("cannot read key ring \(keys): \(FileManager.default.fileExists(atPath: keys) ? reason : "no such file")")
        }
        do {
            return try KeyRing.parse(text)
        } catch {
            throw ValidationFailure("\(keys): \(error)")
        }
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }
}

/// Reads all of standard input, failing with one clear line when it cannot be read.
func readStandardInput() throws -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw ValidationFailure("cannot read standard input: \(String(cString: strerror(errno)))")
        }
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
    }
}

/// Writes bytes to standard output with write(2).
func writeStandardOutput(_ bytes: [UInt8]) {
    var done = 0
    while done < bytes.count {
        let n = bytes[done...].withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        if n <= 0 {
            if n < 0, errno == EINTR { continue }
            return
        }
        done += n
    }
}
