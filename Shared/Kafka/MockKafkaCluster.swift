import CRdKafka
import Logging

/// librdkafka's in-process mock cluster: real Kafka protocol on loopback TCP with several brokers,
/// partitions and consumer groups. It keeps only the last few megabytes of each partition.
public final class MockKafkaCluster: Sendable {
    private let owner: RDKafkaClient
    private let cluster: UnsafeSendable<OpaquePointer>
    public let bootstrapServers: String

    public init(brokers: Int = 3, logger: Logger) throws {
        owner = try RDKafkaClient.make(kind: .producer, properties: ["log_level": "3"], logger: logger)
        guard let cluster = rd_kafka_mock_cluster_new(owner.handle, Int32(brokers)) else {
            owner.destroy()
            throw KafkaError(kind: .clientCreation, message: "rd_kafka_mock_cluster_new failed")
        }
        self.cluster = UnsafeSendable(cluster)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    public func createTopic(_ spec: KafkaTopicSpec) throws {
        let replication = spec.replicationFactor > 0 ? spec.replicationFactor : 1
        let err = rd_kafka_mock_topic_create(cluster.value, spec.name, Int32(spec.partitions), Int32(replication))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(kind: .topicAdmin, rdError: err, context: spec.name)
        }
    }

    public func shutdown() {
        rd_kafka_mock_cluster_destroy(cluster.value)
        owner.destroy()
    }
}
