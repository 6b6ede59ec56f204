import ArgumentParser
import Foundation
import LinkTracking

struct LinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links",
        abstract: "Sign tracked links and rewrite messages so their links are tracked.",
        discussion: """
            A tracked link is BASE/c/TOKEN; the token carries the destination and who the \
            message went to, HMAC-signed with the key ring's newest active key. Signed, not \
            encrypted: anyone with the link can read what it carries, so clickd warns when \
            an id looks like an email address or a phone number. Rules: docs/link-tokens.md.
            """,
        subcommands: [LinksSignCommand.self, LinksRewriteCommand.self]
    )
}

struct LinksSignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Print one tracked URL.",
        discussion: """
            URL parameters (--url-param) are appended to the destination first. A link that \
            looks sensitive (a password reset, a magic login, a signed download) is printed \
            untracked with a warning unless --force is given; a link that cannot be tracked \
            (not http or https) is an error.
            """
    )

    @OptionGroup var link: LinkOptions

    @Option(help: ArgumentHelp("The message type.", valueName: "type"))
    var type: LinkToken.MessageType = .email

    @Option(help: ArgumentHelp("The link's id for per-link totals (default: the destination URL).", valueName: "id"))
    var linkId: String?

    @Option(help: ArgumentHelp("The destination.", valueName: "url"))
    var url: String

    @Flag(help: "Track the link even if it looks sensitive.")
    var force = false

    func validate() throws { try link.validate(requireMessage: true) }

    func run() async throws {
        try await runReportingErrors {
            let ring = try link.loadKeyRing()
            if let why = LinkPolicy.untrackableReason(url) { throw ValidationFailure("cannot track \(url): \(why)") }
            var options = RewriteOptions(
                baseURL: link.base, messageType: type, deliveryID: link.delivery!, customerID: link.customer!,
                sourceKind: link.source!.0, sourceID: link.source!.1, issuedAt: LinkOptions.now())
            options.urlParameters = try link.parameters()
            options.trackSensitive = force
            if let why = options.idProblem ?? linkId.flatMap({ LinkToken.idProblem($0, name: "link id") }) { throw ValidationFailure(why) }
            let (summary, warnings) = MessageRewriter(keyRing: ring).link(url: url, linkID: linkId, force: force, options: options)
            if !summary.tracked, let why = summary.reason, why.hasPrefix(MessageRewriter.tooLongReason) {
                throw ValidationFailure("cannot track a destination of \(url.utf8.count) bytes: \(why)")
            }
            for warning in warnings { writeStandardError("clickd: warning: \(warning)\n") }
            printOut(summary.trackedURL ?? summary.destination)
        }
    }
}

struct LinksRewriteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewrite",
        abstract: "Rewrite a message read on stdin so its links are tracked.",
        discussion: """
            Writes the rewritten message on stdout and warnings on stderr. Email (HTML): every \
            <a href> with an http(s) URL is tracked unless it has class="untracked" (or \
            clicktracking=off, data-pm-no-track, ses:no-track), or the message has \
            --no-tracking; bytes outside the rewritten href values are unchanged. Every type: \
            {% cio_link url: "…" track: true url_params: true link_id: "…" %} tags become \
            tracked (or, with track: false, plain) URLs; in SMS, push, webhook and Slack \
            messages they are the only links tracked. A malformed tag is an error naming its \
            line and column.

            --json prints one JSON object: {"body", "links": [{"id", "destination", \
            "tracked", "tracked_url", "reason"}], "warnings"}. --jsonl rewrites many messages: \
            each input line is a JSON object {"body", "type", "delivery", "customer", \
            "campaign" | "newsletter" | "transactional", "tracking", "url_params": {k: v}} \
            (missing fields come from the options), each output line the --json object or \
            {"error": "…"}; the exit status is 1 if any line failed.
            """
    )

    @OptionGroup var link: LinkOptions

    @Option(help: ArgumentHelp("The message type (email, sms, push, webhook, slack).", valueName: "type"))
    var type: LinkToken.MessageType?

    @Flag(help: "Tracking is off for this message (or newsletter): no link is tracked and an email gets no open pixel.")
    var noTracking = false

    @Flag(help: "Track an email's links but add no open pixel.")
    var noOpenPixel = false

    @Flag(help: "Track links that look sensitive (password resets, signed downloads) too.")
    var trackSensitive = false

    @Flag(help: "Print the body and a summary of its links as one JSON object.")
    var json = false

    @Flag(help: "Batch mode: one JSON message per input line, one JSON result per output line.")
    var jsonl = false

    func validate() throws {
        if json && jsonl { throw ValidationError("give --json or --jsonl, not both") }
        try link.validate(requireMessage: !jsonl)
        if !jsonl && type == nil { throw ValidationError("missing --type (email, sms, push, webhook or slack)") }
    }

    func run() async throws {
        try await runReportingErrors {
            let rewriter = MessageRewriter(keyRing: try link.loadKeyRing())
            let input = try readStandardInput()
            if jsonl {
                try runBatch(rewriter, input)
                return
            }
            let options = try makeOptions(
                type: type!, delivery: link.delivery!, customer: link.customer!, source: link.source!,
                tracking: !noTracking, parameters: try link.parameters())
            let result = try rewriter.rewrite(input, options: options)
            for warning in result.warnings { writeStandardError("clickd: warning: \(warning)\n") }
            if json {
                guard let body = String(validating: result.body, as: UTF8.self) else {
                    throw ValidationFailure("the message is not UTF-8 text, so it cannot go into JSON; rewrite it without --json")
                }
                writeStandardOutput(
                    try Self.encode(MessageResponse(body: body, links: result.links, warnings: result.warnings, openPixel: result.openPixel))
                        + [0x0a])
            } else {
                writeStandardOutput(result.body)
            }
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    func makeOptions(
        type: LinkToken.MessageType, delivery: String, customer: String, source: (LinkToken.SourceKind, String),
        tracking: Bool, parameters: [URLParameter]
    ) throws -> RewriteOptions {
        var options = RewriteOptions(
            baseURL: link.base, messageType: type, deliveryID: delivery, customerID: customer,
            sourceKind: source.0, sourceID: source.1, issuedAt: LinkOptions.now())
        options.tracking = tracking
        options.openTracking = !noOpenPixel
        options.urlParameters = parameters
        options.trackSensitive = trackSensitive
        if let why = options.idProblem { throw ValidationFailure(why) }
        return options
    }

    private func runBatch(_ rewriter: MessageRewriter, _ input: [UInt8]) throws {
        var failed = 0
        var out: [UInt8] = []
        for (n, line) in input.split(separator: 0x0a, omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }) { continue }
            do {
                let message = try JSONDecoder().decode(MessageRequest.self, from: Data(line))
                var defaults = MessageRequest.Defaults()
                defaults.type = type
                defaults.delivery = link.delivery
                defaults.customer = link.customer
                defaults.source = link.source
                defaults.tracking = !noTracking
                defaults.openTracking = !noOpenPixel
                defaults.parameters = try link.parameters()
                defaults.trackSensitive = trackSensitive
                let options = try message.options(base: link.base, defaults: defaults, issuedAt: LinkOptions.now())
                let result = try rewriter.rewrite(Array(message.body.utf8), options: options)
                out += try Self.encode(MessageResponse(result))
            } catch {
                failed += 1
                let reason = (error as? DecodingError).map { _ in "not a valid JSON message object" } ?? describe(error)
                out += try Self.encode(["error": "line \(n + 1): \(reason)"])
            }
            out.append(0x0a)
            if out.count > 1 << 16 {
                writeStandardOutput(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        writeStandardOutput(out)
        if failed > 0 { throw ValidationFailure("\(failed) of the messages could not be rewritten (see their error lines)") }
    }
}
