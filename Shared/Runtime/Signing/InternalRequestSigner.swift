import Crypto
import Foundation
import PaywireModels

/// A keyed digest of a value that must not be stored in the clear nor as a bare hash (the
/// gateway's Idempotency-Key request digests, whose bodies can hold card numbers). The key is
/// derived from PAYWIRE_ENCRYPTION_KEY under a label of its own.
public struct InternalRequestSigner: Sendable {
    private let key: SymmetricKey

    public init(encryptionKey base64Key: String) throws {
        key = try DerivedKey.derive(fromEncryptionKey: base64Key, label: "paywire internal requests v1")
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
