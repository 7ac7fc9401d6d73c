import Foundation
import Hummingbird
import Logging
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// payment-core's internal read API: a payment or a refund as payment-core stores it, for the
/// gateway (which authenticates and scopes the merchant, then asks here, signed) — the gateway
/// never reads payment-core's tables. `GET /internal/payments/{id}`, `GET /internal/refunds/{id}`;
/// 404 for an unknown id.
struct PaymentReadAPI: Sendable {
    let postgres: PostgresClient
    let signer: InternalAPISigner
    let logger: Logger

    func add(to router: Router<PaywireRequestContext>) {
        let group = router.group("/internal").add(middleware: InternalAPIAuthenticationMiddleware(signer: signer))
        group.get("/payments/:payment_id") { _, context in
            try await object("SELECT object::text FROM payments.payment_intents WHERE payment_id = $1", id: try context.pathParameter("payment_id"), what: "Payment")
        }
        group.get("/refunds/:refund_id") { _, context in
            try await object("SELECT object::text FROM payments.refunds WHERE refund_id = $1", id: try context.pathParameter("refund_id"), what: "Refund")
        }
    }

    func object(_ sql: String, id: String, what: String) async throws -> Response {
        var binds = PostgresBindings()
        binds.append(id)
        for try await text in try await postgres.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).decode(String.self) {
            return try JSONResponse(json: ByteBuffer(string: text)).response()
        }
        throw APIError.notFound(what)
    }
}
