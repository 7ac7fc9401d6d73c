import Crypto
import Foundation
import PaywireModels

/// Authenticates calls between Paywire services that carry sensitive data (payment-core taking
/// a card from the gateway's vault). The key is derived from PAYWIRE_ENCRYPTION_KEY, which both
/// sides already hold, so there is no second secret to distribute.
public struct InternalRequestSigner: Sendable {
    public static let header = "x-paywire-internal-signature"
    private let key: SymmetricKey

    public init(encryptionKey base64Key: String) throws {
        guard let material = Data(base64Encoded: base64Key), material.count == 32 else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_ENCRYPTION_KEY", reason: "base64 of 32 random bytes")
        }
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: material), info: Data("paywire internal requests v1".utf8), outputByteCount: 32)
    }

    public func signature(for subject: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(subject.utf8), using: key))
    }

    /// Constant-time check.
    public func isValid(_ signature: String, for subject: String) -> Bool {
        guard signature.count == 64, let bytes = Self.bytes(hex: signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: Data(subject.utf8), using: key)
    }

    public static func bytes(hex: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
