import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain HTTP/1.1 client over a TCP socket, for tests: it sends exactly the bytes asked
/// for, never follows a redirect, and keeps its connection for the next request.
public final class HTTPTestConnection {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    private let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, host: String = "127.0.0.1", timeoutSeconds: Int = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw TestSupportError("connect to \(host):\(port): \(reason)")
        }
    }

    deinit { close(fd) }

    /// Sends raw bytes.
    public func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestSupportError("send: \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Sends what the socket takes now without blocking: the bytes sent (0 when its buffer
    /// is full), or nil once the peer has closed or reset the connection.
    public func trySend(_ bytes: [UInt8]) -> Int? {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        if n >= 0 { return n }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : nil
    }

    /// Sends a request and reads its response.
    public func request(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], body: String = "") throws -> Response {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: edge.test\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n" + body
        try send(Array(text.utf8))
        return try readResponse(method: method)
    }

    /// Reads one response (status line, headers, a Content-Length body).
    public func readResponse(method: String = "GET") throws -> Response {
        let headEnd = try readUntil([13, 10, 13, 10])
        let head = String(decoding: buffer[0..<headEnd], as: UTF8.self)
        buffer.removeFirst(headEnd + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestSupportError("bad status line in \(head)") }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        if method != "HEAD", headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased() == "chunked" }) {
            return Response(status: status, headers: headers, body: try readChunkedBody())
        }
        let length = method == "HEAD" ? 0 : Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        while buffer.count < length { try fill() }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return Response(status: status, headers: headers, body: body)
    }

    /// A chunked body (RFC 9112 §7.1): size lines in hex, chunks, a 0 chunk, trailers.
    private func readChunkedBody() throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let lineEnd = try readUntil([13, 10])
            let line = String(decoding: buffer[0..<lineEnd], as: UTF8.self)
            buffer.removeFirst(lineEnd + 2)
            guard let size = Int(line.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw TestSupportError("bad chunk size line: \(line)")
            }
            if size == 0 {
                // Trailers (none expected) end with an empty line.
                while true {
                    let end = try readUntil([13, 10])
                    buffer.removeFirst(end + 2)
                    if end == 0 { return body }
                }
            }
            while buffer.count < size + 2 { try fill() }
            body += buffer[0..<size]
            buffer.removeFirst(size + 2)
        }
    }

    /// The value of one Prometheus sample (`name{labels}`) from an edge's admin listener's /metrics.
    public static func metric(_ sample: String, adminPort: Int) throws -> Double? {
        Self.sample(sample, in: String(decoding: try HTTPTestConnection(port: adminPort).request("GET", "/metrics").body, as: UTF8.self))
    }

    /// The value of one sample in Prometheus text.
    public static func sample(_ sample: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    /// True when the server has closed the connection (reads end of stream).
    public func isClosedByPeer() -> Bool {
        (try? fill()) == nil
    }

    private func readUntil(_ marker: [UInt8]) throws -> Int {
        while true {
            if buffer.count >= marker.count {
                for i in 0...(buffer.count - marker.count) where buffer[i..<(i + marker.count)].elementsEqual(marker) { return i }
            }
            try fill()
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw TestSupportError(n == 0 ? "connection closed" : "recv: \(String(cString: strerror(errno)))") }
        buffer.append(contentsOf: chunk[0..<n])
    }
}

/// A `clickd edge` child process on a free port.
public final class EdgeProcess {
    public let process: Process
    public let port: Int
    /// The admin listener's port.
    public let adminPort: Int
    private let stderrReader: LineCollector

    /// Starts `clickd edge --listen 127.0.0.1:0 …` and waits until it listens.
    public init(
        log: String, keys: String, arguments: [String] = [], wrapper: [String] = [],
        environment: [String: String] = [:]
    ) throws {
        var attempt = 0
        var made: (Process, Pipe)
        while true {
            made = (Process(), Pipe())
            do {
                try Self.launch(made.0, made.1, log: log, keys: keys, arguments: arguments, wrapper: wrapper, environment: environment)
                break
            } catch  where attempt < 5 && ChildProcess.isSpawnRace(error) {
                attempt += 1
                usleep(20_000)
            }
        }
        process = made.0
        let err = made.1
        stderrReader = LineCollector(err.fileHandleForReading)
        let reader = stderrReader
        func listening(_ message: String, _ key: String) throws -> Int {
            let line = try reader.waitFor { $0.contains(message) }
            guard let range = line.range(of: key + "=127.0.0.1:"), let port = Int(line[range.upperBound...].prefix { $0.isNumber })
            else { throw TestSupportError("no port in: \(line)") }
            return port
        }
        port = try listening("edge listening", "edge.listen")
        adminPort = try listening("admin listening", "admin.listen")
    }

    private static func launch(
        _ process: Process, _ err: Pipe, log: String, keys: String, arguments: [String], wrapper: [String],
        environment: [String: String]
    ) throws {
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let clickd = RepositoryPaths.product("clickd")
        let args =
            [
                "edge", "--log", log, "--keys", keys, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                "--edge-id", "test-edge",
            ] + arguments
        if wrapper.isEmpty {
            process.executableURL = URL(fileURLWithPath: clickd)
            process.arguments = args
        } else {
            process.executableURL = URL(fileURLWithPath: wrapper[0])
            process.arguments = Array(wrapper.dropFirst()) + [clickd] + args
        }
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    public var stderrLines: [String] { stderrReader.lines }

    /// The edge's resident memory in MiB (VmRSS; a wrapper's child is not followed).
    public var residentMiB: Double {
        let status = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Double(line.split(separator: " ").dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
    }

    /// CPU seconds the edge has used (user + system).
    public var cpuSeconds: Double {
        let stat = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The value of one Prometheus sample (`name{labels}`) from the admin listener's /metrics.
    public func metric(_ sample: String) throws -> Double? { try HTTPTestConnection.metric(sample, adminPort: adminPort) }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to end; returns its exit status.
    @discardableResult
    public func wait(timeout: TimeInterval = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(5000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestSupportError("edge did not exit within \(timeout) s")
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Collects a child's output lines on a background thread.
public final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []
    private var partial = Data()
    private var ended = false

    public init(_ handle: FileHandle) {
        let reader = DescriptorReader(handle)
        Thread.detachNewThread { [self] in
            defer { lock.withLock { ended = true } }
            while true {
                let data = Data(reader.next())
                if data.isEmpty { break }
                lock.lock()
                partial.append(data)
                while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
                    collected.append(String(decoding: partial[partial.startIndex..<newline], as: UTF8.self))
                    partial = Data(partial[(newline + 1)...])
                }
                lock.unlock()
            }
        }
    }

    public var lines: [String] { lock.withLock { collected } }

    /// Waits until the stream ends (the writer closed it or died); returns every line.
    public func waitForEnd(timeout: TimeInterval = 30) throws -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while !lock.withLock({ ended }) {
            guard Date() < deadline else { throw TestSupportError("output did not end within \(timeout) s") }
            usleep(2000)
        }
        return lines
    }

    public func waitFor(timeout: TimeInterval = 30, _ match: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lock.withLock({ collected.first(where: match) }) { return line }
            usleep(2000)
        }
        throw TestSupportError("no matching line within \(timeout) s; got: \(lines.joined(separator: "\n"))")
    }
}
