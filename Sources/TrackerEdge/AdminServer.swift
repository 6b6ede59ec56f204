import EventLog
import Foundation
import Hummingbird
import LinkTracking
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Systemd

/// The admin listener (loopback by default), on Hummingbird:
///
/// - `POST /v1/messages` (bearer token): rewrites a message exactly as
///   `clickd links rewrite --json` does and records a `delivered` event — the denominator
///   of click rates — before answering;
/// - `GET /healthz`: 200 while the log takes appends, else 503;
/// - `GET /metrics`: the edge's metrics in Prometheus text format.
///
/// A `Service` in the edge's service group: it binds when the group runs it, and stops with
/// Hummingbird's graceful shutdown.
public final class AdminServer: Service {
    private let application: Application<RouterResponder<BasicRequestContext>>
    private let bound = OneShot<Int>()
    private let settings: Settings
    private let logger: Logger

    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 8081
        /// `Authorization: Bearer <token>` for POST /v1/messages; nil disables that route (403).
        public var token: String?
        /// The tracking base used to rewrite messages, e.g. https://t.example.com.
        public var base: String
        public var maxBodyBytes = 4 << 20

        public init(base: String) { self.base = base }
    }

    public init(
        settings: Settings, keys: KeyRingStore, writer: EventLogWriter, counters: EdgeCounters, logger: Logger,
        now: @escaping @Sendable () -> UInt64 = EdgeServer.wallClockMilliseconds
    ) {
        self.settings = settings
        self.logger = logger
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            writer.isAcceptingAppends
                ? Self.text(.ok, "ok\n")
                : Self.text(.serviceUnavailable, "the log refuses appends\n")
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: counters.registry.emitToBuffer())))
        }
        router.post("/v1/messages") { request, _ -> Response in
            guard let token = settings.token else {
                return Self.json(.forbidden, ["error": "the message API is off: start the edge with --admin-token-file"])
            }
            guard let presented = Self.bearerToken(request.headers[.authorization] ?? ""),
                constantTimeEqual(Array(presented.utf8), Array(token.utf8))
            else {
                var response = Self.json(.unauthorized, ["error": "missing or wrong bearer token"])
                response.headers[.wwwAuthenticate] = "Bearer"
                return response
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: settings.maxBodyBytes)
            } catch {
                return Self.json(.contentTooLarge, ["error": "message larger than \(settings.maxBodyBytes) bytes"])
            }
            let message: MessageRequest
            do {
                message = try JSONDecoder().decode(MessageRequest.self, from: Data(buffer: body))
            } catch {
                return Self.json(.badRequest, ["error": "not a valid JSON message: \(Self.reason(error))"])
            }
            let occurredAt = now()
            let options: RewriteOptions
            let result: RewriteResult
            do {
                options = try message.options(base: settings.base, issuedAt: occurredAt / 1000)
                result = try MessageRewriter(keyRing: keys.current).rewrite(Array(message.body.utf8), options: options)
            } catch let error as MessageRequestError {
                return Self.json(.badRequest, ["error": error.description])
            } catch {
                return Self.json(.badRequest, ["error": "\(error)"])
            }
            do {
                _ = try await writer.append(EventCodec.encode(.delivered(DeliveredEvent(options, result: result, occurredAt: occurredAt))))
                counters.deliveries.increment()
            } catch {
                return Self.json(.serviceUnavailable, ["error": "the delivery could not be recorded: \(error)"])
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            let data = try encoder.encode(MessageResponse(result))
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }

        let bound = self.bound
        application = Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "clickd-admin"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("admin listening", metadata: ["admin.listen": "\(settings.host):\(port)"])
                bound.fulfil(.success(port))
            },
            logger: logger)
    }

    /// Serves until graceful shutdown; a listener that cannot bind ends the edge.
    public func run() async throws {
        do {
            try await application.run()
        } catch {
            // Before it listened, the failure is the bind's; after, it is what it says.
            let listening = EdgeError("cannot listen on \(settings.host):\(settings.port) (admin): \(error)")
            if bound.fulfil(.failure(listening)) { throw listening }
            throw error
        }
        bound.fulfil(.failure(EdgeError("the admin listener stopped before it listened")))
    }

    /// The port bound, once the listener listens (throws if it could not).
    public func port() async throws -> Int { try await bound.value() }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: String]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted: return "malformed JSON"
        default: return "\(error)"
        }
    }

    /// The credentials of `Authorization: Bearer <token>`. The scheme is case-insensitive
    /// and may be followed by several spaces (RFC 9110 §11.1, §11.4); nil for another scheme.
    static func bearerToken(_ value: String) -> String? {
        let utf8 = value.utf8
        guard let space = utf8.firstIndex(of: UInt8(ascii: " ")),
            String(value[..<space]).lowercased() == "bearer"
        else { return nil }
        let credentials = value[space...].drop { $0 == " " }
        return credentials.isEmpty ? nil : String(credentials)
    }
}

extension EdgeCounters {
    /// For the log writer's `onBatchDurable` hook.
    public func recordBatch(_ records: Int) { batchSize.record(Double(records)) }
}
