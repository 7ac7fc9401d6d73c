import Foundation
import Logging
import PaywireModels
import PostgresNIO

/// A merchant connector account as payment-core needs it: which connector, and its opened
/// credentials and webhook secret. Never logged (its description hides the secrets).
public struct ConnectorAccount: Sendable, CustomStringConvertible {
    public var merchantConnectorId: String
    public var merchantId: String
    public var profileId: String
    public var connectorName: String
    public var connectorType: String
    public var accountDetails: [String: String]
    public var webhookSecret: String?
    public var disabled: Bool

    public var description: String { "connector account \(merchantConnectorId) (\(connectorName))" }
}

/// Read-only access to `gateway.connector_accounts` for the services that call connectors.
public struct ConnectorAccountRepository: Sendable {
    let postgres: PostgresClient
    let secrets: SecretBox
    let logger: Logger

    public init(postgres: PostgresClient, secrets: SecretBox, logger: Logger) {
        self.postgres = postgres
        self.secrets = secrets
        self.logger = logger
    }

    /// The account with this `mca_…` id, or every account of the merchant for this connector name
    /// (an incoming webhook URL may name either).
    public func accounts(merchantId: String, reference: String) async throws -> [ConnectorAccount] {
        let rows = try await postgres.query("""
            SELECT merchant_connector_id, profile_id, connector_name, connector_type, account_details, webhook_secret,
                   COALESCE((document->>'disabled')::boolean, false)
            FROM gateway.connector_accounts
            WHERE merchant_id = \(merchantId) AND (merchant_connector_id = \(reference) OR connector_name = \(reference))
            ORDER BY created_at, merchant_connector_id
            """, logger: logger)
        var accounts: [ConnectorAccount] = []
        for try await (id, profileId, name, type, sealedDetails, sealedSecret, disabled) in rows.decode((String, String, String, String, String, String?, Bool).self) {
            let details = try PaywireJSON.decoder.decode([String: String].self, from: Data(try secrets.open(sealedDetails, as: .connectorAccountDetails, row: id).utf8))
            accounts.append(ConnectorAccount(
                merchantConnectorId: id, merchantId: merchantId, profileId: profileId, connectorName: name, connectorType: type,
                accountDetails: details, webhookSecret: try sealedSecret.map { try secrets.open($0, as: .connectorWebhookSecret, row: id) }, disabled: disabled
            ))
        }
        return accounts
    }

    public func account(merchantId: String, merchantConnectorId: String) async throws -> ConnectorAccount? {
        try await accounts(merchantId: merchantId, reference: merchantConnectorId).first { $0.merchantConnectorId == merchantConnectorId }
    }
}
