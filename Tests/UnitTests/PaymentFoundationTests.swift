import Testing
import PaywireModels
@testable import PaymentCore

@Suite struct PaymentStateMachineTests {
    @Test func automaticCaptureFlow() throws {
        #expect(try PaymentStateMachine.apply(.confirm, to: .requiresConfirmation) == .moved(to: .processing))
        #expect(try PaymentStateMachine.apply(.pending, to: .processing) == .unchanged)
        #expect(try PaymentStateMachine.apply(.charged(amount: 100), to: .processing) == .moved(to: .succeeded))
    }

    @Test func manualCaptureFullAndPartial() throws {
        #expect(try PaymentStateMachine.apply(.authorized, to: .processing) == .moved(to: .requiresCapture))
        #expect(try PaymentStateMachine.apply(.captured(amount: 100, of: 100), to: .requiresCapture) == .moved(to: .succeeded))
        #expect(try PaymentStateMachine.apply(.captured(amount: 40, of: 100), to: .requiresCapture) == .moved(to: .partiallyCaptured))
        #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.captured(amount: 101, of: 100), to: .requiresCapture) }
        #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.captured(amount: 0, of: 100), to: .requiresCapture) }
    }

    /// Adyen's captures and cancels: `processing` while the processor decides, then settled by
    /// its report; a refused cancel leaves the payment authorized.
    @Test func modificationsSettledLater() throws {
        #expect(try PaymentStateMachine.apply(.modificationRequested, to: .requiresCapture) == .moved(to: .processing))
        #expect(try PaymentStateMachine.apply(.captured(amount: 40, of: 100), to: .processing) == .moved(to: .partiallyCaptured))
        #expect(try PaymentStateMachine.apply(.cancelConfirmed, to: .processing) == .moved(to: .cancelled))
        #expect(try PaymentStateMachine.apply(.cancelConfirmed, to: .cancelled) == .unchanged)
        #expect(try PaymentStateMachine.apply(.modificationRefused, to: .processing) == .moved(to: .requiresCapture))
        for status in PaymentStatus.allCases where status.isFinal {
            #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.modificationRequested, to: status) }
            #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.modificationRefused, to: status) }
        }
    }

    @Test func finalStatesNeverRegressAndDuplicatesChangeNothing() throws {
        for status in PaymentStatus.allCases where status.isFinal {
            #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.confirm, to: status) }
            #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.pending, to: status) }
            #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.authorized, to: status) }
        }
        // A webhook repeating the outcome a status sync already applied is a duplicate.
        #expect(try PaymentStateMachine.apply(.charged(amount: 5), to: .succeeded) == .unchanged)
        #expect(try PaymentStateMachine.apply(.declined, to: .failed) == .unchanged)
        // A success arriving after a failure (or the reverse) is refused, never applied.
        #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.charged(amount: 5), to: .failed) }
        #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.declined, to: .succeeded) }
        // A second confirm of a payment already processing cannot charge again.
        #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.confirm, to: .processing) }
        #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.cancel, to: .processing) }
    }

    /// An outcome no sync could learn goes to an operator, never to `failed`; the processor's
    /// late word still settles it either way.
    @Test func anUnknownOutcomeGoesToReviewAndALateAnswerSettlesIt() throws {
        #expect(try PaymentStateMachine.apply(.review, to: .processing) == .moved(to: .requiresMerchantAction))
        #expect(!PaymentStatus.requiresMerchantAction.isFinal)
        #expect(try PaymentStateMachine.apply(.pending, to: .requiresMerchantAction) == .unchanged)
        #expect(try PaymentStateMachine.apply(.charged(amount: 5), to: .requiresMerchantAction) == .moved(to: .succeeded))
        #expect(try PaymentStateMachine.apply(.declined, to: .requiresMerchantAction) == .moved(to: .failed))
        #expect(try PaymentStateMachine.apply(.authorized, to: .requiresMerchantAction) == .moved(to: .requiresCapture))
        for status in PaymentStatus.allCases where status.isFinal {
            #expect(throws: PaymentStateMachine.IllegalTransition.self) { try PaymentStateMachine.apply(.review, to: status) }
        }
    }
}

@Suite struct SandboxConnectorTests {
    func authorize(_ number: String, manual: Bool = false) async throws -> ConnectorResult {
        let card = CardDetails(number: number, expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: nil)
        return try await SandboxConnector().authorize(
            AuthorizeRequest(paymentId: "pay_1", attemptId: "pay_1_1", amount: 6540, currency: "USD", instrument: .card(card), captureManually: manual),
            credentials: .noKey
        )
    }

    @Test(arguments: ["4242424242424242", "4111111111111111"])
    func approvedCardsSucceed(number: String) async throws {
        #expect(try await authorize(number).status == .charged)
        #expect(try await authorize(number, manual: true).status == .authorized)
    }

    @Test(arguments: [
        ("4000000000000002", "generic_decline", false),
        ("4000000000009995", "insufficient_funds", false),
        ("4000000000009987", "lost_card", true),
        ("4000000000000069", "expired_card", true),
        ("4000000000000119", "processing_error", false),
    ])
    func decliningCardsDeclineWithTheirCode(number: String, code: String, hard: Bool) async throws {
        let result = try await authorize(number)
        #expect(result.status == .declined)
        #expect(result.error?.code == code)
        #expect(result.error?.isHard == hard)
        #expect(result.error?.unifiedCode.hasPrefix("UE_") == true)
    }

    @Test func tokensBehaveLikeTheirCardNumber() async throws {
        let result = try await SandboxConnector().authorize(
            AuthorizeRequest(paymentId: "p", attemptId: "a", amount: 1, currency: "USD", instrument: .token("tok_sandbox_9995"), captureManually: false),
            credentials: .noKey
        )
        #expect(result.error?.code == "insufficient_funds")
        let unknown = try await SandboxConnector().authorize(
            AuthorizeRequest(paymentId: "p", attemptId: "b", amount: 1, currency: "USD", instrument: .token("tok_4242424242424242"), captureManually: false),
            credentials: .noKey
        )
        #expect(unknown.status == .declined)
    }

    @Test func syncAnswersWhatWasChargedAndNothingForUnknownTransactions() async throws {
        let sandbox = SandboxConnector()
        let card = CardDetails(number: "4242424242424242", expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: nil)
        let charged = try await sandbox.authorize(
            AuthorizeRequest(paymentId: "p", attemptId: "a1", amount: 10, currency: "USD", instrument: .card(card), captureManually: false),
            credentials: .noKey
        )
        #expect(try await sandbox.sync(SyncRequest(paymentId: "p", attemptId: "a1", connectorTransactionId: nil), credentials: .noKey) == charged)
        #expect(try await sandbox.sync(SyncRequest(paymentId: "p", attemptId: "a2", connectorTransactionId: nil), credentials: .noKey).status == .declined)
    }

    @Test func luhnAndNetworks() {
        #expect(CardDetails.passesLuhn("4242424242424242"))
        #expect(!CardDetails.passesLuhn("4242424242424241"))
        #expect(CardSummary.network(forNumber: "4111111111111111") == "Visa")
        #expect(CardSummary.network(forNumber: "5555555555554444") == "Mastercard")
        #expect(CardSummary.network(forNumber: "378282246310005") == "AmericanExpress")
    }

    @Test func cardDetailsNeverPrintTheNumber() {
        let card = CardDetails(number: "4242424242424242", expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: "J")
        #expect("\(card)" == "card ****4242")
        #expect(!String(reflecting: card).contains("424242424242"))
        #expect(card.bin == "424242")
        var dumped = ""
        dump(card, to: &dumped)
        #expect(!dumped.contains("4242424242424242") && !dumped.contains("737"))
        #expect(ConnectorRegistry([SandboxConnector()]).connector(named: "sandbox") != nil)
    }
}
