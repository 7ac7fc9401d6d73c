import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// A merchant's secret API keys (`dev_…`): shown once when created, stored as SHA-256 only.
/// Keys are not part of the published configuration (only the gateway checks them).
struct APIKeyStore: Sendable {
    let writer: ConfigurationWriter
    var postgres: PostgresClient { writer.postgres }
    var logger: Logger { writer.logger }

    /// An API key as answered: `api_key` only in the answer that created it (the one time the key
    /// is shown: only its hash is stored), `prefix` in the others; `expiration` a time or "never".
    struct KeyResponse: Encodable, Sendable {
        var keyId: String
        var merchantId: String
        var name: String
        var description: String?
        var apiKey: String?
        var prefix: String?
        var created: Date
        var expiration: Date?

        enum CodingKeys: String, CodingKey {
            case keyId = "key_id", merchantId = "merchant_id", name, description, apiKey = "api_key", prefix, created, expiration
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(keyId, forKey: .keyId)
            try container.encode(merchantId, forKey: .merchantId)
            try container.encode(name, forKey: .name)
            try container.encode(description, forKey: .description)
            try container.encodeIfPresent(apiKey, forKey: .apiKey)
            try container.encodeIfPresent(prefix, forKey: .prefix)
            try container.encode(created, forKey: .created)
            if let expiration { try container.encode(expiration, forKey: .expiration) } else { try container.encode("never", forKey: .expiration) }
        }
    }

    struct RevokeResponse: Encodable, Sendable {
        var merchant_id: String
        var key_id: String
        var revoked = true
    }

    func createAPIKey(merchantId: String, _ body: RequestObject) async throws -> KeyResponse {
        let name = try body.requiredString("name", maxLength: 64)
        let description = try body.string("description", maxLength: 256)
        let expiration = try Self.expiration(body)
        let keyId = Identifier.make("dev")
        let secret = GatewayIdentifiers.apiKeySecret()
        let created = try await postgres.withTransaction(logger: logger) { connection -> Date in
            guard try await writer.merchantExists(merchantId, on: connection) else { throw APIError.notFound("Merchant account") }
            let rows = try await connection.query("""
                INSERT INTO gateway.api_keys (key_id, merchant_id, name, description, prefix, hashed_key, expiration)
                VALUES (\(keyId), \(merchantId), \(name), \(description), \(String(secret.prefix(12))), \(GatewayIdentifiers.hash(apiKey: secret)), \(expiration))
                RETURNING created_at
                """, logger: logger)
            for try await date in rows.decode(Date.self) { return date }
            return Date()
        }
        return KeyResponse(keyId: keyId, merchantId: merchantId, name: name, description: description, apiKey: secret, created: created, expiration: expiration)
    }

    static func expiration(_ body: RequestObject) throws -> Date? {
        guard let text = try body.string("expiration", maxLength: 64), text != "never" else { return nil }
        guard let date = RFC3339.parse(text) else { throw APIError.invalid("expiration", "must be \"never\" or an RFC 3339 date-time") }
        guard date > Date() else { throw APIError.invalid("expiration", "must be in the future") }
        return date
    }

    func apiKeys(merchantId: String, keyId: String? = nil) async throws -> [KeyResponse] {
        let rows = try await postgres.query("""
            SELECT key_id, name, description, prefix, created_at, expiration FROM gateway.api_keys
            WHERE merchant_id = \(merchantId) AND NOT revoked AND (\(keyId)::text IS NULL OR key_id = \(keyId)) ORDER BY created_at
            """, logger: logger)
        var keys: [KeyResponse] = []
        for try await (id, name, description, prefix, created, expiration) in rows.decode((String, String, String?, String, Date, Date?).self) {
            keys.append(KeyResponse(keyId: id, merchantId: merchantId, name: name, description: description, prefix: prefix, created: created, expiration: expiration))
        }
        return keys
    }

    /// `POST /api_keys/{merchant_id}/{key_id}`: name, description and expiration; the key itself
    /// never changes (revoke it and create another for that).
    func updateAPIKey(merchantId: String, keyId: String, _ body: RequestObject) async throws -> KeyResponse {
        let name = try body.string("name", maxLength: 64)
        if let name, name.isEmpty { throw APIError.invalid("name", "must not be empty") }
        let description = try body.string("description", maxLength: 256)
        let changesExpiration = body.has("expiration")
        let expiration = try Self.expiration(body)
        let rows = try await postgres.query("""
            UPDATE gateway.api_keys SET name = COALESCE(\(name), name), description = COALESCE(\(description), description),
                expiration = CASE WHEN \(changesExpiration) THEN \(expiration) ELSE expiration END
            WHERE merchant_id = \(merchantId) AND key_id = \(keyId) AND NOT revoked RETURNING 1
            """, logger: logger)
        guard try await rows.hasRows() else { throw APIError.notFound("API key") }
        guard let key = try await apiKeys(merchantId: merchantId, keyId: keyId).first else { throw APIError.notFound("API key") }
        return key
    }

    func revokeAPIKey(merchantId: String, keyId: String) async throws -> RevokeResponse {
        let rows = try await postgres.query("UPDATE gateway.api_keys SET revoked = true WHERE merchant_id = \(merchantId) AND key_id = \(keyId) AND NOT revoked RETURNING 1", logger: logger)
        guard try await rows.hasRows() else { throw APIError.notFound("API key") }
        return RevokeResponse(merchant_id: merchantId, key_id: keyId)
    }
}
