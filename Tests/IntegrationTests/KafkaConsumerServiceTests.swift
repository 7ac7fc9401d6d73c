import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireTestSupport
import ServiceLifecycle
import Testing

/// The consumer service's promises about messages that do not go through: an error nothing knows
/// is tried a bounded number of times and dead-lettered while the partition moves on; a key that
/// waits holds bounded memory (the partitions are paused, the member stays in its group); and a
/// consumer that does not move on is seen (`/health`'s liveness check and the lag figure).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct KafkaConsumerServiceTests {
    let logger = TestEnvironment.logger("consumer-service", level: .error)

    struct Mystery: Error {}

    func configuration(_ cluster: MockKafkaCluster, group: String, topic: String) -> KafkaConsumerConfiguration {
        KafkaConsumerConfiguration(kafka: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), groupID: group, topics: [topic], sessionTimeoutMilliseconds: 6000)
    }

    /// Runs the service until `done`, then shuts it down gracefully.
    func run(_ service: KafkaConsumerService, until done: @escaping @Sendable () async -> Bool) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            let shutdown = ServiceGroup(services: [service], gracefulShutdownSignals: [], logger: logger)
            group.addTask { try await shutdown.run() }
            let finished = await eventually(timeout: .seconds(120)) { await done() }
            await shutdown.triggerGracefulShutdown()
            try await group.waitForAll()
            #expect(finished)
        }
    }

    @Test(arguments: [false, true])
    func anErrorNothingKnowsIsDeadLetteredAfterBoundedTriesAndThePartitionMovesOn(concurrentKeys: Bool) async throws {
        let topic = TestEnvironment.uniqueName("mystery"), deadLetters = TestEnvironment.uniqueName("dead")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 1), KafkaTopicSpec(name: deadLetters, partitions: 1)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            // One key, so every later message waits behind the bad one.
            let values = ["m0", "bad", "m2", "m3", "m4"]
            for value in values { _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: Array(value.utf8))) }
            let handled = Collector<String>(), tries = Collector<Int>()
            let service = KafkaConsumerService(
                configuration: configuration(cluster, group: TestEnvironment.uniqueName("group"), topic: topic), producer: producer,
                deadLetterTopic: deadLetters, logger: logger, concurrentKeys: concurrentKeys
            ) { message in
                let value = String(decoding: message.value, as: UTF8.self)
                if value == "bad" { tries.append(1); throw Mystery() }
                handled.append(value)
            }
            try await run(service) { handled.count >= 4 }
            #expect(handled.all == ["m0", "m2", "m3", "m4"])
            #expect(tries.count == KafkaConsumerService.unknownTries)
            let letters = try await TopicReader.read(brokers: cluster.bootstrapServers, topics: [deadLetters])
            #expect(letters.count == 1)
            let letter = try TypedEnvelope<DeadLetter>.decode(try #require(letters.first).value).payload
            #expect(letter.reason == "unclassified")
            #expect(letter.error.contains("Mystery"), "\(letter.error)")
            #expect(letter.originalValue == Array("bad".utf8))
            await producer.shutdown()
        }
    }

    @Test func aHeldKeyPausesThePartitionsKeepsMemoryBoundedAndTurnsHealthUnhealthy() async throws {
        let topic = TestEnvironment.uniqueName("held")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 1)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let total = 3000, limit = 200
            _ = try await producer.sendBatch((0..<total).map { KafkaProducerMessage(topic: topic, key: "held", value: Array("\($0)".utf8)) })
            let (releases, release) = AsyncStream<Void>.makeStream()
            let released = Collector<Bool>(), handled = Collector<Int>(), waitingSeen = Collector<Int>(), lagSeen = Collector<Int64>()
            let liveness = Liveness(stallLimit: .seconds(2), interval: .milliseconds(500), logger: logger)
            let group = TestEnvironment.uniqueName("group")
            let service = KafkaConsumerService(
                configuration: configuration(cluster, group: group, topic: topic), producer: producer, deadLetterTopic: "unused",
                logger: logger, concurrentKeys: true, liveness: liveness, maxInFlight: limit
            ) { message in
                // The first message waits (a merchant's configuration that has not arrived) until
                // released; the key's later messages run after it, one at a time, so one waiter.
                if released.count == 0 { for await _ in releases { break } }
                handled.append(Int(String(decoding: message.value, as: UTF8.self))!)
            }
            try await run(service) {
                if released.count == 0 {
                    waitingSeen.append(liveness.waiting(group: group))
                    // Held: /health's check reports the stall once the limit has passed, and the
                    // lag shows the messages still to do.
                    let problems = liveness.problems()
                    let lag = await liveness.lag(group: group)?.values.reduce(0, +) ?? 0
                    if !problems.isEmpty, lag >= Int64(limit) {
                        lagSeen.append(lag)
                        released.append(true)
                        release.finish()
                    }
                    return false
                }
                return handled.count >= total
            }
            // While held, the consumer never had more in hand than the limit and one poll's batch
            // (500): the partition was paused, not read on into memory.
            let most = waitingSeen.all.max() ?? 0
            #expect(most >= limit && most < limit + 500, "most messages in hand while held: \(most)")
            // Nothing of the 3,000 was done while held: the lag said so.
            #expect(lagSeen.all.first == Int64(total), "lag while held: \(lagSeen.all)")
            #expect(handled.all == Array(0..<total), "handled in order, each once")
            #expect(liveness.problems().isEmpty)
            await producer.shutdown()
        }
    }

    /// One member reads the messages and what they wait for (a service's commands and its copy of
    /// merchants' configurations): when the waiting messages pause the consumer, the topic they
    /// wait on keeps flowing, and a key of one topic never queues behind the same key of another.
    @Test func aTopicOthersWaitOnIsNeverPausedAndKeysAreTakenPerTopic() async throws {
        let work = TestEnvironment.uniqueName("work"), configuration = TestEnvironment.uniqueName("configuration")
        try await withMockCluster(topics: [KafkaTopicSpec(name: work, partitions: 1), KafkaTopicSpec(name: configuration, partitions: 1)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let total = 1000, limit = 100
            // Every message has the merchant's key, as commands and that merchant's configuration do.
            _ = try await producer.sendBatch((0..<total).map { KafkaProducerMessage(topic: work, key: "merchant_1", value: Array("\($0)".utf8)) })
            let arrived = Collector<Bool>(), handled = Collector<Int>(), sent = Collector<Bool>()
            let liveness = Liveness(stallLimit: .seconds(600), interval: .milliseconds(200), logger: logger)
            let group = TestEnvironment.uniqueName("group")
            let service = KafkaConsumerService(
                configuration: KafkaConsumerConfiguration(kafka: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers), groupID: group,
                                                          topics: [work, configuration], sessionTimeoutMilliseconds: 6000),
                producer: producer, deadLetterTopic: "unused", logger: logger, concurrentKeys: true, liveness: liveness, maxInFlight: limit,
                neverPausedTopics: [configuration]
            ) { message in
                if message.topic == configuration { arrived.append(true); return }
                // Each command waits until its merchant's configuration has arrived.
                while arrived.count == 0 { try await Task.sleep(for: .milliseconds(10)) }
                handled.append(Int(String(decoding: message.value, as: UTF8.self))!)
            }
            try await run(service) {
                // The configuration is sent only once the waiting commands have filled the
                // consumer past its limit (so it pauses): it must still be read.
                if sent.count == 0 {
                    guard liveness.waiting(group: group) >= limit else { return false }
                    _ = try? await producer.send(KafkaProducerMessage(topic: configuration, key: "merchant_1", value: Array("v2".utf8)))
                    sent.append(true)
                }
                return handled.count >= total
            }
            #expect(arrived.count == 1)
            #expect(handled.all == Array(0..<total), "handled in order, each once")
            await producer.shutdown()
        }
    }
}
