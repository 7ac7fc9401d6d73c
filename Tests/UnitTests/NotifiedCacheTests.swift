import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import Gateway

/// The gateway's per-replica caches (API keys, payment settings): trusted only while changes are
/// heard, emptied by each change, never keeping a lookup that raced a change, never answering for
/// an expired entry.
struct NotifiedCacheTests {
    @Test func aKeyLookedUpIsAnsweredFromTheCacheUntilAChangeEmptiesIt() {
        let cache = NotifiedCache<String>(payload: "test")
        cache.attach(isListening: { true })
        #expect(cache.value(for: "h1") == nil)
        cache.store("m1", for: "h1", expiration: nil, readAt: cache.generation)
        #expect(cache.value(for: "h1") == "m1")
        #expect(cache.value(for: "h2") == nil)
        cache.clear()
        #expect(cache.value(for: "h1") == nil)
    }

    /// A lookup that read the key before a revocation committed, and stores after the change
    /// emptied the cache, keeps nothing: the revoked key is asked for again.
    @Test func aLookupThatRacedAChangeIsNotKept() {
        let cache = NotifiedCache<String>(payload: "test")
        cache.attach(isListening: { true })
        let before = cache.generation
        cache.clear()
        cache.store("m1", for: "h1", expiration: nil, readAt: before)
        #expect(cache.value(for: "h1") == nil)
        cache.store("m1", for: "h1", expiration: nil, readAt: cache.generation)
        #expect(cache.value(for: "h1") == "m1")
    }

    /// Without a listener (never attached, or its connection lost) nothing is kept or answered:
    /// a change could go unheard.
    @Test func nothingIsTrustedWhileChangesCannotBeHeard() {
        let unattached = NotifiedCache<String>(payload: "test")
        unattached.store("m1", for: "h1", expiration: nil, readAt: unattached.generation)
        #expect(unattached.value(for: "h1") == nil)

        let listening = NIOLockedValueBox(true)
        let cache = NotifiedCache<String>(payload: "test")
        cache.attach(isListening: { listening.withLockedValue { $0 } })
        cache.store("m1", for: "h1", expiration: nil, readAt: cache.generation)
        #expect(cache.value(for: "h1") == "m1")
        listening.withLockedValue { $0 = false }
        #expect(cache.value(for: "h1") == nil)
    }

    @Test func anExpiredKeyAndAnEntryPastItsLifetimeAreNotAnswered() {
        let cache = NotifiedCache<String>(payload: "test", lifetime: .milliseconds(200))
        cache.attach(isListening: { true })
        let now = Date()
        cache.store("m1", for: "expiring", expiration: now.addingTimeInterval(60), readAt: cache.generation)
        #expect(cache.value(for: "expiring", now: now) == "m1")
        #expect(cache.value(for: "expiring", now: now.addingTimeInterval(61)) == nil)

        let stored = ContinuousClock.now
        cache.store("m1", for: "old", expiration: nil, readAt: cache.generation)
        #expect(cache.value(for: "old") == "m1")
        #expect(cache.value(for: "old", at: stored + .milliseconds(300)) == nil)
    }

    @Test func aFullCacheStartsAgainRatherThanGrowWithoutEnd() {
        let cache = NotifiedCache<String>(payload: "test", capacity: 3)
        cache.attach(isListening: { true })
        for index in 0..<3 { cache.store("m", for: "h\(index)", expiration: nil, readAt: cache.generation) }
        #expect(cache.value(for: "h0") == "m")
        cache.store("m", for: "h3", expiration: nil, readAt: cache.generation)
        #expect(cache.value(for: "h0") == nil)
        #expect(cache.value(for: "h3") == "m")
    }
}
