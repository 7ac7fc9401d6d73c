import PaywireRuntime
import PaywireStore

public enum RecoverySchema {
    public static let name = "recovery"

    public static let migrator = SchemaMigrator(schema: name, migrations: [
        MessagingTables.migration(schema: name, version: 1),
        MessagingTables.setAsideMigration(schema: name, version: 2),
        MessagingTables.relayLeaseMigration(schema: name, version: 3),
        // The scheduler's own copy of the merchants' configurations (revenue-recovery settings).
        ConfigurationCopy.migration(schema: name, version: 4),
        // The process tracker: one task per recovery job (a merchant's invoice). `status` is the
        // task's (pending: due at schedule_time; running: leased by a replica; waiting: a retry's
        // payment is out, schedule_time is when to send it again; idle: nothing to run until the
        // billing platform reports again; finished); `business_status` the job's.
        SchemaMigration(version: 5, name: "process tracker", sql: """
            CREATE TABLE recovery.process_tracker (
                id              TEXT PRIMARY KEY,
                merchant_id     TEXT NOT NULL,
                name            TEXT NOT NULL,
                runner          TEXT NOT NULL,
                status          TEXT NOT NULL,
                business_status TEXT NOT NULL,
                retry_count     INTEGER NOT NULL DEFAULT 0,
                schedule_time   TIMESTAMPTZ,
                tracking_data   JSONB NOT NULL,
                lease_owner     TEXT,
                lease_until     TIMESTAMPTZ,
                created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
                updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX process_tracker_due ON recovery.process_tracker (schedule_time) WHERE status IN ('pending', 'waiting');
            CREATE INDEX process_tracker_leased ON recovery.process_tracker (lease_until) WHERE status = 'running';
            -- Every attempt on a job's invoice that Paywire made, reserved before its payment is
            -- sent (the payment id is the idempotency key: sending it again charges nothing more).
            CREATE TABLE recovery.attempts (
                payment_id          TEXT PRIMARY KEY,
                job_id              TEXT NOT NULL REFERENCES recovery.process_tracker (id),
                merchant_id         TEXT NOT NULL,
                attempt_number      INTEGER NOT NULL,
                card_key            TEXT NOT NULL,
                card_network        TEXT,
                status              TEXT NOT NULL,
                decline_code        TEXT,
                raw_decline_code    TEXT,
                advice_code         TEXT,
                message             TEXT,
                connector           TEXT,
                connector_transaction_id TEXT,
                attempted_at        TIMESTAMPTZ NOT NULL,
                finished_at         TIMESTAMPTZ,
                UNIQUE (job_id, attempt_number)
            );
            CREATE INDEX attempts_by_card ON recovery.attempts (merchant_id, card_key, attempted_at);
            """),
        MessagingTables.outboxNotifyMigration(schema: name, version: 6),
        // New and rescheduled tasks wake the task runner.
        MessagingTables.notifyMigration(schema: name, version: 7, table: "process_tracker", payload: "tasks",
                                        events: "INSERT OR UPDATE OF schedule_time, status", when: "NEW.status IN ('pending', 'waiting')"),
        MessagingTables.outboxTraceMigration(schema: name, version: 8),
    ])
}
