import AsyncHTTPClient
import Foundation
import NIOCore
import PaywireTestSupport
import Testing

/// `paywire listen` as a developer runs it against a dev stack: a temporary endpoint that verifies
/// both signatures, prints a line per event, forwards to the local app, and is deprecated on exit.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct PaywireListenTests {
    /// Bad arguments and settings stop the command at once with one line naming what is wrong:
    /// no port wrapped into range, no scheme taken on trust, no Kafka security setting ignored.
    @Test func theCommandChecksItsArgumentsAndKafkaSettingsWithOneLineErrors() throws {
        let executable = URL(fileURLWithPath: try #require(TestEnvironment.binPath)).appendingPathComponent("paywire").path
        let base = ["listen", "--url", "http://127.0.0.1:9", "--api-key", "k", "--merchant", "m", "--events", "payment_succeeded"]
        let cases: [(arguments: [String], environment: [String: String], names: String)] = [
            (base + ["--port", "70000"], [:], "--port"),
            (base + ["--port=-1"], [:], "--port"),
            (base + ["--forward-to", "ftp://127.0.0.1/app"], [:], "--forward-to"),
            (base + ["--forward-to", "127.0.0.1:3000"], [:], "--forward-to"),
            (base + ["--public-url", "http://a..b/"], [:], "--public-url"),
            (["listen", "--url", "gopher://x", "--api-key", "k", "--merchant", "m", "--events", "payment_succeeded"], [:], "--url"),
            // The services' Kafka security settings, read and checked as the services do.
            (["deadletters", "list", "--brokers", "127.0.0.1:9"], ["KAFKA_SECURITY_PROTOCOL": "TLS"], "KAFKA_SECURITY_PROTOCOL"),
            (["deadletters", "list", "--brokers", "127.0.0.1:9"], ["KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "ops"], "KAFKA_SASL_PASSWORD"),
            (["deadletters", "replay", "0:1", "--brokers", "127.0.0.1:9"], ["KAFKA_SASL_USERNAME": "ops", "KAFKA_SASL_PASSWORD": "pw"], "KAFKA_SECURITY_PROTOCOL"),
        ]
        for (arguments, environment, names) in cases {
            let (status, output) = try runProgram(executable, arguments, environment: environment.merging(["PATH": "/usr/bin:/bin"]) { given, _ in given })
            let lines = output.split(separator: "\n", omittingEmptySubsequences: true)
            #expect(status != 0, "\(arguments) \(environment): \(output)")
            #expect(lines.count == 1 && lines.first?.contains(names) == true, "\(arguments) \(environment): \(output)")
        }
    }

    @Test func listenVerifiesPrintsForwardsAndRemovesItsEndpointOnExit() async throws {
        let app = WebhookReceiver()
        let appURL = try await app.start()
        defer { app.stop() }
        try await PaywireStack.with { stack in
            let apiKey = try await stack.createMerchant("listen_m", webhookURL: nil)
            try await stack.createSandboxAccount(merchantId: "listen_m", apiKey: apiKey)
            let listener = try ServiceProcess(
                executable: "paywire",
                arguments: ["listen", "--url", stack.gatewayURL, "--api-key", apiKey, "--merchant", "listen_m",
                            "--events", "payment_succeeded,refund_succeeded", "--forward-to", appURL + "/local"],
                environment: [:], logDirectory: stack.logDirectory
            )
            defer { listener.crash() }
            #expect(await eventually(timeout: .seconds(30)) { listener.logTail().contains("listening on") }, "\(listener.logTail())")
            let line = try #require(listener.logTail().split(separator: "\n").first { $0.contains("listening on") })
            let endpointId = try #require(line.split(separator: " ").first { $0.hasPrefix("whe_") }.map(String.init))
            let listenURL = try #require(line.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init))

            let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"))
            let paymentId = try #require(payment.json?["payment_id"] as? String)
            #expect(await eventually(timeout: .seconds(20)) { webhookEvents(app, for: paymentId) == ["payment_succeeded"] })
            #expect(listener.logTail().contains("payment_succeeded"))
            #expect(listener.logTail().contains("webhook-signature: verified  X-Webhook-Signature-512: verified"), "\(listener.logTail())")
            // (The line is printed once the app's answer is back, just after the app has the request.)
            #expect(await eventually { listener.logTail().contains("forwarded to \(appURL)/local: 200") }, "\(listener.logTail())")
            #expect(app.requests.first?.headers["webhook-signature"] != nil, "forwarded with the signature headers")

            // A forged delivery is printed as not verified.
            var forged = HTTPClientRequest(url: listenURL)
            forged.method = .POST
            forged.headers.add(name: "webhook-id", value: "evt_forged")
            forged.headers.add(name: "webhook-timestamp", value: String(Int(Date().timeIntervalSince1970)))
            forged.headers.add(name: "webhook-signature", value: "v1,AAAA")
            forged.body = .bytes(ByteBuffer(string: #"{"event_type": "payment_succeeded", "event_id": "evt_forged"}"#))
            _ = try await HTTPClient.shared.execute(forged, timeout: .seconds(10))
            #expect(await eventually { listener.logTail().contains("evt_forged  webhook-signature: NOT verified (no matching v1 signature)") }, "\(listener.logTail())")

            // Ctrl-C (SIGINT): the endpoint is deprecated and the command ends cleanly.
            kill(listener.process.processIdentifier, SIGINT)
            #expect(await eventually(timeout: .seconds(15)) { listener.exitStatus != nil })
            #expect(listener.exitStatus == 0, "\(listener.logTail())")
            #expect(listener.logTail().contains("endpoint \(endpointId) deprecated"))
            let profile = try #require(try await stack.request(.GET, "/accounts/listen_m").json?["default_profile"] as? String)
            let endpoint = try await stack.request(.GET, "/account/listen_m/business_profile/\(profile)/webhooks/\(endpointId)", apiKey: apiKey)
            #expect(endpoint.json?["status"] as? String == "deprecated", "\(endpoint.body)")

            // The deprecated endpoint does not use up one of the profile's 20: all 20 can still be
            // registered, a 21st cannot, and deprecating one frees its place.
            let endpoints = "/account/listen_m/business_profile/\(profile)/webhooks"
            var created: [String] = []
            for index in 0..<20 {
                let made = try await stack.request(.POST, endpoints, apiKey: apiKey, body: #"{"webhook_url": "https://example.com/hook\#(index)", "events": ["payment_succeeded"]}"#)
                #expect(made.status == 200, "endpoint \(index): \(made.body)")
                if let id = made.json?["webhook_endpoint_id"] as? String { created.append(id) }
            }
            let oneTooMany = try await stack.request(.POST, endpoints, apiKey: apiKey, body: #"{"webhook_url": "https://example.com/hook20", "events": ["payment_succeeded"]}"#)
            #expect(oneTooMany.status == 409, "\(oneTooMany.body)")
            #expect(try await stack.request(.DELETE, endpoints + "/\(try #require(created.first))", apiKey: apiKey).status == 200)
            #expect(try await stack.request(.POST, endpoints, apiKey: apiKey, body: #"{"webhook_url": "https://example.com/hook21", "events": ["payment_succeeded"]}"#).status == 200)
        }
    }
}
