import Foundation
import PaywireKafka
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// A delivery to an endpoint that is answering skips the queue: the fan-out writes its row
/// `sending`, leased to the replica, which sends it as soon as the row is committed. Answered 2xx,
/// the row is never written again — its attempt row is its record. Refused, it is recorded and
/// retried as any delivery. Its replica killed mid-request, the sweep puts it back in the queue
/// once the lease has run out. The first delivery to an endpoint goes through the queue.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TestEnvironment.hasDatabase))
struct FirstAttemptTests {
    /// One delivery as the dispatcher's table holds it and as the events log shows it.
    struct Written {
        var eventId: String
        /// The raw column, and the state the log shows.
        var rawStatus: String
        var status: String
        var attemptCount: Int
        var leased: Bool
        var attempts: Int
        /// The row is as the fan-out's transaction wrote it (its `xmin` is that of the message's
        /// processed-message row, written in the same transaction): nothing updated it since.
        var untouched: Bool
        /// The header names the first attempt row keeps.
        var attemptHeaderNames: [String]
    }

    @Test func deliveriesToAnAnsweringEndpointAreSentAtFanOutAndWrittenOnce() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        // Leases of 33 s, so a killed replica's send is taken up again within a minute; retries a
        // second apart.
        let environment = ["PAYWIRE_WEBHOOK_FIRST_ATTEMPT_AT_FAN_OUT": "true", "PAYWIRE_WEBHOOK_LEASE_MARGIN_SECONDS": "3", "PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s,1s"]
        try await PaywireStack.with(extraEnvironment: environment) { stack in
            _ = try await stack.createMerchant("first_m", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/first_m").json?["default_profile"] as? String)
            let created = try await stack.request(.POST, "/account/first_m/business_profile/\(profile)/webhooks", body: #"{"webhook_url": "\#(url)/first", "events": ["payment_succeeded"]}"#)
            #expect(created.status == 200, "\(created.body)")
            try await stack.waitUntilQuiet()
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: KafkaConfiguration(bootstrapServers: stack.kafkaBrokers)), logger: TestEnvironment.logger("first", level: .critical))
            defer { Task { await producer.shutdown() } }
            @Sendable func publish(_ paymentId: String) async throws -> String {
                let envelope = EventEnvelope(type: "payment_succeeded", merchantId: "first_m", profileId: profile,
                                             payload: .object(["payment_id": .string(paymentId), "status": .string("succeeded"), "amount": .number(100)]))
                _ = try await producer.send(KafkaProducerMessage(topic: TopicNames().paymentEvents, key: paymentId, value: try envelope.encoded()))
                return envelope.id
            }
            @Sendable func requests(_ paymentId: String) -> [WebhookReceiver.Received] { receiver.requests.filter { $0.body.contains("\"\(paymentId)\"") } }
            try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { database in
                func written(_ paymentId: String, message: String) async throws -> Written? {
                    let rows = try await database.query("""
                        SELECT e.event_id, e.delivery_status, webhooks.delivery_state(e.delivery_status, e.event_id),
                               webhooks.delivery_attempt_count(e.delivery_status, e.attempt_count, e.event_id), e.lease_owner IS NOT NULL,
                               (SELECT count(*)::int FROM webhooks.delivery_attempts a WHERE a.event_id = e.event_id),
                               COALESCE((SELECT p.xmin::text = e.xmin::text FROM webhooks.processed_messages p WHERE p.message_id = \(message)), false),
                               COALESCE((SELECT array_agg(k ORDER BY k) FROM webhooks.delivery_attempts a, jsonb_object_keys(a.request_headers) k WHERE a.attempt_id = e.event_id), '{}')
                        FROM webhooks.events e WHERE e.object_id = \(paymentId)
                        """)
                    for try await (id, raw, status, count, leased, attempts, untouched, names) in rows.decode((String, String, String, Int, Bool, Int, Bool, [String]).self) {
                        return Written(eventId: id, rawStatus: raw, status: status, attemptCount: count, leased: leased, attempts: attempts,
                                       untouched: untouched, attemptHeaderNames: names)
                    }
                    return nil
                }

                // The first delivery to the new endpoint goes through the queue (claimed, then
                // recorded): its 2xx makes the endpoint one that is answering.
                let message0 = try await publish("pay_first_0")
                #expect(await eventually { (try? await written("pay_first_0", message: message0))?.status == "delivered" })
                let queued = try #require(try await written("pay_first_0", message: message0))
                #expect(queued.rawStatus == "delivered" && !queued.untouched, "the queue's delivery is claimed and recorded after its row is written: \(queued)")

                // Answered at once: the row as the fan-out wrote it, and one attempt row.
                let message1 = try await publish("pay_first_1")
                #expect(await eventually { (try? await written("pay_first_1", message: message1))?.status == "delivered" })
                let once = try #require(try await written("pay_first_1", message: message1))
                #expect(once.rawStatus == "sending" && once.untouched && once.attemptCount == 1 && once.attempts == 1, "\(once)")
                #expect(once.attemptHeaderNames == ["webhook-id", "webhook-signature", "webhook-timestamp"], "an attempt keeps only the headers of its own")
                #expect(requests("pay_first_1").map { $0.headers["webhook-id"] } == [once.eventId])
                // The log shows the delivery as delivered, and the request as it was sent.
                let shown = try await stack.request(.GET, "/events/first_m/\(once.eventId)")
                #expect(shown.json?["delivery_status"] as? String == "delivered" && shown.json?["attempt_count"] as? Int == 1, "\(shown.body)")
                let answer = try await stack.request(.GET, "/events/first_m/\(once.eventId)/attempts")
                let logged = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]], "\(answer.body)")
                let names = ((logged.first?["request"] as? [String: Any])?["headers"] as? [[String]] ?? []).compactMap { $0.first?.lowercased() }
                #expect(Set(["content-type", "user-agent", "webhook-id", "webhook-signature", "webhook-timestamp"]).isSubset(of: Set(names)), "\(names)")
                let delivered = try await stack.request(.GET, "/events/first_m?object_id=pay_first_1&is_delivered=true")
                #expect(delivered.json?["total_count"] as? Int == 1, "the is_delivered filter sees it: \(delivered.body)")
                // A delivered one can be sent again by hand at once.
                #expect(try await stack.request(.POST, "/events/first_m/\(once.eventId)/retry").status == 200)
                #expect(requests("pay_first_1").count == 2)

                // Still running: pending in the log, leased, no attempt yet; recorded when it ends.
                receiver.hold()
                let message2 = try await publish("pay_first_2")
                #expect(await eventually { !requests("pay_first_2").isEmpty })
                let running = try #require(try await written("pay_first_2", message: message2))
                #expect(running.status == "pending" && running.leased && running.attempts == 0, "\(running)")
                receiver.release()
                #expect(await eventually { (try? await written("pay_first_2", message: message2))?.status == "delivered" })
                let recorded = try #require(try await written("pay_first_2", message: message2))
                // Its lease may have been renewed while it was held (every third of a lease, on a
                // clock of its own), which rewrites the row; the outcome itself wrote nothing: the
                // row is still `sending` with no attempt counted, and its attempt row is its record.
                #expect(recorded.rawStatus == "sending" && recorded.attemptCount == 1 && recorded.attempts == 1, "\(recorded)")
                #expect(requests("pay_first_2").count == 1)

                // Refused: recorded with its retry, which the queue sends.
                receiver.respond(inOrder: [.serviceUnavailable])
                let message3 = try await publish("pay_first_3")
                #expect(await eventually { (try? await written("pay_first_3", message: message3))?.status == "delivered" })
                let retried = try #require(try await written("pay_first_3", message: message3))
                #expect(retried.rawStatus == "delivered" && retried.attemptCount == 2 && retried.attempts == 2, "\(retried)")
                #expect(requests("pay_first_3").count == 2 && Set(requests("pay_first_3").map { $0.headers["webhook-id"] }) == [retried.eventId])

                // Answering again (the retry succeeded). Its replica killed while the request is
                // open: the lease runs out, the sweep puts it back in the queue, and it is sent
                // again under the same id.
                receiver.hold()
                let message4 = try await publish("pay_first_4")
                #expect(await eventually { !requests("pay_first_4").isEmpty })
                let abandoned = try #require(try await written("pay_first_4", message: message4))
                #expect(abandoned.rawStatus == "sending" && abandoned.leased, "\(abandoned)")
                stack.processes["webhook-dispatcher"]?.crash()
                receiver.release()
                try await stack.startService("webhook-dispatcher")
                try await stack.waitUntilReady("webhook-dispatcher")
                #expect(await eventually(timeout: .seconds(120)) { (try? await written("pay_first_4", message: message4))?.status == "delivered" })
                let resent = try #require(try await written("pay_first_4", message: message4))
                #expect(resent.rawStatus == "delivered" && resent.attempts == 1, "\(resent)")
                #expect(requests("pay_first_4").count == 2 && Set(requests("pay_first_4").map { $0.headers["webhook-id"] }) == [resent.eventId])
            }
        }
    }
}
