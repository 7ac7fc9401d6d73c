import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireStore
import Testing
@testable import PaywireRuntime

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
