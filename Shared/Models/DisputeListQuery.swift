import Foundation

/// `GET /disputes/list` as the gateway checked it, for payment-core's internal API: the merchant,
/// and the filters given (statuses, stages and connectors match any listed; the received-time
/// range is inclusive).
public struct DisputeListQuery: Codable, Sendable, Equatable {
    public var merchantId: String
    public var disputeStatus: [String]?
    public var disputeStage: [String]?
    public var connector: [String]?
    public var receivedTimeGte: Date?
    public var receivedTimeLte: Date?
    public var limit: Int
    public var offset: Int

    public init(merchantId: String, limit: Int, offset: Int) {
        self.merchantId = merchantId
        self.limit = limit
        self.offset = offset
    }

    enum CodingKeys: String, CodingKey {
        case limit, offset, connector
        case merchantId = "merchant_id", disputeStatus = "dispute_status", disputeStage = "dispute_stage"
        case receivedTimeGte = "received_time_gte", receivedTimeLte = "received_time_lte"
    }
}
