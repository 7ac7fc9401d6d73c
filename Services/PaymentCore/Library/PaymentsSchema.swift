import PaywireStore

public enum PaymentsSchema {
    public static let name = "payments"

    public static let migrator = SchemaMigrator(schema: name, migrations: [
        MessagingTables.migration(schema: name, version: 1),
        SchemaMigration(version: 2, name: "payments", sql: """
            CREATE TABLE payments.payments (
                payment_id  TEXT PRIMARY KEY,
                merchant_id TEXT NOT NULL,
                amount      BIGINT NOT NULL CHECK (amount > 0),
                currency    TEXT NOT NULL,
                status      TEXT NOT NULL,
                created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX payments_by_merchant ON payments.payments (merchant_id, created_at);
            """),
    ])
}
