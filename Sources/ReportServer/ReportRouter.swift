import Foundation
import HTTPTypes
import Hummingbird
import LinkTracking
import Logging
import NIOCore
import NIOPosix

/// From a request to a page: the path (below `--base-path`) split into segments and
/// percent-decoded here, not by a router pattern, so that an id may hold any character —
/// `/`, `.`, `%` included — and the CSV twin (`.csv` at the end of the raw path) is never
/// confused with an id that ends in ".csv" (links encode that dot).
struct ReportResponder: Sendable {
    let pages: ReportPages
    /// `--base-path`: the prefix of the paths this server answers.
    let base: String
    let version: String
    let today: @Sendable () -> Int
    let logger: Logger
    let auth: AuthFile?
    /// Where bcrypt runs (the database's pool, bounded by `AuthFile`).
    let pool: NIOThreadPool
    /// `--trust-proxy`: peers whose `X-Forwarded-For` and `X-Forwarded-Prefix` are believed.
    let trustedProxies: [CIDR]
    let started = ContinuousClock.now

    /// Who asked, and the prefix under which their browser sees the report: `--base-path`,
    /// behind the `X-Forwarded-Prefix` of a trusted proxy that strips one.
    struct Origin: Sendable {
        var client: String
        var base: String
    }

    static let forwardedForHeader = HTTPField.Name("X-Forwarded-For")!
    static let forwardedPrefixHeader = HTTPField.Name("X-Forwarded-Prefix")!
    /// The longest request target an access line repeats.
    static let loggedTargetLimit = 1024

    /// Every request: its origin, the method, the credentials, the page; then one access
    /// line naming the client (docs/report.md, "Logs").
    func handle(_ request: Request, peer: SocketAddress?) async -> Response {
        let began = ContinuousClock.now
        var user: String?
        let (origin, bad) = resolveOrigin(request, peer: peer)
        let response: Response
        if let bad {
            logger.warning("bad header from a trusted proxy", metadata: ["client.address": "\(origin.client)", "error": "\(bad)"])
            response = problem(.badRequest, "Bad request", "The proxy in front sent \(bad.description).", base: base)
        } else {
            response = await authorized(request, origin: origin, user: &user)
        }
        let target = request.uri.description
        logger.info(
            "request",
            metadata: [
                "http.method": "\(request.method)",
                "http.target": "\(target.count > Self.loggedTargetLimit ? String(target.prefix(Self.loggedTargetLimit)) + "…" : target)",
                "http.status": "\(response.status.code)",
                "http.ms": "\(Self.milliseconds(ContinuousClock.now - began))",
                "client.address": "\(origin.client)",
                "user": "\(user ?? "-")",
            ])
        return response
    }

    /// The method, then the credentials (with `--auth-file`), then the page.
    func authorized(_ request: Request, origin: Origin, user: inout String?) async -> Response {
        guard request.method == .get || request.method == .head else {
            var response = problem(.methodNotAllowed, "Method not allowed", "The report answers GET only.", base: origin.base)
            response.headers[.allow] = "GET, HEAD"
            return response
        }
        if let auth {
            let now = UInt64((ContinuousClock.now - started).components.seconds)
            let authorization = request.headers[.authorization]
            switch await auth.check(authorization: authorization, pool: pool, now: now) {
            case .allowed(let name): user = name
            case .denied(let given):
                // A browser's first request carries no credentials; only a wrong pair is news.
                if authorization != nil {
                    logger.warning("sign-in refused", metadata: ["client.address": "\(origin.client)", "user": "\(given ?? "-")"])
                }
                var response = problem(.unauthorized, "Sign in", "The report asks for a user name and a password.", base: origin.base)
                response.headers[.wwwAuthenticate] = "Basic realm=\"clickd\", charset=\"UTF-8\""
                return response
            case .busy:
                var response = problem(.serviceUnavailable, "Busy", "Too many sign-ins at once.", retry: true, base: origin.base)
                response.headers[.retryAfter] = "1"
                return response
            }
        }
        return await respond(request, base: origin.base)
    }

    /// The client and the outward base path. From a trusted proxy, `X-Forwarded-For` names
    /// the client (the edge's rule, `ClientAddressText.client`) and `X-Forwarded-Prefix` is
    /// put before `--base-path` in every link; from anyone else both are ignored. A malformed
    /// prefix comes back beside the origin (whose client is still known, for the log).
    func resolveOrigin(_ request: Request, peer: SocketAddress?) -> (Origin, BadHeader?) {
        guard let peerBytes = peer?.ipAddress.flatMap(ClientAddressText.parse) else { return (Origin(client: "-", base: base), nil) }
        guard trustedProxies.contains(where: { $0.contains(peerBytes) }) else {
            return (Origin(client: ClientAddressText.format(peerBytes) ?? "-", base: base), nil)
        }
        // Repeated header lines are one comma-separated list (RFC 9110, 5.3).
        let forwarded = request.headers[values: Self.forwardedForHeader]
        let client = ClientAddressText.client(
            peer: peerBytes, forwardedFor: forwarded.isEmpty ? nil : forwarded.joined(separator: ","), trusted: trustedProxies)
        var origin = Origin(client: ClientAddressText.format(client) ?? "-", base: base)
        switch Self.forwardedPrefix(request.headers[values: Self.forwardedPrefixHeader]) {
        case .success(let prefix):
            origin.base = prefix + base
            return (origin, nil)
        case .failure(let bad): return (origin, bad)
        }
    }

    /// The prefix of a trusted proxy's `X-Forwarded-Prefix` lines: "" for none; one value
    /// valid as a `--base-path` (a trailing `/` dropped, so `/` is ""); anything else fails.
    static func forwardedPrefix(_ values: [String]) -> Result<String, BadHeader> {
        guard let value = values.first else { return .success("") }
        var prefix = value.trimmingCharacters(in: .whitespaces)
        if prefix.hasSuffix("/") { prefix.removeLast() }
        guard values.count == 1, ReportSetup.validBasePath(prefix) else {
            return .failure(BadHeader(description: "X-Forwarded-Prefix: expected one path, / then segments, e.g. /clicks"))
        }
        return .success(prefix)
    }

    struct BadHeader: Error, CustomStringConvertible {
        let description: String
    }

    static func milliseconds(_ duration: Duration) -> String { String(format: "%.1f", duration / .milliseconds(1)) }

    /// Security headers on every answer (docs/design/report.md, "Pages").
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        (HTTPField.Name("X-Robots-Tag")!, "noindex"),
    ]

    /// The page at `request`'s path; `outward` is the base its links are written with.
    func respond(_ request: Request, base outward: String) async -> Response {
        let rawPath = request.uri.path
        guard rawPath == base || rawPath.hasPrefix(base + "/") else {
            return problem(.notFound, "Not found", "Nothing is served at this address; the report is under \(outward)/.", base: outward)
        }
        var path = String(rawPath.dropFirst(base.count))
        if path.isEmpty { path = "/" }
        if path == "/report.css" {
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: Templates.stylesheet)))
            response.headers[.contentType] = "text/css; charset=utf-8"
            response.headers[.cacheControl] = "public, max-age=86400"
            return secured(response)
        }
        if path == "/favicon.svg" {
            var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: Templates.favicon)))
            response.headers[.contentType] = "image/svg+xml"
            response.headers[.cacheControl] = "public, max-age=86400"
            return secured(response)
        }
        let csv = path.hasSuffix(".csv")
        if csv { path = String(path.dropLast(4)) }
        var segments: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            guard let decoded = String(raw).removingPercentEncoding else {
                return problem(.badRequest, "Bad request", "The address holds a malformed percent-encoding.", base: outward)
            }
            segments.append(decoded)
        }
        if segments == [""] { segments = [] }
        let context: PageContext
        do {
            context = try pageContext(request, base: outward)
        } catch {
            return problem(.badRequest, "Bad request", "The \(error.description).", base: outward)
        }
        do {
            let result: PageResult
            switch (segments.count, segments.first) {
            case (0, _) where !csv: result = try await pages.sources(context, csv: false)
            case (1, "sources") where csv: result = try await pages.sources(context, csv: true)
            case (3, "sources"): result = try await pages.overview(kind: segments[1], id: segments[2], context, csv: csv)
            case (5, "sources") where segments[3] == "links":
                result = try await pages.segment(kind: segments[1], id: segments[2], link: segments[4], context, csv: csv)
            case (4, "sources") where segments[3] == "clicks" && csv:
                result = try await pages.clicksOverTime(kind: segments[1], id: segments[2], context)
            case (2, "people"): result = try await pages.person(customer: segments[1], context, csv: csv)
            case (2, "segments") where segments[1] == "clicked-link":
                result = try await pages.urlSegment(
                    url: try Self.single(request, "url"), source: try Self.single(request, "source"), since: try Self.single(request, "since"),
                    context, csv: csv)
            case (1, "bots"): result = try await pages.bots(context, csv: csv, byReason: false)
            case (2, "bots") where segments[1] == "reasons" && csv: result = try await pages.bots(context, csv: true, byReason: true)
            default: return problem(.notFound, "Not found", "There is no report page at this address.", base: outward)
            }
            return try await answer(result, context: context)
        } catch let bad as BadParameter {
            return problem(.badRequest, "Bad request", "The \(bad.description).", base: outward)
        } catch let down as ReportDatabase.Unavailable {
            logger.warning("database unavailable", metadata: ["error": "\(down)"])
            var response = problem(
                .serviceUnavailable, "The database is not answering", "PostgreSQL cannot be reached right now.", retry: true, base: outward)
            response.headers[.retryAfter] = "5"
            return response
        } catch {
            logger.error("page failed", metadata: ["path": "\(rawPath)", "error": "\(error)"])
            return problem(.internalServerError, "Something went wrong", "This page failed; the report's log says why.", base: outward)
        }
    }

    /// A query parameter given at most once.
    static func single(_ request: Request, _ name: String) throws(BadParameter) -> String? {
        let all = request.uri.queryParameters.getAll(name)
        guard all.count <= 1 else { throw BadParameter(name: name, expected: "one value, not \(all.count)") }
        return all.first.map { String($0) }
    }

    func pageContext(_ request: Request, base outward: String) throws(BadParameter) -> PageContext {
        func value(_ name: String) throws(BadParameter) -> String? { try Self.single(request, name) }
        let range = try DayRange.parse(from: try value("from"), to: try value("to"), today: today())
        let bots: Bool
        switch try value("bots") {
        case nil, "exclude": bots = false
        case "include": bots = true
        default: throw BadParameter(name: "bots", expected: "exclude or include")
        }
        return PageContext(base: outward, range: range, includeBots: bots, sort: try value("sort"), after: try value("after"))
    }

    func answer(_ result: PageResult, context: PageContext) async throws -> Response {
        switch result {
        case .html(let title, let body):
            return html(.ok, title: title, body: body, base: context.base)
        case .notFound(let message):
            return problem(.notFound, "Not found", message, base: context.base)
        case .csv(let filename, let header, let fetch):
            // The first chunk before the headers: a database that is down is still a 503.
            let first = try await fetch(nil)
            var response = Response(
                status: .ok,
                body: ResponseBody { writer in
                    var chunk = first
                    var text = CSV.row(header)
                    while true {
                        for row in chunk.rows { text += CSV.row(row) }
                        try await writer.write(ByteBuffer(string: text))
                        text = ""
                        guard let after = chunk.after else { break }
                        chunk = try await fetch(after)
                    }
                    try await writer.finish(nil)
                })
            response.headers[.contentType] = "text/csv; charset=utf-8; header=present"
            response.headers[.contentDisposition] = "attachment; filename=\"\(Self.safeFilename(filename))\""
            response.headers[.cacheControl] = "no-store"
            return secured(response)
        }
    }

    /// A file name for Content-Disposition: ASCII letters, digits, `-`, `_` and `.`; every other
    /// character becomes `_` (ids are anyone's text; a quote or CR must not reach the header).
    static func safeFilename(_ name: String) -> String {
        String(
            name.unicodeScalars.map { s in
                s.isASCII && (CharacterSet.alphanumerics.contains(s) || "-_.".unicodeScalars.contains(s)) ? Character(s) : "_"
            })
    }

    func html(_ status: HTTPResponse.Status, title: String, body: String, base: String) -> Response {
        let page = Templates.render("layout", ["title": title, "base": base, "body": body, "version": version])
        var response = Response(status: status, body: .init(byteBuffer: ByteBuffer(string: page)))
        response.headers[.contentType] = "text/html; charset=utf-8"
        response.headers[.cacheControl] = "no-store"
        return secured(response)
    }

    func problem(_ status: HTTPResponse.Status, _ heading: String, _ message: String, retry: Bool = false, base: String) -> Response {
        html(status, title: heading, body: Templates.render("problem", ["heading": heading, "message": message, "retry": retry]), base: base)
    }

    func secured(_ response: Response) -> Response {
        var response = response
        for (name, value) in Self.securityHeaders { response.headers[name] = value }
        return response
    }
}
