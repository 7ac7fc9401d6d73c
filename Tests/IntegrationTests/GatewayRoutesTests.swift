import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import PaywireModels
import PaywireRuntime
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing
@testable import Gateway

/// The gateway's routes in process (Hummingbird's test client) on a database of their own: who
/// each route admits, and that every configuration change leaves as the merchant's next version.
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: TestEnvironment.hasDatabase))
struct GatewayRoutesTests {
    static let adminKey = "routes_admin"

    /// The gateway's router on a fresh database, its schema migrated; nothing else runs (these
    /// routes write only to PostgreSQL: their messages wait in the outbox). With `console`, the
    /// console's pages too, as `buildApplication` adds them.
    func withGateway(console: Bool = false, _ body: @Sendable (any TestClientProtocol, PostgresClient) async throws -> Void) async throws {
        let testURL = try #require(TestEnvironment.databaseURL, "PAYWIRE_TEST_DATABASE_URL is not set: run ./scripts/test")
        let database = TestEnvironment.uniqueName("routes")
        try await withTestPostgres { try await $0.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)")) }
        var components = URLComponents(string: testURL)!
        components.path = "/\(database)"
        let configuration = try ServiceConfiguration(serviceName: GatewayService.name, defaultPort: 0, environment: [
            "DATABASE_URL": components.string!, "KAFKA_BROKERS": TestEnvironment.kafkaBrokers ?? "127.0.0.1:1",
            "PAYWIRE_ENCRYPTION_KEY": SecretBox.generateKey(), "PAYWIRE_ADMIN_API_KEY": Self.adminKey,
        ])
        let logger = TestEnvironment.logger("gateway-routes", level: .error)
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let api = try GatewayService.makeAPI(infrastructure, adminKey: Self.adminKey).0
        let router = GatewayService.makeRouter(api).router
        if console { try GatewayService.makeConsole(infrastructure, api: api, responder: router.buildResponder()).addRoutes(to: router) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await infrastructure.postgres.run() }
            defer { group.cancelAll() }
            try await GatewaySchema.migrator.migrate(client: infrastructure.postgres, logger: logger)
            try await Application(router: router).test(.router) { client in
                try await body(client, infrastructure.postgres)
            }
        }
        await infrastructure.producer.shutdown(flushTimeout: .milliseconds(10))
    }

    func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, key: String?, body: String? = nil) async throws -> (status: Int, json: JSONValue?) {
        var headers = HTTPFields()
        if let key { headers[HTTPField.Name("api-key")!] = key }
        return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            (Int(response.status.code), try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(buffer: response.body)))
        }
    }

    func createMerchant(_ client: any TestClientProtocol, _ id: String) async throws -> (apiKey: String, publishableKey: String) {
        let created = try await call(client, .post, "/accounts", key: Self.adminKey, body: #"{"merchant_id": "\#(id)"}"#)
        #expect(created.status == 200)
        let key = try await call(client, .post, "/api_keys/\(id)", key: Self.adminKey, body: #"{"name": "k"}"#)
        return (try #require(key.json?["api_key"]?.stringValue), try #require(created.json?["publishable_key"]?.stringValue))
    }

    /// The feature matrix lists every connector with what it supports, and a connector account
    /// whose auth type its connector cannot use is refused naming the field.
    @Test func theFeatureMatrixAndAuthTypesTheConnectorsCannotUse() async throws {
        try await withGateway { client, _ in
            let matrix = try await call(client, .get, "/feature_matrix", key: nil)
            #expect(matrix.status == 200)
            guard case .array(let connectors)? = matrix.json?["connectors"] else { Issue.record("no connectors: \(String(describing: matrix.json))"); return }
            #expect(connectors.compactMap { $0["name"]?.stringValue } == ["adyen", "custombilling", "sandbox", "stripe"])
            let adyen = try #require(connectors.first { $0["name"]?.stringValue == "adyen" })
            #expect(adyen["auth_types"] == .array([.string("BodyKey")]))
            #expect(adyen["supported_webhook_flows"] == .array(["payments", "refunds", "disputes"].map(JSONValue.string)))
            // No status look-up at Adyen: its outcomes come by notification.
            guard case .array(let adyenFlows)? = adyen["supported_flows"] else { Issue.record("adyen has no flows"); return }
            #expect(adyenFlows.contains(.string("capture")) && !adyenFlows.contains(.string("sync")))
            guard case .array(let adyenMethods)? = adyen["supported_payment_methods"] else { Issue.record("adyen has no methods"); return }
            #expect(!adyenMethods.isEmpty && adyenMethods.allSatisfy { $0["partial_capture"]?.stringValue == "supported" })
            let stripe = try #require(connectors.first { $0["name"]?.stringValue == "stripe" })
            #expect(stripe["supported_webhook_flows"] == .array(["payments", "refunds", "disputes"].map(JSONValue.string)))
            #expect(stripe["auth_types"] == .array([.string("HeaderKey")]))
            let (apiKey, _) = try await createMerchant(client, "merchant_features")
            for (connector, authType) in [("stripe", #"{"auth_type": "BodyKey", "api_key": "sk_test_1", "key1": "acct"}"#), ("sandbox", #"{"auth_type": "HeaderKey", "api_key": "k"}"#),
                                          ("adyen", #"{"auth_type": "HeaderKey", "api_key": "AQE_1"}"#)] {
                let refused = try await call(client, .post, "/account/merchant_features/connectors", key: apiKey, body: """
                    {"connector_type": "payment_processor", "connector_name": "\(connector)", "connector_account_details": \(authType)}
                    """)
                #expect(refused.status == 400 && refused.json?["error"]?["field"]?.stringValue == "connector_account_details.auth_type", "\(connector): \(String(describing: refused.json))")
            }
            // Methods Paywire does not process are kept with the account, never a reason to refuse it.
            let kept = try await call(client, .post, "/account/merchant_features/connectors", key: apiKey, body: """
                {"connector_type": "payment_processor", "connector_name": "stripe", "connector_account_details": {"auth_type": "HeaderKey", "api_key": "sk_test_1"},
                 "payment_methods_enabled": [{"payment_method": "wallet", "payment_method_types": [{"payment_method_type": "apple_pay"}]}]}
                """)
            #expect(kept.status == 200, "\(String(describing: kept.json))")
            func supported(_ account: JSONValue?) -> [JSONValue?] {
                guard case .array(let methods)? = account?["payment_methods_enabled"] else { return [] }
                return methods.map { $0["supported"] }
            }
            #expect(supported(kept.json) == [.bool(false)], "\(String(describing: kept.json))")
            let adyenAccount = try await call(client, .post, "/account/merchant_features/connectors", key: apiKey, body: """
                {"connector_type": "payment_processor", "connector_name": "adyen", "connector_account_details": {"auth_type": "BodyKey", "api_key": "AQE_1", "key1": "PaywireECOM"},
                 "payment_methods_enabled": [{"payment_method": "card"}, {"payment_method": "bank_redirect", "payment_method_types": [{"payment_method_type": "ideal"}]}]}
                """)
            #expect(adyenAccount.status == 200, "\(String(describing: adyenAccount.json))")
            #expect(supported(adyenAccount.json) == [.bool(true), .bool(false)], "\(String(describing: adyenAccount.json))")
        }
    }

    @Test func eachRouteGroupAdmitsOnlyItsCallers() async throws {
        try await withGateway { client, _ in
            let (keyA, publishableA) = try await createMerchant(client, "group_a")
            _ = try await createMerchant(client, "group_b")
            // No key, or a key nobody issued: 401 everywhere but the open routes.
            #expect(try await call(client, .get, "/accounts/group_a", key: nil).status == 401)
            #expect(try await call(client, .get, "/accounts/group_a", key: "dev_nobody").status == 401)
            #expect(try await call(client, .get, "/openapi.json", key: nil).status == 200)
            // Admin routes: a merchant's key is known but not enough.
            #expect(try await call(client, .post, "/accounts", key: keyA, body: #"{"merchant_id": "group_c"}"#).status == 403)
            #expect(try await call(client, .delete, "/accounts/group_b", key: keyA).status == 403)
            // Merchant routes: its own id, never another's (404, as for an id that does not exist).
            #expect(try await call(client, .get, "/accounts/group_a", key: keyA).status == 200)
            #expect(try await call(client, .get, "/accounts/group_b", key: keyA).status == 404)
            #expect(try await call(client, .get, "/account/group_b/business_profile", key: keyA).status == 404)
            #expect(try await call(client, .get, "/accounts/group_nobody", key: Self.adminKey).status == 404)
            #expect(try await call(client, .get, "/accounts/group_b", key: Self.adminKey).status == 200)
            // The v2 routes scope by x-merchant-id the same way.
            #expect(try await call(client, .get, "/v2/connector-accounts/mca_x", key: keyA).status == 400, "x-merchant-id is required")
            // A publishable key is in every browser that pays: it opens no merchant route.
            #expect(try await call(client, .get, "/accounts/group_a", key: publishableA).status == 401)
            #expect(try await call(client, .get, "/api_keys/group_a/list", key: publishableA).status == 401)
            #expect(try await call(client, .post, "/payments", key: publishableA, body: #"{"amount": 100, "currency": "USD"}"#).status == 401)
        }
    }

    @Test func everyConfigurationChangeLeavesAsTheMerchantsNextVersion() async throws {
        try await withGateway { client, postgres in
            func versions() async throws -> [Int64] {
                var found: [Int64] = []
                for try await payload in try await postgres.query("SELECT payload FROM gateway.outbox WHERE message_key = 'versions_m' ORDER BY seq").decode(ByteBuffer.self) {
                    let envelope = try EventEnvelope.decode(Array(buffer: payload))
                    found.append(try envelope.payload.decode(MerchantConfigurationSnapshot.self).version)
                }
                return found
            }
            let (key, _) = try await createMerchant(client, "versions_m")
            #expect(try await versions() == [1], "the merchant with its default profile")
            let profile = try #require(try await call(client, .get, "/accounts/versions_m", key: key).json?["default_profile"]?.stringValue)
            let endpoints = "/account/versions_m/business_profile/\(profile)/webhooks"
            let endpoint = try #require(try await call(client, .post, endpoints, key: key, body: #"{"webhook_url": "https://example.com/a", "events": ["payment_succeeded"]}"#).json?["webhook_endpoint_id"]?.stringValue)
            #expect(try await call(client, .post, "\(endpoints)/\(endpoint)", key: key, body: #"{"events": ["payment_failed"]}"#).status == 200)
            #expect(try await call(client, .post, "\(endpoints)/\(endpoint)/rotate_secret", key: key).status == 200)
            #expect(try await call(client, .post, "/account/versions_m/business_profile/\(profile)", key: key, body: #"{"revenue_recovery_retry_algorithm_type": "cascading"}"#).status == 200)
            #expect(try await call(client, .post, "/account/versions_m/connectors", key: key, body: #"{"connector_type": "payment_processor", "connector_name": "sandbox", "connector_account_details": {"auth_type": "NoKey"}}"#).status == 200)
            #expect(try await call(client, .delete, "\(endpoints)/\(endpoint)", key: key).status == 200)
            #expect(try await versions() == [1, 2, 3, 4, 5, 6, 7], "one published version per change, in order")
            // What is not configuration other services use (API keys) publishes nothing; a refused
            // change publishes nothing either.
            #expect(try await call(client, .post, "/api_keys/versions_m", key: key, body: #"{"name": "second"}"#).status == 200)
            #expect(try await call(client, .post, endpoints, key: key, body: #"{"webhook_url": "ftp://example.com", "events": ["payment_succeeded"]}"#).status == 400)
            #expect(try await versions() == [1, 2, 3, 4, 5, 6, 7])
            // The last snapshot carries what the merchant has now.
            let last = try #require(try await postgres.query("SELECT payload FROM gateway.outbox WHERE message_key = 'versions_m' ORDER BY seq DESC LIMIT 1").decode(ByteBuffer.self).first { _ in true })
            let snapshot = try EventEnvelope.decode(Array(buffer: last)).payload.decode(MerchantConfigurationSnapshot.self)
            #expect(snapshot.endpoints.map(\.status) == ["deprecated"] && snapshot.connectorAccounts.count == 1)
            #expect(snapshot.profiles.first?.revenueRecoveryRetryAlgorithmType == "cascading")
            // Deleting the merchant publishes its end, and its id stays retired.
            #expect(try await call(client, .delete, "/accounts/versions_m", key: Self.adminKey).status == 200)
            #expect(try await versions().last == 8)
            #expect(try await call(client, .post, "/accounts", key: Self.adminKey, body: #"{"merchant_id": "versions_m"}"#).status == 409)
        }
    }
}
