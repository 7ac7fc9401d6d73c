import PaywireModels
import Synchronization

/// An in-process processor for development and tests, deterministic by card number. Recurring
/// charges use tokens `tok_sandbox_<last4>` that behave like the card with those last four digits
/// (the token never contains the number), and `tok_sandbox_decline<N>x_<last4>[_<anything>]`,
/// which declines like that card the first N times it is charged and then succeeds (a card whose
/// funds come back, for revenue recovery). It never leaves the process; what it charged is kept
/// in memory so that a status sync can answer.
public final class SandboxConnector: Connector {
    public let name = "sandbox"
    public let capabilities = ConnectorCapabilities(paymentMethods: ["card"], manualCapture: true, refunds: true, incomingWebhooks: false)

    /// Outcomes by transaction id, for `sync` after an answer was lost (payment-core crashed
    /// between the call and its commit). A transaction the sandbox never saw was never charged.
    private let ledger = Mutex<[String: ConnectorResult]>([:])
    /// Charges made so far with each declining-then-succeeding token.
    private let tokenCharges = Mutex<[String: Int]>([:])

    public init() {}

    /// Numbers that decline, and how.
    static let declines: [String: ConnectorDecline] = [
        "4000000000000002": ConnectorDecline(code: "generic_decline", message: "Your card was declined.", rawCode: "05"),
        "4000000000009995": ConnectorDecline(code: "insufficient_funds", message: "Your card has insufficient funds.", rawCode: "51"),
        "4000000000009987": ConnectorDecline(code: "lost_card", message: "Your card has been declined.", rawCode: "41"),
        "4000000000000069": ConnectorDecline(code: "expired_card", message: "Your card has expired.", rawCode: "54"),
        "4000000000000119": ConnectorDecline(code: "processing_error", message: "An error occurred while processing your card.", rawCode: "96"),
        "4000000000001091": ConnectorDecline(code: "issuer_unavailable", message: "The card issuer could not be reached.", rawCode: "91"),
        // A Mastercard declined with merchant advice code 21: the cardholder cancelled, never retry.
        "5100000000000321": ConnectorDecline(code: "do_not_honor", message: "Your card was declined.", rawCode: "05", adviceCode: "21"),
    ]
    static let approved: Set<String> = ["4242424242424242", "4111111111111111"]
    static let allNumbers = approved.union(declines.keys)

    /// The test card a token stands for.
    static func number(forToken token: String) -> String? {
        guard token.hasPrefix("tok_sandbox_") else { return nil }
        let last4 = token.dropFirst("tok_sandbox_".count)
        return allNumbers.first { $0.hasSuffix(last4) }
    }

    func number(of instrument: PaymentInstrument) -> String? {
        switch instrument {
        case .card(let card): return card.number
        case .token(let token): return Self.number(forToken: token)
        }
    }

    /// For `tok_sandbox_decline<N>x_<last4>…`: the card it behaves like on this charge (the
    /// declining card for the first N charges, an approved one after), counting the charge.
    func chargeNumber(of instrument: PaymentInstrument) -> String? {
        guard case .token(let token) = instrument, token.hasPrefix("tok_sandbox_decline") else { return number(of: instrument) }
        let parts = token.dropFirst("tok_sandbox_decline".count).split(separator: "_")
        guard parts.count >= 2, parts[0].hasSuffix("x"), let declines = Int(parts[0].dropLast()), parts[1].count == 4,
              let card = Self.allNumbers.first(where: { $0.hasSuffix(parts[1]) }) else { return nil }
        let made = tokenCharges.withLock { charges in
            defer { charges[token, default: 0] += 1 }
            return charges[token, default: 0]
        }
        return made < declines ? card : "4242424242424242"
    }

    public func authorize(_ request: AuthorizeRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        let transactionId = "sbx_" + request.attemptId
        let result: ConnectorResult
        let number = chargeNumber(of: request.instrument)
        if let number, let decline = Self.declines[number] {
            result = ConnectorResult(status: .declined, connectorTransactionId: transactionId, error: decline)
        } else if let number, Self.approved.contains(number) {
            result = ConnectorResult(status: request.captureManually ? .authorized : .charged, connectorTransactionId: transactionId, amountReceived: request.captureManually ? 0 : request.amount)
        } else if case .token = request.instrument {
            result = ConnectorResult(status: .declined, connectorTransactionId: transactionId, error: ConnectorDecline(code: "invalid_account", message: "The payment token is not valid.", rawCode: "14"))
        } else {
            result = ConnectorResult(status: .declined, connectorTransactionId: transactionId, error: ConnectorDecline(code: "incorrect_number", message: "Your card number is incorrect.", rawCode: "14"))
        }
        ledger.withLock { $0[transactionId] = result }
        return result
    }

    public func capture(_ request: CaptureRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        let result = ConnectorResult(status: .charged, connectorTransactionId: request.connectorTransactionId, amountReceived: request.amount)
        ledger.withLock { $0[request.connectorTransactionId] = result }
        return result
    }

    public func void(_ request: VoidRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        let result = ConnectorResult(status: .voided, connectorTransactionId: request.connectorTransactionId)
        ledger.withLock { $0[request.connectorTransactionId] = result }
        return result
    }

    public func sync(_ request: SyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult {
        let transactionId = request.connectorTransactionId ?? "sbx_" + request.attemptId
        if let known = ledger.withLock({ $0[transactionId] }) { return known }
        return ConnectorResult(
            status: .declined, connectorTransactionId: transactionId,
            error: ConnectorDecline(code: "processing_error", message: "The sandbox has no record of this payment; nothing was charged.", rawCode: "96")
        )
    }

    public func refund(_ request: RefundRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        ConnectorRefundResult(status: .succeeded, connectorRefundId: "sbx_" + request.refundId)
    }

    public func syncRefund(_ request: RefundSyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult {
        ConnectorRefundResult(status: .succeeded, connectorRefundId: request.connectorRefundId ?? "sbx_" + request.refundId)
    }
}
