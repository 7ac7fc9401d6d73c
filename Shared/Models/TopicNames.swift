/// Kafka topic names. They are configuration (environment variables named below); these are the
/// defaults every service and the dev broker agree on.
public struct TopicNames: Sendable, Equatable {
    public var paymentCommands = "paywire.payment.commands"
    public var paymentEvents = "paywire.payment.events"
    public var recoveryCommands = "paywire.recovery.commands"
    /// The one final event of each recovery job (recovery-scheduler → dispatcher).
    public var recoveryEvents = "paywire.recovery.events"
    public var webhookCommands = "paywire.webhook.commands"
    public var gatewayReplies = "paywire.gateway.replies"
    public var deadLetter = "paywire.deadletter"
    /// Merchants' configurations as the gateway publishes them (compacted, key: merchant id).
    public var configuration = "paywire.configuration"

    public init() {}

    /// Environment variable for each topic, in the order `all` lists them.
    public static let environmentKeys = [
        "PAYWIRE_TOPIC_PAYMENT_COMMANDS",
        "PAYWIRE_TOPIC_PAYMENT_EVENTS",
        "PAYWIRE_TOPIC_RECOVERY_COMMANDS",
        "PAYWIRE_TOPIC_WEBHOOK_COMMANDS",
        "PAYWIRE_TOPIC_GATEWAY_REPLIES",
        "PAYWIRE_TOPIC_DEADLETTER",
        "PAYWIRE_TOPIC_CONFIGURATION",
        "PAYWIRE_TOPIC_RECOVERY_EVENTS",
    ]

    public init(environment: [String: String]) {
        self.init()
        let keys = Self.environmentKeys
        if let value = environment[keys[0]], !value.isEmpty { paymentCommands = value }
        if let value = environment[keys[1]], !value.isEmpty { paymentEvents = value }
        if let value = environment[keys[2]], !value.isEmpty { recoveryCommands = value }
        if let value = environment[keys[3]], !value.isEmpty { webhookCommands = value }
        if let value = environment[keys[4]], !value.isEmpty { gatewayReplies = value }
        if let value = environment[keys[5]], !value.isEmpty { deadLetter = value }
        if let value = environment[keys[6]], !value.isEmpty { configuration = value }
        if let value = environment[keys[7]], !value.isEmpty { recoveryEvents = value }
    }

    public var all: [String] {
        [paymentCommands, paymentEvents, recoveryCommands, webhookCommands, gatewayReplies, deadLetter, configuration, recoveryEvents]
    }
}

/// Envelope `type` values.
public enum MessageType {
    /// A `PaymentCommand` on `paywire.payment.commands`.
    public static let paymentCommand = "payment.command"
    /// A `GatewayReply` on `paywire.gateway.replies`.
    public static let gatewayReply = "gateway.reply"

    // Payment and refund events, named as the merchant's webhooks name them.
    public static let paymentProcessing = "payment_processing"
    public static let paymentAuthorized = "payment_authorized"
    public static let paymentSucceeded = "payment_succeeded"
    public static let paymentFailed = "payment_failed"
    public static let paymentCaptured = "payment_captured"
    public static let paymentCancelled = "payment_cancelled"
    /// The payment needs the merchant (or an operator): its outcome could not be learned.
    public static let actionRequired = "action_required"
    public static let refundSucceeded = "refund_succeeded"
    public static let refundFailed = "refund_failed"
}
