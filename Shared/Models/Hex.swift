/// Lowercase hexadecimal, written directly (`String(format:)` per byte goes through
/// CoreFoundation and showed up in the dispatcher's profile: 64 calls per SHA-512 signature).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var utf8: [UInt8] = []
        utf8.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            utf8.append(digits[Int(byte >> 4)])
            utf8.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// The low `digits` hex digits of `value`, zero-padded.
    public static func encode(_ value: UInt64, digits count: Int) -> String {
        var utf8 = [UInt8](repeating: 0x30, count: count)
        var rest = value
        for index in stride(from: count - 1, through: 0, by: -1) {
            utf8[index] = digits[Int(rest & 0x0F)]
            rest >>= 4
        }
        return String(decoding: utf8, as: UTF8.self)
    }
}
