import Foundation
import Hummingbird
import Logging
import NIOCore
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// payment-core's internal dispute API, for the gateway (which authenticates the merchant and
/// checks every field, then asks here, signed): `POST /internal/disputes/list` with a
/// `DisputeListQuery`, `GET /internal/disputes/{id}?merchant_id=`, `POST /internal/disputes/{id}/accept`
/// and `POST /internal/disputes/{id}/evidence` with `{merchant_id, evidence}`. Another merchant's
/// dispute is 404.
struct DisputeInternalAPI: Sendable {
    let operations: PaymentOperations
    let signer: InternalAPISigner
    let logger: Logger

    struct Change: Decodable {
        var merchantId: String?
        var evidence: [String: String]?
        enum CodingKeys: String, CodingKey { case merchantId = "merchant_id", evidence }
    }

    func add(to router: Router<PaywireRequestContext>) {
        let group = router.group("/internal/disputes").add(middleware: InternalAPIAuthenticationMiddleware(signer: signer))
        group.post("/list") { request, context in
            let query = try await request.decode(as: DisputeListQuery.self, context: context)
            var conditions = "merchant_id = $1"
            var binds = NumberedBindings(query.merchantId)
            if let statuses = query.disputeStatus, !statuses.isEmpty { conditions += " AND status = ANY(\(try binds.bind(statuses)))" }
            if let stages = query.disputeStage, !stages.isEmpty { conditions += " AND stage = ANY(\(try binds.bind(stages)))" }
            if let connectors = query.connector, !connectors.isEmpty { conditions += " AND connector = ANY(\(try binds.bind(connectors)))" }
            if let start = query.receivedTimeGte { conditions += " AND created_at >= \(try binds.bind(start))" }
            if let end = query.receivedTimeLte { conditions += " AND created_at <= \(try binds.bind(end))" }
            let sql = "SELECT object::text FROM payments.disputes WHERE \(conditions) ORDER BY created_at DESC, dispute_id DESC LIMIT \(try binds.bind(query.limit)) OFFSET \(try binds.bind(query.offset))"
            var objects: [String] = []
            for try await text in try await operations.postgres.query(PostgresQuery(unsafeSQL: sql, binds: binds.bindings), logger: logger).decode(String.self) {
                objects.append(text)
            }
            // Hyperswitch answers the list as a bare array.
            return try JSONResponse(json: ByteBuffer(string: "[\(objects.joined(separator: ","))]")).response()
        }
        group.get("/:dispute_id") { request, context in
            let merchantId = request.uri.queryParameters["merchant_id"].map(String.init)
            guard let record = try await operations.readDispute(try context.pathParameter("dispute_id"), merchantId: merchantId) else { throw APIError.notFound("Dispute") }
            return JSONResponse(record.object)
        }
        group.post("/:dispute_id/accept") { request, context in
            let change = try await request.decode(as: Change.self, context: context)
            return JSONResponse(try await operations.acceptDispute(try context.pathParameter("dispute_id"), merchantId: change.merchantId))
        }
        group.post("/:dispute_id/evidence") { request, context in
            let change = try await request.decode(as: Change.self, context: context)
            return JSONResponse(try await operations.submitDisputeEvidence(try context.pathParameter("dispute_id"), merchantId: change.merchantId, evidence: change.evidence ?? [:]))
        }
    }
}
