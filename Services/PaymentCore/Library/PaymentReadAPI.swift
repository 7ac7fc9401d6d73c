import Foundation
import Hummingbird
import Logging
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// payment-core's internal read API: a payment or a refund as payment-core stores it, for the
/// gateway (which authenticates and scopes the merchant, then asks here, signed) — the gateway
/// never reads payment-core's tables. `GET /internal/payments/{id}`, `GET /internal/refunds/{id}`
/// (404 for an unknown id); `POST /internal/payments/list` and `POST /internal/refunds/list` with
/// a `PaymentListQuery` / `RefundListQuery` (the gateway has checked every filter).
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
        addLists(to: group)
    }

    func addLists(to group: RouterGroup<PaywireRequestContext>) {
        group.post("/payments/list") { request, context in
            let query = try await request.decode(as: PaymentListQuery.self, context: context)
            // Newest first; `starting_after` / `ending_before` page by a payment of the list.
            var sql = "SELECT object::text FROM payments.payment_intents i WHERE merchant_id = $1"
            var binds = NumberedBindings(query.merchantId)
            if let customer = query.customerId { sql += " AND (details->>'customer_id' = \(try binds.bind(customer)) OR details->'customer'->>'id' = \(try binds.bind(customer)))" }
            if let date = query.createdGte { sql += " AND created_at >= \(try binds.bind(date))" }
            if let date = query.createdGt { sql += " AND created_at > \(try binds.bind(date))" }
            if let date = query.createdLte { sql += " AND created_at <= \(try binds.bind(date))" }
            if let date = query.createdLt { sql += " AND created_at < \(try binds.bind(date))" }
            var ascending = false
            if let after = query.startingAfter {
                sql += " AND (created_at, payment_id) < (SELECT created_at, payment_id FROM payments.payment_intents WHERE payment_id = \(try binds.bind(after)) AND merchant_id = $1)"
            } else if let before = query.endingBefore {
                sql += " AND (created_at, payment_id) > (SELECT created_at, payment_id FROM payments.payment_intents WHERE payment_id = \(try binds.bind(before)) AND merchant_id = $1)"
                ascending = true
            }
            sql += ascending ? " ORDER BY created_at, payment_id" : " ORDER BY created_at DESC, payment_id DESC"
            sql += " LIMIT \(try binds.bind(query.limit))"
            var objects = try await texts(PostgresQuery(unsafeSQL: sql, binds: binds.bindings))
            if ascending { objects.reverse() }
            return try JSONResponse(json: ByteBuffer(string: #"{"size":\#(objects.count),"data":[\#(objects.joined(separator: ","))]}"#)).response()
        }
        group.post("/refunds/list") { request, context in
            let query = try await request.decode(as: RefundListQuery.self, context: context)
            var conditions = "merchant_id = $1"
            var binds = NumberedBindings(query.merchantId)
            if let id = query.paymentId { conditions += " AND payment_id = \(try binds.bind(id))" }
            if let id = query.refundId { conditions += " AND refund_id = \(try binds.bind(id))" }
            if let id = query.profileId { conditions += " AND profile_id = \(try binds.bind(id))" }
            if let currencies = query.currency, !currencies.isEmpty { conditions += " AND currency = ANY(\(try binds.bind(currencies)))" }
            if let statuses = query.refundStatus, !statuses.isEmpty { conditions += " AND status = ANY(\(try binds.bind(statuses)))" }
            if let connectors = query.connector, !connectors.isEmpty { conditions += " AND connector = ANY(\(try binds.bind(connectors)))" }
            if let start = query.startTime { conditions += " AND created_at >= \(try binds.bind(start))" }
            if let end = query.endTime { conditions += " AND created_at <= \(try binds.bind(end))" }
                        var total = 0
            for try await count in try await postgres.query(PostgresQuery(unsafeSQL: "SELECT count(*)::int FROM payments.refunds WHERE \(conditions)", binds: binds.bindings), logger: logger).decode(Int.self) {
                total = count
            }
            let page = "SELECT object::text FROM payments.refunds WHERE \(conditions) ORDER BY created_at DESC, refund_id DESC LIMIT \(try binds.bind(query.limit)) OFFSET \(try binds.bind(query.offset))"
            let objects = try await texts(PostgresQuery(unsafeSQL: page, binds: binds.bindings))
            return try JSONResponse(json: ByteBuffer(string: #"{"count":\#(objects.count),"total_count":\#(total),"data":[\#(objects.joined(separator: ","))]}"#)).response()
        }
    }

    func texts(_ query: PostgresQuery) async throws -> [String] {
        var found: [String] = []
        for try await text in try await postgres.query(query, logger: logger).decode(String.self) { found.append(text) }
        return found
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

/// Bindings for a query whose conditions depend on which filters were given: each value bound
/// answers its placeholder (`$2`, `$3` …), `$1` being the merchant.
struct NumberedBindings {
    var bindings = PostgresBindings()

    init(_ merchantId: String) { bindings.append(merchantId) }

    mutating func bind(_ value: some PostgresEncodable & Sendable) throws -> String {
        try bindings.append(value)
        return "$\(bindings.count)"
    }
}
