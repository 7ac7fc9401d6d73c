import Logging
import PostgresNIO

/// Where the dispatcher sends a merchant's events. `endpointId` is nil for the legacy single
/// `webhook_url`, which counts as one endpoint subscribed to every event type.
public struct WebhookTarget: Sendable, Equatable {
    public var endpointId: String?
    public var url: String
    public var events: Set<String>?
    public var signingKey: String?

    public func subscribes(to eventType: String) -> Bool {
        events?.contains(eventType) ?? true
    }
}

/// Read-only access to the configuration the gateway owns, for the other services. It only
/// reads: a service writes nothing outside its own schema.
public struct ConfigurationRepository: Sendable {
    let postgres: PostgresClient
    let logger: Logger

    public init(postgres: PostgresClient, logger: Logger) {
        self.postgres = postgres
        self.logger = logger
    }

    public func webhookTargets(merchantId: String, eventType: String) async throws -> [WebhookTarget] {
        let rows = try await postgres.query(
            "SELECT webhook_url, payment_response_hash_key FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)",
            logger: logger
        )
        var targets: [WebhookTarget] = []
        for try await (url, key) in rows.decode((String?, String?).self) {
            if let url { targets.append(WebhookTarget(endpointId: nil, url: url, events: nil, signingKey: key)) }
        }
        return targets.filter { $0.subscribes(to: eventType) }
    }
}
