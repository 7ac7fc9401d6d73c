import Foundation
import PaywireModels
import Synchronization

/// Cards payment-core has taken from a gateway's vault for confirms it has not written yet, by
/// vault token. Only a confirm interrupted by a fault of ours (and retried) reads one back; every
/// other is released as soon as its confirm is written. Entries older than `lifetime` go at the
/// next hold, so a confirm that never comes back leaves its card for a few minutes at most.
final class HeldCards: Sendable {
    static let lifetime = Duration.seconds(300)
    private let cards = Mutex<[String: (card: CardDetails, until: ContinuousClock.Instant)]>([:])

    func card(_ token: String) -> CardDetails? {
        cards.withLock { cards in
            guard let entry = cards[token] else { return nil }
            guard entry.until > .now else {
                cards.removeValue(forKey: token)
                return nil
            }
            return entry.card
        }
    }

    func hold(_ card: CardDetails, for token: String) {
        let now = ContinuousClock.now
        cards.withLock { cards in
            cards = cards.filter { $0.value.until > now }
            cards[token] = (card, now + Self.lifetime)
        }
    }

    func release(_ token: String) {
        cards.withLock { _ = $0.removeValue(forKey: token) }
    }

    var count: Int { cards.withLock { $0.count } }
}
