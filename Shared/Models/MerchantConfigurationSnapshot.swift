import Foundation

/// One page of the gateway's `GET /internal/configuration` (every merchant, in id order).
public struct ConfigurationPage: Codable, Sendable {
    public var snapshots: [MerchantConfigurationSnapshot]
    /// Where the next page starts (`after`), or nil after the last.
    public var next: String?

    public init(snapshots: [MerchantConfigurationSnapshot], next: String?) {
        self.snapshots = snapshots
        self.next = next
    }
}

/// A merchant's whole configuration as the gateway publishes it on `paywire.configuration`
/// (compacted, key: merchant id), one message per change: the services that need it keep their
/// own copy from these, and a copy at `version` knows every change the gateway committed up to it.
/// Secrets stay sealed as the gateway stored them (`SealedField` and the row id open them);
/// `deleted` marks a merchant account that is gone.
public struct MerchantConfigurationSnapshot: Codable, Sendable, Equatable {
    public static let messageType = "merchant_configuration"

    public var merchantId: String
    public var version: Int64
    public var deleted: Bool
    public var defaultProfileId: String?
    public var profiles: [Profile]
    public var endpoints: [Endpoint]
    public var connectorAccounts: [ConnectorAccount]

    public init(merchantId: String, version: Int64, deleted: Bool = false, defaultProfileId: String? = nil,
                profiles: [Profile] = [], endpoints: [Endpoint] = [], connectorAccounts: [ConnectorAccount] = []) {
        self.merchantId = merchantId
        self.version = version
        self.deleted = deleted
        self.defaultProfileId = defaultProfileId
        self.profiles = profiles
        self.endpoints = endpoints
        self.connectorAccounts = connectorAccounts
    }

    public struct Profile: Codable, Sendable, Equatable {
        public var profileId: String
        /// The legacy single `webhook_url`, and the event types its `*_enabled: false` flags turn off.
        public var webhookURL: String?
        public var disabledEventTypes: [String]
        public var sealedHashKey: String?
        public var sealedCustomHeaders: String?
        public var revenueRecoveryRetryAlgorithmType: String?

        public init(profileId: String, webhookURL: String?, disabledEventTypes: [String], sealedHashKey: String?, sealedCustomHeaders: String?,
                    revenueRecoveryRetryAlgorithmType: String?) {
            self.profileId = profileId
            self.webhookURL = webhookURL
            self.disabledEventTypes = disabledEventTypes
            self.sealedHashKey = sealedHashKey
            self.sealedCustomHeaders = sealedCustomHeaders
            self.revenueRecoveryRetryAlgorithmType = revenueRecoveryRetryAlgorithmType
        }

        enum CodingKeys: String, CodingKey {
            case profileId = "profile_id", webhookURL = "webhook_url", disabledEventTypes = "disabled_event_types"
            case sealedHashKey = "sealed_hash_key", sealedCustomHeaders = "sealed_custom_headers"
            case revenueRecoveryRetryAlgorithmType = "revenue_recovery_retry_algorithm_type"
        }
    }

    public struct Endpoint: Codable, Sendable, Equatable {
        public var endpointId: String
        public var profileId: String
        public var url: String
        public var events: [String]
        public var status: String
        public var sealedSecret: String
        public var sealedPreviousSecret: String?
        public var previousSecretExpiresAt: Date?
        public var modifiedAt: Date
        public var rateLimit: Int?
        public var ordering: String

        public init(endpointId: String, profileId: String, url: String, events: [String], status: String, sealedSecret: String, sealedPreviousSecret: String?,
                    previousSecretExpiresAt: Date?, modifiedAt: Date, rateLimit: Int?, ordering: String) {
            self.endpointId = endpointId
            self.profileId = profileId
            self.url = url
            self.events = events
            self.status = status
            self.sealedSecret = sealedSecret
            self.sealedPreviousSecret = sealedPreviousSecret
            self.previousSecretExpiresAt = previousSecretExpiresAt
            self.modifiedAt = modifiedAt
            self.rateLimit = rateLimit
            self.ordering = ordering
        }

        enum CodingKeys: String, CodingKey {
            case endpointId = "webhook_endpoint_id", profileId = "profile_id", url, events, status
            case sealedSecret = "sealed_secret", sealedPreviousSecret = "sealed_previous_secret", previousSecretExpiresAt = "previous_secret_expires_at"
            case modifiedAt = "modified_at", rateLimit = "rate_limit", ordering
        }
    }

    public struct ConnectorAccount: Codable, Sendable, Equatable {
        public var merchantConnectorId: String
        public var profileId: String
        public var connectorName: String
        public var connectorType: String
        public var sealedAccountDetails: String
        public var sealedWebhookSecret: String?
        public var disabled: Bool
        public var createdAt: Date

        public init(merchantConnectorId: String, profileId: String, connectorName: String, connectorType: String, sealedAccountDetails: String,
                    sealedWebhookSecret: String?, disabled: Bool, createdAt: Date) {
            self.merchantConnectorId = merchantConnectorId
            self.profileId = profileId
            self.connectorName = connectorName
            self.connectorType = connectorType
            self.sealedAccountDetails = sealedAccountDetails
            self.sealedWebhookSecret = sealedWebhookSecret
            self.disabled = disabled
            self.createdAt = createdAt
        }

        enum CodingKeys: String, CodingKey {
            case merchantConnectorId = "merchant_connector_id", profileId = "profile_id", connectorName = "connector_name", connectorType = "connector_type"
            case sealedAccountDetails = "sealed_account_details", sealedWebhookSecret = "sealed_webhook_secret", disabled
            case createdAt = "created_at"
        }
    }

    enum CodingKeys: String, CodingKey {
        case merchantId = "merchant_id", version, deleted, defaultProfileId = "default_profile_id", profiles, endpoints
        case connectorAccounts = "connector_accounts"
    }
}
