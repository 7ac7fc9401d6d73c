import Crypto
import Foundation
import Logging
import Metrics
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Everything that happens to a recovery job, each step one transaction on its process-tracker
/// row (locked): a billing platform's report starts or updates it, a retry's outcome (a payment
/// event) moves it on, and its end writes the one final event through the outbox. The payments
/// themselves are sent by `RecoveryTaskRunner` with no transaction open.
struct RecoveryJobs: Sendable {
    let postgres: PostgresClient
    let secrets: SecretBox
    let copy: ConfigurationCopy
    let policy: RecoveryRetryPolicy
    let clock: RecoveryClock
    let topics: TopicNames
    let logger: Logger
    let outbox = Outbox(schema: RecoverySchema.name)
    let processed = ProcessedMessages(schema: RecoverySchema.name, consumer: "recovery-inputs")

    /// A process-tracker row, locked: the task's state and the job it tracks.
    struct TrackedTask: Sendable {
        var status: String
        var businessStatus: String
        var retryCount: Int
        var job: RecoveryJob
    }

    // MARK: Reports from the billing platform

    func apply(_ command: RecoveryCommand, envelopeId: String, configurationVersion: Int64?) async throws {
        try await copy.waitFor(merchantId: command.merchantId, version: configurationVersion ?? 0)
        let algorithm = try await algorithm(merchantId: command.merchantId, profileId: command.profileId)
        let now = clock.now()
        _ = try await processed.processOnce(messageID: envelopeId, client: postgres, logger: logger) { connection in
            let existing = try await lockedTask(command.jobId, on: connection)
            if let existing, existing.status == "finished" {
                logger.info("report for a finished recovery job ignored", metadata: ["job_id": .string(command.jobId), "action": .string(command.action.rawValue)])
                return
            }
            switch command.action {
            case .scheduleFailedPayment, .noAction:
                var job: RecoveryJob
                if var known = existing?.job {
                    known.update(from: command)
                    job = known
                } else {
                    guard let created = try RecoveryJob(command: command, secrets: secrets) else {
                        logger.warning("recovery report without what a new job needs", metadata: ["job_id": .string(command.jobId)])
                        return
                    }
                    job = created
                    // The report's trace (this message's span): the job's retries join it.
                    let trace = TraceHeaders.current()
                    if !trace.isEmpty { job.traceHeaders = trace }
                }
                if command.action == .scheduleFailedPayment, existing != nil { job.billingAttempts += 1 }
                try await save(job, existing: existing, on: connection)
                // A payment already out decides the next step when its outcome comes.
                if let existing, ["waiting", "running"].contains(existing.status) { return }
                if command.action == .noAction, existing != nil { return }
                let retries = existing?.retryCount ?? 0
                if command.action == .noAction {
                    try await setState(command.jobId, status: "idle", business: "recorded", at: nil, on: connection)
                } else if job.billingAttempts < job.billingRetryThreshold {
                    // The billing platform makes its own tries first; Paywire starts after them.
                    try await setState(command.jobId, status: "idle", business: "awaiting_billing_platform", at: nil, on: connection)
                } else {
                    try await decide(job, retries: retries, algorithm: algorithm, now: now, on: connection)
                }
            case .successPaymentExternal:
                guard existing != nil else { return }
                try await finish(command.jobId, business: "paid_externally", reason: "paid_externally", event: nil, on: connection)
            case .cancelInvoice, .cancel:
                guard let existing else { return }
                try await finish(command.jobId, business: "cancelled", reason: "cancelled", event: (MessageType.paymentFailed, existing, nil), on: connection)
            }
        }
    }

    /// After a failure: retry at a time, end the job, or (monitoring) only record.
    func decide(_ job: RecoveryJob, retries: Int, algorithm: RecoveryRetryPolicy.Algorithm, now: Date, on connection: PostgresConnection) async throws {
        let decision = policy.next(
            algorithm: algorithm, after: job.lastFailure, paywireRetries: retries, totalAttempts: job.billingAttempts + retries,
            maxRetryCount: job.maxRetryCount, network: job.cardNetwork,
            cardAttempts: try await cardAttempts(job, before: now.addingTimeInterval(60 * 86_400), on: connection), now: now,
            connector: job.paymentConnectorName
        )
        switch decision {
        case .record:
            try await setState(job.jobId, status: "idle", business: "monitoring", at: nil, on: connection)
        case .retry(let at):
            try await setState(job.jobId, status: "pending", business: "scheduled", at: at, on: connection)
        case .stop(let reason):
            let task = TrackedTask(status: "idle", businessStatus: "failed", retryCount: retries, job: job)
            try await finish(job.jobId, business: "failed", reason: reason, event: (MessageType.paymentFailed, task, nil), on: connection)
        }
    }

    // MARK: Outcomes of Paywire's retries

    /// The connector-neutral reason of a declined payment (`error_code` is the processor's own
    /// word, e.g. Stripe's `card_declined`; events before `decline_code` existed carry only it).
    static func declineCode(of payment: JSONValue) -> String? {
        payment["decline_code"]?.stringValue ?? payment["error_code"]?.stringValue
    }

    static func networkDeclineCode(of payment: JSONValue) -> String? {
        payment["network_decline_code"]?.stringValue ?? payment["issuer_error_code"]?.stringValue
    }

    /// A payment event: if it is about one of this service's retries, the job moves on.
    func applyOutcome(_ envelope: EventEnvelope) async throws {
        guard let paymentId = envelope.payload["payment_id"]?.stringValue, let jobId = RecoveryIdentifiers.jobId(ofAttempt: paymentId) else { return }
        let succeeded = envelope.type == MessageType.paymentSucceeded
        guard succeeded || envelope.type == MessageType.paymentFailed else { return }
        let algorithm = try await algorithm(merchantId: envelope.merchantId, profileId: envelope.profileId)
        let now = clock.now()
        _ = try await processed.processOnce(messageID: envelope.id, client: postgres, logger: logger) { connection in
            guard var task = try await lockedTask(jobId, on: connection) else { return }
            let object = envelope.payload
            let updated = try await connection.query("""
                UPDATE recovery.attempts SET status = \(succeeded ? "succeeded" : "declined"), decline_code = \(Self.declineCode(of: object)),
                    raw_decline_code = \(Self.networkDeclineCode(of: object)), advice_code = \(object["network_advice_code"]?.stringValue),
                    message = \(object["error_message"]?.stringValue),
                    connector = \(object["connector"]?.stringValue), connector_transaction_id = \(object["connector_transaction_id"]?.stringValue), finished_at = \(now)
                WHERE payment_id = \(paymentId) AND status = 'pending' RETURNING attempt_number
                """, logger: logger)
            guard try await updated.hasRows() else { return }
            Counter(label: "paywire_recovery_attempts_total", dimensions: [("outcome", succeeded ? "succeeded" : "declined")]).increment()
            guard task.status != "finished" else {
                logger.warning("a retry's outcome arrived after its job ended", metadata: ["job_id": .string(jobId), "payment_id": .string(paymentId), "succeeded": .stringConvertible(succeeded)])
                return
            }
            if succeeded {
                try await finish(jobId, business: "succeeded", reason: nil, event: (MessageType.paymentSucceeded, task, object), on: connection)
                return
            }
            task.job.lastErrorCode = Self.declineCode(of: object)
            task.job.lastNetworkDeclineCode = Self.networkDeclineCode(of: object)
            task.job.lastNetworkAdviceCode = object["network_advice_code"]?.stringValue
            try await save(task.job, existing: task, on: connection)
            try await decide(task.job, retries: task.retryCount, algorithm: algorithm, now: now, on: connection)
        }
    }

    // MARK: Storage

    func lockedTask(_ jobId: String, on connection: PostgresConnection) async throws -> TrackedTask? {
        let rows = try await connection.query("""
            SELECT status, business_status, retry_count, tracking_data::text FROM recovery.process_tracker WHERE id = \(jobId) FOR UPDATE
            """, logger: logger)
        for try await (status, business, retries, data) in rows.decode((String, String, Int, String).self) {
            return TrackedTask(status: status, businessStatus: business, retryCount: retries, job: try PaywireJSON.decoder.decode(RecoveryJob.self, from: Data(data.utf8)))
        }
        return nil
    }

    func save(_ job: RecoveryJob, existing: TrackedTask?, on connection: PostgresConnection) async throws {
        let data = try PaywireJSON.text(job)
        if existing == nil {
            try await connection.query("""
                INSERT INTO recovery.process_tracker (id, merchant_id, name, runner, status, business_status, tracking_data)
                VALUES (\(job.jobId), \(job.merchantId), 'revenue_recovery', 'recovery_retry', 'idle', 'recorded', \(data)::jsonb)
                """, logger: logger)
        } else {
            try await connection.query("UPDATE recovery.process_tracker SET tracking_data = \(data)::jsonb, updated_at = now() WHERE id = \(job.jobId)", logger: logger)
        }
    }

    func setState(_ jobId: String, status: String, business: String, at: Date?, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE recovery.process_tracker SET status = \(status), business_status = \(business), schedule_time = \(at),
                lease_owner = NULL, lease_until = NULL, updated_at = now()
            WHERE id = \(jobId)
            """, logger: logger)
    }

    /// Ends the job and, unless the invoice was settled elsewhere, writes its one final event.
    func finish(_ jobId: String, business: String, reason: String?, event: (type: String, task: TrackedTask, payment: JSONValue?)?, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE recovery.process_tracker SET status = 'finished', business_status = \(business), schedule_time = NULL,
                lease_owner = NULL, lease_until = NULL, updated_at = now(),
                tracking_data = jsonb_set(tracking_data, '{finish_reason}', to_jsonb(\(reason ?? business)::text))
            WHERE id = \(jobId)
            """, logger: logger)
        Counter(label: "paywire_recovery_jobs_finished_total", dimensions: [("status", business)]).increment()
        logger.info("recovery job finished", metadata: ["job_id": .string(jobId), "status": .string(business), "reason": .string(reason ?? "")])
        guard let event else { return }
        let attempts = try await attempts(jobId, on: connection)
        let payload = try finalObject(event.task.job, paywireRetries: attempts.count, succeeded: event.type == MessageType.paymentSucceeded, reason: reason, payment: event.payment)
        let version = try await copy.versions([event.task.job.merchantId], on: connection)[event.task.job.merchantId]
        let envelope = EventEnvelope(type: event.type, merchantId: event.task.job.merchantId, profileId: event.task.job.profileId, configurationVersion: version, payload: payload)
        try await outbox.enqueue(envelope, topic: topics.recoveryEvents, key: jobId, on: connection, logger: logger)
    }

    func attempts(_ jobId: String, on connection: PostgresConnection? = nil) async throws -> [RecoveryAttemptRecord] {
        let query: PostgresQuery = """
            SELECT payment_id, attempt_number, status, decline_code, raw_decline_code, advice_code, message, connector, connector_transaction_id, attempted_at, finished_at
            FROM recovery.attempts WHERE job_id = \(jobId) ORDER BY attempt_number
            """
        let rows = if let connection { try await connection.query(query, logger: logger) } else { try await postgres.query(query, logger: logger) }
        var found: [RecoveryAttemptRecord] = []
        for try await (id, number, status, decline, raw, advice, message, connector, transaction, at, finished) in rows.decode(
            (String, Int, String, String?, String?, String?, String?, String?, String?, Date, Date?).self
        ) {
            found.append(RecoveryAttemptRecord(paymentId: id, attemptNumber: number, status: status, declineCode: decline, rawDeclineCode: raw, adviceCode: advice,
                                               message: message, connector: connector, connectorTransactionId: transaction, attemptedAt: at, finishedAt: finished))
        }
        return found
    }

    /// When this card was tried by Paywire, across the merchant's jobs (what network limits count).
    func cardAttempts(_ job: RecoveryJob, before: Date, on connection: PostgresConnection) async throws -> [Date] {
        let rows = try await connection.query("""
            SELECT attempted_at FROM recovery.attempts
            WHERE merchant_id = \(job.merchantId) AND card_key = \(job.cardKey) AND attempted_at > \(before.addingTimeInterval(-91 * 86_400))
            """, logger: logger)
        var dates: [Date] = []
        for try await date in rows.decode(Date.self) { dates.append(date) }
        return dates
    }

    /// The profile's algorithm, from this service's copy of the configuration.
    func algorithm(merchantId: String, profileId: String?) async throws -> RecoveryRetryPolicy.Algorithm {
        let snapshot = try await copy.current(merchantId)
        let profile = snapshot?.profiles.first { $0.profileId == (profileId ?? snapshot?.defaultProfileId) }
        return profile?.revenueRecoveryRetryAlgorithmType.flatMap(RecoveryRetryPolicy.Algorithm.init(rawValue:)) ?? .monitoring
    }

    // MARK: The final event

    /// The job as a v2 payment object, with `feature_metadata.revenue_recovery` as Hyperswitch
    /// sends it; `total_retry_count` counts every attempt on the invoice, the billing platform's too.
    func finalObject(_ job: RecoveryJob, paywireRetries: Int, succeeded: Bool, reason: String?, payment: JSONValue?) throws -> JSONValue {
        let token = try secrets.open(job.sealedProcessorToken, as: .recoveryProcessorToken, row: job.jobId)
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        func date(_ value: Date?) -> JSONValue { value.map { .string(PaywireJSON.format($0)) } ?? .null }
        let now = PaywireJSON.format(Date())
        let amount = Double(job.amount)
        let recovery: JSONValue = .object([
            "total_retry_count": .number(Double(job.billingAttempts + paywireRetries)),
            "payment_connector_transmission": .string(succeeded || payment != nil ? "ConnectorCallSucceeded" : "ConnectorCallUnsuccessful"),
            "billing_connector_id": text(job.billingConnectorId),
            "active_attempt_payment_connector_id": .string(job.paymentConnectorId),
            "billing_connector_payment_details": .object(["payment_processor_token": .string(token), "connector_customer_id": text(job.connectorCustomerId)]),
            "payment_method_type": text(job.paymentMethodType),
            "payment_method_subtype": text(job.paymentMethodSubtype),
            "connector": .string(job.paymentConnectorName),
            "billing_connector_payment_method_details": .object(["type": .string("card"), "value": .object(["card_network": text(job.cardNetwork), "card_issuer": text(job.cardIssuer)])]),
            "invoice_next_billing_time": date(job.invoiceNextBillingTime),
            "invoice_billing_started_at_time": date(job.billingStartedAt),
            "first_payment_attempt_pg_error_code": text(job.firstErrorCode),
            "first_payment_attempt_network_decline_code": text(job.firstNetworkDeclineCode),
            "first_payment_attempt_network_advice_code": text(job.firstNetworkAdviceCode),
        ])
        let transaction = payment?["connector_transaction_id"] ?? .null
        let error: JSONValue = succeeded ? .null : .object([
            "code": .string(reason ?? "failed"),
            "message": .string(Self.reasonMessages[reason ?? ""] ?? "The invoice could not be recovered"),
            "unified_code": .null, "unified_message": .null,
            "network_decline_code": text(job.lastNetworkDeclineCode), "network_advice_code": text(job.lastNetworkAdviceCode),
            "decline_code": text(job.lastErrorCode),
        ])
        return .object([
            "id": .string(job.jobId),
            "payment_id": .string(job.jobId),
            "merchant_id": .string(job.merchantId),
            "profile_id": text(job.profileId),
            "status": .string(succeeded ? "succeeded" : "failed"),
            "amount": .object([
                "order_amount": .number(amount), "currency": .string(job.currency), "shipping_cost": .null, "order_tax_amount": .null,
                "external_tax_calculation": .string("skip"), "surcharge_calculation": .string("skip"), "surcharge_amount": .null,
                "tax_on_surcharge": .null, "net_amount": .number(amount), "amount_to_capture": .null, "amount_capturable": .number(0),
                "amount_captured": .number(succeeded ? amount : 0),
            ]),
            "customer_id": .null,
            "connector": .string(job.paymentConnectorName),
            "created": .string(now),
            "modified_at": .string(now),
            "payment_method_data": .object(["billing": .null]),
            "payment_method_type": text(job.paymentMethodType),
            "payment_method_subtype": text(job.paymentMethodSubtype),
            "connector_transaction_id": transaction,
            "connector_reference_id": transaction,
            "merchant_connector_id": .string(job.paymentConnectorId),
            "browser_info": .null, "error": error, "shipping": .null, "billing": .null, "attempts": .null,
            "connector_token_details": .object(["token": .string(token), "connector_token_request_reference_id": .null]),
            "payment_method_id": .null, "next_action": .null, "return_url": .null,
            "authentication_type": .string("no_three_ds"), "authentication_type_applied": .string("no_three_ds"),
            "is_iframe_redirection_enabled": .null,
            "merchant_reference_id": text(job.merchantReferenceId),
            "raw_connector_response": .null,
            "feature_metadata": .object(["redirect_response": .null, "search_tags": .null, "apple_pay_recurring_details": .null, "revenue_recovery": recovery]),
        ])
    }

    static let reasonMessages = [
        "hard_decline": "The card was declined in a way no retry can change",
        "retries_exhausted": "Every allowed attempt on the invoice was made",
        "network_limit": "The card network allows no further attempt on this card",
        "cancelled": "The recovery was cancelled",
    ]
}

extension RecoveryJob {
    /// A new job from the first report about an invoice; nil if the report lacks what a retry needs.
    init?(command: RecoveryCommand, secrets: SecretBox) throws {
        guard let amount = command.amount, let currency = command.currency, let token = command.processorToken,
              let paymentConnectorId = command.paymentConnectorId, let connectorName = command.paymentConnectorName else { return nil }
        self.init(
            jobId: command.jobId, merchantId: command.merchantId, profileId: command.profileId, merchantReferenceId: command.merchantReferenceId,
            amount: amount, currency: currency, sealedProcessorToken: try secrets.seal(token, as: .recoveryProcessorToken, row: command.jobId),
            connectorCustomerId: command.connectorCustomerId, billingConnectorId: command.billingConnectorId,
            paymentConnectorId: paymentConnectorId, paymentConnectorName: connectorName,
            maxRetryCount: command.maxRetryCount ?? 15, billingRetryThreshold: command.billingRetryThreshold ?? 0,
            billingAttempts: command.action == .scheduleFailedPayment ? 1 : 0,
            firstErrorCode: command.errorCode, firstNetworkDeclineCode: command.networkDeclineCode, firstNetworkAdviceCode: command.networkAdviceCode,
            lastErrorCode: command.errorCode, lastNetworkDeclineCode: command.networkDeclineCode, lastNetworkAdviceCode: command.networkAdviceCode,
            paymentMethodType: command.paymentMethodType, paymentMethodSubtype: command.paymentMethodSubtype,
            cardNetwork: command.cardNetwork, cardIssuer: command.cardIssuer,
            billingStartedAt: command.billingStartedAt, invoiceNextBillingTime: command.invoiceNextBillingTime, finishReason: nil,
            cardKey: paymentConnectorId + ":" + Hex.encode(SHA256.hash(data: Data(token.utf8)).prefix(16))
        )
    }

    /// A later report: the billing connector's settings and the latest failure as reported now.
    mutating func update(from command: RecoveryCommand) {
        if let value = command.maxRetryCount { maxRetryCount = value }
        if let value = command.billingRetryThreshold { billingRetryThreshold = value }
        if let value = command.invoiceNextBillingTime { invoiceNextBillingTime = value }
        if command.action == .scheduleFailedPayment, command.errorCode != nil || command.networkDeclineCode != nil {
            lastErrorCode = command.errorCode
            lastNetworkDeclineCode = command.networkDeclineCode
            lastNetworkAdviceCode = command.networkAdviceCode
        }
    }
}
