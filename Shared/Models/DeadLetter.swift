import Foundation

/// What a consumer publishes on `paywire.deadletter` for a message it can never process: where
/// the message came from, the message itself (base64, so any bytes survive), and why. The
/// `paywire deadletters` command lists these and replays one to its original topic after a fix.
public struct DeadLetter: Codable, Sendable, Equatable {
    public static let messageType = "deadletter"

    public var originalTopic: String
    public var originalPartition: Int32
    public var originalOffset: Int64
    public var originalKey: String?
    public var originalValue: [UInt8]
    /// The message's headers (its signature among them), so a replay is the message unchanged.
    public var originalHeaders: [String: [UInt8]]
    /// A short category (`undecodable`, `data_exception`, `forged`, …), also the metric's label.
    public var reason: String
    /// What went wrong, without the message's data.
    public var error: String
    public var consumerGroup: String
    public var deadLetteredAt: Date

    public init(
        originalTopic: String, originalPartition: Int32, originalOffset: Int64, originalKey: String?, originalValue: [UInt8],
        reason: String, error: String, consumerGroup: String, deadLetteredAt: Date, originalHeaders: [String: [UInt8]] = [:]
    ) {
        self.originalHeaders = originalHeaders
        self.originalTopic = originalTopic
        self.originalPartition = originalPartition
        self.originalOffset = originalOffset
        self.originalKey = originalKey
        self.originalValue = originalValue
        self.reason = reason
        self.error = error
        self.consumerGroup = consumerGroup
        self.deadLetteredAt = deadLetteredAt
    }

    enum CodingKeys: String, CodingKey {
        case reason, error
        case originalTopic = "original_topic"
        case originalPartition = "original_partition"
        case originalOffset = "original_offset"
        case originalKey = "original_key"
        case originalValue = "original_value_base64"
        case originalHeaders = "original_headers_base64"
        case consumerGroup = "consumer_group"
        case deadLetteredAt = "dead_lettered_at"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        originalTopic = try container.decode(String.self, forKey: .originalTopic)
        originalPartition = try container.decode(Int32.self, forKey: .originalPartition)
        originalOffset = try container.decode(Int64.self, forKey: .originalOffset)
        originalKey = try container.decodeIfPresent(String.self, forKey: .originalKey)
        guard let value = Data(base64Encoded: try container.decode(String.self, forKey: .originalValue)) else {
            throw DecodingError.dataCorruptedError(forKey: .originalValue, in: container, debugDescription: "not base64")
        }
        originalValue = Array(value)
        let headers = try container.decodeIfPresent([String: String].self, forKey: .originalHeaders) ?? [:]
        originalHeaders = headers.compactMapValues { Data(base64Encoded: $0).map(Array.init) }
        reason = try container.decode(String.self, forKey: .reason)
        error = try container.decode(String.self, forKey: .error)
        consumerGroup = try container.decode(String.self, forKey: .consumerGroup)
        deadLetteredAt = try container.decode(Date.self, forKey: .deadLetteredAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(originalTopic, forKey: .originalTopic)
        try container.encode(originalPartition, forKey: .originalPartition)
        try container.encode(originalOffset, forKey: .originalOffset)
        try container.encodeIfPresent(originalKey, forKey: .originalKey)
        try container.encode(Data(originalValue).base64EncodedString(), forKey: .originalValue)
        if !originalHeaders.isEmpty {
            try container.encode(originalHeaders.mapValues { Data($0).base64EncodedString() }, forKey: .originalHeaders)
        }
        try container.encode(reason, forKey: .reason)
        try container.encode(error, forKey: .error)
        try container.encode(consumerGroup, forKey: .consumerGroup)
        try container.encode(deadLetteredAt, forKey: .deadLetteredAt)
    }
}
