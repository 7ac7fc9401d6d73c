/// When a failed delivery is tried again, indexed by how many attempts have been made. The
/// default is Hyperswitch's ladder (+1 min, +5 min ×2, +10 min ×5, +1 h ×5, +6 h ×3: 16 retries,
/// about 24 h), so teams moving over see the same timing.
public struct RetrySchedule: Sendable, Equatable {
    public var delaysInSeconds: [Int]

    public init(delaysInSeconds: [Int]) {
        self.delaysInSeconds = delaysInSeconds
    }

    public static let hyperswitch = RetrySchedule(delaysInSeconds:
        [60] + Array(repeating: 300, count: 2) + Array(repeating: 600, count: 5)
            + Array(repeating: 3600, count: 5) + Array(repeating: 21_600, count: 3))

    /// The wait before the next try after `attemptsMade` attempts, or nil when retries are used up.
    public func delay(afterAttempts attemptsMade: Int) -> Int? {
        let index = attemptsMade - 1
        guard attemptsMade >= 1, index < delaysInSeconds.count else { return nil }
        return delaysInSeconds[index]
    }
}
