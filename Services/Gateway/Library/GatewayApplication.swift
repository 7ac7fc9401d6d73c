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
import ServiceLifecycle

public enum GatewayService {
    public static let name = "gateway"
    public static let defaultPort = 8080
    /// Variables this service reads beyond `ServiceConfiguration.environmentKeys`.
    public static let environmentKeys: [String] = ["PAYWIRE_ADMIN_API_KEY", NetworkAddressPolicy.allowPrivateKey, CommandSigner.environmentKey] + GatewayPaymentAPI.environmentKeys + IncomingWebhookProxy.environmentKeys + EventsLogProxy.environmentKeys
        + RecoveryAPI.environmentKeys + Console.environmentKeys

    /// The gateway's routes (the operational ones are added by `httpServer`).
    static func makeRouter(_ api: GatewayAPI) -> AccessControlledRouter {
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: PaywireTracing.httpMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        let routes = AccessControlledRouter(router: router, authentication: api.authentication)
        api.addRoutes(to: routes)
        let document = GatewayOpenAPI.document
        routes.routes(.open) { $0.get("/openapi.json") { _, _ in JSONResponse(document) } }
        return routes
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
        let internalURL = configuration.environment["PAYWIRE_GATEWAY_INTERNAL_URL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "http://\(advertisedHost(listeningOn: listener.host)):\(listener.port)"
        // Each replica reads its leased reply partition from the end: it only needs replies to
        // requests it sends from now on.
        let replies = GatewayReplies(instanceId: "gateway-" + Identifier.random(12), logger: logger)
        let paymentCoreURL = configuration.environment["PAYWIRE_PAYMENT_CORE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8081"
        let payments = GatewayPaymentAPI(
            infrastructure: infrastructure,
            replies: replies,
            vault: try CardVault(
                internalURL: internalURL, signer: try CardVaultSigner(encryptionKey: encryptionKey),
                lifetime: .seconds(try ServiceConfiguration.integer(configuration.environment, "PAYWIRE_CARD_VAULT_LIFETIME_SECONDS", default: 900, range: 1...3600))
            ),
            idempotency: IdempotencyStore(postgres: infrastructure.postgres, signer: signer, logger: logger, lease: replyTimeout + .seconds(5)),
            replyTimeout: replyTimeout,
            commandSigner: try CommandSigner(environment: configuration.environment),
            paymentCore: PaymentCoreClient(api: InternalAPIClient(baseURL: paymentCoreURL, signer: try InternalAPISigner(encryptionKey: encryptionKey), http: .shared), logger: logger),
            secrets: secrets
        )
        let webhooks = IncomingWebhookProxy(paymentCoreURL: paymentCoreURL.hasSuffix("/") ? String(paymentCoreURL.dropLast()) : paymentCoreURL, http: .shared, logger: logger)
        let dispatcherURL = configuration.environment["PAYWIRE_WEBHOOK_DISPATCHER_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8083"
        let internalSigner = try InternalAPISigner(encryptionKey: encryptionKey)
        let events = EventsLogProxy(
            dispatcher: InternalAPIClient(baseURL: dispatcherURL, signer: internalSigner, http: .shared),
            postgres: infrastructure.postgres,
            logger: logger
        )
        let schedulerURL = configuration.environment["PAYWIRE_RECOVERY_SCHEDULER_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8082"
        let scheduler = InternalAPIClient(baseURL: schedulerURL, signer: internalSigner, http: .shared)
        return (GatewayAPI(infrastructure: infrastructure, adminKey: adminKey, secrets: secrets, payments: payments, webhooks: webhooks, events: events,
                           scheduler: scheduler, commandSigner: try CommandSigner(environment: configuration.environment)), replies)
    }

    /// The console's pages over `responder` (the public API), with sessions in the gateway's database.
    static func makeConsole(_ infrastructure: ServiceInfrastructure, api: GatewayAPI, responder: RouterResponder<PaywireRequestContext>) throws -> Console {
        let configuration = infrastructure.configuration
        let environment = configuration.environment
        let minutes = try ServiceConfiguration.integer(environment, "PAYWIRE_CONSOLE_SESSION_MINUTES", default: 60, range: 1...1440)
        func url(_ key: String, _ fallback: String) -> String {
            let value = environment[key].flatMap { $0.isEmpty ? nil : $0 } ?? fallback
            return value.hasSuffix("/") ? String(value.dropLast()) : value
        }
        return Console(
            api: ConsoleAPIClient(responder: responder),
            sessions: ConsoleSessionStore(
                postgres: infrastructure.postgres, secrets: try SecretBox(base64Key: try ServiceConfiguration.encryptionKey(environment)), logger: infrastructure.logger,
                idleLifetime: .seconds(minutes * 60), absoluteLifetime: .seconds(max(minutes * 60, 12 * 3600))
            ),
            authentication: api.authentication,
            services: [
                ("payment-core", url("PAYWIRE_PAYMENT_CORE_URL", "http://127.0.0.1:8081")),
                ("recovery-scheduler", url("PAYWIRE_RECOVERY_SCHEDULER_URL", "http://127.0.0.1:8082")),
                ("webhook-dispatcher", url("PAYWIRE_WEBHOOK_DISPATCHER_URL", "http://127.0.0.1:8083")),
            ],
            kafka: configuration.kafka,
            deadLetterTopic: configuration.topics.deadLetter,
            alwaysSecure: environment["PAYWIRE_CONSOLE_SECURE_COOKIE"] == "1",
            logger: infrastructure.logger
        )
    }

    /// The address this replica's card vault is reached at, named in every command with a card:
    /// it must be this replica's own, not a name shared by all replicas (a take sent to another
    /// replica finds no card). On all interfaces that is the address the host name resolves to
    /// (a container's or pod's own), else loopback.
    static func advertisedHost(listeningOn host: String) -> String {
        guard ["0.0.0.0", "::", ""].contains(host) else { return host }
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return "127.0.0.1" }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &found) == 0, let first = found else { return "127.0.0.1" }
        defer { freeaddrinfo(found) }
        var candidate = first as UnsafeMutablePointer<addrinfo>?
        while let entry = candidate {
            if let address = entry.pointee.ai_addr {
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer -> String? in
                    var addr = pointer.pointee.sin_addr
                    return inet_ntop(AF_INET, &addr, &text, socklen_t(text.count)) != nil ? String(cString: text) : nil
                }
                if let ip, !ip.hasPrefix("127.") { return ip }
            }
            candidate = entry.pointee.ai_next
        }
        return "127.0.0.1"
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

    /// `PAYWIRE_GATEWAY_SNAPSHOT_PORT`: where the configuration snapshot is served instead of the
    /// internal listener (nil: on it), on the internal listener's host.
    static func snapshotPort(_ configuration: ServiceConfiguration, besides internalPort: Int) throws -> Int? {
        guard let text = configuration.environment["PAYWIRE_GATEWAY_SNAPSHOT_PORT"], !text.isEmpty else { return nil }
        let port = try ServiceConfiguration.integer(configuration.environment, "PAYWIRE_GATEWAY_SNAPSHOT_PORT", default: 0, range: 1...65535)
        guard port != configuration.httpPort, port != internalPort else {
            throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_GATEWAY_SNAPSHOT_PORT", reason: "a port other than HTTP_PORT and PAYWIRE_GATEWAY_INTERNAL_PORT")
        }
        return port
    }

    /// Everything the gateway runs; `main` and the tests both call this.
    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let adminKey = configuration.environment["PAYWIRE_ADMIN_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if adminKey == nil {
            logger.warning("PAYWIRE_ADMIN_API_KEY is not set: admin routes refuse every request")
        }
        let (api, replies) = try makeAPI(infrastructure, adminKey: adminKey)
        let router = makeRouter(api).router
        // The console calls the routes built so far in-process, then its own pages join them.
        try makeConsole(infrastructure, api: api, responder: router.buildResponder()).addRoutes(to: router)
        let internalRouter = Router(context: PaywireRequestContext.self)
        internalRouter.add(middleware: PaywireTracing.httpMiddleware())
        internalRouter.add(middleware: JSONErrorMiddleware())
        api.payments.vault.addRoutes(to: internalRouter)
        let snapshots = ConfigurationSnapshotAPI(
            postgres: infrastructure.postgres, signer: try InternalAPISigner(encryptionKey: try ServiceConfiguration.encryptionKey(configuration.environment)), logger: logger
        )
        let listener = try internalListener(configuration)
        // The configuration snapshot on a port of its own when one is set, so a network policy can
        // let only payment-core reach the card vault and the other services only the snapshot.
        var internalServers = [any Service]()
        if let snapshotPort = try snapshotPort(configuration, besides: listener.port) {
            let snapshotRouter = Router(context: PaywireRequestContext.self)
            snapshotRouter.add(middleware: PaywireTracing.httpMiddleware())
            snapshotRouter.add(middleware: JSONErrorMiddleware())
            snapshots.addRoutes(to: snapshotRouter)
            internalServers.append(ServiceInfrastructure.application(router: snapshotRouter, host: listener.host, port: snapshotPort, serverName: "paywire-gateway-snapshot", logger: logger))
        } else {
            snapshots.addRoutes(to: internalRouter)
        }
        internalServers.append(ServiceInfrastructure.application(router: internalRouter, host: listener.host, port: listener.port, serverName: "paywire-gateway-internal", logger: logger))
        let readiness = infrastructure.readiness
        readiness.require("replies")
        let notifications = DatabaseNotifications(schema: GatewaySchema.name, client: infrastructure.postgres, logger: logger)
        api.authentication.keys.attach(notifications)
        api.payments.settings.attach(notifications)
        let replyLease = ReplyPartitionLease(holder: replies.instanceId, postgres: infrastructure.postgres, logger: logger, waitUntil: readiness.waitUntilStarted)
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: GatewaySchema.migrator) },
                notifications,
                try infrastructure.messagingRetention(schema: GatewaySchema.name),
                replyLease,
                // Replies are read from where this replica's partition ends at start, in no
                // consumer group: a restarted replica leaves nothing behind on the broker.
                infrastructure.consumer(
                    groupID: replies.instanceId,
                    topics: [configuration.topics.gatewayReplies],
                    autoOffsetReset: "latest",
                    assignsFromEnd: true,
                    concurrentKeys: false,
                    lowLatency: true,
                    onAssigned: { _ in readiness.satisfy("replies") },
                    choosePartitions: { partitions in
                        let chosen = try await replyLease.choose(partitions)
                        replies.replyPartition = chosen.first?.partition
                        return chosen
                    },
                    handler: replies.handle
                ),
                IdempotencyKeyExpiry(postgres: infrastructure.postgres, logger: logger, waitUntil: readiness.waitUntilStarted),
                // Configuration changes (and anything else the gateway enqueues) leave through its outbox.
                DeferredService(
                    waitUntil: readiness.waitUntilStarted,
                    service: OutboxRelay(schema: GatewaySchema.name, client: infrastructure.postgres, producer: infrastructure.producer, logger: logger,
                                         idleInterval: configuration.idleCheck, wake: notifications.signal("outbox"))
                ),
            ] + internalServers + [
                infrastructure.httpServer(router: router),
            ],
            logger: logger
        )
    }
}

struct GatewayAPI: Sendable {
    let infrastructure: ServiceInfrastructure
    let authentication: GatewayAuthentication
    let merchants: MerchantAccountStore
    let apiKeys: APIKeyStore
    let connectors: ConnectorAccountStore
    let payments: GatewayPaymentAPI
    let webhooks: IncomingWebhookProxy
    let events: EventsLogProxy
    let recovery: RecoveryAPI
    let disputes: DisputesAPI

    init(infrastructure: ServiceInfrastructure, adminKey: String?, secrets: SecretBox, payments: GatewayPaymentAPI, webhooks: IncomingWebhookProxy, events: EventsLogProxy,
         scheduler: InternalAPIClient, commandSigner: CommandSigner) {
        self.payments = payments
        self.events = events
        self.webhooks = webhooks
        self.infrastructure = infrastructure
        let logger = infrastructure.logger
        authentication = GatewayAuthentication(adminKey: adminKey, postgres: infrastructure.postgres, logger: logger)
        let settings = payments.settings
        let writer = ConfigurationWriter(
            postgres: infrastructure.postgres, logger: logger,
            publisher: ConfigurationPublisher(topic: infrastructure.configuration.topics.configuration, logger: logger),
            changed: { settings.clear() }
        )
        let endpoints = WebhookEndpointStore(writer: writer, secrets: secrets, allowPrivateNetworks: NetworkAddressPolicy.allowsPrivateNetworks(infrastructure.configuration.environment))
        merchants = MerchantAccountStore(writer: writer, secrets: secrets, profiles: BusinessProfileStore(writer: writer, secrets: secrets, endpoints: endpoints))
        apiKeys = APIKeyStore(writer: writer)
        connectors = ConnectorAccountStore(writer: writer, secrets: secrets)
        recovery = RecoveryAPI(infrastructure: infrastructure, connectors: connectors, scheduler: scheduler, commandSigner: commandSigner, secrets: secrets)
        disputes = DisputesAPI(paymentCore: payments.paymentCore.api, logger: logger)
    }

    var profiles: BusinessProfileStore { merchants.profiles }
    var endpoints: WebhookEndpointStore { merchants.endpoints }

    /// Every public route, each in the group of who may call it (`RouteAccess`); handlers read
    /// the caller from their context and never check keys themselves.
    func addRoutes(to routes: AccessControlledRouter) {
        let (merchants, profiles, endpointStore, apiKeys, connectors, events) = (merchants, profiles, endpoints, apiKeys, connectors, events)
        // A key revoked, expired or deleted here is refused by this replica from its answer on
        // (every other replica empties its cache when the database tells it).
        let cachedKeys = authentication.keys

        routes.routes(.admin) { router in
            router.post("/accounts") { request, context in
                JSONResponse(try await merchants.createMerchant(try await RequestObject.read(from: request, context: context)))
            }
            router.delete("/accounts/:merchant_id") { _, context in
                defer { cachedKeys.clear() }
                return JSONResponse(try await merchants.deleteMerchant(try context.pathParameter("merchant_id")))
            }
        }

        // Everything under a merchant id in the path.
        routes.routes(.merchant(.path)) { router in
            // Merchant accounts
            router.get("/accounts/:merchant_id") { _, context in
                guard let account = try await merchants.merchantResponse(try context.pathParameter("merchant_id")) else { throw APIError.notFound("Merchant account") }
                return JSONResponse(account)
            }
            router.post("/accounts/:merchant_id") { request, context in
                JSONResponse(try await merchants.updateMerchant(try context.pathParameter("merchant_id"), try await RequestObject.read(from: request, context: context)))
            }

            // API keys
            router.post("/api_keys/:merchant_id") { request, context in
                JSONResponse(encoding: try await apiKeys.createAPIKey(merchantId: try context.pathParameter("merchant_id"), try await RequestObject.read(from: request, context: context)))
            }
            router.get("/api_keys/:merchant_id/list") { _, context in
                JSONResponse(encoding: try await apiKeys.apiKeys(merchantId: try context.pathParameter("merchant_id")))
            }
            router.get("/api_keys/:merchant_id/:key_id") { _, context in
                guard let key = try await apiKeys.apiKeys(merchantId: try context.pathParameter("merchant_id"), keyId: try context.pathParameter("key_id")).first else {
                    throw APIError.notFound("API key")
                }
                return JSONResponse(encoding: key)
            }
            router.post("/api_keys/:merchant_id/:key_id") { request, context in
                defer { cachedKeys.clear() }
                return JSONResponse(encoding: try await apiKeys.updateAPIKey(merchantId: try context.pathParameter("merchant_id"), keyId: try context.pathParameter("key_id"), try await RequestObject.read(from: request, context: context)))
            }
            router.delete("/api_keys/:merchant_id/:key_id") { _, context in
                defer { cachedKeys.clear() }
                return JSONResponse(encoding: try await apiKeys.revokeAPIKey(merchantId: try context.pathParameter("merchant_id"), keyId: try context.pathParameter("key_id")))
            }

            // Business profiles
            router.post("/account/:merchant_id/business_profile") { request, context in
                JSONResponse(try await profiles.createProfile(merchantId: try context.pathParameter("merchant_id"), try await RequestObject.read(from: request, context: context)))
            }
            router.get("/account/:merchant_id/business_profile") { _, context in
                JSONResponse(try await profiles.listProfiles(merchantId: try context.pathParameter("merchant_id")))
            }
            router.get("/account/:merchant_id/business_profile/:profile_id") { _, context in
                let (merchantId, profileId) = try scope(context)
                guard let profile = try await profiles.profileResponse(merchantId: merchantId, profileId: profileId) else {
                    throw APIError.notFound("Business profile")
                }
                return JSONResponse(profile)
            }
            router.post("/account/:merchant_id/business_profile/:profile_id") { request, context in
                let (merchantId, profileId) = try scope(context)
                return JSONResponse(try await profiles.updateProfile(merchantId: merchantId, profileId: profileId, try await RequestObject.read(from: request, context: context)))
            }

            // Webhook endpoints of a profile
            let endpoints = "/account/:merchant_id/business_profile/:profile_id/webhooks"
            router.post(RouterPath(endpoints)) { request, context in
                let (merchantId, profileId) = try scope(context)
                return JSONResponse(try await endpointStore.createEndpoint(merchantId: merchantId, profileId: profileId, try await RequestObject.read(from: request, context: context)))
            }
            router.get(RouterPath(endpoints)) { _, context in
                let (merchantId, profileId) = try scope(context)
                try await endpointStore.requireProfile(merchantId: merchantId, profileId: profileId)
                // Each endpoint's status as the dispatcher last judged it, as the single view shows it.
                let listed = try await endpointStore.endpointResponses(profileId: profileId)
                let modified = try await endpointStore.modifiedTimes(profileId: profileId)
                let judged = await withTaskGroup(of: (Int, JSONValue).self) { group in
                    for (index, item) in listed.enumerated() {
                        group.addTask {
                            guard case .object(let endpoint) = item, endpoint["status"] == .string("active"), let id = endpoint["webhook_endpoint_id"]?.stringValue else { return (index, item) }
                            return (index, .object(EndpointStatus.judged(endpoint, health: await events.endpointHealth(merchantId: merchantId, endpointId: id), modifiedAt: modified[id], withHealth: false)))
                        }
                    }
                    var all = listed
                    for await (index, value) in group { all[index] = value }
                    return all
                }
                return JSONResponse(.array(judged))
            }
            router.get(RouterPath(endpoints + "/:webhook_endpoint_id")) { _, context in
                let (merchantId, profileId) = try scope(context)
                try await endpointStore.requireProfile(merchantId: merchantId, profileId: profileId)
                let endpointId = try context.pathParameter("webhook_endpoint_id")
                guard case .object(var endpoint) = try await endpointStore.endpointResponses(profileId: profileId, onlyId: endpointId).first else {
                    throw APIError.notFound("Webhook endpoint")
                }
                // The dispatcher's view: how the endpoint has been answering, and whether it has made
                // the endpoint inactive (410, or failing too long) until the merchant changes it.
                let health = await events.endpointHealth(merchantId: merchantId, endpointId: endpointId)
                endpoint = EndpointStatus.judged(endpoint, health: health, modifiedAt: try await endpointStore.modifiedAt(endpointId: endpointId), withHealth: true)
                return JSONResponse(.object(endpoint))
            }
            router.post(RouterPath(endpoints + "/:webhook_endpoint_id")) { request, context in
                let (merchantId, profileId) = try scope(context)
                return JSONResponse(try await endpointStore.updateEndpoint(merchantId: merchantId, profileId: profileId, endpointId: try context.pathParameter("webhook_endpoint_id"), try await RequestObject.read(from: request, context: context)))
            }
            router.delete(RouterPath(endpoints + "/:webhook_endpoint_id")) { _, context in
                let (merchantId, profileId) = try scope(context)
                return JSONResponse(try await endpointStore.deprecateEndpoint(merchantId: merchantId, profileId: profileId, endpointId: try context.pathParameter("webhook_endpoint_id")))
            }
            router.post(RouterPath(endpoints + "/:webhook_endpoint_id/rotate_secret")) { _, context in
                let (merchantId, profileId) = try scope(context)
                return JSONResponse(try await endpointStore.rotateSecret(merchantId: merchantId, profileId: profileId, endpointId: try context.pathParameter("webhook_endpoint_id")))
            }

            // Connector accounts
            router.post("/account/:merchant_id/connectors") { request, context in
                JSONResponse(try await connectors.create(merchantId: try context.pathParameter("merchant_id"), profileId: nil, try await RequestObject.read(from: request, context: context)))
            }
            router.get("/account/:merchant_id/connectors") { _, context in
                JSONResponse(try await connectors.list(merchantId: try context.pathParameter("merchant_id")))
            }
            router.get("/account/:merchant_id/connectors/:merchant_connector_id") { _, context in
                guard let account = try await connectors.response(merchantId: try context.pathParameter("merchant_id"), id: try context.pathParameter("merchant_connector_id")) else {
                    throw APIError.notFound("Merchant connector account")
                }
                return JSONResponse(account)
            }
            router.post("/account/:merchant_id/connectors/:merchant_connector_id") { request, context in
                JSONResponse(try await connectors.update(merchantId: try context.pathParameter("merchant_id"), id: try context.pathParameter("merchant_connector_id"), try await RequestObject.read(from: request, context: context)))
            }
            router.delete("/account/:merchant_id/connectors/:merchant_connector_id") { _, context in
                JSONResponse(try await connectors.delete(merchantId: try context.pathParameter("merchant_id"), id: try context.pathParameter("merchant_connector_id")))
            }

            events.addRoutes(to: router)
        }

        // The v2 routes name the merchant in `x-merchant-id`.
        routes.routes(.merchant(.header)) { router in
            router.put("/v2/profiles/:profile_id") { request, context in
                JSONResponse(try await profiles.updateProfile(merchantId: try request.requiredHeader("x-merchant-id"), profileId: try context.pathParameter("profile_id"), try await RequestObject.read(from: request, context: context)))
            }
            router.post("/v2/connector-accounts") { request, context in
                let profileId = request.headers[.init("x-profile-id")!]
                if let profileId { try InputText.checkIdentifierText(profileId, field: "x-profile-id") }
                return JSONResponse(try await connectors.create(merchantId: try request.requiredHeader("x-merchant-id"), profileId: profileId, try await RequestObject.read(from: request, context: context)))
            }
            router.get("/v2/connector-accounts/:merchant_connector_id") { request, context in
                guard let account = try await connectors.response(merchantId: try request.requiredHeader("x-merchant-id"), id: try context.pathParameter("merchant_connector_id")) else {
                    throw APIError.notFound("Merchant connector account")
                }
                return JSONResponse(account)
            }
            recovery.addRoutes(to: router)
        }

        // Payments and refunds: the merchant is the one that owns the object (or the caller's own).
        routes.routes(.merchant(.resource)) { router in
            payments.addRoutes(to: router)
            disputes.addRoutes(to: router) { [payments] caller, query in try await payments.merchant(caller, query: query) }
        }
        // Confirm and retrieve: also a browser with the publishable key and the client secret.
        routes.routes(.client) { router in
            payments.addClientRoutes(to: router)
        }

        // Incoming connector webhooks carry the connector's signature, not a key.
        routes.routes(.open) { router in
            webhooks.addRoutes(to: router)
            // What each connector supports (Hyperswitch's feature matrix); nothing secret.
            let matrix: JSONValue = .object([
                "connector_count": .number(Double(ConnectorFeatures.all.count)),
                "connectors": .array(ConnectorFeatures.all.keys.sorted().map { ConnectorFeatures.all[$0]!.matrixEntry }),
            ])
            router.get("/feature_matrix") { _, _ in JSONResponse(matrix) }
        }
    }

    /// The merchant and profile of a `/account/{merchant_id}/business_profile/{profile_id}…` path.
    func scope(_ context: PaywireRequestContext) throws -> (String, String) {
        (try context.pathParameter("merchant_id"), try context.pathParameter("profile_id"))
    }
}
