import ArgumentParser
import EventLog
import Foundation

struct LogDumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the records of a log, up to its durable end.",
        discussion: """
            One line per record. Plain: 'lsn=N bytes=B payload=…' with the payload as text when \
            it is printable, else as hex. With --json: one JSON object per line with lsn, \
            bytes and payload_base64. Records past the durable watermark (written but not yet \
            synced) are never shown.
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
                    if json {
                        out += "{\"lsn\":\(lsn),\"bytes\":\(payload.count),\"payload_base64\":\"\(Data(payload).base64EncodedString())\"}\n"
                    } else {
                        out += "lsn=\(lsn) bytes=\(payload.count) payload=\(Self.render(payload))\n"
                    }
                }
                if !out.isEmpty {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out.removeAll(keepingCapacity: true)
                }
                if n == 0 { break }
            }
        }
    }

    static func render(_ payload: UnsafeRawBufferPointer) -> String {
        if payload.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) {
            return "\"" + String(decoding: payload, as: UTF8.self) + "\""
        }
        return "0x" + payload.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
