import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import PaywireKafka
import PaywireModels
import PaywireStore
import ServiceLifecycle
import Synchronization
import Tracing

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
/// offset is stored only after the handler returns (its effects are committed). A known transient
/// failure (database, broker or a dependency unavailable) is retried with backoff, forever,
/// because skipping would lose the event; any other is tried a bounded number of times and then
/// dead-lettered (replayable with `paywire deadletters`), and only once the dead-letter copy is
/// acknowledged is the offset stored. Its progress is watched: lag and stuck time as metrics, and
/// a partition stuck past `Liveness.stallLimit` fails `/health`.
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
    /// With `assignsFromEnd`: which of the topics' partitions to read (default: all).
    public typealias PartitionChoice = @Sendable ([KafkaTopicPartition]) async throws -> [KafkaTopicPartition]
    private let choosePartitions: PartitionChoice?
    private let handled: Counter
    private let deadLettered: Counter
    private let liveness: Liveness?
    /// With `concurrentKeys`: messages in hand at most before the partitions are paused.
    let maxInFlight: Int
    /// With `concurrentKeys`: topics whose partitions are never paused (others wait on them).
    let neverPausedTopics: Set<String>

    public init(
        configuration: KafkaConsumerConfiguration,
        producer: KafkaProducer,
        deadLetterTopic: String,
        logger: Logger,
        waitUntil: @escaping @Sendable () async throws -> Void = {},
        concurrentKeys: Bool = false,
        onAssigned: (@Sendable ([KafkaTopicPartition]) -> Void)? = nil,
        choosePartitions: PartitionChoice? = nil,
        liveness: Liveness? = nil,
        maxInFlight: Int = 2000,
        neverPausedTopics: Set<String> = [],
        handler: @escaping Handler
    ) {
        self.liveness = liveness
        self.maxInFlight = maxInFlight
        self.neverPausedTopics = neverPausedTopics
        self.concurrentKeys = concurrentKeys
        self.onAssigned = onAssigned
        self.choosePartitions = choosePartitions
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
        // A start-up that never finishes (a database away) must not keep SIGTERM waiting.
        do {
            try await cancelWhenGracefulShutdown { try await self.waitUntil() }
        } catch {
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            throw error
        }
        if Task.isShuttingDownGracefully { return }
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        if configuration.assignsFromEnd {
            // No group: the partitions are taken here, from where they end now (retried while
            // the broker is away; SIGTERM ends the attempts).
            var delay = Duration.milliseconds(200)
            while true {
                do {
                    let partitions = try await consumer.assignFromEnd(topics: configuration.topics, choose: choosePartitions)
                    logger.info("partitions assigned from their end", metadata: ["kafka.partitions": .stringConvertible(partitions.count)])
                    onAssigned?(partitions)
                    break
                } catch {
                    if Task.isShuttingDownGracefully || Task.isCancelled {
                        await consumer.close()
                        return
                    }
                    logger.warning("assigning the partitions failed; retrying", metadata: ["error": .string(MessageFailure.loggable(error))])
                    let pause = delay
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                    delay = min(delay * 2, .seconds(5))
                }
            }
        } else if let onAssigned {
            consumer.onRebalance { event in
                if case .assigned(let partitions) = event { onAssigned(partitions) }
            }
        }
        let stopping = StopFlag()
        let watch = liveness?.watch(group: configuration.groupID, consumer: consumer)
        try await withGracefulShutdownHandler {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    if let watch { group.addTask { await watch.run(until: { stopping.isSet }) } }
                    try await consumer.run(shouldStop: { stopping.isSet }, concurrentKeys: concurrentKeys, maxInFlight: maxInFlight, neverPausedTopics: neverPausedTopics) { message in
                        try await self.handle(message, stopping: stopping)
                    }
                    stopping.set()
                    group.cancelAll()
                    try await group.waitForAll()
                }
            } catch is CancellationError, is StopFlag.Stopped {
                // Shutdown while a message was being retried: its offset stays unstored.
            }
        } onGracefulShutdown: {
            stopping.set()
            consumer.interruptPoll()
        }
        liveness?.unwatch(group: configuration.groupID)
        await consumer.close()
    }

    /// Tries a message whose failure retrying cannot cure (PostgreSQL refusing its data, say)
    /// gets before it is dead-lettered: enough to ride out a fault misread as permanent, few
    /// enough that the partition moves on within seconds.
    public static let poisonTries = 3
    /// Tries an error nothing knows gets (about half a minute with the backoff) before the
    /// message is dead-lettered: a fault that passes has passed by then, one that does not would
    /// otherwise hold its key and its partition for ever.
    public static let unknownTries = 8

    /// What a handler's error means for its message: `MessageFailure.classify`, and the HTTP
    /// client's faults (a dependency unreachable or slow) as transient.
    public static func classify(_ error: any Error) -> MessageFailure {
        if error is HTTPClientError { return .transient }
        return MessageFailure.classify(error)
    }

    /// One span per message, a child of the context its headers carry (the trace of the request
    /// or event that produced it), around every try; log lines inside carry its trace id.
    private func handle(_ message: KafkaConsumerMessage, stopping: StopFlag) async throws {
        try await withSpan("\(message.topic) process", context: TraceHeaders.context(from: message), ofKind: .consumer) { span in
            span.attributes["messaging.system"] = "kafka"
            span.attributes["messaging.destination.name"] = message.topic
            span.attributes["messaging.destination.partition.id"] = String(message.partition)
            span.attributes["messaging.kafka.offset"] = Int(message.offset)
            try await handleTrying(message, stopping: stopping)
        }
    }

    private func handleTrying(_ message: KafkaConsumerMessage, stopping: StopFlag) async throws {
        var delay = Duration.milliseconds(100)
        var poisonFailures = 0
        var unknownFailures = 0
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
                let failure = Self.classify(error)
                switch failure {
                case .transient:
                    break
                case .poison(let reason, let detail):
                    poisonFailures += 1
                    if poisonFailures >= Self.poisonTries {
                        try await deadLetter(message, reason: reason, detail: detail, stopping: stopping)
                        return
                    }
                case .unknown(let detail):
                    unknownFailures += 1
                    if unknownFailures >= Self.unknownTries {
                        try await deadLetter(message, reason: "unclassified", detail: "\(detail) (after \(unknownFailures) tries)", stopping: stopping)
                        return
                    }
                }
                liveness?.noteRetry(group: configuration.groupID, reason: MessageFailure.loggable(error))
                logger.warning("message handling failed; retrying", metadata: [
                    "kafka.partition": .string(message.topicPartition.description),
                    "kafka.offset": .stringConvertible(message.offset),
                    "transient": .stringConvertible(failure == .transient),
                    "tries": .stringConvertible(poisonFailures + unknownFailures + 1),
                    "error": .string(MessageFailure.loggable(error)),
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
