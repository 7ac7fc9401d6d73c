import Foundation

/// Set-up shared by the payment end-to-end tests.
extension PaywireStack {
    /// A merchant with a webhook URL for every event type and a merchant API key.
    public func createMerchant(_ merchantId: String, webhookURL: String?) async throws -> String {
        let details = webhookURL.map { #", "webhook_details": {"webhook_url": "\#($0)"}"# } ?? ""
        let account = try await request(.POST, "/accounts", body: #"{"merchant_id": "\#(merchantId)"\#(details)}"#)
        guard account.status == 200 else { throw MissingTestService(description: "merchant not created: \(account.body)") }
        let key = try await request(.POST, "/api_keys/\(merchantId)", body: #"{"name": "tests"}"#)
        guard let apiKey = key.json?["api_key"] as? String else { throw MissingTestService(description: "API key not created: \(key.body)") }
        return apiKey
    }

    /// A sandbox payment-processor account on the merchant's default profile; returns its id.
    @discardableResult
    public func createSandboxAccount(merchantId: String, apiKey: String) async throws -> String {
        let created = try await request(.POST, "/account/\(merchantId)/connectors", apiKey: apiKey, body: """
            {"connector_type": "payment_processor", "connector_name": "sandbox", "connector_account_details": {"auth_type": "NoKey"}}
            """)
        guard let id = created.json?["merchant_connector_id"] as? String else { throw MissingTestService(description: "sandbox account not created: \(created.body)") }
        return id
    }

    /// A Stripe account against the fake, with the fake's webhook secret when `webhookURL` is
    /// given (the fake then signs events to that URL with it).
    @discardableResult
    public func createStripeAccount(merchantId: String, apiKey: String, webhookURL: String?) async throws -> (id: String, webhookSecret: String?) {
        var webhookDetails = ""
        var webhookSecret: String?
        if let webhookURL {
            let endpoint = try await request(.POST, "/v1/webhook_endpoints", service: "fake-stripe", apiKey: nil,
                                             body: nil, headers: [("Authorization", "Bearer sk_test_paywire"), ("Content-Type", "application/x-www-form-urlencoded")],
                                             rawBody: "url=" + (webhookURL.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? webhookURL))
            guard let secret = endpoint.json?["secret"] as? String else { throw MissingTestService(description: "fake Stripe endpoint: \(endpoint.body)") }
            webhookDetails = #", "connector_webhook_details": {"merchant_secret": "\#(secret)"}"#
            webhookSecret = secret
        }
        let created = try await request(.POST, "/account/\(merchantId)/connectors", apiKey: apiKey, body: """
            {"connector_type": "payment_processor", "connector_name": "stripe", "connector_account_details": {"auth_type": "HeaderKey", "api_key": "sk_test_paywire_0000000000000001"}\(webhookDetails)}
            """)
        guard let id = created.json?["merchant_connector_id"] as? String else { throw MissingTestService(description: "stripe account not created: \(created.body)") }
        return (id, webhookSecret)
    }

    /// An Adyen account against the fake: its merchant account (`key1`) is named after the
    /// merchant, and with `webhookURL` the fake's webhook for that merchant account sends
    /// notifications there, signed with the HMAC key the account is given.
    @discardableResult
    public func createAdyenAccount(merchantId: String, apiKey: String, webhookURL: String?) async throws -> (id: String, hmacKey: String?, merchantAccount: String) {
        let merchantAccount = "Paywire\(merchantId.replacingOccurrences(of: "_", with: ""))ECOM"
        let adyenHeaders = [("X-API-Key", "AQE_test_paywire")]
        var webhookDetails = ""
        var hmacKey: String?
        if let webhookURL {
            let hook = try await request(.POST, "/management/v3/merchants/\(merchantAccount)/webhooks", service: "fake-adyen", apiKey: nil,
                                         body: #"{"url": "\#(webhookURL)", "type": "standard"}"#, headers: adyenHeaders)
            guard let hookId = hook.json?["id"] as? String else { throw MissingTestService(description: "fake Adyen webhook: \(hook.body)") }
            let generated = try await request(.POST, "/management/v3/merchants/\(merchantAccount)/webhooks/\(hookId)/generateHmac", service: "fake-adyen", apiKey: nil,
                                              body: "{}", headers: adyenHeaders)
            guard let key = generated.json?["hmacKey"] as? String else { throw MissingTestService(description: "fake Adyen HMAC key: \(generated.body)") }
            webhookDetails = #", "connector_webhook_details": {"merchant_secret": "\#(key)"}"#
            hmacKey = key
        }
        let created = try await request(.POST, "/account/\(merchantId)/connectors", apiKey: apiKey, body: """
            {"connector_type": "payment_processor", "connector_name": "adyen", "connector_account_details": {"auth_type": "BodyKey", "api_key": "AQE_test_paywire", "key1": "\(merchantAccount)"}\(webhookDetails)}
            """)
        guard let id = created.json?["merchant_connector_id"] as? String else { throw MissingTestService(description: "adyen account not created: \(created.body)") }
        return (id, hmacKey, merchantAccount)
    }

    /// Sets the fake Adyen's knobs (snake_case JSON; absent knobs take their defaults).
    public func adyenBehaviour(_ json: String) async throws {
        let result = try await request(.POST, "/_fake/behaviour", service: "fake-adyen", apiKey: nil, body: json)
        guard result.status == 200 else { throw MissingTestService(description: "fake Adyen behaviour: \(result.body)") }
    }

    /// A confirmed card payment body.
    public static func cardPayment(card: String, amount: Int = 6540, captureMethod: String = "automatic", confirm: Bool = true, holder: String = "Jo Doe", extra: String = "") -> String {
        """
        {"amount": \(amount), "currency": "USD", "confirm": \(confirm), "capture_method": "\(captureMethod)",
         "payment_method": "card", "payment_method_data": {"card": {"card_number": "\(card)", "card_exp_month": "03", "card_exp_year": "2030", "card_cvc": "737", "card_holder_name": "\(holder)"}}\(extra)}
        """
    }
}
