import Foundation
import Hummingbird
import PaywireModels
import PaywireRuntime

/// The walking skeleton's answer to `POST /payments`; the payments issue replaces it with the
/// Hyperswitch-shaped payment object.
public struct PaymentAccepted: Codable, Sendable, ResponseEncodable {
    public var paymentId: String
    public var merchantId: String
    public var status: String
    public var amount: Int
    public var currency: String

    enum CodingKeys: String, CodingKey {
        case paymentId = "payment_id"
        case merchantId = "merchant_id"
        case status, amount, currency
    }
}
