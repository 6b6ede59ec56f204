// The fuzz targets of issue 12, one function per decoder of untrusted bytes, each with its
// invariant checked by `precondition` (a failed one is a crash libFuzzer keeps). Called by
// the libFuzzer executables of `Tests/Fuzz` (`make fuzz`) and, over the committed corpora,
// by `FuzzReplayTests` in `make test` (the normal debug build). docs/fuzzing.md.
//
// Debug builds only: the targets reach internal parsers through `@testable import`, which
// a release build (`make run`) does not allow; there the module is empty.
#if DEBUG
    @testable import EventLog
    import Foundation
    @testable import LinkTracking
    @testable import ReportServer
    @testable import TrackerEdge

    public enum FuzzTarget: String, CaseIterable, Sendable {
        case token
        case requestHead = "request-head"
        case eventCodec = "event-codec"
        case frame, html
        case linkTag = "link-tag"
        case keyRing = "key-ring"
        case reportInput = "report-input"
        case followerFile = "follower-file"
        case erasureFiles = "erasure-files"
        case locationURL = "location-url"
        case appleEgress = "apple-egress"

        public func run(_ data: UnsafeRawBufferPointer) {
            switch self {
            case .token: FuzzHarness.token(data)
            case .requestHead: FuzzHarness.requestHead(data)
            case .eventCodec: FuzzHarness.eventCodec(data)
            case .frame: FuzzHarness.frame(data)
            case .html: FuzzHarness.html(data)
            case .linkTag: FuzzHarness.linkTag(data)
            case .keyRing: FuzzHarness.keyRing(data)
            case .reportInput: FuzzHarness.reportInput(data)
            case .followerFile: FuzzHarness.followerFile(data)
            case .erasureFiles: FuzzHarness.erasureFiles(data)
            case .locationURL: FuzzHarness.locationURL(data)
            case .appleEgress: FuzzHarness.appleEgress(data)
            }
        }
    }

    public enum FuzzHarness {
        static let key = KeyRing.makeKey(kid: "fz", secret: [UInt8](repeating: 0x42, count: 32), created: "2026-01-01T00:00:00Z")
        static let ring = try! KeyRing(keys: [key])
        static let everyIPv4 = CIDR("0.0.0.0/0")!
        static let everyIPv6 = CIDR("::/0")!

        /// Token decode + verify. The input as token text: whatever verifies re-encodes to
        /// exactly that text (canonical base64url, one spelling per token). The input as the
        /// bytes of a token body, signed with the ring's key: the fields past the MAC are
        /// decoded too, and a token that verifies signs back to the same text. Both as a link
        /// token and as an open token: no text verifies as both.
        static func token(_ data: UnsafeRawBufferPointer) {
            let text = String(decoding: data, as: UTF8.self)
            let link = try? ring.verify(text).get()
            let open = try? ring.verifyOpen(text).get()
            precondition(link == nil || open == nil, "a text verified as a link token and as an open token")
            if let link { precondition(KeyRing.sign(link, with: key) == text, "a token verified in a spelling that is not its own") }
            if let open { precondition(try! ring.sign(open.token) == text, "an open token verified in a spelling that is not its own") }
            var body = Array(data)
            body.append(contentsOf: key.prepared.mac(body[...]).prefix(TokenCodec.macSize))
            let signed = TokenCodec.encode(body)
            if case .success(let token) = ring.verify(signed) {
                precondition(KeyRing.sign(token, with: key) == signed, "a verified token does not sign back to itself")
                precondition(token.idProblem == nil, "a token with a control character in an id verified")
            }
            if case .success(let open) = ring.verifyOpen(signed) {
                precondition(try! ring.sign(open.token) == signed, "a verified open token does not sign back to itself")
                precondition(open.token.idProblem == nil, "an open token with a control character in an id verified")
            }
        }

        /// `RequestHead.parse`, fed as the click handler feeds it: the first byte picks split
        /// points, each prefix goes through `RequestHeadScanner` and is parsed only when the
        /// scanner says so. The scanner may never hold back a head the parser would answer, and
        /// a complete head never claims more bytes than it was given.
        static func requestHead(_ data: UnsafeRawBufferPointer) {
            guard let seed = data.first else { return }
            let bytes = UnsafeRawBufferPointer(rebasing: data.dropFirst())
            let maxLine = 64 + Int(seed & 0x3f) * 8
            let maxHead = maxLine + 512
            let whole = RequestHead.parse(bytes, maxLineBytes: maxLine, maxHeadBytes: maxHead)
            if case .complete(_, let length) = whole { precondition(length > 0 && length <= bytes.count) }
            if case .blankLines(let length) = whole { precondition(length > 0 && length <= bytes.count) }
            var scanner = RequestHeadScanner()
            var end = 0
            let step = Int(seed >> 6) * 3 + 1
            var answered = false
            while end < bytes.count {
                end = min(bytes.count, end + step)
                let prefix = UnsafeRawBufferPointer(rebasing: bytes[..<end])
                if scanner.worthParsing(prefix, maxLineBytes: maxLine, maxHeadBytes: maxHead) {
                    if RequestHead.parse(prefix, maxLineBytes: maxLine, maxHeadBytes: maxHead) != .incomplete {
                        answered = true
                        break
                    }
                }
            }
            switch whole {
            case .complete, .blankLines:
                precondition(answered, "the scanner held back a head the parser answers: \(whole)")
            case .invalid:
                // A bad header line of a head that has not ended is answered when it ends, outgrows
                // its bound or times out (RequestHeadScanner): only then may the scanner wait.
                let ended =
                    bytes.count >= 4
                    && (0...(bytes.count - 4)).contains { i in
                        bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10
                    }
                precondition(answered || (!ended && bytes.count <= maxHead), "the scanner held back a refused head: \(whole)")
            case .incomplete:
                break
            }
        }

        /// `EventCodec.decode`: never traps; an event that decodes encodes to bytes that decode
        /// to the same event, whose times are within the bounds the projections rely on.
        static func eventCodec(_ data: UnsafeRawBufferPointer) {
            // Sharding reads the customer field of every record, decodable or not: it stays
            // inside the record, and is the decoded customer when the record decodes.
            let customer = EventCodec.customerField(data)
            if let customer, let base = data.baseAddress, let start = customer.baseAddress {
                precondition(start >= base && start + customer.count <= base + data.count, "the customer field lies outside the record")
            }
            guard let event = try? EventCodec.decode(data) else { return }
            precondition(customer.map { Array($0) } == Array(event.customerID.utf8), "the customer field is not the decoded customer")
            let again = try? EventCodec.decode(EventCodec.encode(event))
            precondition(again == event, "an event does not survive encode and decode")
            switch event {
            case .click(let c):
                precondition(c.occurredAt <= EventCodec.latestOccurredAt && c.token.issuedAt <= EventCodec.latestIssuedAt)
                _ = ClickClassifier.staticReason(c)
            case .delivered(let d):
                precondition(d.occurredAt <= EventCodec.latestOccurredAt)
            case .opened(let o):
                precondition(o.occurredAt <= EventCodec.latestOccurredAt && o.token.issuedAt <= EventCodec.latestIssuedAt)
                _ = OpenClassifier.reason(o)
            }
        }

        /// `RecordFrame.decode` fed at every split point (a prefix of a frame needs more bytes,
        /// never is another frame), and `FrameCursor` over the same bytes in a file: it yields
        /// the frames `RecordFrame.decode` finds one after another, and each re-encodes to its bytes;
        /// a seal footer after them is found by both or by neither.
        static func frame(_ data: UnsafeRawBufferPointer) {
            var frames: [(lsn: UInt64, payload: [UInt8])] = []
            var offset = 0
            while offset < data.count {
                let rest = UnsafeRawBufferPointer(rebasing: data[offset...])
                guard case .record(let lsn, let payload, let size) = RecordFrame.decode(rest) else { break }
                precondition(size == RecordFrame.headerSize + payload.count && size <= rest.count)
                for cut in stride(from: 0, to: size, by: max(1, size / 16)) {
                    if case .record = RecordFrame.decode(UnsafeRawBufferPointer(rebasing: rest[..<cut])) {
                        preconditionFailure("a prefix of a frame decoded as a frame")
                    }
                }
                var encoded: [UInt8] = []
                RecordFrame.append(lsn: lsn, payload: UnsafeRawBufferPointer(rebasing: rest[payload]), to: &encoded)
                precondition(encoded.elementsEqual(rest[..<size]), "a frame does not re-encode to its bytes")
                frames.append((lsn, Array(rest[payload])))
                offset += size
            }
            // Where the frames end, a seal footer may follow: it decodes only from all its
            // bytes, and re-encodes to them.
            var footer: SegmentFooter?
            if offset < data.count, case .success(let found) = SegmentFooter.decode(UnsafeRawBufferPointer(rebasing: data[offset...])) {
                precondition(found.encoded().elementsEqual(data[offset..<(offset + SegmentFooter.size)]), "a footer does not re-encode to its bytes")
                footer = found
            }
            let file = Self.scratchFile
            _ = ftruncate(file.fd, 0)
            try! file.write(data, at: 0)
            var cursor = FrameCursor(file: file, offset: 0, chunkSize: 4096)
            var seen = 0
            var sealed: SegmentFooter?
            walking: while true {
                switch try! cursor.step() {
                case .record(let lsn, _, let payload):
                    precondition(seen < frames.count && frames[seen].lsn == lsn && frames[seen].payload.elementsEqual(cursor.bytes[payload]))
                    seen += 1
                case .seal(let at, let found):
                    precondition(at == Int64(offset))
                    sealed = found
                    break walking
                case .end, .incomplete, .invalid:
                    break walking
                }
            }
            precondition(seen == frames.count, "the cursor and the decoder disagree")
            precondition(sealed == footer, "the cursor and the decoder disagree on the seal footer")
        }

        nonisolated(unsafe) static let scratchFile: LogFile = {
            let path = NSTemporaryDirectory() + "/clickd-fuzz-frame-\(getpid())"
            let file = try! LogFile(path: path, flags: O_RDWR | O_CREAT | O_TRUNC)
            unlink(path)
            return file
        }()

        static let rewriter = MessageRewriter(keyRing: ring)

        /// `HTMLScanner` + `MessageRewriter` on an email body. With tracking off (and no
        /// `cio_link` tag, whose output replaces it) not one byte changes; with it on, every
        /// tracked URL verifies to its link's destination and is in the body, the body has
        /// the anchors it had, and the open pixel is one inserted span (taken out, the body
        /// is the rewrite without the pixel).
        /// Where `needle` first occurs in `hay`, by bytes.
        static func firstIndex(of needle: UnsafeBufferPointer<UInt8>, in hay: UnsafeBufferPointer<UInt8>) -> Int? {
            guard needle.count <= hay.count else { return nil }
            for i in 0...(hay.count - needle.count) where memcmp(hay.baseAddress! + i, needle.baseAddress!, needle.count) == 0 { return i }
            return nil
        }

        /// `AddressRanges.parseCSV`, Apple's egress file as `clickd edge --apple-egress` reads
        /// it: what parses holds no more ranges than lines, and holds both ends of every range
        /// its lines name (the merge and the binary search lose none).
        static func appleEgress(_ data: UnsafeRawBufferPointer) {
            let text = String(decoding: data, as: UTF8.self)
            guard let ranges = try? AddressRanges.parseCSV(text) else { return }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            precondition(ranges.count <= lines.count, "more ranges than lines")
            for line in lines {
                let field = line.prefix { $0 != "," }.trimmingCharacters(in: CharacterSet(charactersIn: " \t\r"))
                guard !field.isEmpty, !field.hasPrefix("#"), let cidr = CIDR(field) else { continue }
                var last = cidr.address
                var remaining = cidr.prefix
                for i in last.indices {
                    let keep = min(8, max(0, remaining))
                    last[i] |= UInt8(truncatingIfNeeded: 0xff >> keep)
                    remaining -= 8
                }
                precondition(ranges.contains(cidr.address) && ranges.contains(last), "a range of the file is not held: \(field)")
            }
        }

        static func html(_ data: UnsafeRawBufferPointer) {
            let body = Array(data)
            var options = RewriteOptions(
                baseURL: "https://t.example.com", messageType: .email, deliveryID: "d", customerID: "c",
                sourceKind: .campaign, sourceID: "s", issuedAt: 1_790_000_000)
            let hasTag = body.withUnsafeBufferPointer { (try? LinkTagParser.parse($0))?.isEmpty == false }
            options.tracking = false
            if !hasTag, let off = try? rewriter.rewrite(body, options: options) {
                precondition(off.body == body, "rewriting with tracking off changed the message")
            }
            options.tracking = true
            guard let on = try? rewriter.rewrite(body, options: options) else { return }
            // The open pixel: one span inserted, every other byte the rewrite without it
            // gives; its token is the message's open token.
            options.openTracking = false
            guard let plain = try? rewriter.rewrite(body, options: options) else { preconditionFailure("the pixel made a rewrite fail") }
            if let pixel = on.openPixel {
                let markup = Array(MessageRewriter.pixelMarkup(pixel).utf8)
                let at = on.body.withUnsafeBufferPointer { hay in markup.withUnsafeBufferPointer { firstIndex(of: $0, in: hay) } }
                precondition(at != nil, "the open pixel is not in the message")
                precondition(
                    Array(on.body[..<at!]) + Array(on.body[(at! + markup.count)...]) == plain.body,
                    "the open pixel changed bytes other than its own")
                let token = String(pixel.dropFirst("https://t.example.com/o/".count))
                precondition((try? ring.verifyOpen(token).get())?.token.deliveryID == "d", "the open pixel's token is not the message's")
            } else {
                precondition(on.body == plain.body, "no pixel, yet the bodies differ")
            }
            for link in on.links where link.tracked {
                let url = link.trackedURL!
                // Bytes, not String.contains: that compares characters, and a combining mark
                // written right after a `cio_link` tag joins the URL's last character (found by
                // this target: `…{% cio_link url: "…" %}\u{36E}` — the URL's bytes are all there).
                let needle = Array(HTMLEntities.escapeAttribute(url).utf8)
                let found = on.body.withUnsafeBufferPointer { ClickClassifier.contains($0, needle) }
                precondition(found, "a tracked URL is not in the message")
                let token = String(url.dropFirst("https://t.example.com/c/".count))
                precondition((try? ring.verify(token).get())?.destination == link.destination, "a tracked URL leads elsewhere")
            }
            if !hasTag {
                func anchors(_ b: [UInt8]) -> Int {
                    b.withUnsafeBufferPointer { raw in
                        var n = 0
                        HTMLScanner.anchors(raw) { _ in n += 1 }
                        return n
                    }
                }
                precondition(anchors(on.body) == anchors(body), "rewriting changed the anchors of the message")
            }
        }

        /// The `cio_link` parser: never traps; every tag lies within the message, in order,
        /// and starts with `{%`.
        static func linkTag(_ data: UnsafeRawBufferPointer) {
            data.withMemoryRebound(to: UInt8.self) { bytes in
                guard let tags = try? LinkTagParser.parse(bytes) else { return }
                var last = 0
                for tag in tags {
                    precondition(tag.range.lowerBound >= last && tag.range.upperBound <= bytes.count && tag.range.count >= 4)
                    precondition(bytes[tag.range.lowerBound] == UInt8(ascii: "{") && bytes[tag.range.lowerBound + 1] == UInt8(ascii: "%"))
                    last = tag.range.upperBound
                }
            }
        }

        /// What `clickd report` reads from a request or its htpasswd file, the input split at
        /// newlines into the fields: days (`from`, `to`), a keyset cursor, a URL pattern, an
        /// `Authorization` value, a CSV cell, an htpasswd text. Never traps; a range that
        /// parses spans 1…366 days and its days format back to themselves; a cursor decodes to
        /// what encodes back to it; a pattern's only unescaped wildcards are its `*`s; a CSV
        /// cell never begins with a formula character.
        static func reportInput(_ data: UnsafeRawBufferPointer) {
            let text = String(decoding: data, as: UTF8.self)
            let f = text.split(separator: "\n", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
            func field(_ i: Int) -> String { i < f.count ? f[i] : "" }
            if let range = try? DayRange.parse(from: field(0), to: field(1), today: 20_000) {
                precondition(range.days >= 1 && range.days <= DayRange.maxDays, "a range outside 1…366 days")
                precondition(
                    (try? DayRange.day(DayRange.format(range.from), name: "from")) == range.from
                        && (try? DayRange.day(DayRange.format(range.to), name: "to")) == range.to, "a day that does not format back")
            }
            if let values = Cursor.decode(field(2)) {
                precondition(Cursor.decode(Cursor.encode(values)) == values, "a cursor that does not round-trip")
            }
            let like = Array(ReportPages.likePattern(field(2)))
            var wildcards = 0
            var i = 0
            while i < like.count {
                if like[i] == "\\" {
                    precondition(i + 1 < like.count && "%_\\".contains(like[i + 1]), "a dangling escape")
                    i += 2
                    continue
                }
                precondition(like[i] != "_", "an unescaped _")
                if like[i] == "%" { wildcards += 1 }
                i += 1
            }
            precondition(wildcards == field(2).filter { $0 == "*" }.count, "wildcards that were not *")
            _ = AuthFile.basicCredentials(field(3))
            // Field 3 is also what a trusted proxy sends, and a --trust-proxy argument.
            if case .success(let prefix) = ReportResponder.forwardedPrefix([field(3)]) {
                precondition(
                    prefix.isEmpty || (prefix.hasPrefix("/") && ReportSetup.validBasePath(prefix)), "a prefix that could leave the path")
            }
            let client = ClientAddressText.client(peer: [10, 0, 0, 1], forwardedFor: field(3), trusted: [Self.everyIPv4, Self.everyIPv6])
            precondition(client.count == 4 || client.count == 16, "a forwarded client that is not an address")
            if case .success(let ranges) = CIDR.list([field(3)]) {
                precondition((try? CIDR.list(ranges.map(\.description)).get()) == ranges, "a range that does not read back")
            }
            let cell = CSV.cell(field(4))
            let shown = cell.hasPrefix("\"") ? cell.dropFirst() : Substring(cell)
            if let first = shown.utf8.first { precondition(!CSV.formulaStarts.contains(first), "a cell that a spreadsheet runs") }
            _ = try? AuthFile(text: field(5), path: "fuzz")
        }

        /// The key-ring file format: never traps; a ring that parses, written out again,
        /// parses to the same keys.
        /// A follower file (`<log>/followers/<id>`, written by another user's process):
        /// what parses is written out and parses back the same; the id is a safe file name.
        static func followerFile(_ data: UnsafeRawBufferPointer) {
            guard let file = FollowerFile.parse(String(decoding: data, as: UTF8.self)) else { return }
            precondition(FollowerFile.isValidDatabaseID(file.database) && !file.database.contains("/") && file.neededFrom >= 1)
            precondition(
                FollowerFile.parse(String(decoding: file.encoded(), as: UTF8.self)) == file, "a follower file does not survive being written out")
        }

        /// The erasures file (written by an ingest daemon, another user's process) and the
        /// edge's erasure status: never a trap; what parses has 32-byte key and MACs, a safe
        /// database name and segment names only, and is written out to something that parses
        /// back the same (the status once normalised: its `blocked` line loses line breaks).
        static func erasureFiles(_ data: UnsafeRawBufferPointer) {
            let text = String(decoding: data, as: UTF8.self)
            if let file = ErasuresFile.parse(text) {
                precondition(file.key.count == 32 && file.macs.allSatisfy { $0.mac.count == 32 } && FollowerFile.isValidDatabaseID(file.database))
                precondition(
                    ErasuresFile.parse(String(decoding: file.encoded(), as: UTF8.self)) == file, "an erasures file does not survive being written out"
                )
            }
            if let status = ErasureStatus.parse(text) {
                precondition(status.clean.union(status.stale).allSatisfy { SegmentName.firstLSN(of: $0) != nil } && status.archiveCleanBelow >= 1)
                guard let once = ErasureStatus.parse(String(decoding: status.encoded(), as: UTF8.self)) else {
                    preconditionFailure("an erasure status does not parse once written out")
                }
                precondition(ErasureStatus.parse(String(decoding: once.encoded(), as: UTF8.self)) == once, "an erasure status is not stable")
            }
        }

        /// The edge's Location for any destination: plain printable ASCII, and a serialized
        /// URL serializes to itself (the URL Standard's serialization is idempotent).
        static func locationURL(_ data: UnsafeRawBufferPointer) {
            let text = String(decoding: data, as: UTF8.self)
            let location = LocationURL.header(for: text)
            if !text.utf8.allSatisfy({ $0 < 0x80 }) {
                precondition(location.utf8.allSatisfy { $0 < 0x80 }, "a Location with a non-ASCII byte")
            }
            if let serialized = LocationURL.serialize(text) {
                precondition(serialized.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "a serialization with a space, a control or a non-ASCII byte")
                precondition(LocationURL.serialize(serialized) == serialized, "serializing \(serialized) again changes it")
            }
        }

        static func keyRing(_ data: UnsafeRawBufferPointer) {
            guard let ring = try? KeyRing.parse(String(decoding: data, as: UTF8.self)) else { return }
            let text = ring.keys.map { key in
                "key \(key.kid) \(TokenCodec.encode(key.secret)) \(key.created) \(key.retired ? "retired" : "active")"
            }.joined(separator: "\n")
            let again = try! KeyRing.parse(text)
            precondition(
                again.keys.map(\.kid) == ring.keys.map(\.kid) && again.keys.map(\.secret) == ring.keys.map(\.secret)
                    && again.signingKey?.kid == ring.signingKey?.kid, "a key ring does not survive being written out")
        }
    }
#endif
