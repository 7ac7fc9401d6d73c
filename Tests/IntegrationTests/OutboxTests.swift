import Foundation
import Logging
import PaywireKafka
import PaywireModels
import PaywireStore
import PaywireTestSupport
import PostgresNIO
import Synchronization
import Testing

/// The outbox guarantee: a state change and its Kafka message can never be separated by a crash.
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: TestEnvironment.hasDatabase))
struct OutboxTests {
    let logger = TestEnvironment.logger("outbox-test")

    /// A throw-away schema with the messaging tables and one business table.
    func makeSchema(_ client: PostgresClient) async throws -> String {
        let schema = TestEnvironment.uniqueName("outbox_test")
        try await SchemaMigrator(schema: schema, migrations: [
            MessagingTables.migration(schema: schema),
            SchemaMigration(version: 2, name: "things", sql: "CREATE TABLE \(schema).things (id TEXT PRIMARY KEY, applied INTEGER NOT NULL DEFAULT 0)"),
            MessagingTables.setAsideMigration(schema: schema, version: 3),
            MessagingTables.relayLeaseMigration(schema: schema, version: 4),
            MessagingTables.outboxTraceMigration(schema: schema, version: 5),
        ]).migrate(client: client, logger: logger)
        return schema
    }

    /// The business change and its event in one transaction, as payment-core does it.
    func commitChange(_ id: String, schema: String, topic: String, client: PostgresClient, key: String = "k") async throws -> EventEnvelope {
        let envelope = EventEnvelope(type: "thing_created", merchantId: "m", payload: .object(["id": .string(id)]))
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "INSERT INTO \(schema).things (id) VALUES ('\(id)')"), logger: logger)
            try await Outbox(schema: schema).enqueue(envelope, topic: topic, key: key, on: connection, logger: logger)
        }
        return envelope
    }

    /// Reads until `expected` messages have arrived (the first poll includes the group join,
    /// which can take seconds), then `settle` longer to catch any extra copy.
    func drain(_ consumer: KafkaConsumer, expecting expected: Int, settle: Duration = .seconds(1), timeout: Duration = .seconds(30)) async throws -> [EventEnvelope] {
        var envelopes: [EventEnvelope] = []
        var deadline = ContinuousClock.now + timeout
        var settling = false
        while ContinuousClock.now < deadline {
            if !settling, envelopes.count >= expected {
                settling = true
                deadline = ContinuousClock.now + settle
            }
            for message in try await consumer.poll() {
                envelopes.append(try EventEnvelope.decode(message.value))
                consumer.storeOffset(for: message)
            }
        }
        return envelopes
    }

    func withKafka(_ body: (KafkaProducer, KafkaConsumer, String) async throws -> Void) async throws {
        let topic = TestEnvironment.uniqueName("outbox")
        try await withMockCluster(topics: [KafkaTopicSpec(name: topic, partitions: 3)]) { cluster in
            let kafka = KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)
            let producer = try KafkaProducer(configuration: .init(kafka: kafka), logger: logger)
            let consumer = try KafkaConsumer(
                configuration: .init(kafka: kafka, groupID: TestEnvironment.uniqueName("g"), topics: [topic]),
                logger: logger
            )
            try await body(producer, consumer, topic)
            await consumer.close()
            await producer.shutdown()
        }
    }

    @Test func aMessageKafkaRefusesIsSetAsideAndTheRowsAroundItArePublishedOnce() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            try await withKafka { producer, consumer, topic in
                let before = try await commitChange("small-1", schema: schema, topic: topic, client: client)
                // Larger than the producer's message.max.bytes (librdkafka's 1,000,000 here).
                let big = EventEnvelope(type: "thing_created", merchantId: "m", payload: .object(["id": .string("big"), "blob": .string(String(repeating: "x", count: 1_200_000))]))
                try await client.withTransaction(logger: logger) { connection in
                    try await Outbox(schema: schema).enqueue(big, topic: topic, key: "k", on: connection, logger: logger)
                }
                let after = try await commitChange("small-2", schema: schema, topic: topic, client: client)

                let relay = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger)
                // One pass settles all three rows: two published, the big one set aside.
                #expect(try await relay.publishPending() == 3)
                // Nothing is left to produce again, however often the relay runs.
                #expect(try await relay.publishPending() == 0)
                #expect(try await relay.publishPending() == 0)
                let received = try await drain(consumer, expecting: 2)
                #expect(received.map(\.id) == [before.id, after.id])

                let setAside = try await client.query(PostgresQuery(unsafeSQL: "SELECT message_id, failure FROM \(schema).outbox WHERE failed_at IS NOT NULL"), logger: logger)
                var rows: [(String, String?)] = []
                for try await row in setAside.decode((String, String?).self) { rows.append(row) }
                #expect(rows.count == 1 && rows.first?.0 == big.id, "\(rows)")
                #expect(rows.first?.1?.contains("MSG_SIZE_TOO_LARGE") == true, "\(rows)")
            }
        }
    }

    @Test func aMessageCommittedBeforeACrashIsPublishedExactlyOnceAfterRestart() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            try await withKafka { producer, consumer, topic in
                // The process commits, then dies before anything reaches Kafka: no relay ran.
                let envelope = try await commitChange("t1", schema: schema, topic: topic, client: client)
                #expect(try await drain(consumer, expecting: 0, settle: .seconds(3)).isEmpty)

                // The restarted process's relay publishes the outbox.
                let relay = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger)
                #expect(try await relay.publishPending() == 1)
                #expect(try await relay.publishPending() == 0)
                let seen = try await drain(consumer, expecting: 1)
                #expect(seen.map(\.id) == [envelope.id])
                let unpublished = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(schema).outbox WHERE published_at IS NULL"))
                for try await count in unpublished.decode(Int.self) { #expect(count == 0) }
            }
        }
    }

    @Test func aRelayKilledAfterProducingRepublishesAndTheConsumerAppliesItOnce() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            try await withKafka { producer, consumer, topic in
                let envelope = try await commitChange("t2", schema: schema, topic: topic, client: client)
                struct Killed: Error {}
                let dying = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger, lease: .seconds(1), afterProduce: { throw Killed() })
                // Killed between Kafka's acknowledgement and the mark: the row stays unpublished.
                await #expect(throws: Killed.self) { try await dying.publishPending() }
                // Its replacement takes over once the dead relay's lease has run out.
                let restarted = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger)
                #expect(await eventually(timeout: .seconds(10), interval: .milliseconds(200)) { (try? await restarted.publishPending()) == 1 })

                // Kafka now holds the message twice, with one envelope id.
                let seen = try await drain(consumer, expecting: 2)
                #expect(seen.map(\.id) == [envelope.id, envelope.id])

                // An idempotent consumer applies it once.
                let processed = ProcessedMessages(schema: schema, consumer: "test")
                var applied = 0
                for message in seen {
                    let ran = try await processed.processOnce(messageID: message.id, client: client, logger: logger) { connection in
                        try await connection.query(PostgresQuery(unsafeSQL: "UPDATE \(schema).things SET applied = applied + 1 WHERE id = 't2'"), logger: logger)
                    }
                    if ran { applied += 1 }
                }
                #expect(applied == 1)
                let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT applied FROM \(schema).things WHERE id = 't2'"))
                for try await value in rows.decode(Int.self) { #expect(value == 1) }
            }
        }
    }

    @Test func theRelayKeepsPerKeyCommitOrderAndOnlyOneRelayPublishesAtATime() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            try await withKafka { producer, consumer, topic in
                var expected: [String: [String]] = [:]
                for index in 0..<200 {
                    let key = "key-\(index % 5)"
                    let envelope = try await commitChange("o\(index)", schema: schema, topic: topic, client: client, key: key)
                    expected[key, default: []].append(envelope.id)
                }
                // Two relays race (as two replicas would); the advisory lock lets one work at a time.
                let relays = (0..<2).map { _ in OutboxRelay(schema: schema, client: client, producer: producer, logger: logger, batchSize: 37) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for relay in relays {
                        group.addTask {
                            for _ in 0..<20 { try await relay.publishPending() }
                        }
                    }
                    try await group.waitForAll()
                }
                let seen = try await drain(consumer, expecting: 200)
                #expect(seen.count == 200)
                var byKey: [String: [String]] = [:]
                for envelope in seen {
                    let id = envelope.id
                    let key = expected.first { $0.value.contains(id) }!.key
                    byKey[key, default: []].append(id)
                }
                #expect(byKey == expected)
            }
        }
    }

    /// Claim, commit, call, record: while Kafka acknowledges a batch, the relay holds no
    /// transaction (its connection is not idle in one) and no row lock.
    @Test func theRelayHoldsNoTransactionWhileKafkaAcknowledges() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            try await withKafka { producer, consumer, topic in
                _ = try await commitChange("t1", schema: schema, topic: topic, client: client)
                let openTransactions = Mutex<[Int]>([])
                let relay = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger) {
                    let rows = try await client.query(PostgresQuery(unsafeSQL: """
                        SELECT count(*)::int FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND query LIKE '%\(schema).outbox%'
                        """))
                    for try await count in rows.decode(Int.self) { openTransactions.withLock { $0.append(count) } }
                }
                #expect(try await relay.publishPending() == 1)
                #expect(openTransactions.withLock { $0 } == [0])
                _ = try await drain(consumer, expecting: 1)
            }
        }
    }

    /// A relay that stops (or stalls past its lease) is replaced; while its lease runs, nobody else publishes.
    @Test func anotherRelayTakesOverWhenTheLeaseRunsOut() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            try await withKafka { producer, consumer, topic in
                let first = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger, lease: .seconds(1))
                let second = OutboxRelay(schema: schema, client: client, producer: producer, logger: logger, lease: .seconds(1))
                _ = try await commitChange("l1", schema: schema, topic: topic, client: client)
                #expect(try await first.publishPending() == 1)
                _ = try await commitChange("l2", schema: schema, topic: topic, client: client)
                #expect(try await second.publishPending() == 0, "the first relay's lease still runs")
                // The first relay is gone; once its lease has run out the second publishes.
                let tookOver = await eventually(timeout: .seconds(10), interval: .milliseconds(200)) { (try? await second.publishPending()) == 1 }
                #expect(tookOver)
                #expect(try await first.publishPending() == 0, "and now holds the lease itself")
                _ = try await drain(consumer, expecting: 2)
            }
        }
    }

    /// Published outbox rows and consumed ids go after their retention; recent ones and rows set
    /// aside with an error stay.
    @Test func retentionDeletesOnlyWhatIsPastItsWindow() async throws {
        try await withTestPostgres { client in
            let schema = try await makeSchema(client)
            for statement in [
                "INSERT INTO \(schema).outbox (message_id, topic, payload, published_at) SELECT 'old-' || n, 't', '\\x00', now() - interval '10 days' FROM generate_series(1, 12000) n",
                "INSERT INTO \(schema).outbox (message_id, topic, payload, published_at) VALUES ('recent', 't', '\\x00', now() - interval '1 day')",
                "INSERT INTO \(schema).outbox (message_id, topic, payload) VALUES ('unpublished', 't', '\\x00')",
                "INSERT INTO \(schema).outbox (message_id, topic, payload, failed_at, failure, created_at) VALUES ('set-aside', 't', '\\x00', now() - interval '40 days', 'too large', now() - interval '40 days')",
                "INSERT INTO \(schema).processed_messages (consumer, message_id, processed_at) VALUES ('c', 'old', now() - interval '31 days'), ('c', 'recent', now() - interval '29 days')",
            ] {
                try await client.query(PostgresQuery(unsafeSQL: statement))
            }
            let retention = MessagingRetention(schema: schema, client: client, logger: logger, outboxRetention: .seconds(7 * 86_400), processedRetention: .seconds(30 * 86_400))
            let removed = try await retention.sweep()
            #expect(removed.outbox == 12_000 && removed.processed == 1)
            var left: [String] = []
            for try await id in try await client.query(PostgresQuery(unsafeSQL: "SELECT message_id FROM \(schema).outbox ORDER BY message_id")).decode(String.self) { left.append(id) }
            #expect(left == ["recent", "set-aside", "unpublished"])
            var ids: [String] = []
            for try await id in try await client.query(PostgresQuery(unsafeSQL: "SELECT message_id FROM \(schema).processed_messages")).decode(String.self) { ids.append(id) }
            #expect(ids == ["recent"])
            #expect(try await retention.sweep() == (0, 0))
        }
    }

    @Test func migrationsRunConcurrentlyApplyEachVersionOnce() async throws {
        try await withTestPostgres { client in
            let schema = TestEnvironment.uniqueName("migrate_test")
            let migrator = SchemaMigrator(schema: schema, migrations: [
                MessagingTables.migration(schema: schema),
                SchemaMigration(version: 2, name: "t", sql: "CREATE TABLE \(schema).t (id INT PRIMARY KEY); INSERT INTO \(schema).t VALUES (1);"),
            ])
            let logger = logger
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 { group.addTask { try await migrator.migrate(client: client, logger: logger) } }
                var all: [Int] = []
                for try await versions in group { all += versions }
                return all
            }
            #expect(applied.sorted() == [1, 2])
            #expect(try await migrator.migrate(client: client, logger: logger).isEmpty)
            let rows = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(schema).t"))
            for try await count in rows.decode(Int.self) { #expect(count == 1) }
        }
    }
}
