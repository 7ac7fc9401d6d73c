import PaywireStore

/// The `gateway` schema: configuration the gateway owns. Other services read it only through
/// `ConfigurationRepository`.
public enum GatewaySchema {
    public static let name = "gateway"

    public static let migrator = SchemaMigrator(schema: name, migrations: [
        MessagingTables.migration(schema: name, version: 1),
        SchemaMigration(version: 2, name: "merchant_accounts", sql: """
            CREATE TABLE gateway.merchant_accounts (
                merchant_id               TEXT PRIMARY KEY,
                merchant_name             TEXT,
                webhook_url               TEXT,
                payment_response_hash_key TEXT,
                created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at               TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            """),
    ])
}
