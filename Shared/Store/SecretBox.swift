import Crypto
import Foundation

/// Seals secrets at rest (connector credentials, webhook signing secrets, hash keys) with
/// AES-256-GCM. The stored form is `v1:` + base64(nonce ‖ ciphertext ‖ tag); the version prefix
/// leaves room for key rotation.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    public struct InvalidKey: Error, CustomStringConvertible {
        public var description: String { "PAYWIRE_ENCRYPTION_KEY must be 32 bytes, base64-encoded" }
    }

    public struct CannotOpen: Error, CustomStringConvertible {
        public var description: String { "a sealed secret could not be opened (wrong key or corrupted)" }
    }

    public init(base64Key: String) throws {
        guard let data = Data(base64Encoded: base64Key), data.count == 32 else { throw InvalidKey() }
        key = SymmetricKey(data: data)
    }

    /// A fresh random key, base64-encoded, for `./scripts/up` and tests.
    public static func generateKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    public func seal(_ plaintext: String) throws -> String {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: key)
        return "v1:" + box.combined!.base64EncodedString()
    }

    public func open(_ sealed: String) throws -> String {
        guard sealed.hasPrefix("v1:"), let data = Data(base64Encoded: String(sealed.dropFirst(3))) else { throw CannotOpen() }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw CannotOpen()
        }
    }
}
