import Foundation
import PaywireRuntime

/// When a failed delivery is tried again, indexed by how many attempts have been made. The
/// default is Hyperswitch's ladder (+1 min, +5 min ×2, +10 min ×5, +1 h ×5, +6 h ×3: 16 retries,
/// about 24 h), so teams moving over see the same timing; each wait is spread ±20 % so endpoints
/// that failed together are not retried together. `PAYWIRE_WEBHOOK_RETRY_SCHEDULE` replaces the
/// whole ladder (`1s,2s,4s`, also `ms`, `m`, `h`, `d`).
public struct RetrySchedule: Sendable, Equatable {
    public var delaysInSeconds: [Double]
    /// ± this fraction of each wait, drawn at random.
    public var jitter: Double

    public init(delaysInSeconds: [Double], jitter: Double = 0.2) {
        self.delaysInSeconds = delaysInSeconds
        self.jitter = jitter
    }

    public static let hyperswitch = RetrySchedule(delaysInSeconds:
        [60] + Array(repeating: 300, count: 2) + Array(repeating: 600, count: 5)
            + Array(repeating: 3600, count: 5) + Array(repeating: 21_600, count: 3))

    public static let environmentKey = "PAYWIRE_WEBHOOK_RETRY_SCHEDULE"

    /// `1s,2s,4s` → [1, 2, 4] seconds.
    public static func parse(_ text: String, jitter: Double = 0.2) throws -> RetrySchedule {
        RetrySchedule(delaysInSeconds: try DurationList.parse(text, key: environmentKey), jitter: jitter)
    }

    /// The wait before the next try after `attemptsMade` attempts, or nil when retries are used up.
    public func delay(afterAttempts attemptsMade: Int, random: Double = Double.random(in: -1...1)) -> Double? {
        let index = attemptsMade - 1
        guard attemptsMade >= 1, index < delaysInSeconds.count else { return nil }
        return max(0, delaysInSeconds[index] * (1 + jitter * random))
    }

    /// `Retry-After` as seconds from now (delta seconds or an HTTP date), held to `1 s … cap`.
    public static func retryAfter(_ value: String?, now: Date = Date(), cap: Double = 3600) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0 { return min(max(seconds, 1), cap) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return min(max(date.timeIntervalSince(now), 1), cap)
    }
}
