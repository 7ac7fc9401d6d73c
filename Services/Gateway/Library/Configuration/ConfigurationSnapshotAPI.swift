import Foundation
import Hummingbird
import Logging
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// Every merchant's configuration as of now, a page at a time, for a service rebuilding its copy
/// (it started empty, or the topic no longer holds what it missed): `GET
/// /internal/configuration?after=<merchant_id>&limit=<n>` on the gateway's internal listener,
/// signed like every internal call. Each page is read in one repeatable-read transaction, so each
/// snapshot is whole and its version is the one its contents belong to.
struct ConfigurationSnapshotAPI: Sendable {
    let postgres: PostgresClient
    let signer: InternalAPISigner
    let logger: Logger

    func addRoutes(to router: Router<PaywireRequestContext>) {
        let group = router.group("/internal").add(middleware: InternalAPIAuthenticationMiddleware(signer: signer))
        group.get("/configuration") { request, _ in
            let after = request.uri.queryParameters["after"].map(String.init) ?? ""
            let limit = min(max(request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100, 1), 500)
            let page: ConfigurationPage
            do {
                page = try await read(after: after, limit: limit)
            } catch {
                // Typically the gateway's own start-up (its tables are being created): the caller
                // retries.
                logger.warning("configuration snapshot not available", metadata: ["error": .string(MessageFailure.loggable(error))])
                throw APIError.unavailable("The configuration snapshot is not available yet; retry")
            }
            return JSONResponse(try JSONValue(encoding: page))
        }
    }

    func read(after: String, limit: Int) async throws -> ConfigurationPage {
            try await postgres.withTransaction(logger: logger) { connection -> ConfigurationPage in
                try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: logger)
                var merchants: [(String, Int64)] = []
                let rows = try await connection.query("""
                    SELECT m.merchant_id, COALESCE(v.version, 0) FROM gateway.merchant_accounts m
                    LEFT JOIN gateway.config_versions v ON v.merchant_id = m.merchant_id
                    WHERE m.merchant_id > \(after) ORDER BY m.merchant_id LIMIT \(limit)
                    """, logger: logger)
                for try await row in rows.decode((String, Int64).self) { merchants.append(row) }
                var snapshots: [MerchantConfigurationSnapshot] = []
                for (merchantId, version) in merchants {
                    snapshots.append(try await ConfigurationPublisher.snapshot(merchantId, version: version, on: connection, logger: logger))
                }
                return ConfigurationPage(snapshots: snapshots, next: merchants.count == limit ? merchants.last?.0 : nil)
            }
    }
}
