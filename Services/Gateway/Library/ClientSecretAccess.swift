import Crypto
import Foundation
import PaywireModels
import PaywireRuntime

/// What a merchant's publishable key may do, as Hyperswitch's browser SDKs use it: with a
/// payment's `client_secret`, confirm and retrieve that one payment until its session expires
/// (`session_expiry` on the payment or its profile, 900 s by default) — nothing else. The secret
/// key never has to reach a browser.
enum ClientSecretAccess {
    static let defaultSessionExpiry = 900

    /// Checks the client secret a browser gave against the payment it names.
    static func check(_ given: String?, payment: JSONValue, now: Date = Date()) throws {
        guard let given, !given.isEmpty else {
            throw APIError.invalid("client_secret", "is required with a publishable key", code: "IR_05")
        }
        guard let stored = payment["client_secret"]?.stringValue,
              SHA256.hash(data: Data(given.utf8)) == SHA256.hash(data: Data(stored.utf8)) else {
            // The same answer for another payment's secret and for a made-up one.
            throw APIError(status: .badRequest, type: "invalid_request", code: "IR_09", message: "The client_secret does not match this payment", field: "client_secret")
        }
        if now > expiry(of: payment) {
            throw APIError(status: .badRequest, type: "invalid_request", code: "IR_42", message: "The client_secret has expired (session_expiry); create a new payment", field: "client_secret")
        }
    }

    static func expiry(of payment: JSONValue) -> Date {
        if let text = payment["expires_on"]?.stringValue, let date = PaywireJSON.parse(text) { return date }
        let created = payment["created"]?.stringValue.flatMap(PaywireJSON.parse) ?? .distantPast
        return created.addingTimeInterval(Double(defaultSessionExpiry))
    }

    /// Fields a browser is not shown (null in its answers): the merchant's own notes, the
    /// processor's references and raw codes, the customer's device data. What a checkout page
    /// needs — status, amount, currency, the card's last four digits, error and unified messages,
    /// next action — stays.
    static let hiddenFromBrowsers = [
        "metadata", "connector_metadata", "feature_metadata", "merchant_connector_id", "connector_transaction_id", "reference_id",
        "issuer_error_code", "issuer_error_message", "network_decline_code", "network_advice_code", "browser_info",
        "merchant_order_reference_id", "statement_descriptor_name", "statement_descriptor_suffix", "frm_metadata",
    ]

    static func browserView(_ payment: JSONValue) -> JSONValue {
        guard case .object(var fields) = payment else { return payment }
        for key in hiddenFromBrowsers where fields[key] != nil { fields[key] = .null }
        return .object(fields)
    }

    /// What a browser may not decide when it confirms: how and where the merchant is paid, and
    /// any stored credential (charging a saved token or mandate is the merchant's server's call;
    /// a browser holding only the publishable key must bring the card itself).
    static let merchantOnlyConfirmFields = ["routing", "capture_method", "recurring_details", "mandate_id", "payment_token", "off_session"]
}
