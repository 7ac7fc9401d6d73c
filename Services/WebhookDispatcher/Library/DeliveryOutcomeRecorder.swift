import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import PaywireModels
import PaywireStore
import PostgresNIO

/// What one pass over a claimed delivery found.
enum DeliveryOutcome: Sendable {
    /// A first attempt sent at fan-out that succeeded: its attempt row is its whole record.
    var leavesRowAsItIs: Bool {
        if case .attempted(let attempt, _, next: .delivered) = self { return attempt.rowSending }
        return false
    }

    var eventId: String {
        switch self {
        case .attempted(let attempt, _, _): return attempt.eventId
        case .cancelled(let eventId, _), .postponed(let eventId, _): return eventId
        }
    }

    struct Attempt: Sendable {
        var eventId: String
        var attemptId: String
        var kind: String
        var requestHeaders: [String: String]
        var endpointId: String?
        var merchantId: String
        /// The first attempt of a row the fan-out wrote `sending`: a success leaves the row as
        /// it is (its attempt row says it was delivered).
        var rowSending = false
    }

    struct Answer: Sendable {
        var status: Int?
        var headers: [String: String] = [:]
        var body: String?
        var error: String?
        var latencyMilliseconds = 0
        var succeeded: Bool { status.map { (200..<300).contains($0) } ?? false }
    }

    enum Next: Sendable {
        case delivered
        case retry(afterSeconds: Double)
        case ended(status: String, reason: String?)
    }

    /// A request was sent (or failed to be): an attempt row, and the delivery's next state.
    case attempted(Attempt, Answer, next: Next)
    /// The endpoint is gone (removed, deprecated, inactive): no attempt, the delivery ends.
    case cancelled(eventId: String, reason: String)
    /// Nothing was tried (configuration unreadable for the moment): try again after a while.
    case postponed(eventId: String, seconds: Double)
}

/// Records outcomes in batches: one statement writes every attempt row and moves every delivery
/// of the batch, so recording costs well under one commit per delivery under load, and no
/// delivery's record waits on another's request. A delivery whose lease passed to another replica
/// in the meantime is left to that replica (its attempt is still logged: it happened).
final class DeliveryOutcomeRecorder: Sendable {
    let postgres: PostgresClient
    let owner: String
    let logger: Logger
    let health: EndpointHealth
    private let pending = NIOLockedValueBox<[DeliveryOutcome]>([])
    /// Set by `add` and `finish`: the recorder sleeps until there is something to write.
    private let arrived = WakeSignal()
    /// Outcomes waiting past this many make the worker stop claiming (`isFull`) until the
    /// recorder catches up, so a database that cannot keep up never grows the queue without end.
    let capacity: Int
    private let finished = NIOLockedValueBox(false)
    private let stopped = NIOLockedValueBox(false)
    /// How long the recorder lets outcomes gather when only a few wait: one write then serves the
    /// deliveries of that moment (recording is bookkeeping; the requests have been sent, and their
    /// leases are held meanwhile). Short, because an outcome not yet written when the replica is
    /// killed is a request sent again.
    let linger: Duration
    /// Outcomes waiting from which the recorder writes at once.
    static let lingerBelow = 20
    /// Told which deliveries are recorded (their leases need no more renewing), and whether any
    /// of their rows changed (a first attempt's success changes none).
    let onRecorded: @Sendable (Set<String>, Bool) -> Void

    init(postgres: PostgresClient, owner: String, logger: Logger, health: EndpointHealth, capacity: Int = 5000, linger: Duration = .milliseconds(10),
         onRecorded: @escaping @Sendable (Set<String>, Bool) -> Void = { _, _ in }) {
        self.postgres = postgres
        self.capacity = capacity
        self.linger = linger
        self.owner = owner
        self.logger = logger
        self.health = health
        self.onRecorded = onRecorded
    }

    func add(_ outcome: DeliveryOutcome) {
        pending.withLockedValue { $0.append(outcome) }
        arrived.signal()
    }

    func finish() {
        finished.withLockedValue { $0 = true }
        arrived.signal()
    }

    /// True while the queue is at capacity: the worker claims nothing more until it is not.
    var isFull: Bool { pending.withLockedValue { $0.count } >= capacity }
    /// True once everything added before `finish()` is written.
    var isFinished: Bool { stopped.withLockedValue { $0 } }

    /// Writes what arrives until `finish()` and nothing is left (what arrives during a write is
    /// the next batch). A write that fails for the moment is retried with backoff (the outcomes
    /// stay queued; their leases keep the rows from others); one PostgreSQL refuses for its data
    /// is split until the refused outcome is found, which is recorded as unrecordable instead.
    func run() async {
        var delay = Duration.milliseconds(100)
        while true {
            let waiting = pending.withLockedValue { $0.count }
            if waiting > 0 && waiting < Self.lingerBelow && !finished.withLockedValue({ $0 }) {
                try? await Task.sleep(for: linger)
            }
            let batch = pending.withLockedValue { queue -> [DeliveryOutcome] in
                defer { queue.removeFirst(min(queue.count, Self.batchSize)) }
                return Array(queue.prefix(Self.batchSize))
            }
            if batch.isEmpty {
                if finished.withLockedValue({ $0 }) {
                    stopped.withLockedValue { $0 = true }
                    return
                }
                await arrived.wait(upTo: .seconds(60))
                continue
            }
            do {
                try await record(batch)
                onRecorded(Set(batch.map(\.eventId)), batch.contains { !$0.leavesRowAsItIs })
                delay = .milliseconds(100)
            } catch {
                logger.error("recording delivery outcomes failed; retrying", metadata: ["error": .string(MessageFailure.loggable(error)), "count": .stringConvertible(batch.count)])
                pending.withLockedValue { $0.insert(contentsOf: batch, at: 0) }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Writes a batch; throws only errors of the moment. A batch refused for anything else is
    /// halved and each half written, down to the one outcome refused: that delivery ends
    /// `cancelled` (`outcome_unrecordable`, logged with the error) rather than block every
    /// outcome queued behind it for good.
    func record(_ batch: [DeliveryOutcome]) async throws {
        do {
            try await write(batch)
        } catch {
            guard MessageFailure.classify(error) != .transient else { throw error }
            guard batch.count > 1 else {
                let eventId = batch[0].eventId
                logger.error("a delivery outcome could not be recorded; the delivery ends cancelled", metadata: [
                    "event_id": .string(eventId), "error": .string(MessageFailure.loggable(error)),
                ])
                Counter(label: "paywire_webhook_outcomes_unrecordable_total").increment()
                try await write([.cancelled(eventId: eventId, reason: Self.unrecordable)])
                return
            }
            let middle = batch.count / 2
            try await record(Array(batch[..<middle]))
            try await record(Array(batch[middle...]))
        }
    }

    static let unrecordable = "outcome_unrecordable"
    /// The most outcomes one write takes.
    static let batchSize = 500

    func write(_ batch: [DeliveryOutcome]) async throws {
        var attempts = AttemptColumns()
        var nextStatuses: [String] = [], delays: [Double] = [], reasons: [String] = []
        for outcome in batch {
            switch outcome {
            case .attempted(let attempt, let answer, let next):
                switch next {
                case .delivered:
                    // '' leaves a `sending` row as it is: appending its attempt is its record.
                    attempts.append(attempt, answer, notified: true); nextStatuses.append(outcome.leavesRowAsItIs ? "" : "delivered"); delays.append(-1); reasons.append("")
                case .retry(let seconds):
                    attempts.append(attempt, answer, notified: false); nextStatuses.append("pending"); delays.append(seconds); reasons.append("")
                case .ended(let status, let reason):
                    attempts.append(attempt, answer, notified: false); nextStatuses.append(status); delays.append(-1); reasons.append(reason ?? "")
                }
            case .cancelled(let eventId, let reason):
                attempts.appendNone(eventId: eventId)
                nextStatuses.append("cancelled"); delays.append(-1); reasons.append(reason)
            case .postponed(let eventId, let seconds):
                attempts.appendNone(eventId: eventId)
                nextStatuses.append("pending"); delays.append(seconds); reasons.append("")
            }
        }
        try await postgres.query("""
            WITH o AS (
                SELECT * FROM unnest(\(attempts.eventIds)::text[], \(attempts.attemptIds)::text[], \(attempts.kinds)::text[], \(attempts.statuses)::int[],
                                     \(attempts.responseHeaders)::text[], \(attempts.responseBodies)::text[], \(attempts.errors)::text[], \(attempts.notified)::bool[],
                                     \(attempts.latencies)::int[], \(nextStatuses)::text[], \(delays)::float8[], \(reasons)::text[], \(attempts.requestHeaders)::text[],
                                     \(attempts.endpointIds)::text[])
                    AS o(event_id, attempt_id, kind, status, response_headers, response_body, error, notified, latency_ms, next_status,
                         delay_seconds, reason, request_headers, endpoint_id)
            ), locked AS (
                -- Rows locked in event_id order, as lease renewal locks them: the two never deadlock.
                SELECT event_id FROM webhooks.events WHERE event_id IN (SELECT event_id FROM o WHERE next_status <> '') ORDER BY event_id FOR UPDATE
            ), attempts AS (
                INSERT INTO webhooks.delivery_attempts (attempt_id, event_id, delivery_attempt, response_status, response_headers,
                    response_body, error_message, is_webhook_notified, latency_ms, request_headers, webhook_endpoint_id)
                SELECT attempt_id, event_id, kind, NULLIF(status, -1), response_headers::jsonb, NULLIF(response_body, ''), NULLIF(error, ''),
                       notified, latency_ms, request_headers::jsonb, NULLIF(endpoint_id, '')
                FROM o WHERE attempt_id <> ''
                ON CONFLICT (attempt_id) DO NOTHING
            )
            UPDATE webhooks.events e
            SET delivery_status = o.next_status,
                attempt_count = e.attempt_count + CASE WHEN o.attempt_id = '' THEN 0 ELSE 1 END,
                next_attempt_at = CASE WHEN o.delay_seconds < 0 THEN e.next_attempt_at ELSE now() + make_interval(secs => o.delay_seconds) END,
                status_reason = NULLIF(o.reason, ''),
                lease_owner = NULL, lease_until = NULL
            FROM o JOIN locked ON locked.event_id = o.event_id WHERE e.event_id = o.event_id AND e.lease_owner = \(owner)
            """, logger: logger)
        // Health is advisory bookkeeping: written after the outcomes, and a failure here is
        // logged rather than holding the batch back.
        do {
            try await health.record(attempts.observations)
        } catch {
            logger.warning("recording endpoint health failed", metadata: ["error": .string(String(describing: error))])
        }
    }
}

/// Attempt rows as bound arrays ('' and -1 stand for NULL: array binds carry no optionals), and
/// what they tell of their endpoints' health.
struct AttemptColumns {
    var eventIds: [String] = [], attemptIds: [String] = [], kinds: [String] = [], statuses: [Int] = []
    var responseHeaders: [String] = [], responseBodies: [String] = [], errors: [String] = [], notified: [Bool] = []
    var latencies: [Int] = [], requestHeaders: [String] = [], endpointIds: [String] = []
    var observations: [EndpointHealth.Observation] = []

    /// PostgreSQL text holds no NUL character; a receiver's answer may.
    static func text(_ value: String) -> String { value.contains("\u{0}") ? value.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : value }
    static func json(_ map: [String: String]) -> String { text((try? PaywireJSON.text(map)) ?? "{}") }

    mutating func append(_ attempt: DeliveryOutcome.Attempt, _ answer: DeliveryOutcome.Answer, notified wasNotified: Bool) {
        eventIds.append(attempt.eventId)
        attemptIds.append(attempt.attemptId)
        kinds.append(attempt.kind)
        statuses.append(answer.status ?? -1)
        responseHeaders.append(Self.json(answer.headers))
        responseBodies.append(Self.text(answer.body ?? ""))
        errors.append(Self.text(answer.error ?? ""))
        notified.append(wasNotified)
        latencies.append(answer.latencyMilliseconds)
        requestHeaders.append(Self.json(attempt.requestHeaders))
        endpointIds.append(attempt.endpointId ?? "")
        if let endpointId = attempt.endpointId {
            observations.append(.init(endpointId: endpointId, merchantId: attempt.merchantId, succeeded: answer.succeeded, gone: answer.status == 410))
        }
    }

    /// A delivery of the batch that made no request (its state changes, no attempt is logged).
    mutating func appendNone(eventId: String) {
        eventIds.append(eventId); attemptIds.append(""); kinds.append(""); statuses.append(-1); responseHeaders.append("{}")
        responseBodies.append(""); errors.append(""); notified.append(false); latencies.append(0); requestHeaders.append("{}")
        endpointIds.append("")
    }
}
