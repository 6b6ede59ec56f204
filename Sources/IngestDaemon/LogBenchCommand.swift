import ArgumentParser
import EventLog
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct LogBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure this disk with the log's real group-commit path.",
        discussion: """
            Creates a new log in DIR (which must not exist or be empty), appends --events \
            synthetic click-sized records from --writers concurrent appenders, each waiting \
            until its record is durable, and prints appends per second, the number of \
            fdatasync calls, the mean batch size and the append latency percentiles. Like \
            pg_test_fsync, it tells an operator what the disk under a log can do. Remove DIR \
            afterwards.
            """
    )

    @Argument(help: ArgumentHelp("A new or empty directory for the benchmark log.", valueName: "dir"))
    var directory: String

    @Option(help: "Records to append in all.")
    var events: Int = 100_000

    @Option(help: "Concurrent appenders.")
    var writers: Int = 16

    @Option(help: ArgumentHelp("Payload bytes per record.", valueName: "bytes"))
    var payload: Int = 200

    @Option(help: ArgumentHelp("Longest wait, in microseconds, for more records to join a batch.", valueName: "us"))
    var maxBatchDelay: Int = 0

    @Option(help: ArgumentHelp("Segment size in MiB.", valueName: "mib"))
    var segmentSize: Int = 64

    @Flag(help: "Skip fdatasync (measures the write path alone; not durable).")
    var noSync = false

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    func validate() throws {
        guard events > 0 else { throw ValidationError("--events must be positive") }
        guard writers > 0, writers <= 100_000 else { throw ValidationError("--writers must be between 1 and 100000") }
        guard payload > 0, payload <= RecordFrame.maxPayloadSize else {
            throw ValidationError("--payload must be between 1 and \(RecordFrame.maxPayloadSize)")
        }
        guard maxBatchDelay >= 0 else { throw ValidationError("--max-batch-delay must not be negative") }
        guard segmentSize >= 1, segmentSize <= 4096 else { throw ValidationError("--segment-size must be between 1 and 4096 MiB") }
    }

    func run() async throws {
        try await runReportingErrors {
            var configuration = EventLogConfiguration()
            configuration.sync = noSync ? .none : .fdatasync
            configuration.maxBatchDelay = .microseconds(maxBatchDelay)
            configuration.segmentSize = Int64(segmentSize) << 20
            let writer = try EventLogWriter(directory: directory, configuration: configuration, logger: Logger(label: "clickd.bench"))
            if writer.durable != 0 {
                writer.close()
                throw ValidationFailure("\(directory) already holds a log with records; give bench a new or empty directory")
            }
            let result = try await Self.measure(writer: writer, events: events, writers: writers, payloadSize: payload)
            writer.close()
            let stats = writer.statistics
            let meanBatch = Double(stats.records) / Double(max(1, stats.batches))
            if json {
                printOut(
                    """
                    {"events":\(events),"writers":\(writers),"payload":\(payload),"sync":\(!noSync),\
                    "seconds":\(result.seconds),"appends_per_second":\(Int(Double(events) / result.seconds)),\
                    "batches":\(stats.batches),"fsyncs":\(stats.syncs),"mean_batch":\(meanBatch),\
                    "p50_us":\(result.percentile(0.50)),"p99_us":\(result.percentile(0.99)),"max_us":\(result.percentile(1.0)),\
                    "sync_p50_us_below":\(stats.syncLatencyQuantile(0.5)),"sync_p99_us_below":\(stats.syncLatencyQuantile(0.99))}
                    """)
            } else {
                printOut(
                    """
                    events:        \(events) × \(payload) B from \(writers) writers\(noSync ? " (no fdatasync)" : "")
                    elapsed:       \(String(format3(result.seconds))) s
                    appends/s:     \(Int(Double(events) / result.seconds))
                    fdatasyncs:    \(stats.syncs)
                    batches:       \(stats.batches), mean \(format3(meanBatch)) records
                    latency (µs):  p50 \(result.percentile(0.50))  p99 \(result.percentile(0.99))  max \(result.percentile(1.0))
                    fdatasync (µs): p50 < \(stats.syncLatencyQuantile(0.5))  p99 < \(stats.syncLatencyQuantile(0.99))
                    """)
            }
        }
    }

    struct Result {
        var seconds: Double
        var latenciesMicros: [Int]  // sorted

        func percentile(_ p: Double) -> Int {
            guard !latenciesMicros.isEmpty else { return 0 }
            let index = min(latenciesMicros.count - 1, Int((Double(latenciesMicros.count) * p).rounded(.up)) - 1)
            return latenciesMicros[max(0, index)]
        }
    }

    static func measure(writer: EventLogWriter, events: Int, writers: Int, payloadSize: Int) async throws -> Result {
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Int].self) { group in
            for w in 0..<writers {
                let share = events / writers + (w < events % writers ? 1 : 0)
                group.addTask {
                    var payload = [UInt8](repeating: 0, count: payloadSize)
                    for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 31 &+ w) }
                    var mine = [Int]()
                    mine.reserveCapacity(share)
                    for _ in 0..<share {
                        let t0 = clock.now
                        _ = try await writer.append(payload)
                        let d = clock.now - t0
                        mine.append(Int(d.components.seconds) * 1_000_000 + Int(d.components.attoseconds / 1_000_000_000_000))
                    }
                    return mine
                }
            }
            var all: [Int] = []
            all.reserveCapacity(events)
            for try await part in group { all.append(contentsOf: part) }
            return all
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Result(seconds: seconds, latenciesMicros: latencies.sorted())
    }
}

func format3(_ value: Double) -> String {
    let scaled = Int((value * 1000).rounded())
    let frac = String(scaled % 1000)
    return "\(scaled / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
}
