import Foundation
import PaywireKafka
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// Any replica can die at any moment (kill -9) and the work is finished after its restart:
/// Kafka keeps the commands and events, offsets were never stored for unfinished work, and the
/// outbox and delivery rows are in PostgreSQL.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct CrashRecoveryTests {
    func createMerchant(_ stack: PaywireStack, _ id: String, hookURL: String) async throws -> String {
        let apiKey = try await stack.createMerchant(id, webhookURL: hookURL)
        try await stack.createSandboxAccount(merchantId: id, apiKey: apiKey)
        return apiKey
    }

    /// While payment-core is down the gateway's wait runs out: 202 with the payment as far as
    /// it is known; the command waits on Kafka (and the card in the gateway's memory).
    func createPayment(_ stack: PaywireStack, apiKey: String, accepted: Set<Int>) async throws -> String {
        let response = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 1000))
        #expect(accepted.contains(response.status), "\(response.body)")
        return try #require(response.json?["payment_id"] as? String)
    }

    @Test(arguments: ["payment-core", "webhook-dispatcher"])
    func workAcceptedWhileAServiceIsKilledIsFinishedAfterItsRestart(victim: String) async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        // A short reply timeout only where payment-core is down (its answer cannot come); with the
        // dispatcher down the payments are answered normally, however loaded the machine is.
        let environment = victim == "payment-core" ? ["PAYWIRE_REPLY_TIMEOUT_MS": "1500"] : [:]
        try await PaywireStack.with(extraEnvironment: environment) { stack in
            let apiKey = try await createMerchant(stack, "merchant_crash", hookURL: url)
            stack.processes[victim]!.crash()
            var payments: [String] = []
            for _ in 0..<5 { payments.append(try await createPayment(stack, apiKey: apiKey, accepted: victim == "payment-core" ? [202] : [200])) }
            try await stack.waitUntilQuiet()
            #expect(receiver.requests.isEmpty, "nothing can be delivered while \(victim) is down")

            try await stack.startService(victim)
            try await stack.waitUntilReady(victim)
            let all = await eventually(timeout: .seconds(60)) { receiver.requests.count >= payments.count }
            #expect(all, "\(receiver.requests.count) of \(payments.count) webhooks; log:\n\(stack.logs(victim))")
            try await stack.waitUntilQuiet()
            let delivered = receiver.requests.compactMap { request -> String? in
                let body = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any]
                return ((body?["content"] as? [String: Any])?["object"] as? [String: Any])?["payment_id"] as? String
            }
            #expect(delivered.sorted() == payments.sorted(), "each payment's webhook exactly once")
        }
    }

    @Test func aPaymentCommandDeliveredTwiceChargesOnce() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            let apiKey = try await createMerchant(stack, "merchant_redeliver", hookURL: url)
            let pending = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 2500, confirm: false))
            let paymentId = try #require(pending.json?["payment_id"] as? String)
            #expect(pending.json?["status"] as? String == "requires_confirmation")
            // One confirm command delivered twice (same envelope), as Kafka does after a
            // consumer dies before storing its offset.
            let command = PaymentCommand(operation: .confirm, paymentId: paymentId, merchantId: "merchant_redeliver")
            let envelope = EventEnvelope(type: MessageType.paymentCommand, merchantId: "merchant_redeliver", payload: try JSONValue(encoding: command))
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: stack.kafkaBrokers)), logger: TestEnvironment.logger("redeliver"))
            for _ in 0..<2 {
                _ = try await producer.send(stack.commandSigner.signed(KafkaProducerMessage(topic: "paywire.payment.commands", key: paymentId, value: try envelope.encoded())))
            }
            await producer.shutdown()
            let succeeded = await eventually(timeout: .seconds(30)) {
                (try? await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey).json?["status"] as? String) == "succeeded"
            }
            #expect(succeeded, "payment-core log:\n\(stack.logs("payment-core"))")
            try await stack.waitUntilQuiet()
            #expect(webhookEvents(receiver, for: paymentId) == ["payment_succeeded"])
            let attempts = try await withStackDatabase(stack.databaseURL(owning: "payments")) { client in
                var count = 0
                for try await value in try await client.query("SELECT count(*)::int FROM payments.payment_attempts WHERE payment_id = \(paymentId)").decode(Int.self) { count = value }
                return count
            }
            #expect(attempts == 1, "one attempt: the card was charged once")
        }
    }

    /// A confirm whose card is gone (its gateway replica went away) cannot be made: the payment
    /// fails with the reason and its event, nothing is charged, and the commands behind it run.
    @Test func aConfirmWhoseCardVaultIsGoneFailsWithItsReasonAndHoldsNothingUp() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            let apiKey = try await createMerchant(stack, "merchant_vault", hookURL: url + "/hooks")
            let pending = try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 800, "currency": "USD"}"#)
            let paymentId = try #require(pending.json?["payment_id"] as? String)
            // A confirm whose card sits in a gateway replica that has gone away.
            var command = PaymentCommand(operation: .confirm, paymentId: paymentId, merchantId: "merchant_vault")
            command.cardVault = CardVaultReference(url: "http://127.0.0.1:1/internal/card-vault/cvt_gone/take", token: "cvt_gone")
            command.card = CardSummary(last4: "4242", bin: "424242", expiryMonth: "03", expiryYear: "2030", holderName: nil, network: "Visa")
            let envelope = EventEnvelope(type: MessageType.paymentCommand, merchantId: "merchant_vault", payload: try JSONValue(encoding: command))
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: stack.kafkaBrokers)), logger: TestEnvironment.logger("vault"))
            _ = try await producer.send(stack.commandSigner.signed(KafkaProducerMessage(topic: "paywire.payment.commands", key: paymentId, value: try envelope.encoded())))
            await producer.shutdown()
            // Payments behind it go through.
            let next = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 900))
            #expect(next.status == 200 && next.json?["status"] as? String == "succeeded", "\(next.body)")
            var failed: [String: Any]?
            #expect(await eventually(timeout: .seconds(30)) {
                failed = try? await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey).json
                return failed?["status"] as? String == "failed"
            }, "\(failed ?? [:])")
            #expect(failed?["error_code"] as? String == "card_data_unavailable" && failed?["unified_code"] as? String == "UE_3000", "\(failed ?? [:])")
            #expect(failed?["amount_received"] as? Int == 0)
            #expect(await eventually(timeout: .seconds(30)) { webhookEvents(receiver, for: paymentId) == ["payment_failed"] }, "\(webhookEvents(receiver, for: paymentId))")
        }
    }

    /// payment-core away for longer than the gateway keeps cards: every payment asked to confirm
    /// ends `failed` with its reason and its event, none waits unconfirmed with nobody told.
    @Test func paymentsAskedToConfirmNeverEndSilentlyUnconfirmedHoweverLongPaymentCoreWasAway() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with(extraEnvironment: ["PAYWIRE_REPLY_TIMEOUT_MS": "300", "PAYWIRE_CARD_VAULT_LIFETIME_SECONDS": "1"]) { stack in
            let apiKey = try await createMerchant(stack, "merchant_away", hookURL: url + "/hooks")
            stack.processes["payment-core"]!.crash()
            var payments: [String] = []
            for _ in 0..<3 { payments.append(try await createPayment(stack, apiKey: apiKey, accepted: [202])) }
            // The cards' lifetime (one second from their put, which came before each 202) runs out
            // before payment-core is back: a wait on the clock, not on how fast anything runs.
            try await Task.sleep(until: .now + .seconds(2), clock: .continuous)
            try await stack.startService("payment-core")
            try await stack.waitUntilReady("payment-core")
            for paymentId in payments {
                var payment: [String: Any]?
                #expect(await eventually(timeout: .seconds(60)) {
                    payment = try? await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey).json
                    return payment?["status"] as? String == "failed"
                }, "\(payment ?? [:])")
                #expect(payment?["error_code"] as? String == "card_data_unavailable", "\(payment ?? [:])")
            }
            #expect(await eventually(timeout: .seconds(30)) { payments.allSatisfy { webhookEvents(receiver, for: $0) == ["payment_failed"] } },
                    "\(payments.map { webhookEvents(receiver, for: $0) })")
        }
    }

    @Test func theSameEventPublishedTwiceMakesOneDeliveryRow() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            _ = try await createMerchant(stack, "merchant_dupe", hookURL: url)
            // The events below carry no configuration version (a service's would), so nothing
            // makes the fan-out wait for the endpoint just created: wait until the dispatcher's
            // copy has read it (every group at the end of its topics).
            try await stack.waitUntilQuiet()
            // Two distinct messages (different envelope ids) announcing the same change, as a
            // producer retrying after a crash or two racing replicas could publish.
            let producer = try KafkaProducer(
                configuration: .init(kafka: .init(bootstrapServers: stack.kafkaBrokers)),
                logger: TestEnvironment.logger("dupe")
            )
            let payload: JSONValue = .object(["payment_id": .string("pay_dupe"), "status": .string("succeeded"), "amount": .number(10)])
            for _ in 0..<2 {
                let envelope = EventEnvelope(type: "payment_succeeded", merchantId: "merchant_dupe", payload: payload)
                _ = try await producer.send(KafkaProducerMessage(topic: "paywire.payment.events", key: "pay_dupe", value: try envelope.encoded()))
            }
            await producer.shutdown()
            let arrived = await eventually(timeout: .seconds(30)) { !receiver.requests.isEmpty }
            #expect(arrived)
            try await stack.waitUntilQuiet()
            #expect(receiver.requests.count == 1)

            let rows = try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client in
                var count = 0
                let result = try await client.query("SELECT count(*) FROM webhooks.events WHERE object_id = 'pay_dupe' AND event_type = 'payment_succeeded'")
                for try await value in result.decode(Int.self) { count = value }
                return count
            }
            #expect(rows == 1)
        }
    }
}

