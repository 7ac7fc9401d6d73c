import Foundation
import Hummingbird
import PaywireModels

/// A JSON request body read field by field, so every type error names its field
/// (`webhook_details.multiple_webhooks_list[1].events[0]`). Unknown fields are kept, not refused:
/// merchants move over with payloads written for Hyperswitch.
public struct RequestObject: Sendable {
    public let fields: [String: JSONValue]
    public let path: String

    public init(_ fields: [String: JSONValue], path: String = "") {
        self.fields = fields
        self.path = path
    }

    public static func read(from request: Request, context: some RequestContext) async throws -> RequestObject {
        let bytes = Data(buffer: try await body(of: request, context: context))
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return RequestObject([:]) }
        guard let value = try? PaywireJSON.decoder.decode(JSONValue.self, from: TrailingCommas.removed(from: bytes)) else {
            throw APIError.invalid("body", "is not valid JSON")
        }
        guard case .object(let fields) = value else { throw APIError.invalid("body", "must be a JSON object") }
        if let repeated = DuplicateJSONKeys.firstRepeated(in: bytes) {
            throw APIError.invalid(repeated, "appears more than once in its object; send each field once")
        }
        try InputText.check(value, path: "")
        return RequestObject(fields)
    }

    /// The raw body, refused with 413 past the context's limit.
    /// A client that sends its body slower than this is cut off with 408, so a trickle cannot
    /// hold a handler (and what it has claimed) open.
    public static let bodyReadTimeout = Duration.seconds(30)

    public static func body(of request: Request, context: some RequestContext) async throws -> ByteBuffer {
        let limit = context.maxUploadSize
        let body = request.body
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await body.collect(upTo: limit) }
                group.addTask {
                    try await Task.sleep(for: bodyReadTimeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let buffer = first else {
                    throw APIError(status: .requestTimeout, type: "invalid_request", code: "IR_41", message: "The request body did not arrive within \(bodyReadTimeout)", field: "body")
                }
                return buffer
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(status: .contentTooLarge, type: "invalid_request", code: "IR_40", message: "The request body is larger than \(limit) bytes", field: "body")
        }
    }

    public func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func has(_ key: String) -> Bool { fields[key] != nil }

    /// Present and not null.
    public func isSet(_ key: String) -> Bool {
        if let value = fields[key], value != .null { return true }
        return false
    }

    public func string(_ key: String, maxLength: Int = 2048) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let value)?:
            guard value.count <= maxLength else { throw APIError.invalid(name(key), "must be at most \(maxLength) characters") }
            return value
        default: throw APIError.invalid(name(key), "must be a string")
        }
    }

    public func requiredString(_ key: String, maxLength: Int = 2048) throws -> String {
        guard let value = try string(key, maxLength: maxLength) else { throw APIError.invalid(name(key), "is required", code: "IR_05") }
        return value
    }

    public func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw APIError.invalid(name(key), "must be a boolean")
        }
    }

    public func integer(_ key: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        switch fields[key] {
        case nil, .null?: return nil
        case .number(let value)?:
            guard value.rounded() == value, value.isFinite else { throw APIError.invalid(name(key), "must be an integer") }
            // Out-of-range numbers are told the range, however large they are.
            if let range {
                if value < Double(range.lowerBound) { throw APIError.invalid(name(key), "must not be less than \(range.lowerBound)") }
                if value > Double(range.upperBound) { throw APIError.invalid(name(key), "must not be more than \(range.upperBound)") }
            }
            guard abs(value) < 9e15 else { throw APIError.invalid(name(key), "must be between -9000000000000000 and 9000000000000000") }
            return Int(value)
        default: throw APIError.invalid(name(key), "must be an integer")
        }
    }

    public func object(_ key: String) throws -> RequestObject? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let value)?: return RequestObject(value, path: name(key))
        default: throw APIError.invalid(name(key), "must be an object")
        }
    }

    public func array(_ key: String) throws -> [JSONValue]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let value)?: return value
        default: throw APIError.invalid(name(key), "must be an array")
        }
    }

    public func objects(_ key: String) throws -> [RequestObject]? {
        try array(key).map { items in
            try items.enumerated().map { index, item in
                guard case .object(let fields) = item else { throw APIError.invalid("\(name(key))[\(index)]", "must be an object") }
                return RequestObject(fields, path: "\(name(key))[\(index)]")
            }
        }
    }

    public func strings(_ key: String) throws -> [String]? {
        try array(key).map { items in
            try items.enumerated().map { index, item in
                guard case .string(let value) = item else { throw APIError.invalid("\(name(key))[\(index)]", "must be a string") }
                return value
            }
        }
    }

    /// The encoded size of the free-form fields named (or of every field not in `except`), refused
    /// past `InputLimits.freeFormBytes` so that events carrying them stay far below the broker's
    /// message limit.
    public func checkFreeFormSize(except interpreted: Set<String>, field: String) throws {
        var total = 0
        for (key, value) in fields where !interpreted.contains(key) {
            total += key.utf8.count + ((try? PaywireJSON.encoder.encode(value).count) ?? 0)
        }
        guard total <= InputLimits.freeFormBytes else {
            throw APIError.invalid(field, "free-form fields take \(total) bytes; at most \(InputLimits.freeFormBytes) are kept")
        }
    }

    /// A free-form object (`metadata`), stored as given.
    public func anyObject(_ key: String) throws -> JSONValue? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object?: return fields[key]
        default: throw APIError.invalid(name(key), "must be an object")
        }
    }
}

/// Sizes the API holds requests to, stated in the README and the OpenAPI document.
public enum InputLimits {
    /// Free-form fields of one request (metadata, description, customer, billing, …) in all.
    public static let freeFormBytes = 65_536
    /// The largest amount in minor units (as Hyperswitch: 99,999,999,999 — just under a
    /// billion in a two-decimal currency).
    public static let maxAmount = 99_999_999_999
    /// Webhook endpoints one business profile may have (deprecated ones included: they are
    /// final and kept for the delivery history).
    public static let endpointsPerProfile = 20
    /// The largest Kafka message a service produces: free-form fields travel at most three times
    /// over in one message (a command's details, an event's object), plus the fixed fields.
    public static let largestMessageBytes = 3 * freeFormBytes + 32_768
    /// A dead letter carries the original in base64 (4/3 of its size) and its own fields.
    public static let largestDeadLetterBytes = largestMessageBytes * 4 / 3 + 4_096
}

/// Text that PostgreSQL cannot store (`\u0000` in text and jsonb) is refused at the edge, naming
/// the field, so it can never reach a consumer that would fail on it over and over.
public enum InputText {
    public static func containsNUL(_ text: some StringProtocol) -> Bool {
        text.utf8.contains(0)
    }

    public static func check(_ value: JSONValue, path: String) throws {
        switch value {
        case .string(let text):
            if containsNUL(text) { throw APIError.invalid(path.isEmpty ? "body" : path, "must not contain NUL characters (\\u0000)") }
        case .array(let items):
            for (index, item) in items.enumerated() { try check(item, path: "\(path)[\(index)]") }
        case .object(let fields):
            for (key, item) in fields {
                let printable = key.replacingOccurrences(of: "\u{0}", with: "\\u0000")
                let name = path.isEmpty ? printable : "\(path).\(printable)"
                if containsNUL(key) { throw APIError.invalid(name, "field names must not contain NUL characters (\\u0000)") }
                try check(item, path: name)
            }
        case .null, .bool, .number:
            return
        }
    }
}

/// Removes commas that directly precede `]` or `}` outside strings. Hyperswitch's own examples
/// carry them (seed 004's profile update), and merchants paste those.
public enum TrailingCommas {
    public static func removed(from data: Data) -> Data {
        var output = [UInt8]()
        output.reserveCapacity(data.count)
        var inString = false
        var escaped = false
        var pendingComma: Int?
        for byte in data {
            if inString {
                output.append(byte)
                if escaped { escaped = false } else if byte == 0x5C { escaped = true } else if byte == 0x22 { inString = false }
                continue
            }
            switch byte {
            case 0x22:
                pendingComma = nil
                inString = true
                output.append(byte)
            case 0x2C:
                pendingComma = output.count
                output.append(byte)
            case 0x5D, 0x7D:
                if let comma = pendingComma { output.remove(at: comma) }
                pendingComma = nil
                output.append(byte)
            case 0x20, 0x0A, 0x0D, 0x09:
                output.append(byte)
            default:
                pendingComma = nil
                output.append(byte)
            }
        }
        return Data(output)
    }
}
