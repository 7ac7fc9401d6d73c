import AsyncHTTPClient
import Foundation
import NIOHTTP1
import PaywireModels
import PaywireRuntime

/// Adyen's Checkout API v68 (the subset Paywire uses) and its Dispute Service v30. Bodies are
/// JSON; the account's `BodyKey` gives the API key (`X-API-Key`) and, as `key1`, the merchant
/// account every body names.
///
/// Adyen differs from Stripe in three ways the rest of Paywire sees: an authorisation is one
/// call, guarded by an `Idempotency-Key` so a repeat never charges twice; captures, cancels and
/// refunds are only `received` — how they ended comes by notification, so the payment stays
/// `processing` (the refund `pending`) until then; and nothing can be looked up afterwards, so a
/// report that never comes is reported overdue rather than asked about (`statusLookup: false`),
/// except an authorisation that was never answered, which is cancelled by our reference.
public struct AdyenConnector: Connector, HTTPConnectorIntegration {
    public let name = "adyen"
    public let capabilities = ConnectorCapabilities(paymentMethods: ["card"], manualCapture: true, refunds: true, incomingWebhooks: true, statusLookup: false,
                                                           cancelByReference: true)
    public static let environmentKeys = ["PAYWIRE_ADYEN_BASE_URL", "PAYWIRE_ADYEN_DISPUTE_BASE_URL"]
    static let version = "v68"

    let executor: ConnectorHTTPExecutor
    let disputes: ConnectorHTTPExecutor

    public init(baseURL: String, disputeBaseURL: String, http: HTTPClient, timeout: Duration) {
        executor = ConnectorHTTPExecutor(baseURL: baseURL, http: http, timeout: timeout)
        disputes = executor.on(baseURL: disputeBaseURL)
    }

    public init(environment: [String: String], http: HTTPClient, timeout: Duration) throws {
        func url(_ key: String, default fallback: String) throws -> String {
            let value = environment[key].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
            guard let url = URL(string: value), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ServiceConfiguration.ConfigurationError(key: key, reason: "an http(s) URL")
            }
            return value
        }
        let base = try url("PAYWIRE_ADYEN_BASE_URL", default: "https://checkout-test.adyen.com")
        // The fake serves both APIs on one port; Adyen's test disputes are on ca-test.
        let disputeBase = try url("PAYWIRE_ADYEN_DISPUTE_BASE_URL", default: environment["PAYWIRE_ADYEN_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://ca-test.adyen.com")
        self.init(baseURL: base, disputeBaseURL: disputeBase, http: http, timeout: timeout)
    }

    public var webhookAcknowledgement: String? { "[accepted]" }

    // MARK: Calls: build the request, handle the response

    public enum Call: Sendable {
        case authorise(AuthorizeRequest)
        case capture(CaptureRequest)
        case cancel(VoidRequest)
        /// `POST /cancels` by our reference: Adyen's answer for a payment whose pspReference we
        /// never learned (the authorisation's answer was lost, or never sent).
        case technicalCancel(UnansweredAuthorisation)
        case refund(RefundRequest)
        case acceptDispute(DisputeRequest)
        /// Text evidence as one defence document, then the defence itself.
        case supplyDefenseDocument(DisputeEvidenceRequest)
        case defendDispute(DisputeRequest)
    }

    /// Adyen's answer: an object, a refusal of the request itself (4xx with `errorCode`), or
    /// nothing that says what happened (no answer, 5xx, 429).
    public enum Answer: Sendable, Equatable {
        case object(JSONValue)
        case failed(ConnectorDecline)
        case unknown
    }

    public func buildRequest(_ call: Call, credentials: ConnectorCredentials) -> ConnectorHTTPRequest {
        var apiKey = ""
        var merchantAccount = ""
        if case .bodyKey(let key, let key1) = credentials { (apiKey, merchantAccount) = (key, key1) }
        func post(_ path: String, idempotencyKey: String?, _ body: [String: JSONValue]) -> ConnectorHTTPRequest {
            var headers = ["X-API-Key": apiKey]
            if let idempotencyKey { headers["Idempotency-Key"] = idempotencyKey }
            return ConnectorHTTPRequest(method: .POST, path: path, headers: headers, json: .object(body))
        }
        func amount(_ value: Int, _ currency: String) -> JSONValue {
            .object(["currency": .string(currency.uppercased()), "value": .number(Double(value))])
        }
        let account = JSONValue.string(merchantAccount)
        switch call {
        case .authorise(let request):
            var body: [String: JSONValue] = [
                "amount": amount(request.amount, request.currency), "merchantAccount": account,
                "reference": .string(request.paymentId),
                // Our attempt id comes back in notifications' additionalData.metadata.
                "metadata": .object(["attempt_id": .string(request.attemptId)]),
            ]
            switch request.instrument {
            case .card(let card):
                var method: [String: JSONValue] = [
                    "type": .string("scheme"), "number": .string(card.number), "expiryMonth": .string(card.expiryMonth),
                    "expiryYear": .string(card.expiryYear.count == 2 ? "20" + card.expiryYear : card.expiryYear), "cvc": .string(card.cvc),
                ]
                if let holder = card.holderName { method["holderName"] = .string(holder) }
                body["paymentMethod"] = .object(method)
                body["shopperInteraction"] = .string("Ecommerce")
            case .token(let token):
                body["paymentMethod"] = .object(["type": .string("scheme"), "storedPaymentMethodId": .string(token)])
                // A merchant-initiated charge on stored details: nobody is there to authenticate.
                body["shopperInteraction"] = .string(request.offSession ? "ContAuth" : "Ecommerce")
                body["recurringProcessingModel"] = .string("UnscheduledCardOnFile")
            }
            if let shopper = request.customerId { body["shopperReference"] = .string(shopper) }
            if request.captureManually { body["additionalData"] = .object(["manualCapture": .string("true")]) }
            return post("/\(Self.version)/payments", idempotencyKey: request.attemptId, body)
        case .capture(let request):
            return post("/\(Self.version)/payments/\(request.connectorTransactionId)/captures", idempotencyKey: "\(request.connectorTransactionId)-capture-\(request.amount)", [
                "merchantAccount": account, "amount": amount(request.amount, request.currency), "reference": .string(request.paymentId),
            ])
        case .cancel(let request):
            return post("/\(Self.version)/payments/\(request.connectorTransactionId)/cancels", idempotencyKey: "\(request.connectorTransactionId)-cancel", [
                "merchantAccount": account, "reference": .string(request.paymentId),
            ])
        case .technicalCancel(let request):
            return post("/\(Self.version)/cancels", idempotencyKey: "\(request.attemptId)-technical-cancel", [
                "merchantAccount": account, "paymentReference": .string(request.paymentId), "reference": .string(request.paymentId),
            ])
        case .refund(let request):
            return post("/\(Self.version)/payments/\(request.connectorTransactionId)/refunds", idempotencyKey: request.refundId, [
                "merchantAccount": account, "amount": amount(request.amount, request.currency), "reference": .string(request.refundId),
            ])
        case .acceptDispute(let request):
            return post("/ca/services/DisputeService/v30/acceptDispute", idempotencyKey: nil, [
                "disputePspReference": .string(request.connectorDisputeId), "merchantAccountCode": account,
            ])
        case .supplyDefenseDocument(let request):
            let text = request.evidence.keys.sorted().map { "\($0): \(request.evidence[$0]!)" }.joined(separator: "\n")
            return post("/ca/services/DisputeService/v30/supplyDefenseDocument", idempotencyKey: nil, [
                "disputePspReference": .string(request.dispute.connectorDisputeId), "merchantAccountCode": account,
                "defenseDocuments": .array([.object([
                    "content": .string(Data(text.utf8).base64EncodedString()), "contentType": .string("text/plain"),
                    "defenseDocumentTypeCode": .string("DefenseMaterial"),
                ])]),
            ])
        case .defendDispute(let request):
            return post("/ca/services/DisputeService/v30/defendDispute", idempotencyKey: nil, [
                "disputePspReference": .string(request.connectorDisputeId), "merchantAccountCode": account,
                "defenseReasonCode": .string("SupplyDefenseMaterial"),
            ])
        }
    }

    public func handleResponse(_ response: ConnectorHTTPResponse, to call: Call) -> Answer {
        guard case .answered(let status, let body) = response else { return .unknown }
        switch status {
        case 200..<300: return body.map(Answer.object) ?? .unknown
        case 429: return .unknown
        case 400..<500: return .failed(Self.requestRefusal(body ?? .null))
        default: return .unknown
        }
    }

    func perform(_ call: Call, _ credentials: ConnectorCredentials) async -> Answer {
        let request = buildRequest(call, credentials: credentials)
        switch call {
        case .acceptDispute, .supplyDefenseDocument, .defendDispute: return handleResponse(await disputes.execute(request), to: call)
        default: return handleResponse(await executor.execute(request), to: call)
        }
    }

    // MARK: Flows

    public func authorize(_ request: AuthorizeRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        switch await perform(.authorise(request), credentials) {
        case .object(let payment): return Self.result(payment: payment, captureManually: request.captureManually)
        case .failed(let decline): return ConnectorResult(status: .declined, connectorTransactionId: nil, error: decline)
        // The answer is lost; Adyen's AUTHORISATION notification settles it (there is no look-up).
        case .unknown: return ConnectorResult(status: .pending, connectorTransactionId: nil)
        }
    }

    public func capture(_ request: CaptureRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        modificationResult(await perform(.capture(request), credentials), transactionId: request.connectorTransactionId)
    }

    public func void(_ request: VoidRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        modificationResult(await perform(.cancel(request), credentials), transactionId: request.connectorTransactionId)
    }

    /// Adyen documents the technical cancel for an authorisation whose answer is lost: it cancels
    /// the payment with that reference if Adyen has it, and says how in a TECHNICAL_CANCEL
    /// notification.
    public func cancelUnanswered(_ request: UnansweredAuthorisation, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        switch await perform(.technicalCancel(request), credentials) {
        case .object(let body) where body["status"]?.stringValue == "received":
            return ConnectorResult(status: .received, connectorTransactionId: nil, modification: .technicalCancel)
        case .object, .unknown: return ConnectorResult(status: .pending, connectorTransactionId: nil, modification: .technicalCancel)
        case .failed(let decline): return ConnectorResult(status: .declined, connectorTransactionId: nil, error: decline, modification: .technicalCancel)
        }
    }

    /// Adyen has no look-up: nothing new can be learned by asking.
    public func sync(_ request: SyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        ConnectorResult(status: .pending, connectorTransactionId: request.connectorTransactionId)
    }

    public func refund(_ request: RefundRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        switch await perform(.refund(request), credentials) {
        case .object(let answer): return ConnectorRefundResult(status: .pending, connectorRefundId: answer["pspReference"]?.stringValue)
        case .failed(let decline): return ConnectorRefundResult(status: .failed, connectorRefundId: nil, error: decline)
        case .unknown: return ConnectorRefundResult(status: .pending, connectorRefundId: nil)
        }
    }

    /// The refund's answer was lost: asked again under the same `Idempotency-Key`, Adyen answers
    /// what it took (or takes it now, once), which gives the refund's `pspReference`.
    public func syncRefund(_ request: RefundSyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        guard request.connectorRefundId == nil, let original = request.original else {
            return ConnectorRefundResult(status: .pending, connectorRefundId: request.connectorRefundId)
        }
        return try await refund(original, credentials: credentials)
    }

    public func acceptDispute(_ request: DisputeRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer {
        try Self.disputeAnswer(await perform(.acceptDispute(request), credentials), connectorStatus: "Accepted", status: .accepted)
    }

    public func submitEvidence(_ request: DisputeEvidenceRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer {
        _ = try Self.disputeAnswer(await perform(.supplyDefenseDocument(request), credentials), connectorStatus: "DefenseMaterialSupplied", status: nil)
        return try Self.disputeAnswer(await perform(.defendDispute(request.dispute), credentials), connectorStatus: "Defended", status: .challenged)
    }

    struct DisputeCallFailed: Error {}

    /// The Dispute Service answers `disputeServiceResult.success`.
    static func disputeAnswer(_ answer: Answer, connectorStatus: String, status: DisputeStatus?) throws -> DisputeAnswer {
        guard case .object(let body) = answer, body["disputeServiceResult"]?["success"] == .bool(true) else { throw DisputeCallFailed() }
        return DisputeAnswer(connectorStatus: connectorStatus, status: status)
    }

    // MARK: Incoming notifications

    public func decodeWebhook(_ webhook: IncomingWebhook, secret: String?) throws -> [IncomingWebhookEvent] {
        guard let secret, !secret.isEmpty else { throw IncomingWebhookError.missingSecret }
        guard let key = Hex.decode(secret), !key.isEmpty else {
            throw IncomingWebhookError.badSignature("the account's HMAC key is not hex")
        }
        let items = try AdyenNotificationItem.items(in: webhook.body)
        // Every item is verified before any is used: one forged item refuses the request.
        for item in items where !item.hasValidSignature(key: key) {
            throw IncomingWebhookError.badSignature("notification item \(item.pspReference) \(item.eventCode): HMAC does not match")
        }
        return items.compactMap(\.event)
    }

    // MARK: Mapping

    /// A `/payments` answer. `Authorised` is authorized (manual capture) or charged; `Received`
    /// and `Pending` wait for the AUTHORISATION notification; the rest failed.
    static func result(payment: JSONValue, captureManually: Bool) -> ConnectorResult {
        let psp = payment["pspReference"]?.stringValue
        switch payment["resultCode"]?.stringValue {
        case "Authorised":
            return captureManually
                ? ConnectorResult(status: .authorized, connectorTransactionId: psp)
                : ConnectorResult(status: .charged, connectorTransactionId: psp, amountReceived: payment["amount"]?["value"]?.intValue)
        case "Received", "Pending":
            return ConnectorResult(status: .pending, connectorTransactionId: psp)
        case "RedirectShopper", "ChallengeShopper", "IdentifyShopper", "PresentToShopper":
            // Paywire takes no shopper authentication: the payment cannot go on.
            return ConnectorResult(status: .declined, connectorTransactionId: psp, error: ConnectorDecline(
                code: "authentication_required", message: "The issuer asked for shopper authentication, which this integration does not perform",
                processorCode: payment["resultCode"]?.stringValue, processorMessage: "Shopper action required"
            ))
        case "Cancelled":
            return ConnectorResult(status: .declined, connectorTransactionId: psp, error: refusal(reason: "Cancelled", code: "15", raw: nil, advice: nil))
        default:
            return ConnectorResult(status: .declined, connectorTransactionId: psp, error: refusal(
                reason: payment["refusalReason"]?.stringValue ?? payment["resultCode"]?.stringValue ?? "Error",
                code: payment["refusalReasonCode"]?.stringValue ?? (payment["resultCode"]?.stringValue == "Error" ? "0" : "2"),
                raw: payment["additionalData"]?["refusalReasonRaw"]?.stringValue,
                advice: payment["additionalData"]?["merchantAdviceCode"]?.stringValue
            ))
        }
    }

    func modificationResult(_ answer: Answer, transactionId: String) -> ConnectorResult {
        switch answer {
        case .object(let body) where body["status"]?.stringValue == "received":
            return ConnectorResult(status: .received, connectorTransactionId: transactionId)
        case .object, .unknown:
            return ConnectorResult(status: .pending, connectorTransactionId: transactionId)
        case .failed(let decline):
            return ConnectorResult(status: .declined, connectorTransactionId: transactionId, error: decline)
        }
    }

    /// Adyen's refusal reason codes, mapped to Paywire's connector-neutral reasons. The
    /// processor's own code and words are kept as `error_code` / `error_message`.
    static let refusalCodes: [String: String] = [
        "0": "processing_error", "2": "generic_decline", "3": "do_not_honor", "4": "processing_error", "5": "pickup_card",
        "6": "expired_card", "7": "generic_decline", "8": "incorrect_number", "9": "issuer_unavailable", "10": "card_not_supported",
        "12": "insufficient_funds", "14": "fraudulent", "15": "generic_decline", "20": "fraudulent", "22": "fraudulent",
        "24": "incorrect_cvc", "25": "card_not_supported", "27": "do_not_honor", "31": "fraudulent", "42": "issuer_unavailable",
    ]

    /// `refusalReasonRaw` is the scheme's answer (`51 : Insufficient funds`): its code is the
    /// network's; `merchantAdviceCode` (`01: New account information available`) the advice.
    static func refusal(reason: String, code: String, raw: String?, advice: String?) -> ConnectorDecline {
        func leadingCode(_ text: String?) -> String? {
            guard let text, let first = text.split(whereSeparator: { $0 == ":" || $0 == " " }).first, first.allSatisfy(\.isNumber) else { return nil }
            return String(first)
        }
        return ConnectorDecline(
            code: refusalCodes[code] ?? "generic_decline", message: reason,
            rawCode: leadingCode(raw) ?? code, adviceCode: leadingCode(advice),
            processorCode: code, processorMessage: reason
        )
    }

    /// A request Adyen refused outright (`{"status":422,"errorCode":"101","message":"Invalid card number"}`).
    static func requestRefusal(_ body: JSONValue) -> ConnectorDecline {
        let code = body["errorCode"]?.stringValue ?? "unknown"
        let message = body["message"]?.stringValue ?? "Adyen refused the request"
        let neutral: String = switch code {
        case "101": "incorrect_number"
        case "103": "incorrect_cvc"
        case "000", "901", "902", "904", "905": "processing_error"
        default: "processing_error"
        }
        return ConnectorDecline(code: neutral, message: message, rawCode: code, processorCode: code, processorMessage: message)
    }
}
