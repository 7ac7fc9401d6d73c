import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import PaywireModels
import PostgresNIO

/// How each endpoint has been answering, kept by the dispatcher in its own schema: last success,
/// consecutive failures, since when it has been failing — and the state the dispatcher sets on
/// its own: an endpoint that answers 410, or fails with no success for `disableAfter`, is made
/// inactive (its deliveries end as `endpoint_inactive`) until the merchant changes the endpoint.
struct EndpointHealth: Sendable {
    let postgres: PostgresClient
    let logger: Logger
    let disableAfter: Duration
    /// Endpoints whose last write from this replica was successes only, and when. A batch with
    /// nothing but successes for such an endpoint writes nothing for it within
    /// `successRefresh`: under steady traffic an endpoint's row is written every few seconds,
    /// not once per batch (its `last_success_at` is that much behind at most).
    private let successWritten = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    static let successRefresh = Duration.seconds(10)

    init(postgres: PostgresClient, logger: Logger, disableAfter: Duration) {
        self.postgres = postgres
        self.logger = logger
        self.disableAfter = disableAfter
    }

    struct Observation: Sendable {
        var endpointId: String
        var merchantId: String
        var succeeded: Bool
        var gone: Bool
    }

    /// A batch's observations, in the order they happened, folded into one row per endpoint.
    struct Summary: Equatable {
        var merchantId: String
        var anySuccess = false
        /// Failures after the batch's last success (all of them when there was none).
        var trailingFailures = 0
        var gone = false
    }

    static func summarize(_ observations: [Observation]) -> [String: Summary] {
        var summaries: [String: Summary] = [:]
        for observation in observations {
            var summary = summaries[observation.endpointId] ?? Summary(merchantId: observation.merchantId)
            if observation.succeeded {
                summary.anySuccess = true
                summary.trailingFailures = 0
            } else {
                summary.trailingFailures += 1
            }
            summary.gone = summary.gone || observation.gone
            summaries[observation.endpointId] = summary
        }
        return summaries
    }

    /// Rows are upserted in endpoint id order, so two replicas' batches never wait on each other
    /// in a cycle.
    func record(_ observations: [Observation]) async throws {
        let now = ContinuousClock.now
        let troubled = Set(observations.filter { !$0.succeeded || $0.gone }.map(\.endpointId))
        let recent = successWritten.withLockedValue { $0 }
        let summaries = Self.summarize(observations).filter { id, _ in
            troubled.contains(id) || recent[id].map { now - $0 >= Self.successRefresh } ?? true
        }
        guard !summaries.isEmpty else { return }
        let ids = summaries.keys.sorted()
        let merchants = ids.map { summaries[$0]!.merchantId }
        let successes = ids.map { summaries[$0]!.anySuccess }
        let failures = ids.map { summaries[$0]!.trailingFailures }
        let gone = ids.map { summaries[$0]!.gone }
        let disableSeconds = Double(disableAfter.components.seconds)
        // One row per endpoint of the batch; `newly` marks the ones this statement made inactive.
        let rows = try await postgres.query("""
            WITH s AS (
                SELECT * FROM unnest(\(ids)::text[], \(merchants)::text[], \(successes)::bool[], \(failures)::int[], \(gone)::bool[])
                    AS s(endpoint_id, merchant_id, any_success, failures, gone)
            ), upserted AS (
                INSERT INTO webhooks.endpoint_health AS h (endpoint_id, merchant_id, last_success_at, last_failure_at, failing_since,
                                                          consecutive_failures, disabled_at, disabled_reason)
                SELECT endpoint_id, merchant_id, CASE WHEN any_success THEN now() END, CASE WHEN failures > 0 THEN now() END,
                       CASE WHEN failures > 0 THEN now() END, failures,
                       CASE WHEN gone THEN now() END, CASE WHEN gone THEN 'answered_410' END
                FROM s
                ON CONFLICT (endpoint_id) DO UPDATE SET
                    last_success_at = COALESCE(EXCLUDED.last_success_at, h.last_success_at),
                    last_failure_at = COALESCE(EXCLUDED.last_failure_at, h.last_failure_at),
                    consecutive_failures = CASE WHEN EXCLUDED.last_success_at IS NOT NULL THEN EXCLUDED.consecutive_failures
                                                ELSE h.consecutive_failures + EXCLUDED.consecutive_failures END,
                    failing_since = CASE WHEN EXCLUDED.last_success_at IS NOT NULL THEN EXCLUDED.failing_since
                                         ELSE COALESCE(h.failing_since, EXCLUDED.failing_since) END,
                    disabled_at = CASE
                        WHEN h.disabled_at IS NOT NULL THEN h.disabled_at
                        WHEN EXCLUDED.disabled_at IS NOT NULL THEN now()
                        WHEN EXCLUDED.last_success_at IS NULL AND h.failing_since <= now() - make_interval(secs => \(disableSeconds)) THEN now()
                    END,
                    disabled_reason = CASE
                        WHEN h.disabled_at IS NOT NULL THEN h.disabled_reason
                        WHEN EXCLUDED.disabled_at IS NOT NULL THEN 'answered_410'
                        WHEN EXCLUDED.last_success_at IS NULL AND h.failing_since <= now() - make_interval(secs => \(disableSeconds)) THEN 'failing_too_long'
                    END
                RETURNING h.endpoint_id, h.merchant_id, h.disabled_reason, h.disabled_at = now() AS newly
            )
            SELECT endpoint_id, merchant_id, disabled_reason FROM upserted WHERE newly
            """, logger: logger)
        for try await (endpointId, merchantId, reason) in rows.decode((String, String, String?).self) {
            Counter(label: "paywire_webhook_endpoints_disabled_total", dimensions: [("reason", reason ?? "unknown")]).increment()
            logger.warning("webhook endpoint made inactive; it gets no deliveries until the merchant updates it", metadata: [
                "merchant_id": .string(merchantId), "webhook_endpoint_id": .string(endpointId), "reason": .string(reason ?? "unknown"),
            ])
        }
        // Only once written: a write that failed is made again by the next batch.
        successWritten.withLockedValue { written in
            for id in summaries.keys { if troubled.contains(id) { written[id] = nil } else { written[id] = now } }
            if written.count > 100_000 { written.removeAll() }
        }
    }

    /// The merchant changed the endpoint after the dispatcher made it inactive: active again,
    /// with a clean slate.
    func reactivate(endpointId: String, disabledAt: Date) async {
        do {
            try await postgres.query("""
                UPDATE webhooks.endpoint_health
                SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL, consecutive_failures = 0
                WHERE endpoint_id = \(endpointId) AND disabled_at = \(disabledAt)
                """, logger: logger)
            logger.info("webhook endpoint active again after a change by the merchant", metadata: ["webhook_endpoint_id": .string(endpointId)])
        } catch {
            logger.warning("reactivating a webhook endpoint failed", metadata: ["error": .string(String(describing: error))])
        }
    }

    /// The `health` block of `GET …/webhooks/{id}`.
    func view(merchantId: String, endpointId: String) async throws -> JSONValue {
        var health: [String: JSONValue] = [
            "state": .string("active"), "inactive_reason": .null, "inactive_since": .null,
            "last_success_at": .null, "last_failure_at": .null, "failing_since": .null, "consecutive_failures": .number(0),
        ]
        func date(_ value: Date?) -> JSONValue { value.map { .string(PaywireJSON.format($0)) } ?? .null }
        let rows = try await postgres.query("""
            SELECT last_success_at, last_failure_at, failing_since, consecutive_failures, disabled_at, disabled_reason
            FROM webhooks.endpoint_health WHERE endpoint_id = \(endpointId) AND merchant_id = \(merchantId)
            """, logger: logger)
        for try await (lastSuccess, lastFailure, failingSince, consecutive, disabledAt, reason) in rows.decode((Date?, Date?, Date?, Int, Date?, String?).self) {
            health["last_success_at"] = date(lastSuccess)
            health["last_failure_at"] = date(lastFailure)
            health["failing_since"] = date(failingSince)
            health["consecutive_failures"] = .number(Double(consecutive))
            if disabledAt != nil {
                health["state"] = .string("inactive")
                health["inactive_since"] = date(disabledAt)
                health["inactive_reason"] = reason.map(JSONValue.string) ?? .null
            }
        }
        let hour = try await postgres.query("""
            SELECT count(*)::int, (count(*) FILTER (WHERE is_webhook_notified))::int FROM webhooks.delivery_attempts
            WHERE webhook_endpoint_id = \(endpointId) AND attempted_at > now() - interval '1 hour'
            """, logger: logger)
        for try await (attempts, successes) in hour.decode((Int, Int).self) {
            health["attempts_last_hour"] = .number(Double(attempts))
            health["success_rate_last_hour"] = attempts == 0 ? .null : .number((Double(successes) / Double(attempts) * 1000).rounded() / 1000)
        }
        return .object(health)
    }
}
