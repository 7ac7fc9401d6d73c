import ArgumentParser
import AsyncHTTPClient
import BenchmarkSupport
import Foundation
import Logging
import NIOCore
import PaywireKafka
import PaywireModels
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// The recovery scheduler draining a backlog of due jobs, with one replica and then with two
/// (scripts/bench-recovery starts PostgreSQL, the dev broker and a gateway for configuration;
/// this program runs the scheduler replicas as child processes). A round: `--jobs` reports
/// published as the gateway publishes them (signed `schedule_failed_payment` commands, each job a
/// card of its own), taken in by the scheduler with their first retry an hour out; then every
/// replica's clock is moved two hours on and the time until every job's retry is reserved and its
/// payment command acknowledged by the broker gives due jobs drained per second. payment-core does
/// not run: what is measured is the scheduler's claim → reserve → send (payment throughput is
/// `./scripts/bench-payments`). The ceiling, measured in the same run: the broker taking the same
/// number of commands of the same size from one producer.
@main
struct RecoveryThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "recovery-throughput")

    @Option(help: "Gateway base URL (configuration only)") var gateway = "http://127.0.0.1:8080"
    @Option(help: "Admin API key") var adminKey = "test_admin"
    @Option(name: .customLong("database-url")) var databaseURL: String
    @Option(name: .customLong("kafka-brokers")) var kafkaBrokers: String
    @Option(name: .customLong("encryption-key")) var encryptionKey: String
    @Option(name: .customLong("scheduler"), help: "The recovery-scheduler executable") var schedulerPath: String
    @Option(name: .customLong("scheduler-ports"), help: "Two free ports for the replicas' HTTP servers, comma-separated") var schedulerPorts: String
    @Option(help: "Due jobs in each round's backlog") var jobs = 100_000
    @Option(help: "Tasks one replica claims per pass (PAYWIRE_RECOVERY_BATCH)") var batch = 500

    struct Merchant {
        var id: String
        var apiKey: String
        var profile: String
        var paymentAccount: String
        var billingAccount: String
    }

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let ports = schedulerPorts.split(separator: ",").compactMap { Int($0) }
        guard ports.count == 2 else { throw ValidationError("--scheduler-ports needs two ports") }
        let postgres = PostgresClient(configuration: try Bench.postgresConfiguration(databaseURL), backgroundLogger: logger)
        let pgTask = Task { await postgres.run() }
        defer { pgTask.cancel() }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: KafkaConfiguration(bootstrapServers: kafkaBrokers), lingerMilliseconds: 5), logger: logger)
        let environment = ["PAYWIRE_ENCRYPTION_KEY": encryptionKey]
        let signer = try CommandSigner(environment: environment)
        let clockSigner = try InternalAPISigner(encryptionKey: encryptionKey)
        let run = "r\(Int(Date().timeIntervalSince1970) % 1_000_000)"

        let replicaEnvironment = [
            "DATABASE_URL": databaseURL, "KAFKA_BROKERS": kafkaBrokers, "PAYWIRE_ENCRYPTION_KEY": encryptionKey, "LOG_LEVEL": "error",
            "PAYWIRE_RECOVERY_RETRY_SCHEDULE": "1h,1h,1h", "PAYWIRE_RECOVERY_RANDOM_DELAY_MAX_MS": "0", "PAYWIRE_RECOVERY_INTERVAL_MS": "50",
            "PAYWIRE_RECOVERY_BATCH": String(batch), "PAYWIRE_RECOVERY_CLOCK_CONTROL": "true",
            // No outcome comes (payment-core is not running), so a retry would be sent again once
            // this passes: a day (the most allowed), past both rounds' clock moves of two hours —
            // with an hour, the second round re-sent the whole first backlog beside its own.
            "PAYWIRE_RECOVERY_OUTCOME_TIMEOUT_MS": "86400000", "DATABASE_MAX_CONNECTIONS": "20",
        ]
        let replicas = ports.map { ServiceProcess(path: schedulerPath, port: $0, environment: replicaEnvironment) }
        defer { replicas.forEach { $0.kill() } }
        try await replicas[0].start()
        Bench.say("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; recovery-scheduler replicas claiming \(batch) per pass, dev broker, local PostgreSQL (fsync on)")

        // Warm-up, then the two rounds, each on a merchant of its own.
        let warm = try await setUp(merchant: "\(run)_warm", postgres: postgres, logger: logger)
        _ = try await round(merchant: warm, count: 500, tag: "w", replicas: [replicas[0]], producer: producer, signer: signer, clockSigner: clockSigner, postgres: postgres, logger: logger)

        let one = try await setUp(merchant: "\(run)_one", postgres: postgres, logger: logger)
        let single = try await round(merchant: one, count: jobs, tag: "a", replicas: [replicas[0]], producer: producer, signer: signer, clockSigner: clockSigner, postgres: postgres, logger: logger)
        try await replicas[1].start()
        let two = try await setUp(merchant: "\(run)_two", postgres: postgres, logger: logger)
        let double = try await round(merchant: two, count: jobs, tag: "b", replicas: replicas, producer: producer, signer: signer, clockSigner: clockSigner, postgres: postgres, logger: logger)

        Bench.say("")
        Bench.say("\(jobs) due jobs, each a card of its own, claimed → retry reserved → payment command acknowledged:")
        for (name, result) in [("one replica ", single), ("two replicas", double)] {
            Bench.say(String(format: "  %@: drained %.0f jobs/s (%.1f s); %.2f PostgreSQL commits per job; taken in %.0f reports/s",
                         name, result.drainedPerSecond, result.drainSeconds, result.commitsPerJob, result.intakePerSecond))
        }
        Bench.say(String(format: "  ceiling (one producer, the same %d commands to the broker): %.0f messages/s", jobs, single.publishedPerSecond))
        Bench.say(String(format: "  ratios: one replica %.2f × ceiling, two replicas %.2f × ceiling; two ÷ one %.2f",
                     single.drainedPerSecond / single.publishedPerSecond, double.drainedPerSecond / single.publishedPerSecond,
                     double.drainedPerSecond / single.drainedPerSecond))
        Bench.say("  every job of both rounds had exactly one retry reserved: \(single.exactlyOnce && double.exactlyOnce ? "yes" : "NO")")
    }

    struct Round {
        var publishedPerSecond: Double
        var intakePerSecond: Double
        var drainedPerSecond: Double
        var drainSeconds: Double
        var commitsPerJob: Double
        var exactlyOnce: Bool
    }

    func round(merchant: Merchant, count: Int, tag: String, replicas: [ServiceProcess], producer: KafkaProducer, signer: CommandSigner,
               clockSigner: InternalAPISigner, postgres: PostgresClient, logger: Logger) async throws -> Round {
        let secrets = try SecretBox(base64Key: encryptionKey)
        // Every replica on one clock first, so the whole backlog is taken in an hour out (a replica
        // ahead of the others would find the others' jobs due at once).
        var before: [Date] = []
        for replica in replicas { before.append(try await clock(replica, advance: 0, signer: clockSigner)) }
        for (replica, now) in zip(replicas, before) { _ = try await clock(replica, advance: Int(before.max()!.timeIntervalSince(now).rounded(.up)), signer: clockSigner) }

        // The reports, as the gateway publishes them.
        var messages: [KafkaProducerMessage] = []
        messages.reserveCapacity(count)
        for index in 0..<count {
            let hex = String(index, radix: 16)
            let jobId = "pay_rec_" + (tag == "a" ? "aa" : tag == "b" ? "bb" : "00") + String(repeating: "0", count: 22 - hex.count) + hex
            var command = RecoveryCommand(action: .scheduleFailedPayment, jobId: jobId, merchantId: merchant.id)
            command.profileId = merchant.profile
            command.merchantReferenceId = "inv_\(tag)_\(index)"
            command.amount = 2250
            command.currency = "USD"
            command.processorToken = "tok_sandbox_decline0x_4242_\(tag)\(index)"
            // Sealed for Kafka, as the gateway sends it.
            try command.sealProcessorToken(with: secrets)
            command.connectorCustomerId = "cus_bench"
            command.billingConnectorId = merchant.billingAccount
            command.paymentConnectorId = merchant.paymentAccount
            command.paymentConnectorName = "sandbox"
            command.maxRetryCount = 9
            command.billingRetryThreshold = 0
            command.errorCode = "110"
            command.cardNetwork = "Visa"
            let envelope = EventEnvelope(type: RecoveryIdentifiers.commandType, merchantId: merchant.id, profileId: merchant.profile, payload: try JSONValue(encoding: command))
            messages.append(signer.signed(KafkaProducerMessage(topic: TopicNames().recoveryCommands, key: jobId, value: try envelope.encoded())))
        }
        let published = ContinuousClock.now
        for chunk in stride(from: 0, to: messages.count, by: 2000) {
            for result in try await producer.sendBatch(Array(messages[chunk..<min(chunk + 2000, messages.count)])) {
                if case .failure(let error) = result { throw error }
            }
        }
        let publishSeconds = Bench.seconds(ContinuousClock.now - published)
        try await Bench.waitUntil(timeout: .seconds(1800), every: .milliseconds(500)) {
            try await Self.count(postgres, "SELECT count(*)::int FROM recovery.process_tracker WHERE merchant_id = $1", merchant.id, logger) == count
        }
        let intakeSeconds = Bench.seconds(ContinuousClock.now - published)

        // Every replica's clock two hours past the latest of them: the whole backlog is due.
        var nows: [Date] = []
        for replica in replicas { nows.append(try await clock(replica, advance: 0, signer: clockSigner)) }
        let target = nows.max()!.addingTimeInterval(7200)
        let commitsBefore = try await Self.count(postgres, "SELECT xact_commit::int FROM pg_stat_database WHERE datname = current_database()", nil, logger)
        let start = ContinuousClock.now
        for (replica, now) in zip(replicas, nows) { _ = try await clock(replica, advance: Int(target.timeIntervalSince(now).rounded(.up)), signer: clockSigner) }
        try await Bench.waitUntil(timeout: .seconds(1800), every: .milliseconds(250)) {
            try await Self.count(postgres, "SELECT count(*)::int FROM recovery.process_tracker WHERE merchant_id = $1 AND status = 'waiting'", merchant.id, logger) == count
        }
        let drainSeconds = Bench.seconds(ContinuousClock.now - start)
        let commits = try await Self.count(postgres, "SELECT xact_commit::int FROM pg_stat_database WHERE datname = current_database()", nil, logger) - commitsBefore
        let attempts = try await Self.count(postgres, "SELECT count(*)::int FROM recovery.attempts WHERE merchant_id = $1", merchant.id, logger)
        let distinct = try await Self.count(postgres, "SELECT count(DISTINCT job_id)::int FROM recovery.attempts WHERE merchant_id = $1", merchant.id, logger)
        return Round(publishedPerSecond: Double(count) / publishSeconds, intakePerSecond: Double(count) / intakeSeconds,
                     drainedPerSecond: Double(count) / drainSeconds, drainSeconds: drainSeconds,
                     commitsPerJob: Double(commits) / Double(count), exactlyOnce: attempts == count && distinct == count)
    }

    /// Moves a replica's clock; returns its now.
    func clock(_ replica: ServiceProcess, advance seconds: Int, signer: InternalAPISigner) async throws -> Date {
        let client = InternalAPIClient(baseURL: replica.baseURL, signer: signer, http: .shared)
        let answer = try await client.send(method: .POST, path: "/internal/recovery-clock", body: ByteBuffer(string: #"{"advance_seconds": \#(seconds)}"#), timeout: .seconds(10))
        guard answer.status == 200, let now = (Bench.object(String(buffer: answer.body))["now"] as? String).flatMap(PaywireJSON.parse) else {
            throw ValidationError("clock of \(replica.baseURL): \(answer.status)")
        }
        return now
    }

    /// A merchant on `cascading` with a sandbox payment account and a billing account naming it,
    /// once the scheduler's copy of its configuration has the algorithm.
    func setUp(merchant: String, postgres: PostgresClient, logger: Logger) async throws -> Merchant {
        _ = try await Bench.call(gateway, .POST, "/accounts", apiKey: adminKey, body: #"{"merchant_id": "\#(merchant)"}"#)
        let apiKey = try Self.required(Bench.object(try await Bench.call(gateway, .POST, "/api_keys/\(merchant)", apiKey: adminKey, body: #"{"name": "bench"}"#))["api_key"])
        let profile = try Self.required(Bench.object(try await Bench.call(gateway, .GET, "/accounts/\(merchant)", apiKey: adminKey, body: nil))["default_profile"])
        let headers = [("x-merchant-id", merchant), ("x-profile-id", profile)]
        let payment = try Self.required(Bench.object(try await Bench.call(gateway, .POST, "/v2/connector-accounts", apiKey: apiKey, body: """
            {"connector_type": "payment_processor", "connector_name": "sandbox", "connector_account_details": {"auth_type": "NoKey"}, "profile_id": "\(profile)"}
            """, headers: headers))["merchant_connector_id"])
        let billing = try Self.required(Bench.object(try await Bench.call(gateway, .POST, "/v2/connector-accounts", apiKey: apiKey, body: """
            {"connector_type": "billing_processor", "connector_name": "custombilling", "connector_account_details": {"auth_type": "NoKey"},
             "feature_metadata": {"revenue_recovery": {"max_retry_count": 9, "billing_connector_retry_threshold": 0,
               "billing_account_reference": {"\(payment)": "\(payment)"}}}, "profile_id": "\(profile)"}
            """, headers: headers))["merchant_connector_id"])
        _ = try await Bench.call(gateway, .PUT, "/v2/profiles/\(profile)", apiKey: apiKey, body: #"{"revenue_recovery_retry_algorithm_type": "cascading"}"#, headers: headers)
        try await Bench.waitUntil(timeout: .seconds(60)) {
            try await Self.count(postgres, "SELECT count(*)::int FROM recovery.merchant_configurations WHERE merchant_id = $1 AND snapshot::text LIKE '%cascading%'", merchant, logger) == 1
        }
        return Merchant(id: merchant, apiKey: apiKey, profile: profile, paymentAccount: payment, billingAccount: billing)
    }

    static func required(_ value: Any?) throws -> String {
        guard let text = value as? String else { throw ValidationError("the gateway's answer lacks a field") }
        return text
    }

    static func count(_ postgres: PostgresClient, _ sql: String, _ bind: String?, _ logger: Logger) async throws -> Int {
        var query = PostgresQuery(unsafeSQL: sql)
        if let bind { query.binds.append(bind) }
        for try await value in try await postgres.query(query, logger: logger).decode(Int.self) { return value }
        return 0
    }
}
