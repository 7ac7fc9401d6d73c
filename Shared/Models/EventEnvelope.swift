import Foundation

/// Every Kafka message Paywire sends. `id` is unique per message and is what consumers dedupe on;
/// a message re-sent after a crash carries the same `id`.
public struct EventEnvelope: Codable, Sendable, Equatable {
    public var id: String
    public var type: String
    public var occurredAt: Date
    public var merchantId: String
    public var profileId: String?
    public var correlationId: String?
    /// The merchant's configuration version the message was made under: a consumer with its own
    /// copy of the configuration handles it only once that copy has reached this version.
    public var configurationVersion: Int64?
    public var payload: JSONValue

    public init(
        id: String = UUID().uuidString.lowercased(),
        type: String,
        occurredAt: Date = Date(),
        merchantId: String,
        profileId: String? = nil,
        correlationId: String? = nil,
        configurationVersion: Int64? = nil,
        payload: JSONValue
    ) {
        self.configurationVersion = configurationVersion
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.merchantId = merchantId
        self.profileId = profileId
        self.correlationId = correlationId
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey {
        case id, type, payload
        case occurredAt = "occurred_at"
        case merchantId = "merchant_id"
        case profileId = "profile_id"
        case correlationId = "correlation_id"
        case configurationVersion = "configuration_version"
    }

    /// The envelope as `PaywireJSON.encoder` writes it (keys sorted, absent optionals left
    /// out), written directly: every message a service sends is one.
    public func encoded() throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        func key(_ name: String) {
            output.append(output.isEmpty ? UInt8(ascii: "{") : UInt8(ascii: ","))
            JSONTextWriter.write(string: name, into: &output)
            output.append(UInt8(ascii: ":"))
        }
        if let configurationVersion {
            key("configuration_version")
            output.append(contentsOf: String(configurationVersion).utf8)
        }
        if let correlationId {
            key("correlation_id")
            JSONTextWriter.write(string: correlationId, into: &output)
        }
        key("id")
        JSONTextWriter.write(string: id, into: &output)
        key("merchant_id")
        JSONTextWriter.write(string: merchantId, into: &output)
        key("occurred_at")
        JSONTextWriter.write(string: PaywireJSON.format(occurredAt), into: &output)
        key("payload")
        try JSONTextWriter.write(payload, into: &output)
        if let profileId {
            key("profile_id")
            JSONTextWriter.write(string: profileId, into: &output)
        }
        key("type")
        JSONTextWriter.write(string: type, into: &output)
        output.append(UInt8(ascii: "}"))
        return output
    }

    public static func decode(_ bytes: [UInt8]) throws -> EventEnvelope {
        try PaywireJSON.decoder.decode(EventEnvelope.self, from: Data(bytes))
    }
}

/// An envelope whose payload is decoded straight into its model, for consumers that know what
/// a topic carries: one decode instead of JSON → `JSONValue` → JSON → model.
public struct TypedEnvelope<Payload: Decodable & Sendable>: Decodable, Sendable {
    public var id: String
    public var type: String
    public var merchantId: String
    public var correlationId: String?
    public var configurationVersion: Int64?
    public var payload: Payload

    enum CodingKeys: String, CodingKey {
        case id, type, payload
        case merchantId = "merchant_id"
        case correlationId = "correlation_id"
        case configurationVersion = "configuration_version"
    }

    public static func decode(_ bytes: [UInt8]) throws -> TypedEnvelope {
        try PaywireJSON.decoder.decode(TypedEnvelope.self, from: Data(bytes))
    }
}
