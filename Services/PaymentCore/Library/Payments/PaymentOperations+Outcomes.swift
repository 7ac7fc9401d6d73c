import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Attempt outcomes, from the confirm call, the status sync or an incoming webhook, all through
/// `applyAttemptOutcome`: a new status is written with its event, a repeat changes nothing and a
/// move backwards is ignored.
extension PaymentOperations {
    // MARK: Outcomes

    /// Applies what a connector said about an attempt — from the call's answer, a status sync or
    /// an incoming webhook, in any order and any number of times. Under the intent's lock the
    /// state machine decides: a new status is written with its event; a repeat changes nothing;
    /// an outcome that would regress a final status is ignored. So whichever path arrives first
    /// wins, and the merchant hears one event.
    @discardableResult
    func applyAttemptOutcome(attemptId: String, result: ConnectorResult, source: String) async throws -> JSONValue? {
        try await postgres.withTransaction(logger: logger) { connection in
            guard var record = try await PaymentRecord.load(attemptId: attemptId, on: connection, logger: logger) else { return nil }
            let paymentId = record.paymentId
            guard record.activeAttemptId == attemptId, var attempt = record.attempt else {
                logger.notice("outcome for an attempt that is not the payment's active one ignored", metadata: ["attempt_id": .string(attemptId), "source": .string(source)])
                return record.object
            }
            let waiting = record.status == .processing ? attempt.modification : nil
            let event: PaymentEvent
            if let modification = result.modification {
                // How a capture or cancel ended. A refused cancel leaves the payment authorized;
                // a refused capture fails it (Hyperswitch's reading of Adyen's CAPTURE_FAILED).
                switch (modification, result.status) {
                case (.capture, .charged):
                    event = .captured(amount: result.amountReceived ?? attempt.modificationAmount ?? record.amountCapturable, of: record.amountCapturable)
                case (.capture, .declined): event = .declined
                case (.cancel, .voided): event = .cancelConfirmed
                case (.cancel, .declined) where waiting == .cancel: event = .modificationRefused
                default:
                    logger.notice("modification report ignored", metadata: ["attempt_id": .string(attemptId), "status": .string(record.status.rawValue), "source": .string(source)])
                    return record.object
                }
            } else if let waiting {
                // A report on the authorisation while a capture or cancel waits for its own: older news.
                logger.notice("authorisation report ignored: a \(waiting.rawValue) is under way", metadata: ["attempt_id": .string(attemptId), "source": .string(source)])
                return record.object
            } else {
                switch result.status {
                case .pending, .received: event = .pending
                // A processor that reports only that the authorisation succeeded (Adyen's
                // AUTHORISATION) has charged an automatic-capture payment: it captures by itself.
                case .authorized where record.captureMethod == "automatic": event = .charged(amount: result.amountReceived ?? record.amount)
                case .authorized: event = .authorized
                case .charged:
                    event = record.status == .requiresCapture
                        ? .captured(amount: result.amountReceived ?? record.amountCapturable, of: record.amountCapturable)
                        : .charged(amount: result.amountReceived ?? record.amount)
                case .declined: event = .declined
                case .voided: event = .cancel
                case .unresolved: event = .review
                }
            }
            let outcome: PaymentStateMachine.Outcome
            do {
                outcome = try PaymentStateMachine.apply(event, to: record.status)
            } catch {
                logger.notice("connector outcome ignored: it would move a payment backwards", metadata: [
                    "payment_id": .string(paymentId), "status": .string(record.status.rawValue), "outcome": .string(result.status.rawValue), "source": .string(source),
                ])
                try await settleAttempt(attempt, to: record.status, on: connection)
                return record.object
            }
            switch outcome {
            case .unchanged:
                if result.status == .pending {
                    try await connection.query("""
                        UPDATE payments.payment_attempts SET connector_transaction_id = COALESCE(connector_transaction_id, \(result.connectorTransactionId)),
                            announced_processing = true, modified_at = now() WHERE attempt_id = \(attemptId)
                        """, logger: logger)
                    // The merchant hears once that the outcome is pending, then the final event.
                    guard !attempt.announcedProcessing else { return record.object }
                    attempt.connectorTransactionId = attempt.connectorTransactionId ?? result.connectorTransactionId
                    attempt.announcedProcessing = true
                    record.attempt = attempt
                    record.modifiedAt = Date()
                    try await record.write(on: connection, logger: logger)
                    try await emit(MessageType.paymentProcessing, record, on: connection)
                    return record.object
                }
                try await settleAttempt(attempt, to: record.status, on: connection)
                return record.object
            case .moved(let status):
                let error = result.error
                let attemptStatus = Self.attemptStatus(for: status)
                try await connection.query("""
                    UPDATE payments.payment_attempts SET status = \(attemptStatus),
                        connector_transaction_id = COALESCE(\(result.connectorTransactionId), connector_transaction_id),
                        error_code = \(error?.processorCode), error_message = \(error?.processorMessage), unified_code = \(error?.unifiedCode),
                        unified_message = \(error?.unifiedMessage), raw_decline_code = \(error?.rawCode), decline_code = \(error?.code),
                        network_advice_code = \(error?.adviceCode), next_sync_at = NULL, modification = NULL, modification_amount = NULL,
                        modification_requested_at = NULL, modified_at = now()
                    WHERE attempt_id = \(attemptId)
                    """, logger: logger)
                attempt.status = attemptStatus
                attempt.connectorTransactionId = result.connectorTransactionId ?? attempt.connectorTransactionId
                attempt.errorCode = error?.processorCode
                attempt.errorMessage = error?.processorMessage
                attempt.declineCode = error?.code
                attempt.networkAdviceCode = error?.adviceCode
                attempt.unifiedCode = error?.unifiedCode
                attempt.unifiedMessage = error?.unifiedMessage
                attempt.rawDeclineCode = error?.rawCode
                attempt.modification = nil
                attempt.modificationAmount = nil
                let previous = record.status
                record.attempt = attempt
                record.status = status
                record.amountCapturable = status == .requiresCapture ? record.amount : 0
                switch status {
                case .succeeded, .partiallyCaptured:
                    if case .captured(let amount, _) = event { record.amountReceived = amount } else { record.amountReceived = result.amountReceived ?? record.amount }
                default: record.amountReceived = 0
                }
                record.modifiedAt = Date()
                try await record.write(on: connection, logger: logger)
                if case .captured = event {
                    try await emit(MessageType.paymentCaptured, record, on: connection)
                } else {
                    try await emit(Self.eventType(from: previous, to: status), record, on: connection)
                }
                Counter(label: "paywire_payment_transitions_total", dimensions: [("to", status.rawValue)]).increment()
                logger.info("payment moved", metadata: [
                    "payment_id": .string(paymentId), "from": .string(previous.rawValue), "to": .string(status.rawValue), "source": .string(source),
                ])
                return record.object
            }
        }
    }

    /// The processor took a capture or cancel and tells how it ended only by notification
    /// (Adyen's `received`): the payment is `processing`, its capturable amount kept, and no
    /// event is sent — the merchant hears how it ended. The attempt waits for the report; if none
    /// comes within `notificationOverdueAfter`, the status sync reports it overdue. A report that
    /// came first (it can beat the answer) has already moved the payment: nothing to do then.
    func beginModification(_ modification: ConnectorResult.Modification, attemptId: String, amount: Int?, source: String) async throws -> JSONValue {
        try await postgres.withTransaction(logger: logger) { connection in
            guard var record = try await PaymentRecord.load(attemptId: attemptId, on: connection, logger: logger) else { return .null }
            guard record.activeAttemptId == attemptId, var attempt = record.attempt,
                  case .moved(let status)? = try? PaymentStateMachine.apply(.modificationRequested, to: record.status) else {
                return record.object
            }
            try await connection.query("""
                UPDATE payments.payment_attempts SET status = 'pending', modification = \(modification.rawValue), modification_amount = \(amount),
                    modification_requested_at = now(), next_sync_at = now() + make_interval(secs => \(PaymentSettings.seconds(settings.notificationOverdueAfter))),
                    modified_at = now()
                WHERE attempt_id = \(attemptId)
                """, logger: logger)
            attempt.modification = modification
            attempt.modificationAmount = amount
            record.attempt = attempt
            record.status = status
            record.modifiedAt = Date()
            try await record.write(on: connection, logger: logger)
            logger.info("payment waits for the processor's report", metadata: [
                "payment_id": .string(record.paymentId), "modification": .string(modification.rawValue), "source": .string(source),
            ])
            return record.object
        }
    }

    /// An attempt whose outcome we learned without a status change (a duplicate) stops syncing.
    private func settleAttempt(_ attempt: AttemptRecord, to status: PaymentStatus, on connection: PostgresConnection) async throws {
        guard attempt.status == "pending", status != .processing else { return }
        try await connection.query("""
            UPDATE payments.payment_attempts SET status = \(Self.attemptStatus(for: status)), next_sync_at = NULL, modified_at = now()
            WHERE attempt_id = \(attempt.attemptId)
            """, logger: logger)
    }

    /// A call whose answer was lost (timeout, 5xx): the status sync asks the connector later.
    func markUnknown(attemptId: String, transactionId: String?) async throws {
        try await postgres.query("""
            UPDATE payments.payment_attempts SET status = 'pending', connector_transaction_id = COALESCE(connector_transaction_id, \(transactionId)),
                next_sync_at = now() + make_interval(secs => \(settings.firstSyncAfterSeconds)), modified_at = now()
            WHERE attempt_id = \(attemptId)
            """, logger: logger)
    }

    static func attemptStatus(for status: PaymentStatus) -> String {
        switch status {
        case .requiresCapture: return "authorized"
        case .succeeded, .partiallyCaptured: return "charged"
        case .failed: return "failed"
        case .cancelled: return "voided"
        default: return "pending"
        }
    }

    static func eventType(from: PaymentStatus, to: PaymentStatus) -> String {
        switch to {
        case .requiresCapture: return MessageType.paymentAuthorized
        case .succeeded: return from == .requiresCapture ? MessageType.paymentCaptured : MessageType.paymentSucceeded
        case .partiallyCaptured: return MessageType.paymentCaptured
        case .failed: return MessageType.paymentFailed
        case .cancelled: return MessageType.paymentCancelled
        case .requiresMerchantAction: return MessageType.actionRequired
        default: return MessageType.paymentProcessing
        }
    }
}
