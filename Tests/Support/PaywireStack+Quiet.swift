import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PostgresNIO

extension PaywireStack {
    /// The consumer groups whose progress says a service has handled everything sent to it.
    static let consumerGroups: [(service: String, group: String, topics: [String])] = {
        let topics = TopicNames()
        return [
            ("payment-core", "payment-core", [topics.paymentCommands, topics.configuration]),
            ("webhook-dispatcher", "webhook-dispatcher", [topics.paymentEvents, topics.recoveryEvents, topics.configuration]),
            ("recovery-scheduler", "recovery-scheduler", [topics.recoveryCommands, topics.paymentEvents, topics.configuration]),
        ]
    }()

    public struct NotQuiet: Error, CustomStringConvertible {
        public var description: String
    }

    /// Waits until nothing is moving, instead of sleeping before a "nothing more arrived" check:
    /// every running service's outbox is published, no webhook delivery is due or leased, and each
    /// running service's consumer group has committed offsets up to the end of the topics it reads.
    public func waitUntilQuiet(timeout: Duration = .seconds(60)) async throws {
        let running = Self.consumerGroups.filter { processes[$0.service]?.isRunning == true }
        var lookers: [(group: String, topics: [String], consumer: KafkaConsumer)] = []
        func closeAll() async { for looker in lookers { await looker.consumer.close() } }
        for entry in running {
            // A consumer with no topics only looks at the group's offsets; it never joins it.
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(kafka: KafkaConfiguration(bootstrapServers: kafkaBrokers), groupID: entry.group, topics: []),
                logger: TestEnvironment.logger("quiet", level: .error)
            )
            lookers.append((entry.group, entry.topics, consumer))
        }
        let deadline = ContinuousClock.now + timeout
        var moving = "not looked yet"
        do {
            while ContinuousClock.now < deadline, !Task.isCancelled {
                moving = try await whatIsMoving(lookers)
                if moving.isEmpty { break }
                try await Task.sleep(for: .milliseconds(100))
            }
        } catch {
            await closeAll()
            throw error
        }
        await closeAll()
        if moving.isEmpty { return }
        // What the services' Kafka layer said (rebalances, refused stores, consumer errors) is
        // what explains a group that stopped short of the end.
        let kafkaLines = running.map(\.service).flatMap { service in
            logs(service).split(separator: "\n").filter { $0.contains("PaywireKafka") || $0.contains("librdkafka") || $0.contains("retrying") }.suffix(20).map { "\(service): \($0)" }
        }
        throw NotQuiet(description: "the stack did not come to rest within \(timeout): \(moving)\n" + kafkaLines.joined(separator: "\n"))
    }

    /// What still moves, in words; empty when nothing does.
    func whatIsMoving(_ lookers: [(group: String, topics: [String], consumer: KafkaConsumer)]) async throws -> String {
        for (schema, owner) in Self.schemaOwners.sorted(by: { $0.key < $1.key }) where processes[owner]?.isRunning == true {
            let unpublished = try await count(schema, "SELECT count(*)::int FROM \(schema).outbox WHERE published_at IS NULL AND failed_at IS NULL")
            if unpublished > 0 { return "\(unpublished) unpublished outbox rows in \(schema)" }
        }
        if processes["webhook-dispatcher"]?.isRunning == true {
            let busy = try await count("webhooks", "SELECT count(*)::int FROM webhooks.events WHERE (delivery_status = 'pending' AND (next_attempt_at <= now() OR lease_until > now())) OR (delivery_status = 'sending' AND lease_until > now() AND NOT EXISTS (SELECT 1 FROM webhooks.delivery_attempts a WHERE a.attempt_id = event_id))")
            if busy > 0 { return "\(busy) webhook deliveries due or in flight" }
        }
        for looker in lookers {
            for topic in looker.topics {
                let committed = try await looker.consumer.committedOffsets(topic: topic)
                for (partition, marks) in try await looker.consumer.watermarks(topic: topic) {
                    let done = (committed[partition] ?? nil) ?? marks.low
                    if done < marks.high { return "\(looker.group) at \(done) of \(marks.high) on \(topic)[\(partition)]" }
                }
            }
        }
        return ""
    }

    private func count(_ schema: String, _ sql: String) async throws -> Int {
        try await withStackDatabase(databaseURL(owning: schema)) { client in
            for try await value in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int.self) { return value }
            return 0
        }
    }
}
