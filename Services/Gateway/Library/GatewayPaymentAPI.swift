import Foundation
import Hummingbird
import Logging
import NIOCore
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// The payments API. Each write becomes a `PaymentCommand` on Kafka, keyed by payment id; the
/// gateway waits (bounded) for payment-core's reply and answers with the object it carries. If
/// the wait runs out it answers 202 with the payment as stored now (`processing`), and the
/// client polls `GET /payments/{id}`: the command is on Kafka and will be applied exactly once.
struct GatewayPaymentAPI: Sendable {
    let infrastructure: ServiceInfrastructure
    let replies: GatewayReplies
    let vault: CardVault
    let idempotency: IdempotencyStore
    let replyTimeout: Duration
    let commandSigner: CommandSigner
    let paymentCore: PaymentCoreClient
    /// Seals a command's processor token for its trip over Kafka.
    let secrets: SecretBox
    /// Payment settings read recently, while configuration changes are heard.
    let settings = NotifiedCache<PaymentSetting>(payload: "configuration")

    static let environmentKeys = ["PAYWIRE_REPLY_TIMEOUT_MS", "PAYWIRE_GATEWAY_INTERNAL_URL", "PAYWIRE_GATEWAY_INTERNAL_HOST", "PAYWIRE_GATEWAY_INTERNAL_PORT", "PAYWIRE_GATEWAY_SNAPSHOT_PORT", "PAYWIRE_CARD_VAULT_LIFETIME_SECONDS"]

    var postgres: PostgresClient { infrastructure.postgres }
    var logger: Logger { infrastructure.logger }

    /// An answer ready to send (and, when `definitive`, to store for its Idempotency-Key).
    struct Answer: Sendable {
        var status: HTTPResponse.Status
        var body: JSONValue
        var definitive: Bool
    }

    func addRoutes(to router: some RouterMethods<PaywireRequestContext>) {
        // The caller was admitted by the route's group before any body is read.
        router.post("/payments") { request, context in
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let merchantId = try await merchant(caller, body: body)
            var parsed = try PaymentRequest.create(body, merchantId: merchantId)
            let setting = try await paymentSetting(merchantId: merchantId, requestedProfile: parsed.command.profileId)
            parsed.command.profileId = setting.profileId
            // How long the client secret works: the request's, else the profile's, else 900 s.
            if case .object(var details)? = parsed.command.details {
                let expiry = try body.integer("session_expiry", range: PaymentRequest.sessionExpiryRange) ?? setting.sessionExpiry
                details[PaymentCommand.sessionExpiryDetail] = .number(Double(expiry ?? ClientSecretAccess.defaultSessionExpiry))
                parsed.command.details = .object(details)
            }
            let account = try Self.chooseAccount(setting.accounts, routing: parsed.routing)
            parsed.command.merchantConnectorId = account.id
            parsed.command.connectorName = account.name
            let answer = try await idempotent(request, merchantId: merchantId, body: body, proposedId: Identifier.make("pay"), resource: Resource.payment) { paymentId in
                var command = parsed.command
                command.paymentId = paymentId
                return try await execute(command, card: parsed.card, fallback: .payment(paymentId), configurationVersion: setting.version)
            }
            return respond(answer)
        }
        addPaymentAction(.capture, to: router) { body, command in
            command.amountToCapture = try body.integer("amount_to_capture", range: 1...InputLimits.maxAmount)
        }
        addPaymentAction(.cancel, to: router) { body, command in
            command.cancellationReason = try body.string("cancellation_reason", maxLength: 255)
        }
        router.get("/payments/list") { request, context in
            let caller = try context.authenticatedCaller
            let parameters = request.uri.queryParameters
            let parameter = { (name: String) in parameters[Substring(name)].map(String.init) }
            let query = try PaymentListRequest.payments(parameter, merchantId: try await merchant(caller, query: parameter))
            return JSONResponse(try await paymentCore.list("/internal/payments/list", query))
        }
        router.post("/payments/:payment_id") { request, context in
            let paymentId = try context.pathParameter("payment_id")
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let merchantId = try await merchant(caller, paymentId: paymentId)
            let command = try PaymentRequest.update(body, merchantId: merchantId, paymentId: paymentId)
            let answer = try await idempotent(request, merchantId: merchantId, body: body, proposedId: paymentId, resource: Resource.payment) { _ in
                try await execute(command, card: nil, fallback: .payment(paymentId))
            }
            return respond(answer)
        }
        router.post("/refunds") { request, context in
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let paymentId = try body.requiredString("payment_id", maxLength: 64)
            let merchantId = try await merchant(caller, paymentId: paymentId)
            var command = PaymentCommand(operation: .refund, paymentId: paymentId, merchantId: merchantId)
            command.refundAmount = try body.integer("amount", range: 1...InputLimits.maxAmount)
            command.refundReason = try body.string("reason", maxLength: 255)
            command.refundMetadata = try body.anyObject("metadata")
            try body.checkFreeFormSize(except: ["payment_id", "amount", "refund_type"], field: "metadata")
            _ = try body.string("refund_type", maxLength: 32)
            let answer = try await idempotent(request, merchantId: merchantId, body: body, proposedId: Identifier.make("ref"), resource: Resource.refund) { refundId in
                command.refundId = refundId
                return try await execute(command, card: nil, fallback: .refund(refundId))
            }
            return respond(answer)
        }
        router.post("/refunds/list") { request, context in
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let query = try PaymentListRequest.refunds(body, merchantId: try await merchant(caller, body: body))
            return JSONResponse(try await paymentCore.list("/internal/refunds/list", query))
        }
        router.post("/refunds/:refund_id") { request, context in
            let refundId = try context.pathParameter("refund_id")
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let merchantId: String? = if case .merchant(let own) = caller { own } else { nil }
            guard let refund = try await storedObject(.refund(refundId), merchantId: merchantId),
                  let owner = refund["merchant_id"]?.stringValue, let paymentId = refund["payment_id"]?.stringValue else { throw APIError.notFound("Refund") }
            var command = PaymentCommand(operation: .updateRefund, paymentId: paymentId, merchantId: owner)
            command.refundId = refundId
            command.refundReason = try body.string("reason", maxLength: 255)
            command.refundMetadata = try body.anyObject("metadata")
            try body.checkFreeFormSize(except: ["reason"], field: "metadata")
            let answer = try await idempotent(request, merchantId: owner, body: body, proposedId: refundId, resource: Resource.refund) { [command] _ in
                try await execute(command, card: nil, fallback: .refund(refundId))
            }
            return respond(answer)
        }
        router.get("/refunds/:refund_id") { request, context in
            let refundId = try context.pathParameter("refund_id")
            let caller = try context.authenticatedCaller
            let merchantId: String? = if case .merchant(let own) = caller { own } else { nil }
            guard let object = try await storedObject(.refund(refundId), merchantId: merchantId) else { throw APIError.notFound("Refund") }
            return JSONResponse(object)
        }
    }

    /// The routes a browser may call with the merchant's publishable key and the payment's
    /// `client_secret` (`ClientSecretAccess`); the admin and secret keys call them as any other.
    func addClientRoutes(to router: some RouterMethods<PaywireRequestContext>) {
        router.post("/payments/:payment_id/confirm") { request, context in
            let paymentId = try context.pathParameter("payment_id")
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let access = try await clientAccess(caller, paymentId: paymentId, clientSecret: try body.string("client_secret", maxLength: 255))
            if access.browser {
                for field in ClientSecretAccess.merchantOnlyConfirmFields where body.has(field) {
                    throw APIError.invalid(field, "cannot be set with a publishable key (the merchant decides it)")
                }
            }
            var parsed = try PaymentRequest.confirm(body, merchantId: access.merchantId, paymentId: paymentId)
            if let routing = parsed.routing {
                let profileId = try await paymentProfile(paymentId)
                let account = try await resolveConnectorAccount(merchantId: access.merchantId, profileId: profileId, routing: routing)
                parsed.command.merchantConnectorId = account.id
                parsed.command.connectorName = account.name
            }
            var answer = try await idempotent(request, merchantId: access.merchantId, body: body, proposedId: paymentId, resource: Resource.payment) { _ in
                try await execute(parsed.command, card: parsed.card, fallback: .payment(paymentId))
            }
            if access.browser { answer.body = ClientSecretAccess.browserView(answer.body) }
            return respond(answer)
        }
        router.get("/payments/:payment_id") { request, context in
            let paymentId = try context.pathParameter("payment_id")
            let clientSecret = request.uri.queryParameters["client_secret"].map(String.init)
            if let clientSecret { _ = try InputText.identifier(clientSecret, field: "client_secret") }
            let access = try await clientAccess(try context.authenticatedCaller, paymentId: paymentId, clientSecret: clientSecret)
            return JSONResponse(access.browser ? ClientSecretAccess.browserView(access.payment) : access.payment)
        }
    }

    /// `POST /payments/{id}/<operation>` for an action on an existing payment whose body only
    /// fills in the command.
    func addPaymentAction(_ operation: PaymentCommand.Operation, to router: some RouterMethods<PaywireRequestContext>, read: @escaping @Sendable (RequestObject, inout PaymentCommand) throws -> Void) {
        router.post(RouterPath("/payments/:payment_id/\(operation.rawValue)")) { request, context in
            let paymentId = try context.pathParameter("payment_id")
            let caller = try context.authenticatedCaller
            let body = try await RequestObject.read(from: request, context: context)
            let merchantId = try await merchant(caller, paymentId: paymentId)
            var command = PaymentCommand(operation: operation, paymentId: paymentId, merchantId: merchantId)
            try read(body, &command)
            let answer = try await idempotent(request, merchantId: merchantId, body: body, proposedId: paymentId, resource: Resource.payment) { [command] _ in
                try await execute(command, card: nil, fallback: .payment(paymentId))
            }
            return respond(answer)
        }
    }

    // MARK: Commands and replies

    enum Resource: Sendable {
        case payment(String)
        case refund(String)
    }

    /// Sends the command and waits for its reply. The card goes to the vault just before the
    /// send and is dropped if the send fails.
    /// `configurationVersion`: the merchant's configuration version when the request was read,
    /// if the caller has it (nil: read now).
    func execute(_ command: PaymentCommand, card: CardDetails?, fallback: Resource, configurationVersion: Int64? = nil) async throws -> Answer {
        var command = command
        command.replyTo = replies.instanceId
        command.replyPartition = replies.replyPartition
        try command.sealProcessorToken(with: secrets)
        if let card { command.cardVault = vault.put(card) }
        // The merchant's configuration version now: payment-core acts only once its copy has it,
        // so an account or endpoint changed before this call applies to it.
        let version: Int64
        if let configurationVersion { version = configurationVersion } else { version = try await ConfigurationPublisher.currentVersion(command.merchantId, postgres: postgres, logger: logger) }
        let envelope = EventEnvelope(
            type: MessageType.paymentCommand, merchantId: command.merchantId, profileId: command.profileId, configurationVersion: version,
            payload: try JSONValue(encoding: command)
        )
        replies.register(envelope.id)
        do {
            let message = KafkaProducerMessage(topic: infrastructure.configuration.topics.paymentCommands, key: command.paymentId, value: try envelope.encoded())
            _ = try await infrastructure.producer.send(commandSigner.signed(TraceHeaders.attachCurrent(to: message)))
        } catch {
            replies.forget(envelope.id)
            vault.discard(command.cardVault)
            logger.error("payment command not acknowledged", metadata: ["payment_id": .string(command.paymentId), "error": .string(String(describing: error))])
            throw APIError.unavailable("The request could not be accepted; retry it with the same Idempotency-Key")
        }
        guard let reply = await replies.wait(envelope.id, timeout: replyTimeout) else {
            // Still running (or payment-core is catching up, or down): answer with what is stored
            // now, if payment-core can say.
            let current = try? await storedObject(fallback, merchantId: command.merchantId)
            return Answer(status: .accepted, body: (current ?? nil) ?? placeholder(fallback, command), definitive: false)
        }
        if let failure = reply.error {
            let error: JSONValue = .object([
                "type": .string("invalid_request"), "code": .string(failure.code), "message": .string(failure.message),
                "field": failure.field.map(JSONValue.string) ?? .null,
            ])
            return Answer(status: HTTPResponse.Status(code: failure.status), body: .object(["error": error]), definitive: failure.status < 500)
        }
        return Answer(status: .ok, body: reply.object ?? .null, definitive: true)
    }

    /// What a client gets for a resource payment-core has not written yet.
    func placeholder(_ resource: Resource, _ command: PaymentCommand) -> JSONValue {
        switch resource {
        case .payment(let id):
            return .object([
                "payment_id": .string(id), "merchant_id": .string(command.merchantId), "status": .string("processing"),
                "amount": command.amount.map { .number(Double($0)) } ?? .null, "currency": command.currency.map(JSONValue.string) ?? .null,
                "profile_id": command.profileId.map(JSONValue.string) ?? .null,
            ])
        case .refund(let id):
            return .object([
                "refund_id": .string(id), "payment_id": .string(command.paymentId), "status": .string("pending"),
                "amount": command.refundAmount.map { .number(Double($0)) } ?? .null,
            ])
        }
    }

    /// The payment or refund as payment-core holds it, if it belongs to `merchantId` (any merchant's for nil).
    func storedObject(_ resource: Resource, merchantId: String?) async throws -> JSONValue? {
        let object: JSONValue?
        switch resource {
        case .payment(let id): object = try await paymentCore.payment(id)
        case .refund(let id): object = try await paymentCore.refund(id)
        }
        guard let object, merchantId == nil || object["merchant_id"]?.stringValue == merchantId else { return nil }
        return object
    }

    // MARK: Idempotency

    func idempotent(
        _ request: Request, merchantId: String, body: RequestObject, proposedId: String, resource: (String) -> Resource, _ run: (String) async throws -> Answer
    ) async throws -> Answer {
        guard let key = request.headers[.init(IdempotencyStore.header)!] else { return try await run(proposedId) }
        let digest = try idempotency.digest(method: request.method.rawValue, path: request.uri.path, body: body)
        switch try await idempotency.begin(merchantId: merchantId, key: key, digest: digest, proposedResourceId: proposedId) {
        case .replay(let status, let stored):
            let value = (try? PaywireJSON.decoder.decode(JSONValue.self, from: Data(stored.utf8))) ?? .null
            return Answer(status: HTTPResponse.Status(code: status), body: value, definitive: true)
        case .current(let resourceId):
            // The first answer was "still running": the truth now is the resource as stored.
            guard let current = try await storedObject(resource(resourceId), merchantId: merchantId) else { throw IdempotencyStore.inProgress }
            return Answer(status: .ok, body: current, definitive: true)
        case .fresh(let resourceId):
            let answer: Answer
            do {
                answer = try await run(resourceId)
            } catch {
                try? await idempotency.release(merchantId: merchantId, key: key)
                throw error
            }
            // The answer is true whether or not the key records it: a failure to record (the
            // database away for a moment) is logged, and the key, still held, frees itself after
            // its lease; a replay then runs on the same resource id and answers it as it is.
            do {
                if answer.definitive && !Self.isInterim(answer) {
                    let text = try PaywireJSON.text(answer.body)
                    try await idempotency.complete(merchantId: merchantId, key: key, status: Int(answer.status.code), body: text)
                } else if answer.status.code < 300 {
                    let kind = if case .refund = resource(resourceId) { "refund" } else { "payment" }
                    try await idempotency.answerCurrentState(merchantId: merchantId, key: key, of: kind)
                } else {
                    try await idempotency.release(merchantId: merchantId, key: key)
                }
            } catch {
                logger.warning("idempotency key answer not recorded; the key frees itself after its lease", metadata: ["error": .string(MessageFailure.loggable(error))])
            }
            return answer
        }
    }

    /// An object whose outcome is still open: replaying it later would freeze a moment.
    static func isInterim(_ answer: Answer) -> Bool {
        guard answer.status == .ok, let status = answer.body["status"]?.stringValue else { return false }
        return ["processing", "pending", "requires_merchant_action", "manual_review"].contains(status)
    }

    func respond(_ answer: Answer) -> JSONResponse {
        JSONResponse(answer.body, status: answer.status)
    }

    // MARK: Scope and routing

    /// The merchant a payments call acts for: the key's merchant, or for the admin key the
    /// body's `merchant_id`.
    func merchant(_ caller: APICaller, body: RequestObject) async throws -> String {
        switch caller {
        case .merchant(let own): return own
        case .admin:
            let merchantId = try body.requiredString("merchant_id", maxLength: 64)
            let rows = try await postgres.query("SELECT 1 FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)", logger: logger)
            guard try await rows.hasRows() else { throw APIError.notFound("Merchant account") }
            return merchantId
        case .publishable: throw APIError.unauthorized()
        }
    }

    /// For lists: the key's merchant, or for the admin key the `merchant_id` query parameter.
    func merchant(_ caller: APICaller, query: (String) -> String?) async throws -> String {
        switch caller {
        case .merchant(let own): return own
        case .admin:
            guard let given = query("merchant_id") else { throw APIError.invalid("merchant_id", "is required with the admin key", code: "IR_05") }
            let merchantId = try InputText.identifier(given, field: "merchant_id")
            let rows = try await postgres.query("SELECT 1 FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)", logger: logger)
            guard try await rows.hasRows() else { throw APIError.notFound("Merchant account") }
            return merchantId
        case .publishable: throw APIError.unauthorized()
        }
    }

    /// Who may act on a payment on the client routes: the admin, its merchant's secret key, or
    /// its merchant's publishable key with the payment's unexpired client secret (`browser`).
    /// Another merchant's payment is 404, as one that does not exist.
    func clientAccess(_ caller: APICaller, paymentId: String, clientSecret: String?) async throws -> (merchantId: String, browser: Bool, payment: JSONValue) {
        // One read of the payment serves the owner check and, for a retrieve, the answer.
        guard let payment = try await paymentCore.payment(paymentId), let owner = payment["merchant_id"]?.stringValue else { throw APIError.notFound("Payment") }
        switch caller {
        case .admin: return (owner, false, payment)
        case .merchant(let own): guard own == owner else { throw APIError.notFound("Payment") }
            return (owner, false, payment)
        case .publishable(let merchantId): guard merchantId == owner else { throw APIError.notFound("Payment") }
            try ClientSecretAccess.check(clientSecret, payment: payment)
            return (owner, true, payment)
        }
    }

    /// The owner of an existing payment, if the caller may act on it; otherwise 404, as for a
    /// payment that does not exist.
    func merchant(_ caller: APICaller, paymentId: String) async throws -> String {
        guard let owner = try await paymentCore.payment(paymentId)?["merchant_id"]?.stringValue else { throw APIError.notFound("Payment") }
        switch caller {
        case .admin: return owner
        case .merchant(let own): guard own == owner else { throw APIError.notFound("Payment") }
        case .publishable: throw APIError.unauthorized()
        }
        return owner
    }

    /// What a new payment takes from the merchant's configuration, read in one query: its
    /// profile (the requested one, which must be the merchant's, else the default), the
    /// profile's session expiry, its active payment processors and the configuration's version
    /// (payment-core acts only once its copy has it, so anything changed before this request
    /// applies to the payment).
    struct PaymentSetting: Sendable {
        var profileId: String
        var sessionExpiry: Int?
        var accounts: [(id: String, name: String)]
        var version: Int64
    }

    /// A merchant's payment setting (the profile asked for, or its default), kept by this replica
    /// while configuration changes are heard (`NotifiedCache`): a payment needs no query for it.
    func paymentSetting(merchantId: String, requestedProfile: String?) async throws -> PaymentSetting {
        let key = "\(merchantId)\u{1F}\(requestedProfile ?? "")"
        if let kept = settings.value(for: key) { return kept }
        let generation = settings.generation
        let setting = try await readPaymentSetting(merchantId: merchantId, requestedProfile: requestedProfile)
        settings.store(setting, for: key, readAt: generation)
        return setting
    }

    func readPaymentSetting(merchantId: String, requestedProfile: String?) async throws -> PaymentSetting {
        let rows = try await postgres.query("""
            WITH chosen AS (
                SELECT CASE WHEN \(requestedProfile)::text IS NULL THEN m.default_profile_id
                            ELSE (SELECT p.profile_id FROM gateway.business_profiles p WHERE p.profile_id = \(requestedProfile) AND p.merchant_id = m.merchant_id)
                       END AS profile_id, m.merchant_id
                FROM gateway.merchant_accounts m WHERE m.merchant_id = \(merchantId)
            )
            SELECT c.profile_id,
                   (SELECT (p.document->>'session_expiry')::int FROM gateway.business_profiles p WHERE p.profile_id = c.profile_id),
                   COALESCE((SELECT v.version FROM gateway.config_versions v WHERE v.merchant_id = \(merchantId)), 0)::int8,
                   ARRAY(SELECT a.merchant_connector_id FROM gateway.connector_accounts a \(unescaped: Self.activeProcessors) ORDER BY a.created_at, a.merchant_connector_id),
                   ARRAY(SELECT a.connector_name FROM gateway.connector_accounts a \(unescaped: Self.activeProcessors) ORDER BY a.created_at, a.merchant_connector_id)
            FROM chosen c
            """, logger: logger)
        for try await (profileId, expiry, version, ids, names) in rows.decode((String?, Int?, Int64, [String], [String]).self) {
            guard let profileId else {
                if requestedProfile != nil { throw APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "Business profile does not exist", field: "profile_id") }
                throw APIError.invalid("profile_id", "is required: the merchant has no default profile", code: "IR_05")
            }
            return PaymentSetting(profileId: profileId, sessionExpiry: expiry.flatMap { $0 > 0 ? $0 : nil },
                                  accounts: zip(ids, names).map { (id: $0, name: $1) }, version: version)
        }
        throw APIError.notFound("Merchant account")
    }

    /// The chosen profile's payment processors that are not disabled (`c`: the chosen profile).
    static let activeProcessors = """
        WHERE a.merchant_id = c.merchant_id AND a.profile_id = c.profile_id AND a.connector_type = 'payment_processor'
          AND NOT COALESCE((a.document->>'disabled')::boolean, false)
        """

    func paymentProfile(_ paymentId: String) async throws -> String? {
        try await paymentCore.payment(paymentId)?["profile_id"]?.stringValue
    }

    /// `routing.data` names a connector (or an account); without routing, the profile's only
    /// payment processor. Several candidates are an error naming `routing`, never a guess.
    func resolveConnectorAccount(merchantId: String, profileId: String?, routing: PaymentRequest.Routing?) async throws -> (id: String, name: String) {
        let rows = try await postgres.query("""
            SELECT merchant_connector_id, connector_name FROM gateway.connector_accounts
            WHERE merchant_id = \(merchantId) AND (\(profileId)::text IS NULL OR profile_id = \(profileId))
              AND connector_type = 'payment_processor' AND NOT COALESCE((document->>'disabled')::boolean, false)
            ORDER BY created_at, merchant_connector_id
            """, logger: logger)
        var accounts: [(id: String, name: String)] = []
        for try await (id, name) in rows.decode((String, String).self) { accounts.append((id, name)) }
        return try Self.chooseAccount(accounts, routing: routing)
    }

    /// The account a payment goes to among the profile's active payment processors.
    static func chooseAccount(_ accounts: [(id: String, name: String)], routing: PaymentRequest.Routing?) throws -> (id: String, name: String) {
        switch routing {
        case .connector(let name)?:
            let matching = accounts.filter { $0.name == name }
            guard let first = matching.first else {
                throw APIError.invalid("routing.data", "the profile has no active \(name) connector account")
            }
            guard matching.count == 1 else {
                throw APIError.invalid("routing.data", "the profile has \(matching.count) \(name) accounts; name one with {\"merchant_connector_id\": ...}")
            }
            return first
        case .account(let id)?:
            guard let account = accounts.first(where: { $0.id == id }) else {
                throw APIError.invalid("routing.data.merchant_connector_id", "is not an active payment processor account of this profile")
            }
            return account
        case nil:
            guard let only = accounts.first else {
                throw APIError.invalid("routing", "the profile has no payment processor connector account; create one first")
            }
            guard accounts.count == 1 else {
                throw APIError.invalid("routing", "the profile has \(accounts.count) payment processors (\(accounts.map(\.name).joined(separator: ", "))); choose one with routing")
            }
            return only
        }
    }
}
