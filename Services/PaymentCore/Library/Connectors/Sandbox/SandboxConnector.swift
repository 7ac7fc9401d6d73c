/// An in-process processor for development and tests, deterministic by card number (and by the
/// same numbers used as tokens, for recurring charges). It never leaves the process.
public struct SandboxConnector: Connector {
    public let name = "sandbox"
    public let capabilities = ConnectorCapabilities(paymentMethods: ["card"], manualCapture: true, refunds: true, incomingWebhooks: false)

    public init() {}

    /// Numbers that decline, and how.
    static let declines: [String: ConnectorDecline] = [
        "4000000000000002": ConnectorDecline(code: "generic_decline", message: "Your card was declined.", rawCode: "05"),
        "4000000000009995": ConnectorDecline(code: "insufficient_funds", message: "Your card has insufficient funds.", rawCode: "51"),
        "4000000000009987": ConnectorDecline(code: "lost_card", message: "Your card has been declined.", rawCode: "41"),
        "4000000000000069": ConnectorDecline(code: "expired_card", message: "Your card has expired.", rawCode: "54"),
        "4000000000000119": ConnectorDecline(code: "processing_error", message: "An error occurred while processing your card.", rawCode: "96"),
    ]
    static let approved: Set<String> = ["4242424242424242", "4111111111111111"]

    func number(of instrument: PaymentInstrument) -> String {
        switch instrument {
        case .card(let card): return card.number
        case .token(let token): return token.hasPrefix("tok_") ? String(token.dropFirst(4)) : token
        }
    }

    public func authorize(_ request: AuthorizeRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        let number = number(of: request.instrument)
        let transactionId = "sbx_" + request.attemptId
        if let decline = Self.declines[number] {
            return ConnectorResult(status: .declined, connectorTransactionId: transactionId, error: decline)
        }
        guard Self.approved.contains(number) else {
            return ConnectorResult(status: .declined, connectorTransactionId: transactionId, error: ConnectorDecline(code: "incorrect_number", message: "Your card number is incorrect.", rawCode: "14"))
        }
        return ConnectorResult(status: request.captureManually ? .authorized : .charged, connectorTransactionId: transactionId)
    }

    public func capture(_ request: CaptureRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        ConnectorResult(status: .charged, connectorTransactionId: request.connectorTransactionId)
    }

    public func void(_ request: VoidRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        ConnectorResult(status: .voided, connectorTransactionId: request.connectorTransactionId)
    }

    /// The sandbox answers every call at once, so a sync only repeats what is known: pending
    /// never stays pending here.
    public func sync(_ request: SyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        ConnectorResult(status: .pending, connectorTransactionId: request.connectorTransactionId)
    }

    public func refund(_ request: RefundRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        ConnectorRefundResult(status: .succeeded, connectorRefundId: "sbx_" + request.refundId, error: nil)
    }
}
