import Foundation

/// Writes a `JSONValue` as JSON bytes exactly as `PaywireJSON.encoder` does — keys sorted, slashes
/// not escaped, whole numbers below 10^15 without a fraction, other numbers in their shortest form
/// — without going through `Encoder` containers. Payment-core writes several documents for every
/// payment (the stored object, the event, the reply), and the generic encoder was its largest
/// single cost in a profile (`scripts/bench-stack`); this writes the same bytes several times
/// faster. `JSONTextWriterTests` holds the two to the same output.
public enum JSONTextWriter {
    public struct NotRepresentable: Error, CustomStringConvertible {
        public var description: String { "a number that JSON cannot hold (NaN or infinite)" }
    }

    public static func bytes(_ value: JSONValue) throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        try write(value, into: &output)
        return output
    }

    public static func write(_ value: JSONValue, into output: inout [UInt8]) throws {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let number): try write(number: number, into: &output)
        case .string(let text): write(string: text, into: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                try write(item, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let fields):
            output.append(UInt8(ascii: "{"))
            // Byte order, as the encoder's `.sortedKeys` compares them.
            for (index, key) in fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                write(string: key, into: &output)
                output.append(UInt8(ascii: ":"))
                try write(fields[key]!, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// As `JSONValue.encode(to:)` chooses: a whole number below 10^15 as an integer, any other
    /// as the encoder writes a `Double` (its description, a trailing `.0` dropped).
    public static func write(number: Double, into output: inout [UInt8]) throws {
        guard number.isFinite else { throw NotRepresentable() }
        if number.rounded() == number, abs(number) < 1e15 {
            output.append(contentsOf: String(Int64(number)).utf8)
            return
        }
        var text = number.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        output.append(contentsOf: text.utf8)
    }

    public static func write(string: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
