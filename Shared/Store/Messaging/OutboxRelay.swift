import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import PaywireKafka
import PostgresNIO
import ServiceLifecycle

/// Publishes a schema's outbox to Kafka and marks rows published.
///
/// One relay per schema works at a time: it holds a lease (`outbox_relay`, renewed with each
/// batch), so per-key order holds with many replicas, and no transaction or lock is open while
/// Kafka acknowledges — read a batch, produce it, then mark it with the statement that reads the
/// next. Events of one object are written under that object's row lock, so their sequence order
/// is their commit order. A relay that dies (or stalls past its lease) after producing and before
/// marking leaves those rows to be published again: consumers drop the repeat by envelope id.
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
    /// Rows Kafka acknowledged and no statement has marked yet: the next statement marks them
    /// (with the read of the next batch). A relay that dies with rows here leaves them to be
    /// published again, as one killed between producing and marking always has.
    private let unmarked = NIOLockedValueBox<[Int64]>([])
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
            try await self.publish().more ? .now : .idle
        }.run()
        // One last pass so what was committed before shutdown leaves now rather than at restart,
        // then the lease goes, so another replica takes over at once.
        _ = try? await publishPending()
        var release = PostgresBindings()
        release.append(owner)
        _ = try? await client.query(PostgresQuery(unsafeSQL: "DELETE FROM \(schema).outbox_relay WHERE owner = $1", binds: release), logger: logger)
    }

    /// Publishes what is waiting, batch after batch, and marks it; returns how many rows it
    /// published or set aside (0 when idle or another relay holds the lease). Every row it
    /// published is marked when it returns.
    @discardableResult
    public func publishPending() async throws -> Int {
        try await publish().count
    }

    /// The most batches one pass publishes; `more` says it stopped there with rows left.
    static let batchesPerPass = 20

    func publish() async throws -> (count: Int, more: Bool) {
        var count = 0
        for _ in 0..<Self.batchesPerPass {
            let batch = try await markAndTake()
            guard !batch.isEmpty else { return (count, false) }
            let settled = try await produce(batch)
            // Nothing acknowledged (Kafka unavailable for the moment): the rows stay for the
            // next pass, after the interval, rather than be asked for again at once.
            guard settled > 0 else { return (count, false) }
            count += settled
        }
        try await markPublished()
        return (count, true)
    }

    /// One statement marks the rows the last batch published and takes the next batch: the lease
    /// is taken or renewed only when rows wait, so an idle relay's pass reads and writes nothing
    /// (the partial index), and a busy one costs one statement per batch. The read runs on the
    /// statement's snapshot, from before the marks, so the rows being marked are left out.
    func markAndTake() async throws -> [(seq: Int64, message: KafkaProducerMessage)] {
        let marks = unmarked.withLockedValue { $0 }
        var binds = PostgresBindings()
        binds.append(owner)
        binds.append(leaseSeconds)
        binds.append(marks)
        let rows = try await client.query(PostgresQuery(unsafeSQL: """
            WITH marked AS (
                UPDATE \(schema).outbox SET published_at = now() WHERE seq = ANY($3)
            ), waiting AS (
                SELECT 1 FROM \(schema).outbox WHERE published_at IS NULL AND failed_at IS NULL AND NOT (seq = ANY($3)) LIMIT 1
            ), lease AS (
                INSERT INTO \(schema).outbox_relay (id, owner, lease_until) SELECT 1, $1, now() + make_interval(secs => $2) FROM waiting
                ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
                WHERE \(schema).outbox_relay.owner = EXCLUDED.owner OR \(schema).outbox_relay.lease_until < now()
                RETURNING 1
            )
            SELECT seq, topic, message_key, payload, trace_headers FROM \(schema).outbox
            WHERE EXISTS (SELECT 1 FROM lease) AND published_at IS NULL AND failed_at IS NULL AND NOT (seq = ANY($3))
            ORDER BY seq LIMIT \(batchSize)
            """, binds: binds), logger: logger)
        var batch: [(seq: Int64, message: KafkaProducerMessage)] = []
        for try await (seq, topic, key, payload, trace) in rows.decode((Int64, String, String?, ByteBuffer, String?).self) {
            let message = KafkaProducerMessage(topic: topic, key: key, value: Array(buffer: payload))
            batch.append((seq, TraceHeaders.attach(TraceHeaders.decoded(trace), to: message)))
        }
        unmarked.withLockedValue { $0.removeFirst(marks.count) }
        return batch
    }

    /// Marks what was published and not yet marked, on its own (a pass that stops with rows left).
    func markPublished() async throws {
        let marks = unmarked.withLockedValue { $0 }
        guard !marks.isEmpty else { return }
        var binds = PostgresBindings()
        binds.append(marks)
        try await client.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).outbox SET published_at = now() WHERE seq = ANY($1)", binds: binds), logger: logger)
        unmarked.withLockedValue { $0.removeFirst(marks.count) }
    }

    /// Produces a batch; returns how many rows Kafka settled (acknowledged, to be marked with the
    /// next statement, or refused for good and set aside now).
    func produce(_ batch: [(seq: Int64, message: KafkaProducerMessage)]) async throws -> Int {
        let results = try await producer.sendBatch(batch.map(\.message))
        // Every acknowledged row is marked, so nothing is produced twice while the relay runs. A
        // row Kafka refuses for good is set aside with its error; one that failed for the moment
        // stays for the next pass (the idempotent producer fails the rows after it in the same
        // partition too, so per-key order holds).
        var delivered: [Int64] = []
        var setAside: [(Int64, String)] = []
        for (seq, result) in zip(batch.map(\.seq), results) {
            switch result {
            case .success: delivered.append(seq)
            case .failure(let error) where error.isPermanentForMessage: setAside.append((seq, error.description))
            case .failure(let error):
                logger.warning("outbox message not acknowledged; will retry", metadata: ["schema": .string(schema), "seq": .stringConvertible(seq), "error": .string(error.description)])
            }
        }
        guard !delivered.isEmpty || !setAside.isEmpty else { return 0 }
        try await afterProduce?()
        unmarked.withLockedValue { $0.append(contentsOf: delivered) }
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
