import Foundation
import PaywireTestSupport
import Testing

/// A Hyperswitch merchant's integration, run unchanged against Paywire: the browser confirms and
/// retrieves with the publishable key and the payment's client_secret (on the sandbox and on the
/// fake Stripe), and the shapes and routes such a client relies on.
@Suite(.serialized, .timeLimit(.minutes(8)), .enabled(if: TestEnvironment.hasDatabase))
struct HyperswitchClientTests {
    struct Merchant {
        var id: String
        var apiKey: String
        var publishableKey: String
    }

    func merchant(_ stack: PaywireStack, _ id: String, stripe: Bool) async throws -> Merchant {
        let apiKey = try await stack.createMerchant(id, webhookURL: nil)
        let publishable = try #require(try await stack.request(.GET, "/accounts/\(id)").json?["publishable_key"] as? String)
        if stripe {
            try await stack.createStripeAccount(merchantId: id, apiKey: apiKey, webhookURL: nil)
        } else {
            try await stack.createSandboxAccount(merchantId: id, apiKey: apiKey)
        }
        return Merchant(id: id, apiKey: apiKey, publishableKey: publishable)
    }

    func list(_ result: PaywireStack.HTTPResult) -> [[String: Any]] {
        (try? JSONSerialization.jsonObject(with: Data(result.body.utf8))) as? [[String: Any]] ?? []
    }

    func error(_ result: PaywireStack.HTTPResult) -> (code: String?, field: String?) {
        let error = result.json?["error"] as? [String: Any]
        return (error?["code"] as? String, error?["field"] as? String)
    }

    /// Created server-side with the secret key and no payment method, as a checkout page does
    /// before it hands the client secret to the browser.
    func serverSidePayment(_ stack: PaywireStack, _ merchant: Merchant, expiry: Int? = nil) async throws -> (id: String, secret: String) {
        let created = try await stack.request(.POST, "/payments", apiKey: merchant.apiKey, body: """
            {"amount": 4200, "currency": "EUR", "confirm": false, "customer_id": "cus_browser", "description": "order 42",
             "metadata": {"order": "42", "internal_margin": "0.31"}\(expiry.map { ", \"session_expiry\": \($0)" } ?? "")}
            """)
        #expect(created.status == 200, "\(created.body)")
        let id = try #require(created.json?["payment_id"] as? String)
        let secret = try #require(created.json?["client_secret"] as? String)
        #expect(created.json?["status"] as? String == "requires_payment_method")
        #expect(created.json?["expires_on"] is String, "\(created.body)")
        return (id, secret)
    }

    static let browserConfirm = """
        "payment_method": "card", "payment_method_data": {"card": {"card_number": "4242424242424242", "card_exp_month": "03", "card_exp_year": "2030", "card_cvc": "737", "card_holder_name": "Jo Doe"},
          "billing": {"address": {"line1": "1 Main St", "city": "Berlin", "country": "DE", "zip": "10115"}, "email": "jo@example.com"}}
        """

    @Test(arguments: [false, true])
    func theBrowserConfirmsAndRetrievesWithThePublishableKeyAndClientSecret(stripe: Bool) async throws {
        try await PaywireStack.with(fakeStripe: stripe) { stack in
            let shop = try await merchant(stack, "hs_shop", stripe: stripe)
            let other = try await merchant(stack, "hs_other", stripe: stripe)
            let (paymentId, secret) = try await serverSidePayment(stack, shop)
            let (secondId, secondSecret) = try await serverSidePayment(stack, shop)

            // Retrieve: only with this payment's secret.
            let noSecret = try await stack.request(.GET, "/payments/\(paymentId)", apiKey: shop.publishableKey)
            #expect(noSecret.status == 400 && error(noSecret).field == "client_secret", "\(noSecret.body)")
            let wrong = try await stack.request(.GET, "/payments/\(paymentId)?client_secret=\(paymentId)_secret_guess", apiKey: shop.publishableKey)
            #expect(wrong.status == 400 && error(wrong).code == "IR_09", "\(wrong.body)")
            let another = try await stack.request(.GET, "/payments/\(paymentId)?client_secret=\(secondSecret)", apiKey: shop.publishableKey)
            #expect(another.status == 400 && error(another).code == "IR_09", "another payment's secret")
            #expect(try await stack.request(.GET, "/payments/\(paymentId)?client_secret=\(secret)", apiKey: other.publishableKey).status == 404, "another merchant's key")
            let seen = try await stack.request(.GET, "/payments/\(paymentId)?client_secret=\(secret)", apiKey: shop.publishableKey)
            #expect(seen.status == 200 && seen.json?["status"] as? String == "requires_payment_method", "\(seen.body)")
            #expect(seen.json?["metadata"] is NSNull, "the merchant's metadata stays out of the browser")
            #expect(seen.json?["amount"] as? Int == 4200 && seen.json?["client_secret"] as? String == secret)

            // Confirm from the browser: the merchant's decisions are not the browser's to make.
            let routed = try await stack.request(.POST, "/payments/\(paymentId)/confirm", apiKey: shop.publishableKey, body: #"{"client_secret": "\#(secret)", "routing": {"type": "single", "data": "sandbox"}, \#(Self.browserConfirm)}"#)
            #expect(routed.status == 400 && error(routed).field == "routing", "\(routed.body)")
            // Nor may it charge a stored credential: the merchant's saved processor token is the
            // server's to use (a browser brings the card).
            let saved = try await stack.request(.POST, "/payments/\(paymentId)/confirm", apiKey: shop.publishableKey,
                                                body: #"{"client_secret": "\#(secret)", "recurring_details": {"type": "processor_payment_token", "data": {"processor_payment_token": "tok_sandbox_4242"}}}"#)
            #expect(saved.status == 400 && error(saved).field == "recurring_details", "\(saved.body)")
            let bad = try await stack.request(.POST, "/payments/\(paymentId)/confirm", apiKey: shop.publishableKey, body: #"{"client_secret": "\#(secondSecret)", \#(Self.browserConfirm)}"#)
            #expect(bad.status == 400 && error(bad).code == "IR_09")
            let confirmed = try await stack.request(.POST, "/payments/\(paymentId)/confirm", apiKey: shop.publishableKey, body: #"{"client_secret": "\#(secret)", \#(Self.browserConfirm)}"#)
            #expect(confirmed.status == 200 && confirmed.json?["status"] as? String == "succeeded", "\(confirmed.body)")
            #expect(confirmed.json?["connector_transaction_id"] is NSNull && confirmed.json?["merchant_connector_id"] is NSNull, "processor references stay out of the browser")
            #expect(((confirmed.json?["payment_method_data"] as? [String: Any])?["card"] as? [String: Any])?["last4"] as? String == "4242")

            // The merchant sees everything, the billing sent with the card included.
            let full = try await stack.request(.GET, "/payments/\(paymentId)", apiKey: shop.apiKey)
            #expect(full.json?["connector_transaction_id"] is String && (full.json?["metadata"] as? [String: Any])?["order"] as? String == "42")
            let billing = try #require((full.json?["payment_method_data"] as? [String: Any])?["billing"] as? [String: Any], "\(full.body)")
            #expect((billing["address"] as? [String: Any])?["city"] as? String == "Berlin" && billing["email"] as? String == "jo@example.com")

            // The publishable key opens nothing else, even with a client secret.
            #expect(try await stack.request(.POST, "/payments", apiKey: shop.publishableKey, body: #"{"amount": 100, "currency": "USD"}"#).status == 401)
            #expect(try await stack.request(.POST, "/payments/\(secondId)/cancel", apiKey: shop.publishableKey, body: #"{"client_secret": "\#(secondSecret)"}"#).status == 401)
            #expect(try await stack.request(.POST, "/payments/\(secondId)", apiKey: shop.publishableKey, body: #"{"client_secret": "\#(secondSecret)", "amount": 1}"#).status == 401)
            #expect(try await stack.request(.POST, "/refunds", apiKey: shop.publishableKey, body: #"{"payment_id": "\#(paymentId)"}"#).status == 401)
            #expect(try await stack.request(.GET, "/payments/list", apiKey: shop.publishableKey).status == 401)
            #expect(try await stack.request(.GET, "/accounts/hs_shop", apiKey: shop.publishableKey).status == 401)

            // After session_expiry the secret is refused.
            let (shortId, shortSecret) = try await serverSidePayment(stack, shop, expiry: 1)
            #expect(await eventually(timeout: .seconds(10)) {
                let answer = try? await stack.request(.GET, "/payments/\(shortId)?client_secret=\(shortSecret)", apiKey: shop.publishableKey)
                return answer?.status == 400 && answer.map(error)?.code == "IR_42"
            }, "an expired client secret")
            let late = try await stack.request(.POST, "/payments/\(shortId)/confirm", apiKey: shop.publishableKey, body: #"{"client_secret": "\#(shortSecret)", \#(Self.browserConfirm)}"#)
            #expect(late.status == 400 && error(late).code == "IR_42")
            #expect(try await stack.request(.GET, "/payments/\(shortId)", apiKey: shop.apiKey).json?["status"] as? String == "requires_payment_method", "nothing charged")
        }
    }

    @Test func hyperswitchShapesAndTheRoutesItsClientsCall() async throws {
        try await PaywireStack.with { stack in
            let shop = try await merchant(stack, "hs_routes", stripe: false)
            let other = try await merchant(stack, "hs_routes_other", stripe: false)

            // Connector update: the stored connector_type (and name) may be sent back; a change may not.
            let accounts = try await stack.request(.GET, "/account/hs_routes/connectors", apiKey: shop.apiKey)
            let accountId = try #require(list(accounts).first?["merchant_connector_id"] as? String, "\(accounts.body)")
            let same = try await stack.request(.POST, "/account/hs_routes/connectors/\(accountId)", apiKey: shop.apiKey,
                                               body: #"{"connector_type": "payment_processor", "connector_name": "sandbox", "metadata": {"note": "kept"}}"#)
            #expect(same.status == 200 && (same.json?["metadata"] as? [String: Any])?["note"] as? String == "kept", "\(same.body)")
            let changed = try await stack.request(.POST, "/account/hs_routes/connectors/\(accountId)", apiKey: shop.apiKey, body: #"{"connector_type": "billing_processor"}"#)
            #expect(changed.status == 400 && error(changed).field == "connector_type")
            let renamed = try await stack.request(.POST, "/account/hs_routes/connectors/\(accountId)", apiKey: shop.apiKey, body: #"{"connector_type": "payment_processor", "connector_name": "stripe"}"#)
            #expect(renamed.status == 400 && error(renamed).field == "connector_name")

            // Update before confirm; refused once confirmed; another merchant's key: 404.
            let created = try await stack.request(.POST, "/payments", apiKey: shop.apiKey, body: #"{"amount": 1000, "currency": "USD", "customer_id": "cus_a"}"#)
            let paymentId = try #require(created.json?["payment_id"] as? String)
            #expect(try await stack.request(.POST, "/payments/\(paymentId)", apiKey: other.apiKey, body: #"{"amount": 1}"#).status == 404)
            let updated = try await stack.request(.POST, "/payments/\(paymentId)", apiKey: shop.apiKey, body: #"{"amount": 1250, "description": "two items", "metadata": {"cart": "7"}}"#)
            #expect(updated.status == 200 && updated.json?["amount"] as? Int == 1250 && updated.json?["description"] as? String == "two items", "\(updated.body)")
            let withCard = try await stack.request(.POST, "/payments/\(paymentId)", apiKey: shop.apiKey, body: #"{"payment_method_data": {"card": {"card_number": "4242424242424242"}}}"#)
            #expect(withCard.status == 400 && error(withCard).field == "payment_method_data.card")
            let confirmed = try await stack.request(.POST, "/payments/\(paymentId)/confirm", apiKey: shop.apiKey, body: #"{\#(Self.browserConfirm)}"#)
            #expect(confirmed.json?["status"] as? String == "succeeded" && confirmed.json?["amount_received"] as? Int == 1250, "\(confirmed.body)")
            #expect(try await stack.request(.POST, "/payments/\(paymentId)", apiKey: shop.apiKey, body: #"{"amount": 1}"#).status == 400, "a confirmed payment keeps its amount")

            // The payments list: newest first, filtered by customer, paged; only the caller's own.
            var ids = [paymentId]
            for customer in ["cus_a", "cus_b", "cus_a"] {
                let payment = try await stack.request(.POST, "/payments", apiKey: shop.apiKey, body: #"{"amount": 500, "currency": "USD", "customer_id": "\#(customer)"}"#)
                ids.append(try #require(payment.json?["payment_id"] as? String))
            }
            _ = try await stack.request(.POST, "/payments", apiKey: other.apiKey, body: #"{"amount": 500, "currency": "USD", "customer_id": "cus_a"}"#)
            let all = try await stack.request(.GET, "/payments/list?limit=10", apiKey: shop.apiKey)
            let listed = ((all.json?["data"] as? [[String: Any]]) ?? []).compactMap { $0["payment_id"] as? String }
            #expect(listed == ids.reversed() && all.json?["size"] as? Int == 4, "\(all.body)")
            let customerA = try await stack.request(.GET, "/payments/list?customer_id=cus_a", apiKey: shop.apiKey)
            #expect(((customerA.json?["data"] as? [[String: Any]]) ?? []).compactMap { $0["payment_id"] as? String } == [ids[3], ids[1], ids[0]])
            let page = try await stack.request(.GET, "/payments/list?limit=2&starting_after=\(ids[2])", apiKey: shop.apiKey)
            #expect(((page.json?["data"] as? [[String: Any]]) ?? []).compactMap { $0["payment_id"] as? String } == [ids[1], ids[0]])
            #expect(try await stack.request(.GET, "/payments/list?limit=101", apiKey: shop.apiKey).status == 400)
            #expect(try await stack.request(.GET, "/payments/list?created.gte=yesterday", apiKey: shop.apiKey).status == 400)
            let admin = try await stack.request(.GET, "/payments/list?merchant_id=hs_routes_other")
            #expect(admin.json?["size"] as? Int == 1)

            // Refunds: list with filters, update of reason and metadata; another merchant sees none.
            let first = try await stack.request(.POST, "/refunds", apiKey: shop.apiKey, body: #"{"payment_id": "\#(paymentId)", "amount": 250}"#)
            let refundId = try #require(first.json?["refund_id"] as? String, "\(first.body)")
            _ = try await stack.request(.POST, "/refunds", apiKey: shop.apiKey, body: #"{"payment_id": "\#(paymentId)", "amount": 100}"#)
            let refunds = try await stack.request(.POST, "/refunds/list", apiKey: shop.apiKey, body: #"{"payment_id": "\#(paymentId)", "limit": 1}"#)
            #expect(refunds.json?["total_count"] as? Int == 2 && refunds.json?["count"] as? Int == 1, "\(refunds.body)")
            let none = try await stack.request(.POST, "/refunds/list", apiKey: other.apiKey, body: #"{"payment_id": "\#(paymentId)"}"#)
            #expect(none.json?["total_count"] as? Int == 0)
            let range = try await stack.request(.POST, "/refunds/list", apiKey: shop.apiKey, body: #"{"time_range": {"start_time": "2030-01-01T00:00:00Z", "end_time": "2029-01-01T00:00:00Z"}}"#)
            #expect(range.status == 400 && error(range).field == "time_range.end_time")
            let noted = try await stack.request(.POST, "/refunds/\(refundId)", apiKey: shop.apiKey, body: #"{"reason": "damaged", "metadata": {"ticket": "T-9"}}"#)
            #expect(noted.status == 200 && noted.json?["reason"] as? String == "damaged" && (noted.json?["metadata"] as? [String: Any])?["ticket"] as? String == "T-9", "\(noted.body)")
            #expect(try await stack.request(.GET, "/refunds/\(refundId)", apiKey: shop.apiKey).json?["reason"] as? String == "damaged")
            #expect(try await stack.request(.POST, "/refunds/\(refundId)", apiKey: other.apiKey, body: #"{"reason": "x"}"#).status == 404)

            // API key update: name, description, expiration; never the key; another merchant: 404.
            let keys = try await stack.request(.GET, "/api_keys/hs_routes/list", apiKey: shop.apiKey)
            let keyId = try #require(list(keys).first?["key_id"] as? String, "\(keys.body)")
            let renamedKey = try await stack.request(.POST, "/api_keys/hs_routes/\(keyId)", apiKey: shop.apiKey, body: #"{"name": "checkout", "description": "the web shop", "expiration": "2099-01-01T00:00:00Z"}"#)
            #expect(renamedKey.status == 200 && renamedKey.json?["name"] as? String == "checkout" && renamedKey.json?["api_key"] == nil, "\(renamedKey.body)")
            #expect((renamedKey.json?["expiration"] as? String)?.hasPrefix("2099-01-01") == true)
            #expect(try await stack.request(.POST, "/api_keys/hs_routes/\(keyId)", apiKey: other.apiKey, body: #"{"name": "x"}"#).status == 404)
            #expect(try await stack.request(.POST, "/api_keys/hs_routes/\(keyId)", apiKey: shop.apiKey, body: #"{"expiration": "2001-01-01T00:00:00Z"}"#).status == 400)
            #expect(try await stack.request(.GET, "/payments/list", apiKey: shop.apiKey).status == 200, "the renamed key still works")

            // Merchant delete answers as Hyperswitch does.
            let deleted = try await stack.request(.DELETE, "/accounts/hs_routes_other")
            #expect(deleted.status == 200 && deleted.json?["merchant_id"] as? String == "hs_routes_other" && deleted.json?["deleted"] as? Bool == true, "\(deleted.body)")
        }
    }
}
