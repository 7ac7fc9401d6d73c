import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Business profiles: their settings, the legacy webhook fields and custom webhook headers (both
/// sealed), and through `webhook_details` their endpoints. Every change goes through
/// `ConfigurationWriter.change`, which publishes the new version.
struct BusinessProfileStore: Sendable {
    let writer: ConfigurationWriter
    let secrets: SecretBox
    let endpoints: WebhookEndpointStore
    var postgres: PostgresClient { writer.postgres }
    var logger: Logger { writer.logger }

    // MARK: Business profiles

    static let managedProfileFields: Set<String> = [
        "profile_id", "merchant_id", "profile_name", "webhook_details", "payment_response_hash_key",
        "outgoing_webhook_custom_http_headers",
    ]

    private func profileDocumentChanges(_ body: RequestObject, profileId: String) throws -> [String: JSONValue] {
        var changes = body.fields.filter { !Self.managedProfileFields.contains($0.key) }
        if let url = try body.string("return_url") { try Validation.webhookURL(url, field: "return_url") }
        _ = try body.bool("enable_payment_response_hash")
        _ = try body.anyObject("metadata")
        _ = try body.integer("session_expiry", range: 0...7_776_000)
        _ = try body.integer("intent_fulfillment_time", range: 0...7_776_000)
        if let algorithm = try body.string("revenue_recovery_retry_algorithm_type"), !["monitoring", "cascading", "smart"].contains(algorithm) {
            throw APIError.invalid("revenue_recovery_retry_algorithm_type", "must be one of monitoring, cascading, smart")
        }
        try body.checkFreeFormSize(except: Self.managedProfileFields, field: "metadata")
        if let headers = try body.anyObject("outgoing_webhook_custom_http_headers"), case .object(let map) = headers {
            guard map.count <= CustomWebhookHeaders.maxCount else {
                throw APIError.invalid("outgoing_webhook_custom_http_headers", "at most \(CustomWebhookHeaders.maxCount) headers")
            }
            var seen = Set<String>()
            for (name, value) in map.sorted(by: { $0.key < $1.key }) {
                let field = "outgoing_webhook_custom_http_headers.\(name)"
                guard case .string(let text) = value else { throw APIError.invalid(field, "must be a string") }
                if let problem = CustomWebhookHeaders.problem(name: name, value: text) { throw APIError.invalid(field, problem) }
                guard seen.insert(name.lowercased()).inserted else { throw APIError.invalid(field, "is given twice (header names ignore case)") }
            }
            changes["outgoing_webhook_custom_http_headers"] = .string(try secrets.seal(try PaywireJSON.text(headers), as: .profileCustomHeaders, row: profileId))
        } else if body.has("outgoing_webhook_custom_http_headers") {
            changes["outgoing_webhook_custom_http_headers"] = .null
        }
        return changes
    }

    func createProfile(merchantId: String, _ body: RequestObject) async throws -> JSONValue {
        let name = try body.string("profile_name", maxLength: 64) ?? Identifier.make("profile")
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let profileId = Identifier.make("pro")
        let document = try profileDocumentChanges(body, profileId: profileId)
        let hashEnabled = try body.bool("enable_payment_response_hash") ?? true
        let newSecrets = try await writer.change(merchantId: merchantId) { connection -> [String: String] in
            guard try await writer.merchantExists(merchantId, on: connection) else { throw APIError.notFound("Merchant account") }
            let rows = try await connection.query("""
                INSERT INTO gateway.business_profiles (profile_id, merchant_id, profile_name, document, payment_response_hash_key)
                VALUES (\(profileId), \(merchantId), \(name), \(PaywireJSON.text(JSONValue.object(document)))::jsonb, \(try hashEnabled ? secrets.seal(Identifier.random(64), as: .profileHashKey, row: profileId) : nil))
                ON CONFLICT (merchant_id, profile_name) DO NOTHING RETURNING 1
                """, logger: logger)
            let inserted = try await rows.hasRows()
            guard inserted else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "A business profile with this name already exists", field: "profile_name")
            }
            return try await endpoints.apply(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
        }
        return try await profileResponse(merchantId: merchantId, profileId: profileId, newSecrets: newSecrets) ?? .null
    }

    func updateProfile(merchantId: String, profileId: String, _ body: RequestObject) async throws -> JSONValue {
        let name = try body.string("profile_name", maxLength: 64)
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let changes = try profileDocumentChanges(body, profileId: profileId)
        let newSecrets = try await writer.change(merchantId: merchantId) { connection -> [String: String] in
            if let name {
                let taken = try await connection.query("SELECT 1 FROM gateway.business_profiles WHERE merchant_id = \(merchantId) AND profile_name = \(name) AND profile_id <> \(profileId)", logger: logger)
                guard try await !taken.hasRows() else {
                    throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "A business profile with this name already exists", field: "profile_name")
                }
            }
            let rows = try await connection.query("""
                UPDATE gateway.business_profiles
                SET profile_name = COALESCE(\(name), profile_name), document = document || \(PaywireJSON.text(JSONValue.object(changes)))::jsonb, modified_at = now()
                WHERE profile_id = \(profileId) AND merchant_id = \(merchantId) RETURNING payment_response_hash_key
                """, logger: logger)
            var found = false
            var hashKey: String?
            for try await key in rows.decode(String?.self) { found = true; hashKey = key }
            guard found else { throw APIError.notFound("Business profile") }
            // Turning the hash on for a profile that never had a key creates one.
            if try body.bool("enable_payment_response_hash") == true, hashKey == nil {
                try await connection.query("UPDATE gateway.business_profiles SET payment_response_hash_key = \(try secrets.seal(Identifier.random(64), as: .profileHashKey, row: profileId)) WHERE profile_id = \(profileId)", logger: logger)
            }
            return try await endpoints.apply(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
        }
        return try await profileResponse(merchantId: merchantId, profileId: profileId, newSecrets: newSecrets) ?? .null
    }

    func listProfiles(merchantId: String) async throws -> JSONValue {
        let rows = try await postgres.query("SELECT profile_id FROM gateway.business_profiles WHERE merchant_id = \(merchantId) ORDER BY created_at", logger: logger)
        var ids: [String] = []
        for try await id in rows.decode(String.self) { ids.append(id) }
        var profiles: [JSONValue] = []
        for id in ids {
            if let profile = try await profileResponse(merchantId: merchantId, profileId: id) { profiles.append(profile) }
        }
        return .array(profiles)
    }

    func profileResponse(merchantId: String, profileId: String, newSecrets: [String: String] = [:]) async throws -> JSONValue? {
        let rows = try await postgres.query("""
            SELECT profile_name, document::text, payment_response_hash_key, webhook_password IS NOT NULL
            FROM gateway.business_profiles WHERE profile_id = \(profileId) AND merchant_id = \(merchantId)
            """, logger: logger)
        for try await (name, documentText, sealedHashKey, hasPassword) in rows.decode((String, String, String?, Bool).self) {
            let document = PaywireJSON.fields(of: documentText)
            let endpoints = try await self.endpoints.endpointResponses(profileId: profileId, newSecrets: newSecrets)
            var webhookDetails: [String: JSONValue] = [
                "webhook_version": .null, "webhook_username": .null, "webhook_password": .null, "webhook_url": .null,
                "payment_created_enabled": .null, "payment_succeeded_enabled": .null, "payment_failed_enabled": .null,
            ]
            if case .object(let legacy)? = document["webhook_details"] {
                webhookDetails.merge(legacy) { _, stored in stored }
            }
            // The legacy password is a credential: it is never returned, only whether one is set.
            webhookDetails["webhook_password"] = hasPassword ? .string("***") : .null
            webhookDetails["multiple_webhooks_list"] = endpoints.isEmpty ? .null : .array(endpoints)
            // Which of the two is in effect: endpoints that are not deprecated replace the legacy
            // URL; with none (or only deprecated ones) the legacy URL receives every event.
            let liveEndpoints = endpoints.contains { $0["status"]?.stringValue != "deprecated" }
            webhookDetails["delivery_target"] = .string(liveEndpoints ? "multiple_webhooks_list" : (webhookDetails["webhook_url"]?.stringValue != nil ? "webhook_url" : "none"))
            var headers: JSONValue = .null
            if case .string(let sealed)? = document["outgoing_webhook_custom_http_headers"],
               let text = try? secrets.open(sealed, as: .profileCustomHeaders, row: profileId),
               case .object(let map)? = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(text.utf8)) {
                // Header values are often tokens; only names come back.
                headers = .object(map.mapValues { _ in .string("***") })
            }
            var response: [String: JSONValue] = [
                "merchant_id": .string(merchantId),
                "profile_id": .string(profileId),
                "profile_name": .string(name),
                "return_url": .null,
                "enable_payment_response_hash": .bool(sealedHashKey != nil),
                "payment_response_hash_key": try sealedHashKey.map { .string(try secrets.open($0, as: .profileHashKey, row: profileId)) } ?? .null,
                "redirect_to_merchant_with_http_post": .bool(false),
                "metadata": .null,
                "routing_algorithm": .null,
                "intent_fulfillment_time": .null,
                "frm_routing_algorithm": .null,
                "payout_routing_algorithm": .null,
                "applepay_verified_domains": .null,
                "session_expiry": .null,
                "payment_link_config": .null,
                "authentication_connector_details": .null,
                "use_billing_as_payment_method_billing": .bool(true),
                "extended_card_info_config": .null,
                "collect_shipping_details_from_wallet_connector": .bool(false),
                "collect_billing_details_from_wallet_connector": .bool(false),
                "always_collect_shipping_details_from_wallet_connector": .bool(false),
                "always_collect_billing_details_from_wallet_connector": .bool(false),
                "is_connector_agnostic_mit_enabled": .bool(false),
                "payout_link_config": .null,
                "tax_connector_id": .null,
                "is_tax_connector_enabled": .bool(false),
                "is_network_tokenization_enabled": .bool(false),
                "is_auto_retries_enabled": .bool(false),
                "max_auto_retries_enabled": .null,
                "always_request_extended_authorization": .null,
                "is_click_to_pay_enabled": .bool(false),
                "authentication_product_ids": .null,
                "is_clear_pan_retries_enabled": .bool(false),
                "revenue_recovery_retry_algorithm_type": .null,
            ]
            for (key, value) in document where key != "webhook_details" && key != "outgoing_webhook_custom_http_headers" {
                response[key] = value
            }
            response["enable_payment_response_hash"] = .bool(sealedHashKey != nil)
            response["webhook_details"] = .object(webhookDetails)
            response["outgoing_webhook_custom_http_headers"] = headers
            return .object(response)
        }
        return nil
    }
}
