import Foundation
import Metrics
import NIOConcurrencyHelpers
import PaywireStore

/// Values a gateway replica read from its own tables, kept so that a request needs no query for
/// them: the merchant an API key belongs to, a merchant's payment setting. (A query per request
/// for each was the gateway's largest fixed cost.)
///
/// Used only while the replica listens for the gateway schema's notifications: a trigger on the
/// tables behind the values notifies every replica of each change (`payload`), and each one
/// empties the cache then, within milliseconds of the commit; the replica that made the change
/// empties its own before it answers. The cache is emptied too whenever the listener connects or
/// loses its connection (notifications may have been missed), and an entry lives at most
/// `lifetime`. A lookup that ran while the cache was emptied is not kept (`generation`), so a
/// value read just before a change committed cannot come back afterwards. Only values found are
/// kept: a key that matches nothing always costs a query.
final class NotifiedCache<Value: Sendable>: Sendable {
    struct Entry: Sendable {
        var value: Value
        var expiration: Date?
        var storedAt: ContinuousClock.Instant
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var generation: UInt64 = 0
        var isListening: (@Sendable () -> Bool)?
    }

    private let state = NIOLockedValueBox(State())
    /// The notification payload the trigger on the values' tables sends.
    let payload: String
    let lifetime: Duration
    let capacity: Int
    private let hits: Counter
    private let misses: Counter

    init(payload: String, lifetime: Duration = .seconds(30), capacity: Int = 100_000) {
        self.payload = payload
        self.lifetime = lifetime
        self.capacity = capacity
        hits = Counter(label: "paywire_gateway_cache_lookups_total", dimensions: [("cache", payload), ("answered_by", "cache")])
        misses = Counter(label: "paywire_gateway_cache_lookups_total", dimensions: [("cache", payload), ("answered_by", "database")])
    }

    /// Trusts the cache while `notifications` listens, and empties it on each change.
    func attach(_ notifications: DatabaseNotifications) {
        notifications.observe(payload) { [weak self] in self?.clear() }
        attach(isListening: { notifications.isListening })
    }

    /// As `attach(_:)`, with whatever says changes are being heard (tests).
    func attach(isListening: @escaping @Sendable () -> Bool) {
        state.withLockedValue { $0.isListening = isListening }
        clear()
    }

    /// The value kept for `key`, unless it is past its lifetime (`instant`: now, on the clock the
    /// lifetime runs on) or its own expiration (`now`); nil: ask the database (and `store` what
    /// it says, with the `generation` read before asking).
    func value(for key: String, now: Date = Date(), at instant: ContinuousClock.Instant = .now) -> Value? {
        let found = state.withLockedValue { state -> Value? in
            guard state.isListening?() == true, let entry = state.entries[key], instant - entry.storedAt < lifetime else { return nil }
            if let expiration = entry.expiration, expiration <= now { return nil }
            return entry.value
        }
        if found == nil { misses.increment() } else { hits.increment() }
        return found
    }

    /// Read before a lookup and handed to `store`: a clear in between makes `store` keep nothing.
    var generation: UInt64 { state.withLockedValue { $0.generation } }

    func store(_ value: Value, for key: String, expiration: Date? = nil, readAt generation: UInt64) {
        state.withLockedValue { state in
            guard state.generation == generation, state.isListening?() == true else { return }
            if state.entries.count >= capacity { state.entries.removeAll() }
            state.entries[key] = Entry(value: value, expiration: expiration, storedAt: .now)
        }
    }

    func clear() {
        state.withLockedValue { state in
            state.entries.removeAll()
            state.generation &+= 1
        }
    }
}
