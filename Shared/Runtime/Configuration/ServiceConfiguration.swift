import Logging
import PaywireKafka
import PaywireModels
import PaywireStore

/// What every service reads from its environment. Each variable and its default is listed in
/// README.md; `docker/docker-compose.yml` sets the same names.
public struct ServiceConfiguration: Sendable {
    public var serviceName: String
    public var httpHost: String
    public var httpPort: Int
    public var databaseURL: String
    public var databaseMaxConnections: Int
    public var kafkaBrokers: String
    public var topics: TopicNames
    public var topicPartitions: Int
    /// librdkafka's `message.max.bytes`, set explicitly (the broker's and topics' limits must be
    /// at least this) and checked at start-up against the largest message a service can produce.
    public var kafkaMessageMaxBytes: Int
    public var kafkaSecurity: KafkaSecurity
    /// How long a fetch waits at the broker when there is nothing to read
    /// (`KAFKA_FETCH_WAIT_MAX_MS`, default 500 as Kafka's own). Kafka answers as soon as data
    /// arrives, so this costs no latency there, and an idle consumer asks twice a second. The dev
    /// broker (librdkafka's mock cluster) always waits the whole time, so the dev stack and the
    /// tests set it low.
    public var kafkaFetchWaitMilliseconds: Int
    /// How often an idle loop that is woken by notifications also looks by itself.
    public var idleCheck: Duration
    public var logLevel: Logger.Level
    /// The whole environment, for service-specific settings.
    public var environment: [String: String]

    /// Every variable the shared runtime reads, for the compose-file check.
    public static let environmentKeys: [String] = [
        "HTTP_HOST", "HTTP_PORT", "DATABASE_URL", "DATABASE_MAX_CONNECTIONS", "KAFKA_BROKERS",
        "KAFKA_TOPIC_PARTITIONS", "KAFKA_MESSAGE_MAX_BYTES", "LOG_LEVEL", "PAYWIRE_ENCRYPTION_KEY",
        Liveness.stallKey, "KAFKA_FETCH_WAIT_MAX_MS", idleCheckKey,
    ] + TopicNames.environmentKeys + KafkaSecurity.environmentKeys + MessagingRetention.environmentKeys + PaywireTracing.environmentKeys

    public static let defaultDatabaseURL = "postgres://paywire:paywire@127.0.0.1:5432/paywire"
    public static let defaultKafkaBrokers = "127.0.0.1:9092"

    public init(serviceName: String, defaultPort: Int, environment: [String: String]) throws {
        self.serviceName = serviceName
        self.environment = environment
        httpHost = environment["HTTP_HOST"] ?? "127.0.0.1"
        httpPort = try Self.integer(environment, "HTTP_PORT", default: defaultPort, range: 0...65535)
        databaseURL = environment["DATABASE_URL"] ?? Self.defaultDatabaseURL
        databaseMaxConnections = try Self.integer(environment, "DATABASE_MAX_CONNECTIONS", default: 10, range: 1...500)
        kafkaBrokers = environment["KAFKA_BROKERS"] ?? Self.defaultKafkaBrokers
        topics = TopicNames(environment: environment)
        topicPartitions = try Self.integer(environment, "KAFKA_TOPIC_PARTITIONS", default: 6, range: 1...1000)
        kafkaMessageMaxBytes = try Self.integer(environment, "KAFKA_MESSAGE_MAX_BYTES", default: 1_000_000, range: 1000...1_000_000_000)
        guard kafkaMessageMaxBytes >= InputLimits.largestDeadLetterBytes else {
            throw ConfigurationError(key: "KAFKA_MESSAGE_MAX_BYTES", reason: "at least \(InputLimits.largestDeadLetterBytes): the largest message a service produces (a dead letter of the largest event) must fit")
        }
        kafkaSecurity = try KafkaSecurity(environment: environment)
        kafkaFetchWaitMilliseconds = try Self.integer(environment, "KAFKA_FETCH_WAIT_MAX_MS", default: 500, range: 1...10_000)
        idleCheck = try Self.idleCheck(environment)
        let levelText = environment["LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ConfigurationError(key: "LOG_LEVEL", reason: "one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
    }

    public struct ConfigurationError: Error, CustomStringConvertible {
        public let key: String
        public let reason: String
        public init(key: String, reason: String) {
            self.key = key
            self.reason = reason
        }
        public var description: String { "\(key): expected \(reason)" }
    }

    public static func integer(_ environment: [String: String], _ key: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = environment[key] else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw ConfigurationError(key: key, reason: "an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }

    /// `true` or `false` (any other value is refused, naming the key).
    public static func boolean(_ environment: [String: String], _ key: String, default value: Bool) throws -> Bool {
        guard let text = environment[key] else { return value }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw ConfigurationError(key: key, reason: "true or false")
        }
    }

    public static let idleCheckKey = "PAYWIRE_IDLE_CHECK_SECONDS"

    /// `PAYWIRE_IDLE_CHECK_SECONDS` (default 2): loops woken by database notifications (outbox
    /// relays, the delivery worker) also look for work this often, which bounds the delay after a
    /// notification missed while the listening connection was replaced.
    public static func idleCheck(_ environment: [String: String]) throws -> Duration {
        .seconds(try integer(environment, idleCheckKey, default: 10, range: 1...3600))
    }

    /// The AES-256 key that seals secrets at rest (base64 of 32 bytes). Services that read or
    /// write secrets refuse to start without it rather than fall back to a known key.
    public static func encryptionKey(_ environment: [String: String]) throws -> String {
        guard let key = environment["PAYWIRE_ENCRYPTION_KEY"], !key.isEmpty else {
            throw ConfigurationError(key: "PAYWIRE_ENCRYPTION_KEY", reason: "base64 of 32 random bytes (openssl rand -base64 32)")
        }
        return key
    }

    public var database: DatabaseConfiguration {
        get throws { try DatabaseConfiguration(url: databaseURL, maxConnections: databaseMaxConnections) }
    }

    public var kafka: KafkaConfiguration {
        KafkaConfiguration(
            bootstrapServers: kafkaBrokers, clientID: "paywire-\(serviceName)",
            properties: kafkaSecurity.properties.merging(["message.max.bytes": String(kafkaMessageMaxBytes)]) { _, limit in limit }
        )
    }

    public var topicSpecs: [KafkaTopicSpec] {
        topics.all.map { KafkaTopicSpec(name: $0, partitions: topicPartitions) }
    }
}
