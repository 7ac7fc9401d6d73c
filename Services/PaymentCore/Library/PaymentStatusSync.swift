import Foundation
import Logging
import PaywireModels
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

    public func run() async throws {
        do { try await cancelWhenGracefulShutdown { try await waitUntil() } } catch { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let worked = try await syncDueAttempts() + syncDueRefunds()
                if worked > 0 { continue }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.error("status sync failed; will retry", metadata: ["error": .string(String(describing: error))])
            }
            // Graceful shutdown ends the wait at once instead of after the interval.
            let interval = operations.settings.syncInterval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    struct DueAttempt {
        var attemptId: String
        var paymentId: String
        var merchantId: String
        var merchantConnectorId: String
        var transactionId: String?
        var tries: Int
    }

    /// Returns how many attempts it looked at.
    func syncDueAttempts() async throws -> Int {
        let settings = operations.settings
        let due: [DueAttempt] = try await operations.postgres.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                SELECT attempt_id, payment_id, merchant_id, merchant_connector_id, connector_transaction_id, sync_count
                FROM payments.payment_attempts WHERE status = 'pending' AND next_sync_at <= now()
                ORDER BY next_sync_at LIMIT 20 FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var due: [DueAttempt] = []
            for try await (attemptId, paymentId, merchantId, mca, transactionId, tries) in rows.decode((String, String, String, String, String?, Int).self) {
                due.append(DueAttempt(attemptId: attemptId, paymentId: paymentId, merchantId: merchantId, merchantConnectorId: mca, transactionId: transactionId, tries: tries))
            }
            for item in due {
                // Past the last try the row stops being due; it stays `processing` and is logged.
                let next: Double? = item.tries + 1 >= settings.maxSyncs ? nil : Double(settings.syncBackoffMilliseconds(afterTries: item.tries)) / 1000
                try await connection.query("""
                    UPDATE payments.payment_attempts SET sync_count = sync_count + 1,
                        next_sync_at = CASE WHEN \(next) IS NULL THEN NULL ELSE now() + make_interval(secs => \(next ?? 0)) END
                    WHERE attempt_id = \(item.attemptId)
                    """, logger: logger)
            }
            return due
        }
        for item in due {
            do {
                let (account, connector) = try await operations.connectorFor(merchantId: item.merchantId, merchantConnectorId: item.merchantConnectorId)
                let request = SyncRequest(paymentId: item.paymentId, attemptId: item.attemptId, connectorTransactionId: item.transactionId)
                let result = await operations.call(connector, "psync", attemptId: item.attemptId) { try await connector.sync(request, credentials: ConnectorCredentials(account)) }
                logger.info("status sync", metadata: ["attempt_id": .string(item.attemptId), "result": .string(result.status.rawValue), "try": .stringConvertible(item.tries + 1)])
                if result.status != .pending || result.connectorTransactionId != nil {
                    try await operations.applyAttemptOutcome(attemptId: item.attemptId, result: result, source: "psync")
                }
                if item.tries + 1 >= settings.maxSyncs && result.status == .pending {
                    logger.error("payment outcome still unknown after the last status sync; needs an operator", metadata: ["attempt_id": .string(item.attemptId)])
                }
            } catch {
                logger.error("status sync of an attempt failed", metadata: ["attempt_id": .string(item.attemptId), "error": .string(String(describing: error))])
            }
        }
        return due.count
    }

    func syncDueRefunds() async throws -> Int {
        let settings = operations.settings
        let due: [(String, String, String, String?, Int)] = try await operations.postgres.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                SELECT refund_id, merchant_id, merchant_connector_id, connector_refund_id, sync_count
                FROM payments.refunds WHERE status = 'pending' AND next_sync_at <= now()
                ORDER BY next_sync_at LIMIT 20 FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var due: [(String, String, String, String?, Int)] = []
            for try await row in rows.decode((String, String, String, String?, Int).self) { due.append(row) }
            for (refundId, _, _, _, tries) in due {
                let next: Double? = tries + 1 >= settings.maxSyncs ? nil : Double(settings.syncBackoffMilliseconds(afterTries: tries)) / 1000
                try await connection.query("""
                    UPDATE payments.refunds SET sync_count = sync_count + 1,
                        next_sync_at = CASE WHEN \(next) IS NULL THEN NULL ELSE now() + make_interval(secs => \(next ?? 0)) END
                    WHERE refund_id = \(refundId)
                    """, logger: logger)
            }
            return due
        }
        for (refundId, merchantId, mca, connectorRefundId, _) in due {
            do {
                let (account, connector) = try await operations.connectorFor(merchantId: merchantId, merchantConnectorId: mca)
                let request = RefundSyncRequest(refundId: refundId, connectorRefundId: connectorRefundId)
                let result = try await withTimeoutOrNil(settings.connectorTimeout) { try await connector.syncRefund(request, credentials: ConnectorCredentials(account)) }
                if let result, result.status != .pending {
                    try await operations.applyRefundOutcome(refundId: refundId, result: result, source: "psync")
                }
            } catch {
                logger.error("status sync of a refund failed", metadata: ["refund_id": .string(refundId), "error": .string(String(describing: error))])
            }
        }
        return due.count
    }

    func withTimeoutOrNil<T: Sendable>(_ duration: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try? await PaywireRuntime.withTimeout(duration + .seconds(1), body)
    }
}
