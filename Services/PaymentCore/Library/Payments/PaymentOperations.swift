import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Everything payment-core does to a payment. Each change happens in one transaction that locks
/// the intent row, checks the move with `PaymentStateMachine`, and writes the new state and the
/// event announcing it (outbox) together. Connector calls happen between transactions, never
/// inside one; an attempt is `pending` while its outcome is unknown and a status sync resolves it.
public struct PaymentOperations: Sendable {
    let postgres: PostgresClient
    let connectors: ConnectorRegistry
    let accounts: ConnectorAccountRepository
    let vault: CardVaultClient
    /// Seals processor tokens at rest.
    let secrets: SecretBox
    let topics: TopicNames
    let settings: PaymentSettings
    let logger: Logger
    let outbox = Outbox(schema: PaymentsSchema.name)

    // MARK: Helpers

    /// Runs one connector call. Anything but an answer (timeout, transport error) means the
    /// outcome is unknown: the attempt stays `pending` and the status sync finds out.
    func call(_ connector: any Connector, _ flow: String, attemptId: String, _ body: @Sendable @escaping () async throws -> ConnectorResult) async -> ConnectorResult {
        do {
            return try await withTimeout(settings.connectorTimeout + .seconds(1)) { try await body() }
        } catch {
            logger.warning("connector call without an answer; outcome unknown", metadata: [
                "connector": .string(connector.name), "flow": .string(flow), "attempt_id": .string(attemptId), "error": .string(String(describing: type(of: error))),
            ])
            return ConnectorResult(status: .pending, connectorTransactionId: nil)
        }
    }

    /// The configuration version the command being applied was made under (set by
    /// `PaymentCommandHandler` for the operation): accounts read at that version or a later one
    /// serve it, from memory.
    @TaskLocal static var configurationVersion: Int64 = 0

    func connectorFor(merchantId: String, merchantConnectorId: String?) async throws -> (ConnectorAccount, any Connector) {
        guard let merchantConnectorId else {
            throw PaymentFailure.invalid("routing", "no connector account was chosen for this payment")
        }
        guard let account = try await accounts.account(merchantId: merchantId, merchantConnectorId: merchantConnectorId, minimumVersion: Self.configurationVersion),
              !account.disabled else {
            throw PaymentFailure.invalid("merchant_connector_id", "the connector account no longer exists or is disabled")
        }
        guard let connector = connectors.connector(named: account.connectorName) else {
            throw PaymentFailure.invalid("merchant_connector_id", "\(account.connectorName) is not a payment connector")
        }
        return (account, connector)
    }

    /// Our attempt (and its payment and profile) that a connector's report names: by the id we
    /// gave the connector (echoed in its metadata), by its transaction id, or by the payment id
    /// we gave as its reference (the payment's active attempt), within this merchant and
    /// connector account. The transaction id is preferred: it names one attempt for certain.
    func findAttempt(attemptId: String?, transactionId: String, paymentId: String? = nil, account: ConnectorAccount) async throws -> (attemptId: String, paymentId: String, profileId: String?)? {
        let rows = try await postgres.query("""
            SELECT a.attempt_id, a.payment_id, i.profile_id FROM payments.payment_attempts a JOIN payments.payment_intents i USING (payment_id)
            WHERE a.merchant_id = \(account.merchantId) AND a.merchant_connector_id = \(account.merchantConnectorId)
              AND (a.attempt_id = \(attemptId ?? "") OR (a.connector = \(account.connectorName) AND a.connector_transaction_id = \(transactionId))
                   OR (a.payment_id = \(paymentId ?? "") AND a.attempt_id = i.active_attempt_id))
            ORDER BY (a.connector_transaction_id = \(transactionId)) DESC NULLS LAST
            LIMIT 1
            """, logger: logger)
        for try await row in rows.decode((String, String, String?).self) { return row }
        return nil
    }

    func read(_ paymentId: String, merchantId: String? = nil) async throws -> PaymentRecord? {
        try await postgres.withConnection { connection in
            try await PaymentRecord.load(paymentId, merchantId: merchantId, forUpdate: false, on: connection, logger: logger)
        }
    }

    func emit(_ type: String, _ record: PaymentRecord, on connection: PostgresConnection) async throws {
        let event = EventEnvelope(
            type: type, merchantId: record.merchantId, profileId: record.profileId,
            configurationVersion: try await configurationVersion(record.merchantId, on: connection), payload: record.object
        )
        try await outbox.enqueue(event, topic: topics.paymentEvents, key: record.paymentId, on: connection, logger: logger)
    }

    /// The merchant's configuration version this service's copy holds: an event made now is
    /// fanned out by the dispatcher only once its own copy has it (an endpoint created before the
    /// payment receives the payment's events).
    func configurationVersion(_ merchantId: String, on connection: PostgresConnection) async throws -> Int64 {
        for try await version in try await connection.query("SELECT version FROM payments.merchant_configurations WHERE merchant_id = \(merchantId)", logger: logger).decode(Int64.self) {
            return version
        }
        return 0
    }

    static func json<T: Encodable>(_ value: T?) throws -> String? {
        try value.map { try PaywireJSON.text($0) }
    }

    func sealToken(_ token: String?, paymentId: String) throws -> String? {
        try token.map { try secrets.seal($0, as: .processorToken, row: paymentId) }
    }
}

extension ConnectorCredentials {
    init(_ account: ConnectorAccount) {
        let details = account.accountDetails
        switch details["auth_type"] {
        case "HeaderKey": self = .headerKey(apiKey: details["api_key"] ?? "")
        case "BodyKey": self = .bodyKey(apiKey: details["api_key"] ?? "", key1: details["key1"] ?? "")
        case "SignatureKey": self = .signatureKey(apiKey: details["api_key"] ?? "", key1: details["key1"] ?? "", apiSecret: details["api_secret"] ?? "")
        default: self = .noKey
        }
    }
}
