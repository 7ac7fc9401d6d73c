import Foundation
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Where every change to the configuration the gateway owns is written. `change` runs its body in
/// one transaction that also publishes the merchant's new configuration version (through the
/// outbox), so no change can commit without the other services hearing of it.
struct ConfigurationWriter: Sendable {
    let postgres: PostgresClient
    let logger: Logger
    let publisher: ConfigurationPublisher
    /// Runs once a change has ended (committed or not): this replica's payment settings are read
    /// again, so its next payment sees the change (the others hear of it from the database).
    var changed: @Sendable () -> Void = {}

    func change<Result: Sendable>(merchantId: String, _ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        defer { changed() }
        return try await postgres.withTransaction(logger: logger) { connection in
            let result = try await body(connection)
            try await publisher.publishChange(merchantId, on: connection)
            return result
        }
    }

    /// A cheap existence check, for paths that need no more than that.
    func merchantExists(_ merchantId: String, on connection: PostgresConnection? = nil) async throws -> Bool {
        let query: PostgresQuery = "SELECT 1 FROM gateway.merchant_accounts WHERE merchant_id = \(merchantId)"
        if let connection { return try await connection.query(query, logger: logger).hasRows() }
        return try await postgres.query(query, logger: logger).hasRows()
    }
}
