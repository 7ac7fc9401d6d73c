import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireStore
import PostgresNIO
import PaywireRuntime
import ServiceLifecycle

/// The scheduled status sync ("psync"): asks the connector about attempts and refunds whose
/// outcome is unknown (a call timed out or answered 5xx). Work is claimed with
/// `FOR UPDATE SKIP LOCKED` and leased by moving `next_sync_at`, so replicas never sync the same
/// row at once and a replica killed mid-sync leaves the row to be claimed again after the lease.
public struct PaymentStatusSync: Service {
    let operations: PaymentOperations
    let waitUntil: @Sendable () async throws -> Void

    public init(operations: PaymentOperations, waitUntil: @escaping @Sendable () async throws -> Void) {
        self.operations = operations
        self.waitUntil = waitUntil
    }

    var logger: Logger { operations.logger }

    /// The loop sleeps until the earliest row is due, but never longer than this: every row any
    /// other path writes is due `firstSyncAfter` after it is written at the earliest, so a loop
    /// that looks again within that time never finds one late — and needs no wake-up for it.
    static func sleepCap(_ settings: PaymentSettings) -> Duration {
        min(settings.syncInterval, settings.connectorTimeout + settings.syncDelay)
    }

    public func run() async throws {
        try await PeriodicWork(name: "status sync", interval: Self.sleepCap(operations.settings), logger: logger, startAfter: waitUntil) {
            if try await syncDueAttempts() + syncDueRefunds() > 0 { return .now }
            // A row due now that no claim took is being claimed by another replica: look again
            // shortly, not in a tight loop.
            return .after(max(try await nextDue() ?? Self.sleepCap(operations.settings), .milliseconds(100)))
        }.run()
    }

    /// How long until the earliest attempt or refund to sync is due (nil: none waits); both
    /// answered by the partial indexes on `next_sync_at`.
    func nextDue() async throws -> Duration? {
        let rows = try await operations.postgres.query("""
            SELECT EXTRACT(EPOCH FROM LEAST(
                (SELECT min(next_sync_at) FROM payments.payment_attempts WHERE status = 'pending'),
                (SELECT min(next_sync_at) FROM payments.refunds WHERE status = 'pending')) - now())::float8
            """, logger: logger)
        for try await seconds in rows.decode(Double?.self) {
            guard let seconds else { return nil }
            return .milliseconds(Int64(max(0, seconds) * 1000) + 1)
        }
        return nil
    }

    struct DueAttempt {
        var attemptId: String
        var paymentId: String
        var merchantId: String
        var merchantConnectorId: String
        var transactionId: String?
        var createdAt: Date
        /// When the attempt began to wait for the processor's report (its capture or cancel, or
        /// its authorisation): the overdue report counts from here.
        var waitingSince: Date
        var modification: String?
        var tries: Int
    }

    /// Claims due rows in one statement: bumps their try count and moves `next_sync_at` on by
    /// the backoff (the lease), or clears it after the last try — the row then stays
    /// `processing` and is logged for an operator. The `sync_count` returned is the new one.
    func claimSQL(table: String, columns: String, key: String) -> PostgresQuery {
        let settings = operations.settings
        var query = PostgresQuery(unsafeSQL: """
            UPDATE payments.\(table) SET sync_count = sync_count + 1,
                next_sync_at = CASE WHEN sync_count + 1 >= $1 THEN NULL
                    ELSE now() + make_interval(secs => LEAST($2 * power(2, LEAST(sync_count, 12)), 3600)) END
            WHERE \(key) IN (SELECT \(key) FROM payments.\(table) WHERE status = 'pending' AND next_sync_at <= now()
                ORDER BY next_sync_at LIMIT 20 FOR UPDATE SKIP LOCKED)
            RETURNING \(columns), sync_count
            """)
        query.binds.append(settings.maxSyncs)
        query.binds.append(settings.syncBackoffBaseSeconds)
        return query
    }

    /// Returns how many attempts it looked at.
    func syncDueAttempts() async throws -> Int {
        let settings = operations.settings
        let rows = try await operations.postgres.query(
            claimSQL(table: "payment_attempts", columns: """
                attempt_id, payment_id, merchant_id, merchant_connector_id, connector_transaction_id, created_at,
                COALESCE(modification_requested_at, created_at), modification
                """, key: "attempt_id"),
            logger: logger
        )
        var due: [DueAttempt] = []
        for try await (attemptId, paymentId, merchantId, mca, transactionId, createdAt, waitingSince, modification, tries) in rows.decode((String, String, String, String, String?, Date, Date, String?, Int).self) {
            due.append(DueAttempt(attemptId: attemptId, paymentId: paymentId, merchantId: merchantId, merchantConnectorId: mca, transactionId: transactionId,
                                  createdAt: createdAt, waitingSince: waitingSince, modification: modification, tries: tries - 1))
        }
        for item in due {
            do {
                let (account, connector) = try await operations.connectorFor(merchantId: item.merchantId, merchantConnectorId: item.merchantConnectorId)
                guard connector.capabilities.statusLookup else {
                    if try await cancelIfUnanswered(item, account: account, connector: connector) { continue }
                    try await awaitReport(table: "payment_attempts", key: "attempt_id", id: item.attemptId, since: item.waitingSince, connector: connector.name,
                                          flow: item.modification ?? "authorisation")
                    continue
                }
                let request = SyncRequest(paymentId: item.paymentId, attemptId: item.attemptId, connectorTransactionId: item.transactionId, attemptCreatedAt: item.createdAt)
                let result = await operations.call(connector, "psync", attemptId: item.attemptId) { try await connector.sync(request, credentials: ConnectorCredentials(account)) }
                // Whether the processor's id was known tells an operator why a sync stays pending
                // (a search lags; a lookup by id does not).
                logger.info("status sync", metadata: [
                    "attempt_id": .string(item.attemptId), "result": .string(result.status.rawValue), "try": .stringConvertible(item.tries + 1),
                    "asked_by": .string(item.transactionId == nil ? "search" : "transaction_id"),
                ])
                if result.status != .pending || result.connectorTransactionId != nil {
                    try await operations.applyAttemptOutcome(attemptId: item.attemptId, result: result, source: "psync")
                }
                if item.tries + 1 >= settings.maxSyncs && result.status == .pending {
                    // Unknown is not "declined": the charge may exist. An operator decides; a late
                    // webhook from the processor still settles it.
                    logger.error("payment outcome still unknown after the last status sync; handed to an operator (requires_merchant_action)", metadata: [
                        "attempt_id": .string(item.attemptId), "payment_id": .string(item.paymentId), "syncs": .stringConvertible(item.tries + 1),
                    ])
                    Counter(label: "paywire_payments_unresolved_total", dimensions: [("connector", connector.name)]).increment()
                    try await operations.applyAttemptOutcome(
                        attemptId: item.attemptId, result: ConnectorResult(status: .unresolved, connectorTransactionId: result.connectorTransactionId), source: "psync"
                    )
                }
            } catch {
                logger.error("status sync of an attempt failed", metadata: ["attempt_id": .string(item.attemptId), "error": .string(String(describing: error))])
            }
        }
        return due.count
    }

    func syncDueRefunds() async throws -> Int {
        let settings = operations.settings
        let rows = try await operations.postgres.query(
            claimSQL(table: "refunds", columns: "refund_id, merchant_id, merchant_connector_id, connector_refund_id, created_at", key: "refund_id"),
            logger: logger
        )
        var due: [(String, String, String, String?, Date, Int)] = []
        for try await row in rows.decode((String, String, String, String?, Date, Int).self) { due.append(row) }
        for (refundId, merchantId, mca, connectorRefundId, createdAt, tries) in due {
            do {
                let (account, connector) = try await operations.connectorFor(merchantId: merchantId, merchantConnectorId: mca)
                // A refund the processor took (its id is known) is settled only by its report. One
                // whose answer was lost is asked again below, under the same idempotency key.
                if !connector.capabilities.statusLookup, connectorRefundId != nil {
                    try await awaitReport(table: "refunds", key: "refund_id", id: refundId, since: createdAt, connector: connector.name, flow: "refund")
                    continue
                }
                let original = try await operations.refundRequest(refundId)
                let request = RefundSyncRequest(refundId: refundId, connectorRefundId: connectorRefundId, original: original)
                let result = try await withTimeoutOrNil(settings.connectorTimeout) { try await connector.syncRefund(request, credentials: ConnectorCredentials(account)) }
                if let result, result.status != .pending || (result.connectorRefundId != nil && connectorRefundId == nil) {
                    try await operations.applyRefundOutcome(refundId: refundId, result: result, source: "psync")
                }
                if tries >= settings.maxSyncs && (result?.status ?? .pending) == .pending {
                    logger.error("refund outcome still unknown after the last status sync; handed to an operator (manual_review)", metadata: ["refund_id": .string(refundId)])
                    Counter(label: "paywire_refunds_unresolved_total", dimensions: [("connector", connector.name)]).increment()
                    try await operations.markRefundForReview(refundId)
                }
            } catch {
                logger.error("status sync of a refund failed", metadata: ["refund_id": .string(refundId), "error": .string(String(describing: error))])
            }
        }
        return due.count
    }

    /// An authorisation at a processor without a look-up that has no processor id once its call
    /// timed out was never answered: payment-core died before or during the call, or the answer
    /// was lost. It is cancelled by reference (`cancelByReference`) after `unansweredCancelAfter`:
    /// marked first, then the cancel sent, again under the same key each time the row is claimed
    /// until the processor takes it. Its TECHNICAL_CANCEL report settles the payment. True when
    /// the row was dealt with here; false leaves it to `awaitReport` (overdue, or another case).
    func cancelIfUnanswered(_ item: DueAttempt, account: ConnectorAccount, connector: any Connector) async throws -> Bool {
        let settings = operations.settings
        guard connector.capabilities.cancelByReference else { return false }
        let now = Date()
        switch item.modification {
        case nil where item.transactionId == nil:
            guard now < item.createdAt.addingTimeInterval(PaymentSettings.seconds(settings.notificationOverdueAfter)) else { return false }
            let cancelAt = item.createdAt.addingTimeInterval(PaymentSettings.seconds(settings.unansweredCancelAfter))
            if cancelAt > now {
                try await sleep(table: "payment_attempts", key: "attempt_id", id: item.attemptId, until: cancelAt)
                return true
            }
            guard try await operations.beginTechnicalCancel(attemptId: item.attemptId) else { return true }
        case ConnectorResult.Modification.technicalCancel.rawValue?:
            guard now < item.waitingSince.addingTimeInterval(PaymentSettings.seconds(settings.notificationOverdueAfter)) else { return false }
        default:
            return false
        }
        let request = UnansweredAuthorisation(paymentId: item.paymentId, attemptId: item.attemptId)
        let result = await operations.call(connector, "technical_cancel", attemptId: item.attemptId) { try await connector.cancelUnanswered(request, credentials: ConnectorCredentials(account)) }
        logger.info("technical cancel", metadata: ["attempt_id": .string(item.attemptId), "result": .string(result.status.rawValue), "try": .stringConvertible(item.tries + 1)])
        Counter(label: "paywire_technical_cancels_total", dimensions: [("connector", connector.name), ("result", result.status.rawValue)]).increment()
        switch result.status {
        case .received:
            // Taken: the report settles it; it is overdue counted from when the cancel began.
            try await awaitReport(table: "payment_attempts", key: "attempt_id", id: item.attemptId, since: item.modification == nil ? now : item.waitingSince,
                                  connector: connector.name, flow: "technical_cancel")
        case .declined:
            // Refused outright: the authorisation's own report, or an operator, settles it.
            logger.error("technical cancel refused by the processor", metadata: ["attempt_id": .string(item.attemptId), "error": .string(result.error?.processorMessage ?? "")])
            try await operations.applyAttemptOutcome(
                attemptId: item.attemptId, result: ConnectorResult(status: .declined, connectorTransactionId: nil, modification: .technicalCancel), source: "technical cancel"
            )
        default:
            // No answer: asked again, under the same key, when the claim's lease runs out; after
            // the last try the payment goes to an operator, as any sync that never learns.
            if item.tries + 1 >= settings.maxSyncs {
                Counter(label: "paywire_payments_unresolved_total", dimensions: [("connector", connector.name)]).increment()
                try await operations.applyAttemptOutcome(attemptId: item.attemptId, result: ConnectorResult(status: .unresolved, connectorTransactionId: nil), source: "technical cancel")
            }
        }
        return true
    }

    /// A processor without a status look-up (Adyen) reports outcomes only by notification. Its
    /// rows are not asked about: they sleep until the notification is overdue, and are then
    /// reported once (log and `paywire_notifications_overdue_total`) and left for the report or
    /// an operator. The row stays `processing` / `pending`: unknown is not failed.
    func awaitReport(table: String, key: String, id: String, since: Date, connector: String, flow: String) async throws {
        let overdueAt = since.addingTimeInterval(PaymentSettings.seconds(operations.settings.notificationOverdueAfter))
        if overdueAt > Date() {
            try await sleep(table: table, key: key, id: id, until: overdueAt)
            return
        }
        logger.error("no notification from the processor within the overdue time; the outcome is unknown (handed to an operator)", metadata: [
            key: .string(id), "connector": .string(connector), "flow": .string(flow), "waiting_since": .string(PaywireJSON.format(since)),
        ])
        Counter(label: "paywire_notifications_overdue_total", dimensions: [("connector", connector), ("flow", flow)]).increment()
        var handOver = PostgresQuery(unsafeSQL: "UPDATE payments.\(table) SET next_sync_at = NULL WHERE \(key) = $1 AND status = 'pending'")
        handOver.binds.append(id)
        try await operations.postgres.query(handOver, logger: logger)
    }

    /// Leaves a pending row unclaimed until `until`, its try count started again.
    func sleep(table: String, key: String, id: String, until: Date) async throws {
        var query = PostgresQuery(unsafeSQL: "UPDATE payments.\(table) SET next_sync_at = $1, sync_count = 0 WHERE \(key) = $2 AND status = 'pending'")
        query.binds.append(until)
        query.binds.append(id)
        try await operations.postgres.query(query, logger: logger)
    }

    func withTimeoutOrNil<T: Sendable>(_ duration: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try? await PaywireRuntime.withTimeout(duration + .seconds(1), body)
    }
}
