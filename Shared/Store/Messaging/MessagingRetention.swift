import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps a schema's messaging tables the size of their useful window: published outbox rows are
/// deleted after `outboxRetention` (they are on Kafka; the rows only help an operator look back),
/// and consumed message ids after `processedRetention`, which must outlast the topics' own
/// retention so that no message Kafka could still redeliver is forgotten. Rows set aside with an
/// error stay until an operator deals with them. Deletes go in bounded batches, so no sweep holds
/// many locks or one long transaction; any replica may run it.
public struct MessagingRetention: Service {
    public static let environmentKeys = ["PAYWIRE_OUTBOX_RETENTION_HOURS", "PAYWIRE_PROCESSED_MESSAGES_RETENTION_HOURS"]

    let schema: String
    let client: PostgresClient
    let logger: Logger
    let outboxRetention: Duration
    let processedRetention: Duration
    let interval: Duration
    let waitUntil: @Sendable () async throws -> Void
    static let batch = 5000

    public init(schema: String, client: PostgresClient, logger: Logger, outboxRetention: Duration, processedRetention: Duration,
                interval: Duration = .seconds(3600), waitUntil: @escaping @Sendable () async throws -> Void = {}) {
        self.schema = schema
        self.client = client
        self.logger = logger
        self.outboxRetention = outboxRetention
        self.processedRetention = processedRetention
        self.interval = interval
        self.waitUntil = waitUntil
    }

    /// Retention from `PAYWIRE_OUTBOX_RETENTION_HOURS` (default 168: a week) and
    /// `PAYWIRE_PROCESSED_MESSAGES_RETENTION_HOURS` (default 720: 30 days, above Kafka's default
    /// topic retention of 7 days).
    public static func durations(_ environment: [String: String]) throws -> (outbox: Duration, processed: Duration) {
        func hours(_ key: String, _ value: Int) throws -> Duration {
            guard let text = environment[key] else { return .seconds(value * 3600) }
            guard let number = Int(text), (1...87_600).contains(number) else { throw InvalidRetention(key: key) }
            return .seconds(number * 3600)
        }
        return (try hours("PAYWIRE_OUTBOX_RETENTION_HOURS", 168), try hours("PAYWIRE_PROCESSED_MESSAGES_RETENTION_HOURS", 720))
    }

    public struct InvalidRetention: Error, CustomStringConvertible {
        public let key: String
        public var description: String { "\(key): expected a number of hours in 1...87600" }
    }

    public func run() async throws {
        try await PeriodicWork(name: "messaging retention (\(schema))", interval: interval, logger: logger, startAfter: waitUntil) {
            let removed = try await sweep()
            if removed.outbox + removed.processed > 0 {
                logger.info("messaging retention", metadata: [
                    "schema": .string(schema), "outbox_rows": .stringConvertible(removed.outbox), "processed_ids": .stringConvertible(removed.processed),
                ])
            }
            return .idle
        }.run()
    }

    /// Deletes everything past retention, a batch at a time. Returns how many rows went.
    @discardableResult
    public func sweep() async throws -> (outbox: Int, processed: Int) {
        let outbox = try await deleteInBatches("""
            DELETE FROM \(schema).outbox WHERE seq IN (
                SELECT seq FROM \(schema).outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT \(Self.batch))
            """, olderThan: outboxRetention)
        let processed = try await deleteInBatches("""
            DELETE FROM \(schema).processed_messages WHERE (consumer, message_id) IN (
                SELECT consumer, message_id FROM \(schema).processed_messages WHERE processed_at < now() - make_interval(secs => $1) LIMIT \(Self.batch))
            """, olderThan: processedRetention)
        return (outbox, processed)
    }

    func deleteInBatches(_ sql: String, olderThan age: Duration) async throws -> Int {
        var total = 0
        while true {
            var binds = PostgresBindings()
            binds.append(Double(age.components.seconds))
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql + " RETURNING 1", binds: binds), logger: logger)
            var count = 0
            for try await _ in rows { count += 1 }
            total += count
            if count < Self.batch || Task.isCancelled { return total }
        }
    }
}
