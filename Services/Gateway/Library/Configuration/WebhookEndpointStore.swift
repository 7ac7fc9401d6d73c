import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// A profile's webhook endpoints (`multiple_webhooks_list` and the endpoints sub-resource): URLs
/// checked against the private-network rule, `whsec_` secrets sealed and shown once, rotation
/// with the old secret valid for 24 hours. Every change goes through `ConfigurationWriter.change`.
struct WebhookEndpointStore: Sendable {
    let writer: ConfigurationWriter
    let secrets: SecretBox
    /// `PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS`: off in production, so a webhook URL naming a
    /// loopback, private or link-local address is refused when it is set.
    let allowPrivateNetworks: Bool
    var postgres: PostgresClient { writer.postgres }
    var logger: Logger { writer.logger }

    /// A webhook target that names a private address literally is refused here; a name that
    /// resolves to one is refused by the dispatcher when it sends.
    func checkTarget(_ url: String?, field: String) throws {
        guard let url else { return }
        let target = try Validation.webhookURL(url, field: field)
        guard !allowPrivateNetworks else { return }
        let problem: String? = switch target.host {
        case .ipv4(let address): NetworkAddressPolicy.refusal(ipv4: address)
        case .ipv6(let address): NetworkAddressPolicy.refusal(ipv6: address)
        case .name: nil
        }
        if let problem { throw APIError.invalid(field, "must not point at \(problem)") }
    }

    /// `webhook_details` given with a merchant or profile change, applied in its transaction (to
    /// the profile, when there is one). Returns the secrets of endpoints it created.
    func apply(_ details: WebhookDetails?, merchantId: String, profileId: String?, on connection: PostgresConnection) async throws -> [String: String] {
        guard let details, let profileId else { return [:] }
        return try await applyWebhookDetails(details, merchantId: merchantId, profileId: profileId, fieldPrefix: "webhook_details", on: connection)
    }

    // MARK: Webhook endpoints

    /// Applies `webhook_details` to a profile. A given `multiple_webhooks_list` is the profile's
    /// whole list: entries with an id update that endpoint, entries without one create an endpoint,
    /// and endpoints left out are removed. Returns the secrets of endpoints it created.
    func applyWebhookDetails(_ details: WebhookDetails, merchantId: String, profileId: String, fieldPrefix: String, on connection: PostgresConnection) async throws -> [String: String] {
        try checkTarget(details.webhookURL, field: "\(fieldPrefix).webhook_url")
        let legacy = try PaywireJSON.text(JSONValue.object(["webhook_details": .object(details.legacyDocument)]))
        let password = try details.webhookPassword.map { try secrets.seal($0, as: .profileWebhookPassword, row: profileId) }
        try await connection.query("""
            UPDATE gateway.business_profiles SET document = document || \(legacy)::jsonb, webhook_password = \(password)
            WHERE profile_id = \(profileId)
            """, logger: logger)
        guard let inputs = details.endpoints else { return [:] }
        var existing: [String: String] = [:]
        let rows = try await connection.query("SELECT webhook_endpoint_id, status FROM gateway.webhook_endpoints WHERE profile_id = \(profileId) FOR UPDATE", logger: logger)
        for try await (id, status) in rows.decode((String, String).self) { existing[id] = status }
        // Endpoints left out go first, so a list that replaces them fits within the cap.
        let removed = Array(Set(existing.keys).subtracting(inputs.compactMap(\.endpointId)))
        if !removed.isEmpty {
            try await connection.query("DELETE FROM gateway.webhook_endpoints WHERE webhook_endpoint_id = ANY(\(removed))", logger: logger)
        }
        var created: [String: String] = [:]
        for (index, input) in inputs.enumerated() {
            let field = "\(fieldPrefix).multiple_webhooks_list[\(index)]"
            if let id = input.endpointId {
                guard existing[id] != nil else {
                    throw APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "Webhook endpoint does not exist in this profile", field: "\(field).webhook_endpoint_id")
                }
                try await updateEndpoint(id, input, currentStatus: existing[id]!, field: field, on: connection)
            } else {
                let (id, secret) = try await insertEndpoint(input, merchantId: merchantId, profileId: profileId, field: field, on: connection)
                created[id] = secret
            }
        }
        return created
    }

    func insertEndpoint(_ input: EndpointInput, merchantId: String, profileId: String, field: String, on connection: PostgresConnection) async throws -> (String, String) {
        guard let url = input.url else { throw APIError.invalid("\(field).webhook_url", "is required", code: "IR_05") }
        guard let events = input.events else { throw APIError.invalid("\(field).events", "is required", code: "IR_05") }
        try checkTarget(url, field: field.isEmpty ? "webhook_url" : "\(field).webhook_url")
        // Callers hold the profile's endpoints locked (FOR UPDATE), so the count cannot race.
        // Deprecated endpoints stay listed for the events log's sake but receive nothing, so they
        // do not count: a profile that `paywire listen` used a hundred times can still register.
        let countRows = try await connection.query("SELECT count(*) FROM gateway.webhook_endpoints WHERE profile_id = \(profileId) AND status <> 'deprecated'", logger: logger)
        var count = 0
        for try await value in countRows.decode(Int.self) { count = value }
        guard count < InputLimits.endpointsPerProfile else {
            throw APIError(status: .conflict, type: "invalid_request", code: "IR_39", message: "The profile already has \(InputLimits.endpointsPerProfile) webhook endpoints that are not deprecated, the most it may have; remove one first", field: field.isEmpty ? "webhook_url" : "\(field).webhook_url")
        }
        let id = Identifier.make("whe")
        let secret = GatewayIdentifiers.webhookSecret()
        try await connection.query("""
            INSERT INTO gateway.webhook_endpoints (webhook_endpoint_id, profile_id, merchant_id, webhook_url, events, status, secret, rate_limit, ordering)
            VALUES (\(id), \(profileId), \(merchantId), \(url), \(events), \(input.status ?? "active"), \(try secrets.seal(secret, as: .endpointSigningSecret, row: id)), \(input.rateLimit ?? nil), \(input.ordering ?? "none"))
            """, logger: logger)
        return (id, secret)
    }

    func updateEndpoint(_ id: String, _ input: EndpointInput, currentStatus: String, field: String, on connection: PostgresConnection) async throws {
        try checkTarget(input.url, field: field.isEmpty ? "webhook_url" : "\(field).webhook_url")
        if currentStatus == "deprecated" {
            let changes = input.status.map { $0 != "deprecated" } ?? false || input.url != nil || input.events != nil || input.rateLimit != nil || input.ordering != nil
            if changes { throw APIError.invalid(field.isEmpty ? "status" : "\(field).status", "a deprecated endpoint can never be changed or reactivated") }
            return
        }
        try await connection.query("""
            UPDATE gateway.webhook_endpoints
            SET webhook_url = COALESCE(\(input.url), webhook_url), events = COALESCE(\(input.events), events),
                status = COALESCE(\(input.status), status),
                rate_limit = CASE WHEN \(input.rateLimit != nil) THEN \(input.rateLimit ?? nil) ELSE rate_limit END,
                ordering = COALESCE(\(input.ordering), ordering), modified_at = now()
            WHERE webhook_endpoint_id = \(id)
            """, logger: logger)
    }

    /// When the merchant last changed the endpoint (nil: no such endpoint).
    func modifiedAt(endpointId: String) async throws -> Date? {
        for try await value in try await postgres.query("SELECT modified_at FROM gateway.webhook_endpoints WHERE webhook_endpoint_id = \(endpointId)", logger: logger).decode(Date.self) {
            return value
        }
        return nil
    }

    /// When the merchant last changed each of the profile's endpoints, in one query.
    func modifiedTimes(profileId: String) async throws -> [String: Date] {
        var times: [String: Date] = [:]
        for try await (id, value) in try await postgres.query("SELECT webhook_endpoint_id, modified_at FROM gateway.webhook_endpoints WHERE profile_id = \(profileId)", logger: logger).decode((String, Date).self) {
            times[id] = value
        }
        return times
    }

    func endpointResponses(profileId: String, onlyId: String? = nil, newSecrets: [String: String] = [:]) async throws -> [JSONValue] {
        let rows = try await postgres.query("""
            SELECT webhook_endpoint_id, webhook_url, events, status, rate_limit, ordering FROM gateway.webhook_endpoints
            WHERE profile_id = \(profileId) AND (\(onlyId)::text IS NULL OR webhook_endpoint_id = \(onlyId)) ORDER BY position
            """, logger: logger)
        var endpoints: [JSONValue] = []
        for try await (id, url, events, status, rateLimit, ordering) in rows.decode((String, String, [String], String, Int?, String).self) {
            var endpoint: [String: JSONValue] = [
                "webhook_endpoint_id": .string(id), "webhook_url": .string(url),
                "events": .array(events.map(JSONValue.string)), "status": .string(status),
                "rate_limit": rateLimit.map { .number(Double($0)) } ?? .null, "ordering": .string(ordering),
            ]
            // A signing secret is shown once: in the answer that created or rotated it.
            if let secret = newSecrets[id] { endpoint["signing_secret"] = .string(secret) }
            endpoints.append(.object(endpoint))
        }
        return endpoints
    }

    func requireProfile(merchantId: String, profileId: String) async throws {
        let rows = try await postgres.query("SELECT 1 FROM gateway.business_profiles WHERE profile_id = \(profileId) AND merchant_id = \(merchantId)", logger: logger)
        guard try await rows.hasRows() else { throw APIError.notFound("Business profile") }
    }

    func createEndpoint(merchantId: String, profileId: String, _ body: RequestObject) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        let input = try EndpointInput.parse(body)
        let (id, secret) = try await writer.change(merchantId: merchantId) { connection in
            // Concurrent creations for one profile queue here, so the endpoint cap holds.
            try await connection.query("SELECT 1 FROM gateway.business_profiles WHERE profile_id = \(profileId) FOR UPDATE", logger: logger)
            let created = try await insertEndpoint(input, merchantId: merchantId, profileId: profileId, field: "", on: connection)
            return created
        }
        return try await endpointResponses(profileId: profileId, onlyId: id, newSecrets: [id: secret]).first ?? .null
    }

    func updateEndpoint(merchantId: String, profileId: String, endpointId: String, _ body: RequestObject) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        let input = try EndpointInput.parse(body)
        try await writer.change(merchantId: merchantId) { connection in
            let status = try await lockedEndpointStatus(endpointId, profileId: profileId, on: connection)
            try await updateEndpoint(endpointId, input, currentStatus: status, field: "", on: connection)
        }
        return try await endpointResponses(profileId: profileId, onlyId: endpointId).first ?? .null
    }

    /// DELETE deprecates: the endpoint stops receiving events for good, and its delivery history
    /// keeps pointing at a row that still exists.
    func deprecateEndpoint(merchantId: String, profileId: String, endpointId: String) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        try await writer.change(merchantId: merchantId) { connection in
            _ = try await lockedEndpointStatus(endpointId, profileId: profileId, on: connection)
            try await connection.query("UPDATE gateway.webhook_endpoints SET status = 'deprecated', modified_at = now() WHERE webhook_endpoint_id = \(endpointId)", logger: logger)
        }
        return try await endpointResponses(profileId: profileId, onlyId: endpointId).first ?? .null
    }

    /// A new secret now; the old one keeps verifying for 24 hours so receivers can switch over.
    func rotateSecret(merchantId: String, profileId: String, endpointId: String) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        let secret = GatewayIdentifiers.webhookSecret()
        try await writer.change(merchantId: merchantId) { connection in
            let status = try await lockedEndpointStatus(endpointId, profileId: profileId, on: connection)
            guard status != "deprecated" else { throw APIError.invalid("webhook_endpoint_id", "a deprecated endpoint can never be changed or reactivated") }
            try await connection.query("""
                UPDATE gateway.webhook_endpoints
                SET previous_secret = secret, previous_secret_expires_at = now() + interval '24 hours',
                    secret = \(try secrets.seal(secret, as: .endpointSigningSecret, row: endpointId)), modified_at = now()
                WHERE webhook_endpoint_id = \(endpointId)
                """, logger: logger)
        }
        return try await endpointResponses(profileId: profileId, onlyId: endpointId, newSecrets: [endpointId: secret]).first ?? .null
    }

    private func lockedEndpointStatus(_ endpointId: String, profileId: String, on connection: PostgresConnection) async throws -> String {
        let rows = try await connection.query("SELECT status FROM gateway.webhook_endpoints WHERE webhook_endpoint_id = \(endpointId) AND profile_id = \(profileId) FOR UPDATE", logger: logger)
        for try await status in rows.decode(String.self) { return status }
        throw APIError.notFound("Webhook endpoint")
    }
}
