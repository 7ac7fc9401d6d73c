import PaywireRuntime
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
        // Intents, attempts and refunds replace the walking skeleton's table. `object` is the
        // API object as of the last change, so reads (the gateway's GET) need no rendering.
        SchemaMigration(version: 3, name: "payment intents, attempts, refunds", sql: """
            DROP TABLE payments.payments;
            CREATE TABLE payments.payment_intents (
                payment_id            TEXT PRIMARY KEY,
                merchant_id           TEXT NOT NULL,
                profile_id            TEXT,
                status                TEXT NOT NULL,
                amount                BIGINT NOT NULL CHECK (amount > 0),
                currency              TEXT NOT NULL,
                capture_method        TEXT NOT NULL,
                amount_capturable     BIGINT NOT NULL DEFAULT 0,
                amount_received       BIGINT NOT NULL DEFAULT 0,
                merchant_connector_id TEXT,
                connector             TEXT,
                active_attempt_id     TEXT,
                attempt_count         INT NOT NULL DEFAULT 0,
                card                  JSONB,
                card_vault            JSONB,
                processor_token       TEXT,
                details               JSONB NOT NULL DEFAULT '{}',
                cancellation_reason   TEXT,
                client_secret         TEXT NOT NULL,
                object                JSONB NOT NULL,
                created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at           TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX payment_intents_by_merchant ON payments.payment_intents (merchant_id, created_at);
            CREATE TABLE payments.payment_attempts (
                attempt_id               TEXT PRIMARY KEY,
                payment_id               TEXT NOT NULL REFERENCES payments.payment_intents (payment_id),
                merchant_id              TEXT NOT NULL,
                connector                TEXT NOT NULL,
                merchant_connector_id    TEXT NOT NULL,
                status                   TEXT NOT NULL,
                amount                   BIGINT NOT NULL,
                connector_transaction_id TEXT,
                error_code               TEXT,
                error_message            TEXT,
                unified_code             TEXT,
                unified_message          TEXT,
                raw_decline_code         TEXT,
                announced_processing     BOOLEAN NOT NULL DEFAULT false,
                next_sync_at             TIMESTAMPTZ,
                sync_count               INT NOT NULL DEFAULT 0,
                created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at              TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE UNIQUE INDEX payment_attempts_by_transaction ON payments.payment_attempts (connector, connector_transaction_id)
                WHERE connector_transaction_id IS NOT NULL;
            CREATE INDEX payment_attempts_to_sync ON payments.payment_attempts (next_sync_at) WHERE status = 'pending';
            CREATE TABLE payments.refunds (
                refund_id             TEXT PRIMARY KEY,
                payment_id            TEXT NOT NULL REFERENCES payments.payment_intents (payment_id),
                merchant_id           TEXT NOT NULL,
                profile_id            TEXT,
                amount                BIGINT NOT NULL CHECK (amount > 0),
                currency              TEXT NOT NULL,
                status                TEXT NOT NULL,
                reason                TEXT,
                metadata              JSONB,
                connector             TEXT NOT NULL,
                merchant_connector_id TEXT NOT NULL,
                connector_refund_id   TEXT,
                error_code            TEXT,
                error_message         TEXT,
                unified_code          TEXT,
                unified_message       TEXT,
                next_sync_at          TIMESTAMPTZ,
                sync_count            INT NOT NULL DEFAULT 0,
                object                JSONB NOT NULL,
                created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at           TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX refunds_by_payment ON payments.refunds (payment_id);
            CREATE UNIQUE INDEX refunds_by_connector_refund ON payments.refunds (connector, connector_refund_id)
                WHERE connector_refund_id IS NOT NULL;
            CREATE INDEX refunds_to_sync ON payments.refunds (next_sync_at) WHERE status = 'pending';
            """),
        MessagingTables.setAsideMigration(schema: name, version: 4),
        MessagingTables.relayLeaseMigration(schema: name, version: 5),
        // payment-core's own copy of the merchants' configurations (connector accounts).
        ConfigurationCopy.migration(schema: name, version: 6),
        // `error_code` / `error_message` hold the processor's own words (Hyperswitch's reading);
        // the connector-neutral reason and the network's advice code get columns of their own.
        SchemaMigration(version: 7, name: "decline reason and advice code", sql: """
            ALTER TABLE payments.payment_attempts ADD COLUMN decline_code TEXT, ADD COLUMN network_advice_code TEXT;
            UPDATE payments.payment_attempts SET decline_code = error_code WHERE error_code IS NOT NULL;
            """),
        MessagingTables.outboxNotifyMigration(schema: name, version: 8),
        // Chargebacks and inquiries on payments, as the processors report them. One row per
        // (connector account, processor's dispute id): a report arriving twice finds its row.
        SchemaMigration(version: 9, name: "disputes", sql: """
            CREATE TABLE payments.disputes (
                dispute_id            TEXT PRIMARY KEY,
                merchant_id           TEXT NOT NULL,
                profile_id            TEXT,
                payment_id            TEXT NOT NULL,
                attempt_id            TEXT NOT NULL,
                merchant_connector_id TEXT NOT NULL,
                connector             TEXT NOT NULL,
                connector_dispute_id  TEXT NOT NULL,
                stage                 TEXT NOT NULL,
                status                TEXT NOT NULL,
                evidence              JSONB,
                object                JSONB NOT NULL,
                created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
                modified_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
                UNIQUE (merchant_connector_id, connector_dispute_id)
            );
            CREATE INDEX disputes_by_merchant ON payments.disputes (merchant_id, created_at DESC);
            """),
        // A capture or cancel the processor took without telling its outcome (Adyen): which one
        // the attempt waits on, for how much, and since when (the overdue report counts from it).
        SchemaMigration(version: 10, name: "pending modifications", sql: """
            ALTER TABLE payments.payment_attempts ADD COLUMN modification TEXT, ADD COLUMN modification_amount BIGINT,
                ADD COLUMN modification_requested_at TIMESTAMPTZ;
            """),
        MessagingTables.outboxTraceMigration(schema: name, version: 11),
    ])
}
