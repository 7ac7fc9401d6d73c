/// The outgoing event types an endpoint can subscribe to (Hyperswitch's names).
public enum WebhookEventType {
    public static let known: Set<String> = [
        "payment_succeeded", "payment_failed", "payment_processing", "payment_cancelled",
        "payment_authorized", "payment_captured", "payment_expired", "action_required",
        "refund_succeeded", "refund_failed",
        "dispute_opened", "dispute_expired", "dispute_accepted", "dispute_cancelled",
        "dispute_challenged", "dispute_won", "dispute_lost",
        "mandate_active", "mandate_revoked",
        "payout_success", "payout_failed", "payout_processing", "payout_cancelled",
    ]

    /// What the legacy `payment_*_enabled` flags switch off for a single `webhook_url`.
    public static let legacyFlags: [String: String] = [
        "payment_created_enabled": "payment_processing",
        "payment_succeeded_enabled": "payment_succeeded",
        "payment_failed_enabled": "payment_failed",
    ]
}
