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
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: context.maxUploadSize)
        } catch {
            throw APIError(status: .contentTooLarge, type: "invalid_request", code: "IR_40", message: "The request body is larger than \(context.maxUploadSize) bytes", field: nil)
        }
        let bytes = Data(buffer: buffer)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return RequestObject([:]) }
        guard let value = try? PaywireJSON.decoder.decode(JSONValue.self, from: TrailingCommas.removed(from: bytes)) else {
            throw APIError.invalid("body", "is not valid JSON")
        }
        guard case .object(let fields) = value else { throw APIError.invalid("body", "must be a JSON object") }
        return RequestObject(fields)
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
            guard value.rounded() == value, abs(value) < 9e15 else { throw APIError.invalid(name(key), "must be an integer") }
            let number = Int(value)
            if let range, !range.contains(number) {
                throw APIError.invalid(name(key), number < range.lowerBound ? "must not be less than \(range.lowerBound)" : "must not be more than \(range.upperBound)")
            }
            return number
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

    /// A free-form object (`metadata`), stored as given.
    public func anyObject(_ key: String) throws -> JSONValue? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object?: return fields[key]
        default: throw APIError.invalid(name(key), "must be an object")
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
