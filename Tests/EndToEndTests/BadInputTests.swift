import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing

/// What a careless or hostile API user sends never wedges anything: it is refused at the edge with
/// a 4xx naming the field, and what arrives from elsewhere (a poison Kafka message, an endpoint's
/// odd answer, a bad stored header) is set aside without stopping anyone else's work.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct BadInputTests {
    func expectError(_ result: PaywireStack.HTTPResult, status: Int, field: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(result.status): \(result.body)", sourceLocation: sourceLocation)
        let error = result.json?["error"] as? [String: Any]
        #expect(error?["field"] as? String == field, "\(result.body)", sourceLocation: sourceLocation)
    }

    @Test func badInputIsRefusedAtTheEdgeNamingTheField() async throws {
        try await PaywireStack.with { stack in
            // NUL in every kind of field, on every kind of route: 400 naming the field.
            expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "nul_m", "merchant_name": "a\u0000b"}"#), status: 400, field: "merchant_name")
            expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "nul_m", "webhook_details": {"webhook_url": "http://127.0.0.1:9/a\u0000"}}"#), status: 400, field: "webhook_details.webhook_url")
            expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "nul\u0000m"}"#), status: 400, field: "merchant_id")
            let apiKey = try await stack.createMerchant("nul_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "nul_m", apiKey: apiKey)
            expectError(try await stack.request(.POST, "/api_keys/nul_m", body: #"{"name": "k\u0000"}"#), status: 400, field: "name")
            let payment = { (extra: String) in PaywireStack.cardPayment(card: "4242424242424242", extra: extra) }
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: payment(#", "metadata": {"a": "x\u0000y"}"#)), status: 400, field: "metadata.a")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: payment(#", "metadata": {"k\u0000": "v"}"#)), status: 400, field: "metadata.k\\u0000")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: payment(#", "description": "\u0000""#)), status: 400, field: "description")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: payment(#", "customer_id": "c\u0000""#)), status: 400, field: "customer_id")
            expectError(try await stack.request(.GET, "/payments/pay%00x", apiKey: apiKey), status: 400, field: "payment_id")
            expectError(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "p\u0000"}"#), status: 400, field: "payment_id")
            let paid = try await stack.request(.POST, "/payments", apiKey: apiKey, body: payment(""))
            let paymentId = try #require(paid.json?["payment_id"] as? String, "\(paid.body)")
            expectError(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paymentId)", "metadata": {"r": "\u0000"}}"#), status: 400, field: "metadata.r")
            // The refused refund left nothing behind, and a clean one for the same payment runs.
            #expect(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paymentId)", "amount": 100}"#).json?["status"] as? String == "succeeded")

            // Sizes and money.
            let bulky = String(repeating: "x", count: InputLimits.freeFormBytes + 10)
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: payment(#", "metadata": {"big": "\#(bulky)"}"#)), status: 400, field: "metadata")
            expectError(try await stack.request(.POST, "/webhooks/nul_m/sandbox", apiKey: nil, rawBody: String(repeating: "a", count: (1 << 20) + 10)), status: 413, field: "body")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, rawBody: String(repeating: "a", count: (1 << 20) + 10)), status: 413, field: "body")
            let huge = try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 9e16, "currency": "USD"}"#)
            expectError(huge, status: 400, field: "amount")
            #expect(huge.body.contains("99999999999"))
            for currency in ["ZZZ", "XXX", "BTC", "XTS", "usd"] {
                expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 100, "currency": "\#(currency)"}"#), status: 400, field: "currency")
            }
            for currency in ["JPY", "KWD", "EUR"] {
                #expect(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 100, "currency": "\#(currency)"}"#).status == 200, "\(currency)")
            }

            // Custom headers: HTTP's rules, none of ours or the connection's in any case.
            let profileId = try #require(try await stack.request(.GET, "/accounts/nul_m").json?["default_profile"] as? String)
            let profilePath = "/account/nul_m/business_profile/\(profileId)"
            for (name, value) in [("X-Evil", "a\\u0000b"), ("X-Split", "a\\r\\nX-Injected: 1"), ("Host", "evil.example"), ("Content-Length", "1"),
                                  ("Transfer-Encoding", "chunked"), ("x-webhook-signature-512", "forged"), ("Webhook-Signature", "v1,forged"), ("Bad Name", "v")] {
                let result = try await stack.request(.POST, profilePath, apiKey: apiKey, body: #"{"outgoing_webhook_custom_http_headers": {"\#(name)": "\#(value)"}}"#)
                expectError(result, status: 400, field: "outgoing_webhook_custom_http_headers.\(name)")
            }
            #expect(try await stack.request(.POST, profilePath, apiKey: apiKey, body: #"{"outgoing_webhook_custom_http_headers": {"X-Tenant": "acme-1"}}"#).status == 200)

            // A deleted merchant's id is never given out again.
            _ = try await stack.createMerchant("reuse_me", webhookURL: nil)
            #expect(try await stack.request(.DELETE, "/accounts/reuse_me").status == 200)
            expectError(try await stack.request(.POST, "/accounts", body: #"{"merchant_id": "reuse_me"}"#), status: 409, field: "merchant_id")
            expectError(try await stack.request(.GET, "/accounts/reuse_me"), status: 404, field: nil)

            // Endpoints per profile are capped.
            for index in 0..<InputLimits.endpointsPerProfile {
                let created = try await stack.request(.POST, profilePath + "/webhooks", apiKey: apiKey, body: #"{"webhook_url": "http://127.0.0.1:9/\#(index)", "events": ["payment_succeeded"]}"#)
                #expect(created.status == 200, "\(created.body)")
            }
            expectError(try await stack.request(.POST, profilePath + "/webhooks", apiKey: apiKey, body: #"{"webhook_url": "http://127.0.0.1:9/x", "events": ["payment_succeeded"]}"#), status: 409, field: "webhook_url")

            // A known path asked with another method: 405 with Allow.
            let trace = try await stack.request(.TRACE, "/payments", apiKey: apiKey)
            #expect(trace.status == 405)
            let delete = try await stack.request(.DELETE, "/payments", apiKey: apiKey)
            #expect(delete.status == 405 && delete.headers["allow"] == "POST", "\(delete.headers)")

            // No 500 was ever answered, and nothing was logged as unhandled.
            #expect(!stack.allLogs().contains("unhandled error"))
        }
    }

    @Test func oneMerchantsBadDataNeverStopsAnotherMerchantsWebhooksAndTheLegacyURLRuleHolds() async throws {
        let odd = WebhookReceiver(), clean = WebhookReceiver(), legacy = WebhookReceiver(), endpoint = WebhookReceiver()
        let oddURL = try await odd.start(), cleanURL = try await clean.start(), legacyURL = try await legacy.start(), endpointURL = try await endpoint.start()
        defer { [odd, clean, legacy, endpoint].forEach { $0.stop() } }
        // An endpoint that answers with NUL bytes in its body.
        odd.respond(body: Array("200 ok\u{0}bye".utf8))
        try await PaywireStack.with { stack in
            let oddKey = try await stack.createMerchant("odd_m", webhookURL: oddURL + "/odd")
            let cleanKey = try await stack.createMerchant("clean_m", webhookURL: cleanURL + "/clean")
            try await stack.createSandboxAccount(merchantId: "odd_m", apiKey: oddKey)
            try await stack.createSandboxAccount(merchantId: "clean_m", apiKey: cleanKey)
            // A stored header that breaks the rules (as an older version could have stored):
            // planted directly, sealed with the services' key.
            let oddProfile = try #require(try await stack.request(.GET, "/accounts/odd_m").json?["default_profile"] as? String)
            let sealed = try SecretBox(base64Key: stack.encryptionKey).seal(#"{"X-Evil": "a\u0000b", "X-Fine": "yes"}"#, as: .profileCustomHeaders, row: oddProfile)
            try await withStackDatabase(stack.databaseURL(owning: "gateway")) { client in
                try await client.query("""
                    UPDATE gateway.business_profiles SET document = jsonb_set(document, '{outgoing_webhook_custom_http_headers}', to_jsonb(\(sealed)::text))
                    WHERE merchant_id = 'odd_m'
                    """)
            }
            // Any change through the API publishes the merchant's configuration, planted header included.
            #expect(try await stack.request(.POST, "/accounts/odd_m", body: #"{"merchant_name": "odd"}"#).status == 200)
            let oddPayment = try #require(try await stack.request(.POST, "/payments", apiKey: oddKey, body: PaywireStack.cardPayment(card: "4242424242424242")).json?["payment_id"] as? String)
            let cleanPayment = try #require(try await stack.request(.POST, "/payments", apiKey: cleanKey, body: PaywireStack.cardPayment(card: "4242424242424242")).json?["payment_id"] as? String)
            #expect(await eventually { webhookEvents(clean, for: cleanPayment) == ["payment_succeeded"] }, "\(stack.logs("webhook-dispatcher"))")
            #expect(await eventually { webhookEvents(odd, for: oddPayment) == ["payment_succeeded"] }, "\(stack.logs("webhook-dispatcher"))")
            let oddRequest = try #require(odd.requests.first)
            #expect(oddRequest.headers["x-fine"] == "yes" && oddRequest.headers["x-evil"] == nil)
            // The odd answer is recorded (NUL replaced), once, and delivered.
            let recorded = try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client -> [(String, String?, Int)] in
                var rows: [(String, String?, Int)] = []
                for try await row in try await client.query("""
                    SELECT webhooks.delivery_state(e.delivery_status, e.event_id), a.response_body, (SELECT count(*) FROM webhooks.delivery_attempts b WHERE b.event_id = e.event_id)::int
                    FROM webhooks.events e JOIN webhooks.delivery_attempts a ON a.event_id = e.event_id WHERE e.object_id = \(oddPayment)
                    """).decode((String, String?, Int).self) { rows.append(row) }
                return rows
            }
            #expect(recorded.count == 1 && recorded.first?.0 == "delivered" && recorded.first?.2 == 1, "\(recorded)")
            #expect(recorded.first?.1 == "200 ok\u{FFFD}bye")
            #expect(clean.requests.count == 1 && odd.requests.count == 1)

            // The legacy webhook_url: replaced by endpoints that are not deprecated, back when
            // they all are; the profile says which is in effect.
            let legacyKey = try await stack.createMerchant("legacy_m", webhookURL: legacyURL + "/legacy")
            try await stack.createSandboxAccount(merchantId: "legacy_m", apiKey: legacyKey)
            let profileId = try #require(try await stack.request(.GET, "/accounts/legacy_m").json?["default_profile"] as? String)
            let profilePath = "/account/legacy_m/business_profile/\(profileId)"
            func target() async throws -> String? {
                ((try await stack.request(.GET, profilePath, apiKey: legacyKey).json?["webhook_details"]) as? [String: Any])?["delivery_target"] as? String
            }
            #expect(try await target() == "webhook_url")
            let created = try await stack.request(.POST, profilePath + "/webhooks", apiKey: legacyKey, body: #"{"webhook_url": "\#(endpointURL)/ep", "events": ["payment_succeeded"]}"#)
            let endpointId = try #require(created.json?["webhook_endpoint_id"] as? String, "\(created.body)")
            #expect(try await target() == "multiple_webhooks_list")
            let first = try #require(try await stack.request(.POST, "/payments", apiKey: legacyKey, body: PaywireStack.cardPayment(card: "4242424242424242")).json?["payment_id"] as? String)
            #expect(await eventually { webhookEvents(endpoint, for: first) == ["payment_succeeded"] })
            #expect(try await stack.request(.DELETE, profilePath + "/webhooks/\(endpointId)", apiKey: legacyKey).status == 200)
            #expect(try await target() == "webhook_url")
            let second = try #require(try await stack.request(.POST, "/payments", apiKey: legacyKey, body: PaywireStack.cardPayment(card: "4242424242424242")).json?["payment_id"] as? String)
            #expect(await eventually { webhookEvents(legacy, for: second) == ["payment_succeeded"] })
            // The first payment went to the endpoint only, the second to the legacy URL only.
            #expect(webhookEvents(legacy, for: first).isEmpty && webhookEvents(endpoint, for: second).isEmpty)
        }
    }

    @Test func aPoisonCommandIsDeadLetteredAndTheNextCommandForThePaymentRuns() async throws {
        try await PaywireStack.with { stack in
            let apiKey = try await stack.createMerchant("poison_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "poison_m", apiKey: apiKey)
            let logger = TestEnvironment.logger("poison", level: .critical)
            let kafka = KafkaConfiguration(bootstrapServers: stack.kafkaBrokers)
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: kafka), logger: logger)
            let topics = TopicNames()
            func send(_ command: PaymentCommand) async throws {
                let envelope = EventEnvelope(type: MessageType.paymentCommand, merchantId: command.merchantId, payload: try JSONValue(encoding: command))
                _ = try await producer.send(stack.commandSigner.signed(KafkaProducerMessage(topic: topics.paymentCommands, key: command.paymentId, value: try envelope.encoded())))
            }
            do {
                // A command whose data PostgreSQL cannot hold (NUL in its details), as someone
                // other than the gateway could put on the topic; then a clean one for the same payment.
                var poison = PaymentCommand(operation: .create, paymentId: "pay_poison_1", merchantId: "poison_m")
                poison.amount = 500
                poison.currency = "USD"
                poison.details = .object(["metadata": .object(["a": .string("x\u{0}y")])])
                try await send(poison)
                var clean = poison
                clean.details = .object(["metadata": .object(["a": .string("fine")])])
                try await send(clean)
                // Then a message that is not even JSON, on the same key.
                _ = try await producer.send(stack.commandSigner.signed(KafkaProducerMessage(topic: topics.paymentCommands, key: "pay_poison_1", value: Array("{not json".utf8))))

                let stored = await eventually(timeout: .seconds(30)) {
                    (try? await stack.request(.GET, "/payments/pay_poison_1", apiKey: apiKey).json?["status"] as? String) == "requires_payment_method"
                }
                #expect(stored, "\(stack.logs("payment-core"))")
                #expect(try await stack.request(.GET, "/payments/pay_poison_1", apiKey: apiKey).json?["metadata"] as? [String: String] == ["a": "fine"])

                var letters: [DeadLetterRecord] = []
                #expect(await eventually(timeout: .seconds(30)) {
                    letters = (try? await DeadLetterArchive.read(kafka: kafka, topic: topics.deadLetter, logger: logger)) ?? []
                    return letters.count >= 2
                })
                let reasons = letters.map(\.letter.reason).sorted()
                #expect(reasons == ["data_exception", "undecodable"], "\(letters)")
                #expect(letters.allSatisfy { $0.letter.originalTopic == topics.paymentCommands && $0.letter.originalKey == "pay_poison_1" })
                // The dead letter carries the message unchanged, and why, without its data.
                let dataLetter = try #require(letters.first { $0.letter.reason == "data_exception" })
                #expect(try EventEnvelope.decode(dataLetter.letter.originalValue).payload["payment_id"]?.stringValue == "pay_poison_1")
                #expect(dataLetter.letter.error.contains("SQLSTATE 22"))

                // The operator's view: `paywire deadletters list`, then a replay.
                let listed = try runPaywire(["deadletters", "list", "--brokers", stack.kafkaBrokers])
                #expect(listed.contains("data_exception") && listed.contains("undecodable") && listed.contains("pay_poison_1"), "\(listed)")
                let undecodable = try #require(letters.first { $0.letter.reason == "undecodable" })
                let replayed = try runPaywire(["deadletters", "replay", undecodable.id, "--brokers", stack.kafkaBrokers])
                #expect(replayed.contains("replayed \(undecodable.id)"))
                // Replayed into the same consumer, it is dead-lettered once more (nothing was fixed).
                #expect(await eventually(timeout: .seconds(30)) {
                    ((try? await DeadLetterArchive.read(kafka: kafka, topic: topics.deadLetter, logger: logger)) ?? []).filter { $0.letter.reason == "undecodable" }.count == 2
                })
                // And payment-core is still serving.
                #expect(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242")).json?["status"] as? String == "succeeded")
                let metrics = try await stack.request(.GET, "/metrics", service: "payment-core", apiKey: nil).body
                #expect(metrics.contains(#"paywire_deadletters_total{reason="data_exception",topic="paywire.payment.commands"} 1"#) || metrics.contains(#"paywire_deadletters_total{topic="paywire.payment.commands",reason="data_exception"} 1"#), "\(metrics.split(separator: "\n").filter { $0.contains("deadletter") })")
            } catch {
                await producer.shutdown()
                throw error
            }
            await producer.shutdown()
        }
    }

    /// Runs the `paywire` command line and returns what it printed.
    func runPaywire(_ arguments: [String]) throws -> String {
        let executable = URL(fileURLWithPath: try #require(TestEnvironment.binPath)).appendingPathComponent("paywire").path
        let (status, text) = try runProgram(executable, arguments)
        #expect(status == 0, "paywire \(arguments): \(text)")
        return text
    }
}
