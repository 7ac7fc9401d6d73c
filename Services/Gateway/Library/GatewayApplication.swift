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
    public static let environmentKeys: [String] = ["PAYWIRE_ADMIN_API_KEY"]

    /// The gateway's routes (the operational ones are added by `httpServer`).
    static func makeRouter(_ api: GatewayAPI) -> Router<PaywireRequestContext> {
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        api.addRoutes(to: router)
        let document = GatewayOpenAPI.document
        router.get("/openapi.json") { _, _ in JSONResponse(document) }
        return router
    }

    /// Everything the gateway runs; `main` and the tests both call this.
    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let adminKey = configuration.environment["PAYWIRE_ADMIN_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if adminKey == nil {
            logger.warning("PAYWIRE_ADMIN_API_KEY is not set: admin routes refuse every request")
        }
        let secrets = try SecretBox(base64Key: try ServiceConfiguration.encryptionKey(configuration.environment))
        let router = makeRouter(GatewayAPI(infrastructure: infrastructure, adminKey: adminKey, secrets: secrets))
        return PaywireApplication(
            services: [
                infrastructure.postgres,
                infrastructure.producer,
                StartUpService(logger: logger) { try await infrastructure.startUp(migrator: GatewaySchema.migrator) },
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

    init(infrastructure: ServiceInfrastructure, adminKey: String?, secrets: SecretBox) {
        self.infrastructure = infrastructure
        authentication = GatewayAuthentication(adminKey: adminKey, postgres: infrastructure.postgres, logger: infrastructure.logger)
        store = GatewayConfigurationStore(postgres: infrastructure.postgres, secrets: secrets, logger: infrastructure.logger)
        connectors = ConnectorAccountStore(postgres: infrastructure.postgres, secrets: secrets, logger: infrastructure.logger, configuration: store)
    }

    var postgres: PostgresClient { infrastructure.postgres }
    var logger: Logger { infrastructure.logger }

    func addRoutes(to router: Router<PaywireRequestContext>) {
        let auth = authentication
        let store = store

        // Merchant accounts
        router.post("/accounts") { request, context in
            try await auth.requireAdmin(request)
            return try JSONResponse(try await store.createMerchant(try await RequestObject.read(from: request, context: context)))
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
            let merchantId = try context.parameters.require("merchant_id")
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
            guard let key = try await store.apiKeys(merchantId: merchantId, keyId: try context.parameters.require("key_id")).first else {
                throw APIError.notFound("API key")
            }
            return JSONResponse(key)
        }
        router.delete("/api_keys/:merchant_id/:key_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.revokeAPIKey(merchantId: merchantId, keyId: try context.parameters.require("key_id")))
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
            guard let profile = try await store.profileResponse(merchantId: merchantId, profileId: try context.parameters.require("profile_id")) else {
                throw APIError.notFound("Business profile")
            }
            return JSONResponse(profile)
        }
        router.post("/account/:merchant_id/business_profile/:profile_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await store.updateProfile(merchantId: merchantId, profileId: try context.parameters.require("profile_id"), try await RequestObject.read(from: request, context: context)))
        }
        router.put("/v2/profiles/:profile_id") { request, context in
            let merchantId = try requiredHeader(request, "x-merchant-id")
            try await auth.requireAccess(request, merchantId: merchantId)
            return JSONResponse(try await store.updateProfile(merchantId: merchantId, profileId: try context.parameters.require("profile_id"), try await RequestObject.read(from: request, context: context)))
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
            guard let endpoint = try await store.endpointResponses(profileId: profileId, onlyId: try context.parameters.require("webhook_endpoint_id")).first else {
                throw APIError.notFound("Webhook endpoint")
            }
            return JSONResponse(endpoint)
        }
        router.post(RouterPath(endpoints + "/:webhook_endpoint_id")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.updateEndpoint(merchantId: merchantId, profileId: profileId, endpointId: try context.parameters.require("webhook_endpoint_id"), try await RequestObject.read(from: request, context: context)))
        }
        router.delete(RouterPath(endpoints + "/:webhook_endpoint_id")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.deprecateEndpoint(merchantId: merchantId, profileId: profileId, endpointId: try context.parameters.require("webhook_endpoint_id")))
        }
        router.post(RouterPath(endpoints + "/:webhook_endpoint_id/rotate_secret")) { request, context in
            let (merchantId, profileId) = try await scope(request, context)
            return JSONResponse(try await store.rotateSecret(merchantId: merchantId, profileId: profileId, endpointId: try context.parameters.require("webhook_endpoint_id")))
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
            guard let account = try await connectors.response(merchantId: merchantId, id: try context.parameters.require("merchant_connector_id")) else {
                throw APIError.notFound("Merchant connector account")
            }
            return JSONResponse(account)
        }
        router.post("/account/:merchant_id/connectors/:merchant_connector_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await connectors.update(merchantId: merchantId, id: try context.parameters.require("merchant_connector_id"), try await RequestObject.read(from: request, context: context)))
        }
        router.delete("/account/:merchant_id/connectors/:merchant_connector_id") { request, context in
            let merchantId = try await merchantScope(request, context)
            return JSONResponse(try await connectors.delete(merchantId: merchantId, id: try context.parameters.require("merchant_connector_id")))
        }
        router.post("/v2/connector-accounts") { request, context in
            let merchantId = try requiredHeader(request, "x-merchant-id")
            try await auth.requireAccess(request, merchantId: merchantId)
            let profileId = request.headers[.init("x-profile-id")!]
            return JSONResponse(try await connectors.create(merchantId: merchantId, profileId: profileId, try await RequestObject.read(from: request, context: context)))
        }
        router.get("/v2/connector-accounts/:merchant_connector_id") { request, context in
            let merchantId = try requiredHeader(request, "x-merchant-id")
            try await auth.requireAccess(request, merchantId: merchantId)
            guard let account = try await connectors.response(merchantId: merchantId, id: try context.parameters.require("merchant_connector_id")) else {
                throw APIError.notFound("Merchant connector account")
            }
            return JSONResponse(account)
        }

        // Walking-skeleton payments; the payments issue replaces these with the full API.
        router.post("/payments") { request, context in
            let caller = try await auth.caller(request)
            let body = try await RequestObject.read(from: request, context: context)
            return try await createPayment(body, caller: caller)
        }
    }

    func requiredHeader(_ request: Request, _ name: String) throws -> String {
        guard let value = request.headers[.init(name)!], !value.isEmpty else { throw APIError.invalid(name, "header is required", code: "IR_05") }
        return value
    }

    /// The `{merchant_id}` of the path, once the caller is allowed to act for it.
    func merchantScope(_ request: Request, _ context: PaywireRequestContext) async throws -> String {
        let merchantId = try context.parameters.require("merchant_id")
        try await authentication.requireAccess(request, merchantId: merchantId)
        return merchantId
    }

    func scope(_ request: Request, _ context: PaywireRequestContext) async throws -> (String, String) {
        (try await merchantScope(request, context), try context.parameters.require("profile_id"))
    }

    func createPayment(_ body: RequestObject, caller: Caller) async throws -> EditedResponse<PaymentAccepted> {
        let merchantId: String
        switch caller {
        case .merchant(let own): merchantId = own
        case .admin: merchantId = try body.requiredString("merchant_id", maxLength: 64)
        }
        guard let amount = try body.integer("amount", range: 1...Int(Int32.max) * 1000) else {
            throw APIError.invalid("amount", "is required", code: "IR_05")
        }
        let currency = try body.requiredString("currency", maxLength: 3)
        guard currency.count == 3, currency.allSatisfy({ $0.isUppercase && $0.isASCII }) else {
            throw APIError.invalid("currency", "must be a three-letter ISO 4217 code in capitals")
        }
        guard try await store.merchantExists(merchantId) else { throw APIError.notFound("Merchant account") }
        let paymentId = GatewayIdentifiers.make("pay")
        let accepted = PaymentAccepted(paymentId: paymentId, merchantId: merchantId, status: "processing", amount: amount, currency: currency)
        let command = EventEnvelope(type: MessageType.paymentCreate, merchantId: merchantId, payload: try JSONValue(encoding: accepted))
        do {
            _ = try await infrastructure.producer.send(KafkaProducerMessage(
                topic: infrastructure.configuration.topics.paymentCommands,
                key: paymentId,
                value: try command.encoded()
            ))
        } catch {
            logger.error("payment command not acknowledged", metadata: ["payment_id": .string(paymentId), "error": .string(String(describing: error))])
            throw APIError.unavailable("The payment could not be accepted; retry the request")
        }
        return EditedResponse(status: .accepted, response: accepted)
    }
}

/// A JSON answer built from `JSONValue`, encoded like every other Paywire document.
struct JSONResponse: ResponseGenerator {
    let value: JSONValue
    let status: HTTPResponse.Status

    init(_ value: JSONValue, status: HTTPResponse.Status = .ok) {
        self.value = value
        self.status = status
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try PaywireJSON.encoder.encode(value))))
    }
}
