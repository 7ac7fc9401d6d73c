/// One versioned step of a service's schema. Versions are applied in order, each exactly once.
public struct SchemaMigration: Sendable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

/// The tables every service schema has: the outbox its relay publishes from, and the record of
/// consumed message ids that makes its consumers idempotent.
public enum MessagingTables {
    public static func migration(schema: String, version: Int = 1) -> SchemaMigration {
        SchemaMigration(version: version, name: "messaging", sql: """
            CREATE TABLE IF NOT EXISTS \(schema).outbox (
                seq          BIGSERIAL PRIMARY KEY,
                message_id   TEXT NOT NULL UNIQUE,
                topic        TEXT NOT NULL,
                message_key  TEXT,
                payload      BYTEA NOT NULL,
                created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
                published_at TIMESTAMPTZ
            );
            CREATE INDEX IF NOT EXISTS outbox_unpublished ON \(schema).outbox (seq) WHERE published_at IS NULL;
            CREATE TABLE IF NOT EXISTS \(schema).processed_messages (
                consumer     TEXT NOT NULL,
                message_id   TEXT NOT NULL,
                processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (consumer, message_id)
            );
            """)
    }

    /// Outbox rows Kafka refuses for good (too large, an invalid topic) are set aside with the
    /// error instead of blocking, or being produced again with, the rows after them.
    public static func setAsideMigration(schema: String, version: Int) -> SchemaMigration {
        SchemaMigration(version: version, name: "outbox set-aside", sql: """
            ALTER TABLE \(schema).outbox ADD COLUMN failed_at TIMESTAMPTZ, ADD COLUMN failure TEXT;
            DROP INDEX IF EXISTS \(schema).outbox_unpublished;
            CREATE INDEX outbox_unpublished ON \(schema).outbox (seq) WHERE published_at IS NULL AND failed_at IS NULL;
            """)
    }

    /// Who publishes a schema's outbox now: one relay at a time holds a lease (owner, until),
    /// renewed each pass, so no transaction stays open while Kafka acknowledges.
    public static func relayLeaseMigration(schema: String, version: Int) -> SchemaMigration {
        SchemaMigration(version: version, name: "outbox relay lease", sql: """
            CREATE TABLE \(schema).outbox_relay (
                id          INT PRIMARY KEY CHECK (id = 1),
                owner       TEXT NOT NULL,
                lease_until TIMESTAMPTZ NOT NULL
            );
            CREATE INDEX IF NOT EXISTS outbox_published ON \(schema).outbox (published_at) WHERE published_at IS NOT NULL;
            CREATE INDEX IF NOT EXISTS processed_messages_by_age ON \(schema).processed_messages (processed_at);
            """)
    }

    /// A trigger that tells the schema's listeners (`DatabaseNotifications`) when `table` gets
    /// rows (matching `when`, a condition on `NEW`, checked row by row; without one, once per
    /// statement), with `payload` naming the loop to wake. One notification per transaction and
    /// payload reaches the listener (PostgreSQL folds the rest).
    public static func notifyMigration(schema: String, version: Int, table: String, payload: String, events: String = "INSERT", when: String? = nil) -> SchemaMigration {
        let function = "\(schema).notify_\(payload)"
        let each = when.map { "FOR EACH ROW WHEN (\($0))" } ?? "FOR EACH STATEMENT"
        return SchemaMigration(version: version, name: "notify \(payload)", sql: """
            CREATE FUNCTION \(function)() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('\(DatabaseNotifications.channel(schema))', '\(payload)');
                RETURN NULL;
            END $$;
            CREATE TRIGGER notify_\(payload) AFTER \(events) ON \(schema).\(table)
                \(each) EXECUTE FUNCTION \(function)();
            """)
    }

    /// The trace context of the work that wrote each outbox row (`TraceHeaders`), so the message
    /// the relay publishes later continues that trace.
    public static func outboxTraceMigration(schema: String, version: Int) -> SchemaMigration {
        SchemaMigration(version: version, name: "outbox trace headers", sql: """
            ALTER TABLE \(schema).outbox ADD COLUMN trace_headers TEXT;
            """)
    }

    /// The outbox relay is woken by every row written to the outbox.
    public static func outboxNotifyMigration(schema: String, version: Int) -> SchemaMigration {
        notifyMigration(schema: schema, version: version, table: "outbox", payload: "outbox")
    }
}
