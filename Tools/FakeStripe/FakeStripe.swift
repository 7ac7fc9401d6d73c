import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A stand-in for the part of Stripe's API that Paywire's `stripe` connector uses, for
/// development and tests: PaymentIntents (create, confirm, capture, cancel, retrieve, search),
/// refunds, webhook endpoints and Stripe-signed webhooks. Outcomes follow Stripe's test cards.
/// Latency, 5xx answers and slow confirms (the caller times out, the charge still happens) are
/// set by flags or at run time through `POST /_fake/behaviour`. Loopback only by default; it
/// holds no secret until a webhook endpoint is created through its API.
@main
struct FakeStripe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "paywire-fake-stripe", abstract: "A fake Stripe API for Paywire's development and tests")

    @Option(help: "Address to listen on") var host = "127.0.0.1"
    @Option(help: "Port to listen on") var port = 12111
    @Option(help: "Added to every API answer, in milliseconds") var latencyMs = 0
    @Option(help: "How long a confirm takes, in milliseconds (longer than the caller's timeout leaves the outcome unknown to it)") var confirmDelayMs = 0
    @Option(help: "Delay before a webhook is sent, in milliseconds") var webhookDelayMs = 200
    @Option(help: "Share of API calls answered 500 (0...1)") var errorRate = 0.0
    @Option(help: "How long a new PaymentIntent stays out of search results, in milliseconds (Stripe's search is eventually consistent)") var searchLagMs = 0

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "paywire.fake-stripe")
        let state = FakeStripeState(behaviour: Behaviour(latencyMs: latencyMs, confirmDelayMs: confirmDelayMs, webhookDelayMs: webhookDelayMs, errorRate: errorRate, failNext: 0, webhooksEnabled: true, searchLagMs: searchLagMs), logger: logger)
        let router = Router()
        state.addRoutes(to: router)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "fake-stripe"), logger: logger)
        if ProcessInfo.processInfo.environment["PAYWIRE_EXIT_WITH_PARENT"] == "1" {
            let parent = getppid()
            Task.detached {
                while getppid() == parent { try? await Task.sleep(for: .milliseconds(500)) }
                Foundation.exit(0)
            }
        }
        logger.info("fake Stripe listening", metadata: ["address": .string("\(host):\(port)")])
        try await app.runService()
    }
}

struct Behaviour: Codable, Sendable {
    var latencyMs: Int
    var confirmDelayMs: Int
    var webhookDelayMs: Int
    var errorRate: Double
    /// The next N API calls answer 500.
    var failNext: Int
    var webhooksEnabled: Bool
    /// A new intent is found by search only after this long (absent: 0).
    var searchLagMs: Int?
    /// A refund is made at once but answered after this long (absent: 0): longer than the
    /// caller's timeout loses the answer.
    var refundDelayMs: Int?
    /// Confirms are answered 500 and not made (absent: false): as if they never arrived.
    var dropConfirms: Bool?

    enum CodingKeys: String, CodingKey {
        case latencyMs = "latency_ms"
        case confirmDelayMs = "confirm_delay_ms"
        case webhookDelayMs = "webhook_delay_ms"
        case errorRate = "error_rate"
        case failNext = "fail_next"
        case webhooksEnabled = "webhooks_enabled"
        case searchLagMs = "search_lag_ms"
        case refundDelayMs = "refund_delay_ms"
        case dropConfirms = "drop_confirms"
    }
}

struct Intent: Sendable {
    var id: String
    var amount: Int
    var currency: String
    var captureMethod: String
    var status: String
    var amountReceived = 0
    var amountCapturable = 0
    var metadata: [String: String]
    var lastPaymentError: [String: String]?
    var created: Int
    var createdAt = Date()
    /// Stripe's test card 4000000000005126: the charge succeeds, its refunds fail later.
    var refundsFail = false
    /// The customer a saved payment method is charged for, and whether nobody was present.
    var customer: String?
    var offSession = false
    var paymentMethod: String?

    var json: [String: Any] {
        var object: [String: Any] = [
            "id": id, "object": "payment_intent", "amount": amount, "currency": currency, "capture_method": captureMethod,
            "status": status, "amount_received": amountReceived, "amount_capturable": amountCapturable,
            "metadata": metadata, "created": created, "livemode": false,
        ]
        object["last_payment_error"] = lastPaymentError ?? NSNull()
        object["customer"] = customer ?? NSNull()
        object["payment_method"] = paymentMethod ?? NSNull()
        object["setup_future_usage"] = NSNull()
        if offSession { object["off_session"] = true }
        return object
    }
}

struct Refund: Sendable {
    var id: String
    var paymentIntent: String
    var amount: Int
    var currency: String
    var status: String
    var metadata: [String: String]
    var failureReason: String?

    var json: [String: Any] {
        ["id": id, "object": "refund", "payment_intent": paymentIntent, "amount": amount, "currency": currency, "status": status,
         "metadata": metadata, "failure_reason": failureReason ?? NSNull()]
    }
}

/// An API answer handed across tasks (JSONSerialization objects are not Sendable).
struct ConfirmOutcome: @unchecked Sendable {
    let answer: (Int, [String: Any])
    init(_ answer: (Int, [String: Any])) { self.answer = answer }
}

struct SentEvent: Sendable {
    var url: String
    var body: String
    var signature: String
    var status: Int
}

struct Store {
    var behaviour: Behaviour
    var intents: [String: Intent] = [:]
    var refunds: [String: Refund] = [:]
    var idempotent: [String: (Int, Data)] = [:]
    /// Keys whose first request is still running: a repeat meanwhile gets 409, as at Stripe.
    var running: Set<String> = []
    var endpoints: [(id: String, url: String, secret: String)] = []
    var sent: [SentEvent] = []
    var confirmCalls = 0
    var charges = 0
    /// Charges by the caller's `metadata[payment_id]`: a payment charged twice shows here.
    var chargesByPayment: [String: Int] = [:]
    var disputes: [String: Dispute] = [:]
}

final class FakeStripeState: Sendable {
    let store: Mutex<Store>
    /// Charges made so far with each `pm_paywire_decline…` payment method.
    let declinedCharges = Mutex<[String: Int]>([:])
    let logger: Logger

    init(behaviour: Behaviour, logger: Logger) {
        store = Mutex(Store(behaviour: behaviour))
        self.logger = logger
    }

    /// Stripe's test cards, by number and by payment-method token.
    static let declines: [String: [String: String]] = [
        "4000000000000002": ["code": "card_declined", "decline_code": "generic_decline", "network_decline_code": "05", "message": "Your card was declined."],
        "4000000000009995": ["code": "card_declined", "decline_code": "insufficient_funds", "network_decline_code": "51", "message": "Your card has insufficient funds."],
        "4000000000009987": ["code": "card_declined", "decline_code": "lost_card", "network_decline_code": "41", "message": "Your card has been declined."],
        "4000000000000069": ["code": "expired_card", "message": "Your card has expired."],
        "4000000000000119": ["code": "processing_error", "message": "An error occurred while processing your card. Try again in a little bit."],
        "pm_card_chargeDeclined": ["code": "card_declined", "decline_code": "generic_decline", "network_decline_code": "05", "message": "Your card was declined."],
        "pm_card_chargeDeclinedInsufficientFunds": ["code": "card_declined", "decline_code": "insufficient_funds", "network_decline_code": "51", "message": "Your card has insufficient funds."],
    ]

    /// The network code behind a decline code, as Stripe passes it on in `network_decline_code`.
    static let networkCodes = ["generic_decline": "05", "do_not_honor": "05", "insufficient_funds": "51", "lost_card": "41", "stolen_card": "43",
                               "expired_card": "54", "processing_error": "96", "issuer_not_available": "91", "try_again_later": "91"]

    /// `pm_paywire_decline<N>x_<decline_code>`: a saved card that declines (card_declined with that
    /// decline code) the first N times it is charged, then succeeds — funds that come back, for
    /// revenue recovery. Not one of Stripe's test payment methods; the fake's own.
    func repeatedDecline(_ instrument: String) -> [String: String]? {
        guard instrument.hasPrefix("pm_paywire_decline") else { return nil }
        let parts = instrument.dropFirst("pm_paywire_decline".count).split(separator: "_", maxSplits: 1)
        guard parts.count == 2, parts[0].hasSuffix("x"), let times = Int(parts[0].dropLast()) else { return nil }
        // Its own lock: this runs inside a transition, which holds the store's.
        let made = declinedCharges.withLock { charges in
            defer { charges[instrument, default: 0] += 1 }
            return charges[instrument, default: 0]
        }
        guard made < times else { return nil }
        var error = ["code": "card_declined", "decline_code": String(parts[1]), "message": "Your card was declined."]
        error["network_decline_code"] = Self.networkCodes[String(parts[1])]
        return error
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/_fake/behaviour") { request, context in
            let body = try await request.body.collect(upTo: 1 << 16)
            let update = try JSONDecoder().decode(Behaviour.self, from: Data(buffer: body))
            self.store.withLock { $0.behaviour = update }
            return Self.json(200, ["ok": true])
        }
        router.get("/_fake/stats") { _, _ in
            let (confirms, charges, sent, refunds) = self.store.withLock { ($0.confirmCalls, $0.charges, $0.sent.count, $0.refunds.count) }
            return Self.json(200, ["confirm_calls": confirms, "charges": charges, "webhooks_sent": sent, "refunds": refunds])
        }
        router.get("/_fake/charges") { _, _ in
            Self.json(200, ["charges_by_payment": self.store.withLock { $0.chargesByPayment }])
        }
        router.get("/_fake/events") { _, _ in
            let sent = self.store.withLock { $0.sent }
            return Self.json(200, ["data": sent.map { ["url": $0.url, "body": $0.body, "stripe_signature": $0.signature, "status": $0.status] }])
        }
        router.post("/v1/webhook_endpoints") { request, context in
            try await self.api(request, context) { form in
                guard let url = form["url"] else { return Self.error(400, "invalid_request_error", "parameter_missing", "url is required") }
                let id = "we_" + Self.random(16)
                let secret = "whsec_" + Self.random(32)
                self.store.withLock { $0.endpoints.append((id, url, secret)) }
                return (200, ["id": id, "object": "webhook_endpoint", "url": url, "secret": secret, "status": "enabled"])
            }
        }
        router.post("/v1/payment_intents") { request, context in
            try await self.api(request, context) { form in
                guard let amount = form["amount"].flatMap(Int.init), amount > 0 else { return Self.error(400, "invalid_request_error", "parameter_invalid_integer", "amount must be a positive integer") }
                guard let currency = form["currency"], currency.count == 3 else { return Self.error(400, "invalid_request_error", "parameter_missing", "currency is required") }
                let intent = Intent(
                    id: "pi_" + Self.random(24), amount: amount, currency: currency, captureMethod: form["capture_method"] ?? "automatic",
                    status: "requires_payment_method", metadata: Self.metadata(form), created: Int(Date().timeIntervalSince1970),
                    customer: form["customer"]
                )
                self.store.withLock { $0.intents[intent.id] = intent }
                return (200, intent.json)
            }
        }
        router.get("/v1/payment_intents/search") { request, context in
            try await self.api(request, context) { _ in
                let query = request.uri.queryParameters["query"].map(String.init) ?? ""
                // metadata['attempt_id']:'value'
                guard let match = query.firstMatch(of: /metadata\['([^']+)'\]:'([^']*)'/) else {
                    return Self.error(400, "invalid_request_error", "parameter_invalid", "unsupported query")
                }
                let (key, value) = (String(match.1), String(match.2))
                let found = self.store.withLock { store in
                    let lag = Double(store.behaviour.searchLagMs ?? 0) / 1000
                    return store.intents.values.filter { $0.metadata[key] == value && Date().timeIntervalSince($0.createdAt) >= lag }.map(\.json)
                }
                return (200, ["object": "search_result", "data": found, "has_more": false])
            }
        }
        router.get("/v1/payment_intents/:id") { request, context in
            try await self.api(request, context) { _ in
                let id = try context.parameters.require("id")
                guard let intent = self.store.withLock({ $0.intents[id] }) else { return Self.error(404, "invalid_request_error", "resource_missing", "No such payment_intent") }
                return (200, intent.json)
            }
        }
        router.post("/v1/payment_intents/:id/confirm") { request, context in
            try await self.api(request, context) { form in
                let id = try context.parameters.require("id")
                self.store.withLock { $0.confirmCalls += 1 }
                if self.store.withLock({ $0.behaviour.dropConfirms == true }) {
                    return Self.error(500, "api_error", "dropped", "The confirm was dropped (fake)")
                }
                let delay = self.store.withLock { $0.behaviour.confirmDelayMs }
                // Detached: the charge completes even when the caller gives up and disconnects,
                // as at a real processor.
                let outcome = Task.detached { () -> ConfirmOutcome in
                    if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
                    return ConfirmOutcome(self.confirm(id, form: form))
                }
                return await outcome.value.answer
            }
        }
        router.post("/v1/payment_intents/:id/capture") { request, context in
            try await self.api(request, context) { form in
                let id = try context.parameters.require("id")
                return self.transition(id) { intent in
                    guard intent.status == "requires_capture" else { return Self.error(400, "invalid_request_error", "payment_intent_unexpected_state", "This PaymentIntent could not be captured because it has a status of \(intent.status).") }
                    let amount = form["amount_to_capture"].flatMap(Int.init) ?? intent.amountCapturable
                    guard amount > 0, amount <= intent.amountCapturable else { return Self.error(400, "invalid_request_error", "amount_too_large", "amount_to_capture is larger than the capturable amount") }
                    intent.status = "succeeded"
                    intent.amountReceived = amount
                    intent.amountCapturable = 0
                    return nil
                }
            }
        }
        router.post("/v1/payment_intents/:id/cancel") { request, context in
            try await self.api(request, context) { _ in
                let id = try context.parameters.require("id")
                return self.transition(id) { intent in
                    guard ["requires_payment_method", "requires_capture", "requires_confirmation"].contains(intent.status) else {
                        return Self.error(400, "invalid_request_error", "payment_intent_unexpected_state", "You cannot cancel this PaymentIntent because it has a status of \(intent.status).")
                    }
                    intent.status = "canceled"
                    intent.amountCapturable = 0
                    return nil
                }
            }
        }
        router.post("/v1/refunds") { request, context in
            try await self.api(request, context) { form in
                guard let intentId = form["payment_intent"], let intent = self.store.withLock({ $0.intents[intentId] }) else {
                    return Self.error(400, "invalid_request_error", "resource_missing", "No such payment_intent")
                }
                let refunded = self.store.withLock { $0.refunds.values.filter { $0.paymentIntent == intentId && $0.status != "failed" }.reduce(0) { $0 + $1.amount } }
                let amount = form["amount"].flatMap(Int.init) ?? intent.amountReceived - refunded
                guard intent.status == "succeeded", amount > 0, amount + refunded <= intent.amountReceived else {
                    return Self.error(400, "invalid_request_error", "charge_already_refunded", "Refund amount is greater than the unrefunded amount")
                }
                let refund = Refund(id: "re_" + Self.random(24), paymentIntent: intentId, amount: amount, currency: intent.currency, status: intent.refundsFail ? "pending" : "succeeded", metadata: Self.metadata(form))
                self.store.withLock { $0.refunds[refund.id] = refund }
                if intent.refundsFail {
                    // As at Stripe: accepted as pending, failed a moment later.
                    let delay = self.store.withLock { $0.behaviour.webhookDelayMs }
                    let refundId = refund.id
                    Task {
                        try? await Task.sleep(for: .milliseconds(delay + 300))
                        guard let failed = self.store.withLock({ store -> Refund? in
                            store.refunds[refundId]?.status = "failed"
                            store.refunds[refundId]?.failureReason = "expired_or_canceled_card"
                            return store.refunds[refundId]
                        }) else { return }
                        self.sendWebhook(type: "refund.failed", object: failed.json)
                    }
                    return (200, refund.json)
                }
                self.sendWebhook(type: "refund.updated", object: refund.json)
                let delay = self.store.withLock { $0.behaviour.refundDelayMs ?? 0 }
                if delay > 0 {
                    // The refund is made; only its answer is late (the caller may have gone).
                    let answer = Task.detached { () -> ConfirmOutcome in
                        try? await Task.sleep(for: .milliseconds(delay))
                        return ConfirmOutcome((200, refund.json))
                    }
                    return await answer.value.answer
                }
                return (200, refund.json)
            }
        }
        addDisputeRoutes(to: router)
        router.get("/v1/refunds/:id") { request, context in
            try await self.api(request, context) { _ in
                let id = try context.parameters.require("id")
                guard let refund = self.store.withLock({ $0.refunds[id] }) else { return Self.error(404, "invalid_request_error", "resource_missing", "No such refund") }
                return (200, refund.json)
            }
        }
    }

    func confirm(_ id: String, form: [String: String]) -> (Int, [String: Any]) {
        transition(id) { intent in
            guard intent.status == "requires_payment_method" || intent.status == "requires_confirmation" else {
                return Self.error(400, "invalid_request_error", "payment_intent_unexpected_state", "You cannot confirm this PaymentIntent because it has a status of \(intent.status).")
            }
            let instrument = form["payment_method_data[card][number]"] ?? form["payment_method"] ?? ""
            if form["off_session"] == "true" {
                // Stripe charges a saved payment method off-session only for its customer.
                guard form["payment_method"] != nil, intent.customer != nil else {
                    return Self.error(400, "invalid_request_error", "parameter_missing", "off_session needs a saved payment_method and the intent's customer")
                }
                intent.offSession = true
            }
            intent.paymentMethod = form["payment_method"]
            if let decline = Self.declines[instrument] ?? repeatedDecline(instrument) {
                intent.lastPaymentError = decline.merging(["type": "card_error"]) { a, _ in a }
                intent.status = "requires_payment_method"
                var error = Self.error(402, "card_error", decline["code"]!, decline["message"]!)
                var body = error.1["error"] as! [String: Any]
                for key in ["decline_code", "network_decline_code", "network_advice_code"] { if let code = decline[key] { body[key] = code } }
                body["payment_intent"] = intent.json
                error.1["error"] = body
                return error
            }
            guard instrument.hasPrefix("pm_card_") || instrument.hasPrefix("pm_paywire_") || (instrument.count >= 12 && instrument.allSatisfy(\.isNumber)) else {
                return Self.error(402, "card_error", "incorrect_number", "Your card number is incorrect.")
            }
            intent.lastPaymentError = nil
            intent.refundsFail = instrument == "4000000000005126"
            if intent.captureMethod == "manual" {
                intent.status = "requires_capture"
                intent.amountCapturable = intent.amount
            } else {
                intent.status = "succeeded"
                intent.amountReceived = intent.amount
            }
            return nil
        }
    }

    /// Applies `change` to an intent under the lock; on success answers the intent and sends
    /// the webhook for its new status.
    func transition(_ id: String, _ change: (inout Intent) -> (Int, [String: Any])?) -> (Int, [String: Any]) {
        let outcome: (Intent?, (Int, [String: Any])?) = store.withLock { store in
            guard var intent = store.intents[id] else { return (nil, Self.error(404, "invalid_request_error", "resource_missing", "No such payment_intent")) }
            let before = intent.status
            let refusal = change(&intent)
            store.intents[id] = intent
            if before != intent.status, ["succeeded", "requires_capture"].contains(intent.status), before != "requires_capture" {
                store.charges += 1
                if let paymentId = intent.metadata["payment_id"] { store.chargesByPayment[paymentId, default: 0] += 1 }
            }
            return (intent, refusal)
        }
        guard let intent = outcome.0 else { return outcome.1! }
        let type: String? = switch intent.status {
        case "succeeded": "payment_intent.succeeded"
        case "requires_capture": "payment_intent.amount_capturable_updated"
        case "canceled": "payment_intent.canceled"
        case "requires_payment_method" where intent.lastPaymentError != nil: "payment_intent.payment_failed"
        default: nil
        }
        if let type { sendWebhook(type: type, object: intent.json) }
        return outcome.1 ?? (200, intent.json)
    }

    func sendWebhook(type: String, object: [String: Any]) {
        let (endpoints, behaviour) = store.withLock { ($0.endpoints, $0.behaviour) }
        guard behaviour.webhooksEnabled, !endpoints.isEmpty else { return }
        let event: [String: Any] = ["id": "evt_" + Self.random(24), "object": "event", "type": type, "created": Int(Date().timeIntervalSince1970), "data": ["object": object], "livemode": false]
        guard let body = try? JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]) else { return }
        let logger = logger
        Task {
            try? await Task.sleep(for: .milliseconds(behaviour.webhookDelayMs))
            for endpoint in endpoints {
                let timestamp = Int(Date().timeIntervalSince1970)
                let mac = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).".utf8) + body, using: SymmetricKey(data: Data(endpoint.secret.utf8)))
                let signature = "t=\(timestamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
                var request = HTTPClientRequest(url: endpoint.url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Stripe-Signature", value: signature)
                request.body = .bytes(ByteBuffer(bytes: body))
                var status = 0
                do {
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                    status = Int(response.status.code)
                    _ = try? await response.body.collect(upTo: 1 << 20)
                } catch {
                    logger.warning("webhook not delivered", metadata: ["url": .string(endpoint.url)])
                }
                self.store.withLock { $0.sent.append(SentEvent(url: endpoint.url, body: String(decoding: body, as: UTF8.self), signature: signature, status: status)) }
            }
        }
    }

    // MARK: Plumbing

    /// Checks the Bearer key, applies latency and injected failures, replays idempotent
    /// requests, and encodes the answer.
    func api(_ request: Request, _ context: BasicRequestContext, _ handle: ([String: String]) async throws -> (Int, [String: Any])) async throws -> Response {
        guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer "), authorization.count > "Bearer ".count else {
            return Self.respond(Self.error(401, "invalid_request_error", "api_key_missing", "You did not provide an API key."))
        }
        let behaviour = store.withLock { store -> Behaviour in
            let current = store.behaviour
            if store.behaviour.failNext > 0 { store.behaviour.failNext -= 1 }
            return current
        }
        if behaviour.latencyMs > 0 { try await Task.sleep(for: .milliseconds(behaviour.latencyMs)) }
        if behaviour.failNext > 0 || (behaviour.errorRate > 0 && Double.random(in: 0..<1) < behaviour.errorRate) {
            return Self.respond(Self.error(500, "api_error", "internal", "Something went wrong on Stripe's end."))
        }
        let key = request.headers[.init("Idempotency-Key")!].map { "\(authorization.suffix(8))|\($0)" }
        if let key {
            enum Seen { case replay(Int, Data), running, new }
            let seen: Seen = store.withLock { store in
                if let (status, body) = store.idempotent[key] { return .replay(status, body) }
                if store.running.contains(key) { return .running }
                store.running.insert(key)
                return .new
            }
            switch seen {
            case .replay(let status, let body):
                return Response(status: .init(code: status), headers: [.contentType: "application/json", .init("Idempotent-Replayed")!: "true"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
            case .running:
                return Self.respond(Self.error(409, "idempotency_error", "idempotency_key_in_use", "There is currently another in-progress request using this Idempotent Key."))
            case .new:
                break
            }
        }
        defer { if let key { _ = store.withLock { $0.running.remove(key) } } }
        let raw = try await request.body.collect(upTo: 1 << 20)
        let form = Self.parseForm(String(buffer: raw))
        let (status, object) = try await handle(form)
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        if let key, status < 500 { store.withLock { $0.idempotent[key] = (status, body) } }
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func parseForm(_ text: String) -> [String: String] {
        var form: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            form[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return form
    }

    static func metadata(_ form: [String: String]) -> [String: String] {
        var metadata: [String: String] = [:]
        for (key, value) in form where key.hasPrefix("metadata[") && key.hasSuffix("]") {
            metadata[String(key.dropFirst("metadata[".count).dropLast())] = value
        }
        return metadata
    }

    static func error(_ status: Int, _ type: String, _ code: String, _ message: String) -> (Int, [String: Any]) {
        (status, ["error": ["type": type, "code": code, "message": message]])
    }

    static func respond(_ answer: (Int, [String: Any])) -> Response {
        json(answer.0, answer.1)
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func random(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<length).map { _ in alphabet.randomElement()! })
    }
}
