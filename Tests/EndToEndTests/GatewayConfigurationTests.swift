import Crypto
import Foundation
import NIOHTTP1
import PaywireTestSupport
import Testing

/// The gateway's configuration API through the real executables, with the seeds' own payloads.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct GatewayConfigurationTests {
    /// The seed documents, copied into the repository (Tests/Fixtures/seeds).
    static let seedsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/seeds")

    /// The JSON of the curl request after `anchor` in a seed, exactly as written there.
    static func seedPayload(_ file: String, after anchor: String) throws -> String {
        let text = try String(contentsOf: seedsDirectory.appendingPathComponent(file), encoding: .utf8)
        let start = try #require(text.range(of: anchor))
        let dataStart = try #require(text.range(of: "--data-raw '", range: start.upperBound..<text.endIndex) ?? text.range(of: "--data '", range: start.upperBound..<text.endIndex))
        let end = try #require(text.range(of: "}'", range: dataStart.upperBound..<text.endIndex))
        return String(text[dataStart.upperBound..<end.lowerBound]) + "}"
    }

    func object(_ result: PaywireStack.HTTPResult) throws -> [String: Any] {
        try #require(result.json, "not a JSON object: \(result.body)")
    }

    func expectError(_ result: PaywireStack.HTTPResult, status: Int, field: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(result.body)", sourceLocation: sourceLocation)
        let error = result.json?["error"] as? [String: Any]
        #expect(error != nil, "no error object: \(result.body)", sourceLocation: sourceLocation)
        if let field { #expect(error?["field"] as? String == field, "\(result.body)", sourceLocation: sourceLocation) }
    }

    @Test func seedRequestsEndpointsKeysIsolationAndFanOut() async throws {
        let receivers = (0..<3).map { _ in WebhookReceiver() }
        var urls: [String] = []
        for receiver in receivers { urls.append(try await receiver.start()) }
        defer { receivers.forEach { $0.stop() } }
        let stack = try await PaywireStack.start()
        let secrets: [String]
        do {
            secrets = try await run(stack, receivers: receivers, urls: urls)
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
        // Secrets appear in the answers that issue them and nowhere in any service's log.
        for service in PaywireStack.services {
            let log = stack.logs(service)
            for secret in secrets { #expect(!log.contains(secret), "\(service) logged a secret") }
        }
    }

    /// Returns the secrets it was shown, for the log scan.
    func run(_ stack: PaywireStack, receivers: [WebhookReceiver], urls: [String]) async throws -> [String] {
        // Seed 004: merchant create with three endpoints, only host and ids changed.
        var create = try Self.seedPayload("004_11f3657a74390bea.txt", after: "Merchant account create")
        create = create.replacingOccurrences(of: "merchant_1748463901", with: "merchant_seed")
            .replacingOccurrences(of: "https://webhook.site/6f2bb1bd-dbb9-432c-b4a2-c76b801f2609", with: "\(urls[0])/one")
            .replacingOccurrences(of: "https://webhook.site/381773c7-c3bd-406e-bda3-dfc5d2fea979", with: "\(urls[1])/two")
            .replacingOccurrences(of: "https://webhook.site/automatic-retry-test", with: "\(urls[2])/three")
        let merchant = try object(try await stack.request(.POST, "/accounts", body: create))
        #expect(merchant["merchant_id"] as? String == "merchant_seed")
        #expect((merchant["payment_response_hash_key"] as? String)?.count == 64)
        #expect((merchant["publishable_key"] as? String)?.hasPrefix("pk_dev_") == true)
        #expect((merchant["merchant_details"] as? [String: Any])?["primary_contact_person"] as? String == "John Test")
        #expect((merchant["metadata"] as? [String: Any])?["city"] as? String == "NY")
        let profileId = try #require(merchant["default_profile"] as? String)
        #expect(profileId.hasPrefix("pro_"))
        let details = try #require(merchant["webhook_details"] as? [String: Any])
        let list = try #require(details["multiple_webhooks_list"] as? [[String: Any]])
        #expect(list.count == 3)
        #expect(list.allSatisfy { ($0["webhook_endpoint_id"] as? String)?.hasPrefix("whe_") == true && $0["status"] as? String == "active" })
        #expect(list.map { $0["events"] as? [String] ?? [] } == [["payment_succeeded"], ["payment_succeeded", "refund_failed"], ["refund_failed", "payment_succeeded"]])
        let secrets = list.compactMap { $0["signing_secret"] as? String }
        #expect(secrets.count == 3 && secrets.allSatisfy { $0.hasPrefix("whsec_") }, "secrets are returned once, at creation")
        let hashKey = try #require(merchant["payment_response_hash_key"] as? String)

        // Retrieval never shows a signing secret again.
        let fetched = try await stack.request(.GET, "/accounts/merchant_seed")
        #expect(fetched.status == 200)
        #expect(!fetched.body.contains("signing_secret"))
        for secret in secrets { #expect(!fetched.body.contains(secret)) }

        // API keys: the secret once; the merchant's key reaches its own resources only.
        let key = try object(try await stack.request(.POST, "/api_keys/merchant_seed", body: #"{"name": "test key", "expiration": "never"}"#))
        let apiKey = try #require(key["api_key"] as? String)
        #expect(apiKey.hasPrefix("dev_"))
        let keyId = try #require(key["key_id"] as? String)
        let listed = try await stack.request(.GET, "/api_keys/merchant_seed/list", apiKey: apiKey)
        #expect(listed.status == 200)
        #expect(!listed.body.contains(apiKey))
        #expect(try await stack.request(.GET, "/accounts/merchant_seed", apiKey: apiKey).status == 200)
        expectError(try await stack.request(.GET, "/accounts/merchant_seed", apiKey: "dev_wrong"), status: 401, field: "api-key")
        expectError(try await stack.request(.GET, "/accounts/merchant_seed", apiKey: nil), status: 401, field: "api-key")
        expectError(try await stack.request(.POST, "/accounts", apiKey: apiKey, body: #"{"merchant_id": "x"}"#), status: 403, field: "api-key")

        // Tenant isolation: merchant B's key on every one of merchant A's routes answers 404.
        #expect(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "merchant_other"}"#).status == 200)
        let otherKey = try #require(try object(try await stack.request(.POST, "/api_keys/merchant_other", body: #"{"name": "b"}"#))["api_key"] as? String)
        let endpointId = try #require(list[0]["webhook_endpoint_id"] as? String)
        let routes: [(HTTPMethod, String, String?)] = [
            (.GET, "/accounts/merchant_seed", nil),
            (.POST, "/accounts/merchant_seed", #"{"merchant_name": "stolen"}"#),
            (.POST, "/api_keys/merchant_seed", #"{"name": "stolen"}"#),
            (.GET, "/api_keys/merchant_seed/list", nil),
            (.GET, "/api_keys/merchant_seed/\(keyId)", nil),
            (.DELETE, "/api_keys/merchant_seed/\(keyId)", nil),
            (.POST, "/account/merchant_seed/business_profile", #"{"profile_name": "stolen"}"#),
            (.GET, "/account/merchant_seed/business_profile", nil),
            (.GET, "/account/merchant_seed/business_profile/\(profileId)", nil),
            (.POST, "/account/merchant_seed/business_profile/\(profileId)", #"{"profile_name": "stolen"}"#),
            (.POST, "/account/merchant_seed/business_profile/\(profileId)/webhooks", #"{"webhook_url": "http://127.0.0.1:1/x", "events": ["payment_failed"]}"#),
            (.GET, "/account/merchant_seed/business_profile/\(profileId)/webhooks", nil),
            (.GET, "/account/merchant_seed/business_profile/\(profileId)/webhooks/\(endpointId)", nil),
            (.POST, "/account/merchant_seed/business_profile/\(profileId)/webhooks/\(endpointId)", #"{"status": "inactive"}"#),
            (.POST, "/account/merchant_seed/business_profile/\(profileId)/webhooks/\(endpointId)/rotate_secret", nil),
            (.DELETE, "/account/merchant_seed/business_profile/\(profileId)/webhooks/\(endpointId)", nil),
        ]
        for (method, path, body) in routes {
            let result = try await stack.request(method, path, apiKey: otherKey, body: body)
            #expect(result.status == 404, "\(method) \(path) with another merchant's key: \(result.status) \(result.body)")
        }
        var v2 = HTTPClientHeadersForTests()
        v2.add("x-merchant-id", "merchant_seed")
        #expect(try await stack.request(.PUT, "/v2/profiles/\(profileId)", apiKey: otherKey, body: "{}", headers: v2.pairs).status == 404)
        // Nothing changed under the attempts.
        #expect(try object(try await stack.request(.GET, "/accounts/merchant_seed"))["merchant_name"] as? String == "NewAge Retailer")

        // Bad input: 4xx naming the field.
        expectError(try await stack.request(.POST, "/accounts", body: "{not json"), status: 400, field: "body")
        expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": 5}"#), status: 400, field: "merchant_id")
        expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "m_bad", "webhook_details": {"multiple_webhooks_list": [{"webhook_url": "http://127.0.0.1:1/", "events": ["payment_succeeded", "payment_exploded"]}]}}"#), status: 400, field: "webhook_details.multiple_webhooks_list[0].events[1]")
        expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "m_bad", "webhook_details": {"webhook_url": "ftp://example.com/hook"}}"#), status: 400, field: "webhook_details.webhook_url")
        expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "m_bad", "webhook_details": {"webhook_url": "https://user:pw@example.com/hook"}}"#), status: 400, field: "webhook_details.webhook_url")
        expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "m_bad", "webhook_details": {"payment_failed_enabled": "yes"}}"#), status: 400, field: "webhook_details.payment_failed_enabled")
        expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "merchant_seed"}"#), status: 409, field: "merchant_id")
        expectError(try await stack.request(.POST, "/accounts", body: "{\"merchant_id\": \"m_big\", \"metadata\": {\"x\": \"" + String(repeating: "a", count: 1_100_000) + "\"}}"), status: 413, field: nil)
        expectError(try await stack.request(.POST, "/api_keys/merchant_seed", body: #"{"name": "k", "expiration": "yesterday"}"#), status: 400, field: "expiration")
        expectError(try await stack.request(.PUT, "/v2/profiles/\(profileId)", body: #"{"revenue_recovery_retry_algorithm_type": "aggressive"}"#, headers: v2.pairs), status: 400, field: "revenue_recovery_retry_algorithm_type")
        expectError(try await stack.request(.PUT, "/v2/profiles/\(profileId)", body: "{}"), status: 400, field: "x-merchant-id")
        #expect(try await stack.request(.GET, "/accounts/m_bad").status == 404, "a refused create leaves nothing behind")

        // v2 profile update from seed 002.
        let v2Update = try object(try await stack.request(.PUT, "/v2/profiles/\(profileId)", body: #"{"revenue_recovery_retry_algorithm_type": "cascading"} "#, headers: v2.pairs))
        #expect(v2Update["revenue_recovery_retry_algorithm_type"] as? String == "cascading")

        // Endpoint sub-resource: create, read, rotate, deactivate, deprecate for good.
        let base = "/account/merchant_seed/business_profile/\(profileId)/webhooks"
        let created = try object(try await stack.request(.POST, base, apiKey: apiKey, body: #"{"webhook_url": "\#(urls[2])/late", "events": ["payment_failed"]}"#))
        let lateId = try #require(created["webhook_endpoint_id"] as? String)
        let firstSecret = try #require(created["signing_secret"] as? String)
        let read = try await stack.request(.GET, "\(base)/\(lateId)", apiKey: apiKey)
        #expect(read.status == 200 && !read.body.contains("signing_secret"))
        let rotated = try object(try await stack.request(.POST, "\(base)/\(lateId)/rotate_secret", apiKey: apiKey))
        let secondSecret = try #require(rotated["signing_secret"] as? String)
        #expect(secondSecret != firstSecret)

        // Fan-out: a payment_failed event reaches exactly the subscribed active endpoints —
        // here only the endpoint created a moment ago, signed with both secrets during rotation.
        _ = try await stack.createSandboxAccount(merchantId: "merchant_seed", apiKey: apiKey)
        let payment = try object(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4000000000000002")))
        let paymentId = try #require(payment["payment_id"] as? String)
        let arrived = await eventually(timeout: .seconds(30)) { !receivers[2].requests.isEmpty }
        #expect(arrived, "dispatcher log:\n\(stack.logs("webhook-dispatcher"))")
        try await stack.waitUntilQuiet()
        #expect(receivers[0].requests.isEmpty && receivers[1].requests.isEmpty, "endpoints not subscribed to payment_failed get nothing")
        let delivered = try #require(receivers[2].requests.first)
        #expect(receivers[2].requests.count == 1)
        #expect(delivered.path == "/late")
        #expect(delivered.body.contains(paymentId))
        let expected512 = HMAC<SHA512>.authenticationCode(for: Data(delivered.body.utf8), using: SymmetricKey(data: Data(hashKey.utf8))).map { String(format: "%02x", $0) }.joined()
        #expect(delivered.headers["x-webhook-signature-512"] == expected512)
        let id = try #require(delivered.headers["webhook-id"])
        let timestamp = try #require(delivered.headers["webhook-timestamp"])
        let signatures = try #require(delivered.headers["webhook-signature"]).split(separator: " ").map(String.init)
        func standard(_ secret: String) -> String {
            let key = SymmetricKey(data: Data(base64Encoded: String(secret.dropFirst("whsec_".count)))!)
            return "v1," + Data(HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(delivered.body)".utf8), using: key)).base64EncodedString()
        }
        #expect(signatures == [standard(secondSecret), standard(firstSecret)], "new secret first, the old one still valid for 24 h")

        let inactive = try object(try await stack.request(.POST, "\(base)/\(lateId)", apiKey: apiKey, body: #"{"status": "inactive"}"#))
        #expect(inactive["status"] as? String == "inactive")
        let deprecated = try object(try await stack.request(.DELETE, "\(base)/\(lateId)", apiKey: apiKey))
        #expect(deprecated["status"] as? String == "deprecated")
        expectError(try await stack.request(.POST, "\(base)/\(lateId)", apiKey: apiKey, body: #"{"status": "active"}"#), status: 400, field: "status")

        // Seed 004's profile update (trailing commas and all): the list becomes the one endpoint.
        let keep = try #require(list[1]["webhook_endpoint_id"] as? String)
        var update = try Self.seedPayload("004_11f3657a74390bea.txt", after: "Updating business profile")
        update = update.replacingOccurrences(of: "web_LxSxKD1m6c2bUfODoWLV", with: keep)
            .replacingOccurrences(of: "https://webhook.site/04e616b8-b2c1-4a12-968f-7546ef0bb7fd", with: "\(urls[1])/updated")
        let profile = try object(try await stack.request(.POST, "/account/merchant_seed/business_profile/\(profileId)", body: update))
        #expect(profile["profile_name"] as? String == "Update")
        let updatedDetails = try #require(profile["webhook_details"] as? [String: Any])
        #expect(updatedDetails["webhook_username"] as? String == "ekart_retail")
        #expect(updatedDetails["webhook_password"] as? String == "***", "the legacy password is never returned")
        let updatedList = try #require(updatedDetails["multiple_webhooks_list"] as? [[String: Any]])
        #expect(updatedList.map { $0["webhook_endpoint_id"] as? String } == [keep])
        #expect(updatedList.first?["events"] as? [String] == ["payment_authorized", "payment_succeeded"])
        #expect(profile["session_expiry"] as? Int == 900)

        // Revoking the key locks it out at once.
        #expect(try await stack.request(.DELETE, "/api_keys/merchant_seed/\(keyId)").status == 200)
        expectError(try await stack.request(.GET, "/accounts/merchant_seed", apiKey: apiKey), status: 401, field: "api-key")

        // Delete the other merchant; its key dies with it.
        #expect(try await stack.request(.DELETE, "/accounts/merchant_other").status == 200)
        expectError(try await stack.request(.GET, "/accounts/merchant_other", apiKey: otherKey), status: 401, field: "api-key")
        return secrets + [firstSecret, secondSecret, apiKey, otherKey, "password_ekart@123"]
    }

    @Test func connectorAccountsFromSeed002AreStoredSealedAndAnsweredMasked() async throws {
        // The stack comes back stopped; its logs stay on disk for the scan below.
        let stack = try await PaywireStack.with { stack in
            let merchant = try object(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "merchant_mca"}"#))
            let profileId = try #require(merchant["default_profile"] as? String)
            let apiKey = try #require(try object(try await stack.request(.POST, "/api_keys/merchant_mca", body: #"{"name": "k"}"#))["api_key"] as? String)
            var headers = HTTPClientHeadersForTests()
            headers.add("x-merchant-id", "merchant_mca")
            headers.add("x-profile-id", profileId)
            let stripeKey = "sk_test_51Hx9FakeSecretKeyForPaywireTests"
            let payment = try Self.seedPayload("002_c133045f0a8066e5.txt", after: "Create an payment mca using this")
                .replacingOccurrences(of: "{{api_key}}", with: stripeKey)
                .replacingOccurrences(of: "{{profile_id}}", with: profileId)
            let paymentMCA = try object(try await stack.request(.POST, "/v2/connector-accounts", apiKey: apiKey, body: payment, headers: headers.pairs))
            let paymentId = try #require(paymentMCA["merchant_connector_id"] as? String)
            #expect(paymentId.hasPrefix("mca_"))
            #expect(paymentMCA["connector_name"] as? String == "stripe")
            #expect(paymentMCA["profile_id"] as? String == profileId)
            let details = try #require(paymentMCA["connector_account_details"] as? [String: Any])
            #expect(details["auth_type"] as? String == "HeaderKey")
            #expect(details["api_key"] as? String == "********ests")
            #expect((paymentMCA["metadata"] as? [String: Any])?["report_group"] as? String == "Hello")
            #expect((paymentMCA["payment_methods_enabled"] as? [Any])?.count == 1)

            let billing = try Self.seedPayload("002_c133045f0a8066e5.txt", after: "create an billing mca")
                .replacingOccurrences(of: "{{payment_mca}}", with: paymentId)
                .replacingOccurrences(of: "{{profile_id}}", with: profileId)
            let billingMCA = try object(try await stack.request(.POST, "/v2/connector-accounts", apiKey: apiKey, body: billing, headers: headers.pairs))
            let recovery = (billingMCA["feature_metadata"] as? [String: Any])?["revenue_recovery"] as? [String: Any]
            #expect(recovery?["max_retry_count"] as? Int == 9)
            #expect((recovery?["billing_account_reference"] as? [String: Any])?[paymentId] as? String == paymentId)

            let listed = try await stack.request(.GET, "/account/merchant_mca/connectors", apiKey: apiKey)
            #expect(listed.status == 200)
            #expect(!listed.body.contains(stripeKey), "credentials never come back")
            let fetched = try await stack.request(.GET, "/v2/connector-accounts/\(paymentId)", apiKey: apiKey, headers: headers.pairs)
            #expect(fetched.status == 200 && !fetched.body.contains(stripeKey))

            // Sealed at rest: the database holds no credential in the clear.
            let stored = try await withStackDatabase(stack.databaseURL(owning: "gateway")) { client in
                var text = ""
                let rows = try await client.query("SELECT account_details || coalesce(webhook_secret, '') || document::text FROM gateway.connector_accounts")
                for try await row in rows.decode(String.self) { text += row }
                return text
            }
            #expect(!stored.contains(stripeKey))

            // Bad input names the field.
            expectError(try await stack.request(.POST, "/account/merchant_mca/connectors", apiKey: apiKey, body: #"{"connector_type": "payment_processor", "connector_name": "paypal", "connector_account_details": {"auth_type": "NoKey"}}"#), status: 400, field: "connector_name")
            expectError(try await stack.request(.POST, "/account/merchant_mca/connectors", apiKey: apiKey, body: #"{"connector_type": "billing_processor", "connector_name": "stripe", "connector_account_details": {"auth_type": "NoKey"}}"#), status: 400, field: "connector_type")
            expectError(try await stack.request(.POST, "/account/merchant_mca/connectors", apiKey: apiKey, body: #"{"connector_type": "payment_processor", "connector_name": "stripe", "connector_account_details": {"auth_type": "HeaderKey"}}"#), status: 400, field: "connector_account_details.api_key")
            expectError(try await stack.request(.POST, "/account/merchant_mca/connectors", apiKey: apiKey, body: #"{"connector_type": "billing_processor", "connector_name": "custombilling", "connector_account_details": {"auth_type": "NoKey"}, "feature_metadata": {"revenue_recovery": {"max_retry_count": -1}}}"#), status: 400, field: "feature_metadata.revenue_recovery.max_retry_count")
            expectError(try await stack.request(.POST, "/account/merchant_mca/connectors", apiKey: apiKey, body: #"{"connector_type": "billing_processor", "connector_name": "custombilling", "connector_account_details": {"auth_type": "NoKey"}, "feature_metadata": {"revenue_recovery": {"max_retry_count": 3, "billing_connector_retry_threshold": 4}}}"#), status: 400, field: "feature_metadata.revenue_recovery.billing_connector_retry_threshold")

            // Update rotates the credential; delete removes the account; another merchant sees nothing.
            let rotated = try object(try await stack.request(.POST, "/account/merchant_mca/connectors/\(paymentId)", apiKey: apiKey, body: #"{"connector_account_details": {"auth_type": "HeaderKey", "api_key": "sk_test_rotated_key_0000000000009999"}}"#))
            #expect((rotated["connector_account_details"] as? [String: Any])?["api_key"] as? String == "********9999")
            #expect(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "merchant_mca_other"}"#).status == 200)
            let otherKey = try #require(try object(try await stack.request(.POST, "/api_keys/merchant_mca_other", body: #"{"name": "k"}"#))["api_key"] as? String)
            #expect(try await stack.request(.GET, "/account/merchant_mca/connectors/\(paymentId)", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.GET, "/v2/connector-accounts/\(paymentId)", apiKey: otherKey, headers: headers.pairs).status == 404)
            #expect(try await stack.request(.DELETE, "/account/merchant_mca/connectors/\(paymentId)", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.DELETE, "/account/merchant_mca/connectors/\(paymentId)", apiKey: apiKey).status == 200)
            #expect(try await stack.request(.GET, "/account/merchant_mca/connectors/\(paymentId)", apiKey: apiKey).status == 404)
            return stack
        }
        for service in PaywireStack.services {
            #expect(!stack.logs(service).contains("sk_test_51Hx9FakeSecretKeyForPaywireTests"))
        }
    }
}

struct HTTPClientHeadersForTests {
    var pairs: [(String, String)] = []
    mutating func add(_ name: String, _ value: String) { pairs.append((name, value)) }
}
