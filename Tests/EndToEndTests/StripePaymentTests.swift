import Crypto
import Foundation
import PaywireTestSupport
import PostgresNIO
import Testing

/// The `stripe` connector against the fake Stripe process: the seed's payment request, declines,
/// manual capture and refunds, a confirm that times out and is resolved by the status sync or by
/// the connector's signed webhook, replayed and forged webhooks, and concurrent confirms.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct StripePaymentTests {
    func json(_ result: PaywireStack.HTTPResult, status: Int = 200, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        #expect(result.status == status, "\(result.status): \(result.body)", sourceLocation: sourceLocation)
        return try #require(result.json, sourceLocation: sourceLocation)
    }

    func behave(_ stack: PaywireStack, _ behaviour: String) async throws {
        let result = try await stack.request(.POST, "/_fake/behaviour", service: "fake-stripe", apiKey: nil, body: behaviour)
        #expect(result.status == 200)
    }

    func stats(_ stack: PaywireStack) async throws -> [String: Any] {
        try #require(try await stack.request(.GET, "/_fake/stats", service: "fake-stripe", apiKey: nil).json)
    }

    static let normal = #"{"latency_ms": 0, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": true}"#

    @Test func seedPaymentDeclinesCaptureRefundAndATimeoutResolvedByStatusSync() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        let environment = [
            // Syncs spread over some 15 s after the call's budget runs out: the slow confirm below,
            // which Stripe finishes about a second after it, is found even when the suite loads
            // the machine, and the fourth sync still comes before a search that finds nothing
            // counts as "never made" (30 s: the broken payment below).
            "PAYWIRE_CONNECTOR_TIMEOUT_MS": "4000", "PAYWIRE_PSYNC_DELAY_MS": "1000", "PAYWIRE_PSYNC_INTERVAL_MS": "200", "PAYWIRE_REPLY_TIMEOUT_MS": "20000",
            "PAYWIRE_PSYNC_MAX_TRIES": "4",
        ]
        try await PaywireStack.with(extraEnvironment: environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_stripe", webhookURL: "\(url)/hooks")
            let account = try await stack.createStripeAccount(merchantId: "merchant_stripe", apiKey: apiKey, webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/merchant_stripe").json?["default_profile"] as? String)

            // Seed 004's request, with only host, ids and key changed.
            let seed = try GatewayConfigurationTests.seedPayload("004_11f3657a74390bea.txt", after: "- Create payment")
                .replacingOccurrences(of: "pro_UfVajfSqskx9FjWfP5cP", with: profile)
            let payment = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: seed))
            #expect(payment["status"] as? String == "succeeded")
            #expect(payment["amount"] as? Int == 6540 && payment["amount_received"] as? Int == 6540)
            #expect(payment["connector"] as? String == "stripe")
            #expect(payment["merchant_connector_id"] as? String == account.id)
            #expect(payment["profile_id"] as? String == profile)
            #expect((payment["connector_transaction_id"] as? String)?.hasPrefix("pi_") == true)
            let card = try #require((payment["payment_method_data"] as? [String: Any])?["card"] as? [String: Any])
            #expect(card["last4"] as? String == "1111" && card["card_isin"] as? String == "411111")
            #expect(card["card_number"] == nil)
            #expect((payment["customer"] as? [String: Any])?["id"] as? String == "customer123")
            #expect((payment["metadata"] as? [String: Any])?["udf1"] as? String == "value1")
            #expect(payment["merchant_order_reference_id"] as? String == "test_ord")
            for key in ["error_code", "error_message", "unified_code", "client_secret", "created", "capture_method", "attempt_count", "billing", "shipping"] {
                #expect(payment.keys.contains(key), "\(key) missing")
            }

            // Declines as Hyperswitch reports them: Stripe's own code and message (with the decline
            // code) in error_code / error_message, the connector-neutral code in unified_code, and
            // Paywire's reason and the network's code beside them.
            for (number, stripeCode, code, unified, network) in [
                ("4000000000009995", "card_declined", "insufficient_funds", "UE_1001", "51" as String?), ("4000000000009987", "card_declined", "lost_card", "UE_1002", "41"),
                ("4000000000000069", "expired_card", "expired_card", "UE_1004", nil),
            ] {
                let declined = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: number)))
                #expect(declined["status"] as? String == "failed")
                #expect(declined["error_code"] as? String == stripeCode, "\(declined)")
                #expect(declined["decline_code"] as? String == code && declined["unified_code"] as? String == unified)
                #expect(declined["unified_message"] as? String != nil)
                if stripeCode == "card_declined" {
                    #expect((declined["error_message"] as? String)?.hasSuffix(", decline_code - \(code)") == true && (declined["error_message"] as? String)?.hasPrefix("message - ") == true, "\(declined["error_message"] ?? "")")
                    #expect(declined["network_decline_code"] as? String == network)
                }
            }

            // Manual capture, then a partial refund and an over-refund.
            let authorized = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 2000, captureMethod: "manual")))
            #expect(authorized["status"] as? String == "requires_capture")
            let manualId = try #require(authorized["payment_id"] as? String)
            // Two captures with one Idempotency-Key at once (Stripe slow to answer): one runs, the
            // other is told to retry later (409); every replay then answers the capture's 200.
            try await behave(stack, #"{"latency_ms": 600, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": true}"#)
            async let captureOne = stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: #"{"amount_to_capture": 1500}"#, headers: [("Idempotency-Key", "cap-1")])
            async let captureTwo = stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: #"{"amount_to_capture": 1500}"#, headers: [("Idempotency-Key", "cap-1")])
            let captures = [try await captureOne, try await captureTwo].sorted { $0.status < $1.status }
            try await behave(stack, Self.normal)
            #expect(captures.map(\.status) == [200, 409], "\(captures.map(\.body))")
            #expect(((captures[1].json?["error"] as? [String: Any])?["code"] as? String) == "IR_39")
            let captured = try json(captures[0])
            #expect(captured["status"] as? String == "partially_captured" && captured["amount_received"] as? Int == 1500)
            for _ in 0..<2 {
                let replay = try json(try await stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: #"{"amount_to_capture": 1500}"#, headers: [("Idempotency-Key", "cap-1")]))
                #expect(replay["status"] as? String == "partially_captured" && replay["amount_received"] as? Int == 1500)
            }
            let refund = try json(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(manualId)", "amount": 500}"#))
            #expect(refund["status"] as? String == "succeeded")
            #expect((refund["connector_refund_id"] as? String)?.hasPrefix("re_") == true)
            #expect(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(manualId)", "amount": 1001}"#).status == 400)

            // A refund the processor accepts as pending and fails later: the status sync finds
            // out, and the merchant hears refund_failed once.
            let refundable = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4000000000005126", amount: 3000)))
            #expect(refundable["status"] as? String == "succeeded")
            let failingRefund = try json(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(refundable["payment_id"] as? String ?? "")"}"#))
            #expect(failingRefund["status"] as? String == "pending")
            let failingRefundId = try #require(failingRefund["refund_id"] as? String)
            let refundFailed = await eventually(timeout: .seconds(30)) {
                (try? await stack.request(.GET, "/refunds/\(failingRefundId)", apiKey: apiKey).json?["status"] as? String) == "failed"
            }
            #expect(refundFailed)
            let refundEvents = await eventually(timeout: .seconds(20)) { webhookEvents(receiver, for: failingRefundId) == ["refund_failed"] }
            #expect(refundEvents, "\(webhookEvents(receiver, for: failingRefundId))")

            // Create and confirm together take longer than the connector's budget (each call is
            // slow, the confirm slower), Stripe's search lags by ten minutes and sends no
            // webhook: the intent id, saved the moment the create answered, lets the status sync
            // find the charge. The payment succeeds, never fails, with one event each.
            try await behave(stack, #"{"latency_ms": 400, "confirm_delay_ms": 5000, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": false, "search_lag_ms": 600000}"#)
            let slowBody = PaywireStack.cardPayment(card: "4242424242424242", amount: 777)
            let slow = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: slowBody, headers: [("Idempotency-Key", "slow-1")]))
            #expect(slow["status"] as? String == "processing")
            let slowId = try #require(slow["payment_id"] as? String)
            try await behave(stack, #"{"latency_ms": 0, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": false, "search_lag_ms": 600000}"#)
            let synced = await eventually(timeout: .seconds(60)) {
                (try? await stack.request(.GET, "/payments/\(slowId)", apiKey: apiKey).json?["status"] as? String) == "succeeded"
            }
            #expect(synced, "payment-core log:\n\(stack.logs("payment-core"))")
            let slowEvents = await eventually(timeout: .seconds(20)) { webhookEvents(receiver, for: slowId) == ["payment_processing", "payment_succeeded"] }
            #expect(slowEvents, "\(webhookEvents(receiver, for: slowId))")
            // Its Idempotency-Key replays the payment as it is now, not the `processing` of then.
            let replayed = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: slowBody, headers: [("Idempotency-Key", "slow-1")]))
            #expect(replayed["payment_id"] as? String == slowId && replayed["status"] as? String == "succeeded")

            // A refund whose answer is lost (made at Stripe, answered after the budget, no
            // webhook): the sync asks again under the same Idempotency-Key, learns the refund,
            // and the merchant hears refund_succeeded once. Stripe made one refund.
            let refundsBefore = try await stats(stack)["refunds"] as? Int ?? -1
            try await behave(stack, #"{"latency_ms": 0, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": false, "refund_delay_ms": 5000}"#)
            let lostRefund = try json(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(slowId)", "amount": 300}"#))
            #expect(lostRefund["status"] as? String == "pending")
            let lostRefundId = try #require(lostRefund["refund_id"] as? String)
            let refundResolved = await eventually(timeout: .seconds(60)) {
                (try? await stack.request(.GET, "/refunds/\(lostRefundId)", apiKey: apiKey).json?["status"] as? String) == "succeeded"
            }
            #expect(refundResolved, "payment-core log:\n\(stack.logs("payment-core"))")
            #expect((try await stack.request(.GET, "/refunds/\(lostRefundId)", apiKey: apiKey).json?["connector_refund_id"] as? String)?.hasPrefix("re_") == true)
            let lostRefundEvents = await eventually(timeout: .seconds(20)) { webhookEvents(receiver, for: lostRefundId) == ["refund_succeeded"] }
            #expect(lostRefundEvents, "\(webhookEvents(receiver, for: lostRefundId))")
            #expect(try await stats(stack)["refunds"] as? Int == refundsBefore + 1, "one refund at the processor")

            // A 500 on the create and a search that finds nothing: that proves nothing (Stripe
            // may have made the intent; its search lags). After the last sync the payment goes
            // to an operator — requires_merchant_action, announced by action_required — never
            // to failed.
            try await behave(stack, #"{"latency_ms": 0, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 1, "webhooks_enabled": true, "search_lag_ms": 600000}"#)
            let broken = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 778)))
            #expect(broken["status"] as? String == "processing")
            let brokenId = try #require(broken["payment_id"] as? String)
            let resolved = await eventually(timeout: .seconds(90)) {
                (try? await stack.request(.GET, "/payments/\(brokenId)", apiKey: apiKey).json?["status"] as? String) == "requires_merchant_action"
            }
            #expect(resolved, "payment-core log:\n\(stack.logs("payment-core"))")
            let brokenEvents = await eventually(timeout: .seconds(20)) { webhookEvents(receiver, for: brokenId) == ["payment_processing", "action_required"] }
            #expect(brokenEvents, "\(webhookEvents(receiver, for: brokenId))")
            #expect(stack.logs("payment-core").contains("handed to an operator"))
            try await behave(stack, Self.normal)

            // Two concurrent confirms: the processor is asked to confirm once.
            let before = try await stats(stack)["confirm_calls"] as? Int ?? -1
            let pending = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 901, confirm: false)))
            let raceId = try #require(pending["payment_id"] as? String)
            async let one = stack.request(.POST, "/payments/\(raceId)/confirm", apiKey: apiKey, body: "{}")
            async let two = stack.request(.POST, "/payments/\(raceId)/confirm", apiKey: apiKey, body: "{}")
            let answers = [try await one, try await two].sorted { $0.status < $1.status }
            #expect(answers.map(\.status) == [200, 400])
            let after = try await stats(stack)["confirm_calls"] as? Int ?? -1
            #expect(after == before + 1, "one charge at the processor: \(before) confirms before, \(after) after; answers \(answers.map(\.body)); payment-core log:\n\(stack.logs("payment-core"))")

            try await CardDataScan.expectNoCardNumbers(stack: stack, numbers: ["4111111111111111", "4242424242424242", "4000000000009995", "4000000000009987", "4000000000000069", "4000000000005126"])
        }
    }

    /// A payment whose calls never reached Stripe (found by the fault drill: payment-core killed
    /// between the intent's create and its confirm, or before the create) leaves either an
    /// unconfirmed intent or none; the card is gone either way. Once the calls can no longer be
    /// under way the status sync cancels the intent (no late confirm can charge it) and the
    /// payment fails with its reason and event instead of staying processing.
    @Test(arguments: ["confirm dropped", "create failed"])
    func aPaymentWhoseCallsNeverReachedStripeFails(lost: String) async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        let environment = ["PAYWIRE_CONNECTOR_TIMEOUT_MS": "1000", "PAYWIRE_PSYNC_DELAY_MS": "500", "PAYWIRE_PSYNC_INTERVAL_MS": "500"]
        try await PaywireStack.with(extraEnvironment: environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_unconfirmed", webhookURL: "\(url)/hooks")
            _ = try await stack.createStripeAccount(merchantId: "merchant_unconfirmed", apiKey: apiKey, webhookURL: nil)
            // Dropped confirms; or the next call (the create) answered 500 with nothing made.
            let fault = lost == "confirm dropped" ? #""fail_next": 0, "drop_confirms": true"# : #""fail_next": 1"#
            try await behave(stack, #"{"latency_ms": 0, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, \#(fault), "webhooks_enabled": true}"#)
            let started = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 2100))
            let paymentId = try #require(started.json?["payment_id"] as? String, "\(started.body)")
            #expect(started.json?["status"] as? String == "processing", "\(started.body)")
            try await behave(stack, #"{"latency_ms": 0, "confirm_delay_ms": 0, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": true}"#)
            // Given up on once the attempt is 30 s old (see StripeConnector.abandonAfter).
            var payment: [String: Any]?
            #expect(await eventually(timeout: .seconds(150)) {
                payment = try? await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey).json
                return payment?["status"] as? String == "failed"
            }, "\(payment ?? [:])")
            #expect(payment?["decline_code"] as? String == "processing_error" && payment?["amount_received"] as? Int == 0, "\(payment ?? [:])")
            if lost == "confirm dropped" {
                let intentId = try #require(payment?["connector_transaction_id"] as? String, "\(payment ?? [:])")
                let atStripe = try await stack.request(.GET, "/v1/payment_intents/\(intentId)", service: "fake-stripe", apiKey: nil, headers: [("Authorization", "Bearer sk_test_paywire")])
                #expect(atStripe.json?["status"] as? String == "canceled", "\(atStripe.body)")
            }
            #expect((try await stats(stack))["charges"] as? Int == 0)
            // Told it was processing while it was, then how it ended, once.
            #expect(await eventually(timeout: .seconds(30)) { webhookEvents(receiver, for: paymentId) == ["payment_processing", "payment_failed"] },
                    "\(webhookEvents(receiver, for: paymentId))")
        }
    }

    @Test func incomingWebhooksResolveTimeoutsAndReplayedOrForgedOnesChangeNothing() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        // The status sync is pushed far out so that only the webhook can resolve the payment.
        let environment = ["PAYWIRE_CONNECTOR_TIMEOUT_MS": "2000", "PAYWIRE_PSYNC_DELAY_MS": "600000", "PAYWIRE_REPLY_TIMEOUT_MS": "8000"]
        try await PaywireStack.with(extraEnvironment: environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_wh", webhookURL: "\(url)/hooks")
            let webhookPath = "/webhooks/merchant_wh/stripe"
            // The connector is given the public (gateway) URL; the gateway passes it to payment-core.
            let account = try await stack.createStripeAccount(merchantId: "merchant_wh", apiKey: apiKey, webhookURL: "\(stack.gatewayURL)\(webhookPath)")
            let secret = try #require(account.webhookSecret)

            try await behave(stack, #"{"latency_ms": 0, "confirm_delay_ms": 2500, "webhook_delay_ms": 100, "error_rate": 0, "fail_next": 0, "webhooks_enabled": true}"#)
            let slow = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 1234)))
            #expect(slow["status"] as? String == "processing")
            let paymentId = try #require(slow["payment_id"] as? String)
            try await behave(stack, Self.normal)
            let resolved = await eventually(timeout: .seconds(30)) {
                (try? await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey).json?["status"] as? String) == "succeeded"
            }
            #expect(resolved, "payment-core log:\n\(stack.logs("payment-core"))")
            let once = await eventually(timeout: .seconds(20)) { webhookEvents(receiver, for: paymentId).sorted() == ["payment_processing", "payment_succeeded"].sorted() }
            #expect(once, "\(webhookEvents(receiver, for: paymentId))")

            // The connector's own delivery, replayed byte for byte: accepted, changes nothing.
            let sent = try #require(try await stack.request(.GET, "/_fake/events", service: "fake-stripe", apiKey: nil).json?["data"] as? [[String: Any]])
            let original = try #require(sent.first { ($0["body"] as? String)?.contains("payment_intent.succeeded") == true })
            #expect(original["status"] as? Int == 200)
            let body = try #require(original["body"] as? String)
            let signature = try #require(original["stripe_signature"] as? String)
            let replay = try await stack.request(.POST, webhookPath, service: "payment-core", apiKey: nil, headers: [("Stripe-Signature", signature)], rawBody: body)
            #expect(replay.status == 200, "\(replay.body)")
            let replayThroughGateway = try await stack.request(.POST, webhookPath, apiKey: nil, headers: [("Stripe-Signature", signature)], rawBody: body)
            #expect(replayThroughGateway.status == 200, "\(replayThroughGateway.body)")

            // The same event signed more than 300 s ago: refused.
            let stale = Int(Date().timeIntervalSince1970) - 400
            let staleSignature = Self.sign(body: body, secret: secret, timestamp: stale)
            #expect(try await stack.request(.POST, webhookPath, service: "payment-core", apiKey: nil, headers: [("Stripe-Signature", staleSignature)], rawBody: body).status == 401)

            // A forged failure for the succeeded payment: wrong key, 401, nothing changes.
            let forgedBody = body.replacingOccurrences(of: "payment_intent.succeeded", with: "payment_intent.payment_failed")
                .replacingOccurrences(of: #""status":"succeeded""#, with: #""status":"requires_payment_method""#)
            let now = Int(Date().timeIntervalSince1970)
            let forged = try await stack.request(.POST, webhookPath, service: "payment-core", apiKey: nil, headers: [("Stripe-Signature", Self.sign(body: forgedBody, secret: "whsec_guess", timestamp: now))], rawBody: forgedBody)
            #expect(forged.status == 401)
            #expect(forged.json?["error"] != nil)
            #expect(try await stack.request(.POST, webhookPath, apiKey: nil, headers: [("Stripe-Signature", Self.sign(body: forgedBody, secret: "whsec_guess", timestamp: now))], rawBody: forgedBody).status == 401, "the same through the gateway")
            // Tampered body under the original signature: 401.
            #expect(try await stack.request(.POST, webhookPath, service: "payment-core", apiKey: nil, headers: [("Stripe-Signature", signature)], rawBody: forgedBody).status == 401)
            #expect(try await stack.request(.POST, webhookPath, service: "payment-core", apiKey: nil, rawBody: body).status == 401, "no signature")

            // A genuine but out-of-order failure after the success: accepted, ignored.
            let late = try await stack.request(.POST, webhookPath, service: "payment-core", apiKey: nil, headers: [("Stripe-Signature", Self.sign(body: forgedBody, secret: secret, timestamp: now))], rawBody: forgedBody)
            #expect(late.status == 200)

            try await stack.waitUntilQuiet()
            #expect(try await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey).json?["status"] as? String == "succeeded")
            #expect(webhookEvents(receiver, for: paymentId).sorted() == ["payment_processing", "payment_succeeded"].sorted(), "no further event")

            // A refund, confirmed both by the answer and by the connector's webhook: one event.
            let refund = try json(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paymentId)", "amount": 234}"#))
            let refundId = try #require(refund["refund_id"] as? String)
            #expect(refund["status"] as? String == "succeeded")
            try await stack.waitUntilQuiet()
            #expect(webhookEvents(receiver, for: refundId) == ["refund_succeeded"])

            // An unknown merchant, an unknown account and a connector without webhooks get the very
            // answer a forged signature gets: nothing tells a stranger what exists.
            let forgedAnswer = try await stack.request(.POST, "/webhooks/merchant_wh/stripe", service: "payment-core", apiKey: nil,
                                                       headers: [("Stripe-Signature", "t=\(Int(Date().timeIntervalSince1970)),v1=\(String(repeating: "0", count: 64))")], rawBody: body)
            #expect(forgedAnswer.status == 401)
            try await stack.createSandboxAccount(merchantId: "merchant_wh", apiKey: apiKey)
            for path in ["/webhooks/merchant_nobody/stripe", "/webhooks/merchant_wh/adyen", "/webhooks/merchant_wh/sandbox"] {
                let answer = try await stack.request(.POST, path, service: "payment-core", apiKey: nil, rawBody: body)
                #expect(answer.status == 401 && answer.body == forgedAnswer.body, "\(path): \(answer.status) \(answer.body)")
            }
        }
    }

    static func sign(body: String, secret: String, timestamp: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }
}
