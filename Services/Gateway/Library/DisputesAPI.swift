import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import PaywireModels
import PaywireRuntime

/// The disputes routes (Hyperswitch's): `GET /disputes/list`, `GET /disputes/{dispute_id}`,
/// `POST /disputes/accept/{dispute_id}`, `POST /disputes/evidence`. payment-core owns disputes:
/// the gateway checks the caller and every field, then asks its internal API (signed). A merchant
/// key sees its own disputes only (another merchant's id is 404); the admin key names the
/// merchant with `merchant_id` to list.
struct DisputesAPI: Sendable {
    let paymentCore: InternalAPIClient
    let logger: Logger

    static let statuses = DisputeStatus.allCases.map(\.rawValue)
    static let stages = DisputeStage.allCases.map(\.rawValue)
    /// Hyperswitch's text evidence fields.
    static let evidenceFields: Set<String> = [
        "access_activity_log", "billing_address", "cancellation_policy_disclosure", "cancellation_rebuttal", "customer_communication",
        "customer_email_address", "customer_name", "customer_purchase_ip", "product_description", "refund_policy_disclosure",
        "refund_refusal_explanation", "service_date", "shipping_address", "shipping_carrier", "shipping_date", "shipping_tracking_number",
        "uncategorized_text",
    ]

    func addRoutes(to router: some RouterMethods<PaywireRequestContext>, merchant: @escaping @Sendable (APICaller, (String) -> String?) async throws -> String) {
        router.get("/disputes/list") { request, context in
            let caller = try context.authenticatedCaller
            let parameters = request.uri.queryParameters
            let parameter = { (name: String) in parameters[Substring(name)].map(String.init) }
            let values = { (name: String) in parameters[values: Substring(name)].flatMap { $0.split(separator: ",").map(String.init) } }
            let query = try Self.listQuery(parameter, values: values, merchantId: try await merchant(caller, parameter))
            return try await forward(.POST, "/internal/disputes/list", body: try PaywireJSON.encoder.encode(query))
        }
        router.get("/disputes/:dispute_id") { _, context in
            let disputeId = try InputText.identifier(try context.pathParameter("dispute_id"), field: "dispute_id")
            let scope = Self.merchantScope(try context.authenticatedCaller)
            return try await forward(.GET, "/internal/disputes/\(StrictPercentEncoding.encode(disputeId))" + (scope.map { "?merchant_id=\(StrictPercentEncoding.encode($0))" } ?? ""))
        }
        router.post("/disputes/accept/:dispute_id") { _, context in
            let disputeId = try InputText.identifier(try context.pathParameter("dispute_id"), field: "dispute_id")
            let body: JSONValue = .object(["merchant_id": Self.merchantScope(try context.authenticatedCaller).map(JSONValue.string) ?? .null])
            return try await forward(.POST, "/internal/disputes/\(StrictPercentEncoding.encode(disputeId))/accept", body: try PaywireJSON.encoder.encode(body))
        }
        router.post("/disputes/evidence") { request, context in
            let body = try await RequestObject.read(from: request, context: context)
            let disputeId = try InputText.identifier(try body.requiredString("dispute_id", maxLength: 64), field: "dispute_id")
            var evidence: [String: String] = [:]
            for key in body.fields.keys where key != "dispute_id" {
                guard Self.evidenceFields.contains(key) else { throw APIError.invalid(key, "is not an evidence field Paywire sends (text fields only)") }
                if let text = try body.string(key, maxLength: 20_000) { evidence[key] = text }
            }
            guard !evidence.isEmpty else { throw APIError.invalid("uncategorized_text", "give at least one evidence field") }
            let forwarded: JSONValue = .object([
                "merchant_id": Self.merchantScope(try context.authenticatedCaller).map(JSONValue.string) ?? .null,
                "evidence": .object(evidence.mapValues(JSONValue.string)),
            ])
            return try await forward(.POST, "/internal/disputes/\(StrictPercentEncoding.encode(disputeId))/evidence", body: try PaywireJSON.encoder.encode(forwarded))
        }
    }

    /// A merchant key's own merchant; nil for the admin key (any merchant's dispute).
    static func merchantScope(_ caller: APICaller) -> String? {
        if case .merchant(let own) = caller { return own }
        return nil
    }

    static func listQuery(_ parameter: (String) -> String?, values: (String) -> [String], merchantId: String) throws -> DisputeListQuery {
        func number(_ name: String, _ range: ClosedRange<Int>, default fallback: Int) throws -> Int {
            guard let text = parameter(name) else { return fallback }
            guard let value = Int(text), range.contains(value) else { throw APIError.invalid(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)") }
            return value
        }
        func date(_ name: String) throws -> Date? {
            guard let text = parameter(name) else { return nil }
            guard let date = RFC3339.parse(try InputText.identifier(text, field: name)) else { throw APIError.invalid(name, "must be an RFC 3339 date-time") }
            return date
        }
        func list(_ name: String, allowed: [String]?) throws -> [String]? {
            let given = values(name)
            guard !given.isEmpty else { return nil }
            guard given.count <= 50 else { throw APIError.invalid(name, "at most 50 values") }
            for value in given {
                if let allowed, !allowed.contains(value) { throw APIError.invalid(name, "must be one of \(allowed.joined(separator: ", "))") }
                _ = try InputText.identifier(value, field: name)
            }
            return given
        }
        var query = DisputeListQuery(merchantId: merchantId, limit: try number("limit", 1...100, default: 10), offset: try number("offset", 0...1_000_000, default: 0))
        if let given = parameter("merchant_id") { _ = try InputText.identifier(given, field: "merchant_id") }
        query.disputeStatus = try list("dispute_status", allowed: statuses)
        query.disputeStage = try list("dispute_stage", allowed: stages)
        query.connector = try list("connector", allowed: nil)
        query.receivedTimeGte = try date("received_time.gte")
        query.receivedTimeLte = try date("received_time.lte")
        if let exactly = try date("received_time") {
            query.receivedTimeGte = exactly
            query.receivedTimeLte = exactly
        }
        if let start = query.receivedTimeGte, let end = query.receivedTimeLte, end < start {
            throw APIError.invalid("received_time.lte", "must not be before received_time.gte")
        }
        return query
    }

    /// payment-core's answer as it is: the object, or its 4xx refusal naming the field; it
    /// unreachable or failing is 503.
    func forward(_ method: HTTPMethod, _ path: String, body: Data = Data()) async throws -> Response {
        let answer: (status: Int, body: ByteBuffer)
        do {
            answer = try await paymentCore.send(method: method, path: path, body: ByteBuffer(bytes: body), timeout: .seconds(30))
        } catch {
            logger.warning("payment-core not reachable for disputes", metadata: ["error": .string(String(describing: type(of: error)))])
            throw APIError.unavailable("Disputes cannot be reached now; retry later")
        }
        guard answer.status < 500 else { throw APIError.unavailable("Disputes cannot be reached now; retry later") }
        var response = Response(status: .init(code: answer.status), body: .init(byteBuffer: answer.body))
        response.headers[.contentType] = "application/json"
        return response
    }
}
