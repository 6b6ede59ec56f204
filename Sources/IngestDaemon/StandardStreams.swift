#if canImport(Glibc)
    import Glibc
#endif

// Writing to the standard streams: one line of error per failure, never interleaved.

func printError(_ message: String) {
    writeStandardError("clickd: error: " + message.replacingNewlines() + "\n")
}

/// One write(2) to stderr, so concurrent lines never interleave.
func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// Writes to stdout without Foundation's buffering surprises.
func printOut(_ text: String) {
    print(text)
}

extension String {
    func replacingNewlines() -> String {
        String(map { $0 == "\n" ? " " : $0 })
    }
}
