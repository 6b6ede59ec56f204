import ArgumentParser
import Foundation
import LinkTracking

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage the key ring that signs tracked links.",
        discussion: """
            A key ring is a text file with one key per line: \
            'key KID SECRET CREATED active|retired'. New links are signed with the newest \
            active key; every active key verifies, so links keep working across a rotation \
            until their key is marked 'retired'. Keep the file secret (mode 0600). Format: \
            docs/link-tokens.md.
            """,
        subcommands: [KeysGenerateCommand.self]
    )
}

struct KeysGenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Print a new key-ring line: a random 256-bit secret and its key id.",
        discussion: """
            Append it to the key ring and reload the edge:
              clickd keys generate >> /etc/clickd/keys && chmod 600 /etc/clickd/keys
            The key id is written into every link, so keep it short (at most 16 of \
            A–Z a–z 0–9 . _ -); by default it is 4 random characters.
            """
    )

    @Option(help: ArgumentHelp("Key id (default: 4 random characters).", valueName: "id"))
    var kid: String?

    func validate() throws {
        if let kid, !KeyRing.isValidKeyID(kid) {
            throw ValidationError("--kid must be 1–16 characters of A–Z a–z 0–9 . _ -")
        }
    }

    func run() async throws {
        try await runReportingErrors {
            let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
            let id = kid ?? String((0..<4).map { _ in alphabet.randomElement()! })
            printOut(KeyRing.generateLine(kid: id, created: ISO8601DateFormatter().string(from: Date())))
        }
    }
}
