import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// A command that cannot be carried out as asked; it goes back to the client as a 4xx.
struct PaymentFailure: Error, Sendable {
    var status: Int
    var code: String
    var message: String
    var field: String?

    static func invalid(_ field: String?, _ message: String, code: String = "IR_06") -> PaymentFailure {
        PaymentFailure(status: 400, code: code, message: message, field: field)
    }

    static func notFound(_ what: String) -> PaymentFailure {
        PaymentFailure(status: 404, code: "HE_02", message: "\(what) does not exist")
    }

    static func invalidState(_ action: String, _ status: PaymentStatus) -> PaymentFailure {
        PaymentFailure(status: 400, code: "IR_16", message: "You cannot \(action) this payment because it has status \(status.rawValue)")
    }

    var reply: GatewayReply.Failure { GatewayReply.Failure(status: status, code: code, message: message, field: field) }
}

/// Timing of connector calls and status syncs (environment variables in README).
public struct PaymentSettings: Sendable {
    /// How long one connector call may take before its outcome counts as unknown.
    public var connectorTimeout: Duration
    /// How long after an unknown outcome the first status sync runs (the incoming webhook may
    /// resolve it first).
    public var syncDelay: Duration
    /// How often the status-sync loop looks for due work.
    public var syncInterval: Duration
    /// Syncs per attempt before it is left for an operator (logged, stays `processing`).
    public var maxSyncs: Int

    public static let environmentKeys = ["PAYWIRE_CONNECTOR_TIMEOUT_MS", "PAYWIRE_PSYNC_DELAY_MS", "PAYWIRE_PSYNC_INTERVAL_MS", "PAYWIRE_PSYNC_MAX_TRIES"]

    public init(environment: [String: String]) throws {
        connectorTimeout = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_CONNECTOR_TIMEOUT_MS", default: 30_000, range: 100...300_000))
        syncDelay = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_PSYNC_DELAY_MS", default: 15_000, range: 0...86_400_000))
        syncInterval = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_PSYNC_INTERVAL_MS", default: 1_000, range: 50...3_600_000))
        maxSyncs = try ServiceConfiguration.integer(environment, "PAYWIRE_PSYNC_MAX_TRIES", default: 30, range: 1...10_000)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The first sync waits for the call to have timed out, then the delay.
    var firstSyncAfterSeconds: Double { Self.seconds(connectorTimeout + syncDelay) }

    /// Later syncs back off from this: base × 2^tries, at most an hour (computed where rows are claimed).
    var syncBackoffBaseSeconds: Double { max(Self.seconds(syncDelay), 0.5) }
}

/// Everything payment-core does to a payment. Each change happens in one transaction that locks
/// the intent row, checks the move with `PaymentStateMachine`, and writes the new state and the
/// event announcing it (outbox) together. Connector calls happen between transactions, never
/// inside one; an attempt is `pending` while its outcome is unknown and a status sync resolves it.
public struct PaymentOperations: Sendable {
    let postgres: PostgresClient
    let connectors: ConnectorRegistry
    let accounts: ConnectorAccountRepository
    let vault: CardVaultClient
    /// Seals processor tokens at rest.
    let secrets: SecretBox
    let topics: TopicNames
    let settings: PaymentSettings
    let logger: Logger
    let outbox = Outbox(schema: PaymentsSchema.name)

    // MARK: Create and confirm

    func create(_ command: PaymentCommand) async throws -> JSONValue {
        guard let amount = command.amount, let currency = command.currency else {
            throw PaymentFailure.invalid("amount", "amount and currency are required")
        }
        let hasInstrument = command.cardVault != nil || command.processorPaymentToken != nil
        let now = Date()
        var record = PaymentRecord(
            paymentId: command.paymentId, merchantId: command.merchantId, profileId: command.profileId,
            status: hasInstrument ? .requiresConfirmation : .requiresPaymentMethod,
            amount: amount, currency: currency, captureMethod: command.captureMethod ?? "automatic",
            amountCapturable: 0, amountReceived: 0, merchantConnectorId: command.merchantConnectorId, connector: command.connectorName,
            activeAttemptId: nil, attemptCount: 0, card: command.card, cardVault: command.cardVault, sealedProcessorToken: try sealToken(command.processorPaymentToken, paymentId: command.paymentId),
            details: command.details.flatMap { if case .object(let fields) = $0 { return fields } else { return nil } } ?? [:],
            cancellationReason: nil, clientSecret: "\(command.paymentId)_secret_\(Self.randomSuffix())", createdAt: now, modifiedAt: now
        )
        let inserted = try await postgres.withTransaction(logger: logger) { connection in
            let rows = try await connection.query("""
                INSERT INTO payments.payment_intents (payment_id, merchant_id, profile_id, status, amount, currency, capture_method,
                    merchant_connector_id, connector, card, card_vault, processor_token, details, client_secret, object, created_at, modified_at)
                VALUES (\(record.paymentId), \(record.merchantId), \(record.profileId), \(record.status.rawValue), \(amount), \(currency),
                    \(record.captureMethod), \(record.merchantConnectorId), \(record.connector), \(try Self.json(record.card))::jsonb,
                    \(try Self.json(record.cardVault))::jsonb, \(record.sealedProcessorToken), \(try Self.json(JSONValue.object(record.details)))::jsonb,
                    \(record.clientSecret), \(try Self.json(record.object))::jsonb, \(now), \(now))
                ON CONFLICT (payment_id) DO NOTHING RETURNING 1
                """, logger: logger)
            return try await rows.hasRows()
        }
        if !inserted {
            // A redelivered or retried create (same payment id, reserved by the gateway's
            // idempotency key): answer with the payment as it is; confirm only if nothing did yet.
            guard let existing = try await read(command.paymentId) else { throw PaymentFailure.notFound("Payment") }
            record = existing
            guard command.confirm == true, [.requiresConfirmation, .requiresPaymentMethod].contains(existing.status) else { return existing.object }
        }
        if command.confirm == true { return try await confirm(command, known: record) }
        return record.object
    }

    /// `known`: the payment as the caller just wrote or read it, saving a read.
    func confirm(_ command: PaymentCommand, known: PaymentRecord? = nil) async throws -> JSONValue {
        let found: PaymentRecord?
        if let known { found = known } else { found = try await read(command.paymentId, merchantId: command.merchantId) }
        guard let record = found else { throw PaymentFailure.notFound("Payment") }
        guard [.requiresConfirmation, .requiresPaymentMethod].contains(record.status) else { throw PaymentFailure.invalidState("confirm", record.status) }
        let vaultReference = command.cardVault ?? record.cardVault
        let token = try command.processorPaymentToken ?? record.sealedProcessorToken.map { try secrets.open($0, as: .processorToken, row: record.paymentId) }
        guard vaultReference != nil || token != nil else {
            throw PaymentFailure.invalid("payment_method_data", "is required to confirm this payment", code: "IR_04")
        }
        let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: command.merchantConnectorId ?? record.merchantConnectorId)
        let captureMethod = command.captureMethod ?? record.captureMethod
        if captureMethod == "manual" && !connector.capabilities.manualCapture {
            throw PaymentFailure.invalid("capture_method", "\(connector.name) does not support manual capture")
        }
        let instrument: PaymentInstrument
        if let vaultReference {
            // The card lives only in one gateway replica's memory. If that replica cannot be
            // reached it is as gone as an expired card: the client confirms again. (Retrying
            // the command instead would hold up every command behind it.)
            let taken: CardDetails?
            do {
                taken = try await vault.take(vaultReference)
            } catch let refused as CardVaultClient.NotAllowed {
                logger.error("card vault reference refused", metadata: ["payment_id": .string(record.paymentId), "error": .string(refused.description)])
                taken = nil
            } catch {
                logger.warning("card vault unreachable", metadata: ["payment_id": .string(record.paymentId), "error": .string(String(describing: type(of: error)))])
                taken = nil
            }
            guard let card = taken else {
                throw PaymentFailure.invalid("payment_method_data", "the card data is no longer available (Paywire holds it in memory only, once, for a few minutes); confirm again with payment_method_data", code: "IR_04")
            }
            instrument = .card(card)
        } else {
            instrument = .token(token!)
        }

        let attemptId: String = try await postgres.withTransaction(logger: logger) { connection in
            guard var locked = try await PaymentRecord.load(command.paymentId, forUpdate: true, on: connection, logger: logger) else {
                throw PaymentFailure.notFound("Payment")
            }
            // The lock makes this the one place a confirm can win: a concurrent or repeated
            // confirm finds `processing` here and is refused, so the card is charged once.
            guard case .moved(to: .processing)? = try? PaymentStateMachine.apply(.confirm, to: locked.status) else {
                throw PaymentFailure.invalidState("confirm", locked.status)
            }
            let attemptId = "\(locked.paymentId)_\(locked.attemptCount + 1)"
            try await connection.query("""
                INSERT INTO payments.payment_attempts (attempt_id, payment_id, merchant_id, connector, merchant_connector_id, status, amount, next_sync_at)
                VALUES (\(attemptId), \(locked.paymentId), \(locked.merchantId), \(account.connectorName), \(account.merchantConnectorId), 'pending',
                    \(locked.amount), now() + make_interval(secs => \(settings.firstSyncAfterSeconds)))
                """, logger: logger)
            locked.status = .processing
            locked.activeAttemptId = attemptId
            locked.attemptCount += 1
            locked.merchantConnectorId = account.merchantConnectorId
            locked.connector = account.connectorName
            locked.captureMethod = captureMethod
            locked.card = command.card ?? locked.card
            locked.cardVault = nil
            locked.sealedProcessorToken = try sealToken(command.processorPaymentToken, paymentId: locked.paymentId) ?? locked.sealedProcessorToken
            locked.modifiedAt = Date()
            locked.attempt = AttemptRecord(
                attemptId: attemptId, status: "pending", connectorTransactionId: nil, errorCode: nil, errorMessage: nil,
                unifiedCode: nil, unifiedMessage: nil, rawDeclineCode: nil, announcedProcessing: false,
                merchantConnectorId: account.merchantConnectorId, connector: account.connectorName
            )
            try await locked.write(on: connection, logger: logger)
            return attemptId
        }

        let (database, log) = (postgres, logger)
        let request = AuthorizeRequest(
            paymentId: record.paymentId, attemptId: attemptId, amount: record.amount, currency: record.currency,
            instrument: instrument, captureManually: captureMethod == "manual",
            recordReference: { reference in
                try await database.query("""
                    UPDATE payments.payment_attempts SET connector_transaction_id = COALESCE(connector_transaction_id, \(reference)), modified_at = now()
                    WHERE attempt_id = \(attemptId)
                    """, logger: log)
            }
        )
        let credentials = ConnectorCredentials(account)
        let result = await call(connector, "authorize", attemptId: attemptId) { try await connector.authorize(request, credentials: credentials) }
        return try await applyAttemptOutcome(attemptId: attemptId, result: result, source: "authorize") ?? .null
    }

    // MARK: Capture and cancel

    func capture(_ command: PaymentCommand) async throws -> JSONValue {
        guard let record = try await read(command.paymentId, merchantId: command.merchantId) else { throw PaymentFailure.notFound("Payment") }
        guard record.status == .requiresCapture, let attempt = record.attempt, let transactionId = attempt.connectorTransactionId else {
            throw PaymentFailure.invalidState("capture", record.status)
        }
        let amount = command.amountToCapture ?? record.amountCapturable
        guard amount > 0, amount <= record.amountCapturable else {
            throw PaymentFailure.invalid("amount_to_capture", "must be between 1 and the capturable amount (\(record.amountCapturable))")
        }
        let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: attempt.merchantConnectorId)
        let request = CaptureRequest(paymentId: record.paymentId, connectorTransactionId: transactionId, amount: amount, currency: record.currency)
        var result = await call(connector, "capture", attemptId: attempt.attemptId) { try await connector.capture(request, credentials: ConnectorCredentials(account)) }
        switch result.status {
        case .charged:
            result.amountReceived = result.amountReceived ?? amount
            return try await applyAttemptOutcome(attemptId: attempt.attemptId, result: result, source: "capture") ?? .null
        case .pending:
            try await markUnknown(attemptId: attempt.attemptId, transactionId: transactionId)
            return try await read(record.paymentId)?.object ?? .null
        default:
            throw PaymentFailure(status: 422, code: "CE_01", message: result.error?.message ?? "The connector refused the capture", field: nil)
        }
    }

    func cancel(_ command: PaymentCommand) async throws -> JSONValue {
        guard let record = try await read(command.paymentId, merchantId: command.merchantId) else { throw PaymentFailure.notFound("Payment") }
        switch record.status {
        case .requiresConfirmation, .requiresPaymentMethod:
            return try await postgres.withTransaction(logger: logger) { connection in
                guard var locked = try await PaymentRecord.load(record.paymentId, forUpdate: true, on: connection, logger: logger) else { throw PaymentFailure.notFound("Payment") }
                guard case .moved(to: .cancelled)? = try? PaymentStateMachine.apply(.cancel, to: locked.status) else {
                    throw PaymentFailure.invalidState("cancel", locked.status)
                }
                locked.status = .cancelled
                locked.cancellationReason = command.cancellationReason
                locked.cardVault = nil
                locked.modifiedAt = Date()
                try await locked.write(on: connection, logger: logger)
                try await emit(MessageType.paymentCancelled, locked, on: connection)
                return locked.object
            }
        case .requiresCapture:
            guard let attempt = record.attempt, let transactionId = attempt.connectorTransactionId else { throw PaymentFailure.invalidState("cancel", record.status) }
            let (account, connector) = try await connectorFor(merchantId: record.merchantId, merchantConnectorId: attempt.merchantConnectorId)
            try await postgres.query("UPDATE payments.payment_intents SET cancellation_reason = \(command.cancellationReason) WHERE payment_id = \(record.paymentId)", logger: logger)
            let request = VoidRequest(paymentId: record.paymentId, connectorTransactionId: transactionId)
            let result = await call(connector, "void", attemptId: attempt.attemptId) { try await connector.void(request, credentials: ConnectorCredentials(account)) }
            switch result.status {
            case .voided:
                return try await applyAttemptOutcome(attemptId: attempt.attemptId, result: result, source: "void") ?? .null
            case .pending:
                try await markUnknown(attemptId: attempt.attemptId, transactionId: transactionId)
                return try await read(record.paymentId)?.object ?? .null
            default:
                throw PaymentFailure(status: 422, code: "CE_01", message: result.error?.message ?? "The connector refused to cancel", field: nil)
            }
        default:
            throw PaymentFailure.invalidState("cancel", record.status)
        }
    }

    // MARK: Outcomes

    /// Applies what a connector said about an attempt — from the call's answer, a status sync or
    /// an incoming webhook, in any order and any number of times. Under the intent's lock the
    /// state machine decides: a new status is written with its event; a repeat changes nothing;
    /// an outcome that would regress a final status is ignored. So whichever path arrives first
    /// wins, and the merchant hears one event.
    @discardableResult
    func applyAttemptOutcome(attemptId: String, result: ConnectorResult, source: String) async throws -> JSONValue? {
        try await postgres.withTransaction(logger: logger) { connection in
            guard var record = try await PaymentRecord.load(attemptId: attemptId, on: connection, logger: logger) else { return nil }
            let paymentId = record.paymentId
            guard record.activeAttemptId == attemptId, var attempt = record.attempt else {
                logger.notice("outcome for an attempt that is not the payment's active one ignored", metadata: ["attempt_id": .string(attemptId), "source": .string(source)])
                return record.object
            }
            let event: PaymentEvent
            switch result.status {
            case .pending: event = .pending
            case .authorized: event = .authorized
            case .charged:
                event = record.status == .requiresCapture
                    ? .captured(amount: result.amountReceived ?? record.amountCapturable, of: record.amountCapturable)
                    : .charged(amount: result.amountReceived ?? record.amount)
            case .declined: event = .declined
            case .voided: event = .cancel
            case .unresolved: event = .review
            }
            let outcome: PaymentStateMachine.Outcome
            do {
                outcome = try PaymentStateMachine.apply(event, to: record.status)
            } catch {
                logger.notice("connector outcome ignored: it would move a payment backwards", metadata: [
                    "payment_id": .string(paymentId), "status": .string(record.status.rawValue), "outcome": .string(result.status.rawValue), "source": .string(source),
                ])
                try await settleAttempt(attempt, to: record.status, on: connection)
                return record.object
            }
            switch outcome {
            case .unchanged:
                if result.status == .pending {
                    try await connection.query("""
                        UPDATE payments.payment_attempts SET connector_transaction_id = COALESCE(connector_transaction_id, \(result.connectorTransactionId)),
                            announced_processing = true, modified_at = now() WHERE attempt_id = \(attemptId)
                        """, logger: logger)
                    // The merchant hears once that the outcome is pending, then the final event.
                    guard !attempt.announcedProcessing else { return record.object }
                    attempt.connectorTransactionId = attempt.connectorTransactionId ?? result.connectorTransactionId
                    attempt.announcedProcessing = true
                    record.attempt = attempt
                    record.modifiedAt = Date()
                    try await record.write(on: connection, logger: logger)
                    try await emit(MessageType.paymentProcessing, record, on: connection)
                    return record.object
                }
                try await settleAttempt(attempt, to: record.status, on: connection)
                return record.object
            case .moved(let status):
                let error = result.error
                let attemptStatus = Self.attemptStatus(for: status)
                try await connection.query("""
                    UPDATE payments.payment_attempts SET status = \(attemptStatus),
                        connector_transaction_id = COALESCE(\(result.connectorTransactionId), connector_transaction_id),
                        error_code = \(error?.code), error_message = \(error?.message), unified_code = \(error?.unifiedCode),
                        unified_message = \(error?.unifiedMessage), raw_decline_code = \(error?.rawCode), next_sync_at = NULL, modified_at = now()
                    WHERE attempt_id = \(attemptId)
                    """, logger: logger)
                attempt.status = attemptStatus
                attempt.connectorTransactionId = result.connectorTransactionId ?? attempt.connectorTransactionId
                attempt.errorCode = error?.code
                attempt.errorMessage = error?.message
                attempt.unifiedCode = error?.unifiedCode
                attempt.unifiedMessage = error?.unifiedMessage
                attempt.rawDeclineCode = error?.rawCode
                let previous = record.status
                record.attempt = attempt
                record.status = status
                record.amountCapturable = status == .requiresCapture ? record.amount : 0
                switch status {
                case .succeeded, .partiallyCaptured:
                    if case .captured(let amount, _) = event { record.amountReceived = amount } else { record.amountReceived = result.amountReceived ?? record.amount }
                default: record.amountReceived = 0
                }
                record.modifiedAt = Date()
                try await record.write(on: connection, logger: logger)
                try await emit(Self.eventType(from: previous, to: status), record, on: connection)
                Counter(label: "paywire_payment_transitions_total", dimensions: [("to", status.rawValue)]).increment()
                logger.info("payment moved", metadata: [
                    "payment_id": .string(paymentId), "from": .string(previous.rawValue), "to": .string(status.rawValue), "source": .string(source),
                ])
                return record.object
            }
        }
    }

    /// An attempt whose outcome we learned without a status change (a duplicate) stops syncing.
    private func settleAttempt(_ attempt: AttemptRecord, to status: PaymentStatus, on connection: PostgresConnection) async throws {
        guard attempt.status == "pending", status != .processing else { return }
        try await connection.query("""
            UPDATE payments.payment_attempts SET status = \(Self.attemptStatus(for: status)), next_sync_at = NULL, modified_at = now()
            WHERE attempt_id = \(attempt.attemptId)
            """, logger: logger)
    }

    /// A call whose answer was lost (timeout, 5xx): the status sync asks the connector later.
    func markUnknown(attemptId: String, transactionId: String?) async throws {
        try await postgres.query("""
            UPDATE payments.payment_attempts SET status = 'pending', connector_transaction_id = COALESCE(connector_transaction_id, \(transactionId)),
                next_sync_at = now() + make_interval(secs => \(settings.firstSyncAfterSeconds)), modified_at = now()
            WHERE attempt_id = \(attemptId)
            """, logger: logger)
    }

    static func attemptStatus(for status: PaymentStatus) -> String {
        switch status {
        case .requiresCapture: return "authorized"
        case .succeeded, .partiallyCaptured: return "charged"
        case .failed: return "failed"
        case .cancelled: return "voided"
        default: return "pending"
        }
    }

    static func eventType(from: PaymentStatus, to: PaymentStatus) -> String {
        switch to {
        case .requiresCapture: return MessageType.paymentAuthorized
        case .succeeded: return from == .requiresCapture ? MessageType.paymentCaptured : MessageType.paymentSucceeded
        case .partiallyCaptured: return MessageType.paymentCaptured
        case .failed: return MessageType.paymentFailed
        case .cancelled: return MessageType.paymentCancelled
        case .requiresMerchantAction: return MessageType.actionRequired
        default: return MessageType.paymentProcessing
        }
    }

    // MARK: Helpers

    /// Runs one connector call. Anything but an answer (timeout, transport error) means the
    /// outcome is unknown: the attempt stays `pending` and the status sync finds out.
    func call(_ connector: any Connector, _ flow: String, attemptId: String, _ body: @Sendable @escaping () async throws -> ConnectorResult) async -> ConnectorResult {
        do {
            return try await withTimeout(settings.connectorTimeout + .seconds(1)) { try await body() }
        } catch {
            logger.warning("connector call without an answer; outcome unknown", metadata: [
                "connector": .string(connector.name), "flow": .string(flow), "attempt_id": .string(attemptId), "error": .string(String(describing: type(of: error))),
            ])
            return ConnectorResult(status: .pending, connectorTransactionId: nil)
        }
    }

    func connectorFor(merchantId: String, merchantConnectorId: String?) async throws -> (ConnectorAccount, any Connector) {
        guard let merchantConnectorId else {
            throw PaymentFailure.invalid("routing", "no connector account was chosen for this payment")
        }
        guard let account = try await accounts.account(merchantId: merchantId, merchantConnectorId: merchantConnectorId), !account.disabled else {
            throw PaymentFailure.invalid("merchant_connector_id", "the connector account no longer exists or is disabled")
        }
        guard let connector = connectors.connector(named: account.connectorName) else {
            throw PaymentFailure.invalid("merchant_connector_id", "\(account.connectorName) is not a payment connector")
        }
        return (account, connector)
    }

    func read(_ paymentId: String, merchantId: String? = nil) async throws -> PaymentRecord? {
        try await postgres.withConnection { connection in
            try await PaymentRecord.load(paymentId, merchantId: merchantId, forUpdate: false, on: connection, logger: logger)
        }
    }

    func emit(_ type: String, _ record: PaymentRecord, on connection: PostgresConnection) async throws {
        let event = EventEnvelope(
            type: type, merchantId: record.merchantId, profileId: record.profileId,
            configurationVersion: try await configurationVersion(record.merchantId, on: connection), payload: record.object
        )
        try await outbox.enqueue(event, topic: topics.paymentEvents, key: record.paymentId, on: connection, logger: logger)
    }

    /// The merchant's configuration version this service's copy holds: an event made now is
    /// fanned out by the dispatcher only once its own copy has it (an endpoint created before the
    /// payment receives the payment's events).
    func configurationVersion(_ merchantId: String, on connection: PostgresConnection) async throws -> Int64 {
        for try await version in try await connection.query("SELECT version FROM payments.merchant_configurations WHERE merchant_id = \(merchantId)", logger: logger).decode(Int64.self) {
            return version
        }
        return 0
    }

    static func json<T: Encodable>(_ value: T?) throws -> String? {
        guard let value else { return nil }
        return String(decoding: try PaywireJSON.encoder.encode(value), as: UTF8.self)
    }

    func sealToken(_ token: String?, paymentId: String) throws -> String? {
        try token.map { try secrets.seal($0, as: .processorToken, row: paymentId) }
    }

    static func randomSuffix() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<20).map { _ in alphabet.randomElement()! })
    }
}

extension ConnectorCredentials {
    init(_ account: ConnectorAccount) {
        let details = account.accountDetails
        switch details["auth_type"] {
        case "HeaderKey": self = .headerKey(apiKey: details["api_key"] ?? "")
        case "BodyKey": self = .bodyKey(apiKey: details["api_key"] ?? "", key1: details["key1"] ?? "")
        case "SignatureKey": self = .signatureKey(apiKey: details["api_key"] ?? "", key1: details["key1"] ?? "", apiSecret: details["api_secret"] ?? "")
        default: self = .noKey
        }
    }
}
