import Foundation

/// The one place tests damage files: `corrupt` gets a file's bytes and changes them (flip
/// a bit, cut, append), and the result is written back in place.
public enum FileDamage {
    public static func corrupt(_ path: String, _ corrupt: (inout [UInt8]) -> Void) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        corrupt(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}
