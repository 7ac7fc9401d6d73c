import Foundation
import Hummingbird
import PaywireModels
import PaywireRuntime

/// The walking skeleton's payment request: enough to carry a real command through payment-core
/// to the dispatcher. The payments issue replaces it with the Hyperswitch-shaped API.
public struct PaymentCreateRequest: Decodable, Sendable {
    public var merchantId: String
    public var amount: Int
    public var currency: String

    enum CodingKeys: String, CodingKey {
        case merchantId = "merchant_id"
        case amount, currency
    }
}

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

enum PaymentIdentifier {
    /// `pay_` + 20 random alphanumerics, as Hyperswitch's ids look.
    static func make(prefix: String = "pay") -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return prefix + "_" + String((0..<20).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
