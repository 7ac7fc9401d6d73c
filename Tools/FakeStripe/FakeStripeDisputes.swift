import Foundation
import Hummingbird

/// A chargeback on a PaymentIntent, as Stripe's Dispute object shows it.
struct Dispute: Sendable {
    var id: String
    var paymentIntent: String
    var amount: Int
    var currency: String
    var status: String
    var reason: String
    var evidence: [String: String] = [:]
    var created = Int(Date().timeIntervalSince1970)

    var json: [String: Any] {
        ["id": id, "object": "dispute", "payment_intent": paymentIntent, "charge": "ch_" + paymentIntent.dropFirst(3), "amount": amount, "currency": currency,
         "status": status, "reason": reason, "network_reason_code": "10.4", "created": created, "evidence": evidence,
         "evidence_details": ["due_by": created + 7 * 86_400, "has_evidence": !evidence.isEmpty, "submission_count": evidence.isEmpty ? 0 : 1]]
    }
}

/// Disputes: raised on a charged intent through `POST /_fake/disputes` (what a cardholder's bank
/// does), moved on by `POST /_fake/disputes/{id}/status` (the bank's decision), and answered by
/// the merchant through Stripe's API: `POST /v1/disputes/{id}/close` (accept: lost) and
/// `POST /v1/disputes/{id}` with `evidence[…]` and `submit=true` (under review). Each change is
/// sent as Stripe's `charge.dispute.*` webhook.
extension FakeStripeState {
    func addDisputeRoutes(to router: Router<BasicRequestContext>) {
        router.post("/_fake/disputes") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let fields = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: String] ?? [:]
            let created: Dispute? = self.store.withLock { store in
                // By the intent's id, or by the caller's payment id in its metadata.
                let intent = fields["payment_intent"].flatMap { store.intents[$0] }
                    ?? store.intents.values.first { $0.metadata["payment_id"] == fields["payment_id"] && $0.status == "succeeded" }
                guard let intent, intent.status == "succeeded" else { return nil }
                let dispute = Dispute(id: "dp_" + Self.random(24), paymentIntent: intent.id, amount: intent.amountReceived, currency: intent.currency,
                                      status: fields["status"] ?? "needs_response", reason: fields["reason"] ?? "fraudulent")
                store.disputes[dispute.id] = dispute
                return dispute
            }
            guard let created else { return Self.json(404, ["error": "no succeeded payment intent to dispute"]) }
            self.sendWebhook(type: "charge.dispute.created", object: created.json)
            return Self.json(200, created.json)
        }
        router.post("/_fake/disputes/:id/status") { request, context in
            let id = try context.parameters.require("id")
            let body = try await request.body.collect(upTo: 1 << 16)
            guard let status = ((try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: String])?["status"] else {
                return Self.json(400, ["error": "status is required"])
            }
            guard let dispute = self.setDispute(id, status: status) else { return Self.json(404, ["error": "no such dispute"]) }
            return Self.json(200, dispute.json)
        }
        router.get("/v1/disputes/:id") { request, context in
            try await self.api(request, context) { _ in
                let id = try context.parameters.require("id")
                guard let dispute = self.store.withLock({ $0.disputes[id] }) else { return Self.error(404, "invalid_request_error", "resource_missing", "No such dispute") }
                return (200, dispute.json)
            }
        }
        router.post("/v1/disputes/:id/close") { request, context in
            try await self.api(request, context) { _ in
                let id = try context.parameters.require("id")
                guard let current = self.store.withLock({ $0.disputes[id] }) else { return Self.error(404, "invalid_request_error", "resource_missing", "No such dispute") }
                guard ["needs_response", "warning_needs_response"].contains(current.status) else {
                    return Self.error(400, "invalid_request_error", "dispute_already_closed", "This dispute is already closed or under review")
                }
                return (200, self.setDispute(id, status: "lost")!.json)
            }
        }
        router.post("/v1/disputes/:id") { request, context in
            try await self.api(request, context) { form in
                let id = try context.parameters.require("id")
                let evidence = Dictionary(uniqueKeysWithValues: form.compactMap { key, value -> (String, String)? in
                    guard key.hasPrefix("evidence["), key.hasSuffix("]") else { return nil }
                    return (String(key.dropFirst("evidence[".count).dropLast()), value)
                })
                let updated: Dispute? = self.store.withLock { store in
                    guard var dispute = store.disputes[id] else { return nil }
                    dispute.evidence.merge(evidence) { _, new in new }
                    store.disputes[id] = dispute
                    return dispute
                }
                guard let updated else { return Self.error(404, "invalid_request_error", "resource_missing", "No such dispute") }
                guard form["submit"] == "true" else { return (200, updated.json) }
                return (200, self.setDispute(id, status: updated.status.hasPrefix("warning_") ? "warning_under_review" : "under_review")!.json)
            }
        }
    }

    /// Sets the status and sends its webhook: closed for a final status, updated otherwise.
    func setDispute(_ id: String, status: String) -> Dispute? {
        let dispute: Dispute? = store.withLock { store in
            guard var dispute = store.disputes[id] else { return nil }
            dispute.status = status
            store.disputes[id] = dispute
            return dispute
        }
        guard let dispute else { return nil }
        let final = ["won", "lost", "warning_closed"].contains(status)
        sendWebhook(type: final ? "charge.dispute.closed" : "charge.dispute.updated", object: dispute.json)
        return dispute
    }
}
