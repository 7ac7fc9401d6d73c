import Foundation

/// Arbitrary JSON, for payloads and for fields that merchants send free-form (`metadata`).
public enum JSONValue: Codable, Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        // Ordered by how often each kind occurs in Paywire's documents: every failed `try?`
        // builds a DecodingError.
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var intValue: Int? {
        if case .number(let value) = self, value.rounded() == value { return Int(value) }
        return nil
    }

    /// Re-decodes this value as a typed model.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try PaywireJSON.decoder.decode(T.self, from: PaywireJSON.encoder.encode(self))
    }

    public init<T: Encodable>(encoding value: T) throws {
        self = try PaywireJSON.decoder.decode(JSONValue.self, from: PaywireJSON.encoder.encode(value))
    }
}

/// One JSON configuration for every wire format: ISO-8601 dates with milliseconds, sorted keys so
/// that the same object always serialises to the same bytes (signatures depend on it).
public enum PaywireJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(PaywireJSON.format(date))
        }
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = PaywireJSON.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an ISO-8601 date-time")
            }
            return date
        }
        return decoder
    }()

    /// A value as JSON text (for jsonb columns and stored documents).
    public static func text<T: Encodable>(_ value: T) throws -> String {
        if let value = value as? JSONValue { return String(decoding: try JSONTextWriter.bytes(value), as: UTF8.self) }
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The fields of a stored JSON object; empty when the text is not an object.
    public static func fields(of text: String) -> [String: JSONValue] {
        if case .object(let object)? = try? decoder.decode(JSONValue.self, from: Data(text.utf8)) { return object }
        return [:]
    }

    /// `2026-12-06T21:10:05.123Z`: UTC, milliseconds (truncated), as the ISO-8601 format style
    /// writes it — composed by hand, as every payment object and event carries several.
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let fraction = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int) -> String {
            let text = String(value)
            return text.count >= count ? text : String(repeating: "0", count: count - text.count) + text
        }
        return digits(Int(parts.tm_year) + 1900, 4) + "-" + digits(Int(parts.tm_mon) + 1, 2) + "-" + digits(Int(parts.tm_mday), 2)
            + "T" + digits(Int(parts.tm_hour), 2) + ":" + digits(Int(parts.tm_min), 2) + ":" + digits(Int(parts.tm_sec), 2)
            + "." + digits(fraction, 3) + "Z"
    }

    /// The same through the ISO-8601 format style (what `format` reproduces; kept for its test).
    static func formatWithFormatStyle(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)).replacingOccurrences(of: "+0000", with: "Z")
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)) {
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }
}
