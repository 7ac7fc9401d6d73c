import Foundation
import PaywireModels
import PaywireTestSupport
import PostgresNIO
import Testing

/// Payments through the whole stack on the in-process sandbox connector: every test card's
/// outcome, manual capture, cancel, refunds, Idempotency-Key, concurrent confirms, bad input —
/// and afterwards no card number anywhere in the database or the logs.
@Suite(.serialized, .timeLimit(.minutes(5)), .enabled(if: TestEnvironment.hasDatabase))
struct SandboxPaymentTests {
    static let cards: [(number: String, status: String, code: String?)] = [
        ("4242424242424242", "succeeded", nil),
        ("4111111111111111", "succeeded", nil),
        ("4000000000000002", "failed", "generic_decline"),
        ("4000000000009995", "failed", "insufficient_funds"),
        ("4000000000009987", "failed", "lost_card"),
        ("4000000000000069", "failed", "expired_card"),
        ("4000000000000119", "failed", "processing_error"),
    ]

    func json(_ result: PaywireStack.HTTPResult, status: Int = 200, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        #expect(result.status == status, "\(result.status): \(result.body)", sourceLocation: sourceLocation)
        return try #require(result.json, sourceLocation: sourceLocation)
    }

    func expectError(_ result: PaywireStack.HTTPResult, status: Int, field: String?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(result.body)", sourceLocation: sourceLocation)
        let error = result.json?["error"] as? [String: Any]
        #expect(error?["field"] as? String == field, "\(result.body)", sourceLocation: sourceLocation)
    }

    func events(_ receiver: WebhookReceiver, for objectId: String) -> [String] { webhookEvents(receiver, for: objectId) }

    @Test func paymentsOnTheSandboxEndToEnd() async throws {
        let receiver = WebhookReceiver()
        let url = try await receiver.start()
        defer { receiver.stop() }
        try await PaywireStack.with { stack in
            let apiKey = try await stack.createMerchant("merchant_pay", webhookURL: "\(url)/hooks")

            // Without a payment processor there is nothing to route to.
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242")), status: 400, field: "routing")
            try await stack.createSandboxAccount(merchantId: "merchant_pay", apiKey: apiKey)

            // Every test card: its outcome, its code, one webhook with the full object.
            var outcomes: [String: String] = [:]
            for card in Self.cards {
                let payment = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: card.number)))
                let paymentId = try #require(payment["payment_id"] as? String)
                outcomes[paymentId] = card.status == "succeeded" ? "payment_succeeded" : "payment_failed"
                #expect(payment["status"] as? String == card.status, "\(card.number)")
                #expect(payment["error_code"] as? String == card.code)
                #expect(payment["connector"] as? String == "sandbox")
                #expect(payment["amount_received"] as? Int == (card.status == "succeeded" ? 6540 : 0))
                if card.code != nil {
                    #expect((payment["unified_code"] as? String)?.hasPrefix("UE_") == true)
                    #expect(payment["error_message"] is String)
                }
                let cardData = try #require((payment["payment_method_data"] as? [String: Any])?["card"] as? [String: Any])
                #expect(cardData["last4"] as? String == String(card.number.suffix(4)))
                #expect(cardData["card_isin"] as? String == String(card.number.prefix(6)))
                #expect(cardData["card_exp_month"] as? String == "03" && cardData["card_exp_year"] as? String == "2030")
                #expect(cardData["card_holder_name"] as? String == "Jo Doe")
                #expect(cardData["card_network"] as? String == "Visa")
                let fetched = try json(try await stack.request(.GET, "/payments/\(paymentId)", apiKey: apiKey))
                #expect(fetched["status"] as? String == card.status)
            }
            let allArrived = await eventually(timeout: .seconds(30)) { receiver.requests.count >= Self.cards.count }
            #expect(allArrived, "\(receiver.requests.count) webhooks")
            for (paymentId, event) in outcomes { #expect(events(receiver, for: paymentId) == [event], "\(paymentId)") }

            // Recurring charges with a processor token behave like the card it stands for.
            func recurring(_ token: String) -> String {
                #"{"amount": 1500, "currency": "USD", "confirm": true, "recurring_details": {"type": "processor_payment_token", "data": {"processor_payment_token": "\#(token)"}}}"#
            }
            let renewed = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: recurring("tok_sandbox_4242")))
            #expect(renewed["status"] as? String == "succeeded")
            let short = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: recurring("tok_sandbox_9995")))
            #expect(short["status"] as? String == "failed" && short["error_code"] as? String == "insufficient_funds")
            // Processor tokens are sealed at rest, bound to their payment.
            let storedTokens = try await withStackDatabase(stack.databaseURL(owning: "payments")) { client in
                var tokens: [String] = []
                for try await token in try await client.query("SELECT processor_token FROM payments.payment_intents WHERE processor_token IS NOT NULL").decode(String.self) { tokens.append(token) }
                return tokens
            }
            #expect(storedTokens.count == 2 && storedTokens.allSatisfy { $0.hasPrefix("v2:") && !$0.contains("tok_sandbox") }, "\(storedTokens)")

            // Manual capture: authorized, then captured in part; the rest cannot be captured again.
            let authorized = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 1000, captureMethod: "manual")))
            let manualId = try #require(authorized["payment_id"] as? String)
            #expect(authorized["status"] as? String == "requires_capture")
            #expect(authorized["amount_capturable"] as? Int == 1000)
            expectError(try await stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: #"{"amount_to_capture": 1001}"#), status: 400, field: "amount_to_capture")
            let captured = try json(try await stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: #"{"amount_to_capture": 600}"#))
            #expect(captured["status"] as? String == "partially_captured")
            #expect(captured["amount_received"] as? Int == 600)
            expectError(try await stack.request(.POST, "/payments/\(manualId)/capture", apiKey: apiKey, body: "{}"), status: 400, field: nil)
            let fullCapture = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4111111111111111", amount: 500, captureMethod: "manual")))
            let fullId = try #require(fullCapture["payment_id"] as? String)
            #expect(try json(try await stack.request(.POST, "/payments/\(fullId)/capture", apiKey: apiKey, body: "{}"))["status"] as? String == "succeeded")

            // Cancel: an authorized payment is voided; a succeeded one cannot be.
            let toVoid = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 700, captureMethod: "manual")))
            let voidId = try #require(toVoid["payment_id"] as? String)
            let cancelled = try json(try await stack.request(.POST, "/payments/\(voidId)/cancel", apiKey: apiKey, body: #"{"cancellation_reason": "customer asked"}"#))
            #expect(cancelled["status"] as? String == "cancelled" && cancelled["cancellation_reason"] as? String == "customer asked")
            expectError(try await stack.request(.POST, "/payments/\(fullId)/cancel", apiKey: apiKey, body: "{}"), status: 400, field: nil)

            // Refunds: partial, then the rest; more than received is refused.
            let paid = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 1000)))
            let paidId = try #require(paid["payment_id"] as? String)
            let partial = try json(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paidId)", "amount": 300, "reason": "damaged"}"#))
            #expect(partial["status"] as? String == "succeeded" && partial["amount"] as? Int == 300)
            expectError(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paidId)", "amount": 701}"#), status: 400, field: "amount")
            let rest = try json(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paidId)"}"#))
            #expect(rest["amount"] as? Int == 700)
            expectError(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(paidId)", "amount": 1}"#), status: 400, field: "amount")
            let refundId = try #require(partial["refund_id"] as? String)
            #expect(try json(try await stack.request(.GET, "/refunds/\(refundId)", apiKey: apiKey))["status"] as? String == "succeeded")
            let failedId = try #require(outcomes.first { $0.value == "payment_failed" }?.key)
            expectError(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(failedId)"}"#), status: 400, field: nil)
            // The partially captured payment refunds at most what was captured.
            expectError(try await stack.request(.POST, "/refunds", apiKey: apiKey, body: #"{"payment_id": "\#(manualId)", "amount": 601}"#), status: 400, field: "amount")
            let restId = try #require(rest["refund_id"] as? String)
            let refundEvents = await eventually(timeout: .seconds(30)) {
                events(receiver, for: refundId) == ["refund_succeeded"] && events(receiver, for: restId) == ["refund_succeeded"]
            }
            #expect(refundEvents, "each refund of one payment gets its own webhook")
            let captureEvents = await eventually(timeout: .seconds(30)) { events(receiver, for: manualId).sorted() == ["payment_authorized", "payment_captured"].sorted() }
            #expect(captureEvents, "\(events(receiver, for: manualId))")

            // Idempotency-Key: the same key and body answer the first answer; another body is 409.
            let body = PaywireStack.cardPayment(card: "4242424242424242", amount: 4200)
            let first = try await stack.request(.POST, "/payments", apiKey: apiKey, body: body, headers: [("Idempotency-Key", "order-42")])
            let second = try await stack.request(.POST, "/payments", apiKey: apiKey, body: body, headers: [("Idempotency-Key", "order-42")])
            #expect(first.status == 200 && second.status == 200)
            #expect(first.json?["payment_id"] as? String == second.json?["payment_id"] as? String)
            #expect(first.body == second.body)
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 4300), headers: [("Idempotency-Key", "order-42")]), status: 409, field: "Idempotency-Key")
            let idempotentId = try #require(first.json?["payment_id"] as? String)

            // Two concurrent confirms of one payment: one charge.
            let unconfirmed = try json(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242", amount: 900, confirm: false)))
            let raceId = try #require(unconfirmed["payment_id"] as? String)
            #expect(unconfirmed["status"] as? String == "requires_confirmation")
            async let one = stack.request(.POST, "/payments/\(raceId)/confirm", apiKey: apiKey, body: "{}")
            async let two = stack.request(.POST, "/payments/\(raceId)/confirm", apiKey: apiKey, body: "{}")
            let statuses = [try await one.status, try await two.status].sorted()
            #expect(statuses == [200, 400], "exactly one confirm wins")

            // Bad input: a 4xx naming the field, never the card number.
            let badCard = try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424241"))
            expectError(badCard, status: 400, field: "payment_method_data.card.card_number")
            #expect(!badCard.body.contains("4242424242424241"))
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 0, "currency": "USD"}"#), status: 400, field: "amount")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 10, "currency": "usd"}"#), status: 400, field: "currency")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 10, "currency": "USD", "capture_method": "later"}"#), status: 400, field: "capture_method")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 10, "currency": "USD", "confirm": true}"#), status: 400, field: "payment_method_data")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 10, "currency": "USD", "routing": {"type": "single", "data": "stripe"}}"#), status: 400, field: "routing.data")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 10, "currency": "USD", "confirm": true, "payment_method_data": {"card": {"card_number": "4242424242424242", "card_exp_month": "13", "card_exp_year": "2030", "card_cvc": "737"}}}"#), status: 400, field: "payment_method_data.card.card_exp_month")
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: #"{"amount": 10, "currency": "USD", "confirm": true, "payment_method_data": {"card": {"card_number": "4242424242424242", "card_exp_month": "01", "card_exp_year": "2020", "card_cvc": "737"}}}"#), status: 400, field: "payment_method_data.card.card_exp_year")
            expectError(try await stack.request(.POST, "/payments/pay_nope/confirm", apiKey: apiKey, body: "{}"), status: 404, field: nil)
            // Another merchant sees none of it.
            let otherKey = try await stack.createMerchant("merchant_other", webhookURL: nil)
            #expect(try await stack.request(.GET, "/payments/\(paidId)", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.GET, "/refunds/\(refundId)", apiKey: otherKey).status == 404)
            #expect(try await stack.request(.POST, "/refunds", apiKey: otherKey, body: #"{"payment_id": "\#(paidId)"}"#).status == 404)

            // With several processors, a payment without routing is refused, naming routing.
            try await stack.createSandboxAccount(merchantId: "merchant_pay", apiKey: apiKey)
            expectError(try await stack.request(.POST, "/payments", apiKey: apiKey, body: PaywireStack.cardPayment(card: "4242424242424242")), status: 400, field: "routing")

            try await stack.waitUntilQuiet()
            let counts = try await withStackDatabase(stack.databaseURL(owning: "payments")) { client in
                var values: [Int] = []
                for sql in [
                    "SELECT count(*)::int FROM payments.payment_attempts WHERE payment_id = '\(raceId)'",
                    "SELECT count(*)::int FROM payments.payment_intents WHERE payment_id = '\(idempotentId)'",
                    "SELECT count(*)::int FROM payments.payment_intents WHERE amount = 4200",
                ] {
                    for try await row in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int.self) { values.append(row) }
                }
                return values
            }
            #expect(counts == [1, 1, 1], "one attempt for two confirms; one payment per idempotency key")
            let raceEvents = await eventually(timeout: .seconds(20)) { events(receiver, for: raceId) == ["payment_succeeded"] }
            #expect(raceEvents, "one charge, one event: \(events(receiver, for: raceId))")

            try await CardDataScan.expectNoCardNumbers(stack: stack, numbers: Self.cards.map(\.number) + ["4242424242424241"],
                                                       tokens: ["tok_sandbox_4242", "tok_sandbox_9995"])
        }
    }
}

/// The card numbers and CVC used in a run must not be in any table of any schema, nor in any
/// service's log.
enum CardDataScan {
    /// `tokens` (processor tokens) may be stored sealed and answered to the merchant, but never
    /// travel a topic in clear (dead letters included). Payment objects on the events topic
    /// never name the token they were charged with.
    static func expectNoCardNumbers(stack: PaywireStack, numbers: [String], tokens: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var dump = ""
        for schema in PaywireStack.schemaOwners.keys.sorted() {
            dump += try await withStackDatabase(stack.databaseURL(owning: schema)) { client in
                var text = ""
                let tables = try await client.query("""
                    SELECT table_name FROM information_schema.tables WHERE table_schema = \(schema) AND table_type = 'BASE TABLE'
                    """)
                var names: [String] = []
                for try await name in tables.decode(String.self) { names.append(name) }
                for table in names {
                    let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(schema).\(table) t"))
                    for try await line in rows.decode(String.self) { text += line + "\n" }
                }
                return text
            }
        }
        #expect(dump.count > 1000, "the scan read the tables", sourceLocation: sourceLocation)
        let logs = stack.allLogs()
        #expect(logs.count > 1000, "the scan read the logs", sourceLocation: sourceLocation)
        // Every message on every topic Paywire uses, headers included.
        let messages = try await TopicReader.read(brokers: stack.kafkaBrokers, topics: TopicNames().all)
        #expect(messages.count > 10, "the scan read the topics", sourceLocation: sourceLocation)
        let topics = messages.map { message in
            String(decoding: message.value, as: UTF8.self) + message.headers.map { String(decoding: $0.value, as: UTF8.self) }.joined()
        }.joined(separator: "\n")
        for number in numbers {
            #expect(!dump.contains(number), "card number \(number.suffix(4)) stored in the database", sourceLocation: sourceLocation)
            #expect(!logs.contains(number), "card number \(number.suffix(4)) in a log", sourceLocation: sourceLocation)
            #expect(!topics.contains(number), "card number \(number.suffix(4)) on a topic", sourceLocation: sourceLocation)
        }
        #expect(!topics.contains("card_cvc") && !topics.contains("\"cvc\""), "a CVC on a topic", sourceLocation: sourceLocation)
        for token in tokens {
            #expect(!topics.contains(token), "processor token \(token) on a topic in clear", sourceLocation: sourceLocation)
        }
        #expect(!dump.contains("\"737\"") && !dump.contains("card_cvc"), "a CVC stored", sourceLocation: sourceLocation)
    }
}

/// The event types the receiver got for one payment or refund, in arrival order. Deliveries
/// to one endpoint are not ordered (the worker sends them concurrently), so tests compare
/// several events of one object as a set.
func webhookEvents(_ receiver: WebhookReceiver, for objectId: String) -> [String] {
    receiver.requests.compactMap { request -> String? in
        guard let body = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: Any],
              let object = (body["content"] as? [String: Any])?["object"] as? [String: Any],
              let type = body["event_type"] as? String else { return nil }
        let id = type.hasPrefix("refund_") ? object["refund_id"] as? String : object["payment_id"] as? String
        return id == objectId ? type : nil
    }
}
