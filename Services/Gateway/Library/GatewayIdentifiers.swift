import Crypto
import Foundation
import PaywireModels

/// Ids and secrets the gateway hands out, in Hyperswitch's shapes (`pro_…`, `whe_…`, `dev_…`).
enum GatewayIdentifiers {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

    static func random(_ length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    static func make(_ prefix: String) -> String { "\(prefix)_\(random(20))" }

    /// Standard Webhooks form: `whsec_` + base64 of 24 random bytes (the HMAC key).
    static func webhookSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "whsec_" + Data(bytes).base64EncodedString()
    }

    static func apiKeySecret() -> String { "dev_" + random(64) }

    static func hash(apiKey: String) -> String {
        Hex.encode(SHA256.hash(data: Data(apiKey.utf8)))
    }
}
