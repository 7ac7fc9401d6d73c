import Foundation
import Hummingbird
import PaywireModels
import PaywireRuntime
import Testing
@testable import WebhookDispatcher

/// The events log's pieces that need nothing running: how a batch of answers becomes an
/// endpoint's health, the rate limiter's arithmetic, the filters' checks, and the signature on
/// calls from the gateway to the dispatcher.
struct EventsLogUnitTests {
    @Test func aBatchOfAnswersFoldsIntoOneHealthRowPerEndpoint() {
        typealias O = EndpointHealth.Observation
        let summaries = EndpointHealth.summarize([
            O(endpointId: "a", merchantId: "m", succeeded: false, gone: false),
            O(endpointId: "a", merchantId: "m", succeeded: true, gone: false),
            O(endpointId: "a", merchantId: "m", succeeded: false, gone: false),
            O(endpointId: "a", merchantId: "m", succeeded: false, gone: false),
            O(endpointId: "b", merchantId: "m", succeeded: false, gone: true),
            O(endpointId: "c", merchantId: "n", succeeded: true, gone: false),
        ])
        #expect(summaries["a"] == .init(merchantId: "m", anySuccess: true, trailingFailures: 2, gone: false))
        #expect(summaries["b"] == .init(merchantId: "m", anySuccess: false, trailingFailures: 1, gone: true))
        #expect(summaries["c"] == .init(merchantId: "n", anySuccess: true, trailingFailures: 0, gone: false))
    }

    @Test func theRateLimiterLetsABurstOfOneSecondThroughThenSpacesRequests() {
        let limiter = EndpointRateLimiter()
        let start = ContinuousClock.now
        #expect(limiter.reserve(endpointId: "e", perSecond: 4, now: start) == .zero)
        for _ in 0..<3 { #expect(limiter.reserve(endpointId: "e", perSecond: 4, now: start) == .zero) }
        #expect(limiter.reserve(endpointId: "e", perSecond: 4, now: start) == .milliseconds(250))
        #expect(limiter.reserve(endpointId: "e", perSecond: 4, now: start) == .milliseconds(500))
        // Another endpoint has its own bucket; time refills.
        #expect(limiter.reserve(endpointId: "f", perSecond: 4, now: start) == .zero)
        #expect(limiter.reserve(endpointId: "e", perSecond: 4, now: start + .seconds(2)) == .zero)
    }

    /// Parsed as the HTTP server does: split on & and the first =, values percent-decoded.
    func query(_ text: String) -> Parameters {
        Parameters(text.split(separator: "&").map { pair -> (Substring, Substring) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (parts[0], Substring(value))
        })
    }

    @Test func listFiltersAreCheckedAndNamed() throws {
        let filter = try EventsAPI.filter(query("event_types=payment_succeeded&event_types=refund_succeeded,refund_failed&is_delivered=false&limit=5&offset=10&created_after=2026-11-01T00:00:00Z"))
        #expect(filter.eventTypes == ["payment_succeeded", "refund_succeeded", "refund_failed"])
        #expect(filter.isDelivered == false && filter.limit == 5 && filter.offset == 10 && filter.createdAfter != nil)
        #expect(try EventsAPI.filter(query("")).limit == 20)
        for (text, field) in [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"), ("is_delivered=yes", "is_delivered"),
                              ("event_types=nope", "event_types"), ("event_classes=payment", "event_classes"), ("created_before=2026-13-01T00:00:00Z", "created_before"),
                              ("object_id=a&object_id=b", "object_id"), ("profile_id=\(String(repeating: "p", count: 65))", "profile_id"), ("object_id=%01", "object_id")] {
            #expect(throws: APIError.self, "\(text)") { try EventsAPI.filter(query(text)) }
            do { _ = try EventsAPI.filter(query(text)) } catch let error as APIError { #expect(error.field == field, "\(text)") }
        }
    }

    @Test func recoverReachesBackFourteenDaysAtMost() throws {
        let now = Date()
        func body(_ fields: [String: JSONValue]) -> RequestObject { RequestObject(fields) }
        let since = PaywireJSON.format(now.addingTimeInterval(-13 * 86400))
        let (from, until) = try EventsAPI.recoverWindow(body(["since": .string(since)]), now: now)
        #expect(until == nil && abs(from.timeIntervalSince(now) + 13 * 86400) < 1)
        #expect(throws: APIError.self) { try EventsAPI.recoverWindow(body(["since": .string(PaywireJSON.format(now.addingTimeInterval(-15 * 86400)))]), now: now) }
        #expect(throws: APIError.self) { try EventsAPI.recoverWindow(body(["since": .string(PaywireJSON.format(now.addingTimeInterval(60)))]), now: now) }
        #expect(throws: APIError.self) { try EventsAPI.recoverWindow(body(["since": .string(since), "until": .string(PaywireJSON.format(now.addingTimeInterval(-14 * 86400)))]), now: now) }
        #expect(throws: APIError.self) { try EventsAPI.recoverWindow(body([:]), now: now) }
    }

    @Test func internalCallsAreSignedOverMethodPathTimeAndBody() throws {
        let key = Data(repeating: 3, count: 32).base64EncodedString()
        let signer = try InternalAPISigner(encryptionKey: key)
        let now = Date()
        let body = Array(#"{"since":"2026-11-20T00:00:00Z"}"#.utf8)
        let headers = Dictionary(uniqueKeysWithValues: signer.headers(method: "POST", pathAndQuery: "/internal/events/m/recover", body: body, now: now))
        let signature = headers[InternalAPISigner.signatureHeader], timestamp = headers[InternalAPISigner.timestampHeader]
        #expect(signer.isValid(signature: signature, timestamp: timestamp, method: "POST", pathAndQuery: "/internal/events/m/recover", body: body, now: now))
        // Another merchant, another method, another body, a stale or missing timestamp, another key: refused.
        #expect(!signer.isValid(signature: signature, timestamp: timestamp, method: "POST", pathAndQuery: "/internal/events/n/recover", body: body, now: now))
        #expect(!signer.isValid(signature: signature, timestamp: timestamp, method: "GET", pathAndQuery: "/internal/events/m/recover", body: body, now: now))
        #expect(!signer.isValid(signature: signature, timestamp: timestamp, method: "POST", pathAndQuery: "/internal/events/m/recover", body: body + [0x20], now: now))
        #expect(!signer.isValid(signature: signature, timestamp: timestamp, method: "POST", pathAndQuery: "/internal/events/m/recover", body: body, now: now.addingTimeInterval(301)))
        #expect(!signer.isValid(signature: signature, timestamp: nil, method: "POST", pathAndQuery: "/internal/events/m/recover", body: body, now: now))
        let other = try InternalAPISigner(encryptionKey: Data(repeating: 4, count: 32).base64EncodedString())
        #expect(!other.isValid(signature: signature, timestamp: timestamp, method: "POST", pathAndQuery: "/internal/events/m/recover", body: body, now: now))
        #expect(StrictPercentEncoding.encode("a b/é?&=") == "a%20b%2F%C3%A9%3F%26%3D")
    }
}

struct HexTests {
    @Test func hexIsWhatStringFormatWouldWrite() {
        let bytes: [UInt8] = [0, 1, 0x0f, 0x10, 0x7f, 0x80, 0xab, 0xff]
        #expect(Hex.encode(bytes) == bytes.map { String(format: "%02x", $0) }.joined())
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode(UInt64(0x19abc), digits: 12) == String(format: "%012llx", UInt64(0x19abc)))
        #expect(Hex.encode(UInt64.max, digits: 4) == "ffff")
    }
}
