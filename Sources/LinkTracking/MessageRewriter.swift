/// Everything a rewrite needs to know about the message besides its body.
public struct RewriteOptions: Sendable {
    /// The tracking base, `https://t.example.com` (a trailing `/` is ignored).
    public var baseURL: String
    public var messageType: LinkToken.MessageType
    public var deliveryID: String
    public var customerID: String
    public var sourceKind: LinkToken.SourceKind
    public var sourceID: String
    /// False for a message (or newsletter) with tracking switched off: no link is tracked
    /// and no open pixel is added.
    public var tracking: Bool = true
    /// False to track an email's links but add no open pixel.
    public var openTracking: Bool = true
    /// Appended to each destination whose link asks for URL parameters.
    public var urlParameters: [URLParameter] = []
    /// Track links that look sensitive (password resets, signed downloads) too.
    public var trackSensitive: Bool = false
    /// Seconds since the Unix epoch, written into every token.
    public var issuedAt: UInt64

    public init(
        baseURL: String, messageType: LinkToken.MessageType, deliveryID: String, customerID: String,
        sourceKind: LinkToken.SourceKind, sourceID: String, issuedAt: UInt64
    ) {
        self.baseURL = baseURL
        self.messageType = messageType
        self.deliveryID = deliveryID
        self.customerID = customerID
        self.sourceKind = sourceKind
        self.sourceID = sourceID
        self.issuedAt = issuedAt
    }

    /// Why the message's ids cannot be signed (a control character in one), or nil. Callers
    /// refuse such a message with this line; the rewriter itself signs none of its links.
    public var idProblem: String? {
        LinkToken.idProblem(deliveryID, name: "delivery id") ?? LinkToken.idProblem(customerID, name: "customer id")
            ?? LinkToken.idProblem(sourceID, name: "source id")
    }
}

public struct URLParameter: Sendable, Equatable, Codable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// One link found in a message: what it is and whether (and why not) it is tracked.
public struct LinkSummary: Sendable, Equatable, Codable {
    public var id: String
    /// The destination as decoded (and, when tracked or parameterised, with URL parameters).
    public var destination: String
    public var tracked: Bool
    public var trackedURL: String?
    /// Why the link is not tracked.
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case id, destination, tracked
        case trackedURL = "tracked_url"
        case reason
    }
}

public struct RewriteResult: Sendable {
    public var body: [UInt8]
    public var links: [LinkSummary]
    public var warnings: [String]
    /// The open pixel's URL when the rewrite inserted one (a tracked email), else nil.
    public var openPixel: String? = nil
}

/// Turns an outgoing message into one whose links are tracked: `cio_link` tags in every
/// message type, and in email every `<a href>` with an http(s) URL unless opted out.
/// Pure: no files, no clock (the issue time comes in the options).
public struct MessageRewriter: Sendable {
    public let keyRing: KeyRing

    public init(keyRing: KeyRing) { self.keyRing = keyRing }

    public func rewrite(_ body: [UInt8], options: RewriteOptions) throws(RewriteError) -> RewriteResult {
        let base = options.baseURL.hasSuffix("/") ? String(options.baseURL.dropLast()) : options.baseURL
        var result = RewriteResult(body: [], links: [], warnings: messageWarnings(options, base: base), openPixel: nil)
        let parameters = URLParameters(options.urlParameters.map { ($0.key, $0.value) })
        let tags = try body.withUnsafeBufferPointer { (raw) throws(RewriteError) in try LinkTagParser.parse(raw) }

        // 1. cio_link tags, in every message type.
        var afterTags: [UInt8] = []
        var tagOutputs: [Range<Int>] = []
        if tags.isEmpty {
            afterTags = body
        } else {
            afterTags.reserveCapacity(body.count + tags.count * 200)
            var copied = 0
            for tag in tags {
                afterTags.append(contentsOf: body[copied..<tag.range.lowerBound])
                let raw = options.messageType == .email ? HTMLEntities.decode(Array(tag.url.utf8)[...]) : tag.url
                let link = decide(
                    url: raw, linkID: tag.linkID, wantsTracking: tag.track, urlParams: tag.urlParams,
                    force: tag.force, options: options, parameters: parameters, base: base, result: &result)
                let output = link.trackedURL ?? link.destination
                let text = options.messageType == .email ? HTMLEntities.escapeAttribute(output) : output
                let start = afterTags.count
                afterTags.append(contentsOf: text.utf8)
                tagOutputs.append(start..<afterTags.count)
                copied = tag.range.upperBound
            }
            afterTags.append(contentsOf: body[copied...])
        }
        guard options.messageType == .email else {
            result.body = afterTags
            return result
        }

        // 2. <a href> in email; where the open pixel goes, and whether one is there already.
        var edits: [(range: Range<Int>, text: [UInt8])] = []
        var lastBodyEnd: Int?
        var openEnd = afterTags.count
        var holdsPixel = false
        let pixelPrefix = Array((base + "/o/").utf8)
        afterTags.withUnsafeBufferPointer { bytes in
            var nextTag = 0
            openEnd = HTMLScanner.tags(bytes) { tag in
                if HTMLScanner.tag(tag, in: bytes, isNamed: "body") {
                    if tag.isEnd { lastBodyEnd = tag.range.lowerBound }
                    return
                }
                if !tag.isEnd, HTMLScanner.tag(tag, in: bytes, isNamed: "img") {
                    let anchor = HTMLScanner.Anchor(range: tag.range, attributes: tag.attributes)
                    if let src = attribute("src", of: anchor, in: bytes)?.value,
                        HTMLEntities.decode(Array(UnsafeBufferPointer(rebasing: bytes[src]))[...]).trimmingASCIIWhitespace().utf8
                            .starts(with: pixelPrefix)
                    {
                        holdsPixel = true
                    }
                    return
                }
                guard !tag.isEnd, HTMLScanner.tag(tag, in: bytes, isNamed: "a") else { return }
                let anchor = HTMLScanner.Anchor(range: tag.range, attributes: tag.attributes)
                guard let href = attribute("href", of: anchor, in: bytes), let valueRange = href.value else { return }
                while nextTag < tagOutputs.count, tagOutputs[nextTag].upperBound <= valueRange.lowerBound { nextTag += 1 }
                if nextTag < tagOutputs.count, tagOutputs[nextTag].overlaps(valueRange) || tagOutputs[nextTag] == valueRange {
                    return  // the href came from a cio_link tag: already decided
                }
                let url = HTMLEntities.decode(Array(UnsafeBufferPointer(rebasing: bytes[valueRange]))[...]).trimmingASCIIWhitespace()
                var optOut: String?
                if let cls = attribute("class", of: anchor, in: bytes), let v = cls.value,
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[v]), as: UTF8.self).lowercased()
                        .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).contains("untracked")
                {
                    optOut = "class=\"untracked\""
                } else if let ct = attribute("clicktracking", of: anchor, in: bytes), let v = ct.value,
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[v]), as: UTF8.self).lowercased() == "off"
                {
                    optOut = "clicktracking=off"
                } else if attribute("data-pm-no-track", of: anchor, in: bytes) != nil {
                    optOut = "data-pm-no-track"
                } else if attribute("ses:no-track", of: anchor, in: bytes) != nil {
                    optOut = "ses:no-track"
                }
                let linkID = attribute("data-link-id", of: anchor, in: bytes)?.value.map {
                    HTMLEntities.decode(Array(UnsafeBufferPointer(rebasing: bytes[$0]))[...])
                }
                let force =
                    attribute("data-clickd-track", of: anchor, in: bytes)?.value.map {
                        String(decoding: UnsafeBufferPointer(rebasing: bytes[$0]), as: UTF8.self).lowercased() == "force"
                    } ?? false
                if url.hasPrefix(base + "/c/") { return }  // already a tracked link
                let link = decide(
                    url: url, linkID: linkID, wantsTracking: true, urlParams: true, force: force,
                    options: options, parameters: parameters, base: base, optOut: optOut, isTag: false, result: &result)
                guard let tracked = link.trackedURL else { return }
                let quote = href.quote ?? UInt8(ascii: "\"")
                let escaped = HTMLEntities.escapeAttribute(tracked, quote: quote)
                edits.append((valueRange, href.quote == nil ? [quote] + Array(escaped.utf8) + [quote] : Array(escaped.utf8)))
            }
        }
        // 3. The open pixel, once, just before the last </body>; without one, at the end —
        // before an unclosed tag, comment or script there, which would swallow it (and, for
        // a tag, could close over it and change the document).
        if let pixel = openPixel(options, base: base, holdsPixel: holdsPixel, result: &result) {
            let at = lastBodyEnd ?? openEnd
            // In offset order: anchors after the last </body> (browsers keep them) come later.
            let index = edits.firstIndex { $0.range.lowerBound >= at } ?? edits.count
            edits.insert((at..<at, Array(pixel.utf8)), at: index)
        }
        guard !edits.isEmpty else {
            result.body = afterTags
            return result
        }
        var out: [UInt8] = []
        out.reserveCapacity(afterTags.count + edits.count * 160)
        var copied = 0
        for edit in edits {
            out.append(contentsOf: afterTags[copied..<edit.range.lowerBound])
            out.append(contentsOf: edit.text)
            copied = edit.range.upperBound
        }
        out.append(contentsOf: afterTags[copied...])
        result.body = out
        return result
    }

    /// The pixel's markup: a 1×1 image clients render and people do not see (docs/design/opens.md).
    public static func pixelMarkup(_ url: String) -> String {
        "<img src=\"\(HTMLEntities.escapeAttribute(url))\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0;width:1px;height:1px\" />"
    }

    /// The open pixel's markup for a tracked email, or nil — tracking off (the email's or its
    /// newsletter's: that switches opens off too), a pixel already there, ids that cannot be
    /// signed, no active key — and the pixel's URL in the result.
    private func openPixel(_ options: RewriteOptions, base: String, holdsPixel: Bool, result: inout RewriteResult) -> String? {
        guard options.tracking, options.openTracking, !holdsPixel, options.idProblem == nil else { return nil }
        let open = OpenToken(
            deliveryID: options.deliveryID, customerID: options.customerID, sourceKind: options.sourceKind,
            sourceID: options.sourceID, messageType: options.messageType, issuedAt: options.issuedAt)
        guard let token = try? keyRing.sign(open) else {
            result.warnings.append("no open pixel: every key in the key ring is retired")
            return nil
        }
        guard token.utf8.count <= TokenCodec.maxTokenLength else {
            result.warnings.append("no open pixel: its token would be \(token.utf8.count) characters, the edge accepts \(TokenCodec.maxTokenLength)")
            return nil
        }
        let url = base + "/o/" + token
        result.openPixel = url
        return Self.pixelMarkup(url)
    }

    /// How the reason of a link too long to track begins.
    public static let tooLongReason = "too long to track"

    /// One link on its own (`clickd links sign`): the same rules as a link in a message,
    /// with URL parameters appended. Returns its summary and any warnings.
    public func link(url: String, linkID: String?, force: Bool, options: RewriteOptions) -> (LinkSummary, [String]) {
        var result = RewriteResult(body: [], links: [], warnings: [])
        let base = options.baseURL.hasSuffix("/") ? String(options.baseURL.dropLast()) : options.baseURL
        let summary = decide(
            url: url, linkID: linkID, wantsTracking: true, urlParams: true, force: force,
            options: options, parameters: URLParameters(options.urlParameters.map { ($0.key, $0.value) }),
            base: base, result: &result)
        return (summary, messageWarnings(options, base: base) + result.warnings)
    }

    /// Warnings about the message as a whole: an http base, ids that look like personal data.
    private func messageWarnings(_ options: RewriteOptions, base: String) -> [String] {
        var warnings: [String] = []
        if options.tracking, base.lowercased().hasPrefix("http://") {
            warnings.append("the tracking base \(base) is http: a tracking domain whose parent sends HSTS only works over https")
        }
        for (name, id) in [("delivery id", options.deliveryID), ("customer id", options.customerID), ("source id", options.sourceID)] {
            if let why = LinkPolicy.personalDataReason(id) {
                warnings.append("\(name) '\(id)' \(why): link tokens are signed, not encrypted — anyone with the link can read it")
            }
        }
        return warnings
    }

    /// Decides one link, signs it if tracked, and records it in the summary.
    private func decide(
        url: String, linkID: String?, wantsTracking: Bool, urlParams: Bool, force: Bool,
        options: RewriteOptions, parameters: URLParameters, base: String, optOut: String? = nil, isTag: Bool = true,
        result: inout RewriteResult
    ) -> LinkSummary {
        let destination = urlParams ? parameters.append(to: url) : url
        // Without an explicit id, a link is known by the URL the person reaches, so the
        // token stores it once.
        var link = LinkSummary(id: linkID ?? destination, destination: destination, tracked: false, trackedURL: nil, reason: nil)
        if let why = LinkPolicy.untrackableReason(url) {
            link.reason = why
            link.destination = url
        } else if let optOut {
            link.reason = "opted out (\(optOut))"
            link.destination = url
        } else if !options.tracking {
            link.reason = "tracking is off for this message"
        } else if !wantsTracking {
            link.reason = "track: false"
        } else if let why = options.idProblem ?? linkID.flatMap({ LinkToken.idProblem($0, name: "its link id") }) {
            link.reason = why
            result.warnings.append("not tracking \(url): \(why)")
        } else if let why = LinkPolicy.sensitiveReason(url), !(force || options.trackSensitive) {
            link.reason = "sensitive link: \(why)"
            result.warnings.append("not tracking \(url): \(why); force with data-clickd-track=\"force\" or force: true")
        } else {
            let token = LinkToken(
                destination: destination, deliveryID: options.deliveryID, customerID: options.customerID,
                sourceKind: options.sourceKind, sourceID: options.sourceID, messageType: options.messageType,
                linkID: linkID ?? destination, issuedAt: options.issuedAt)
            if let key = keyRing.signingKey {
                let signed = KeyRing.sign(token, with: key)
                if signed.utf8.count > TokenCodec.maxTokenLength {
                    // The edge refuses such a token (414, or 404 as too long): a tracked link
                    // would be a dead one, so the link stays as written.
                    link.reason =
                        Self.tooLongReason + ": its token would be \(signed.utf8.count) characters, the edge accepts \(TokenCodec.maxTokenLength)"
                    result.warnings.append("not tracking \(url.utf8.count > 200 ? String(url.prefix(200)) + "…" : url): \(link.reason!)")
                } else {
                    link.tracked = true
                    link.trackedURL = base + "/c/" + signed
                }
            } else {
                link.reason = "no active key in the key ring"
                result.warnings.append("not tracking \(url): every key in the key ring is retired")
            }
        }
        if !link.tracked && !isTag {
            // An untracked <a href> stays exactly as written.
            link.destination = url
            if linkID == nil { link.id = url }
        }
        result.links.append(link)
        return link
    }

    /// The first attribute named `name` (ASCII case-insensitive), as browsers use the first.
    private func attribute(_ name: StaticString, of anchor: HTMLScanner.Anchor, in bytes: UnsafeBufferPointer<UInt8>) -> HTMLScanner.Attribute? {
        let target = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        return anchor.attributes.first { attr in
            attr.name.count == target.count
                && zip(attr.name, target).allSatisfy { i, t in
                    let c = bytes[i]
                    return (c >= 0x41 && c <= 0x5a ? c | 0x20 : c) == t
                }
        }
    }
}
