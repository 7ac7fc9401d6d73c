import AsyncHTTPClient
import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing
@testable import PaymentCore

/// payment-core's payment logic in process, on a database of its own, with the sandbox
/// connector: what one command does to the intent, its attempts and its events.
@Suite(.serialized, .timeLimit(.minutes(2)), .enabled(if: TestEnvironment.hasDatabase))
struct PaymentOperationsTests {
    let logger = TestEnvironment.logger("payment-operations", level: .error)

    func withOperations(connectors: [any Connector] = [SandboxConnector()], _ body: @Sendable (PaymentOperations, PostgresClient) async throws -> Void) async throws {
        let testURL = try #require(TestEnvironment.databaseURL, "PAYWIRE_TEST_DATABASE_URL is not set: run ./scripts/test")
        let database = TestEnvironment.uniqueName("payments")
        try await withTestPostgres { try await $0.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)")) }
        var components = URLComponents(string: testURL)!
        components.path = "/\(database)"
        try await withStackDatabase(components.string!) { postgres in
            try await PaymentsSchema.migrator.migrate(client: postgres, logger: logger)
            let key = SecretBox.generateKey()
            let secrets = try SecretBox(base64Key: key)
            let copy = ConfigurationCopy(schema: PaymentsSchema.name, postgres: postgres, logger: logger)
            var snapshot = MerchantConfigurationSnapshot(merchantId: "ops_m", version: 1, defaultProfileId: "pro_ops")
            snapshot.connectorAccounts = [.init(
                merchantConnectorId: "mca_ops", profileId: "pro_ops", connectorName: "sandbox", connectorType: "payment_processor",
                sealedAccountDetails: try secrets.seal(#"{"auth_type": "NoKey"}"#, as: .connectorAccountDetails, row: "mca_ops"),
                sealedWebhookSecret: nil, disabled: false, createdAt: Date()
            )]
            #expect(try await copy.store(snapshot))
            let operations = PaymentOperations(
                postgres: postgres, connectors: ConnectorRegistry(connectors), accounts: ConnectorAccountRepository(copy: copy, secrets: secrets),
                vault: CardVaultClient(http: HTTPClient.shared, signer: try CardVaultSigner(encryptionKey: key), allowedHosts: []),
                secrets: secrets, topics: TopicNames(), settings: try PaymentSettings(environment: [:]), logger: logger
            )
            try await body(operations, postgres)
        }
    }

    func command(_ paymentId: String, token: String, confirm: Bool = true) -> PaymentCommand {
        var command = PaymentCommand(operation: .create, paymentId: paymentId, merchantId: "ops_m")
        command.profileId = "pro_ops"
        command.amount = 1500
        command.currency = "EUR"
        command.confirm = confirm
        command.merchantConnectorId = "mca_ops"
        command.connectorName = "sandbox"
        command.processorPaymentToken = token
        return command
    }

    func events(_ postgres: PostgresClient, _ paymentId: String) async throws -> [String] {
        var types: [String] = []
        for try await payload in try await postgres.query("SELECT payload FROM payments.outbox WHERE message_key = \(paymentId) ORDER BY seq").decode(ByteBuffer.self) {
            types.append(try EventEnvelope.decode(Array(buffer: payload)).type)
        }
        return types
    }

    @Test func aCommandAppliedTwiceChargesOnceAndAnnouncesOnce() async throws {
        try await withOperations { operations, postgres in
            let first = try await operations.create(command("pay_ops_1", token: "tok_sandbox_4242"))
            #expect(first["status"]?.stringValue == "succeeded" && first["amount_received"]?.intValue == 1500)
            // The same command again (Kafka redelivers after a crash): the payment as it is, nothing charged.
            let again = try await operations.create(command("pay_ops_1", token: "tok_sandbox_4242"))
            #expect(again["status"]?.stringValue == "succeeded")
            var attempts = 0
            for try await count in try await postgres.query("SELECT count(*)::int FROM payments.payment_attempts WHERE payment_id = 'pay_ops_1'").decode(Int.self) { attempts = count }
            #expect(attempts == 1)
            #expect(try await events(postgres, "pay_ops_1") == ["payment_succeeded"])
            // A confirm of a payment that is no longer awaiting one is refused.
            await #expect(throws: PaymentFailure.self) { _ = try await operations.confirm(command("pay_ops_1", token: "tok_sandbox_4242")) }
        }
    }

    @Test func aDeclineKeepsTheProcessorsCodesAndTheTokenStaysSealed() async throws {
        try await withOperations { operations, postgres in
            let declined = try await operations.create(command("pay_ops_2", token: "tok_sandbox_9995"))
            #expect(declined["status"]?.stringValue == "failed")
            #expect(declined["error_code"]?.stringValue == "insufficient_funds" && declined["issuer_error_code"]?.stringValue == "51")
            #expect(declined["decline_code"]?.stringValue == "insufficient_funds" && declined["network_decline_code"]?.stringValue == "51")
            #expect(declined["network_advice_code"] == .null)
            // The network's merchant advice code reaches the payment (and so the recovery scheduler).
            let advised = try await operations.create(command("pay_ops_4", token: "tok_sandbox_0321"))
            #expect(advised["decline_code"]?.stringValue == "do_not_honor" && advised["network_advice_code"]?.stringValue == "21", "\(advised)")
            #expect(try await events(postgres, "pay_ops_2") == ["payment_failed"])
            for try await token in try await postgres.query("SELECT processor_token FROM payments.payment_intents WHERE payment_id = 'pay_ops_2'").decode(String.self) {
                #expect(token.hasPrefix("v2:") && !token.contains("tok_sandbox"))
            }
            // Created without confirm: waits, then confirms once.
            let waiting = try await operations.create(command("pay_ops_3", token: "tok_sandbox_4242", confirm: false))
            #expect(waiting["status"]?.stringValue == "requires_confirmation")
            #expect(try await events(postgres, "pay_ops_3").isEmpty)
            let confirmed = try await operations.confirm(command("pay_ops_3", token: "tok_sandbox_4242"))
            #expect(confirmed["status"]?.stringValue == "succeeded")
        }
    }

    /// The sandbox as a connector that can do less: what it cannot do is refused naming the
    /// field before it is called, and nothing is written.
    struct LimitedSandbox: Connector {
        let base = SandboxConnector()
        var name: String { base.name }
        var capabilities = ConnectorCapabilities(paymentMethods: ["bank_transfer"], manualCapture: false, refunds: false, incomingWebhooks: false)
        func authorize(_ request: AuthorizeRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult { try await base.authorize(request, credentials: credentials) }
        func capture(_ request: CaptureRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult { try await base.capture(request, credentials: credentials) }
        func void(_ request: VoidRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult { try await base.void(request, credentials: credentials) }
        func sync(_ request: SyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorResult { try await base.sync(request, credentials: credentials) }
        func refund(_ request: RefundRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult { try await base.refund(request, credentials: credentials) }
        func syncRefund(_ request: RefundSyncRequest, credentials: ConnectorCredentials) async throws -> ConnectorRefundResult { try await base.syncRefund(request, credentials: credentials) }
    }

    @Test func whatAConnectorCannotDoIsRefusedBeforeItIsCalled() async throws {
        // A card payment on a connector that takes no cards.
        try await withOperations(connectors: [LimitedSandbox()]) { operations, postgres in
            await #expect(throws: PaymentFailure.self) { try await operations.create(command("pay_ops_limited", token: "tok_sandbox_4242")) }
            do {
                _ = try await operations.create(command("pay_ops_limited_2", token: "tok_sandbox_4242"))
            } catch let failure as PaymentFailure {
                #expect(failure.status == 400 && failure.field == "payment_method_data", "\(failure)")
            }
            var written = 0
            for try await count in try await postgres.query("SELECT count(*)::int FROM payments.payment_intents").decode(Int.self) { written = count }
            #expect(written == 0, "nothing was written or tried")
        }
        // A refund on a connector without refunds (the payment made while it had them).
        try await withOperations { operations, postgres in
            let paid = try await operations.create(command("pay_ops_refund", token: "tok_sandbox_4242"))
            #expect(paid["status"]?.stringValue == "succeeded")
            let limited = PaymentOperations(
                postgres: operations.postgres, connectors: ConnectorRegistry([LimitedSandbox()]), accounts: operations.accounts, vault: operations.vault,
                secrets: operations.secrets, topics: operations.topics, settings: operations.settings, logger: operations.logger
            )
            var refund = PaymentCommand(operation: .refund, paymentId: "pay_ops_refund", merchantId: "ops_m")
            refund.refundId = "ref_ops_limited"
            do {
                _ = try await limited.refund(refund)
                Issue.record("a refund on a connector without refunds went through")
            } catch let failure as PaymentFailure {
                #expect(failure.status == 400 && failure.field == "payment_id", "\(failure)")
            } catch let wrapped as PostgresTransactionError {
                let failure = try #require(PaymentFailure.unwrap(wrapped))
                #expect(failure.status == 400 && failure.field == "payment_id", "\(failure)")
            }
            var refunds = 0
            for try await count in try await postgres.query("SELECT count(*)::int FROM payments.refunds").decode(Int.self) { refunds = count }
            #expect(refunds == 0)
        }
        // A partial capture on a connector that captures only the whole amount, at confirm and at capture.
        try await withOperations { operations, postgres in
            var wholeOnly = LimitedSandbox()
            wholeOnly.capabilities = ConnectorCapabilities(paymentMethods: ["card"], manualCapture: true, partialCapture: false, refunds: true, incomingWebhooks: false)
            let limited = PaymentOperations(
                postgres: operations.postgres, connectors: ConnectorRegistry([wholeOnly]), accounts: operations.accounts, vault: operations.vault,
                secrets: operations.secrets, topics: operations.topics, settings: operations.settings, logger: operations.logger
            )
            var partial = command("pay_ops_partial_confirm", token: "tok_sandbox_4242")
            partial.captureMethod = "manual"
            partial.amountToCapture = 500
            await #expect { try await limited.create(partial) } throws: { error in
                let failure = error as? PaymentFailure ?? (error as? PostgresTransactionError).flatMap(PaymentFailure.unwrap)
                return failure?.status == 400 && failure?.field == "amount_to_capture"
            }
            var manual = command("pay_ops_partial", token: "tok_sandbox_4242")
            manual.captureMethod = "manual"
            let authorized = try await limited.create(manual)
            #expect(authorized["status"]?.stringValue == "requires_capture")
            var capture = PaymentCommand(operation: .capture, paymentId: "pay_ops_partial", merchantId: "ops_m")
            capture.amountToCapture = 500
            await #expect { try await limited.capture(capture) } throws: { error in
                let failure = error as? PaymentFailure ?? (error as? PostgresTransactionError).flatMap(PaymentFailure.unwrap)
                return failure?.status == 400 && failure?.field == "amount_to_capture"
            }
            capture.amountToCapture = nil
            let captured = try await limited.capture(capture)
            #expect(captured["status"]?.stringValue == "succeeded", "the whole amount is captured")
        }
    }
}
