import Foundation
import Logging
import PaywireModels
import PaywireStore
import PostgresNIO

/// Publishes a merchant's whole configuration after every change, in the change's own
/// transaction (outbox): the version is bumped under the `config_versions` row lock, so one
/// merchant's snapshots commit — and leave — in version order, and none is lost or published for
/// a change that rolled back. The other services keep their copies from these messages only.
struct ConfigurationPublisher: Sendable {
    let topic: String
    let logger: Logger
    let outbox = Outbox(schema: GatewaySchema.name)

    /// Bumps the merchant's version and enqueues the snapshot at the new version.
    func publishChange(_ merchantId: String, on connection: PostgresConnection) async throws {
        let rows = try await connection.query("""
            INSERT INTO gateway.config_versions (merchant_id, version) VALUES (\(merchantId), 1)
            ON CONFLICT (merchant_id) DO UPDATE SET version = gateway.config_versions.version + 1
            RETURNING version
            """, logger: logger)
        var version: Int64 = 0
        for try await value in rows.decode(Int64.self) { version = value }
        let snapshot = try await Self.snapshot(merchantId, version: version, on: connection, logger: logger)
        let envelope = EventEnvelope(type: MerchantConfigurationSnapshot.messageType, merchantId: merchantId, payload: try JSONValue(encoding: snapshot))
        try await outbox.enqueue(envelope, topic: topic, key: merchantId, on: connection, logger: logger)
    }

    /// The merchant's configuration version now (0: never configured). A command carries it, so
    /// the service that acts on it waits until its copy has reached it.
    static func currentVersion(_ merchantId: String, postgres: PostgresClient, logger: Logger) async throws -> Int64 {
        for try await value in try await postgres.query("SELECT version FROM gateway.config_versions WHERE merchant_id = \(merchantId)", logger: logger).decode(Int64.self) {
            return value
        }
        return 0
    }

    /// The merchant's configuration as stored now (a deleted merchant: `deleted`, nothing else).
    static func snapshot(_ merchantId: String, version: Int64, on connection: PostgresConnection, logger: Logger) async throws -> MerchantConfigurationSnapshot {
        var snapshot = MerchantConfigurationSnapshot(merchantId: merchantId, version: version, deleted: true)
        for try await defaultProfile in try await connection.query(
            "SELECT default_profile_id FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)", logger: logger
        ).decode(String?.self) {
            snapshot.deleted = false
            snapshot.defaultProfileId = defaultProfile
        }
        guard !snapshot.deleted else { return snapshot }
        let profiles = try await connection.query("""
            SELECT profile_id, document::text, payment_response_hash_key FROM gateway.business_profiles WHERE merchant_id = \(merchantId) ORDER BY profile_id
            """, logger: logger)
        for try await (profileId, documentText, sealedHashKey) in profiles.decode((String, String, String?).self) {
            let document = (try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(documentText.utf8))) ?? .null
            let details = document["webhook_details"]
            let disabled = WebhookEventType.legacyFlags.filter { details?[$0.key] == .bool(false) }.map(\.value).sorted()
            snapshot.profiles.append(.init(
                profileId: profileId, webhookURL: details?["webhook_url"]?.stringValue, disabledEventTypes: disabled, sealedHashKey: sealedHashKey,
                sealedCustomHeaders: document["outgoing_webhook_custom_http_headers"]?.stringValue,
                revenueRecoveryRetryAlgorithmType: document["revenue_recovery_retry_algorithm_type"]?.stringValue
            ))
        }
        let endpoints = try await connection.query("""
            SELECT webhook_endpoint_id, profile_id, webhook_url, events, status, secret, previous_secret, previous_secret_expires_at, modified_at, rate_limit, ordering
            FROM gateway.webhook_endpoints WHERE merchant_id = \(merchantId) ORDER BY position
            """, logger: logger)
        for try await (id, profileId, url, events, status, secret, previous, expires, modifiedAt, rateLimit, ordering) in endpoints.decode(
            (String, String, String, [String], String, String, String?, Date?, Date, Int?, String).self
        ) {
            snapshot.endpoints.append(.init(
                endpointId: id, profileId: profileId, url: url, events: events, status: status, sealedSecret: secret, sealedPreviousSecret: previous,
                previousSecretExpiresAt: expires, modifiedAt: modifiedAt, rateLimit: rateLimit, ordering: ordering
            ))
        }
        let accounts = try await connection.query("""
            SELECT merchant_connector_id, profile_id, connector_name, connector_type, account_details, webhook_secret,
                   COALESCE((document->>'disabled')::boolean, false), created_at
            FROM gateway.connector_accounts WHERE merchant_id = \(merchantId) ORDER BY created_at, merchant_connector_id
            """, logger: logger)
        for try await (id, profileId, name, type, details, secret, disabled, createdAt) in accounts.decode((String, String, String, String, String, String?, Bool, Date).self) {
            snapshot.connectorAccounts.append(.init(
                merchantConnectorId: id, profileId: profileId, connectorName: name, connectorType: type, sealedAccountDetails: details,
                sealedWebhookSecret: secret, disabled: disabled, createdAt: createdAt
            ))
        }
        return snapshot
    }
}
