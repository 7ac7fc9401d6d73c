import Foundation
import PaywireKafka
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// Dispatcher replicas share one backlog through leases: two never send the same attempt, and a
/// replica killed mid-burst leaves leases that expire and are finished by the others, with no
/// delivery row twice and no more duplicate requests than it had in flight.
// The limit counts the wait for the heavy-test gate (schemathesis may hold it for minutes on a
// slow machine), so it is generous; the waits inside bound the test itself.
@Suite(.serialized, .timeLimit(.minutes(20)), .enabled(if: TestEnvironment.hasDatabase))
struct DispatcherReliabilityTests {
    static let eventsPerBurst = 300
    static let concurrency = 64

    @Test func twoReplicasDrainOneBacklogAndAKilledOneLosesNothing() async throws {
        let receivers = [WebhookReceiver(), WebhookReceiver(), WebhookReceiver()]
        var urls: [String] = []
        for receiver in receivers { urls.append(try await receiver.start()) }
        defer { receivers.forEach { $0.stop() } }
        let environment = [
            // Short leases so the killed replica's work is resumed within seconds; a quick ladder
            // so a request that times out on a loaded machine is tried again soon.
            "WEBHOOK_REQUEST_TIMEOUT_SECONDS": "5", "PAYWIRE_WEBHOOK_LEASE_MARGIN_SECONDS": "3",
            "PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s,1s,1s,1s,1s",
            "PAYWIRE_WEBHOOK_CONCURRENCY": String(Self.concurrency),
        ]
        let targets = urls
        try await HeavyTests.gate.exclusive { try await run(receivers: receivers, urls: targets, environment: environment) }
    }

    func run(receivers: [WebhookReceiver], urls: [String], environment: [String: String]) async throws {
        try await PaywireStack.with(extraEnvironment: environment) { stack in
            _ = try await stack.createMerchant("burst_m", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/burst_m").json?["default_profile"] as? String)
            for url in urls {
                let created = try await stack.request(.POST, "/account/burst_m/business_profile/\(profile)/webhooks", body: #"{"webhook_url": "\#(url)/burst", "events": ["payment_succeeded"]}"#)
                #expect(created.status == 200, "\(created.body)")
            }
            try await stack.startService("dispatcher-2", executable: "webhook-dispatcher")
            try await stack.waitUntilReady("dispatcher-2")

            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: KafkaConfiguration(bootstrapServers: stack.kafkaBrokers)), logger: TestEnvironment.logger("burst", level: .critical))
            func burst(_ prefix: String) async throws {
                let messages = try (0..<Self.eventsPerBurst).map { index -> KafkaProducerMessage in
                    let paymentId = "pay_\(prefix)_\(index)"
                    let envelope = EventEnvelope(type: "payment_succeeded", merchantId: "burst_m", profileId: profile,
                                                 payload: .object(["payment_id": .string(paymentId), "status": .string("succeeded"), "amount": .number(100)]))
                    return KafkaProducerMessage(topic: TopicNames().paymentEvents, key: paymentId, value: try envelope.encoded())
                }
                for result in try await producer.sendBatch(messages) { if case .failure(let error) = result { throw error } }
            }
            func delivered(_ prefix: String) async throws -> (rows: Int, delivered: Int) {
                try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client in
                    for try await counts in try await client.query("""
                        SELECT count(*)::int, (count(*) FILTER (WHERE webhooks.delivery_state(delivery_status, event_id) = 'delivered'))::int FROM webhooks.events WHERE object_id LIKE \("pay_" + prefix + "_%")
                        """).decode((Int, Int).self) { return (counts.0, counts.1) }
                    return (0, 0)
                }
            }
            /// Attempts recorded for each delivery of this burst.
            func attempts(_ prefix: String) async throws -> [String: Int] {
                try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client in
                    var counts: [String: Int] = [:]
                    for try await (id, count) in try await client.query("""
                        SELECT event_id, webhooks.delivery_attempt_count(delivery_status, attempt_count, event_id) FROM webhooks.events WHERE object_id LIKE \("pay_" + prefix + "_%")
                        """).decode((String, Int).self) { counts[id] = count }
                    return counts
                }
            }
            /// Requests each receiver got for this burst, by delivery id (webhook-id).
            func received(_ prefix: String) -> [String: Int] {
                var counts: [String: Int] = [:]
                for receiver in receivers {
                    for request in receiver.requests where request.body.contains("\"pay_\(prefix)_") {
                        counts[request.headers["webhook-id"] ?? "", default: 0] += 1
                    }
                }
                return counts
            }
            let expected = Self.eventsPerBurst * receivers.count

            // Two replicas, one backlog: every pair delivered, no attempt sent twice.
            try await burst("a")
            #expect(await eventually(timeout: .seconds(240)) { (try? await delivered("a"))?.delivered == expected })
            // Each request the receivers got is one recorded attempt (a retry after a timeout on a
            // loaded machine is an attempt of its own, not a second sending of one).
            let first = received("a")
            let firstAttempts = try await attempts("a")
            let sentTwice = first.filter { firstAttempts[$0.key] != $0.value }
            #expect(first.count == expected && sentTwice.isEmpty, "\(first.count) ids; requests ≠ attempts for \(sentTwice.count): \(sentTwice.prefix(5))")
            #expect(try await delivered("a").rows == expected)

            // kill -9 one replica mid-burst; restart it: all delivered, rows once, duplicate
            // requests at most what the killed replica had in flight.
            try await burst("b")
            #expect(await eventually(timeout: .seconds(60)) { received("b").count >= expected / 4 })
            stack.processes["webhook-dispatcher"]?.crash()
            try await stack.startService("webhook-dispatcher")
            try await stack.waitUntilReady("webhook-dispatcher")
            let drained = await eventually(timeout: .seconds(240)) { (try? await delivered("b"))?.delivered == expected }
            let afterKill = try await delivered("b")
            #expect(drained, "\(afterKill)")
            let second = received("b")
            let secondAttempts = try await attempts("b")
            let duplicates = second.reduce(0) { $0 + max(0, $1.value - (secondAttempts[$1.key] ?? 0)) }
            #expect(second.count == expected, "every (event, endpoint) pair reached its receiver")
            #expect(duplicates <= Self.concurrency, "\(duplicates) duplicate requests after the kill")
            #expect(try await delivered("b").rows == expected)
            print("dispatcher reliability: burst a \(expected) deliveries by two replicas, \(sentTwice.count) sent twice; burst b after kill -9: \(duplicates) requests beyond the recorded attempts (in-flight bound \(Self.concurrency))")
            await producer.shutdown()
        }
    }
}
