/// How Paywire talks to one payment processor. Adding a connector is adding one folder under
/// `Connectors/` with a type conforming to this, and registering it in `ConnectorRegistry`.
///
/// Each flow takes the processor-neutral request and returns a processor-neutral result; a
/// connector maps the processor's own errors to Paywire's codes and to a `unified_code`.
public protocol Connector: Sendable {
    var name: String { get }
    var capabilities: ConnectorCapabilities { get }

    func authorize(_ request: AuthorizeRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult
    func capture(_ request: CaptureRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult
    func void(_ request: VoidRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult
    /// Status sync: what the processor knows now about a payment whose outcome we did not see.
    func sync(_ request: SyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult
    func refund(_ request: RefundRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult
}

public struct ConnectorCapabilities: Sendable, Equatable {
    public var paymentMethods: Set<String>
    public var manualCapture: Bool
    public var refunds: Bool
    public var incomingWebhooks: Bool

    public init(paymentMethods: Set<String>, manualCapture: Bool, refunds: Bool, incomingWebhooks: Bool) {
        self.paymentMethods = paymentMethods
        self.manualCapture = manualCapture
        self.refunds = refunds
        self.incomingWebhooks = incomingWebhooks
    }
}

/// Credentials from the connector account, opened only for the call (Hyperswitch's auth types).
public enum ConnectorCredentials: Sendable {
    case headerKey(apiKey: String)
    case bodyKey(apiKey: String, key1: String)
    case signatureKey(apiKey: String, key1: String, apiSecret: String)
    case noKey
}

/// Card data lives in this value only on its way to the connector; it is never stored or logged,
/// and its description shows no digits beyond what may be stored.
public struct CardDetails: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let number: String
    public let expiryMonth: String
    public let expiryYear: String
    public let cvc: String
    public let holderName: String?

    public init(number: String, expiryMonth: String, expiryYear: String, cvc: String, holderName: String?) {
        self.number = number
        self.expiryMonth = expiryMonth
        self.expiryYear = expiryYear
        self.cvc = cvc
        self.holderName = holderName
    }

    public var last4: String { String(number.suffix(4)) }
    /// The issuer identification number: the first six digits.
    public var bin: String { String(number.prefix(6)) }

    public var description: String { "card ****\(last4)" }
    public var debugDescription: String { description }
}

public enum PaymentInstrument: Sendable {
    case card(CardDetails)
    /// A processor token for recurring charges (a customer's saved payment method).
    case token(String)
}

public struct AuthorizeRequest: Sendable {
    public var paymentId: String
    public var attemptId: String
    public var amount: Int
    public var currency: String
    public var instrument: PaymentInstrument
    public var captureManually: Bool

    public init(paymentId: String, attemptId: String, amount: Int, currency: String, instrument: PaymentInstrument, captureManually: Bool) {
        self.paymentId = paymentId
        self.attemptId = attemptId
        self.amount = amount
        self.currency = currency
        self.instrument = instrument
        self.captureManually = captureManually
    }
}

public struct CaptureRequest: Sendable {
    public var paymentId: String
    public var connectorTransactionId: String
    public var amount: Int
    public var currency: String
}

public struct VoidRequest: Sendable {
    public var paymentId: String
    public var connectorTransactionId: String
}

public struct SyncRequest: Sendable {
    public var paymentId: String
    public var attemptId: String
    public var connectorTransactionId: String?
}

public struct RefundRequest: Sendable {
    public var refundId: String
    public var connectorTransactionId: String
    public var amount: Int
    public var currency: String
}

/// What a processor said, in Paywire's terms.
public struct ConnectorResult: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case authorized, charged, pending, declined, voided
    }

    public var status: Status
    public var connectorTransactionId: String?
    public var error: ConnectorDecline?

    public init(status: Status, connectorTransactionId: String?, error: ConnectorDecline? = nil) {
        self.status = status
        self.connectorTransactionId = connectorTransactionId
        self.error = error
    }
}

public struct ConnectorRefundResult: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable { case succeeded, failed, pending }
    public var status: Status
    public var connectorRefundId: String?
    public var error: ConnectorDecline?
}

/// A decline as the processor gave it, and as Paywire reports it.
public struct ConnectorDecline: Sendable, Equatable {
    /// Paywire's code, e.g. `insufficient_funds`.
    public var code: String
    public var message: String
    /// The processor's raw decline code, kept for recovery decisions.
    public var rawCode: String?
    public var unifiedCode: String
    public var unifiedMessage: String

    public init(code: String, message: String, rawCode: String? = nil) {
        self.code = code
        self.message = message
        self.rawCode = rawCode
        let unified = UnifiedDecline.for(code)
        unifiedCode = unified.code
        unifiedMessage = unified.message
    }

    /// Hard declines are never retried on the same card (card-network rules).
    public var isHard: Bool { UnifiedDecline.hardDeclines.contains(code) }
}

/// Paywire's connector-neutral decline codes, so merchants and the recovery scheduler read one
/// vocabulary whatever the processor.
public enum UnifiedDecline {
    public static let hardDeclines: Set<String> = [
        "stolen_card", "lost_card", "pickup_card", "invalid_account", "card_not_supported", "fraudulent", "expired_card", "incorrect_number",
    ]

    static let table: [String: (String, String)] = [
        "generic_decline": ("UE_1000", "The card was declined"),
        "insufficient_funds": ("UE_1001", "Insufficient funds"),
        "lost_card": ("UE_1002", "The card was reported lost"),
        "stolen_card": ("UE_1003", "The card was reported stolen"),
        "expired_card": ("UE_1004", "The card has expired"),
        "incorrect_cvc": ("UE_1005", "The card's security code is incorrect"),
        "processing_error": ("UE_2000", "The processor could not complete the payment; try again"),
        "issuer_unavailable": ("UE_2001", "The card issuer could not be reached; try again"),
        "do_not_honor": ("UE_1006", "The card issuer declined the payment"),
        "fraudulent": ("UE_1007", "The payment was declined as fraudulent"),
    ]

    public static func `for`(_ code: String) -> (code: String, message: String) {
        let entry = table[code] ?? ("UE_9000", "The payment could not be completed")
        return (entry.0, entry.1)
    }
}
