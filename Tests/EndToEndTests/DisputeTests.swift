import Foundation
import PaywireModels
import PaywireTestSupport
import Testing

/// Disputes end to end on the fake Stripe: a chargeback on a succeeded payment opens a dispute
/// and sends dispute_opened to the endpoint subscribed to it and to no other; accepting tells the
/// processor and sends dispute_accepted; evidence makes it challenged, then won or lost as the
/// bank decides; an illegal move is refused; another merchant sees none of it.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct DisputeTests {
    static let disputeEvents = ["dispute_opened", "dispute_accepted", "dispute_challenged", "dispute_won", "dispute_lost", "dispute_cancelled", "dispute_expired"]

    /// The dispute events a receiver got for `disputeId`, in order.
    func events(_ receiver: WebhookReceiver, dispute disputeId: String) -> [String] {
        receiver.requests.compactMap { request -> String? in
            guard let body = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
                  let content = body["content"] as? [String: Any], let object = content["object"] as? [String: Any],
                  object["dispute_id"] as? String == disputeId else { return nil }
            #expect(content["type"] as? String == "dispute_details")
            return body["event_type"] as? String
        }
    }

    @Test func chargebacksOnTheFakeStripeFromOpenedToAcceptedWonAndLost() async throws {
        let disputes = WebhookReceiver(), payments = WebhookReceiver()
        let disputesURL = try await disputes.start(), paymentsURL = try await payments.start()
        defer { disputes.stop(); payments.stop() }
        try await PaywireStack.with(fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_disputes", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/merchant_disputes").json?["default_profile"] as? String)
            // The disputes endpoint takes one dispute's events in the order they happened (per-object
            // ordering); unordered endpoints may receive a quick second event before the first.
            for (url, events) in [(disputesURL, Self.disputeEvents), (paymentsURL, ["payment_succeeded"])] {
                let created = try await stack.request(.POST, "/account/merchant_disputes/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                                      body: #"{"webhook_url": "\#(url)/hooks", "ordering": "per_object", "events": \#(String(decoding: try JSONEncoder().encode(events), as: UTF8.self))}"#)
                #expect(created.status == 200, "\(created.body)")
            }
            _ = try await stack.createStripeAccount(merchantId: "merchant_disputes", apiKey: apiKey, webhookURL: "\(stack.gatewayURL)/webhooks/merchant_disputes/stripe")
            let otherKey = try await stack.createMerchant("merchant_bystander", webhookURL: nil)

            /// A succeeded payment and a chargeback on it: the dispute as the API shows it.
            func disputed(amount: Int) async throws -> [String: Any] {
                let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: amount))
                #expect(payment.json?["status"] as? String == "succeeded", "\(payment.body)")
                let paymentId = try #require(payment.json?["payment_id"] as? String)
                let raised = try await stack.request(.POST, "/_fake/disputes", service: "fake-stripe", apiKey: nil, body: #"{"payment_id": "\#(paymentId)"}"#)
                #expect(raised.status == 200, "\(raised.body)")
                var found: [String: Any]?
                #expect(await eventually(timeout: .seconds(30)) {
                    let list = try? await stack.request(.GET, "/disputes/list?dispute_status=dispute_opened", apiKey: apiKey)
                    found = (try? JSONSerialization.jsonObject(with: Data((list?.body ?? "[]").utf8)) as? [[String: Any]])?.first { $0["payment_id"] as? String == paymentId }
                    return found != nil
                }, "\(stack.logs("payment-core"))")
                return try #require(found)
            }

            // Opened: the object as Hyperswitch returns it, its event to the subscribed endpoint only.
            let first = try await disputed(amount: 4100)
            let firstId = try #require(first["dispute_id"] as? String)
            #expect(first["amount"] as? String == "4100" && first["currency"] as? String == "USD" && first["connector"] as? String == "stripe")
            #expect(first["dispute_stage"] as? String == "dispute" && first["connector_status"] as? String == "needs_response")
            #expect(first["connector_reason"] as? String == "fraudulent" && first["challenge_required_by"] is String && first["attempt_id"] is String)
            #expect(await eventually(timeout: .seconds(30)) { events(disputes, dispute: firstId) == ["dispute_opened"] })
            #expect(try await stack.request(.GET, "/disputes/\(firstId)", apiKey: otherKey).status == 404, "another merchant's dispute")
            #expect(try await stack.request(.POST, "/disputes/accept/\(firstId)", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.GET, "/disputes/list", apiKey: otherKey).body == "[]")

            // Accepted: the processor is told (the fake's dispute is closed, lost), the merchant hears it.
            let accepted = try await stack.request(.POST, "/disputes/accept/\(firstId)", apiKey: apiKey)
            #expect(accepted.json?["dispute_status"] as? String == "dispute_accepted", "\(accepted.body)")
            let connectorId = try #require(first["connector_dispute_id"] as? String)
            let atStripe = try await stack.request(.GET, "/v1/disputes/\(connectorId)", service: "fake-stripe", apiKey: nil, headers: [("Authorization", "Bearer sk_test_paywire")])
            #expect(atStripe.json?["status"] as? String == "lost", "\(atStripe.body)")
            #expect(await eventually(timeout: .seconds(30)) { events(disputes, dispute: firstId) == ["dispute_opened", "dispute_accepted"] })
            // An accepted dispute cannot be accepted again or challenged, and Stripe's later
            // `closed` (lost) does not move it.
            let again = try await stack.request(.POST, "/disputes/accept/\(firstId)", apiKey: apiKey)
            #expect(again.status == 400 && (again.json?["error"] as? [String: Any])?["field"] as? String == "dispute_id", "\(again.body)")
            let late = try await stack.request(.POST, "/disputes/evidence", apiKey: apiKey, body: #"{"dispute_id": "\#(firstId)", "uncategorized_text": "too late"}"#)
            #expect(late.status == 400, "\(late.body)")

            // Challenged with evidence (kept, sent to Stripe), then won.
            let second = try await disputed(amount: 4200)
            let secondId = try #require(second["dispute_id"] as? String)
            let evidence = try await stack.request(.POST, "/disputes/evidence", apiKey: apiKey,
                                                   body: #"{"dispute_id": "\#(secondId)", "uncategorized_text": "Delivered and signed for", "customer_name": "Jo <b>Doe</b>"}"#)
            #expect(evidence.json?["dispute_status"] as? String == "dispute_challenged", "\(evidence.body)")
            let secondAtStripe = try #require(second["connector_dispute_id"] as? String)
            let sent = try await stack.request(.GET, "/v1/disputes/\(secondAtStripe)", service: "fake-stripe", apiKey: nil, headers: [("Authorization", "Bearer sk_test_paywire")])
            #expect((sent.json?["evidence"] as? [String: Any])?["uncategorized_text"] as? String == "Delivered and signed for", "\(sent.body)")
            #expect(try await stack.request(.POST, "/_fake/disputes/\(secondAtStripe)/status", service: "fake-stripe", apiKey: nil, body: #"{"status": "won"}"#).status == 200)
            #expect(await eventually(timeout: .seconds(30)) { events(disputes, dispute: secondId) == ["dispute_opened", "dispute_challenged", "dispute_won"] },
                    "\(events(disputes, dispute: secondId))")
            #expect(try await stack.request(.GET, "/disputes/\(secondId)", apiKey: apiKey).json?["dispute_status"] as? String == "dispute_won")

            // Challenged at the bank, then lost; an unknown filter value is refused naming it.
            let third = try await disputed(amount: 4300)
            let thirdId = try #require(third["dispute_id"] as? String)
            let thirdAtStripe = try #require(third["connector_dispute_id"] as? String)
            for status in ["under_review", "lost"] {
                #expect(try await stack.request(.POST, "/_fake/disputes/\(thirdAtStripe)/status", service: "fake-stripe", apiKey: nil, body: #"{"status": "\#(status)"}"#).status == 200)
                // Waited for in turn: the bank's decisions arrive in order.
                let expected = status == "lost" ? ["dispute_opened", "dispute_challenged", "dispute_lost"] : ["dispute_opened", "dispute_challenged"]
                #expect(await eventually(timeout: .seconds(30)) { events(disputes, dispute: thirdId) == expected }, "\(events(disputes, dispute: thirdId))")
            }
            let lost = try await stack.request(.GET, "/disputes/list?dispute_status=dispute_lost&dispute_stage=dispute", apiKey: apiKey)
            #expect((try JSONSerialization.jsonObject(with: Data(lost.body.utf8)) as? [[String: Any]])?.compactMap { $0["dispute_id"] as? String } == [thirdId], "\(lost.body)")
            let refused = try await stack.request(.GET, "/disputes/list?dispute_status=dispute_maybe", apiKey: apiKey)
            #expect(refused.status == 400 && (refused.json?["error"] as? [String: Any])?["field"] as? String == "dispute_status", "\(refused.body)")

            // The payments endpoint (subscribed to payment_succeeded only) got no dispute event.
            try await stack.waitUntilQuiet()
            #expect(payments.requests.allSatisfy { !$0.body.contains("\"dispute_") }, "\(payments.requests.map(\.body))")
            #expect(events(disputes, dispute: firstId) == ["dispute_opened", "dispute_accepted"], "one event per change, never twice")
        }
    }
}
