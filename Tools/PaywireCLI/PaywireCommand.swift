import ArgumentParser
import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime

/// `paywire`: the operator's command line. It reads the same environment as the services
/// (`KAFKA_BROKERS`, `PAYWIRE_TOPIC_*`), so it runs beside them with nothing else to set.
@main
struct PaywireCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paywire",
        abstract: "Operate a Paywire installation.",
        subcommands: [DeadLetters.self, Listen.self]
    )
}

struct KafkaOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers (default: $KAFKA_BROKERS or 127.0.0.1:9092).")
    var brokers: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }
    /// The services' own Kafka settings: brokers, and security (`KAFKA_SECURITY_PROTOCOL`,
    /// `KAFKA_SASL_*`, `KAFKA_SSL_CA_LOCATION`) read and checked as they read them, so the command
    /// reaches a cluster that only takes authenticated clients (the compose stack's).
    var kafka: KafkaConfiguration {
        get throws {
            let security = try KafkaSecurity(environment: environment)
            return KafkaConfiguration(bootstrapServers: brokers ?? environment["KAFKA_BROKERS"] ?? ServiceConfiguration.defaultKafkaBrokers, clientID: "paywire-cli", properties: security.properties)
        }
    }
    var topics: TopicNames { TopicNames(environment: environment) }
    var logger: Logger {
        var logger = Logger(label: "paywire.cli")
        logger.logLevel = .error
        return logger
    }
}

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deadletters",
        abstract: "Messages a consumer could never process, and replaying one after a fix.",
        subcommands: [List.self, Replay.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, oldest first: id, when, original topic and offset, reason, error.")

        @OptionGroup var kafka: KafkaOptions
        @Flag(help: "One JSON object per line instead of a table.") var json = false

        func run() async throws {
            let records = try await DeadLetterArchive.read(kafka: try kafka.kafka, topic: kafka.topics.deadLetter, logger: kafka.logger)
            if records.isEmpty && !json { print("no dead letters on \(kafka.topics.deadLetter)") }
            for record in records {
                let letter = record.letter
                if json {
                    let line: JSONValue = .object([
                        "id": .string(record.id), "dead_lettered_at": .string(PaywireJSON.format(letter.deadLetteredAt)),
                        "original_topic": .string(letter.originalTopic), "original_partition": .number(Double(letter.originalPartition)),
                        "original_offset": .number(Double(letter.originalOffset)), "original_key": letter.originalKey.map(JSONValue.string) ?? .null,
                        "reason": .string(letter.reason), "error": .string(letter.error), "consumer_group": .string(letter.consumerGroup),
                        "size_bytes": .number(Double(letter.originalValue.count)),
                    ])
                    print(try PaywireJSON.text(line))
                } else {
                    print("\(record.id)\t\(PaywireJSON.format(letter.deadLetteredAt))\t\(letter.originalTopic)[\(letter.originalPartition)]@\(letter.originalOffset)\tkey=\(letter.originalKey ?? "-")\t\(letter.reason)\t\(letter.error)")
                }
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a dead letter's original message back to its topic (after the fix that lets it through).")

        @OptionGroup var kafka: KafkaOptions
        @Argument(help: "The dead letter's id as `list` prints it (partition:offset on the dead-letter topic).") var id: String

        func run() async throws {
            let records = try await DeadLetterArchive.read(kafka: try kafka.kafka, topic: kafka.topics.deadLetter, logger: kafka.logger)
            guard let record = records.first(where: { $0.id == id }) else {
                throw CommandLineError("no dead letter \(id) on \(kafka.topics.deadLetter); `paywire deadletters list` shows the ids")
            }
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: try kafka.kafka), logger: kafka.logger)
            do {
                try await DeadLetterArchive.replay(record, producer: producer)
            } catch {
                await producer.shutdown()
                throw error
            }
            await producer.shutdown()
            print("replayed \(id) to \(record.letter.originalTopic) (key \(record.letter.originalKey ?? "-"))")
        }
    }
}
