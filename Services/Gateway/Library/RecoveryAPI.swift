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

/// Revenue recovery on the public host (Hyperswitch's v2 routes): a billing platform reports a
/// failed subscription charge and the recovery scheduler retries it. The gateway checks the report
/// against the merchant's connector accounts and sends it, signed, on `paywire.recovery.commands`;
/// the job's state is the scheduler's, read through its internal API.
///
/// - `POST /v2/payments/recovery` — `action` `schedule_failed_payment` | `success_payment_external`
///   | `cancel_invoice` | `no_action`; every report about one `merchant_reference_id` reaches one job
///   (its id is derived from the merchant and the reference), so a second report updates it.
/// - `GET /v2/payments/{id}/recovery` — status, every attempt with its raw codes, the next run.
/// - `POST /v2/payments/{id}/recovery/cancel`.
struct RecoveryAPI: Sendable {
    let infrastructure: ServiceInfrastructure
    let connectors: ConnectorAccountStore
    let scheduler: InternalAPIClient
    let commandSigner: CommandSigner
    /// Seals a report's processor token for its trip over Kafka.
    let secrets: SecretBox

    static let environmentKeys = ["PAYWIRE_RECOVERY_SCHEDULER_URL"]

    var postgres: PostgresClient { infrastructure.postgres }
    var logger: Logger { infrastructure.logger }

    func addRoutes(to router: some RouterMethods<PaywireRequestContext>) {
        router.post("/v2/payments/recovery") { request, context in
            let merchantId = try request.requiredHeader("x-merchant-id")
            let body = try await RequestObject.read(from: request, context: context)
            let command = try await command(body, merchantId: merchantId, requestedProfile: request.headers[.init("x-profile-id")!])
            try await send(command)
            return JSONResponse(.object([
                "id": .string(command.jobId), "merchant_reference_id": command.merchantReferenceId.map(JSONValue.string) ?? .null,
                "action": .string(command.action.rawValue), "status": .string("accepted"),
            ]), status: .accepted)
        }
        router.get("/v2/payments/:payment_id/recovery") { request, context in
            let merchantId = try request.requiredHeader("x-merchant-id")
            guard let job = try await job(try context.pathParameter("payment_id"), merchantId: merchantId) else { throw APIError.notFound("Recovery job") }
            return JSONResponse(job)
        }
        router.post("/v2/payments/:payment_id/recovery/cancel") { request, context in
            let merchantId = try request.requiredHeader("x-merchant-id")
            let jobId = try context.pathParameter("payment_id")
            guard let job = try await job(jobId, merchantId: merchantId) else { throw APIError.notFound("Recovery job") }
            guard job["task_status"]?.stringValue != "finished" else {
                throw APIError(status: .conflict, type: "invalid_request", code: "IR_16", message: "The recovery job has ended (\(job["status"]?.stringValue ?? "finished"))", field: "payment_id")
            }
            var command = RecoveryCommand(action: .cancel, jobId: jobId, merchantId: merchantId)
            command.profileId = job["profile_id"]?.stringValue
            try await send(command)
            return JSONResponse(.object(["id": .string(jobId), "action": .string("cancel"), "status": .string("accepted")]), status: .accepted)
        }
    }

    /// The report as a command, once every account and amount in it checks out.
    func command(_ body: RequestObject, merchantId: String, requestedProfile: String?) async throws -> RecoveryCommand {
        guard let actionText = try body.string("action", maxLength: 64) else { throw APIError.invalid("action", "is required", code: "IR_05") }
        guard let action = RecoveryCommand.Action(rawValue: actionText), action != .cancel else {
            throw APIError.invalid("action", "must be one of schedule_failed_payment, success_payment_external, cancel_invoice, no_action")
        }
        let reference = try body.requiredString("merchant_reference_id", maxLength: 64)
        try InputText.checkIdentifierText(reference, field: "merchant_reference_id")
        guard !reference.isEmpty else { throw APIError.invalid("merchant_reference_id", "must not be empty") }
        var command = RecoveryCommand(action: action, jobId: RecoveryIdentifiers.jobId(merchantId: merchantId, merchantReferenceId: reference) {
            Hex.encode(SHA256.hash(data: Data($0.utf8)))
        }, merchantId: merchantId)
        command.merchantReferenceId = reference
        if let requestedProfile { try InputText.checkIdentifierText(requestedProfile, field: "x-profile-id") }

        // The invoice. A report that starts or records a job carries all a retry needs.
        let needsInvoice = action == .scheduleFailedPayment || action == .noAction
        let amounts = try body.object("amount_details")
        if needsInvoice || amounts != nil {
            guard let amounts else { throw APIError.invalid("amount_details", "is required", code: "IR_05") }
            guard let amount = try amounts.integer("order_amount", range: 1...InputLimits.maxAmount) else {
                throw APIError.invalid("amount_details.order_amount", "is required", code: "IR_05")
            }
            let currency = try amounts.requiredString("currency", maxLength: 3)
            guard Currency.minorUnits(currency) != nil else {
                throw APIError.invalid("amount_details.currency", "must be an ISO 4217 currency code in capitals, e.g. USD, EUR, JPY")
            }
            command.amount = amount
            command.currency = currency
        }
        command.connectorCustomerId = try body.string("connector_customer_id", maxLength: 255)
        _ = try body.string("connector_transaction_id", maxLength: 255)
        if let error = try body.object("error") {
            command.errorCode = try error.string("code", maxLength: 255)
            command.errorMessage = try error.string("message", maxLength: 1024)
            command.networkDeclineCode = try error.string("network_decline_code", maxLength: 64)
            command.networkAdviceCode = try error.string("network_advice_code", maxLength: 64)
        }
        _ = try body.anyObject("billing")
        command.paymentMethodType = try body.string("payment_method_type", maxLength: 64)
        command.paymentMethodSubtype = try body.string("payment_method_sub_type", maxLength: 64)
        let method = try body.object("payment_method_data")
        command.processorToken = try method?.string("primary_processor_payment_method_token", maxLength: 255)
        if needsInvoice, (command.processorToken ?? "").isEmpty {
            throw APIError.invalid("payment_method_data.primary_processor_payment_method_token", "is required to retry the payment", code: "IR_05")
        }
        if let info = try method?.object("additional_payment_method_info") {
            command.cardNetwork = try info.string("card_network", maxLength: 64)
            command.cardIssuer = try info.string("card_issuer", maxLength: 255)
            _ = try info.string("card_exp_month", maxLength: 2)
            _ = try info.string("card_exp_year", maxLength: 4)
            _ = try info.string("card_type", maxLength: 64)
            if info.isSet("last_four_digits") {
                // Sent as a number or a string; four digits either way.
                let given = info.fields["last_four_digits"]
                let text: String? = switch given {
                case .string(let value)?: value
                case .number(let value)?: value == value.rounded() && value >= 0 && value < 10_000 ? String(format: "%04d", Int(value)) : nil
                default: nil
                }
                guard let text, text.count == 4, text.allSatisfy(\.isNumber) else { throw APIError.invalid(info.name("last_four_digits"), "must be four digits") }
            }
        }
        command.billingStartedAt = try date(body, "billing_started_at")
        _ = try date(body, "transaction_created_at")
        command.invoiceNextBillingTime = try date(body, "invoice_next_billing_time")
        if let status = try body.string("attempt_status", maxLength: 32), !["failure", "success", "pending"].contains(status) {
            throw APIError.invalid("attempt_status", "must be one of failure, success, pending")
        }

        // The accounts: a billing connector of this merchant, and (for a retry) a payment
        // connector the billing account names in its billing_account_reference.
        let billingId = try body.requiredString("billing_merchant_connector_id", maxLength: 64)
        guard let billing = try await connectors.response(merchantId: merchantId, id: billingId) else {
            throw APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "Billing connector account does not exist", field: "billing_merchant_connector_id")
        }
        guard billing["connector_type"]?.stringValue == "billing_processor" else {
            throw APIError.invalid("billing_merchant_connector_id", "is not a billing_processor connector account")
        }
        command.billingConnectorId = billingId
        command.profileId = requestedProfile ?? billing["profile_id"]?.stringValue
        if let requestedProfile, billing["profile_id"]?.stringValue != requestedProfile {
            throw APIError.invalid("billing_merchant_connector_id", "belongs to another profile than x-profile-id")
        }
        let settings = billing["feature_metadata"]?["revenue_recovery"]
        command.maxRetryCount = settings?["max_retry_count"]?.intValue
        command.billingRetryThreshold = settings?["billing_connector_retry_threshold"]?.intValue
        if let paymentId = try body.string("payment_merchant_connector_id", maxLength: 64) {
            guard let payment = try await connectors.response(merchantId: merchantId, id: paymentId) else {
                throw APIError(status: .notFound, type: "invalid_request", code: "HE_02", message: "Payment connector account does not exist", field: "payment_merchant_connector_id")
            }
            guard payment["connector_type"]?.stringValue == "payment_processor" else {
                throw APIError.invalid("payment_merchant_connector_id", "is not a payment_processor connector account")
            }
            guard case .object(let references)? = settings?["billing_account_reference"], references[paymentId] != nil else {
                throw APIError.invalid("payment_merchant_connector_id", "is not in the billing connector account's billing_account_reference")
            }
            command.paymentConnectorId = paymentId
            command.paymentConnectorName = payment["connector_name"]?.stringValue
        } else if needsInvoice {
            throw APIError.invalid("payment_merchant_connector_id", "is required to retry the payment", code: "IR_05")
        }
        return command
    }

    func date(_ body: RequestObject, _ key: String) throws -> Date? {
        guard let text = try body.string(key, maxLength: 64) else { return nil }
        guard let date = RFC3339.parse(text) else { throw APIError.invalid(body.name(key), "must be an RFC 3339 date-time") }
        return date
    }

    /// Sent signed, under the merchant's configuration version now (the scheduler acts once its
    /// copy has it: a profile's algorithm changed before the report applies to it).
    func send(_ command: RecoveryCommand) async throws {
        var command = command
        try command.sealProcessorToken(with: secrets)
        let version = try await ConfigurationPublisher.currentVersion(command.merchantId, postgres: postgres, logger: logger)
        let envelope = EventEnvelope(type: RecoveryIdentifiers.commandType, merchantId: command.merchantId, profileId: command.profileId,
                                     configurationVersion: version, payload: try JSONValue(encoding: command))
        do {
            let message = KafkaProducerMessage(topic: infrastructure.configuration.topics.recoveryCommands, key: command.jobId, value: try envelope.encoded())
            _ = try await infrastructure.producer.send(commandSigner.signed(TraceHeaders.attachCurrent(to: message)))
        } catch {
            logger.error("recovery command not acknowledged", metadata: ["job_id": .string(command.jobId), "error": .string(String(describing: error))])
            throw APIError.unavailable("The report could not be accepted; send it again (it is idempotent)")
        }
    }

    /// The job as the scheduler holds it, if it belongs to `merchantId`.
    func job(_ jobId: String, merchantId: String) async throws -> JSONValue? {
        let job = try await scheduler.object("/internal/recovery/" + StrictPercentEncoding.encode(jobId), unavailable: "Recovery jobs cannot be read now; retry later", logger: logger)
        return job?["merchant_id"]?.stringValue == merchantId ? job : nil
    }
}
