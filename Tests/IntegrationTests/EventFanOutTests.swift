import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing
@testable import WebhookDispatcher

/// The dispatcher's fan-out in process, on a database of its own: which endpoints of a merchant's
/// configuration copy get a delivery row for an event, and that a row exists at most once.
@Suite(.serialized, .timeLimit(.minutes(2)), .enabled(if: TestEnvironment.hasDatabase))
struct EventFanOutTests {
    let logger = TestEnvironment.logger("fan-out", level: .error)

    func event(_ type: String, objectId: String, version: Int64) throws -> KafkaConsumerMessage {
        var envelope = EventEnvelope(type: type, merchantId: "fan_m", payload: .object(["payment_id": .string(objectId), "refund_id": .string(objectId), "status": .string("x")]))
        envelope.configurationVersion = version
        return KafkaConsumerMessage(topic: "paywire.payment.events", partition: 0, offset: 0, key: Array(objectId.utf8), value: try envelope.encoded(), headers: [])
    }

    @Test func oneRowPerSubscribedActiveEndpointAndNeverTwice() async throws {
        try await withDispatcherDatabase("fanout", logger: logger) { postgres in
            let secrets = try SecretBox(base64Key: SecretBox.generateKey())
            let copy = ConfigurationCopy(schema: WebhooksSchema.name, postgres: postgres, logger: logger)
            func endpoint(_ id: String, events: [String], status: String = "active", ordering: String = "none") throws -> MerchantConfigurationSnapshot.Endpoint {
                .init(endpointId: id, profileId: "pro_fan", url: "https://example.com/\(id)", events: events, status: status,
                      sealedSecret: try secrets.seal("whsec_" + Data(repeating: 7, count: 24).base64EncodedString(), as: .endpointSigningSecret, row: id),
                      sealedPreviousSecret: nil, previousSecretExpiresAt: nil, modifiedAt: Date(), rateLimit: nil, ordering: ordering)
            }
            var snapshot = MerchantConfigurationSnapshot(merchantId: "fan_m", version: 3, defaultProfileId: "pro_fan")
            snapshot.profiles = [.init(profileId: "pro_fan", webhookURL: "https://example.com/legacy", disabledEventTypes: [], sealedHashKey: nil, sealedCustomHeaders: nil, revenueRecoveryRetryAlgorithmType: nil)]
            snapshot.endpoints = [
                try endpoint("whe_paid", events: ["payment_succeeded"]),
                try endpoint("whe_failed", events: ["payment_failed"]),
                try endpoint("whe_gone", events: ["payment_succeeded"], status: "deprecated"),
                try endpoint("whe_paused", events: ["payment_succeeded"], status: "inactive"),
                try endpoint("whe_both", events: ["payment_succeeded", "refund_succeeded"], ordering: "per_object"),
            ]
            #expect(try await copy.store(snapshot))
            let fanOut = EventFanOut(postgres: postgres, configuration: ConfigurationRepository(copy: copy, secrets: secrets, logger: logger), logger: logger)

            func rows(_ objectId: String) async throws -> [String] {
                var found: [String] = []
                for try await (endpoint, ordered) in try await postgres.query("""
                    SELECT webhook_endpoint_id, ordered FROM webhooks.events WHERE object_id = \(objectId) ORDER BY webhook_endpoint_id
                    """).decode((String?, Bool).self) { found.append((endpoint ?? "legacy") + (ordered ? "+ordered" : "")) }
                return found
            }
            try await fanOut.handle(try event("payment_succeeded", objectId: "pay_1", version: 3))
            // Active endpoints subscribed to the type; not the deprecated, inactive or unsubscribed
            // ones; not the legacy URL (live endpoints replace it).
            #expect(try await rows("pay_1") == ["whe_both+ordered", "whe_paid"])
            // The same change announced again (another message) or redelivered: no second row.
            try await fanOut.handle(try event("payment_succeeded", objectId: "pay_1", version: 3))
            #expect(try await rows("pay_1") == ["whe_both+ordered", "whe_paid"])
            try await fanOut.handle(try event("refund_succeeded", objectId: "ref_1", version: 3))
            #expect(try await rows("ref_1") == ["whe_both+ordered"])
            // An event made under a version the copy does not have yet waits for it, and is then
            // fanned out with that version (which has no endpoint for payment_failed left): with
            // version 3's endpoints it would get a row.
            let waiting = Task { try await fanOut.handle(try event("payment_failed", objectId: "pay_2", version: 4)) }
            snapshot.version = 4
            snapshot.endpoints.removeAll { $0.endpointId == "whe_failed" }
            #expect(try await copy.store(snapshot))
            try await waiting.value
            // Version 4 removed the only endpoint for payment_failed: nobody gets it (endpoints
            // that are not deprecated still replace the legacy URL).
            #expect(try await rows("pay_2").isEmpty)
            // With every endpoint deprecated, the legacy URL takes every event again.
            snapshot.version = 5
            snapshot.endpoints = [try endpoint("whe_gone", events: ["payment_succeeded"], status: "deprecated")]
            #expect(try await copy.store(snapshot))
            try await fanOut.handle(try event("payment_succeeded", objectId: "pay_3", version: 5))
            #expect(try await rows("pay_3") == ["legacy"])
        }
    }
}

extension EventFanOutTests {
    /// One merchant's configuration copy held back (its event made under a version the copy does
    /// not have): another merchant's events are fanned out meanwhile, not after its wait.
    @Test func aMerchantWhoseConfigurationLagsWaitsAlone() async throws {
        try await withDispatcherDatabase("fanout", logger: logger) { postgres in
            let secrets = try SecretBox(base64Key: SecretBox.generateKey())
            let copy = ConfigurationCopy(schema: WebhooksSchema.name, postgres: postgres, logger: logger)
            func snapshot(_ merchantId: String, version: Int64) -> MerchantConfigurationSnapshot {
                var snapshot = MerchantConfigurationSnapshot(merchantId: merchantId, version: version, defaultProfileId: "pro_\(merchantId)")
                snapshot.profiles = [.init(profileId: "pro_\(merchantId)", webhookURL: "https://example.com/\(merchantId)", disabledEventTypes: [], sealedHashKey: nil, sealedCustomHeaders: nil, revenueRecoveryRetryAlgorithmType: nil)]
                return snapshot
            }
            #expect(try await copy.store(snapshot("lag_m", version: 1)))
            #expect(try await copy.store(snapshot("on_m", version: 1)))
            // The wait outlasts any slow machine and the suite's time limit: were on_m's events held
            // behind lag_m's wait, this test would run into that limit and fail.
            let fanOut = EventFanOut(postgres: postgres, configuration: ConfigurationRepository(copy: copy, secrets: secrets, logger: logger), logger: logger,
                                     configurationWait: .seconds(600))
            func event(_ merchantId: String, objectId: String, version: Int64) throws -> KafkaConsumerMessage {
                var envelope = EventEnvelope(type: "payment_succeeded", merchantId: merchantId, payload: .object(["payment_id": .string(objectId), "status": .string("succeeded")]))
                envelope.configurationVersion = version
                return KafkaConsumerMessage(topic: "paywire.payment.events", partition: 0, offset: 0, key: Array(objectId.utf8), value: try envelope.encoded(), headers: [])
            }
            func rows(_ objectId: String) async throws -> Int {
                try await postgres.query("SELECT count(*)::int FROM webhooks.events WHERE object_id = \(objectId)").collect().first!.decode(Int.self)
            }
            // lag_m's event waits for version 2, which the copy does not have yet (as the consumer
            // would, it is tried again while the version is not there).
            let lagging = Collector<Bool>()
            let gaveUp = Collector<Bool>()
            let waiting = Task {
                while true {
                    do { try await fanOut.handle(try event("lag_m", objectId: "pay_lag", version: 2)); break } catch is ConfigurationCopy.NotYet { gaveUp.append(true) }
                }
                lagging.append(true)
            }
            // Meanwhile other merchants' events are written, one after another, while lag_m still waits.
            for index in 0..<5 { try await fanOut.handle(try event("on_m", objectId: "pay_on_\(index)", version: 1)) }
            for index in 0..<5 { #expect(try await rows("pay_on_\(index)") == 1) }
            #expect(lagging.count == 0, "the lagging merchant's event finished before the others were written")
            // Counted, not timed: behind lag_m's wait, each of on_m's events would have waited out
            // the copy's whole timeout, and lag_m's handling would have given up at least once.
            #expect(gaveUp.count == 0, "on_m's events waited behind lag_m's (\(gaveUp.count) timed-out waits)")
            #expect(try await rows("pay_lag") == 0)
            // Its version arrives: its event is fanned out then.
            #expect(try await copy.store(snapshot("lag_m", version: 2)))
            try await waiting.value
            #expect(try await rows("pay_lag") == 1)
        }
    }
}
