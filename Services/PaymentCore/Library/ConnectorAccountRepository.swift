import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore

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

/// Connector accounts from payment-core's own copy of the merchants' configurations
/// (`payments.merchant_configurations`, kept from the gateway's snapshots), opened for the call.
public struct ConnectorAccountRepository: Sendable {
    let copy: ConfigurationCopy
    let secrets: SecretBox

    public init(copy: ConfigurationCopy, secrets: SecretBox) {
        self.copy = copy
        self.secrets = secrets
    }

    /// The account with this `mca_…` id, or every account of the merchant for this connector name
    /// (an incoming webhook URL may name either).
    public func accounts(merchantId: String, reference: String) async throws -> [ConnectorAccount] {
        guard let snapshot = try await copy.current(merchantId), !snapshot.deleted else { return [] }
        return try snapshot.connectorAccounts
            .filter { $0.merchantConnectorId == reference || $0.connectorName == reference }
            .map { account in
                let details = try PaywireJSON.decoder.decode(
                    [String: String].self, from: Data(try secrets.open(account.sealedAccountDetails, as: .connectorAccountDetails, row: account.merchantConnectorId).utf8)
                )
                return ConnectorAccount(
                    merchantConnectorId: account.merchantConnectorId, merchantId: merchantId, profileId: account.profileId, connectorName: account.connectorName,
                    connectorType: account.connectorType, accountDetails: details,
                    webhookSecret: try account.sealedWebhookSecret.map { try secrets.open($0, as: .connectorWebhookSecret, row: account.merchantConnectorId) },
                    disabled: account.disabled
                )
            }
    }

    public func account(merchantId: String, merchantConnectorId: String) async throws -> ConnectorAccount? {
        try await accounts(merchantId: merchantId, reference: merchantConnectorId).first { $0.merchantConnectorId == merchantConnectorId }
    }
}
