import Foundation

/// Signs payment-core's take of a card from the gateway's vault. Covers the method, the host the
/// request is addressed to, the path, the token and a timestamp: a take signed for one host is
/// refused by every other, a captured take is worthless after `tolerance` (and the token itself
/// is single-use).
public struct CardVaultSigner: Sendable {
    public static let signatureHeader = "x-paywire-vault-signature"
    public static let timestampHeader = "x-paywire-vault-timestamp"
    public static let tolerance: TimeInterval = 30
    private let scheme: SignatureScheme

    public init(encryptionKey base64Key: String) throws {
        scheme = try SignatureScheme(purpose: "paywire card vault take v1", encryptionKey: base64Key)
    }

    static func covered(method: String, host: String, path: String, token: String, timestamp: Int) -> Data {
        Data("\(method.uppercased())\n\(host.lowercased())\n\(path)\n\(token)\n\(timestamp)".utf8)
    }

    /// The two headers to send with a take.
    public func headers(method: String, host: String, path: String, token: String, now: Date = Date()) -> [(String, String)] {
        let signed = scheme.timestamped(now: now) { Self.covered(method: method, host: host, path: path, token: token, timestamp: $0) }
        return [(Self.timestampHeader, signed.timestamp), (Self.signatureHeader, signed.signature)]
    }

    public func isValid(signature: String?, timestamp: String?, method: String, host: String, path: String, token: String, now: Date = Date()) -> Bool {
        scheme.isValid(signature, timestamp: timestamp, tolerance: Self.tolerance, now: now) {
            Self.covered(method: method, host: host, path: path, token: token, timestamp: $0)
        }
    }

    /// `host[:port]` of a URL as a client addresses it (the port only when the URL names one).
    public static func authority(of url: URL) -> String? {
        guard let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        return url.port.map { "\(host):\($0)" } ?? host
    }
}
