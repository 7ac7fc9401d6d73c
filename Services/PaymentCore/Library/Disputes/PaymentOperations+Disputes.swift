import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Disputes: created and moved by the processors' reports (webhooks), accepted or challenged with
/// evidence by the merchant. Every change is checked with `DisputeStateMachine` under the dispute's
/// row lock and written with its `dispute_*` event (outbox) in one transaction; the processor is
/// called between transactions, never inside one.
extension PaymentOperations {
    /// A processor's report about a dispute on one of `account`'s payments. False when the payment
    /// is not one of ours (nothing is recorded).
    @discardableResult
    func applyDisputeReport(_ report: DisputeReport, account: ConnectorAccount, source: String) async throws -> Bool {
        let payment = try await findAttempt(attemptId: report.attemptId, transactionId: report.connectorTransactionId, account: account)
        guard let payment else {
            logger.notice("dispute report for a payment that is not ours ignored", metadata: ["connector": .string(account.connectorName), "source": .string(source)])
            return false
        }
        try await postgres.withTransaction(logger: logger) { connection in
            let fresh = DisputeRecord(
                disputeId: Identifier.make("dp"), merchantId: account.merchantId, profileId: payment.profileId, paymentId: payment.paymentId,
                attemptId: payment.attemptId, merchantConnectorId: account.merchantConnectorId, connector: account.connectorName, report: report, createdAt: Date()
            )
            let inserted = try await connection.query("""
                INSERT INTO payments.disputes (dispute_id, merchant_id, profile_id, payment_id, attempt_id, merchant_connector_id, connector,
                    connector_dispute_id, stage, status, object, created_at, modified_at)
                VALUES (\(fresh.disputeId), \(fresh.merchantId), \(fresh.profileId), \(fresh.paymentId), \(fresh.attemptId), \(fresh.merchantConnectorId),
                    \(fresh.connector), \(fresh.connectorDisputeId), \(fresh.stage.rawValue), \(fresh.status.rawValue), \(try Self.json(fresh.object))::jsonb,
                    \(fresh.createdAt), \(fresh.createdAt))
                ON CONFLICT (merchant_connector_id, connector_dispute_id) DO NOTHING RETURNING 1
                """, logger: logger)
            if try await inserted.hasRows() {
                logger.info("dispute opened", metadata: ["dispute_id": .string(fresh.disputeId), "payment_id": .string(fresh.paymentId), "source": .string(source)])
                try await emitDispute(fresh, on: connection)
                return
            }
            guard var record = try await lockDispute(merchantConnectorId: account.merchantConnectorId, connectorDisputeId: report.connectorDisputeId, on: connection) else { return }
            guard let status = report.status else { return }
            switch DisputeStateMachine.apply(stage: report.stage, status: status, to: record.stage, record.status) {
            case .moved(let stage, let status):
                record.stage = stage
                record.status = status
                record.take(report)
                try await writeDispute(record, on: connection)
                try await emitDispute(record, on: connection)
            case .unchanged:
                record.take(report)
                try await writeDispute(record, on: connection)
            case .refused:
                // An older report after a newer one, or one the rules do not allow: the dispute
                // stays as it is.
                logger.notice("dispute report refused by the dispute rules", metadata: [
                    "dispute_id": .string(record.disputeId), "from": .string("\(record.stage.rawValue)/\(record.status.rawValue)"),
                    "to": .string("\(report.stage.rawValue)/\(status.rawValue)"), "source": .string(source),
                ])
            }
        }
        return true
    }

    /// `POST /disputes/accept/{id}`: the processor is told, then the dispute is `dispute_accepted`.
    func acceptDispute(_ disputeId: String, merchantId: String?) async throws -> JSONValue {
        let record = try await disputeToChange(disputeId, merchantId: merchantId, to: .accepted, action: "accept")
        let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: record.merchantConnectorId)
        let answer = try await callProcessor(record, "accept") {
            try await connector.acceptDispute(DisputeRequest(disputeId: record.disputeId, connectorDisputeId: record.connectorDisputeId, paymentId: record.paymentId),
                                              credentials: ConnectorCredentials(account))
        }
        return try await moveDispute(disputeId, to: .accepted, connectorStatus: answer.connectorStatus)
    }

    /// `POST /disputes/evidence`: the text evidence is kept and sent to the processor; the dispute
    /// is `dispute_challenged` once the processor says it is under review.
    func submitDisputeEvidence(_ disputeId: String, merchantId: String?, evidence: [String: String]) async throws -> JSONValue {
        let record = try await disputeToChange(disputeId, merchantId: merchantId, to: .challenged, action: "challenge")
        let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: record.merchantConnectorId)
        try await postgres.query("UPDATE payments.disputes SET evidence = \(try Self.json(evidence))::jsonb, modified_at = now() WHERE dispute_id = \(disputeId)", logger: logger)
        let answer = try await callProcessor(record, "evidence") {
            try await connector.submitEvidence(
                DisputeEvidenceRequest(dispute: DisputeRequest(disputeId: record.disputeId, connectorDisputeId: record.connectorDisputeId, paymentId: record.paymentId), evidence: evidence),
                credentials: ConnectorCredentials(account)
            )
        }
        guard let status = answer.status else { return try await readDispute(disputeId, merchantId: merchantId)?.object ?? record.object }
        return try await moveDispute(disputeId, to: status, connectorStatus: answer.connectorStatus)
    }

    func readDispute(_ disputeId: String, merchantId: String?) async throws -> DisputeRecord? {
        let rows = try await postgres.query("""
            SELECT object::text FROM payments.disputes WHERE dispute_id = \(disputeId) AND (\(merchantId ?? "") = '' OR merchant_id = \(merchantId ?? ""))
            """, logger: logger)
        return try await firstDispute(rows)
    }

    // MARK: Helpers

    /// The merchant's dispute, if the move to `status` is allowed from where it is now.
    private func disputeToChange(_ disputeId: String, merchantId: String?, to status: DisputeStatus, action: String) async throws -> DisputeRecord {
        guard let record = try await readDispute(disputeId, merchantId: merchantId) else { throw APIError.notFound("Dispute") }
        guard case .moved = DisputeStateMachine.apply(stage: record.stage, status: status, to: record.stage, record.status) else {
            throw APIError(status: .badRequest, type: "invalid_request", code: "IR_16",
                           message: "You cannot \(action) this dispute because it has status \(record.status.rawValue)", field: "dispute_id")
        }
        return record
    }

    private func callProcessor(_ record: DisputeRecord, _ flow: String, _ call: @Sendable () async throws -> DisputeAnswer) async throws -> DisputeAnswer {
        do {
            return try await call()
        } catch let unsupported as ConnectorFlowNotSupported {
            throw APIError(status: .badRequest, type: "invalid_request", code: "IR_20", message: "\(record.connector): \(unsupported.description)", field: "dispute_id")
        } catch {
            logger.warning("processor did not take the dispute \(flow)", metadata: ["dispute_id": .string(record.disputeId), "error": .string(String(describing: type(of: error)))])
            throw APIError.unavailable("The processor did not answer; try again")
        }
    }

    /// Moves the dispute to `status` under its row lock, with its event; refused if it moved
    /// meanwhile to where that is not allowed.
    private func moveDispute(_ disputeId: String, to status: DisputeStatus, connectorStatus: String) async throws -> JSONValue {
        try await postgres.withTransaction(logger: logger) { connection in
            guard var record = try await lockDispute(disputeId: disputeId, on: connection) else { throw APIError.notFound("Dispute") }
            switch DisputeStateMachine.apply(stage: record.stage, status: status, to: record.stage, record.status) {
            case .moved(_, let status):
                record.status = status
                record.connectorStatus = connectorStatus
                record.connectorUpdatedAt = Date()
                try await writeDispute(record, on: connection)
                try await emitDispute(record, on: connection)
                return record.object
            case .unchanged:
                return record.object
            case .refused:
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "The dispute changed meanwhile; it has status \(record.status.rawValue)", field: "dispute_id")
            }
        }
    }

    private func lockDispute(disputeId: String, on connection: PostgresConnection) async throws -> DisputeRecord? {
        try await firstDispute(connection.query("SELECT object::text FROM payments.disputes WHERE dispute_id = \(disputeId) FOR UPDATE", logger: logger))
    }

    private func lockDispute(merchantConnectorId: String, connectorDisputeId: String, on connection: PostgresConnection) async throws -> DisputeRecord? {
        try await firstDispute(connection.query("""
            SELECT object::text FROM payments.disputes WHERE merchant_connector_id = \(merchantConnectorId) AND connector_dispute_id = \(connectorDisputeId) FOR UPDATE
            """, logger: logger))
    }

    private func firstDispute(_ rows: PostgresRowSequence) async throws -> DisputeRecord? {
        for try await text in rows.decode(String.self) {
            guard let object = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(text.utf8)) else { return nil }
            return DisputeRecord(object: object)
        }
        return nil
    }

    private func writeDispute(_ record: DisputeRecord, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE payments.disputes SET stage = \(record.stage.rawValue), status = \(record.status.rawValue), object = \(try Self.json(record.object))::jsonb, modified_at = now()
            WHERE dispute_id = \(record.disputeId)
            """, logger: logger)
    }

    /// `dispute_<status>` with the dispute object, on the payment events topic keyed by the
    /// payment (one payment's events stay in order).
    private func emitDispute(_ record: DisputeRecord, on connection: PostgresConnection) async throws {
        let event = EventEnvelope(
            type: record.status.rawValue, merchantId: record.merchantId, profileId: record.profileId,
            configurationVersion: try await configurationVersion(record.merchantId, on: connection), payload: record.object
        )
        try await outbox.enqueue(event, topic: topics.paymentEvents, key: record.paymentId, on: connection, logger: logger)
    }
}

extension DisputeRecord {
    /// What a newer report tells about the dispute beside its status.
    mutating func take(_ report: DisputeReport) {
        connectorStatus = report.connectorStatus
        connectorReason = report.connectorReason ?? connectorReason
        connectorReasonCode = report.connectorReasonCode ?? connectorReasonCode
        challengeRequiredBy = report.challengeRequiredBy ?? challengeRequiredBy
        connectorUpdatedAt = report.connectorUpdatedAt ?? connectorUpdatedAt
    }
}
