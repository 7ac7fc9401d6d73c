import Foundation
import Logging
import Metrics
import PaywireKafka
import PostgresNIO
import ServiceLifecycle

/// Publishes a schema's outbox to Kafka and marks rows published.
///
/// One relay per schema works at a time: it holds a lease (`outbox_relay`, renewed each pass), so
/// per-key order holds with many replicas, and no transaction or lock is open while Kafka
/// acknowledges — read a batch, produce it, then mark it, each on its own. Events of one object
/// are written under that object's row lock, so their sequence order is their commit order. A
/// relay that dies (or stalls past its lease) after producing and before marking leaves those rows
/// to be published again: consumers drop the repeat by envelope id.
public final class OutboxRelay: Service, Sendable {
    public let schema: String
    private let client: PostgresClient
    private let producer: KafkaProducer
    private let logger: Logger
    private let batchSize: Int
    /// With a `wake` (the schema's outbox notifications), an idle relay sleeps until a row is
    /// written, and looks by itself only this often; without one, it polls this often.
    private let idleInterval: Duration
    private let wake: WakeSignal?
    private let leaseSeconds: Double
    private let published: Counter
    private let setAsideCounter: Counter
    /// This relay's name on the lease.
    let owner = "relay-" + UUID().uuidString.lowercased()
    /// Runs after Kafka acknowledged a batch and before the rows are marked: tests throw here to
    /// play a relay killed at the worst moment, or look at the database meanwhile.
    let afterProduce: (@Sendable () async throws -> Void)?

    public init(
        schema: String,
        client: PostgresClient,
        producer: KafkaProducer,
        logger: Logger,
        batchSize: Int = 500,
        idleInterval: Duration = .milliseconds(20),
        wake: WakeSignal? = nil,
        lease: Duration = .seconds(30),
        afterProduce: (@Sendable () async throws -> Void)? = nil
    ) {
        self.afterProduce = afterProduce
        self.wake = wake
        self.schema = schema
        self.client = client
        self.producer = producer
        self.logger = logger
        self.batchSize = batchSize
        self.idleInterval = idleInterval
        leaseSeconds = Double(lease.components.seconds)
        published = Counter(label: "paywire_outbox_published_total", dimensions: [("schema", schema)])
        setAsideCounter = Counter(label: "paywire_outbox_set_aside_total", dimensions: [("schema", schema)])
    }

    public func run() async throws {
        try await PeriodicWork(name: "outbox relay (\(schema))", interval: idleInterval, wake: wake, logger: logger, errorPause: .milliseconds(500)) {
            try await self.publishPending() > 0 ? .now : .idle
        }.run()
        // One last pass so what was committed before shutdown leaves now rather than at restart,
        // then the lease goes, so another replica takes over at once.
        _ = try? await publishPending()
        var release = PostgresBindings()
        release.append(owner)
        _ = try? await client.query(PostgresQuery(unsafeSQL: "DELETE FROM \(schema).outbox_relay WHERE owner = $1", binds: release), logger: logger)
    }

    /// Takes or renews the lease; false while another relay holds it.
    func holdLease() async throws -> Bool {
        var binds = PostgresBindings()
        binds.append(owner)
        binds.append(leaseSeconds)
        let rows = try await client.query(PostgresQuery(unsafeSQL: """
            INSERT INTO \(schema).outbox_relay (id, owner, lease_until) VALUES (1, $1, now() + make_interval(secs => $2))
            ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
            WHERE \(schema).outbox_relay.owner = EXCLUDED.owner OR \(schema).outbox_relay.lease_until < now()
            RETURNING 1
            """, binds: binds), logger: logger)
        return try await rows.hasRows()
    }

    /// Publishes one batch. Returns how many rows it published or set aside (0 when idle or
    /// another relay holds the lease).
    @discardableResult
    public func publishPending() async throws -> Int {
        // Idle passes only read (the partial index), so an idle relay writes nothing.
        let waiting = try await client.query(
            PostgresQuery(unsafeSQL: "SELECT 1 FROM \(schema).outbox WHERE published_at IS NULL AND failed_at IS NULL LIMIT 1"), logger: logger
        )
        guard try await waiting.hasRows() else { return 0 }
        guard try await holdLease() else { return 0 }
        let rows = try await client.query(
            PostgresQuery(unsafeSQL: "SELECT seq, topic, message_key, payload FROM \(schema).outbox WHERE published_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT \(batchSize)"),
            logger: logger
        )
        var sequence: [Int64] = []
        var messages: [KafkaProducerMessage] = []
        for try await (seq, topic, key, payload) in rows.decode((Int64, String, String?, ByteBuffer).self) {
            sequence.append(seq)
            messages.append(KafkaProducerMessage(topic: topic, key: key, value: Array(buffer: payload)))
        }
        guard !messages.isEmpty else { return 0 }

        let results = try await producer.sendBatch(messages)
        // Every acknowledged row is marked, so nothing is produced twice while the relay runs. A
        // row Kafka refuses for good is set aside with its error; one that failed for the moment
        // stays for the next pass (the idempotent producer fails the rows after it in the same
        // partition too, so per-key order holds).
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
        guard !delivered.isEmpty || !setAside.isEmpty else { return 0 }
        try await afterProduce?()
        if !delivered.isEmpty {
            var binds = PostgresBindings()
            binds.append(delivered)
            try await client.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).outbox SET published_at = now() WHERE seq = ANY($1)", binds: binds), logger: logger)
        }
        for (seq, failure) in setAside {
            logger.error("outbox message refused by Kafka for good; set aside", metadata: ["schema": .string(schema), "seq": .stringConvertible(seq), "error": .string(failure)])
            var binds = PostgresBindings()
            binds.append(seq)
            binds.append(failure)
            try await client.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).outbox SET failed_at = now(), failure = $2 WHERE seq = $1", binds: binds), logger: logger)
        }
        if !setAside.isEmpty { setAsideCounter.increment(by: setAside.count) }
        if !delivered.isEmpty { published.increment(by: delivered.count) }
        return delivered.count + setAside.count
    }
}
