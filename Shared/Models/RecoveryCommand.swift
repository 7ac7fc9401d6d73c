import Foundation

/// A billing platform's report about one invoice (`POST /v2/payments/recovery`), or a cancel, sent
/// by the gateway on `paywire.recovery.commands`, keyed by the job id. The job id is derived from
/// the merchant and the invoice's `merchant_reference_id`, so every report about one invoice
/// reaches the same job (a second report updates it instead of starting another).
public struct RecoveryCommand: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable, CaseIterable {
        /// The billing platform's charge failed: retry it on the profile's schedule.
        case scheduleFailedPayment = "schedule_failed_payment"
        /// The invoice was paid elsewhere: stop.
        case successPaymentExternal = "success_payment_external"
        /// The invoice was voided: stop.
        case cancelInvoice = "cancel_invoice"
        /// Record the report, do nothing.
        case noAction = "no_action"
        /// `POST /v2/payments/{id}/recovery/cancel`.
        case cancel
    }

    public var action: Action
    public var jobId: String
    public var merchantId: String
    public var profileId: String?
    public var merchantReferenceId: String?
    public var amount: Int?
    public var currency: String?
    /// The processor's token for the customer's saved payment method, and the customer.
    /// The saved payment method's processor token. In memory only: on Kafka it travels sealed
    /// (`sealedProcessorToken`, see `RecoveryCommand.sealProcessorToken`).
    public var processorToken: String? = nil
    public var sealedProcessorToken: String?
    public var connectorCustomerId: String?
    public var billingConnectorId: String?
    public var paymentConnectorId: String?
    public var paymentConnectorName: String?
    /// The billing connector's revenue-recovery settings when the report came in.
    public var maxRetryCount: Int?
    public var billingRetryThreshold: Int?
    /// What the billing platform's failed attempt was told.
    public var errorCode: String?
    public var errorMessage: String?
    public var networkDeclineCode: String?
    public var networkAdviceCode: String?
    public var paymentMethodType: String?
    public var paymentMethodSubtype: String?
    public var cardNetwork: String?
    public var cardIssuer: String?
    public var billingStartedAt: Date?
    public var invoiceNextBillingTime: Date?

    public init(action: Action, jobId: String, merchantId: String) {
        self.action = action
        self.jobId = jobId
        self.merchantId = merchantId
    }

    enum CodingKeys: String, CodingKey {
        case action, amount, currency
        case jobId = "job_id", merchantId = "merchant_id", profileId = "profile_id", merchantReferenceId = "merchant_reference_id"
        case sealedProcessorToken = "sealed_processor_token", connectorCustomerId = "connector_customer_id"
        case billingConnectorId = "billing_connector_id", paymentConnectorId = "payment_connector_id", paymentConnectorName = "payment_connector_name"
        case maxRetryCount = "max_retry_count", billingRetryThreshold = "billing_retry_threshold"
        case errorCode = "error_code", errorMessage = "error_message", networkDeclineCode = "network_decline_code", networkAdviceCode = "network_advice_code"
        case paymentMethodType = "payment_method_type", paymentMethodSubtype = "payment_method_subtype", cardNetwork = "card_network", cardIssuer = "card_issuer"
        case billingStartedAt = "billing_started_at", invoiceNextBillingTime = "invoice_next_billing_time"
    }
}

/// How recovery jobs and their payments are named, which other services rely on.
public enum RecoveryIdentifiers {
    /// Envelope type of a `RecoveryCommand`.
    public static let commandType = "recovery.command"
    /// Jobs and the payments the recovery scheduler makes carry ids with this prefix (the gateway's
    /// ids are `pay_` and letters and digits only, so they never do): a retry's payment events
    /// are the scheduler's to read, and the merchant hears only the job's one final event.
    public static let attemptPrefix = "pay_rec_"

    /// The job of a merchant's invoice: `pay_rec_` + 24 hex digits of a digest of both, so every
    /// report about one invoice names one job, and nothing about the merchant shows in the id.
    public static func jobId(merchantId: String, merchantReferenceId: String, digest: (String) -> String) -> String {
        "pay_rec_" + String(digest(merchantId + "\u{0}" + merchantReferenceId).prefix(24))
    }

    /// The payment of a job's n-th retry (1-based), reserved before its command is sent: sending
    /// it again after a crash makes no second charge.
    public static func attemptPaymentId(jobId: String, attempt: Int) -> String { "\(jobId)_\(attempt)" }

    /// A retry's payment (`pay_rec_<job>_<n>`), not a job.
    public static func isRecoveryAttempt(_ paymentId: String) -> Bool {
        paymentId.hasPrefix(attemptPrefix) && paymentId.dropFirst(attemptPrefix.count).contains("_")
    }

    /// The job a retry's payment belongs to.
    public static func jobId(ofAttempt paymentId: String) -> String? {
        guard isRecoveryAttempt(paymentId), let cut = paymentId.lastIndex(of: "_") else { return nil }
        return String(paymentId[..<cut])
    }
}
