import Foundation
import Logging
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing
@testable import WebhookDispatcher

/// The delivery outcome recorder on a database of its own: one outcome PostgreSQL refuses does
/// not hold back the others queued with it, and the queue has a ceiling the worker respects.
@Suite(.serialized, .timeLimit(.minutes(2)), .enabled(if: TestEnvironment.hasDatabase))
struct DeliveryOutcomeRecorderTests {
    let logger = TestEnvironment.logger("outcome-recorder", level: .critical)

    @Test func aRefusedOutcomeIsFoundByHalvingAndEndsAloneWhileTheRestAreRecorded() async throws {
        try await withDispatcherDatabase("recorder", logger: logger) { postgres in
            let owner = "dispatcher-test"
            let ids = (0..<9).map { "evt_rec_\($0)" }
            // Nine deliveries leased to this replica, as a claim leaves them.
            try await postgres.query("""
                INSERT INTO webhooks.events (event_id, idempotent_event_id, merchant_id, object_id, event_type, event_class, target_url,
                                             request_body, request_headers, lease_owner, lease_until)
                SELECT id, id, 'rec_m', 'pay_' || id, 'payment_succeeded', 'payments', 'https://example.com/hook', '{}', '{}'::jsonb,
                       \(owner), now() + interval '5 minutes'
                FROM unnest(\(ids)::text[]) AS id
                """, logger: logger)
            let recorder = DeliveryOutcomeRecorder(postgres: postgres, owner: owner, logger: logger,
                                                   health: EndpointHealth(postgres: postgres, logger: logger, disableAfter: .seconds(3600)), capacity: 9)
            func delivered(_ eventId: String, status: Int, body: String = "ok") -> DeliveryOutcome {
                .attempted(.init(eventId: eventId, attemptId: "att_" + eventId, kind: "initial_attempt", requestHeaders: [:], endpointId: nil, merchantId: "rec_m"),
                           .init(status: status, headers: [:], body: body, error: nil, latencyMilliseconds: 3), next: .delivered)
            }
            for (index, id) in ids.enumerated() {
                // The sixth answer's status does not fit an INTEGER column: PostgreSQL refuses the
                // whole statement (SQLSTATE 22003), as it would any batch holding it. The third
                // answer's body holds a NUL character, which PostgreSQL text cannot.
                recorder.add(delivered(id, status: index == 5 ? 5_000_000_000 : 200, body: index == 2 ? "o\u{0}k" : "ok"))
            }
            #expect(recorder.isFull, "nine outcomes waiting fill a queue of nine")
            recorder.finish()
            await recorder.run()
            #expect(recorder.isFinished)
            let rows = try await postgres.query("""
                SELECT e.event_id, e.delivery_status, COALESCE(e.status_reason, ''), COALESCE(a.response_body, ''), e.lease_owner
                FROM webhooks.events e LEFT JOIN webhooks.delivery_attempts a ON a.event_id = e.event_id ORDER BY e.event_id
                """, logger: logger)
            var found: [String: (status: String, reason: String, body: String, owner: String?)] = [:]
            for try await (id, status, reason, body, leaseOwner) in rows.decode((String, String, String, String, String?).self) {
                found[id] = (status, reason, body, leaseOwner)
            }
            for (index, id) in ids.enumerated() where index != 5 {
                #expect(found[id]?.status == "delivered", "\(id): \(String(describing: found[id]))")
            }
            #expect(found[ids[5]]?.status == "cancelled" && found[ids[5]]?.reason == DeliveryOutcomeRecorder.unrecordable, "\(String(describing: found[ids[5]]))")
            #expect(found[ids[2]]?.body == "o\u{FFFD}k")
            #expect(found.values.allSatisfy { $0.owner == nil }, "every lease is released")
            #expect(!recorder.isFull)
        }
    }
}
