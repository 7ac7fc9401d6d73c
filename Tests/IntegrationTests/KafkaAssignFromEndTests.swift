import Foundation
import PaywireKafka
import PaywireTestSupport
import Synchronization
import Testing

/// A consumer in no group (the gateway's replies): it takes every partition from where it ends.
@Suite(.timeLimit(.minutes(3)))
struct KafkaAssignFromEndTests {
    let logger = TestEnvironment.logger("assign-from-end", level: .critical)

    /// A reader that assigns from the end reads only what is produced after it starts, joins no
    /// group and commits nothing, so the cluster keeps nothing of it once it is gone (the
    /// gateway's replies); a group member leaves its committed offsets.
    @Test func aReaderThatAssignsFromTheEndLeavesNoGroupBehind() async throws {
        let topic = TestEnvironment.uniqueName("replies")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 3)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let member = TestEnvironment.uniqueName("member"), reader = TestEnvironment.uniqueName("reader")
            let joined = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: .init(bootstrapServers: cluster.bootstrapServers), groupID: member, topics: [topic]), logger: logger)
            var readerConfiguration = KafkaConsumerConfiguration(kafka: .init(bootstrapServers: cluster.bootstrapServers), groupID: reader, topics: [topic])
            readerConfiguration.assignsFromEnd = true
            let assigning = try KafkaConsumer(configuration: readerConfiguration, logger: logger)
            _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "before", value: Array("before".utf8)))
            #expect(try await assigning.assignFromEnd(topics: [topic]).count == 3)
            _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "after", value: Array("after".utf8)))
            var read: [String] = [], memberRead = 0
            #expect(await eventually(timeout: .seconds(60)) {
                read += ((try? await assigning.poll(timeout: .milliseconds(200))) ?? []).map { String(decoding: $0.value, as: UTF8.self) }
                for message in (try? await joined.poll(timeout: .milliseconds(10))) ?? [] {
                    joined.storeOffset(for: message)
                    memberRead += 1
                }
                return read.contains("after") && memberRead == 2
            })
            #expect(read == ["after"], "only what was produced after it started")
            await assigning.close()
            await joined.close()
            // The cluster keeps offsets for the member's group, none for the reader's. (The dev
            // broker does not answer ListGroups; committed offsets are what a group leaves.)
            func committed(_ group: String) async throws -> [Int32: Int64?] {
                let looker = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: .init(bootstrapServers: cluster.bootstrapServers), groupID: group, topics: []), logger: logger)
                defer { Task { await looker.close() } }
                return try await looker.committedOffsets(topic: topic)
            }
            #expect(try await committed(member).values.contains { $0 != nil }, "the member committed where it was")
            #expect(try await committed(reader).values.allSatisfy { $0 == nil }, "the reader left nothing")
            await producer.shutdown()
        }
    }

    /// A reader given one partition reads only what is sent to that partition, whatever the key
    /// (a reply addressed to its replica's partition); messages sent before it looked are not read.
    @Test func aReaderOfOneChosenPartitionReadsOnlyWhatIsSentToIt() async throws {
        let topic = TestEnvironment.uniqueName("replies")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 4)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            var configuration = KafkaConsumerConfiguration(kafka: .init(bootstrapServers: cluster.bootstrapServers), groupID: TestEnvironment.uniqueName("reader"), topics: [topic])
            configuration.assignsFromEnd = true
            let reader = try KafkaConsumer(configuration: configuration, logger: logger)
            let before = try await producer.send(KafkaProducerMessage(topic: topic, key: "before", value: Array("before".utf8), partition: 2))
            #expect(before.partition == 2)
            let offered = Mutex<[KafkaTopicPartition]>([])
            let assigned = try await reader.assignFromEnd(topics: [topic]) { all in
                offered.withLock { $0 = all }
                return all.filter { $0.partition == 2 }
            }
            #expect(offered.withLock { $0.map(\.partition) } == [0, 1, 2, 3])
            #expect(assigned == [KafkaTopicPartition(topic: topic, partition: 2)])
            // Many keys, each sent both to partition 2 and to partition 1.
            for index in 0..<20 {
                for partition: Int32 in [1, 2] {
                    let report = try await producer.send(KafkaProducerMessage(topic: topic, key: "key-\(index)", value: Array("\(partition)-\(index)".utf8), partition: partition))
                    #expect(report.partition == partition)
                }
            }
            var read: [String] = []
            #expect(await eventually(timeout: .seconds(60)) {
                read += ((try? await reader.poll(timeout: .milliseconds(200))) ?? []).map { String(decoding: $0.value, as: UTF8.self) }
                return read.count >= 20
            })
            #expect(read == (0..<20).map { "2-\($0)" })
            await reader.close()
            await producer.shutdown()
        }
    }
}
