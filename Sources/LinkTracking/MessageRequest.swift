/// One message to rewrite as JSON carries it: a line of `clickd links rewrite --jsonl`, or
/// the body of the edge's `POST /v1/messages`.
///
///     {"body": "…", "type": "email", "delivery": "d1", "customer": "c1",
///      "campaign" | "newsletter" | "transactional": "…", "tracking": true,
///      "open_tracking": true, "url_params": {"utm_source": "newsletter"}}
public struct MessageRequest: Decodable, Sendable {
    public var body: String
    public var type: String?
    public var delivery: String?
    public var customer: String?
    public var campaign: String?
    public var newsletter: String?
    public var transactional: String?
    public var tracking: Bool?
    /// False: the email's links are tracked (if `tracking`) but it gets no open pixel.
    public var openTracking: Bool?
    public var urlParams: [String: String]?

    enum CodingKeys: String, CodingKey {
        case body, type, delivery, customer, campaign, newsletter, transactional, tracking
        case openTracking = "open_tracking"
        case urlParams = "url_params"
    }

    /// What a request may leave out (from the command line, for `--jsonl`).
    public struct Defaults: Sendable {
        public var type: LinkToken.MessageType?
        public var delivery: String?
        public var customer: String?
        public var source: (LinkToken.SourceKind, String)?
        public var tracking = true
        public var openTracking = true
        public var parameters: [URLParameter] = []
        public var trackSensitive = false

        public init() {}
    }

    /// The rewrite options this request asks for, or why it cannot be rewritten.
    public func options(base: String, defaults: Defaults = Defaults(), issuedAt: UInt64) throws(MessageRequestError) -> RewriteOptions {
        let sources: [(LinkToken.SourceKind, String)] = [
            campaign.map { (.campaign, $0) }, newsletter.map { (.newsletter, $0) }, transactional.map { (.transactional, $0) },
        ].compactMap { $0 }
        guard sources.count <= 1 else { throw MessageRequestError("give only one of campaign, newsletter, transactional") }
        let messageType: LinkToken.MessageType
        if let type {
            guard let t = LinkToken.MessageType(name: type) else {
                throw MessageRequestError("unknown type '\(type)' (email, sms, push, webhook, slack)")
            }
            messageType = t
        } else if let t = defaults.type {
            messageType = t
        } else {
            throw MessageRequestError("missing type")
        }
        guard let delivery = delivery ?? defaults.delivery, !delivery.isEmpty else { throw MessageRequestError("missing delivery") }
        guard let customer = customer ?? defaults.customer, !customer.isEmpty else { throw MessageRequestError("missing customer") }
        guard let source = sources.first ?? defaults.source else { throw MessageRequestError("missing campaign, newsletter or transactional") }
        var options = RewriteOptions(
            baseURL: base, messageType: messageType, deliveryID: delivery, customerID: customer,
            sourceKind: source.0, sourceID: source.1, issuedAt: issuedAt)
        options.tracking = tracking ?? defaults.tracking
        options.openTracking = openTracking ?? defaults.openTracking
        options.urlParameters =
            urlParams.map { $0.sorted { $0.key < $1.key }.map { URLParameter(key: $0.key, value: $0.value) } }
            ?? defaults.parameters
        options.trackSensitive = defaults.trackSensitive
        if let why = options.idProblem { throw MessageRequestError(why) }
        return options
    }
}

public struct MessageRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The answer for one rewritten message: the body and what happened to each link.
public struct MessageResponse: Encodable, Sendable {
    public var body: String
    public var links: [LinkSummary]
    public var warnings: [String]
    /// The open pixel's URL, when the email got one (`open_pixel`; absent otherwise).
    public var openPixel: String?

    enum CodingKeys: String, CodingKey {
        case body, links, warnings
        case openPixel = "open_pixel"
    }

    public init(body: String, links: [LinkSummary], warnings: [String], openPixel: String? = nil) {
        self.body = body
        self.links = links
        self.warnings = warnings
        self.openPixel = openPixel
    }

    public init(_ result: RewriteResult) {
        self.init(
            body: String(decoding: result.body, as: UTF8.self), links: result.links, warnings: result.warnings, openPixel: result.openPixel)
    }
}

extension DeliveredEvent {
    /// The delivery a rewritten message stands for.
    public init(_ options: RewriteOptions, result: RewriteResult, occurredAt: UInt64) {
        self.init(
            occurredAt: occurredAt, messageType: options.messageType, sourceKind: options.sourceKind, sourceID: options.sourceID,
            deliveryID: options.deliveryID, customerID: options.customerID,
            trackedLinks: UInt32(clamping: result.links.filter(\.tracked).count))
    }
}
