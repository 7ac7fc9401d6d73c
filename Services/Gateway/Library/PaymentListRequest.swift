import Foundation
import Hummingbird
import PaywireModels
import PaywireRuntime

/// The list routes' filters, checked here (each refusal names the parameter) before payment-core
/// is asked: `GET /payments/list` (Hyperswitch's query parameters) and `POST /refunds/list`.
enum PaymentListRequest {
    static let maxLimit = 100

    static func payments(_ parameter: (String) -> String?, merchantId: String) throws -> PaymentListQuery {
        func text(_ name: String) throws -> String? {
            guard let value = parameter(name) else { return nil }
            return try InputText.identifier(value, field: name)
        }
        func date(_ name: String) throws -> Date? {
            guard let value = try text(name) else { return nil }
            guard let date = RFC3339.parse(value) ?? PaywireJSON.parse(value) else { throw APIError.invalid(name, "must be an RFC 3339 date-time") }
            return date
        }
        var limit = 10
        if let value = try text("limit") {
            guard let number = Int(value), (1...maxLimit).contains(number) else { throw APIError.invalid("limit", "must be an integer from 1 to \(maxLimit)") }
            limit = number
        }
        var query = PaymentListQuery(merchantId: merchantId, limit: limit)
        // Checked whoever calls (a merchant key's own merchant is used, but a malformed id is still one).
        _ = try text("merchant_id")
        query.customerId = try text("customer_id")
        query.createdGte = try date("created.gte")
        query.createdGt = try date("created.gt")
        query.createdLte = try date("created.lte")
        query.createdLt = try date("created.lt")
        if let exactly = try date("created") {
            query.createdGte = exactly
            query.createdLte = exactly
        }
        query.startingAfter = try text("starting_after")
        query.endingBefore = try text("ending_before")
        if query.startingAfter != nil && query.endingBefore != nil {
            throw APIError.invalid("ending_before", "give starting_after or ending_before, not both")
        }
        return query
    }

    static let refundStatuses = ["pending", "succeeded", "failed", "manual_review"]

    static func refunds(_ body: RequestObject, merchantId: String) throws -> RefundListQuery {
        let limit = try body.integer("limit", range: 1...maxLimit) ?? 10
        let offset = try body.integer("offset", range: 0...1_000_000) ?? 0
        var query = RefundListQuery(merchantId: merchantId, limit: limit, offset: offset)
        if let given = try body.string("merchant_id", maxLength: 64) { _ = try InputText.identifier(given, field: "merchant_id") }
        for (key, path) in [("payment_id", \RefundListQuery.paymentId), ("refund_id", \.refundId), ("profile_id", \.profileId)] {
            if let value = try body.string(key, maxLength: 64) {
                query[keyPath: path] = try InputText.identifier(value, field: key)
            }
        }
        if let range = try body.object("time_range") {
            func date(_ key: String) throws -> Date? {
                guard let text = try range.string(key, maxLength: 64) else { return nil }
                guard let date = RFC3339.parse(text) else { throw APIError.invalid(range.name(key), "must be an RFC 3339 date-time") }
                return date
            }
            query.startTime = try date("start_time")
            query.endTime = try date("end_time")
            if let start = query.startTime, let end = query.endTime, end < start {
                throw APIError.invalid(range.name("end_time"), "must not be before start_time")
            }
        }
        for key in ["currency", "refund_status", "connector"] {
            if let values = try body.array(key), values.count > 50 { throw APIError.invalid(key, "at most 50 values") }
        }
        if let currencies = try body.strings("currency") {
            for currency in currencies where Currency.minorUnits(currency) == nil {
                throw APIError.invalid("currency", "\(currency.prefix(8)) is not an ISO 4217 currency code")
            }
            query.currency = currencies
        }
        if let statuses = try body.strings("refund_status") {
            for status in statuses where !refundStatuses.contains(status) {
                throw APIError.invalid("refund_status", "must hold only \(refundStatuses.joined(separator: ", "))")
            }
            query.refundStatus = statuses
        }
        if let connectors = try body.strings("connector") {
            for connector in connectors { _ = try InputText.identifier(connector, field: "connector") }
            query.connector = connectors
        }
        return query
    }
}
