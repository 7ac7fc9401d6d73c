import Foundation
import PaywireTestSupport
import PostgresNIO
import Testing

/// Idle is work too: a stack at rest does not query its databases in a loop. (A worker whose
/// "next due" look read no rows as "due now" once claimed in a tight loop, with nothing failing.)
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: TestEnvironment.hasDatabase))
struct IdleStackTests {
    @Test func aStackAtRestCommitsNextToNothing() async throws {
        try await PaywireStack.with { stack in
            _ = try await stack.createMerchant("idle_m", webhookURL: nil)
            try await stack.waitUntilQuiet()
            // PostgreSQL's count of committed transactions, every service's database summed; a
            // slower machine only makes the count smaller.
            func commits() async throws -> Int64 {
                var total: Int64 = 0
                for schema in PaywireStack.schemaOwners.keys.sorted() {
                    let url = stack.databaseURL(owning: schema)
                    total += try await withStackDatabase(url) { client in
                        let rows = try await client.query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                        for try await value in rows.decode(Int64.self) { return value }
                        return 0
                    }
                }
                return total
            }
            let before = try await commits()
            try await Task.sleep(for: .seconds(10))
            let during = try await commits() - before
            // Loops look by themselves every 10 s at most; the four measuring connections add a
            // few of their own. A loop polling the database runs into the thousands.
            #expect(during < 200, "\(during) transactions in 10 s of rest")
        }
    }
}
