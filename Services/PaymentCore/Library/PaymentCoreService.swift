import Logging
import PaywireRuntime
import PaywireStore

public enum PaymentCoreService {
    public static let name = "payment-core"
    public static let defaultPort = 8081
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = []

    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let handler = PaymentCommandHandler(postgres: infrastructure.postgres, topics: configuration.topics, logger: logger)
        let relay = OutboxRelay(schema: PaymentsSchema.name, client: infrastructure.postgres, producer: infrastructure.producer, logger: logger)
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: PaymentsSchema.migrator) },
                DeferredService(waitUntil: infrastructure.readiness.waitUntilStarted, service: relay),
                infrastructure.consumer(groupID: "payment-core", topics: [configuration.topics.paymentCommands], handler: handler.handle),
                infrastructure.httpServer(router: .init(context: PaywireRequestContext.self)),
            ],
            logger: logger
        )
    }
}
