import Foundation
import Hummingbird
import PaywireModels
import PaywireRuntime

/// The part of Hyperswitch's merchant account the walking skeleton needs; the gateway issue grows
/// it to the full shape (profiles, endpoints, keys).
public struct MerchantAccountCreateRequest: Decodable, Sendable {
    public var merchantId: String?
    public var merchantName: String?
    public var webhookDetails: WebhookDetails?
    public var enablePaymentResponseHash: Bool?

    public struct WebhookDetails: Decodable, Sendable {
        public var webhookUrl: String?
        enum CodingKeys: String, CodingKey { case webhookUrl = "webhook_url" }
    }

    enum CodingKeys: String, CodingKey {
        case merchantId = "merchant_id"
        case merchantName = "merchant_name"
        case webhookDetails = "webhook_details"
        case enablePaymentResponseHash = "enable_payment_response_hash"
    }
}

public struct MerchantAccount: Codable, Sendable, ResponseEncodable {
    public var merchantId: String
    public var merchantName: String?
    public var webhookDetails: WebhookDetailsResponse
    public var enablePaymentResponseHash: Bool
    public var paymentResponseHashKey: String?

    public struct WebhookDetailsResponse: Codable, Sendable {
        public var webhookUrl: String?
        enum CodingKeys: String, CodingKey { case webhookUrl = "webhook_url" }
    }

    enum CodingKeys: String, CodingKey {
        case merchantId = "merchant_id"
        case merchantName = "merchant_name"
        case webhookDetails = "webhook_details"
        case enablePaymentResponseHash = "enable_payment_response_hash"
        case paymentResponseHashKey = "payment_response_hash_key"
    }
}

enum Validation {
    static let identifierCharacters = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-"))

    static func identifier(_ value: String, field: String) throws {
        guard (1...64).contains(value.count), value.unicodeScalars.allSatisfy(identifierCharacters.contains) else {
            throw APIError.invalid(field, "must be 1 to 64 letters, digits, '_' or '-'")
        }
    }

    /// Webhook targets: absolute http(s) URLs with a host and no embedded credentials.
    static func webhookURL(_ value: String, field: String) throws {
        guard let url = URLComponents(string: value), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else {
            throw APIError.invalid(field, "must be an absolute http or https URL")
        }
        guard url.user == nil, url.password == nil else {
            throw APIError.invalid(field, "must not carry credentials")
        }
    }
}
