import Foundation
import NIOConcurrencyHelpers
import PaywireStore

/// The scheduler's idea of now. In production it is the wall clock; with
/// `PAYWIRE_RECOVERY_CLOCK_CONTROL=true` (tests only) the internal API can move it forward, so a
/// ladder of days runs in seconds without anyone sleeping. Schedule times and the attempt times
/// that card-network limits count are all read from it.
public final class RecoveryClock: Sendable {
    private let offset = NIOLockedValueBox<Double>(0)
    /// Signalled when the clock moves: tasks may be due that no write announced.
    private let moved: WakeSignal?

    public init(moved: WakeSignal? = nil) {
        self.moved = moved
    }

    public func now() -> Date { Date().addingTimeInterval(offset.withLockedValue { $0 }) }

    /// Moves the clock forward (never back: what was due stays due).
    public func advance(by seconds: Double) {
        offset.withLockedValue { $0 += max(0, seconds) }
        moved?.signal()
    }
}
