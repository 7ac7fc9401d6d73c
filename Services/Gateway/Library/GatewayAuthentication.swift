import Crypto
import Foundation
import Hummingbird
import Logging
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Finds who a request comes from and whether that caller may act for a merchant. Only the
/// middleware in `RouteAccess.swift` calls it: handlers read the caller from their context.
struct GatewayAuthentication: Sendable {
    let adminKey: String?
    let postgres: PostgresClient
    let logger: Logger
    /// The merchants of secret keys looked up recently, while changes to keys are heard.
    let keys = NotifiedCache<String>(payload: "api_keys")

    /// The caller the `api-key` header names, or nil when there is none or it is not valid.
    func identify(_ request: Request) async throws -> APICaller? {
        guard let given = request.headers[.init("api-key")!], !given.isEmpty else { return nil }
        return try await identify(key: given)
    }

    /// The caller a key belongs to, or nil when it is not valid.
    func identify(key given: String) async throws -> APICaller? {
        guard !given.isEmpty else { return nil }
        // Compare digests so the check takes the same time however much of a guess is right.
        if let adminKey, SHA256.hash(data: Data(adminKey.utf8)) == SHA256.hash(data: Data(given.utf8)) {
            return .admin
        }
        if given.hasPrefix("pk_") {
            let rows = try await postgres.query("SELECT merchant_id FROM gateway.merchant_accounts WHERE publishable_key = \(given)", logger: logger)
            for try await merchantId in rows.decode(String.self) { return .publishable(merchantId: merchantId) }
            return nil
        }
        let hashed = GatewayIdentifiers.hash(apiKey: given)
        if let merchantId = keys.value(for: hashed) { return .merchant(merchantId) }
        let generation = keys.generation
        let rows = try await postgres.query("""
            SELECT merchant_id, expiration FROM gateway.api_keys
            WHERE hashed_key = \(hashed) AND NOT revoked AND (expiration IS NULL OR expiration > now())
            """, logger: logger)
        for try await (merchantId, expiration) in rows.decode((String, Date?).self) {
            keys.store(merchantId, for: hashed, expiration: expiration, readAt: generation)
            return .merchant(merchantId)
        }
        return nil
    }

    /// Whether `caller` may act for `merchantId`: the admin for every merchant that exists, a
    /// merchant for itself. Another merchant's id answers 404, exactly as an id that does not
    /// exist, so keys cannot probe for other merchants.
    func requireAccess(_ caller: APICaller, merchantId: String) async throws {
        switch caller {
        case .admin:
            // An unknown merchant is 404 on every route, lists included, rather than an empty
            // answer that looks like a merchant.
            let rows = try await postgres.query("SELECT 1 FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)", logger: logger)
            guard try await rows.hasRows() else { throw APIError.notFound("Merchant account") }
        case .merchant(let own) where own == merchantId: return
        case .merchant: throw APIError.notFound("Merchant account")
        case .publishable: throw APIError.unauthorized()
        }
    }
}
