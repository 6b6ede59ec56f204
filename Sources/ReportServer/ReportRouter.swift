import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// From a request to a page: the path (below `--base-path`) split into segments and
/// percent-decoded here, not by a router pattern, so that an id may hold any character —
/// `/`, `.`, `%` included — and the CSV twin (`.csv` at the end of the raw path) is never
/// confused with an id that ends in ".csv" (links encode that dot).
struct ReportResponder: Sendable {
    let pages: ReportPages
    let base: String
    let version: String
    let today: @Sendable () -> Int
    let logger: Logger

    /// Security headers on every answer (docs/design/report.md, "Pages").
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (.contentSecurityPolicy, "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        (HTTPField.Name("X-Robots-Tag")!, "noindex"),
    ]

    func respond(_ request: Request) async -> Response {
        let rawPath = request.uri.path
        guard rawPath == base || rawPath.hasPrefix(base + "/") else {
            return problem(.notFound, "Not found", "Nothing is served at this address; the report is under \(base)/.")
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
                return problem(.badRequest, "Bad request", "The address holds a malformed percent-encoding.")
            }
            segments.append(decoded)
        }
        if segments == [""] { segments = [] }
        let context: PageContext
        do {
            context = try pageContext(request)
        } catch {
            return problem(.badRequest, "Bad request", "The \(error.description).")
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
            default: return problem(.notFound, "Not found", "There is no report page at this address.")
            }
            return try await answer(result, context: context)
        } catch let bad as BadParameter {
            return problem(.badRequest, "Bad request", "The \(bad.description).")
        } catch let down as ReportDatabase.Unavailable {
            logger.warning("database unavailable", metadata: ["error": "\(down)"])
            var response = problem(.serviceUnavailable, "The database is not answering", "PostgreSQL cannot be reached right now.", retry: true)
            response.headers[.retryAfter] = "5"
            return response
        } catch {
            logger.error("page failed", metadata: ["path": "\(rawPath)", "error": "\(error)"])
            return problem(.internalServerError, "Something went wrong", "This page failed; the report's log says why.")
        }
    }

    /// A query parameter given at most once.
    static func single(_ request: Request, _ name: String) throws(BadParameter) -> String? {
        let all = request.uri.queryParameters.getAll(name)
        guard all.count <= 1 else { throw BadParameter(name: name, expected: "one value, not \(all.count)") }
        return all.first.map { String($0) }
    }

    func pageContext(_ request: Request) throws(BadParameter) -> PageContext {
        func value(_ name: String) throws(BadParameter) -> String? { try Self.single(request, name) }
        let range = try DayRange.parse(from: try value("from"), to: try value("to"), today: today())
        let bots: Bool
        switch try value("bots") {
        case nil, "exclude": bots = false
        case "include": bots = true
        default: throw BadParameter(name: "bots", expected: "exclude or include")
        }
        return PageContext(base: base, range: range, includeBots: bots, sort: try value("sort"), after: try value("after"))
    }

    func answer(_ result: PageResult, context: PageContext) async throws -> Response {
        switch result {
        case .html(let title, let body):
            return html(.ok, title: title, body: body)
        case .notFound(let message):
            return problem(.notFound, "Not found", message)
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

    func html(_ status: HTTPResponse.Status, title: String, body: String) -> Response {
        let page = Templates.render("layout", ["title": title, "base": base, "body": body, "version": version])
        var response = Response(status: status, body: .init(byteBuffer: ByteBuffer(string: page)))
        response.headers[.contentType] = "text/html; charset=utf-8"
        response.headers[.cacheControl] = "no-store"
        return secured(response)
    }

    func problem(_ status: HTTPResponse.Status, _ heading: String, _ message: String, retry: Bool = false) -> Response {
        html(status, title: heading, body: Templates.render("problem", ["heading": heading, "message": message, "retry": retry]))
    }

    func secured(_ response: Response) -> Response {
        var response = response
        for (name, value) in Self.securityHeaders { response.headers[name] = value }
        return response
    }
}
