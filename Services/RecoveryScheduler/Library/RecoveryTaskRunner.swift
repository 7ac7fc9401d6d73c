import Foundation
import Tracing
import Logging
import Metrics
import NIOConcurrencyHelpers
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO
import ServiceLifecycle

/// Runs due recovery tasks: claims them with a lease (`FOR UPDATE SKIP LOCKED`, so any number of
/// replicas run each task once; a dead replica's lease runs out and another takes the task),
/// reserves the retry's payment — its id is the idempotency key — and commits, then sends the
/// payment command with no transaction open. The outcome comes back as a payment event
/// (`RecoveryJobs.applyOutcome`); if it does not within `outcomeTimeout`, the same command (same
/// payment id) is sent again, which charges nothing more.
struct RecoveryTaskRunner: Service {
    let jobs: RecoveryJobs
    let producer: KafkaProducer
    let signer: CommandSigner
    let interval: Duration
    let batchSize: Int
    let outcomeTimeout: Double
    /// Set when a task is written due (the schema's `tasks` notifications).
    var wake: WakeSignal? = nil
    let owner = "recovery-" + Identifier.random(12)

    var postgres: PostgresClient { jobs.postgres }
    var logger: Logger { jobs.logger }

    static let environmentKeys = ["PAYWIRE_RECOVERY_INTERVAL_MS", "PAYWIRE_RECOVERY_BATCH", "PAYWIRE_RECOVERY_OUTCOME_TIMEOUT_MS"]

    func run() async throws {
        let gaugesRecorded = NIOLockedValueBox(ContinuousClock.now - .seconds(60))
        try await PeriodicWork(name: "recovery task runner", interval: interval, wake: wake, logger: logger) {
            // A full batch means more may be due: go on at once.
            if try await runDue() >= batchSize { return .now }
            // The gauges count the whole tracker: every few seconds, not after every pass
            // (replicas sharing a backlog often claim less than a batch).
            let now = ContinuousClock.now
            if gaugesRecorded.withLockedValue({ now - $0 >= .seconds(5) }) {
                try await recordGauges()
                gaugesRecorded.withLockedValue { $0 = now }
            }
            // Asleep until the next task is due or a lease runs out; a task written or moved
            // due sooner wakes the runner (its notification, or the clock moving), and the
            // interval bounds the wait after one that was missed. Something due now that no claim
            // took is being claimed elsewhere: look again shortly, not in a tight loop.
            guard let due = try await nextDue() else { return .idle }
            return .after(max(due, .milliseconds(50)))
        }.run()
    }

    /// How long until the earliest waiting task is due (by the scheduler's clock) or the
    /// earliest lease runs out (by the database's); nil when nothing waits.
    func nextDue() async throws -> Duration? {
        let now = jobs.clock.now()
        let rows = try await postgres.query("""
            SELECT EXTRACT(EPOCH FROM (SELECT min(schedule_time) FROM recovery.process_tracker WHERE status IN ('pending', 'waiting')) - \(now)::timestamptz)::float8,
                   EXTRACT(EPOCH FROM (SELECT min(lease_until) FROM recovery.process_tracker WHERE status = 'running') - now())::float8
            """, logger: logger)
        for try await (scheduled, leased) in rows.decode((Double?, Double?).self) {
            guard let seconds = [scheduled, leased].compactMap({ $0 }).min() else { return nil }
            return .milliseconds(Int64(max(0, seconds) * 1000) + 1)
        }
        return nil
    }

    /// Takes what is due now, in one transaction for the whole batch, and sends its payment
    /// commands; returns how many tasks it took. The transaction locks the due tasks (`FOR UPDATE
    /// SKIP LOCKED`: another replica takes others), locks their cards (advisory locks taken in
    /// one sorted order, so two replicas' batches never deadlock), reads every card's previous
    /// tries in one query, decides each task in order — a job tried just before in the same batch
    /// counts for its card, so per-card limits stay exact — reserves each retry's payment (its id
    /// is the idempotency key) and moves every task to `waiting` with two statements, then
    /// commits. The commands are sent after, with no transaction open; a replica that dies between
    /// the two leaves tasks `waiting`, due again after `outcomeTimeout`, when the same command (same
    /// payment id) is sent again, which charges nothing more.
    @discardableResult
    func runDue() async throws -> Int {
        let now = jobs.clock.now()
        let (taken, commands, traces) = try await postgres.withTransaction(logger: logger) { connection in
            try await reserve(now: now, on: connection)
        }
        guard !commands.isEmpty else { return taken }
        let versions = try await jobs.copy.versions(Array(Set(commands.map(\.merchantId))))
        var messages: [KafkaProducerMessage] = []
        var jobIds: [String] = []
        for var command in commands {
            do {
                try command.sealProcessorToken(with: jobs.secrets)
                let envelope = EventEnvelope(type: MessageType.paymentCommand, merchantId: command.merchantId, profileId: command.profileId,
                                             configurationVersion: versions[command.merchantId], payload: try JSONValue(encoding: command))
                let jobId = RecoveryIdentifiers.jobId(ofAttempt: command.paymentId) ?? command.paymentId
                // The retry is a span of its job's trace (the report that started it), and its
                // command carries it on: the payment it makes joins that trace too.
                let message = try await withSpan("recovery retry", context: TraceHeaders.context(from: traces[command.paymentId] ?? [:]), ofKind: .producer) { span in
                    span.attributes["paywire.recovery_job_id"] = jobId
                    span.attributes["paywire.payment_id"] = command.paymentId
                    return TraceHeaders.attachCurrent(to: try signer.signed(KafkaProducerMessage(topic: jobs.topics.paymentCommands, key: command.paymentId, value: try envelope.encoded())))
                }
                messages.append(message)
                jobIds.append(jobId)
            } catch {
                // Left waiting: sent when its outcome timeout passes.
                logger.warning("recovery retry not sent; it is sent again after its outcome timeout", metadata: ["payment_id": .string(command.paymentId), "error": .string(MessageFailure.loggable(error))])
            }
        }
        let reports = try await producer.sendBatch(messages)
        var unsent: [String] = []
        for (jobId, report) in zip(jobIds, reports) {
            if case .failure(let error) = report {
                logger.warning("recovery retry not sent; trying again shortly", metadata: ["job_id": .string(jobId), "error": .string(String(describing: error))])
                unsent.append(jobId)
            } else {
                Counter(label: "paywire_recovery_retries_sent_total").increment()
            }
        }
        if !unsent.isEmpty {
            // Sent again soon, under the same payment ids.
            try await postgres.query("""
                UPDATE recovery.process_tracker SET schedule_time = \(jobs.clock.now().addingTimeInterval(5)) WHERE id = ANY(\(unsent)) AND status = 'waiting'
                """, logger: logger)
        }
        return taken
    }

    /// One task as the batch's transaction read it.
    struct Taken {
        var jobId: String
        var task: RecoveryJobs.TrackedTask
        var pendingPayment: String?
    }

    /// The batch's transaction (see `runDue`): how many tasks it took and the commands to send.
    func reserve(now: Date, on connection: PostgresConnection) async throws -> (Int, [PaymentCommand], [String: [String: String]]) {
        // Two index-backed candidates (an OR across them would scan the whole table on every
        // pass, which a 100,000-task backlog makes quadratic): due tasks by schedule time, and
        // tasks a replica of an earlier version left `running` when it died.
        let rows = try await connection.query("""
            WITH due AS (
                SELECT id FROM recovery.process_tracker
                WHERE status IN ('pending', 'waiting') AND schedule_time <= \(now)
                ORDER BY schedule_time LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
            ), abandoned AS (
                SELECT id FROM recovery.process_tracker
                WHERE status = 'running' AND lease_until < now()
                ORDER BY lease_until LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
            )
            SELECT t.id, t.status, t.business_status, t.retry_count, t.tracking_data::text,
                   (SELECT a.payment_id FROM recovery.attempts a WHERE a.job_id = t.id AND a.status = 'pending' LIMIT 1)
            FROM recovery.process_tracker t WHERE t.id IN (SELECT id FROM due UNION ALL SELECT id FROM abandoned)
            ORDER BY t.schedule_time NULLS FIRST, t.id
            """, logger: logger)
        var taken: [Taken] = []
        for try await (id, status, business, retries, data, pending) in rows.decode((String, String, String, Int, String, String?).self) {
            let job = try PaywireJSON.decoder.decode(RecoveryJob.self, from: Data(data.utf8))
            taken.append(Taken(jobId: id, task: .init(status: status, businessStatus: business, retryCount: retries, job: job), pendingPayment: pending))
        }
        guard !taken.isEmpty else { return (0, [], [:]) }

        // The cards of tasks that need a new retry: locked (any replica, one transaction at a
        // time per card), then their tries read once for the batch.
        // (The function scan takes them in the array's order: sorted, as every replica sorts.)
        let cards = Array(Set(taken.filter { $0.pendingPayment == nil }.map { Self.cardLock($0.task.job) })).sorted()
        var previous: [String: [Date]] = [:]
        if !cards.isEmpty {
            try await connection.query("""
                SELECT pg_advisory_xact_lock(hashtextextended(card, 0)) FROM unnest(\(cards)::text[]) AS c(card)
                """, logger: logger)
            let pairs = taken.filter { $0.pendingPayment == nil }.map(\.task.job)
            let tries = try await connection.query("""
                SELECT DISTINCT a.payment_id, a.merchant_id, a.card_key, a.attempted_at FROM recovery.attempts a
                JOIN unnest(\(pairs.map(\.merchantId))::text[], \(pairs.map(\.cardKey))::text[]) AS c(merchant_id, card_key)
                  ON a.merchant_id = c.merchant_id AND a.card_key = c.card_key
                WHERE a.attempted_at > \(now.addingTimeInterval(-91 * 86_400))
                """, logger: logger)
            for try await (_, merchantId, cardKey, at) in tries.decode((String, String, String, Date).self) {
                previous[merchantId + ":" + cardKey, default: []].append(at)
            }
        }

        var commands: [PaymentCommand] = []
        /// Each retry's job's trace headers, by payment id.
        var traces: [String: [String: String]] = [:]
        // Columns of the two batch statements.
        var newPayments: [String] = [], newJobs: [String] = [], newMerchants: [String] = [], newNumbers: [Int] = [], newCards: [String] = [], newNetworks: [String] = []
        var movedIds: [String] = [], movedStatus: [String] = [], movedBusiness: [String] = [], movedAt: [Date] = [], movedRetries: [Int] = []
        /// A job whose command cannot be made (its stored token cannot be opened): looked at again
        /// in a minute, never holding back the batch.
        func postpone(_ item: Taken, _ error: any Error) {
            logger.error("recovery retry could not be made; trying again in a minute", metadata: ["job_id": .string(item.jobId), "error": .string(MessageFailure.loggable(error))])
            movedIds.append(item.jobId); movedStatus.append(item.task.status == "running" ? "pending" : item.task.status); movedBusiness.append(item.task.businessStatus)
            movedAt.append(now.addingTimeInterval(60)); movedRetries.append(item.task.retryCount)
        }
        for item in taken {
            let job = item.task.job
            if let payment = item.pendingPayment {
                // A retry already out (its command lost, or its outcome late): the same command again.
                do {
                    commands.append(try paymentCommand(job, paymentId: payment))
                    traces[payment] = job.traceHeaders
                } catch {
                    postpone(item, error)
                    continue
                }
                movedIds.append(item.jobId); movedStatus.append("waiting"); movedBusiness.append("attempting")
                movedAt.append(now.addingTimeInterval(outcomeTimeout)); movedRetries.append(item.task.retryCount)
                continue
            }
            let card = Self.cardLock(job)
            guard let allowed = jobs.policy.limits.earliest(at: now, network: job.cardNetwork, previous: previous[card] ?? []) else {
                try await jobs.finish(item.jobId, business: "failed", reason: "network_limit", event: (MessageType.paymentFailed, item.task, nil), on: connection)
                continue
            }
            if allowed > now {
                movedIds.append(item.jobId); movedStatus.append("pending"); movedBusiness.append("scheduled")
                movedAt.append(allowed); movedRetries.append(item.task.retryCount)
                continue
            }
            guard job.billingAttempts + item.task.retryCount < job.maxRetryCount else {
                try await jobs.finish(item.jobId, business: "failed", reason: "retries_exhausted", event: (MessageType.paymentFailed, item.task, nil), on: connection)
                continue
            }
            let number = item.task.retryCount + 1
            let paymentId = RecoveryIdentifiers.attemptPaymentId(jobId: item.jobId, attempt: number)
            let command: PaymentCommand
            do {
                command = try paymentCommand(job, paymentId: paymentId)
            } catch {
                postpone(item, error)
                continue
            }
            previous[card, default: []].append(now)
            newPayments.append(paymentId); newJobs.append(item.jobId); newMerchants.append(job.merchantId); newNumbers.append(number)
            newCards.append(job.cardKey); newNetworks.append(job.cardNetwork ?? "")
            movedIds.append(item.jobId); movedStatus.append("waiting"); movedBusiness.append("attempting")
            movedAt.append(now.addingTimeInterval(outcomeTimeout)); movedRetries.append(number)
            commands.append(command)
            traces[paymentId] = job.traceHeaders
        }
        if !newPayments.isEmpty {
            try await connection.query("""
                INSERT INTO recovery.attempts (payment_id, job_id, merchant_id, attempt_number, card_key, card_network, status, attempted_at)
                SELECT payment_id, job_id, merchant_id, attempt_number, card_key, NULLIF(card_network, ''), 'pending', \(now)
                FROM unnest(\(newPayments)::text[], \(newJobs)::text[], \(newMerchants)::text[], \(newNumbers)::int[], \(newCards)::text[], \(newNetworks)::text[])
                    AS a(payment_id, job_id, merchant_id, attempt_number, card_key, card_network)
                """, logger: logger)
        }
        if !movedIds.isEmpty {
            try await connection.query("""
                UPDATE recovery.process_tracker t
                SET status = m.status, business_status = m.business, schedule_time = m.at, retry_count = m.retries,
                    lease_owner = NULL, lease_until = NULL, updated_at = now()
                FROM unnest(\(movedIds)::text[], \(movedStatus)::text[], \(movedBusiness)::text[], \(movedAt)::timestamptz[], \(movedRetries)::int[])
                    AS m(id, status, business, at, retries)
                WHERE t.id = m.id
                """, logger: logger)
        }
        return (taken.count, commands, traces)
    }

    /// The advisory lock's name for a job's card: one per merchant and card.
    static func cardLock(_ job: RecoveryJob) -> String { job.merchantId + ":" + job.cardKey }

    /// A merchant-initiated charge of the saved payment method: created and confirmed at once.
    func paymentCommand(_ job: RecoveryJob, paymentId: String) throws -> PaymentCommand {
        var command = PaymentCommand(operation: .create, paymentId: paymentId, merchantId: job.merchantId)
        command.profileId = job.profileId
        command.amount = job.amount
        command.currency = job.currency
        command.confirm = true
        command.captureMethod = "automatic"
        command.merchantConnectorId = job.paymentConnectorId
        command.connectorName = job.paymentConnectorName
        command.processorPaymentToken = try jobs.secrets.open(job.sealedProcessorToken, as: .recoveryProcessorToken, row: job.jobId)
        command.offSession = true
        command.details = .object([
            "customer_id": job.connectorCustomerId.map(JSONValue.string) ?? .null,
            "payment_method_type": job.paymentMethodSubtype.map(JSONValue.string) ?? .null,
            "metadata": .object(["recovery_job_id": .string(job.jobId), "merchant_reference_id": job.merchantReferenceId.map(JSONValue.string) ?? .null]),
        ])
        return command
    }

    /// Jobs by status, the due backlog and how late its oldest task is.
    func recordGauges() async throws {
        let now = jobs.clock.now()
        let rows = try await postgres.query("""
            SELECT business_status, count(*)::int FROM recovery.process_tracker GROUP BY business_status
            """, logger: logger)
        for try await (status, count) in rows.decode((String, Int).self) {
            Gauge(label: "paywire_recovery_jobs", dimensions: [("status", status)]).record(count)
        }
        let due = try await postgres.query("""
            SELECT count(*)::int, COALESCE(EXTRACT(EPOCH FROM (\(now)::timestamptz - min(schedule_time))), 0)::float8
            FROM recovery.process_tracker WHERE status = 'pending' AND schedule_time <= \(now)
            """, logger: logger)
        for try await (count, lag) in due.decode((Int, Double).self) {
            Gauge(label: "paywire_recovery_due_tasks").record(count)
            Gauge(label: "paywire_recovery_oldest_due_seconds").record(lag)
        }
    }
}
