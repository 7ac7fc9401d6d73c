import Logging
import PostgresNIO

/// The consumer side of at-least-once: records each envelope id a consumer has applied, in the
/// same transaction as its effects, so a redelivered message changes nothing the second time.
public struct ProcessedMessages: Sendable {
    public let schema: String
    public let consumer: String

    public init(schema: String, consumer: String) {
        self.schema = schema
        self.consumer = consumer
    }

    /// Records many message ids at once inside the caller's transaction; returns those not seen
    /// before (the ones whose effects the caller should now apply, in that same transaction).
    public func recordNew(_ messageIDs: [String], on connection: PostgresConnection, logger: Logger) async throws -> Set<String> {
        var binds = PostgresBindings()
        binds.append(consumer)
        binds.append(messageIDs)
        let rows = try await connection.query(
            PostgresQuery(
                unsafeSQL: "INSERT INTO \(schema).processed_messages (consumer, message_id) SELECT $1, id FROM unnest($2::text[]) AS id ON CONFLICT DO NOTHING RETURNING message_id",
                binds: binds
            ),
            logger: logger
        )
        var new = Set<String>()
        for try await id in rows.decode(String.self) { new.insert(id) }
        return new
    }

    /// Runs `body` in a transaction unless `messageID` was already processed. Returns whether it ran.
    @discardableResult
    public func processOnce(
        messageID: String,
        client: PostgresClient,
        logger: Logger,
        _ body: (PostgresConnection) async throws -> Void
    ) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            var binds = PostgresBindings()
            binds.append(consumer)
            binds.append(messageID)
            let rows = try await connection.query(
                PostgresQuery(
                    unsafeSQL: "INSERT INTO \(schema).processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                    binds: binds
                ),
                logger: logger
            )
            let inserted = try await rows.hasRows()
            guard inserted else { return false }
            try await body(connection)
            return true
        }
    }
}
