import Crypto
import Foundation
import PaywireModels
import Testing
@testable import PaymentCore

/// The Adyen connector's requests and its reading of Adyen's answers and notifications, from
/// bodies shaped as Adyen's Checkout v68 documentation records them — no I/O.
@Suite struct AdyenConnectorTests {
    let connector = AdyenConnector(baseURL: "http://127.0.0.1:1", disputeBaseURL: "http://127.0.0.1:1", http: .shared, timeout: .seconds(1))
    let credentials = ConnectorCredentials.bodyKey(apiKey: "AQE_key", key1: "PaywireECOM")

    func json(_ text: String) throws -> JSONValue { try PaywireJSON.decoder.decode(JSONValue.self, from: Data(text.utf8)) }

    func authorize(manual: Bool, instrument: PaymentInstrument, offSession: Bool = false) -> AuthorizeRequest {
        var request = AuthorizeRequest(paymentId: "pay_1", attemptId: "pay_1_1", amount: 6540, currency: "usd", instrument: instrument, captureManually: manual)
        request.offSession = offSession
        request.customerId = "cus_1"
        return request
    }

    @Test func anAuthorisationCarriesTheKeysAmountReferenceAndCard() throws {
        let card = CardDetails(number: "5555555555554444", expiryMonth: "03", expiryYear: "30", cvc: "737", holderName: "Jo Doe")
        let request = connector.buildRequest(.authorise(authorize(manual: true, instrument: .card(card))), credentials: credentials)
        #expect(request.method == .POST && request.path == "/v68/payments")
        #expect(request.headers["X-API-Key"] == "AQE_key" && request.headers["Idempotency-Key"] == "pay_1_1")
        let body = try #require(request.json)
        #expect(body["merchantAccount"]?.stringValue == "PaywireECOM" && body["reference"]?.stringValue == "pay_1")
        #expect(body["amount"]?["value"]?.intValue == 6540 && body["amount"]?["currency"]?.stringValue == "USD")
        #expect(body["paymentMethod"]?["number"]?.stringValue == "5555555555554444" && body["paymentMethod"]?["expiryYear"]?.stringValue == "2030")
        #expect(body["paymentMethod"]?["holderName"]?.stringValue == "Jo Doe" && body["paymentMethod"]?["type"]?.stringValue == "scheme")
        #expect(body["additionalData"]?["manualCapture"]?.stringValue == "true" && body["shopperInteraction"]?.stringValue == "Ecommerce")
        #expect(!request.redactedDescription.contains("5555"))

        let automatic = try #require(connector.buildRequest(.authorise(authorize(manual: false, instrument: .card(card))), credentials: credentials).json)
        #expect(automatic["additionalData"] == nil)
    }

    @Test func anOffSessionRetryUsesTheStoredDetailsAsContAuth() throws {
        let body = try #require(connector.buildRequest(.authorise(authorize(manual: false, instrument: .token("8415718415172200"), offSession: true)), credentials: credentials).json)
        #expect(body["paymentMethod"]?["storedPaymentMethodId"]?.stringValue == "8415718415172200")
        #expect(body["shopperInteraction"]?.stringValue == "ContAuth" && body["recurringProcessingModel"]?.stringValue == "UnscheduledCardOnFile")
        #expect(body["shopperReference"]?.stringValue == "cus_1")
    }

    @Test func modificationsAreAddressedToThePaymentAndKeyedAgainstRepeats() throws {
        let capture = connector.buildRequest(.capture(CaptureRequest(paymentId: "pay_1", connectorTransactionId: "NC6HT9CRT65ZGN82", amount: 500, currency: "USD")), credentials: credentials)
        #expect(capture.path == "/v68/payments/NC6HT9CRT65ZGN82/captures" && capture.headers["Idempotency-Key"] == "NC6HT9CRT65ZGN82-capture-500")
        #expect(capture.json?["amount"]?["value"]?.intValue == 500 && capture.json?["merchantAccount"]?.stringValue == "PaywireECOM")
        let cancel = connector.buildRequest(.cancel(VoidRequest(paymentId: "pay_1", connectorTransactionId: "NC6HT9CRT65ZGN82")), credentials: credentials)
        #expect(cancel.path == "/v68/payments/NC6HT9CRT65ZGN82/cancels")
        let refund = connector.buildRequest(.refund(RefundRequest(refundId: "ref_1", paymentId: "pay_1", connectorTransactionId: "NC6HT9CRT65ZGN82", amount: 200, currency: "USD")), credentials: credentials)
        #expect(refund.path == "/v68/payments/NC6HT9CRT65ZGN82/refunds" && refund.headers["Idempotency-Key"] == "ref_1" && refund.json?["reference"]?.stringValue == "ref_1")
    }

    @Test func resultCodesMapToOutcomesAndRefusalsKeepAdyensWords() throws {
        let authorised = try json(#"{"additionalData":{"authCode":"065696","refusalReasonRaw":"AUTHORISED"},"pspReference":"NC6HT9CRT65ZGN82","resultCode":"Authorised","amount":{"currency":"USD","value":6540},"merchantReference":"pay_1"}"#)
        #expect(AdyenConnector.result(payment: authorised, captureManually: true) == ConnectorResult(status: .authorized, connectorTransactionId: "NC6HT9CRT65ZGN82"))
        #expect(AdyenConnector.result(payment: authorised, captureManually: false) == ConnectorResult(status: .charged, connectorTransactionId: "NC6HT9CRT65ZGN82", amountReceived: 6540))

        let refused = try json(#"{"additionalData":{"refusalReasonRaw":"51 : Insufficient funds","merchantAdviceCode":"02: Cannot approve at this time, try again later"},"pspReference":"V4HZ4RBFJGXXGN82","refusalReason":"Not enough balance","resultCode":"Refused","refusalReasonCode":"12","amount":{"currency":"USD","value":6540},"merchantReference":"pay_1"}"#)
        let declined = AdyenConnector.result(payment: refused, captureManually: false)
        #expect(declined.status == .declined && declined.connectorTransactionId == "V4HZ4RBFJGXXGN82")
        let error = try #require(declined.error)
        #expect(error.processorCode == "12" && error.processorMessage == "Not enough balance")
        #expect(error.code == "insufficient_funds" && error.unifiedCode == "UE_1001" && error.rawCode == "51" && error.adviceCode == "02")

        let expired = AdyenConnector.result(payment: try json(#"{"pspReference":"A","resultCode":"Refused","refusalReason":"Expired Card","refusalReasonCode":"6"}"#), captureManually: false)
        #expect(expired.error?.code == "expired_card" && expired.error?.isHard == true)
        let failed = AdyenConnector.result(payment: try json(#"{"pspReference":"B","resultCode":"Error","refusalReason":"Acquirer Error","refusalReasonCode":"4"}"#), captureManually: false)
        #expect(failed.status == .declined && failed.error?.code == "processing_error")
        #expect(AdyenConnector.result(payment: try json(#"{"pspReference":"C","resultCode":"Received"}"#), captureManually: false).status == .pending)
        #expect(AdyenConnector.result(payment: try json(#"{"pspReference":"D","resultCode":"RedirectShopper"}"#), captureManually: false).status == .declined)

        // A request Adyen refuses outright, and answers that tell nothing.
        let invalid = connector.handleResponse(.answered(status: 422, body: try json(#"{"status":422,"errorCode":"101","message":"Invalid card number","errorType":"validation"}"#)), to: .authorise(authorize(manual: false, instrument: .token("x"))))
        guard case .failed(let refusal) = invalid else { Issue.record("\(invalid)"); return }
        #expect(refusal.processorCode == "101" && refusal.code == "incorrect_number")
        #expect(connector.handleResponse(.answered(status: 500, body: nil), to: .authorise(authorize(manual: false, instrument: .token("x")))) == .unknown)
        #expect(connector.handleResponse(.noAnswer, to: .authorise(authorize(manual: false, instrument: .token("x")))) == .unknown)
    }

    @Test func aModificationIsOnlyReceived() throws {
        let answer = try json(#"{"merchantAccount":"PaywireECOM","paymentPspReference":"NC6HT9CRT65ZGN82","pspReference":"JDD6LKT8MBLZNN84","reference":"pay_1","status":"received","amount":{"currency":"USD","value":500}}"#)
        #expect(connector.modificationResult(.object(answer), transactionId: "NC6HT9CRT65ZGN82").status == .received)
        #expect(connector.modificationResult(.unknown, transactionId: "NC6HT9CRT65ZGN82").status == .pending)
    }

    // MARK: Notifications

    static let key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"

    /// Signed by the test itself from Adyen's description of the scheme, not by the connector.
    static func item(_ code: String, psp: String, original: String = "", reference: String, value: Int, success: Bool = true, extra: [String: String] = [:], forge: Bool = false) -> String {
        let signed = [psp, original, "PaywireECOM", reference, String(value), "EUR", code, success ? "true" : "false"].joined(separator: ":")
        var keyBytes = stride(from: 0, to: key.count, by: 2).map { UInt8(key.dropFirst($0).prefix(2), radix: 16)! }
        if forge { keyBytes[31] ^= 1 }
        let signature = Data(HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: SymmetricKey(data: keyBytes))).base64EncodedString()
        let additional = extra.merging(["hmacSignature": signature]) { a, _ in a }.map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
        return #"{"NotificationRequestItem":{"additionalData":{\#(additional)},"amount":{"currency":"EUR","value":\#(value)},"eventCode":"\#(code)","eventDate":"2026-12-06T10:00:00+01:00","merchantAccountCode":"PaywireECOM","merchantReference":"\#(reference)","originalReference":"\#(original)","pspReference":"\#(psp)","reason":"","success":"\#(success)"}}"#
    }

    func decode(_ items: [String], secret: String? = key) throws -> [IncomingWebhookEvent] {
        let body = #"{"live":"false","notificationItems":[\#(items.joined(separator: ","))]}"#
        return try connector.decodeWebhook(IncomingWebhook(headers: [:], body: Array(body.utf8)), secret: secret)
    }

    @Test func anUnansweredAuthorisationIsCancelledByOurReferenceAndItsReportRead() throws {
        let cancel = connector.buildRequest(.technicalCancel(UnansweredAuthorisation(paymentId: "pay_1", attemptId: "pay_1_1")), credentials: credentials)
        #expect(cancel.method == .POST && cancel.path == "/v68/cancels" && cancel.headers["Idempotency-Key"] == "pay_1_1-technical-cancel")
        #expect(cancel.json?["paymentReference"]?.stringValue == "pay_1" && cancel.json?["merchantAccount"]?.stringValue == "PaywireECOM")
        #expect(connector.capabilities.cancelByReference && !connector.capabilities.statusLookup)

        let events = try decode([
            Self.item("TECHNICAL_CANCEL", psp: "PSP7", original: "PSP1", reference: "pay_1", value: 1000),
            Self.item("TECHNICAL_CANCEL", psp: "PSP8", reference: "pay_2", value: 0),
            Self.item("TECHNICAL_CANCEL", psp: "PSP9", original: "PSP3", reference: "pay_3", value: 1000, success: false),
        ])
        #expect(events[0].subject == .payment(connectorTransactionId: "PSP1", attemptId: nil, paymentId: "pay_1",
                                              result: ConnectorResult(status: .voided, connectorTransactionId: "PSP1", modification: .technicalCancel)))
        // Adyen never had pay_2: no processor id to record, found by our reference.
        #expect(events[1].subject == .payment(connectorTransactionId: "", attemptId: nil, paymentId: "pay_2",
                                              result: ConnectorResult(status: .voided, connectorTransactionId: nil, modification: .technicalCancel)))
        guard case .payment(_, _, _, let refused) = events[2].subject else { Issue.record("not a payment"); return }
        #expect(refused.status == .declined && refused.modification == .technicalCancel)
    }

    @Test func everyItemOfABatchIsVerifiedAndRead() throws {
        let events = try decode([
            Self.item("AUTHORISATION", psp: "PSP1", reference: "pay_1", value: 1000, extra: ["metadata.attempt_id": "pay_1_1"]),
            Self.item("CAPTURE", psp: "PSP2", original: "PSP1", reference: "pay_1", value: 600),
            Self.item("REFUND", psp: "PSP3", original: "PSP1", reference: "ref_1", value: 100),
            Self.item("CANCELLATION", psp: "PSP4", original: "PSP5", reference: "pay_2", value: 900, success: false),
            Self.item("REPORT_AVAILABLE", psp: "PSP6", reference: "report", value: 0),
        ])
        #expect(events.count == 4, "every item but the one Paywire does not use")
        #expect(events[0].subject == .payment(connectorTransactionId: "PSP1", attemptId: "pay_1_1", paymentId: "pay_1", result: ConnectorResult(status: .authorized, connectorTransactionId: "PSP1", amountReceived: 1000)))
        #expect(events[1].subject == .payment(connectorTransactionId: "PSP1", attemptId: nil, paymentId: "pay_1", result: ConnectorResult(status: .charged, connectorTransactionId: "PSP1", amountReceived: 600, modification: .capture)))
        #expect(events[2].subject == .refund(connectorRefundId: "PSP3", refundId: "ref_1", result: ConnectorRefundResult(status: .succeeded, connectorRefundId: "PSP3")))
        guard case .payment(_, _, _, let cancelFailed) = events[3].subject else { Issue.record("not a payment"); return }
        #expect(cancelFailed.status == .declined && cancelFailed.modification == .cancel)
        #expect(Set(events.map(\.connectorEventId)).count == 4)
    }

    @Test func oneForgedItemRefusesTheWholeRequest() throws {
        let good = Self.item("CAPTURE", psp: "PSP2", original: "PSP1", reference: "pay_1", value: 600)
        #expect(throws: IncomingWebhookError.self) { try decode([good, Self.item("REFUND", psp: "PSP3", original: "PSP1", reference: "ref_1", value: 100, forge: true)]) }
        // A changed amount breaks the signature too.
        #expect(throws: IncomingWebhookError.self) { try decode([good.replacingOccurrences(of: #""value":600"#, with: #""value":60000"#)]) }
        #expect(throws: IncomingWebhookError.missingSecret) { try decode([good], secret: nil) }
        #expect(throws: IncomingWebhookError.self) { try decode([good], secret: "not hex") }
        #expect(throws: IncomingWebhookError.self) { try connector.decodeWebhook(IncomingWebhook(headers: [:], body: Array(#"{"notificationItems":[]}"#.utf8)), secret: Self.key) }
    }

    @Test func chargebackCodesMapAsHyperswitchMapsThem() throws {
        let cases: [(String, String?, DisputeStage, DisputeStatus)] = [
            ("NOTIFICATION_OF_CHARGEBACK", nil, .preDispute, .opened), ("CHARGEBACK", nil, .dispute, .lost), ("CHARGEBACK", "Won", .dispute, .won),
            ("CHARGEBACK", "Undefended", .dispute, .opened), ("CHARGEBACK_REVERSED", "Pending", .dispute, .challenged), ("CHARGEBACK_REVERSED", nil, .dispute, .won),
            ("SECOND_CHARGEBACK", nil, .preArbitration, .lost), ("PREARBITRATION_WON", "Pending", .preArbitration, .opened),
            ("PREARBITRATION_WON", nil, .preArbitration, .won), ("PREARBITRATION_LOST", nil, .preArbitration, .lost),
        ]
        for (code, status, stage, expected) in cases {
            var extra = ["chargebackReasonCode": "10.4", "defensePeriodEndsAt": "2026-12-20T10:00:00+01:00"]
            if let status { extra["disputeStatus"] = status }
            let events = try decode([Self.item(code, psp: "DSP1", original: "PSP1", reference: "pay_1", value: 1000, extra: extra)])
            guard case .dispute(let report)? = events.first?.subject else { Issue.record("\(code) made no dispute"); continue }
            #expect(report.stage == stage && report.status == expected, "\(code) \(status ?? "-")")
            #expect(report.connectorDisputeId == "DSP1" && report.connectorTransactionId == "PSP1" && report.connectorReasonCode == "10.4" && report.challengeRequiredBy != nil)
        }
    }
}
