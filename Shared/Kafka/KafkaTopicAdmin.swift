import CRdKafka
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
            try createTopics(missing, client: client, timeoutMilliseconds: milliseconds)
        }
        for (name, error) in results {
            if let error, error.code != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue {
                throw error
            }
            logger.info("topic ready", metadata: ["kafka.topic": .string(name)])
        }
    }

    private static func createTopics(
        _ topics: [KafkaTopicSpec],
        client: RDKafkaClient,
        timeoutMilliseconds: Int32
    ) throws -> [(String, KafkaError?)] {
        var errorText = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { newTopics.forEach { rd_kafka_NewTopic_destroy($0) } }
        for topic in topics {
            guard let newTopic = rd_kafka_NewTopic_new(topic.name, Int32(topic.partitions), Int32(topic.replicationFactor), &errorText, errorText.count) else {
                throw KafkaError(kind: .topicAdmin, message: "\(topic.name): \(String(cString: errorText))")
            }
            newTopics.append(newTopic)
        }
        let queue = rd_kafka_queue_new(client.handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(client.handle, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 1000) else {
            throw KafkaError(
                kind: .topicAdmin,
                code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
                message: "CreateTopics got no answer (a broker without the admin API must be given the topics up front): \(topics.map(\.name).joined(separator: ","))"
            )
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        guard eventError == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(kind: .topicAdmin, rdError: eventError, context: "CreateTopics")
        }
        let result = rd_kafka_event_CreateTopics_result(event)
        var count = 0
        guard let topicResults = rd_kafka_CreateTopics_result_topics(result, &count) else { return [] }
        return (0..<count).map { index in
            let topicResult = topicResults[index]
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let err = rd_kafka_topic_result_error(topicResult)
            return (name, err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(kind: .topicAdmin, rdError: err, context: name))
        }
    }
}
