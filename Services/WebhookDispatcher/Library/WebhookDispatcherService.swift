import Hummingbird
import Logging
import PaywireRuntime
import PaywireStore

public enum WebhookDispatcherService {
    public static let name = "webhook-dispatcher"
    public static let defaultPort = 8083
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = DeliverySettings.environmentKeys + DeliveryHousekeeping.environmentKeys + ConfigurationCopy.environmentKeys

    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let secrets = try SecretBox(base64Key: try ServiceConfiguration.encryptionKey(configuration.environment))
        let copy = ConfigurationCopy(schema: WebhooksSchema.name, postgres: infrastructure.postgres, logger: logger)
        let repository = ConfigurationRepository(copy: copy, secrets: secrets, logger: logger)
        let notifications = DatabaseNotifications(schema: WebhooksSchema.name, client: infrastructure.postgres, logger: logger)
        let worker = DeliveryWorker(postgres: infrastructure.postgres, configuration: repository, logger: logger, settings: try DeliverySettings(environment: configuration.environment),
                                    wake: notifications.signal("deliveries"))
        let fanOut = EventFanOut(postgres: infrastructure.postgres, configuration: repository, logger: logger, worker: worker)
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: PaywireTracing.httpMiddleware())
        EventsAPI(log: EventLog(postgres: infrastructure.postgres, worker: worker, logger: logger), health: worker.health)
            .addRoutes(to: router, signer: try InternalAPISigner(encryptionKey: try ServiceConfiguration.encryptionKey(configuration.environment)))
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: WebhooksSchema.migrator) },
                notifications,
                StartUpService(logger: logger) { [gateway = try ConfigurationCopy.gatewayAPI(configuration.environment)] in
                    try await infrastructure.readiness.waitUntilStarted()
                    try await copy.rebuild(from: gateway)
                },
                try infrastructure.messagingRetention(schema: WebhooksSchema.name),
                DeferredService(waitUntil: infrastructure.readiness.waitUntilStarted, service: worker),
                DeferredService(waitUntil: infrastructure.readiness.waitUntilStarted, service: try DeliveryHousekeeping(postgres: infrastructure.postgres, logger: logger, environment: configuration.environment)),
                // Keys (objects) concurrently, each in order: the fan-out batches what arrives together.
                // The same member keeps the configuration copy that events wait for.
                infrastructure.consumer(groupID: "webhook-dispatcher", topics: [configuration.topics.paymentEvents, configuration.topics.recoveryEvents],
                                        configurationCopy: copy, concurrentKeys: true, handler: fanOut.handle),
                infrastructure.httpServer(router: router),
            ],
            logger: logger
        )
    }
}
