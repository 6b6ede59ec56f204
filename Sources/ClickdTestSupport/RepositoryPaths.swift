import Foundation

/// Where things are, for tests: the repository root and the built executables.
public enum RepositoryPaths {
    /// The repository root (found from this source file's path).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The directory holding the built products (`clickd`, `LogTorture`): the directory of
    /// the running test binary.
    public static let products: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent()
    }()

    public static func product(_ name: String) -> String {
        products.appendingPathComponent(name).path
    }
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "clickd-test") throws {
        let template = NSTemporaryDirectory() + "/\(prefix).XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw TestSupportError("mkdtemp failed for \(template)") }
        path = String(cString: made)
    }

    public func appending(_ name: String) -> String { path + "/" + name }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
