import Foundation
import PaywireKafka
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// The seed's webhook story end to end, through the public API only: endpoints subscribed to
/// overlapping events, a failing endpoint retried on the ladder until it succeeds, the events log
/// with every attempt's request and response, manual retry and recover; and the dispatcher's own
/// view of each endpoint (health, inactive after a 410 or days of failures, rate limit).
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct EventsLogTests {
    func defaultProfile(_ stack: PaywireStack, _ merchantId: String) async throws -> String {
        try #require(try await stack.request(.GET, "/accounts/\(merchantId)").json?["default_profile"] as? String)
    }

    func createEndpoint(_ stack: PaywireStack, merchantId: String, profile: String, apiKey: String, url: String, events: [String], extra: String = "") async throws -> String {
        let eventList = events.map { "\"\($0)\"" }.joined(separator: ",")
        let created = try await stack.request(.POST, "/account/\(merchantId)/business_profile/\(profile)/webhooks", apiKey: apiKey, body: #"{"webhook_url": "\#(url)", "events": [\#(eventList)]\#(extra)}"#)
        return try #require(created.json?["webhook_endpoint_id"] as? String, "\(created.body)")
    }

    func payment(_ stack: PaywireStack, apiKey: String) async throws -> String {
        let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"))
        #expect(payment.json?["status"] as? String == "succeeded", "\(payment.body)")
        return try #require(payment.json?["payment_id"] as? String, "\(payment.body)")
    }

    func list(_ result: PaywireStack.HTTPResult) -> [[String: Any]] {
        ((try? JSONSerialization.jsonObject(with: Data(result.body.utf8))) as? [[String: Any]]) ?? []
    }

    func events(_ stack: PaywireStack, _ merchantId: String, _ query: String, apiKey: String? = PaywireStack.adminKey) async throws -> (events: [[String: Any]], total: Int) {
        let result = try await stack.request(.GET, "/events/\(merchantId)?\(query)", apiKey: apiKey)
        #expect(result.status == 200, "\(result.body)")
        return ((result.json?["events"] as? [[String: Any]]) ?? [], (result.json?["total_count"] as? Int) ?? -1)
    }

    func headerValue(_ pairs: Any?, _ name: String) -> String? {
        ((pairs as? [[String]]) ?? []).first { $0.first?.lowercased() == name.lowercased() }?.last
    }

    func expectError(_ result: PaywireStack.HTTPResult, status: Int, field: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(result.status): \(result.body)", sourceLocation: sourceLocation)
        #expect((result.json?["error"] as? [String: Any])?["field"] as? String == field, "\(result.body)", sourceLocation: sourceLocation)
    }

    @Test func theSeedsScenarioThreeEndpointsRetriesTheEventsLogManualRetryAndRecover() async throws {
        let first = WebhookReceiver(), second = WebhookReceiver(), flaky = WebhookReceiver()
        let firstURL = try await first.start(), secondURL = try await second.start(), flakyURL = try await flaky.start()
        defer { [first, second, flaky].forEach { $0.stop() } }
        flaky.respond(inOrder: [.internalServerError, .internalServerError, .internalServerError])
        // Loops that find work by being woken (outbox relays, the delivery worker) look by
        // themselves only once an hour here: every delivery, retry and recovery below arrives
        // because a notification or a next-due time woke them.
        try await PaywireStack.with(extraEnvironment: ["PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s", "PAYWIRE_IDLE_CHECK_SECONDS": "3600"]) { stack in
            let apiKey = try await stack.createMerchant("seed_m", webhookURL: nil)
            let otherKey = try await stack.createMerchant("seed_other", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "seed_m", apiKey: apiKey)
            let profile = try await defaultProfile(stack, "seed_m")
            let a = try await createEndpoint(stack, merchantId: "seed_m", profile: profile, apiKey: apiKey, url: firstURL + "/a", events: ["payment_succeeded", "refund_succeeded"])
            let b = try await createEndpoint(stack, merchantId: "seed_m", profile: profile, apiKey: apiKey, url: secondURL + "/b", events: ["payment_succeeded", "payment_failed"])
            let c = try await createEndpoint(stack, merchantId: "seed_m", profile: profile, apiKey: apiKey, url: flakyURL + "/c", events: ["payment_succeeded", "refund_succeeded"])

            // One payment: each endpoint gets it once; the flaky one after three 500s.
            let paymentId = try await payment(stack, apiKey: apiKey)
            #expect(await eventually(timeout: .seconds(30)) { webhookEvents(flaky, for: paymentId) == Array(repeating: "payment_succeeded", count: 4) })
            #expect(webhookEvents(first, for: paymentId) == ["payment_succeeded"])
            #expect(webhookEvents(second, for: paymentId) == ["payment_succeeded"])
            // One refund: only the endpoints subscribed to refund_succeeded get it.
            let refund = try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paymentId)", "amount": 100}"#)
            let refundId = try #require(refund.json?["refund_id"] as? String, "\(refund.body)")
            #expect(await eventually { webhookEvents(first, for: refundId) == ["refund_succeeded"] && webhookEvents(flaky, for: refundId) == ["refund_succeeded"] })
            #expect(webhookEvents(second, for: refundId).isEmpty, "an unsubscribed event reached an endpoint")

            // The events log: one entry per (event, endpoint), filters, every attempt. An outcome
            // is recorded after the receiver has answered, so the log is read once it has them all.
            #expect(await eventually { (try? await events(stack, "seed_m", "is_delivered=false").total) == 0 })
            let ofPayment = try await events(stack, "seed_m", "object_id=\(paymentId)")
            #expect(ofPayment.total == 3 && Set(ofPayment.events.compactMap { $0["webhook_endpoint_id"] as? String }) == [a, b, c])
            #expect(ofPayment.events.allSatisfy { $0["is_delivery_successful"] as? Bool == true && $0["event_class"] as? String == "payments" })
            #expect(try await events(stack, "seed_m", "event_types=refund_succeeded").total == 2)
            #expect(try await events(stack, "seed_m", "event_classes=refunds&webhook_endpoint_id=\(a)").total == 1)
            #expect(try await events(stack, "seed_m", "limit=2&offset=0").events.count == 2)
            #expect(try await events(stack, "seed_m", "created_after=2999-01-01T00:00:00Z").total == 0)
            #expect(try await events(stack, "seed_m", "", apiKey: apiKey).total == 5, "the merchant's own key reads its log")
            let flakyEvent = try #require(ofPayment.events.first { $0["webhook_endpoint_id"] as? String == c }?["event_id"] as? String)
            let attempts = list(try await stack.request(.GET, "/events/seed_m/\(flakyEvent)/attempts"))
            #expect(attempts.map { $0["delivery_attempt"] as? String } == ["automatic_retry", "automatic_retry", "automatic_retry", "initial_attempt"])
            #expect(attempts.map { ($0["response"] as? [String: Any])?["status_code"] as? Int } == [200, 500, 500, 500])
            #expect(attempts.allSatisfy { $0["initial_attempt_id"] as? String == flakyEvent })
            let sentBody = try #require(flaky.requests.first { webhookEvents(flaky, for: paymentId).isEmpty == false && $0.headers["webhook-id"] == flakyEvent }?.body)
            for attempt in attempts {
                let request = attempt["request"] as? [String: Any]
                #expect(request?["body"] as? String == sentBody, "the log keeps the exact body sent")
                #expect(headerValue(request?["headers"], "webhook-signature")?.hasPrefix("v1,") == true)
                #expect(headerValue(request?["headers"], "X-Webhook-Signature-512") != nil)
            }
            let detail = try await stack.request(.GET, "/events/seed_m/\(attempts[0]["event_id"] as! String)")
            #expect(detail.json?["event_id"] as? String == flakyEvent, "an attempt's id finds its delivery")
            #expect(detail.json?["attempt_count"] as? Int == 4 && detail.json?["delivery_status"] as? String == "delivered")

            // Another merchant's key, or ids that do not exist: 404.
            #expect(try await stack.request(.GET, "/events/seed_m", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.GET, "/events/seed_m/\(flakyEvent)/attempts", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.GET, "/events/seed_other/\(flakyEvent)", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.POST, "/events/seed_m/evt_unknown/retry").status == 404)
            expectError(try await stack.request(.GET, "/events/seed_m?limit=0"), status: 400, field: "limit")
            expectError(try await stack.request(.GET, "/events/seed_m?event_types=nope"), status: 400, field: "event_types")
            expectError(try await stack.request(.GET, "/events/seed_m?created_after=yesterday"), status: 400, field: "created_after")

            // Manual retry: sent now, answered in the seed's shape, received again with the same id.
            let firstEvent = try #require(ofPayment.events.first { $0["webhook_endpoint_id"] as? String == a }?["event_id"] as? String)
            let retried = try await stack.request(.POST, "/events/seed_m/\(firstEvent)/retry", apiKey: apiKey)
            #expect(retried.status == 200, "\(retried.body)")
            let answer = try #require(retried.json)
            #expect(Set(answer.keys) == ["event_id", "merchant_id", "profile_id", "webhook_endpoint_id", "object_id", "event_type", "event_class", "is_delivery_successful", "initial_attempt_id", "created", "request", "response", "delivery_attempt"])
            #expect(answer["delivery_attempt"] as? String == "manual_retry" && answer["initial_attempt_id"] as? String == firstEvent)
            #expect(answer["is_delivery_successful"] as? Bool == true && answer["object_id"] as? String == paymentId && answer["webhook_endpoint_id"] as? String == a)
            #expect((answer["event_id"] as? String) != firstEvent)
            #expect((answer["response"] as? [String: Any])?["status_code"] as? Int == 200)
            #expect(first.requests.filter { $0.headers["webhook-id"] == firstEvent }.count == 2)

            // A manual retry to an endpoint slower than the answer time (5 s) is answered 202 then
            // (not after the endpoint), goes on, and ends recorded; meanwhile it holds the
            // delivery (409), and afterwards the delivery can be retried again.
            first.respond(after: .seconds(15), onPath: "/a")
            let slowRetry = try await stack.request(.POST, "/events/seed_m/\(firstEvent)/retry", apiKey: apiKey)
            #expect(slowRetry.status == 202, "\(slowRetry.body)")
            #expect(slowRetry.json?["event_id"] as? String == firstEvent && slowRetry.json?["status"] as? String == "sending", "\(slowRetry.body)")
            expectError(try await stack.request(.POST, "/events/seed_m/\(firstEvent)/retry", apiKey: apiKey), status: 409, field: "event_id")
            #expect(await eventually(timeout: .seconds(60)) {
                guard let attempts = try? await stack.request(.GET, "/events/seed_m/\(firstEvent)/attempts") else { return false }
                return list(attempts).filter { $0["delivery_attempt"] as? String == "manual_retry" && $0["is_delivery_successful"] as? Bool == true }.count == 2
            })
            first.respond(after: .zero, onPath: "/a")
            #expect(try await stack.request(.POST, "/events/seed_m/\(firstEvent)/retry", apiKey: apiKey).status == 200)
            #expect(first.requests.filter { $0.headers["webhook-id"] == firstEvent }.count == 4)

            // Recover: a delivery that ran out of retries gets one more attempt once asked.
            second.respond(with: .internalServerError)
            let secondPayment = try await payment(stack, apiKey: apiKey)
            #expect(await eventually(timeout: .seconds(30)) {
                (try? await events(stack, "seed_m", "object_id=\(secondPayment)&webhook_endpoint_id=\(b)").events.first?["delivery_status"] as? String) == "retries_exceeded"
            })
            #expect(webhookEvents(second, for: secondPayment).count == 5, "the first attempt and four retries")
            second.respond(with: .ok)
            let since = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
            let recovered = try await stack.request(.POST, "/events/seed_m/recover", apiKey: apiKey, body: #"{"since": "\#(since)", "webhook_endpoint_id": "\#(b)"}"#)
            #expect(recovered.status == 200 && recovered.json?["scheduled"] as? Int == 1, "\(recovered.body)")
            #expect(await eventually(timeout: .seconds(15)) { webhookEvents(second, for: secondPayment).count == 6 })
            #expect(await eventually {
                (try? await events(stack, "seed_m", "object_id=\(secondPayment)&webhook_endpoint_id=\(b)").events.first?["delivery_status"] as? String) == "delivered"
            })
            let recoveredEvent = try #require(try await events(stack, "seed_m", "object_id=\(secondPayment)&webhook_endpoint_id=\(b)").events.first?["event_id"] as? String)
            #expect(list(try await stack.request(.GET, "/events/seed_m/\(recoveredEvent)/attempts")).first?["delivery_attempt"] as? String == "manual_retry")
            // Nothing left to recover; the window and the scope are checked.
            #expect(try await stack.request(.POST, "/events/seed_m/recover", body: #"{"since": "\#(since)", "profile_id": "\#(profile)"}"#).json?["scheduled"] as? Int == 0)
            let tooOld = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-15 * 86400))
            expectError(try await stack.request(.POST, "/events/seed_m/recover", body: #"{"since": "\#(tooOld)", "profile_id": "\#(profile)"}"#), status: 400, field: "since")
            expectError(try await stack.request(.POST, "/events/seed_m/recover", body: #"{"since": "\#(since)"}"#), status: 400, field: "webhook_endpoint_id")
        }
    }

    @Test func endpointHealthInactiveAfterA410OrDaysOfFailuresActiveAgainAfterAnUpdateAndARateLimit() async throws {
        let gone = WebhookReceiver(), failing = WebhookReceiver(), limited = WebhookReceiver()
        let goneURL = try await gone.start(), failingURL = try await failing.start(), limitedURL = try await limited.start()
        defer { [gone, failing, limited].forEach { $0.stop() } }
        gone.respond(with: .gone)
        failing.respond(with: .serviceUnavailable)
        try await PaywireStack.with(extraEnvironment: ["PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1s"]) { stack in
            let apiKey = try await stack.createMerchant("health_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "health_m", apiKey: apiKey)
            let profile = try await defaultProfile(stack, "health_m")
            let endpoints = "/account/health_m/business_profile/\(profile)/webhooks"
            let goneEndpoint = try await createEndpoint(stack, merchantId: "health_m", profile: profile, apiKey: apiKey, url: goneURL + "/g", events: ["payment_succeeded"])
            let failingEndpoint = try await createEndpoint(stack, merchantId: "health_m", profile: profile, apiKey: apiKey, url: failingURL + "/f", events: ["payment_succeeded"])
            let limitedEndpoint = try await createEndpoint(stack, merchantId: "health_m", profile: profile, apiKey: apiKey, url: limitedURL + "/l", events: ["payment_succeeded"], extra: #", "rate_limit": 2"#)
            #expect(try await stack.request(.GET, "\(endpoints)/\(limitedEndpoint)", apiKey: apiKey).json?["rate_limit"] as? Int == 2)
            expectError(try await stack.request(.POST, "\(endpoints)/\(limitedEndpoint)", apiKey: apiKey, body: #"{"rate_limit": 0}"#), status: 400, field: "rate_limit")

            // A 410 makes the endpoint inactive at once: the next payment sends it nothing.
            let firstPayment = try await payment(stack, apiKey: apiKey)
            #expect(await eventually { gone.requests.count == 1 })
            #expect(await eventually {
                let endpoint = try? await stack.request(.GET, "\(endpoints)/\(goneEndpoint)", apiKey: apiKey).json
                return endpoint?["status"] as? String == "inactive" && (endpoint?["health"] as? [String: Any])?["inactive_reason"] as? String == "answered_410"
            })
            _ = try await payment(stack, apiKey: apiKey)
            #expect(await eventually {
                (try? await events(stack, "health_m", "webhook_endpoint_id=\(goneEndpoint)&is_delivered=false").events.map { $0["status_reason"] as? String }) == ["endpoint_inactive", "endpoint_gone"]
            })
            #expect(gone.requests.count == 1, "an inactive endpoint was sent a request")
            // The merchant fixes the endpoint and updates it: active again.
            gone.respond(with: .ok)
            #expect(try await stack.request(.POST, "\(endpoints)/\(goneEndpoint)", apiKey: apiKey, body: #"{"status": "active"}"#).status == 200)
            let thirdPayment = try await payment(stack, apiKey: apiKey)
            #expect(await eventually { webhookEvents(gone, for: thirdPayment) == ["payment_succeeded"] })
            // Health is written just after the delivery's outcome: wait for it, not for the receipt.
            var healthy: [String: Any] = [:]
            #expect(await eventually {
                healthy = (try? await stack.request(.GET, "\(endpoints)/\(goneEndpoint)", apiKey: apiKey).json) ?? [:]
                return (healthy["health"] as? [String: Any])?["last_success_at"] is String
            })
            let health = try #require(healthy["health"] as? [String: Any])
            #expect(healthy["status"] as? String == "active" && health["state"] as? String == "active" && health["last_success_at"] is String, "\(healthy)")
            #expect(health["consecutive_failures"] as? Int == 0 && health["attempts_last_hour"] as? Int == 2 && health["success_rate_last_hour"] as? Double == 0.5, "\(health)")

            // Failing with no success for longer than allowed (5 days; the clock moved here by
            // moving the start of the failures back): inactive, logged, visible.
            #expect(await eventually(timeout: .seconds(20)) {
                let deliveries = (try? await events(stack, "health_m", "webhook_endpoint_id=\(failingEndpoint)").events) ?? []
                return deliveries.count == 3 && deliveries.allSatisfy { $0["delivery_status"] as? String == "retries_exceeded" }
            })
            let failingHealth = try #require(try await stack.request(.GET, "\(endpoints)/\(failingEndpoint)", apiKey: apiKey).json?["health"] as? [String: Any])
            #expect(failingHealth["state"] as? String == "active" && (failingHealth["consecutive_failures"] as? Int ?? 0) >= 2 && failingHealth["success_rate_last_hour"] as? Double == 0, "\(failingHealth)")
            try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client in
                try await client.query("UPDATE webhooks.endpoint_health SET failing_since = now() - interval '6 days' WHERE endpoint_id = \(failingEndpoint)")
            }
            let before = failing.requests.count
            _ = try await payment(stack, apiKey: apiKey)
            #expect(await eventually {
                (try? await stack.request(.GET, "\(endpoints)/\(failingEndpoint)", apiKey: apiKey).json?["health"] as? [String: Any])?["inactive_reason"] as? String == "failing_too_long"
            })
            #expect(failing.requests.count == before + 1, "one more failure, then nothing")
            #expect(stack.logs("webhook-dispatcher").contains("webhook endpoint made inactive"))
            _ = firstPayment

            // Rate limit 2/s: the limited endpoint's deliveries are spread out, the others are not.
            let start = limited.requests.count
            for _ in 0..<6 { _ = try await payment(stack, apiKey: apiKey) }
            #expect(await eventually(timeout: .seconds(30)) { limited.requests.count == start + 6 })
            let times = limited.requests.suffix(6).map(\.at)
            let span = times.max()! - times.min()!
            #expect(span >= .milliseconds(1400), "6 requests at 2 per second took only \(span)")
        }
    }
}

/// Opt-in ordering: an endpoint created with `"ordering": "per_object"` gets one object's events in
/// the order they were published, and a failing delivery holds back only that object.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct PerObjectOrderingTests {
    @Test func anOrderedEndpointGetsAnObjectsEventsInPublishedOrderAndAFailureHoldsBackOnlyThatObject() async throws {
        let ordered = WebhookReceiver(), unordered = WebhookReceiver()
        let orderedURL = try await ordered.start(), unorderedURL = try await unordered.start()
        defer { ordered.stop(); unordered.stop() }
        ordered.fail(3, whenBodyContains: "\"pay_first\"")
        try await PaywireStack.with(extraEnvironment: ["PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s,1s"]) { stack in
            _ = try await stack.createMerchant("order_m", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/order_m").json?["default_profile"] as? String)
            let types = ["payment_processing", "payment_authorized", "payment_captured", "payment_succeeded"]
            let typeList = types.map { "\"\($0)\"" }.joined(separator: ",")
            let created = try await stack.request(.POST, "/account/order_m/business_profile/\(profile)/webhooks", body: #"{"webhook_url": "\#(orderedURL)/o", "events": [\#(typeList)], "ordering": "per_object"}"#)
            #expect(created.json?["ordering"] as? String == "per_object", "\(created.body)")
            let plain = try await stack.request(.POST, "/account/order_m/business_profile/\(profile)/webhooks", body: #"{"webhook_url": "\#(unorderedURL)/u", "events": [\#(typeList)]}"#)
            #expect(plain.json?["ordering"] as? String == "none")
            #expect(try await stack.request(.POST, "/account/order_m/business_profile/\(profile)/webhooks", body: #"{"webhook_url": "\#(unorderedURL)/x", "events": [\#(typeList)], "ordering": "fifo"}"#).status == 400)

            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: KafkaConfiguration(bootstrapServers: stack.kafkaBrokers)), logger: TestEnvironment.logger("order", level: .critical))
            func publish(_ paymentId: String, _ eventTypes: [String]) async throws {
                let messages = try eventTypes.map { type in
                    KafkaProducerMessage(topic: TopicNames().paymentEvents, key: paymentId, value: try EventEnvelope(
                        type: type, merchantId: "order_m", profileId: profile, payload: .object(["payment_id": .string(paymentId), "status": .string(type)])).encoded())
                }
                for result in try await producer.sendBatch(messages) { if case .failure(let error) = result { throw error } }
            }
            // The events below carry no configuration version (a service's would), so nothing
            // makes the fan-out wait for the endpoints just created: wait until the dispatcher's
            // copy has read them (its group at the end of the configuration topic).
            try await stack.waitUntilQuiet()
            try await publish("pay_first", types)
            try await publish("pay_second", ["payment_processing"])
            #expect(await eventually(timeout: .seconds(30)) { Set(webhookEvents(ordered, for: "pay_first")) == Set(types) && webhookEvents(ordered, for: "pay_second").count == 1 })

            // In order, each event's requests (three failures of the first included) before the next's.
            var seen: [String] = []
            for type in webhookEvents(ordered, for: "pay_first") where seen.last != type { seen.append(type) }
            #expect(seen == types, "arrival order \(webhookEvents(ordered, for: "pay_first"))")
            #expect(webhookEvents(ordered, for: "pay_first").count == types.count + 3)
            // The failing object held back only itself, and only at the ordered endpoint.
            let firstSuccess = try #require(ordered.requests.filter { $0.body.contains("\"pay_first\"") }.dropFirst(3).first?.at)
            let other = try #require(ordered.requests.first { $0.body.contains("\"pay_second\"") }?.at)
            #expect(other < firstSuccess, "another object waited behind the failing one")
            #expect(unordered.requests.filter { $0.body.contains("\"pay_first\"") }.allSatisfy { $0.at < firstSuccess }, "the unordered endpoint waited")
            #expect(Set(webhookEvents(unordered, for: "pay_first")) == Set(types))
            await producer.shutdown()
        }
    }
}

extension EventsLogTests {
    /// An endpoint made inactive by a 410, reactivated, and recovered at once (no wait between the
    /// two calls): the recover acts on the configuration the reactivation made, so every recovered
    /// delivery is sent — 20 times in a row. Both routes read the endpoint's status alike.
    @Test func reactivateThenRecoverAtOnceDeliversEveryRecoveredDelivery() async throws {
        let receiver = WebhookReceiver()
        let receiverURL = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            let apiKey = try await stack.createMerchant("revive_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "revive_m", apiKey: apiKey)
            let profile = try await defaultProfile(stack, "revive_m")
            let endpoints = "/account/revive_m/business_profile/\(profile)/webhooks"
            let endpoint = try await createEndpoint(stack, merchantId: "revive_m", profile: profile, apiKey: apiKey, url: receiverURL + "/r", events: ["payment_succeeded"])
            let since = PaywireJSON.format(Date().addingTimeInterval(-60))
            for round in 0..<20 {
                // The endpoint answers 410: its delivery ends and the dispatcher makes it inactive.
                receiver.respond(with: .gone)
                let paymentId = try await payment(stack, apiKey: apiKey)
                #expect(await eventually {
                    (try? await events(stack, "revive_m", "object_id=\(paymentId)").events.first?["status_reason"] as? String) == "endpoint_gone"
                }, "round \(round)")
                #expect(await eventually {
                    (try? await stack.request(.GET, "\(endpoints)/\(endpoint)", apiKey: apiKey).json?["status"] as? String) == "inactive"
                }, "round \(round)")
                // Fixed, reactivated and recovered in one breath.
                receiver.respond(with: .ok)
                #expect(try await stack.request(.POST, "\(endpoints)/\(endpoint)", apiKey: apiKey, body: #"{"status": "active"}"#).status == 200)
                let recovered = try await stack.request(.POST, "/events/revive_m/recover", apiKey: apiKey, body: #"{"since": "\#(since)", "webhook_endpoint_id": "\#(endpoint)"}"#)
                #expect(recovered.status == 200 && recovered.json?["scheduled"] as? Int == 1, "round \(round): \(recovered.body)")
                // Both routes say active at once.
                let single = try await stack.request(.GET, "\(endpoints)/\(endpoint)", apiKey: apiKey).json
                let listBody = try await stack.request(.GET, endpoints, apiKey: apiKey).body
                let listed = (try? JSONSerialization.jsonObject(with: Data(listBody.utf8)) as? [[String: Any]])?.first { $0["webhook_endpoint_id"] as? String == endpoint }
                #expect(single?["status"] as? String == "active" && listed?["status"] as? String == "active", "round \(round)")
                #expect(await eventually(timeout: .seconds(60)) {
                    (try? await events(stack, "revive_m", "object_id=\(paymentId)").events.first?["delivery_status"] as? String) == "delivered"
                }, "round \(round): the recovered delivery was not sent")
                if webhookEvents(receiver, for: paymentId).filter({ $0 == "payment_succeeded" }).count < 2 {
                    Issue.record("round \(round): the receiver did not get the recovered delivery")
                }
            }
        }
    }
}
