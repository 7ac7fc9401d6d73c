import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import Gateway

/// The gateway's per-replica cache of API keys: trusted only while changes are heard, emptied by
/// each change, never keeping a lookup that raced a change, never answering for an expired key.
struct APIKeyCacheTests {
    @Test func aKeyLookedUpIsAnsweredFromTheCacheUntilAChangeEmptiesIt() {
        let cache = APIKeyCache()
        cache.attach(isListening: { true })
        #expect(cache.merchant(forHashedKey: "h1") == nil)
        cache.store(hashedKey: "h1", merchantId: "m1", expiration: nil, readAt: cache.generation)
        #expect(cache.merchant(forHashedKey: "h1") == "m1")
        #expect(cache.merchant(forHashedKey: "h2") == nil)
        cache.clear()
        #expect(cache.merchant(forHashedKey: "h1") == nil)
    }

    /// A lookup that read the key before a revocation committed, and stores after the change
    /// emptied the cache, keeps nothing: the revoked key is asked for again.
    @Test func aLookupThatRacedAChangeIsNotKept() {
        let cache = APIKeyCache()
        cache.attach(isListening: { true })
        let before = cache.generation
        cache.clear()
        cache.store(hashedKey: "h1", merchantId: "m1", expiration: nil, readAt: before)
        #expect(cache.merchant(forHashedKey: "h1") == nil)
        cache.store(hashedKey: "h1", merchantId: "m1", expiration: nil, readAt: cache.generation)
        #expect(cache.merchant(forHashedKey: "h1") == "m1")
    }

    /// Without a listener (never attached, or its connection lost) nothing is kept or answered:
    /// a change could go unheard.
    @Test func nothingIsTrustedWhileChangesCannotBeHeard() {
        let unattached = APIKeyCache()
        unattached.store(hashedKey: "h1", merchantId: "m1", expiration: nil, readAt: unattached.generation)
        #expect(unattached.merchant(forHashedKey: "h1") == nil)

        let listening = NIOLockedValueBox(true)
        let cache = APIKeyCache()
        cache.attach(isListening: { listening.withLockedValue { $0 } })
        cache.store(hashedKey: "h1", merchantId: "m1", expiration: nil, readAt: cache.generation)
        #expect(cache.merchant(forHashedKey: "h1") == "m1")
        listening.withLockedValue { $0 = false }
        #expect(cache.merchant(forHashedKey: "h1") == nil)
    }

    @Test func anExpiredKeyAndAnEntryPastItsLifetimeAreNotAnswered() async throws {
        let cache = APIKeyCache(lifetime: .milliseconds(200))
        cache.attach(isListening: { true })
        let now = Date()
        cache.store(hashedKey: "expiring", merchantId: "m1", expiration: now.addingTimeInterval(60), readAt: cache.generation)
        #expect(cache.merchant(forHashedKey: "expiring", now: now) == "m1")
        #expect(cache.merchant(forHashedKey: "expiring", now: now.addingTimeInterval(61)) == nil)

        cache.store(hashedKey: "old", merchantId: "m1", expiration: nil, readAt: cache.generation)
        // The lifetime is on the monotonic clock: this waits it out (a slower machine waits longer).
        let stored = ContinuousClock.now
        while ContinuousClock.now - stored < .milliseconds(200) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(cache.merchant(forHashedKey: "old") == nil)
    }

    @Test func aFullCacheStartsAgainRatherThanGrowWithoutEnd() {
        let cache = APIKeyCache(capacity: 3)
        cache.attach(isListening: { true })
        for index in 0..<3 { cache.store(hashedKey: "h\(index)", merchantId: "m", expiration: nil, readAt: cache.generation) }
        #expect(cache.merchant(forHashedKey: "h0") == "m")
        cache.store(hashedKey: "h3", merchantId: "m", expiration: nil, readAt: cache.generation)
        #expect(cache.merchant(forHashedKey: "h0") == nil)
        #expect(cache.merchant(forHashedKey: "h3") == "m")
    }
}
