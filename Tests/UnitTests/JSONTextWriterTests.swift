import Foundation
@testable import PaywireModels
import Testing

/// The hand-written JSON writer and date format produce exactly the bytes the Foundation encoder
/// and the ISO-8601 format style produce, for the values Paywire writes and for random ones.
@Suite struct JSONTextWriterTests {
    static let samples: [JSONValue] = [
        .null, .bool(true), .bool(false), .number(0), .number(-1), .number(6540), .number(1.5), .number(0.1), .number(-0.25),
        .number(1e15), .number(1e16), .number(999_999_999_999_999), .number(123_456_789_012_345.6), .number(1e-7), .number(-3e21),
        .string(""), .string("plain"), .string("quote \" backslash \\ slash / tab \t newline \n return \r bell \u{7} nul \u{0} unit \u{1f}"),
        .string("€ ünïcödé 日本 🙂 \u{2028}"), .array([]), .object([:]),
        .object(["b": .number(2), "a": .array([.string("x"), .null, .object(["z": .bool(true), "Z": .number(1), "é": .string("e"), "e": .string("é")])])]),
        .object(["payment_id": .string("pay_1"), "amount": .number(6540), "metadata": .object(["order": .string("a/b")]), "created": .string("2026-12-06T21:10:05.123Z")]),
    ]

    @Test func writesWhatTheEncoderWrites() throws {
        for value in Self.samples {
            #expect(try JSONTextWriter.bytes(value) == Array(PaywireJSON.encoder.encode(value)), "\(value)")
            #expect(try PaywireJSON.text(value) == String(decoding: PaywireJSON.encoder.encode(value), as: UTF8.self))
        }
    }

    @Test func randomDocumentsToo() throws {
        var generator = SeededGenerator(seed: 20261206)
        for _ in 0..<500 {
            let value = Self.random(depth: 0, using: &generator)
            #expect(try JSONTextWriter.bytes(value) == Array(PaywireJSON.encoder.encode(value)), "\(value)")
        }
    }

    @Test func refusesWhatJSONCannotHold() {
        #expect(throws: JSONTextWriter.NotRepresentable.self) { try JSONTextWriter.bytes(.number(.nan)) }
        #expect(throws: JSONTextWriter.NotRepresentable.self) { try JSONTextWriter.bytes(.array([.number(.infinity)])) }
    }

    @Test func envelopesAsTheEncoderWritesThem() throws {
        let full = EventEnvelope(id: "e1", type: "payment_succeeded", occurredAt: Date(timeIntervalSince1970: 1_765_055_405.123), merchantId: "m/1",
                                 profileId: "pro_1", correlationId: "c\"1", configurationVersion: 42, payload: Self.samples.last!)
        let bare = EventEnvelope(type: "payment_command", merchantId: "m", payload: .object([:]))
        for envelope in [full, bare] {
            #expect(try envelope.encoded() == Array(PaywireJSON.encoder.encode(envelope)))
            #expect(try EventEnvelope.decode(envelope.encoded()) == EventEnvelope.decode(Array(PaywireJSON.encoder.encode(envelope))))
        }
    }

    @Test func datesAsTheFormatStyleWritesThem() {
        var generator = SeededGenerator(seed: 7)
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_765_055_405.999_9), Date(timeIntervalSince1970: 951_782_400.5), Date()]
        for _ in 0..<2000 { dates.append(Date(timeIntervalSince1970: Double.random(in: 0...4_102_444_800, using: &generator))) }
        for date in dates {
            #expect(PaywireJSON.format(date) == PaywireJSON.formatWithFormatStyle(date), "\(date.timeIntervalSince1970)")
        }
    }

    static func random(depth: Int, using generator: inout SeededGenerator) -> JSONValue {
        let kind = Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &generator)
        switch kind {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2:
            let choices: [Double] = [Double(Int.random(in: -1_000_000...1_000_000, using: &generator)), Double.random(in: -1e6...1e6, using: &generator),
                                     Double.random(in: -1e20...1e20, using: &generator), Double.random(in: -1e-6...1e-6, using: &generator)]
            return .number(choices[Int.random(in: 0..<choices.count, using: &generator)])
        case 3:
            let alphabet = Array("abc XYZ/\\\"\n\t\u{1}é€🙂_-:.")
            return .string(String((0..<Int.random(in: 0..<12, using: &generator)).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }))
        case 4: return .array((0..<Int.random(in: 0..<5, using: &generator)).map { _ in random(depth: depth + 1, using: &generator) })
        default:
            var fields: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0..<5, using: &generator) {
                fields[["id", "amount", "Amount", "é", "a_b", "z", "payment_id", "1"][Int.random(in: 0..<8, using: &generator)]] = random(depth: depth + 1, using: &generator)
            }
            return .object(fields)
        }
    }
}

/// A small deterministic generator (SplitMix64), so a failure is reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
