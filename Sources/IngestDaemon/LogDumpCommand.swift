import ArgumentParser
import EventLog
import Foundation
import LinkTracking

struct LogDumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the records of a log, up to its durable end.",
        discussion: """
            One line per record. Plain: 'lsn=N bytes=B' and the decoded event (a click or a \
            delivery, field=value), or, for a payload that is not a clickd event, the payload \
            as text when printable, else as hex. With --json: one JSON object per line with \
            lsn, bytes, the decoded "event" (or "error") and payload_base64. Records past the \
            durable watermark (written but not yet synced) are never shown.
            """
    )

    @OptionGroup var log: LogDirectoryArgument

    @Option(help: ArgumentHelp("Start at this LSN.", valueName: "lsn"))
    var from: UInt64 = 1

    @Flag(help: "One JSON object per line.")
    var json = false

    func validate() throws {
        if from == 0 { throw ValidationError("--from must be at least 1 (LSNs start at 1)") }
    }

    func run() async throws {
        try await runReportingErrors {
            let reader = try LogReader(directory: log.directory, from: from)
            var out = ""
            while true {
                let n = try reader.read(maxRecords: 4096) { lsn, payload in
                    let event = Result { () throws(EventCodec.DecodeError) in try EventCodec.decode(payload) }
                    if json {
                        var object: [String: Any] = ["lsn": lsn, "bytes": payload.count, "payload_base64": Data(payload).base64EncodedString()]
                        switch event {
                        case .success(let e): object["event"] = Self.fields(e).reduce(into: [String: String]()) { $0[$1.0] = $1.1 }
                        case .failure where EventCodec.isRedaction(payload): object["redacted"] = true
                        case .failure(let error): object["error"] = error.message
                        }
                        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                        out += String(decoding: data, as: UTF8.self) + "\n"
                    } else if case .success(let e) = event {
                        out +=
                            "lsn=\(lsn) bytes=\(payload.count) " + Self.fields(e).map { "\($0.0)=\(Self.quote($0.1))" }.joined(separator: " ") + "\n"
                    } else if EventCodec.isRedaction(payload) {
                        out += "lsn=\(lsn) bytes=\(payload.count) redacted\n"
                    } else {
                        out += "lsn=\(lsn) bytes=\(payload.count) payload=\(Self.render(payload))\n"
                    }
                }
                if !out.isEmpty {
                    writeStandardOutput(Array(out.utf8))
                    out.removeAll(keepingCapacity: true)
                }
                if n == 0 { break }
            }
        }
    }

    /// An event's fields, in a stable order.
    static func fields(_ event: TrackingEvent) -> [(String, String)] {
        switch event {
        case .click(let c):
            return [
                ("kind", "click"), ("at", timestamp(c.occurredAt)), ("method", c.method == .head ? "HEAD" : "GET"),
                ("delivery", c.token.deliveryID), ("customer", c.token.customerID),
                ("source", "\(c.token.sourceKind.name):\(c.token.sourceID)"), ("type", c.token.messageType.name),
                ("link", c.token.linkID), ("url", c.token.destination), ("issued", timestamp(seconds: c.token.issuedAt)),
                ("key", c.keyID), ("ua", c.userAgent), ("ip", address(c.clientIP)), ("edge", c.edgeID),
            ]
        case .delivered(let d):
            return [
                ("kind", "delivered"), ("at", timestamp(d.occurredAt)), ("delivery", d.deliveryID), ("customer", d.customerID),
                ("source", "\(d.sourceKind.name):\(d.sourceID)"), ("type", d.messageType.name), ("links", String(d.trackedLinks)),
            ]
        case .opened(let o):
            return [
                ("kind", "opened"), ("at", timestamp(o.occurredAt)), ("delivery", o.token.deliveryID), ("customer", o.token.customerID),
                ("source", "\(o.token.sourceKind.name):\(o.token.sourceID)"), ("type", o.token.messageType.name),
                ("issued", timestamp(seconds: o.token.issuedAt)), ("key", o.keyID), ("ua", o.userAgent), ("ip", address(o.clientIP)),
                ("edge", o.edgeID), ("apple_relay", o.appleRelay ? "yes" : "no"),
            ]
        }
    }

    static func timestamp(seconds: UInt64) -> String {
        let (milliseconds, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return overflow ? "\(seconds)s" : timestamp(milliseconds)
    }

    static func timestamp(_ milliseconds: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    static func address(_ bytes: [UInt8]) -> String { ClientAddressText.format(bytes) ?? "" }

    static func quote(_ text: String) -> String {
        if !text.isEmpty, !text.contains(where: { $0 == " " || $0 == "\"" || $0.isNewline }) { return text }
        return "\""
            + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    static func render(_ payload: UnsafeRawBufferPointer) -> String {
        if payload.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            return "\"" + String(decoding: payload, as: UTF8.self) + "\""
        }
        return "0x" + Hex.string(payload)
    }
}
