import Foundation
import Hummingbird
import Logging
import PaywireKafka
import PaywireModels
import PaywireStore
import PostgresNIO
import ServiceLifecycle
import UnixSignals

/// The long-running parts of one service, in start order. Shutdown runs in reverse: the HTTP
/// server stops taking work first, consumers finish in-flight messages and leave their groups,
/// the relay makes a last pass, the producer flushes, and the database pool closes last.
public struct PaywireApplication: Sendable {
    public var services: [any Service]
    public var logger: Logger

    public init(services: [any Service], logger: Logger) {
        self.services = services
        self.logger = logger
    }

    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: gracefulShutdownSignals,
                cancellationSignals: [],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// The pieces every service builds the same way from `ServiceConfiguration`.
public struct ServiceInfrastructure: Sendable {
    public let configuration: ServiceConfiguration
    public let postgres: PostgresClient
    public let producer: KafkaProducer
    public let readiness: Readiness
    public let logger: Logger

    public init(configuration: ServiceConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        postgres = PostgresClient(configuration: try configuration.database.clientConfiguration, backgroundLogger: logger)
        producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(kafka: configuration.kafka),
            logger: logger
        )
        readiness = Readiness(postgres: postgres, producer: producer, liveness: try Liveness(environment: configuration.environment, logger: logger))
    }

    /// Start-up work that must finish before consumers and the relay begin: schema migrations
    /// under their advisory lock, and the topics.
    public func startUp(migrator: SchemaMigrator) async throws {
        try await migrator.migrate(client: postgres, logger: logger)
        try await KafkaTopicAdmin.ensureTopics(configuration.topicSpecs, using: producer, logger: logger)
        readiness.markStarted()
    }

    /// The retention sweep of this service's outbox and consumed-message ids.
    public func messagingRetention(schema: String) throws -> MessagingRetention {
        let retention = try MessagingRetention.durations(configuration.environment)
        return MessagingRetention(
            schema: schema, client: postgres, logger: logger, outboxRetention: retention.outbox, processedRetention: retention.processed,
            waitUntil: { [readiness] in try await readiness.waitUntilStarted() }
        )
    }

    /// The service's consumer-group member. With `configurationCopy`, the same member also keeps
    /// the service's copy of merchants' configurations from `paywire.configuration`: one Kafka
    /// client per service instead of two (each librdkafka client costs wake-ups even when idle),
    /// and the configuration's partitions are never paused, since commands and events of this
    /// very consumer may wait for the version they were made under.
    public func consumer(
        groupID: String,
        topics: [String],
        configurationCopy: ConfigurationCopy? = nil,
        autoOffsetReset: String = "earliest",
        assignsFromEnd: Bool = false,
        concurrentKeys: Bool = false,
        lowLatency: Bool = false,
        onAssigned: (@Sendable ([KafkaTopicPartition]) -> Void)? = nil,
        choosePartitions: KafkaConsumerService.PartitionChoice? = nil,
        handler: @escaping KafkaConsumerService.Handler
    ) -> KafkaConsumerService {
        let configurationTopic = configuration.topics.configuration
        var allTopics = topics
        var routed = handler
        if let copy = configurationCopy {
            allTopics.append(configurationTopic)
            routed = { message in
                if message.topic == configurationTopic { try await copy.handle(message) } else { try await handler(message) }
            }
        }
        var consumerConfiguration = KafkaConsumerConfiguration(
            kafka: configuration.kafka, groupID: groupID, topics: allTopics, autoOffsetReset: autoOffsetReset,
            // Consumers off the request path never wait less than 100 ms (the mock broker answers
            // an empty fetch only after the wait, and they need no lower latency).
            fetchWaitMaxMilliseconds: lowLatency ? configuration.kafkaFetchWaitMilliseconds : max(100, configuration.kafkaFetchWaitMilliseconds)
        )
        consumerConfiguration.assignsFromEnd = assignsFromEnd
        return KafkaConsumerService(
            configuration: consumerConfiguration,
            producer: producer,
            deadLetterTopic: configuration.topics.deadLetter,
            logger: logger,
            waitUntil: { [readiness] in try await readiness.waitUntilStarted() },
            concurrentKeys: concurrentKeys,
            onAssigned: onAssigned,
            choosePartitions: choosePartitions,
            liveness: readiness.liveness,
            neverPausedTopics: configurationCopy == nil ? [] : [configurationTopic],
            handler: routed
        )
    }

    public func httpServer(router: Router<PaywireRequestContext>) -> some Service {
        OperationalRoutes.add(to: router, readiness: readiness)
        return Self.application(router: router, configuration: configuration, logger: logger)
    }

    /// The HTTP server every service runs: 405 for known paths asked with another method, and
    /// idle connections closed after a minute so slow or stuck clients cannot hold sockets, and
    /// each request's HTTP version honoured for the connection (`HTTP1ServerChannel`).
    public static func application(router: Router<PaywireRequestContext>, configuration: ServiceConfiguration, logger: Logger) -> some Service {
        application(router: router, host: configuration.httpHost, port: configuration.httpPort, serverName: "paywire-\(configuration.serviceName)", logger: logger)
    }

    /// The same server on another address (a service's internal listener).
    public static func application(router: Router<PaywireRequestContext>, host: String, port: Int, serverName: String, logger: Logger) -> some Service {
        let routes = RouteTable(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })
        return Application(
            responder: MethodCheckingResponder(inner: router.buildResponder(), routes: routes),
            server: .paywireHTTP1(idleTimeout: .seconds(60)),
            configuration: .init(address: .hostname(host, port: port), serverName: serverName),
            logger: logger
        )
    }
}

/// A service whose only job is to run start-up and then wait for shutdown, so that start-up
/// happens even in a service with no consumer.
public struct StartUpService: Service {
    let startUp: @Sendable () async throws -> Void
    let logger: Logger

    public init(logger: Logger, startUp: @escaping @Sendable () async throws -> Void) {
        self.startUp = startUp
        self.logger = logger
    }

    public func run() async throws {
        var delay = Duration.milliseconds(200)
        while true {
            do {
                // SIGTERM ends a start-up that cannot finish (a database or broker away) at once.
                try await cancelWhenGracefulShutdown { try await startUp() }
                break
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.error("start-up failed; retrying", metadata: ["error": .string(String(describing: error))])
                let pause = delay
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
                delay = min(delay * 2, .seconds(5))
            }
        }
        try? await gracefulShutdown()
    }
}

/// What an executable's `main` calls: configure logging, build the service, run it until SIGTERM.
/// A setting missing or malformed stops it with one line naming the setting and exit status 78
/// (`EX_CONFIG`); any other failure to start or to run, with one line and status 1 — never a
/// crash report.
public enum ServiceMain {
    /// `sysexits.h`: a configuration error.
    public static let configurationExitStatus: Int32 = 78

    public static func run(
        serviceName: String,
        defaultPort: Int,
        build: (ServiceConfiguration, Logger) async throws -> PaywireApplication
    ) async {
        let environment = ProcessInfo.processInfo.environment
        let configuration: ServiceConfiguration
        do {
            configuration = try ServiceConfiguration(serviceName: serviceName, defaultPort: defaultPort, environment: environment)
            // Every service seals or opens secrets with it: missing, it is the only line printed.
            _ = try ServiceConfiguration.encryptionKey(environment)
        } catch {
            stop(serviceName, error)
        }
        let tracing = PaywireTracing.isRequested(environment)
        LoggingSystem.bootstrap({ label, provider in
            var handler = JSONLogHandler(label: label, service: serviceName, metadataProvider: provider)
            handler.logLevel = configuration.logLevel
            return handler
        }, metadataProvider: tracing ? PaywireTracing.metadataProvider : nil)
        _ = PaywireMetrics.registry
        ParentWatchdog.startIfRequested(environment: environment)
        let logger = Logger(label: "paywire.\(serviceName)")
        logger.info("starting", metadata: ["http": .string("\(configuration.httpHost):\(configuration.httpPort)"), "kafka": .string(configuration.kafkaBrokers), "tracing": .stringConvertible(tracing)])
        do {
            let exporter = try PaywireTracing.bootstrap(serviceName: serviceName, environment: environment, logger: logger)
            var application = try await build(configuration, logger)
            // First in the group, so it stops last: the spans of the shutdown itself are exported.
            if let exporter { application.services.insert(exporter, at: 0) }
            try await application.run()
        } catch is CancellationError {
            // A part cut short by the shutdown itself (SIGTERM during start-up): a normal stop.
        } catch {
            logger.critical("stopped by an error", metadata: ["error": .string(MessageFailure.loggable(error))])
            stop(serviceName, error)
        }
        logger.info("stopped")
        // Everything has stopped and every log line is written: leave without running the
        // libraries' exit handlers. Under load, one run of the suite saw a service log "stopped"
        // and then not exit for 15 s (an exit handler racing a library thread still winding down).
        fflush(nil)
        _exit(0)
    }

    /// One line on standard error and the exit status for what stopped the service.
    static func stop(_ serviceName: String, _ error: any Error) -> Never {
        let line: String
        let status: Int32
        if let problem = error as? ServiceConfiguration.ConfigurationError {
            line = "\(serviceName): setting \(problem.key) is missing or invalid: expected \(problem.reason)"
            status = configurationExitStatus
        } else {
            line = "\(serviceName): cannot run: \(MessageFailure.loggable(error))"
            status = 1
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
        fflush(nil)
        _exit(status)
    }
}
