import Foundation
import NIOConcurrencyHelpers
import PaywireStore

/// Which merchant each secret API key belongs to, kept by each gateway replica so that a request
/// needs no query to say who sent it (one PostgreSQL round trip per request was the gateway's
/// largest fixed cost).
///
/// Used only while the replica listens for the gateway schema's notifications: a trigger on
/// `gateway.api_keys` notifies every replica of any update or delete (a revocation, a new
/// expiration, a merchant deleted with its keys), and each one empties its cache then, within
/// milliseconds of the commit; the replica that revoked a key empties its own before it answers.
/// It is emptied too whenever the listener connects or loses its connection (notifications may
/// have been missed), and an entry lives at most `lifetime`. A lookup that ran while the cache
/// was emptied is not kept (`generation`), so a key read just before its revocation committed
/// cannot come back afterwards. Keys not found are never kept: a wrong key always costs a query.
final class APIKeyCache: Sendable {
    struct Entry: Sendable {
        var merchantId: String
        var expiration: Date?
        var storedAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var generation: UInt64 = 0
        var isListening: (@Sendable () -> Bool)?
    }

    private let state = NIOLockedValueBox(State())
    let lifetime: Duration
    let capacity: Int

    init(lifetime: Duration = .seconds(30), capacity: Int = 100_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Trusts the cache while `notifications` listens, and empties it on each change to the keys.
    func attach(_ notifications: DatabaseNotifications) {
        notifications.observe(Self.payload) { [weak self] in self?.clear() }
        attach(isListening: { notifications.isListening })
    }

    /// As `attach(_:)`, with whatever says changes are being heard (tests).
    func attach(isListening: @escaping @Sendable () -> Bool) {
        state.withLockedValue { $0.isListening = isListening }
        clear()
    }

    /// The notification payload the keys' trigger sends.
    static let payload = "api_keys"

    /// The merchant of a key looked up recently, not expired since; nil: ask the database.
    func merchant(forHashedKey hashedKey: String, now: Date = Date()) -> String? {
        let instant = ContinuousClock.now
        return state.withLockedValue { state -> String? in
            guard state.isListening?() == true, let entry = state.entries[hashedKey], instant - entry.storedAt < lifetime else { return nil }
            if let expiration = entry.expiration, expiration <= now { return nil }
            return entry.merchantId
        }
    }

    /// Read before a lookup and handed to `store`: a clear in between makes `store` keep nothing.
    var generation: UInt64 { state.withLockedValue { $0.generation } }

    func store(hashedKey: String, merchantId: String, expiration: Date?, readAt generation: UInt64) {
        state.withLockedValue { state in
            guard state.generation == generation, state.isListening?() == true else { return }
            if state.entries.count >= capacity { state.entries.removeAll() }
            state.entries[hashedKey] = Entry(merchantId: merchantId, expiration: expiration, storedAt: .now)
        }
    }

    func clear() {
        state.withLockedValue { state in
            state.entries.removeAll()
            state.generation &+= 1
        }
    }
}
