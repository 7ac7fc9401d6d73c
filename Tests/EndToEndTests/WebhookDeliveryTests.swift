import Crypto
import Foundation
import PaywireTestSupport
import PostgresNIO
import Testing

/// The dispatcher as a merchant meets it: isolation between endpoints, the retry ladder and what
/// each answer means, endpoint changes that apply to deliveries already queued, signatures that
/// third-party verifiers accept, and the private-network guard.
// The limit counts the wait for the heavy-test gate (the slow-endpoint test takes turns with
// schemathesis and the reliability bursts), so it is generous; the waits inside bound each test.
@Suite(.serialized, .timeLimit(.minutes(20)), .enabled(if: TestEnvironment.hasDatabase))
struct WebhookDeliveryTests {
    func paymentId(_ stack: PaywireStack, apiKey: String) async throws -> String {
        let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"))
        return try #require(payment.json?["payment_id"] as? String, "\(payment.body)")
    }

    func defaultProfile(_ stack: PaywireStack, _ merchantId: String) async throws -> String {
        try #require(try await stack.request(.GET, "/accounts/\(merchantId)").json?["default_profile"] as? String)
    }

    func createEndpoint(_ stack: PaywireStack, merchantId: String, apiKey: String, url: String, events: [String] = ["payment_succeeded"]) async throws -> (id: String, secret: String) {
        let profile = try await defaultProfile(stack, merchantId)
        let eventList = events.map { "\"\($0)\"" }.joined(separator: ",")
        let created = try await stack.request(.POST, "/account/\(merchantId)/business_profile/\(profile)/webhooks", apiKey: apiKey, body: #"{"webhook_url": "\#(url)", "events": [\#(eventList)]}"#)
        return (try #require(created.json?["webhook_endpoint_id"] as? String, "\(created.body)"), try #require(created.json?["signing_secret"] as? String))
    }

    /// Each delivery row of an object: (endpoint, status, reason, attempts).
    func deliveries(_ stack: PaywireStack, objectId: String) async throws -> [(String?, String, String?, Int)] {
        try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client in
            var rows: [(String?, String, String?, Int)] = []
            for try await row in try await client.query("""
                SELECT webhook_endpoint_id, webhooks.delivery_state(delivery_status, event_id), status_reason,
                       webhooks.delivery_attempt_count(delivery_status, attempt_count, event_id) FROM webhooks.events WHERE object_id = \(objectId) ORDER BY webhook_endpoint_id
                """).decode((String?, String, String?, Int).self) { rows.append(row) }
            return rows
        }
    }

    /// Two merchants whose endpoints share one host and port (a relay, a no-code platform): one
    /// answers after 10 s with 50 deliveries queued. The other's webhook arrives at once and its
    /// first attempt succeeds; the slow one has exactly its in-flight limit of requests open.
    @Test func aSlowEndpointNeverDelaysAnotherMerchantsWebhooksOnTheSameHost() async throws {
        let shared = WebhookReceiver()
        let sharedURL = try await shared.start()
        defer { shared.stop() }
        shared.respond(after: .seconds(10), onPath: "/slow")
        // Timed, so it takes its turn with the tests that load the machine (schemathesis, the
        // reliability bursts) rather than running beside them.
        try await HeavyTests.gate.exclusive { try await PaywireStack.with { stack in
            let slowKey = try await stack.createMerchant("slow_m", webhookURL: sharedURL + "/slow")
            let fastKey = try await stack.createMerchant("fast_m", webhookURL: sharedURL + "/fast")
            try await stack.createSandboxAccount(merchantId: "slow_m", apiKey: slowKey)
            try await stack.createSandboxAccount(merchantId: "fast_m", apiKey: fastKey)
            // Far more slow deliveries than the endpoint may hold in flight.
            for _ in 0..<50 { _ = try await paymentId(stack, apiKey: slowKey) }
            // The slow endpoint fills its in-flight limit of 10 — not the 8 connections an HTTP
            // client keeps per host by default, which would also be every connection the host has.
            #expect(await eventually(timeout: .seconds(60)) { shared.openNow(path: "/slow") == 10 })
            let started = ContinuousClock.now
            let fastPayment = try await paymentId(stack, apiKey: fastKey)
            #expect(await eventually(timeout: .seconds(30)) { webhookEvents(shared, for: fastPayment) == ["payment_succeeded"] })
            let waited = ContinuousClock.now - started
            print("the fast merchant's webhook arrived \(waited) after its payment was made, beside 10 slow requests on its host")
            // Its first attempt succeeded: no wait for a connection recorded as a failed attempt.
            #expect(try await eventually(timeout: .seconds(30)) { try await deliveries(stack, objectId: fastPayment).map { "\($0.1)/\($0.3)" } == ["delivered/1"] })
            // The slow endpoint never had more than its limit in flight.
            #expect(shared.mostAtOnce(path: "/slow") == 10, "\(shared.mostAtOnce(path: "/slow")) requests in flight at once at the slow endpoint")
        } }
    }

    /// A receiver reached over IPv6 (bracketed in the URL) gets its webhooks, signed and on the
    /// first attempt; the stack here allows loopback, as a development stack does.
    @Test func anIPv6ReceiverGetsItsWebhooks() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start(host: "::1")
        defer { receiver.stop() }
        #expect(url.hasPrefix("http://[::1]:"))
        try await PaywireStack.with { stack in
            let apiKey = try await stack.createMerchant("v6_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "v6_m", apiKey: apiKey)
            let endpoint = try await createEndpoint(stack, merchantId: "v6_m", apiKey: apiKey, url: url + "/v6")
            let listed = try await stack.request(.GET, "/account/v6_m/business_profile/\(try await defaultProfile(stack, "v6_m"))/webhooks/\(endpoint.id)", apiKey: apiKey)
            #expect(listed.json?["webhook_url"] as? String == url + "/v6", "\(listed.body)")
            let payment = try await paymentId(stack, apiKey: apiKey)
            #expect(await eventually(timeout: .seconds(60)) { webhookEvents(receiver, for: payment) == ["payment_succeeded"] })
            #expect(try await eventually(timeout: .seconds(30)) { try await deliveries(stack, objectId: payment).map { "\($0.1)/\($0.3)" } == ["delivered/1"] })
        }
    }

    @Test func retriesFollowTheLadderEachAnswerMeansWhatItShouldAndEndpointChangesApplyAtOnce() async throws {
        let flaky = WebhookReceiver(), broken = WebhookReceiver(), gone = WebhookReceiver(), busy = WebhookReceiver()
        let flakyURL = try await flaky.start(), brokenURL = try await broken.start(), goneURL = try await gone.start(), busyURL = try await busy.start()
        defer { [flaky, broken, gone, busy].forEach { $0.stop() } }
        flaky.respond(inOrder: [.internalServerError, .internalServerError, .internalServerError])
        broken.respond(with: .internalServerError)
        gone.respond(with: .gone)
        busy.respond(inOrder: [.tooManyRequests])
        busy.respond(headers: ["Retry-After": "3"])
        try await PaywireStack.with(extraEnvironment: ["PAYWIRE_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s,1s,1s,1s,1s,1s"]) { stack in
            let apiKey = try await stack.createMerchant("ladder_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "ladder_m", apiKey: apiKey)
            let flakyEndpoint = try await createEndpoint(stack, merchantId: "ladder_m", apiKey: apiKey, url: flakyURL + "/f")
            let brokenEndpoint = try await createEndpoint(stack, merchantId: "ladder_m", apiKey: apiKey, url: brokenURL + "/b")
            let goneEndpoint = try await createEndpoint(stack, merchantId: "ladder_m", apiKey: apiKey, url: goneURL + "/g")
            let busyEndpoint = try await createEndpoint(stack, merchantId: "ladder_m", apiKey: apiKey, url: busyURL + "/z")
            let payment = try await paymentId(stack, apiKey: apiKey)

            // 500 three times, then 200: delivered on the fourth attempt, every attempt logged.
            #expect(await eventually { (try? await deliveries(stack, objectId: payment))?.first { $0.0 == flakyEndpoint.id }?.1 == "delivered" })
            #expect(flaky.requests.count == 4)
            // 410: that delivery ends at once.
            #expect(await eventually { (try? await deliveries(stack, objectId: payment))?.first { $0.0 == goneEndpoint.id }.map { $0.1 == "cancelled" && $0.2 == "endpoint_gone" } == true })
            #expect(gone.requests.count == 1)
            // 429 with Retry-After: 3 waits three seconds, not the ladder's one.
            #expect(await eventually { busy.requests.count == 2 })
            let attempts = try await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client -> [Date] in
                var times: [Date] = []
                for try await time in try await client.query("""
                    SELECT a.attempted_at FROM webhooks.delivery_attempts a JOIN webhooks.events e ON e.event_id = a.event_id
                    WHERE e.webhook_endpoint_id = \(busyEndpoint.id) ORDER BY a.attempted_at
                    """).decode(Date.self) { times.append(time) }
                return times
            }
            #expect(attempts.count == 2 && attempts[1].timeIntervalSince(attempts[0]) >= 2.5, "\(attempts)")

            // The broken endpoint keeps failing; once deprecated it gets no further attempt.
            #expect(await eventually { broken.requests.count >= 2 })
            let profile = try await defaultProfile(stack, "ladder_m")
            #expect(try await stack.request(.DELETE, "/account/ladder_m/business_profile/\(profile)/webhooks/\(brokenEndpoint.id)", apiKey: apiKey).status == 200)
            #expect(await eventually { (try? await deliveries(stack, objectId: payment))?.first { $0.0 == brokenEndpoint.id }.map { $0.1 == "cancelled" && $0.2 == "endpoint_deprecated" } == true })
            let recorded = try #require(try await deliveries(stack, objectId: payment).first { $0.0 == brokenEndpoint.id })
            #expect(broken.requests.count == recorded.3, "every request the endpoint got is an attempt on record, and none came after")
            // No request ever left without the Standard Webhooks headers its endpoint is due.
            for request in flaky.requests + broken.requests + gone.requests + busy.requests {
                #expect(request.headers["webhook-signature"]?.hasPrefix("v1,") == true && request.headers["webhook-id"] != nil)
            }
        }
    }

    @Test func signaturesVerifyWithTheStandardWebhooksLibraryAndAnIndependentHMAC() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            let apiKey = try await stack.createMerchant("sig_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "sig_m", apiKey: apiKey)
            let endpoint = try await createEndpoint(stack, merchantId: "sig_m", apiKey: apiKey, url: url + "/sig")
            let profile = try await defaultProfile(stack, "sig_m")
            // A rotation: the new secret signs, the old one keeps verifying for 24 hours.
            let rotated = try await stack.request(.POST, "/account/sig_m/business_profile/\(profile)/webhooks/\(endpoint.id)/rotate_secret", apiKey: apiKey)
            let newSecret = try #require(rotated.json?["signing_secret"] as? String)
            let hashKey = try #require(try await stack.request(.GET, "/account/sig_m/business_profile/\(profile)", apiKey: apiKey).json?["payment_response_hash_key"] as? String)
            let payment = try await paymentId(stack, apiKey: apiKey)
            #expect(await eventually { webhookEvents(receiver, for: payment) == ["payment_succeeded"] })
            let request = try #require(receiver.requests.first)

            // Hyperswitch's signature: hex HMAC-SHA512 of the exact body, computed here.
            let expected = HMAC<SHA512>.authenticationCode(for: Data(request.body.utf8), using: SymmetricKey(data: Data(hashKey.utf8)))
            #expect(request.headers["x-webhook-signature-512"] == expected.map { String(format: "%02x", $0) }.joined())
            // Standard Webhooks, by the reference library, with each secret.
            for secret in [endpoint.secret, newSecret] {
                let verdict = try verifyWithStandardWebhooks(secret: secret, body: request.body, headers: request.headers)
                #expect(verdict == "verified", "\(secret.prefix(10))…: \(verdict)")
            }
            #expect(try verifyWithStandardWebhooks(secret: "whsec_" + Data(repeating: 7, count: 24).base64EncodedString(), body: request.body, headers: request.headers) != "verified")
            #expect(try verifyWithStandardWebhooks(secret: newSecret, body: request.body + " ", headers: request.headers) != "verified")
        }
    }

    @Test func theAddressGuardRefusesPrivateTargetsAtCreationAndAtSendTime() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        let port = try #require(URLComponents(string: url)?.port)
        try await PaywireStack.with(extraEnvironment: ["PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false"]) { stack in
            let apiKey = try await stack.createMerchant("ssrf_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "ssrf_m", apiKey: apiKey)
            let profile = try await defaultProfile(stack, "ssrf_m")
            for target in ["127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"] {
                let result = try await stack.request(.POST, "/account/ssrf_m/business_profile/\(profile)/webhooks", apiKey: apiKey, body: #"{"webhook_url": "http://\#(target):\#(port)/x", "events": ["payment_succeeded"]}"#)
                #expect(result.status == 400 && (result.json?["error"] as? [String: Any])?["field"] as? String == "webhook_url", "\(target): \(result.body)")
            }
            // Every spelling getaddrinfo reads as an address is one here (inet_aton's octal, hex,
            // single-number and short forms) and IPv6 private and local ranges are refused too.
            let spellings = ["0177.0.0.1", "2130706433", "0x7f.0.0.1", "127.1", "0x7f000001", "[::1]", "[fd00::1]", "[fe80::1]", "[::ffff:127.0.0.1]", "[::ffff:a9fe:a9fe]", "[::]"]
            for target in spellings {
                let result = try await stack.request(.POST, "/account/ssrf_m/business_profile/\(profile)/webhooks", apiKey: apiKey, body: #"{"webhook_url": "http://\#(target):\#(port)/x", "events": ["payment_succeeded"]}"#)
                let error = result.json?["error"] as? [String: Any]
                #expect(result.status == 400 && error?["field"] as? String == "webhook_url", "\(target): \(result.body)")
            }
            // URLs no resolver should be asked about are refused as malformed.
            let malformed = ["http://127.0.0.1:0/x", "http://h:0", "http://h:070/", "http://./", "http://a..b/", "http://.a/", "http://256.0.0.1/",
                             "http://\(String(repeating: "a", count: 300)).com/", "http://-a.com/", "http://[zz::1]/", "http://[::1/", "http://1.2.3.08/"]
            for target in malformed {
                let result = try await stack.request(.POST, "/account/ssrf_m/business_profile/\(profile)/webhooks", apiKey: apiKey, body: #"{"webhook_url": "\#(target)", "events": ["payment_succeeded"]}"#)
                let error = result.json?["error"] as? [String: Any]
                #expect(result.status == 400 && error?["field"] as? String == "webhook_url", "\(target): \(result.body)")
            }
            // A public IPv6 receiver may be registered.
            let publicIPv6 = try await stack.request(.POST, "/account/ssrf_m/business_profile/\(profile)/webhooks", apiKey: apiKey, body: #"{"webhook_url": "https://[2001:4860:4860::8888]:8443/hooks", "events": ["refund_failed"]}"#)
            #expect(publicIPv6.json?["webhook_endpoint_id"] is String, "\(publicIPv6.body)")
            let legacy = try await stack.request(.POST, "/account/ssrf_m/business_profile/\(profile)", apiKey: apiKey, body: #"{"webhook_details": {"webhook_url": "http://169.254.169.254/latest"}}"#)
            #expect(legacy.status == 400 && (legacy.json?["error"] as? [String: Any])?["field"] as? String == "webhook_details.webhook_url", "\(legacy.body)")

            // A name is accepted, but it resolves to loopback: refused when sending, nothing sent.
            _ = try await createEndpoint(stack, merchantId: "ssrf_m", apiKey: apiKey, url: "http://localhost:\(port)/named")
            let payment = try await paymentId(stack, apiKey: apiKey)
            let refused = await eventually {
                let errors = (try? await withStackDatabase(stack.databaseURL(owning: "webhooks")) { client -> [String] in
                    var errors: [String] = []
                    for try await error in try await client.query("""
                        SELECT a.error_message FROM webhooks.delivery_attempts a JOIN webhooks.events e ON e.event_id = a.event_id WHERE e.object_id = \(payment)
                        """).decode(String?.self) { errors.append(error ?? "") }
                    return errors
                }) ?? []
                return errors.contains { $0.contains("private-network guard") && $0.contains("127.0.0.1") }
            }
            #expect(refused)
            #expect(receiver.requests.isEmpty)
        }
    }

    /// Runs the `standardwebhooks` package (PyPI) over one received request.
    func verifyWithStandardWebhooks(secret: String, body: String, headers: [String: String]) throws -> String {
        let script = """
            import json, sys
            from standardwebhooks.webhooks import Webhook
            data = json.load(sys.stdin)
            try:
                Webhook(data["secret"]).verify(data["body"], data["headers"])
                print("verified")
            except Exception as error:
                print("refused: %s" % error)
            """
        let payload = try JSONSerialization.data(withJSONObject: ["secret": secret, "body": body, "headers": headers])
        let (_, text) = try runProgram("/usr/bin/env", ["python3", "-c", script], input: payload)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
