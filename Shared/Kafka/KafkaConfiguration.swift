/// Settings shared by producers and consumers. `properties` is passed to librdkafka unchanged, so
/// anything librdkafka accepts (security.protocol, sasl.*, ...) works against a real cluster.
public struct KafkaConfiguration: Sendable {
    public var bootstrapServers: String
    public var clientID: String
    public var properties: [String: String]

    public init(bootstrapServers: String, clientID: String = "paywire", properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
    }

    var baseProperties: [String: String] {
        var all = ["bootstrap.servers": bootstrapServers, "client.id": clientID]
        all.merge(properties) { _, explicit in explicit }
        return all
    }
}

public struct KafkaProducerConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    /// How long librdkafka keeps retrying a message before reporting it failed.
    public var messageTimeoutMilliseconds: Int
    public var lingerMilliseconds: Int

    public init(kafka: KafkaConfiguration, messageTimeoutMilliseconds: Int = 60_000, lingerMilliseconds: Int = 2) {
        self.kafka = kafka
        self.messageTimeoutMilliseconds = messageTimeoutMilliseconds
        self.lingerMilliseconds = lingerMilliseconds
    }

    var rdProperties: [String: String] {
        var all: [String: String] = [
            // Idempotence gives exactly-once per partition from this producer across its retries.
            "enable.idempotence": "true",
            "acks": "all",
            "linger.ms": String(lingerMilliseconds),
            "message.timeout.ms": String(messageTimeoutMilliseconds),
            "queue.buffering.max.messages": "1000000",
            "queue.buffering.max.kbytes": "1048576",
            "batch.num.messages": "10000",
        ]
        all.merge(kafka.baseProperties) { _, explicit in explicit }
        return all
    }
}

public struct KafkaConsumerConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var groupID: String
    public var topics: [String]
    public var sessionTimeoutMilliseconds: Int
    /// Where a group with no committed offset starts. Paywire's consumers must see every event,
    /// so the default is the beginning of the partition.
    public var autoOffsetReset: String
    /// How long a fetch may wait at the broker for data. Kafka answers as soon as data arrives,
    /// but librdkafka's mock cluster waits the whole time, so request/reply paths set it low.
    public var fetchWaitMaxMilliseconds: Int
    /// No consumer group: every partition of `topics` is assigned, from where the partition ends
    /// when the consumer starts; no offset is stored or committed. For a reader that wants only
    /// what is produced while it runs (the gateway's replies): it leaves nothing behind on the
    /// broker when it goes, and has none of a group member's timers (heartbeat, poll interval,
    /// commits) while idle.
    public var assignsFromEnd = false

    public init(
        kafka: KafkaConfiguration,
        groupID: String,
        topics: [String],
        sessionTimeoutMilliseconds: Int = 10_000,
        autoOffsetReset: String = "earliest",
        fetchWaitMaxMilliseconds: Int = 100
    ) {
        self.kafka = kafka
        self.groupID = groupID
        self.topics = topics
        self.sessionTimeoutMilliseconds = sessionTimeoutMilliseconds
        self.autoOffsetReset = autoOffsetReset
        self.fetchWaitMaxMilliseconds = fetchWaitMaxMilliseconds
    }

    var rdProperties: [String: String] {
        var all: [String: String] = [
            // With `assignsFromEnd` the group is never joined and nothing is committed, so the
            // broker keeps no state of it; librdkafka hands out its consumer queue only with one.
            "group.id": groupID,
            // Offsets are stored only after the handler's effects are committed.
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "false",
            "fetch.wait.max.ms": String(fetchWaitMaxMilliseconds),
            "enable.auto.commit": assignsFromEnd ? "false" : "true",
        ]
        if !assignsFromEnd {
            all.merge([
                // librdkafka commits the stored offsets in the background. The consume loops ask
                // for a commit as soon as they fall idle after storing, so the background timer is
                // only the floor: Kafka's default 5 s. Every librdkafka 2.0.2 timer costs up to a
                // millisecond of spinning on its main thread (the wait is rounded down to whole
                // milliseconds; confluentinc/librdkafka#4671 fixed it in 2.4), so an idle
                // consumer's timers are kept few.
                "auto.commit.interval.ms": "5000",
                "auto.offset.reset": autoOffsetReset,
                "session.timeout.ms": String(sessionTimeoutMilliseconds),
                // A third of the session, as Kafka's own defaults (3 s of 10 s... 45 s) have it.
                "heartbeat.interval.ms": String(max(100, sessionTimeoutMilliseconds / 3)),
                "max.poll.interval.ms": "300000",
                "partition.assignment.strategy": "range,roundrobin",
            ]) { _, new in new }
        }
        all.merge(kafka.baseProperties) { _, explicit in explicit }
        return all
    }
}
