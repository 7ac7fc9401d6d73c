import Logging

/// librdkafka's in-process mock cluster: real Kafka protocol on loopback TCP with several brokers,
/// partitions and consumer groups. It keeps only the last few megabytes of each partition.
public final class MockKafkaCluster: Sendable {
    private let owner: RDKafkaClient
    private let cluster: RDKafkaMockCluster
    public let bootstrapServers: String

    public init(brokers: Int = 3, logger: Logger) throws {
        owner = try RDKafkaClient.make(kind: .producer, properties: ["log_level": "3"], logger: logger)
        do {
            cluster = try owner.makeMockCluster(brokers: brokers)
        } catch {
            owner.destroy()
            throw error
        }
        bootstrapServers = cluster.bootstrapServers
    }

    public func createTopic(_ spec: KafkaTopicSpec) throws {
        let replication = spec.replicationFactor > 0 ? spec.replicationFactor : 1
        try cluster.createTopic(spec.name, partitions: spec.partitions, replicationFactor: replication)
    }

    public func shutdown() {
        cluster.destroy()
        owner.destroy()
    }
}
