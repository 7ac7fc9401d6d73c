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
        SchemaMigration(version: 3, name: "profiles_endpoints_keys_connectors", sql: """
            -- Merchant fields that are only stored and returned live in `document`; columns are
            -- what the code queries or protects.
            ALTER TABLE gateway.merchant_accounts
                ADD COLUMN document JSONB NOT NULL DEFAULT '{}',
                ADD COLUMN default_profile_id TEXT,
                ADD COLUMN publishable_key TEXT,
                ADD COLUMN organization_id TEXT,
                DROP COLUMN webhook_url,
                DROP COLUMN payment_response_hash_key;
            CREATE TABLE gateway.business_profiles (
                profile_id                TEXT PRIMARY KEY,
                merchant_id               TEXT NOT NULL REFERENCES gateway.merchant_accounts (merchant_id) ON DELETE CASCADE,
                profile_name              TEXT NOT NULL,
                document                  JSONB NOT NULL DEFAULT '{}',
                payment_response_hash_key TEXT,
                webhook_password          TEXT,
                created_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
                UNIQUE (merchant_id, profile_name)
            );
            CREATE TABLE gateway.webhook_endpoints (
                position                   BIGSERIAL,
                webhook_endpoint_id        TEXT PRIMARY KEY,
                profile_id                 TEXT NOT NULL REFERENCES gateway.business_profiles (profile_id) ON DELETE CASCADE,
                merchant_id                TEXT NOT NULL,
                webhook_url                TEXT NOT NULL,
                events                     TEXT[] NOT NULL,
                status                     TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'deprecated')),
                secret                     TEXT NOT NULL,
                previous_secret            TEXT,
                previous_secret_expires_at TIMESTAMPTZ,
                created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at                TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX webhook_endpoints_by_profile ON gateway.webhook_endpoints (profile_id);
            CREATE TABLE gateway.api_keys (
                key_id       TEXT PRIMARY KEY,
                merchant_id  TEXT NOT NULL REFERENCES gateway.merchant_accounts (merchant_id) ON DELETE CASCADE,
                name         TEXT NOT NULL,
                description  TEXT,
                prefix       TEXT NOT NULL,
                hashed_key   TEXT NOT NULL UNIQUE,
                expiration   TIMESTAMPTZ,
                revoked      BOOLEAN NOT NULL DEFAULT false,
                created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE TABLE gateway.connector_accounts (
                merchant_connector_id TEXT PRIMARY KEY,
                merchant_id           TEXT NOT NULL REFERENCES gateway.merchant_accounts (merchant_id) ON DELETE CASCADE,
                profile_id            TEXT NOT NULL REFERENCES gateway.business_profiles (profile_id) ON DELETE CASCADE,
                connector_type        TEXT NOT NULL,
                connector_name        TEXT NOT NULL,
                account_details       TEXT NOT NULL,
                webhook_secret        TEXT,
                document              JSONB NOT NULL DEFAULT '{}',
                created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at           TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            -- Bumped in every transaction that changes a merchant's configuration; readers in
            -- other services compare it to what they cached.
            CREATE TABLE gateway.config_versions (
                merchant_id TEXT PRIMARY KEY,
                version     BIGINT NOT NULL
            );
            """),
        // One row per (merchant, Idempotency-Key): the request's keyed digest, the resource id
        // reserved for it (so a retry can never create a second payment or refund) and, once
        // known, the answer to replay.
        SchemaMigration(version: 4, name: "idempotency keys", sql: """
            CREATE TABLE gateway.idempotency_keys (
                merchant_id     TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                request_digest  TEXT NOT NULL,
                resource_id     TEXT NOT NULL,
                response_status INT,
                response_body   TEXT,
                created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (merchant_id, idempotency_key)
            );
            CREATE INDEX idempotency_keys_by_age ON gateway.idempotency_keys (created_at);
            """),
        // Ids of deleted merchant accounts: reserved for good, so a new account can never see
        // what other services keep under an old one's id.
        SchemaMigration(version: 5, name: "retired merchant ids", sql: """
            CREATE TABLE gateway.retired_merchant_ids (
                merchant_id TEXT PRIMARY KEY,
                retired_at  TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            """),
            MessagingTables.setAsideMigration(schema: name, version: 6),
        // An endpoint's optional rate limit (requests per second) and delivery order.
        SchemaMigration(version: 7, name: "endpoint rate limit and ordering", sql: """
            ALTER TABLE gateway.webhook_endpoints
                ADD COLUMN rate_limit INTEGER CHECK (rate_limit BETWEEN 1 AND 10000),
                ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'per_object'));
            """),
        // An Idempotency-Key's request in progress holds the key until `locked_until` (a
        // concurrent duplicate is refused, a crashed one frees it); an answer that was not final
        // (processing, 202) is not stored: `current_of` says a replay answers the resource's
        // current state instead.
        SchemaMigration(version: 8, name: "idempotency keys in progress", sql: """
            ALTER TABLE gateway.idempotency_keys
                ADD COLUMN locked_until TIMESTAMPTZ,
                ADD COLUMN current_of TEXT CHECK (current_of IN ('payment', 'refund'));
            """),
        MessagingTables.relayLeaseMigration(schema: name, version: 9),
        MessagingTables.outboxNotifyMigration(schema: name, version: 10),
        // Which partition of the reply topic each running gateway replica reads (`ReplyPartitionLease`).
        SchemaMigration(version: 11, name: "reply partition leases", sql: """
            CREATE TABLE gateway.reply_partition_leases (
                holder     TEXT PRIMARY KEY,
                topic      TEXT NOT NULL,
                partition  INTEGER NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL
            );
            """),
        // Every replica's cache of API keys (`NotifiedCache`) is emptied when keys change: revoked,
        // given a new expiration, deleted with their merchant.
        MessagingTables.notifyMigration(schema: name, version: 12, table: "api_keys", payload: "api_keys", events: "UPDATE OR DELETE"),
        // And its cache of payment settings whenever a merchant's configuration version moves
        // (every configuration change moves it, in its own transaction).
        MessagingTables.notifyMigration(schema: name, version: 13, table: "config_versions", payload: "configuration", events: "INSERT OR UPDATE OR DELETE"),
        // The console's sign-ins (`ConsoleSessionStore`): the browser holds a random token, the row
        // only its SHA-256; the API key signed in with is sealed here and never leaves the server.
        // In the database, not in a replica's memory, so any replica serves the next page.
        SchemaMigration(version: 14, name: "console sessions", sql: """
            CREATE TABLE gateway.console_sessions (
                token_hash  TEXT PRIMARY KEY,
                operator    BOOLEAN NOT NULL,
                merchant_id TEXT,
                api_key     TEXT NOT NULL,
                csrf_token  TEXT NOT NULL,
                created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
                expires_at  TIMESTAMPTZ NOT NULL,
                CHECK (operator OR merchant_id IS NOT NULL)
            );
            CREATE INDEX console_sessions_by_expiry ON gateway.console_sessions (expires_at);
            """),
        MessagingTables.outboxTraceMigration(schema: name, version: 15),
    ])
}
