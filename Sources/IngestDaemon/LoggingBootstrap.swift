import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Sets up swift-log once per process: readable lines on a terminal, logfmt lines
/// (`time=… level=… msg="…" key=value`) otherwise, always on stderr. The level comes from
/// `CLICKD_LOG_LEVEL` (default info).
enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false

    static func bootstrap() {
        guard !done else { return }
        done = true
        let level = getenv("CLICKD_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0).lowercased()) } ?? .info
        let terminal = isatty(STDERR_FILENO) != 0
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, terminal: terminal)
            handler.logLevel = level
            return handler
        }
    }
}

struct LineLogHandler: LogHandler {
    let label: String
    let terminal: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let fields = all.sorted { $0.key < $1.key }
        var line: String
        if terminal {
            line = "\(Self.timestamp(utc: false)) \(event.level.rawValue.uppercased()) \(Self.escapingControls("\(event.message)"))"
            for (key, value) in fields { line += " \(key)=\(Self.escapingControls("\(value)"))" }
        } else {
            line = "time=\(Self.timestamp(utc: true)) level=\(event.level.rawValue) logger=\(label) msg=\(Self.quote("\(event.message)"))"
            for (key, value) in fields { line += " \(key)=\(Self.quote("\(value)"))" }
        }
        writeStandardError(line + "\n")
    }

    /// A logfmt value: bare when it can be, else in quotes; control characters always
    /// escaped, so a value from a client (a path, a user name) cannot forge a line.
    static func quote(_ text: String) -> String {
        if !text.isEmpty, !text.unicodeScalars.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || isControl($0) }) { return text }
        return "\"" + escapingControls(text, quotes: true) + "\""
    }

    /// `text` with `\n`, `\r`, `\t` and every other control character (C0, DEL, C1, and the
    /// bidirectional overrides that reorder a terminal's line) written as escapes.
    static func escapingControls(_ text: String, quotes: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) || (quotes && ($0 == "\"" || $0 == "\\")) }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"" where quotes: out += "\\\""
            case "\\" where quotes: out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || (0x202a...0x202e).contains(scalar.value)
            || (0x2066...0x2069).contains(scalar.value)
    }

    static func timestamp(utc: Bool) -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var parts = tm()
        var seconds = ts.tv_sec
        if utc { gmtime_r(&seconds, &parts) } else { localtime_r(&seconds, &parts) }
        var buffer = [CChar](repeating: 0, count: 40)
        let n = strftime(&buffer, buffer.count, utc ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &parts)
        let base = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let millis = String(ts.tv_nsec / 1_000_000)
        let frac = "." + String(repeating: "0", count: 3 - millis.count) + millis
        return base + frac + (utc ? "Z" : "")
    }
}
