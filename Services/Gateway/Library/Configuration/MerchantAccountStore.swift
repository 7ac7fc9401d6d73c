import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Merchant accounts. Creating one makes its `default` profile; deleting one retires its id for
/// good. Every change goes through `ConfigurationWriter.change`, which publishes the new version.
struct MerchantAccountStore: Sendable {
    let writer: ConfigurationWriter
    let secrets: SecretBox
    let profiles: BusinessProfileStore
    var endpoints: WebhookEndpointStore { profiles.endpoints }
    var postgres: PostgresClient { writer.postgres }
    var logger: Logger { writer.logger }

    static let defaultProfileName = "default"

    func createMerchant(_ body: RequestObject) async throws -> JSONValue {
        let merchantId = try body.requiredString("merchant_id", maxLength: 64)
        try Validation.identifier(merchantId, field: "merchant_id")
        let merchantName = try body.string("merchant_name", maxLength: 255)
        let hashEnabled = try body.bool("enable_payment_response_hash") ?? true
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let document = try merchantDocument(body)
        let profileId = Identifier.make("pro")
        let publishableKey = "pk_dev_" + Identifier.random(32).lowercased()
        let organizationId = Identifier.make("org")
        let newSecrets = try await writer.change(merchantId: merchantId) { connection -> [String: String] in
            // A deleted merchant's id is never given out again: payments, events and keys made
            // under it elsewhere must never be seen by a new owner.
            let retired = try await connection.query("SELECT 1 FROM gateway.retired_merchant_ids WHERE merchant_id = \(merchantId)", logger: logger)
            guard try await !retired.hasRows() else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "This merchant_id belonged to a deleted merchant account and stays reserved; choose another", field: "merchant_id")
            }
            let inserted = try await connection.query("""
                INSERT INTO gateway.merchant_accounts (merchant_id, merchant_name, document, default_profile_id, publishable_key, organization_id)
                VALUES (\(merchantId), \(merchantName), \(PaywireJSON.text(document))::jsonb, \(profileId), \(publishableKey), \(organizationId))
                ON CONFLICT (merchant_id) DO NOTHING RETURNING 1
                """, logger: logger)
            let created = try await inserted.hasRows()
            guard created else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "The merchant account with the specified details already exists", field: "merchant_id")
            }
            let hashKey = hashEnabled ? Identifier.random(64) : nil
            try await connection.query("""
                INSERT INTO gateway.business_profiles (profile_id, merchant_id, profile_name, document, payment_response_hash_key)
                VALUES (\(profileId), \(merchantId), \(Self.defaultProfileName), \(PaywireJSON.text(JSONValue.object(["return_url": document["return_url"] ?? .null, "enable_payment_response_hash": .bool(hashEnabled)])))::jsonb, \(try hashKey.map { try secrets.seal($0, as: .profileHashKey, row: profileId) }))
                """, logger: logger)
            return try await endpoints.apply(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
        }
        guard let account = try await merchantResponse(merchantId, newSecrets: newSecrets) else { throw APIError.notFound("Merchant account") }
        return account
    }

    /// Fields stored as given and returned as they came (the seed's merchant_details, metadata, …).
    private func merchantDocument(_ body: RequestObject) throws -> [String: JSONValue] {
        var document = body.fields
        for managed in ["merchant_id", "merchant_name", "webhook_details", "enable_payment_response_hash", "payment_response_hash_key", "api_key"] {
            document[managed] = nil
        }
        if let url = try body.string("return_url") { try Validation.webhookURL(url, field: "return_url") }
        try body.checkFreeFormSize(except: ["merchant_id", "merchant_name", "webhook_details"], field: "metadata")
        _ = try body.bool("enable_payment_response_hash")
        _ = try body.anyObject("metadata")
        _ = try body.anyObject("merchant_details")
        _ = try body.bool("sub_merchants_enabled")
        return document
    }

    func merchantResponse(_ merchantId: String, newSecrets: [String: String] = [:]) async throws -> JSONValue? {
        let rows = try await postgres.query("""
            SELECT merchant_name, document::text, default_profile_id, publishable_key, organization_id
            FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)
            """, logger: logger)
        for try await (name, documentText, profileId, publishableKey, organizationId) in rows.decode((String?, String, String?, String?, String?).self) {
            let document = PaywireJSON.fields(of: documentText)
            var profile: [String: JSONValue] = [:]
            if let profileId, case .object(let loaded)? = try await profiles.profileResponse(merchantId: merchantId, profileId: profileId, newSecrets: newSecrets) {
                profile = loaded
            }
            var response: [String: JSONValue] = [
                "merchant_id": .string(merchantId),
                "merchant_name": name.map(JSONValue.string) ?? .null,
                "return_url": document["return_url"] ?? .null,
                "enable_payment_response_hash": profile["enable_payment_response_hash"] ?? .bool(false),
                "payment_response_hash_key": profile["payment_response_hash_key"] ?? .null,
                "redirect_to_merchant_with_http_post": document["redirect_to_merchant_with_http_post"] ?? .bool(false),
                "merchant_details": document["merchant_details"] ?? .null,
                "webhook_details": profile["webhook_details"] ?? .null,
                "payout_routing_algorithm": .null,
                "sub_merchants_enabled": document["sub_merchants_enabled"] ?? .bool(false),
                "parent_merchant_id": .null,
                "publishable_key": publishableKey.map(JSONValue.string) ?? .null,
                "metadata": document["metadata"] ?? .null,
                "locker_id": document["locker_id"] ?? .null,
                "primary_business_details": document["primary_business_details"] ?? .array([]),
                "frm_routing_algorithm": .null,
                "organization_id": organizationId.map(JSONValue.string) ?? .null,
                "is_recon_enabled": .bool(false),
                "default_profile": profileId.map(JSONValue.string) ?? .null,
                "recon_status": .string("not_requested"),
                "pm_collect_link_config": .null,
                "product_type": .string("orchestration"),
            ]
            for (key, value) in document where response[key] == nil { response[key] = value }
            return .object(response)
        }
        return nil
    }

    func updateMerchant(_ merchantId: String, _ body: RequestObject) async throws -> JSONValue {
        let merchantName = try body.string("merchant_name", maxLength: 255)
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let changes = try merchantDocument(body)
        let newSecrets = try await writer.change(merchantId: merchantId) { connection -> [String: String] in
            let rows = try await connection.query("""
                UPDATE gateway.merchant_accounts
                SET merchant_name = COALESCE(\(merchantName), merchant_name), document = document || \(PaywireJSON.text(JSONValue.object(changes)))::jsonb, modified_at = now()
                WHERE merchant_id = \(merchantId) RETURNING default_profile_id
                """, logger: logger)
            var profileId: String?
            var found = false
            for try await id in rows.decode(String?.self) { profileId = id; found = true }
            guard found else { throw APIError.notFound("Merchant account") }
            return try await endpoints.apply(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
        }
        guard let account = try await merchantResponse(merchantId, newSecrets: newSecrets) else { throw APIError.notFound("Merchant account") }
        return account
    }

    func deleteMerchant(_ merchantId: String) async throws -> JSONValue {
        try await writer.change(merchantId: merchantId) { connection in
            let rows = try await connection.query("DELETE FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId) RETURNING 1", logger: logger)
            guard try await rows.hasRows() else { throw APIError.notFound("Merchant account") }
            try await connection.query("INSERT INTO gateway.retired_merchant_ids (merchant_id) VALUES (\(merchantId)) ON CONFLICT DO NOTHING", logger: logger)
        }
        return .object(["merchant_id": .string(merchantId), "deleted": .bool(true)])
    }
}
