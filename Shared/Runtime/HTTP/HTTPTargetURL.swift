/// An absolute http(s) URL that Paywire will send to (a webhook target) or hand back to a browser
/// (a return URL), parsed strictly. Lenient parsers disagree on odd spellings, and each
/// disagreement is a way past the address guard: `http://0177.0.0.1`, `http://2130706433` and
/// `http://127.1` all reach 127.0.0.1 through `getaddrinfo`, which reads hosts as `inet_aton`
/// does. So a host is one of three things, decided here once:
/// - a bracketed IPv6 address (`[2001:db8::1]`), without a zone;
/// - an IPv4 address: any host whose last label is a number is read as `inet_aton` reads it, and
///   must then be written as four decimal numbers (other spellings are refused, naming the address
///   they stand for);
/// - a DNS name: labels of 1–63 letters, digits and inner hyphens, at most 253 characters.
/// The port, when given, is 1–65535 without leading zeros; credentials (`user@`) are refused.
public struct HTTPTargetURL: Sendable, Equatable {
    public enum Host: Sendable, Equatable {
        case name(String)
        case ipv4([UInt8])
        case ipv6([UInt8])
    }

    public var isHTTPS: Bool
    public var host: Host
    public var port: Int?

    /// Why a URL is refused, in words that follow the field's name.
    public struct Problem: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public static let maxLength = 2048

    /// Path, query and fragment: plain URL characters only (what the OpenAPI pattern states).
    static let tailCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~!$&'()*+,;=:@/?#-".utf8)
    static let labelCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-".utf8)

    public static func parse(_ text: String) throws(Problem) -> HTTPTargetURL {
        let general = Problem(description: "must be an absolute http or https URL (host, optional port, then path and query in plain URL characters)")
        guard text.utf8.count <= maxLength else { throw Problem(description: "must not be longer than \(maxLength) bytes") }
        let lowered = text.lowercased()
        let isHTTPS: Bool
        if lowered.hasPrefix("https://") { isHTTPS = true } else if lowered.hasPrefix("http://") { isHTTPS = false } else { throw general }
        let rest = Substring(text.utf8.dropFirst(isHTTPS ? 8 : 7))
        let authorityEnd = rest.utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        let authority = rest[rest.startIndex..<authorityEnd]
        guard rest[authorityEnd...].utf8.allSatisfy(tailCharacters.contains) else { throw general }
        if authority.contains("@") { throw Problem(description: "must not carry credentials (user@host)") }
        guard !authority.isEmpty else { throw Problem(description: "must name a host") }

        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Problem(description: "must close an IPv6 address with ']'") }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw general }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostText = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            hostText = authority
        }

        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  !portText.hasPrefix("0"), portText.count <= 5, let value = Int(portText), (1...65535).contains(value)
            else { throw Problem(description: "must have a port from 1 to 65535") }
            port = value
        }

        if authority.hasPrefix("[") {
            guard let address = NetworkAddressPolicy.ipv6(String(hostText)) else {
                throw Problem(description: "must hold a valid IPv6 address between '[' and ']'")
            }
            return HTTPTargetURL(isHTTPS: isHTTPS, host: .ipv6(address), port: port)
        }
        return HTTPTargetURL(isHTTPS: isHTTPS, host: try parseHost(hostText), port: port)
    }

    static func parseHost(_ text: Substring) throws(Problem) -> Host {
        guard !text.isEmpty else { throw Problem(description: "must name a host") }
        // One trailing dot is a fully qualified name ("example.com."); any other empty label is not.
        let body = text.hasSuffix(".") ? text.dropLast() : text
        let labels = body.split(separator: ".", omittingEmptySubsequences: false)
        guard !body.isEmpty, labels.allSatisfy({ !$0.isEmpty }) else {
            throw Problem(description: "must have a host name without empty labels (\"a..b\", \".\")")
        }
        if let last = labels.last, IPv4Spelling.isNumber(last) {
            guard let address = IPv4Spelling.parse(body) else {
                throw Problem(description: "must have a valid IPv4 address (\(body) is read as one, and it is out of range)")
            }
            let canonical = address.map(String.init).joined(separator: ".")
            guard body == canonical, text == body else {
                throw Problem(description: "must write an IPv4 address as four decimal numbers: \(text) is \(canonical)")
            }
            return .ipv4(address)
        }
        guard body.utf8.count <= 253 else { throw Problem(description: "must have a host name of at most 253 characters") }
        for label in labels {
            guard label.utf8.count <= 63 else { throw Problem(description: "must have host name labels of at most 63 characters") }
            guard label.utf8.allSatisfy(labelCharacters.contains), !label.hasPrefix("-"), !label.hasSuffix("-") else {
                throw Problem(description: "must have a host name of letters, digits and inner hyphens")
            }
        }
        return .name(String(text))
    }

    /// The host as `getaddrinfo` and a Host header take it (IPv6 without brackets).
    public var hostText: String {
        switch host {
        case .name(let name): name
        case .ipv4(let bytes): bytes.map(String.init).joined(separator: ".")
        case .ipv6(let bytes): NetworkAddressPolicy.ipv6Text(bytes)
        }
    }
}

/// IPv4 addresses as `inet_aton` reads them: one to four numbers separated by dots, each decimal,
/// octal (leading 0) or hexadecimal (0x); the last fills the bytes the others left.
public enum IPv4Spelling {
    /// Whether a host label is written as a number (decimal digits, or 0x and hex digits), so the
    /// host is an address, valid or not, as a browser's URL parser decides too.
    public static func isNumber(_ label: some StringProtocol) -> Bool {
        let utf8 = Array(label.utf8)
        if utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] | 0x20 == UInt8(ascii: "x") { return utf8.dropFirst(2).allSatisfy(\.isHexDigit) }
        return !utf8.isEmpty && utf8.allSatisfy(\.isDecimalDigit)
    }

    public static func parse(_ text: some StringProtocol) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            guard let value = number(part) else { return nil }
            values.append(value)
        }
        let leading = values.dropLast()
        guard leading.allSatisfy({ $0 <= 255 }), let last = values.last else { return nil }
        let lastBytes = 4 - leading.count
        guard last < (UInt64(1) << (8 * UInt64(lastBytes))) else { return nil }
        var bytes = leading.map { UInt8($0) }
        for shift in stride(from: lastBytes - 1, through: 0, by: -1) { bytes.append(UInt8((last >> (8 * UInt64(shift))) & 0xFF)) }
        return bytes
    }

    static func number(_ text: some StringProtocol) -> UInt64? {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count <= 32 else { return nil }
        if utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] | 0x20 == UInt8(ascii: "x") {
            let digits = utf8.dropFirst(2)
            if digits.isEmpty { return 0 }
            return UInt64(String(decoding: digits, as: UTF8.self), radix: 16)
        }
        guard utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        if utf8.count > 1, utf8[0] == UInt8(ascii: "0") { return UInt64(String(decoding: utf8.dropFirst(), as: UTF8.self), radix: 8) }
        return UInt64(String(decoding: utf8, as: UTF8.self))
    }
}

extension UInt8 {
    fileprivate var isDecimalDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
    fileprivate var isHexDigit: Bool { isDecimalDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self | 0x20) }
}
