import Foundation
import PaywireModels
import PaywireRuntime
import Testing
@testable import WebhookDispatcher

@Suite struct WebhookFormatTests {
    @Test func signatureIsLowercaseHexHMACSHA512OfTheExactBody() {
        // Reference value from Python's hmac module.
        let expected = "1fc755918c887cfa153423d13051017256242b2eeb4af70ce9125dd17407431ed819a6ec2755e3274f992835c62355c79224a49059b16ce8401f5234bc4e6b90"
        #expect(OutgoingWebhook.signature(body: #"{"a":1}"#, key: "test_key") == expected)
        #expect(OutgoingWebhook.signature(body: #"{"a":2}"#, key: "test_key") != expected)
    }

    @Test func idempotentEventIdMatchesHyperswitch() {
        #expect(OutgoingWebhook.idempotentEventId(objectId: "pay_1", eventType: "payment_succeeded", endpointId: "whe_1") == "cGF5XzFfcGF5bWVudF9zdWNjZWVkZWRfd2hlXzE=")
        #expect(OutgoingWebhook.idempotentEventId(objectId: "pay_1", eventType: "payment_succeeded", endpointId: nil) == "cGF5XzFfcGF5bWVudF9zdWNjZWVkZWQ=")
    }

    @Test func eventIdsAreTimeOrdered() {
        let earlier = OutgoingWebhook.makeEventId(now: Date(timeIntervalSince1970: 1_700_000_000))
        let later = OutgoingWebhook.makeEventId(now: Date(timeIntervalSince1970: 1_700_000_001))
        #expect(earlier.hasPrefix("evt_"))
        #expect(earlier.count == 4 + 32)
        #expect(earlier < later)
    }

    @Test func bodyHasHyperswitchEnvelope() throws {
        let body = try OutgoingWebhook.body(
            merchantId: "m1", eventId: "evt_1", eventType: "refund_failed",
            object: .object(["refund_id": .string("ref_1")]), timestamp: Date(timeIntervalSince1970: 0)
        )
        let decoded = try PaywireJSON.decoder.decode(JSONValue.self, from: Data(body.utf8))
        #expect(decoded["merchant_id"] == .string("m1"))
        #expect(decoded["event_type"] == .string("refund_failed"))
        #expect(decoded["content"]?["type"] == .string("refund_details"))
        #expect(decoded["content"]?["object"]?["refund_id"] == .string("ref_1"))
        #expect(decoded["timestamp"] == .string("1970-01-01T00:00:00.000Z"))
    }

    @Test func retryLadderIsHyperswitchs() {
        let schedule = RetrySchedule.hyperswitch
        #expect(schedule.delaysInSeconds.count == 16)
        // Without jitter (random 0) the ladder itself; with it, within ±20 %.
        #expect(schedule.delay(afterAttempts: 1, random: 0) == 60)
        #expect(schedule.delay(afterAttempts: 2, random: 0) == 300)
        #expect(schedule.delay(afterAttempts: 4, random: 0) == 600)
        #expect(schedule.delay(afterAttempts: 9, random: 0) == 3600)
        #expect(schedule.delay(afterAttempts: 16, random: 0) == 21_600)
        #expect(schedule.delay(afterAttempts: 1, random: -1) == 48 && schedule.delay(afterAttempts: 1, random: 1) == 72)
        for _ in 0..<100 { #expect((48...72).contains(schedule.delay(afterAttempts: 1)!)) }
        // 17 attempts made = the initial one and 16 retries: nothing further.
        #expect(schedule.delay(afterAttempts: 17) == nil)
        let total = schedule.delaysInSeconds.reduce(0, +)
        #expect(total == 60 + 600 + 3000 + 18_000 + 64_800)
    }

    @Test func theLadderComesFromConfigurationAndRetryAfterIsBounded() throws {
        #expect(try RetrySchedule.parse("1s,2s,4s").delaysInSeconds == [1, 2, 4])
        #expect(try RetrySchedule.parse("500ms, 1m,2h,1d").delaysInSeconds == [0.5, 60, 7200, 86_400])
        for bad in ["", "1", "1x", "-1s", "s", "1s,,2s", "40d"] { #expect(throws: DurationList.ParseError.self) { try RetrySchedule.parse(bad) } }
        #expect(RetrySchedule.retryAfter("3") == 3)
        #expect(RetrySchedule.retryAfter("0") == 1)
        #expect(RetrySchedule.retryAfter("999999") == 3600)
        let now = Date(timeIntervalSince1970: 1_799_913_600)
        #expect(RetrySchedule.retryAfter("Thu, 14 Jan 2027 08:00:30 GMT", now: now) == 30)
        #expect(RetrySchedule.retryAfter("soon", now: now) == nil)
        #expect(RetrySchedule.retryAfter(nil) == nil)
    }

    @Test func errorsShownToMerchantsCarryNoBuildPaths() {
        struct TLSFailure: Error, CustomStringConvertible {
            var description: String {
                "handshakeFailed(sslError([Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at /work/main/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/tls_record.cc:127]))"
            }
        }
        let shown = OutgoingWebhook.describe(TLSFailure())
        #expect(shown.contains("CERTIFICATE_VERIFY_FAILED"))
        #expect(!shown.contains("/") && !shown.contains(".build") && !shown.contains(".cc"), "\(shown)")
        #expect(OutgoingWebhook.describe(text: "see /usr/src/x.swift:12 now") == "see  now")
    }

    @Test func attemptsLogShowsPaywiresHeadersAndMasksTheMerchantsOwn() throws {
        let stored = #"{"Authorization": "Bearer sk_live_secret", "Cookie": "session=abc", "Content-Type": "application/json", "webhook-id": "evt_1", "User-Agent": "Paywire-Webhooks/1"}"#
        guard case .array(let pairs) = EventLog.headerPairs(stored, maskingMerchantValues: true) else { Issue.record("not an array"); return }
        let shown = Dictionary(uniqueKeysWithValues: pairs.compactMap { pair -> (String, String)? in
            guard case .array(let items) = pair, let name = items.first?.stringValue, let value = items.last?.stringValue else { return nil }
            return (name, value)
        })
        #expect(shown["Authorization"] == "***" && shown["Cookie"] == "***")
        #expect(shown["Content-Type"] == "application/json" && shown["webhook-id"] == "evt_1" && shown["User-Agent"] == "Paywire-Webhooks/1")
    }

    @Test func endpointsOnOneHostShareItsCeilingFairlyAndEachKeepsItsOwnLimit() {
        var running = DeliveryInFlight()
        #expect(DeliveryInFlight.hostKey("https://Hooks.Example.com/a") == DeliveryInFlight.hostKey("https://hooks.example.com:443/b"))
        #expect(DeliveryInFlight.hostKey("http://h:8080/a") != DeliveryInFlight.hostKey("http://h:8081/a"))
        let host = DeliveryInFlight.hostKey("http://relay.example/x")
        for _ in 0..<10 { running.started(endpoint: "slow", host: host) }
        // Alone on its host: its own limit (10) is what holds it.
        #expect(running.allowance(perEndpoint: 10, perHost: 12)["slow"] == 0)
        // A second endpoint arrives: the host's 12 are split 6 and 6, so the slow one may start no
        // more until it is under its share, and the newcomer may grow to 6.
        running.started(endpoint: "fast", host: host)
        let shares = running.allowance(perEndpoint: 10, perHost: 12)
        #expect(shares["slow"] == -4 && shares["fast"] == 5)
        for _ in 0..<10 { running.finished(endpoint: "slow", host: host) }
        running.finished(endpoint: "fast", host: host)
        #expect(running.total == 0 && running.perHost.isEmpty && running.perEndpoint.isEmpty)
    }
}
