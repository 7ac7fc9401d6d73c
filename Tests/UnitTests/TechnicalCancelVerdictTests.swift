import Testing
@testable import PaymentCore

/// An authorisation never answered, cancelled by reference: the cancel's report and the
/// authorisation's arrive in either order, and every order ends the same way.
@Suite struct TechnicalCancelVerdictTests {
    typealias Verdict = PaymentOperations.TechnicalCancelVerdict

    func verdict(_ result: ConnectorResult, waiting: ConnectorResult.Modification? = .technicalCancel, seen: Bool = false, automatic: Bool = true) -> Verdict {
        PaymentOperations.technicalCancelVerdict(waiting: waiting, result: result, authorisationSeen: seen, automaticCapture: automatic, amount: 700)
    }

    let cancelled = ConnectorResult(status: .voided, connectorTransactionId: nil, modification: .technicalCancel)
    let cancelRefused = ConnectorResult(status: .declined, connectorTransactionId: "PSP1", modification: .technicalCancel)
    let authorised = ConnectorResult(status: .authorized, connectorTransactionId: "PSP1", amountReceived: 700)

    @Test func theCancelTakenFailsThePaymentWhateverTheAuthorisationSaid() {
        #expect(verdict(cancelled) == .apply(.declined, PaymentOperations.unansweredAuthorisation))
        #expect(verdict(cancelled, seen: true) == .apply(.declined, PaymentOperations.unansweredAuthorisation))
        // An authorisation reported while the cancel is under way is held, not announced.
        #expect(verdict(authorised) == .hold)
        #expect(verdict(ConnectorResult(status: .charged, connectorTransactionId: "PSP1")) == .hold)
        // The cancel reported first: the payment has failed, and a late authorisation is old news
        // to the state machine (a failed payment takes no charge).
        #expect((try? PaymentStateMachine.apply(.charged(amount: 700), to: .failed)) == nil)
    }

    @Test func aRefusedCancelAfterAnAuthorisationMeansTheMoneyMoved() {
        #expect(verdict(cancelRefused, seen: true, automatic: true) == .apply(.charged(amount: 700), nil))
        #expect(verdict(cancelRefused, seen: true, automatic: false) == .apply(.authorized, nil))
        // No authorisation seen: wait for its report (or the overdue hand-over).
        #expect(verdict(cancelRefused, seen: false) == .resume)
    }

    @Test func aRefusedAuthorisationFailsAtOnceAndStrayReportsChangeNothing() {
        let refused = ConnectorResult(status: .declined, connectorTransactionId: "PSP1", error: ConnectorDecline(code: "generic_decline", message: "Refused"))
        #expect(verdict(refused) == .apply(.declined, refused.error))
        #expect(verdict(ConnectorResult(status: .unresolved, connectorTransactionId: nil)) == .apply(.review, nil))
        // A cancel report for an attempt not waiting on one (a repeat, or after it settled).
        #expect(verdict(cancelled, waiting: nil) == .ignore)
        #expect(verdict(cancelled, waiting: .cancel) == .ignore)
        #expect(verdict(ConnectorResult(status: .charged, connectorTransactionId: "PSP1", modification: .capture)) == .ignore)
    }
}
