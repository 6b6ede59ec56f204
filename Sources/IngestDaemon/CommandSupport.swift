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
