import PaywireModels

/// The gateway's OpenAPI 3 document, served at `GET /openapi.json`. It is written out here rather
/// than derived from the router, so the test that compares the two can catch a route added to one
/// and not the other.
enum PaymentStatusNames {
    static let all = ["requires_payment_method", "requires_confirmation", "processing", "requires_capture", "succeeded", "partially_captured", "failed", "cancelled"]
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
        var headers: [String] = []
    }

    enum Auth { case none, admin, merchant }

    static let operations: [Operation] = [
        .init(method: "get", path: "/health", summary: "The process answers", tag: "Operations", auth: .none, response: "Status"),
        .init(method: "get", path: "/ready", summary: "Start-up done; PostgreSQL and Kafka reachable (503 otherwise)", tag: "Operations", auth: .none, response: "Status"),
        .init(method: "get", path: "/metrics", summary: "Prometheus metrics (text)", tag: "Operations", auth: .none, response: "Text"),
        .init(method: "get", path: "/openapi.json", summary: "This document", tag: "Operations", auth: .none, response: "Document"),

        .init(method: "post", path: "/accounts", summary: "Create a merchant account and its default business profile", tag: "Merchant accounts", auth: .admin, request: "MerchantAccountCreate", response: "MerchantAccount"),
        .init(method: "get", path: "/accounts/{merchant_id}", summary: "Retrieve a merchant account", tag: "Merchant accounts", auth: .merchant, response: "MerchantAccount"),
        .init(method: "post", path: "/accounts/{merchant_id}", summary: "Update a merchant account", tag: "Merchant accounts", auth: .merchant, request: "MerchantAccountCreate", response: "MerchantAccount"),
        .init(method: "delete", path: "/accounts/{merchant_id}", summary: "Delete a merchant account and everything under it", tag: "Merchant accounts", auth: .admin, response: "Deleted"),

        .init(method: "post", path: "/api_keys/{merchant_id}", summary: "Create an API key; the key is in this answer only", tag: "API keys", auth: .merchant, request: "APIKeyCreate", response: "APIKeyCreated"),
        .init(method: "get", path: "/api_keys/{merchant_id}/list", summary: "List active API keys", tag: "API keys", auth: .merchant, response: "APIKeyList"),
        .init(method: "get", path: "/api_keys/{merchant_id}/{key_id}", summary: "Retrieve an API key (never the key itself)", tag: "API keys", auth: .merchant, response: "APIKey"),
        .init(method: "delete", path: "/api_keys/{merchant_id}/{key_id}", summary: "Revoke an API key", tag: "API keys", auth: .merchant, response: "Revoked"),

        .init(method: "post", path: "/account/{merchant_id}/business_profile", summary: "Create a business profile", tag: "Business profiles", auth: .merchant, request: "BusinessProfileUpdate", response: "BusinessProfile"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile", summary: "List business profiles", tag: "Business profiles", auth: .merchant, response: "BusinessProfileList"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}", summary: "Retrieve a business profile", tag: "Business profiles", auth: .merchant, response: "BusinessProfile"),
        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}", summary: "Update a business profile", tag: "Business profiles", auth: .merchant, request: "BusinessProfileUpdate", response: "BusinessProfile"),
        .init(method: "put", path: "/v2/profiles/{profile_id}", summary: "Update a business profile (v2)", tag: "Business profiles", auth: .merchant, request: "BusinessProfileUpdate", response: "BusinessProfile", headers: ["x-merchant-id"]),

        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", summary: "Add a webhook endpoint; its signing secret is in this answer only", tag: "Webhook endpoints", auth: .merchant, request: "WebhookEndpointInput", response: "WebhookEndpoint"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks", summary: "List webhook endpoints", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpointList"),
        .init(method: "get", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}", summary: "Retrieve a webhook endpoint", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpoint"),
        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}", summary: "Update a webhook endpoint (a deprecated one never changes again)", tag: "Webhook endpoints", auth: .merchant, request: "WebhookEndpointInput", response: "WebhookEndpoint"),
        .init(method: "delete", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}", summary: "Deprecate a webhook endpoint for good", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpoint"),
        .init(method: "post", path: "/account/{merchant_id}/business_profile/{profile_id}/webhooks/{webhook_endpoint_id}/rotate_secret", summary: "Rotate the signing secret; the old one stays valid for 24 hours", tag: "Webhook endpoints", auth: .merchant, response: "WebhookEndpoint"),

        .init(method: "post", path: "/account/{merchant_id}/connectors", summary: "Create a connector account", tag: "Connector accounts", auth: .merchant, request: "ConnectorAccountInput", response: "ConnectorAccount"),
        .init(method: "get", path: "/account/{merchant_id}/connectors", summary: "List connector accounts", tag: "Connector accounts", auth: .merchant, response: "ConnectorAccountList"),
        .init(method: "get", path: "/account/{merchant_id}/connectors/{merchant_connector_id}", summary: "Retrieve a connector account (credentials masked)", tag: "Connector accounts", auth: .merchant, response: "ConnectorAccount"),
        .init(method: "post", path: "/account/{merchant_id}/connectors/{merchant_connector_id}", summary: "Update a connector account", tag: "Connector accounts", auth: .merchant, request: "ConnectorAccountInput", response: "ConnectorAccount"),
        .init(method: "delete", path: "/account/{merchant_id}/connectors/{merchant_connector_id}", summary: "Delete a connector account", tag: "Connector accounts", auth: .merchant, response: "Deleted"),
        .init(method: "post", path: "/v2/connector-accounts", summary: "Create a connector account (v2)", tag: "Connector accounts", auth: .merchant, request: "ConnectorAccountInput", response: "ConnectorAccount", headers: ["x-merchant-id", "x-profile-id"]),
        .init(method: "get", path: "/v2/connector-accounts/{merchant_connector_id}", summary: "Retrieve a connector account (v2)", tag: "Connector accounts", auth: .merchant, response: "ConnectorAccount", headers: ["x-merchant-id"]),

        .init(method: "post", path: "/payments", summary: "Create (and with confirm: true, confirm) a payment. 202 with the stored state when payment-core's answer takes longer than the reply timeout; poll GET", tag: "Payments", auth: .merchant, request: "PaymentCreate", response: "Payment", headers: ["Idempotency-Key"]),
        .init(method: "post", path: "/payments/{payment_id}/confirm", summary: "Confirm a payment with a card or a processor token", tag: "Payments", auth: .merchant, request: "PaymentConfirm", response: "Payment", headers: ["Idempotency-Key"]),
        .init(method: "post", path: "/payments/{payment_id}/capture", summary: "Capture an authorized payment, fully or partly", tag: "Payments", auth: .merchant, request: "PaymentCapture", response: "Payment", headers: ["Idempotency-Key"]),
        .init(method: "post", path: "/payments/{payment_id}/cancel", summary: "Cancel a payment that is not yet charged", tag: "Payments", auth: .merchant, request: "PaymentCancel", response: "Payment", headers: ["Idempotency-Key"]),
        .init(method: "get", path: "/payments/{payment_id}", summary: "Retrieve a payment", tag: "Payments", auth: .merchant, response: "Payment"),
        .init(method: "post", path: "/refunds", summary: "Refund a succeeded payment, fully or partly (never more than was received)", tag: "Refunds", auth: .merchant, request: "RefundCreate", response: "Refund", headers: ["Idempotency-Key"]),
        .init(method: "get", path: "/refunds/{refund_id}", summary: "Retrieve a refund", tag: "Refunds", auth: .merchant, response: "Refund"),
        .init(method: "post", path: "/webhooks/{merchant_id}/{connector}", summary: "Incoming connector webhook (e.g. Stripe-Signature), passed unchanged to payment-core, which verifies and applies it; 401 on a bad signature", tag: "Incoming webhooks", auth: .none, request: "Document", response: "Document", headers: ["Stripe-Signature"]),
        .init(method: "post", path: "/internal/card-vault/{token}/take", summary: "Internal: payment-core takes a card held in memory for one confirm (HMAC-signed with the internal key)", tag: "Internal", auth: .none, response: "Document", headers: ["x-paywire-internal-signature"]),
    ]

    static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/components/schemas/\(name)")]) }
    static func string(_ description: String? = nil, enum values: [String]? = nil, format: String? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("string")]
        if let description { schema["description"] = .string(description) }
        if let values { schema["enum"] = .array(values.map(JSONValue.string)) }
        if let format { schema["format"] = .string(format) }
        return .object(schema)
    }
    static let boolean: JSONValue = .object(["type": .string("boolean")])
    static func integer(minimum: Int? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("integer")]
        if let minimum { schema["minimum"] = .number(Double(minimum)) }
        return .object(schema)
    }
    static let freeObject: JSONValue = .object(["type": .string("object"), "additionalProperties": .bool(true)])
    static func object(_ properties: [String: JSONValue], required: [String] = [], open: Bool = true) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("object"), "properties": .object(properties), "additionalProperties": .bool(open)]
        if !required.isEmpty { schema["required"] = .array(required.map(JSONValue.string)) }
        return .object(schema)
    }
    static func array(_ items: JSONValue) -> JSONValue { .object(["type": .string("array"), "items": items]) }

    static var schemas: [String: JSONValue] {
        let eventTypes = string("An outgoing event type", enum: WebhookEventType.known.sorted())
        let endpoint = object([
            "webhook_endpoint_id": string("whe_…, assigned"), "webhook_url": string(format: "uri"),
            "events": array(eventTypes), "status": string(enum: ["active", "inactive", "deprecated"]),
            "signing_secret": string("whsec_…; only in the answer that created or rotated it"),
        ])
        let webhookDetails = object([
            "webhook_version": string(), "webhook_username": string(), "webhook_password": string("Write-only; answered as ***"),
            "webhook_url": string("Legacy single endpoint, subscribed to every event type", format: "uri"),
            "payment_created_enabled": boolean, "payment_succeeded_enabled": boolean, "payment_failed_enabled": boolean,
            "multiple_webhooks_list": array(ref("WebhookEndpoint")),
        ])
        return [
            "Error": object(["error": object([
                "type": string(), "code": string(), "message": string(), "field": string("The field at fault, when there is one"),
            ], required: ["type", "code", "message"], open: false)], required: ["error"], open: false),
            "Status": object(["status": string(), "problems": freeObject]),
            "Text": string(),
            "Document": freeObject,
            "Deleted": freeObject,
            "Revoked": object(["merchant_id": string(), "key_id": string(), "revoked": boolean]),
            "WebhookDetails": webhookDetails,
            "WebhookEndpoint": endpoint,
            "WebhookEndpointList": array(ref("WebhookEndpoint")),
            "WebhookEndpointInput": object(["webhook_url": string(format: "uri"), "events": array(eventTypes), "status": string(enum: ["active", "inactive", "deprecated"])]),
            "MerchantAccountCreate": object([
                "merchant_id": string(), "merchant_name": string(), "return_url": string(format: "uri"),
                "enable_payment_response_hash": boolean, "merchant_details": freeObject, "metadata": freeObject,
                "webhook_details": ref("WebhookDetails"),
            ], required: ["merchant_id"]),
            "MerchantAccount": object([
                "merchant_id": string(), "merchant_name": string(), "enable_payment_response_hash": boolean,
                "payment_response_hash_key": string(), "webhook_details": ref("WebhookDetails"), "publishable_key": string(),
                "default_profile": string(), "organization_id": string(), "metadata": freeObject, "merchant_details": freeObject,
            ]),
            "BusinessProfileUpdate": object([
                "profile_name": string(), "return_url": string(format: "uri"), "enable_payment_response_hash": boolean,
                "webhook_details": ref("WebhookDetails"), "metadata": freeObject,
                "outgoing_webhook_custom_http_headers": .object(["type": .string("object"), "additionalProperties": string()]),
                "revenue_recovery_retry_algorithm_type": string(enum: ["monitoring", "cascading", "smart"]),
            ]),
            "BusinessProfile": object([
                "merchant_id": string(), "profile_id": string(), "profile_name": string(),
                "payment_response_hash_key": string(), "webhook_details": ref("WebhookDetails"),
                "outgoing_webhook_custom_http_headers": freeObject,
                "revenue_recovery_retry_algorithm_type": string(enum: ["monitoring", "cascading", "smart"]),
            ]),
            "BusinessProfileList": array(ref("BusinessProfile")),
            "APIKeyCreate": object(["name": string(), "description": string(), "expiration": string("never, or an ISO-8601 date-time")], required: ["name"]),
            "APIKey": object(["key_id": string(), "merchant_id": string(), "name": string(), "description": string(), "prefix": string(), "created": string(format: "date-time"), "expiration": string()]),
            "APIKeyCreated": object(["key_id": string(), "merchant_id": string(), "name": string(), "api_key": string("dev_…; shown once"), "created": string(format: "date-time"), "expiration": string()]),
            "APIKeyList": array(ref("APIKey")),
            "ConnectorAccountInput": object([
                "connector_type": string(enum: ["payment_processor", "billing_processor"]),
                "connector_name": string(enum: ["sandbox", "stripe", "custombilling"]),
                "connector_account_details": object([
                    "auth_type": string(enum: ["HeaderKey", "BodyKey", "SignatureKey", "NoKey"]),
                    "api_key": string(), "key1": string(), "api_secret": string(),
                ], required: ["auth_type"]),
                "connector_webhook_details": object(["merchant_secret": string()]),
                "payment_methods_enabled": array(freeObject), "metadata": freeObject, "profile_id": string(),
                "feature_metadata": object(["revenue_recovery": object([
                    "max_retry_count": integer(minimum: 0), "billing_connector_retry_threshold": integer(minimum: 0),
                    "billing_account_reference": freeObject, "switch_payment_method_config": freeObject,
                ])]),
            ]),
            "ConnectorAccount": object([
                "merchant_connector_id": string(), "merchant_id": string(), "profile_id": string(),
                "connector_type": string(), "connector_name": string(), "connector_account_details": freeObject,
                "connector_webhook_details": freeObject, "feature_metadata": freeObject, "metadata": freeObject,
            ]),
            "ConnectorAccountList": array(ref("ConnectorAccount")),
            "Card": object([
                "card_number": string("Kept in memory only on its way to the connector; never stored or returned"),
                "card_exp_month": string(), "card_exp_year": string(), "card_cvc": string(), "card_holder_name": string(),
            ], required: ["card_number", "card_exp_month", "card_exp_year", "card_cvc"]),
            "PaymentMethodData": object(["card": ref("Card")]),
            "RecurringDetails": object(["type": string(enum: ["processor_payment_token"]), "data": object(["processor_payment_token": string()])]),
            "Routing": object(["type": string(enum: ["single"]), "data": string("A connector name, e.g. sandbox or stripe")]),
            "PaymentCreate": object([
                "merchant_id": string("Admin key only; a merchant key implies it"), "amount": integer(minimum: 1), "currency": string(),
                "confirm": boolean, "capture_method": string(enum: ["automatic", "manual"]), "amount_to_capture": integer(minimum: 1),
                "profile_id": string(), "routing": ref("Routing"), "payment_method": string(enum: ["card"]),
                "payment_method_data": ref("PaymentMethodData"), "recurring_details": ref("RecurringDetails"),
                "customer": freeObject, "customer_id": string(), "description": string(), "billing": freeObject, "shipping": freeObject,
                "metadata": freeObject, "order_details": array(freeObject), "return_url": string(),
            ], required: ["amount", "currency"]),
            "PaymentConfirm": object(["payment_method_data": ref("PaymentMethodData"), "recurring_details": ref("RecurringDetails"), "routing": ref("Routing"), "capture_method": string(enum: ["automatic", "manual"])]),
            "PaymentCapture": object(["amount_to_capture": integer(minimum: 1)]),
            "PaymentCancel": object(["cancellation_reason": string()]),
            "Payment": object([
                "payment_id": string(), "merchant_id": string(), "profile_id": string(),
                "status": string(enum: PaymentStatusNames.all), "amount": integer(), "amount_capturable": integer(), "amount_received": integer(),
                "currency": string(), "capture_method": string(), "connector": string(), "merchant_connector_id": string(),
                "connector_transaction_id": string(), "client_secret": string(),
                "payment_method_data": object(["card": object([
                    "last4": string(), "card_isin": string("The BIN: first six digits"), "card_exp_month": string(), "card_exp_year": string(),
                    "card_network": string(), "card_holder_name": string(),
                ])]),
                "error_code": string(), "error_message": string(), "unified_code": string(), "unified_message": string(),
                "attempt_count": integer(), "created": string(format: "date-time"), "updated": string(format: "date-time"),
            ]),
            "RefundCreate": object(["payment_id": string(), "amount": integer(minimum: 1), "reason": string(), "metadata": freeObject], required: ["payment_id"]),
            "Refund": object([
                "refund_id": string(), "payment_id": string(), "amount": integer(), "currency": string(),
                "status": string(enum: ["pending", "succeeded", "failed"]), "reason": string(), "connector": string(),
                "connector_refund_id": string(), "error_code": string(), "error_message": string(),
                "created_at": string(format: "date-time"), "updated_at": string(format: "date-time"),
            ]),
        ]
    }

    static var document: JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for operation in operations {
            var parameters: [JSONValue] = []
            for name in operation.path.split(separator: "/").filter({ $0.hasPrefix("{") }).map({ String($0.dropFirst().dropLast()) }) {
                parameters.append(.object(["name": .string(name), "in": .string("path"), "required": .bool(true), "schema": string()]))
            }
            for header in operation.headers {
                parameters.append(.object(["name": .string(header), "in": .string("header"), "required": .bool(header == "x-merchant-id" || header == "x-paywire-internal-signature"), "schema": string()]))
            }
            let errorResponse: JSONValue = .object(["description": .string("Refused; the body names the field at fault"), "content": .object(["application/json": .object(["schema": ref("Error")])])])
            let contentType = operation.response == "Text" ? "text/plain" : "application/json"
            var responses: [String: JSONValue] = [
                operation.status: .object(["description": .string("Success"), "content": .object([contentType: .object(["schema": ref(operation.response)])])]),
            ]
            if operation.auth != .none {
                responses["400"] = errorResponse
                responses["401"] = errorResponse
                responses["404"] = errorResponse
            }
            var entry: [String: JSONValue] = [
                "summary": .string(operation.summary),
                "tags": .array([.string(operation.tag)]),
                "operationId": .string(operation.method + operation.path.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "").replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: ".", with: "_")),
                "responses": .object(responses),
            ]
            if !parameters.isEmpty { entry["parameters"] = .array(parameters) }
            if let request = operation.request {
                entry["requestBody"] = .object(["required": .bool(true), "content": .object(["application/json": .object(["schema": ref(request)])])])
            }
            switch operation.auth {
            case .none: entry["security"] = .array([])
            case .admin: entry["security"] = .array([.object(["admin_api_key": .array([])])])
            case .merchant: entry["security"] = .array([.object(["admin_api_key": .array([])]), .object(["merchant_api_key": .array([])])])
            }
            paths[operation.path, default: [:]][operation.method] = .object(entry)
        }
        return .object([
            "openapi": .string("3.0.3"),
            "info": .object(["title": .string("Paywire gateway"), "version": .string("0.1.0"), "description": .string("Payment orchestration: merchants, profiles, webhook endpoints, API keys, connector accounts and payments.")]),
            "servers": .array([.object(["url": .string("http://127.0.0.1:8080")])]),
            "paths": .object(paths.mapValues { JSONValue.object($0) }),
            "components": .object([
                "schemas": .object(schemas),
                "securitySchemes": .object([
                    "admin_api_key": .object(["type": .string("apiKey"), "in": .string("header"), "name": .string("api-key"), "description": .string("PAYWIRE_ADMIN_API_KEY")]),
                    "merchant_api_key": .object(["type": .string("apiKey"), "in": .string("header"), "name": .string("api-key"), "description": .string("A merchant's dev_… key; reaches that merchant only")]),
                ]),
            ]),
        ])
    }
}
