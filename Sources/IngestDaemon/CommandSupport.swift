import ArgumentParser
import EventLog
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Runs a command body; any error becomes one line on stderr and exit status 1.
func runReportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    LoggingBootstrap.bootstrap()
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError(describe(error))
        throw ExitCode.failure
    }
}

func describe(_ error: any Error) -> String {
    String(describing: error)
}

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
