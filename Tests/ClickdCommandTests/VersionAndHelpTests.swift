import ClickdTestSupport
import ClickdTestTraits
import Testing

@Suite(.ownThreads) struct VersionAndHelpTests {
    @Test func versionPrintsOneLine() throws {
        let result = try ChildProcess.clickd(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("clickd "))
        #expect(result.stdout.split(separator: "\n").count == 1)
    }

    @Test func helpListsTheCommands() throws {
        let result = try ChildProcess.clickd(["--help"])
        #expect(result.status == 0)
        for command in ["edge", "ingest", "rebuild", "migrate", "status", "report", "links", "keys", "log"] {
            #expect(result.stdout.contains("  \(command)"), "\(command) in --help")
        }
        let log = try ChildProcess.clickd(["log", "--help"])
        for sub in ["verify", "dump", "stats", "bench"] { #expect(log.stdout.contains(sub)) }
    }

    @Test func unknownCommandIsAUsageError() throws {
        let result = try ChildProcess.clickd(["frobnicate"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("frobnicate"))
    }
}
