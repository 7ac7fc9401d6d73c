import Foundation
#if canImport(Glibc)
import Glibc
import PaywireStore
#endif

/// Which network addresses a merchant's webhook may reach. Webhook URLs come from outside, so
/// without a guard any merchant could make Paywire POST into its own network (cloud metadata at
/// 169.254.169.254, an admin port on loopback). Refused: loopback, RFC 1918 private, link-local,
/// CGNAT (100.64/10), multicast, unspecified, reserved and benchmarking ranges, and IPv6
/// unique-local, link-local, multicast and IPv4-mapped forms of the above. The gateway refuses a
/// literal address at creation; the dispatcher checks every address a name resolves to at send
/// time and connects only to the one it checked.
public enum NetworkAddressPolicy {
    public static let allowPrivateKey = "PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS"

    /// `PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true` lifts the guard (the dev stack and tests).
    public static func allowsPrivateNetworks(_ environment: [String: String]) -> Bool {
        ["true", "1", "yes"].contains(environment[allowPrivateKey]?.lowercased() ?? "")
    }

    /// Why this literal address may not be a webhook target, or nil when it may (or when `host`
    /// is a name, not an address).
    /// Every IPv4 spelling `inet_aton` (and so `getaddrinfo`) accepts counts as an address here.
    public static func refusal(forLiteral host: String) -> String? {
        switch literal(host) {
        case .ipv4(let address)?: refusal(ipv4: address)
        case .ipv6(let address)?: refusal(ipv6: address)
        case .name?, nil: nil
        }
    }

    /// The address `host` spells (bracketed or bare IPv6, IPv4 in any `inet_aton` spelling), or
    /// nil for a name.
    public static func literal(_ host: String) -> HTTPTargetURL.Host? {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let v6 = ipv6(bare) { return .ipv6(v6) }
        if let v4 = IPv4Spelling.parse(bare.hasSuffix(".") ? String(bare.dropLast()) : bare) { return .ipv4(v4) }
        return nil
    }

    public static func ipv6Text(_ address: [UInt8]) -> String {
        var value = in6_addr()
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: address.prefix(16)) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &value, &buffer, socklen_t(buffer.count)) != nil else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func refusal(ipv4 address: [UInt8]) -> String? {
        let (a, b) = (address[0], address[1])
        switch true {
        case a == 0: return "an unspecified or 'this network' address (0.0.0.0/8)"
        case a == 127: return "a loopback address (127.0.0.0/8)"
        case a == 10, a == 172 && (16...31).contains(b), a == 192 && b == 168: return "a private network address (RFC 1918)"
        case a == 169 && b == 254: return "a link-local address (169.254.0.0/16, cloud metadata included)"
        case a == 100 && (64...127).contains(b): return "a carrier-grade NAT address (100.64.0.0/10)"
        case a == 192 && b == 0 && address[2] == 0: return "an IETF protocol assignment (192.0.0.0/24)"
        case a == 198 && (18...19).contains(b): return "a benchmarking address (198.18.0.0/15)"
        case (224...239).contains(a): return "a multicast address (224.0.0.0/4)"
        case a >= 240: return "a reserved or broadcast address (240.0.0.0/4)"
        default: return nil
        }
    }

    public static func refusal(ipv6 address: [UInt8]) -> String? {
        if address.allSatisfy({ $0 == 0 }) { return "the unspecified address (::)" }
        if address[0..<15].allSatisfy({ $0 == 0 }) && address[15] == 1 { return "the loopback address (::1)" }
        // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
        if address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xFF && address[11] == 0xFF { return refusal(ipv4: Array(address[12..<16])) }
        if address[0] == 0x00 && address[1] == 0x64 && address[2] == 0xFF && address[3] == 0x9B && address[4..<12].allSatisfy({ $0 == 0 }) {
            return refusal(ipv4: Array(address[12..<16]))
        }
        if address[0] & 0xFE == 0xFC { return "a unique-local address (fc00::/7)" }
        if address[0] == 0xFE && address[1] & 0xC0 == 0x80 { return "a link-local address (fe80::/10)" }
        if address[0] == 0xFF { return "a multicast address (ff00::/8)" }
        return nil
    }

    public static func ipv4(_ text: String) -> [UInt8]? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    public static func ipv6(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    /// Every address `host` resolves to (numeric strings), by the system resolver. Blocking, so
    /// it runs on a thread of its own rather than the cooperative pool.
    public static func resolve(_ host: String) async throws -> [String] {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try resolveBlocking(host) })
            }
        }
    }

    public struct ResolutionError: TransientFault, CustomStringConvertible {
        public let host: String
        public let reason: String
        public var description: String { "could not resolve \(host): \(reason)" }
    }

    static func resolveBlocking(_ host: String) throws -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        guard status == 0, let first = result else {
            throw ResolutionError(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(result) }
        var addresses: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(text) { addresses.append(text) }
            }
            cursor = entry.pointee.ai_next
        }
        return addresses
    }
}
