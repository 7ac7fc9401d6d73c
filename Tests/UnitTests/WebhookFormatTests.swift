import Foundation
import PaywireModels
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
        #expect(schedule.delay(afterAttempts: 1) == 60)
        #expect(schedule.delay(afterAttempts: 2) == 300)
        #expect(schedule.delay(afterAttempts: 4) == 600)
        #expect(schedule.delay(afterAttempts: 9) == 3600)
        #expect(schedule.delay(afterAttempts: 16) == 21_600)
        // 17 attempts made = the initial one and 16 retries: nothing further.
        #expect(schedule.delay(afterAttempts: 17) == nil)
        let total = schedule.delaysInSeconds.reduce(0, +)
        #expect(total == 60 + 600 + 3000 + 18_000 + 64_800)
    }
}
