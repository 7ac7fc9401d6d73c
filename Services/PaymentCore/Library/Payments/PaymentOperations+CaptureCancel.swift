import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Capturing and cancelling an authorized payment.
extension PaymentOperations {
    func capture(_ command: PaymentCommand) async throws -> JSONValue {
        guard let record = try await read(command.paymentId, merchantId: command.merchantId) else { throw PaymentFailure.notFound("Payment") }
        guard record.status == .requiresCapture, let attempt = record.attempt, let transactionId = attempt.connectorTransactionId else {
            throw PaymentFailure.invalidState("capture", record.status)
        }
        let amount = command.amountToCapture ?? record.amountCapturable
        guard amount > 0, amount <= record.amountCapturable else {
            throw PaymentFailure.invalid("amount_to_capture", "must be between 1 and the capturable amount (\(record.amountCapturable))")
        }
        let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: attempt.merchantConnectorId)
        if amount < record.amountCapturable && !connector.capabilities.partialCapture {
            throw PaymentFailure.invalid("amount_to_capture", "\(connector.name) captures only the whole capturable amount (\(record.amountCapturable))")
        }
        let request = CaptureRequest(paymentId: record.paymentId, connectorTransactionId: transactionId, amount: amount, currency: record.currency)
        var result = await call(connector, "capture", attemptId: attempt.attemptId) { try await connector.capture(request, credentials: ConnectorCredentials(account)) }
        switch result.status {
        case .charged:
            result.amountReceived = result.amountReceived ?? amount
            return try await applyAttemptOutcome(attemptId: attempt.attemptId, result: result, source: "capture") ?? .null
        case .received, .pending where !connector.capabilities.statusLookup:
            // Taken, or unknown at a processor with nothing to ask later: its report, or the
            // overdue report, settles it.
            return try await beginModification(.capture, attemptId: attempt.attemptId, amount: amount, source: "capture")
        case .pending:
            try await markUnknown(attemptId: attempt.attemptId, transactionId: transactionId)
            return try await read(record.paymentId)?.object ?? .null
        default:
            throw PaymentFailure(status: 422, code: "CE_01", message: result.error?.message ?? "The connector refused the capture", field: nil)
        }
    }

    func cancel(_ command: PaymentCommand) async throws -> JSONValue {
        guard let record = try await read(command.paymentId, merchantId: command.merchantId) else { throw PaymentFailure.notFound("Payment") }
        switch record.status {
        case .requiresConfirmation, .requiresPaymentMethod:
            return try await postgres.withTransaction(logger: logger) { connection in
                guard var locked = try await PaymentRecord.load(record.paymentId, forUpdate: true, on: connection, logger: logger) else { throw PaymentFailure.notFound("Payment") }
                guard case .moved(to: .cancelled)? = try? PaymentStateMachine.apply(.cancel, to: locked.status) else {
                    throw PaymentFailure.invalidState("cancel", locked.status)
                }
                locked.status = .cancelled
                locked.cancellationReason = command.cancellationReason
                locked.cardVault = nil
                locked.modifiedAt = Date()
                try await locked.write(on: connection, logger: logger)
                try await emit(MessageType.paymentCancelled, locked, on: connection)
                return locked.object
            }
        case .requiresCapture:
            guard let attempt = record.attempt, let transactionId = attempt.connectorTransactionId else { throw PaymentFailure.invalidState("cancel", record.status) }
            let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: attempt.merchantConnectorId)
            try await postgres.query("UPDATE payments.payment_intents SET cancellation_reason = \(command.cancellationReason) WHERE payment_id = \(record.paymentId)", logger: logger)
            let request = VoidRequest(paymentId: record.paymentId, connectorTransactionId: transactionId)
            let result = await call(connector, "void", attemptId: attempt.attemptId) { try await connector.void(request, credentials: ConnectorCredentials(account)) }
            switch result.status {
            case .voided:
                return try await applyAttemptOutcome(attemptId: attempt.attemptId, result: result, source: "void") ?? .null
            case .received, .pending where !connector.capabilities.statusLookup:
                return try await beginModification(.cancel, attemptId: attempt.attemptId, amount: nil, source: "void")
            case .pending:
                try await markUnknown(attemptId: attempt.attemptId, transactionId: transactionId)
                return try await read(record.paymentId)?.object ?? .null
            default:
                throw PaymentFailure(status: 422, code: "CE_01", message: result.error?.message ?? "The connector refused to cancel", field: nil)
            }
        default:
            throw PaymentFailure.invalidState("cancel", record.status)
        }
    }
}
