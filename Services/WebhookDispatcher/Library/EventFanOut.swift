import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Turns one payment event into one pending delivery per subscribed endpoint. Rows are written in
/// the consumer's transaction; the delivery worker sends them, so a crash between the two loses
/// nothing.
public struct EventFanOut: Sendable {
    let postgres: PostgresClient
    let configuration: ConfigurationRepository
    let logger: Logger
    let processed = ProcessedMessages(schema: WebhooksSchema.name, consumer: "payment-events")

    public init(postgres: PostgresClient, configuration: ConfigurationRepository, logger: Logger) {
        self.postgres = postgres
        self.logger = logger
        self.configuration = configuration
    }

    public func handle(_ message: KafkaConsumerMessage) async throws {
        let envelope = try EventEnvelope.decode(message.value)
        // A refund event names its refund: a payment may have several refunds, and each one's
        // event must get its own delivery row (the idempotent id is per object and event type).
        let idField = envelope.type.hasPrefix("refund_") ? "refund_id" : "payment_id"
        guard let objectId = envelope.payload[idField]?.stringValue else {
            throw PermanentMessageError("event \(envelope.type) carries no \(idField)", category: "invalid")
        }
        let targets = try await configuration.webhookTargets(merchantId: envelope.merchantId, profileId: envelope.profileId, eventType: envelope.type)
        try await processed.processOnce(messageID: envelope.id, client: postgres, logger: logger) { connection in
            for target in targets {
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
                let headersJSON = String(decoding: try PaywireJSON.encoder.encode(JSONValue.object(headers)), as: UTF8.self)
                let idempotentId = OutgoingWebhook.idempotentEventId(objectId: objectId, eventType: envelope.type, endpointId: target.endpointId)
                try await connection.query("""
                    INSERT INTO webhooks.events (event_id, idempotent_event_id, merchant_id, profile_id, webhook_endpoint_id,
                        object_id, event_type, event_class, target_url, request_body, request_headers)
                    VALUES (\(eventId), \(idempotentId), \(envelope.merchantId), \(envelope.profileId), \(target.endpointId),
                        \(objectId), \(envelope.type), \(OutgoingWebhook.eventClass(forEventType: envelope.type)), \(target.url), \(body), \(headersJSON)::jsonb)
                    ON CONFLICT (idempotent_event_id) DO NOTHING
                    """, logger: logger)
            }
        }
    }
}
