import Crypto
import Foundation
import PaywireModels

/// The one way Paywire's services sign what they hand each other — Kafka commands, card vault
/// takes, internal API calls — and key the digests they must not store bare. Every signer is
/// this scheme plus what it covers:
///
/// - the key is derived (HKDF-SHA256) from PAYWIRE_ENCRYPTION_KEY under a label naming its one
///   use, so a signature made for one use is worthless for every other;
/// - the signature is HMAC-SHA256 of the covered bytes, sent as 64 lowercase hex digits;
/// - a check is constant-time, and a timestamped signature also covers its Unix time and is
///   refused outside its tolerance, so a captured one cannot be replayed later.
public struct SignatureScheme: Sendable {
    private let key: SymmetricKey

    public init(key: SymmetricKey) { self.key = key }

    /// The key for one use, derived from the base64 PAYWIRE_ENCRYPTION_KEY.
    public init(purpose label: String, encryptionKey base64Key: String) throws {
        guard let material = Data(base64Encoded: base64Key), material.count == 32 else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_ENCRYPTION_KEY", reason: "base64 of 32 random bytes")
        }
        key = SymmetricKey(data: HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: material), info: Data(label.utf8), outputByteCount: 32))
    }

    public func signature(of covered: some DataProtocol) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: covered, using: key))
    }

    public func isValid(_ signature: String?, of covered: some DataProtocol) -> Bool {
        guard let signature, signature.utf8.count == 64, let bytes = Hex.decode(signature) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: covered, using: key)
    }

    /// The timestamp and signature headers' values for bytes that cover `timestamp`.
    public func timestamped(now: Date = Date(), covering: (Int) -> Data) -> (timestamp: String, signature: String) {
        let timestamp = Int(now.timeIntervalSince1970)
        return (String(timestamp), signature(of: covering(timestamp)))
    }

    /// A timestamped signature is valid if its time is within `tolerance` of now and it signs the
    /// bytes `covering` makes with that time.
    public func isValid(_ signature: String?, timestamp: String?, tolerance: TimeInterval, now: Date = Date(), covering: (Int) -> Data) -> Bool {
        guard let timestamp, let seconds = Int(timestamp), abs(now.timeIntervalSince1970 - TimeInterval(seconds)) <= tolerance else { return false }
        return isValid(signature, of: covering(seconds))
    }
}
