import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore

public enum RecoverySchedulerService {
    public static let name = "recovery-scheduler"
    public static let defaultPort = 8082
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = ConfigurationCopy.environmentKeys

    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let processed = ProcessedMessages(schema: RecoverySchema.name, consumer: "recovery-inputs")
        let postgres = infrastructure.postgres
        let copy = ConfigurationCopy(schema: RecoverySchema.name, postgres: postgres, logger: logger)
        // The recovery issue adds the process tracker; until then the scheduler is a member of
        // its group on both inputs and records each message, so offsets and dedupe are in place.
        let handler: KafkaConsumerService.Handler = { message in
            let envelope = try EventEnvelope.decode(message.value)
            try await processed.processOnce(messageID: envelope.id, client: postgres, logger: logger) { _ in }
        }
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: RecoverySchema.migrator) },
                try infrastructure.messagingRetention(schema: RecoverySchema.name),
                StartUpService(logger: logger) { [gateway = try ConfigurationCopy.gatewayAPI(configuration.environment)] in
                    try await infrastructure.readiness.waitUntilStarted()
                    try await copy.rebuild(from: gateway)
                },
                infrastructure.consumer(groupID: "recovery-scheduler-configuration", topics: [configuration.topics.configuration], concurrentKeys: true, handler: copy.handle),
                infrastructure.consumer(
                    groupID: "recovery-scheduler",
                    topics: [configuration.topics.recoveryCommands, configuration.topics.paymentEvents],
                    handler: handler
                ),
                infrastructure.httpServer(router: .init(context: PaywireRequestContext.self)),
            ],
            logger: logger
        )
    }
}
