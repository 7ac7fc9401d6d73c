import Logging
import Metrics
import PaywireKafka
import PostgresNIO
import ServiceLifecycle

/// Publishes a schema's outbox to Kafka in commit order and marks rows published.
///
/// One relay per schema is active at a time (a transaction-scoped advisory lock), which keeps
/// per-key order even with many replicas. A relay that dies after producing and before marking
/// publishes those rows again: consumers drop the repeat by envelope id.
public final class OutboxRelay: Service, Sendable {
    public let schema: String
    private let client: PostgresClient
    private let producer: KafkaProducer
    private let logger: Logger
    private let batchSize: Int
    private let idleInterval: Duration
    private let published: Counter
    private let setAsideCounter: Counter
    /// Runs after Kafka acknowledged a batch and before the rows are marked: tests throw here to
    /// play a relay killed at the worst moment.
    let afterProduce: (@Sendable () throws -> Void)?

    public init(
        schema: String,
        client: PostgresClient,
        producer: KafkaProducer,
        logger: Logger,
        batchSize: Int = 500,
        idleInterval: Duration = .milliseconds(20),
        afterProduce: (@Sendable () throws -> Void)? = nil
    ) {
        self.afterProduce = afterProduce
        self.schema = schema
        self.client = client
        self.producer = producer
        self.logger = logger
        self.batchSize = batchSize
        self.idleInterval = idleInterval
        published = Counter(label: "paywire_outbox_published_total", dimensions: [("schema", schema)])
        setAsideCounter = Counter(label: "paywire_outbox_set_aside_total", dimensions: [("schema", schema)])
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let count = try await self.publishPending()
                    if count == 0 { try? await Task.sleep(for: self.idleInterval) }
                } catch {
                    self.logger.error("outbox relay failed; retrying", metadata: ["schema": .string(self.schema), "error": .string(String(describing: error))])
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
        // One last pass so what was committed before shutdown leaves now rather than at restart.
        _ = try? await publishPending()
    }

    /// Publishes one batch. Returns how many rows it published or set aside (0 when idle or
    /// another relay holds the lock).
    @discardableResult
    public func publishPending() async throws -> Int {
        let schema = schema
        let batchSize = batchSize
        let logger = logger
        let producer = producer
        let afterProduce = afterProduce
        let counts = try await client.withTransaction(logger: logger) { connection -> (published: Int, setAside: Int) in
            let lockRows = try await connection.query("SELECT pg_try_advisory_xact_lock(hashtext(\("paywire.outbox." + schema)))", logger: logger)
            var locked = false
            for try await value in lockRows.decode(Bool.self) { locked = value }
            guard locked else { return (0, 0) }

            let rows = try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT seq, topic, message_key, payload FROM \(schema).outbox WHERE published_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT \(batchSize)"),
                logger: logger
            )
            var sequence: [Int64] = []
            var messages: [KafkaProducerMessage] = []
            for try await (seq, topic, key, payload) in rows.decode((Int64, String, String?, ByteBuffer).self) {
                sequence.append(seq)
                messages.append(KafkaProducerMessage(topic: topic, key: key, value: Array(buffer: payload)))
            }
            guard !messages.isEmpty else { return (0, 0) }

            let results = try await producer.sendBatch(messages)
            // Every acknowledged row is marked, so nothing is produced twice while the relay
            // runs. A row Kafka refuses for good is set aside with its error; one that failed
            // for the moment stays for the next pass (the idempotent producer fails the rows
            // after it in the same partition too, so per-key order holds).
            var delivered: [Int64] = []
            var setAside: [(Int64, String)] = []
            for (seq, result) in zip(sequence, results) {
                switch result {
                case .success: delivered.append(seq)
                case .failure(let error) where error.isPermanentForMessage: setAside.append((seq, error.description))
                case .failure(let error):
                    logger.warning("outbox message not acknowledged; will retry", metadata: ["schema": .string(schema), "seq": .stringConvertible(seq), "error": .string(error.description)])
                }
            }
            guard !delivered.isEmpty || !setAside.isEmpty else { return (0, 0) }
            try afterProduce?()
            if !delivered.isEmpty {
                var binds = PostgresBindings()
                binds.append(delivered)
                try await connection.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).outbox SET published_at = now() WHERE seq = ANY($1)", binds: binds), logger: logger)
            }
            for (seq, failure) in setAside {
                logger.error("outbox message refused by Kafka for good; set aside", metadata: ["schema": .string(schema), "seq": .stringConvertible(seq), "error": .string(failure)])
                var binds = PostgresBindings()
                binds.append(seq)
                binds.append(failure)
                try await connection.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).outbox SET failed_at = now(), failure = $2 WHERE seq = $1", binds: binds), logger: logger)
            }
            return (delivered.count, setAside.count)
        }
        if counts.setAside > 0 { setAsideCounter.increment(by: counts.setAside) }
        if counts.published > 0 { published.increment(by: counts.published) }
        return counts.published + counts.setAside
    }
}
