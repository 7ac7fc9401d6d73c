import Synchronization

/// How far a consumer has got, per partition: how many polled messages wait to be finished, and
/// since when the partition has not moved on while some do. Read by the liveness check (`/health`
/// fails while a partition is stuck) and by the consumer's metrics; written by the consume loops.
public final class ConsumerProgress: Sendable {
    public struct Partition: Sendable, Equatable {
        /// Messages polled and not yet finished.
        public var waiting: Int
        /// When the partition last moved on (a message finished and its offset could advance), or
        /// began to wait; a partition with nothing waiting is never stuck.
        public var since: ContinuousClock.Instant
    }

    private let partitions = Mutex<[KafkaTopicPartition: Partition]>([:])

    public init() {}

    /// The partition now has `waiting` messages in hand; `advanced` when its offset moved on.
    func update(_ partition: KafkaTopicPartition, waiting: Int, advanced: Bool, now: ContinuousClock.Instant = .now) {
        partitions.withLock { all in
            let before = all[partition]
            let startsWaiting = (before?.waiting ?? 0) == 0 && waiting > 0
            let since = advanced || startsWaiting || before == nil ? now : before!.since
            all[partition] = Partition(waiting: waiting, since: since)
        }
    }

    /// The partitions were handed to another member (or the consumer stopped).
    func forget(_ gone: [KafkaTopicPartition]) {
        partitions.withLock { all in for partition in gone { all.removeValue(forKey: partition) } }
    }

    public var snapshot: [KafkaTopicPartition: Partition] { partitions.withLock { $0 } }

    /// Partitions with messages waiting that have not moved on for at least `limit`, and for how long.
    public func stuck(longerThan limit: Duration, now: ContinuousClock.Instant = .now) -> [(partition: KafkaTopicPartition, waiting: Int, stuckFor: Duration)] {
        snapshot.compactMap { partition, progress in
            guard progress.waiting > 0, now - progress.since >= limit else { return nil }
            return (partition, progress.waiting, now - progress.since)
        }.sorted { $0.partition.description < $1.partition.description }
    }
}
