import Foundation
import PaywireKafka
import PaywireTestSupport
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
}
