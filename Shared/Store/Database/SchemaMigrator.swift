import Logging
import PostgresNIO

/// Brings one service's schema up to date at start-up. All replicas may start at once: the
/// advisory lock serialises them, and each version is recorded in the same transaction that
/// applies it, so running twice (or concurrently) applies nothing twice.
public struct SchemaMigrator: Sendable {
    public let schema: String
    public let migrations: [SchemaMigration]

    public init(schema: String, migrations: [SchemaMigration]) {
        precondition(schema.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "schema names are identifiers")
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Returns the versions applied by this call.
    @discardableResult
    public func migrate(client: PostgresClient, logger: Logger) async throws -> [Int] {
        let lockKey = "paywire.migrations.\(schema)"
        let schema = schema
        let migrations = migrations
        return try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(lockKey)))", logger: logger)
            try await Self.execute(script: """
                CREATE SCHEMA IF NOT EXISTS \(schema);
                CREATE TABLE IF NOT EXISTS \(schema).schema_migrations (
                    version    INTEGER PRIMARY KEY,
                    name       TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                );
                """, on: connection, logger: logger)
            var applied = Set<Int>()
            let rows = try await connection.query(PostgresQuery(unsafeSQL: "SELECT version FROM \(schema).schema_migrations"), logger: logger)
            for try await version in rows.decode(Int.self) { applied.insert(version) }
            var newlyApplied: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                try await Self.execute(script: migration.sql, on: connection, logger: logger)
                try await connection.query(
                    PostgresQuery(unsafeSQL: "INSERT INTO \(schema).schema_migrations (version, name) VALUES ($1, $2)", binds: {
                        var binds = PostgresBindings()
                        binds.append(migration.version)
                        binds.append(migration.name)
                        return binds
                    }()),
                    logger: logger
                )
                logger.info("migration applied", metadata: ["schema": .string(schema), "version": .stringConvertible(migration.version), "name": .string(migration.name)])
                newlyApplied.append(migration.version)
            }
            return newlyApplied
        }
    }

    static func execute(script: String, on connection: PostgresConnection, logger: Logger) async throws {
        for statement in SQLStatementSplitter.split(script) {
            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
    }
}
