import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A stand-in for the part of Adyen that Paywire's `adyen` connector uses, for development and
/// tests: Checkout v68 payments, captures, cancels, technical cancels and refunds (each modification only
/// `received`; its outcome comes by notification), the Dispute Service's accept and defend, and
/// the Management API's webhook and HMAC key. Notifications are signed as Adyen signs them and
/// sent to the merchant account's webhook after a delay; knobs (`POST /_fake/behaviour`) lose,
/// repeat, hold and reorder them, and `POST /_fake/chargebacks` raises a chargeback. Outcomes
/// follow Adyen's test `holderName` values. Loopback only by default.
@main
struct FakeAdyen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "paywire-fake-adyen", abstract: "A fake Adyen API for Paywire's development and tests")

    @Option(help: "Address to listen on") var host = "127.0.0.1"
    @Option(help: "Port to listen on") var port = 12112
    @Option(help: "Delay before a notification is sent, in milliseconds") var notificationDelayMs = 200

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "paywire.fake-adyen")
        let state = FakeAdyenState(behaviour: AdyenBehaviour(notificationDelayMs: notificationDelayMs), logger: logger)
        let router = Router()
        state.addRoutes(to: router)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "fake-adyen"), logger: logger)
        if ProcessInfo.processInfo.environment["PAYWIRE_EXIT_WITH_PARENT"] == "1" {
            let parent = getppid()
            Task.detached {
                while getppid() == parent { try? await Task.sleep(for: .milliseconds(500)) }
                Foundation.exit(0)
            }
        }
        logger.info("fake Adyen listening", metadata: ["address": .string("\(host):\(port)")])
        try await app.runService()
    }
}

/// Run-time knobs, snake_case as the other fakes take them.
struct AdyenBehaviour: Codable, Sendable {
    var latencyMs = 0
    var notificationDelayMs = 200
    /// Share of API calls answered 500 (0...1), and the next N calls answered 500.
    var errorRate = 0.0
    var failNext = 0
    var notificationsEnabled = true
    /// Every notification sent twice (Adyen delivers at least once).
    var duplicateNotifications = false
    /// Share of notifications never sent (0...1): lost in transit.
    var dropRate = 0.0
    /// Notifications are kept until `POST /_fake/notifications/release`, which may send them
    /// in reverse order or as one batch.
    var holdNotifications = false

    enum CodingKeys: String, CodingKey {
        case latencyMs = "latency_ms"
        case notificationDelayMs = "notification_delay_ms"
        case errorRate = "error_rate"
        case failNext = "fail_next"
        case notificationsEnabled = "notifications_enabled"
        case duplicateNotifications = "duplicate_notifications"
        case dropRate = "drop_rate"
        case holdNotifications = "hold_notifications"
    }

    init(notificationDelayMs: Int) { self.notificationDelayMs = notificationDelayMs }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        latencyMs = try container.decodeIfPresent(Int.self, forKey: .latencyMs) ?? 0
        notificationDelayMs = try container.decodeIfPresent(Int.self, forKey: .notificationDelayMs) ?? 200
        errorRate = try container.decodeIfPresent(Double.self, forKey: .errorRate) ?? 0
        failNext = try container.decodeIfPresent(Int.self, forKey: .failNext) ?? 0
        notificationsEnabled = try container.decodeIfPresent(Bool.self, forKey: .notificationsEnabled) ?? true
        duplicateNotifications = try container.decodeIfPresent(Bool.self, forKey: .duplicateNotifications) ?? false
        dropRate = try container.decodeIfPresent(Double.self, forKey: .dropRate) ?? 0
        holdNotifications = try container.decodeIfPresent(Bool.self, forKey: .holdNotifications) ?? false
    }
}

/// A payment as the fake holds it.
struct AdyenPayment: Sendable {
    var pspReference: String
    var merchantAccount: String
    var reference: String
    var attemptId: String?
    var amount: Int
    var currency: String
    var manualCapture: Bool
    /// `Authorised`, `Refused`, `Error`.
    var resultCode: String
    var captured = 0
    var cancelled = false
    var refunded = 0
    /// Order of arrival, to find the latest payment with a reference.
    var sequence = 0
}

/// A chargeback on a payment: one dispute pspReference through all its notifications.
struct AdyenDispute: Sendable {
    var pspReference: String
    var paymentPspReference: String
    var merchantAccount: String
    var status: String
    var defended = false
}

/// A notification item waiting to be sent, for one merchant account.
struct PendingNotification: Sendable {
    var merchantAccount: String
    var item: [String: String]
    var amount: Int
    var currency: String
    var additional: [String: String]
}

struct AdyenStore {
    var behaviour: AdyenBehaviour
    var payments: [String: AdyenPayment] = [:]
    var disputes: [String: AdyenDispute] = [:]
    var idempotent: [String: (Int, Data)] = [:]
    /// Webhooks by merchant account: URL and HMAC key (hex), as the Management API makes them.
    var webhooks: [String: [(id: String, url: String, hmacKey: String?)]] = [:]
    var held: [PendingNotification] = []
    var notificationsSent = 0
    var notificationsDropped = 0
    var charges = 0
    /// Authorisations by our `reference` (the payment id): a payment charged twice shows here.
    var chargesByReference: [String: Int] = [:]
    var modifications = 0
    /// Stored-details payments made merchant-initiated (`shopperInteraction: ContAuth`).
    var contAuthPayments = 0
    /// `merchantAccount|reference` of technical cancels that found no payment.
    var technicallyCancelled: Set<String> = []
    var sequence = 0
}
