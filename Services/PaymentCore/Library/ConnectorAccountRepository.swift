import Foundation
import Logging
import NIOConcurrencyHelpers
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
///
/// A merchant's accounts, once read and opened, are kept with the configuration version they
/// were read at: a command made under that version or an earlier one is answered from here — no
/// query, no decoding of the snapshot, no opening of sealed details. A newer version, or a
/// lookup that names none (an incoming webhook), reads the copy again.
public struct ConnectorAccountRepository: Sendable {
    let copy: ConfigurationCopy
    let secrets: SecretBox
    private let cache = NIOLockedValueBox<[String: (version: Int64, accounts: [ConnectorAccount])]>([:])
    /// Merchants kept at most; past it the cache starts again (each entry is small).
    static let cachedMerchants = 10_000

    public init(copy: ConfigurationCopy, secrets: SecretBox) {
        self.copy = copy
        self.secrets = secrets
    }

    /// The account with this `mca_…` id, or every account of the merchant for this connector name
    /// (an incoming webhook URL may name either).
    /// `minimumVersion`: the configuration version the caller's command was made under (0: none
    /// known, read the copy now).
    public func accounts(merchantId: String, reference: String, minimumVersion: Int64 = 0) async throws -> [ConnectorAccount] {
        try await all(merchantId, minimumVersion: minimumVersion).filter { $0.merchantConnectorId == reference || $0.connectorName == reference }
    }

    /// The version of the merchant's configuration whose accounts are kept here (0: none).
    public func cachedVersion(_ merchantId: String) -> Int64 {
        cache.withLockedValue { $0[merchantId]?.version } ?? 0
    }

    func all(_ merchantId: String, minimumVersion: Int64) async throws -> [ConnectorAccount] {
        if minimumVersion > 0, let cached = cache.withLockedValue({ $0[merchantId] }), cached.version >= minimumVersion {
            return cached.accounts
        }
        guard let snapshot = try await copy.current(merchantId), !snapshot.deleted else {
            cache.withLockedValue { _ = $0.removeValue(forKey: merchantId) }
            return []
        }
        let opened = try snapshot.connectorAccounts
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
        cache.withLockedValue { cache in
            guard (cache[merchantId]?.version ?? -1) <= snapshot.version else { return }
            if cache.count >= Self.cachedMerchants { cache.removeAll() }
            cache[merchantId] = (snapshot.version, opened)
        }
        return opened
    }

    public func account(merchantId: String, merchantConnectorId: String, minimumVersion: Int64 = 0) async throws -> ConnectorAccount? {
        try await accounts(merchantId: merchantId, reference: merchantConnectorId, minimumVersion: minimumVersion).first { $0.merchantConnectorId == merchantConnectorId }
    }
}
