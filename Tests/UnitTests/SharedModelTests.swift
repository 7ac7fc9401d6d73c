import Foundation
import Logging
import NIOSSL
import PaywireKafka
import PaywireModels
import PaywireStore
import Testing
@testable import PaywireRuntime
import WebhookDispatcher

@Suite struct SharedModelTests {
    @Test func envelopeRoundTripsWithWireNames() throws {
        let envelope = EventEnvelope(
            id: "id-1", type: "payment_succeeded", occurredAt: Date(timeIntervalSince1970: 1.5),
            merchantId: "m", profileId: "p", correlationId: nil, payload: .object(["amount": .number(6540)])
        )
        let bytes = try envelope.encoded()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""occurred_at":"1970-01-01T00:00:01.500Z""#))
        #expect(text.contains(#""merchant_id":"m""#))
        #expect(text.contains(#""amount":6540"#))
        #expect(try EventEnvelope.decode(bytes) == envelope)
    }

    @Test func databaseURLIsParsedAndErrorsDoNotEchoIt() throws {
        let configuration = try DatabaseConfiguration(url: "postgres://user:s%40cret@db.local:6543/paywire")
        #expect(configuration.host == "db.local")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "user")
        #expect(configuration.password == "s@cret")
        #expect(configuration.database == "paywire")
        let error = #expect(throws: DatabaseConfiguration.InvalidURL.self) {
            try DatabaseConfiguration(url: "mysql://user:topsecret@db/x")
        }
        #expect(error?.description.contains("topsecret") == false)
        #expect(throws: DatabaseConfiguration.InvalidURL.self) { try DatabaseConfiguration(url: "postgres://user@db") }
    }

    /// libpq's sslmode in DATABASE_URL: each mode becomes the TLS PostgresNIO uses.
    @Test func databaseURLCarriesSSLMode() throws {
        #expect(try DatabaseConfiguration(url: "postgres://u:p@db/x").sslMode == .disable)
        for mode in DatabaseConfiguration.SSLMode.allCases {
            let configuration = try DatabaseConfiguration(url: "postgres://u:p@db/x?sslmode=\(mode.rawValue)")
            #expect(configuration.sslMode == mode)
            let expected: CertificateVerification? = switch mode {
            case .disable: nil
            case .prefer, .require: CertificateVerification.none
            case .verifyCA: .noHostnameVerification
            case .verifyFull: .fullVerification
            }
            #expect(configuration.tlsConfiguration?.certificateVerification == expected, "\(mode.rawValue)")
        }
        #expect(throws: DatabaseConfiguration.InvalidURL.self) { try DatabaseConfiguration(url: "postgres://u:p@db/x?sslmode=maybe") }
        #expect(throws: DatabaseConfiguration.InvalidURL.self) { try DatabaseConfiguration(url: "postgres://u:p@db/x?sslrootcert=/nonexistent.pem") }
        #expect(throws: DatabaseConfiguration.InvalidURL.self) { try DatabaseConfiguration(url: "postgres://u:p@db/x?password=leak") }
    }

    /// Kafka security from the environment, as librdkafka's properties; inconsistent settings
    /// stop the service at start.
    @Test func kafkaSecurityFromTheEnvironment() throws {
        #expect(try KafkaSecurity(environment: [:]).properties == ["security.protocol": "plaintext"])
        let scram = try KafkaSecurity(environment: [
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "payment-core", "KAFKA_SASL_PASSWORD": "pw",
        ])
        #expect(scram.properties == ["security.protocol": "sasl_plaintext", "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "payment-core", "sasl.password": "pw"])
        let configuration = try ServiceConfiguration(serviceName: "gateway", defaultPort: 8080, environment: [
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_USERNAME": "gateway", "KAFKA_SASL_PASSWORD": "pw",
        ])
        #expect(configuration.kafka.properties["sasl.mechanisms"] == "SCRAM-SHA-512" && configuration.kafka.properties["security.protocol"] == "sasl_ssl")
        for bad in [
            ["KAFKA_SECURITY_PROTOCOL": "TLS"],
            ["KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"],
            ["KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_SASL_MECHANISM": "GSSAPI"],
            ["KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"],
            ["KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/nonexistent.pem"],
            ["KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_SSL_CA_LOCATION": "/etc/hostname"],
        ] {
            let error = #expect(throws: ServiceConfiguration.ConfigurationError.self) { try KafkaSecurity(environment: bad) }
            #expect(error?.description.contains("p\"") != true)
        }
    }

    /// A sealed value opens only in its own table, column and row; a value from another row,
    /// column or key does not.
    @Test func aSealedValueOpensOnlyWhereItWasSealed() throws {
        let box = try SecretBox(base64Key: SecretBox.generateKey())
        let sealed = try box.seal("whsec_secret", as: .endpointSigningSecret, row: "whe_1")
        #expect(sealed.hasPrefix("v2:") && !sealed.contains("whsec_secret"))
        #expect(try box.open(sealed, as: .endpointSigningSecret, row: "whe_1") == "whsec_secret")
        #expect(throws: SecretBox.CannotOpen.self) { try box.open(sealed, as: .endpointSigningSecret, row: "whe_2") }
        #expect(throws: SecretBox.CannotOpen.self) { try box.open(sealed, as: .connectorWebhookSecret, row: "whe_1") }
        #expect(throws: SecretBox.CannotOpen.self) { try SecretBox(base64Key: SecretBox.generateKey()).open(sealed, as: .endpointSigningSecret, row: "whe_1") }
        #expect(throws: SecretBox.CannotOpen.self) { try box.open("v3:" + sealed.dropFirst(3), as: .endpointSigningSecret, row: "whe_1") }
    }

    /// A rotated-away secret signs until its expiry and not a second longer, whatever the cache holds.
    @Test func aRotatedAwaySecretSignsOnlyUntilItExpires() {
        let rotated = Date(timeIntervalSince1970: 1_000_000)
        let secrets = EndpointSecrets(current: "whsec_new", previous: "whsec_old", previousExpiresAt: rotated.addingTimeInterval(86_400))
        #expect(secrets.signing(at: rotated.addingTimeInterval(60)) == ["whsec_new", "whsec_old"])
        #expect(secrets.signing(at: rotated.addingTimeInterval(86_400)) == ["whsec_new"])
        #expect(secrets.signing(at: rotated.addingTimeInterval(90_000)) == ["whsec_new"])
        #expect(EndpointSecrets(current: "whsec_new", previous: "whsec_old").signing() == ["whsec_new"], "no expiry known: never")
    }

    @Test func serviceConfigurationDefaultsAndRejectsBadValues() throws {
        let configuration = try ServiceConfiguration(serviceName: "gateway", defaultPort: 8080, environment: [:])
        #expect(configuration.httpPort == 8080)
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.topics.paymentEvents == "paywire.payment.events")
        #expect(configuration.topicPartitions == 6)
        let custom = try ServiceConfiguration(serviceName: "gateway", defaultPort: 8080, environment: [
            "HTTP_PORT": "9000", "PAYWIRE_TOPIC_PAYMENT_EVENTS": "custom.events", "LOG_LEVEL": "debug",
        ])
        #expect(custom.httpPort == 9000)
        #expect(custom.topics.paymentEvents == "custom.events")
        #expect(custom.logLevel == .debug)
        #expect(throws: ServiceConfiguration.ConfigurationError.self) {
            try ServiceConfiguration(serviceName: "gateway", defaultPort: 8080, environment: ["HTTP_PORT": "seventy"])
        }
        #expect(throws: ServiceConfiguration.ConfigurationError.self) {
            try ServiceConfiguration(serviceName: "gateway", defaultPort: 8080, environment: ["LOG_LEVEL": "loud"])
        }
    }

    @Test func requestFieldsAreReadWithTheirFullPathInErrors() throws {
        let body = RequestObject([
            "amount": .string("x"),
            "details": .object(["list": .array([.object(["events": .array([.string("ok"), .number(3)])])])]),
            "count": .number(-2),
        ])
        func field(_ read: () throws -> Any?) -> String? {
            do { _ = try read(); return nil } catch let error as APIError { return error.field } catch { return "?" }
        }
        #expect(field { try body.integer("amount") } == "amount")
        #expect(field { try body.requiredString("missing") } == "missing")
        #expect(field { try body.integer("count", range: 0...10) } == "count")
        #expect(field { try body.object("details")?.objects("list")?.first?.strings("events") } == "details.list[0].events[1]")
        #expect(field { try body.string("amount") } == nil)
    }

    @Test func trailingCommasOutsideStringsAreDropped() throws {
        let cleaned = TrailingCommas.removed(from: Data(#"{"a": [1, 2,], "b": "x,]", "c": {"d": 1,},}"#.utf8))
        let value = try PaywireJSON.decoder.decode(JSONValue.self, from: cleaned)
        #expect(value["a"] == .array([.number(1), .number(2)]))
        #expect(value["b"] == .string("x,]"))
        #expect(value["c"]?["d"] == .number(1))
    }

    @Test func kafkaErrorsCarryLibrdkafkaCodes() {
        let error = KafkaError(kind: .delivery, code: -192, message: "Local: Message timed out")
        #expect(error.codeName == "_MSG_TIMED_OUT")
        #expect(error.description.contains("-192"))
    }
}
