/// Reads the top-level members of a JSON object without building their values: each member's
/// key and where its value's text lies. The whole document is checked against JSON's grammar on
/// the way (strings, escapes, numbers, literals, nesting up to `maxDepth`, UTF-8), so a value's
/// text can be passed on as it is — the webhook dispatcher puts an event's payload into each
/// delivery's body this way instead of decoding it into a `JSONValue` and writing it back, which
/// was a quarter of its CPU time per delivery in a profile of `scripts/bench-webhooks`.
public enum JSONObjectScanner {
    public static let maxDepth = 256

    /// The members of the object `bytes` holds, in document order (a repeated key appears twice;
    /// callers take the last, as `JSONDecoder` does). Throws `DecodingError.dataCorrupted` for
    /// anything that is not one JSON object.
    public static func members(of bytes: [UInt8]) throws -> [(key: String, value: Range<Int>)] {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw malformed("not UTF-8") }
        var index = 0
        skipWhitespace(bytes, &index)
        let members = try objectMembers(bytes, &index)
        skipWhitespace(bytes, &index)
        guard index == bytes.count else { throw malformed("text after the object") }
        return members
    }

    /// The string a member's value holds, or nil when the value is not a string.
    public static func string(_ bytes: [UInt8], _ range: Range<Int>) throws -> String? {
        guard range.lowerBound < range.upperBound, bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        var index = range.lowerBound
        return try readString(bytes, &index)
    }

    /// A member's value as an integer, or nil when it is `null`; throws for anything else.
    public static func integer(_ bytes: [UInt8], _ range: Range<Int>) throws -> Int64? {
        let text = String(decoding: bytes[range], as: UTF8.self)
        if text == "null" { return nil }
        guard let value = Int64(text) else { throw malformed("expected an integer") }
        return value
    }

    /// Members of the object starting at `index` (its `{`); `index` ends past its `}`.
    public static func objectMembers(_ bytes: [UInt8], _ index: inout Int) throws -> [(key: String, value: Range<Int>)] {
        var members: [(key: String, value: Range<Int>)] = []
        try scanObject(bytes, &index, depth: 1) { members.append(($0, $1)) }
        return members
    }

    /// An object's members, each handed over as it is passed.
    static func scanObject(_ bytes: [UInt8], _ index: inout Int, depth: Int, _ member: (String, Range<Int>) -> Void) throws {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw malformed("expected an object") }
        try scanElements(bytes, &index, close: UInt8(ascii: "}")) { index in
            let key = try readString(bytes, &index)
            skipWhitespace(bytes, &index)
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw malformed("expected ':'") }
            index += 1
            skipWhitespace(bytes, &index)
            let start = index
            try skipValue(bytes, &index, depth: depth)
            member(key, start..<index)
        }
    }

    /// The comma-separated elements between the bracket at `index` and its `close`.
    static func scanElements(_ bytes: [UInt8], _ index: inout Int, close: UInt8, _ element: (inout Int) throws -> Void) throws {
        index += 1
        skipWhitespace(bytes, &index)
        if index < bytes.count, bytes[index] == close {
            index += 1
            return
        }
        while true {
            skipWhitespace(bytes, &index)
            try element(&index)
            skipWhitespace(bytes, &index)
            guard index < bytes.count else { throw malformed("unterminated object or array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == close else { throw malformed("expected ',' or the closing bracket") }
            index += 1
            return
        }
    }

    static func skipValue(_ bytes: [UInt8], _ index: inout Int, depth: Int) throws {
        guard depth <= maxDepth else { throw malformed("nested too deeply") }
        guard index < bytes.count else { throw malformed("expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "\""): _ = try readString(bytes, &index)
        case UInt8(ascii: "{"): try scanObject(bytes, &index, depth: depth + 1) { _, _ in }
        case UInt8(ascii: "["): try scanElements(bytes, &index, close: UInt8(ascii: "]")) { try skipValue(bytes, &$0, depth: depth + 1) }
        case UInt8(ascii: "t"): try literal("true", bytes, &index)
        case UInt8(ascii: "f"): try literal("false", bytes, &index)
        case UInt8(ascii: "n"): try literal("null", bytes, &index)
        default: try skipNumber(bytes, &index)
        }
    }

    static func literal(_ word: StaticString, _ bytes: [UInt8], _ index: inout Int) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw malformed("unexpected end") }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw malformed("unknown literal") }
        index += count
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    static func skipNumber(_ bytes: [UInt8], _ index: inout Int) throws {
        func isDigit(_ at: Int) -> Bool { at < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[at]) }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard isDigit(index) else { throw malformed("expected a value") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard isDigit(index) else { throw malformed("expected a digit after '.'") }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw malformed("expected an exponent") }
            while isDigit(index) { index += 1 }
        }
    }

    /// The string starting at `index` (its opening quote), unescaped; `index` ends past its
    /// closing quote.
    static func readString(_ bytes: [UInt8], _ index: inout Int) throws -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw malformed("expected a string") }
        index += 1
        let start = index
        // The common case, no escapes: one copy of the bytes.
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
            guard bytes[index] >= 0x20 else { throw malformed("control character in a string") }
            index += 1
        }
        guard index < bytes.count else { throw malformed("unterminated string") }
        if bytes[index] == UInt8(ascii: "\"") {
            index += 1
            return String(decoding: bytes[start..<(index - 1)], as: UTF8.self)
        }
        var output = Array(bytes[start..<index])
        while true {
            guard index < bytes.count else { throw malformed("unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: output, as: UTF8.self)
            }
            guard byte >= 0x20 else { throw malformed("control character in a string") }
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            index += 1
            guard index < bytes.count else { throw malformed("unterminated escape") }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escaped)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(bytes, &index)
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { throw malformed("lone surrogate") }
                    index += 2
                    let low = try hex4(bytes, &index)
                    guard (0xDC00..<0xE000).contains(low) else { throw malformed("lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw malformed("lone surrogate")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw malformed("invalid escape") }
                output.append(contentsOf: String(Character(unicode)).utf8)
            default:
                throw malformed("invalid escape")
            }
        }
    }

    static func hex4(_ bytes: [UInt8], _ index: inout Int) throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw malformed("short \\u escape") }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[index + offset]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw malformed("bad hex digit")
            }
            value = value << 4 | digit
        }
        index += 4
        return value
    }

    static func skipWhitespace(_ bytes: [UInt8], _ index: inout Int) {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    static func malformed(_ reason: String) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: "malformed JSON: \(reason)"))
    }
}
