import Crypto
import Foundation
import PaywireKafka
import PaywireModels

/// Signs the commands Paywire's services send each other on Kafka, and checks them on arrival.
/// The HMAC covers the topic, the key and every byte of the value (merchant, operation, amounts,
/// the card vault's URL), so whoever can write to the topic but lacks the key can neither forge
/// a command nor move a genuine one to another payment: the consumer dead-letters it unapplied.
/// The key is `PAYWIRE_COMMAND_SIGNING_KEY` (base64 of 32 bytes) when set, else derived from
/// PAYWIRE_ENCRYPTION_KEY under a label of its own.
public struct CommandSigner: Sendable {
    public static let header = "paywire-signature"
    public static let environmentKey = "PAYWIRE_COMMAND_SIGNING_KEY"
    private let key: SymmetricKey

    public init(environment: [String: String]) throws {
        if let own = environment[Self.environmentKey], !own.isEmpty {
            guard let data = Data(base64Encoded: own), data.count == 32 else {
                throw ServiceConfiguration.ConfigurationError(key: Self.environmentKey, reason: "base64 of 32 random bytes (openssl rand -base64 32)")
            }
            key = SymmetricKey(data: data)
        } else {
            key = try DerivedKey.derive(fromEncryptionKey: try ServiceConfiguration.encryptionKey(environment), label: "paywire kafka commands v1")
        }
    }

    /// Lengths first, so no two (topic, key, value) triples sign the same bytes.
    static func signedBytes(topic: String, key messageKey: [UInt8]?, value: [UInt8]) -> Data {
        var data = Data()
        for part in [Array(topic.utf8), messageKey ?? []] {
            withUnsafeBytes(of: UInt32(part.count).bigEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: part)
        }
        data.append(contentsOf: value)
        return data
    }

    /// The message with its signature header added.
    public func signed(_ message: KafkaProducerMessage) -> KafkaProducerMessage {
        var message = message
        message.headers.removeAll { $0.name == Self.header }
        let mac = HMAC<SHA256>.authenticationCode(for: Self.signedBytes(topic: message.topic, key: message.key, value: message.value), using: key)
        message.headers.append(KafkaHeader(name: Self.header, string: Hex.encode(mac)))
        return message
    }

    /// Constant-time check of a received message's signature.
    public func isValid(_ message: KafkaConsumerMessage) -> Bool {
        guard let header = message.header(Self.header), header.count == 64,
              let bytes = InternalRequestSigner.bytes(hex: String(decoding: header, as: UTF8.self)) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: Self.signedBytes(topic: message.topic, key: message.key, value: message.value), using: key)
    }
}
