import Crypto
import Foundation
import PaywireKafka

/// Signs the commands Paywire's services send each other on Kafka, and checks them on arrival.
/// Covers the topic, the key and every byte of the value (merchant, operation, amounts, the card
/// vault's URL), so whoever can write to the topic but lacks the key can neither forge a command
/// nor move a genuine one to another payment: the consumer dead-letters it unapplied. The key is
/// `PAYWIRE_COMMAND_SIGNING_KEY` (base64 of 32 bytes) when set, else derived from
/// PAYWIRE_ENCRYPTION_KEY under a label of its own.
public struct CommandSigner: Sendable {
    public static let header = "paywire-signature"
    public static let environmentKey = "PAYWIRE_COMMAND_SIGNING_KEY"
    private let scheme: SignatureScheme

    public init(environment: [String: String]) throws {
        if let own = environment[Self.environmentKey], !own.isEmpty {
            guard let data = Data(base64Encoded: own), data.count == 32 else {
                throw ServiceConfiguration.ConfigurationError(key: Self.environmentKey, reason: "base64 of 32 random bytes (openssl rand -base64 32)")
            }
            scheme = SignatureScheme(key: SymmetricKey(data: data))
        } else {
            scheme = try SignatureScheme(purpose: "paywire kafka commands v1", encryptionKey: try ServiceConfiguration.encryptionKey(environment))
        }
    }

    /// Lengths first, so no two (topic, key, value) triples cover the same bytes.
    static func covered(topic: String, key messageKey: [UInt8]?, value: [UInt8]) -> Data {
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
        let signature = scheme.signature(of: Self.covered(topic: message.topic, key: message.key, value: message.value))
        message.headers.append(KafkaHeader(name: Self.header, string: signature))
        return message
    }

    public func isValid(_ message: KafkaConsumerMessage) -> Bool {
        guard let header = message.header(Self.header) else { return false }
        return scheme.isValid(String(decoding: header, as: UTF8.self), of: Self.covered(topic: message.topic, key: message.key, value: message.value))
    }
}
