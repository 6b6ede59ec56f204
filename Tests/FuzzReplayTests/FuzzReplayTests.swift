import ClickdTestSupport
import ClickdTestTraits
import Foundation
import FuzzHarness
import Testing

/// Every committed fuzz input (`Tests/Fuzz/Corpus/<target>/`: the seeds, and every crash
/// reproducer `make fuzz` found) replayed through its target in the normal debug build: a
/// fixed crash stays fixed without the sanitizer build. docs/fuzzing.md.
@Suite(.ownThreads) struct FuzzReplayTests {
    @Test(arguments: FuzzTarget.allCases) func corpusReplays(_ target: FuzzTarget) throws {
        let directory = RepositoryPaths.root.appendingPathComponent("Tests/Fuzz/Corpus/\(target.rawValue)").path
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(names.count >= 3, "\(target.rawValue) has a seed corpus")
        for name in names {
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
            data.withUnsafeBytes { target.run($0) }
        }
    }
}
