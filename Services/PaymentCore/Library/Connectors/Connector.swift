import Foundation
import PaywireModels

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
    func syncRefund(_ request: RefundSyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult
    /// Verifies an incoming webhook with the connector account's secret and says what it
    /// reports: one event per item the request carries (Adyen batches several), none for events
    /// Paywire does not act on. Every item is verified before any is returned, so a request with
    /// one forged item is refused whole. Throws `IncomingWebhookError`.
    func decodeWebhook(_ webhook: IncomingWebhook, secret: String?) throws -> [IncomingWebhookEvent]
    /// The plain-text body the processor expects as the answer to a webhook it sent (Adyen:
    /// `[accepted]`); nil answers Paywire's JSON.
    var webhookAcknowledgement: String? { get }
    /// Tells the processor the merchant accepts a dispute (it is lost; nothing is defended).
    func acceptDispute(_ request: DisputeRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer
    /// Sends the merchant's text evidence and submits it (the dispute is then challenged).
    func submitEvidence(_ request: DisputeEvidenceRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer
    /// Cancels, by our own reference, an authorisation whose answer never came (Adyen's
    /// technical cancel): the processor may or may not have it, and it has no look-up. `received`
    /// when taken (how it ended comes by webhook, as a `technicalCancel` modification), `pending`
    /// when the answer was lost, `declined` when refused. Only with `capabilities.cancelByReference`.
    func cancelUnanswered(_ request: UnansweredAuthorisation, credentials: ConnectorCredentials) async throws -> ConnectorResult
}

extension Connector {
    public func decodeWebhook(_ webhook: IncomingWebhook, secret: String?) throws -> [IncomingWebhookEvent] {
        throw IncomingWebhookError.notSupported
    }

    public var webhookAcknowledgement: String? { nil }

    public func acceptDispute(_ request: DisputeRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer {
        throw ConnectorFlowNotSupported(flow: "dispute accept")
    }

    public func submitEvidence(_ request: DisputeEvidenceRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer {
        throw ConnectorFlowNotSupported(flow: "dispute evidence")
    }

    public func cancelUnanswered(_ request: UnansweredAuthorisation, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        throw ConnectorFlowNotSupported(flow: "cancel by reference")
    }
}

/// An authorisation sent (or perhaps sent) without an answer: the reference it carried, and the
/// attempt, whose id keys the cancel so a repeat is the same request.
public struct UnansweredAuthorisation: Sendable, Equatable {
    public var paymentId: String
    public var attemptId: String

    public init(paymentId: String, attemptId: String) {
        self.paymentId = paymentId
        self.attemptId = attemptId
    }
}

/// A flow this connector does not have: refused before anything is sent.
public struct ConnectorFlowNotSupported: Error, CustomStringConvertible {
    public var flow: String
    public var description: String { "the connector has no \(flow) flow" }
}

/// A dispute as the processor reports it, in Paywire's terms. `status` nil: the report says
/// nothing Paywire maps to a status (only the processor's own status is recorded).
public struct DisputeReport: Sendable, Equatable {
    public var connectorDisputeId: String
    /// The disputed payment, by the processor's id for it.
    public var connectorTransactionId: String
    public var attemptId: String?
    public var amount: Int
    public var currency: String
    public var stage: DisputeStage
    public var status: DisputeStatus?
    public var connectorStatus: String
    public var connectorReason: String?
    public var connectorReasonCode: String?
    public var challengeRequiredBy: Date?
    public var connectorCreatedAt: Date?
    public var connectorUpdatedAt: Date?

    public init(connectorDisputeId: String, connectorTransactionId: String, attemptId: String? = nil, amount: Int, currency: String, stage: DisputeStage,
                status: DisputeStatus?, connectorStatus: String, connectorReason: String? = nil, connectorReasonCode: String? = nil,
                challengeRequiredBy: Date? = nil, connectorCreatedAt: Date? = nil, connectorUpdatedAt: Date? = nil) {
        self.connectorDisputeId = connectorDisputeId
        self.connectorTransactionId = connectorTransactionId
        self.attemptId = attemptId
        self.amount = amount
        self.currency = currency
        self.stage = stage
        self.status = status
        self.connectorStatus = connectorStatus
        self.connectorReason = connectorReason
        self.connectorReasonCode = connectorReasonCode
        self.challengeRequiredBy = challengeRequiredBy
        self.connectorCreatedAt = connectorCreatedAt
        self.connectorUpdatedAt = connectorUpdatedAt
    }
}

public struct DisputeRequest: Sendable {
    public var disputeId: String
    public var connectorDisputeId: String
    public var paymentId: String
}

public struct DisputeEvidenceRequest: Sendable {
    public var dispute: DisputeRequest
    /// Hyperswitch's text evidence fields (`uncategorized_text`, `product_description`, …) and their values.
    public var evidence: [String: String]
}

/// What the processor answered to an accept or an evidence submission.
public struct DisputeAnswer: Sendable, Equatable {
    public var connectorStatus: String
    /// The status the answer already tells (Stripe's close answers `lost`); nil when it comes later by webhook.
    public var status: DisputeStatus?

    public init(connectorStatus: String, status: DisputeStatus?) {
        self.connectorStatus = connectorStatus
        self.status = status
    }
}

/// A webhook as a connector sent it: headers (lowercased names) and the exact body bytes.
public struct IncomingWebhook: Sendable {
    public var headers: [String: String]
    public var body: [UInt8]
    public var receivedAt: Date

    public init(headers: [String: String], body: [UInt8], receivedAt: Date = Date()) {
        self.headers = headers
        self.body = body
        self.receivedAt = receivedAt
    }
}

public enum IncomingWebhookError: Error, Equatable {
    case notSupported
    case missingSecret
    case badSignature(String)
    case malformed(String)
}

/// What an incoming webhook says, in Paywire's terms.
public struct IncomingWebhookEvent: Sendable, Equatable {
    public enum Subject: Sendable, Equatable {
        /// A payment, by the connector's transaction id and, when the connector echoes it, our
        /// attempt id or the payment id we gave as its reference (Adyen's `merchantReference`).
        case payment(connectorTransactionId: String, attemptId: String?, paymentId: String? = nil, result: ConnectorResult)
        case refund(connectorRefundId: String, refundId: String?, result: ConnectorRefundResult)
        case dispute(DisputeReport)
    }
    public var connectorEventId: String
    public var subject: Subject

    public init(connectorEventId: String, subject: Subject) {
        self.connectorEventId = connectorEventId
        self.subject = subject
    }
}

public struct ConnectorCapabilities: Sendable, Equatable {
    public var paymentMethods: Set<String>
    public var manualCapture: Bool
    /// Whether a capture may take less than the authorized amount.
    public var partialCapture: Bool
    public var refunds: Bool
    public var incomingWebhooks: Bool
    /// Whether the processor can be asked what became of a payment or refund. Without it (Adyen)
    /// an outcome that is not in the call's answer arrives only by webhook, and one that has not
    /// arrived after `PAYWIRE_NOTIFICATION_OVERDUE_SECONDS` is reported instead of asked about.
    public var statusLookup: Bool
    /// Whether an authorisation can be cancelled by our reference when its answer never came
    /// (Adyen's technical cancel): a payment whose answer was lost then ends `failed`, with
    /// nothing charged, instead of waiting for an operator.
    public var cancelByReference: Bool

    public init(paymentMethods: Set<String>, manualCapture: Bool, partialCapture: Bool = true, refunds: Bool, incomingWebhooks: Bool, statusLookup: Bool = true,
                cancelByReference: Bool = false) {
        self.paymentMethods = paymentMethods
        self.manualCapture = manualCapture
        self.partialCapture = partialCapture
        self.refunds = refunds
        self.incomingWebhooks = incomingWebhooks
        self.statusLookup = statusLookup
        self.cancelByReference = cancelByReference
    }
}

/// Credentials from the connector account, opened only for the call (Hyperswitch's auth types).
public enum ConnectorCredentials: Sendable {
    case headerKey(apiKey: String)
    case bodyKey(apiKey: String, key1: String)
    case signatureKey(apiKey: String, key1: String, apiSecret: String)
    case noKey
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
    /// Saves the processor's object id the moment the processor returns it, before any call that
    /// can charge: if that call's answer is lost, the status sync asks about the object by id
    /// (search is eventually consistent, so an empty search proves nothing). A connector must not
    /// go on to charge when this throws.
    public var recordReference: (@Sendable (String) async throws -> Void)?
    /// The processor's customer a saved payment method belongs to (`connector_customer_id`).
    public var customerId: String?
    /// A merchant-initiated charge with nobody present (revenue recovery's retries): the
    /// processor is told so, and no authentication can be asked for.
    public var offSession = false

    public init(paymentId: String, attemptId: String, amount: Int, currency: String, instrument: PaymentInstrument, captureManually: Bool,
                recordReference: (@Sendable (String) async throws -> Void)? = nil) {
        self.paymentId = paymentId
        self.attemptId = attemptId
        self.amount = amount
        self.currency = currency
        self.instrument = instrument
        self.captureManually = captureManually
        self.recordReference = recordReference
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
    /// When the attempt was made: a connector may conclude from its age that a call that never
    /// answered can no longer have charged.
    public var attemptCreatedAt: Date? = nil
}

public struct RefundRequest: Sendable {
    public var refundId: String
    public var paymentId: String
    public var connectorTransactionId: String
    public var amount: Int
    public var currency: String
}

public struct RefundSyncRequest: Sendable {
    public var refundId: String
    public var connectorRefundId: String?
    /// The refund as first asked, so a connector whose answer to the create was lost can ask
    /// again under the same idempotency key (the processor then answers what it did, or does it
    /// now, once).
    public var original: RefundRequest?
}

/// What a processor said, in Paywire's terms.
public struct ConnectorResult: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case authorized, charged, pending, declined, voided
        /// Paywire's own verdict, never a processor's: every sync is spent and the outcome is
        /// still unknown.
        case unresolved
        /// The processor took a capture or a cancel and tells how it ended only by webhook
        /// (Adyen answers `received`): the payment is `processing` until then.
        case received
    }

    /// A change whose outcome a report tells: a capture or cancel asked of an authorized payment,
    /// or the technical cancel of an authorisation that was never answered.
    public enum Modification: String, Sendable, Equatable {
        case capture, cancel
        case technicalCancel = "technical_cancel"
    }

    public var status: Status
    public var connectorTransactionId: String?
    public var error: ConnectorDecline?
    /// What the processor has captured, when it says (partial captures).
    public var amountReceived: Int?
    /// Set when this reports how a capture or cancel ended, not the authorisation: `declined`
    /// then means the capture failed, or the cancel did (the payment is still authorized).
    public var modification: Modification?

    public init(status: Status, connectorTransactionId: String?, error: ConnectorDecline? = nil, amountReceived: Int? = nil, modification: Modification? = nil) {
        self.status = status
        self.connectorTransactionId = connectorTransactionId?.storable
        self.error = error
        self.amountReceived = amountReceived
        self.modification = modification
    }
}

public struct ConnectorRefundResult: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable { case succeeded, failed, pending }
    public var status: Status
    public var connectorRefundId: String?
    public var error: ConnectorDecline?

    public init(status: Status, connectorRefundId: String?, error: ConnectorDecline? = nil) {
        self.status = status
        self.connectorRefundId = connectorRefundId?.storable
        self.error = error
    }
}

/// A decline as the processor gave it, and as Paywire reports it. Payments show the processor's
/// own words in `error_code` / `error_message` (as Hyperswitch does: Stripe's `card_declined`),
/// the connector-neutral reason in `decline_code` and `unified_code` / `unified_message`, and the
/// card network's codes in `network_decline_code` / `network_advice_code`.
public struct ConnectorDecline: Sendable, Equatable {
    /// Paywire's connector-neutral reason, e.g. `insufficient_funds`: what retry decisions read.
    public var code: String
    public var message: String
    /// The processor's raw decline code (the network's, where it passes it on: `51`).
    public var rawCode: String?
    /// The network's merchant advice code (`03`, `21`, `24`…), if the processor passed one on.
    public var adviceCode: String?
    /// The processor's own code and message (Stripe: `card_declined` and its message with the
    /// decline code); Paywire's when the processor is its own sandbox.
    public var processorCode: String
    public var processorMessage: String
    public var unifiedCode: String
    public var unifiedMessage: String

    public init(code: String, message: String, rawCode: String? = nil, adviceCode: String? = nil, processorCode: String? = nil, processorMessage: String? = nil) {
        // What a processor says is recorded as it can be stored, whatever its bytes.
        self.code = code.storable
        self.message = message.storable
        self.rawCode = rawCode?.storable
        self.adviceCode = adviceCode?.storable
        self.processorCode = (processorCode ?? code).storable
        self.processorMessage = (processorMessage ?? message).storable
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
        // Paywire's own: the card left the gateway's memory before the payment could be processed.
        "card_data_unavailable": ("UE_3000", "The card data was no longer available; nothing was charged. Ask for the card again"),
    ]

    public static func `for`(_ code: String) -> (code: String, message: String) {
        let entry = table[code] ?? ("UE_9000", "The payment could not be completed")
        return (entry.0, entry.1)
    }
}
