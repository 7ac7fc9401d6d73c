import Foundation
import PaywireModels
import PaywireRuntime
import Testing
@testable import RecoveryScheduler

@Suite struct RecoveryRetryPolicyTests {
    let policy = RecoveryRetryPolicy(maxRandomDelay: 300)
    /// A Tuesday afternoon.
    let now = ISO8601DateFormatter().date(from: "2026-03-03T14:00:00Z")!
    let soft = RecoveryAttemptOutcome(declineCode: "insufficient_funds", rawDeclineCode: "51")

    func next(_ algorithm: RecoveryRetryPolicy.Algorithm, _ failure: RecoveryAttemptOutcome, retries: Int = 0, total: Int = 1, max: Int = 15,
              network: String? = "Visa", previous: [Date] = [], random: Double = 0) -> RecoveryRetryPolicy.Decision {
        policy.next(algorithm: algorithm, after: failure, paywireRetries: retries, totalAttempts: total, maxRetryCount: max,
                    network: network, cardAttempts: previous, now: now, random: random)
    }

    @Test func cascadingFollowsHyperswitchsLadderPlusABoundedRandomDelay() {
        #expect(RecoveryRetryPolicy.hyperswitchLadder.count == 15)
        #expect(RecoveryRetryPolicy.hyperswitchLadder.reduce(0, +) / 86_400 > 5.8 && RecoveryRetryPolicy.hyperswitchLadder.reduce(0, +) / 86_400 < 6.1)
        #expect(next(.cascading, soft) == .retry(at: now.addingTimeInterval(60)))
        #expect(next(.cascading, soft, random: 1) == .retry(at: now.addingTimeInterval(60 + 300)))
        #expect(next(.cascading, soft, retries: 1, total: 2) == .retry(at: now.addingTimeInterval(3 * 3600)))
        #expect(next(.cascading, soft, retries: 14, total: 15, max: 20) == .retry(at: now.addingTimeInterval(18 * 3600)))
        #expect(next(.cascading, soft, retries: 15, total: 16, max: 20) == .stop(reason: "retries_exhausted"), "past the ladder")
    }

    @Test func maxRetryCountCountsEveryAttemptOnTheInvoice() {
        // 9 allowed: the billing platform's one failure and 7 of ours make 8 — one more may go.
        #expect(next(.cascading, soft, retries: 7, total: 8, max: 9) != .stop(reason: "retries_exhausted"))
        #expect(next(.cascading, soft, retries: 8, total: 9, max: 9) == .stop(reason: "retries_exhausted"))
        #expect(next(.smart, soft, retries: 8, total: 9, max: 9) == .stop(reason: "retries_exhausted"))
    }

    @Test func hardDeclinesAndDoNotRetryAdviceEndTheJobWhateverTheAlgorithm() {
        for algorithm in [RecoveryRetryPolicy.Algorithm.cascading, .smart, .monitoring] {
            #expect(next(algorithm, RecoveryAttemptOutcome(declineCode: "lost_card", rawDeclineCode: "41")) == .stop(reason: "hard_decline"))
            #expect(next(algorithm, RecoveryAttemptOutcome(declineCode: "110", rawDeclineCode: "43")) == .stop(reason: "hard_decline"), "Visa category 1 by raw code")
            #expect(next(algorithm, RecoveryAttemptOutcome(declineCode: "do_not_honor", rawDeclineCode: "05", adviceCode: "21")) == .stop(reason: "hard_decline"))
        }
        #expect(next(.monitoring, soft) == .record, "monitoring never retries")
    }

    @Test func hardDeclinesCanBeOverriddenPerConnector() throws {
        var tuned = policy
        tuned.hardDeclineOverrides = try RecoveryRetryPolicy.parseOverrides("stripe:+card_velocity_exceeded,-expired_card; Adyen:+blocked_card")
        let velocity = RecoveryAttemptOutcome(declineCode: "card_velocity_exceeded")
        let expired = RecoveryAttemptOutcome(declineCode: "expired_card")
        func decide(_ failure: RecoveryAttemptOutcome, _ connector: String?) -> RecoveryRetryPolicy.Decision {
            tuned.next(algorithm: .cascading, after: failure, paywireRetries: 0, totalAttempts: 1, maxRetryCount: 9, network: "Visa",
                       cardAttempts: [], now: now, connector: connector, random: 0)
        }
        #expect(decide(velocity, "stripe") == .stop(reason: "hard_decline"))
        #expect(decide(velocity, "sandbox") == .retry(at: now.addingTimeInterval(60)), "only for the connector named")
        #expect(decide(expired, "stripe") == .retry(at: now.addingTimeInterval(60)), "taken out of the table for stripe")
        #expect(decide(expired, "sandbox") == .stop(reason: "hard_decline"))
        #expect(decide(RecoveryAttemptOutcome(declineCode: "blocked_card"), "adyen") == .stop(reason: "hard_decline"))
        // Advice not to retry still ends the job whatever the overrides.
        #expect(decide(RecoveryAttemptOutcome(declineCode: "expired_card", adviceCode: "03"), "stripe") == .stop(reason: "hard_decline"))
        for bad in ["stripe", "stripe:card_velocity_exceeded", ":+x", "stripe:+", "stripe:+a b"] {
            #expect(throws: ServiceConfiguration.ConfigurationError.self, "\(bad)") { _ = try RecoveryRetryPolicy.parseOverrides(bad) }
        }
        #expect(throws: ServiceConfiguration.ConfigurationError.self) {
            _ = try RecoveryRetryPolicy(environment: ["PAYWIRE_RECOVERY_HARD_DECLINE_OVERRIDES": "stripe:?x"])
        }
    }

    @Test func smartWaitsForTheDeclinesLikelyCause() throws {
        // Insufficient funds: the next likely payday, at least 12 hours away — here the 15th.
        guard case .retry(let payday) = next(.smart, soft) else { Issue.record("no retry"); return }
        #expect(payday == ISO8601DateFormatter().date(from: "2026-03-15T10:00:00Z")!)
        #expect(SmartDecider.nextPayday(after: ISO8601DateFormatter().date(from: "2026-03-20T10:00:00Z")!) == ISO8601DateFormatter().date(from: "2026-03-31T10:00:00Z")!)
        #expect(SmartDecider.nextPayday(after: ISO8601DateFormatter().date(from: "2026-02-28T09:00:00Z")!) == ISO8601DateFormatter().date(from: "2026-03-01T10:00:00Z")!)
        // The issuer could not answer: hours, doubling; a processing error: minutes, doubling.
        #expect(next(.smart, RecoveryAttemptOutcome(declineCode: "issuer_unavailable", rawDeclineCode: "91")) == .retry(at: now.addingTimeInterval(2 * 3600)))
        #expect(next(.smart, RecoveryAttemptOutcome(declineCode: "issuer_unavailable"), retries: 2, total: 3) == .retry(at: now.addingTimeInterval(8 * 3600)))
        #expect(next(.smart, RecoveryAttemptOutcome(declineCode: "processing_error", rawDeclineCode: "96")) == .retry(at: now.addingTimeInterval(600)))
        #expect(next(.smart, RecoveryAttemptOutcome(declineCode: "processing_error"), retries: 1, total: 2) == .retry(at: now.addingTimeInterval(1200)))
        // Mastercard advice 24–30: the network's own ladder.
        #expect(next(.smart, RecoveryAttemptOutcome(declineCode: "do_not_honor", adviceCode: "24"), retries: 1, total: 2, network: "Mastercard") == .retry(at: now.addingTimeInterval(86_400)))
        // Different declines, different waits.
        let waits = Set(["insufficient_funds", "issuer_unavailable", "processing_error", "generic_decline"].map {
            next(.smart, RecoveryAttemptOutcome(declineCode: $0))
        })
        #expect(waits.count == 4)
    }

    @Test func noCardIsTriedMoreOftenThanItsNetworkAllows() {
        // Mastercard: ten tries today already; the eleventh waits until the oldest is a day old.
        let today = (0..<10).map { now.addingTimeInterval(Double(-3600 * 10 + $0 * 60)) }
        guard case .retry(let at) = next(.smart, RecoveryAttemptOutcome(declineCode: "processing_error"), network: "Mastercard", previous: today) else {
            Issue.record("no retry"); return
        }
        #expect(at == today[0].addingTimeInterval(86_400 + 1))
        let inWindow = (today + [at]).filter { $0 > at.addingTimeInterval(-86_400) && $0 <= at }
        #expect(inWindow.count <= 10)
        // Nine today: the tenth may go at the decided time.
        #expect(next(.smart, RecoveryAttemptOutcome(declineCode: "processing_error"), network: "Mastercard", previous: Array(today.prefix(9))) == .retry(at: now.addingTimeInterval(600)))
        // Visa: 15 in 30 days.
        let month = (0..<15).map { now.addingTimeInterval(Double(-86_400 * 29 + $0 * 3600)) }
        guard case .retry(let visa) = next(.cascading, soft, previous: month) else { Issue.record("no retry"); return }
        #expect(visa == month[0].addingTimeInterval(30 * 86_400 + 1))
        // Mastercard's 35 in 30 days binds even when no day has ten.
        let spread = (0..<35).map { now.addingTimeInterval(Double(-86_400 * 29 + $0 * 70_000)) }.filter { $0 < now }
        let limits = CardNetworkLimits()
        let allowed = try? #require(limits.earliest(at: now, network: "mastercard", previous: spread))
        #expect(allowed.map { candidate in spread.filter { $0 > candidate.addingTimeInterval(-30 * 86_400) && $0 <= candidate }.count < 35 } == true)
        // Tries made in the same pass as the one asking carry its time, read back from
        // PostgreSQL rounded to the microsecond (sometimes up): they count all the same.
        let samePass = Array(repeating: now.addingTimeInterval(0.000_000_4), count: 10)
        #expect(limits.earliest(at: now, network: "mastercard", previous: samePass)! > now.addingTimeInterval(86_400))
        // Unknown networks have no limit here.
        #expect(limits.earliest(at: now, network: "Amex", previous: today + today) == now)
    }
}
