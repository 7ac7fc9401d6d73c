import AsyncHTTPClient
import Hummingbird
import Logging
import PaywireRuntime
import PaywireStore

public enum PaymentCoreService {
    public static let name = "payment-core"
    public static let defaultPort = 8081
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = PaymentSettings.environmentKeys + StripeConnector.environmentKeys + AdyenConnector.environmentKeys + [CardVaultClient.environmentKey, CommandSigner.environmentKey] + ConfigurationCopy.environmentKeys

    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let encryptionKey = try ServiceConfiguration.encryptionKey(configuration.environment)
        let settings = try PaymentSettings(environment: configuration.environment)
        let stripe = try StripeConnector(environment: configuration.environment, http: HTTPClient.shared, timeout: settings.connectorTimeout)
        let adyen = try AdyenConnector(environment: configuration.environment, http: HTTPClient.shared, timeout: settings.connectorTimeout)
        let copy = ConfigurationCopy(schema: PaymentsSchema.name, postgres: infrastructure.postgres, logger: logger)
        let operations = PaymentOperations(
            postgres: infrastructure.postgres,
            connectors: ConnectorRegistry([SandboxConnector(), stripe, adyen]),
            accounts: ConnectorAccountRepository(copy: copy, secrets: try SecretBox(base64Key: encryptionKey)),
            vault: CardVaultClient(http: HTTPClient.shared, signer: try CardVaultSigner(encryptionKey: encryptionKey), allowedHosts: try CardVaultClient.allowedHosts(configuration.environment)),
            secrets: try SecretBox(base64Key: encryptionKey),
            topics: configuration.topics,
            settings: settings,
            logger: logger
        )
        let handler = PaymentCommandHandler(
            operations: operations, producer: infrastructure.producer, topics: configuration.topics,
            signer: try CommandSigner(environment: configuration.environment), configuration: copy, logger: logger
        )
        let notifications = DatabaseNotifications(schema: PaymentsSchema.name, client: infrastructure.postgres, logger: logger)
        let relay = OutboxRelay(schema: PaymentsSchema.name, client: infrastructure.postgres, producer: infrastructure.producer, logger: logger,
                                idleInterval: configuration.idleCheck, wake: notifications.signal("outbox"))
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: PaywireTracing.httpMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        IncomingWebhookRoutes(operations: operations, logger: logger).add(to: router)
        PaymentReadAPI(postgres: infrastructure.postgres, signer: try InternalAPISigner(encryptionKey: encryptionKey), logger: logger).add(to: router)
        DisputeInternalAPI(operations: operations, signer: try InternalAPISigner(encryptionKey: encryptionKey), logger: logger).add(to: router)
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: PaymentsSchema.migrator) },
                notifications,
                StartUpService(logger: logger) { [gateway = try ConfigurationCopy.gatewayAPI(configuration.environment)] in
                    try await infrastructure.readiness.waitUntilStarted()
                    try await copy.rebuild(from: gateway)
                },
                try infrastructure.messagingRetention(schema: PaymentsSchema.name),
                DeferredService(waitUntil: infrastructure.readiness.waitUntilStarted, service: relay),
                PaymentStatusSync(operations: operations, waitUntil: infrastructure.readiness.waitUntilStarted),
                // The same member keeps the configuration copy that commands wait for.
                infrastructure.consumer(groupID: "payment-core", topics: [configuration.topics.paymentCommands], configurationCopy: copy,
                                        concurrentKeys: true, lowLatency: true, handler: handler.handle),
                infrastructure.httpServer(router: router),
            ],
            logger: logger
        )
    }
}
