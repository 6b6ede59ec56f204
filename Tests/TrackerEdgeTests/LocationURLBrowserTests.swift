import ClickdTestSupport
import Foundation
import LinkTracking
import Testing

/// The edge's Location for every non-ASCII destination of the corpus equals what Chromium's
/// URL parser makes of it (`new URL(s).href`, Tests/Browser/url_serialization.py): "what a
/// browser would have navigated to", checked against a browser. Needs Chromium,
/// chromium-driver and selenium (`scripts/install-deps --browser`, which make test runs);
/// without them it fails, it does not skip.
@Suite struct LocationURLBrowserTests {
    static let python = RepositoryPaths.root.appendingPathComponent(".build/browser-venv/bin/python").path
    static let script = RepositoryPaths.root.appendingPathComponent("Tests/Browser/url_serialization.py").path

    @Test func theLocationIsWhatChromiumParses() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python) && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"),
            "the browser test needs Chromium, chromium-driver and selenium: run scripts/install-deps --browser (make test does)")
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (input, output) = (dir.appending("in.json"), dir.appending("out.json"))
        let corpus = URLCorpus.nonASCII + URLCorpus.destinations
        try JSONSerialization.data(withJSONObject: corpus).write(to: URL(fileURLWithPath: input))
        let run = try ChildProcess.run(Self.python, [Self.script, input, output], timeout: 120)
        #expect(run.status == 0, "url_serialization.py: \(run.stdout)\(run.stderr)")
        let hrefs = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [Any] ?? []
        #expect(hrefs.count == corpus.count)
        #expect(hrefs.filter { $0 is String }.count >= corpus.count - 2)
        for (destination, href) in zip(corpus, hrefs) {
            // ASCII destinations are sent as signed: a browser parses them itself, so their
            // Location need only parse to the same href (Chromium's view of the signed text).
            let location = LocationURL.header(for: destination)
            if destination.utf8.allSatisfy({ $0 < 0x80 }) {
                #expect(location == destination)
            } else if let href = href as? String {
                #expect(location == href, "\(destination)")
            } else {
                // Chromium refuses it too; the edge still answers with an ASCII Location.
                #expect(LocationURL.serialize(destination) == nil, "\(destination)")
            }
        }
    }
}
