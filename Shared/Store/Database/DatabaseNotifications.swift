import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import ServiceLifecycle

/// Wakes a service's loops when its schema has work for them: one connection `LISTEN`s on the
/// schema's channel (`<schema>_work`), and each notification's payload names the loop to wake
/// (`outbox`, `deliveries`, ...). Triggers in the schema send them (`MessagingTables
/// .notifyMigration` and the services' own), so work written by any replica, or by a statement
/// nobody thought of, wakes the loop at once; the loops still run now and then on their own, so
/// a notification lost while the connection was being replaced costs a delay, not work.
public final class DatabaseNotifications: Service, Sendable {
    public let channel: String
    private let client: PostgresClient
    private let logger: Logger
    private let signals: NIOLockedValueBox<[String: WakeSignal]>
    /// Run on each notification with their payload, and whenever the listener connects or loses
    /// its connection (notifications may have been missed then).
    private let observers = NIOLockedValueBox<[String: [@Sendable () -> Void]]>([:])
    private let listening = NIOLockedValueBox(false)

    public init(schema: String, client: PostgresClient, logger: Logger) {
        channel = Self.channel(schema)
        self.client = client
        self.logger = logger
        signals = NIOLockedValueBox([:])
    }

    /// The channel a schema's triggers notify.
    public static func channel(_ schema: String) -> String { "\(schema)_work" }

    /// The signal a notification with this payload sets (the same one each time it is asked).
    public func signal(_ payload: String) -> WakeSignal {
        signals.withLockedValue { signals in
            if let existing = signals[payload] { return existing }
            let signal = WakeSignal()
            signals[payload] = signal
            return signal
        }
    }

    /// Runs `handler` on every notification with this payload, and whenever the listener
    /// connects or loses its connection. It runs on the listener's task: it must be quick.
    public func observe(_ payload: String, _ handler: @escaping @Sendable () -> Void) {
        observers.withLockedValue { $0[payload, default: []].append(handler) }
    }

    /// True while the listener holds its connection: every notification sent meanwhile arrives.
    public var isListening: Bool { listening.withLockedValue { $0 } }

    private func signalAll() {
        for signal in signals.withLockedValue({ Array($0.values) }) { signal.signal() }
        runAllObservers()
    }

    private func runAllObservers() {
        for handler in observers.withLockedValue({ $0.values.flatMap { $0 } }) { handler() }
    }

    private func stoppedListening() {
        listening.withLockedValue { $0 = false }
        runAllObservers()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.client.withConnection { connection in
                        try await connection.listen(on: self.channel) { notifications in
                            // Whatever was written while nobody listened is looked for now.
                            self.listening.withLockedValue { $0 = true }
                            self.signalAll()
                            for try await notification in notifications {
                                self.signals.withLockedValue { $0[notification.payload] }?.signal()
                                for handler in self.observers.withLockedValue({ $0[notification.payload] ?? [] }) { handler() }
                            }
                        }
                    }
                    self.stoppedListening()
                } catch {
                    self.stoppedListening()
                    if Task.isCancelled { break }
                    self.logger.warning("listening for database notifications failed; listening again", metadata: [
                        "channel": .string(self.channel), "error": .string(MessageFailure.loggable(error)),
                    ])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
