import Crypto
import Foundation
import Hummingbird
import Logging
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Who is calling: the platform operator (admin key) or one merchant (one of its API keys).
enum Caller: Sendable, Equatable {
    case admin
    case merchant(String)
}

struct GatewayAuthentication: Sendable {
    let adminKey: String?
    let postgres: PostgresClient
    let logger: Logger

    func caller(_ request: Request) async throws -> Caller {
        guard let given = request.headers[.init("api-key")!], !given.isEmpty else { throw APIError.unauthorized() }
        // Compare digests so the check takes the same time however much of a guess is right.
        if let adminKey, SHA256.hash(data: Data(adminKey.utf8)) == SHA256.hash(data: Data(given.utf8)) {
            return .admin
        }
        let hashed = GatewayIdentifiers.hash(apiKey: given)
        let rows = try await postgres.query("""
            SELECT merchant_id FROM gateway.api_keys
            WHERE hashed_key = \(hashed) AND NOT revoked AND (expiration IS NULL OR expiration > now())
            """, logger: logger)
        for try await merchantId in rows.decode(String.self) { return .merchant(merchantId) }
        throw APIError.unauthorized()
    }

    func requireAdmin(_ request: Request) async throws {
        guard try await caller(request) == .admin else {
            throw APIError(status: .forbidden, type: "invalid_request", code: "IR_17", message: "This route needs the admin API key", field: "api-key")
        }
    }

    /// Admin, or a key of this very merchant. Another merchant's id answers 404, exactly as an id
    /// that does not exist, so keys cannot probe for other merchants.
    func requireAccess(_ request: Request, merchantId: String) async throws {
        switch try await caller(request) {
        case .admin:
            // The admin reaches every merchant that exists; an unknown one is 404 on every route,
            // lists included, rather than an empty answer that looks like a merchant.
            let rows = try await postgres.query("SELECT 1 FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)", logger: logger)
            guard try await rows.hasRows() else { throw APIError.notFound("Merchant account") }
        case .merchant(let own) where own == merchantId: return
        case .merchant: throw APIError.notFound("Merchant account")
        }
    }
}
