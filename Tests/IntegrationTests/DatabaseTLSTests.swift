import Foundation
import Logging
import PaywireRuntime
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Testing

/// `sslmode` in DATABASE_URL against the test PostgreSQL, which offers TLS with a throw-away CA
/// (`scripts/lib.sh`): each mode connects as libpq's would, or refuses to.
@Suite(.enabled(if: TestEnvironment.databaseURL != nil && TestEnvironment.environment["PAYWIRE_TEST_DATABASE_CA"] != nil))
struct DatabaseTLSTests {
    let logger = TestEnvironment.logger("tls", level: .critical)

    /// Whether the session PostgreSQL sees is encrypted, or the error connecting.
    func encrypted(_ query: String, within limit: Duration = .seconds(10)) async throws -> Bool {
        let url = TestEnvironment.databaseURL! + "?" + query
        let client = PostgresClient(configuration: try DatabaseConfiguration(url: url, maxConnections: 1).clientConfiguration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Bool?.self) { group in
            group.addTask { await client.run(); return nil }
            defer { group.cancelAll() }
            let rows = try await withTimeout(limit) {
                try await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: logger)
            }
            for try await value in rows.decode(Bool.self) { return value }
            return false
        }
    }

    @Test func eachSSLModeConnectsAsLibpqWouldOrRefuses() async throws {
        let ca = TestEnvironment.environment["PAYWIRE_TEST_DATABASE_CA"]!
        #expect(try await encrypted("sslmode=disable") == false)
        #expect(try await encrypted("sslmode=prefer") == true)
        #expect(try await encrypted("sslmode=require") == true)
        #expect(try await encrypted("sslmode=verify-ca&sslrootcert=\(ca)") == true)
        #expect(try await encrypted("sslmode=verify-full&sslrootcert=\(ca)") == true)
        // A server whose certificate the trust store does not vouch for is refused, not used.
        await #expect(throws: (any Error).self) { _ = try await encrypted("sslmode=verify-full", within: .seconds(3)) }
    }
}
