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
}
