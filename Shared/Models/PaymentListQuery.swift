import Foundation

/// `GET /payments/list` as the gateway asks payment-core's internal API for it (every filter
/// already checked): one merchant's payments, newest first.
public struct PaymentListQuery: Codable, Sendable, Equatable {
    public var merchantId: String
    public var customerId: String?
    public var createdGte: Date?
    public var createdGt: Date?
    public var createdLte: Date?
    public var createdLt: Date?
    public var startingAfter: String?
    public var endingBefore: String?
    public var limit: Int

    public init(merchantId: String, limit: Int) {
        self.merchantId = merchantId
        self.limit = limit
    }

    enum CodingKeys: String, CodingKey {
        case limit
        case merchantId = "merchant_id", customerId = "customer_id", createdGte = "created_gte", createdGt = "created_gt"
        case createdLte = "created_lte", createdLt = "created_lt", startingAfter = "starting_after", endingBefore = "ending_before"
    }
}

/// `POST /refunds/list` as the gateway asks payment-core for it: one merchant's refunds, newest
/// first, `limit` from `offset`.
public struct RefundListQuery: Codable, Sendable, Equatable {
    public var merchantId: String
    public var paymentId: String?
    public var refundId: String?
    public var profileId: String?
    public var currency: [String]?
    public var refundStatus: [String]?
    public var connector: [String]?
    public var startTime: Date?
    public var endTime: Date?
    public var limit: Int
    public var offset: Int

    public init(merchantId: String, limit: Int, offset: Int) {
        self.merchantId = merchantId
        self.limit = limit
        self.offset = offset
    }

    enum CodingKeys: String, CodingKey {
        case limit, offset, currency, connector
        case merchantId = "merchant_id", paymentId = "payment_id", refundId = "refund_id", profileId = "profile_id"
        case refundStatus = "refund_status", startTime = "start_time", endTime = "end_time"
    }
}
