import Logging

/// librdkafka's in-process mock cluster: real Kafka protocol on loopback TCP with several brokers,
/// partitions and consumer groups. It keeps only the last few megabytes of each partition.
public final class MockKafkaCluster: Sendable {
    private let owner: RDKafkaClient
    private let cluster: RDKafkaMockCluster
    public let bootstrapServers: String

    public let brokerCount: Int

    public init(brokers: Int = 3, logger: Logger) throws {
        brokerCount = brokers
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

    /// Takes broker `id` (1...brokerCount) down or brings it back: clients see its connections
    /// drop and its partitions unavailable meanwhile, as when a Kafka broker dies.
    public func setBroker(_ id: Int, up: Bool) throws {
        guard (1...brokerCount).contains(id) else { throw KafkaError(kind: .topicAdmin, message: "no broker \(id): the ids are 1...\(brokerCount)") }
        try cluster.setBroker(Int32(id), up: up)
    }

    /// Makes broker `id` the coordinator of consumer group `group` (by default the cluster picks
    /// one by the group's hash).
    public func setGroupCoordinator(_ group: String, broker id: Int) throws {
        try cluster.setGroupCoordinator(group, broker: Int32(id))
    }

    public func shutdown() {
        cluster.destroy()
        owner.destroy()
    }
}
