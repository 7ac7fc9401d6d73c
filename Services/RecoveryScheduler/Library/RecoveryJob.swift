import Foundation
import PaywireModels
import PaywireStore

extension SealedField {
    /// The processor token of a recovery job's card, in its tracking data.
    static let recoveryProcessorToken = SealedField(table: "recovery.process_tracker", column: "tracking_data.processor_token")
}

/// A recovery job's tracking data: the invoice, the card and what is known of its attempts.
/// Stored as the process tracker row's `tracking_data` (the processor token sealed, bound to the job).
struct RecoveryJob: Codable, Sendable, Equatable {
    var jobId: String
    var merchantId: String
    var profileId: String?
    var merchantReferenceId: String?
    var amount: Int
    var currency: String
    var sealedProcessorToken: String
    var connectorCustomerId: String?
    var billingConnectorId: String?
    var paymentConnectorId: String
    var paymentConnectorName: String
    var maxRetryCount: Int
    var billingRetryThreshold: Int
    /// Failed attempts the billing platform reported (each `schedule_failed_payment` is one).
    var billingAttempts: Int
    var firstErrorCode: String?
    var firstNetworkDeclineCode: String?
    var firstNetworkAdviceCode: String?
    var lastErrorCode: String?
    var lastNetworkDeclineCode: String?
    var lastNetworkAdviceCode: String?
    var paymentMethodType: String?
    var paymentMethodSubtype: String?
    var cardNetwork: String?
    var cardIssuer: String?
    var billingStartedAt: Date?
    var invoiceNextBillingTime: Date?
    /// Why the job ended, when it has.
    var finishReason: String?
    /// The trace of the report that started the job (`TraceHeaders`): each retry is a span of it.
    var traceHeaders: [String: String]?

    enum CodingKeys: String, CodingKey {
        case amount, currency
        case jobId = "job_id", merchantId = "merchant_id", profileId = "profile_id", merchantReferenceId = "merchant_reference_id"
        case sealedProcessorToken = "sealed_processor_token", connectorCustomerId = "connector_customer_id"
        case billingConnectorId = "billing_connector_id", paymentConnectorId = "payment_connector_id", paymentConnectorName = "payment_connector_name"
        case maxRetryCount = "max_retry_count", billingRetryThreshold = "billing_retry_threshold", billingAttempts = "billing_attempts"
        case firstErrorCode = "first_error_code", firstNetworkDeclineCode = "first_network_decline_code", firstNetworkAdviceCode = "first_network_advice_code"
        case lastErrorCode = "last_error_code", lastNetworkDeclineCode = "last_network_decline_code", lastNetworkAdviceCode = "last_network_advice_code"
        case paymentMethodType = "payment_method_type", paymentMethodSubtype = "payment_method_subtype", cardNetwork = "card_network", cardIssuer = "card_issuer"
        case billingStartedAt = "billing_started_at", invoiceNextBillingTime = "invoice_next_billing_time", finishReason = "finish_reason"
        case cardKey = "card_key", traceHeaders = "trace_headers"
    }

    /// The card, as network limits count it: one processor token at one processor is one card
    /// (a digest: the token itself stays sealed).
    var cardKey: String

    /// The latest failure known, as the policy reads it.
    var lastFailure: RecoveryAttemptOutcome {
        RecoveryAttemptOutcome(declineCode: lastErrorCode, rawDeclineCode: lastNetworkDeclineCode, adviceCode: lastNetworkAdviceCode)
    }
}

/// One of Paywire's attempts on a job, as stored and as the API shows it.
struct RecoveryAttemptRecord: Sendable {
    var paymentId: String
    var attemptNumber: Int
    var status: String
    var declineCode: String?
    var rawDeclineCode: String?
    var adviceCode: String?
    var message: String?
    var connector: String?
    var connectorTransactionId: String?
    var attemptedAt: Date
    var finishedAt: Date?
}
