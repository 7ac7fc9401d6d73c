import Foundation
import Logging
import Metrics
import PaywireKafka
import PaywireModels
import ServiceLifecycle
import Synchronization

/// A message that can never be processed (undecodable, unknown type): it goes to the dead-letter
/// topic with the reason instead of blocking its partition.
public struct PermanentMessageError: Error, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// Runs a consumer-group member as a `Service`. Each message is handled in partition order; its
/// offset is stored only after the handler returns (its effects are committed). A transient
/// failure is retried with backoff, forever, because skipping would lose the event; a permanent
/// one is dead-lettered, and only once the dead-letter copy is acknowledged is the offset stored.
public final class KafkaConsumerService: Service, Sendable {
    public typealias Handler = @Sendable (KafkaConsumerMessage) async throws -> Void

    private let configuration: KafkaConsumerConfiguration
    private let producer: KafkaProducer
    private let deadLetterTopic: String
    private let logger: Logger
    private let handler: Handler
    private let waitUntil: @Sendable () async throws -> Void
    private let concurrentKeys: Bool
    private let onAssigned: (@Sendable ([KafkaTopicPartition]) -> Void)?
    private let handled: Counter
    private let deadLettered: Counter

    public init(
        configuration: KafkaConsumerConfiguration,
        producer: KafkaProducer,
        deadLetterTopic: String,
        logger: Logger,
        waitUntil: @escaping @Sendable () async throws -> Void = {},
        concurrentKeys: Bool = false,
        onAssigned: (@Sendable ([KafkaTopicPartition]) -> Void)? = nil,
        handler: @escaping Handler
    ) {
        self.concurrentKeys = concurrentKeys
        self.onAssigned = onAssigned
        self.configuration = configuration
        self.producer = producer
        self.deadLetterTopic = deadLetterTopic
        self.logger = logger
        self.handler = handler
        self.waitUntil = waitUntil
        handled = Counter(label: "paywire_consumer_messages_total", dimensions: [("group", configuration.groupID)])
        deadLettered = Counter(label: "paywire_consumer_deadlettered_total", dimensions: [("group", configuration.groupID)])
    }

    public func run() async throws {
        try await waitUntil()
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        if let onAssigned {
            consumer.onRebalance { event in
                if case .assigned(let partitions) = event { onAssigned(partitions) }
            }
        }
        let stopping = StopFlag()
        try await withGracefulShutdownHandler {
            do {
                try await consumer.run(shouldStop: { stopping.isSet }, concurrentKeys: concurrentKeys) { message in
                    try await self.handle(message, stopping: stopping)
                }
            } catch is CancellationError, is StopFlag.Stopped {
                // Shutdown while a message was being retried: its offset stays unstored.
            }
        } onGracefulShutdown: {
            stopping.set()
        }
        await consumer.close()
    }

    private func handle(_ message: KafkaConsumerMessage, stopping: StopFlag) async throws {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                try await handler(message)
                handled.increment()
                return
            } catch let error as PermanentMessageError {
                try await deadLetter(message, reason: error.reason)
                return
            } catch is DecodingError {
                try await deadLetter(message, reason: "undecodable message")
                return
            } catch {
                if stopping.isSet || Task.isCancelled { throw StopFlag.Stopped() }
                logger.warning("message handling failed; retrying", metadata: [
                    "kafka.partition": .string(message.topicPartition.description),
                    "kafka.offset": .stringConvertible(message.offset),
                    "error": .string(String(describing: error)),
                ])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func deadLetter(_ message: KafkaConsumerMessage, reason: String) async throws {
        let payload: JSONValue = .object([
            "original_topic": .string(message.topic),
            "original_partition": .number(Double(message.partition)),
            "original_offset": .number(Double(message.offset)),
            "original_key": message.keyString.map(JSONValue.string) ?? .null,
            "original_value_base64": .string(Data(message.value).base64EncodedString()),
            "error": .string(reason),
            "consumer_group": .string(configuration.groupID),
        ])
        let envelope = EventEnvelope(type: "deadletter", merchantId: "", payload: payload)
        _ = try await producer.send(KafkaProducerMessage(topic: deadLetterTopic, key: message.key, value: try envelope.encoded()))
        deadLettered.increment()
        logger.error("message dead-lettered", metadata: [
            "kafka.partition": .string(message.topicPartition.description),
            "kafka.offset": .stringConvertible(message.offset),
            "reason": .string(reason),
        ])
    }
}

/// Set by graceful shutdown; read by the consume loop between messages.
final class StopFlag: Sendable {
    struct Stopped: Error {}
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}
