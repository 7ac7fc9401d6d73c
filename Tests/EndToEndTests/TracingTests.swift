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

    /// Runs `body` with an OTLP receiver listening: the stack's environment that points at it and
    /// the file its spans are written to. Nil when opentelemetry-proto is missing outside `./scripts/test`.
    func withReceiver(_ body: ([String: String], URL) async throws -> Void) async throws {
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
        try await body(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:\(port)", "OTEL_BSP_SCHEDULE_DELAY": "100"], output)
    }

    /// A W3C trace id and span id, as a caller would start them.
    static func callerContext() -> (traceId: String, spanId: String) {
        ((0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined(),
         (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined())
    }

    /// The chain of spans from `span` up to the first whose parent is not in `trace`.
    static func ancestry(_ span: Span, in trace: [Span]) -> [Span] {
        let byId = Dictionary(trace.map { ($0.span_id, $0) }) { first, _ in first }
        var chain = [span]
        var current = span
        while let parent = byId[current.parent_span_id], chain.count < 50 {
            chain.append(parent)
            current = parent
        }
        return chain
    }

    @Test func onePaymentIsOneTraceAcrossTheFourServices() async throws {
        try await withReceiver { environment, output in try await onePayment(environment, output) }
    }

    func onePayment(_ environment: [String: String], _ output: URL) async throws {
        let webhooks = WebhookReceiver()
        let webhooksURL = try await webhooks.start()
        defer { webhooks.stop() }

        try await PaywireStack.with(extraEnvironment: environment, fakeStripe: true) { stack in
            let apiKey = try await stack.createMerchant("merchant_traced", webhookURL: nil)
            _ = try await stack.createStripeAccount(merchantId: "merchant_traced", apiKey: apiKey, webhookURL: nil)
            let profile = try #require(try await stack.request(.GET, "/accounts/merchant_traced").json?["default_profile"] as? String)
            let endpoint = try await stack.request(.POST, "/account/merchant_traced/business_profile/\(profile)/webhooks", apiKey: apiKey,
                                                   body: #"{"webhook_url": "\#(webhooksURL)/hooks", "events": ["payment_succeeded"]}"#)
            let endpointId = try #require(endpoint.json?["webhook_endpoint_id"] as? String, "\(endpoint.body)")

            // The caller's trace: the gateway continues it.
            let (traceId, callerSpan) = Self.callerContext()
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
            func ancestry(_ span: Span) -> [Span] { Self.ancestry(span, in: trace) }
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

    /// A recovery job's retries join the trace of the report that started it: the gateway's
    /// request, the scheduler's reading of the command, a `recovery retry` span per retry, and
    /// under each, payment-core's handling of the retry's payment and its call to Stripe.
    @Test func aRecoveryJobsRetriesJoinTheTraceOfItsReport() async throws {
        try await withReceiver { environment, output in
            try await PaywireStack.with(extraEnvironment: environment.merging(RecoveryTests.environment) { $1 }, fakeStripe: true) { stack in
                let recovery = RecoveryTests()
                let apiKey = try await stack.createMerchant("merchant_traced_recovery", webhookURL: nil)
                let stripe = try await stack.createStripeAccount(merchantId: "merchant_traced_recovery", apiKey: apiKey, webhookURL: nil).id
                let profile = try #require(try await stack.request(.GET, "/accounts/merchant_traced_recovery").json?["default_profile"] as? String)
                let merchant = RecoveryTests.Merchant(id: "merchant_traced_recovery", apiKey: apiKey, profile: profile, paymentAccount: stripe)
                #expect(try await stack.request(.PUT, "/v2/profiles/\(profile)", apiKey: apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "cascading"}"#, headers: merchant.headers).status == 200)
                let billing = try await recovery.billingAccount(stack, merchant, maxRetries: 9, threshold: 0)
                // The report, sent in the caller's trace (the billing platform's).
                let (traceId, callerSpan) = Self.callerContext()
                let report = try await stack.request(.POST, "/v2/payments/recovery", apiKey: apiKey, body: """
                    {"amount_details": {"order_amount": 2250, "currency": "USD"}, "merchant_reference_id": "inv_traced", "connector_transaction_id": "1831984",
                     "connector_customer_id": "cus_recovery", "error": {"code": "110", "message": "Insufficient Funds"}, "payment_method_type": "card", "payment_method_sub_type": "credit",
                     "payment_method_data": {"primary_processor_payment_method_token": "pm_paywire_decline2x_insufficient_funds",
                       "additional_payment_method_info": {"card_exp_month": "12", "card_exp_year": "25", "last_four_digits": 1997, "card_network": "Visa", "card_type": "credit"}},
                     "attempt_status": "failure", "action": "schedule_failed_payment", "billing_merchant_connector_id": "\(billing)", "payment_merchant_connector_id": "\(stripe)"}
                    """, headers: merchant.headers + [("traceparent", "00-\(traceId)-\(callerSpan)-01")])
                let jobId = try #require(report.json?["id"] as? String, "\(report.body)")
                #expect(await eventually(timeout: .seconds(120)) { (try? await recovery.job(stack, merchant, jobId))?["status"] as? String == "succeeded" }, "\(stack.logs("recovery-scheduler"))")

                // Two declines and the charge: three retries, each with its payment's handling and its Stripe call.
                func trace() -> [Span] { self.spans(in: output).filter { $0.trace_id == traceId } }
                #expect(await eventually(timeout: .seconds(60)) {
                    let found = trace()
                    return found.filter { $0.name == "recovery retry" }.count >= 3
                        && found.filter { $0.service == "payment-core" && $0.name.contains("payment.commands") }.count >= 3
                        && found.filter { $0.name.hasPrefix("connector ") }.count >= 3
                }, "spans: \(trace().map { "\($0.service ?? "?") \($0.name)" })")
                let found = trace()
                let root = try #require(found.first { $0.service == "gateway" && $0.parent_span_id == callerSpan }, "no gateway span under the caller's")
                let command = try #require(found.first { $0.service == "recovery-scheduler" && $0.name.contains("recovery.commands") })
                #expect(Self.ancestry(command, in: found).contains { $0.span_id == root.span_id })
                let retries = found.filter { $0.name == "recovery retry" }
                for retry in retries {
                    #expect(retry.service == "recovery-scheduler" && Self.ancestry(retry, in: found).contains { $0.span_id == command.span_id }, "a retry outside its job's trace")
                }
                for handling in found.filter({ $0.service == "payment-core" && $0.name.contains("payment.commands") }) {
                    #expect(Self.ancestry(handling, in: found).contains { span in retries.contains { $0.span_id == span.span_id } }, "a retry's payment not under its retry")
                }
                #expect(Set(retries.compactMap { if case .string(let id)? = $0.attributes["paywire.payment_id"] { id } else { nil } }).count >= 3)
            }
        }
    }
}
