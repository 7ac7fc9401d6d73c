import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Turns one payment event into one pending delivery per subscribed endpoint. Rows are written
/// before the message's offset is stored; the delivery worker sends them, so a crash between the
/// two loses nothing. Events arriving together (keys are handled concurrently, each in order) are
/// written together by `FanOutBatcher`: one configuration check and one transaction for the lot.
public struct EventFanOut: Sendable {
    let postgres: PostgresClient
    let configuration: ConfigurationRepository
    let logger: Logger
    let processed = ProcessedMessages(schema: WebhooksSchema.name, consumer: "payment-events")
    let batcher: FanOutBatcher
    /// How long one event waits for its merchant's configuration version before the message is
    /// tried again (a transient fault).
    let configurationWait: Duration

    public init(postgres: PostgresClient, configuration: ConfigurationRepository, logger: Logger, configurationWait: Duration = .seconds(10)) {
        self.postgres = postgres
        self.configurationWait = configurationWait
        self.logger = logger
        self.configuration = configuration
        batcher = FanOutBatcher()
    }

    /// An event ready to be written: its envelope and the object it is about.
    struct Incoming: Sendable {
        var envelope: EventEnvelope
        var objectId: String
    }

    public func handle(_ message: KafkaConsumerMessage) async throws {
        let envelope = try EventEnvelope.decode(message.value)
        // A refund or dispute event names its refund or dispute: a payment may have several, and
        // each one's event must get its own delivery row (the idempotent id is per object and
        // event type).
        let idField = envelope.type.hasPrefix("refund_") ? "refund_id" : envelope.type.hasPrefix("dispute_") ? "dispute_id" : "payment_id"
        guard let objectId = envelope.payload[idField]?.stringValue else {
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
        try await batcher.write(Incoming(envelope: envelope, objectId: objectId)) { batch in try await write(batch) }
    }

    /// One delivery row, as bound arrays take it.
    struct Row {
        var eventId, idempotentId, merchantId, profileId, endpointId, objectId, eventType, eventClass, url, body, headers: String
        var ordered: Bool
        var messageId: String
    }

    /// Writes a batch of events whose merchants' copies are current: the configurations confirmed
    /// in one query, then one transaction that records the message ids and inserts the deliveries
    /// of those not seen before.
    func write(_ batch: [Incoming]) async throws {
        try await configuration.revalidate(Set(batch.map(\.envelope.merchantId)))
        var rows: [Row] = []
        for item in batch {
            let envelope = item.envelope
            let targets = try await configuration.webhookTargets(merchantId: envelope.merchantId, profileId: envelope.profileId, eventType: envelope.type, maxAge: .seconds(1))
            for target in targets { rows.append(try row(envelope, objectId: item.objectId, target: target)) }
        }
        let ids = batch.map(\.envelope.id)
        try await postgres.withTransaction(logger: logger) { connection in
            let new = try await processed.recordNew(ids, on: connection, logger: logger)
            let fresh = rows.filter { new.contains($0.messageId) }
            guard !fresh.isEmpty else { return }
            func column(_ path: KeyPath<Row, String>) -> [String] { fresh.map { $0[keyPath: path] } }
            // Array order is insertion order, so `seq` follows the order events were handled.
            try await connection.query("""
                INSERT INTO webhooks.events (event_id, idempotent_event_id, merchant_id, profile_id, webhook_endpoint_id,
                    object_id, event_type, event_class, target_url, request_body, request_headers, ordered)
                SELECT event_id, idempotent_id, merchant_id, NULLIF(profile_id, ''), NULLIF(endpoint_id, ''), object_id, event_type, event_class,
                       url, body, headers::jsonb, ordered
                FROM unnest(\(column(\.eventId))::text[], \(column(\.idempotentId))::text[], \(column(\.merchantId))::text[], \(column(\.profileId))::text[],
                            \(column(\.endpointId))::text[], \(column(\.objectId))::text[], \(column(\.eventType))::text[], \(column(\.eventClass))::text[],
                            \(column(\.url))::text[], \(column(\.body))::text[], \(column(\.headers))::text[], \(fresh.map(\.ordered))::bool[])
                    WITH ORDINALITY AS r(event_id, idempotent_id, merchant_id, profile_id, endpoint_id, object_id, event_type, event_class, url, body, headers, ordered, n)
                ORDER BY n
                ON CONFLICT (idempotent_event_id) DO NOTHING
                """, logger: logger)
        }
    }

    func row(_ envelope: EventEnvelope, objectId: String, target: WebhookTarget) throws -> Row {
        let eventId = OutgoingWebhook.makeEventId()
        let body = try OutgoingWebhook.body(merchantId: envelope.merchantId, eventId: eventId, eventType: envelope.type, object: envelope.payload, timestamp: envelope.occurredAt)
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
            eventId: eventId, idempotentId: OutgoingWebhook.idempotentEventId(objectId: objectId, eventType: envelope.type, endpointId: target.endpointId),
            merchantId: envelope.merchantId, profileId: envelope.profileId ?? "", endpointId: target.endpointId ?? "", objectId: objectId,
            eventType: envelope.type, eventClass: OutgoingWebhook.eventClass(forEventType: envelope.type), url: target.url, body: body,
            headers: try PaywireJSON.text(JSONValue.object(headers)), ordered: target.ordered,
            messageId: envelope.id
        )
    }
}
