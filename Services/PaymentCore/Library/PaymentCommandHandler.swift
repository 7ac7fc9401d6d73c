import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Applies payment commands. Each command's effect and the event announcing it are written in one
/// transaction (row + outbox), and the command's envelope id is recorded there too, so a
/// redelivered command does nothing.
public struct PaymentCommandHandler: Sendable {
    let postgres: PostgresClient
    let topics: TopicNames
    let logger: Logger
    let processed = ProcessedMessages(schema: PaymentsSchema.name, consumer: "payment-commands")
    let outbox = Outbox(schema: PaymentsSchema.name)

    public init(postgres: PostgresClient, topics: TopicNames, logger: Logger) {
        self.postgres = postgres
        self.topics = topics
        self.logger = logger
    }

    struct CreatePayload: Codable {
        var paymentId: String
        var merchantId: String
        var amount: Int
        var currency: String
        enum CodingKeys: String, CodingKey {
            case paymentId = "payment_id"
            case merchantId = "merchant_id"
            case amount, currency
        }
    }

    public func handle(_ message: KafkaConsumerMessage) async throws {
        let envelope = try EventEnvelope.decode(message.value)
        switch envelope.type {
        case MessageType.paymentCreate:
            let command = try envelope.payload.decode(CreatePayload.self)
            try await processed.processOnce(messageID: envelope.id, client: postgres, logger: logger) { connection in
                let rows = try await connection.query("""
                    INSERT INTO payments.payments (payment_id, merchant_id, amount, currency, status)
                    VALUES (\(command.paymentId), \(command.merchantId), \(command.amount), \(command.currency), 'processing')
                    ON CONFLICT (payment_id) DO NOTHING RETURNING created_at
                    """, logger: logger)
                var created: Date?
                for try await date in rows.decode(Date.self) { created = date }
                guard let created else { return }
                let object: JSONValue = .object([
                    "payment_id": .string(command.paymentId),
                    "merchant_id": .string(command.merchantId),
                    "status": .string("processing"),
                    "amount": .number(Double(command.amount)),
                    "currency": .string(command.currency),
                    "created": .string(PaywireJSON.format(created)),
                ])
                let event = EventEnvelope(
                    type: MessageType.paymentProcessing,
                    merchantId: command.merchantId,
                    correlationId: envelope.id,
                    payload: object
                )
                try await outbox.enqueue(event, topic: topics.paymentEvents, key: command.paymentId, on: connection, logger: logger)
            }
        default:
            throw PermanentMessageError("unknown payment command type \(envelope.type)")
        }
    }
}
