import Foundation
import PaywireModels
import PaywireRuntime
import PaywireStore
import Testing
@testable import Gateway
import PaymentCore

/// The rules that keep bad input at the edge, each on its own.
@Suite struct InputValidationTests {
    func refusal(_ body: () throws -> Void) -> APIError? {
        do {
            try body()
            return nil
        } catch let error as APIError {
            return error
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func textWithNULIsRefusedNamingTheFieldWhereverItSits() {
        let value: JSONValue = .object([
            "fine": .string("ok"),
            "metadata": .object(["list": .array([.string("a"), .string("b\u{0}")])]),
        ])
        #expect(refusal { try InputText.check(value, path: "") }?.field == "metadata.list[1]")
        #expect(refusal { try InputText.check(.object(["m": .object(["k\u{0}y": .null])]), path: "") }?.field == "m.k\\u0000y")
        #expect(refusal { try InputText.check(.object(["a": .string("é ✓ \t\n")]), path: "") } == nil)
        #expect(refusal { try InputText.checkIdentifierText("pay_\u{7}", field: "payment_id") }?.field == "payment_id")
        #expect(refusal { try InputText.checkIdentifierText("pay_ok-1", field: "payment_id") } == nil)
    }

    @Test func integersOutOfRangeAreToldTheRangeHoweverLarge() {
        let body = RequestObject(["amount": .number(9e16), "small": .number(0), "frac": .number(1.5), "fine": .number(42)])
        #expect(refusal { _ = try body.integer("amount", range: 1...InputLimits.maxAmount) }?.message == "must not be more than 99999999999")
        #expect(refusal { _ = try body.integer("small", range: 1...10) }?.message == "must not be less than 1")
        #expect(refusal { _ = try body.integer("frac", range: 1...10) }?.message == "must be an integer")
        #expect((try? body.integer("fine", range: 1...100)) == 42)
    }

    @Test func freeFormFieldsAreCappedInAll() {
        let big = String(repeating: "x", count: InputLimits.freeFormBytes / 2)
        let body = RequestObject(["amount": .number(1), "metadata": .object(["a": .string(big)]), "description": .string(big)])
        #expect(refusal { try body.checkFreeFormSize(except: ["amount"], field: "metadata") }?.field == "metadata")
        #expect(refusal { try RequestObject(["metadata": .object(["a": .string(big)])]).checkFreeFormSize(except: [], field: "metadata") } == nil)
        // The largest message a service can produce fits the default broker limit with room.
        #expect(InputLimits.largestDeadLetterBytes < 1_000_000)
    }

    @Test func currenciesAreISO4217WithTheirMinorUnits() {
        #expect(Currency.minorUnits("USD") == 2)
        #expect(Currency.minorUnits("JPY") == 0)
        #expect(Currency.minorUnits("KWD") == 3)
        for code in ["ZZZ", "XXX", "BTC", "XTS", "XAU", "usd", "US", ""] { #expect(Currency.minorUnits(code) == nil, "\(code)") }
        #expect(Currency.codes.count > 150 && Currency.codes == Currency.codes.sorted())
    }

    @Test func customHeadersFollowHTTPAndNeverReplaceOursOrTheConnections() {
        #expect(CustomWebhookHeaders.problem(name: "X-Tenant", value: "acme-1") == nil)
        #expect(CustomWebhookHeaders.problem(name: "Authorization", value: "Bearer abc def") == nil)
        for name in ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "x-webhook-signature-512", "Webhook-Id", "webhook-anything", "Proxy-Foo", "User-Agent", "Content-Type"] {
            #expect(CustomWebhookHeaders.problem(name: name, value: "v") != nil, "\(name)")
        }
        for name in ["", "Bad Name", "X:Y", "X\u{0}", "Ünicode"] {
            #expect(CustomWebhookHeaders.problem(name: name, value: "v") == "is not a valid HTTP header name", "\(name)")
        }
        for value in ["a\r\nX-Injected: 1", "a\nb", "a\u{0}b", "a\u{7F}", " padded", "padded\t"] {
            #expect(CustomWebhookHeaders.problem(name: "X-Ok", value: value) != nil, "\(value.debugDescription)")
        }
        #expect(CustomWebhookHeaders.problem(name: "X-Ok", value: String(repeating: "v", count: 1025)) != nil)
    }

    @Test func webhookURLsAreAbsoluteHTTPWithoutCredentials() throws {
        let label63 = String(repeating: "a", count: 63)
        let accepted = ["https://example.com/hooks", "http://127.0.0.1:9/", "HTTPS://a.b:8443/x?y=1#z", "http://h", "http://127.0.0.1:40123/odd", "http://h:65535",
                        "http://h:1", "http://example.com./x", "http://\(label63).example/", "http://xn--bcher-kva.example/", "http://a-b.c0/",
                        "http://[2001:4860:4860::8888]/hook", "https://[::1]:8443", "http://[::ffff:192.0.2.1]/", "http://1.2.3.example/"]
        let pattern = try Regex(Validation.urlPattern)
        for url in accepted {
            #expect(refusal { try Validation.webhookURL(url, field: "webhook_url") } == nil, "\(url)")
            // The OpenAPI document's pattern allows all the server allows.
            #expect((try? pattern.wholeMatch(in: url)) != nil, "\(url)")
        }
        let refused = ["ftp://example.com", "https://user:pass@example.com/", "http://", "example.com", "https://exa mple.com", "https://a.b/\u{0}", "https://a.b:123456/", "https://a.b:65536/",
                       "http://127.0.0.1:0", "http://h:0/", "http://h:080", "http://h:", "http://.", "http://a..b", "http://.a", "http://..", "http://a.b..",
                       "http://\(label63)a.example/", "http://\(Array(repeating: label63, count: 4).joined(separator: "."))/", "http://-a.com", "http://a-.com", "http://a_b.com",
                       "http://256.0.0.1", "http://1.2.3.4.5", "http://1.2.3.08", "http://0x100.0.0.1", "http://4294967296", "http://1.2.3.256",
                       "http://[::1", "http://[zz::1]/", "http://[fe80::1%25eth0]/", "http://[::1]x/", "http://[::1]:0/", "http://::1/", "http://[1.2.3.4]/"]
        for url in refused {
            #expect(refusal { try Validation.webhookURL(url, field: "webhook_url") }?.field == "webhook_url", "\(url)")
        }
        // Every spelling inet_aton reads as an address is one, refused with the address it spells.
        for (url, address) in [("http://0177.0.0.1/", "127.0.0.1"), ("http://2130706433", "127.0.0.1"), ("http://0x7f.0.0.1", "127.0.0.1"), ("http://127.1", "127.0.0.1"),
                               ("http://0x7F000001:80/", "127.0.0.1"), ("http://10.1.0x10/", "10.1.0.16"), ("http://8.8.8.8./", "8.8.8.8"), ("http://010.0.0.1", "8.0.0.1")] {
            let error = refusal { try Validation.webhookURL(url, field: "webhook_url") }
            #expect(error?.field == "webhook_url" && error?.message.hasSuffix(" is \(address)") == true, "\(url): \(String(describing: error?.message))")
        }
        #expect(try HTTPTargetURL.parse("http://8.8.8.8:8080/x").host == .ipv4([8, 8, 8, 8]))
        #expect(try HTTPTargetURL.parse("http://[2001:db8::1]/").hostText == "2001:db8::1")
        #expect(NetworkAddressPolicy.refusal(forLiteral: "0x7f.0.0.1") != nil && NetworkAddressPolicy.refusal(forLiteral: "2130706433") != nil)
        #expect(NetworkAddressPolicy.refusal(forLiteral: "[fd12::1]") != nil && NetworkAddressPolicy.refusal(forLiteral: "2001:4860:4860::8888") == nil)
    }

    @Test func rfc3339DateTimesAsJSONSchemaMeansThem() {
        #expect(RFC3339.parse("2030-01-02T03:04:05Z") == Date(timeIntervalSince1970: 1_893_553_445))
        #expect(RFC3339.parse("2030-01-02t05:04:05.5+02:00") == Date(timeIntervalSince1970: 1_893_553_445.5))
        #expect(RFC3339.parse("2028-02-29T00:00:00z") != nil)
        for text in ["2030-02-30T00:00:00Z", "2030-13-01T00:00:00Z", "2030-01-01T24:00:00Z", "2030-01-01 00:00:00Z", "2030-01-01T00:00:00", "never", ""] {
            #expect(RFC3339.parse(text) == nil, "\(text)")
        }
    }

    @Test func aKnownPathWithAnotherMethodIsTheRouteTheRouterWouldPick() {
        let routes = RouteTable([
            (path: "/api_keys/:merchant_id/list", method: "GET"),
            (path: "/api_keys/:merchant_id/:key_id", method: "GET"),
            (path: "/api_keys/:merchant_id/:key_id", method: "DELETE"),
            (path: "/payments", method: "POST"),
        ])
        #expect(routes.methods(for: "/api_keys/m1/list") == ["GET"])
        #expect(routes.methods(for: "/api_keys/m1/dev_1") == ["GET", "DELETE"])
        #expect(routes.methods(for: "/payments") == ["POST"])
        #expect(routes.methods(for: "/nowhere") == nil)
    }

    @Test func failuresRetryingCannotCureArePoison() {
        #expect(MessageFailure.classify(sqlState: "22P05") == .poison(reason: "data_exception", detail: "PostgreSQL refused the data (SQLSTATE 22P05)"))
        if case .poison(let reason, _) = MessageFailure.classify(sqlState: "23503") { #expect(reason == "integrity_violation") } else { Issue.record("23503") }
        for transient in ["40001", "40P01", "57P01", "08006", "53300"] { #expect(MessageFailure.classify(sqlState: transient) == .transient, "\(transient)") }
        #expect(MessageFailure.classify(CancellationError()) == .transient)
        struct Shape: Decodable { var x: Int }
        #expect(throws: DecodingError.self) { _ = try JSONDecoder().decode(Shape.self, from: Data("{}".utf8)) }
        do {
            _ = try JSONDecoder().decode(Shape.self, from: Data("{}".utf8))
        } catch {
            #expect(MessageFailure.classify(error) == .poison(reason: "undecodable", detail: "the message could not be decoded"))
        }
    }

    @Test func aDeadLetterCarriesTheOriginalBytesAndReadsBack() throws {
        let letter = DeadLetter(
            originalTopic: "paywire.payment.commands", originalPartition: 3, originalOffset: 42, originalKey: "pay_1",
            originalValue: [0, 1, 2, 255], reason: "undecodable", error: "the message could not be decoded",
            consumerGroup: "payment-core", deadLetteredAt: Date(timeIntervalSince1970: 1_800_000_000)
        )
        let envelope = EventEnvelope(type: DeadLetter.messageType, merchantId: "", payload: try JSONValue(encoding: letter))
        let decoded = try EventEnvelope.decode(try envelope.encoded()).payload.decode(DeadLetter.self)
        #expect(decoded == letter)
    }

    @Test func whatComesFromOutsideIsStoredWhateverItsBytes() {
        #expect("200 ok\u{0}bye".storable == "200 ok\u{FFFD}bye")
        #expect("plain".storable == "plain")
        let decline = ConnectorDecline(code: "card_declined", message: "no\u{0}pe", rawCode: "r\u{0}")
        #expect(decline.message == "no\u{FFFD}pe" && decline.rawCode == "r\u{FFFD}")
        let result = ConnectorResult(status: .pending, connectorTransactionId: "pi_\u{0}")
        #expect(result.connectorTransactionId == "pi_\u{FFFD}")
    }

    @Test func aKeyRepeatedInAnObjectIsNamedWherePathItStands() {
        func repeated(_ text: String) -> String? { DuplicateJSONKeys.firstRepeated(in: Data(text.utf8)) }
        #expect(repeated(#"{"amount": 1000, "amount": 5}"#) == "amount")
        #expect(repeated(#"{"amount": 1000, "\u0061mount": 5}"#) == "amount", "escapes resolved before comparing")
        #expect(repeated(#"{"billing": {"address": {"city": "A", "city": "B"}}}"#) == "billing.address.city")
        #expect(repeated(#"{"items": [{"name": "a"}, {"name": "b", "name": "c"}]}"#) == "items[1].name")
        // The same key in sibling objects, in strings, or as a value is not a repeat.
        #expect(repeated(#"{"a": {"x": 1}, "b": {"x": 2}, "c": ["x", "x"], "d": "{\"x\": 1, \"x\": 2}", "e": "e"}"#) == nil)
        #expect(repeated(#"[{"x": 1}, {"x": 1}]"#) == nil)
    }
}
