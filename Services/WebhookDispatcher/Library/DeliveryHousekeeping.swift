import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import PaywireRuntime
import PaywireStore
import PostgresNIO
import ServiceLifecycle

/// The dispatcher's background upkeep: the backlog gauges operators alert on (pending deliveries,
/// age of the oldest due one), and retention — attempts and finished deliveries older than
/// `PAYWIRE_WEBHOOK_RETENTION_DAYS` (30) are deleted in bounded batches, so the log never grows
/// without end and no single statement holds locks for long.
public struct DeliveryHousekeeping: Service {
    let postgres: PostgresClient
    let logger: Logger
    let retentionDays: Int
    let interval: Duration
    let batchSize = 1000
    private let pending = Gauge(label: "paywire_webhook_deliveries_pending")
    private let due = Gauge(label: "paywire_webhook_deliveries_due")
    private let oldestDueAge = Gauge(label: "paywire_webhook_oldest_due_age_seconds")

    public static let environmentKeys = ["PAYWIRE_WEBHOOK_RETENTION_DAYS"]

    public init(postgres: PostgresClient, logger: Logger, environment: [String: String], interval: Duration = .seconds(10)) throws {
        self.postgres = postgres
        self.logger = logger
        self.interval = interval
        retentionDays = try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_RETENTION_DAYS", default: 30, range: 1...3650)
    }

    public func run() async throws {
        let lastRetention = NIOLockedValueBox(ContinuousClock.now - .seconds(3600))
        try await PeriodicWork(name: "webhook housekeeping", interval: interval, logger: logger) {
            try await measure()
            let now = ContinuousClock.now
            if lastRetention.withLockedValue({ now - $0 >= .seconds(600) }) {
                lastRetention.withLockedValue { $0 = now }
                try await applyRetention()
            }
            return .idle
        }.run()
    }

    func measure() async throws {
        let rows = try await postgres.query("""
            SELECT count(*)::int, (count(*) FILTER (WHERE next_attempt_at <= now()))::int,
                   COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at) FILTER (WHERE next_attempt_at <= now())), 0)::float8
            FROM webhooks.events WHERE delivery_status = 'pending'
            """, logger: logger)
        for try await (pendingCount, dueCount, age) in rows.decode((Int, Int, Double).self) {
            pending.record(pendingCount)
            due.record(dueCount)
            oldestDueAge.record(age)
        }
    }

    /// Returns how many attempts and deliveries were deleted.
    @discardableResult
    func applyRetention() async throws -> (attempts: Int, deliveries: Int) {
        var attempts = 0, deliveries = 0
        while true {
            let rows = try await postgres.query("""
                WITH old AS (
                    SELECT attempt_id FROM webhooks.delivery_attempts
                    WHERE attempted_at < now() - make_interval(days => \(retentionDays)::int) LIMIT \(batchSize)
                )
                DELETE FROM webhooks.delivery_attempts a USING old WHERE a.attempt_id = old.attempt_id RETURNING 1
                """, logger: logger)
            var deleted = 0
            for try await _ in rows { deleted += 1 }
            attempts += deleted
            if deleted < batchSize { break }
        }
        while true {
            let rows = try await postgres.query("""
                WITH old AS (
                    SELECT e.event_id FROM webhooks.events e
                    WHERE e.delivery_status <> 'pending' AND e.created_at < now() - make_interval(days => \(retentionDays)::int)
                      AND NOT EXISTS (SELECT 1 FROM webhooks.delivery_attempts a WHERE a.event_id = e.event_id)
                    LIMIT \(batchSize)
                )
                DELETE FROM webhooks.events e USING old WHERE e.event_id = old.event_id RETURNING 1
                """, logger: logger)
            var deleted = 0
            for try await _ in rows { deleted += 1 }
            deliveries += deleted
            if deleted < batchSize { break }
        }
        if attempts + deliveries > 0 {
            logger.info("webhook log retention", metadata: ["attempts_deleted": .stringConvertible(attempts), "deliveries_deleted": .stringConvertible(deliveries), "retention_days": .stringConvertible(retentionDays)])
        }
        return (attempts, deliveries)
    }
}
