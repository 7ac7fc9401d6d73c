import PaywireModels
import PaywireRuntime

/// The gateway's OpenAPI 3.1 document, served at `GET /openapi.json`. It is written out here rather
/// than derived from the router, so the test that compares the two can catch a route added to one
/// and not the other; schemathesis checks in `./scripts/test` that the code does exactly what it
/// says (nullable fields, required headers, patterns, enums, statuses).
enum PaymentStatusNames {
    static let all = ["requires_payment_method", "requires_confirmation", "processing", "requires_merchant_action", "requires_capture", "succeeded", "partially_captured", "failed", "cancelled"]
}

enum GatewayOpenAPI {
    struct Operation {
        var method: String
        var path: String
        var summary: String
        var tag: String
        var auth: Auth
        var request: String?
        var response: String
        var status: String = "200"
        var headers: [Header] = []
        var query: [Header] = []
        /// Further documented answers besides the success and the `default` error.
        var also: [String: String] = [:]
    }

    struct Header {
        var name: String
        var required: Bool
        var schema: JSONValue
    }

    /// `client`: also the merchant's publishable key, with the payment's client_secret.
    enum Auth { case none, admin, merchant, client }

    static let xMerchantId = Header(name: "x-merchant-id", required: true, schema: identifierText)
    static let xProfileId = Header(name: "x-profile-id", required: false, schema: identifierText)
    static let idempotencyKey = Header(name: "Idempotency-Key", required: false, schema: .object([
        "type": .string("string"), "minLength": .number(1), "maxLength": .number(255),
        "description": .string("Same key and body: the first final answer again; another body: 409; a request still running: 409, retry later"),
    ]))
    static let dateTime: JSONValue = .object(["type": .string("string"), "format": .string("date-time")])
    static let disputeListQuery: [Header] = [
        Header(name: "merchant_id", required: false, schema: identifierText),
        Header(name: "dispute_status", required: false, schema: array(string(enum: DisputesAPI.statuses), maxItems: 50)),
        Header(name: "dispute_stage", required: false, schema: array(string(enum: DisputesAPI.stages), maxItems: 50)),
        Header(name: "connector", required: false, schema: array(identifierText, maxItems: 50)),
        Header(name: "received_time", required: false, schema: dateTime),
        Header(name: "received_time.gte", required: false, schema: dateTime),
        Header(name: "received_time.lte", required: false, schema: dateTime),
        Header(name: "limit", required: false, schema: integer(1...100)),
        Header(name: "offset", required: false, schema: integer(0...1_000_000)),
    ]

    static let paymentListQuery: [Header] = [
        Header(name: "merchant_id", required: false, schema: identifierText),
        Header(name: "customer_id", required: false, schema: identifierText),
        Header(name: "created", required: false, schema: dateTime),
        Header(name: "created.lt", required: false, schema: dateTime),
        Header(name: "created.gt", required: false, schema: dateTime),
        Header(name: "created.lte", required: false, schema: dateTime),
        Header(name: "created.gte", required: false, schema: dateTime),
        Header(name: "starting_after", required: false, schema: identifierText),
        Header(name: "ending_before", required: false, schema: identifierText),
        Header(name: "limit", required: false, schema: integer(1...100)),
    ]

    static let eventListQuery: [Header] = [
        Header(name: "created_after", required: false, schema: dateTime),
        Header(name: "created_before", required: false, schema: dateTime),
        Header(name: "object_id", required: false, schema: identifierText),
        Header(name: "profile_id", required: false, schema: identifierText),
        Header(name: "webhook_endpoint_id", required: false, schema: identifierText),
        Header(name: "event_types", required: false, schema: array(string(enum: WebhookEventType.known.sorted(), pattern: nil))),
        Header(name: "event_classes", required: false, schema: array(string(enum: ["disputes", "mandates", "payments", "payouts", "refunds"], pattern: nil))),
        Header(name: "is_delivered", required: false, schema: boolean),
        Header(name: "limit", required: false, schema: integer(1...100)),
        Header(name: "offset", required: false, schema: integer(0...1_000_000)),
    ]
    static let stripeSignature = Header(name: "Stripe-Signature", required: false, schema: .object(["type": .string("string")]))

    static let operations: [Operation] = [
        .init(method: "get", path: "/health", summary: "The process answers", tag: "Operations", auth: .none, response: "Status"),
        .init(method: "get", path: "/ready", summary: "Start-up done; PostgreSQL and Kafka reachable (503 otherwise)", tag: "Operations", auth: .none, response: "Status", also: ["503": "Status"]),
        .init(method: "get", path: "/metrics", summary: "Prometheus metrics (text)", tag: "Operations", auth: .none, response: "Text"),
        .init(method: "get", path: "/openapi.json", summary: "This document", tag: "Operations", auth: .none, response: "Document"),

        .init(method: "post", path: "/accounts", summary: "Create a merchant account and its default business profile. A merchant_id in use, or once used by a deleted account, answers 409", tag: "Merchant accounts", auth: .admin, request: "MerchantCreate", response: "Merchant"),
        .init(method: "get", path: "/accounts/{merchant_id}", summary: "Retrieve a merchant account", tag: "Merchant accounts", auth: .merchant, response: "Merchant"),
        .init(method: "post", path: "/accounts/{merchant_id}", summary: "Update a merchant account", tag: "Merchant accounts", auth: .merchant, request: "MerchantUpdate", response: "Merchant"),
        .init(method: "delete", path: "/accounts/{merchant_id}", summary: "Delete a merchant account and everything under it; its id stays reserved", tag: "Merchant accounts", auth: .admin, response: "MerchantDeleted"),

        .init(method: "post", path: "/api_keys/{merchant_id}", summary: "Create an API key; the key is in this answer only", tag: "API keys", auth: .merchant, request: "APIKeyCreate", response: "APIKeyCreated"),
        .init(method: "get", path: "/api_keys/{merchant_id}/list", summary: "List active API keys", tag: "API keys", auth: .merchant, response: "APIKeyList"),
        .init(method: "get", path: "/api_keys/{merchant_id}/{key_id}", summary: "Retrieve an API key (never the key itself)", tag: "API keys", auth: .merchant, response: "APIKey"),
        .init(method: "post", path: "/api_keys/{merchant_id}/{key_id}", summary: "Update an API key's name, description or expiration (the key itself never changes)", tag: "API keys", auth: .merchant, request: "APIKeyUpdate", response: "APIKey"),
        .init(method: "delete", path: "/api_keys/{merchant_id}/{key_id}", summary: "Revoke an API key", tag: "API keys", auth: .merchant, response: "Revoked"),

        .init(method: "post", path: "/account/{merchant_id}/business_profile", summary: "Create a business profile (a name in use answers 409)", tag: "Business profiles", auth: .merchant, request: "ProfileUpdate", response: "Profile"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile", summary: "List business profiles", tag: "Business profiles", auth: .merchant, response: "ProfileList"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}", summary: "Retrieve a business profile", tag: "Business profiles", auth: .merchant, response: "Profile"),
        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}", summary: "Update a business profile", tag: "Business profiles", auth: .merchant, request: "ProfileUpdate", response: "Profile"),
        .init(method: "put", path: "/v2/profiles/{profile_id}", summary: "Update a business profile (v2)", tag: "Business profiles", auth: .merchant, request: "ProfileUpdate", response: "Profile", headers: [xMerchantId]),

        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", summary: "Add a webhook endpoint (at most 20 a profile); its signing secret is in this answer only", tag: "Webhook endpoints", auth: .merchant, request: "WebhookEndpointCreate", response: "WebhookEndpoint"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", summary: "List webhook endpoints", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpointList"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}", summary: "Retrieve a webhook endpoint", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpoint"),
        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}", summary: "Update a webhook endpoint (a deprecated one never changes again: 400)", tag: "Webhook endpoints", auth: .merchant, request: "WebhookEndpointUpdate", response: "WebhookEndpoint"),
        .init(method: "delete", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}", summary: "Deprecate a webhook endpoint for good (it stays listed with status deprecated, for its delivery history)", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpoint"),
        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}/rotate_secret", summary: "Rotate the signing secret; the old one stays valid for 24 hours", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpoint"),

        .init(method: "post", path: "/account/{merchant_id}/connectors", summary: "Create a connector account", tag: "Connector accounts", auth: .merchant, request: "ConnectorAccountCreate", response: "ConnectorAccount"),
        .init(method: "get", path: "/account/{merchant_id}/connectors", summary: "List connector accounts", tag: "Connector accounts", auth: .merchant, response: "ConnectorAccountList"),
        .init(method: "get", path: "/account/{merchant_id}/connectors/{merchant_connector_id}", summary: "Retrieve a connector account (credentials masked)", tag: "Connector accounts", auth: .merchant, response: "ConnectorAccount"),
        .init(method: "post", path: "/account/{merchant_id}/connectors/{merchant_connector_id}", summary: "Update a connector account (its connector and type never change)", tag: "Connector accounts", auth: .merchant, request: "ConnectorAccountUpdate", response: "ConnectorAccount"),
        .init(method: "delete", path: "/account/{merchant_id}/connectors/{merchant_connector_id}", summary: "Delete a connector account", tag: "Connector accounts", auth: .merchant, response: "ConnectorDeleted"),
        .init(method: "post", path: "/v2/connector-accounts", summary: "Create a connector account (v2); x-profile-id and a body profile_id must agree", tag: "Connector accounts", auth: .merchant, request: "ConnectorAccountCreate", response: "ConnectorAccount", headers: [xMerchantId, xProfileId]),
        .init(method: "get", path: "/v2/connector-accounts/{merchant_connector_id}", summary: "Retrieve a connector account (v2)", tag: "Connector accounts", auth: .merchant, response: "ConnectorAccount", headers: [xMerchantId]),

        .init(method: "post", path: "/v2/payments/recovery", summary: "Report a billing platform's failed (or settled) subscription charge. schedule_failed_payment starts or updates the invoice's recovery job (every report about one merchant_reference_id reaches one job, whose id is answered); success_payment_external and cancel_invoice end it; no_action records only. Refused with 400 or 404 beyond this schema: a billing_merchant_connector_id that is not this merchant's billing_processor account, or (schedule_failed_payment, no_action) a missing amount_details, primary_processor_payment_method_token or payment_merchant_connector_id, or a payment account that is not a payment_processor in the billing account's billing_account_reference; a currency ISO 4217 does not list", tag: "Revenue recovery", auth: .merchant, request: "RecoveryReport", response: "RecoveryAccepted", status: "202", headers: [xMerchantId, xProfileId]),
        .init(method: "get", path: "/v2/payments/{payment_id}/recovery", summary: "A recovery job: its status, every attempt with its raw decline and advice codes, and the next run", tag: "Revenue recovery", auth: .merchant, response: "RecoveryJob", headers: [xMerchantId]),
        .init(method: "post", path: "/v2/payments/{payment_id}/recovery/cancel", summary: "Cancel a recovery job (the merchant gets its one final payment_failed with reason cancelled); a job that has ended: 409", tag: "Revenue recovery", auth: .merchant, response: "RecoveryAccepted", status: "202", headers: [xMerchantId]),

        .init(method: "post", path: "/payments", summary: "Create (and with confirm: true, confirm) a payment. With the admin key, merchant_id is required. Refused with 400 beyond what this schema says: a card number failing the Luhn check or an expired card, amount_to_capture above amount, confirm without a payment method, both payment_method_data and recurring_details, routing to a connector the profile lacks or a profile with no (or several) processors. 202 with the stored state when payment-core's answer takes longer than the reply timeout; poll GET", tag: "Payments", auth: .merchant, request: "PaymentCreate", response: "Payment", headers: [idempotencyKey], also: ["202": "PaymentAccepted"]),
        .init(method: "get", path: "/payments/list", summary: "A merchant's payments, newest first (with the admin key, merchant_id is required); page with starting_after or ending_before (a payment id of the list)", tag: "Payments", auth: .merchant, response: "PaymentList", query: paymentListQuery),
        .init(method: "post", path: "/payments/{payment_id}", summary: "Update a payment before it is confirmed: amount, currency, capture method, customer, billing, metadata … (a confirmed payment: 400; a card is given with confirm: 400)", tag: "Payments", auth: .merchant, request: "PaymentUpdate", response: "Payment", headers: [idempotencyKey], also: ["202": "PaymentAccepted"]),
        .init(method: "post", path: "/payments/{payment_id}/confirm", summary: "Confirm a payment with a card or a processor token (the card rules of POST /payments apply; a payment not awaiting confirmation: 400). With the publishable key: client_secret is required (wrong or another payment's: 400 IR_09; expired: 400 IR_42), routing and capture_method are refused", tag: "Payments", auth: .client, request: "PaymentConfirm", response: "Payment", headers: [idempotencyKey], also: ["202": "PaymentAccepted"]),
        .init(method: "post", path: "/payments/{payment_id}/capture", summary: "Capture an authorized payment, fully or partly (more than capturable, or a payment not awaiting capture: 400)", tag: "Payments", auth: .merchant, request: "PaymentCapture", response: "Payment", headers: [idempotencyKey], also: ["202": "PaymentAccepted"]),
        .init(method: "post", path: "/payments/{payment_id}/cancel", summary: "Cancel a payment that is not yet charged (otherwise 400)", tag: "Payments", auth: .merchant, request: "PaymentCancel", response: "Payment", headers: [idempotencyKey], also: ["202": "PaymentAccepted"]),
        .init(method: "get", path: "/payments/{payment_id}", summary: "Retrieve a payment. With the publishable key, ?client_secret= is required (wrong: 400 IR_09; expired: 400 IR_42)", tag: "Payments", auth: .client, response: "Payment",
              query: [Header(name: "client_secret", required: false, schema: identifierText)]),
        .init(method: "post", path: "/refunds", summary: "Refund a succeeded payment, fully or partly (never more than was received, nor a payment that received nothing: 400)", tag: "Refunds", auth: .merchant, request: "RefundCreate", response: "Refund", headers: [idempotencyKey], also: ["202": "RefundAccepted"]),
        .init(method: "get", path: "/refunds/{refund_id}", summary: "Retrieve a refund", tag: "Refunds", auth: .merchant, response: "Refund"),
        .init(method: "post", path: "/refunds/{refund_id}", summary: "Update a refund's reason or metadata (what is left out stays)", tag: "Refunds", auth: .merchant, request: "RefundUpdate", response: "Refund", headers: [idempotencyKey], also: ["202": "RefundAccepted"]),
        .init(method: "post", path: "/refunds/list", summary: "A merchant's refunds, newest first, with filters (with the admin key, merchant_id is required); end_time before start_time: 400", tag: "Refunds", auth: .merchant, request: "RefundListRequest", response: "RefundList"),
        .init(method: "get", path: "/feature_matrix", summary: "What each connector supports: auth types, payment methods and capture methods, flows and webhook flows (Hyperswitch's feature matrix)", tag: "Connector accounts", auth: .none, response: "FeatureMatrix"),
        .init(method: "get", path: "/disputes/list", summary: "A merchant's disputes, newest first, with filters (with the admin key, merchant_id is required); received_time.lte before received_time.gte: 400", tag: "Disputes", auth: .merchant, response: "DisputeList", query: disputeListQuery),
        .init(method: "get", path: "/disputes/{dispute_id}", summary: "Retrieve a dispute (another merchant's: 404)", tag: "Disputes", auth: .merchant, response: "Dispute"),
        .init(method: "post", path: "/disputes/accept/{dispute_id}", summary: "Accept a dispute: the processor is told (it is then lost) and dispute_accepted is sent; only an opened dispute (otherwise 400)", tag: "Disputes", auth: .merchant, response: "Dispute"),
        .init(method: "post", path: "/disputes/evidence", summary: "Send text evidence for an opened dispute to the processor (kept with the dispute); it is dispute_challenged once the processor reviews it. A dispute that is not opened, or no evidence field: 400", tag: "Disputes", auth: .merchant, request: "DisputeEvidence", response: "Dispute"),
        .init(method: "get", path: "/events/{merchant_id}", summary: "The events log: one entry per (event, endpoint) delivery, newest first, with filters; served by the webhook dispatcher", tag: "Events", auth: .merchant, response: "EventList", query: eventListQuery),
        .init(method: "get", path: "/events/{merchant_id}/{event_id}", summary: "One delivery (by its id or any of its attempts' ids), with the request it sends", tag: "Events", auth: .merchant, response: "Event"),
        .init(method: "get", path: "/events/{merchant_id}/{event_id}/attempts", summary: "Every attempt of a delivery, newest first: request and response (status, headers, body up to 4 KiB, latency)", tag: "Events", auth: .merchant, response: "EventAttemptList"),
        .init(method: "post", path: "/events/{merchant_id}/{event_id}/retry", summary: "Send a delivery again now, whatever its state, and answer with the new attempt (409 while another attempt of it is in flight, or when its endpoint takes no deliveries). An endpoint that has not answered within PAYWIRE_WEBHOOK_RETRY_ANSWER_MS (default 5 s): 202, the attempt goes on and appears in GET …/attempts", tag: "Events", auth: .merchant, response: "EventAttempt", also: ["202": "EventRetryAccepted"]),
        .init(method: "post", path: "/events/{merchant_id}/recover", summary: "Schedule one more attempt for every failed delivery of an endpoint or a profile created since a time at most 14 days ago", tag: "Events", auth: .merchant, request: "EventRecover", response: "EventRecovered"),
        .init(method: "post", path: "/webhooks/{merchant_id}/{connector}", summary: "Incoming connector webhook, passed unchanged to payment-core, which verifies and applies it: Stripe's (Stripe-Signature header; answered with JSON) and Adyen's (every notificationItems entry's additionalData.hmacSignature; answered [accepted] as text/plain). 401 alike for a bad signature, an unknown merchant or account, and a connector that sends no webhooks", tag: "Incoming webhooks", auth: .none, request: "Document", response: "IncomingWebhookResult", headers: [stripeSignature]),
    ]

    // MARK: Links

    /// Where an answer's ids lead: OpenAPI links from an operation's success to the operations that
    /// take those ids, so a client (and schemathesis' stateful phase) can follow a created payment
    /// to its retrieve, update, confirm, capture, cancel and refund, a merchant to everything under
    /// it, and so on, instead of guessing ids.
    struct Link {
        var name: String
        var method: String
        var path: String
        /// Target parameter (`path.x`, `header.x`, or a bare name) → runtime expression.
        var parameters: [String: String]
        var requestBody: JSONValue? = nil
    }

    static func operationId(method: String, path: String) -> String {
        method + path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "").replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")
    }

    static let links: [String: [Link]] = {
        let created = "$response.body#/"
        let merchantFromBody = ["merchant_id": created + "merchant_id"]
        let merchantFromPath = ["merchant_id": "$request.path.merchant_id"]
        let profileFromPath = ["merchant_id": "$request.path.merchant_id", "profile_id": "$request.path.profile_id"]
        let payment = ["payment_id": created + "payment_id"]
        let paymentLinks = [
            Link(name: "RetrievePayment", method: "get", path: "/payments/{payment_id}", parameters: payment),
            Link(name: "UpdatePayment", method: "post", path: "/payments/{payment_id}", parameters: payment),
            Link(name: "ConfirmPayment", method: "post", path: "/payments/{payment_id}/confirm", parameters: payment),
            Link(name: "CapturePayment", method: "post", path: "/payments/{payment_id}/capture", parameters: payment),
            Link(name: "CancelPayment", method: "post", path: "/payments/{payment_id}/cancel", parameters: payment),
            Link(name: "RefundPayment", method: "post", path: "/refunds", parameters: [:], requestBody: .object(["payment_id": .string(created + "payment_id")])),
        ]
        let refund = ["refund_id": created + "refund_id"]
        let refundLinks = [
            Link(name: "RetrieveRefund", method: "get", path: "/refunds/{refund_id}", parameters: refund),
            Link(name: "UpdateRefund", method: "post", path: "/refunds/{refund_id}", parameters: refund),
        ]
        let key = merchantFromPath.merging(["key_id": created + "key_id"]) { $1 }
        let profile = merchantFromPath.merging(["profile_id": created + "profile_id"]) { $1 }
        let endpoint = profileFromPath.merging(["webhook_endpoint_id": created + "webhook_endpoint_id"]) { $1 }
        let endpointPath = "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}"
        let connector = merchantFromPath.merging(["merchant_connector_id": created + "merchant_connector_id"]) { $1 }
        let connectorPath = "/account/{merchant_id}/connectors/{merchant_connector_id}"
        let v2Connector = ["merchant_connector_id": created + "merchant_connector_id", "header.x-merchant-id": "$request.header.x-merchant-id"]
        let job = ["payment_id": created + "id", "header.x-merchant-id": "$request.header.x-merchant-id"]
        let defaultProfile = merchantFromBody.merging(["profile_id": created + "default_profile"]) { $1 }
        let firstEvent = merchantFromPath.merging(["event_id": created + "events/0/event_id"]) { $1 }
        return [
            "post /accounts": [
                Link(name: "RetrieveMerchant", method: "get", path: "/accounts/{merchant_id}", parameters: merchantFromBody),
                Link(name: "UpdateMerchant", method: "post", path: "/accounts/{merchant_id}", parameters: merchantFromBody),
                Link(name: "CreateAPIKey", method: "post", path: "/api_keys/{merchant_id}", parameters: merchantFromBody),
                Link(name: "ListAPIKeys", method: "get", path: "/api_keys/{merchant_id}/list", parameters: merchantFromBody),
                Link(name: "CreateProfile", method: "post", path: "/account/{merchant_id}/business_profile", parameters: merchantFromBody),
                Link(name: "ListProfiles", method: "get", path: "/account/{merchant_id}/business_profile", parameters: merchantFromBody),
                Link(name: "RetrieveDefaultProfile", method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}", parameters: defaultProfile),
                Link(name: "CreateEndpoint", method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", parameters: defaultProfile),
                Link(name: "ListEndpoints", method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", parameters: defaultProfile),
                Link(name: "CreateConnectorAccount", method: "post", path: "/account/{merchant_id}/connectors", parameters: merchantFromBody),
                Link(name: "ListConnectorAccounts", method: "get", path: "/account/{merchant_id}/connectors", parameters: merchantFromBody),
                Link(name: "ListEvents", method: "get", path: "/events/{merchant_id}", parameters: merchantFromBody),
                Link(name: "RecoverEvents", method: "post", path: "/events/{merchant_id}/recover", parameters: merchantFromBody),
            ],
            "post /api_keys/{merchant_id}": [
                Link(name: "RetrieveAPIKey", method: "get", path: "/api_keys/{merchant_id}/{key_id}", parameters: key),
                Link(name: "UpdateAPIKey", method: "post", path: "/api_keys/{merchant_id}/{key_id}", parameters: key),
                Link(name: "RevokeAPIKey", method: "delete", path: "/api_keys/{merchant_id}/{key_id}", parameters: key),
            ],
            "post /account/{merchant_id}/business_profile": [
                Link(name: "RetrieveProfile", method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}", parameters: profile),
                Link(name: "UpdateProfile", method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}", parameters: profile),
                Link(name: "CreateEndpoint", method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", parameters: profile),
                Link(name: "ListEndpoints", method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", parameters: profile),
            ],
            "post /account/{merchant_id}/business_profile/{profile_id}/webhooks": [
                Link(name: "RetrieveEndpoint", method: "get", path: endpointPath, parameters: endpoint),
                Link(name: "UpdateEndpoint", method: "post", path: endpointPath, parameters: endpoint),
                Link(name: "DeprecateEndpoint", method: "delete", path: endpointPath, parameters: endpoint),
                Link(name: "RotateEndpointSecret", method: "post", path: endpointPath + "/rotate_secret", parameters: endpoint),
                Link(name: "RecoverEndpointEvents", method: "post", path: "/events/{merchant_id}/recover", parameters: merchantFromPath,
                     requestBody: .object(["webhook_endpoint_id": .string(created + "webhook_endpoint_id")])),
            ],
            "post /account/{merchant_id}/connectors": [
                Link(name: "RetrieveConnectorAccount", method: "get", path: connectorPath, parameters: connector),
                Link(name: "UpdateConnectorAccount", method: "post", path: connectorPath, parameters: connector),
                Link(name: "DeleteConnectorAccount", method: "delete", path: connectorPath, parameters: connector),
                // A payment on the account's profile, routed through it: what makes a payment id
                // for the payment links below.
                Link(name: "CreatePayment", method: "post", path: "/payments", parameters: [:],
                     requestBody: .object([
                        "merchant_id": .string(created + "merchant_id"), "profile_id": .string(created + "profile_id"),
                        "routing": .object(["type": .string("single"), "data": .object(["merchant_connector_id": .string(created + "merchant_connector_id")])]),
                     ])),
            ],
            "post /v2/connector-accounts": [
                Link(name: "RetrieveConnectorAccount", method: "get", path: "/v2/connector-accounts/{merchant_connector_id}", parameters: v2Connector),
            ],
            "post /payments": paymentLinks,
            "post /payments/{payment_id}": paymentLinks,
            "post /payments/{payment_id}/confirm": paymentLinks,
            "post /refunds": refundLinks,
            "post /v2/payments/recovery": [
                Link(name: "RetrieveRecoveryJob", method: "get", path: "/v2/payments/{payment_id}/recovery", parameters: job),
                Link(name: "CancelRecoveryJob", method: "post", path: "/v2/payments/{payment_id}/recovery/cancel", parameters: job),
            ],
            "get /disputes/list": [
                Link(name: "RetrieveDispute", method: "get", path: "/disputes/{dispute_id}", parameters: ["dispute_id": created + "0/dispute_id"]),
                Link(name: "AcceptDispute", method: "post", path: "/disputes/accept/{dispute_id}", parameters: ["dispute_id": created + "0/dispute_id"]),
            ],
            "get /disputes/{dispute_id}": [
                Link(name: "AcceptDispute", method: "post", path: "/disputes/accept/{dispute_id}", parameters: ["dispute_id": created + "dispute_id"]),
                Link(name: "SubmitDisputeEvidence", method: "post", path: "/disputes/evidence", parameters: [:],
                     requestBody: .object(["dispute_id": .string(created + "dispute_id")])),
            ],
            "get /events/{merchant_id}": [
                Link(name: "RetrieveEvent", method: "get", path: "/events/{merchant_id}/{event_id}", parameters: firstEvent),
                Link(name: "ListEventAttempts", method: "get", path: "/events/{merchant_id}/{event_id}/attempts", parameters: firstEvent),
                Link(name: "RetryEvent", method: "post", path: "/events/{merchant_id}/{event_id}/retry", parameters: firstEvent),
            ],
        ]
    }()

    /// An operation's links as OpenAPI writes them (under its success response).
    static func linkObjects(for operation: Operation) -> JSONValue? {
        guard let links = links["\(operation.method) \(operation.path)"], !links.isEmpty else { return nil }
        var objects: [String: JSONValue] = [:]
        for link in links {
            var object: [String: JSONValue] = [
                "operationId": .string(operationId(method: link.method, path: link.path)),
                "parameters": .object(link.parameters.mapValues(JSONValue.string)),
            ]
            if let body = link.requestBody { object["requestBody"] = body }
            objects[link.name] = .object(object)
        }
        return .object(objects)
    }

    // MARK: Schema building blocks

    /// Text PostgreSQL can store: anything but NUL.
    static let noNUL = "^[^\\u0000]*$"
    /// Ids in paths and headers: printable, no control characters.
    static let printable = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"

    static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/\(name)")]) }

    static func string(_ description: String? = nil, enum values: [String]? = nil, format: String? = nil, maxLength: Int? = nil, minLength: Int? = nil, pattern: String? = noNUL) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("string")]
        if let description { schema["description"] = .string(description) }
        if let values { schema["enum"] = .array(values.map(JSONValue.string)) } else if let pattern { schema["pattern"] = .string(pattern) }
        if let format { schema["format"] = .string(format) }
        if let maxLength { schema["maxLength"] = .number(Double(maxLength)) }
        if let minLength { schema["minLength"] = .number(Double(minLength)) }
        return .object(schema)
    }

    static let identifierText = string(maxLength: 64, minLength: 1, pattern: printable)
    static let boolean: JSONValue = .object(["type": .string("boolean")])
    static let anything: JSONValue = .object([:])

    static func integer(_ range: ClosedRange<Int>? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("integer")]
        if let range {
            schema["minimum"] = .number(Double(range.lowerBound))
            schema["maximum"] = .number(Double(range.upperBound))
        }
        return .object(schema)
    }

    static let amount = integer(1...InputLimits.maxAmount)
    static let count = integer(0...Int(Int32.max))

    /// A webhook or return URL: absolute http(s), a host, no credentials.
    static let url = string("An absolute http or https URL. The host is a DNS name (labels of 1–63 characters, 253 in all), an IPv4 address as four decimal numbers (0177.0.0.1, 2130706433, 0x7f.0.0.1 and 127.1 are refused, naming the address they spell) or a bracketed IPv6 address; the port is 1–65535. A webhook target must not be a loopback, private, link-local or otherwise non-public address", format: "uri", maxLength: 2048, pattern: Validation.urlPattern)

    /// The same schema, or null (JSON Schema 2020-12 style, as OpenAPI 3.1 takes it).
    static func nullable(_ schema: JSONValue) -> JSONValue {
        guard case .object(var fields) = schema, fields["type"] != .string("null") else { return schema }
        if case .array(let types)? = fields["type"], types.contains(.string("null")) { return schema }
        if fields["$ref"] != nil || fields["anyOf"] != nil || fields["oneOf"] != nil || fields["allOf"] != nil {
            return .object(["anyOf": .array([schema, .object(["type": .string("null")])])])
        }
        if case .string(let type)? = fields["type"] { fields["type"] = .array([.string(type), .string("null")]) }
        if case .array(var values)? = fields["enum"] {
            values.append(.null)
            fields["enum"] = .array(values)
        }
        return .object(fields)
    }

    /// A request body: unknown fields are kept (merchants move over with Hyperswitch payloads)
    /// as free-form values; every optional field may be null, which means "not given".
    static func request(_ properties: [String: JSONValue], required: [String] = [], extra: [String: JSONValue] = [:]) -> JSONValue {
        var props: [String: JSONValue] = [:]
        for (name, schema) in properties { props[name] = required.contains(name) ? schema : nullable(schema) }
        var schema: [String: JSONValue] = [
            "type": .string("object"), "properties": .object(props),
            "propertyNames": .object(["pattern": .string(noNUL)]),
            "additionalProperties": ref("FreeValue"),
        ]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        for (key, value) in extra { schema[key] = value }
        return .object(schema)
    }

    /// A response object: every listed field is always present; `nullable` ones may be null.
    static func response(_ properties: [String: JSONValue], nullable nullableFields: Set<String> = [], open: Bool = true) -> JSONValue {
        var props: [String: JSONValue] = [:]
        for (name, schema) in properties { props[name] = nullableFields.contains(name) ? nullable(schema) : schema }
        let required = properties.keys.filter { !nullableFields.contains($0) }.sorted()
        var schema: [String: JSONValue] = ["type": .string("object"), "properties": .object(props), "additionalProperties": .bool(open)]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return .object(schema)
    }

    static func array(_ items: JSONValue, maxItems: Int? = nil, minItems: Int? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("array"), "items": items]
        if let maxItems { schema["maxItems"] = .number(Double(maxItems)) }
        if let minItems { schema["minItems"] = .number(Double(minItems)) }
        return .object(schema)
    }

    static func object(_ properties: [String: JSONValue], required: [String] = [], open: Bool = true) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("object"), "properties": .object(properties), "additionalProperties": .bool(open)]
        if open { schema["propertyNames"] = .object(["pattern": .string(noNUL)]) }
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return .object(schema)
    }

    /// `^(?:n|a|m|e)` spelled case-insensitively for ECMA regular expressions (which have no (?i)).
    static func caseless(_ words: [String]) -> String {
        words.map { word in
            word.map { character -> String in
                let lower = character.lowercased(), upper = character.uppercased()
                if lower == upper { return character == "-" ? "\\-" : String(character) }
                return "[\(upper)\(lower)]"
            }.joined()
        }.joined(separator: "|")
    }

    static var customHeaders: JSONValue {
        let reserved = caseless(CustomWebhookHeaders.reserved.sorted())
        let prefixes = caseless(["proxy-", "webhook-"])
        return .object([
            "type": .string("object"),
            "description": .string("Sent with every delivery of the profile. Names are HTTP tokens and may not be Paywire's own headers or the connection's (\(CustomWebhookHeaders.reserved.sorted().joined(separator: ", ")), proxy-*, webhook-*), in any case; values are visible text without CR, LF or NUL. At most \(CustomWebhookHeaders.maxCount)."),
            "maxProperties": .number(Double(CustomWebhookHeaders.maxCount)),
            "propertyNames": .object([
                "pattern": .string("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,\(CustomWebhookHeaders.maxNameLength)}$"),
                "not": .object(["pattern": .string("^(\(reserved))$|^(\(prefixes))")]),
            ]),
            "additionalProperties": string(maxLength: 256, pattern: "^([!-~\\u0080-\\uFFFF]([ -~\\u0080-\\uFFFF\\t]*[!-~\\u0080-\\uFFFF])?)?$"),
        ])
    }

    // MARK: Schemas

    static var schemas: [String: JSONValue] {
        let eventType = string("An outgoing event type", enum: WebhookEventType.known.sorted())
        let endpointStatus = string(enum: ["active", "inactive", "deprecated"])
        let free = ref("FreeObject")
        let endpointFields: [String: JSONValue] = [
            "webhook_url": url, "events": array(eventType, minItems: 1), "status": endpointStatus,
            "rate_limit": .object(["type": .string("integer"), "minimum": .number(1), "maximum": .number(10_000), "description": .string("Requests per second at most, per dispatcher replica; null: no limit")]),
            "ordering": string("per_object: one object's events reach this endpoint in the order they were published; a failing delivery holds back only later events of the same object (default none)", enum: ["none", "per_object"]),
        ]
        let eventClass = string(enum: ["disputes", "mandates", "payments", "payouts", "refunds"])
        let headerPairs = array(array(string(), maxItems: 2, minItems: 2))
        let eventRequest = response(["body": string("The exact bytes sent (and signed)"), "headers": headerPairs])
        let eventFields: [String: JSONValue] = [
            "event_id": string("evt_…; also the id of the delivery's first attempt"), "merchant_id": string(), "profile_id": string(),
            "webhook_endpoint_id": string("null for the legacy single webhook_url"), "object_id": string(), "event_type": eventType,
            "event_class": eventClass, "is_delivery_successful": boolean, "initial_attempt_id": string(), "created": dateTime,
            "delivery_status": string(enum: ["pending", "delivered", "retries_exceeded", "cancelled"]),
            "status_reason": string("Why a delivery ended without success or was queued again (endpoint_gone, endpoint_removed, endpoint_deprecated, endpoint_inactive, recover_requested, …)"),
            "attempt_count": count, "next_attempt_at": dateTime,
            "trace_id": string("The W3C trace id of the work that made the event (null when tracing was off): the payment's trace, which every attempt joins"),
        ]
        let eventNullable: Set<String> = ["profile_id", "webhook_endpoint_id", "status_reason", "next_attempt_at", "trace_id"]
        let recoveryAlgorithm = string(enum: ["monitoring", "cascading", "smart"])
        let authDetails: [(String, [String])] = [("HeaderKey", ["api_key"]), ("BodyKey", ["api_key", "key1"]), ("SignatureKey", ["api_key", "key1", "api_secret"]), ("NoKey", [])]
        let connectorAccountDetails: JSONValue = .object(["oneOf": .array(authDetails.map { type, keys in
            var properties: [String: JSONValue] = ["auth_type": string(enum: [type])]
            for key in keys { properties[key] = string(maxLength: 4096, minLength: 1) }
            return object(properties, required: ["auth_type"] + keys)
        })])
        let connectorCommon: [String: JSONValue] = [
            "connector_webhook_details": request(["merchant_secret": string(maxLength: 4096)]),
            "payment_methods_enabled": array(ref("FreeValue")), "metadata": free, "disabled": boolean,
            "profile_id": identifierText,
            "feature_metadata": request(["revenue_recovery": request([
                "max_retry_count": integer(0...1000),
                "billing_connector_retry_threshold": .object(["type": .string("integer"), "minimum": .number(0), "maximum": .number(1000), "description": .string("Must not exceed max_retry_count (400)")]),
                "billing_account_reference": free,
                "switch_payment_method_config": request(["retry_threshold": integer(0...1000), "time_threshold_after_creation": count]),
            ])]),
        ]
        var connectorCreate = connectorCommon
        connectorCreate["connector_account_details"] = connectorAccountDetails
        connectorCreate["connector_name"] = string(enum: ConnectorNames.all)
        connectorCreate["connector_type"] = string(enum: ["payment_processor", "billing_processor"])
        var connectorUpdate = connectorCommon
        connectorUpdate["connector_account_details"] = connectorAccountDetails
        connectorUpdate["connector_name"] = string("Never changes: the stored value is accepted (clients send the whole object back), another is refused (400)", enum: ConnectorNames.all)
        connectorUpdate["connector_type"] = string("Never changes: the stored value is accepted (Hyperswitch requires the field in updates), another is refused (400)", enum: ["payment_processor", "billing_processor"])
        // Which type each connector is: the pairs that may be created (another pair: 400).
        let connectorKinds = "connector_type must be the connector's own: " + ConnectorNames.byType.map { type, names in "\(names.joined(separator: ", ")) → \(type)" }.joined(separator: "; ")

        let webhookDetailsInput = request([
            "webhook_version": string(maxLength: 64), "webhook_username": string(maxLength: 255), "webhook_password": string(maxLength: 255),
            "webhook_url": url, "payment_created_enabled": boolean, "payment_succeeded_enabled": boolean, "payment_failed_enabled": boolean,
            "multiple_webhooks_list": array(ref("WebhookEndpointEntry"), maxItems: InputLimits.endpointsPerProfile),
        ])
        let profileInput = request([
            "profile_name": string(maxLength: 64), "return_url": url, "enable_payment_response_hash": boolean,
            "webhook_details": ref("WebhookDetailsInput"), "metadata": free,
            "session_expiry": integer(0...7_776_000), "intent_fulfillment_time": integer(0...7_776_000),
            "outgoing_webhook_custom_http_headers": customHeaders,
            "revenue_recovery_retry_algorithm_type": recoveryAlgorithm,
        ])
        let merchantFields: [String: JSONValue] = [
            "merchant_name": string(maxLength: 255), "return_url": url, "enable_payment_response_hash": boolean,
            "merchant_details": free, "metadata": free, "sub_merchants_enabled": boolean,
            "webhook_details": ref("WebhookDetailsInput"),
        ]
        var merchantCreate = merchantFields
        merchantCreate["merchant_id"] = string("Letters, digits, '_' and '-'", maxLength: 64, minLength: 1, pattern: "^[A-Za-z0-9_-]{1,64}$")

        let endpoint = response([
            "webhook_endpoint_id": string("whe_…, assigned"), "webhook_url": string(), "events": array(eventType), "status": endpointStatus,
            "signing_secret": string("whsec_…; only in the answer that created or rotated it"),
            "rate_limit": integer(1...10_000),
            "ordering": string(enum: ["none", "per_object"]),
            "health": ref("EndpointHealth"),
        ], nullable: ["signing_secret", "rate_limit", "health"])
        var endpointResponse = endpoint
        if case .object(var fields) = endpoint, case .array(let required)? = fields["required"] {
            fields["required"] = .array(required.filter { $0 != .string("signing_secret") })
            endpointResponse = .object(fields)
        }
        let webhookDetails = response([
            "webhook_version": string(), "webhook_username": string(), "webhook_password": string("*** when one is set; never the password"),
            "webhook_url": string("Legacy single endpoint, subscribed to every event type while no endpoint that is not deprecated exists"),
            "payment_created_enabled": boolean, "payment_succeeded_enabled": boolean, "payment_failed_enabled": boolean,
            "multiple_webhooks_list": array(ref("WebhookEndpoint")),
            "delivery_target": string("Which receives events now: the endpoints that are not deprecated, else the legacy webhook_url", enum: ["multiple_webhooks_list", "webhook_url", "none"]),
        ], nullable: ["webhook_version", "webhook_username", "webhook_password", "webhook_url", "payment_created_enabled", "payment_succeeded_enabled", "payment_failed_enabled", "multiple_webhooks_list"])
        let card = object([
            "card_number": string("Digits (spaces and dashes allowed); must pass the Luhn check. Kept in memory only on its way to the connector; never stored or returned", maxLength: 23, pattern: "^[0-9 -]{12,23}$"),
            "card_exp_month": string("01 to 12", pattern: "^(0[1-9]|[1-9]|1[0-2])$"),
            "card_exp_year": string("YY or YYYY, not in the past", pattern: "^([0-9]{2}|[0-9]{4})$"),
            "card_cvc": string(pattern: "^[0-9]{3,4}$"),
            "card_holder_name": nullable(string(maxLength: 255)),
        ], required: ["card_number", "card_exp_month", "card_exp_year", "card_cvc"])
        // A card, or (before confirm) only the billing address.
        let paymentMethodData = request(["card": card, "billing": free], extra: ["anyOf": .array([
            .object(["required": .array([.string("card")])]), .object(["required": .array([.string("billing")])]),
        ])])
        let recurringDetails = request([
            "type": string(enum: ["processor_payment_token"]),
            "data": request(["processor_payment_token": string(maxLength: 255)], required: ["processor_payment_token"]),
        ], required: ["type", "data"])
        let routing = request([
            "type": string(enum: ["single"]),
            "data": .object(["oneOf": .array([
                string("A connector name, e.g. sandbox or stripe", maxLength: 64, minLength: 1),
                object(["merchant_connector_id": string(maxLength: 64)], required: ["merchant_connector_id"]),
                object(["connector": string(maxLength: 64), "merchant_connector_id": .object(["type": .string("null")])], required: ["connector"]),
            ])]),
        ], required: ["type", "data"])
        let capture = string(enum: ["automatic", "manual"])
        var paymentFree: [String: JSONValue] = [:]
        for key in ["customer", "billing", "shipping", "metadata", "browser_info", "connector_metadata"] { paymentFree[key] = free }
        for key in ["customer_id", "description", "return_url", "email", "name", "phone", "merchant_order_reference_id"] { paymentFree[key] = string(maxLength: 2048) }
        paymentFree["order_details"] = array(ref("FreeValue"))
        var paymentCreate = paymentFree
        for (key, value) in [
            "merchant_id": string("The admin key must name the merchant; a merchant key implies it (and this is ignored)", maxLength: 64),
            "amount": amount, "currency": string("ISO 4217", enum: Currency.codes), "confirm": boolean, "capture_method": capture,
            "amount_to_capture": amount, "profile_id": identifierText, "routing": routing, "payment_method": string(enum: ["card"]),
            "payment_method_data": paymentMethodData, "recurring_details": recurringDetails,
            "session_expiry": integer(PaymentRequest.sessionExpiryRange),
        ] { paymentCreate[key] = value }
        var paymentUpdate = paymentFree
        paymentUpdate["amount"] = amount
        paymentUpdate["currency"] = string("ISO 4217", enum: Currency.codes)
        paymentUpdate["capture_method"] = capture
        paymentUpdate["confirm"] = .object(["enum": .array([.bool(false)]), "description": .string("Confirm with POST /payments/{payment_id}/confirm")])
        paymentUpdate["payment_method_data"] = request(["billing": free], extra: ["description": .string("Only the billing address; the card is given with confirm")])
        let freeFormNote = "Free-form fields (metadata, customer, billing, description, …) take at most \(InputLimits.freeFormBytes) bytes in all"

        let paymentCard = response([
            "last4": string(), "card_isin": string("The BIN: first six digits"), "card_exp_month": string(), "card_exp_year": string(),
            "card_network": string(), "card_holder_name": string(),
        ], nullable: ["card_network", "card_holder_name"])
        let optionalPaymentText = ["profile_id", "connector", "merchant_connector_id", "connector_transaction_id", "error_code", "error_message", "unified_code", "unified_message", "issuer_error_code", "reference_id", "cancellation_reason",
                                   "decline_code", "network_decline_code", "network_advice_code"]
        var paymentProperties: [String: JSONValue] = [
            "payment_id": string(), "merchant_id": string(), "status": string(enum: PaymentStatusNames.all),
            "amount": integer(), "net_amount": integer(), "amount_capturable": integer(), "amount_received": integer(),
            "currency": string(), "capture_method": string(enum: ["automatic", "manual"]), "client_secret": string(),
            "payment_method_data": object(["card": paymentCard, "billing": nullable(free)]),
            "attempt_count": integer(), "created": string(format: "date-time"), "updated": string(format: "date-time"),
            "manual_retry_allowed": boolean,
        ]
        for key in optionalPaymentText { paymentProperties[key] = string() }
        paymentProperties["error_code"] = string("The processor's own code for the failure (Stripe: card_declined)")
        paymentProperties["error_message"] = string("The processor's own message; for Stripe declines it names the decline code")
        paymentProperties["unified_code"] = string("Paywire's connector-neutral code (UE_…)")
        paymentProperties["decline_code"] = string("Paywire's connector-neutral decline reason (insufficient_funds, lost_card, …); what revenue recovery decides on")
        paymentProperties["network_decline_code"] = string("The card network's decline code as the processor passed it on (51)")
        paymentProperties["network_advice_code"] = string("The card network's merchant advice code (03, 21, 24 …), if any")
        paymentProperties["expires_on"] = string("When the client_secret stops working: created + session_expiry", format: "date-time")
        var paymentNullable = Set(optionalPaymentText)
        paymentNullable.insert("expires_on")
        paymentNullable.insert("payment_method_data")
        let refundText = ["profile_id", "reason", "connector_refund_id", "error_code", "error_message", "unified_code", "unified_message"]
        var refundProperties: [String: JSONValue] = [
            "refund_id": string(), "payment_id": string(), "merchant_id": string(), "amount": integer(), "currency": string(),
            "status": string(enum: ["pending", "succeeded", "failed", "manual_review"]), "connector": string(), "merchant_connector_id": string(),
            "metadata": free, "created_at": string(format: "date-time"), "updated_at": string(format: "date-time"),
        ]
        for key in refundText { refundProperties[key] = string() }

        return [
            "FreeValue": .object(["anyOf": .array([
                .object(["type": .array([.string("null"), .string("boolean"), .string("number")])]),
                string(), array(ref("FreeValue")), ref("FreeObject"),
            ])]),
            "FreeObject": .object(["type": .string("object"), "propertyNames": .object(["pattern": .string(noNUL)]), "additionalProperties": ref("FreeValue")]),
            "Error": object(["error": object([
                "type": string(), "code": string(), "message": string(), "field": nullable(string("The field at fault, when there is one")),
            ], required: ["type", "code", "message", "field"], open: false)], required: ["error"], open: false),
            "RecoveryReport": request([
                "action": string(enum: ["schedule_failed_payment", "success_payment_external", "cancel_invoice", "no_action"]),
                "merchant_reference_id": string(maxLength: 64, minLength: 1, pattern: printable),
                "amount_details": object(["order_amount": amount, "currency": string(maxLength: 3, minLength: 3, pattern: "^[A-Z]{3}$")], required: ["order_amount", "currency"]),
                "connector_customer_id": string(maxLength: 255), "connector_transaction_id": string(maxLength: 255),
                "error": object(["code": nullable(string(maxLength: 255)), "message": nullable(string(maxLength: 1024)),
                                 "network_decline_code": nullable(string(maxLength: 64)), "network_advice_code": nullable(string(maxLength: 64))]),
                "billing": free,
                "payment_method_type": string(maxLength: 64), "payment_method_sub_type": string(maxLength: 64),
                "payment_method_data": object([
                    "primary_processor_payment_method_token": nullable(string(maxLength: 255)),
                    "additional_payment_method_info": nullable(object([
                        "card_exp_month": nullable(string(maxLength: 2)), "card_exp_year": nullable(string(maxLength: 4)),
                        "last_four_digits": nullable(.object(["anyOf": .array([string(pattern: "^[0-9]{4}$"), integer(0...9999)])])),
                        "card_network": nullable(string(maxLength: 64)), "card_issuer": nullable(string(maxLength: 255)), "card_type": nullable(string(maxLength: 64)),
                    ])),
                ]),
                "billing_started_at": string(format: "date-time", maxLength: 64, pattern: nil), "transaction_created_at": string(format: "date-time", maxLength: 64, pattern: nil),
                "invoice_next_billing_time": string(format: "date-time", maxLength: 64, pattern: nil),
                "attempt_status": string(enum: ["failure", "success", "pending"]),
                "billing_merchant_connector_id": string(maxLength: 64),
                "payment_merchant_connector_id": string(maxLength: 64),
            ], required: ["action", "merchant_reference_id", "billing_merchant_connector_id"]),
            "RecoveryAccepted": response(["id": string(), "merchant_reference_id": string(), "action": string(), "status": string(enum: ["accepted"])], nullable: ["merchant_reference_id"]),
            "RecoveryJob": response([
                "id": string(), "merchant_id": string(), "profile_id": string(), "merchant_reference_id": string(),
                "status": string(enum: ["recorded", "awaiting_billing_platform", "monitoring", "scheduled", "attempting", "succeeded", "failed", "cancelled", "paid_externally"]),
                "task_status": string(enum: ["idle", "pending", "running", "waiting", "finished"]),
                "finish_reason": string(), "amount": integer(), "currency": string(),
                "billing_connector_id": string(), "payment_connector_id": string(),
                "max_retry_count": integer(), "billing_connector_retry_threshold": integer(), "billing_attempts": integer(), "retry_count": integer(),
                "total_retry_count": integer(), "next_run": string(format: "date-time"),
                "first_payment_attempt_error": object([:]), "attempts": array(object([:])),
                "created": string(format: "date-time"), "modified_at": string(format: "date-time"),
            ], nullable: ["profile_id", "merchant_reference_id", "finish_reason", "billing_connector_id", "next_run"]),
            "Status": object(["status": string(enum: ["ok", "ready", "not_ready"]), "problems": object([:])], required: ["status"]),
            "Text": .object(["type": .string("string")]),
            "Document": .object(["type": .string("object")]),
            "IncomingWebhookResult": object(["received": boolean, "applied": boolean]),
            "MerchantDeleted": response(["merchant_id": string(), "deleted": boolean]),
            "ConnectorDeleted": response(["merchant_id": string(), "merchant_connector_id": string(), "deleted": boolean]),
            "Revoked": response(["merchant_id": string(), "key_id": string(), "revoked": boolean]),
            "WebhookDetailsInput": webhookDetailsInput,
            "WebhookDetails": webhookDetails,
            "WebhookEndpoint": endpointResponse,
            "EndpointHealth": response([
                "state": string("inactive: the dispatcher stopped delivering (a 410 answer, or failing with no success for PAYWIRE_WEBHOOK_DISABLE_AFTER_HOURS); any update of the endpoint makes it active again", enum: ["active", "inactive"]),
                "inactive_reason": string(enum: ["answered_410", "failing_too_long"]),
                "inactive_since": dateTime, "last_success_at": dateTime, "last_failure_at": dateTime, "failing_since": dateTime,
                "consecutive_failures": count, "attempts_last_hour": count,
                "success_rate_last_hour": .object(["type": .string("number"), "minimum": .number(0), "maximum": .number(1)]),
            ], nullable: ["inactive_reason", "inactive_since", "last_success_at", "last_failure_at", "failing_since", "success_rate_last_hour"]),
            "Event": response(eventFields.merging(["request": eventRequest]) { $1 }, nullable: eventNullable),
            "EventListItem": response(eventFields, nullable: eventNullable),
            "EventList": response(["events": array(ref("EventListItem")), "total_count": count]),
            "EventAttempt": response([
                "event_id": string("This attempt's id (the first attempt's is the delivery's)"), "merchant_id": string(), "profile_id": string(),
                "webhook_endpoint_id": string(), "object_id": string(), "event_type": eventType, "event_class": eventClass,
                "is_delivery_successful": boolean, "initial_attempt_id": string("The delivery this attempt belongs to"), "created": dateTime,
                "request": eventRequest,
                "response": response([
                    "body": string("Up to 4 KiB of what the endpoint answered"), "headers": headerPairs,
                    "status_code": integer(100...999), "error_message": string("Why no answer was had (timeout, refused address, …)"),
                    "latency_ms": count,
                ], nullable: ["body", "status_code", "error_message", "latency_ms"]),
                "delivery_attempt": string(enum: ["initial_attempt", "automatic_retry", "manual_retry"]),
            ], nullable: ["profile_id", "webhook_endpoint_id"]),
            "EventAttemptList": array(ref("EventAttempt")),
            "EventRecover": .object(["allOf": .array([
                request([
                    "since": .object(["type": .string("string"), "format": .string("date-time"), "description": .string("At most 14 days ago, not in the future (400 otherwise)")]),
                    "until": dateTime, "webhook_endpoint_id": identifierText, "profile_id": identifierText,
                ], required: ["since"]),
                .object(["anyOf": .array([
                    object(["webhook_endpoint_id": identifierText], required: ["webhook_endpoint_id"]),
                    object(["profile_id": identifierText], required: ["profile_id"]),
                ])]),
            ])]),
            "EventRecovered": response(["scheduled": count, "since": dateTime, "until": dateTime], nullable: ["until"]),
            "WebhookEndpointList": array(ref("WebhookEndpoint")),
            "WebhookEndpointEntry": .object(["allOf": .array([
                request(endpointFields.merging(["webhook_endpoint_id": string("An endpoint of this profile to update; without it, an endpoint is created", maxLength: 64)]) { $1 }),
                .object(["anyOf": .array([
                    object(["webhook_endpoint_id": string()], required: ["webhook_endpoint_id"]),
                    object(["webhook_url": .object(["type": .string("string")]), "events": .object(["type": .string("array")])], required: ["webhook_url", "events"]),
                ])]),
            ])]),
            "WebhookEndpointCreate": request(endpointFields, required: ["webhook_url", "events"]),
            "WebhookEndpointUpdate": request(endpointFields),
            "MerchantCreate": request(merchantCreate, required: ["merchant_id"], extra: ["description": .string(freeFormNote)]),
            "MerchantUpdate": request(merchantFields, extra: ["description": .string(freeFormNote)]),
            "Merchant": response([
                "merchant_id": string(), "merchant_name": string(), "enable_payment_response_hash": boolean,
                "payment_response_hash_key": string(), "webhook_details": webhookDetails, "publishable_key": string(),
                "default_profile": string(), "organization_id": string(), "metadata": free, "merchant_details": free,
                "return_url": string(),
            ], nullable: ["merchant_name", "payment_response_hash_key", "webhook_details", "publishable_key", "default_profile", "organization_id", "metadata", "merchant_details", "return_url"]),
            "ProfileUpdate": profileInput,
            "Profile": response([
                "merchant_id": string(), "profile_id": string(), "profile_name": string(),
                "payment_response_hash_key": string(), "enable_payment_response_hash": boolean, "webhook_details": webhookDetails,
                "outgoing_webhook_custom_http_headers": object([:]), "return_url": string(), "metadata": free,
                "revenue_recovery_retry_algorithm_type": string(enum: ["monitoring", "cascading", "smart"]),
            ], nullable: ["payment_response_hash_key", "outgoing_webhook_custom_http_headers", "return_url", "metadata", "revenue_recovery_retry_algorithm_type"]),
            "ProfileList": array(ref("Profile")),
            "APIKeyCreate": request([
                "name": string(maxLength: 64), "description": string(maxLength: 256),
                "expiration": .object(["description": .string("never, or an RFC 3339 date-time in the future (a past one: 400)"), "anyOf": .array([
                    string(enum: ["never"]), .object(["type": .string("string"), "format": .string("date-time"), "maxLength": .number(64)]),
                ])]),
            ], required: ["name"]),
            "APIKeyUpdate": request([
                "name": string(maxLength: 64, minLength: 1), "description": string(maxLength: 256),
                "expiration": .object(["description": .string("never, or an RFC 3339 date-time in the future (a past one: 400)"), "anyOf": .array([
                    string(enum: ["never"]), .object(["type": .string("string"), "format": .string("date-time"), "maxLength": .number(64)]),
                ])]),
            ]),
            "APIKey": response(["key_id": string(), "merchant_id": string(), "name": string(), "description": string(), "prefix": string(), "created": string(format: "date-time"), "expiration": string()], nullable: ["description"]),
            "APIKeyCreated": response(["key_id": string(), "merchant_id": string(), "name": string(), "description": string(), "api_key": string("dev_…; shown once"), "created": string(format: "date-time"), "expiration": string()], nullable: ["description"]),
            "APIKeyList": array(ref("APIKey")),
            "ConnectorAccountCreate": request(connectorCreate, required: ["connector_name", "connector_type", "connector_account_details"], extra: ["description": .string(connectorKinds)]),
            "ConnectorAccountUpdate": request(connectorUpdate),
            "ConnectorAccount": response([
                "merchant_connector_id": string(), "merchant_id": string(), "profile_id": string(),
                "connector_type": string(), "connector_name": string(), "connector_account_details": object([:]),
                "connector_webhook_details": object([:]), "feature_metadata": free, "metadata": free,
            ], nullable: ["connector_webhook_details", "feature_metadata", "metadata"]),
            "ConnectorAccountList": array(ref("ConnectorAccount")),
            "PaymentCreate": request(paymentCreate, required: ["amount", "currency"], extra: ["description": .string(freeFormNote)]),
            "PaymentConfirm": request(["payment_method_data": paymentMethodData, "recurring_details": recurringDetails, "routing": routing, "capture_method": capture,
                                       "client_secret": string("Required with the publishable key", maxLength: 255)]),
            "PaymentUpdate": request(paymentUpdate, extra: ["description": .string(freeFormNote)]),
            "PaymentList": response(["size": integer(), "data": array(ref("Payment"))]),
            "RefundUpdate": request(["reason": string(maxLength: 255), "metadata": free]),
            "RefundListRequest": request([
                "merchant_id": identifierText, "payment_id": identifierText, "refund_id": identifierText, "profile_id": identifierText,
                "limit": integer(1...100), "offset": integer(0...1_000_000),
                "time_range": request(["start_time": dateTime, "end_time": dateTime]),
                "currency": array(string("ISO 4217", enum: Currency.codes), maxItems: 50),
                "refund_status": array(string(enum: PaymentListRequest.refundStatuses), maxItems: 50),
                "connector": array(identifierText, maxItems: 50),
            ]),
            "RefundList": response(["count": integer(), "total_count": integer(), "data": array(ref("Refund"))]),
            "Dispute": response([
                "dispute_id": string(), "merchant_id": string(), "profile_id": string(), "payment_id": string(), "attempt_id": string(),
                "merchant_connector_id": string(), "connector": string(), "connector_dispute_id": string(),
                "amount": string("Minor units, as a string (Hyperswitch's)"), "currency": string(),
                "dispute_stage": string(enum: DisputesAPI.stages), "dispute_status": string(enum: DisputesAPI.statuses),
                "connector_status": string(), "connector_reason": string(), "connector_reason_code": string(),
                "challenge_required_by": string(format: "date-time"), "connector_created_at": string(format: "date-time"),
                "connector_updated_at": string(format: "date-time"), "created_at": string(format: "date-time"), "is_already_refunded": .object(["type": .string("boolean")]),
            ], nullable: ["profile_id", "connector_reason", "connector_reason_code", "challenge_required_by", "connector_created_at", "connector_updated_at"]),
            "DisputeList": array(ref("Dispute")),
            "FeatureMatrix": response(["connector_count": integer(), "connectors": array(response([
                "name": string(), "display_name": string(), "description": string(), "category": string(enum: ["payment_processor", "billing_processor"]),
                "auth_types": array(string()), "supported_flows": array(string()), "supported_webhook_flows": array(string()),
                "supported_payment_methods": array(response([
                    "payment_method": string(), "payment_method_type": string(), "mandates": string(), "refunds": string(), "supported_capture_methods": array(string()), "partial_capture": string(enum: ["supported", "not_supported"]),
                ])),
            ]))]),
            "DisputeEvidence": request(
                ["dispute_id": string(maxLength: 64)].merging(DisputesAPI.evidenceFields.map { ($0, string(maxLength: 20_000)) }) { first, _ in first },
                required: ["dispute_id"]
            ),
            "PaymentCapture": request(["amount_to_capture": amount]),
            "PaymentCancel": request(["cancellation_reason": string(maxLength: 255)]),
            "Payment": response(paymentProperties, nullable: paymentNullable),
            "RefundCreate": request([
                "payment_id": string(maxLength: 64), "amount": amount, "reason": string(maxLength: 255), "metadata": free, "refund_type": string(maxLength: 32),
            ], required: ["payment_id"], extra: ["description": .string(freeFormNote)]),
            "Refund": response(refundProperties, nullable: Set(refundText + ["metadata"])),
            // A 202 carries the payment as stored, or what the command said while payment-core has
            // written nothing yet.
            "PaymentAccepted": object(["payment_id": string(), "status": string(enum: PaymentStatusNames.all)], required: ["payment_id", "status"]),
            "EventRetryAccepted": object(["event_id": string(), "status": string(enum: ["sending"]), "message": string()], required: ["event_id", "status"]),
            "RefundAccepted": object(["refund_id": string(), "payment_id": string(), "status": string(enum: ["pending", "succeeded", "failed", "manual_review"])], required: ["refund_id", "payment_id", "status"]),
        ]
    }

    static func hasRequiredFields(_ schema: JSONValue) -> Bool {
        if case .array(let required)? = schema["required"], !required.isEmpty { return true }
        if case .array(let parts)? = schema["allOf"] { return parts.contains(where: hasRequiredFields) }
        return false
    }

    static var document: JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        let error = ref("Error")
        let schemas = schemas
        for operation in operations {
            var parameters: [JSONValue] = []
            for name in operation.path.split(separator: "/").filter({ $0.hasPrefix("{") }).map({ String($0.dropFirst().dropLast()) }) {
                parameters.append(.object(["name": .string(name), "in": .string("path"), "required": .bool(true), "schema": identifierText]))
            }
            for header in operation.headers {
                parameters.append(.object(["name": .string(header.name), "in": .string("header"), "required": .bool(header.required), "schema": header.schema]))
            }
            for item in operation.query {
                // Arrays as repeated parameters (`?event_types=a&event_types=b`).
                parameters.append(.object(["name": .string(item.name), "in": .string("query"), "required": .bool(item.required), "schema": item.schema, "style": .string("form"), "explode": .bool(true)]))
            }
            func content(_ schema: String) -> JSONValue {
                if schema == "IncomingWebhookResult" {
                    // Each processor is answered as it expects: Adyen wants the text [accepted].
                    return .object(["application/json": .object(["schema": ref(schema)]), "text/plain": .object(["schema": ref("Text"), "example": .string("[accepted]")])])
                }
                let type = schema == "Text" ? "text/plain" : "application/json"
                return .object([type: .object(["schema": ref(schema)])])
            }
            var success: [String: JSONValue] = ["description": .string("Success"), "content": content(operation.response)]
            let links = linkObjects(for: operation)
            if let links { success["links"] = links }
            var responses: [String: JSONValue] = [
                operation.status: .object(success),
                "default": .object(["description": .string("Refused or failed: the body names the field at fault (400 invalid, 401 no or bad key, 403 admin only, 404 unknown or another merchant's, 405 method, 408 body too slow, 409 conflict or key in use, 413 body over 1 MiB, 503 a fault of ours that passes: retry after Retry-After seconds, with the same Idempotency-Key)"),
                                    "headers": .object(["Retry-After": .object(["description": .string("With 503: seconds to wait before retrying"), "schema": .object(["type": .string("integer")])])]),
                                    "content": .object(["application/json": .object(["schema": error])])]),
            ]
            for (status, schema) in operation.also {
                var answer: [String: JSONValue] = ["description": .string(status != "202" ? "Not ready" : schema == "EventRetryAccepted" ? "Still sending: the attempt goes on; see GET …/attempts" : "Still running: the stored state; poll GET"), "content": content(schema)]
                if status == "202", let links { answer["links"] = links }
                responses[status] = .object(answer)
            }
            var entry: [String: JSONValue] = [
                "summary": .string(operation.summary),
                "tags": .array([.string(operation.tag)]),
                "operationId": .string(operationId(method: operation.method, path: operation.path)),
                "responses": .object(responses),
            ]
            if !parameters.isEmpty { entry["parameters"] = .array(parameters) }
            if let request = operation.request {
                // A body whose fields are all optional may be left out (it reads as {}).
                let needed = schemas[request].map(Self.hasRequiredFields) ?? true
                entry["requestBody"] = .object(["required": .bool(needed), "content": .object(["application/json": .object(["schema": ref(request)])])])
            }
            switch operation.auth {
            case .none: entry["security"] = .array([])
            case .admin: entry["security"] = .array([.object(["admin_api_key": .array([])])])
            case .merchant: entry["security"] = .array([.object(["admin_api_key": .array([])]), .object(["merchant_api_key": .array([])])])
            case .client: entry["security"] = .array([.object(["admin_api_key": .array([])]), .object(["merchant_api_key": .array([])]), .object(["publishable_key": .array([])])])
            }
            paths[operation.path, default: [:]][operation.method] = .object(entry)
        }
        return .object([
            "openapi": .string("3.1.0"),
            "info": .object([
                "title": .string("Paywire gateway"), "version": .string("0.2.0"),
                "description": .string("Payment orchestration: merchants, profiles, webhook endpoints, API keys, connector accounts and payments. Amounts are integers in the currency's minor unit, at most \(InputLimits.maxAmount). Text holding NUL (\\u0000) is refused with 400 naming the field."),
            ]),
            "servers": .array([.object(["url": .string("http://127.0.0.1:8080")])]),
            "paths": .object(paths.mapValues { JSONValue.object($0) }),
            "components": .object([
                "schemas": .object(schemas),
                "securitySchemes": .object([
                    "admin_api_key": .object(["type": .string("apiKey"), "in": .string("header"), "name": .string("api-key"), "description": .string("PAYWIRE_ADMIN_API_KEY")]),
                    "merchant_api_key": .object(["type": .string("apiKey"), "in": .string("header"), "name": .string("api-key"), "description": .string("A merchant's dev_… key; reaches that merchant only")]),
                    "publishable_key": .object(["type": .string("apiKey"), "in": .string("header"), "name": .string("api-key"), "description": .string("A merchant's pk_… key, for browsers: with a payment's client_secret (body of confirm, query of retrieve) it confirms and retrieves that payment until session_expiry, and opens nothing else. Its answers leave out (null) \(ClientSecretAccess.hiddenFromBrowsers.joined(separator: ", "))")]),
                ]),
            ]),
        ])
    }
}

/// The connectors the gateway accepts accounts for, by type (from `ConnectorAccountStore`).
enum ConnectorNames {
    static var all: [String] { ConnectorAccountStore.knownConnectors.keys.sorted() }
    static var byType: [(String, [String])] {
        Dictionary(grouping: ConnectorAccountStore.knownConnectors, by: \.value)
            .map { ($0.key, $0.value.map(\.key).sorted()) }
            .sorted { $0.0 < $1.0 }
    }
}
