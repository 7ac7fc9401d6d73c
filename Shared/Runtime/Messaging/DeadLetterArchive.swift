import Foundation
import Logging
import PaywireKafka
import PaywireModels

/// One message on the dead-letter topic, with where it sits there (`id` is `partition:offset`).
public struct DeadLetterRecord: Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
    public var letter: DeadLetter

    public var id: String { "\(partition):\(offset)" }
}

/// Reads the dead-letter topic from its start to what the broker holds now, and replays one letter
/// to its original topic (after the fix that lets it through). Used by `paywire deadletters`.
public enum DeadLetterArchive {
    public static func read(kafka: KafkaConfiguration, topic: String, logger: Logger, timeout: Duration = .seconds(30)) async throws -> [DeadLetterRecord] {
        // A group of its own that stores no offsets: reading changes nothing for anyone else.
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: "paywire-deadletters-\(UUID().uuidString.lowercased())", topics: [topic], fetchWaitMaxMilliseconds: 10),
            logger: logger
        )
        var records: [DeadLetterRecord] = []
        do {
            let watermarks = try await consumer.watermarks(topic: topic)
            var remaining = watermarks.filter { $0.value.high > $0.value.low }.mapValues { $0.high - 1 }
            let deadline = ContinuousClock.now + timeout
            while !remaining.isEmpty {
                guard ContinuousClock.now < deadline else {
                    throw KafkaError(kind: .consume, message: "dead-letter topic not read to its end within \(timeout)")
                }
                for message in try await consumer.poll(maxMessages: 500, timeout: .milliseconds(200)) {
                    if let last = remaining[message.partition], message.offset >= last { remaining[message.partition] = nil }
                    guard let envelope = try? EventEnvelope.decode(message.value), envelope.type == DeadLetter.messageType,
                          let letter = try? envelope.payload.decode(DeadLetter.self)
                    else { continue }
                    records.append(DeadLetterRecord(partition: message.partition, offset: message.offset, letter: letter))
                }
            }
        } catch {
            await consumer.close()
            throw error
        }
        await consumer.close()
        return records.sorted { ($0.letter.deadLetteredAt, $0.partition, $0.offset) < ($1.letter.deadLetteredAt, $1.partition, $1.offset) }
    }

    /// Sends the original message, key and value unchanged, back to its topic. Its consumer takes
    /// it as new; consumers that dedupe by envelope id never recorded it, so nothing is dropped.
    public static func replay(_ record: DeadLetterRecord, producer: KafkaProducer) async throws {
        let letter = record.letter
        let headers = letter.originalHeaders.sorted { $0.key < $1.key }.map { KafkaHeader(name: $0.key, value: $0.value) }
        _ = try await producer.send(KafkaProducerMessage(topic: letter.originalTopic, key: letter.originalKey, value: letter.originalValue, headers: headers))
    }
}
