import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import Testing
@testable import Gateway
@testable import PaymentCore
@testable import PaywireKafka

@Suite struct StripeWebhookSignatureTests {
    let secret = "whsec_test_secret"
    let body = Array(#"{"id":"evt_1","type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","status":"succeeded","amount_received":500,"metadata":{"attempt_id":"pay_1_1"}}}}"#.utf8)

    func webhook(_ signature: String?, at now: Date = Date()) -> IncomingWebhook {
        IncomingWebhook(headers: signature.map { ["stripe-signature": $0] } ?? [:], body: body, receivedAt: now)
    }

    var connector: StripeConnector { StripeConnector(baseURL: "http://127.0.0.1:1", http: .shared, timeout: .seconds(1)) }

    @Test func aValidSignatureDecodesToOurOutcome() throws {
        let now = Int(Date().timeIntervalSince1970)
        let event = try #require(try connector.decodeWebhook(webhook(StripeConnector.signatureHeader(body: body, secret: secret, timestamp: now)), secret: secret).first)
        guard case .payment(let transactionId, let attemptId, _, let result) = event.subject else { Issue.record("not a payment event"); return }
        #expect(transactionId == "pi_1" && attemptId == "pay_1_1")
        #expect(result.status == .charged && result.amountReceived == 500)
    }

    @Test func stalewrongOrMissingSignaturesAreRefused() throws {
        let now = Int(Date().timeIntervalSince1970)
        #expect(throws: IncomingWebhookError.self) { try connector.decodeWebhook(webhook(StripeConnector.signatureHeader(body: body, secret: secret, timestamp: now - 301)), secret: secret) }
        #expect(throws: IncomingWebhookError.self) { try connector.decodeWebhook(webhook(StripeConnector.signatureHeader(body: body, secret: "whsec_other", timestamp: now)), secret: secret) }
        #expect(throws: IncomingWebhookError.self) { try connector.decodeWebhook(webhook(nil), secret: secret) }
        #expect(throws: IncomingWebhookError.self) { try connector.decodeWebhook(webhook("t=\(now)"), secret: secret) }
        #expect(throws: IncomingWebhookError.missingSecret) { try connector.decodeWebhook(webhook("t=\(now),v1=00"), secret: nil) }
        // Several v1 values (a secret being rolled): any match is enough.
        let good = StripeConnector.signatureHeader(body: body, secret: secret, timestamp: now)
        let rolled = "t=\(now),v1=\(String(repeating: "ab", count: 32)),\(good.split(separator: ",")[1])"
        #expect(try connector.decodeWebhook(webhook(rolled), secret: secret).count == 1)
    }

    @Test func stripeErrorsMapToPaywireCodes() {
        #expect(StripeConnector.decline(from: .object(["code": .string("card_declined"), "decline_code": .string("insufficient_funds")])).code == "insufficient_funds")
        #expect(StripeConnector.decline(from: .object(["code": .string("card_declined")])).code == "generic_decline")
        #expect(StripeConnector.decline(from: .object(["code": .string("expired_card")])).isHard)
        let intent: JSONValue = .object(["status": .string("requires_payment_method"), "last_payment_error": .object(["code": .string("card_declined"), "decline_code": .string("lost_card")])])
        #expect(StripeConnector.result(intent: intent, intentId: "pi").error?.code == "lost_card")
        #expect(StripeConnector.result(intent: .object(["status": .string("processing")]), intentId: "pi").status == .pending)
        #expect(ConnectorHTTPExecutor.formEncode([.init("payment_method_data[card][number]", "4242 42"), .init("metadata[a]", "x&y=z")]) == "payment_method_data[card][number]=4242%2042&metadata[a]=x%26y%3Dz")
    }

    @Test func requestsAreBuiltAsStripeExpectsThem() {
        let card = CardDetails(number: "4242424242424242", expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: "Jo")
        let authorize = AuthorizeRequest(paymentId: "pay_1", attemptId: "pay_1_1", amount: 6540, currency: "USD", instrument: .card(card), captureManually: true)
        let create = connector.buildRequest(.createIntent(authorize), credentials: .headerKey(apiKey: "sk_test_1"))
        #expect(create.method == .POST && create.path == "/v1/payment_intents")
        #expect(create.headers["Authorization"] == "Bearer sk_test_1")
        #expect(create.headers["Idempotency-Key"] == "pay_1_1-create")
        #expect(create.form?.contains(.init("currency", "usd")) == true)
        #expect(create.form?.contains(.init("capture_method", "manual")) == true)
        #expect(create.form?.contains(.init("metadata[attempt_id]", "pay_1_1")) == true)
        #expect(!(create.form ?? []).contains { $0.value == "4242424242424242" }, "the card goes only with the confirm")
        let confirm = connector.buildRequest(.confirmIntent(id: "pi_9", authorize), credentials: .headerKey(apiKey: "sk_test_1"))
        #expect(confirm.path == "/v1/payment_intents/pi_9/confirm" && confirm.headers["Idempotency-Key"] == "pay_1_1-confirm")
        #expect(confirm.form?.contains(.init("payment_method_data[card][cvc]", "737")) == true)
        #expect(!confirm.redactedDescription.contains("4242"))
        let search = connector.buildRequest(.searchIntents(attemptId: "pay_1_1"), credentials: .headerKey(apiKey: "k"))
        #expect(search.method == .GET && search.form == nil && search.path.hasPrefix("/v1/payment_intents/search?query=metadata"))
    }

    @Test func responsesAreHandledByKind() {
        let call = StripeConnector.Call.retrieveIntent(id: "pi")
        #expect(connector.handleResponse(.answered(status: 200, body: .object(["id": .string("pi")])), to: call) == .object(.object(["id": .string("pi")])))
        #expect(connector.handleResponse(.noAnswer, to: call) == .unknown, "a timeout says nothing about the charge")
        #expect(connector.handleResponse(.answered(status: 503, body: nil), to: call) == .unknown)
        #expect(connector.handleResponse(.answered(status: 429, body: nil), to: call) == .unknown)
        let declined = connector.handleResponse(.answered(status: 402, body: .object(["error": .object(["code": .string("card_declined"), "decline_code": .string("insufficient_funds")])])), to: call)
        // Stripe's own code and message (naming the decline code) for the payment's error_code /
        // error_message; the decline code as Paywire's neutral reason.
        #expect(declined == .failed(ConnectorDecline(code: "insufficient_funds", message: "The card was declined", rawCode: "insufficient_funds",
                                                     processorCode: "card_declined", processorMessage: "message - The card was declined, decline_code - insufficient_funds")))
        let advised = connector.handleResponse(.answered(status: 402, body: .object(["error": .object([
            "code": .string("card_declined"), "decline_code": .string("do_not_honor"), "network_decline_code": .string("05"), "network_advice_code": .string("21"),
        ])])), to: call)
        #expect(advised == .failed(ConnectorDecline(code: "do_not_honor", message: "The card was declined", rawCode: "05", adviceCode: "21",
                                                    processorCode: "card_declined", processorMessage: "message - The card was declined, decline_code - do_not_honor")))
    }
}

@Suite struct GatewayRepliesTests {
    func reply(_ id: String, to instance: String = "gw") throws -> KafkaConsumerMessage {
        let reply = GatewayReply(correlationId: id, replyTo: instance, object: .object(["status": .string("succeeded")]))
        let envelope = EventEnvelope(type: MessageType.gatewayReply, merchantId: "m", payload: try JSONValue(encoding: reply))
        return KafkaConsumerMessage(topic: "replies", partition: 0, offset: 0, key: nil, value: try envelope.encoded(), headers: [])
    }

    @Test func aReplyBeforeOrAfterTheWaitIsDeliveredOnce() async throws {
        let replies = GatewayReplies(instanceId: "gw", logger: Logger(label: "test"))
        replies.register("early")
        try await replies.handle(reply("early"))
        #expect(await replies.wait("early", timeout: .seconds(5))?.correlationId == "early")

        replies.register("late")
        async let waited = replies.wait("late", timeout: .seconds(5))
        try await Task.sleep(for: .milliseconds(50))
        try await replies.handle(reply("late"))
        try await replies.handle(reply("late"))
        #expect(await waited?.correlationId == "late")
    }

    /// A reply addressed to another replica is not this one's; the wait ends with its deadline
    /// (the time limit catches a wait that would not), and one never registered ends at once.
    @Test(.timeLimit(.minutes(1))) func otherReplicasRepliesAndTimeoutsGiveNil() async throws {
        let replies = GatewayReplies(instanceId: "gw", logger: Logger(label: "test"))
        replies.register("x")
        try await replies.handle(reply("x", to: "another-gateway"))
        #expect(await replies.wait("x", timeout: .milliseconds(100)) == nil)
        #expect(replies.readCounts.here == 0 && replies.readCounts.elsewhere == 1)
        #expect(await replies.wait("never-registered", timeout: .seconds(600)) == nil)
    }

    /// A request that goes away (the client hung up) stops waiting at once, whatever the reply
    /// timeout, and leaves nothing behind; a reply ends the wait's deadline with it.
    @Test(.timeLimit(.minutes(1))) func aCancelledWaitEndsAtOnceAndNothingOutlivesAWait() async throws {
        let replies = GatewayReplies(instanceId: "gw", logger: Logger(label: "test"))
        replies.register("gone")
        let request = Task { await replies.wait("gone", timeout: .seconds(3600)) }
        request.cancel()
        #expect(await request.value == nil)
        #expect(replies.waiting == 0)
        // Cancelled before the wait even began: it returns at once too.
        replies.register("early-cancel")
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await replies.wait("early-cancel", timeout: .seconds(3600))
        }
        #expect(await cancelled.value == nil)
        #expect(replies.waiting == 0)
        // Answered: the wait returns with the reply, its hour-long deadline gone with it (the
        // test's time limit would catch a group waiting on it).
        replies.register("answered")
        async let answered = replies.wait("answered", timeout: .seconds(3600))
        try await replies.handle(reply("answered"))
        #expect(await answered?.correlationId == "answered")
    }
}

@Suite struct CardVaultTests {
    @Test func aCardIsHandedOutOnceAndOnlyWithTheInternalSignature() throws {
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        let signer = try CardVaultSigner(encryptionKey: key)
        let vault = try CardVault(internalURL: "http://gw:8090/", signer: signer)
        #expect(vault.authority == "gw:8090")
        let reference = vault.put(CardDetails(number: "4242424242424242", expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: nil))
        #expect(reference.url == "http://gw:8090/internal/card-vault/\(reference.token)/take")
        #expect(!reference.url.contains("4242424242424242"))
        #expect(vault.take(reference.token)?.last4 == "4242")
        #expect(vault.take(reference.token) == nil, "one use")
        let expiring = try CardVault(internalURL: "http://gw", signer: signer, lifetime: .zero)
        #expect(expiring.take(expiring.put(CardDetails(number: "4111111111111111", expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: nil)).token) == nil)
    }

    /// The take's signature binds method, host, path, token and time, under a key of its own.
    @Test func aTakeSignatureHoldsForOneHostOnePathOneTokenAndHalfAMinute() throws {
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        let signer = try CardVaultSigner(encryptionKey: key)
        let now = Date()
        let headers = Dictionary(uniqueKeysWithValues: signer.headers(method: "POST", host: "gw:8090", path: "/internal/card-vault/cvt_1/take", token: "cvt_1", now: now))
        let signature = headers[CardVaultSigner.signatureHeader], timestamp = headers[CardVaultSigner.timestampHeader]
        func valid(method: String = "POST", host: String = "gw:8090", path: String = "/internal/card-vault/cvt_1/take", token: String = "cvt_1", at: Date = now) -> Bool {
            signer.isValid(signature: signature, timestamp: timestamp, method: method, host: host, path: path, token: token, now: at)
        }
        #expect(valid())
        #expect(!valid(method: "GET"))
        #expect(!valid(host: "evil.example:8090"))
        #expect(!valid(path: "/internal/card-vault/cvt_2/take"))
        #expect(!valid(token: "cvt_2"))
        #expect(!valid(at: now.addingTimeInterval(31)), "too old")
        #expect(!signer.isValid(signature: nil, timestamp: timestamp, method: "POST", host: "gw:8090", path: "/internal/card-vault/cvt_1/take", token: "cvt_1", now: now))
        // Another use of the same encryption key cannot produce it.
        let other = try InternalRequestSigner(encryptionKey: key)
        #expect(other.signature(for: "POST\ngw:8090\n/internal/card-vault/cvt_1/take\ncvt_1\n\(timestamp!)") != signature)
    }

    /// payment-core calls only vault hosts on its allow-list, and only take URLs.
    @Test func paymentCoreCallsOnlyAllowedVaultHosts() async throws {
        let client = CardVaultClient(http: .shared, signer: try CardVaultSigner(encryptionKey: Data(repeating: 7, count: 32).base64EncodedString()), allowedHosts: ["127.0.0.1:1"])
        for url in ["http://evil.example/internal/card-vault/cvt_1/take", "http://127.0.0.1:2/internal/card-vault/cvt_1/take",
                    "http://127.0.0.1:1/other/cvt_1", "http://127.0.0.1:1/internal/card-vault/cvt_2/take", "file:///etc/passwd"] {
            await #expect(throws: CardVaultClient.NotAllowed.self) { try await client.take(CardVaultReference(url: url, token: "cvt_1")) }
        }
        #expect(try CardVaultClient.allowedHosts(["PAYWIRE_CARD_VAULT_HOSTS": " GW:8090, gw2:8090 ,"]) == ["gw:8090", "gw2:8090"])
    }

    /// A card taken for a confirm interrupted by a fault of ours is there for its retry (the vault
    /// hands each out once), only for an allowed vault, and not after the confirm released it.
    @Test func aTakenCardIsHeldForTheRetryOfItsConfirmUntilReleased() async throws {
        let client = CardVaultClient(http: .shared, signer: try CardVaultSigner(encryptionKey: Data(repeating: 7, count: 32).base64EncodedString()), allowedHosts: ["127.0.0.1:1"])
        let card = CardDetails(number: "4242424242424242", expiryMonth: "03", expiryYear: "2030", cvc: "737", holderName: nil)
        let reference = CardVaultReference(url: "http://127.0.0.1:1/internal/card-vault/cvt_held/take", token: "cvt_held")
        client.held.hold(card, for: "cvt_held")
        // Port 1 answers nothing: only the held card can come back.
        #expect(try await client.take(reference)?.number == card.number)
        await #expect(throws: CardVaultClient.NotAllowed.self) {
            try await client.take(CardVaultReference(url: "http://evil.example/internal/card-vault/cvt_held/take", token: "cvt_held"))
        }
        client.release(reference)
        #expect(client.held.count == 0)
        await #expect(throws: (any Error).self) { try await client.take(reference) }
    }

    /// Replicas with addresses known only by network (pods, scaled containers) are allowed by
    /// `network/prefix:port`: any IPv4 address inside, on that port only, and no name.
    @Test func vaultHostsMayBeAllowedByNetwork() throws {
        let client = CardVaultClient(http: .shared, signer: try CardVaultSigner(encryptionKey: Data(repeating: 7, count: 32).base64EncodedString()),
                                     allowedHosts: try CardVaultClient.allowedHosts(["PAYWIRE_CARD_VAULT_HOSTS": "10.213.0.0/24:8090,gw:8090"]))
        for allowed in ["10.213.0.7:8090", "10.213.0.255:8090", "gw:8090"] { #expect(client.allows(allowed), "\(allowed)") }
        for refused in ["10.213.1.7:8090", "10.213.0.7:8091", "10.213.0.7", "gw.10.213.0.7:8090", "10.213.0.7.evil:8090", "010.213.0.7x:8090", "[::1]:8090", "gw:8091"] {
            #expect(!client.allows(refused), "\(refused)")
        }
        #expect(CardVaultClient.network("0.0.0.0/0:1") != nil)
        // A gateway on all interfaces names its own address (the container's or pod's), an
        // IPv4 literal such an entry can match; on one interface, that one.
        #expect(GatewayService.advertisedHost(listeningOn: "10.1.2.3") == "10.1.2.3")
        let own = GatewayService.advertisedHost(listeningOn: "0.0.0.0")
        #expect(CardVaultClient.ipv4(Substring(own)) != nil, "\(own)")
        for malformed in ["10.213.0.0/33:8090", "10.213.0/24:8090", "10.213.0.0/24", "10.213.0.0/24:0", "gw/24:8090"] {
            #expect(throws: ServiceConfiguration.ConfigurationError.self, "\(malformed)") { try CardVaultClient.allowedHosts(["PAYWIRE_CARD_VAULT_HOSTS": malformed]) }
        }
    }

    @Test func paymentRequestsKeepOnlyTheCardSummary() throws {
        let body = RequestObject([
            "amount": .number(100), "currency": .string("USD"), "confirm": .bool(true),
            "payment_method_data": .object(["card": .object(["card_number": .string("4242 4242 4242 4242"), "card_exp_month": .string("3"), "card_exp_year": .string("30"), "card_cvc": .string("123")])]),
            "metadata": .object(["order": .string("1")]),
        ])
        let request = try PaymentRequest.create(body, merchantId: "m")
        #expect(request.card?.number == "4242424242424242")
        let encoded = String(decoding: try PaywireJSON.encoder.encode(request.command), as: UTF8.self)
        #expect(!encoded.contains("4242424242424242") && !encoded.contains("123\""))
        #expect(request.command.card?.last4 == "4242" && request.command.card?.expiryYear == "2030" && request.command.card?.expiryMonth == "03")
        #expect(request.command.details?["metadata"]?["order"] == .string("1"))
    }
}

@Suite struct ReplyEncodingTests {
    @Test func theHandBuiltReplyDocumentIsTheCodableOne() throws {
        for reply in [
            GatewayReply(correlationId: "c", replyTo: "g", object: .object(["status": .string("succeeded"), "amount": .number(5)])),
            GatewayReply(correlationId: "c", replyTo: "g", error: .init(status: 400, code: "IR_16", message: "no", field: "amount")),
            GatewayReply(correlationId: "c", replyTo: "g", error: .init(status: 404, code: "HE_02", message: "gone")),
        ] {
            #expect(try reply.json.decode(GatewayReply.self) == reply)
            let envelope = EventEnvelope(type: MessageType.gatewayReply, merchantId: "m", payload: reply.json)
            #expect(try TypedEnvelope<GatewayReply>.decode(try envelope.encoded()).payload == reply)
        }
    }
}

@Suite struct KeyedPipelineStateTests {
    func message(_ key: String, _ offset: Int64) -> KafkaConsumerMessage {
        KafkaConsumerMessage(topic: "t", partition: 0, offset: offset, key: Array(key.utf8), value: [], headers: [])
    }

    @Test func aKeyHasOneWorkerUntilItsQueueIsDrained() {
        var state = KeyedPipeline.State()
        let a = KeyedPipeline.queueKey(message("a", 0))
        #expect(state.enqueue(message("a", 0)) == true, "first message of a key starts a worker")
        #expect(state.next(for: a)?.offset == 0)
        // While that worker handles its last queued message, a new one must join its queue,
        // not start a second worker (that would break the key's order).
        #expect(state.enqueue(message("a", 1)) == false)
        #expect(state.next(for: a)?.offset == 1)
        #expect(state.enqueue(message("a", 2)) == false)
        #expect(state.next(for: a)?.offset == 2)
        #expect(state.next(for: a) == nil, "drained: the worker ends")
        #expect(state.enqueue(message("a", 3)) == true, "and the next message starts a new one")
    }

    @Test func offsetsAdvanceOnlyPastFinishedMessages() {
        var state = KeyedPipeline.State()
        let first = message("a", 10), second = message("b", 11), third = message("c", 12)
        for item in [first, second, third] { _ = state.enqueue(item) }
        #expect(state.finish(second) == nil, "10 is still running")
        #expect(state.finish(third) == nil)
        #expect(state.finish(first) == 12, "all of 10...12 done")
    }

    @Test func aMessageDeliveredTwiceStillLetsThePartitionReachItsEnd() {
        // 15 is delivered twice (librdkafka re-fetched it) and both copies finish while 14 still
        // runs: both copies must count, or the partition would wait for a third forever.
        var state = KeyedPipeline.State()
        let fourteen = message("a", 14), fifteen = message("b", 15), again = message("b", 15), sixteen = message("c", 16)
        for item in [fourteen, fifteen, again, sixteen] { _ = state.enqueue(item) }
        #expect(state.finish(fifteen) == nil)
        #expect(state.finish(again) == nil)
        #expect(state.finish(sixteen) == nil)
        #expect(state.finish(fourteen) == 16, "14, both copies of 15, and 16 done")
        #expect(state.inFlight == 0 && state.pending[fourteen.topicPartition]?.isEmpty == true)
    }

    @Test func storesNeverGoBackUntilThePartitionIsAssignedAgain() {
        var state = KeyedPipeline.State()
        let partition = KafkaTopicPartition(topic: "t", partition: 0)
        for offset in Int64(20)...22 { _ = state.enqueue(message("k\(offset)", offset)) }
        for offset in Int64(20)...22 { if let reached = state.finish(message("k\(offset)", offset)) { state.stored(reached, for: partition) } }
        #expect(state.storedUpTo[partition] == 22)
        // A late copy of 21 (polled again) finishing must not store 21 after 22.
        _ = state.enqueue(message("k21", 21))
        #expect(state.finish(message("k21", 21)) == nil)
        // After a rebalance gives the partition back, reading resumes at the committed offset,
        // and what is handled from there is stored again.
        state.assigned([partition])
        _ = state.enqueue(message("k21", 21))
        #expect(state.finish(message("k21", 21)) == 21)
    }
}

@Suite struct CommandSignerTests {
    func received(_ message: KafkaProducerMessage) -> KafkaConsumerMessage {
        KafkaConsumerMessage(topic: message.topic, partition: 0, offset: 0, key: message.key, value: message.value, headers: message.headers)
    }

    @Test func aCommandIsAcceptedOnlyAsSignedOnItsTopicAndKey() throws {
        let environment = ["PAYWIRE_ENCRYPTION_KEY": Data(repeating: 1, count: 32).base64EncodedString()]
        let signer = try CommandSigner(environment: environment)
        let signed = signer.signed(KafkaProducerMessage(topic: "paywire.payment.commands", key: "pay_1", value: Array(#"{"operation":"capture"}"#.utf8)))
        #expect(signer.isValid(received(signed)))
        var tampered = signed
        tampered.value = Array(#"{"operation":"refund"}"#.utf8)
        #expect(!signer.isValid(received(tampered)))
        var moved = signed
        moved.key = Array("pay_2".utf8)
        #expect(!signer.isValid(received(moved)))
        var elsewhere = signed
        elsewhere.topic = "paywire.recovery.commands"
        #expect(!signer.isValid(received(elsewhere)))
        var bare = signed
        bare.headers = []
        #expect(!signer.isValid(received(bare)))
        // Another key — or the encryption key's own bytes — signs something else.
        let other = try CommandSigner(environment: ["PAYWIRE_COMMAND_SIGNING_KEY": Data(repeating: 1, count: 32).base64EncodedString()])
        #expect(!other.isValid(received(signed)))
        #expect(throws: ServiceConfiguration.ConfigurationError.self) { try CommandSigner(environment: ["PAYWIRE_COMMAND_SIGNING_KEY": "short"]) }
    }
}
