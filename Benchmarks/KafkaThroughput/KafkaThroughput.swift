import ArgumentParser
import Foundation
import Logging
import PaywireKafka

/// Produce and consume throughput of Paywire's librdkafka wrapper beside `kcat` (librdkafka's own
/// command-line client) on the same broker in the same run. The ratio is what matters: both go
/// through the same C library, so it measures what our Swift layer costs.
@main
struct KafkaThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kafka-throughput")

    @Option(help: "Bootstrap servers (the dev broker's).") var brokers: String
    @Option(help: "Messages to produce per client.") var produceMessages = 300_000
    @Option(help: "Messages to consume per client (keep within the mock cluster's ~5 MB per partition).") var consumeMessages = 250_000
    @Option(help: "Message size in bytes.") var size = 450
    @Option(help: "Rounds; the best round of each client is reported.") var rounds = 3
    @Flag(help: "Print per-round details.") var verbose = false
    @Option(help: "librdkafka debug contexts for our consumer (e.g. cgrp,fetch), logged to stderr.") var kafkaDebug: String?
    @Flag(help: "Give our messages keys (kcat's lines have none, so the default compares like with like).") var keyed = false
    @Option(help: "Topic prefix; the dev broker must have created <prefix>.produce.{ours,kcat}.N (6 partitions) and <prefix>.consume (32).") var topicPrefix = "bench"

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let payload = String(repeating: "x", count: size)
        let kafka = KafkaConfiguration(bootstrapServers: brokers, clientID: "bench")
        let producerConfiguration = KafkaProducerConfiguration(kafka: kafka, lingerMilliseconds: 5)

        // Lines for kcat: one message per line.
        let lines = FileManager.default.temporaryDirectory.appendingPathComponent("kcat-bench-\(getpid()).txt")
        try String(repeating: payload + "\n", count: produceMessages).write(to: lines, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: lines) }

        var oursProduce: [Double] = [], kcatProduce: [Double] = []
        for round in 0..<rounds {
            let oursTopic = "\(topicPrefix).produce.ours.\(round)"
            let kcatTopic = "\(topicPrefix).produce.kcat.\(round)"
            let producer = try KafkaProducer(configuration: producerConfiguration, logger: logger)
            _ = try await producer.send(KafkaProducerMessage(topic: oursTopic, key: "warm-up", value: Array("warm-up".utf8)))
            let messages = (0..<produceMessages).map { index in
                KafkaProducerMessage(topic: oursTopic, key: keyed ? "k\(index % 1000)" : nil, value: Array(payload.utf8))
            }
            let started = ContinuousClock.now
            let results = try await producer.sendBatch(messages)
            let elapsed = ContinuousClock.now - started
            let failures = results.filter { if case .failure = $0 { true } else { false } }.count
            guard failures == 0 else { throw ValidationError("\(failures) messages failed") }
            await producer.shutdown()
            oursProduce.append(Double(produceMessages) / elapsed.seconds)

            let kcatElapsed = try runKcat([
                "-P", "-b", brokers, "-t", kcatTopic, "-K", ":", "-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5",
                "-X", "queue.buffering.max.messages=1000000", "-X", "batch.num.messages=10000", "-l", lines.path,
            ])
            kcatProduce.append(Double(produceMessages) / kcatElapsed)
        }

        // Consume: fill one topic once, then each client reads it from the beginning in a fresh group.
        let consumeTopic = "\(topicPrefix).consume"
        let filler = try KafkaProducer(configuration: producerConfiguration, logger: logger)
        _ = try await filler.sendBatch((0..<consumeMessages).map { index in
            KafkaProducerMessage(topic: consumeTopic, key: "k\(index % 1000)", value: Array(payload.utf8))
        })
        await filler.shutdown()
        var oursConsume: [Double] = [], kcatConsume: [Double] = []
        for round in 0..<rounds {
            // Both clients are timed the same way: from creation until N messages, less the same
            // for one message, each in a fresh group. That removes group join and the first
            // rebalance from both figures alike.
            let full = try await timeOurConsumer(kafka: kafka, topic: consumeTopic, group: "bench-ours-\(round)-\(getpid())", count: consumeMessages, logger: logger)
            let probe = try await timeOurConsumer(kafka: kafka, topic: consumeTopic, group: "bench-ours-\(round)-\(getpid())-probe", count: 1, logger: logger)
            oursConsume.append(Double(consumeMessages - 1) / max(0.001, full - probe))
            if verbose { print(String(format: "  consumer round %d: %.3f s for %d, %.3f s for 1", round, full, consumeMessages, probe)) }

            let kcatElapsed = try runKcat([
                "-C", "-b", brokers, "-G", "bench-kcat-\(round)-\(getpid())", "-X", "auto.offset.reset=earliest",
                "-c", String(consumeMessages), "-q", "-f", "", consumeTopic,
            ], excludeStartup: true)
            kcatConsume.append(Double(consumeMessages - 1) / kcatElapsed)
        }

        let produceRatio = oursProduce.max()! / kcatProduce.max()!
        let consumeRatio = oursConsume.max()! / kcatConsume.max()!
        print("Kafka throughput, \(size)-byte messages, produce to 6 partitions (\(produceMessages) msgs), consume from 32 (\(consumeMessages) msgs), best of \(rounds), dev broker at \(brokers)")
        print(String(format: "  produce: paywire %9.0f msg/s   kcat %9.0f msg/s   ratio %.2f (target >= 0.70)", oursProduce.max()!, kcatProduce.max()!, produceRatio))
        print(String(format: "  consume: paywire %9.0f msg/s   kcat %9.0f msg/s   ratio %.2f (target >= 0.70)", oursConsume.max()!, kcatConsume.max()!, consumeRatio))
        print("  per round produce paywire \(oursProduce.map { Int($0) }) kcat \(kcatProduce.map { Int($0) })")
        print("  per round consume paywire \(oursConsume.map { Int($0) }) kcat \(kcatConsume.map { Int($0) })")
    }

    func timeOurConsumer(kafka: KafkaConfiguration, topic: String, group: String, count: Int, logger: Logger) async throws -> Double {
        let started = ContinuousClock.now
        var kafka = kafka
        var logger = logger
        if let kafkaDebug {
            kafka.properties["debug"] = kafkaDebug
            logger.logLevel = .debug
        }
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(kafka: kafka, groupID: group, topics: [topic]), logger: logger)
        var received = 0
        while received < count {
            let batch = try await consumer.poll(maxMessages: min(1000, count - received), timeout: .milliseconds(100))
            var last: [KafkaTopicPartition: Int64] = [:]
            for message in batch { received += 1; last[message.topicPartition] = message.offset }
            consumer.storeOffsets(last)
        }
        let elapsed = (ContinuousClock.now - started).seconds
        await consumer.close()
        return elapsed
    }

    /// Runs kcat and returns its wall-clock seconds. For consumers, the time until the first
    /// message is excluded (group join), as for our consumer, by subtracting a run that reads one.
    func runKcat(_ arguments: [String], excludeStartup: Bool = false) throws -> Double {
        func timed(_ arguments: [String]) throws -> Double {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            let started = ContinuousClock.now
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("kcat exited \(process.terminationStatus)") }
            return (ContinuousClock.now - started).seconds
        }
        let total = try timed(arguments)
        guard excludeStartup else { return total }
        var probe = arguments
        if let index = probe.firstIndex(of: "-c") { probe[index + 1] = "1" }
        if let index = probe.firstIndex(of: "-G") { probe[index + 1] += "-probe" }
        return max(0.001, total - (try timed(probe)))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
