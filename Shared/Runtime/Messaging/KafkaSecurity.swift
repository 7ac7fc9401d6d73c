import Foundation

/// How a service authenticates to Kafka and protects the connection, from the environment:
/// `KAFKA_SECURITY_PROTOCOL` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), `KAFKA_SASL_MECHANISM`
/// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` and
/// `KAFKA_SSL_CA_LOCATION` (a PEM file). Turned into librdkafka's own property names; anything
/// inconsistent stops the service at start rather than at the first produce.
public struct KafkaSecurity: Sendable, Equatable {
    public static let environmentKeys = ["KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_LOCATION"]
    static let protocols = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
    static let mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

    /// librdkafka properties (the password among them: never log these).
    public let properties: [String: String]

    public init(environment: [String: String]) throws {
        func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        typealias Failure = ServiceConfiguration.ConfigurationError
        let securityProtocol = (value("KAFKA_SECURITY_PROTOCOL") ?? "PLAINTEXT").uppercased()
        guard Self.protocols.contains(securityProtocol) else {
            throw Failure(key: "KAFKA_SECURITY_PROTOCOL", reason: "one of \(Self.protocols.joined(separator: ", "))")
        }
        var properties = ["security.protocol": securityProtocol.lowercased()]
        if securityProtocol.hasPrefix("SASL_") {
            let mechanism = (value("KAFKA_SASL_MECHANISM") ?? "SCRAM-SHA-512").uppercased()
            guard Self.mechanisms.contains(mechanism) else {
                throw Failure(key: "KAFKA_SASL_MECHANISM", reason: "one of \(Self.mechanisms.joined(separator: ", "))")
            }
            guard let username = value("KAFKA_SASL_USERNAME") else { throw Failure(key: "KAFKA_SASL_USERNAME", reason: "the service's Kafka user (\(securityProtocol))") }
            guard let password = value("KAFKA_SASL_PASSWORD") else { throw Failure(key: "KAFKA_SASL_PASSWORD", reason: "the service's Kafka password (\(securityProtocol))") }
            properties["sasl.mechanisms"] = mechanism
            properties["sasl.username"] = username
            properties["sasl.password"] = password
        } else if value("KAFKA_SASL_USERNAME") != nil || value("KAFKA_SASL_PASSWORD") != nil {
            // Credentials that would silently go unused mean the protocol was forgotten.
            throw Failure(key: "KAFKA_SECURITY_PROTOCOL", reason: "SASL_PLAINTEXT or SASL_SSL when KAFKA_SASL_USERNAME/PASSWORD are set")
        }
        if let caFile = value("KAFKA_SSL_CA_LOCATION") {
            guard securityProtocol.hasSuffix("SSL") else { throw Failure(key: "KAFKA_SECURITY_PROTOCOL", reason: "SSL or SASL_SSL when KAFKA_SSL_CA_LOCATION is set") }
            guard FileManager.default.isReadableFile(atPath: caFile) else { throw Failure(key: "KAFKA_SSL_CA_LOCATION", reason: "a readable PEM file") }
            properties["ssl.ca.location"] = caFile
        }
        self.properties = properties
    }
}
