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

    /// Everything the gateway runs; `main` and the tests both call this.
    public static func buildApplication(_ configuration: ServiceConfiguration, logger: Logger) throws -> PaywireApplication {
        let infrastructure = try ServiceInfrastructure(configuration: configuration, logger: logger)
        let adminKey = configuration.environment["PAYWIRE_ADMIN_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if adminKey == nil {
            logger.warning("PAYWIRE_ADMIN_API_KEY is not set: admin routes refuse every request")
        }
        let router = Router(context: PaywireRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        let api = GatewayAPI(infrastructure: infrastructure, adminKey: adminKey)
        api.addRoutes(to: router)
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
    let adminKey: String?

    var postgres: PostgresClient { infrastructure.postgres }
    var logger: Logger { infrastructure.logger }

    func addRoutes(to router: Router<PaywireRequestContext>) {
        router.post("/accounts") { request, context in
            try requireAdmin(request)
            let body = try await JSONBody.decode(MerchantAccountCreateRequest.self, from: request, context: context)
            return try await createMerchant(body)
        }
        router.get("/accounts/:merchant_id") { request, context in
            try requireAdmin(request)
            let merchantId = try context.parameters.require("merchant_id")
            guard let account = try await loadMerchant(merchantId) else { throw APIError.notFound("Merchant account") }
            return account
        }
        router.post("/payments") { request, context in
            try requireAdmin(request)
            let body = try await JSONBody.decode(PaymentCreateRequest.self, from: request, context: context)
            return try await createPayment(body)
        }
    }

    /// Constant-time comparison: the key check must not leak how much of a guess was right.
    func requireAdmin(_ request: Request) throws {
        guard let adminKey, let given = request.headers[.init("api-key")!] else { throw APIError.unauthorized() }
        let expected = SHA256.hash(data: Data(adminKey.utf8))
        let actual = SHA256.hash(data: Data(given.utf8))
        guard expected == actual else { throw APIError.unauthorized() }
    }

    func createMerchant(_ body: MerchantAccountCreateRequest) async throws -> EditedResponse<MerchantAccount> {
        let merchantId = body.merchantId ?? PaymentIdentifier.make(prefix: "merchant")
        try Validation.identifier(merchantId, field: "merchant_id")
        if let url = body.webhookDetails?.webhookUrl { try Validation.webhookURL(url, field: "webhook_details.webhook_url") }
        let hashEnabled = body.enablePaymentResponseHash ?? true
        let hashKey = hashEnabled ? HashKey.generate() : nil
        let inserted = try await postgres.withTransaction(logger: logger) { connection -> Bool in
            let rows = try await connection.query("""
                INSERT INTO gateway.merchant_accounts (merchant_id, merchant_name, webhook_url, payment_response_hash_key)
                VALUES (\(merchantId), \(body.merchantName), \(body.webhookDetails?.webhookUrl), \(hashKey))
                ON CONFLICT (merchant_id) DO NOTHING RETURNING 1
                """, logger: logger)
            var inserted = false
            for try await _ in rows { inserted = true }
            return inserted
        }
        guard inserted else {
            throw APIError(status: .badRequest, type: "invalid_request", code: "IR_38", message: "The merchant account with the specified details already exists", field: "merchant_id")
        }
        let account = MerchantAccount(
            merchantId: merchantId,
            merchantName: body.merchantName,
            webhookDetails: .init(webhookUrl: body.webhookDetails?.webhookUrl),
            enablePaymentResponseHash: hashEnabled,
            paymentResponseHashKey: hashKey
        )
        return EditedResponse(status: .ok, response: account)
    }

    func loadMerchant(_ merchantId: String) async throws -> MerchantAccount? {
        let rows = try await postgres.query(
            "SELECT merchant_id, merchant_name, webhook_url, payment_response_hash_key FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)",
            logger: logger
        )
        for try await (id, name, url, key) in rows.decode((String, String?, String?, String?).self) {
            return MerchantAccount(merchantId: id, merchantName: name, webhookDetails: .init(webhookUrl: url), enablePaymentResponseHash: key != nil, paymentResponseHashKey: key)
        }
        return nil
    }

    func createPayment(_ body: PaymentCreateRequest) async throws -> EditedResponse<PaymentAccepted> {
        try Validation.identifier(body.merchantId, field: "merchant_id")
        guard body.amount > 0 else { throw APIError.invalid("amount", "must be a positive integer in the currency's minor unit") }
        guard body.currency.count == 3, body.currency.allSatisfy({ $0.isUppercase && $0.isASCII }) else {
            throw APIError.invalid("currency", "must be a three-letter ISO 4217 code in capitals")
        }
        guard try await loadMerchant(body.merchantId) != nil else { throw APIError.notFound("Merchant account") }
        let paymentId = PaymentIdentifier.make()
        let accepted = PaymentAccepted(paymentId: paymentId, merchantId: body.merchantId, status: "processing", amount: body.amount, currency: body.currency)
        let command = EventEnvelope(
            type: MessageType.paymentCreate,
            merchantId: body.merchantId,
            payload: try JSONValue(encoding: accepted)
        )
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

enum HashKey {
    /// 64 alphanumerics, the shape of Hyperswitch's `payment_response_hash_key`.
    static func generate() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<64).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }
}
