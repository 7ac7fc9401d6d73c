import Foundation
import PaywireModels
import PostgresNIO

extension PaymentOperations {
    /// `POST /payments/{id}` before the payment is confirmed: amount, currency, capture method and
    /// the free-form details (description, metadata, customer, billing …) change; nothing is
    /// charged and no event is published (nothing happened to money). Once confirmed, a payment
    /// is refused (400): its amount is what the processor was asked for.
    func update(_ command: PaymentCommand) async throws -> JSONValue {
        try await postgres.withTransaction(logger: logger) { connection in
            guard var record = try await PaymentRecord.load(command.paymentId, merchantId: command.merchantId, forUpdate: true, on: connection, logger: logger) else {
                throw PaymentFailure.notFound("Payment")
            }
            guard [.requiresPaymentMethod, .requiresConfirmation].contains(record.status) else { throw PaymentFailure.invalidState("update", record.status) }
            if let amount = command.amount { record.amount = amount }
            if let currency = command.currency { record.currency = currency }
            if let captureMethod = command.captureMethod { record.captureMethod = captureMethod }
            if case .object(let changes)? = command.details {
                for (key, value) in changes { record.details[key] = value }
            }
            record.modifiedAt = Date()
            try await record.write(on: connection, logger: logger)
            return record.object
        }
    }

    /// `POST /refunds/{id}`: the reason and the metadata, whatever the refund's state (they are
    /// the merchant's notes; the processor is not told).
    func updateRefund(_ command: PaymentCommand) async throws -> JSONValue {
        guard let refundId = command.refundId else { throw PaymentFailure.invalid("refund_id", "is required") }
        return try await postgres.withTransaction(logger: logger) { connection in
            guard var refund = try await RefundRecord.load(refundId, forUpdate: true, on: connection, logger: logger), refund.merchantId == command.merchantId else {
                throw PaymentFailure.notFound("Refund")
            }
            if let reason = command.refundReason { refund.reason = reason }
            if let metadata = command.refundMetadata { refund.metadata = metadata }
            refund.modifiedAt = Date()
            try await connection.query("""
                UPDATE payments.refunds SET reason = \(refund.reason), metadata = \(try Self.json(refund.metadata))::jsonb,
                    object = \(try Self.json(refund.object))::jsonb, modified_at = \(refund.modifiedAt)
                WHERE refund_id = \(refundId)
                """, logger: logger)
            return refund.object
        }
    }
}
