import Foundation
import PaywireTestSupport
import Testing

/// One payment is one trace across the four services, exported over OTLP/HTTP to a receiver that
/// decodes it with the OpenTelemetry project's own protobuf definitions
/// (`Tests/Tracing/otlp_receiver.py`, `opentelemetry-proto` from PyPI): the gateway's request
/// continues the caller's `traceparent`; payment-core's handling of the command, its call to the
/// (fake) Stripe, the dispatcher's fan-out, each delivery attempt and the recovery scheduler's
/// reading of the event are its spans, each under the one before it; and the trace id is in the
/// services' log lines of that work and on the console's delivery and payment pages.
@Suite(.serialized, .timeLimit(.minutes(6)), .enabled(if: TestEnvironment.hasDatabase))
struct TracingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Span: Decodable {
        var trace_id: String
        var span_id: String
        var parent_span_id: String
        var name: String
        var kind: Int
        var service: String?
        var attributes: [String: AttributeValue]
    }

    enum AttributeValue: Decodable, Equatable {
        case string(String), int(Int), other
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .string(text) } else if let number = try? container.decode(Int.self) { self = .int(number) } else { self = .other }
        }
    }

    func spans(in file: URL) -> [Span] {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(Span.self, from: Data($0.utf8)) }
    }

    @Test func onePaymentIsOneTraceAcrossTheFourServices() async throws {
        let available = try await runProgramOffPool("/usr/bin/env", ["python3", "-c", "import opentelemetry.proto.collector.trace.v1.trace_service_pb2"]).status == 0
        guard available else {
            #expect(!TestEnvironment.servicesRequired, "opentelemetry-proto is needed (./scripts/test installs it)")
            return
        }
        let port = try FreePort.next()
        let output = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("otlp-\(UUID().uuidString).jsonl")
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", Self.root.appendingPathComponent("Tests/Tracing/otlp_receiver.py").path, String(port), output.path]
        receiver.standardOutput = FileHandle.nullDevice
        try receiver.run()
        defer { kill(receiver.processIdentifier, SIGTERM) }
        let webhooks = WebhookReceiver()
        let webhooksURL = try await webhooks.start()
        defer { webhooks.stop() }

        let environment = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(port)", "OTEL_BSP_SCHEDULE_DELAY": "100"]
        try await PaywireStack.with(extraEnvironment: environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_traced", webhookURL: nil)
            _ = try await stack.createStripeAccount(merchantId: "merchant_traced", apiKey: apiKey, webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/merchant_traced").json?["default_profile"] as? String)
            let endpoint = try await stack.request(.POST, "/account/merchant_traced/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                                   body: #"{"webhook_url": "\#(webhooksURL)/hooks", "events": ["payment_succeeded"]}"#)
            let endpointId = try #require(endpoint.json?["webhook_endpoint_id"] as? String, "\(endpoint.body)")

            // The caller's trace: the gateway continues it.
            let traceId = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let callerSpan = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined()
            let payment = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242"),
                                                  headers: [("traceparent", "00-\(traceId)-\(callerSpan)-01")])
            let paymentId = try #require(payment.json?["payment_id"] as? String, "\(payment.body)")
            #expect(payment.json?["status"] as? String == "succeeded")

            let file = output
            let services = ["gateway", "payment-core", "webhook-dispatcher", "recovery-scheduler"]
            func complete() -> Bool {
                let trace = spans(in: file).filter { $0.trace_id == traceId }
                return Set(trace.compactMap(\.service)).isSuperset(of: services) && trace.contains { $0.name == "webhook delivery" }
                    && trace.contains { $0.name.hasPrefix("connector ") }
            }
            #expect(await eventually(timeout: .seconds(90)) { complete() }, "spans: \(spans(in: file).filter { $0.trace_id == traceId }.map { "\($0.service ?? "?") \($0.name)" })")
            let trace = spans(in: file).filter { $0.trace_id == traceId }
            #expect(!spans(in: file).contains { $0.trace_id != traceId && $0.service == "payment-core" && $0.name.contains("payment.commands") },
                    "the payment's command was handled in a trace of its own")
            let byId = Dictionary(trace.map { ($0.span_id, $0) }) { first, _ in first }
            /// The chain of spans from one up to the caller's.
            func ancestry(_ span: Span) -> [Span] {
                var chain = [span]
                var current = span
                while let parent = byId[current.parent_span_id], chain.count < 50 {
                    chain.append(parent)
                    current = parent
                }
                return chain
            }
            // Every span leads up to the gateway's request, whose parent is the caller's span.
            let root = try #require(trace.first { $0.service == "gateway" && $0.parent_span_id == callerSpan }, "no gateway span under the caller's")
            #expect(root.kind == 2, "the gateway's span is a server span")
            for span in trace { #expect(ancestry(span).last?.span_id == root.span_id, "\(span.service ?? "?") \(span.name) does not lead to the gateway's request") }

            // In the right order: the gateway, then payment-core's command, its connector call, and
            // from its event the dispatcher (and each attempt under it) and the scheduler.
            let command = try #require(trace.first { $0.service == "payment-core" && $0.name.contains("payment.commands") })
            #expect(ancestry(command).contains { $0.span_id == root.span_id })
            let connector = try #require(trace.first { $0.service == "payment-core" && $0.name.hasPrefix("connector ") })
            #expect(ancestry(connector).contains { $0.span_id == command.span_id }, "the connector call is not under the command")
            let fanOut = try #require(trace.first { $0.service == "webhook-dispatcher" && $0.name.contains("payment.events") })
            #expect(ancestry(fanOut).contains { $0.span_id == command.span_id }, "the event is not under the command")
            let delivery = try #require(trace.first { $0.name == "webhook delivery" })
            #expect(delivery.service == "webhook-dispatcher" && ancestry(delivery).contains { $0.span_id == fanOut.span_id })
            #expect(delivery.attributes["paywire.webhook_endpoint_id"] == .string(endpointId))
            #expect(delivery.attributes["http.response.status_code"] == .int(200))
            let scheduler = try #require(trace.first { $0.service == "recovery-scheduler" })
            #expect(ancestry(scheduler).contains { $0.span_id == command.span_id })

            // The trace id is in the log lines of that work.
            #expect(stack.logs("payment-core").contains(traceId) || stack.logs("webhook-dispatcher").contains(traceId) || stack.logs("gateway").contains(traceId),
                    "no log line carries the trace id")
            // And the events log (so the console's pages) names it.
            let events = try await stack.request(.GET, "/events/merchant_traced?object_id=\(paymentId)", apiKey: apiKey)
            #expect((events.json?["events"] as? [[String: Any]])?.first?["trace_id"] as? String == traceId, "\(events.body)")
        }
    }
}
