import Foundation

/// A keyed digest of a value that must not be stored in the clear nor as a bare hash (the
/// gateway's Idempotency-Key request digests, whose bodies can hold card numbers): the signing
/// scheme with no timestamp, covering the value.
public struct InternalRequestSigner: Sendable {
    private let scheme: SignatureScheme

    public init(encryptionKey base64Key: String) throws {
        scheme = try SignatureScheme(purpose: "paywire internal requests v1", encryptionKey: base64Key)
    }

    public func signature(for subject: String) -> String {
        scheme.signature(of: Data(subject.utf8))
    }

    public func isValid(_ signature: String, for subject: String) -> Bool {
        scheme.isValid(signature, of: Data(subject.utf8))
    }
}
