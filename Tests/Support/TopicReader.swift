import Foundation
import Logging
import PaywireKafka

/// Reads topics from their start to what the broker holds now (a group of its own that stores no
/// offsets), for tests that look at what Paywire put on Kafka.
public enum TopicReader {
    public static func read(brokers: String, topics: [String], timeout: Duration = .seconds(30)) async throws -> [KafkaConsumerMessage] {
        let logger = TestEnvironment.logger("topic-reader")
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                kafka: KafkaConfiguration(bootstrapServers: brokers), groupID: "test-reader-\(UUID().uuidString.lowercased())", topics: topics, fetchWaitMaxMilliseconds: 10
            ),
            logger: logger
        )
        var messages: [KafkaConsumerMessage] = []
        do {
            var remaining: [String: Int64] = [:]
            for topic in topics {
                for (partition, marks) in try await consumer.watermarks(topic: topic) where marks.high > marks.low {
                    remaining["\(topic)/\(partition)"] = marks.high - 1
                }
            }
            let deadline = ContinuousClock.now + timeout
            while !remaining.isEmpty {
                guard ContinuousClock.now < deadline else { throw KafkaError(kind: .consume, message: "topics not read to their end within \(timeout)") }
                for message in try await consumer.poll(maxMessages: 500, timeout: .milliseconds(200)) {
                    let name = "\(message.topic)/\(message.partition)"
                    if let last = remaining[name], message.offset >= last { remaining[name] = nil }
                    messages.append(message)
                }
            }
        } catch {
            await consumer.close()
            throw error
        }
        await consumer.close()
        return messages
    }
}
