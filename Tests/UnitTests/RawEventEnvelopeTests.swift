import Foundation
import PaywireModels
import Testing
@testable import WebhookDispatcher

/// The fan-out reads events with their payload left as text (`RawEventEnvelope`, over
/// `JSONObjectScanner`) and writes it into each body as it came. Held here to the decoder it
/// replaced: the same fields, the same body bytes for everything a Paywire service sends, and
/// refusal of everything that is not JSON.
@Suite struct RawEventEnvelopeTests {
    static let payloads: [JSONValue] = [
        .object(["payment_id": .string("pay_1"), "status": .string("succeeded"), "amount": .number(6540), "currency": .string("USD")]),
        .object([
            "payment_id": .string("pay_2"), "description": .string("quote \" backslash \\ slash / newline \n tab \t bell \u{07} é 𝄞 <script>"),
            "metadata": .object(["nested": .array([.number(-1.5), .number(0), .number(1e21), .bool(true), .bool(false), .null, .object([:]), .array([])])]),
            "error_code": .null, "amount_received": .number(123_456_789_012), "ratio": .number(0.1),
        ]),
        .object(["refund_id": .string("ref_1"), "payment_id": .string("pay_3"), "": .string("empty key"), "ünïcödé": .string("\u{0}\u{1F}")]),
    ]

    @Test func everyFieldAndThePayloadTextMatchTheDecoderItReplaces() throws {
        for (index, payload) in Self.payloads.enumerated() {
            let envelope = EventEnvelope(type: "payment_succeeded", occurredAt: Date(timeIntervalSince1970: 1_765_000_000.123 + Double(index)), merchantId: "merchant_\(index)",
                                         profileId: index == 0 ? nil : "pro_\(index)", correlationId: "c", configurationVersion: index == 1 ? nil : Int64(index * 7), payload: payload)
            let bytes = try envelope.encoded()
            let raw = try RawEventEnvelope.decode(bytes)
            let decoded = try EventEnvelope.decode(bytes)
            #expect(raw.id == decoded.id && raw.type == decoded.type && raw.merchantId == decoded.merchantId && raw.profileId == decoded.profileId)
            #expect(raw.occurredAt == decoded.occurredAt && raw.configurationVersion == decoded.configurationVersion)
            #expect(raw.payloadJSON == (try JSONTextWriter.bytes(decoded.payload)))
            guard case .object(let fields) = decoded.payload else { Issue.record("not an object"); continue }
            #expect(raw.payloadStrings == fields.compactMapValues(\.stringValue))

            // The body: byte for byte what the JSONValue path writes.
            let viaValue = try OutgoingWebhook.body(merchantId: raw.merchantId, eventId: "evt_1", eventType: raw.type, object: decoded.payload, timestamp: decoded.occurredAt)
            let viaText = OutgoingWebhook.body(merchantId: raw.merchantId, eventId: "evt_1", eventType: raw.type, objectJSON: raw.payloadJSON, timestamp: raw.occurredAt)
            #expect(viaText == viaValue)
            #expect((try? JSONSerialization.jsonObject(with: Data(viaText.utf8))) != nil)
        }
    }

    @Test func numbersAndWhitespaceFromOtherProducersPassUnchanged() throws {
        // An integer past 2^53, which a Double would have rounded, and another writer's spacing.
        let text = #"{ "id" : "m1", "type":"payment_succeeded", "occurred_at":"2026-12-07T03:00:00.000Z", "merchant_id":"m", "profile_id": null, "configuration_version": null, "payload" : { "payment_id" : "pay_\u0041", "amount": 9007199254740993 } }"#
        let raw = try RawEventEnvelope.decode(Array(text.utf8))
        #expect(raw.profileId == nil && raw.configurationVersion == nil)
        #expect(String(decoding: raw.payloadJSON, as: UTF8.self) == #"{ "payment_id" : "pay_\u0041", "amount": 9007199254740993 }"#)
        #expect(raw.payloadStrings["payment_id"] == "pay_A")
    }

    @Test func anythingThatIsNotAnEnvelopeObjectIsRefused() {
        let good = #"{"id":"m1","type":"t","occurred_at":"2026-12-07T03:00:00.000Z","merchant_id":"m","payload":{"payment_id":"p"}}"#
        #expect((try? RawEventEnvelope.decode(Array(good.utf8))) != nil)
        func replacing(_ target: String, _ replacement: String) -> String { good.replacingOccurrences(of: target, with: replacement) }
        func withMember(_ member: String) -> String { replacing(#""p"}"#, #""p","# + member + "}") }
        var texts: [String] = ["", "{", "[]", "null", good + "x", replacing("}}", "}")]
        texts.append(replacing(#""payload":{"payment_id":"p"}"#, #""payload":["p"]"#))
        texts.append(replacing(#""id":"m1""#, #""id":1"#))
        texts.append(replacing(#","merchant_id":"m""#, ""))
        texts.append(replacing("2026-12-07T03:00:00.000Z", "yesterday"))
        let badMembers: [String] = [
            #""n":01"#, #""n":1."#, #""n":-"#, #""n":1e"#, #""n":tru"#, #""n":"\x""#, #""n":"\ud800""#, #""n":"\udc00\ud800""#,
            "\"n\":\"a\nb\"", #""n":[1,]"#, #""n":{"a"}"#, #""n" 1"#,
        ]
        texts += badMembers.map(withMember)
        texts.append(replacing(#""p"}"#, #""p",}"#))
        texts.append(withMember(#""n":"# + String(repeating: "[", count: 300) + String(repeating: "]", count: 300)))
        var cases: [[UInt8]] = texts.map { Array($0.utf8) }
        var invalidUTF8 = Array(good.utf8)
        invalidUTF8[invalidUTF8.count - 4] = 0xFF
        cases.append(invalidUTF8)
        for bytes in cases {
            #expect(throws: DecodingError.self, "\(String(decoding: bytes, as: UTF8.self).prefix(120))") { try RawEventEnvelope.decode(bytes) }
        }
    }

    @Test func whatTheScannerAcceptsFoundationAcceptsToo() throws {
        // Every prefix of a document that exercises each grammar rule: accepted only when whole.
        let document = #"{"a":[1,-2.5e+3,0.0,true,false,null,{"b":"\"\\\/\b\f\n\r\t\u00e9\ud834\udd1e"}],"c":{},"d":[]}"#
        let bytes = Array(document.utf8)
        #expect(try JSONObjectScanner.members(of: bytes).map(\.key) == ["a", "c", "d"])
        #expect((try? JSONSerialization.jsonObject(with: Data(bytes))) != nil)
        for length in 0..<bytes.count {
            #expect(throws: DecodingError.self) { try JSONObjectScanner.members(of: Array(bytes[..<length])) }
        }
        let members = try JSONObjectScanner.members(of: bytes)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let nested = try #require(((object["a"] as? [Any])?[6] as? [String: Any])?["b"] as? String)
        var index = try #require(members.first?.value.lowerBound) + 1
        // Walk to the string inside the array's object and read it as the scanner does.
        while bytes[index] != UInt8(ascii: "{") { index += 1 }
        let inner = try JSONObjectScanner.objectMembers(bytes, &index)
        #expect(try JSONObjectScanner.string(bytes, inner[0].value) == nested)
    }
}
