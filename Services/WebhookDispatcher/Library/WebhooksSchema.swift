import PaywireRuntime
import PaywireStore

public enum WebhooksSchema {
    public static let name = "webhooks"

    public static let migrator = SchemaMigrator(schema: name, migrations: [
        MessagingTables.migration(schema: name, version: 1),
        SchemaMigration(version: 2, name: "events_and_attempts", sql: """
            -- One row per (object, event type, endpoint): the idempotent id makes a second row
            -- for the same delivery impossible, whatever the concurrency.
            CREATE TABLE webhooks.events (
                event_id            TEXT PRIMARY KEY,
                idempotent_event_id TEXT NOT NULL UNIQUE,
                merchant_id         TEXT NOT NULL,
                profile_id          TEXT,
                webhook_endpoint_id TEXT,
                object_id           TEXT NOT NULL,
                event_type          TEXT NOT NULL,
                event_class         TEXT NOT NULL,
                target_url          TEXT NOT NULL,
                request_body        TEXT NOT NULL,
                request_headers     JSONB NOT NULL,
                delivery_status     TEXT NOT NULL DEFAULT 'pending',
                attempt_count       INTEGER NOT NULL DEFAULT 0,
                next_attempt_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
                created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX events_due ON webhooks.events (next_attempt_at) WHERE delivery_status = 'pending';
            CREATE INDEX events_by_merchant ON webhooks.events (merchant_id, created_at);
            CREATE TABLE webhooks.delivery_attempts (
                attempt_id          TEXT PRIMARY KEY,
                event_id            TEXT NOT NULL REFERENCES webhooks.events (event_id),
                delivery_attempt    TEXT NOT NULL,
                attempted_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
                response_status     INTEGER,
                response_headers    JSONB,
                response_body       TEXT,
                error_message       TEXT,
                is_webhook_notified BOOLEAN NOT NULL
            );
            CREATE INDEX attempts_by_event ON webhooks.delivery_attempts (event_id, attempted_at);
            """),
            MessagingTables.setAsideMigration(schema: name, version: 3),
        // Deliveries are claimed with a lease (owner, until) and sent with no transaction open;
        // `endpoint_key` groups them by receiver for the per-endpoint in-flight limit.
        SchemaMigration(version: 4, name: "leased deliveries", sql: """
            ALTER TABLE webhooks.events
                ADD COLUMN lease_owner TEXT,
                ADD COLUMN lease_until TIMESTAMPTZ,
                ADD COLUMN status_reason TEXT,
                ADD COLUMN endpoint_key TEXT GENERATED ALWAYS AS (COALESCE(webhook_endpoint_id, 'legacy:' || COALESCE(profile_id, merchant_id))) STORED;
            ALTER TABLE webhooks.delivery_attempts
                ADD COLUMN request_headers JSONB,
                ADD COLUMN latency_ms INTEGER;
            """),
        // Endpoint health as the dispatcher sees it, and the state it sets itself (inactive after
        // a 410 or days of failures); the merchant's own endpoint settings stay the gateway's.
        SchemaMigration(version: 5, name: "endpoint health and the events log", sql: """
            CREATE TABLE webhooks.endpoint_health (
                endpoint_id          TEXT PRIMARY KEY,
                merchant_id          TEXT NOT NULL,
                last_success_at      TIMESTAMPTZ,
                last_failure_at      TIMESTAMPTZ,
                failing_since        TIMESTAMPTZ,
                consecutive_failures INTEGER NOT NULL DEFAULT 0,
                disabled_at          TIMESTAMPTZ,
                disabled_reason      TEXT
            );
            ALTER TABLE webhooks.delivery_attempts ADD COLUMN webhook_endpoint_id TEXT;
            CREATE INDEX attempts_by_endpoint ON webhooks.delivery_attempts (webhook_endpoint_id, attempted_at) WHERE webhook_endpoint_id IS NOT NULL;
            CREATE INDEX events_by_object ON webhooks.events (merchant_id, object_id);
            CREATE INDEX events_by_endpoint ON webhooks.events (webhook_endpoint_id, created_at) WHERE webhook_endpoint_id IS NOT NULL;
            -- Per-object ordering: `seq` is the order of fan-out, which for one object is the order
            -- its events were published (one key, one partition, handled in order).
            ALTER TABLE webhooks.events ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT false, ADD COLUMN seq BIGSERIAL;
            CREATE INDEX events_ordered_pending ON webhooks.events (endpoint_key, object_id, seq) WHERE ordered AND delivery_status = 'pending';
            """),
        MessagingTables.relayLeaseMigration(schema: name, version: 6),
        // The dispatcher's own copy of the merchants' configurations (profiles, endpoints).
        ConfigurationCopy.migration(schema: name, version: 7),
        // A delivery due now (new, retried by hand, recovered) wakes the delivery worker; one
        // due later is found by the worker's next-due look-up.
        MessagingTables.notifyMigration(schema: name, version: 8, table: "events", payload: "deliveries",
                                        events: "INSERT OR UPDATE OF next_attempt_at, delivery_status",
                                        when: "NEW.delivery_status = 'pending' AND NEW.next_attempt_at <= now()"),
        SchemaMigration(version: 9, name: "first attempts sent at fan-out", sql: """
            -- 'sending': written by the fan-out leased to the replica that sends its first attempt
            -- at once. The row is not written again when that attempt succeeds: its initial
            -- attempt row (attempt_id = event_id) says it was delivered. A failed first attempt
            -- moves it to 'pending' as any outcome does; one whose replica died (lease run out,
            -- no attempt) is put back 'pending' by the sweep below.
            CREATE INDEX events_sending ON webhooks.events (lease_until) WHERE delivery_status = 'sending';
            -- How far the sweep for abandoned first attempts has looked (one row, any replica).
            CREATE TABLE webhooks.sending_sweep (id INTEGER PRIMARY KEY CHECK (id = 1), swept_until TIMESTAMPTZ NOT NULL);
            INSERT INTO webhooks.sending_sweep VALUES (1, now());
            -- A delivery's state and attempt count as the events log shows them.
            CREATE FUNCTION webhooks.delivery_state(status TEXT, event TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $$
                SELECT CASE WHEN status <> 'sending' THEN status
                            WHEN EXISTS (SELECT 1 FROM webhooks.delivery_attempts a WHERE a.attempt_id = event AND a.is_webhook_notified) THEN 'delivered'
                            ELSE 'pending' END
            $$;
            CREATE FUNCTION webhooks.delivery_attempt_count(status TEXT, attempts INTEGER, event TEXT) RETURNS INTEGER LANGUAGE sql STABLE AS $$
                SELECT attempts + CASE WHEN status = 'sending' AND EXISTS (SELECT 1 FROM webhooks.delivery_attempts a WHERE a.attempt_id = event) THEN 1 ELSE 0 END
            $$;
            """),
        MessagingTables.outboxTraceMigration(schema: name, version: 10),
        // The trace of the event each delivery is of (`TraceHeaders`), so its attempts, claimed
        // later by any replica, are spans of that trace.
        SchemaMigration(version: 11, name: "delivery trace headers", sql: """
            ALTER TABLE webhooks.events ADD COLUMN trace_headers TEXT;
            """),
    ])
}
