import NIOConcurrencyHelpers

/// An endpoint's optional `rate_limit` (requests per second), enforced per dispatcher replica as
/// a token bucket holding one second of requests: a request waits for its token, holding only its
/// own endpoint's slot, so a rate-limited endpoint slows nobody else.
final class EndpointRateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])

    /// Takes a token now, or says how long until one is free (the token is then already taken).
    func reserve(endpointId: String, perSecond: Int, now: ContinuousClock.Instant = .now) -> Duration {
        let rate = Double(max(1, perSecond))
        return buckets.withLockedValue { buckets in
            var bucket = buckets[endpointId] ?? Bucket(tokens: rate, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(rate, bucket.tokens + seconds * rate) - 1
            bucket.updated = now
            buckets[endpointId] = bucket
            return bucket.tokens >= 0 ? .zero : .milliseconds(Int64((-bucket.tokens / rate) * 1000))
        }
    }

    func acquire(endpointId: String, perSecond: Int) async {
        let wait = reserve(endpointId: endpointId, perSecond: perSecond)
        if wait > .zero { try? await Task.sleep(for: wait) }
    }
}
