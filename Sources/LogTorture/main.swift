// log-torture: a test helper, not installed. Appends records from many concurrent
// writers and prints each acknowledged LSN on its own line (written with one write(2),
// only after the append returned, so a printed LSN is a durability promise). Tests kill
// it with SIGKILL at random moments and check every printed LSN survived.
//
//   log-torture DIR WRITERS COUNT [SEGMENT_SIZE]
//
// COUNT 0 means run until killed. On the first failed append it prints the error on
// stderr and exits 1.
import EventLog
import Logging

#if canImport(Glibc)
    import Glibc
#endif

func complain(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let args = CommandLine.arguments
guard args.count >= 4, let writers = Int(args[2]), let count = Int(args[3]) else {
    complain("usage: log-torture DIR WRITERS COUNT [SEGMENT_SIZE]")
    exit(64)
}
var configuration = EventLogConfiguration()
if args.count >= 5, let size = Int64(args[4]) { configuration.segmentSize = size }

let writer: EventLogWriter
do {
    writer = try EventLogWriter(directory: args[1], configuration: configuration, logger: Logger(label: "log-torture"))
} catch {
    complain("error: \(error)")
    exit(1)
}

func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

say("ready")
do {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for w in 0..<writers {
            group.addTask {
                var i = 0
                while count == 0 || i < count / writers {
                    let payload = Array("writer \(w) record \(i) ".utf8) + [UInt8](repeating: UInt8(w & 0xff), count: 100 + (i % 50))
                    let lsn = try await writer.append(payload)
                    say("\(lsn)")
                    i += 1
                }
            }
        }
        try await group.waitForAll()
    }
} catch {
    complain("error: \(error)")
    writer.close()
    exit(1)
}
writer.close()
say("done")
