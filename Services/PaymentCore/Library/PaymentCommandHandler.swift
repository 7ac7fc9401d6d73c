import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PostgresNIO

/// Applies payment commands and answers the gateway replica that waits. The effects are
/// idempotent by the resource ids the command carries (payment id, refund id) and by the state
/// machine, so a redelivered command changes nothing and gets the current state as its answer.
public struct PaymentCommandHandler: Sendable {
    let operations: PaymentOperations
    let producer: KafkaProducer
    let topics: TopicNames
    let logger: Logger

    public init(operations: PaymentOperations, producer: KafkaProducer, topics: TopicNames, logger: Logger) {
        self.operations = operations
        self.producer = producer
        self.topics = topics
        self.logger = logger
    }

    public func handle(_ message: KafkaConsumerMessage) async throws {
        let envelope: TypedEnvelope<PaymentCommand>
        do {
            envelope = try TypedEnvelope<PaymentCommand>.decode(message.value)
        } catch {
            throw PermanentMessageError("undecodable payment command: \(error)")
        }
        guard envelope.type == MessageType.paymentCommand else {
            throw PermanentMessageError("unknown payment command type \(envelope.type)")
        }
        let command = envelope.payload
        var reply = GatewayReply(correlationId: envelope.id, replyTo: command.replyTo ?? "")
        do {
            switch command.operation {
            case .create: reply.object = try await operations.create(command)
            case .confirm: reply.object = try await operations.confirm(command)
            case .capture: reply.object = try await operations.capture(command)
            case .cancel: reply.object = try await operations.cancel(command)
            case .refund: reply.object = try await operations.refund(command)
            }
        } catch {
            // Refusals raised inside a transaction arrive wrapped in PostgresTransactionError.
            guard let failure = PaymentFailure.unwrap(error) else { throw error }
            reply.error = failure.reply
        }
        guard command.replyTo != nil else { return }
        // The reply is a courtesy to a waiting client, not state: if it is lost the gateway's
        // wait runs out and it answers from the database. So it is sent directly, not through
        // the outbox, and a failure to send is logged, not retried.
        do {
            let value = try EventEnvelope(type: MessageType.gatewayReply, merchantId: command.merchantId, correlationId: envelope.id, payload: reply.json).encoded()
            _ = try await producer.send(KafkaProducerMessage(topic: topics.gatewayReplies, key: envelope.id, value: value))
        } catch {
            logger.warning("reply not sent", metadata: ["correlation_id": .string(envelope.id), "error": .string(String(describing: error))])
        }
    }
}

extension PaymentFailure {
    static func unwrap(_ error: any Error) -> PaymentFailure? {
        if let failure = error as? PaymentFailure { return failure }
        if let wrapped = error as? PostgresTransactionError, let inner = wrapped.closureError { return unwrap(inner) }
        return nil
    }
}
