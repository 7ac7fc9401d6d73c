import Crypto
import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO
import ServiceLifecycle

/// `Idempotency-Key` for the payments API. The first request with a key reserves the resource id
/// (payment or refund) it will create and holds the key while it runs: a concurrent duplicate is
/// refused (409, retry later), never run beside it. A final answer (the object in a settled
/// state, or a 4xx) is stored once and replayed for good; an answer that only says "still
/// running" (processing, 202) is not frozen — a replay answers the resource as it is now. A
/// request whose runner died frees the key after its lease and runs again on the same resource
/// id, which payment-core treats as the same payment. A repeat with another body is refused (409).
struct IdempotencyStore: Sendable {
    let postgres: PostgresClient
    let signer: InternalRequestSigner
    let logger: Logger
    /// How long a running request holds its key (the reply timeout and a margin).
    var lease: Duration = .seconds(30)

    static let header = "Idempotency-Key"

    enum Start {
        case fresh(resourceId: String)
        case replay(status: Int, body: String)
        /// The first answer was not final: answer the resource's current state.
        case current(resourceId: String)
    }

    /// Request bodies may hold card numbers, so the stored digest is keyed, never a bare hash.
    func digest(method: String, path: String, body: RequestObject) throws -> String {
        let canonical = try PaywireJSON.text(JSONValue.object(body.fields))
        return signer.signature(for: "\(method) \(path)\n\(canonical)")
    }

    static let inProgress = APIError(
        status: .conflict, type: "invalid_request", code: "IR_39",
        message: "A request with this Idempotency-Key is still being processed; retry later with the same key", field: header
    )

    func begin(merchantId: String, key: String, digest: String, proposedResourceId: String) async throws -> Start {
        guard !key.isEmpty, key.count <= 255 else { throw APIError.invalid(Self.header, "must be 1 to 255 characters") }
        let leaseSeconds = Double(lease.components.seconds)
        let inserted = try await postgres.query("""
            INSERT INTO gateway.idempotency_keys (merchant_id, idempotency_key, request_digest, resource_id, locked_until)
            VALUES (\(merchantId), \(key), \(digest), \(proposedResourceId), now() + make_interval(secs => \(leaseSeconds)))
            ON CONFLICT (merchant_id, idempotency_key) DO NOTHING RETURNING 1
            """, logger: logger)
        if try await inserted.hasRows() { return .fresh(resourceId: proposedResourceId) }
        // One statement reads the key and, when nobody holds it and nothing final is stored,
        // takes it: two retries racing here cannot both run.
        let rows = try await postgres.query("""
            WITH found AS (
                SELECT merchant_id, idempotency_key, request_digest, resource_id, response_status, response_body, current_of, locked_until
                FROM gateway.idempotency_keys WHERE merchant_id = \(merchantId) AND idempotency_key = \(key) FOR UPDATE
            ), taken AS (
                UPDATE gateway.idempotency_keys k SET locked_until = now() + make_interval(secs => \(leaseSeconds))
                FROM found f
                WHERE k.merchant_id = f.merchant_id AND k.idempotency_key = f.idempotency_key AND f.request_digest = \(digest)
                  AND f.response_status IS NULL AND f.current_of IS NULL AND (f.locked_until IS NULL OR f.locked_until < now())
                RETURNING 1
            )
            SELECT request_digest, resource_id, response_status, response_body, current_of, EXISTS (SELECT 1 FROM taken) FROM found
            """, logger: logger)
        for try await (storedDigest, resourceId, status, body, currentOf, taken) in rows.decode((String, String, Int?, String?, String?, Bool).self) {
            guard storedDigest == digest else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38",
                               message: "This Idempotency-Key was used with a different request; use a new key", field: Self.header)
            }
            if let status, let body { return .replay(status: status, body: body) }
            if currentOf != nil { return .current(resourceId: resourceId) }
            if taken { return .fresh(resourceId: resourceId) }
            throw Self.inProgress
        }
        // Deleted between the two statements (expiry sweep): start over.
        return try await begin(merchantId: merchantId, key: key, digest: digest, proposedResourceId: proposedResourceId)
    }

    /// Stores a final answer (the object in a settled state, or a 4xx). The first one stored is
    /// the answer for good: nothing overwrites it.
    func complete(merchantId: String, key: String, status: Int, body: String) async throws {
        try await postgres.query("""
            UPDATE gateway.idempotency_keys SET response_status = \(status), response_body = \(body), locked_until = NULL
            WHERE merchant_id = \(merchantId) AND idempotency_key = \(key) AND response_status IS NULL AND current_of IS NULL
            """, logger: logger)
    }

    /// The answer said "still running": replays answer the resource's state at the time.
    func answerCurrentState(merchantId: String, key: String, of kind: String) async throws {
        try await postgres.query("""
            UPDATE gateway.idempotency_keys SET current_of = \(kind), locked_until = NULL
            WHERE merchant_id = \(merchantId) AND idempotency_key = \(key) AND response_status IS NULL
            """, logger: logger)
    }

    /// The request failed before anything was accepted (Kafka unavailable): a retry may run it.
    func release(merchantId: String, key: String) async throws {
        try await postgres.query("""
            UPDATE gateway.idempotency_keys SET locked_until = NULL
            WHERE merchant_id = \(merchantId) AND idempotency_key = \(key) AND response_status IS NULL AND current_of IS NULL
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
        let seconds = Double(retention.components.seconds)
        try await PeriodicWork(name: "idempotency key expiry", interval: interval, logger: logger, startAfter: waitUntil) {
            try await postgres.query("DELETE FROM gateway.idempotency_keys WHERE created_at < now() - make_interval(secs => \(seconds))", logger: logger)
            return .idle
        }.run()
    }
}
