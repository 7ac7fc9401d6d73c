import AsyncHTTPClient
import Foundation
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// Configuration travels as the gateway's published snapshots; payment-core and the dispatcher
/// act on their own copies, and causality holds as if they read the gateway's tables: what a
/// merchant configures before a payment applies to that payment.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TestEnvironment.hasDatabase))
struct ConfigurationContractTests {
    /// A connector account and an endpoint created, and a payment made at once after them, fifty
    /// times over: payment-core always finds the account, the endpoint always gets the events.
    @Test func whatIsConfiguredBeforeAPaymentAppliesToItEveryTime() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            var payments: [(path: String, paymentId: String)] = []
            for round in 0..<50 {
                let merchantId = "causal_\(round)"
                let apiKey = try await stack.createMerchant(merchantId, webhookURL: nil)
                let profile = try #require(try await stack.request(.GET, "/accounts/\(merchantId)").json?["default_profile"] as? String)
                try await stack.createSandboxAccount(merchantId: merchantId, apiKey: apiKey)
                let endpoint = try await stack.request(.POST, "/account/\(merchantId)/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                                       body: #"{"webhook_url": "\#(url)/\#(merchantId)", "events": ["payment_succeeded"]}"#)
                #expect(endpoint.status == 200, "\(endpoint.body)")
                let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 100 + round))
                #expect(payment.json?["status"] as? String == "succeeded", "round \(round): \(payment.body)")
                payments.append(("/\(merchantId)", try #require(payment.json?["payment_id"] as? String)))
            }
            let all = await eventually(timeout: .seconds(60)) {
                payments.allSatisfy { expected in receiver.requests.contains { $0.path == expected.path && $0.body.contains(expected.paymentId) } }
            }
            let missing = payments.filter { expected in !receiver.requests.contains { $0.path == expected.path && $0.body.contains(expected.paymentId) } }
            #expect(all, "no webhook for \(missing.map(\.path))")
        }
    }

    /// The walls are real: each service's role reads its own schema and is refused every other
    /// one, so any query a service made into another's tables would fail in every test.
    @Test func eachServiceRoleReachesOnlyItsOwnSchema() async throws {
        try await PaywireStack.with { stack in
            let schemas = ["gateway": "gateway", "payment-core": "payments", "webhook-dispatcher": "webhooks", "recovery-scheduler": "recovery"]
            for (service, own) in schemas {
                try await withStackDatabase(stack.databaseURL(for: service)) { client in
                    _ = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(own).outbox"))
                    for (_, foreign) in schemas where foreign != own {
                        await #expect(throws: (any Error).self, "\(service) reached \(foreign)") {
                            for try await _ in try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(foreign).outbox")) {}
                        }
                    }
                }
            }
        }
    }

    /// A dispatcher whose schema is empty and whose configuration topic holds nothing (as after
    /// the broker's retention) rebuilds its copy from the gateway's snapshot and delivers.
    /// Also with the snapshot on a listener of its own (`PAYWIRE_GATEWAY_SNAPSHOT_PORT`, what the
    /// Kubernetes network policy relies on): there, and not on the card vault's listener.
    @Test(arguments: [false, true])
    func aDispatcherStartedEmptyRebuildsItsCopyFromTheGatewaysSnapshot(snapshotListener: Bool) async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        let snapshotPort = try FreePort.next()
        try await PaywireStack.with(extraEnvironment: snapshotListener ? ["PAYWIRE_GATEWAY_SNAPSHOT_PORT": String(snapshotPort)] : [:]) { stack in
            let apiKey = try await stack.createMerchant("rebuild_m", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/rebuild_m").json?["default_profile"] as? String)
            try await stack.createSandboxAccount(merchantId: "rebuild_m", apiKey: apiKey)
            let endpoint = try await stack.request(.POST, "/account/rebuild_m/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                                   body: #"{"webhook_url": "\#(url)/rebuilt", "events": ["payment_succeeded"]}"#)
            #expect(endpoint.status == 200)
            _ = await stack.processes["webhook-dispatcher"]!.stop()
            try await withStackDatabase(stack.databaseURL(for: "webhook-dispatcher")) { client in
                try await client.query("DROP SCHEMA webhooks CASCADE")
            }
            // A configuration topic with nothing on it (one nobody writes to; the dev broker
            // creates topics only at its start): the copy can only come from the snapshot.
            var overrides = ["PAYWIRE_TOPIC_CONFIGURATION": TopicNames().webhookCommands]
            if snapshotListener {
                overrides["PAYWIRE_GATEWAY_INTERNAL_URL"] = "http://127.0.0.1:\(snapshotPort)"
                let vaultListener = "http://127.0.0.1:\(stack.internalPorts["gateway"]!)"
                #expect(try await HTTPClient.shared.execute(HTTPClientRequest(url: vaultListener + "/internal/configuration"), timeout: .seconds(5)).status == .notFound)
                var take = HTTPClientRequest(url: "http://127.0.0.1:\(snapshotPort)/internal/card-vault/cvt_1/take")
                take.method = .POST
                #expect(try await HTTPClient.shared.execute(take, timeout: .seconds(5)).status == .notFound)
            }
            try await stack.startService("webhook-dispatcher", overrides: overrides)
            try await stack.waitUntilReady("webhook-dispatcher")
            let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"))
            let paymentId = try #require(payment.json?["payment_id"] as? String)
            #expect(await eventually(timeout: .seconds(30)) { receiver.requests.contains { $0.path == "/rebuilt" && $0.body.contains(paymentId) } },
                    "\(stack.logs("webhook-dispatcher"))")
            #expect(stack.logs("webhook-dispatcher").contains("configuration copy rebuilt from the gateway's snapshot"))
        }
    }
}
