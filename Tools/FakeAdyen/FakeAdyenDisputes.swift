import Foundation
import Hummingbird

/// Chargebacks: raised on a captured payment through `POST /_fake/chargebacks` (what the
/// cardholder's bank does, one notification per call with the event code and `disputeStatus`
/// asked for), and answered by the merchant through the Dispute Service: `acceptDispute`, and
/// `supplyDefenseDocument` then `defendDispute`. A payment has one dispute: its pspReference is
/// the one every notification about it carries.
extension FakeAdyenState {
    func addDisputeRoutes(to router: Router<BasicRequestContext>) {
        router.post("/_fake/chargebacks") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let fields = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: String] ?? [:]
            let eventCode = fields["event_code"] ?? "NOTIFICATION_OF_CHARGEBACK"
            let raised: (AdyenDispute, AdyenPayment)? = self.store.withLock { store in
                let payment = fields["psp_reference"].flatMap { store.payments[$0] }
                    ?? store.payments.values.first { $0.reference == fields["merchant_reference"] && $0.captured > 0 }
                guard let payment, payment.captured > 0 else { return nil }
                var dispute = store.disputes.values.first { $0.paymentPspReference == payment.pspReference }
                    ?? AdyenDispute(pspReference: Self.psp(), paymentPspReference: payment.pspReference, merchantAccount: payment.merchantAccount, status: "Undefended")
                if let status = fields["dispute_status"] { dispute.status = status }
                store.disputes[dispute.pspReference] = dispute
                return (dispute, payment)
            }
            guard let (dispute, payment) = raised else { return Self.json(404, ["error": "no captured payment to charge back"]) }
            var additional = ["chargebackReasonCode": fields["reason_code"] ?? "10.4", "modificationMerchantReferences": "",
                              "defensePeriodEndsAt": ISO8601DateFormatter().string(from: Date().addingTimeInterval(7 * 86_400))]
            if let status = fields["dispute_status"] { additional["disputeStatus"] = status }
            self.notify(PendingNotification(merchantAccount: payment.merchantAccount, item: [
                "eventCode": eventCode, "pspReference": dispute.pspReference, "originalReference": payment.pspReference,
                "merchantReference": payment.reference, "success": "true", "reason": fields["reason"] ?? "Other Fraud-Card Absent Environment",
            ], amount: payment.captured, currency: payment.currency, additional: additional))
            return Self.json(200, ["dispute_psp_reference": dispute.pspReference, "payment_psp_reference": payment.pspReference, "event_code": eventCode])
        }
        router.post("/ca/services/DisputeService/v30/acceptDispute") { request, context in
            try await self.api(request, context) { body in
                self.disputeCall(body) { dispute in
                    guard !["Accepted", "Lost", "Won", "Expired"].contains(dispute.status) else { return "The dispute can no longer be accepted" }
                    dispute.status = "Accepted"
                    return nil
                }
            }
        }
        router.post("/ca/services/DisputeService/v30/supplyDefenseDocument") { request, context in
            try await self.api(request, context) { body in
                guard let documents = body["defenseDocuments"] as? [[String: Any]], !documents.isEmpty,
                      documents.allSatisfy({ ($0["content"] as? String).flatMap { Data(base64Encoded: $0) } != nil }) else {
                    return (200, ["disputeServiceResult": ["success": false, "errorMessage": "defenseDocuments must hold base64 content"]])
                }
                return self.disputeCall(body) { dispute in
                    ["Accepted", "Lost", "Won", "Expired"].contains(dispute.status) ? "The dispute is closed" : nil
                }
            }
        }
        router.post("/ca/services/DisputeService/v30/defendDispute") { request, context in
            try await self.api(request, context) { body in
                self.disputeCall(body) { dispute in
                    guard !["Accepted", "Lost", "Won", "Expired"].contains(dispute.status), !dispute.defended else { return "The dispute cannot be defended now" }
                    dispute.defended = true
                    dispute.status = "Pending"
                    return nil
                }
            }
        }
    }

    /// Finds the dispute the body names for its merchant account and applies `change`; a
    /// refusal (its message) answers `success: false`, as the Dispute Service does.
    func disputeCall(_ body: [String: Any], _ change: (inout AdyenDispute) -> String?) -> (Int, [String: Any]) {
        let refusal: String? = store.withLock { store in
            guard let id = body["disputePspReference"] as? String, var dispute = store.disputes[id],
                  dispute.merchantAccount == body["merchantAccountCode"] as? String else { return "Could not find dispute" }
            if let refusal = change(&dispute) { return refusal }
            store.disputes[id] = dispute
            return nil
        }
        if let refusal { return (200, ["disputeServiceResult": ["success": false, "errorMessage": refusal]]) }
        return (200, ["disputeServiceResult": ["success": true]])
    }
}
