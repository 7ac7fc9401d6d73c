import Foundation
import NIOCore
import PaywireModels
import PaywireRuntime
import PaywireTestSupport
import Testing

/// Revenue recovery end to end, on the sandbox: the seed's requests (a payment and a billing
/// connector account, the profile on `cascading`, the recovery call) with only host, ids and keys
/// changed; the merchant hears one final event per job and none per retry.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TestEnvironment.hasDatabase))
struct RecoveryTests {
    /// A compressed cascading ladder and no random delay, so a job's retries take seconds.
    static let environment = [
        "PAYWIRE_RECOVERY_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s",
        "PAYWIRE_RECOVERY_RANDOM_DELAY_MAX_MS": "0",
        "PAYWIRE_RECOVERY_INTERVAL_MS": "100",
    ]

    struct Merchant {
        var id: String
        var apiKey: String
        var profile: String
        var paymentAccount: String
        var headers: [(String, String)] { [("x-merchant-id", id), ("x-profile-id", profile), ("Authorization", apiKey)] }
    }

    func merchant(_ stack: PaywireStack, _ id: String, receiver: String, algorithm: String) async throws -> Merchant {
        let apiKey = try await stack.createMerchant(id, webhookURL: nil)
        let profile = try #require(try await stack.request(.GET, "/accounts/\(id)").json?["default_profile"] as? String)
        let endpoint = try await stack.request(.POST, "/account/\(id)/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                               body: #"{"webhook_url": "\#(receiver)", "events": ["payment_succeeded", "payment_failed"]}"#)
        #expect(endpoint.status == 200, "\(endpoint.body)")
        var merchant = Merchant(id: id, apiKey: apiKey, profile: profile, paymentAccount: "")
        let payment = try await stack.request(.POST, "/v2/connector-accounts", apiKey: apiKey, body: """
            {"connector_type": "payment_processor", "connector_name": "sandbox", "connector_account_details": {"auth_type": "NoKey"}, "profile_id": "\(profile)"}
            """, headers: merchant.headers)
        merchant.paymentAccount = try #require(payment.json?["merchant_connector_id"] as? String, "\(payment.body)")
        let switched = try await stack.request(.PUT, "/v2/profiles/\(profile)", apiKey: apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "\#(algorithm)"}"#, headers: merchant.headers)
        #expect(switched.status == 200, "\(switched.body)")
        return merchant
    }

    /// The seed's billing connector account, naming the payment account; returns its id.
    func billingAccount(_ stack: PaywireStack, _ merchant: Merchant, maxRetries: Int, threshold: Int) async throws -> String {
        let billing = try await stack.request(.POST, "/v2/connector-accounts", apiKey: merchant.apiKey, body: """
            {"connector_type": "billing_processor", "connector_name": "custombilling", "connector_account_details": {"auth_type": "NoKey"},
             "feature_metadata": {"revenue_recovery": {"max_retry_count": \(maxRetries), "billing_connector_retry_threshold": \(threshold),
               "billing_account_reference": {"\(merchant.paymentAccount)": "\(merchant.paymentAccount)"},
               "switch_payment_method_config": {"retry_threshold": 0, "time_threshold_after_creation": 0}}},
             "profile_id": "\(merchant.profile)"}
            """, headers: merchant.headers)
        return try #require(billing.json?["merchant_connector_id"] as? String, "\(billing.body)")
    }

    /// The seed's recovery call.
    func report(_ stack: PaywireStack, _ merchant: Merchant, billing: String, reference: String, token: String, action: String = "schedule_failed_payment",
                errorCode: String = "110", network: String = "Visa") async throws -> PaywireStack.HTTPResult {
        try await stack.request(.POST, "/v2/payments/recovery", apiKey: merchant.apiKey, body: """
            {"amount_details": {"order_amount": 2250, "currency": "USD"}, "merchant_reference_id": "\(reference)", "connector_transaction_id": "1831984",
             "connector_customer_id": "cus_recovery", "error": {"code": "\(errorCode)", "message": "Insufficient Funds"},
             "billing": {"address": {"state": "CA", "country": "US"}}, "payment_method_type": "card", "payment_method_sub_type": "credit",
             "payment_method_data": {"primary_processor_payment_method_token": "\(token)",
               "additional_payment_method_info": {"card_exp_month": "12", "card_exp_year": "25", "last_four_digits": 1997, "card_network": "\(network)", "card_issuer": "Wells Fargo NA", "card_type": "credit"}},
             "billing_started_at": "2024-05-29T08:10:58Z", "transaction_created_at": "2024-05-29T08:10:58Z", "attempt_status": "failure",
             "action": "\(action)", "billing_merchant_connector_id": "\(billing)", "payment_merchant_connector_id": "\(merchant.paymentAccount)"}
            """, headers: merchant.headers)
    }

    func finalEvents(_ receiver: WebhookReceiver, job: String) -> [[String: Any]] {
        receiver.requests.compactMap { request in
            guard let body = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
                  let object = (body["content"] as? [String: Any])?["object"] as? [String: Any], object["id"] as? String == job else { return nil }
            return body
        }
    }

    /// The job as the API shows it; empty while the scheduler has not taken the report yet (404).
    func job(_ stack: PaywireStack, _ merchant: Merchant, _ id: String) async throws -> [String: Any] {
        let answer = try await stack.request(.GET, "/v2/payments/\(id)/recovery", apiKey: merchant.apiKey, headers: merchant.headers)
        return answer.status == 200 ? answer.json ?? [:] : [:]
    }

    @Test func theSeedsStoryAndEveryWayAJobEnds() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with(extraEnvironment: Self.environment) { stack in
            let merchant = try await merchant(stack, "recovery_m", receiver: url, algorithm: "cascading")
            let billing = try await billingAccount(stack, merchant, maxRetries: 9, threshold: 0)

            // The seed's story: the billing platform's charge failed; Paywire's first two retries
            // decline softly (insufficient funds), the third succeeds.
            let accepted = try await report(stack, merchant, billing: billing, reference: "inv_seed", token: "tok_sandbox_decline2x_9995_seed")
            #expect(accepted.status == 202, "\(accepted.body)")
            let seedJob = try #require(accepted.json?["id"] as? String)
            #expect(await eventually(timeout: .seconds(60)) { !finalEvents(receiver, job: seedJob).isEmpty }, "\(stack.logs("recovery-scheduler"))")
            let event = try #require(finalEvents(receiver, job: seedJob).first)
            #expect(event["event_type"] as? String == "payment_succeeded")
            let object = try #require((event["content"] as? [String: Any])?["object"] as? [String: Any])
            #expect(object["status"] as? String == "succeeded" && object["merchant_reference_id"] as? String == "inv_seed")
            #expect((object["amount"] as? [String: Any])?["amount_captured"] as? Int == 2250)
            #expect(object["merchant_connector_id"] as? String == merchant.paymentAccount && object["connector"] as? String == "sandbox")
            #expect((object["connector_token_details"] as? [String: Any])?["token"] as? String == "tok_sandbox_decline2x_9995_seed")
            let recovery = try #require((object["feature_metadata"] as? [String: Any])?["revenue_recovery"] as? [String: Any])
            #expect(recovery["total_retry_count"] as? Int == 4, "the billing platform's failure, two declines, the success: \(recovery)")
            #expect(recovery["billing_connector_id"] as? String == billing && recovery["active_attempt_payment_connector_id"] as? String == merchant.paymentAccount)
            #expect(recovery["payment_connector_transmission"] as? String == "ConnectorCallSucceeded")
            #expect((recovery["billing_connector_payment_details"] as? [String: Any])?["connector_customer_id"] as? String == "cus_recovery")
            #expect(recovery["first_payment_attempt_pg_error_code"] as? String == "110")
            #expect(((recovery["billing_connector_payment_method_details"] as? [String: Any])?["value"] as? [String: Any])?["card_network"] as? String == "Visa")
            for key in ["payment_method_type", "payment_method_subtype", "invoice_next_billing_time", "invoice_billing_started_at_time",
                        "first_payment_attempt_network_decline_code", "first_payment_attempt_network_advice_code"] {
                #expect(recovery.keys.contains(key), "revenue_recovery.\(key)")
            }
            var state = try await job(stack, merchant, seedJob)
            #expect(state["status"] as? String == "succeeded" && state["total_retry_count"] as? Int == 4)
            let attempts = try #require(state["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status"] as? String } == ["declined", "declined", "succeeded"])
            #expect(attempts.prefix(2).allSatisfy { $0["decline_code"] as? String == "insufficient_funds" && $0["raw_decline_code"] as? String == "51" })

            // A hard decline on the first retry: one payment_failed, no further charge.
            let hard = try #require(try await report(stack, merchant, billing: billing, reference: "inv_hard", token: "tok_sandbox_decline5x_9987_hard").json?["id"] as? String)
            #expect(await eventually(timeout: .seconds(60)) { !finalEvents(receiver, job: hard).isEmpty })
            let hardObject = try #require((finalEvents(receiver, job: hard).first?["content"] as? [String: Any])?["object"] as? [String: Any])
            #expect((hardObject["error"] as? [String: Any])?["code"] as? String == "hard_decline")
            state = try await job(stack, merchant, hard)
            #expect((state["attempts"] as? [[String: Any]])?.count == 1 && state["finish_reason"] as? String == "hard_decline")

            // Cancelled while waiting for the billing platform's own tries (threshold 2: the first
            // report starts nothing): one payment_failed with reason cancelled, nothing charged.
            let patient = try await billingAccount(stack, merchant, maxRetries: 9, threshold: 2)
            let waiting = try #require(try await report(stack, merchant, billing: patient, reference: "inv_cancel", token: "tok_sandbox_4242").json?["id"] as? String)
            #expect(await eventually { (try? await job(stack, merchant, waiting))?["status"] as? String == "awaiting_billing_platform" })
            #expect(try await stack.request(.POST, "/v2/payments/\(waiting)/recovery/cancel", apiKey: merchant.apiKey, headers: merchant.headers).status == 202)
            #expect(await eventually(timeout: .seconds(30)) { !finalEvents(receiver, job: waiting).isEmpty })
            let cancelled = try #require((finalEvents(receiver, job: waiting).first?["content"] as? [String: Any])?["object"] as? [String: Any])
            #expect((cancelled["error"] as? [String: Any])?["code"] as? String == "cancelled")
            #expect((try await job(stack, merchant, waiting)["attempts"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await stack.request(.POST, "/v2/payments/\(waiting)/recovery/cancel", apiKey: merchant.apiKey, headers: merchant.headers).status == 409)

            // The threshold, exactly: one report below it starts nothing; the second (at it) does.
            let boundary = try #require(try await report(stack, merchant, billing: patient, reference: "inv_threshold", token: "tok_sandbox_4242").json?["id"] as? String)
            #expect(await eventually { (try? await job(stack, merchant, boundary))?["status"] as? String == "awaiting_billing_platform" })
            #expect(try await report(stack, merchant, billing: patient, reference: "inv_threshold", token: "tok_sandbox_4242").json?["id"] as? String == boundary, "one job per invoice")
            #expect(await eventually(timeout: .seconds(60)) { finalEvents(receiver, job: boundary).first?["event_type"] as? String == "payment_succeeded" })
            state = try await job(stack, merchant, boundary)
            #expect(state["billing_attempts"] as? Int == 2 && state["total_retry_count"] as? Int == 3)

            // Paid elsewhere while waiting: the job ends, and the merchant (who was told by the
            // billing platform) gets no event.
            let external = try #require(try await report(stack, merchant, billing: patient, reference: "inv_external", token: "tok_sandbox_4242").json?["id"] as? String)
            #expect(await eventually { (try? await job(stack, merchant, external))?["status"] as? String == "awaiting_billing_platform" })
            #expect(try await report(stack, merchant, billing: patient, reference: "inv_external", token: "tok_sandbox_4242", action: "success_payment_external").status == 202)
            #expect(await eventually { (try? await job(stack, merchant, external))?["status"] as? String == "paid_externally" })

            // Exhaustion at max_retry_count (3: the billing platform's failure and two retries).
            let short = try await billingAccount(stack, merchant, maxRetries: 3, threshold: 0)
            let exhausted = try #require(try await report(stack, merchant, billing: short, reference: "inv_exhaust", token: "tok_sandbox_decline9x_9995_exhaust").json?["id"] as? String)
            #expect(await eventually(timeout: .seconds(60)) { !finalEvents(receiver, job: exhausted).isEmpty })
            let exhaustedObject = try #require((finalEvents(receiver, job: exhausted).first?["content"] as? [String: Any])?["object"] as? [String: Any])
            #expect((exhaustedObject["error"] as? [String: Any])?["code"] as? String == "retries_exhausted")
            #expect(((exhaustedObject["feature_metadata"] as? [String: Any])?["revenue_recovery"] as? [String: Any])?["total_retry_count"] as? Int == 3)
            #expect((try await job(stack, merchant, exhausted)["attempts"] as? [[String: Any]])?.count == 2)

            // Monitoring records and never charges.
            #expect(try await stack.request(.PUT, "/v2/profiles/\(merchant.profile)", apiKey: merchant.apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "monitoring"}"#, headers: merchant.headers).status == 200)
            let watched = try #require(try await report(stack, merchant, billing: billing, reference: "inv_monitor", token: "tok_sandbox_4242").json?["id"] as? String)
            #expect(await eventually { (try? await job(stack, merchant, watched))?["status"] as? String == "monitoring" })

            // One final event per job, none for any retry; another merchant sees no job.
            try await stack.waitUntilQuiet()
            let events = receiver.requests.compactMap { request -> String? in
                ((try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any])?["content"] as? [String: Any]).flatMap { ($0["object"] as? [String: Any])?["id"] as? String }
            }
            #expect(events.sorted() == [seedJob, hard, waiting, boundary, exhausted].sorted(), "\(events)")
            #expect((try await job(stack, merchant, watched)["attempts"] as? [[String: Any]])?.isEmpty == true)
            let otherKey = try await stack.createMerchant("recovery_other", webhookURL: nil)
            #expect(try await stack.request(.GET, "/v2/payments/\(seedJob)/recovery", apiKey: otherKey, headers: [("x-merchant-id", "recovery_other")]).status == 404)
            #expect(try await stack.request(.POST, "/v2/payments/\(seedJob)/recovery/cancel", apiKey: otherKey, headers: [("x-merchant-id", "recovery_other")]).status == 404)

            // The saved payment methods' tokens crossed Kafka in commands (reports and retries)
            // sealed only. (The job's final event is the object the merchant's webhook gets,
            // which names its token as Hyperswitch's does.)
            let topics = TopicNames()
            let messages = try await TopicReader.read(brokers: stack.kafkaBrokers, topics: [topics.recoveryCommands, topics.paymentCommands, topics.deadLetter])
            #expect(messages.contains { $0.topic == topics.recoveryCommands } && messages.contains { $0.topic == topics.paymentCommands })
            let onTopics = messages.map { String(decoding: $0.value, as: UTF8.self) }.joined(separator: "\n")
            #expect(!onTopics.contains("tok_sandbox"), "a processor token on a topic in clear")
            #expect(onTopics.contains("sealed_processor_token") && onTopics.contains("sealed_processor_payment_token"))
        }
    }

    /// The seed's story against Stripe (the fake): the saved payment method is charged
    /// off-session for its customer, declines twice (insufficient funds), then succeeds.
    @Test func theSeedsStoryOnStripeChargesTheSavedCardOffSession() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with(extraEnvironment: Self.environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("recovery_stripe", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/recovery_stripe").json?["default_profile"] as? String)
            #expect(try await stack.request(.POST, "/account/recovery_stripe/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                            body: #"{"webhook_url": "\#(url)", "events": ["payment_succeeded", "payment_failed"]}"#).status == 200)
            let stripe = try await stack.createStripeAccount(merchantId: "recovery_stripe", apiKey: apiKey, webhookURL: nil).id
            let merchant = Merchant(id: "recovery_stripe", apiKey: apiKey, profile: profile, paymentAccount: stripe)
            #expect(try await stack.request(.PUT, "/v2/profiles/\(profile)", apiKey: apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "cascading"}"#, headers: merchant.headers).status == 200)
            let billing = try await billingAccount(stack, merchant, maxRetries: 9, threshold: 0)
            let jobId = try #require(try await report(stack, merchant, billing: billing, reference: "inv_stripe", token: "pm_paywire_decline2x_insufficient_funds").json?["id"] as? String)
            #expect(await eventually(timeout: .seconds(60)) { !finalEvents(receiver, job: jobId).isEmpty }, "\(stack.logs("recovery-scheduler")) \(stack.logs("payment-core"))")
            let event = try #require(finalEvents(receiver, job: jobId).first)
            #expect(event["event_type"] as? String == "payment_succeeded")
            let object = try #require((event["content"] as? [String: Any])?["object"] as? [String: Any])
            #expect(object["connector"] as? String == "stripe")
            #expect(((object["feature_metadata"] as? [String: Any])?["revenue_recovery"] as? [String: Any])?["total_retry_count"] as? Int == 4)
            let intentId = try #require(object["connector_transaction_id"] as? String)
            #expect(intentId.hasPrefix("pi_"))
            let intent = try await stack.request(.GET, "/v1/payment_intents/\(intentId)", service: "fake-stripe", apiKey: nil, headers: [("Authorization", "Bearer sk_test_paywire_0000000000000001")])
            #expect(intent.json?["customer"] as? String == "cus_recovery", "\(intent.body)")
            #expect(intent.json?["off_session"] as? Bool == true && intent.json?["payment_method"] as? String == "pm_paywire_decline2x_insufficient_funds")
            let attempts = try #require(try await job(stack, merchant, jobId)["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status"] as? String } == ["declined", "declined", "succeeded"])
            #expect(attempts.first?["decline_code"] as? String == "insufficient_funds")
            let stats = try await stack.request(.GET, "/_fake/stats", service: "fake-stripe", apiKey: nil)
            #expect(stats.json?["confirm_calls"] as? Int == 3, "one charge per retry")
        }
    }

    /// The seed's story with Adyen as the payment processor: the stored details are charged as a
    /// merchant-initiated (`ContAuth`) payment for the shopper, refused twice for want of funds,
    /// then authorised; the merchant hears one final webhook.
    @Test func theSeedsStoryOnAdyenChargesTheStoredDetailsAsContAuth() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with(extraEnvironment: Self.environment, fakeAdyen: true) { stack in
            let apiKey = try await stack.createMerchant("recovery_adyen", webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/recovery_adyen").json?["default_profile"] as? String)
            #expect(try await stack.request(.POST, "/account/recovery_adyen/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                            body: #"{"webhook_url": "\#(url)", "events": ["payment_succeeded", "payment_failed"]}"#).status == 200)
            let adyen = try await stack.createAdyenAccount(merchantId: "recovery_adyen", apiKey: apiKey, webhookURL: "\(stack.gatewayURL)/webhooks/recovery_adyen/adyen").id
            let merchant = Merchant(id: "recovery_adyen", apiKey: apiKey, profile: profile, paymentAccount: adyen)
            #expect(try await stack.request(.PUT, "/v2/profiles/\(profile)", apiKey: apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "cascading"}"#, headers: merchant.headers).status == 200)
            let billing = try await billingAccount(stack, merchant, maxRetries: 9, threshold: 0)
            let jobId = try #require(try await report(stack, merchant, billing: billing, reference: "inv_adyen", token: "paywire_decline2x_NOT_ENOUGH_BALANCE").json?["id"] as? String)
            #expect(await eventually(timeout: .seconds(60)) { !finalEvents(receiver, job: jobId).isEmpty }, "\(stack.logs("recovery-scheduler")) \(stack.logs("payment-core"))")
            let event = try #require(finalEvents(receiver, job: jobId).first)
            #expect(event["event_type"] as? String == "payment_succeeded")
            let object = try #require((event["content"] as? [String: Any])?["object"] as? [String: Any])
            #expect(object["connector"] as? String == "adyen")
            let attempts = try #require(try await job(stack, merchant, jobId)["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status"] as? String } == ["declined", "declined", "succeeded"])
            #expect(attempts.first?["decline_code"] as? String == "insufficient_funds")
            let stats = try await stack.request(.GET, "/_fake/stats", service: "fake-adyen", apiKey: nil)
            #expect(stats.json?["payments"] as? Int == 3 && stats.json?["charges"] as? Int == 1, "one authorisation per retry, one charge: \(stats.body)")
            #expect(stats.json?["cont_auth_payments"] as? Int == 3, "every retry merchant-initiated: \(stats.body)")
            try await stack.waitUntilQuiet()
            #expect(finalEvents(receiver, job: jobId).count == 1, "one final webhook")
        }
    }

    /// Moves the scheduler's clock (it runs with `PAYWIRE_RECOVERY_CLOCK_CONTROL=true`) and
    /// returns its new now.
    func advanceClock(_ stack: PaywireStack, by seconds: Int) async throws -> Date {
        let client = InternalAPIClient(baseURL: "http://127.0.0.1:\(stack.ports["recovery-scheduler"]!)", signer: try InternalAPISigner(encryptionKey: stack.encryptionKey), http: .shared)
        let answer = try await client.send(method: .POST, path: "/internal/recovery-clock", body: ByteBuffer(string: #"{"advance_seconds": \#(seconds)}"#), timeout: .seconds(5))
        let body = try #require(try JSONSerialization.jsonObject(with: Data(buffer: answer.body)) as? [String: Any])
        return try #require((body["now"] as? String).flatMap(PaywireJSON.parse))
    }

    /// `smart` on a driven clock: the wait follows the decline (payday for insufficient funds,
    /// hours for an unreachable issuer, minutes for a processing error), advice code 21 ends a
    /// job at once, and one Mastercard is never tried more than 10 times in a day across all of
    /// the merchant's jobs, however many are due at once.
    @Test func smartWaitsByDeclineAndKeepsMastercardsDailyLimit() async throws {
        // Twelve retries and their outcomes in one pass: beside the heaviest tests on two cores
        // they took minutes, so this one takes its turn with them.
        try await HeavyTests.gate.exclusive { try await smartStory() }
    }

    func smartStory() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with(extraEnvironment: Self.environment.merging(["PAYWIRE_RECOVERY_CLOCK_CONTROL": "true", "PAYWIRE_RECOVERY_BATCH": "25"]) { _, new in new }) { stack in
            let merchant = try await merchant(stack, "recovery_smart", receiver: url, algorithm: "smart")
            let billing = try await billingAccount(stack, merchant, maxRetries: 30, threshold: 0)
            let start = try await advanceClock(stack, by: 0)
            func nextRun(_ id: String) async throws -> Date? {
                (try await job(stack, merchant, id)["next_run"] as? String).flatMap(PaywireJSON.parse)
            }
            func scheduled(_ reference: String, token: String, errorCode: String, network: String = "Visa") async throws -> String {
                let answer = try await report(stack, merchant, billing: billing, reference: reference, token: token, errorCode: errorCode, network: network)
                let id = try #require(answer.json?["id"] as? String, "\(answer.body)")
                #expect(await eventually { (try? await job(stack, merchant, id))?["status"] as? String == "scheduled" }, "\(reference)")
                return id
            }
            // Different declines, different waits.
            let broke = try await scheduled("inv_funds", token: "tok_sandbox_decline1x_9995_funds", errorCode: "insufficient_funds")
            let unreachable = try await scheduled("inv_issuer", token: "tok_sandbox_decline1x_1091_issuer", errorCode: "issuer_unavailable")
            let glitch = try await scheduled("inv_glitch", token: "tok_sandbox_decline0x_0119_glitch", errorCode: "processing_error")
            let payday = try #require(try await nextRun(broke))
            let hours = try #require(try await nextRun(unreachable)).timeIntervalSince(start)
            let minutes = try #require(try await nextRun(glitch)).timeIntervalSince(start)
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = TimeZone(identifier: "UTC")!
            let day = utc.dateComponents([.day, .hour, .minute], from: payday)
            let lastDay = utc.range(of: .day, in: .month, for: payday)!.count
            #expect([1, 15, lastDay].contains(day.day!) && day.hour == 10 && day.minute == 0, "insufficient funds waits for a payday: \(payday)")
            #expect(payday.timeIntervalSince(start) >= 12 * 3600 && payday.timeIntervalSince(start) < 17 * 86_400, "\(payday)")
            #expect(hours >= 2 * 3600 - 5 && hours < 2 * 3600 + 60, "issuer unavailable: \(hours) s")
            #expect(minutes >= 600 - 5 && minutes < 660, "processing error: \(minutes) s")

            // Advice code 21 (the cardholder cancelled) on the first retry ends the job at once.
            let cancelledByCardholder = try await scheduled("inv_advice", token: "tok_sandbox_decline5x_0321_advice", errorCode: "processing_error", network: "Mastercard")

            // Twelve invoices on one Mastercard, all due in ten minutes.
            var sameCard: [String] = []
            for index in 0..<12 {
                sameCard.append(try await scheduled("inv_mc_\(index)", token: "tok_sandbox_0119", errorCode: "processing_error", network: "Mastercard"))
            }
            let moved = try await advanceClock(stack, by: 11 * 60)
            #expect(await eventually(timeout: .seconds(120)) { !finalEvents(receiver, job: glitch).isEmpty }, "the processing error retried after minutes")
            #expect(finalEvents(receiver, job: glitch).first?["event_type"] as? String == "payment_succeeded")
            #expect(await eventually(timeout: .seconds(60)) { (try? await job(stack, merchant, cancelledByCardholder))?["finish_reason"] as? String == "hard_decline" })
            let advised = try #require(try await job(stack, merchant, cancelledByCardholder)["attempts"] as? [[String: Any]])
            #expect(advised.count == 1 && advised.first?["advice_code"] as? String == "21" && advised.first?["decline_code"] as? String == "do_not_honor", "\(advised)")

            func attemptsOnTheCard() async throws -> Int {
                var total = 0
                for id in sameCard { total += (try await job(stack, merchant, id)["attempts"] as? [[String: Any]])?.count ?? 0 }
                return total
            }
            func allWaitingADay() async throws -> Bool {
                for id in sameCard {
                    let state = try await job(stack, merchant, id)
                    let attempts = state["attempts"] as? [[String: Any]] ?? []
                    guard state["status"] as? String == "scheduled", attempts.allSatisfy({ $0["status"] as? String == "declined" }),
                          let next = (state["next_run"] as? String).flatMap(PaywireJSON.parse), next.timeIntervalSince(moved) > 23 * 3600 else { return false }
                }
                return true
            }
            func allSettled() async throws -> Bool {
                for id in sameCard {
                    let state = try await job(stack, merchant, id)
                    let attempts = state["attempts"] as? [[String: Any]] ?? []
                    guard state["status"] as? String == "scheduled", attempts.allSatisfy({ $0["status"] as? String == "declined" }) else { return false }
                }
                return try await attemptsOnTheCard() == 10
            }
            // Twelve retries, their payments and their outcomes: allow for a loaded machine. A job
            // whose decline is decided while other jobs' tries are still being made sees fewer tries
            // on the card and may plan its next one by the decline alone (20 min): the limit is
            // checked again, under the card's lock, when that time comes.
            #expect(await eventually(timeout: .seconds(180)) { (try? await allSettled()) == true }, "every job on the card tried or held back")
            #expect(try await attemptsOnTheCard() == 10, "ten tries of the Mastercard in a day, the other two held back")
            // An hour later the declined ones would be due again by the decline alone (20 min); the limit holds them.
            _ = try await advanceClock(stack, by: 3600)
            try await stack.waitUntilQuiet()
            #expect(await eventually(timeout: .seconds(60)) { (try? await allWaitingADay()) == true }, "every job on the card waits for the day to pass")
            #expect(try await attemptsOnTheCard() == 10)
            let brokeAttempts = try await job(stack, merchant, broke)["attempts"] as? [[String: Any]]
            #expect(try await nextRun(broke) == payday && brokeAttempts?.isEmpty == true, "payday has not come")
        }
    }

    @Test func badReportsAreRefusedNamingTheField() async throws {
        try await PaywireStack.with(extraEnvironment: Self.environment) { stack in
            let merchant = try await merchant(stack, "recovery_bad", receiver: "http://127.0.0.1:1/unused", algorithm: "cascading")
            let billing = try await billingAccount(stack, merchant, maxRetries: 9, threshold: 0)
            func refused(_ body: String, field: String, status: Int = 400) async throws {
                let answer = try await stack.request(.POST, "/v2/payments/recovery", apiKey: merchant.apiKey, body: body, headers: merchant.headers)
                #expect(answer.status == status && (answer.json?["error"] as? [String: Any])?["field"] as? String == field, "\(field): \(answer.status) \(answer.body)")
            }
            let base = #""merchant_reference_id": "inv_x", "action": "schedule_failed_payment", "payment_method_data": {"primary_processor_payment_method_token": "tok_sandbox_4242"}"#
            try await refused(#"{\#(base), "amount_details": {"order_amount": 100, "currency": "USD"}, "billing_merchant_connector_id": "mca_nope", "payment_merchant_connector_id": "\#(merchant.paymentAccount)"}"#, field: "billing_merchant_connector_id", status: 404)
            try await refused(#"{\#(base), "amount_details": {"order_amount": 100, "currency": "USD"}, "billing_merchant_connector_id": "\#(merchant.paymentAccount)", "payment_merchant_connector_id": "\#(merchant.paymentAccount)"}"#, field: "billing_merchant_connector_id")
            try await refused(#"{\#(base), "amount_details": {"order_amount": 100, "currency": "USD"}, "billing_merchant_connector_id": "\#(billing)", "payment_merchant_connector_id": "\#(billing)"}"#, field: "payment_merchant_connector_id")
            let stray = try await stack.request(.POST, "/v2/connector-accounts", apiKey: merchant.apiKey, body: """
                {"connector_type": "payment_processor", "connector_name": "sandbox", "connector_account_details": {"auth_type": "NoKey"}, "profile_id": "\(merchant.profile)"}
                """, headers: merchant.headers).json?["merchant_connector_id"] as? String
            try await refused(#"{\#(base), "amount_details": {"order_amount": 100, "currency": "USD"}, "billing_merchant_connector_id": "\#(billing)", "payment_merchant_connector_id": "\#(stray ?? "")"}"#, field: "payment_merchant_connector_id")
            try await refused(#"{\#(base), "amount_details": {"order_amount": 0, "currency": "USD"}, "billing_merchant_connector_id": "\#(billing)", "payment_merchant_connector_id": "\#(merchant.paymentAccount)"}"#, field: "amount_details.order_amount")
            try await refused(#"{\#(base), "amount_details": {"order_amount": 100, "currency": "XYZ"}, "billing_merchant_connector_id": "\#(billing)", "payment_merchant_connector_id": "\#(merchant.paymentAccount)"}"#, field: "amount_details.currency")
            try await refused(#"{"merchant_reference_id": "inv_x", "action": "schedule_failed_payment", "amount_details": {"order_amount": 100, "currency": "USD"}, "billing_merchant_connector_id": "\#(billing)", "payment_merchant_connector_id": "\#(merchant.paymentAccount)"}"#, field: "payment_method_data.primary_processor_payment_method_token")
            try await refused(#"{"merchant_reference_id": "inv_x", "action": "retry_now", "billing_merchant_connector_id": "\#(billing)"}"#, field: "action")
            try await refused(#"{"action": "cancel_invoice", "merchant_reference_id": "inv\u0000x", "billing_merchant_connector_id": "\#(billing)"}"#, field: "merchant_reference_id")
            #expect(try await stack.request(.GET, "/v2/payments/pay_rec_nothing/recovery", apiKey: merchant.apiKey, headers: merchant.headers).status == 404)
            // no_action records the invoice and nothing more.
            let recorded = try await report(stack, merchant, billing: billing, reference: "inv_noted", token: "tok_sandbox_4242", action: "no_action")
            #expect(recorded.status == 202, "\(recorded.body)")
            let noted = try #require(recorded.json?["id"] as? String)
            let seen = await eventually { (try? await stack.request(.GET, "/v2/payments/\(noted)/recovery", apiKey: merchant.apiKey, headers: merchant.headers))?.json?["status"] as? String == "recorded" }
            let last = try await stack.request(.GET, "/v2/payments/\(noted)/recovery", apiKey: merchant.apiKey, headers: merchant.headers)
            #expect(seen, "\(last.body) \(stack.logs("recovery-scheduler")) \(stack.logs("gateway"))")
            #expect((last.json?["attempts"] as? [[String: Any]])?.isEmpty == true)
        }
    }
}
