import Foundation
import PaywireKafka
import PaywireTestSupport
import Testing

/// Consumer-group behaviour on librdkafka's mock cluster: 3 brokers, 6 partitions, real protocol.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct KafkaConsumerGroupTests {
    static let partitions = 6
    let logger = TestEnvironment.logger("kafka-test")

    struct Received: Sendable {
        var consumer: Int
        var key: String
        var sequence: Int
        var partition: Int32
    }

    func produceKeyed(count: Int, keys: Int, startingAt start: Int = 0, topic: String, producer: KafkaProducer) async throws {
        // Value = the message's sequence number within its key, so order can be checked per key.
        let messages = (start..<(start + count)).map { index in
            KafkaProducerMessage(topic: topic, key: "key-\(index % keys)", value: Array("\(index / keys)".utf8))
        }
        let results = try await producer.sendBatch(messages)
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } })
    }

    func consume(_ consumer: KafkaConsumer, id: Int, into collector: Collector<Received>, stop: @escaping @Sendable () -> Bool) async throws {
        try await consumer.run(shouldStop: stop) { message in
            collector.append(Received(
                consumer: id,
                key: message.keyString ?? "",
                sequence: Int(String(decoding: message.value, as: UTF8.self)) ?? -1,
                partition: message.partition
            ))
        }
    }

    /// Per key, the first time each message is seen must be in production order (a message seen
    /// again after a rebalance is a redelivery, which idempotent consumers drop).
    func expectPerKeyOrder(_ received: [Received], keys: Int, perKey: Int) {
        var firstSeen: [String: [Int]] = [:]
        var seen = Set<String>()
        for item in received where seen.insert("\(item.key)#\(item.sequence)").inserted {
            firstSeen[item.key, default: []].append(item.sequence)
        }
        #expect(firstSeen.count == keys)
        for (key, sequence) in firstSeen {
            #expect(sequence == Array(0..<perKey), "order broken or message missing for \(key)")
        }
    }

    func consumerConfiguration(_ cluster: MockKafkaCluster, group: String, topic: String) -> KafkaConsumerConfiguration {
        KafkaConsumerConfiguration(
            kafka: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, clientID: "test"),
            groupID: group,
            topics: [topic],
            sessionTimeoutMilliseconds: 6000
        )
    }

    @Test func tenThousandKeyedMessagesThroughAGroupOfTwoLoseNothingAndKeepKeyOrder() async throws {
        let topic = TestEnvironment.uniqueName("orders")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: Self.partitions)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let group = TestEnvironment.uniqueName("group")
            let first = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let second = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let collector = Collector<Received>()
            let total = 10_000, keys = 100
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                let done = { @Sendable in Set(collector.all.map { "\($0.key)#\($0.sequence)" }).count >= total }
                tasks.addTask { try await consume(first, id: 1, into: collector, stop: done) }
                tasks.addTask { try await consume(second, id: 2, into: collector, stop: done) }
                try await produceKeyed(count: total, keys: keys, topic: topic, producer: producer)
                let complete = await eventually(timeout: .seconds(90)) { done() }
                #expect(complete, "received \(collector.count) of \(total)")
                try await tasks.waitForAll()
            }
            let received = collector.all
            expectPerKeyOrder(received, keys: keys, perKey: total / keys)
            // Both members did work: the group really split the partitions.
            #expect(Set(received.map(\.consumer)) == [1, 2])
            await first.close()
            await second.close()
            await producer.shutdown()
        }
    }

    @Test func withConcurrentKeysASlowKeyHoldsUpOnlyItselfAndOrderAndOffsetsHold() async throws {
        let topic = TestEnvironment.uniqueName("keyed")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 1)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let group = TestEnvironment.uniqueName("group")
            let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let collector = Collector<Received>()
            let firstAt = Collector<ContinuousClock.Instant>()
            let fastDoneAt = Collector<Duration>()
            let slowDoneWhenFastDone = Collector<Int>()
            let total = 600, keys = 30
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                let done = { @Sendable in collector.count >= total }
                tasks.addTask {
                    try await consumer.run(shouldStop: done, concurrentKeys: true) { message in
                        if firstAt.count == 0 { firstAt.append(ContinuousClock.now) }
                        // key-0 is slow (a connector waiting out its timeout); the rest are quick.
                        if message.keyString == "key-0" { try await Task.sleep(for: .milliseconds(150)) }
                        collector.append(Received(consumer: 1, key: message.keyString ?? "", sequence: Int(String(decoding: message.value, as: UTF8.self)) ?? -1, partition: message.partition))
                        let all = collector.all
                        if all.filter({ $0.key != "key-0" }).count == total - total / keys {
                            fastDoneAt.append(ContinuousClock.now - firstAt.all[0])
                            slowDoneWhenFastDone.append(all.filter { $0.key == "key-0" }.count)
                        }
                    }
                }
                try await produceKeyed(count: total, keys: keys, topic: topic, producer: producer)
                let complete = await eventually(timeout: .seconds(60)) { done() }
                #expect(complete, "received \(collector.count) of \(total)")
                try await tasks.waitForAll()
            }
            expectPerKeyOrder(collector.all, keys: keys, perKey: total / keys)
            // All one partition: with a batch barrier the quick keys would wait for all of key-0's
            // 20 × 150 ms; here they finish while key-0 still has most of its messages to go
            // (counted, not timed, so a loaded machine cannot fail it).
            let slowDone = try #require(slowDoneWhenFastDone.all.first)
            #expect(slowDone <= (total / keys) * 3 / 4, "the quick keys finished only after \(slowDone) of key-0's \(total / keys) messages (\(fastDoneAt.all.first.map { "\($0)" } ?? "?"))")
            // Offsets were stored only up to finished messages, and every message was finished:
            // the group's committed offsets stand at the end of every partition, so a new member
            // would find nothing left to do.
            await consumer.close()
            var looking = consumerConfiguration(cluster, group: group, topic: topic)
            looking.topics = []
            let looker = try KafkaConsumer(configuration: looking, logger: logger)
            let committed = try await looker.committedOffsets(topic: topic)
            for (partition, marks) in try await looker.watermarks(topic: topic) {
                #expect(((committed[partition] ?? nil) ?? marks.low) == marks.high, "partition \(partition): committed \(String(describing: committed[partition] ?? nil)) of \(marks.high)")
            }
            await looker.close()
            await producer.shutdown()
        }
    }

    @Test func whenOneMemberLeavesTheOtherTakesItsPartitionsAndNothingIsLost() async throws {
        let topic = TestEnvironment.uniqueName("handover")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: Self.partitions)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let group = TestEnvironment.uniqueName("group")
            let leaving = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let staying = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let collector = Collector<Received>()
            let total = 4_000, keys = 40
            let leaveNow = Collector<Bool>()
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                let done = { @Sendable in Set(collector.all.map { "\($0.key)#\($0.sequence)" }).count >= total }
                tasks.addTask {
                    try await consume(leaving, id: 1, into: collector, stop: { leaveNow.count > 0 })
                    await leaving.close()
                }
                tasks.addTask { try await consume(staying, id: 2, into: collector, stop: done) }
                try await produceKeyed(count: total / 2, keys: keys, topic: topic, producer: producer)
                // Wait until both members have consumed something, then one leaves the group.
                let bothActive = await eventually(timeout: .seconds(60)) { Set(collector.all.map(\.consumer)).count == 2 }
                #expect(bothActive)
                leaveNow.append(true)
                try await produceKeyed(count: total / 2, keys: keys, startingAt: total / 2, topic: topic, producer: producer)
                let complete = await eventually(timeout: .seconds(90)) { done() }
                #expect(complete, "received \(Set(collector.all.map { "\($0.key)#\($0.sequence)" }).count) of \(total)")
                let assignment = try await staying.assignment()
                #expect(Set(assignment.map(\.partition)) == Set((0..<Int32(Self.partitions))))
                try await tasks.waitForAll()
            }
            expectPerKeyOrder(collector.all, keys: keys, perKey: total / keys)
            await staying.close()
            await producer.shutdown()
        }
    }

    @Test(arguments: [false, true])
    func aMessageWhoseOffsetWasNeverStoredIsDeliveredAgain(killed: Bool) async throws {
        let topic = TestEnvironment.uniqueName("redelivery")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 1)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let group = TestEnvironment.uniqueName("group")
            for index in 0..<3 {
                _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: Array("m\(index)".utf8)))
            }
            struct HandlerCrashed: Error {}
            // The first member handles m0 fully, then "dies" while handling m1.
            let first = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let firstSaw = Collector<String>()
            await #expect(throws: HandlerCrashed.self) {
                try await first.run { message in
                    let value = String(decoding: message.value, as: UTF8.self)
                    firstSaw.append(value)
                    if value == "m1" { throw HandlerCrashed() }
                }
            }
            #expect(firstSaw.all == ["m0", "m1"])
            if killed {
                // No commit, no LeaveGroup: as after kill -9. The group reassigns after the session timeout.
                try await first.commitStoredOffsets()
                await first.abandon()
            } else {
                await first.close()
            }

            let second = try KafkaConsumer(configuration: consumerConfiguration(cluster, group: group, topic: topic), logger: logger)
            let secondSaw = Collector<String>()
            try await second.run(shouldStop: { secondSaw.count >= 2 }) { message in
                secondSaw.append(String(decoding: message.value, as: UTF8.self))
            }
            // m0's offset was stored after its handler returned, so it is not seen again; m1's never was.
            #expect(secondSaw.all == ["m1", "m2"])
            await second.close()
            await producer.shutdown()
        }
    }
}
