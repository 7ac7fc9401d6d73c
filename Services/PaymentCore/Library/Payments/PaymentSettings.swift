import Foundation
import Logging
import Metrics
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Timing of connector calls and status syncs (environment variables in README).
public struct PaymentSettings: Sendable {
    /// How long one connector call may take before its outcome counts as unknown.
    public var connectorTimeout: Duration
    /// How long after an unknown outcome the first status sync runs (the incoming webhook may
    /// resolve it first).
    public var syncDelay: Duration
    /// The longest the status-sync loop sleeps (`PAYWIRE_PSYNC_INTERVAL_MS`, default 30 s): it
    /// sleeps until the next row is due, and never longer than connector timeout + sync delay.
    public var syncInterval: Duration
    /// Syncs per attempt before it is left for an operator (logged, stays `processing`).
    public var maxSyncs: Int
    /// How long a payment or refund at a processor without a status look-up (Adyen) may wait
    /// for its notification before it is reported overdue (`PAYWIRE_NOTIFICATION_OVERDUE_SECONDS`,
    /// default 24 h): logged and counted in `paywire_notifications_overdue_total`.
    public var notificationOverdueAfter: Duration
    /// How long after it began an authorisation that never got an answer (no processor id) is
    /// cancelled by reference, at a processor that can (`PAYWIRE_UNANSWERED_AUTHORISATION_CANCEL_SECONDS`,
    /// default 120 s; never before the first status sync). Its AUTHORISATION notification, if the
    /// processor had the payment, usually comes well before.
    public var unansweredCancelAfter: Duration

    public static let environmentKeys = ["PAYWIRE_CONNECTOR_TIMEOUT_MS", "PAYWIRE_PSYNC_DELAY_MS", "PAYWIRE_PSYNC_INTERVAL_MS", "PAYWIRE_PSYNC_MAX_TRIES", "PAYWIRE_NOTIFICATION_OVERDUE_SECONDS",
                                         "PAYWIRE_UNANSWERED_AUTHORISATION_CANCEL_SECONDS"]

    public init(environment: [String: String]) throws {
        connectorTimeout = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_CONNECTOR_TIMEOUT_MS", default: 30_000, range: 100...300_000))
        syncDelay = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_PSYNC_DELAY_MS", default: 15_000, range: 0...86_400_000))
        syncInterval = .milliseconds(try ServiceConfiguration.integer(environment, "PAYWIRE_PSYNC_INTERVAL_MS", default: 30_000, range: 50...3_600_000))
        maxSyncs = try ServiceConfiguration.integer(environment, "PAYWIRE_PSYNC_MAX_TRIES", default: 30, range: 1...10_000)
        notificationOverdueAfter = .seconds(try ServiceConfiguration.integer(environment, "PAYWIRE_NOTIFICATION_OVERDUE_SECONDS", default: 86_400, range: 1...2_592_000))
        unansweredCancelAfter = .seconds(try ServiceConfiguration.integer(environment, "PAYWIRE_UNANSWERED_AUTHORISATION_CANCEL_SECONDS", default: 120, range: 1...86_400))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The first sync waits for the call to have timed out, then the delay.
    var firstSyncAfterSeconds: Double { Self.seconds(connectorTimeout + syncDelay) }

    /// Later syncs back off from this: base × 2^tries, at most an hour (computed where rows are claimed).
    var syncBackoffBaseSeconds: Double { max(Self.seconds(syncDelay), 0.5) }
}
