import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Creating a payment and confirming it: the intent moves to `processing` under its row lock
/// before the connector is called, so a second confirm is refused there and the card is charged
/// once. A payment created with `confirm` is inserted already in `processing`'s transaction.
extension PaymentOperations {
    func create(_ command: PaymentCommand) async throws -> JSONValue {
        guard let amount = command.amount, let currency = command.currency else {
            throw PaymentFailure.invalid("amount", "amount and currency are required")
        }
        let hasInstrument = command.cardVault != nil || command.processorPaymentToken != nil
        // A card for a connector that takes none is refused before the payment is written.
        if hasInstrument, let connector = command.connectorName.flatMap(connectors.connector(named:)), !connector.capabilities.paymentMethods.contains("card") {
            throw PaymentFailure.invalid("payment_method_data", "\(connector.name) does not take cards")
        }
        let now = Date()
        let record = PaymentRecord(
            paymentId: command.paymentId, merchantId: command.merchantId, profileId: command.profileId,
            status: hasInstrument ? .requiresConfirmation : .requiresPaymentMethod,
            amount: amount, currency: currency, captureMethod: command.captureMethod ?? "automatic",
            amountCapturable: 0, amountReceived: 0, merchantConnectorId: command.merchantConnectorId, connector: command.connectorName,
            activeAttemptId: nil, attemptCount: 0, card: command.card, cardVault: command.cardVault, sealedProcessorToken: try sealToken(command.processorPaymentToken, paymentId: command.paymentId),
            details: command.details.flatMap { if case .object(let fields) = $0 { return fields } else { return nil } } ?? [:],
            cancellationReason: nil, clientSecret: "\(command.paymentId)_secret_\(Identifier.random(20))", createdAt: now, modifiedAt: now
        )
        if command.confirm == true {
            // Created and confirmed in one transaction (one commit rather than two) once the
            // confirm is known to start: its checks passed and the card is taken. A confirm that
            // cannot start leaves the payment created, as a create and then a confirm would.
            let plan: ConfirmPlan
            do {
                plan = try await planConfirm(command, record: record)
            } catch {
                if let existing = try await insertOrRead(record), ![.requiresConfirmation, .requiresPaymentMethod].contains(existing.status) {
                    return existing.object
                }
                throw error
            }
            return try await start(plan, command: command, record: record, creating: true)
        }
        if let existing = try await insertOrRead(record) {
            // A redelivered or retried create (same payment id, reserved by the gateway's
            // idempotency key): answer with the payment as it is.
            return existing.object
        }
        return record.object
    }

    /// Writes a new payment; nil, or the payment as it is when its id was already written (a
    /// redelivered or retried create, the id reserved by the gateway's idempotency key).
    func insertOrRead(_ record: PaymentRecord) async throws -> PaymentRecord? {
        let inserted = try await postgres.withTransaction(logger: logger) { connection in try await insert(record, on: connection) }
        if inserted { return nil }
        guard let existing = try await read(record.paymentId) else { throw PaymentFailure.notFound("Payment") }
        return existing
    }

    /// Inserts the payment unless its id is taken (as it stands: created, or created and already
    /// processing its first attempt); whether it did.
    func insert(_ record: PaymentRecord, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("""
            INSERT INTO payments.payment_intents (payment_id, merchant_id, profile_id, status, amount, currency, capture_method,
                merchant_connector_id, connector, card, card_vault, processor_token, details, client_secret, object, created_at, modified_at,
                active_attempt_id, attempt_count)
            VALUES (\(record.paymentId), \(record.merchantId), \(record.profileId), \(record.status.rawValue), \(record.amount), \(record.currency),
                \(record.captureMethod), \(record.merchantConnectorId), \(record.connector), \(try Self.json(record.card))::jsonb,
                \(try Self.json(record.cardVault))::jsonb, \(record.sealedProcessorToken), \(try Self.json(JSONValue.object(record.details)))::jsonb,
                \(record.clientSecret), \(try Self.json(record.object))::jsonb, \(record.createdAt), \(record.modifiedAt),
                \(record.activeAttemptId), \(record.attemptCount))
            ON CONFLICT (payment_id) DO NOTHING RETURNING 1
            """, logger: logger)
        return try await rows.hasRows()
    }

    /// What a confirm settles before its transaction: the account and its connector, the capture
    /// method, and the card taken from the vault (`instrument` nil: the vault no longer has it).
    struct ConfirmPlan: Sendable {
        var account: ConnectorAccount
        var connector: any Connector
        var captureMethod: String
        var vaultReference: CardVaultReference?
        var instrument: PaymentInstrument?
    }

    func confirm(_ command: PaymentCommand) async throws -> JSONValue {
        guard let record = try await read(command.paymentId, merchantId: command.merchantId) else { throw PaymentFailure.notFound("Payment") }
        guard [.requiresConfirmation, .requiresPaymentMethod].contains(record.status) else { throw PaymentFailure.invalidState("confirm", record.status) }
        return try await start(try await planConfirm(command, record: record), command: command, record: record, creating: false)
    }

    /// Checks the confirm can start and takes the card: everything before its transaction.
    func planConfirm(_ command: PaymentCommand, record: PaymentRecord) async throws -> ConfirmPlan {
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
        if let toCapture = command.amountToCapture, toCapture < record.amount, !connector.capabilities.partialCapture {
            throw PaymentFailure.invalid("amount_to_capture", "\(connector.name) captures only the whole amount")
        }
        // Cards and saved cards (processor tokens) are the card method.
        if !connector.capabilities.paymentMethods.contains("card") {
            throw PaymentFailure.invalid("payment_method_data", "\(connector.name) does not take cards")
        }
        let instrument: PaymentInstrument?
        if let vaultReference {
            // The card lives only in one gateway replica's memory. If that replica cannot be
            // reached it is as gone as an expired card. (Retrying the command instead would hold
            // up every command behind it.)
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
            instrument = taken.map(PaymentInstrument.card)
        } else {
            instrument = .token(token!)
        }
        return ConfirmPlan(account: account, connector: connector, captureMethod: captureMethod, vaultReference: vaultReference, instrument: instrument)
    }

    /// Starts the attempt under the payment's row lock (`creating`: in the transaction that
    /// inserts the payment), then calls the connector and applies its answer.
    func start(_ plan: ConfirmPlan, command: PaymentCommand, record: PaymentRecord, creating: Bool) async throws -> JSONValue {
        let (account, connector, captureMethod, vaultReference, instrument) = (plan.account, plan.connector, plan.captureMethod, plan.vaultReference, plan.instrument)
        let started: String?
        do {
            started = try await postgres.withTransaction(logger: logger) { connection -> String? in
                var locked: PaymentRecord
                if creating {
                    // Inserted below, already processing: the new row is this transaction's own
                    // until it commits, so nobody else can see or confirm it meanwhile.
                    locked = record
                } else {
                    guard let loaded = try await PaymentRecord.load(command.paymentId, forUpdate: true, on: connection, logger: logger) else {
                        throw PaymentFailure.notFound("Payment")
                    }
                    locked = loaded
                }
                // The lock makes this the one place a confirm can win: a concurrent or repeated
                // confirm finds `processing` here and is refused, so the card is charged once.
                guard case .moved(to: .processing)? = try? PaymentStateMachine.apply(.confirm, to: locked.status) else {
                    throw PaymentFailure.invalidState("confirm", locked.status)
                }
                let attemptId = "\(locked.paymentId)_\(locked.attemptCount + 1)"
                locked.startAttempt(attemptId, account: account, captureMethod: captureMethod, command: command)
                if creating {
                    // Its record sealed the command's token already.
                    guard try await insert(locked, on: connection) else { return nil }
                } else {
                    locked.sealedProcessorToken = try sealToken(command.processorPaymentToken, paymentId: locked.paymentId) ?? locked.sealedProcessorToken
                }
                try await connection.query("""
                    INSERT INTO payments.payment_attempts (attempt_id, payment_id, merchant_id, connector, merchant_connector_id, status, amount, next_sync_at)
                    VALUES (\(attemptId), \(locked.paymentId), \(locked.merchantId), \(account.connectorName), \(account.merchantConnectorId), 'pending',
                        \(locked.amount), now() + make_interval(secs => \(settings.firstSyncAfterSeconds)))
                    """, logger: logger)
                if !creating { try await locked.write(on: connection, logger: logger) }
                return attemptId
            }
        } catch {
            // A refusal is final: the card is not needed again. After a fault of ours the command
            // is retried and finds its card held.
            var refused = PaymentFailure.unwrap(error) != nil
            if case .poison = MessageFailure.classify(error) { refused = true }
            if let vaultReference, refused { vault.release(vaultReference) }
            throw error
        }
        guard let attemptId = started else {
            // Its id was already written (a redelivered or retried create): confirmed only if
            // nothing confirmed it yet; otherwise the card taken for it is not needed.
            guard let existing = try await read(command.paymentId) else { throw PaymentFailure.notFound("Payment") }
            guard [.requiresConfirmation, .requiresPaymentMethod].contains(existing.status) else {
                if let vaultReference { vault.release(vaultReference) }
                return existing.object
            }
            return try await start(plan, command: command, record: existing, creating: false)
        }
        if let vaultReference { vault.release(vaultReference) }
        guard let instrument else {
            // The payment was asked to be confirmed and cannot be: it fails, with its reason and
            // its event, rather than waiting unconfirmed with nobody told (its client may have
            // had a 202, or be gone).
            let unavailable = ConnectorDecline(
                code: "card_data_unavailable",
                message: "The card data was no longer available when the payment could be processed (Paywire holds it in memory only, once, for a few minutes); nothing was charged. Create a new payment with the card."
            )
            logger.warning("payment failed: its card data is no longer available", metadata: ["payment_id": .string(record.paymentId)])
            return try await applyAttemptOutcome(attemptId: attemptId, result: ConnectorResult(status: .declined, connectorTransactionId: nil, error: unavailable), source: "card_vault") ?? .null
        }

        let (database, log) = (postgres, logger)
        var request = AuthorizeRequest(
            paymentId: record.paymentId, attemptId: attemptId, amount: record.amount, currency: record.currency,
            instrument: instrument, captureManually: captureMethod == "manual",
            recordReference: { reference in
                try await database.query("""
                    UPDATE payments.payment_attempts SET connector_transaction_id = COALESCE(connector_transaction_id, \(reference)), modified_at = now()
                    WHERE attempt_id = \(attemptId)
                    """, logger: log)
            }
        )
        // A saved payment method charged with nobody present (a recovery retry) is charged
        // off-session, for the customer it was saved under.
        request.customerId = record.details["customer_id"]?.stringValue
        request.offSession = command.offSession == true
        let credentials = ConnectorCredentials(account)
        let result = await call(connector, "authorize", attemptId: attemptId) { [request] in try await connector.authorize(request, credentials: credentials) }
        return try await applyAttemptOutcome(attemptId: attemptId, result: result, source: "authorize") ?? .null
    }
}

extension PaymentRecord {
    /// The payment as its confirm leaves it: processing `attemptId` on `account`.
    mutating func startAttempt(_ attemptId: String, account: ConnectorAccount, captureMethod: String, command: PaymentCommand) {
        status = .processing
        activeAttemptId = attemptId
        attemptCount += 1
        merchantConnectorId = account.merchantConnectorId
        connector = account.connectorName
        self.captureMethod = captureMethod
        card = command.card ?? card
        // What the confirm adds to the payment's details (payment_method_data.billing).
        if case .object(let added)? = command.details {
            for (key, value) in added where key == PaymentCommand.paymentMethodBillingDetail { details[key] = value }
        }
        cardVault = nil
        modifiedAt = Date()
        attempt = AttemptRecord(
            attemptId: attemptId, status: "pending", connectorTransactionId: nil, errorCode: nil, errorMessage: nil,
            unifiedCode: nil, unifiedMessage: nil, rawDeclineCode: nil, announcedProcessing: false,
            merchantConnectorId: account.merchantConnectorId, connector: account.connectorName
        )
    }
}
