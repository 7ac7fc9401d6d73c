import Crypto
import Foundation
import PaywireTestSupport
import Testing

/// The four executables and the dev broker as real processes: a payment request to the gateway
/// becomes a command, payment-core charges the sandbox and emits the event through its outbox,
/// and the dispatcher POSTs the signed webhook to a local receiver.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct WalkingSkeletonTests {
    @Test func aPaymentRequestReachesTheMerchantsWebhookSigned() async throws {
        let receiver = WebhookReceiver()
        let receiverURL = try await receiver.start()
        defer { receiver.stop() }
        let stack = try await PaywireStack.start()
        do {
            for service in PaywireStack.services {
                #expect(try await stack.request(.GET, "/health", service: service, apiKey: nil).status == 200)
                // Ready is asked of PostgreSQL and Kafka each time: on a machine the suite loads, one
                // answer may come late, so it is waited for.
                #expect(await eventually { (try? await stack.request(.GET, "/ready", service: service, apiKey: nil))?.status == 200 }, "\(service)")
            }

            let account = try await stack.request(.POST, "/accounts", body: """
                {"merchant_id": "merchant_e2e", "merchant_name": "E2E", "webhook_details": {"webhook_url": "\(receiverURL)/hooks"}}
                """)
            #expect(account.status == 200, "\(account.body)")
            let hashKey = try #require(account.json?["payment_response_hash_key"] as? String)

            let unauthorized = try await stack.request(.POST, "/payments", apiKey: "wrong", body: "{}")
            #expect(unauthorized.status == 401)

            let apiKey = try #require((try await stack.request(.POST, "/api_keys/merchant_e2e", body: #"{"name": "e2e"}"#)).json?["api_key"] as? String)
            try await stack.createSandboxAccount(merchantId: "merchant_e2e", apiKey: apiKey)
            let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"))
            #expect(payment.status == 200, "\(payment.body)")
            #expect(payment.json?["status"] as? String == "succeeded")
            let paymentId = try #require(payment.json?["payment_id"] as? String)

            let arrived = await eventually(timeout: .seconds(30)) { !receiver.requests.isEmpty }
            #expect(arrived, "no webhook; dispatcher log:\n\(stack.logs("webhook-dispatcher"))")
            let webhook = try #require(receiver.requests.first)
            #expect(webhook.path == "/hooks")
            #expect(webhook.headers["content-type"] == "application/json")
            let expected = HMAC<SHA512>.authenticationCode(for: Data(webhook.body.utf8), using: SymmetricKey(data: Data(hashKey.utf8)))
                .map { String(format: "%02x", $0) }.joined()
            #expect(webhook.headers["x-webhook-signature-512"] == expected)
            let body = try #require(try JSONSerialization.jsonObject(with: Data(webhook.body.utf8)) as? [String: Any])
            #expect(body["event_type"] as? String == "payment_succeeded")
            #expect(body["merchant_id"] as? String == "merchant_e2e")
            let content = try #require(body["content"] as? [String: Any])
            #expect(content["type"] as? String == "payment_details")
            #expect((content["object"] as? [String: Any])?["payment_id"] as? String == paymentId)

            // Exactly one delivery for one event, even after a quiet period.
            try await stack.waitUntilQuiet()
            #expect(receiver.requests.count == 1)

            let metrics = try await stack.request(.GET, "/metrics", service: "webhook-dispatcher", apiKey: nil)
            #expect(metrics.body.contains("paywire_webhook_deliveries_total"))
        } catch {
            await stack.stop()
            throw error
        }
        // SIGTERM: every service drains and exits 0.
        let statuses = await stack.stop()
        for service in PaywireStack.services {
            #expect(statuses[service] == .some(0), "\(service) did not exit cleanly")
        }
    }
}
