import ClickdTestSupport
import ClickdTestTraits
import Foundation
import LinkTracking
import Testing

/// `clickd keys` and `clickd links`, run as a sender would run them.
@Suite(.ownThreads) struct LinkCommandTests {
    func keyRing(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.appending("keys")
        let old = try ChildProcess.clickd(["keys", "generate", "--kid", "old"])
        let new = try ChildProcess.clickd(["keys", "generate"])
        #expect(old.status == 0 && new.status == 0)
        #expect(old.stdout.hasPrefix("key old ") && old.stdout.hasSuffix(" active\n"), "stdout \(old.stdout.debugDescription), stderr \(old.stderr)")
        try ("# test ring\n" + old.stdout + new.stdout).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    let message = ["--base", "https://t.example.com", "--delivery", "d-1", "--customer", "c-1", "--campaign", "17"]

    @Test func signPrintsATrackedURLThatVerifies() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try keyRing(dir)
        let url = "https://shop.example.com/p?a&b=1#frag"
        let result = try ChildProcess.clickd(
            ["links", "sign", "--keys", keys] + message + [
                "--type", "sms", "--link-id", "hero",
                "--url", url, "--url-param", "utm_source=sms",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        let tracked = result.stdout.trimmingCharacters(in: .newlines)
        #expect(tracked.hasPrefix("https://t.example.com/c/"))
        let ring = try KeyRing.parse(String(contentsOfFile: keys, encoding: .utf8))
        let token = try ring.verify(tracked.dropFirst("https://t.example.com/c/".count)).get()
        #expect(token.destination == "https://shop.example.com/p?a&b=1&utm_source=sms#frag")
        #expect(token.linkID == "hero" && token.messageType == .sms && token.sourceKind == .campaign && token.sourceID == "17")
        #expect(token.deliveryID == "d-1" && token.customerID == "c-1")
        #expect(token.issuedAt > 1_700_000_000)
    }

    /// Issue 12, items 6a and 11: an id with a control character, or a destination whose
    /// token the edge would refuse, is one error line and exit 1 — never a signed link.
    @Test func signRefusesControlCharactersInIDsAndDestinationsTooLongToTrack() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try keyRing(dir)
        let base = ["links", "sign", "--keys", keys, "--base", "https://t.example.com", "--campaign", "17"]
        let cases: [([String], String)] = [
            (["--delivery", "d-1", "--customer", "c\u{1}1", "--url", "https://a.com/"], "customer id contains the control character U+0001"),
            (["--delivery", "d\t1", "--customer", "c-1", "--url", "https://a.com/"], "delivery id contains the control character U+0009"),
            (
                ["--delivery", "d-1", "--customer", "c-1", "--link-id", "hero\u{7f}", "--url", "https://a.com/"],
                "link id contains the control character U+007F"
            ),
            (
                ["--delivery", "d-1", "--customer", "c-1", "--url", "https://a.com/" + String(repeating: "x", count: 13_000)],
                "too long to track"
            ),
        ]
        for (arguments, expected) in cases {
            let result = try ChildProcess.clickd(base + arguments)
            #expect(result.status == 1, "\(arguments.prefix(6))")
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.hasPrefix("clickd: error: ") && result.stderr.contains(expected), "\(result.stderr.prefix(300))")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        let rewrite = try ChildProcess.clickd(
            [
                "links", "rewrite", "--keys", keys, "--type", "email", "--base", "https://t.example.com",
                "--delivery", "d-1", "--customer", "c\u{1b}", "--campaign", "17",
            ], input: "<a href=\"https://a.com\">x</a>")
        #expect(rewrite.status == 1 && rewrite.stderr.contains("customer id contains the control character U+001B"), "\(rewrite.stderr)")
        #expect(rewrite.stdout.isEmpty)
    }

    @Test func rewriteReadsStdinAndWritesStdout() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try keyRing(dir)
        let html = #"<p>Hi</p><a href="https://a.com/x?y=1&amp;z=2">A</a><a class="untracked" href="https://a.com/u">U</a>"#
        let result = try ChildProcess.clickd(["links", "rewrite", "--keys", keys] + message + ["--type", "email"], input: html)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix(#"<p>Hi</p><a href="https://t.example.com/c/"#))
        // The email's open pixel comes last (no </body> to put it before).
        let pixel = try #require(result.stdout.range(of: #"<a class="untracked" href="https://a.com/u">U</a><img src="https://t.example.com/o/"#))
        #expect(
            result.stdout[pixel.upperBound...].hasSuffix(#"" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px" />"#))
        let noPixel = try ChildProcess.clickd(["links", "rewrite", "--keys", keys] + message + ["--type", "email", "--no-open-pixel"], input: html)
        #expect(noPixel.status == 0 && noPixel.stdout.hasSuffix(#"U</a>"#) && !noPixel.stdout.contains("/o/"))
        let json = try ChildProcess.clickd(
            ["links", "rewrite", "--keys", keys] + message + ["--type", "email", "--json"],
            input: html)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let links = object?["links"] as? [[String: Any]] ?? []
        #expect(links.count == 2)
        #expect(links.first?["destination"] as? String == "https://a.com/x?y=1&z=2")
        #expect(links.first?["tracked"] as? Bool == true)
        #expect(links.last?["reason"] as? String == #"opted out (class="untracked")"#)
        #expect((object?["body"] as? String)?.hasPrefix("<p>Hi</p>") == true)
        #expect((object?["open_pixel"] as? String)?.hasPrefix("https://t.example.com/o/") == true)
    }

    @Test func warningsGoToStderr() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try keyRing(dir)
        let result = try ChildProcess.clickd(
            [
                "links", "rewrite", "--keys", keys, "--base", "http://t.example.com", "--delivery", "d",
                "--customer", "jane@example.com", "--transactional", "welcome", "--type", "email",
            ],
            input: #"<a href="https://a.com/reset-password?token=1">reset</a>"#)
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix(#"<a href="https://a.com/reset-password?token=1">reset</a><img src="http://t.example.com/o/"#))
        let warnings = result.stderr.split(separator: "\n")
        #expect(warnings.count == 3, "\(result.stderr)")
        #expect(warnings.allSatisfy { $0.hasPrefix("clickd: warning: ") })
        #expect(result.stderr.contains("HSTS") && result.stderr.contains("email address") && result.stderr.contains("not tracking"))
    }

    @Test func batchModeRewritesManyMessages() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try keyRing(dir)
        let lines = [
            #"{"body": "<a href=\"https://a.com\">a</a>", "type": "email", "delivery": "d1", "customer": "c1", "newsletter": "n1"}"#,
            #"{"body": "Code: {% cio_link url: \"https://a.com/o\" %}", "type": "sms", "delivery": "d2", "customer": "c2", "url_params": {"utm_source": "sms"}}"#,
            #"{"body": "{% cio_link track: maybe %}", "type": "push", "delivery": "d3", "customer": "c3"}"#,
            #"not json"#,
            #"{"body": "x", "type": "fax", "delivery": "d4", "customer": "c4"}"#,
        ]
        let result = try ChildProcess.clickd(
            ["links", "rewrite", "--keys", keys, "--base", "https://t.example.com", "--campaign", "7", "--jsonl"],
            input: lines.joined(separator: "\n") + "\n")
        #expect(result.status == 1)
        #expect(result.stderr.contains("3 of the messages could not be rewritten"))
        let out: [[String: Any]] = result.stdout.split(separator: "\n").map {
            ((try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]) ?? [:]
        }
        #expect(out.count == 5)
        #expect((out[0]["links"] as? [[String: Any]])?.first?["tracked"] as? Bool == true)
        let sms: [String: Any] = (out[1]["links"] as? [[String: Any]])?.first ?? [:]
        #expect(sms["destination"] as? String == "https://a.com/o?utm_source=sms")
        #expect((out[2]["error"] as? String)?.contains("line 3: line 1, column") == true)
        #expect((out[3]["error"] as? String)?.contains("not a valid JSON message object") == true)
        #expect((out[4]["error"] as? String)?.contains("unknown type 'fax'") == true)
    }

    @Test func badInputIsOneClearLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let keys = try keyRing(dir)
        try "key broken\n".write(toFile: dir.appending("bad-keys"), atomically: true, encoding: .utf8)
        let cases: [([String], String?, Int32, String)] = [
            (["links", "rewrite", "--keys", keys] + message + ["--type", "fax"], "", 64, "fax"),
            (["links", "rewrite", "--keys", dir.appending("missing")] + message + ["--type", "sms"], "", 1, "no such file"),
            (["links", "rewrite", "--keys", dir.appending("bad-keys")] + message + ["--type", "sms"], "", 1, "key ring line 1"),
            (["links", "rewrite", "--keys", keys] + message + ["--type", "sms"], "a {% cio_link url: %}", 1, "line 1, column 20"),
            (["links", "sign", "--keys", keys] + message + ["--url", "javascript:alert(1)"], nil, 1, "cannot track"),
            (
                [
                    "links", "sign", "--keys", keys, "--base", "ftp://x", "--delivery", "d", "--customer", "c", "--campaign", "1", "--url",
                    "https://a.com",
                ], nil, 64, "--base"
            ),
            (
                ["links", "sign", "--keys", keys, "--base", "https://t.x", "--delivery", "d", "--customer", "c", "--url", "https://a.com"], nil, 64,
                "--campaign"
            ),
            (["links", "sign", "--keys", keys] + message + ["--newsletter", "2", "--url", "https://a.com"], nil, 64, "only one"),
            (["links", "sign", "--keys", keys] + message + ["--url", "https://a.com", "--url-param", "novalue"], nil, 64, "KEY=VALUE"),
            (["keys", "generate", "--kid", "has space"], nil, 64, "--kid"),
        ]
        for (args, input, status, needle) in cases {
            let result = try ChildProcess.clickd(args, input: input)
            #expect(result.status == status, "\(args): \(result.stderr)")
            #expect(result.stderr.contains(needle), "\(args): \(result.stderr)")
            if status == 1 { #expect(result.stderr.split(separator: "\n").count == 1, "\(args): \(result.stderr)") }
        }
        // Standard input that cannot be read (closed): one line, exit 1.
        let clickd = RepositoryPaths.product("clickd")
        let closed = try ChildProcess.run(
            "/bin/sh",
            [
                "-c", "\"$0\" links rewrite --keys \"$1\" --base https://t.x --delivery d --customer c --campaign 1 --type sms <&-",
                clickd, keys,
            ])
        #expect(closed.status == 1, "\(closed.stderr)")
        #expect(closed.stderr.contains("cannot read standard input"), "\(closed.stderr)")
    }
}
