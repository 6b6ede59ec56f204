import Dispatch

/// Follows a log as it grows: an async sequence of record batches, from any LSN, across
/// segments, each record exactly once and in order. Waiting costs no CPU: the blocking
/// inotify wait runs on a Dispatch thread, never on Swift's cooperative pool, and wakes at
/// least every `pollInterval` to notice cancellation.
public struct LogTailer: AsyncSequence, Sendable {
    public typealias Element = [LogRecord]

    public let directory: String
    public let from: UInt64
    public var maxRecords: Int = 1024
    public var pollInterval: Duration = .milliseconds(250)

    public init(directory: String, from lsn: UInt64 = 1) {
        self.directory = directory
        self.from = lsn
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(directory: directory, from: from, maxRecords: maxRecords, pollInterval: pollInterval)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let directory: String
        let maxRecords: Int
        let pollInterval: Duration
        private var box: ReaderBox?
        private var from: UInt64

        init(directory: String, from: UInt64, maxRecords: Int, pollInterval: Duration) {
            self.directory = directory
            self.from = from
            self.maxRecords = maxRecords
            self.pollInterval = pollInterval
        }

        /// The next non-empty batch; nil when the task is cancelled.
        public mutating func next() async throws -> [LogRecord]? {
            if box == nil { box = ReaderBox(reader: try LogReader(directory: directory, from: from)) }
            let box = self.box!
            while !Task.isCancelled {
                let batch = try box.reader.read(maxRecords: maxRecords)
                if !batch.isEmpty { return batch }
                let interval = pollInterval
                _ = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, Error>) in
                    DispatchQueue.global().async {
                        continuation.resume(with: Result { try box.reader.waitForRecords(timeout: interval) })
                    }
                }
            }
            return nil
        }
    }

    /// Lets the reader cross to the Dispatch thread; only one side uses it at a time.
    final class ReaderBox: @unchecked Sendable {
        let reader: LogReader
        init(reader: LogReader) { self.reader = reader }
    }
}
