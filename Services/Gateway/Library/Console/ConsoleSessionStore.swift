import Crypto
import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// One signed-in browser: who it acts as, the key it signed in with (opened only to call the API
/// on its behalf) and the token every form of it must carry back.
struct ConsoleSession: Sendable {
    /// The admin key: the operator view, and any merchant's pages once one is chosen.
    var isOperator: Bool
    /// The merchant whose pages are shown: the key's own, or the operator's choice.
    var merchantId: String?
    var apiKey: String
    var csrfToken: String
    var expiresAt: Date
}

/// Console sessions in the gateway's database (`gateway.console_sessions`), so every replica
/// serves every session. The cookie holds a random token; the row is found by its SHA-256, so a
/// copy of the table signs no one in, and the API key in it is sealed with the encryption key.
struct ConsoleSessionStore: Sendable {
    let postgres: PostgresClient
    let secrets: SecretBox
    let logger: Logger
    /// How long a session lives without use; each use moves the end on (written at most once
    /// per tenth of it, so reading pages costs no write).
    let idleLifetime: Duration
    /// How long a session lives at most, used or not.
    let absoluteLifetime: Duration

    static let environmentKeys = ["PAYWIRE_CONSOLE_SESSION_MINUTES"]

    /// Starts a session; the answer is the cookie's token (never stored) and the session.
    func create(isOperator: Bool, merchantId: String?, apiKey: String) async throws -> (token: String, session: ConsoleSession) {
        let token = Identifier.random(43)
        let hash = Self.hash(token)
        let csrf = Identifier.random(43)
        let sealed = try secrets.seal(apiKey, as: .consoleSessionKey, row: hash)
        let idleSeconds = Double(idleLifetime.components.seconds)
        // Sessions past their end are removed as new ones start: no timer runs for them.
        try await postgres.query("DELETE FROM gateway.console_sessions WHERE expires_at < now()", logger: logger)
        let rows = try await postgres.query("""
            INSERT INTO gateway.console_sessions (token_hash, operator, merchant_id, api_key, csrf_token, expires_at)
            VALUES (\(hash), \(isOperator), \(merchantId), \(sealed), \(csrf), now() + make_interval(secs => \(idleSeconds)))
            RETURNING expires_at
            """, logger: logger)
        var expiresAt = Date()
        for try await end in rows.decode(Date.self) { expiresAt = end }
        return (token, ConsoleSession(isOperator: isOperator, merchantId: merchantId, apiKey: apiKey, csrfToken: csrf, expiresAt: expiresAt))
    }

    /// The session a cookie's token names, nil when there is none or it has ended.
    func find(token: String) async throws -> ConsoleSession? {
        guard Self.isWellFormed(token) else { return nil }
        let hash = Self.hash(token)
        let idleSeconds = Double(idleLifetime.components.seconds)
        let absoluteSeconds = Double(absoluteLifetime.components.seconds)
        // One statement reads the session and, when a tenth of its idle time has passed since
        // the end was last moved, moves the end (never past the absolute end).
        let rows = try await postgres.query("""
            WITH found AS (
                SELECT token_hash, operator, merchant_id, api_key, csrf_token, expires_at, created_at
                FROM gateway.console_sessions WHERE token_hash = \(hash) AND expires_at > now()
            ), moved AS (
                UPDATE gateway.console_sessions s
                SET expires_at = least(now() + make_interval(secs => \(idleSeconds)), s.created_at + make_interval(secs => \(absoluteSeconds)))
                FROM found
                WHERE s.token_hash = found.token_hash
                  AND found.expires_at < now() + make_interval(secs => \(idleSeconds * 0.9))
                  AND found.expires_at < found.created_at + make_interval(secs => \(absoluteSeconds))
                RETURNING s.expires_at
            )
            SELECT operator, merchant_id, api_key, csrf_token, coalesce((SELECT expires_at FROM moved), expires_at) FROM found
            """, logger: logger)
        for try await (isOperator, merchantId, sealed, csrf, expiresAt) in rows.decode((Bool, String?, String, String, Date).self) {
            guard let apiKey = try? secrets.open(sealed, as: .consoleSessionKey, row: hash) else { return nil }
            return ConsoleSession(isOperator: isOperator, merchantId: merchantId, apiKey: apiKey, csrfToken: csrf, expiresAt: expiresAt)
        }
        return nil
    }

    /// The operator's choice of merchant, for the merchant pages.
    func choose(merchantId: String?, token: String) async throws {
        try await postgres.query("UPDATE gateway.console_sessions SET merchant_id = \(merchantId) WHERE token_hash = \(Self.hash(token)) AND operator", logger: logger)
    }

    func delete(token: String) async throws {
        guard Self.isWellFormed(token) else { return }
        try await postgres.query("DELETE FROM gateway.console_sessions WHERE token_hash = \(Self.hash(token))", logger: logger)
    }

    static func hash(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }

    /// Tokens are 43 letters and digits; anything else is not looked up.
    static func isWellFormed(_ token: String) -> Bool {
        token.utf8.count == 43 && token.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }
    }
}
