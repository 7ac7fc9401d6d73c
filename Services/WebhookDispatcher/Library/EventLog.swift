import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// The events log merchants read (through the gateway): deliveries, every attempt with request and
/// response, manual retry and recover. Reads and writes only the dispatcher's own schema.
///
/// A delivery is one (event, endpoint) pair; its `event_id` is also the id of its first attempt,
/// and every later attempt points back at it with `initial_attempt_id`, as in Hyperswitch.
struct EventLog: Sendable {
    let postgres: PostgresClient
    let worker: DeliveryWorker
    let logger: Logger

    /// `status_reason` of a delivery that recover put back in the queue: its next attempt is a
    /// manual retry, not an automatic one.
    static let recoverRequested = "recover_requested"
    /// How far back recover reaches (as Svix).
    static let recoverWindowDays = 14
    static let eventClasses: Set<String> = ["payments", "refunds", "disputes", "mandates", "payouts"]

    struct Filter: Sendable {
        var createdAfter: Date?
        var createdBefore: Date?
        var objectId: String?
        var profileId: String?
        var eventTypes: [String] = []
        var eventClasses: [String] = []
        var isDelivered: Bool?
        var endpointId: String?
        var limit = 20
        var offset = 0
    }

    /// A row's state as the log shows it: a `sending` row (its first attempt sent by the
    /// replica that wrote it) is delivered once that attempt's row says so, pending until then.
    static let state = "webhooks.delivery_state(delivery_status, event_id)"

    static let deliveryColumns = """
        event_id, merchant_id, profile_id, webhook_endpoint_id, object_id, event_type, event_class, \(state),
        status_reason, webhooks.delivery_attempt_count(delivery_status, attempt_count, event_id),
        CASE WHEN \(state) = 'pending' THEN next_attempt_at END, created_at,
        NULLIF(split_part(trace_headers::jsonb ->> 'traceparent', '-', 2), '')
        """

    static func delivery(_ row: PostgresRow) throws -> [String: JSONValue] {
        let (eventId, merchantId, profileId, endpointId, objectId, eventType, eventClass, status, reason, attempts, nextAttempt, created, traceId) =
            try row.decode((String, String, String?, String?, String, String, String, String, String?, Int, Date?, Date, String?).self)
        return [
            "event_id": .string(eventId), "merchant_id": .string(merchantId), "profile_id": profileId.map(JSONValue.string) ?? .null,
            "webhook_endpoint_id": endpointId.map(JSONValue.string) ?? .null, "object_id": .string(objectId),
            "event_type": .string(eventType), "event_class": .string(eventClass),
            "is_delivery_successful": .bool(status == "delivered"), "initial_attempt_id": .string(eventId),
            "created": .string(PaywireJSON.format(created)),
            "delivery_status": .string(status), "status_reason": reason.map(JSONValue.string) ?? .null,
            "attempt_count": .number(Double(attempts)), "next_attempt_at": nextAttempt.map { .string(PaywireJSON.format($0)) } ?? .null,
            "trace_id": traceId.map(JSONValue.string) ?? .null,
        ]
    }

    /// `select` + the filter as bound parameters + `then` (both fixed text, never input).
    static func filtered(merchantId: String, _ filter: Filter, select: String, then: String) -> PostgresQuery {
        """
        \(unescaped: select)
        WHERE merchant_id = \(merchantId)
          AND (\(filter.createdAfter)::timestamptz IS NULL OR created_at >= \(filter.createdAfter))
          AND (\(filter.createdBefore)::timestamptz IS NULL OR created_at <= \(filter.createdBefore))
          AND (\(filter.objectId)::text IS NULL OR object_id = \(filter.objectId))
          AND (\(filter.profileId)::text IS NULL OR profile_id = \(filter.profileId))
          AND (cardinality(\(filter.eventTypes)::text[]) = 0 OR event_type = ANY(\(filter.eventTypes)::text[]))
          AND (cardinality(\(filter.eventClasses)::text[]) = 0 OR event_class = ANY(\(filter.eventClasses)::text[]))
          AND (\(filter.isDelivered)::bool IS NULL OR (\(unescaped: state) = 'delivered') = \(filter.isDelivered))
          AND (\(filter.endpointId)::text IS NULL OR webhook_endpoint_id = \(filter.endpointId))
        \(unescaped: then)
        """
    }

    func list(merchantId: String, filter: Filter) async throws -> JSONValue {
        let page = try await postgres.query(Self.filtered(merchantId: merchantId, filter, select: "SELECT \(Self.deliveryColumns) FROM webhooks.events",
                                                          then: "ORDER BY created_at DESC, event_id DESC LIMIT \(filter.limit) OFFSET \(filter.offset)"), logger: logger)
        var events: [JSONValue] = []
        for try await row in page { events.append(.object(try Self.delivery(row))) }
        let count = try await postgres.query(Self.filtered(merchantId: merchantId, filter, select: "SELECT count(*)::int FROM webhooks.events", then: ""), logger: logger)
        var total = 0
        for try await value in count.decode(Int.self) { total = value }
        return .object(["events": .array(events), "total_count": .number(Double(total))])
    }

    /// The delivery an id names: its own id, or the id of any of its attempts.
    func resolve(merchantId: String, id: String) async throws -> String {
        let rows = try await postgres.query("""
            SELECT e.event_id FROM webhooks.events e WHERE e.merchant_id = \(merchantId) AND e.event_id = \(id)
            UNION ALL
            SELECT e.event_id FROM webhooks.delivery_attempts a JOIN webhooks.events e ON e.event_id = a.event_id
            WHERE a.attempt_id = \(id) AND e.merchant_id = \(merchantId)
            LIMIT 1
            """, logger: logger)
        for try await eventId in rows.decode(String.self) { return eventId }
        throw APIError.notFound("Event")
    }

    func event(merchantId: String, id: String) async throws -> JSONValue {
        let eventId = try await resolve(merchantId: merchantId, id: id)
        let rows = try await postgres.query("""
            SELECT \(unescaped: Self.deliveryColumns), request_body, request_headers::text FROM webhooks.events WHERE event_id = \(eventId)
            """, logger: logger)
        for try await row in rows {
            var delivery = try Self.delivery(row)
            let columns = row.makeRandomAccess()
            let body = try columns[13].decode(String.self)
            let headers = try columns[14].decode(String.self)
            let request: [String: JSONValue] = ["body": .string(body), "headers": Self.headerPairs(headers, maskingMerchantValues: true)]
            delivery["request"] = .object(request)
            return .object(delivery)
        }
        throw APIError.notFound("Event")
    }

    /// Headers as `[[name, value], …]`, sorted by name, as Hyperswitch shows them. In what Paywire
    /// sent, every header but its own carries the merchant's `outgoing_webhook_custom_http_headers`
    /// value (often a bearer token or a cookie): the receiver gets it, the log shows `***`, as the
    /// profile's answers do.
    static func headerPairs(_ json: String?, maskingMerchantValues: Bool = false) -> JSONValue {
        guard let json, let map = try? PaywireJSON.decoder.decode([String: String].self, from: Data(json.utf8)) else { return .array([]) }
        return .array(map.sorted { $0.key.lowercased() < $1.key.lowercased() }.map { name, value in
            let shown = maskingMerchantValues && !OutgoingWebhook.ownHeaders.contains(name.lowercased()) ? "***" : value
            return .array([.string(name), .string(shown)])
        })
    }

    static let attemptColumns = """
        a.attempt_id, e.merchant_id, e.profile_id, e.webhook_endpoint_id, e.object_id, e.event_type, e.event_class,
        a.is_webhook_notified, e.event_id, a.attempted_at, e.request_body, (e.request_headers || COALESCE(a.request_headers, '{}'))::text, a.response_body,
        a.response_headers::text, a.response_status, a.error_message, a.delivery_attempt, a.latency_ms
        """

    /// One attempt in the seed's shape.
    static func attempt(_ row: PostgresRow) throws -> JSONValue {
        let columns = row.makeRandomAccess()
        func text(_ index: Int) throws -> String? { try columns[index].decode(String?.self) }
        let endpointId = try text(3)
        let profileId = try text(2)
        let status = try columns[14].decode(Int?.self)
        let latency = try columns[17].decode(Int?.self)
        return .object([
            "event_id": .string(try columns[0].decode(String.self)),
            "merchant_id": .string(try columns[1].decode(String.self)),
            "profile_id": profileId.map(JSONValue.string) ?? .null,
            "webhook_endpoint_id": endpointId.map(JSONValue.string) ?? .null,
            "object_id": .string(try columns[4].decode(String.self)),
            "event_type": .string(try columns[5].decode(String.self)),
            "event_class": .string(try columns[6].decode(String.self)),
            "is_delivery_successful": .bool(try columns[7].decode(Bool.self)),
            "initial_attempt_id": .string(try columns[8].decode(String.self)),
            "created": .string(PaywireJSON.format(try columns[9].decode(Date.self))),
            "request": .object(["body": .string(try columns[10].decode(String.self)), "headers": headerPairs(try text(11), maskingMerchantValues: true)]),
            "response": .object([
                "body": try text(12).map(JSONValue.string) ?? .null,
                "headers": headerPairs(try text(13)),
                "status_code": status.map { .number(Double($0)) } ?? .null,
                // Attempts recorded before errors were cleaned of build paths are cleaned here.
                "error_message": try text(15).map { .string(OutgoingWebhook.describe(text: $0)) } ?? .null,
                "latency_ms": latency.map { .number(Double($0)) } ?? .null,
            ]),
            "delivery_attempt": .string(try columns[16].decode(String.self)),
        ])
    }

    /// Every attempt of a delivery, newest first.
    func attempts(merchantId: String, id: String) async throws -> JSONValue {
        let eventId = try await resolve(merchantId: merchantId, id: id)
        let rows = try await postgres.query("""
            SELECT \(unescaped: Self.attemptColumns) FROM webhooks.delivery_attempts a JOIN webhooks.events e ON e.event_id = a.event_id
            WHERE a.event_id = \(eventId) ORDER BY a.attempted_at DESC, a.attempt_id DESC
            """, logger: logger)
        var attempts: [JSONValue] = []
        for try await row in rows { attempts.append(try Self.attempt(row)) }
        return .array(attempts)
    }

    /// What a manual retry answers: the new attempt (200) when it ended within the answer time,
    /// otherwise 202 with the delivery's id while the attempt goes on.
    struct RetryAnswer: Sendable {
        var finished: Bool
        var body: JSONValue
    }

    /// Sends a delivery again now, whatever its state. The delivery is leased for the request
    /// like any claim (so no automatic attempt runs beside it), no transaction is open while it is
    /// sent, and the outcome is recorded after: a success marks the delivery delivered; a failure
    /// leaves its state and schedule as they were. The caller waits at most `answerWithin` (a
    /// slow endpoint must not hold the merchant's request, nor a proxy's, for the whole request
    /// timeout): then it is told the attempt is under way, and the attempt still ends and is
    /// recorded, seen with `GET …/attempts`.
    func retry(merchantId: String, id: String, answerWithin: Duration) async throws -> RetryAnswer {
        let eventId = try await resolve(merchantId: merchantId, id: id)
        let owner = "manual-" + UUID().uuidString.lowercased().prefix(12)
        let rows = try await postgres.query("""
            UPDATE webhooks.events e
            SET lease_owner = \(owner), lease_until = now() + make_interval(secs => \(worker.settings.leaseSeconds))
            WHERE e.event_id = \(eventId)
              AND (e.lease_until IS NULL OR e.lease_until < now()
                   -- A first attempt sent at fan-out and recorded delivered: its replica is done with it.
                   OR (e.delivery_status = 'sending' AND webhooks.delivery_state(e.delivery_status, e.event_id) = 'delivered'))
            RETURNING \(unescaped: DeliveryWorker.dueColumns)
            """, logger: logger)
        guard let item = try await DeliveryWorker.decodeDue(rows).first else {
            throw APIError(status: .conflict, type: "invalid_request", code: "WE_04", message: "An attempt of this event is being sent right now; try again in a few seconds", field: "event_id")
        }
        // The attempt runs in a task of its own: it is not cut short when the caller goes away
        // or stops waiting, so its lease is always given back and its outcome always recorded.
        let (outcomes, sink) = AsyncStream.makeStream(of: Result<JSONValue, any Error>.self, bufferingPolicy: .bufferingNewest(1))
        Task {
            do {
                sink.yield(.success(try await sendClaimed(item, eventId: eventId, owner: owner, merchantId: merchantId)))
            } catch {
                sink.yield(.failure(error))
            }
            sink.finish()
        }
        let outcome = try? await withTimeout(answerWithin) { () async throws -> Result<JSONValue, any Error> in
            var waiting = outcomes.makeAsyncIterator()
            guard let outcome = await waiting.next() else { throw CancellationError() }
            return outcome
        }
        guard let outcome else {
            return RetryAnswer(finished: false, body: .object([
                "event_id": .string(eventId), "status": .string("sending"),
                "message": .string("The endpoint has not answered yet; the attempt goes on and is recorded in the delivery's attempts"),
            ]))
        }
        return RetryAnswer(finished: true, body: try outcome.get())
    }

    /// The manual attempt of a delivery leased to `owner`: sent, recorded, the lease given back.
    private func sendClaimed(_ item: DeliveryWorker.Due, eventId: String, owner: String, merchantId: String) async throws -> JSONValue {
        let sent = await worker.send(item, kind: "manual_retry")
        guard case .sent(let attempt, let answer) = sent else {
            try await postgres.query("UPDATE webhooks.events SET lease_owner = NULL, lease_until = NULL WHERE event_id = \(eventId) AND lease_owner = \(owner)", logger: logger)
            if case .gone(let reason) = sent {
                throw APIError(status: .conflict, type: "invalid_request", code: "WE_05", message: "The event's endpoint takes no deliveries (\(reason)); nothing was sent", field: "webhook_endpoint_id")
            }
            throw APIError.unavailable("The webhook configuration could not be read; retry later")
        }
        let headers = try PaywireJSON.text(attempt.requestHeaders)
        let responseHeaders = try PaywireJSON.text(answer.headers)
        try await postgres.query("""
            WITH attempt AS (
                INSERT INTO webhooks.delivery_attempts (attempt_id, event_id, delivery_attempt, response_status, response_headers,
                    response_body, error_message, is_webhook_notified, latency_ms, request_headers, webhook_endpoint_id)
                VALUES (\(attempt.attemptId), \(eventId), 'manual_retry', \(answer.status), \(responseHeaders)::jsonb, \(answer.body),
                        \(answer.error), \(answer.succeeded), \(answer.latencyMilliseconds), \(headers)::jsonb, \(attempt.endpointId))
            )
            UPDATE webhooks.events
            SET attempt_count = webhooks.delivery_attempt_count(delivery_status, attempt_count, event_id) + 1,
                -- A `sending` row takes the state its first attempt gave it (pending: due now).
                delivery_status = CASE WHEN \(answer.succeeded) THEN 'delivered' WHEN delivery_status = 'sending' THEN webhooks.delivery_state(delivery_status, event_id)
                                       ELSE delivery_status END,
                status_reason = CASE WHEN \(answer.succeeded) THEN NULL ELSE status_reason END,
                lease_owner = NULL, lease_until = NULL
            WHERE event_id = \(eventId) AND lease_owner = \(owner)
            """, logger: logger)
        if let endpointId = attempt.endpointId {
            try? await worker.health.record([.init(endpointId: endpointId, merchantId: merchantId, succeeded: answer.succeeded, gone: answer.status == 410)])
        }
        let answerRows = try await postgres.query("""
            SELECT \(unescaped: Self.attemptColumns) FROM webhooks.delivery_attempts a JOIN webhooks.events e ON e.event_id = a.event_id
            WHERE a.attempt_id = \(attempt.attemptId)
            """, logger: logger)
        for try await row in answerRows { return try Self.attempt(row) }
        throw APIError.notFound("Event")
    }

    /// Puts every failed delivery of an endpoint or a profile since `since` back in the queue;
    /// each gets one more attempt (a manual retry). Answers how many were scheduled.
    func recover(merchantId: String, since: Date, until: Date?, endpointId: String?, profileId: String?) async throws -> Int {
        let rows = try await postgres.query("""
            UPDATE webhooks.events
            SET delivery_status = 'pending', status_reason = \(Self.recoverRequested), next_attempt_at = now()
            WHERE merchant_id = \(merchantId) AND created_at >= \(since) AND (\(until)::timestamptz IS NULL OR created_at <= \(until))
              AND (\(endpointId)::text IS NULL OR webhook_endpoint_id = \(endpointId))
              AND (\(profileId)::text IS NULL OR profile_id = \(profileId))
              AND (delivery_status = 'retries_exceeded'
                   OR (delivery_status = 'cancelled' AND status_reason IN ('endpoint_gone', 'endpoint_inactive')))
            RETURNING 1
            """, logger: logger)
        var count = 0
        for try await _ in rows { count += 1 }
        logger.info("failed deliveries recovered", metadata: ["merchant_id": .string(merchantId), "scheduled": .stringConvertible(count)])
        return count
    }
}
