import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import PaywireModels
import PaywireRuntime

/// Stripe's PaymentIntents API (the subset Paywire uses): create, confirm, capture, cancel,
/// retrieve and search; refunds; signed webhooks. Bodies are form-encoded, the account's
/// `HeaderKey` is the Bearer key, and errors are Stripe error objects with `decline_code`.
///
/// A payment is two calls: create the PaymentIntent (no card), then confirm it with the card.
/// So when the confirm's answer is lost we still hold the intent id and a status sync can ask
/// about it; when even the create's answer is lost, a search by our attempt id (kept in the
/// intent's metadata) finds it or proves it was never made.
public struct StripeConnector: Connector, HTTPConnectorIntegration {
    public let name = "stripe"
    public let capabilities = ConnectorCapabilities(paymentMethods: ["card"], manualCapture: true, refunds: true, incomingWebhooks: true)
    public static let environmentKeys = ["PAYWIRE_STRIPE_BASE_URL"]
    /// Stripe's tolerance for webhook timestamps (replay protection).
    public static let webhookTolerance: TimeInterval = 300

    let executor: ConnectorHTTPExecutor

    public init(baseURL: String, http: HTTPClient, timeout: Duration) {
        executor = ConnectorHTTPExecutor(baseURL: baseURL, http: http, timeout: timeout)
    }

    public init(environment: [String: String], http: HTTPClient, timeout: Duration) throws {
        let base = environment["PAYWIRE_STRIPE_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.stripe.com"
        guard let url = URL(string: base), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_STRIPE_BASE_URL", reason: "an http(s) URL")
        }
        self.init(baseURL: base, http: http, timeout: timeout)
    }

    // MARK: Calls: build the request, handle the response

    /// One HTTP call to Stripe.
    public enum Call: Sendable {
        case createIntent(AuthorizeRequest)
        case confirmIntent(id: String, AuthorizeRequest)
        case captureIntent(CaptureRequest)
        case cancelIntent(VoidRequest)
        case retrieveIntent(id: String)
        case searchIntents(attemptId: String)
        case createRefund(RefundRequest)
        case retrieveRefund(id: String)
        /// Accepting a dispute is closing it (Stripe then counts it lost).
        case closeDispute(id: String)
        /// Evidence fields, submitted at once.
        case submitEvidence(id: String, evidence: [String: String])
    }

    /// Stripe's answer in three kinds: an object, a refusal (4xx with an error object), or
    /// nothing that says what happened (no answer, 5xx, 429, 409).
    public enum Answer: Sendable, Equatable {
        case object(JSONValue)
        case failed(ConnectorDecline)
        case unknown
    }

    public func buildRequest(_ call: Call, credentials: ConnectorCredentials) -> ConnectorHTTPRequest {
        var headers = ["Stripe-Version": "2024-06-20"]
        if case .headerKey(let key) = credentials { headers["Authorization"] = "Bearer \(key)" }
        func post(_ path: String, idempotencyKey: String, _ form: [ConnectorFormField]) -> ConnectorHTTPRequest {
            var headers = headers
            headers["Idempotency-Key"] = idempotencyKey
            return ConnectorHTTPRequest(method: .POST, path: path, headers: headers, form: form)
        }
        switch call {
        case .createIntent(let request):
            return post("/v1/payment_intents", idempotencyKey: request.attemptId + "-create", [
                .init("amount", String(request.amount)),
                .init("currency", request.currency.lowercased()),
                .init("capture_method", request.captureManually ? "manual" : "automatic"),
                .init("payment_method_types[]", "card"),
                .init("metadata[payment_id]", request.paymentId),
                .init("metadata[attempt_id]", request.attemptId),
            ] + (request.customerId.map { [.init("customer", $0)] } ?? []))
        case .confirmIntent(let id, let request):
            var form: [ConnectorFormField]
            switch request.instrument {
            case .card(let card):
                form = [
                    .init("payment_method_data[type]", "card"),
                    .init("payment_method_data[card][number]", card.number),
                    .init("payment_method_data[card][exp_month]", card.expiryMonth),
                    .init("payment_method_data[card][exp_year]", card.expiryYear),
                    .init("payment_method_data[card][cvc]", card.cvc),
                ]
                if let holder = card.holderName { form.append(.init("payment_method_data[billing_details][name]", holder)) }
            case .token(let token):
                form = [.init("payment_method", token)]
                if request.offSession { form.append(.init("off_session", "true")) }
            }
            return post("/v1/payment_intents/\(id)/confirm", idempotencyKey: request.attemptId + "-confirm", form)
        case .captureIntent(let request):
            return post("/v1/payment_intents/\(request.connectorTransactionId)/capture", idempotencyKey: "\(request.connectorTransactionId)-capture-\(request.amount)",
                        [.init("amount_to_capture", String(request.amount))])
        case .cancelIntent(let request):
            return post("/v1/payment_intents/\(request.connectorTransactionId)/cancel", idempotencyKey: "\(request.connectorTransactionId)-cancel", [])
        case .retrieveIntent(let id):
            return ConnectorHTTPRequest(method: .GET, path: "/v1/payment_intents/\(id)", headers: headers)
        case .searchIntents(let attemptId):
            let query = "metadata['attempt_id']:'\(attemptId)'"
            return ConnectorHTTPRequest(method: .GET, path: "/v1/payment_intents/search?query=" + (query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""), headers: headers)
        case .createRefund(let request):
            return post("/v1/refunds", idempotencyKey: request.refundId, [
                .init("payment_intent", request.connectorTransactionId),
                .init("amount", String(request.amount)),
                .init("metadata[refund_id]", request.refundId),
                .init("metadata[payment_id]", request.paymentId),
            ])
        case .retrieveRefund(let id):
            return ConnectorHTTPRequest(method: .GET, path: "/v1/refunds/\(id)", headers: headers)
        case .closeDispute(let id):
            return post("/v1/disputes/\(id)/close", idempotencyKey: "\(id)-close", [])
        case .submitEvidence(let id, let evidence):
            // Hyperswitch's evidence names are Stripe's; `submit=true` sends them for review now.
            let fields = evidence.keys.sorted().map { ConnectorFormField("evidence[\($0)]", evidence[$0]!) }
            return post("/v1/disputes/\(id)", idempotencyKey: "\(id)-evidence-\(fields.count)", fields + [.init("submit", "true")])
        }
    }

    public func handleResponse(_ response: ConnectorHTTPResponse, to call: Call) -> Answer {
        switch response {
        case .noAnswer:
            return .unknown
        case .answered(let status, let body):
            switch status {
            case 200..<300: return body.map(Answer.object) ?? .unknown
            case 409, 429: return .unknown
            case 400..<500: return .failed(Self.decline(from: body?["error"] ?? .null))
            default: return .unknown
            }
        }
    }

    func perform(_ call: Call, _ credentials: ConnectorCredentials, deadline: ContinuousClock.Instant? = nil) async -> Answer {
        handleResponse(await executor.execute(buildRequest(call, credentials: credentials), deadline: deadline), to: call)
    }

    // MARK: Flows

    public func authorize(_ request: AuthorizeRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        // Both calls share one budget, so the caller's cap never fires between them and loses
        // the intent id.
        let deadline = executor.deadline()
        let intentId: String
        switch await perform(.createIntent(request), credentials, deadline: deadline) {
        case .object(let object):
            guard let id = object["id"]?.stringValue else { return ConnectorResult(status: .pending, connectorTransactionId: nil) }
            intentId = id
        case .failed(let error):
            return ConnectorResult(status: .declined, connectorTransactionId: nil, error: error)
        case .unknown:
            return ConnectorResult(status: .pending, connectorTransactionId: nil)
        }
        if let record = request.recordReference {
            do {
                try await record(intentId)
            } catch {
                // Not confirmed, so nothing is charged; the sync finds the unconfirmed intent.
                return ConnectorResult(status: .pending, connectorTransactionId: intentId)
            }
        }
        return result(of: await perform(.confirmIntent(id: intentId, request), credentials, deadline: deadline), intentId: intentId)
    }

    public func capture(_ request: CaptureRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        result(of: await perform(.captureIntent(request), credentials), intentId: request.connectorTransactionId)
    }

    public func void(_ request: VoidRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        result(of: await perform(.cancelIntent(request), credentials), intentId: request.connectorTransactionId)
    }

    public func sync(_ request: SyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        if let intentId = request.connectorTransactionId {
            let answer = await perform(.retrieveIntent(id: intentId), credentials)
            if case .object(let intent) = answer, Self.neverConfirmed(intent, now: Date(), after: abandonAfter) {
                return await abandon(intentId: intentId, paymentId: request.paymentId, credentials: credentials)
            }
            return result(of: answer, intentId: intentId)
        }
        switch await perform(.searchIntents(attemptId: request.attemptId), credentials) {
        case .object(let list):
            guard case .array(let found)? = list["data"], let intent = found.first, let id = intent["id"]?.stringValue else {
                // Stripe's search is eventually consistent: an intent created a moment ago may
                // not be found yet, so an empty answer proves nothing about a charge — except
                // here: with no intent id recorded, no confirm was ever sent (it goes only after
                // the id is saved), so once the create can no longer be under way, nothing was
                // or can be charged. (An intent that shows up later is unconfirmed for good.)
                if let started = request.attemptCreatedAt, Date().timeIntervalSince(started) > TimeInterval(abandonAfter.components.seconds) {
                    return ConnectorResult(status: .declined, connectorTransactionId: nil, error: ConnectorDecline(
                        code: "processing_error", message: "The payment never reached Stripe; nothing was charged",
                        processorCode: "payment_intent_not_created", processorMessage: "No PaymentIntent was confirmed for this attempt"
                    ))
                }
                return ConnectorResult(status: .pending, connectorTransactionId: nil)
            }
            if Self.neverConfirmed(intent, now: Date(), after: abandonAfter) {
                return await abandon(intentId: id, paymentId: request.paymentId, credentials: credentials)
            }
            return Self.result(intent: intent, intentId: id)
        case .failed, .unknown:
            return ConnectorResult(status: .pending, connectorTransactionId: nil)
        }
    }

    /// How long after its start an attempt's calls can no longer be under way: twice the call
    /// timeout and at least 30 s (a call Stripe still works on after ours gave up has ended by
    /// then; the cancel settles an intent either way).
    var abandonAfter: Duration { max(executor.timeout * 2, .seconds(30)) }

    /// An intent created but still unconfirmed long after any confirm of ours could have been
    /// under way: the confirm never reached Stripe (payment-core stopped between the two calls, or
    /// the request was lost). The card is no longer held, so it cannot be confirmed now.
    static func neverConfirmed(_ intent: JSONValue, now: Date, after wait: Duration) -> Bool {
        guard intent["status"]?.stringValue == "requires_payment_method", intent["last_payment_error"] == nil || intent["last_payment_error"] == .null,
              let created = intent["created"]?.intValue else { return false }
        return now.timeIntervalSince1970 - TimeInterval(created) > TimeInterval(wait.components.seconds)
    }

    /// Cancels an intent that was never confirmed, so no late confirm can charge it, and reports
    /// the payment failed (nothing charged). If it was charged meanwhile, that is what is reported.
    func abandon(intentId: String, paymentId: String, credentials: ConnectorCredentials) async -> ConnectorResult {
        switch await perform(.cancelIntent(VoidRequest(paymentId: paymentId, connectorTransactionId: intentId)), credentials) {
        case .object(let intent) where intent["status"]?.stringValue == "canceled":
            return ConnectorResult(status: .declined, connectorTransactionId: intentId, error: ConnectorDecline(
                code: "processing_error", message: "The payment's confirmation never reached Stripe; the PaymentIntent was cancelled and nothing was charged",
                processorCode: "payment_intent_unconfirmed", processorMessage: "PaymentIntent left in requires_payment_method; cancelled by Paywire"
            ))
        case .object(let intent):
            return Self.result(intent: intent, intentId: intentId)
        case .failed, .unknown:
            // Asked again at the next sync.
            return ConnectorResult(status: .pending, connectorTransactionId: intentId)
        }
    }

    public func refund(_ request: RefundRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        refundResult(of: await perform(.createRefund(request), credentials), refundId: nil)
    }

    public func syncRefund(_ request: RefundSyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        if let id = request.connectorRefundId {
            return refundResult(of: await perform(.retrieveRefund(id: id), credentials), refundId: id)
        }
        // The create's answer was lost. Asking again under the same Idempotency-Key is Stripe's
        // way to learn what it did: the stored answer if it ran, 409 while it still runs (unknown
        // for now), and if it never arrived it runs now, once — the refund the merchant asked for.
        guard let original = request.original else { return ConnectorRefundResult(status: .pending, connectorRefundId: nil) }
        return refundResult(of: await perform(.createRefund(original), credentials), refundId: nil)
    }

    public func acceptDispute(_ request: DisputeRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer {
        try disputeAnswer(await perform(.closeDispute(id: request.connectorDisputeId), credentials))
    }

    public func submitEvidence(_ request: DisputeEvidenceRequest, credentials: ConnectorCredentials) async throws -> DisputeAnswer {
        try disputeAnswer(await perform(.submitEvidence(id: request.dispute.connectorDisputeId, evidence: request.evidence), credentials))
    }

    func disputeAnswer(_ answer: Answer) throws -> DisputeAnswer {
        guard case .object(let dispute) = answer, let status = dispute["status"]?.stringValue else { throw DisputeCallFailed() }
        // Closing answers `lost`: for Paywire the merchant accepted it.
        let mapped: DisputeStatus? = status == "lost" ? .accepted : Self.disputeStatus(status)
        return DisputeAnswer(connectorStatus: status, status: mapped)
    }

    struct DisputeCallFailed: Error {}

    // MARK: Incoming webhooks

    /// A Stripe request carries one event.
    public func decodeWebhook(_ webhook: IncomingWebhook, secret: String?) throws -> [IncomingWebhookEvent] {
        try decodeEvent(webhook, secret: secret).map { [$0] } ?? []
    }

    func decodeEvent(_ webhook: IncomingWebhook, secret: String?) throws -> IncomingWebhookEvent? {
        guard let secret, !secret.isEmpty else { throw IncomingWebhookError.missingSecret }
        try Self.verifySignature(header: webhook.headers["stripe-signature"], body: webhook.body, secret: secret, now: webhook.receivedAt)
        guard let event = try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(webhook.body)),
              let eventId = event["id"]?.stringValue, let type = event["type"]?.stringValue,
              let object = event["data"]?["object"], let objectId = object["id"]?.stringValue else {
            throw IncomingWebhookError.malformed("not a Stripe event object")
        }
        switch type {
        case "payment_intent.succeeded", "payment_intent.amount_capturable_updated", "payment_intent.payment_failed",
             "payment_intent.canceled", "payment_intent.processing":
            let result = Self.result(intent: object, intentId: objectId)
            return IncomingWebhookEvent(connectorEventId: eventId, subject: .payment(connectorTransactionId: objectId, attemptId: object["metadata"]?["attempt_id"]?.stringValue, result: result))
        case "refund.created", "refund.updated", "refund.failed", "charge.refund.updated":
            let result = Self.refundResult(refund: object)
            return IncomingWebhookEvent(connectorEventId: eventId, subject: .refund(connectorRefundId: objectId, refundId: object["metadata"]?["refund_id"]?.stringValue, result: result))
        case "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated":
            guard let report = Self.disputeReport(type: type, dispute: object, disputeId: objectId) else {
                throw IncomingWebhookError.malformed("a Stripe dispute needs payment_intent, amount, currency and status")
            }
            return IncomingWebhookEvent(connectorEventId: eventId, subject: .dispute(report))
        default:
            return nil
        }
    }

    /// `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]`; any v1 may
    /// match (Stripe sends several while a secret rolls). Timestamps older or newer than the
    /// tolerance are refused, so a captured request cannot be replayed later.
    static func verifySignature(header: String?, body: [UInt8], secret: String, now: Date) throws {
        guard let header else { throw IncomingWebhookError.badSignature("missing Stripe-Signature header") }
        var timestamp: String?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = pair[1] }
            if pair[0] == "v1" { signatures.append(pair[1]) }
        }
        guard let timestamp, let seconds = TimeInterval(timestamp), !signatures.isEmpty else {
            throw IncomingWebhookError.badSignature("Stripe-Signature needs t= and v1=")
        }
        guard abs(now.timeIntervalSince1970 - seconds) <= webhookTolerance else {
            throw IncomingWebhookError.badSignature("timestamp outside the 300 s tolerance")
        }
        let key = SymmetricKey(data: Data(secret.utf8))
        let signed = Data(timestamp.utf8) + Data(".".utf8) + Data(body)
        for signature in signatures {
            if let bytes = Hex.decode(signature), bytes.count == 32,
               HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: signed, using: key) {
                return
            }
        }
        throw IncomingWebhookError.badSignature("no v1 signature matches")
    }

    /// What a test or the fake processor signs with.
    public static func signatureHeader(body: [UInt8], secret: String, timestamp: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).".utf8) + Data(body), using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=" + Hex.encode(mac)
    }

    // MARK: Mapping

    /// Stripe's dispute statuses (Hyperswitch's mapping; `needs_response` and `under_review`,
    /// which Hyperswitch leaves unmapped, as opened and challenged).
    static func disputeStatus(_ status: String) -> DisputeStatus? {
        switch status {
        case "warning_needs_response", "needs_response": return .opened
        case "warning_closed": return .cancelled
        case "warning_under_review", "under_review": return .challenged
        case "won": return .won
        case "lost": return .lost
        default: return nil
        }
    }

    /// A `charge.dispute.*` event's dispute. An inquiry (`warning_*`) is the pre-dispute stage.
    static func disputeReport(type: String, dispute: JSONValue, disputeId: String) -> DisputeReport? {
        guard let intentId = dispute["payment_intent"]?.stringValue, let amount = dispute["amount"]?.intValue,
              let currency = dispute["currency"]?.stringValue, let status = dispute["status"]?.stringValue else { return nil }
        let mapped: DisputeStatus? = switch type {
        case "charge.dispute.created": .opened
        case "charge.dispute.funds_withdrawn": .lost
        case "charge.dispute.funds_reinstated": .won
        case "charge.dispute.closed": ["won", "lost", "warning_closed"].contains(status) ? disputeStatus(status) : .cancelled
        default: disputeStatus(status)
        }
        func date(_ value: JSONValue?) -> Date? { value?.intValue.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
        return DisputeReport(
            connectorDisputeId: disputeId, connectorTransactionId: intentId, amount: amount, currency: currency.uppercased(),
            stage: status.hasPrefix("warning_") ? .preDispute : .dispute, status: mapped, connectorStatus: status,
            connectorReason: dispute["reason"]?.stringValue, connectorReasonCode: dispute["network_reason_code"]?.stringValue,
            challengeRequiredBy: date(dispute["evidence_details"]?["due_by"]), connectorCreatedAt: date(dispute["created"]), connectorUpdatedAt: Date()
        )
    }

    func result(of answer: Answer, intentId: String) -> ConnectorResult {
        switch answer {
        case .object(let intent): return Self.result(intent: intent, intentId: intentId)
        case .failed(let decline): return ConnectorResult(status: .declined, connectorTransactionId: intentId, error: decline)
        case .unknown: return ConnectorResult(status: .pending, connectorTransactionId: intentId)
        }
    }

    static func result(intent: JSONValue, intentId: String) -> ConnectorResult {
        let received = intent["amount_received"]?.intValue
        switch intent["status"]?.stringValue {
        case "succeeded": return ConnectorResult(status: .charged, connectorTransactionId: intentId, amountReceived: received)
        case "requires_capture": return ConnectorResult(status: .authorized, connectorTransactionId: intentId)
        case "canceled": return ConnectorResult(status: .voided, connectorTransactionId: intentId)
        case "requires_payment_method":
            if let error = intent["last_payment_error"], error != .null {
                return ConnectorResult(status: .declined, connectorTransactionId: intentId, error: decline(from: error))
            }
            return ConnectorResult(status: .pending, connectorTransactionId: intentId)
        default:
            return ConnectorResult(status: .pending, connectorTransactionId: intentId)
        }
    }

    func refundResult(of answer: Answer, refundId: String?) -> ConnectorRefundResult {
        switch answer {
        case .object(let refund): return Self.refundResult(refund: refund)
        case .failed(let decline): return ConnectorRefundResult(status: .failed, connectorRefundId: refundId, error: decline)
        case .unknown: return ConnectorRefundResult(status: .pending, connectorRefundId: refundId)
        }
    }

    static func refundResult(refund: JSONValue) -> ConnectorRefundResult {
        let id = refund["id"]?.stringValue
        switch refund["status"]?.stringValue {
        case "succeeded": return ConnectorRefundResult(status: .succeeded, connectorRefundId: id)
        case "failed", "canceled":
            let reason = refund["failure_reason"]?.stringValue ?? "refund_failed"
            return ConnectorRefundResult(status: .failed, connectorRefundId: id, error: ConnectorDecline(code: reason, message: "The processor could not refund the payment (\(reason))", rawCode: reason))
        default: return ConnectorRefundResult(status: .pending, connectorRefundId: id)
        }
    }

    /// Stripe puts its own reason in `code` (`card_declined`), the issuer's in `decline_code`, and
    /// the card network's in `network_decline_code` / `network_advice_code`. The payment shows
    /// Stripe's code, and its message with the decline code (as Hyperswitch does); the
    /// connector-neutral reason is the decline code where there is one.
    static func decline(from error: JSONValue) -> ConnectorDecline {
        let declineCode = error["decline_code"]?.stringValue
        let code = error["code"]?.stringValue
        let message = error["message"]?.stringValue ?? "The card was declined"
        let paywireCode: String
        switch (declineCode, code) {
        case (let decline?, _): paywireCode = decline
        case (nil, "card_declined"?): paywireCode = "generic_decline"
        case (nil, let code?): paywireCode = code
        default: paywireCode = "processing_error"
        }
        return ConnectorDecline(
            code: paywireCode, message: message,
            rawCode: error["network_decline_code"]?.stringValue ?? declineCode ?? code,
            adviceCode: error["network_advice_code"]?.stringValue,
            processorCode: code ?? paywireCode,
            processorMessage: declineCode.map { "message - \(message), decline_code - \($0)" } ?? message
        )
    }
}
