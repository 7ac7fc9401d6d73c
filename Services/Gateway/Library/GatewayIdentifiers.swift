import Crypto
import Foundation
import PaywireModels

/// Secrets the gateway hands out, in Hyperswitch's shapes (ids come from `Identifier`).
enum GatewayIdentifiers {
    /// Standard Webhooks form: `whsec_` + base64 of 24 random bytes (the HMAC key).
    static func webhookSecret() -> String {
        "whsec_" + Data(Identifier.randomBytes(24)).base64EncodedString()
    }

    static func apiKeySecret() -> String { "dev_" + Identifier.random(64) }

    static func hash(apiKey: String) -> String {
        Hex.encode(SHA256.hash(data: Data(apiKey.utf8)))
    }
}
