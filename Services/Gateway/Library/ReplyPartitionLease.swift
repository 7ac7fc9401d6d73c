import Logging
import PaywireKafka
import PaywireStore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Which partition of the reply topic this gateway replica reads, held as a lease in the
/// gateway's schema. At start a replica takes the partition the fewest live replicas hold, so
/// with no more replicas than partitions each reads only its own replies, and payment-core sends
/// each reply to the partition its command names. More replicas than partitions share some: a
/// replica still keeps only the replies addressed to it, so sharing costs reading, never
/// correctness. The lease is renewed while the replica runs and given back on shutdown; a replica
/// killed without one frees its partition when the lease runs out.
final class ReplyPartitionLease: Service, Sendable {
    let holder: String
    let postgres: PostgresClient
    let logger: Logger
    /// How long a lease lasts unrenewed; renewed every third of it.
    let term: Duration
    let waitUntil: @Sendable () async throws -> Void
    private let held = Mutex<KafkaTopicPartition?>(nil)

    init(holder: String, postgres: PostgresClient, logger: Logger, term: Duration = .seconds(30), waitUntil: @escaping @Sendable () async throws -> Void) {
        self.holder = holder
        self.postgres = postgres
        self.logger = logger
        self.term = term
        self.waitUntil = waitUntil
    }

    /// The partition held, once `choose` ran.
    var partition: KafkaTopicPartition? { held.withLock { $0 } }

    /// Takes the least-held of `partitions` (the reply consumer's choice; see
    /// `KafkaConsumerService.PartitionChoice`).
    func choose(_ partitions: [KafkaTopicPartition]) async throws -> [KafkaTopicPartition] {
        guard let first = partitions.first else { return [] }
        let numbers = partitions.map { Int($0.partition) }
        let seconds = Double(term.components.seconds)
        let chosen: Int = try await postgres.withTransaction(logger: logger) { connection in
            // One chooser at a time, so two replicas starting together do not pick the same one.
            // The lock is held for these few statements only, nothing remote runs under it.
            try await connection.query("LOCK TABLE gateway.reply_partition_leases IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            try await connection.query("DELETE FROM gateway.reply_partition_leases WHERE expires_at < now() OR holder = \(holder)", logger: logger)
            var holders = Dictionary(uniqueKeysWithValues: numbers.map { ($0, 0) })
            let rows = try await connection.query(
                "SELECT partition, count(*)::INT FROM gateway.reply_partition_leases WHERE topic = \(first.topic) GROUP BY partition", logger: logger
            )
            for try await (partition, count) in rows.decode((Int, Int).self) where holders[partition] != nil { holders[partition] = count }
            let least = holders.min { ($0.value, $0.key) < ($1.value, $1.key) }!.key
            try await connection.query("""
                INSERT INTO gateway.reply_partition_leases (holder, topic, partition, expires_at)
                VALUES (\(holder), \(first.topic), \(least), now() + make_interval(secs => \(seconds)))
                """, logger: logger)
            return least
        }
        let partition = KafkaTopicPartition(topic: first.topic, partition: Int32(chosen))
        held.withLock { $0 = partition }
        logger.info("reply partition leased", metadata: ["kafka.topic": .string(first.topic), "kafka.partition": .stringConvertible(chosen)])
        return [partition]
    }

    func run() async throws {
        let seconds = Double(term.components.seconds)
        try await PeriodicWork(name: "reply partition lease", interval: term / 3, logger: logger, errorPause: .seconds(2), startAfter: waitUntil) { [self] in
            guard let partition else { return .idle }
            // Renewed, or taken again if it ran out meanwhile (a paused replica): this replica
            // goes on reading the partition either way.
            try await postgres.query("""
                INSERT INTO gateway.reply_partition_leases (holder, topic, partition, expires_at)
                VALUES (\(holder), \(partition.topic), \(Int(partition.partition)), now() + make_interval(secs => \(seconds)))
                ON CONFLICT (holder) DO UPDATE SET expires_at = EXCLUDED.expires_at
                """, logger: logger)
            return .idle
        }.run()
        guard partition != nil else { return }
        do {
            try await postgres.query("DELETE FROM gateway.reply_partition_leases WHERE holder = \(holder)", logger: logger)
        } catch {
            logger.warning("reply partition lease not given back; it runs out by itself", metadata: ["error": .string(MessageFailure.loggable(error))])
        }
    }
}
