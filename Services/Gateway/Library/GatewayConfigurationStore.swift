import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Reads and writes the configuration the gateway owns. Every change runs in one transaction that
/// also bumps the merchant's configuration version, which is how other services' caches learn of it.
struct GatewayConfigurationStore: Sendable {
    let postgres: PostgresClient
    let secrets: SecretBox
    let logger: Logger
    /// `PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS`: off in production, so a webhook URL naming a
    /// loopback, private or link-local address is refused when it is set.
    var allowPrivateNetworks = false
    /// Every change is published, in its transaction, as the merchant's new configuration.
    var publisher = ConfigurationPublisher(topic: TopicNames().configuration, logger: Logger(label: "paywire.gateway.configuration"))

    /// A webhook target that names a private address literally is refused here; a name that
    /// resolves to one is refused by the dispatcher when it sends.
    func checkTarget(_ url: String?, field: String) throws {
        guard !allowPrivateNetworks, let url, let host = URLComponents(string: url)?.host else { return }
        if let problem = NetworkAddressPolicy.refusal(forLiteral: host) {
            throw APIError.invalid(field, "must not point at \(problem)")
        }
    }

    static let defaultProfileName = "default"

    // MARK: Merchant accounts

    func createMerchant(_ body: RequestObject) async throws -> JSONValue {
        let merchantId = try body.requiredString("merchant_id", maxLength: 64)
        try Validation.identifier(merchantId, field: "merchant_id")
        let merchantName = try body.string("merchant_name", maxLength: 255)
        let hashEnabled = try body.bool("enable_payment_response_hash") ?? true
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let document = try merchantDocument(body)
        let profileId = GatewayIdentifiers.make("pro")
        let publishableKey = "pk_dev_" + GatewayIdentifiers.random(32).lowercased()
        let organizationId = GatewayIdentifiers.make("org")
        let newSecrets = try await postgres.withTransaction(logger: logger) { connection -> [String: String] in
            // A deleted merchant's id is never given out again: payments, events and keys made
            // under it elsewhere must never be seen by a new owner.
            let retired = try await connection.query("SELECT 1 FROM gateway.retired_merchant_ids WHERE merchant_id = \(merchantId)", logger: logger)
            guard try await !retired.hasRows() else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "This merchant_id belonged to a deleted merchant account and stays reserved; choose another", field: "merchant_id")
            }
            let inserted = try await connection.query("""
                INSERT INTO gateway.merchant_accounts (merchant_id, merchant_name, document, default_profile_id, publishable_key, organization_id)
                VALUES (\(merchantId), \(merchantName), \(try Self.json(document))::jsonb, \(profileId), \(publishableKey), \(organizationId))
                ON CONFLICT (merchant_id) DO NOTHING RETURNING 1
                """, logger: logger)
            let created = try await inserted.hasRows()
            guard created else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "The merchant account with the specified details already exists", field: "merchant_id")
            }
            let hashKey = hashEnabled ? GatewayIdentifiers.random(64) : nil
            try await connection.query("""
                INSERT INTO gateway.business_profiles (profile_id, merchant_id, profile_name, document, payment_response_hash_key)
                VALUES (\(profileId), \(merchantId), \(Self.defaultProfileName), \(try Self.json(.object(["return_url": document["return_url"] ?? .null, "enable_payment_response_hash": .bool(hashEnabled)])))::jsonb, \(try hashKey.map { try secrets.seal($0, as: .profileHashKey, row: profileId) }))
                """, logger: logger)
            return try await finishChange(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
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
            let document = Self.object(documentText)
            var profile: [String: JSONValue] = [:]
            if let profileId, case .object(let loaded)? = try await profileResponse(merchantId: merchantId, profileId: profileId, newSecrets: newSecrets) {
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
        let newSecrets = try await postgres.withTransaction(logger: logger) { connection -> [String: String] in
            let rows = try await connection.query("""
                UPDATE gateway.merchant_accounts
                SET merchant_name = COALESCE(\(merchantName), merchant_name), document = document || \(try Self.json(.object(changes)))::jsonb, modified_at = now()
                WHERE merchant_id = \(merchantId) RETURNING default_profile_id
                """, logger: logger)
            var profileId: String?
            var found = false
            for try await id in rows.decode(String?.self) { profileId = id; found = true }
            guard found else { throw APIError.notFound("Merchant account") }
            return try await finishChange(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
        }
        guard let account = try await merchantResponse(merchantId, newSecrets: newSecrets) else { throw APIError.notFound("Merchant account") }
        return account
    }

    func deleteMerchant(_ merchantId: String) async throws -> JSONValue {
        let deleted = try await postgres.withTransaction(logger: logger) { connection -> Bool in
            let rows = try await connection.query("DELETE FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId) RETURNING 1", logger: logger)
            let deleted = try await rows.hasRows()
            if deleted {
                try await connection.query("INSERT INTO gateway.retired_merchant_ids (merchant_id) VALUES (\(merchantId)) ON CONFLICT DO NOTHING", logger: logger)
                try await bumpVersion(merchantId, on: connection)
            }
            return deleted
        }
        guard deleted else { throw APIError.notFound("Merchant account") }
        return .object(["merchant_id": .string(merchantId), "merchant_deleted": .bool(true)])
    }

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
            changes["outgoing_webhook_custom_http_headers"] = .string(try secrets.seal(String(decoding: try PaywireJSON.encoder.encode(headers), as: UTF8.self), as: .profileCustomHeaders, row: profileId))
        } else if body.has("outgoing_webhook_custom_http_headers") {
            changes["outgoing_webhook_custom_http_headers"] = .null
        }
        return changes
    }

    func createProfile(merchantId: String, _ body: RequestObject) async throws -> JSONValue {
        let name = try body.string("profile_name", maxLength: 64) ?? GatewayIdentifiers.make("profile")
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let profileId = GatewayIdentifiers.make("pro")
        let document = try profileDocumentChanges(body, profileId: profileId)
        let hashEnabled = try body.bool("enable_payment_response_hash") ?? true
        let newSecrets = try await postgres.withTransaction(logger: logger) { connection -> [String: String] in
            guard try await merchantExists(merchantId, on: connection) else { throw APIError.notFound("Merchant account") }
            let rows = try await connection.query("""
                INSERT INTO gateway.business_profiles (profile_id, merchant_id, profile_name, document, payment_response_hash_key)
                VALUES (\(profileId), \(merchantId), \(name), \(try Self.json(.object(document)))::jsonb, \(try hashEnabled ? secrets.seal(GatewayIdentifiers.random(64), as: .profileHashKey, row: profileId) : nil))
                ON CONFLICT (merchant_id, profile_name) DO NOTHING RETURNING 1
                """, logger: logger)
            let inserted = try await rows.hasRows()
            guard inserted else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "A business profile with this name already exists", field: "profile_name")
            }
            return try await finishChange(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
        }
        return try await profileResponse(merchantId: merchantId, profileId: profileId, newSecrets: newSecrets) ?? .null
    }

    func updateProfile(merchantId: String, profileId: String, _ body: RequestObject) async throws -> JSONValue {
        let name = try body.string("profile_name", maxLength: 64)
        let webhookDetails = try body.object("webhook_details").map(WebhookDetails.parse)
        let changes = try profileDocumentChanges(body, profileId: profileId)
        let newSecrets = try await postgres.withTransaction(logger: logger) { connection -> [String: String] in
            if let name {
                let taken = try await connection.query("SELECT 1 FROM gateway.business_profiles WHERE merchant_id = \(merchantId) AND profile_name = \(name) AND profile_id <> \(profileId)", logger: logger)
                guard try await !taken.hasRows() else {
                    throw APIError(status: .conflict, type: "invalid_request", code: "IR_38", message: "A business profile with this name already exists", field: "profile_name")
                }
            }
            let rows = try await connection.query("""
                UPDATE gateway.business_profiles
                SET profile_name = COALESCE(\(name), profile_name), document = document || \(try Self.json(.object(changes)))::jsonb, modified_at = now()
                WHERE profile_id = \(profileId) AND merchant_id = \(merchantId) RETURNING payment_response_hash_key
                """, logger: logger)
            var found = false
            var hashKey: String?
            for try await key in rows.decode(String?.self) { found = true; hashKey = key }
            guard found else { throw APIError.notFound("Business profile") }
            // Turning the hash on for a profile that never had a key creates one.
            if try body.bool("enable_payment_response_hash") == true, hashKey == nil {
                try await connection.query("UPDATE gateway.business_profiles SET payment_response_hash_key = \(try secrets.seal(GatewayIdentifiers.random(64), as: .profileHashKey, row: profileId)) WHERE profile_id = \(profileId)", logger: logger)
            }
            return try await finishChange(webhookDetails, merchantId: merchantId, profileId: profileId, on: connection)
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
            let document = Self.object(documentText)
            let endpoints = try await endpointResponses(profileId: profileId, newSecrets: newSecrets)
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

    // MARK: Webhook endpoints

    /// Applies `webhook_details` to a profile. A given `multiple_webhooks_list` is the profile's
    /// whole list: entries with an id update that endpoint, entries without one create an endpoint,
    /// and endpoints left out are removed. Returns the secrets of endpoints it created.
    func applyWebhookDetails(_ details: WebhookDetails, merchantId: String, profileId: String, fieldPrefix: String, on connection: PostgresConnection) async throws -> [String: String] {
        try checkTarget(details.webhookURL, field: "\(fieldPrefix).webhook_url")
        let legacy = try Self.json(.object(["webhook_details": .object(details.legacyDocument)]))
        let password = try details.webhookPassword.map { try secrets.seal($0, as: .profileWebhookPassword, row: profileId) }
        try await connection.query("""
            UPDATE gateway.business_profiles SET document = document || \(legacy)::jsonb, webhook_password = \(password)
            WHERE profile_id = \(profileId)
            """, logger: logger)
        guard let inputs = details.endpoints else { return [:] }
        var existing: [String: String] = [:]
        let rows = try await connection.query("SELECT webhook_endpoint_id, status FROM gateway.webhook_endpoints WHERE profile_id = \(profileId) FOR UPDATE", logger: logger)
        for try await (id, status) in rows.decode((String, String).self) { existing[id] = status }
        // Endpoints left out go first, so a list that replaces them fits within the cap.
        let removed = Array(Set(existing.keys).subtracting(inputs.compactMap(\.endpointId)))
        if !removed.isEmpty {
            try await connection.query("DELETE FROM gateway.webhook_endpoints WHERE webhook_endpoint_id = ANY(\(removed))", logger: logger)
        }
        var created: [String: String] = [:]
        for (index, input) in inputs.enumerated() {
            let field = "\(fieldPrefix).multiple_webhooks_list[\(index)]"
            if let id = input.endpointId {
                guard existing[id] != nil else {
                    throw APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "Webhook endpoint does not exist in this profile", field: "\(field).webhook_endpoint_id")
                }
                try await updateEndpoint(id, input, currentStatus: existing[id]!, field: field, on: connection)
            } else {
                let (id, secret) = try await insertEndpoint(input, merchantId: merchantId, profileId: profileId, field: field, on: connection)
                created[id] = secret
            }
        }
        return created
    }

    func insertEndpoint(_ input: EndpointInput, merchantId: String, profileId: String, field: String, on connection: PostgresConnection) async throws -> (String, String) {
        guard let url = input.url else { throw APIError.invalid("\(field).webhook_url", "is required", code: "IR_05") }
        guard let events = input.events else { throw APIError.invalid("\(field).events", "is required", code: "IR_05") }
        try checkTarget(url, field: field.isEmpty ? "webhook_url" : "\(field).webhook_url")
        // Callers hold the profile's endpoints locked (FOR UPDATE), so the count cannot race.
        let countRows = try await connection.query("SELECT count(*) FROM gateway.webhook_endpoints WHERE profile_id = \(profileId)", logger: logger)
        var count = 0
        for try await value in countRows.decode(Int.self) { count = value }
        guard count < InputLimits.endpointsPerProfile else {
            throw APIError(status: .conflict, type: "invalid_request", code: "IR_39", message: "The profile already has \(InputLimits.endpointsPerProfile) webhook endpoints, the most it may have (deprecated ones included); remove one first", field: field.isEmpty ? "webhook_url" : "\(field).webhook_url")
        }
        let id = GatewayIdentifiers.make("whe")
        let secret = GatewayIdentifiers.webhookSecret()
        try await connection.query("""
            INSERT INTO gateway.webhook_endpoints (webhook_endpoint_id, profile_id, merchant_id, webhook_url, events, status, secret, rate_limit, ordering)
            VALUES (\(id), \(profileId), \(merchantId), \(url), \(events), \(input.status ?? "active"), \(try secrets.seal(secret, as: .endpointSigningSecret, row: id)), \(input.rateLimit ?? nil), \(input.ordering ?? "none"))
            """, logger: logger)
        return (id, secret)
    }

    func updateEndpoint(_ id: String, _ input: EndpointInput, currentStatus: String, field: String, on connection: PostgresConnection) async throws {
        try checkTarget(input.url, field: field.isEmpty ? "webhook_url" : "\(field).webhook_url")
        if currentStatus == "deprecated" {
            let changes = input.status.map { $0 != "deprecated" } ?? false || input.url != nil || input.events != nil || input.rateLimit != nil || input.ordering != nil
            if changes { throw APIError.invalid(field.isEmpty ? "status" : "\(field).status", "a deprecated endpoint can never be changed or reactivated") }
            return
        }
        try await connection.query("""
            UPDATE gateway.webhook_endpoints
            SET webhook_url = COALESCE(\(input.url), webhook_url), events = COALESCE(\(input.events), events),
                status = COALESCE(\(input.status), status),
                rate_limit = CASE WHEN \(input.rateLimit != nil) THEN \(input.rateLimit ?? nil) ELSE rate_limit END,
                ordering = COALESCE(\(input.ordering), ordering), modified_at = now()
            WHERE webhook_endpoint_id = \(id)
            """, logger: logger)
    }

    func endpointResponses(profileId: String, onlyId: String? = nil, newSecrets: [String: String] = [:]) async throws -> [JSONValue] {
        let rows = try await postgres.query("""
            SELECT webhook_endpoint_id, webhook_url, events, status, rate_limit, ordering FROM gateway.webhook_endpoints
            WHERE profile_id = \(profileId) AND (\(onlyId)::text IS NULL OR webhook_endpoint_id = \(onlyId)) ORDER BY position
            """, logger: logger)
        var endpoints: [JSONValue] = []
        for try await (id, url, events, status, rateLimit, ordering) in rows.decode((String, String, [String], String, Int?, String).self) {
            var endpoint: [String: JSONValue] = [
                "webhook_endpoint_id": .string(id), "webhook_url": .string(url),
                "events": .array(events.map(JSONValue.string)), "status": .string(status),
                "rate_limit": rateLimit.map { .number(Double($0)) } ?? .null, "ordering": .string(ordering),
            ]
            // A signing secret is shown once: in the answer that created or rotated it.
            if let secret = newSecrets[id] { endpoint["signing_secret"] = .string(secret) }
            endpoints.append(.object(endpoint))
        }
        return endpoints
    }

    func requireProfile(merchantId: String, profileId: String) async throws {
        let rows = try await postgres.query("SELECT 1 FROM gateway.business_profiles WHERE profile_id = \(profileId) AND merchant_id = \(merchantId)", logger: logger)
        guard try await rows.hasRows() else { throw APIError.notFound("Business profile") }
    }

    func createEndpoint(merchantId: String, profileId: String, _ body: RequestObject) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        let input = try EndpointInput.parse(body)
        let (id, secret) = try await postgres.withTransaction(logger: logger) { connection in
            // Concurrent creations for one profile queue here, so the endpoint cap holds.
            try await connection.query("SELECT 1 FROM gateway.business_profiles WHERE profile_id = \(profileId) FOR UPDATE", logger: logger)
            let created = try await insertEndpoint(input, merchantId: merchantId, profileId: profileId, field: "", on: connection)
            try await bumpVersion(merchantId, on: connection)
            return created
        }
        return try await endpointResponses(profileId: profileId, onlyId: id, newSecrets: [id: secret]).first ?? .null
    }

    func updateEndpoint(merchantId: String, profileId: String, endpointId: String, _ body: RequestObject) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        let input = try EndpointInput.parse(body)
        try await postgres.withTransaction(logger: logger) { connection in
            let status = try await lockedEndpointStatus(endpointId, profileId: profileId, on: connection)
            try await updateEndpoint(endpointId, input, currentStatus: status, field: "", on: connection)
            try await bumpVersion(merchantId, on: connection)
        }
        return try await endpointResponses(profileId: profileId, onlyId: endpointId).first ?? .null
    }

    /// DELETE deprecates: the endpoint stops receiving events for good, and its delivery history
    /// keeps pointing at a row that still exists.
    func deprecateEndpoint(merchantId: String, profileId: String, endpointId: String) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        try await postgres.withTransaction(logger: logger) { connection in
            _ = try await lockedEndpointStatus(endpointId, profileId: profileId, on: connection)
            try await connection.query("UPDATE gateway.webhook_endpoints SET status = 'deprecated', modified_at = now() WHERE webhook_endpoint_id = \(endpointId)", logger: logger)
            try await bumpVersion(merchantId, on: connection)
        }
        return try await endpointResponses(profileId: profileId, onlyId: endpointId).first ?? .null
    }

    /// A new secret now; the old one keeps verifying for 24 hours so receivers can switch over.
    func rotateSecret(merchantId: String, profileId: String, endpointId: String) async throws -> JSONValue {
        try await requireProfile(merchantId: merchantId, profileId: profileId)
        let secret = GatewayIdentifiers.webhookSecret()
        try await postgres.withTransaction(logger: logger) { connection in
            let status = try await lockedEndpointStatus(endpointId, profileId: profileId, on: connection)
            guard status != "deprecated" else { throw APIError.invalid("webhook_endpoint_id", "a deprecated endpoint can never be changed or reactivated") }
            try await connection.query("""
                UPDATE gateway.webhook_endpoints
                SET previous_secret = secret, previous_secret_expires_at = now() + interval '24 hours',
                    secret = \(try secrets.seal(secret, as: .endpointSigningSecret, row: endpointId)), modified_at = now()
                WHERE webhook_endpoint_id = \(endpointId)
                """, logger: logger)
            try await bumpVersion(merchantId, on: connection)
        }
        return try await endpointResponses(profileId: profileId, onlyId: endpointId, newSecrets: [endpointId: secret]).first ?? .null
    }

    private func lockedEndpointStatus(_ endpointId: String, profileId: String, on connection: PostgresConnection) async throws -> String {
        let rows = try await connection.query("SELECT status FROM gateway.webhook_endpoints WHERE webhook_endpoint_id = \(endpointId) AND profile_id = \(profileId) FOR UPDATE", logger: logger)
        for try await status in rows.decode(String.self) { return status }
        throw APIError.notFound("Webhook endpoint")
    }

    // MARK: API keys

    func createAPIKey(merchantId: String, _ body: RequestObject) async throws -> JSONValue {
        let name = try body.requiredString("name", maxLength: 64)
        let description = try body.string("description", maxLength: 256)
        let expiration = try Self.expiration(body)
        let keyId = GatewayIdentifiers.make("dev")
        let secret = GatewayIdentifiers.apiKeySecret()
        let created = try await postgres.withTransaction(logger: logger) { connection -> Date in
            guard try await merchantExists(merchantId, on: connection) else { throw APIError.notFound("Merchant account") }
            let rows = try await connection.query("""
                INSERT INTO gateway.api_keys (key_id, merchant_id, name, description, prefix, hashed_key, expiration)
                VALUES (\(keyId), \(merchantId), \(name), \(description), \(String(secret.prefix(12))), \(GatewayIdentifiers.hash(apiKey: secret)), \(expiration))
                RETURNING created_at
                """, logger: logger)
            for try await date in rows.decode(Date.self) { return date }
            return Date()
        }
        return .object([
            "key_id": .string(keyId), "merchant_id": .string(merchantId), "name": .string(name),
            "description": description.map(JSONValue.string) ?? .null,
            // The only time the key itself is ever shown: only its hash is stored.
            "api_key": .string(secret),
            "created": .string(PaywireJSON.format(created)),
            "expiration": expiration.map { .string(PaywireJSON.format($0)) } ?? .string("never"),
        ])
    }

    static func expiration(_ body: RequestObject) throws -> Date? {
        guard let text = try body.string("expiration", maxLength: 64), text != "never" else { return nil }
        guard let date = RFC3339.parse(text) else { throw APIError.invalid("expiration", "must be \"never\" or an RFC 3339 date-time") }
        guard date > Date() else { throw APIError.invalid("expiration", "must be in the future") }
        return date
    }

    func apiKeys(merchantId: String, keyId: String? = nil) async throws -> [JSONValue] {
        let rows = try await postgres.query("""
            SELECT key_id, name, description, prefix, created_at, expiration FROM gateway.api_keys
            WHERE merchant_id = \(merchantId) AND NOT revoked AND (\(keyId)::text IS NULL OR key_id = \(keyId)) ORDER BY created_at
            """, logger: logger)
        var keys: [JSONValue] = []
        for try await (id, name, description, prefix, created, expiration) in rows.decode((String, String, String?, String, Date, Date?).self) {
            keys.append(.object([
                "key_id": .string(id), "merchant_id": .string(merchantId), "name": .string(name),
                "description": description.map(JSONValue.string) ?? .null, "prefix": .string(prefix),
                "created": .string(PaywireJSON.format(created)),
                "expiration": expiration.map { .string(PaywireJSON.format($0)) } ?? .string("never"),
            ]))
        }
        return keys
    }

    func revokeAPIKey(merchantId: String, keyId: String) async throws -> JSONValue {
        let rows = try await postgres.query("UPDATE gateway.api_keys SET revoked = true WHERE merchant_id = \(merchantId) AND key_id = \(keyId) AND NOT revoked RETURNING 1", logger: logger)
        guard try await rows.hasRows() else { throw APIError.notFound("API key") }
        return .object(["merchant_id": .string(merchantId), "key_id": .string(keyId), "revoked": .bool(true)])
    }

    // MARK: Helpers

    /// A cheap existence check, for paths that need no more than that.
    func merchantExists(_ merchantId: String, on connection: PostgresConnection? = nil) async throws -> Bool {
        let query: PostgresQuery = "SELECT 1 FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)"
        if let connection { return try await connection.query(query, logger: logger).hasRows() }
        return try await postgres.query(query, logger: logger).hasRows()
    }

    /// The common end of every configuration change: apply `webhook_details` if given (to the
    /// profile, when there is one) and bump the merchant's version. Returns new endpoint secrets.
    func finishChange(_ details: WebhookDetails?, merchantId: String, profileId: String?, on connection: PostgresConnection) async throws -> [String: String] {
        var newSecrets: [String: String] = [:]
        if let details, let profileId {
            newSecrets = try await applyWebhookDetails(details, merchantId: merchantId, profileId: profileId, fieldPrefix: "webhook_details", on: connection)
        }
        try await bumpVersion(merchantId, on: connection)
        return newSecrets
    }

    /// Every configuration change ends here, in its transaction: a new version, published.
    func bumpVersion(_ merchantId: String, on connection: PostgresConnection) async throws {
        try await publisher.publishChange(merchantId, on: connection)
    }

    static func json(_ value: JSONValue) throws -> String {
        String(decoding: try PaywireJSON.encoder.encode(value), as: UTF8.self)
    }

    static func json(_ object: [String: JSONValue]) throws -> String { try json(.object(object)) }

    static func object(_ text: String) -> [String: JSONValue] {
        if case .object(let object)? = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(text.utf8)) { return object }
        return [:]
    }
}
