import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// One refund as stored; `object` is the API object (Hyperswitch's refund fields).
struct RefundRecord: Sendable {
    var refundId: String
    var paymentId: String
    var merchantId: String
    var profileId: String?
    var amount: Int
    var currency: String
    var status: String
    var reason: String?
    var metadata: JSONValue?
    var connector: String
    var merchantConnectorId: String
    var connectorRefundId: String?
    var errorCode: String?
    var errorMessage: String?
    var unifiedCode: String?
    var unifiedMessage: String?
    var createdAt: Date
    var modifiedAt: Date

    static let columns = """
        refund_id, payment_id, merchant_id, profile_id, amount, currency, status, reason, metadata::text, connector,
        merchant_connector_id, connector_refund_id, error_code, error_message, unified_code, unified_message, created_at, modified_at
        """

    static func load(_ refundId: String, forUpdate: Bool, on connection: PostgresConnection, logger: Logger) async throws -> RefundRecord? {
        var query = PostgresQuery(unsafeSQL: "SELECT \(columns) FROM payments.refunds WHERE refund_id = $1 \(forUpdate ? "FOR UPDATE" : "")")
        query.binds.append(refundId)
        for try await row in try await connection.query(query, logger: logger) {
            let cells = row.makeRandomAccess()
            func text(_ index: Int) throws -> String? { try cells[index].decode(String?.self) }
            return RefundRecord(
                refundId: try cells[0].decode(String.self), paymentId: try cells[1].decode(String.self), merchantId: try cells[2].decode(String.self),
                profileId: try text(3), amount: try cells[4].decode(Int.self), currency: try cells[5].decode(String.self),
                status: try cells[6].decode(String.self), reason: try text(7),
                metadata: try text(8).map { try PaywireJSON.decoder.decode(JSONValue.self, from: Data($0.utf8)) },
                connector: try cells[9].decode(String.self), merchantConnectorId: try cells[10].decode(String.self),
                connectorRefundId: try text(11), errorCode: try text(12), errorMessage: try text(13), unifiedCode: try text(14),
                unifiedMessage: try text(15), createdAt: try cells[16].decode(Date.self), modifiedAt: try cells[17].decode(Date.self)
            )
        }
        return nil
    }

    var object: JSONValue {
        func optional(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return .object([
            "refund_id": .string(refundId), "payment_id": .string(paymentId), "merchant_id": .string(merchantId),
            "profile_id": optional(profileId), "amount": .number(Double(amount)), "currency": .string(currency),
            "status": .string(status), "reason": optional(reason), "metadata": metadata ?? .null,
            "connector": .string(connector), "merchant_connector_id": .string(merchantConnectorId),
            "connector_refund_id": optional(connectorRefundId), "error_code": optional(errorCode), "error_message": optional(errorMessage),
            "unified_code": optional(unifiedCode), "unified_message": optional(unifiedMessage),
            "created_at": .string(PaywireJSON.format(createdAt)), "updated_at": .string(PaywireJSON.format(modifiedAt)),
            "refund_type": .string("instant_refund"),
        ])
    }
}

extension PaymentOperations {
    /// Refunds a succeeded (or partially captured) payment. The refundable amount is checked
    /// under the payment's lock against every refund that has not failed, so two concurrent
    /// refunds can never return more than was received.
    func refund(_ command: PaymentCommand) async throws -> JSONValue {
        guard let refundId = command.refundId else { throw PaymentFailure.invalid("refund_id", "is required") }
        let created: (RefundRecord, Bool) = try await postgres.withTransaction(logger: logger) { connection in
            if let existing = try await RefundRecord.load(refundId, forUpdate: false, on: connection, logger: logger) {
                return (existing, false)
            }
            guard let payment = try await PaymentRecord.load(command.paymentId, merchantId: command.merchantId, forUpdate: true, on: connection, logger: logger) else {
                throw PaymentFailure.notFound("Payment")
            }
            guard payment.status == .succeeded || payment.status == .partiallyCaptured, let attempt = payment.attempt else {
                throw PaymentFailure.invalidState("refund", payment.status)
            }
            // Refused before anything is written or sent when the payment's connector has no refunds.
            if let connector = connectors.connector(named: attempt.connector), !connector.capabilities.refunds {
                throw PaymentFailure.invalid("payment_id", "\(connector.name) does not refund payments")
            }
            let refunded = try await connection.query("""
                SELECT COALESCE(SUM(amount), 0)::BIGINT FROM payments.refunds WHERE payment_id = \(payment.paymentId) AND status <> 'failed'
                """, logger: logger)
            var alreadyRefunded = 0
            for try await sum in refunded.decode(Int.self) { alreadyRefunded = sum }
            let refundable = payment.amountReceived - alreadyRefunded
            let amount = command.refundAmount ?? refundable
            guard amount > 0, amount <= refundable else {
                throw PaymentFailure.invalid("amount", "must be between 1 and the refundable amount (\(refundable) of \(payment.amountReceived) \(payment.currency) received)", code: "IR_13")
            }
            let now = Date()
            let record = RefundRecord(
                refundId: refundId, paymentId: payment.paymentId, merchantId: payment.merchantId, profileId: payment.profileId,
                amount: amount, currency: payment.currency, status: "pending", reason: command.refundReason, metadata: command.refundMetadata,
                connector: attempt.connector, merchantConnectorId: attempt.merchantConnectorId, connectorRefundId: nil,
                errorCode: nil, errorMessage: nil, unifiedCode: nil, unifiedMessage: nil, createdAt: now, modifiedAt: now
            )
            try await connection.query("""
                INSERT INTO payments.refunds (refund_id, payment_id, merchant_id, profile_id, amount, currency, status, reason, metadata,
                    connector, merchant_connector_id, next_sync_at, object, created_at, modified_at)
                VALUES (\(refundId), \(record.paymentId), \(record.merchantId), \(record.profileId), \(amount), \(record.currency), 'pending',
                    \(record.reason), \(try Self.json(record.metadata))::jsonb, \(record.connector), \(record.merchantConnectorId),
                    now() + make_interval(secs => \(settings.firstSyncAfterSeconds)), \(try Self.json(record.object))::jsonb, \(now), \(now))
                """, logger: logger)
            return (record, true)
        }
        let (record, isNew) = created
        guard isNew else { return record.object }
        guard let payment = try await read(record.paymentId), let transactionId = payment.attempt?.connectorTransactionId else {
            throw PaymentFailure.invalidState("refund", .processing)
        }
        let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: record.merchantConnectorId)
        let request = RefundRequest(refundId: refundId, paymentId: record.paymentId, connectorTransactionId: transactionId, amount: record.amount, currency: record.currency)
        let result: ConnectorRefundResult
        do {
            result = try await withTimeout(settings.connectorTimeout + .seconds(1)) { try await connector.refund(request, credentials: ConnectorCredentials(account)) }
        } catch {
            logger.warning("refund call without an answer; outcome unknown", metadata: ["refund_id": .string(refundId), "error": .string(String(describing: type(of: error)))])
            return record.object
        }
        return try await applyRefundOutcome(refundId: refundId, result: result, source: "refund") ?? .null
    }

    /// Like `applyAttemptOutcome`, for refunds: `pending` may become `succeeded` or `failed`,
    /// once; repeats and late arrivals change nothing.
    @discardableResult
    func applyRefundOutcome(refundId: String, result: ConnectorRefundResult, source: String) async throws -> JSONValue? {
        try await postgres.withTransaction(logger: logger) { connection in
            // The payment's row is locked first, as every change to the payment locks it: its
            // events and its refunds' events then commit, and leave the outbox, in one order.
            try await connection.query("""
                SELECT 1 FROM payments.payment_intents WHERE payment_id = (SELECT payment_id FROM payments.refunds WHERE refund_id = \(refundId)) FOR UPDATE
                """, logger: logger)
            guard let record = try await RefundRecord.load(refundId, forUpdate: true, on: connection, logger: logger) else { return nil }
            guard record.status == "pending" || record.status == "manual_review" else { return record.object }
            if result.status == .pending {
                try await connection.query("""
                    UPDATE payments.refunds SET connector_refund_id = COALESCE(connector_refund_id, \(result.connectorRefundId)), modified_at = now()
                    WHERE refund_id = \(refundId)
                    """, logger: logger)
                return try await refreshRefund(refundId, on: connection).object
            }
            let error = result.error
            try await connection.query("""
                UPDATE payments.refunds SET status = \(result.status.rawValue),
                    connector_refund_id = COALESCE(\(result.connectorRefundId), connector_refund_id),
                    error_code = \(error?.code), error_message = \(error?.message), unified_code = \(error?.unifiedCode),
                    unified_message = \(error?.unifiedMessage), next_sync_at = NULL, modified_at = now()
                WHERE refund_id = \(refundId)
                """, logger: logger)
            let updated = try await refreshRefund(refundId, on: connection)
            let type = result.status == .succeeded ? MessageType.refundSucceeded : MessageType.refundFailed
            let event = EventEnvelope(
                type: type, merchantId: updated.merchantId, profileId: updated.profileId,
                configurationVersion: try await configurationVersion(updated.merchantId, on: connection), payload: updated.object
            )
            try await outbox.enqueue(event, topic: topics.paymentEvents, key: updated.paymentId, on: connection, logger: logger)
            logger.info("refund moved", metadata: ["refund_id": .string(refundId), "to": .string(result.status.rawValue), "source": .string(source)])
            return updated.object
        }
    }

    /// The refund as it was asked of the connector (the sync asks again with it when the
    /// create's answer was lost).
    func refundRequest(_ refundId: String) async throws -> RefundRequest? {
        let rows = try await postgres.query("""
            SELECT r.payment_id, r.amount, r.currency, a.connector_transaction_id FROM payments.refunds r
            JOIN payments.payment_intents i ON i.payment_id = r.payment_id
            JOIN payments.payment_attempts a ON a.attempt_id = i.active_attempt_id
            WHERE r.refund_id = \(refundId)
            """, logger: logger)
        for try await (paymentId, amount, currency, transactionId) in rows.decode((String, Int, String, String?).self) {
            guard let transactionId else { return nil }
            return RefundRequest(refundId: refundId, paymentId: paymentId, connectorTransactionId: transactionId, amount: amount, currency: currency)
        }
        return nil
    }

    /// Every sync of a refund is spent and its outcome is still unknown: an operator decides
    /// (a late webhook still settles it).
    func markRefundForReview(_ refundId: String) async throws {
        try await postgres.withTransaction(logger: logger) { connection in
            try await connection.query("""
                UPDATE payments.refunds SET status = 'manual_review', next_sync_at = NULL, modified_at = now()
                WHERE refund_id = \(refundId) AND status = 'pending'
                """, logger: logger)
            _ = try await refreshRefund(refundId, on: connection)
        }
    }

    func refreshRefund(_ refundId: String, on connection: PostgresConnection) async throws -> RefundRecord {
        guard let record = try await RefundRecord.load(refundId, forUpdate: false, on: connection, logger: logger) else { throw PaymentFailure.notFound("Refund") }
        try await connection.query("UPDATE payments.refunds SET object = \(try Self.json(record.object))::jsonb WHERE refund_id = \(refundId)", logger: logger)
        return record
    }
}
