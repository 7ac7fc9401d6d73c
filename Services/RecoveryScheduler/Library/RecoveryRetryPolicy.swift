import Foundation
import PaywireRuntime

/// When a failed recurring payment is tried again, per the profile's
/// `revenue_recovery_retry_algorithm_type`, and when it is not tried again at all.
///
/// Common to every algorithm: a hard decline (or a merchant advice code that says "do not retry")
/// ends the job; `max_retry_count` counts every attempt on the invoice, the billing platform's
/// included; no card is tried more often than its network allows (`CardNetworkLimits`).
///
/// - `monitoring`: records, never retries.
/// - `cascading`: a fixed ladder indexed by Paywire's retries so far (default Hyperswitch's: +60 s,
///   3 h ×2, 6 h ×3, 9 h ×3, 12 h ×3, 18 h ×3 — 15 tries in about 6 days), plus a random delay of
///   at most `maxRandomDelay`; `PAYWIRE_RECOVERY_RETRY_SCHEDULE` replaces the ladder.
/// - `smart`: the wait follows the decline and the history (`SmartDecider`).
public struct RecoveryRetryPolicy: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case monitoring, cascading, smart
    }

    public enum Decision: Sendable, Hashable {
        case retry(at: Date)
        /// The job ends with `payment_failed` and this reason.
        case stop(reason: String)
        /// Monitoring: nothing to do.
        case record
    }

    public var cascadingLadder: [Double]
    public var maxRandomDelay: Double
    public var limits: CardNetworkLimits
    /// Per payment connector (by name): codes added to or taken from `hardDeclines`, because
    /// processors word declines their own way (`PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES`).
    public var hardDeclineOverrides: [String: (added: Set<String>, removed: Set<String>)] = [:]

    public static let hyperswitchLadder: [Double] = [60] + Array(repeating: 3 * 3600, count: 2) + Array(repeating: 6 * 3600, count: 3)
        + Array(repeating: 9 * 3600, count: 3) + Array(repeating: 12 * 3600, count: 3) + Array(repeating: 18 * 3600, count: 3)

    public static let environmentKeys = ["PAYWIRE_RECOVERY_RETRY_SCHEDULE", "PAYWIRE_RECOVERY_RANDOM_DELAY_MAX_MS", "PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES"]

    public init(cascadingLadder: [Double] = hyperswitchLadder, maxRandomDelay: Double = 300, limits: CardNetworkLimits = .init()) {
        self.cascadingLadder = cascadingLadder
        self.maxRandomDelay = maxRandomDelay
        self.limits = limits
    }

    public init(environment: [String: String]) throws {
        self.init()
        if let text = environment["PAYWIRE_RECOVERY_RETRY_SCHEDULE"], !text.isEmpty {
            cascadingLadder = try DurationList.parse(text, key: "PAYWIRE_RECOVERY_RETRY_SCHEDULE")
        }
        maxRandomDelay = Double(try ServiceConfiguration.integer(environment, "PAYWIRE_RECOVERY_RANDOM_DELAY_MAX_MS", default: 300_000, range: 0...3_600_000)) / 1000
        if let text = environment["PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES"], !text.isEmpty {
            hardDeclineOverrides = try Self.parseOverrides(text)
        }
    }

    /// `stripe:+card_velocity_exceeded,-expired_card;adyen:+blocked_card` — per connector, codes
    /// that are hard (`+`) or not (`-`) beside the default table.
    public static func parseOverrides(_ text: String) throws -> [String: (added: Set<String>, removed: Set<String>)] {
        var overrides: [String: (added: Set<String>, removed: Set<String>)] = [:]
        for entry in text.split(separator: ";") {
            let parts = entry.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES", reason: "connector:+code,-code;… (got \"\(entry)\")")
            }
            var override = overrides[parts[0].lowercased()] ?? (added: [], removed: [])
            for item in parts[1].split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                let code = String(item.dropFirst())
                guard !code.isEmpty, code.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES", reason: "+code or -code (got \"\(item)\")")
                }
                switch item.first {
                case "+": override.added.insert(code)
                case "-": override.removed.insert(code)
                default: throw ServiceConfiguration.ConfigurationError(key: "PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES", reason: "+code or -code (got \"\(item)\")")
                }
            }
            overrides[parts[0].lowercased()] = override
        }
        return overrides
    }

    /// Declines no retry can change (Visa category 1 and their named equivalents).
    public static let hardDeclines: Set<String> = [
        "stolen_card", "lost_card", "pickup_card", "invalid_account", "card_not_supported", "fraudulent", "expired_card", "incorrect_number",
        "restricted_card", "revocation_of_authorization", "do_not_try_again",
        "04", "07", "12", "14", "15", "41", "43", "46", "57", "R0", "R1", "R3",
    ]
    /// Merchant advice codes that forbid another try.
    public static let doNotRetryAdvice: Set<String> = ["03", "21"]

    public static func isHard(_ decline: RecoveryAttemptOutcome) -> Bool {
        RecoveryRetryPolicy().isHard(decline, connector: nil)
    }

    /// A hard decline by the table (with the connector's overrides), or advice not to retry.
    public func isHard(_ decline: RecoveryAttemptOutcome, connector: String?) -> Bool {
        var table = Self.hardDeclines
        if let override = connector.flatMap({ hardDeclineOverrides[$0.lowercased()] }) {
            table.formUnion(override.added)
            table.subtract(override.removed)
        }
        return [decline.declineCode, decline.rawDeclineCode].compactMap { $0 }.contains(where: table.contains)
            || decline.adviceCode.map(Self.doNotRetryAdvice.contains) == true
    }

    /// What to do after the latest failure (the billing platform's report, or one of Paywire's
    /// retries). `paywireRetries`: retries Paywire has made; `totalAttempts`: every attempt on
    /// the invoice so far; `cardAttempts`: when this card was last tried, across the merchant's jobs.
    public func next(
        algorithm: Algorithm, after failure: RecoveryAttemptOutcome, paywireRetries: Int, totalAttempts: Int, maxRetryCount: Int,
        network: String?, cardAttempts: [Date], now: Date, connector: String? = nil, random: Double = Double.random(in: 0...1)
    ) -> Decision {
        if isHard(failure, connector: connector) { return .stop(reason: "hard_decline") }
        guard algorithm != .monitoring else { return .record }
        guard totalAttempts < maxRetryCount else { return .stop(reason: "retries_exhausted") }
        let wait: Double
        switch algorithm {
        case .monitoring: return .record
        case .cascading:
            guard paywireRetries < cascadingLadder.count else { return .stop(reason: "retries_exhausted") }
            wait = cascadingLadder[paywireRetries] + maxRandomDelay * random
        case .smart:
            wait = SmartDecider.wait(after: failure, paywireRetries: paywireRetries, now: now)
        }
        let wanted = now.addingTimeInterval(wait)
        guard let allowed = limits.earliest(at: wanted, network: network, previous: cardAttempts) else { return .stop(reason: "network_limit") }
        return .retry(at: allowed)
    }
}

/// What one attempt on an invoice was told.
public struct RecoveryAttemptOutcome: Sendable, Equatable {
    /// Paywire's code (`insufficient_funds`) or what the billing platform reported.
    public var declineCode: String?
    /// The processor's or the network's raw code (`51`).
    public var rawDeclineCode: String?
    /// The merchant advice code (Mastercard), if any.
    public var adviceCode: String?

    public init(declineCode: String?, rawDeclineCode: String? = nil, adviceCode: String? = nil) {
        self.declineCode = declineCode
        self.rawDeclineCode = rawDeclineCode
        self.adviceCode = adviceCode
    }
}

/// The smart algorithm's waits, from the decline and how many times Paywire has tried:
/// - insufficient funds (`insufficient_funds`, 51): the next likely payday — the 1st, the 15th or
///   the last day of the month, at 10:00 UTC, at least 12 hours away;
/// - the issuer could not answer (`issuer_unavailable`, 91, `try_again_later`): hours, doubling
///   (2 h, 4 h, 8 h … at most 24 h);
/// - a processing error (`processing_error`, 96): minutes, doubling (10 min, 20 min … at most 6 h);
/// - Mastercard advice codes 24–30: the network's own ladder (1 h, 24 h, 2 d, 4 d, 6 d, 8 d, 10 d);
/// - anything else (`do_not_honor`, `generic_decline`, unknown): one day, then two, then three.
public enum SmartDecider {
    static let mastercardAdviceLadder: [Double] = [3600, 86_400, 2 * 86_400, 4 * 86_400, 6 * 86_400, 8 * 86_400, 10 * 86_400]

    public static func wait(after failure: RecoveryAttemptOutcome, paywireRetries: Int, now: Date) -> Double {
        let codes = Set([failure.declineCode, failure.rawDeclineCode].compactMap { $0 })
        if let advice = failure.adviceCode, let number = Int(advice), (24...30).contains(number) {
            return mastercardAdviceLadder[min(paywireRetries, mastercardAdviceLadder.count - 1)]
        }
        if !codes.isDisjoint(with: ["insufficient_funds", "51"]) {
            return nextPayday(after: now).timeIntervalSince(now)
        }
        if !codes.isDisjoint(with: ["issuer_unavailable", "91", "try_again_later"]) {
            return min(2 * 3600 * pow(2, Double(paywireRetries)), 86_400)
        }
        if !codes.isDisjoint(with: ["processing_error", "96"]) {
            return min(600 * pow(2, Double(paywireRetries)), 6 * 3600)
        }
        return Double(min(paywireRetries + 1, 3)) * 86_400
    }

    /// The first of the 1st, the 15th and the month's last day, at 10:00 UTC, 12 hours or more after `now`.
    public static func nextPayday(after now: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let earliest = now.addingTimeInterval(12 * 3600)
        var month = calendar.dateComponents([.year, .month], from: earliest)
        for _ in 0..<3 {
            let first = calendar.date(from: DateComponents(year: month.year, month: month.month, day: 1, hour: 10))!
            let days = calendar.range(of: .day, in: .month, for: first)!.count
            for day in [1, 15, days] {
                let candidate = calendar.date(from: DateComponents(year: month.year, month: month.month, day: day, hour: 10))!
                if candidate >= earliest { return candidate }
            }
            let next = calendar.date(byAdding: .month, value: 1, to: first)!
            month = calendar.dateComponents([.year, .month], from: next)
        }
        return earliest
    }
}

/// How often one card may be tried again, by network: Visa 15 in 30 days; Mastercard 10 a day
/// and 35 in 30 days. Counted across all of a merchant's jobs for the card.
public struct CardNetworkLimits: Sendable, Equatable {
    public struct Window: Sendable, Equatable {
        public var seconds: Double
        public var most: Int

        public init(seconds: Double, most: Int) {
            self.seconds = seconds
            self.most = most
        }
    }

    public var byNetwork: [String: [Window]]

    public init(byNetwork: [String: [Window]] = [
        "visa": [Window(seconds: 30 * 86_400, most: 15)],
        "mastercard": [Window(seconds: 86_400, most: 10), Window(seconds: 30 * 86_400, most: 35)],
    ]) {
        self.byNetwork = byNetwork
    }

    /// The earliest time at or after `wanted` at which one more try stays within every window,
    /// given the earlier tries; nil if none within 60 days.
    public func earliest(at wanted: Date, network: String?, previous: [Date]) -> Date? {
        guard let windows = network.flatMap({ byNetwork[$0.lowercased()] }), !windows.isEmpty else { return wanted }
        var candidate = wanted
        let sorted = previous.sorted()
        for _ in 0..<200 {
            var moved = false
            for window in windows {
                // Every try since the window's start counts, including one recorded a hair after
                // the candidate: a try made in this same pass comes back from PostgreSQL rounded
                // to the microsecond (possibly up), and another replica's clock may run ahead.
                let inWindow = sorted.filter { $0 > candidate.addingTimeInterval(-window.seconds) }
                if inWindow.count >= window.most {
                    // Wait until enough of them have left the window.
                    let leaving = inWindow[inWindow.count - window.most]
                    candidate = leaving.addingTimeInterval(window.seconds + 1)
                    moved = true
                }
            }
            if !moved { return candidate }
            if candidate.timeIntervalSince(wanted) > 60 * 86_400 { return nil }
        }
        return nil
    }
}
