/// What a connector supports, declared once for every service: the gateway refuses what a
/// connector cannot do before anything is sent and serves the table at `GET /feature_matrix`
/// (Hyperswitch's shape); payment-core's connectors are held to it by a test.
public struct ConnectorFeatures: Sendable, Equatable {
    public enum Category: String, Sendable { case paymentProcessor = "payment_processor", billingProcessor = "billing_processor" }

    public var name: String
    public var displayName: String
    public var description: String
    public var category: Category
    /// The `connector_account_details.auth_type` values the connector can use.
    public var authTypes: [String]
    /// Payment methods (`card`) and their types (`credit`, `debit`).
    public var paymentMethods: [String: [String]]
    public var captureMethods: [String]
    /// Whether a capture may take less than the authorized amount.
    public var partialCapture = true
    /// authorize, capture, void, refund, sync, dispute_accept, dispute_defend.
    public var flows: [String]
    /// What its incoming webhooks report: payments, refunds, disputes.
    public var webhookFlows: [String]

    public func supports(flow: String) -> Bool { flows.contains(flow) }

    public static let sandbox = ConnectorFeatures(
        name: "sandbox", displayName: "Paywire sandbox", description: "Paywire's in-process test processor: outcomes follow Stripe's test cards",
        category: .paymentProcessor, authTypes: ["NoKey"], paymentMethods: ["card": ["credit", "debit"]], captureMethods: ["automatic", "manual"],
        flows: ["authorize", "capture", "void", "refund", "sync"], webhookFlows: []
    )

    public static let stripe = ConnectorFeatures(
        name: "stripe", displayName: "Stripe", description: "Stripe's PaymentIntents API",
        category: .paymentProcessor, authTypes: ["HeaderKey"], paymentMethods: ["card": ["credit", "debit"]], captureMethods: ["automatic", "manual"],
        flows: ["authorize", "capture", "void", "refund", "sync", "dispute_accept", "dispute_defend"], webhookFlows: ["payments", "refunds", "disputes"]
    )

    public static let adyen = ConnectorFeatures(
        name: "adyen", displayName: "Adyen", description: "Adyen's Checkout API v68; captures, cancels and refunds are settled by its HMAC-signed notifications",
        category: .paymentProcessor, authTypes: ["BodyKey"], paymentMethods: ["card": ["credit", "debit"]], captureMethods: ["automatic", "manual"],
        flows: ["authorize", "capture", "void", "refund", "dispute_accept", "dispute_defend"], webhookFlows: ["payments", "refunds", "disputes"]
    )

    public static let customBilling = ConnectorFeatures(
        name: "custombilling", displayName: "Custom billing", description: "A billing platform that reports failed subscription charges (revenue recovery)",
        category: .billingProcessor, authTypes: ["NoKey", "HeaderKey", "BodyKey", "SignatureKey"], paymentMethods: [:], captureMethods: [],
        flows: [], webhookFlows: []
    )

    public static let all: [String: ConnectorFeatures] = Dictionary(uniqueKeysWithValues: [sandbox, stripe, adyen, customBilling].map { ($0.name, $0) })

    /// Hyperswitch's feature matrix entry.
    public var matrixEntry: JSONValue {
        let methods: [JSONValue] = paymentMethods.keys.sorted().flatMap { method in
            (paymentMethods[method] ?? []).map { type in
                JSONValue.object([
                    "payment_method": .string(method), "payment_method_type": .string(type),
                    "mandates": .string("not_supported"),
                    "refunds": .string(supports(flow: "refund") ? "supported" : "not_supported"),
                    "supported_capture_methods": .array(captureMethods.map(JSONValue.string)),
                    "partial_capture": .string(partialCapture && captureMethods.contains("manual") ? "supported" : "not_supported"),
                ])
            }
        }
        return .object([
            "name": .string(name), "display_name": .string(displayName), "description": .string(description), "category": .string(category.rawValue),
            "auth_types": .array(authTypes.map(JSONValue.string)), "supported_flows": .array(flows.map(JSONValue.string)),
            "supported_payment_methods": .array(methods), "supported_webhook_flows": .array(webhookFlows.map(JSONValue.string)),
        ])
    }
}
