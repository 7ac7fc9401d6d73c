import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// `POST /webhooks/{merchant_id}/{connector name or mca id}`: a connector telling us about a
/// payment, a refund or a dispute. The signature is checked with the connector account's secret before
/// anything is read; the change goes through the same outcome path as calls and status syncs,
/// so duplicates and out-of-order deliveries are harmless. Answers fast: one transaction.
struct IncomingWebhookRoutes: Sendable {
    let operations: PaymentOperations
    let logger: Logger
    let received = Counter(label: "paywire_incoming_webhooks_total")
    let rejected = Counter(label: "paywire_incoming_webhooks_rejected_total")

    func add(to router: Router<PaywireRequestContext>) {
        router.post("/webhooks/:merchant_id/:connector") { request, context in
            try await handle(request, context: context)
        }
    }

    func handle(_ request: Request, context: PaywireRequestContext) async throws -> Response {
        let merchantId = try context.pathParameter("merchant_id")
        let reference = try context.pathParameter("connector")
        let body = try await RequestObject.body(of: request, context: context)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName.lowercased()] = field.value }
        let webhook = IncomingWebhook(headers: headers, body: Array(buffer: body))
        received.increment()

        let accounts = try await operations.accounts.accounts(merchantId: merchantId, reference: reference)
        // An unknown merchant or account gets the very answer a bad signature gets: the route
        // must not tell a stranger which merchants and connectors exist.
        guard !accounts.isEmpty else { throw unverified(merchantId: merchantId, reference: reference, reason: "no such connector account") }
        // Several accounts of one connector: the signature tells which one sent it.
        var decoded: (ConnectorAccount, any Connector, [IncomingWebhookEvent])?
        var lastError: IncomingWebhookError = .missingSecret
        for account in accounts {
            guard let connector = operations.connectors.connector(named: account.connectorName), connector.capabilities.incomingWebhooks else {
                if decoded == nil, case .missingSecret = lastError { lastError = .notSupported }
                continue
            }
            do {
                decoded = (account, connector, try connector.decodeWebhook(webhook, secret: account.webhookSecret))
                break
            } catch let error as IncomingWebhookError {
                lastError = error
            }
        }
        guard let (account, connector, events) = decoded else {
            switch lastError {
            case .malformed(let reason):
                rejected.increment()
                throw APIError.invalid("body", reason, code: "WE_04")
            case .notSupported, .missingSecret, .badSignature:
                throw unverified(merchantId: merchantId, reference: reference, reason: "\(lastError)")
            }
        }
        // Each item in its own transaction, in the order sent: a repeat or an older report
        // changes nothing, so a batch retried after a partial failure is applied safely again.
        var applied = 0
        for event in events where try await apply(event, account: account) { applied += 1 }
        if let acknowledgement = connector.webhookAcknowledgement {
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: acknowledgement)))
        }
        guard !events.isEmpty else { return Self.answer(["received": .bool(true), "applied": .bool(false), "reason": .string("event type not used by Paywire")]) }
        return Self.answer(["received": .bool(true), "applied": .bool(applied > 0)])
    }

    /// Applies one reported change; false when it names nothing Paywire holds.
    func apply(_ event: IncomingWebhookEvent, account: ConnectorAccount) async throws -> Bool {
        let source = "webhook \(event.connectorEventId)"
        switch event.subject {
        case .payment(let transactionId, let attemptId, let paymentId, let result):
            guard let attemptId = try await operations.findAttempt(attemptId: attemptId, transactionId: transactionId, paymentId: paymentId, account: account)?.attemptId else {
                return false
            }
            try await operations.applyAttemptOutcome(attemptId: attemptId, result: result, source: source)
            return true
        case .refund(let connectorRefundId, let refundId, let result):
            guard let refundId = try await findRefund(refundId: refundId, connectorRefundId: connectorRefundId, account: account) else { return false }
            try await operations.applyRefundOutcome(refundId: refundId, result: result, source: source)
            return true
        case .dispute(let report):
            return try await operations.applyDisputeReport(report, account: account, source: source)
        }
    }

    /// One answer for every webhook that cannot be verified; why is only in the log.
    func unverified(merchantId: String, reference: String, reason: String) -> APIError {
        rejected.increment()
        logger.warning("incoming webhook rejected", metadata: ["merchant_id": .string(merchantId), "connector": .string(reference), "reason": .string(reason)])
        return APIError(status: .unauthorized, type: "invalid_request", code: "WE_01", message: "Webhook source verification failed", field: nil)
    }

    func findRefund(refundId: String?, connectorRefundId: String, account: ConnectorAccount) async throws -> String? {
        let rows = try await operations.postgres.query("""
            SELECT refund_id FROM payments.refunds
            WHERE merchant_id = \(account.merchantId) AND merchant_connector_id = \(account.merchantConnectorId)
              AND (refund_id = \(refundId ?? "") OR (connector = \(account.connectorName) AND connector_refund_id = \(connectorRefundId)))
            LIMIT 1
            """, logger: logger)
        for try await id in rows.decode(String.self) { return id }
        return nil
    }

    static func answer(_ fields: [String: JSONValue]) -> Response {
        (try? JSONResponse(.object(fields)).response()) ?? Response(status: .internalServerError)
    }
}
