import Foundation
import Logging
import NIOConcurrencyHelpers
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Turns one payment event into one delivery per subscribed endpoint. Rows are written before
/// the message's offset is stored, so a crash between the two loses nothing. Events arriving
/// together (keys are handled concurrently, each in order) are written together by
/// `FanOutBatcher`: one transaction for the lot.
///
/// With a worker, a delivery to an endpoint that is answering skips the queue: its row is written
/// `sending`, leased to this replica, and its first attempt starts as soon as the transaction
/// commits — only for rows this transaction wrote, so a message handled again sends nothing
/// again. When that attempt succeeds the row is not written again: its attempt row says it was
/// delivered. Everything else is written `pending`, and the worker claims and sends it.
public struct EventFanOut: Sendable {
    let postgres: PostgresClient
    let configuration: ConfigurationRepository
    let logger: Logger
    let processed = ProcessedMessages(schema: WebhooksSchema.name, consumer: "payment-events")
    let batcher: FanOutBatcher
    /// How long one event waits for its merchant's configuration version before the message is
    /// tried again (a transient fault).
    let configurationWait: Duration
    /// Sends first attempts of new rows at once (nil: the worker claims and sends every row).
    let worker: DeliveryWorker?

    public init(postgres: PostgresClient, configuration: ConfigurationRepository, logger: Logger, configurationWait: Duration = .seconds(10), worker: DeliveryWorker? = nil) {
        self.postgres = postgres
        self.worker = worker
        self.configurationWait = configurationWait
        self.logger = logger
        self.configuration = configuration
        batcher = FanOutBatcher()
    }

    /// An event ready to be written: its envelope and the object it is about.
    struct Incoming: Sendable {
        var envelope: RawEventEnvelope
        var objectId: String
        /// Its deliveries, when worked out before the batch (nil: the batch works them out).
        var rows: [Row]?
        /// Deliveries whose first attempt this replica sends at once: written `sending`, leased.
        var sending: Set<String> = []
        /// Filled by the batch: the ids of the rows it wrote (a row already there is not).
        let written = NIOLockedValueBox<Set<String>>([])
        /// The trace the event came in (its consumer span): each delivery's attempts join it. Taken
        /// here, in the event's own task, since the batch is written from whichever task runs it.
        var trace = TraceHeaders.encoded(TraceHeaders.current()) ?? ""
    }

    public func handle(_ message: KafkaConsumerMessage) async throws {
        // The payload is passed on as the text it came in, never decoded (`RawEventEnvelope`).
        let envelope = try RawEventEnvelope.decode(message.value)
        // A refund or dispute event names its refund or dispute: a payment may have several, and
        // each one's event must get its own delivery row (the idempotent id is per object and
        // event type).
        let idField = envelope.type.hasPrefix("refund_") ? "refund_id" : envelope.type.hasPrefix("dispute_") ? "dispute_id" : "payment_id"
        guard let objectId = envelope.payloadStrings[idField] else {
            throw PermanentMessageError("event \(envelope.type) carries no \(idField)", category: "invalid")
        }
        // A recovery job's retries are payments of their own; the merchant hears only the job's
        // one final event (on the recovery events topic), not one per retry.
        if RecoveryIdentifiers.isRecoveryAttempt(objectId) { return }
        // An event made under a configuration version is fanned out only once this service's
        // copy has that version: an endpoint created before the payment receives its events.
        // Waited for here, per key and concurrently, so a merchant whose copy lags waits alone
        // and every other merchant's events are written meanwhile.
        try await configuration.waitFor(merchantId: envelope.merchantId, version: envelope.configurationVersion ?? 0, timeout: configurationWait)
        guard let worker, worker.settings.firstAttemptAtFanOut else {
            try await batcher.write(Incoming(envelope: envelope, objectId: objectId)) { batch in try await write(batch) }
            return
        }
        let trace = TraceHeaders.encoded(TraceHeaders.current()) ?? ""
        let rows = try await rows(for: envelope, objectId: objectId, trace: trace)
        // Slots taken now, under the replica's, the endpoint's and the host's limits; given back
        // for any row the batch does not write.
        let reserved = worker.reserveFirstAttempts(rows.map(\.due), ordered: rows.map(\.ordered))
        let incoming = Incoming(envelope: envelope, objectId: objectId, rows: rows, sending: Set(reserved.map(\.eventId)), trace: trace)
        do {
            try await batcher.write(incoming) { batch in try await write(batch) }
        } catch {
            worker.startFirstAttempts(reserved, written: [])
            throw error
        }
        worker.startFirstAttempts(reserved, written: incoming.written.withLockedValue { $0 })
    }

    /// The event's deliveries under the merchant's configuration: the version the event was made
    /// under or a later one, confirmed current within the last second.
    func rows(for envelope: RawEventEnvelope, objectId: String, trace: String) async throws -> [Row] {
        let targets = try await configuration.webhookTargets(merchantId: envelope.merchantId, profileId: envelope.profileId, eventType: envelope.type,
                                                             maxAge: .seconds(1), minimumVersion: envelope.configurationVersion ?? 0)
        return try targets.map { try row(envelope, objectId: objectId, target: $0, trace: trace) }
    }

    /// One delivery row, as bound arrays take it.
    struct Row: Sendable {
        var eventId, idempotentId, merchantId, profileId, endpointId, objectId, eventType, eventClass, url, body, headers: String
        var ordered: Bool
        var messageId: String
        var headerMap: [String: String]
        /// The event's trace headers as stored (JSON; empty: none).
        var trace: String

        /// The delivery as the worker sends it.
        var due: DeliveryWorker.Due {
            DeliveryWorker.Due(eventId: eventId, merchantId: merchantId, profileId: profileId.isEmpty ? nil : profileId, endpointId: endpointId.isEmpty ? nil : endpointId,
                               endpointKey: endpointId.isEmpty ? "legacy:" + (profileId.isEmpty ? merchantId : profileId) : endpointId,
                               storedURL: url, body: body, headers: headerMap, attemptCount: 0, statusReason: nil, traceHeaders: TraceHeaders.decoded(trace))
        }
    }



    /// Writes a batch of events whose merchants' copies are current: the configurations of those
    /// whose deliveries are not worked out yet confirmed in one query, then one transaction that
    /// records the message ids and inserts the deliveries of those not seen before (the ones
    /// sent at once `sending`, leased to this replica), telling each event which rows it wrote.
    func write(_ batch: [Incoming]) async throws {
        let unplanned = Set(batch.filter { $0.rows == nil }.map(\.envelope.merchantId))
        if !unplanned.isEmpty { try await configuration.revalidate(unplanned) }
        var rows: [Row] = []
        var sending: Set<String> = []
        for item in batch {
            if let planned = item.rows { rows += planned } else { rows += try await self.rows(for: item.envelope, objectId: item.objectId, trace: item.trace) }
            sending.formUnion(item.sending)
        }
        let ids = batch.map(\.envelope.id)
        let owner = worker?.owner ?? ""
        let leaseSeconds = worker?.settings.leaseSeconds ?? 0
        let written = try await postgres.withTransaction(logger: logger) { connection -> Set<String> in
            let new = try await processed.recordNew(ids, on: connection, logger: logger)
            let fresh = rows.filter { new.contains($0.messageId) }
            guard !fresh.isEmpty else { return [] }
            func column(_ path: KeyPath<Row, String>) -> [String] { fresh.map { $0[keyPath: path] } }
            // Array order is insertion order, so `seq` follows the order events were handled.
            let inserted = try await connection.query("""
                INSERT INTO webhooks.events (event_id, idempotent_event_id, merchant_id, profile_id, webhook_endpoint_id,
                    object_id, event_type, event_class, target_url, request_body, request_headers, ordered,
                    delivery_status, lease_owner, lease_until, trace_headers)
                SELECT event_id, idempotent_id, merchant_id, NULLIF(profile_id, ''), NULLIF(endpoint_id, ''), object_id, event_type, event_class,
                       url, body, headers::jsonb, ordered, CASE WHEN sending THEN 'sending' ELSE 'pending' END,
                       CASE WHEN sending THEN \(owner) END, CASE WHEN sending THEN now() + make_interval(secs => \(leaseSeconds)) END, NULLIF(trace, '')
                FROM unnest(\(column(\.eventId))::text[], \(column(\.idempotentId))::text[], \(column(\.merchantId))::text[], \(column(\.profileId))::text[],
                            \(column(\.endpointId))::text[], \(column(\.objectId))::text[], \(column(\.eventType))::text[], \(column(\.eventClass))::text[],
                            \(column(\.url))::text[], \(column(\.body))::text[], \(column(\.headers))::text[], \(fresh.map(\.ordered))::bool[],
                            \(fresh.map { sending.contains($0.eventId) })::bool[], \(column(\.trace))::text[])
                    WITH ORDINALITY AS r(event_id, idempotent_id, merchant_id, profile_id, endpoint_id, object_id, event_type, event_class, url, body, headers, ordered,
                                         sending, trace, n)
                ORDER BY n
                ON CONFLICT (idempotent_event_id) DO NOTHING
                RETURNING event_id
                """, logger: logger)
            var written: Set<String> = []
            for try await eventId in inserted.decode(String.self) { written.insert(eventId) }
            return written
        }
        for item in batch where !item.sending.isEmpty {
            item.written.withLockedValue { $0 = written.intersection(item.sending) }
        }
    }

    func row(_ envelope: RawEventEnvelope, objectId: String, target: WebhookTarget, trace: String) throws -> Row {
        let idempotentId = OutgoingWebhook.idempotentEventId(objectId: objectId, eventType: envelope.type, endpointId: target.endpointId)
        let eventId = OutgoingWebhook.makeEventId()
        let body = OutgoingWebhook.body(merchantId: envelope.merchantId, eventId: eventId, eventType: envelope.type, objectJSON: envelope.payloadJSON, timestamp: envelope.occurredAt)
        // The merchant's own headers first, so they can never replace ours.
        var headers: [String: JSONValue] = [:]
        for (name, value) in target.customHeaders {
            // The gateway refuses such headers; a stored copy that breaks the rules is
            // dropped here rather than stop this delivery or sit beside our signatures.
            if let problem = CustomWebhookHeaders.problem(name: name, value: value) {
                logger.warning("custom webhook header dropped", metadata: ["merchant_id": .string(envelope.merchantId), "header": .string(OutgoingWebhook.printable(name)), "problem": .string(problem)])
                continue
            }
            headers[name] = .string(value)
        }
        headers["Content-Type"] = .string("application/json")
        headers["User-Agent"] = .string(OutgoingWebhook.userAgent)
        if let key = target.hashKey {
            headers[OutgoingWebhook.signatureHeader] = .string(OutgoingWebhook.signature(body: body, key: key))
        }
        return Row(
            eventId: eventId, idempotentId: idempotentId,
            merchantId: envelope.merchantId, profileId: envelope.profileId ?? "", endpointId: target.endpointId ?? "", objectId: objectId,
            eventType: envelope.type, eventClass: OutgoingWebhook.eventClass(forEventType: envelope.type), url: target.url, body: body,
            headers: try PaywireJSON.text(JSONValue.object(headers)), ordered: target.ordered,
            messageId: envelope.id, headerMap: headers.compactMapValues(\.stringValue), trace: trace
        )
    }
}
