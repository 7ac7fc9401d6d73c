import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PaywireKafka
import PaywireModels
import BenchmarkSupport
import PostgresNIO

/// The webhook dispatcher measured on its own (scripts/bench-webhooks starts PostgreSQL, the dev
/// broker and a gateway for configuration; this program runs the dispatcher as a child process so
/// it can kill it and read its memory). Every figure is printed beside a ceiling measured in the
/// same run: a bare AsyncHTTPClient loop POSTing the same bodies to the same receivers; the
/// shared-host rounds against the same ten merchants' endpoints all healthy; due retries against
/// the time they were due.
@main
struct WebhookThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "webhook-throughput")

    @Option(help: "Gateway base URL (configuration only)") var gateway = "http://127.0.0.1:8080"
    @Option(help: "Admin API key") var adminKey = "test_admin"
    @Option(name: .customLong("database-url")) var databaseURL: String
    @Option(name: .customLong("kafka-brokers")) var kafkaBrokers: String
    @Option(name: .customLong("encryption-key")) var encryptionKey: String
    @Option(name: .customLong("dispatcher"), help: "The webhook-dispatcher executable") var dispatcherPath: String
    @Option(name: .customLong("dispatcher-port"), help: "A free port for the dispatcher's HTTP server") var dispatcherPort: Int
    @Option(help: "Events per endpoint in the throughput rounds") var events = 1500
    @Option(help: "Events in the kill -9 round (each to 3 endpoints)") var killEvents = 10_000
    @Option(help: "Pending retries in the memory round (at most)") var backlog = 100_000
    @Option(help: "The dispatcher's (and the ceiling's) requests in flight") var concurrency = 64

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let receivers = (0..<10).map { _ in BenchReceiver() }
        var urls: [String] = []
        for receiver in receivers { urls.append(try await receiver.start(logger: logger)) }
        let postgres = PostgresClient(configuration: try Bench.postgresConfiguration(databaseURL), backgroundLogger: logger)
        let pgTask = Task { await postgres.run() }
        defer { pgTask.cancel() }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(kafka: KafkaConfiguration(bootstrapServers: kafkaBrokers)), logger: logger)
        let run = "b\(Int(Date().timeIntervalSince1970) % 1_000_000)"

        // Ten merchants, one endpoint each, each on its own receiver (its own host:port, as
        // different merchants' servers are); and one merchant with three endpoints for the kill round.
        var merchants: [String] = []
        for index in 0..<10 {
            let merchant = "\(run)_m\(index)"
            try await setUp(merchant: merchant, urls: [urls[index] + "/m"])
            merchants.append(merchant)
        }
        let killMerchant = "\(run)_kill"
        try await setUp(merchant: killMerchant, urls: (1...3).map { urls[$0] + "/kill" })
        // Ten more merchants whose endpoints share one host and port (receiver 0), another path
        // each: as merchants whose receiver is a shared service (an automation platform, a relay).
        var hostMerchants: [String] = []
        for index in 0..<10 {
            let merchant = "\(run)_h\(index)"
            try await setUp(merchant: merchant, urls: [urls[0] + "/h\(index)"])
            hostMerchants.append(merchant)
        }
        let sharedHost = Array(repeating: receivers[0], count: 10)
        // One merchant whose endpoint fails each delivery's first request with Retry-After.
        let retryMerchant = "\(run)_retry"
        try await setUp(merchant: retryMerchant, urls: [urls[4] + "/retry"])

        let dispatcher = ServiceProcess(path: dispatcherPath, port: dispatcherPort, environment: [
            "DATABASE_URL": databaseURL, "KAFKA_BROKERS": kafkaBrokers, "PAYWIRE_ENCRYPTION_KEY": encryptionKey,
            "PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true", "LOG_LEVEL": "warning",
            "PAYWIRE_WEBHOOK_CONCURRENCY": String(concurrency), "PAYWIRE_WEBHOOK_LEASE_MARGIN_SECONDS": "5",
            "WEBHOOK_REQUEST_TIMEOUT_SECONDS": "10", "DATABASE_MAX_CONNECTIONS": "10",
        ])
        defer { dispatcher.kill() }
        try await dispatcher.start()
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; one dispatcher replica (\(concurrency) requests in flight, 10 per endpoint), dev broker, local PostgreSQL, receivers in this process")

        // Warm-up.
        _ = try await round(producer: producer, postgres: postgres, receivers: receivers, merchants: merchants, count: 100, tag: "warm")

        // 1. All ten endpoints healthy, beside the ceiling.
        let healthy = try await round(producer: producer, postgres: postgres, receivers: receivers, merchants: merchants, count: events, tag: "a")
        let ceiling = try await Self.ceiling(bodies: healthy.bodies, urls: urls.map { $0 + "/m" }, concurrency: concurrency)
        print("")
        print("1. \(events) events to each of 10 endpoints (\(events * 10) deliveries), event published → receipt:")
        print(String(format: "   dispatcher %.0f deliveries/s, p50 %.1f ms, p99 %.1f ms", healthy.perSecond, healthy.p50 * 1000, healthy.p99 * 1000))
        print(String(format: "   ceiling (bare AsyncHTTPClient loop, same bodies and receivers, %d in flight) %.0f requests/s, p50 %.1f ms, p99 %.1f ms", concurrency, ceiling.perSecond, ceiling.p50 * 1000, ceiling.p99 * 1000))
        print(String(format: "   ratio %.2f (target ≥ 0.5)", healthy.perSecond / ceiling.perSecond))
        print(String(format: "   PostgreSQL commits per delivery: %.2f (%d commits; target ≤ 1)", Double(healthy.commits) / Double(events * 10), healthy.commits))

        // 2. One of ten answers after 5 s: the nine keep their throughput.
        receivers[0].slowDown(path: nil, by: .seconds(5))
        let slow = try await round(producer: producer, postgres: postgres, receivers: receivers, merchants: merchants, count: events, tag: "s", waitFor: Array(1..<10))
        receivers[0].slowDown(path: nil, by: .zero)
        print("")
        print("2. the same with endpoint 1 of 10 answering after 5 s:")
        print(String(format: "   nine healthy endpoints %.0f deliveries/s (%.0f/s when all were healthy), ratio %.2f (target ≥ 0.9); p99 %.1f ms",
                     slow.healthyPerSecond, healthy.healthyPerSecond, slow.healthyPerSecond / healthy.healthyPerSecond, slow.p99 * 1000))
        let slowMost = receivers[0].mostAtOnce.withLockedValue { $0 }
        print("   slow endpoint: at most \(slowMost) requests in flight at once (its limit: 10)")
        // Let the slow endpoint's backlog drain (it answers at once again).
        try await Bench.waitUntil(timeout: .seconds(300)) { receivers[0].distinct(prefix: "pay_s_") >= events }

        // 2b. The same ten merchants' endpoints on one host and port: all healthy, then one slow.
        let hostHealthy = try await round(producer: producer, postgres: postgres, receivers: sharedHost, merchants: hostMerchants, count: events, tag: "h")
        receivers[0].slowDown(path: "/h0", by: .seconds(5))
        let hostSlow = try await round(producer: producer, postgres: postgres, receivers: sharedHost, merchants: hostMerchants, count: events, tag: "hs", waitFor: Array(1..<10))
        receivers[0].slowDown(path: nil, by: .zero)
        let hostSlowMost = receivers[0].mostAtOnce.withLockedValue { $0 }
        print("")
        print("2b. ten endpoints of ten merchants on one host and port (paths /h0 … /h9):")
        print(String(format: "   all healthy %.0f deliveries/s, p99 %.1f ms", hostHealthy.perSecond, hostHealthy.p99 * 1000))
        print(String(format: "   /h0 answering after 5 s: nine healthy endpoints %.0f deliveries/s (%.0f/s when all were healthy), ratio %.2f (target ≥ 0.9); p99 %.1f ms",
                     hostSlow.healthyPerSecond, hostHealthy.healthyPerSecond, hostSlow.healthyPerSecond / hostHealthy.healthyPerSecond, hostSlow.p99 * 1000))
        print("   slow endpoint: at most \(hostSlowMost) requests in flight at once (its limit: 10)")
        try await Bench.waitUntil(timeout: .seconds(300)) { receivers[0].distinct(prefix: "pay_hs_\(hostMerchants[0])_") >= events }

        // 2c. Retries leave when they are due: each delivery's first request is answered 503 with
        // Retry-After: 3, events a little apart so each retry has a due time of its own.
        let retry = try await dueRound(producer: producer, postgres: postgres, receiver: receivers[4], merchant: retryMerchant)
        print("")
        print("2c. \(retry.count) retries (first answer 503, Retry-After: 3), due time → request received:")
        print(String(format: "   p50 %.1f ms, p99 %.1f ms, max %.1f ms (target: p99 ≤ 100 ms)", retry.p50 * 1000, retry.p99 * 1000, retry.max * 1000))

        // 3. kill -9 mid-burst.
        let kill = try await killRound(producer: producer, postgres: postgres, receivers: Array(receivers[1...3]), merchant: killMerchant, dispatcher: dispatcher)
        print("")
        print("3. kill -9 mid-burst: \(killEvents) events × 3 endpoints; killed after \(kill.before) receipts, restarted:")
        print("   every (event, endpoint) pair delivered: \(kill.delivered == killEvents * 3) (\(kill.delivered)/\(killEvents * 3)); delivery rows \(kill.rows), distinct \(kill.distinctRows)")
        print("   requests beyond the recorded attempts: \(kill.duplicates) (bound: \(concurrency) in flight)")

        // 4. Memory with a growing backlog of pending retries.
        print("")
        print("4. dispatcher RSS with pending retries (not yet due):")
        var samples: [(Int, Int)] = []
        var inserted = 0
        for target in [0, backlog / 10, backlog / 2, backlog] {
            if target > inserted {
                try await postgres.query("""
                    INSERT INTO webhooks.events (event_id, idempotent_event_id, merchant_id, webhook_endpoint_id, object_id, event_type, event_class,
                        target_url, request_body, request_headers, next_attempt_at, attempt_count)
                    SELECT 'evt_backlog_' || g, 'backlog_' || \(run) || '_' || g, \(merchants[1]), NULL, 'pay_backlog_' || g, 'payment_succeeded', 'payments',
                           \(urls[1] + "/m"), repeat('x', 1500), '{}'::jsonb, now() + interval '1 day', 1
                    FROM generate_series(\(inserted + 1), \(target)) AS g
                    """, logger: logger)
                inserted = target
            }
            // Two housekeeping passes (every 10 s) and many claim passes over the backlog.
            try await Task.sleep(for: .seconds(22))
            let rss = dispatcher.residentKiB()
            samples.append((target, rss))
            print(String(format: "   %7d pending: %6.1f MiB", target, Double(rss) / 1024))
        }
        let growth = Double(samples.last!.1) / Double(samples.first!.1)
        print(String(format: "   RSS at %d ÷ RSS at 0: %.2f (target: flat, ≤ 1.10)", backlog, growth))
        try await postgres.query("DELETE FROM webhooks.events WHERE event_id LIKE 'evt_backlog_%'", logger: logger)

        await producer.shutdown()
        for receiver in receivers { receiver.stop() }
        let ok = healthy.perSecond / ceiling.perSecond >= 0.5 && slow.healthyPerSecond / healthy.healthyPerSecond >= 0.9
            && slowMost == 10 && hostSlowMost == 10 && hostSlow.healthyPerSecond / hostHealthy.healthyPerSecond >= 0.9 && retry.p99 <= 0.1
            && Double(healthy.commits) / Double(events * 10) <= 1 && kill.delivered == killEvents * 3 && kill.rows == kill.distinctRows
            && kill.duplicates <= concurrency && growth <= 1.10
        print("")
        print(ok ? "all targets met" : "TARGET MISSED (see above)")
        if !ok { throw ExitCode(1) }
    }

    struct Round {
        var perSecond: Double
        var healthyPerSecond: Double
        var p50: Double
        var p99: Double
        var commits: Int
        var bodies: [String]
    }

    /// Publishes `count` events per merchant and waits until the merchants in `waitFor` have every
    /// one of theirs at their receiver (`receivers[i]` is merchant i's; merchant 0 is the one made
    /// slow in the slow rounds).
    func round(producer: KafkaProducer, postgres: PostgresClient, receivers: [BenchReceiver], merchants: [String], count: Int, tag: String, waitFor: [Int] = Array(0..<10)) async throws -> Round {
        let before = try await Self.commits(postgres)
        let start = Date()
        var bodies: [String] = []
        var messages: [KafkaProducerMessage] = []
        for index in 0..<count {
            for merchant in merchants {
                let paymentId = "pay_\(tag)_\(merchant)_\(index)"
                let payload: JSONValue = .object([
                    "payment_id": .string(paymentId), "merchant_id": .string(merchant), "status": .string("succeeded"), "amount": .number(6540),
                    "currency": .string("USD"), "bench_sent_at": .number(Date().timeIntervalSince1970),
                    "description": .string(String(repeating: "d", count: 900)),
                ])
                let envelope = EventEnvelope(type: "payment_succeeded", merchantId: merchant, profileId: nil, payload: payload)
                messages.append(KafkaProducerMessage(topic: TopicNames().paymentEvents, key: paymentId, value: try envelope.encoded()))
                if bodies.count < 2000 { bodies.append(String(decoding: try PaywireJSON.encoder.encode(payload), as: UTF8.self)) }
            }
            if messages.count >= 1000 {
                for result in try await producer.sendBatch(messages) { if case .failure(let error) = result { throw error } }
                messages.removeAll()
            }
        }
        if !messages.isEmpty { for result in try await producer.sendBatch(messages) { if case .failure(let error) = result { throw error } } }
        try await Bench.waitUntil(timeout: .seconds(600)) { waitFor.allSatisfy { receivers[$0].distinct(prefix: "pay_\(tag)_\(merchants[$0])_") >= count } }
        let commits = try await Self.commits(postgres) - before
        var latencies: [Double] = []
        var last = start
        var lastHealthy = start
        for index in waitFor {
            let (values, at) = receivers[index].latencies(prefix: "pay_\(tag)_\(merchants[index])_")
            latencies += values
            last = max(last, at)
            if index != 0 { lastHealthy = max(lastHealthy, at) }
        }
        latencies.sort()
        let total = Double(count * waitFor.count)
        let healthyCount = Double(count * waitFor.filter { $0 != 0 }.count)
        return Round(
            perSecond: total / last.timeIntervalSince(start), healthyPerSecond: healthyCount / lastHealthy.timeIntervalSince(start),
            p50: latencies[latencies.count / 2], p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)], commits: commits, bodies: bodies
        )
    }

    func killRound(producer: KafkaProducer, postgres: PostgresClient, receivers: [BenchReceiver], merchant: String, dispatcher: ServiceProcess) async throws -> (before: Int, delivered: Int, rows: Int, distinctRows: Int, duplicates: Int) {
        var messages: [KafkaProducerMessage] = []
        for index in 0..<killEvents {
            let paymentId = "pay_k_\(index)"
            let envelope = EventEnvelope(type: "payment_succeeded", merchantId: merchant, profileId: nil,
                                         payload: .object(["payment_id": .string(paymentId), "status": .string("succeeded"), "bench_sent_at": .number(Date().timeIntervalSince1970)]))
            messages.append(KafkaProducerMessage(topic: TopicNames().paymentEvents, key: paymentId, value: try envelope.encoded()))
        }
        for chunk in stride(from: 0, to: messages.count, by: 1000) {
            for result in try await producer.sendBatch(Array(messages[chunk..<min(chunk + 1000, messages.count)])) { if case .failure(let error) = result { throw error } }
        }
        let total = killEvents * 3
        try await Bench.waitUntil(timeout: .seconds(300)) { receivers.map { $0.distinct(prefix: "pay_k_") }.reduce(0, +) >= total / 4 }
        let before = receivers.map { $0.distinct(prefix: "pay_k_") }.reduce(0, +)
        dispatcher.kill()
        try await dispatcher.start()
        try await Bench.waitUntil(timeout: .seconds(600)) { receivers.map { $0.distinct(prefix: "pay_k_") }.reduce(0, +) >= total }
        // Wait for the last outcomes to be recorded before comparing requests with attempts.
        try await Bench.waitUntil(timeout: .seconds(120)) {
            let rows = try await postgres.query("SELECT count(*)::int FROM webhooks.events WHERE object_id LIKE 'pay_k_%' AND webhooks.delivery_state(delivery_status, event_id) <> 'delivered'", logger: Logger(label: "bench"))
            for try await pending in rows.decode(Int.self) { return pending == 0 }
            return false
        }
        var attempts: [String: Int] = [:]
        var rows = 0
        var idempotent = Set<String>()
        for try await (id, key, count) in try await postgres.query("SELECT event_id, idempotent_event_id, attempt_count FROM webhooks.events WHERE object_id LIKE 'pay_k_%'", logger: Logger(label: "bench")).decode((String, String, Int).self) {
            attempts[id] = count
            idempotent.insert(key)
            rows += 1
        }
        var duplicates = 0
        for receiver in receivers {
            for (id, requests) in receiver.requestsByDelivery(prefix: "pay_k_") { duplicates += max(0, requests - (attempts[id] ?? 0)) }
        }
        let delivered = receivers.map { $0.distinct(prefix: "pay_k_") }.reduce(0, +)
        return (before, delivered, rows, idempotent.count, duplicates)
    }

    /// Publishes 100 events 50 ms apart to a merchant whose endpoint answers each delivery's first
    /// request 503 with `Retry-After: 3`, and returns how long after its due time each retry was
    /// received (the due time is the row's `next_attempt_at`, which a delivered row keeps).
    func dueRound(producer: KafkaProducer, postgres: PostgresClient, receiver: BenchReceiver, merchant: String) async throws -> (count: Int, p50: Double, p99: Double, max: Double) {
        let count = 100
        let prefix = "pay_r_\(merchant)_"
        for index in 0..<count {
            let paymentId = prefix + String(index)
            let envelope = EventEnvelope(type: "payment_succeeded", merchantId: merchant, profileId: nil,
                                         payload: .object(["payment_id": .string(paymentId), "status": .string("succeeded"), "bench_sent_at": .number(Date().timeIntervalSince1970)]))
            for result in try await producer.sendBatch([KafkaProducerMessage(topic: TopicNames().paymentEvents, key: paymentId, value: try envelope.encoded())]) {
                if case .failure(let error) = result { throw error }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Bench.waitUntil(timeout: .seconds(300)) { receiver.retried(prefix: prefix).count >= count }
        let pattern = prefix + "%"
        var due: [String: Double] = [:]
        try await Bench.waitUntil(timeout: .seconds(120)) {
            due = [:]
            let rows = try await postgres.query("""
                SELECT event_id, EXTRACT(EPOCH FROM next_attempt_at)::float8 FROM webhooks.events
                WHERE object_id LIKE \(pattern) AND webhooks.delivery_state(delivery_status, event_id) = 'delivered'
                """, logger: Logger(label: "bench"))
            for try await (id, at) in rows.decode((String, Double).self) { due[id] = at }
            return due.count >= count
        }
        let lateness = receiver.retried(prefix: prefix).compactMap { id, at in due[id].map { at - $0 } }.sorted()
        return (lateness.count, lateness[lateness.count / 2], lateness[min(lateness.count - 1, lateness.count * 99 / 100)], lateness.last!)
    }

    func setUp(merchant: String, urls: [String]) async throws {
        _ = try await call(.POST, "/accounts", body: #"{"merchant_id": "\#(merchant)"}"#)
        let account = try await call(.GET, "/accounts/\(merchant)", body: nil)
        guard let profile = (try JSONSerialization.jsonObject(with: Data(account.utf8)) as? [String: Any])?["default_profile"] as? String else {
            throw ValidationError("no default profile: \(account)")
        }
        for url in urls {
            _ = try await call(.POST, "/account/\(merchant)/business_profile/\(profile)/webhooks", body: #"{"webhook_url": "\#(url)", "events": ["payment_succeeded"]}"#)
        }
    }

    func call(_ method: HTTPMethod, _ path: String, body: String?) async throws -> String {
        try await Bench.call(gateway, method, path, apiKey: adminKey, body: body)
    }

    /// A bare loop: the same bodies POSTed round-robin to the same receivers, `concurrency` in
    /// flight, on one AsyncHTTPClient configured as the dispatcher's (no redirects).
    static func ceiling(bodies: [String], urls: [String], concurrency: Int) async throws -> (perSecond: Double, p50: Double, p99: Double) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let count = bodies.count * 5
        let next = NIOLockedValueBox(0)
        let start = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    while true {
                        let index = next.withLockedValue { value -> Int in value += 1; return value - 1 }
                        guard index < count else { break }
                        var request = HTTPClientRequest(url: urls[index % urls.count] + "/ceiling")
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.headers.add(name: "webhook-id", value: "ceiling_\(index)")
                        request.body = .bytes(ByteBuffer(string: bodies[index % bodies.count]))
                        let began = ContinuousClock.now
                        let response = try await client.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        latencies.append(Bench.seconds(ContinuousClock.now - began))
                    }
                    return latencies
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let elapsed = Bench.seconds(ContinuousClock.now - start)
        try await client.shutdown()
        return (Double(count) / elapsed, latencies[latencies.count / 2], latencies[min(latencies.count - 1, latencies.count * 99 / 100)])
    }

    static func commits(_ postgres: PostgresClient) async throws -> Int {
        for try await value in try await postgres.query("SELECT xact_commit::int8 FROM pg_stat_database WHERE datname = current_database()", logger: Logger(label: "bench")).decode(Int.self) {
            return value
        }
        return 0
    }
}

/// One merchant's server: counts requests by delivery id and records event → receipt latency.
final class BenchReceiver: Sendable {
    struct Seen {
        var requests = 0
        var latency = 0.0
        var at = Date.distantPast
    }

    /// How long requests wait before their answer, and to which path (nil: every path).
    private let delay = NIOLockedValueBox<(wait: Duration, path: String?)>((.zero, nil))
    /// The most delayed requests open at once since the last `slowDown`.
    let mostAtOnce = NIOLockedValueBox(0)
    /// Webhook id → when its second request (the retry) arrived, for paths ending in `/retry`,
    /// whose first request is answered 503 with `Retry-After: 3`.
    private let retries = NIOLockedValueBox<[String: (object: String, at: Double)]>([:])
    private let inFlight = NIOLockedValueBox(0)
    /// object id → delivery id → what was seen.
    private let seen = NIOLockedValueBox<[String: Seen]>([:])
    /// Distinct pairs by round (`pay_a_`, `pay_k_`, …), kept as they arrive so polling is cheap.
    private let counts = NIOLockedValueBox<[String: Int]>([:])
    private let task = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    func start(logger: Logger) async throws -> String {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { [seen, counts, delay, inFlight, mostAtOnce, retries] request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            let (wait, slowPath) = delay.withLockedValue { $0 }
            if wait > .zero && (slowPath == nil || request.uri.path == slowPath) {
                let now = inFlight.withLockedValue { $0 += 1; return $0 }
                mostAtOnce.withLockedValue { $0 = max($0, now) }
                defer { inFlight.withLockedValue { $0 -= 1 } }
                try await Task.sleep(for: wait)
            }
            let received = Date()
            var first = true
            if let id = request.headers[.init("webhook-id")!], !id.hasPrefix("ceiling_"),
               let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
               let payload = (object["content"] as? [String: Any])?["object"] as? [String: Any],
               let paymentId = payload["payment_id"] as? String {
                let sentAt = payload["bench_sent_at"] as? Double ?? received.timeIntervalSince1970
                seen.withLockedValue { seen in
                    var entry = seen[paymentId + "|" + id] ?? Seen()
                    first = entry.requests == 0
                    if first {
                        entry.latency = received.timeIntervalSince1970 - sentAt
                        entry.at = received
                        // Counted by the id up to its last "_": the round and the merchant.
                        let key = String(paymentId[...paymentId.lastIndex(of: "_")!])
                        counts.withLockedValue { $0[key, default: 0] += 1 }
                    }
                    entry.requests += 1
                    seen[paymentId + "|" + id] = entry
                }
                if request.uri.path.hasSuffix("/retry") {
                    if first { return Response(status: .serviceUnavailable, headers: [.retryAfter: "3"]) }
                    retries.withLockedValue { if $0[id] == nil { $0[id] = (paymentId, received.timeIntervalSince1970) } }
                }
            }
            return Response(status: .ok)
        }
        router.post("/**", use: handler)
        let port = NIOLockedValueBox<Int?>(nil)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in port.withLockedValue { $0 = channel.localAddress?.port } }, logger: logger)
        task.withLockedValue { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
        for _ in 0..<500 {
            if let value = port.withLockedValue({ $0 }) { return "http://127.0.0.1:\(value)" }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("receiver did not start")
    }

    func stop() { task.withLockedValue { $0?.cancel() } }

    /// Makes requests to `path` (every path if nil) wait `wait` before their answer; slowing
    /// down starts a new count of `mostAtOnce`.
    func slowDown(path: String?, by wait: Duration) {
        delay.withLockedValue { $0 = (wait, path) }
        if wait > .zero { mostAtOnce.withLockedValue { $0 = 0 } }
    }

    /// Distinct (object, delivery) pairs received whose object id starts with `prefix`.
    func distinct(prefix: String) -> Int {
        counts.withLockedValue { counts in counts.reduce(0) { $0 + ($1.key.hasPrefix(prefix) ? $1.value : 0) } }
    }

    /// Webhook id → when its retry arrived, for objects whose id starts with `prefix`.
    func retried(prefix: String) -> [String: Double] {
        retries.withLockedValue { $0.filter { $0.value.object.hasPrefix(prefix) }.mapValues(\.at) }
    }

    func latencies(prefix: String) -> ([Double], Date) {
        seen.withLockedValue { seen in
            let entries = seen.filter { $0.key.hasPrefix(prefix) }.values
            return (entries.map(\.latency), entries.map(\.at).max() ?? .distantPast)
        }
    }

    func requestsByDelivery(prefix: String) -> [String: Int] {
        seen.withLockedValue { seen in
            var byId: [String: Int] = [:]
            for (key, entry) in seen where key.hasPrefix(prefix) { byId[String(key.split(separator: "|").last!)] = entry.requests }
            return byId
        }
    }
}
