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
            line = "\(Self.timestamp(utc: false)) \(event.level.rawValue.uppercased()) \(event.message)"
            for (key, value) in fields { line += " \(key)=\(value)" }
        } else {
            line = "time=\(Self.timestamp(utc: true)) level=\(event.level.rawValue) logger=\(label) msg=\(Self.quote("\(event.message)"))"
            for (key, value) in fields { line += " \(key)=\(Self.quote("\(value)"))" }
        }
        writeStandardError(line + "\n")
    }

    static func quote(_ text: String) -> String {
        if !text.isEmpty, !text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }) { return text }
        var out = "\""
        for ch in text {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out + "\""
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
