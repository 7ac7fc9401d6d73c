import Foundation
import Logging
import Metrics
import PaywireKafka
import PaywireModels
import PaywireStore
import ServiceLifecycle
import Synchronization

/// A message that can never be processed (undecodable, unknown type): it goes to the dead-letter
/// topic with the reason instead of blocking its partition.
public struct PermanentMessageError: Error, CustomStringConvertible {
    public let reason: String
    /// A short category for the dead-letter metric (`undecodable`, `invalid`, `forged`, …).
    public let category: String
    public init(_ reason: String, category: String = "rejected") {
        self.reason = reason
        self.category = category
    }
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

    /// Tries a message whose failure retrying cannot cure (PostgreSQL refusing its data, say)
    /// gets before it is dead-lettered: enough to ride out a fault misread as permanent, few
    /// enough that the partition moves on within seconds.
    public static let poisonTries = 3

    private func handle(_ message: KafkaConsumerMessage, stopping: StopFlag) async throws {
        var delay = Duration.milliseconds(100)
        var poisonFailures = 0
        while true {
            do {
                try await handler(message)
                handled.increment()
                return
            } catch let error as PermanentMessageError {
                try await deadLetter(message, reason: error.category, detail: error.reason, stopping: stopping)
                return
            } catch {
                if stopping.isSet || Task.isCancelled { throw StopFlag.Stopped() }
                let failure = MessageFailure.classify(error)
                if case .poison(let reason, let detail) = failure {
                    poisonFailures += 1
                    if poisonFailures >= Self.poisonTries {
                        try await deadLetter(message, reason: reason, detail: detail, stopping: stopping)
                        return
                    }
                }
                logger.warning("message handling failed; retrying", metadata: [
                    "kafka.partition": .string(message.topicPartition.description),
                    "kafka.offset": .stringConvertible(message.offset),
                    "transient": .stringConvertible(failure == .transient),
                    "error": .string(String(describing: error)),
                ])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Sends the message to the dead-letter topic with why, and only then lets its offset be
    /// stored. A broker that refuses the copy is retried with backoff (the message stays
    /// unacknowledged, nothing is lost), never a reason to stop the service.
    private func deadLetter(_ message: KafkaConsumerMessage, reason: String, detail: String, stopping: StopFlag) async throws {
        let letter = DeadLetter(
            originalTopic: message.topic, originalPartition: message.partition, originalOffset: message.offset,
            originalKey: message.keyString, originalValue: message.value, reason: reason, error: detail,
            consumerGroup: configuration.groupID, deadLetteredAt: Date(),
            originalHeaders: Dictionary(message.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        )
        let value = try EventEnvelope(type: DeadLetter.messageType, merchantId: "", payload: try JSONValue(encoding: letter)).encoded()
        var delay = Duration.milliseconds(200)
        while true {
            do {
                _ = try await producer.send(KafkaProducerMessage(topic: deadLetterTopic, key: message.key, value: value))
                break
            } catch {
                if stopping.isSet || Task.isCancelled { throw StopFlag.Stopped() }
                logger.error("dead letter not acknowledged; retrying", metadata: ["error": .string(String(describing: error))])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
        deadLettered.increment()
        Counter(label: "paywire_deadletters_total", dimensions: [("topic", message.topic), ("reason", reason)]).increment()
        logger.error("message dead-lettered", metadata: [
            "kafka.partition": .string(message.topicPartition.description),
            "kafka.offset": .stringConvertible(message.offset),
            "reason": .string(reason),
            "error": .string(detail),
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
