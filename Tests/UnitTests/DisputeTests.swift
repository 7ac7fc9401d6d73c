import Foundation
import PaywireModels
import Testing
@testable import PaymentCore

/// Disputes move only as Hyperswitch allows, and Stripe's dispute events read as it maps them.
@Suite struct DisputeStateMachineTests {
    @Test func onlyTheAllowedMovesAndAStageNeverGoesBack() {
        typealias Machine = DisputeStateMachine
        for next in [DisputeStatus.expired, .accepted, .cancelled, .challenged] {
            #expect(Machine.apply(stage: .dispute, status: next, to: .dispute, .opened) == .moved(stage: .dispute, status: next), "opened → \(next)")
        }
        for next in [DisputeStatus.won, .lost] {
            #expect(Machine.apply(stage: .dispute, status: next, to: .dispute, .challenged) == .moved(stage: .dispute, status: next))
            #expect(Machine.apply(stage: .dispute, status: next, to: .dispute, .opened) == .refused, "opened → \(next) skips the challenge")
        }
        // Final statuses stay; an older report (opened after challenged) changes nothing.
        for final in [DisputeStatus.accepted, .won, .lost, .cancelled, .expired] {
            for next in DisputeStatus.allCases where next != final {
                #expect(Machine.apply(stage: .dispute, status: next, to: .dispute, final) == .refused, "\(final) → \(next)")
            }
        }
        #expect(Machine.apply(stage: .dispute, status: .opened, to: .dispute, .challenged) == .refused)
        #expect(Machine.apply(stage: .dispute, status: .opened, to: .dispute, .opened) == .unchanged)
        // A later stage starts over; an earlier one is refused.
        #expect(Machine.apply(stage: .preArbitration, status: .lost, to: .dispute, .won) == .moved(stage: .preArbitration, status: .lost))
        #expect(Machine.apply(stage: .dispute, status: .opened, to: .preDispute, .cancelled) == .moved(stage: .dispute, status: .opened))
        #expect(Machine.apply(stage: .preDispute, status: .opened, to: .dispute, .opened) == .refused)
    }
}

@Suite struct StripeDisputeMappingTests {
    /// A `charge.dispute.*` event's object as Stripe sends it (recorded shape, ids changed).
    static func dispute(status: String) -> JSONValue {
        try! PaywireJSON.decoder.decode(JSONValue.self, from: Data("""
            {"id": "dp_1Qx", "object": "dispute", "amount": 6540, "currency": "usd", "charge": "ch_3Qx", "payment_intent": "pi_3Qx",
             "reason": "fraudulent", "status": "\(status)", "created": 1733400000, "network_reason_code": "10.4",
             "evidence_details": {"due_by": 1734000000, "has_evidence": false, "past_due": false, "submission_count": 0}}
            """.utf8))
    }

    @Test func eventsAndStatusesMapAsHyperswitchDoes() throws {
        let created = try #require(StripeConnector.disputeReport(type: "charge.dispute.created", dispute: Self.dispute(status: "needs_response"), disputeId: "dp_1Qx"))
        #expect(created.status == .opened && created.stage == .dispute && created.connectorTransactionId == "pi_3Qx")
        #expect(created.amount == 6540 && created.currency == "USD" && created.connectorReason == "fraudulent" && created.connectorReasonCode == "10.4")
        #expect(created.challengeRequiredBy == Date(timeIntervalSince1970: 1_734_000_000))
        let cases: [(String, String, DisputeStatus?, DisputeStage)] = [
            ("charge.dispute.updated", "under_review", .challenged, .dispute),
            ("charge.dispute.updated", "warning_needs_response", .opened, .preDispute),
            ("charge.dispute.updated", "warning_under_review", .challenged, .preDispute),
            ("charge.dispute.closed", "won", .won, .dispute),
            ("charge.dispute.closed", "lost", .lost, .dispute),
            ("charge.dispute.closed", "warning_closed", .cancelled, .preDispute),
            ("charge.dispute.closed", "charge_refunded", .cancelled, .dispute),
            ("charge.dispute.funds_withdrawn", "needs_response", .lost, .dispute),
            ("charge.dispute.funds_reinstated", "won", .won, .dispute),
        ]
        for (type, status, mapped, stage) in cases {
            let report = try #require(StripeConnector.disputeReport(type: type, dispute: Self.dispute(status: status), disputeId: "dp_1Qx"))
            #expect(report.status == mapped && report.stage == stage && report.connectorStatus == status, "\(type) \(status)")
        }
        // Without the disputed intent it is not a dispute Paywire can place.
        var missing = Self.dispute(status: "needs_response")
        if case .object(var fields) = missing { fields["payment_intent"] = nil; missing = .object(fields) }
        #expect(StripeConnector.disputeReport(type: "charge.dispute.created", dispute: missing, disputeId: "dp_1Qx") == nil)
    }

    @Test func acceptIsCloseAndEvidenceIsSubmitted() {
        let connector = StripeConnector(baseURL: "http://127.0.0.1:1", http: .shared, timeout: .seconds(1))
        let close = connector.buildRequest(.closeDispute(id: "dp_1Qx"), credentials: .headerKey(apiKey: "sk_test_x"))
        #expect(close.method == .POST && close.path == "/v1/disputes/dp_1Qx/close")
        let evidence = connector.buildRequest(.submitEvidence(id: "dp_1Qx", evidence: ["uncategorized_text": "Delivered, signed for", "customer_name": "Jo Doe"]),
                                              credentials: .headerKey(apiKey: "sk_test_x"))
        #expect(evidence.path == "/v1/disputes/dp_1Qx")
        #expect(evidence.form == [.init("evidence[customer_name]", "Jo Doe"), .init("evidence[uncategorized_text]", "Delivered, signed for"), .init("submit", "true")])
    }
}

@Suite struct StripeUnconfirmedIntentTests {
    /// Only an intent left without a confirm (no payment error) past the wait is given up on.
    @Test func onlyAnUnconfirmedIntentPastTheWaitIsGivenUpOn() throws {
        func intent(_ status: String, created: Int, error: String = "null") throws -> JSONValue {
            try PaywireJSON.decoder.decode(JSONValue.self, from: Data(#"{"id": "pi_1", "status": "\#(status)", "created": \#(created), "last_payment_error": \#(error)}"#.utf8))
        }
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(StripeConnector.neverConfirmed(try intent("requires_payment_method", created: 1_800_000_000 - 31), now: now, after: .seconds(30)))
        #expect(!StripeConnector.neverConfirmed(try intent("requires_payment_method", created: 1_800_000_000 - 29), now: now, after: .seconds(30)))
        #expect(!StripeConnector.neverConfirmed(try intent("requires_payment_method", created: 1_800_000_000 - 300, error: #"{"code": "card_declined"}"#), now: now, after: .seconds(30)))
        for status in ["succeeded", "requires_capture", "processing", "canceled"] {
            #expect(!StripeConnector.neverConfirmed(try intent(status, created: 1_800_000_000 - 300), now: now, after: .seconds(30)), "\(status)")
        }
    }
}
