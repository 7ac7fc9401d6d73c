import Foundation
import Hummingbird
import Logging
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore

public enum RecoverySchedulerService {
    public static let name = "recovery-scheduler"
    public static let defaultPort = 8082
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = ConfigurationCopy.environmentKeys + RecoveryRetryPolicy.environmentKeys
        + RecoveryTaskRunner.environmentKeys + RecoveryInternalAPI.environmentKeys + [CommandSigner.environmentKey]

    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let environment = configuration.environment
        let encryptionKey = try ServiceConfiguration.encryptionKey(environment)
        let postgres = infrastructure.postgres
        let copy = ConfigurationCopy(schema: RecoverySchema.name, postgres: postgres, logger: logger)
        let signer = try CommandSigner(environment: environment)
        let clockControl = environment["PAYWIRE_RECOVERY_CLOCK_CONTROL"] == "true"
        let notifications = DatabaseNotifications(schema: RecoverySchema.name, client: postgres, logger: logger)
        let jobs = RecoveryJobs(
            postgres: postgres, secrets: try SecretBox(base64Key: encryptionKey), copy: copy, policy: try RecoveryRetryPolicy(environment: environment),
            clock: RecoveryClock(moved: notifications.signal("tasks")), topics: configuration.topics, logger: logger
        )
        var runner = RecoveryTaskRunner(
            jobs: jobs, producer: infrastructure.producer, signer: signer,
            interval: .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_RECOVERY_INTERVAL_MS", default: 30_000, range: 10...600_000)),
            batchSize: try ServiceConfiguration.integer(environment, "PAYWIRE_RECOVERY_BATCH", default: 500, range: 1...10_000),
            outcomeTimeout: Double(try ServiceConfiguration.integer(environment, "PAYWIRE_RECOVERY_OUTCOME_TIMEOUT_MS", default: 300_000, range: 1000...86_400_000)) / 1000
        )
        runner.wake = notifications.signal("tasks")
        let topics = configuration.topics
        // Reports from the billing platform (signed by the gateway: checked before anything in
        // them is believed) and the outcomes of this service's own retries.
        let handler: KafkaConsumerService.Handler = { message in
            if message.topic == topics.recoveryCommands {
                guard signer.isValid(message) else { throw PermanentMessageError("recovery command without a valid signature", category: "forged") }
                let envelope: TypedEnvelope<RecoveryCommand>
                do {
                    envelope = try TypedEnvelope<RecoveryCommand>.decode(message.value)
                } catch {
                    throw PermanentMessageError("undecodable recovery command: \(error)", category: "undecodable")
                }
                guard envelope.type == RecoveryIdentifiers.commandType else {
                    throw PermanentMessageError("unknown recovery command type \(envelope.type)", category: "unknown_type")
                }
                var command = envelope.payload
                do {
                    try command.openProcessorToken(with: jobs.secrets)
                } catch {
                    throw PermanentMessageError("recovery command whose processor token does not open", category: "unopenable")
                }
                try await jobs.apply(command, envelopeId: envelope.id, configurationVersion: envelope.configurationVersion)
            } else {
                try await jobs.applyOutcome(try EventEnvelope.decode(message.value))
            }
        }
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: PaywireTracing.httpMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        RecoveryInternalAPI(jobs: jobs, signer: try InternalAPISigner(encryptionKey: encryptionKey), clockControl: clockControl).add(to: router)
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: RecoverySchema.migrator) },
                notifications,
                try infrastructure.messagingRetention(schema: RecoverySchema.name),
                StartUpService(logger: logger) { [gateway = try ConfigurationCopy.gatewayAPI(environment)] in
                    try await infrastructure.readiness.waitUntilStarted()
                    try await copy.rebuild(from: gateway)
                },
                // The final events leave through the outbox.
                DeferredService(
                    waitUntil: infrastructure.readiness.waitUntilStarted,
                    service: OutboxRelay(schema: RecoverySchema.name, client: postgres, producer: infrastructure.producer, logger: logger,
                                         idleInterval: configuration.idleCheck, wake: notifications.signal("outbox"))
                ),
                DeferredService(waitUntil: infrastructure.readiness.waitUntilStarted, service: runner),
                infrastructure.consumer(groupID: "recovery-scheduler", topics: [topics.recoveryCommands, topics.paymentEvents], configurationCopy: copy,
                                        concurrentKeys: true, handler: handler),
                infrastructure.httpServer(router: router),
            ],
            logger: logger
        )
    }
}
