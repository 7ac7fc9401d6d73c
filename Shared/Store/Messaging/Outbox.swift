import Logging
import PaywireModels
import PostgresNIO

/// Writes outgoing messages into a schema's outbox *inside the caller's transaction*, so the state
/// change and the message commit or vanish together. The relay publishes them afterwards.
public struct Outbox: Sendable {
    public let schema: String

    public init(schema: String) {
        self.schema = schema
    }

    public func enqueue(
        _ envelope: EventEnvelope,
        topic: String,
        key: String?,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws {
        var binds = PostgresBindings()
        binds.append(envelope.id)
        binds.append(topic)
        binds.append(key)
        binds.append(ByteBuffer(bytes: try envelope.encoded()))
        binds.append(TraceHeaders.encoded(TraceHeaders.current()))
        try await connection.query(
            PostgresQuery(
                unsafeSQL: "INSERT INTO \(schema).outbox (message_id, topic, message_key, payload, trace_headers) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
                binds: binds
            ),
            logger: logger
        )
    }
}
