import Logging

public struct KafkaTopicSpec: Sendable, Hashable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int

    public init(name: String, partitions: Int, replicationFactor: Int = -1) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
    }
}

/// Creates topics with their configured partition counts at start-up. A topic that already exists
/// is fine. Brokers without the CreateTopics API (librdkafka 2.0.2's mock cluster) get their
/// topics from the dev broker instead; then we only verify that each topic exists.
public enum KafkaTopicAdmin {
    public static func ensureTopics(
        _ topics: [KafkaTopicSpec],
        using producer: KafkaProducer,
        timeout: Duration = .seconds(5),
        logger: Logger
    ) async throws {
        let client = producer.rdClient
        let milliseconds = Int32(timeout.components.seconds * 1000)
        let existing = try await producer.topicPartitionCounts(timeout: timeout)
        let missing = topics.filter { existing[$0.name] == nil }
        for topic in topics {
            if let count = existing[topic.name], count < topic.partitions {
                logger.warning("topic has fewer partitions than configured", metadata: [
                    "kafka.topic": .string(topic.name), "partitions": .stringConvertible(count), "configured": .stringConvertible(topic.partitions),
                ])
            }
        }
        guard !missing.isEmpty else { return }
        let results = try await RDKafkaBlockingExecutor(label: "paywire-kafka-admin").run {
            try client.createTopics(missing, timeoutMilliseconds: milliseconds)
        }
        for (name, error) in results {
            if let error, !error.isTopicAlreadyExists {
                throw error
            }
            logger.info("topic ready", metadata: ["kafka.topic": .string(name)])
        }
    }
}
