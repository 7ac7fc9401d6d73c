import Foundation

/// An `EventEnvelope` read with its payload left as the JSON text it arrived as, for a consumer
/// that passes the payload on rather than reading it (the webhook dispatcher's fan-out): the
/// envelope's fields are decoded, the payload is only checked to be a JSON object. Besides the
/// CPU a decode and re-encode cost, the merchant gets the payload's text unchanged — numbers
/// included, which a `JSONValue` would have carried as `Double`s.
public struct RawEventEnvelope: Sendable, Equatable {
    public var id: String
    public var type: String
    public var occurredAt: Date
    public var merchantId: String
    public var profileId: String?
    public var configurationVersion: Int64?
    /// The payload object's JSON text, as sent.
    public var payloadJSON: [UInt8]
    /// The payload's top-level members that are strings (ids, status), decoded.
    public var payloadStrings: [String: String]

    public static func decode(_ bytes: [UInt8]) throws -> RawEventEnvelope {
        var fields: [String: Range<Int>] = [:]
        for member in try JSONObjectScanner.members(of: bytes) { fields[member.key] = member.value }
        func required(_ key: String) throws -> String {
            guard let range = fields[key], let value = try JSONObjectScanner.string(bytes, range) else { throw missing(key) }
            return value
        }
        func optional(_ key: String) throws -> String? {
            guard let range = fields[key] else { return nil }
            if bytes[range].elementsEqual("null".utf8) { return nil }
            guard let value = try JSONObjectScanner.string(bytes, range) else { throw missing(key) }
            return value
        }
        let occurredText = try required("occurred_at")
        guard let occurredAt = PaywireJSON.parse(occurredText) else { throw missing("occurred_at") }
        guard let payloadRange = fields["payload"] else { throw missing("payload") }
        var index = payloadRange.lowerBound
        var strings: [String: String] = [:]
        for member in try JSONObjectScanner.objectMembers(bytes, &index) {
            strings[member.key] = try JSONObjectScanner.string(bytes, member.value)
        }
        return RawEventEnvelope(
            id: try required("id"), type: try required("type"), occurredAt: occurredAt, merchantId: try required("merchant_id"),
            profileId: try optional("profile_id"), configurationVersion: try fields["configuration_version"].flatMap { try JSONObjectScanner.integer(bytes, $0) },
            payloadJSON: Array(bytes[payloadRange]), payloadStrings: strings
        )
    }

    static func missing(_ key: String) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: "an event envelope needs \(key) of the right type"))
    }
}
