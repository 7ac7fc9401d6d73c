import Foundation
import PaywireKafka
import PaywireTestSupport
import Testing

/// A producer shut down while senders are mid-batch: every sender hears how each of its messages
/// ended and the shutdown completes (the gate that keeps produce calls off a destroyed handle must
/// not hold either up). The gate's own rule is `KafkaDeliveryBatchTests
/// .theHandleIsDestroyedOnlyOnceNoSenderIsInside`: the race it closes is too narrow to hit here.
@Suite(.timeLimit(.minutes(3)))
struct KafkaProducerShutdownTests {
    let logger = TestEnvironment.logger("producer-shutdown", level: .critical)

    @Test func sendersRacingShutdownEachHearHowTheirMessagesEnded() async throws {
        let topic = TestEnvironment.uniqueName("racing")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 3)]) { cluster in
            let producer = try KafkaProducer(configuration: .init(kafka: .init(bootstrapServers: cluster.bootstrapServers)), logger: logger)
            let senders = 8, rounds = 40, perBatch = 250
            let started = Collector<Bool>()
            let counts = await withTaskGroup(of: (acknowledged: Int, failed: Int).self) { group in
                for sender in 0..<senders {
                    group.addTask {
                        var acknowledged = 0, failed = 0
                        for round in 0..<rounds {
                            started.append(true)
                            let messages = (0..<perBatch).map { KafkaProducerMessage(topic: topic, key: "sender-\(sender)", value: Array("\(round)-\($0)".utf8)) }
                            do {
                                for result in try await producer.sendBatch(messages) {
                                    if case .success = result { acknowledged += 1 } else { failed += 1 }
                                }
                            } catch {
                                failed += perBatch
                            }
                        }
                        return (acknowledged, failed)
                    }
                }
                // Shut down while the senders are in full flow.
                group.addTask {
                    while started.count < senders * 2 { try? await Task.sleep(for: .milliseconds(1)) }
                    await producer.shutdown()
                    return (0, 0)
                }
                var total = (acknowledged: 0, failed: 0)
                for await count in group { total = (total.acknowledged + count.acknowledged, total.failed + count.failed) }
                return total
            }
            #expect(counts.acknowledged + counts.failed == senders * rounds * perBatch, "every message ended one way or the other: \(counts)")
            #expect(counts.acknowledged > 0 && counts.failed > 0, "the shutdown came mid-flow: \(counts)")
        }
    }
}
