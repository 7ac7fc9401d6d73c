import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Merchant connector accounts (`mca_…`): which processor a profile uses and with what
/// credentials. Credentials and the connector's webhook secret are sealed at rest and masked in
/// every answer.
struct ConnectorAccountStore: Sendable {
    let writer: ConfigurationWriter
    let secrets: SecretBox
    var postgres: PostgresClient { writer.postgres }
    var logger: Logger { writer.logger }

    /// The connectors Paywire knows, and what kind each is.
    static let knownConnectors: [String: String] = ConnectorFeatures.all.mapValues(\.category.rawValue)

    /// Which keys each `auth_type` carries (Hyperswitch's ConnectorAuthType).
    static let authKeys: [String: [String]] = [
        "HeaderKey": ["api_key"],
        "BodyKey": ["api_key", "key1"],
        "SignatureKey": ["api_key", "key1", "api_secret"],
        "NoKey": [],
    ]

    static let managedFields: Set<String> = [
        "merchant_connector_id", "merchant_id", "profile_id", "connector_type", "connector_name",
        "connector_account_details", "connector_webhook_details",
    ]

    struct Input {
        var connectorType: String?
        var connectorName: String?
        var accountDetails: [String: String]?
        var webhookSecret: String??
        var profileId: String?
        var document: [String: JSONValue]
    }

    func parse(_ body: RequestObject, creating: Bool) throws -> Input {
        var input = Input(document: body.fields.filter { !Self.managedFields.contains($0.key) })
        input.profileId = try body.string("profile_id", maxLength: 64)
        if let profileId = input.profileId { try InputText.checkIdentifierText(profileId, field: "profile_id") }
        input.connectorType = try body.string("connector_type", maxLength: 64)
        input.connectorName = try body.string("connector_name", maxLength: 64)
        if creating {
            guard let name = input.connectorName else { throw APIError.invalid("connector_name", "is required", code: "IR_05") }
            guard let kind = Self.knownConnectors[name] else {
                throw APIError.invalid("connector_name", "is not a known connector (\(Self.knownConnectors.keys.sorted().joined(separator: ", ")))")
            }
            guard let type = input.connectorType else { throw APIError.invalid("connector_type", "is required", code: "IR_05") }
            guard ["payment_processor", "billing_processor"].contains(type) else {
                throw APIError.invalid("connector_type", "must be payment_processor or billing_processor")
            }
            guard type == kind else { throw APIError.invalid("connector_type", "\(name) is a \(kind)") }
        }
        // On update the type and name may be sent (Hyperswitch requires connector_type in every
        // update) but not changed: `update` compares them with what is stored.
        if let details = try body.object("connector_account_details") {
            let authType = try details.requiredString("auth_type", maxLength: 32)
            guard let keys = Self.authKeys[authType] else {
                throw APIError.invalid("connector_account_details.auth_type", "must be one of HeaderKey, BodyKey, SignatureKey, NoKey")
            }
            // What the connector itself can use (on update the stored connector is checked in `update`).
            if let name = input.connectorName, let features = ConnectorFeatures.all[name], !features.authTypes.contains(authType) {
                throw APIError.invalid("connector_account_details.auth_type", "\(name) accepts \(features.authTypes.joined(separator: " or "))")
            }
            var account = ["auth_type": authType]
            for key in keys {
                let value = try details.requiredString(key, maxLength: 4096)
                guard !value.isEmpty else { throw APIError.invalid("connector_account_details.\(key)", "must not be empty") }
                account[key] = value
            }
            input.accountDetails = account
        } else if creating {
            throw APIError.invalid("connector_account_details", "is required", code: "IR_05")
        }
        if let webhook = try body.object("connector_webhook_details") {
            let secret = try webhook.string("merchant_secret", maxLength: 4096)
            input.webhookSecret = .some(secret.flatMap { $0.isEmpty ? nil : $0 })
        }
        _ = try body.array("payment_methods_enabled")
        _ = try body.anyObject("metadata")
        _ = try body.bool("disabled")
        if let recovery = try body.object("feature_metadata")?.object("revenue_recovery") {
            let maxRetries = try recovery.integer("max_retry_count", range: 0...1000)
            let threshold = try recovery.integer("billing_connector_retry_threshold", range: 0...1000)
            if let maxRetries, let threshold, threshold > maxRetries {
                throw APIError.invalid(recovery.name("billing_connector_retry_threshold"), "must not exceed max_retry_count (the billing platform's tries count towards it)")
            }
            _ = try recovery.anyObject("billing_account_reference")
            if let switching = try recovery.object("switch_payment_method_config") {
                _ = try switching.integer("retry_threshold", range: 0...1000)
                _ = try switching.integer("time_threshold_after_creation", range: 0...Int(Int32.max))
            }
        }
        return input
    }

    func create(merchantId: String, profileId requested: String?, _ body: RequestObject) async throws -> JSONValue {
        let input = try parse(body, creating: true)
        let bodyProfile = input.profileId
        if let requested, let bodyProfile, requested != bodyProfile {
            throw APIError.invalid("profile_id", "differs from the x-profile-id header")
        }
        let id = Identifier.make("mca")
        try await writer.change(merchantId: merchantId) { connection in
            let profileId: String
            if let chosen = requested ?? bodyProfile {
                profileId = chosen
            } else {
                let rows = try await connection.query("SELECT default_profile_id FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)", logger: logger)
                var found: String?
                for try await value in rows.decode(String?.self) { found = value }
                guard let found else { throw APIError.notFound("Merchant account") }
                profileId = found
            }
            let profiles = try await connection.query("SELECT 1 FROM gateway.business_profiles WHERE profile_id = \(profileId) AND merchant_id = \(merchantId)", logger: logger)
            let exists = try await profiles.hasRows()
            guard exists else { throw APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "Business profile does not exist", field: "profile_id") }
            let sealedAccount = try secrets.seal(try PaywireJSON.text(JSONValue.object((input.accountDetails ?? [:]).mapValues(JSONValue.string))), as: .connectorAccountDetails, row: id)
            let sealedSecret = try (input.webhookSecret ?? nil).map { try secrets.seal($0, as: .connectorWebhookSecret, row: id) }
            try await connection.query("""
                INSERT INTO gateway.connector_accounts (merchant_connector_id, merchant_id, profile_id, connector_type, connector_name, account_details, webhook_secret, document)
                VALUES (\(id), \(merchantId), \(profileId), \(input.connectorType!), \(input.connectorName!), \(sealedAccount), \(sealedSecret), \(try PaywireJSON.text(JSONValue.object(input.document)))::jsonb)
                """, logger: logger)
        }
        return try await response(merchantId: merchantId, id: id) ?? .null
    }

    func update(merchantId: String, id: String, _ body: RequestObject) async throws -> JSONValue {
        let input = try parse(body, creating: false)
        try await writer.change(merchantId: merchantId) { connection in
            let sealedAccount = try input.accountDetails.map { try secrets.seal(try PaywireJSON.text(JSONValue.object($0.mapValues(JSONValue.string))), as: .connectorAccountDetails, row: id) }
            let replaceSecret = input.webhookSecret != nil
            let sealedSecret = try (input.webhookSecret ?? nil).map { try secrets.seal($0, as: .connectorWebhookSecret, row: id) }
            let rows = try await connection.query("""
                UPDATE gateway.connector_accounts
                SET account_details = COALESCE(\(sealedAccount), account_details),
                    webhook_secret = CASE WHEN \(replaceSecret) THEN \(sealedSecret) ELSE webhook_secret END,
                    document = document || \(try PaywireJSON.text(JSONValue.object(input.document)))::jsonb, modified_at = now()
                WHERE merchant_connector_id = \(id) AND merchant_id = \(merchantId) RETURNING profile_id, connector_type, connector_name
                """, logger: logger)
            var stored: String?
            for try await (profileId, type, name) in rows.decode((String, String, String).self) {
                stored = profileId
                // The whole object sent back is fine; a different type or connector is not (the
                // transaction is rolled back).
                if let given = input.connectorType, given != type {
                    throw APIError.invalid("connector_type", "cannot be changed (this account is a \(type)); create another connector account")
                }
                if let given = input.connectorName, given != name {
                    throw APIError.invalid("connector_name", "cannot be changed (this account is \(name)); create another connector account")
                }
            }
            guard let stored else { throw APIError.notFound("Merchant connector account") }
            // An account belongs to one profile for good; naming that profile is fine (clients
            // send the whole object back), naming another is refused.
            if let given = input.profileId, given != stored {
                throw APIError.invalid("profile_id", "cannot be changed; create a connector account in the other profile")
            }
        }
        return try await response(merchantId: merchantId, id: id) ?? .null
    }

    func delete(merchantId: String, id: String) async throws -> JSONValue {
        try await writer.change(merchantId: merchantId) { connection in
            let rows = try await connection.query("DELETE FROM gateway.connector_accounts WHERE merchant_connector_id = \(id) AND merchant_id = \(merchantId) RETURNING 1", logger: logger)
            let found = try await rows.hasRows()
            guard found else { throw APIError.notFound("Merchant connector account") }
        }
        return .object(["merchant_id": .string(merchantId), "merchant_connector_id": .string(id), "deleted": .bool(true)])
    }

    func list(merchantId: String) async throws -> JSONValue {
        let rows = try await postgres.query("SELECT merchant_connector_id FROM gateway.connector_accounts WHERE merchant_id = \(merchantId) ORDER BY created_at, merchant_connector_id", logger: logger)
        var ids: [String] = []
        for try await id in rows.decode(String.self) { ids.append(id) }
        var accounts: [JSONValue] = []
        for id in ids { if let account = try await response(merchantId: merchantId, id: id) { accounts.append(account) } }
        return .array(accounts)
    }

    func response(merchantId: String, id: String) async throws -> JSONValue? {
        let rows = try await postgres.query("""
            SELECT profile_id, connector_type, connector_name, account_details, webhook_secret, document::text
            FROM gateway.connector_accounts WHERE merchant_connector_id = \(id) AND merchant_id = \(merchantId)
            """, logger: logger)
        for try await (profileId, type, name, sealedAccount, sealedSecret, documentText) in rows.decode((String, String, String, String, String?, String).self) {
            let account = (try? PaywireJSON.decoder.decode([String: String].self, from: Data(try secrets.open(sealedAccount, as: .connectorAccountDetails, row: id).utf8))) ?? [:]
            var masked: [String: JSONValue] = [:]
            for (key, value) in account { masked[key] = .string(key == "auth_type" ? value : Self.mask(value)) }
            var response: [String: JSONValue] = [
                "merchant_connector_id": .string(id), "merchant_id": .string(merchantId), "profile_id": .string(profileId),
                "connector_type": .string(type), "connector_name": .string(name), "connector_label": .string("\(name)_default"),
                "connector_account_details": .object(masked),
                "connector_webhook_details": sealedSecret == nil ? .null : .object(["merchant_secret": .string(Self.mask(try secrets.open(sealedSecret!, as: .connectorWebhookSecret, row: id)))]),
                "payment_methods_enabled": .null, "metadata": .null, "feature_metadata": .null, "frm_configs": .null,
                "disabled": .bool(false), "status": .string("active"), "test_mode": .null,
            ]
            for (key, value) in PaywireJSON.fields(of: documentText) { response[key] = value }
            // Methods are kept as sent (Hyperswitch's clients list wallets and more for Adyen);
            // each says whether Paywire processes it on this connector.
            if case .array(let methods)? = response["payment_methods_enabled"] {
                let processed = ConnectorFeatures.all[name]?.paymentMethods ?? [:]
                response["payment_methods_enabled"] = .array(methods.map { method in
                    guard case .object(var fields) = method else { return method }
                    fields["supported"] = .bool(method["payment_method"]?.stringValue.map { processed[$0] != nil } ?? false)
                    return .object(fields)
                })
            }
            return .object(response)
        }
        return nil
    }

    /// Enough to recognise a key, never enough to use it.
    static func mask(_ value: String) -> String {
        value.count >= 16 ? String(repeating: "*", count: 8) + value.suffix(4) : String(repeating: "*", count: 8)
    }
}
