import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

public enum GatewayService {
    public static let name = "gateway"
    public static let defaultPort = 8080
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = ["PAYWIRE_ADMIN_API_KEY", NetworkAddressPolicy.allowPrivateKey, CommandSigner.environmentKey] + GatewayPaymentAPI.environmentKeys + IncomingWebhookProxy.environmentKeys + EventsLogProxy.environmentKeys

    /// The gateway's routes (the operational ones are added by `httpServer`).
    static func makeRouter(_ api: GatewayAPI) -> Router<PaywireRequestContext> {
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        api.addRoutes(to: router)
        let document = GatewayOpenAPI.document
        router.get("/openapi.json") { _, _ in JSONResponse(document) }
        return router
    }

    /// The routes' dependencies, and the reply matcher the reply consumer feeds.
    static func makeAPI(_ infrastructure: ServiceInfrastructure, adminKey: String?) throws -> (GatewayAPI, GatewayReplies) {
        let configuration = infrastructure.configuration
        let logger = infrastructure.logger
        let encryptionKey = try ServiceConfiguration.encryptionKey(configuration.environment)
        let secrets = try SecretBox(base64Key: encryptionKey)
        let signer = try InternalRequestSigner(encryptionKey: encryptionKey)
        let replyTimeout = Duration.milliseconds(try ServiceConfiguration.integer(configuration.environment, "PAYWIRE_REPLY_TIMEOUT_MS", default: 25_000, range: 10...600_000))
        let listener = try internalListener(configuration)
        let reachableHost = ["0.0.0.0", "::", ""].contains(listener.host) ? "127.0.0.1" : listener.host
        let internalURL = configuration.environment["PAYWIRE_GATEWAY_INTERNAL_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://\(reachableHost):\(listener.port)"
        // Each replica reads all replies in a group of its own, from the end: it only needs
        // replies to requests it sends from now on.
        let replies = GatewayReplies(instanceId: "gateway-" + GatewayIdentifiers.random(12), logger: logger)
        let paymentCoreURL = configuration.environment["PAYWIRE_PAYMENT_CORE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8081"
        let payments = GatewayPaymentAPI(
            infrastructure: infrastructure,
            authentication: GatewayAuthentication(adminKey: adminKey, postgres: infrastructure.postgres, logger: logger),
            replies: replies,
            vault: try CardVault(internalURL: internalURL, signer: try CardVaultSigner(encryptionKey: encryptionKey)),
            idempotency: IdempotencyStore(postgres: infrastructure.postgres, signer: signer, logger: logger, lease: replyTimeout + .seconds(5)),
            replyTimeout: replyTimeout,
            commandSigner: try CommandSigner(environment: configuration.environment),
            paymentCore: PaymentCoreClient(api: InternalAPIClient(baseURL: paymentCoreURL, signer: try InternalAPISigner(encryptionKey: encryptionKey), http: .shared), logger: logger)
        )
        let webhooks = IncomingWebhookProxy(paymentCoreURL: paymentCoreURL.hasSuffix("/") ? String(paymentCoreURL.dropLast()) : paymentCoreURL, http: .shared, logger: logger)
        let dispatcherURL = configuration.environment["PAYWIRE_WEBHOOK_DISPATCHER_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8083"
        let internalSigner = try InternalAPISigner(encryptionKey: encryptionKey)
        let events = EventsLogProxy(
            dispatcher: InternalAPIClient(baseURL: dispatcherURL, signer: internalSigner, http: .shared),
            authentication: GatewayAuthentication(adminKey: adminKey, postgres: infrastructure.postgres, logger: logger),
            logger: logger
        )
        return (GatewayAPI(infrastructure: infrastructure, adminKey: adminKey, secrets: secrets, payments: payments, webhooks: webhooks, events: events), replies)
    }

    /// Where the internal listener (the card vault, for payment-core) listens: loopback unless
    /// told otherwise, and never on the public port.
    static func internalListener(_ configuration: ServiceConfiguration) throws -> (host: String, port: Int) {
        let host = configuration.environment["PAYWIRE_GATEWAY_INTERNAL_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        let port = try ServiceConfiguration.integer(configuration.environment, "PAYWIRE_GATEWAY_INTERNAL_PORT", default: 8090, range: 1...65535)
        guard port != configuration.httpPort else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_GATEWAY_INTERNAL_PORT", reason: "a port other than HTTP_PORT")
        }
        return (host, port)
    }

    /// Everything the gateway runs; `main` and the tests both call this.
    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let adminKey = configuration.environment["PAYWIRE_ADMIN_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if adminKey == nil {
            logger.warning("PAYWIRE_ADMIN_API_KEY is not set: admin routes refuse every request")
        }
        let (api, replies) = try makeAPI(infrastructure, adminKey: adminKey)
        let router = makeRouter(api)
        let internalRouter = Router(context: PaywireRequestContext.self)
        internalRouter.add(middleware: JSONErrorMiddleware())
        api.payments.vault.addRoutes(to: internalRouter)
        ConfigurationSnapshotAPI(
            postgres: infrastructure.postgres, signer: try InternalAPISigner(encryptionKey: try ServiceConfiguration.encryptionKey(configuration.environment)), logger: logger
        ).addRoutes(to: internalRouter)
        let listener = try internalListener(configuration)
        let readiness = infrastructure.readiness
        readiness.require("replies")
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: GatewaySchema.migrator) },
                try infrastructure.messagingRetention(schema: GatewaySchema.name),
                infrastructure.consumer(
                    groupID: replies.instanceId,
                    topics: [configuration.topics.gatewayReplies],
                    autoOffsetReset: "latest",
                    concurrentKeys: false,
                    lowLatency: true,
                    onAssigned: { _ in readiness.satisfy("replies") },
                    handler: replies.handle
                ),
                IdempotencyKeyExpiry(postgres: infrastructure.postgres, logger: logger, waitUntil: readiness.waitUntilStarted),
                // Configuration changes (and anything else the gateway enqueues) leave through its outbox.
                DeferredService(
                    waitUntil: readiness.waitUntilStarted,
                    service: OutboxRelay(schema: GatewaySchema.name, client: infrastructure.postgres, producer: infrastructure.producer, logger: logger)
                ),
                ServiceInfrastructure.application(router: internalRouter, host: listener.host, port: listener.port, serverName: "paywire-gateway-internal", logger: logger),
                infrastructure.httpServer(router: router),
            ],
            logger: logger
        )
    }
}

struct GatewayAPI: Sendable {
    let infrastructure: ServiceInfrastructure
    let authentication: GatewayAuthentication
    let store: GatewayConfigurationStore
    let connectors: ConnectorAccountStore
    let payments: GatewayPaymentAPI
    let webhooks: IncomingWebhookProxy
    let events: EventsLogProxy

    init(infrastructure: ServiceInfrastructure, adminKey: String?, secrets: SecretBox, payments: GatewayPaymentAPI, webhooks: IncomingWebhookProxy, events: EventsLogProxy) {
        self.payments = payments
        self.events = events
        self.webhooks = webhooks
        self.infrastructure = infrastructure
        authentication = GatewayAuthentication(adminKey: adminKey, postgres: infrastructure.postgres, logger: infrastructure.logger)
        var store = GatewayConfigurationStore(postgres: infrastructure.postgres, secrets: secrets, logger: infrastructure.logger)
        store.allowPrivateNetworks = NetworkAddressPolicy.allowsPrivateNetworks(infrastructure.configuration.environment)
        store.publisher = ConfigurationPublisher(topic: infrastructure.configuration.topics.configuration, logger: infrastructure.logger)
        self.store = store
        connectors = ConnectorAccountStore(postgres: infrastructure.postgres, secrets: secrets, logger: infrastructure.logger, configuration: store)
    }

    var postgres: PostgresClient { infrastructure.postgres }
    var logger: Logger { infrastructure.logger }

    func addRoutes(to router: Router<PaywireRequestContext>) {
        let auth = authentication
        let store = store
        let events = events

        // Merchant accounts
        router.post("/accounts") { request, context in
            try await auth.requireAdmin(request)
            return JSONResponse(try await store.createMerchant(try await RequestObject.read(from: request, context: context)))
        }
        router.get("/accounts/:merchant_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            guard let account = try await store.merchantResponse(merchantId) else { throw APIError.notFound("Merchant account") }
            return JSONResponse(account)
        }
        router.post("/accounts/:merchant_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.updateMerchant(merchantId, try await RequestObject.read(from: request, context: context)))
        }
        router.delete("/accounts/:merchant_id") { request, context in
            let merchantId = try context.pathParameter("merchant_id")
            try await auth.requireAdmin(request)
            return JSONResponse(try await store.deleteMerchant(merchantId))
        }

        // API keys
        router.post("/api_keys/:merchant_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.createAPIKey(merchantId: merchantId, try await RequestObject.read(from: request, context: context)))
        }
        router.get("/api_keys/:merchant_id/list") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(.array(try await store.apiKeys(merchantId: merchantId)))
        }
        router.get("/api_keys/:merchant_id/:key_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            guard let key = try await store.apiKeys(merchantId: merchantId, keyId: try context.pathParameter("key_id")).first else {
                throw APIError.notFound("API key")
            }
            return JSONResponse(key)
        }
        router.delete("/api_keys/:merchant_id/:key_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.revokeAPIKey(merchantId: merchantId, keyId: try context.pathParameter("key_id")))
        }

        // Business profiles
        router.post("/account/:merchant_id/business_profile") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.createProfile(merchantId: merchantId, try await RequestObject.read(from: request, context: context)))
        }
        router.get("/account/:merchant_id/business_profile") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.listProfiles(merchantId: merchantId))
        }
        router.get("/account/:merchant_id/business_profile/:profile_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            guard let profile = try await store.profileResponse(merchantId: merchantId, profileId: try context.pathParameter("profile_id")) else {
                throw APIError.notFound("Business profile")
            }
            return JSONResponse(profile)
        }
        router.post("/account/:merchant_id/business_profile/:profile_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.updateProfile(merchantId: merchantId, profileId: try context.pathParameter("profile_id"), try await RequestObject.read(from: request, context: context)))
        }
        router.put("/v2/profiles/:profile_id") { request, context in
            let merchantId = try requiredHeader(request, "x-merchant-id")
            try await auth.requireAccess(request, merchantId: merchantId)
            return JSONResponse(try await store.updateProfile(merchantId: merchantId, profileId: try context.pathParameter("profile_id"), try await RequestObject.read(from: request, context: context)))
        }

        // Webhook endpoints of a profile
        let endpoints = "/account/:merchant_id/business_profile/:profile_id/webhooks"
        router.post(RouterPath(endpoints)) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.createEndpoint(merchantId: merchantId, profileId: profileId, try await RequestObject.read(from: request, context: context)))
        }
        router.get(RouterPath(endpoints)) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            try await store.requireProfile(merchantId: merchantId, profileId: profileId)
            return JSONResponse(.array(try await store.endpointResponses(profileId: profileId)))
        }
        router.get(RouterPath(endpoints + "/:webhook_endpoint_id")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            try await store.requireProfile(merchantId: merchantId, profileId: profileId)
            let endpointId = try context.pathParameter("webhook_endpoint_id")
            guard case .object(var endpoint) = try await store.endpointResponses(profileId: profileId, onlyId: endpointId).first else {
                throw APIError.notFound("Webhook endpoint")
            }
            // The dispatcher's view: how the endpoint has been answering, and whether it has made
            // the endpoint inactive (410, or failing too long) until the merchant changes it.
            let health = await events.endpointHealth(merchantId: merchantId, endpointId: endpointId)
            endpoint["health"] = health ?? .null
            if endpoint["status"] == .string("active"), health?["state"] == .string("inactive") { endpoint["status"] = .string("inactive") }
            return JSONResponse(.object(endpoint))
        }
        router.post(RouterPath(endpoints + "/:webhook_endpoint_id")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.updateEndpoint(merchantId: merchantId, profileId: profileId, endpointId: try context.pathParameter("webhook_endpoint_id"), try await RequestObject.read(from: request, context: context)))
        }
        router.delete(RouterPath(endpoints + "/:webhook_endpoint_id")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.deprecateEndpoint(merchantId: merchantId, profileId: profileId, endpointId: try context.pathParameter("webhook_endpoint_id")))
        }
        router.post(RouterPath(endpoints + "/:webhook_endpoint_id/rotate_secret")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.rotateSecret(merchantId: merchantId, profileId: profileId, endpointId: try context.pathParameter("webhook_endpoint_id")))
        }

        // Connector accounts
        let connectors = connectors
        router.post("/account/:merchant_id/connectors") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await connectors.create(merchantId: merchantId, profileId: nil, try await RequestObject.read(from: request, context: context)))
        }
        router.get("/account/:merchant_id/connectors") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await connectors.list(merchantId: merchantId))
        }
        router.get("/account/:merchant_id/connectors/:merchant_connector_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            guard let account = try await connectors.response(merchantId: merchantId, id: try context.pathParameter("merchant_connector_id")) else {
                throw APIError.notFound("Merchant connector account")
            }
            return JSONResponse(account)
        }
        router.post("/account/:merchant_id/connectors/:merchant_connector_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await connectors.update(merchantId: merchantId, id: try context.pathParameter("merchant_connector_id"), try await RequestObject.read(from: request, context: context)))
        }
        router.delete("/account/:merchant_id/connectors/:merchant_connector_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await connectors.delete(merchantId: merchantId, id: try context.pathParameter("merchant_connector_id")))
        }
        router.post("/v2/connector-accounts") { request, context in
            let merchantId = try requiredHeader(request, "x-merchant-id")
            try await auth.requireAccess(request, merchantId: merchantId)
            let profileId = request.headers[.init("x-profile-id")!]
            if let profileId { try InputText.checkIdentifierText(profileId, field: "x-profile-id") }
            return JSONResponse(try await connectors.create(merchantId: merchantId, profileId: profileId, try await RequestObject.read(from: request, context: context)))
        }
        router.get("/v2/connector-accounts/:merchant_connector_id") { request, context in
            let merchantId = try requiredHeader(request, "x-merchant-id")
            try await auth.requireAccess(request, merchantId: merchantId)
            guard let account = try await connectors.response(merchantId: merchantId, id: try context.pathParameter("merchant_connector_id")) else {
                throw APIError.notFound("Merchant connector account")
            }
            return JSONResponse(account)
        }

        payments.addRoutes(to: router)
        webhooks.addRoutes(to: router)
        events.addRoutes(to: router)
    }

    func requiredHeader(_ request: Request, _ name: String) throws -> String {
        guard let value = request.headers[.init(name)!], !value.isEmpty else { throw APIError.invalid(name, "header is required", code: "IR_05") }
        try InputText.checkIdentifierText(value, field: name)
        return value
    }

    /// The `{merchant_id}` of the path, once the caller is allowed to act for it.
    func merchantScope(_ request: Request, _ context: PaywireRequestContext) async throws -> String {
        let merchantId = try context.pathParameter("merchant_id")
        try await authentication.requireAccess(request, merchantId: merchantId)
        return merchantId
    }

    func scope(_ request: Request, _ context: PaywireRequestContext) async throws -> (String, String) {
        (try await merchantScope(request, context), try context.pathParameter("profile_id"))
    }
}

