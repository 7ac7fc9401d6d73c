import Crypto
import Foundation

/// Where a sealed value lives: its table and column. With the row's id it is the sealed value's
/// associated data, so a value moved to another row or column (by anyone who can write to the
/// database but lacks the key) no longer opens.
public struct SealedField: Sendable, Equatable {
    public let table: String
    public let column: String

    public init(table: String, column: String) {
        self.table = table
        self.column = column
    }

    public static let profileCustomHeaders = SealedField(table: "gateway.business_profiles", column: "outgoing_webhook_custom_http_headers")
    public static let profileHashKey = SealedField(table: "gateway.business_profiles", column: "payment_response_hash_key")
    public static let profileWebhookPassword = SealedField(table: "gateway.business_profiles", column: "webhook_password")
    /// An endpoint's signing secret, current or (after a rotation, moved as is) previous.
    public static let endpointSigningSecret = SealedField(table: "gateway.webhook_endpoints", column: "secret")
    public static let connectorAccountDetails = SealedField(table: "gateway.connector_accounts", column: "account_details")
    public static let connectorWebhookSecret = SealedField(table: "gateway.connector_accounts", column: "webhook_secret")
    /// The API key a console session was signed in with.
    public static let consoleSessionKey = SealedField(table: "gateway.console_sessions", column: "api_key")
    public static let processorToken = SealedField(table: "payments.payment_intents", column: "processor_token")
    /// Processor tokens on Kafka, bound to their payment (payment commands) or job (recovery
    /// commands): a token lifted from one message opens in no other.
    public static let commandProcessorToken = SealedField(table: "kafka.payment_commands", column: "processor_payment_token")
    public static let recoveryCommandProcessorToken = SealedField(table: "kafka.recovery_commands", column: "processor_token")

    func associatedData(row: String) -> Data { Data("paywire sealed v2\n\(table)\n\(column)\n\(row)".utf8) }
}

/// Seals secrets at rest (connector credentials, webhook signing secrets, hash keys, processor
/// tokens) with AES-256-GCM, bound to their place. The stored form is `v2:` +
/// base64(nonce ‖ ciphertext ‖ tag) with (table, column, row id) as associated data. Values
/// written before that (`v1:`, no associated data) still open, and are sealed anew the next time
/// they are written.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    public struct InvalidKey: Error, CustomStringConvertible {
        public var description: String { "PAYWIRE_ENCRYPTION_KEY must be 32 bytes, base64-encoded" }
    }

    public struct CannotOpen: Error, CustomStringConvertible {
        public var description: String { "a sealed secret could not be opened (wrong key, corrupted, or moved from another row)" }
    }

    public init(base64Key: String) throws {
        guard let data = Data(base64Encoded: base64Key), data.count == 32 else { throw InvalidKey() }
        key = SymmetricKey(data: data)
    }

    /// A fresh random key, base64-encoded, for `./scripts/up` and tests.
    public static func generateKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    public func seal(_ plaintext: String, as field: SealedField, row: String) throws -> String {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: key, authenticating: field.associatedData(row: row))
        return "v2:" + box.combined!.base64EncodedString()
    }

    public func open(_ sealed: String, as field: SealedField, row: String) throws -> String {
        let version = sealed.prefix(3)
        guard version == "v2:" || version == "v1:", let data = Data(base64Encoded: String(sealed.dropFirst(3))) else { throw CannotOpen() }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            let plaintext = version == "v2:"
                ? try AES.GCM.open(box, using: key, authenticating: field.associatedData(row: row))
                : try AES.GCM.open(box, using: key)
            return String(decoding: plaintext, as: UTF8.self)
        } catch {
            throw CannotOpen()
        }
    }
}
