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
            var result = result
            let event: PaymentEvent
            if waiting == .technicalCancel || result.modification == .technicalCancel {
                switch Self.technicalCancelVerdict(waiting: waiting, result: result, authorisationSeen: attempt.connectorTransactionId != nil,
                                                   automaticCapture: record.captureMethod == "automatic", amount: record.amount) {
                case .apply(let verdict, let error):
                    event = verdict
                    result.error = error
                case .hold:
                    // The cancel decides; an authorisation it may undo is only remembered.
                    if result.status == .authorized || result.status == .charged, let id = result.connectorTransactionId {
                        try await connection.query("""
                            UPDATE payments.payment_attempts SET connector_transaction_id = COALESCE(connector_transaction_id, \(id)), modified_at = now()
                            WHERE attempt_id = \(attemptId)
                            """, logger: logger)
                    }
                    logger.notice("authorisation report held: a technical cancel is under way", metadata: [
                        "attempt_id": .string(attemptId), "status": .string(result.status.rawValue), "source": .string(source),
                    ])
                    return record.object
                case .resume:
                    // Adyen refused the cancel and no authorisation was reported: its report still
                    // settles the payment, or the overdue report hands it to an operator.
                    try await connection.query("""
                        UPDATE payments.payment_attempts SET modification = NULL, modification_requested_at = NULL,
                            next_sync_at = created_at + make_interval(secs => \(PaymentSettings.seconds(settings.notificationOverdueAfter))), modified_at = now()
                        WHERE attempt_id = \(attemptId)
                        """, logger: logger)
                    logger.warning("technical cancel refused; waiting for the authorisation's report", metadata: ["attempt_id": .string(attemptId), "source": .string(source)])
                    return record.object
                case .ignore:
                    logger.notice("technical cancel report ignored", metadata: ["attempt_id": .string(attemptId), "status": .string(record.status.rawValue), "source": .string(source)])
                    return record.object
                }
            } else if let modification = result.modification {
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

    /// What a report means while an authorisation that was never answered is being cancelled by
    /// reference (`waiting == .technicalCancel`), or when the report is that cancel's.
    enum TechnicalCancelVerdict: Equatable {
        /// Move the payment, with this error on the attempt.
        case apply(PaymentEvent, ConnectorDecline?)
        /// An authorisation report the cancel may yet undo: remembered, nothing announced.
        case hold
        /// The cancel was refused and nothing reported an authorisation: wait for its report.
        case resume
        case ignore
    }

    /// Every order of the two reports ends the same way. The cancel's success fails the payment
    /// (nothing is charged, whatever the authorisation said); its refusal after an authorisation
    /// was reported means the money was taken, so that authorisation applies; a refused
    /// authorisation fails the payment at once (there is nothing left to cancel).
    static func technicalCancelVerdict(waiting: ConnectorResult.Modification?, result: ConnectorResult, authorisationSeen: Bool,
                                       automaticCapture: Bool, amount: Int) -> TechnicalCancelVerdict {
        switch (result.modification, result.status) {
        case (.technicalCancel?, _) where waiting != .technicalCancel: return .ignore
        case (.technicalCancel?, .voided): return .apply(.declined, unansweredAuthorisation)
        case (.technicalCancel?, .declined):
            guard authorisationSeen else { return .resume }
            return .apply(automaticCapture ? .charged(amount: amount) : .authorized, nil)
        case (nil, .declined): return .apply(.declined, result.error)
        // Every try to send the cancel went unanswered: an operator decides, as for any sync.
        case (nil, .unresolved): return .apply(.review, nil)
        case (nil, .authorized), (nil, .charged), (nil, .pending), (nil, .received): return .hold
        default: return .ignore
        }
    }

    /// The attempt's error when its unanswered authorisation was cancelled by reference.
    static let unansweredAuthorisation = ConnectorDecline(
        code: "processing_error", message: "The processor never answered the authorisation; Paywire cancelled it by reference, so nothing is charged",
        rawCode: "TECHNICAL_CANCEL", processorCode: "TECHNICAL_CANCEL", processorMessage: "Technical cancel"
    )

    /// Marks an attempt whose authorisation was never answered as being cancelled by reference,
    /// before the cancel is sent: from here an authorisation report is held, not applied, so a
    /// payment never shows as charged while a cancel that may undo it is in flight. False when
    /// the attempt has moved on (a report came first).
    func beginTechnicalCancel(attemptId: String) async throws -> Bool {
        try await postgres.withTransaction(logger: logger) { connection in
            guard let record = try await PaymentRecord.load(attemptId: attemptId, on: connection, logger: logger), record.activeAttemptId == attemptId,
                  record.status == .processing, let attempt = record.attempt, attempt.modification == nil, attempt.connectorTransactionId == nil else { return false }
            try await connection.query("""
                UPDATE payments.payment_attempts SET modification = 'technical_cancel', modification_requested_at = now(), modified_at = now()
                WHERE attempt_id = \(attemptId) AND status = 'pending'
                """, logger: logger)
            logger.warning("authorisation never answered; cancelling it by reference", metadata: ["attempt_id": .string(attemptId), "payment_id": .string(record.paymentId)])
            return true
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
