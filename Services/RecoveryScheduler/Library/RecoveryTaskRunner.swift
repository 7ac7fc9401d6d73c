import Foundation
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

    /// Claims and runs what is due now; returns how many tasks it claimed.
    @discardableResult
    func runDue() async throws -> Int {
        let now = jobs.clock.now()
        // Two index-backed candidates (an OR across them would scan the whole table on every
        // pass, which a 100,000-task backlog makes quadratic): due tasks by schedule time, and
        // tasks whose replica died holding them.
        let rows = try await postgres.query("""
            WITH due AS (
                SELECT id FROM recovery.process_tracker
                WHERE status IN ('pending', 'waiting') AND schedule_time <= \(now)
                ORDER BY schedule_time LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
            ), abandoned AS (
                SELECT id FROM recovery.process_tracker
                WHERE status = 'running' AND lease_until < now()
                ORDER BY lease_until LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
            )
            UPDATE recovery.process_tracker SET status = 'running', lease_owner = \(owner), lease_until = now() + interval '30 seconds', updated_at = now()
            WHERE id IN (SELECT id FROM due UNION ALL SELECT id FROM abandoned)
            RETURNING id
            """, logger: logger)
        var claimed: [String] = []
        for try await id in rows.decode(String.self) { claimed.append(id) }
        await withTaskGroup(of: Void.self) { group in
            for id in claimed {
                group.addTask {
                    do {
                        try await dispatch(id, now: now)
                    } catch {
                        logger.warning("recovery task not run; its lease will run out and it is taken again", metadata: ["job_id": .string(id), "error": .string(MessageFailure.loggable(error))])
                    }
                }
            }
        }
        return claimed.count
    }

    /// What one claimed task does: the retry's payment reserved (or the one already out found
    /// again), the lease given up, then the command sent.
    func dispatch(_ jobId: String, now: Date) async throws {
        let command = try await postgres.withTransaction(logger: logger) { connection -> PaymentCommand? in
            guard let task = try await jobs.lockedTask(jobId, on: connection), task.status == "running" else { return nil }
            let job = task.job
            var attempt = try await pendingAttempt(jobId, on: connection)
            if attempt == nil {
                // The card's network limits are checked again now: other jobs may have tried it.
                // One transaction at a time per card (any replica), or two jobs of the same card
                // could each see room for one more try and both take it.
                try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(job.merchantId + ":" + job.cardKey), 0))", logger: logger)
                let previous = try await jobs.cardAttempts(job, before: now, on: connection)
                guard let allowed = jobs.policy.limits.earliest(at: now, network: job.cardNetwork, previous: previous) else {
                    try await jobs.finish(jobId, business: "failed", reason: "network_limit", event: (MessageType.paymentFailed, task, nil), on: connection)
                    return nil
                }
                if allowed > now {
                    try await jobs.setState(jobId, status: "pending", business: "scheduled", at: allowed, on: connection)
                    return nil
                }
                guard job.billingAttempts + task.retryCount < job.maxRetryCount else {
                    try await jobs.finish(jobId, business: "failed", reason: "retries_exhausted", event: (MessageType.paymentFailed, task, nil), on: connection)
                    return nil
                }
                let number = task.retryCount + 1
                let paymentId = RecoveryIdentifiers.attemptPaymentId(jobId: jobId, attempt: number)
                try await connection.query("""
                    INSERT INTO recovery.attempts (payment_id, job_id, merchant_id, attempt_number, card_key, card_network, status, attempted_at)
                    VALUES (\(paymentId), \(jobId), \(job.merchantId), \(number), \(job.cardKey), \(job.cardNetwork), 'pending', \(now))
                    """, logger: logger)
                try await connection.query("UPDATE recovery.process_tracker SET retry_count = \(number) WHERE id = \(jobId)", logger: logger)
                attempt = paymentId
            }
            try await connection.query("""
                UPDATE recovery.process_tracker SET status = 'waiting', business_status = 'attempting', schedule_time = \(now.addingTimeInterval(outcomeTimeout)),
                    lease_owner = NULL, lease_until = NULL, updated_at = now()
                WHERE id = \(jobId)
                """, logger: logger)
            return try paymentCommand(job, paymentId: attempt!)
        }
        guard var command else { return }
        try command.sealProcessorToken(with: jobs.secrets)
        let version = try await jobs.copy.versions([command.merchantId])[command.merchantId]
        let envelope = EventEnvelope(type: MessageType.paymentCommand, merchantId: command.merchantId, profileId: command.profileId,
                                     configurationVersion: version, payload: try JSONValue(encoding: command))
        do {
            _ = try await producer.send(signer.signed(KafkaProducerMessage(topic: jobs.topics.paymentCommands, key: command.paymentId, value: try envelope.encoded())))
            Counter(label: "paywire_recovery_retries_sent_total").increment()
        } catch {
            // Sent again soon, under the same payment id.
            logger.warning("recovery retry not sent; trying again shortly", metadata: ["job_id": .string(jobId), "error": .string(String(describing: error))])
            try await postgres.query("UPDATE recovery.process_tracker SET schedule_time = \(jobs.clock.now().addingTimeInterval(5)) WHERE id = \(jobId) AND status = 'waiting'", logger: logger)
        }
    }

    func pendingAttempt(_ jobId: String, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("SELECT payment_id FROM recovery.attempts WHERE job_id = \(jobId) AND status = 'pending'", logger: logger)
        for try await id in rows.decode(String.self) { return id }
        return nil
    }

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
