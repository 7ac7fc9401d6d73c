import AsyncHTTPClient
import Foundation
import Tracing
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO
import ServiceLifecycle

/// How the dispatcher sends (environment variables in the README).
public struct DeliverySettings: Sendable {
    /// One request's time limit (`WEBHOOK_REQUEST_TIMEOUT_SECONDS`, default 30, as Hyperswitch's users asked).
    public var requestTimeout: Duration = .seconds(30)
    /// Requests one replica has in flight at most (`PAYWIRE_WEBHOOK_CONCURRENCY`).
    public var concurrency = 64
    /// Requests one endpoint has in flight from one replica at most
    /// (`PAYWIRE_WEBHOOK_ENDPOINT_CONCURRENCY`): a slow endpoint can hold this many slots, never all.
    public var perEndpoint = 10
    /// Requests one receiving host (name and port) has in flight from one replica at most,
    /// whatever endpoints it serves (`PAYWIRE_WEBHOOK_HOST_CONCURRENCY`): shared fairly, each of
    /// the host's busy endpoints gets an equal share (and never more than `perEndpoint`).
    public var perHost = 200
    /// A claimed delivery is this replica's for the request timeout plus this margin; a replica
    /// that dies leaves leases that expire, and another resumes the work.
    public var leaseMargin: Duration = .seconds(30)
    public var schedule: RetrySchedule = .hyperswitch
    /// `PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true` lifts the address guard (dev stack, tests).
    public var allowPrivateNetworks = false
    /// An endpoint failing with no success for this long is made inactive
    /// (`PAYWIRE_WEBHOOK_DISABLE_AFTER_HOURS`, default 120 = 5 days, as Svix).
    public var disableAfter: Duration = .seconds(5 * 24 * 3600)
    /// How often an idle worker looks for due deliveries by itself (`PAYWIRE_IDLE_CHECK_SECONDS`,
    /// default 10): it is woken when a delivery is written due, and sleeps until the next retry is
    /// due, so this only bounds the delay after a missed notification or an expired lease.
    public var idleCheck: Duration = .seconds(10)
    /// How long a manual retry's caller waits for the attempt before being answered 202 while it
    /// goes on (`PAYWIRE_WEBHOOK_RETRY_ANSWER_MS`, default 5000): below the time clients and
    /// proxies give a request, whatever the endpoint's request timeout.
    public var manualRetryAnswerWithin: Duration = .seconds(5)
    /// Whether a delivery to an endpoint that is answering skips the queue: written `sending` by
    /// the fan-out and sent by that replica as soon as the row is committed
    /// (`PAYWIRE_WEBHOOK_FIRST_ATTEMPT_AT_FAN_OUT`, default false until a fault-drill run that
    /// left retries to a flaky endpoint unsent after a PostgreSQL restart is understood; false:
    /// the worker claims every delivery).
    public var firstAttemptAtFanOut = false

    public static let environmentKeys = [
        "WEBHOOK_REQUEST_TIMEOUT_SECONDS", "PAYWIRE_WEBHOOK_CONCURRENCY", "PAYWIRE_WEBHOOK_ENDPOINT_CONCURRENCY",
        "PAYWIRE_WEBHOOK_HOST_CONCURRENCY", "PAYWIRE_WEBHOOK_LEASE_MARGIN_SECONDS", RetrySchedule.environmentKey, NetworkAddressPolicy.allowPrivateKey,
        "PAYWIRE_WEBHOOK_DISABLE_AFTER_HOURS", ServiceConfiguration.idleCheckKey, "PAYWIRE_WEBHOOK_RETRY_ANSWER_MS",
        "PAYWIRE_WEBHOOK_FIRST_ATTEMPT_AT_FAN_OUT",
    ]

    public init() {}

    public init(environment: [String: String]) throws {
        requestTimeout = .seconds(try ServiceConfiguration.integer(environment, "WEBHOOK_REQUEST_TIMEOUT_SECONDS", default: 30, range: 1...300))
        concurrency = try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_CONCURRENCY", default: 64, range: 1...4096)
        perEndpoint = try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_ENDPOINT_CONCURRENCY", default: 10, range: 1...1000)
        perHost = try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_HOST_CONCURRENCY", default: 200, range: 1...10000)
        leaseMargin = .seconds(try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_LEASE_MARGIN_SECONDS", default: 30, range: 1...3600))
        if let text = environment[RetrySchedule.environmentKey], !text.isEmpty { schedule = try RetrySchedule.parse(text) }
        allowPrivateNetworks = NetworkAddressPolicy.allowsPrivateNetworks(environment)
        disableAfter = .seconds(3600 * (try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_DISABLE_AFTER_HOURS", default: 120, range: 1...8760)))
        idleCheck = try ServiceConfiguration.idleCheck(environment)
        manualRetryAnswerWithin = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_WEBHOOK_RETRY_ANSWER_MS", default: 5000, range: 0...300_000))
        firstAttemptAtFanOut = try ServiceConfiguration.boolean(environment, "PAYWIRE_WEBHOOK_FIRST_ATTEMPT_AT_FAN_OUT", default: false)
    }

    var leaseSeconds: Double { Double((requestTimeout + leaseMargin).components.seconds) }
}

/// Sends due deliveries. Each is claimed with a lease in one statement (`FOR UPDATE SKIP
/// LOCKED` picks rows no other replica is claiming), sent with no transaction or lock open, and
/// its outcome recorded afterwards in a batch. Claiming goes on while requests run, so an endpoint
/// answering in 30 s holds its own slots (at most `perEndpoint`) and nobody else's.
///
/// A delivery to an endpoint that answered this replica's last request 2xx skips the queue: the
/// fan-out writes it `sending`, leased to this replica, and this replica sends it as soon as the
/// row is committed (`reserveFirstAttempts`, `startFirstAttempts`), under the same limits. When
/// it succeeds the delivery has cost its share of the fan-out's batched insert and one attempt
/// row — no claim, no lease update, no status update. One that fails is recorded as any attempt;
/// one whose replica died is found by `sweepAbandonedSends` once its lease has run out.
public final class DeliveryWorker: Service, Sendable {
    let postgres: PostgresClient
    let configuration: ConfigurationRepository
    let logger: Logger
    let settings: DeliverySettings
    /// This replica's name on the leases it takes.
    let owner: String
    private let inFlight = NIOLockedValueBox(DeliveryInFlight())
    /// Endpoints whose last request from this replica was answered 2xx, and when: the ones whose
    /// first attempts may start at fan-out. A failing endpoint goes through the queue.
    let answering = NIOLockedValueBox<[String: ContinuousClock.Instant]>([:])
    /// Set while the worker's last look left deliveries due for want of a slot (the replica's,
    /// an endpoint's or a host's): a first attempt that ends then wakes it. Otherwise first
    /// attempts end without waking it — it has nothing to claim.
    let waitingForSlots = NIOLockedValueBox(false)
    /// Set on graceful shutdown: nothing more is claimed or started.
    let stopping = NIOLockedValueBox(false)
    let recorder: DeliveryOutcomeRecorder
    /// Deliveries this replica has claimed and not yet recorded: their leases are renewed while
    /// they last, so a live replica never loses work to another however slow the request or the
    /// machine; only a dead replica's leases expire.
    let held: NIOLockedValueBox<Set<String>>
    private let latency = Timer(label: "paywire_webhook_delivery_latency_seconds")
    /// Shared by the worker and manual retries from the events API; shut down when the worker stops
    /// (the HTTP server, listed after it, has stopped by then).
    let clients: WebhookHTTPClients
    let health: EndpointHealth
    let limiter: EndpointRateLimiter
    /// Ends the worker's wait: a delivery written due (the schema's `deliveries` notifications),
    /// a request finished (a slot is free), an outcome recorded (an ordered object's next event
    /// may go).
    let wake: WakeSignal

    public init(postgres: PostgresClient, configuration: ConfigurationRepository, logger: Logger, settings: DeliverySettings = DeliverySettings(), wake: WakeSignal = WakeSignal()) {
        self.postgres = postgres
        self.wake = wake
        self.configuration = configuration
        self.logger = logger
        self.settings = settings
        clients = WebhookHTTPClients(guardPrivateNetworks: !settings.allowPrivateNetworks, requestTimeout: settings.requestTimeout,
                                     connectionsPerEndpoint: settings.perEndpoint, logger: logger)
        health = EndpointHealth(postgres: postgres, logger: logger, disableAfter: settings.disableAfter)
        limiter = EndpointRateLimiter()
        let owner = "dispatcher-" + UUID().uuidString.lowercased().prefix(12)
        let held = NIOLockedValueBox<Set<String>>([])
        self.owner = owner
        self.held = held
        recorder = DeliveryOutcomeRecorder(postgres: postgres, owner: owner, logger: logger, health: health) { recorded, moved in
            held.withLockedValue { $0.subtract(recorded) }
            // Only a row that changed can let the worker claim something (an ordered object's
            // next event, a retry to schedule): a first attempt's success changes no row.
            if moved { wake.signal() }
        }
    }

    struct Due: Sendable {
        var eventId: String
        var merchantId: String
        var profileId: String?
        var endpointId: String?
        var endpointKey: String
        var storedURL: String
        var body: String
        var headers: [String: String]
        var attemptCount: Int
        var statusReason: String?
        /// Set when the dispatcher has made the endpoint inactive (410, or failing too long).
        var disabledAt: Date?
        var disabledReason: String?
        /// The trace of the event this delivery is of: every attempt is a span in it.
        var traceHeaders: [String: String] = [:]
    }

    public func run() async throws {
        let held = held, wake = wake, recorder = recorder, stopping = stopping
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { outer in
                // The upkeep loops run until the recorder has written the last outcome, then are
                // cancelled, which ends their sleep at once (a 20 s sleep once held a SIGTERM
                // past the grace period).
                outer.addTask {
                    await withTaskGroup(of: Void.self) { upkeep in
                        upkeep.addTask { await self.renewLeases() }
                        upkeep.addTask { await self.sweepAbandonedSends() }
                        upkeep.addTask { await self.closeIdleClients() }
                        await recorder.run()
                        upkeep.cancelAll()
                    }
                }
                await withDiscardingTaskGroup { sends in
                    while !stopping.withLockedValue({ $0 }) && !Task.isCancelled {
                        let busy = inFlight.withLockedValue { $0 }
                        let free = settings.concurrency - busy.total
                        let allowance = busy.allowance(perEndpoint: settings.perEndpoint, perHost: settings.perHost)
                        waitingForSlots.withLockedValue { $0 = free <= 0 || allowance.values.contains { $0 <= 0 } }
                        // Nothing more is claimed while outcomes wait to be written: recording
                        // them wakes the worker.
                        guard free > 0 && !recorder.isFull else {
                            // A finished request or a recorded batch wakes it.
                            await wake.wait(upTo: settings.idleCheck)
                            continue
                        }
                        let claimed: [Due]
                        let lookedAt = Date()
                        do {
                            claimed = try await claim(limit: min(free, 100), allowance: allowance)
                        } catch {
                            logger.error("claiming deliveries failed; retrying", metadata: ["error": .string(MessageFailure.loggable(error))])
                            try? await Task.sleep(for: .milliseconds(500))
                            continue
                        }
                        if claimed.isEmpty {
                            // Nothing due: sleep until the next retry is due, or until woken.
                            let next = (try? await nextDue(after: lookedAt)) ?? nil
                            await wake.wait(upTo: min(next ?? settings.idleCheck, settings.idleCheck))
                            continue
                        }
                        held.withLockedValue { $0.formUnion(claimed.map(\.eventId)) }
                        // One query confirms every merchant's configuration for the batch, rather
                        // than one per delivery; a failure only means each send asks for itself.
                        try? await configuration.revalidate(Set(claimed.map(\.merchantId)))
                        for item in claimed {
                            let host = DeliveryInFlight.hostKey(item.storedURL)
                            inFlight.withLockedValue { $0.started(endpoint: item.endpointKey, host: host) }
                            sends.addTask {
                                let outcome = await self.deliver(item)
                                recorder.add(outcome)
                                self.inFlight.withLockedValue { $0.finished(endpoint: item.endpointKey, host: host) }
                                wake.signal()
                            }
                        }
                    }
                }
                // Every send has finished: record what they found, then stop the recorder.
                recorder.finish()
                await outer.waitForAll()
            }
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
            // An idle worker waits up to the idle check: it must see the stop now.
            wake.signal()
        }
        await clients.shutdown()
    }

    /// Extends the leases of everything this replica holds that has used a third of its lease,
    /// a third of a lease apart: each is extended with at least a third still to run, and a
    /// request that ends sooner (nearly all) is never written for its lease — a first attempt
    /// answered at once stays the row the fan-out wrote.
    func renewLeases() async {
        let every = Duration.seconds(max(1, settings.leaseSeconds / 3))
        while true {
            do { try await Task.sleep(for: every) } catch { return }
            let ids = Array(held.withLockedValue { $0 })
            guard !ids.isEmpty else { continue }
            do {
                // Rows locked in event_id order, as the recorder locks them: the two never deadlock.
                try await postgres.query("""
                    WITH locked AS (
                        SELECT event_id FROM webhooks.events WHERE event_id = ANY(\(ids)) AND lease_owner = \(owner)
                          AND lease_until < now() + make_interval(secs => \(settings.leaseSeconds * 2 / 3))
                        ORDER BY event_id FOR UPDATE
                    )
                    UPDATE webhooks.events e SET lease_until = now() + make_interval(secs => \(settings.leaseSeconds))
                    FROM locked WHERE e.event_id = locked.event_id
                    """, logger: logger)
            } catch {
                if Task.isCancelled { return }
                logger.warning("renewing delivery leases failed; retrying", metadata: ["error": .string(MessageFailure.loggable(error))])
            }
        }
    }

    /// Closes endpoint clients nobody used for a while, once a minute.
    func closeIdleClients() async {
        while true {
            do { try await Task.sleep(for: .seconds(60)) } catch { return }
            await clients.closeIdle(inUse: Set(inFlight.withLockedValue { $0.perEndpoint.keys }))
            let now = ContinuousClock.now
            answering.withLockedValue { $0 = $0.filter { now - $0.value < Self.answeringFor } }
        }
    }

    /// How long until the earliest pending delivery due after `lookedAt` (when the claim that
    /// found nothing began) is due; nil: none. Rows already due then that the claim did not take
    /// (an endpoint at its limit, an ordered object's later event) are left out: a finished
    /// request or a recorded outcome wakes the worker for them, so it never spins on them. A row
    /// that fell due between that claim and now counts as due at once: left to the idle check, it
    /// would wait up to 10 s.
    func nextDue(after lookedAt: Date) async throws -> Duration? {
        let rows = try await postgres.query("""
            SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8 FROM webhooks.events
            WHERE delivery_status = 'pending' AND next_attempt_at > \(lookedAt)
            """, logger: logger)
        // NULL (nothing waits) stays nil: GREATEST(NULL, 0) would be 0 in PostgreSQL, and an idle
        // worker would claim in a tight loop.
        for try await seconds in rows.decode(Double?.self) {
            return seconds.map { Duration.milliseconds(Int64((max(0, $0) * 1000).rounded(.up))) }
        }
        return nil
    }

    /// Takes up to `limit` due deliveries and leases them to this replica: for an endpoint with
    /// requests running now, at most its `allowance` more (its share of its endpoint and host
    /// limits); for any other, at most `perEndpoint`.
    func claim(limit: Int, allowance: [String: Int]) async throws -> [Due] {
        let saturated = allowance.filter { $0.value <= 0 }.map(\.key)
        let keys = Array(allowance.keys)
        let counts = keys.map { settings.perEndpoint - allowance[$0]! }
        // Rows of saturated endpoints are not even looked at, so a large backlog at one slow
        // endpoint cannot fill the scan and starve the others.
        //
        // The candidates are read in `events_due` order and the scan stops at the limit. Without
        // `enable_bitmapscan = off` the planner, whose statistics lag a table that grows by
        // thousands of rows a second (a burst, a backlog after an outage), reads every due row
        // and sorts them for each claim: a claim then costs in proportion to the backlog (3,432
        // rows and 2,232 buffers for 50 deliveries in `bench-webhooks` round 1), just when the
        // backlog is largest. SET LOCAL keeps the setting to this one statement's transaction.
        return try await postgres.withTransaction(logger: logger) { connection in
            try await connection.query("SET LOCAL enable_bitmapscan = off", logger: logger)
            return try await Self.decodeDue(try await connection.query("""
            WITH candidates AS (
                SELECT event_id, endpoint_key, next_attempt_at FROM webhooks.events c
                WHERE delivery_status = 'pending' AND next_attempt_at <= now()
                  AND (lease_until IS NULL OR lease_until < now())
                  AND NOT (endpoint_key = ANY(\(saturated)))
                  -- An ordered endpoint gets an object's next event only once every earlier one
                  -- has ended (delivered, or given up): a failing one holds back only its object.
                  AND (NOT c.ordered OR NOT EXISTS (
                      SELECT 1 FROM webhooks.events p
                      WHERE p.ordered AND p.delivery_status = 'pending' AND p.endpoint_key = c.endpoint_key
                        AND p.object_id = c.object_id AND p.seq < c.seq))
                ORDER BY next_attempt_at
                LIMIT \(limit * 4)
                FOR UPDATE SKIP LOCKED
            ), ranked AS (
                SELECT event_id, endpoint_key, next_attempt_at,
                       row_number() OVER (PARTITION BY endpoint_key ORDER BY next_attempt_at) AS rank
                FROM candidates
            ), chosen AS (
                SELECT r.event_id FROM ranked r
                LEFT JOIN unnest(\(keys)::text[], \(counts)::int[]) AS b(key, n) ON b.key = r.endpoint_key
                WHERE r.rank <= \(settings.perEndpoint) - COALESCE(b.n, 0)
                ORDER BY r.next_attempt_at
                LIMIT \(limit)
            )
            UPDATE webhooks.events e
            SET lease_owner = \(owner), lease_until = now() + make_interval(secs => \(settings.leaseSeconds))
            FROM chosen WHERE e.event_id = chosen.event_id
            RETURNING \(unescaped: Self.dueColumns)
            """, logger: logger))
        }
    }

    /// What a claim returns of each delivery (the endpoint's dispatcher-set state included).
    static let dueColumns = """
        e.event_id, e.merchant_id, e.profile_id, e.webhook_endpoint_id, e.endpoint_key, e.target_url,
        e.request_body, e.request_headers::text, e.attempt_count, e.status_reason,
        (SELECT h.disabled_at FROM webhooks.endpoint_health h WHERE h.endpoint_id = e.webhook_endpoint_id),
        (SELECT h.disabled_reason FROM webhooks.endpoint_health h WHERE h.endpoint_id = e.webhook_endpoint_id),
        e.trace_headers
        """

    static func decodeDue(_ rows: PostgresRowSequence) async throws -> [Due] {
        var due: [Due] = []
        for try await row in rows {
            let (eventId, merchantId, profileId, endpointId, endpointKey, url, body, headersText, attempts, reason, disabledAt, disabledReason, trace) =
                try row.decode((String, String, String?, String?, String, String, String, String, Int, String?, Date?, String?, String?).self)
            let headers = (try? PaywireJSON.decoder.decode([String: String].self, from: Data(headersText.utf8))) ?? [:]
            due.append(Due(eventId: eventId, merchantId: merchantId, profileId: profileId, endpointId: endpointId, endpointKey: endpointKey,
                           storedURL: url, body: body, headers: headers, attemptCount: attempts, statusReason: reason,
                           disabledAt: disabledAt, disabledReason: disabledReason, traceHeaders: TraceHeaders.decoded(trace)))
        }
        return due
    }

    /// What sending one delivery came to.
    enum Sent: Sendable {
        case sent(DeliveryOutcome.Attempt, DeliveryOutcome.Answer)
        /// No request: the endpoint is no longer a receiver; `reason` is what the status says.
        case gone(reason: String)
        /// No request: the configuration could not be read just now.
        case postponed
    }

    /// One automatic attempt: sent, then judged.
    func deliver(_ item: Due) async -> DeliveryOutcome {
        let kind = item.attemptCount == 0 ? "initial_attempt" : (item.statusReason == EventLog.recoverRequested ? "manual_retry" : "automatic_retry")
        switch await send(item, kind: kind) {
        case .postponed:
            return .postponed(eventId: item.eventId, seconds: 5)
        case .gone(let reason):
            if let endpointId = item.endpointId { answering.withLockedValue { _ = $0.removeValue(forKey: endpointId) } }
            Counter(label: "paywire_webhook_deliveries_total", dimensions: [("outcome", "cancelled")]).increment()
            return .cancelled(eventId: item.eventId, reason: reason)
        case .sent(let attempt, let answer):
            if let endpointId = item.endpointId {
                let now = ContinuousClock.now
                answering.withLockedValue { if answer.succeeded { $0[endpointId] = now } else { $0.removeValue(forKey: endpointId) } }
            }
            return decide(item, attempt: attempt, answer: answer)
        }
    }

    /// How long an endpoint's last 2xx answer lets its next deliveries start at fan-out.
    static let answeringFor = Duration.seconds(300)

    /// Of these new deliveries, the ones that may skip the queue, each with a slot taken now: to
    /// an endpoint (not a legacy URL) without per-object ordering, whose last request from this
    /// replica was answered 2xx, with a slot free under the replica's, the endpoint's and the
    /// host's limits. Every one is handed to `startFirstAttempts` after the fan-out's write.
    func reserveFirstAttempts(_ items: [Due], ordered: [Bool]) -> [Due] {
        guard settings.firstAttemptAtFanOut, !stopping.withLockedValue({ $0 }), !recorder.isFull else { return [] }
        let now = ContinuousClock.now
        var reserved: [Due] = []
        for (item, ordered) in zip(items, ordered) where !ordered {
            guard let endpointId = item.endpointId,
                  let last = answering.withLockedValue({ $0[endpointId] }), now - last < Self.answeringFor else { continue }
            let host = DeliveryInFlight.hostKey(item.storedURL)
            let taken = inFlight.withLockedValue { busy -> Bool in
                guard busy.total < settings.concurrency,
                      busy.allowance(perEndpoint: settings.perEndpoint, perHost: settings.perHost)[item.endpointKey] ?? settings.perEndpoint > 0
                else { return false }
                busy.started(endpoint: item.endpointKey, host: host)
                return true
            }
            if taken { reserved.append(item) }
        }
        return reserved
    }

    /// Sends the reserved deliveries whose rows the fan-out wrote (`written`), each outcome then
    /// recorded as a claimed delivery's is (a success appends its attempt and leaves the row as
    /// it is); gives back the slots of the others.
    func startFirstAttempts(_ reserved: [Due], written: Set<String>) {
        let sent = reserved.filter { written.contains($0.eventId) }
        held.withLockedValue { $0.formUnion(sent.map(\.eventId)) }
        for item in reserved {
            let host = DeliveryInFlight.hostKey(item.storedURL)
            guard written.contains(item.eventId) else {
                inFlight.withLockedValue { $0.finished(endpoint: item.endpointKey, host: host) }
                continue
            }
            Task { [inFlight, wake, recorder, waitingForSlots] in
                var outcome = await self.deliver(item)
                if case .attempted(var attempt, let answer, let next) = outcome {
                    attempt.rowSending = true
                    outcome = .attempted(attempt, answer, next: next)
                }
                recorder.add(outcome)
                inFlight.withLockedValue { $0.finished(endpoint: item.endpointKey, host: host) }
                if waitingForSlots.withLockedValue({ $0 }) { wake.signal() }
            }
        }
    }

    /// Puts back in the queue the `sending` deliveries whose replica died before their first
    /// attempt was recorded: lease run out, no attempt. One replica at a time looks (the sweep
    /// row is locked, others skip), over the leases that ran out since the last look and a lease
    /// before it (a row is visible only once its transaction commits, which takes far less).
    func sweepAbandonedSends() async {
        let every = Duration.seconds(max(1, settings.leaseSeconds / 3))
        while true {
            do { try await Task.sleep(for: every) } catch { return }
            do {
                let moved = try await postgres.withTransaction(logger: logger) { connection -> Int in
                    let rows = try await connection.query("""
                        WITH sweep AS (
                            SELECT swept_until FROM webhooks.sending_sweep WHERE id = 1 FOR UPDATE SKIP LOCKED
                        ), abandoned AS (
                            UPDATE webhooks.events e SET delivery_status = 'pending', lease_owner = NULL, lease_until = NULL, next_attempt_at = now()
                            FROM sweep
                            WHERE e.delivery_status = 'sending' AND e.lease_until < now()
                              AND e.lease_until >= sweep.swept_until - make_interval(secs => \(settings.leaseSeconds))
                              AND NOT EXISTS (SELECT 1 FROM webhooks.delivery_attempts a WHERE a.attempt_id = e.event_id)
                            RETURNING 1
                        ), advanced AS (
                            UPDATE webhooks.sending_sweep SET swept_until = now() FROM sweep WHERE id = 1 RETURNING 1
                        )
                        SELECT (SELECT count(*)::int FROM abandoned), (SELECT count(*)::int FROM advanced)
                        """, logger: logger)
                    for try await (count, _) in rows.decode((Int, Int).self) { return count }
                    return 0
                }
                if moved > 0 {
                    logger.warning("first attempts abandoned by a replica put back in the queue", metadata: ["count": .stringConvertible(moved)])
                    Counter(label: "paywire_webhook_abandoned_sends_total").increment(by: moved)
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("sweeping abandoned first attempts failed; retrying", metadata: ["error": .string(MessageFailure.loggable(error))])
            }
        }
    }

    /// One request: the endpoint as configured now (and as the dispatcher last judged it), its
    /// signatures, its rate limit, and the answer as it is kept in the log.
    func send(_ item: Due, kind: String) async -> Sent {
        let target: DeliveryTarget
        do {
            target = try await configuration.currentTarget(merchantId: item.merchantId, profileId: item.profileId, endpointId: item.endpointId, maxAge: Self.configurationMaxAge)
        } catch {
            return .postponed
        }
        var headers = item.headers
        let url: String
        switch target {
        case .gone(let reason):
            return .gone(reason: reason)
        case .legacy(let legacyURL):
            url = legacyURL
        case .endpoint(let endpointURL, let secrets, let modifiedAt, let rateLimit):
            if let disabledAt = item.disabledAt, let endpointId = item.endpointId {
                // Made inactive by the dispatcher; a change the merchant made to the endpoint
                // since then turns it back on.
                guard modifiedAt > disabledAt else { return .gone(reason: "endpoint_inactive") }
                await health.reactivate(endpointId: endpointId, disabledAt: disabledAt)
            }
            if let rateLimit, let endpointId = item.endpointId {
                await limiter.acquire(endpointId: endpointId, perSecond: rateLimit)
            }
            url = endpointURL
            // Standard Webhooks headers are signed at send time, so every retry carries a fresh
            // timestamp that receivers' replay windows accept; both secrets during a rotation.
            let timestamp = Int(Date().timeIntervalSince1970)
            headers["webhook-id"] = item.eventId
            headers["webhook-timestamp"] = String(timestamp)
            headers["webhook-signature"] = OutgoingWebhook.standardSignature(
                id: item.eventId, timestamp: timestamp, body: item.body, secrets: secrets.signing(at: Date(timeIntervalSince1970: TimeInterval(timestamp)))
            )
        }
        // The attempt keeps only the headers that differ from the delivery's stored ones (its
        // id, timestamp and signatures): the log shows the two merged.
        let attempt = DeliveryOutcome.Attempt(
            eventId: item.eventId, attemptId: kind == "initial_attempt" ? item.eventId : OutgoingWebhook.makeEventId(),
            kind: kind, requestHeaders: headers.filter { item.headers[$0.key] != $0.value }, endpointId: item.endpointId, merchantId: item.merchantId
        )
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: item.body))
        // Each attempt is a span of the event's trace: which endpoint, what it answered. Only the
        // host of the URL is recorded (a merchant's URL may carry a token in its query).
        return await withSpan("webhook delivery", context: TraceHeaders.context(from: item.traceHeaders), ofKind: .client) { span in
            span.attributes["paywire.webhook_endpoint_id"] = item.endpointId ?? "legacy"
            span.attributes["paywire.event_id"] = item.eventId
            span.attributes["paywire.delivery_attempt"] = kind
            span.attributes["server.address"] = URL(string: url)?.host
            let sent = await self.request(request, url: url, item: item, attempt: attempt)
            if case .sent(_, let answer) = sent {
                if let status = answer.status { span.attributes["http.response.status_code"] = status }
                if answer.status.map({ !(200..<300).contains($0) }) ?? true { span.setStatus(SpanStatus(code: .error, message: answer.error)) }
            }
            return sent
        }
    }

    /// The request itself, and its answer as the log keeps it.
    private func request(_ request: HTTPClientRequest, url: String, item: Due, attempt: DeliveryOutcome.Attempt) async -> Sent {
        let started = ContinuousClock.now
        var answer = DeliveryOutcome.Answer()
        do {
            let client = try await clients.client(for: url, endpointKey: item.endpointKey)
            let response = try await client.execute(request, timeout: .seconds(Int64(settings.requestTimeout.components.seconds)))
            // Whatever the endpoint answers is kept as text PostgreSQL can hold: capped, NUL and
            // invalid UTF-8 replaced, so one endpoint's odd answer can never fail the record.
            var body = ByteBuffer()
            for try await var chunk in response.body {
                let room = Self.storedResponseBytes - body.readableBytes
                guard room > 0 else { break }
                if let slice = chunk.readSlice(length: min(room, chunk.readableBytes)) { body.writeImmutableBuffer(slice) }
            }
            answer.status = Int(response.status.code)
            for header in response.headers { answer.headers[header.name.lowercased().storable] = header.value.storable }
            answer.body = String(decoding: body.readableBytesView, as: UTF8.self).storable
        } catch let blocked as WebhookHTTPClients.Blocked {
            answer.error = "refused by the private-network guard: \(blocked.description)"
        } catch {
            answer.error = OutgoingWebhook.describe(error).storable
        }
        let elapsed = ContinuousClock.now - started
        answer.latencyMilliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        latency.recordNanoseconds(Int64(answer.latencyMilliseconds) * 1_000_000)
        return .sent(attempt, answer)
    }

    /// What an answer means: 2xx delivered; 410 the endpoint is gone; 429 and 5xx wait as long as
    /// `Retry-After` asks (bounded) or the ladder says; anything else (3xx included) the ladder.
    func decide(_ item: Due, attempt: DeliveryOutcome.Attempt, answer: DeliveryOutcome.Answer) -> DeliveryOutcome {
        let attemptsMade = item.attemptCount + 1
        if let status = answer.status, (200..<300).contains(status) {
            Counter(label: "paywire_webhook_deliveries_total", dimensions: [("outcome", "delivered")]).increment()
            return .attempted(attempt, answer, next: .delivered)
        }
        Counter(label: "paywire_webhook_deliveries_total", dimensions: [("outcome", "failed")]).increment()
        if answer.status == 410 {
            return .attempted(attempt, answer, next: .ended(status: "cancelled", reason: "endpoint_gone"))
        }
        guard let scheduled = settings.schedule.delay(afterAttempts: attemptsMade) else {
            return .attempted(attempt, answer, next: .ended(status: "retries_exceeded", reason: nil))
        }
        var wait = scheduled
        if let status = answer.status, status == 429 || status >= 500,
           let asked = RetrySchedule.retryAfter(answer.headers["retry-after"]) {
            wait = asked
        }
        return .attempted(attempt, answer, next: .retry(afterSeconds: wait))
    }

    /// A configuration confirmed current this recently (at the claim, just before the send) is used
    /// as is: an endpoint change committed before the claim applies to the very next attempt.
    static let configurationMaxAge = Duration.seconds(1)

    /// How much of a response body the attempt log keeps.
    static let storedResponseBytes = 4096

}
