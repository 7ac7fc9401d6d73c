import Crypto
import Foundation

/// Keys for the uses of PAYWIRE_ENCRYPTION_KEY other than sealing, each derived (HKDF-SHA256)
/// under a label of its own: a signature made for one use is worthless for every other.
public enum DerivedKey {
    public static func derive(fromEncryptionKey base64Key: String, label: String) throws -> SymmetricKey {
        guard let material = Data(base64Encoded: base64Key), material.count == 32 else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_ENCRYPTION_KEY", reason: "base64 of 32 random bytes")
        }
        return HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: material), info: Data(label.utf8), outputByteCount: 32)
    }
}
