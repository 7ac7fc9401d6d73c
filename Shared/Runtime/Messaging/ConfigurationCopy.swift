import AsyncHTTPClient
import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireStore
import PostgresNIO

/// A service's own copy of merchants' configurations, kept from the gateway's snapshots on
/// `paywire.configuration` in the service's own schema (`merchant_configurations`): a snapshot
/// replaces the stored one only when its version is higher, so redelivery and reordering change
/// nothing. Work that must see a change the gateway made first (a command, an event) carries the
/// merchant's version and waits here until the copy has reached it.
public struct ConfigurationCopy: Sendable {
    public let schema: String
    let postgres: PostgresClient
    let logger: Logger

    public init(schema: String, postgres: PostgresClient, logger: Logger) {
        self.schema = schema
        self.postgres = postgres
        self.logger = logger
    }

    public static func migration(schema: String, version: Int) -> SchemaMigration {
        SchemaMigration(version: version, name: "configuration copy", sql: """
            CREATE TABLE \(schema).merchant_configurations (
                merchant_id TEXT PRIMARY KEY,
                version     BIGINT NOT NULL,
                snapshot    JSONB NOT NULL,
                received_at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            """)
    }

    /// The consumer's handler: stores the snapshot a message carries if it is newer.
    public func handle(_ message: KafkaConsumerMessage) async throws {
        let envelope: TypedEnvelope<MerchantConfigurationSnapshot>
        do {
            envelope = try TypedEnvelope<MerchantConfigurationSnapshot>.decode(message.value)
        } catch {
            throw PermanentMessageError("undecodable configuration snapshot: \(error)", category: "undecodable")
        }
        guard envelope.type == MerchantConfigurationSnapshot.messageType else {
            throw PermanentMessageError("unknown configuration message type \(envelope.type)", category: "unknown_type")
        }
        try await store(envelope.payload)
    }

    /// Stores a snapshot unless the copy already holds this version or a later one.
    @discardableResult
    public func store(_ snapshot: MerchantConfigurationSnapshot) async throws -> Bool {
        let document = try PaywireJSON.text(snapshot)
        var binds = PostgresBindings()
        binds.append(snapshot.merchantId)
        binds.append(snapshot.version)
        binds.append(document)
        let rows = try await postgres.query(PostgresQuery(unsafeSQL: """
            INSERT INTO \(schema).merchant_configurations (merchant_id, version, snapshot) VALUES ($1, $2, $3::jsonb)
            ON CONFLICT (merchant_id) DO UPDATE SET version = EXCLUDED.version, snapshot = EXCLUDED.snapshot, received_at = now()
            WHERE \(schema).merchant_configurations.version < EXCLUDED.version
            RETURNING 1
            """, binds: binds), logger: logger)
        return try await rows.hasRows()
    }

    /// The merchant's snapshot and version as the copy holds them now.
    public func current(_ merchantId: String) async throws -> MerchantConfigurationSnapshot? {
        var binds = PostgresBindings()
        binds.append(merchantId)
        let rows = try await postgres.query(PostgresQuery(unsafeSQL: "SELECT snapshot::text FROM \(schema).merchant_configurations WHERE merchant_id = $1", binds: binds), logger: logger)
        for try await text in rows.decode(String.self) {
            return try PaywireJSON.decoder.decode(MerchantConfigurationSnapshot.self, from: Data(text.utf8))
        }
        return nil
    }

    /// The versions the copy holds for these merchants (absent: none yet). Inside a transaction,
    /// pass its connection: asking the pool for a second one while holding one can deadlock.
    public func versions(_ merchantIds: [String], on connection: PostgresConnection? = nil) async throws -> [String: Int64] {
        var binds = PostgresBindings()
        binds.append(merchantIds)
        var versions: [String: Int64] = [:]
        let query = PostgresQuery(unsafeSQL: "SELECT merchant_id, version FROM \(schema).merchant_configurations WHERE merchant_id = ANY($1)", binds: binds)
        let rows = if let connection { try await connection.query(query, logger: logger) } else { try await postgres.query(query, logger: logger) }
        for try await (id, version) in rows.decode((String, Int64).self) { versions[id] = version }
        return versions
    }

    /// Waits until the copy holds `version` of the merchant's configuration (or later). Throws
    /// `NotYet` after `timeout`: a transient fault, so the message is tried again, never dropped.
    public func waitFor(merchantId: String, version: Int64, timeout: Duration = .seconds(10)) async throws {
        guard version > 0 else { return }
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(5)
        while true {
            if let held = try await versions([merchantId])[merchantId], held >= version { return }
            guard ContinuousClock.now < deadline else { throw NotYet(merchantId: merchantId, version: version) }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    /// Fills the copy from the gateway's snapshot of every merchant (`GET /internal/configuration`,
    /// page by page), then the topic carries it on. Run at every start: a copy that started empty
    /// or missed messages the broker no longer holds is whole again; a current one changes
    /// nothing (older versions never replace newer). Returns how many snapshots were newer.
    @discardableResult
    public func rebuild(from gateway: InternalAPIClient) async throws -> Int {
        var after = ""
        var stored = 0
        while true {
            let path = "/internal/configuration?after=\(StrictPercentEncoding.encode(after))&limit=200"
            let answer = try await gateway.send(method: .GET, path: path, timeout: .seconds(30), maxBytes: 64 << 20)
            guard answer.status == 200 else { throw RebuildFailed(status: answer.status) }
            let page = try PaywireJSON.decoder.decode(ConfigurationPage.self, from: Data(buffer: answer.body))
            for snapshot in page.snapshots where try await store(snapshot) { stored += 1 }
            guard let next = page.next else { break }
            after = next
        }
        logger.info("configuration copy rebuilt from the gateway's snapshot", metadata: ["schema": .string(schema), "newer": .stringConvertible(stored)])
        return stored
    }

    struct RebuildFailed: TransientFault, CustomStringConvertible {
        let status: Int
        var description: String { "the gateway's configuration snapshot answered \(status)" }
    }

    /// The gateway's internal API, from `PAYWIRE_GATEWAY_INTERNAL_URL` (default: the dev stack's).
    public static func gatewayAPI(_ environment: [String: String]) throws -> InternalAPIClient {
        let url = environment["PAYWIRE_GATEWAY_INTERNAL_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8090"
        return InternalAPIClient(baseURL: url, signer: try InternalAPISigner(encryptionKey: try ServiceConfiguration.encryptionKey(environment)), http: .shared)
    }

    public static let environmentKeys = ["PAYWIRE_GATEWAY_INTERNAL_URL"]

    public struct NotYet: TransientFault, CustomStringConvertible {
        public let merchantId: String
        public let version: Int64
        public var description: String { "configuration copy has not reached version \(version) of merchant \(merchantId) yet" }
    }
}
