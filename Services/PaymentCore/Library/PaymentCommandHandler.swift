import Foundation
import Logging
import Metrics
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Applies payment commands and answers the gateway replica that waits. The effects are
/// idempotent by the resource ids the command carries (payment id, refund id) and by the state
/// machine, so a redelivered command changes nothing and gets the current state as its answer.
public struct PaymentCommandHandler: Sendable {
    let operations: PaymentOperations
    let producer: KafkaProducer
    let topics: TopicNames
    let logger: Logger
    let signer: CommandSigner
    let configuration: ConfigurationCopy

    public init(operations: PaymentOperations, producer: KafkaProducer, topics: TopicNames, signer: CommandSigner, configuration: ConfigurationCopy, logger: Logger) {
        self.signer = signer
        self.configuration = configuration
        self.operations = operations
        self.producer = producer
        self.topics = topics
        self.logger = logger
    }

    public func handle(_ message: KafkaConsumerMessage) async throws {
        // Checked before anything in the message is believed: its merchant, its operation, the
        // vault URL it names.
        guard signer.isValid(message) else {
            Counter(label: "paywire_forged_commands_total").increment()
            throw PermanentMessageError("payment command without a valid signature", category: "forged")
        }
        let envelope: TypedEnvelope<PaymentCommand>
        do {
            envelope = try TypedEnvelope<PaymentCommand>.decode(message.value)
        } catch {
            throw PermanentMessageError("undecodable payment command: \(error)", category: "undecodable")
        }
        guard envelope.type == MessageType.paymentCommand else {
            throw PermanentMessageError("unknown payment command type \(envelope.type)", category: "unknown_type")
        }
        var command = envelope.payload
        do {
            try command.openProcessorToken(with: operations.secrets)
        } catch {
            throw PermanentMessageError("payment command whose processor token does not open", category: "unopenable")
        }
        // A connector account changed before this command was sent applies to it: wait for this
        // service's copy of the configuration to reach the version the gateway saw (at once when
        // the accounts kept in memory were read at that version or later: the copy has it).
        let version = envelope.configurationVersion ?? 0
        if operations.accounts.cachedVersion(command.merchantId) < version {
            try await configuration.waitFor(merchantId: command.merchantId, version: version)
        }
        var reply = GatewayReply(correlationId: envelope.id, replyTo: command.replyTo ?? "")
        do {
            reply.object = try await PaymentOperations.$configurationVersion.withValue(version) { [command] in
                switch command.operation {
                case .create: try await operations.create(command)
                case .confirm: try await operations.confirm(command)
                case .capture: try await operations.capture(command)
                case .cancel: try await operations.cancel(command)
                case .refund: try await operations.refund(command)
                case .update: try await operations.update(command)
                case .updateRefund: try await operations.updateRefund(command)
                }
            }
        } catch {
            // Refusals raised inside a transaction arrive wrapped in PostgresTransactionError.
            if let failure = PaymentFailure.unwrap(error) {
                reply.error = failure.reply
            } else if case .poison(let reason, let detail) = MessageFailure.classify(error), ["data_exception", "program_limit"].contains(reason) {
                // Data PostgreSQL can never store (the gateway refuses it, so this is a command
                // from elsewhere): the waiting client hears now, the command is dead-lettered,
                // and the payment's later commands run.
                logger.error("payment command refused: data cannot be stored", metadata: [
                    "payment_id": .string(command.paymentId), "operation": .string(command.operation.rawValue), "error": .string(detail),
                ])
                reply.error = GatewayReply.Failure(status: 400, code: "IR_06", message: "The request holds data that cannot be stored (\(detail))", field: "body")
                await send(reply, envelope: envelope, merchantId: command.merchantId, partition: command.replyPartition)
                throw PermanentMessageError(detail, category: reason)
            } else {
                throw error
            }
        }
        await send(reply, envelope: envelope, merchantId: command.merchantId, partition: command.replyPartition)
    }

    /// The reply is a courtesy to a waiting client, not state: if it is lost the gateway's wait
    /// runs out and it answers from the database. So it is sent directly, not through the
    /// outbox, and a failure to send is logged, not retried. It goes to the partition the waiting
    /// replica reads (`reply_partition`), so no other replica reads it.
    private func send(_ reply: GatewayReply, envelope: TypedEnvelope<PaymentCommand>, merchantId: String, partition: Int32?) async {
        guard !reply.replyTo.isEmpty else { return }
        do {
            let value = try EventEnvelope(type: MessageType.gatewayReply, merchantId: merchantId, correlationId: envelope.id, payload: reply.json).encoded()
            _ = try await producer.send(TraceHeaders.attachCurrent(to: KafkaProducerMessage(topic: topics.gatewayReplies, key: envelope.id, value: value, partition: partition)))
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
