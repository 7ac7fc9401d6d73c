import Foundation
import Logging
import PaywireTestSupport
import PostgresNIO
import Testing
import WebhookDispatcher

/// A database of its own with the dispatcher's schema, for tests of its parts in process.
func withDispatcherDatabase(_ prefix: String, logger: Logger, _ body: @Sendable (PostgresClient) async throws -> Void) async throws {
    let testURL = try #require(TestEnvironment.databaseURL, "PAYWIRE_TEST_DATABASE_URL is not set: run ./scripts/test")
    let database = TestEnvironment.uniqueName(prefix)
    try await withTestPostgres { try await $0.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)")) }
    var components = URLComponents(string: testURL)!
    components.path = "/\(database)"
    try await withStackDatabase(components.string!) { postgres in
        try await WebhooksSchema.migrator.migrate(client: postgres, logger: logger)
        try await body(postgres)
    }
}
