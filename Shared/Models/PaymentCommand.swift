/// A command for payment-core, sent by the gateway (and, for retries, the recovery scheduler)
/// on `paywire.payment.commands`, keyed by payment id so that one payment's commands are applied
/// in order. It never carries card numbers: a confirm with card data carries `cardVault`, which
/// payment-core redeems from the gateway's in-memory vault.
public struct PaymentCommand: Codable, Sendable, Equatable {
    public enum Operation: String, Codable, Sendable {
        case create, confirm, capture, cancel, refund
        /// `POST /payments/{id}` before confirm: amount, currency, capture method, details.
        case update
        /// `POST /refunds/{id}`: reason and metadata.
        case updateRefund = "update_refund"
    }

    public var operation: Operation

    /// Keys in `details` that the gateway writes and payment-core reads: the billing address
    /// sent in `payment_method_data` (returned there) and the session expiry in seconds the
    /// gateway resolved at creation (the payment's `expires_on`).
    public static let paymentMethodBillingDetail = "payment_method_billing"
    public static let sessionExpiryDetail = "session_expiry"
    public var paymentId: String
    public var merchantId: String
    public var profileId: String?
    /// The gateway replica waiting for the answer, or nil when nobody waits.
    public var replyTo: String?
    /// The partition of the reply topic that replica reads (nil: the reply goes by key).
    public var replyPartition: Int32?

    // create / confirm
    public var amount: Int?
    public var currency: String?
    public var captureMethod: String?
    public var confirm: Bool?
    public var merchantConnectorId: String?
    public var connectorName: String?
    public var card: CardSummary?
    public var cardVault: CardVaultReference?
    /// A processor token for a recurring charge (`recurring_details`). In memory only: on Kafka
    /// it travels sealed (`sealedProcessorPaymentToken`, see `PaymentCommand.sealProcessorToken`),
    /// so it is never in a topic or a dead letter in clear.
    public var processorPaymentToken: String? = nil
    public var sealedProcessorPaymentToken: String?
    /// Charged with nobody present (the recovery scheduler's retries of a saved payment method).
    public var offSession: Bool?
    /// The request's other fields (customer, billing, metadata, ...), returned in the object.
    public var details: JSONValue?

    // capture / cancel
    public var amountToCapture: Int?
    public var cancellationReason: String?

    // refund
    public var refundId: String?
    public var refundAmount: Int?
    public var refundReason: String?
    public var refundMetadata: JSONValue?

    public init(operation: Operation, paymentId: String, merchantId: String) {
        self.operation = operation
        self.paymentId = paymentId
        self.merchantId = merchantId
    }

    enum CodingKeys: String, CodingKey {
        case operation, amount, currency, confirm, card, details
        case paymentId = "payment_id"
        case merchantId = "merchant_id"
        case profileId = "profile_id"
        case replyTo = "reply_to"
        case replyPartition = "reply_partition"
        case captureMethod = "capture_method"
        case merchantConnectorId = "merchant_connector_id"
        case connectorName = "connector_name"
        case cardVault = "card_vault"
        case sealedProcessorPaymentToken = "sealed_processor_payment_token"
        case offSession = "off_session"
        case amountToCapture = "amount_to_capture"
        case cancellationReason = "cancellation_reason"
        case refundId = "refund_id"
        case refundAmount = "refund_amount"
        case refundReason = "refund_reason"
        case refundMetadata = "refund_metadata"
    }
}

/// Where payment-core fetches the card for one confirm: the gateway replica that holds it, and
/// a one-time token. The card is gone when the gateway restarts or the token expires.
public struct CardVaultReference: Codable, Sendable, Equatable {
    public var url: String
    public var token: String

    public init(url: String, token: String) {
        self.url = url
        self.token = token
    }
}

/// payment-core's answer to a command, on `paywire.gateway.replies` keyed by correlation id (the
/// command envelope's id). Either the object as the API returns it, or an error for the client.
public struct GatewayReply: Codable, Sendable, Equatable {
    public struct Failure: Codable, Sendable, Equatable {
        public var status: Int
        public var code: String
        public var message: String
        public var field: String?

        public init(status: Int, code: String, message: String, field: String? = nil) {
            self.status = status
            self.code = code
            self.message = message
            self.field = field
        }
    }

    public var correlationId: String
    public var replyTo: String
    public var object: JSONValue?
    public var error: Failure?

    public init(correlationId: String, replyTo: String, object: JSONValue? = nil, error: Failure? = nil) {
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.object = object
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case object, error
        case correlationId = "correlation_id"
        case replyTo = "reply_to"
    }

    /// The same document as its Codable form, built without an encode/decode round trip (the
    /// object is large and on the hot path).
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["correlation_id": .string(correlationId), "reply_to": .string(replyTo)]
        if let object { fields["object"] = object }
        if let error {
            fields["error"] = .object([
                "status": .number(Double(error.status)), "code": .string(error.code), "message": .string(error.message),
                "field": error.field.map(JSONValue.string) ?? .null,
            ])
        }
        return .object(fields)
    }
}
