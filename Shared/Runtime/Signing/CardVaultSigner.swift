import Crypto
import Foundation
import PaywireModels

/// Signs payment-core's take of a card from the gateway's vault. The signature covers the method,
/// the host the request is addressed to, the path, the token and a timestamp, under a key used
/// for nothing else: a take signed for one host is refused by every other, a captured take is
/// worthless after `tolerance` (and the token itself is single-use).
public struct CardVaultSigner: Sendable {
    public static let signatureHeader = "x-paywire-vault-signature"
    public static let timestampHeader = "x-paywire-vault-timestamp"
    public static let tolerance: TimeInterval = 30
    private let key: SymmetricKey

    public init(encryptionKey base64Key: String) throws {
        key = try DerivedKey.derive(fromEncryptionKey: base64Key, label: "paywire card vault take v1")
    }

    func subject(method: String, host: String, path: String, token: String, timestamp: Int) -> Data {
        Data("\(method.uppercased())\n\(host.lowercased())\n\(path)\n\(token)\n\(timestamp)".utf8)
    }

    /// The two headers to send with a take.
    public func headers(method: String, host: String, path: String, token: String, now: Date = Date()) -> [(String, String)] {
        let timestamp = Int(now.timeIntervalSince1970)
        let mac = HMAC<SHA256>.authenticationCode(for: subject(method: method, host: host, path: path, token: token, timestamp: timestamp), using: key)
        return [(Self.timestampHeader, String(timestamp)), (Self.signatureHeader, Hex.encode(mac))]
    }

    /// Constant-time check of a received take.
    public func isValid(signature: String?, timestamp: String?, method: String, host: String, path: String, token: String, now: Date = Date()) -> Bool {
        guard let signature, let timestamp, let seconds = Int(timestamp),
              abs(now.timeIntervalSince1970 - TimeInterval(seconds)) <= Self.tolerance,
              signature.count == 64, let bytes = InternalRequestSigner.bytes(hex: signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: subject(method: method, host: host, path: path, token: token, timestamp: seconds), using: key)
    }

    /// `host[:port]` of a URL as a client addresses it (the port only when the URL names one).
    public static func authority(of url: URL) -> String? {
        guard let host = url.host?.lowercased(), !host.isEmpty else { return nil }
        return url.port.map { "\(host):\($0)" } ?? host
    }
}
