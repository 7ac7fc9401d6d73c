import Crypto
import Foundation
import PaywireTestSupport
import Testing

/// The `adyen` connector against the fake Adyen process: automatic capture; manual capture,
/// cancel and refunds that stay `processing` / `pending` until Adyen's notification says how
/// they ended; a refused card with Adyen's reason; forged, repeated, reordered and batched
/// notifications; and disputes raised by chargeback notifications.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct AdyenPaymentTests {
    static let allEvents = [
        "payment_processing", "payment_authorized", "payment_succeeded", "payment_failed", "payment_captured", "payment_cancelled",
        "refund_succeeded", "refund_failed", "dispute_opened", "dispute_accepted", "dispute_challenged", "dispute_won", "dispute_lost",
        "dispute_cancelled", "dispute_expired",
    ]

    /// An endpoint taking `events` with one object's events in the order they happened.
    func subscribe(_ stack: PaywireStack, merchantId: String, apiKey: String, url: String, events: [String]) async throws {
        let profile = try #require(try await stack.request(.GET, "/accounts/\(merchantId)").json?["default_profile"] as? String)
        let created = try await stack.request(.POST, "/account/\(merchantId)/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                              body: #"{"webhook_url": "\#(url)/hooks", "ordering": "per_object", "events": \#(String(decoding: try JSONEncoder().encode(events), as: UTF8.self))}"#)
        #expect(created.status == 200, "\(created.body)")
    }

    func payment(_ stack: PaywireStack, _ apiKey: String, _ id: String) async throws -> [String: Any] {
        try #require(try await stack.request(.GET, "/payments/\(id)", apiKey: apiKey).json)
    }

    func release(_ stack: PaywireStack, _ options: String = "{}") async throws {
        #expect(try await stack.request(.POST, "/_fake/notifications/release", service: "fake-adyen", apiKey: nil, body: options).status == 200)
    }

    /// One notification item as Adyen sends it, signed with `key` (hex) unless `forged`.
    static func item(psp: String, original: String = "", account: String, reference: String, value: Int, eventCode: String, success: Bool = true,
                     key: String, forged: Bool = false) -> [String: Any] {
        let signed = [psp, original, account, reference, String(value), "USD", eventCode, success ? "true" : "false"].joined(separator: ":")
        var keyBytes: [UInt8] = []
        var index = key.startIndex
        while index < key.endIndex {
            let next = key.index(index, offsetBy: 2)
            keyBytes.append(UInt8(key[index..<next], radix: 16)!)
            index = next
        }
        if forged { keyBytes[0] ^= 0xFF }
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: keyBytes))).base64EncodedString()
        return ["NotificationRequestItem": [
            "pspReference": psp, "originalReference": original, "merchantAccountCode": account, "merchantReference": reference,
            "amount": ["currency": "USD", "value": value], "eventCode": eventCode, "success": success ? "true" : "false",
            "eventDate": "2026-12-06T10:00:00+01:00", "additionalData": ["hmacSignature": signature],
        ] as [String: Any]]
    }

    static func notification(_ items: [[String: Any]]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["live": "false", "notificationItems": items]), as: UTF8.self)
    }

    @Test func paymentsCapturesCancelsAndRefundsSettledByNotifications() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with(fakeAdyen: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_adyen", webhookURL: nil)
            try await subscribe(stack, merchantId: "merchant_adyen", apiKey: apiKey, url: url, events: Self.allEvents)
            let account = try await stack.createAdyenAccount(merchantId: "merchant_adyen", apiKey: apiKey, webhookURL: "\(stack.gatewayURL)/webhooks/merchant_adyen/adyen")
            let hmacKey = try #require(account.hmacKey)
            func events(_ id: String) -> [String] { webhookEvents(receiver, for: id) }
            func create(_ body: String) async throws -> [String: Any] {
                let created = try await stack.request(.POST, "/payments", apiKey: apiKey, body: body)
                #expect(created.status == 200, "\(created.body)")
                return try #require(created.json)
            }

            // A connector account with another auth type is refused, naming the field.
            let wrongAuth = try await stack.request(.POST, "/account/merchant_adyen/connectors", apiKey: apiKey, body: """
                {"connector_type": "payment_processor", "connector_name": "adyen", "connector_account_details": {"auth_type": "HeaderKey", "api_key": "AQE_x"}}
                """)
            #expect(wrongAuth.status == 400 && (wrongAuth.json?["error"] as? [String: Any])?["field"] as? String == "connector_account_details.auth_type", "\(wrongAuth.body)")

            // Automatic capture: Authorised is charged; the AUTHORISATION notification that follows changes nothing.
            let automatic = try await create(PaywireStack.cardPayment(card: "5555555555554444", amount: 6540))
            let automaticId = try #require(automatic["payment_id"] as? String)
            #expect(automatic["status"] as? String == "succeeded" && automatic["connector"] as? String == "adyen" && automatic["amount_received"] as? Int == 6540, "\(automatic)")
            let psp = try #require(automatic["connector_transaction_id"] as? String)
            #expect(psp.count == 16)

            // Refused cards: Adyen's reason code and words as error_code / error_message, Paywire's neutral reason beside them.
            for (holder, code, reason, neutral, unified, network) in [
                ("DECLINED", "2", "Refused", "generic_decline", "UE_1000", "05"), ("CARD_EXPIRED", "6", "Expired Card", "expired_card", "UE_1004", "54"),
                ("NOT_ENOUGH_BALANCE", "12", "Not enough balance", "insufficient_funds", "UE_1001", "51"),
            ] {
                let refused = try await create(PaywireStack.cardPayment(card: "4111111111111111", holder: holder))
                #expect(refused["status"] as? String == "failed", "\(refused)")
                #expect(refused["error_code"] as? String == code && refused["error_message"] as? String == reason, "\(refused)")
                #expect(refused["decline_code"] as? String == neutral && refused["unified_code"] as? String == unified && refused["network_decline_code"] as? String == network, "\(refused)")
            }

            // Manual capture, then a partial capture: `processing`, and no webhook, until CAPTURE arrives.
            let authorized = try await create(PaywireStack.cardPayment(card: "5555555555554444", amount: 2000, captureMethod: "manual"))
            let manualId = try #require(authorized["payment_id"] as? String)
            #expect(authorized["status"] as? String == "requires_capture")
            #expect(await eventually { events(manualId) == ["payment_authorized"] })
            try await stack.adyenBehaviour(#"{"hold_notifications": true}"#)
            let capturing = try await stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: #"{"amount_to_capture": 1500}"#)
            #expect(capturing.json?["status"] as? String == "processing", "\(capturing.body)")
            try await stack.waitUntilQuiet()
            #expect(events(manualId) == ["payment_authorized"], "nothing is announced before Adyen's notification")
            #expect(try await payment(stack, apiKey, manualId)["status"] as? String == "processing")

            // A forged notification is refused whole (401) — even beside a correctly signed item — and changes nothing.
            let capturePsp = "CAPTURE" + String(UUID().uuidString.prefix(9))
            let forged = try Self.notification([
                Self.item(psp: capturePsp, original: try #require(authorized["connector_transaction_id"] as? String), account: account.merchantAccount,
                          reference: manualId, value: 1500, eventCode: "CAPTURE", key: hmacKey),
                Self.item(psp: capturePsp + "X", original: psp, account: account.merchantAccount, reference: automaticId, value: 6540, eventCode: "CANCELLATION",
                          key: hmacKey, forged: true),
            ])
            let refused = try await stack.request(.POST, "/webhooks/merchant_adyen/adyen", apiKey: nil, body: forged)
            #expect(refused.status == 401, "\(refused.body)")
            #expect(try await payment(stack, apiKey, manualId)["status"] as? String == "processing")

            // Released: the capture's notification settles it, announced once.
            try await stack.adyenBehaviour(#"{"hold_notifications": false}"#)
            try await release(stack)
            #expect(await eventually { events(manualId) == ["payment_authorized", "payment_captured"] }, "\(events(manualId))")
            let captured = try await payment(stack, apiKey, manualId)
            #expect(captured["status"] as? String == "partially_captured" && captured["amount_received"] as? Int == 1500, "\(captured)")

            // Cancel: `processing` until CANCELLATION.
            let toCancel = try await create(PaywireStack.cardPayment(card: "5555555555554444", amount: 3000, captureMethod: "manual"))
            let cancelId = try #require(toCancel["payment_id"] as? String)
            #expect(await eventually { events(cancelId) == ["payment_authorized"] })
            try await stack.adyenBehaviour(#"{"hold_notifications": true}"#)
            let cancelling = try await stack.request(.POST, "/payments/\(cancelId)/cancel", apiKey: apiKey, body: #"{"cancellation_reason": "requested_by_customer"}"#)
            #expect(cancelling.json?["status"] as? String == "processing", "\(cancelling.body)")
            try await stack.adyenBehaviour(#"{"hold_notifications": false}"#)
            try await release(stack)
            #expect(await eventually { events(cancelId) == ["payment_authorized", "payment_cancelled"] }, "\(events(cancelId))")

            // Partial then full refund: `pending` until REFUND, then refund_succeeded.
            try await stack.adyenBehaviour(#"{"hold_notifications": true}"#)
            let partial = try #require(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(automaticId)", "amount": 540}"#).json)
            let rest = try #require(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(automaticId)"}"#).json)
            #expect(partial["status"] as? String == "pending" && rest["status"] as? String == "pending" && rest["amount"] as? Int == 6000, "\(partial) \(rest)")
            let refundIds = [try #require(partial["refund_id"] as? String), try #require(rest["refund_id"] as? String)]
            try await stack.waitUntilQuiet()
            #expect(refundIds.allSatisfy { events($0).isEmpty })
            try await stack.adyenBehaviour(#"{"hold_notifications": false}"#)
            try await release(stack)
            for refundId in refundIds {
                #expect(await eventually { events(refundId) == ["refund_succeeded"] }, "\(events(refundId))")
                #expect(try await stack.request(.GET, "/refunds/\(refundId)", apiKey: apiKey).json?["status"] as? String == "succeeded")
            }

            // The same notifications twice and in reverse order (CAPTURE before AUTHORISATION):
            // the payment ends captured, each event sent once.
            try await stack.adyenBehaviour(#"{"hold_notifications": true}"#)
            let reordered = try await create(PaywireStack.cardPayment(card: "5555555555554444", amount: 2500, captureMethod: "manual"))
            let reorderedId = try #require(reordered["payment_id"] as? String)
            #expect(try await stack.request(.POST, "/payments/\(reorderedId)/capture", apiKey: apiKey, body: "{}").json?["status"] as? String == "processing")
            try await stack.adyenBehaviour(#"{"hold_notifications": false}"#)
            try await release(stack, #"{"reverse": true, "duplicate": true}"#)
            #expect(await eventually { (try? await payment(stack, apiKey, reorderedId))?["status"] as? String == "succeeded" })

            // A batch of several items, every one applied: two captures in one request.
            try await stack.adyenBehaviour(#"{"hold_notifications": true}"#)
            var batchIds: [String] = []
            for amount in [1100, 1200] {
                let created = try await create(PaywireStack.cardPayment(card: "5555555555554444", amount: amount, captureMethod: "manual"))
                let id = try #require(created["payment_id"] as? String)
                #expect(try await stack.request(.POST, "/payments/\(id)/capture", apiKey: apiKey, body: "{}").json?["status"] as? String == "processing")
                batchIds.append(id)
            }
            try await stack.adyenBehaviour(#"{"hold_notifications": false}"#)
            try await release(stack, #"{"batch": true}"#)
            for id in batchIds {
                #expect(await eventually { (try? await payment(stack, apiKey, id))?["status"] as? String == "succeeded" }, "\(id)")
            }

            try await stack.waitUntilQuiet()
            #expect(events(automaticId) == ["payment_succeeded"], "\(events(automaticId))")
            #expect(events(reorderedId) == ["payment_authorized", "payment_captured"], "\(events(reorderedId))")
            for id in batchIds { #expect(events(id) == ["payment_authorized", "payment_captured"], "\(events(id))") }
            // Nothing charged twice at the processor.
            let charges = try #require(try await stack.request(.GET, "/_fake/charges", service: "fake-adyen", apiKey: nil).json?["charges_by_payment"] as? [String: Int])
            #expect(charges.values.allSatisfy { $0 == 1 }, "\(charges)")
        }
    }

    /// An authorisation whose answer never came — it never reached Adyen, or Adyen took it and
    /// the answer was lost — is cancelled by our reference once `PAYWIRE_UNANSWERED_AUTHORISATION_CANCEL_SECONDS`
    /// has passed, and Adyen's TECHNICAL_CANCEL report fails the payment with nothing charged,
    /// whichever of that report and the AUTHORISATION comes first. Without it the payment waited
    /// a day for an operator (the fault drill found one: payment-core killed between writing
    /// `processing` and the call).
    @Test func anAuthorisationNeverAnsweredIsCancelledByReferenceAndFails() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        let environment = ["PAYWIRE_CONNECTOR_TIMEOUT_MS": "1500", "PAYWIRE_PSYNC_DELAY_MS": "500", "PAYWIRE_UNANSWERED_AUTHORISATION_CANCEL_SECONDS": "4"]
        try await PaywireStack.with(extraEnvironment: environment, fakeAdyen: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_adyen_unanswered", webhookURL: nil)
            try await subscribe(stack, merchantId: "merchant_adyen_unanswered", apiKey: apiKey, url: url, events: Self.allEvents)
            _ = try await stack.createAdyenAccount(merchantId: "merchant_adyen_unanswered", apiKey: apiKey, webhookURL: "\(stack.gatewayURL)/webhooks/merchant_adyen_unanswered/adyen")
            func create() async throws -> String {
                let created = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "5555555555554444", amount: 4200))
                #expect(created.status == 200 && created.json?["status"] as? String == "processing", "\(created.body)")
                return try #require(created.json?["payment_id"] as? String)
            }
            func held() async throws -> Int {
                try await stack.request(.GET, "/_fake/stats", service: "fake-adyen", apiKey: nil).json?["held"] as? Int ?? -1
            }
            func charges() async throws -> [String: Int] {
                try #require(try await stack.request(.GET, "/_fake/charges", service: "fake-adyen", apiKey: nil).json?["charges_by_payment"] as? [String: Int])
            }
            func endsFailedWithNothingCharged(_ id: String) async throws {
                #expect(await eventually(timeout: .seconds(180)) { (try? await payment(stack, apiKey, id))?["status"] as? String == "failed" }, "\(id)")
                let failed = try await payment(stack, apiKey, id)
                #expect(failed["error_code"] as? String == "TECHNICAL_CANCEL" && failed["amount_received"] as? Int ?? 0 == 0, "\(failed)")
                #expect(await eventually { webhookEvents(receiver, for: id) == ["payment_processing", "payment_failed"] }, "\(webhookEvents(receiver, for: id))")
                let charged = try await charges()[id] ?? 0
                #expect(charged == 0, "released at Adyen")
            }

            // Never reached Adyen (answered 500 before it was read).
            try await stack.adyenBehaviour(#"{"fail_next": 1}"#)
            try await endsFailedWithNothingCharged(try await create())

            // Taken by Adyen, the answer lost (later than the connector timeout), its AUTHORISATION
            // held: the cancel releases it. Reported in order, then in reverse order.
            for options in ["{}", #"{"reverse": true}"#] {
                try await stack.adyenBehaviour(#"{"latency_ms": 3000, "hold_notifications": true}"#)
                let id = try await create()
                #expect(await eventually(timeout: .seconds(60)) { ((try? await held()) ?? 0) >= 1 }, "Adyen took the authorisation")
                try await stack.adyenBehaviour(#"{"hold_notifications": true}"#)
                #expect(await eventually(timeout: .seconds(120)) { ((try? await held()) ?? 0) >= 2 }, "the technical cancel was sent")
                try await stack.adyenBehaviour(#"{"hold_notifications": false}"#)
                try await release(stack, options)
                try await endsFailedWithNothingCharged(id)
            }
            try await stack.waitUntilQuiet()
        }
    }

    /// The dispute events a receiver got for `disputeId`, in order (as the Stripe dispute tests read them).
    func disputeEvents(_ receiver: WebhookReceiver, _ disputeId: String) -> [String] {
        DisputeTests().events(receiver, dispute: disputeId)
    }

    @Test func chargebackNotificationsOpenAcceptChallengeWinAndLoseDisputes() async throws {
        let disputes = WebhookReceiver(), payments = WebhookReceiver()
        let disputesURL = try await disputes.start(), paymentsURL = try await payments.start()
        defer { disputes.stop(); payments.stop() }
        try await PaywireStack.with(fakeAdyen: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_adyen_disputes", webhookURL: nil)
            try await subscribe(stack, merchantId: "merchant_adyen_disputes", apiKey: apiKey, url: disputesURL, events: DisputeTests.disputeEvents)
            try await subscribe(stack, merchantId: "merchant_adyen_disputes", apiKey: apiKey, url: paymentsURL, events: ["payment_succeeded"])
            _ = try await stack.createAdyenAccount(merchantId: "merchant_adyen_disputes", apiKey: apiKey,
                                                   webhookURL: "\(stack.gatewayURL)/webhooks/merchant_adyen_disputes/adyen")
            let otherKey = try await stack.createMerchant("merchant_adyen_bystander", webhookURL: nil)

            func chargeback(_ paymentId: String, _ eventCode: String, status: String? = nil) async throws {
                let status = status.map { #", "dispute_status": "\#($0)""# } ?? ""
                let raised = try await stack.request(.POST, "/_fake/chargebacks", service: "fake-adyen", apiKey: nil,
                                                     body: #"{"merchant_reference": "\#(paymentId)", "event_code": "\#(eventCode)"\#(status)}"#)
                #expect(raised.status == 200, "\(raised.body)")
            }
            /// A succeeded payment and a chargeback notification on it: the dispute as the API shows it.
            func disputed(amount: Int) async throws -> [String: Any] {
                let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "5555555555554444", amount: amount))
                #expect(payment.json?["status"] as? String == "succeeded", "\(payment.body)")
                let paymentId = try #require(payment.json?["payment_id"] as? String)
                try await chargeback(paymentId, "NOTIFICATION_OF_CHARGEBACK")
                var found: [String: Any]?
                #expect(await eventually {
                    let list = try? await stack.request(.GET, "/disputes/list?connector=adyen", apiKey: apiKey)
                    found = (try? JSONSerialization.jsonObject(with: Data((list?.body ?? "[]").utf8)) as? [[String: Any]])?.first { $0["payment_id"] as? String == paymentId }
                    return found != nil
                }, "\(stack.logs("payment-core"))")
                return try #require(found)
            }

            // Opened (Adyen's notice of chargeback is the pre-dispute stage), sent to the subscribed endpoint only.
            let first = try await disputed(amount: 5100)
            let firstId = try #require(first["dispute_id"] as? String)
            let firstPayment = try #require(first["payment_id"] as? String)
            #expect(first["dispute_stage"] as? String == "pre_dispute" && first["dispute_status"] as? String == "dispute_opened", "\(first)")
            #expect(first["amount"] as? String == "5100" && first["connector"] as? String == "adyen" && first["connector_reason_code"] as? String == "10.4")
            #expect(first["challenge_required_by"] is String)
            #expect(await eventually { disputeEvents(disputes, firstId) == ["dispute_opened"] })
            #expect(try await stack.request(.GET, "/disputes/\(firstId)", apiKey: otherKey).status == 404, "another merchant's dispute")

            // Accepted: Adyen's acceptDispute is called (a second accept is refused there and here).
            let accepted = try await stack.request(.POST, "/disputes/accept/\(firstId)", apiKey: apiKey)
            #expect(accepted.json?["dispute_status"] as? String == "dispute_accepted", "\(accepted.body)")
            #expect(await eventually { disputeEvents(disputes, firstId) == ["dispute_opened", "dispute_accepted"] })
            #expect(try await stack.request(.POST, "/disputes/accept/\(firstId)", apiKey: apiKey).status == 400)
            // A later notice in the same stage would reopen it: not a legal move, nothing changes.
            try await chargeback(firstPayment, "NOTIFICATION_OF_CHARGEBACK")

            // Defended with evidence (challenged), then won at the chargeback stage.
            let second = try await disputed(amount: 5200)
            let secondId = try #require(second["dispute_id"] as? String)
            let evidence = try await stack.request(.POST, "/disputes/evidence", apiKey: apiKey, body: #"{"dispute_id": "\#(secondId)", "uncategorized_text": "Delivered"}"#)
            #expect(evidence.json?["dispute_status"] as? String == "dispute_challenged", "\(evidence.body)")
            #expect(await eventually { disputeEvents(disputes, secondId) == ["dispute_opened", "dispute_challenged"] })
            try await chargeback(try #require(second["payment_id"] as? String), "CHARGEBACK", status: "Won")
            #expect(await eventually { disputeEvents(disputes, secondId) == ["dispute_opened", "dispute_challenged", "dispute_won"] }, "\(disputeEvents(disputes, secondId))")

            // Reversed while pending (challenged), then lost at pre-arbitration.
            let third = try await disputed(amount: 5300)
            let thirdId = try #require(third["dispute_id"] as? String)
            let thirdPayment = try #require(third["payment_id"] as? String)
            try await chargeback(thirdPayment, "CHARGEBACK_REVERSED", status: "Pending")
            #expect(await eventually { disputeEvents(disputes, thirdId) == ["dispute_opened", "dispute_challenged"] }, "\(disputeEvents(disputes, thirdId))")
            try await chargeback(thirdPayment, "SECOND_CHARGEBACK")
            #expect(await eventually { disputeEvents(disputes, thirdId) == ["dispute_opened", "dispute_challenged", "dispute_lost"] }, "\(disputeEvents(disputes, thirdId))")
            let lost = try #require(try await stack.request(.GET, "/disputes/\(thirdId)", apiKey: apiKey).json)
            #expect(lost["dispute_stage"] as? String == "pre_arbitration" && lost["dispute_status"] as? String == "dispute_lost", "\(lost)")

            try await stack.waitUntilQuiet()
            #expect(disputeEvents(disputes, firstId) == ["dispute_opened", "dispute_accepted"], "the late notice changed nothing")
            #expect(payments.requests.allSatisfy { !$0.body.contains("\"dispute_") }, "\(payments.requests.map(\.body))")
        }
    }
}
