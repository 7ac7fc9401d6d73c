import Crypto
import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PostgresNIO
import ServiceLifecycle

/// `Idempotency-Key` for the payments API. The first request with a key reserves the resource id
/// (payment or refund) it will create; a repeat with the same body gets the stored answer, or —
/// if the first is still running or lost its answer — runs again on the same resource id, which
/// payment-core treats as the same payment. A repeat with another body is refused (409).
struct IdempotencyStore: Sendable {
    let postgres: PostgresClient
    let signer: InternalRequestSigner
    let logger: Logger

    static let header = "Idempotency-Key"

    enum Start {
        case fresh(resourceId: String)
        case replay(status: Int, body: String)
    }

    /// Request bodies may hold card numbers, so the stored digest is keyed, never a bare hash.
    func digest(method: String, path: String, body: RequestObject) throws -> String {
        let canonical = String(decoding: try PaywireJSON.encoder.encode(JSONValue.object(body.fields)), as: UTF8.self)
        return signer.signature(for: "\(method) \(path)\n\(canonical)")
    }

    func begin(merchantId: String, key: String, digest: String, proposedResourceId: String) async throws -> Start {
        guard !key.isEmpty, key.count <= 255 else { throw APIError.invalid(Self.header, "must be 1 to 255 characters") }
        let inserted = try await postgres.query("""
            INSERT INTO gateway.idempotency_keys (merchant_id, idempotency_key, request_digest, resource_id)
            VALUES (\(merchantId), \(key), \(digest), \(proposedResourceId))
            ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING 1
            """, logger: logger)
        if try await inserted.hasRows() { return .fresh(resourceId: proposedResourceId) }
        let rows = try await postgres.query("""
            SELECT request_digest, resource_id, response_status, response_body FROM gateway.idempotency_keys
            WHERE merchant_id = \(merchantId) AND idempotency_key = \(key)
            """, logger: logger)
        for try await (storedDigest, resourceId, status, body) in rows.decode((String, String, Int?, String?).self) {
            guard storedDigest == digest else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38",
                               message: "This Idempotency-Key was used with a different request; use a new key", field: Self.header)
            }
            if let status, let body { return .replay(status: status, body: body) }
            return .fresh(resourceId: resourceId)
        }
        // Deleted between the two statements (expiry sweep): start over.
        return try await begin(merchantId: merchantId, key: key, digest: digest, proposedResourceId: proposedResourceId)
    }

    /// Stores a definite answer (the object, or a 4xx). Answers that only say "still running"
    /// are not stored, so a retry asks again.
    func complete(merchantId: String, key: String, status: Int, body: String) async throws {
        try await postgres.query("""
            UPDATE gateway.idempotency_keys SET response_status = \(status), response_body = \(body)
            WHERE merchant_id = \(merchantId) AND idempotency_key = \(key)
            """, logger: logger)
    }
}

/// Forgets Idempotency-Keys after 24 hours (as Stripe does), so the table stays the size of a
/// day's traffic. Any replica may run it; the delete is idempotent.
struct IdempotencyKeyExpiry: Service {
    let postgres: PostgresClient
    let logger: Logger
    let waitUntil: @Sendable () async throws -> Void
    var retention: Duration = .seconds(24 * 3600)
    var interval: Duration = .seconds(600)

    func run() async throws {
        do { try await cancelWhenGracefulShutdown { try await waitUntil() } } catch { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let seconds = Double(retention.components.seconds)
                try await postgres.query("DELETE FROM gateway.idempotency_keys WHERE created_at < now() - make_interval(secs => \(seconds))", logger: logger)
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                logger.warning("idempotency key expiry failed; will retry", metadata: ["error": .string(String(describing: error))])
            }
            // Graceful shutdown ends the wait at once instead of after the interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
