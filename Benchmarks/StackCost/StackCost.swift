import ArgumentParser
import AsyncHTTPClient
import BenchmarkSupport
import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PostgresNIO

/// What one payment costs the whole stack, per process: CPU time read from `/proc` for every
/// process of a stack that `./scripts/up` started (PostgreSQL's backends and the ones that exited
/// meanwhile included), PostgreSQL commits and rows written per database from `pg_stat_database`,
/// payments/s at peak (closed loop) and p50/p99 of `POST /payments` at half that rate (open loop,
/// latency from each request's scheduled start, so a stall is not hidden by the requests it
/// delays). Every payment (sandbox and fake Stripe, alternately) is confirmed and its webhooks
/// received by a receiver in this process before the figures are read. See scripts/bench-stack.
@main
struct StackCost: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stack-cost")

    @Option(help: "Gateway base URL") var gateway = "http://127.0.0.1:8080"
    @Option(help: "Admin API key") var adminKey = "test_admin"
    @Option(help: "The stack's state directory (its *.pid files and postgres/postmaster.pid)") var stateDirectory: String
    @Option(help: "PostgreSQL URL of a role that may read pg_stat_database") var databaseURL: String
    @Option(help: "Payments in the peak round") var payments = 2000
    @Option(help: "Requests in flight in the peak round") var concurrency = 32
    @Option(help: "Seconds of the half-peak round") var steadySeconds = 20
    @Option(help: "Label printed with the figures") var label = ""

    func run() async throws {
        var logger = Logger(label: "stack-cost")
        logger.logLevel = .warning
        let receiver = CountingReceiver()
        // Its server logs the connections it cuts when stopped; nothing worth reading.
        var receiverLogger = logger
        receiverLogger.logLevel = .critical
        let receiverURL = try await receiver.start(logger: receiverLogger)
        let merchants = try await setUp(receiverURL: receiverURL)
        let postgres = PostgresClient(configuration: try Bench.postgresConfiguration(databaseURL), backgroundLogger: logger)
        let postgresTask = Task { await postgres.run() }
        defer { postgresTask.cancel() }
        let processes = StackProcesses(stateDirectory: stateDirectory)

        // Warm-up: connections, caches, consumer assignment, the prepared paths of every hop.
        _ = try await closedLoop(count: 200, merchants: merchants)
        try await receiver.waitFor(Self.deliveriesPerPayment * 200)

        // Peak: as many as the stack takes with `concurrency` in flight; the figures cover the
        // payments and every webhook they cause, so the dispatcher's work is in them.
        let databaseBefore = try await DatabaseCounters.quiet(postgres, logger: logger)
        let cpuBefore = processes.cpuTicks()
        let deliveredBefore = receiver.count
        let started = ContinuousClock.now
        let peak = try await closedLoop(count: payments, merchants: merchants)
        let paymentSeconds = Bench.seconds(ContinuousClock.now - started)
        try await receiver.waitFor(deliveredBefore + Self.deliveriesPerPayment * peak.latencies.count)
        let cpuAfter = processes.cpuTicks()
        let databaseAfter = try await DatabaseCounters.quiet(postgres, logger: logger)
        let deliveries = receiver.count - deliveredBefore
        let confirmed = peak.latencies.count
        let peakRate = Double(confirmed) / paymentSeconds

        // Half the peak rate, paced: the latency a merchant sees on a stack with headroom.
        let rate = peakRate / 2
        let steady = try await openLoop(rate: rate, seconds: Double(steadySeconds), merchants: merchants)

        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        Bench.say("")
        Bench.say("whole stack per confirmed payment\(label.isEmpty ? "" : " (\(label))"): \(confirmed) payments (\(peak.failures) failed), \(deliveries) webhooks delivered")
        var total = 0.0
        for name in StackProcesses.order where cpuBefore[name] != nil || cpuAfter[name] != nil {
            let used = Double((cpuAfter[name] ?? 0) - (cpuBefore[name] ?? 0)) / hz * 1000 / Double(confirmed)
            total += used
            Bench.say("  " + name.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: " %6.2f ms CPU", used))
        }
        Bench.say("  " + "whole stack".padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: " %6.2f ms CPU   (target 5.00 ms: %.2f of it)", total, total / 5))
        Bench.say("PostgreSQL (pg_stat_database, read after backends flushed their counters):")
        for database in databaseAfter.keys.sorted() where database.hasPrefix("paywire_") {
            let commits = Double(databaseAfter[database]!.commits - (databaseBefore[database]?.commits ?? 0))
            let rows = Double(databaseAfter[database]!.rowsWritten - (databaseBefore[database]?.rowsWritten ?? 0))
            let perDelivery = database.hasSuffix("webhook_dispatcher")
            let unit = perDelivery ? Double(max(deliveries, 1)) : Double(confirmed)
            Bench.say("  " + database.padding(toLength: 28, withPad: " ", startingAt: 0)
                      + String(format: " %6.2f commits, %6.2f rows written per ", commits / unit, rows / unit) + (perDelivery ? "delivery" : "payment"))
        }
        let paymentDatabases = databaseAfter.keys.filter { $0.hasPrefix("paywire_") && !$0.hasSuffix("webhook_dispatcher") }
        let paymentCommits = Double(paymentDatabases.reduce(0) { $0 + databaseAfter[$1]!.commits - (databaseBefore[$1]?.commits ?? 0) }) / Double(confirmed)
        Bench.say(String(format: "  payments' databases together: %.2f commits per payment (target 3.00: %.2f of it)", paymentCommits, paymentCommits / 3))
        if let dispatcher = databaseAfter.keys.first(where: { $0.hasSuffix("webhook_dispatcher") }) {
            let commits = Double(databaseAfter[dispatcher]!.commits - (databaseBefore[dispatcher]?.commits ?? 0)) / Double(max(deliveries, 1))
            Bench.say(String(format: "  dispatcher's database: %.3f commits per delivery (target 0.20: %.2f of it)", commits, commits / 0.2))
        }
        Bench.say(String(format: "payments/s at peak (%d in flight): %.0f; p50 %.1f ms, p99 %.1f ms", concurrency, peakRate,
                         peak.percentile(0.5) * 1000, peak.percentile(0.99) * 1000))
        Bench.say(String(format: "at half the peak (%.0f/s for %d s, %d payments, %d failed): p50 %.1f ms, p99 %.1f ms (target p99 100 ms: %.2f of it)",
                         rate, steadySeconds, steady.latencies.count, steady.failures, steady.percentile(0.5) * 1000,
                         steady.percentile(0.99) * 1000, steady.percentile(0.99) * 1000 / 100))
        receiver.stop()
        if peak.failures > 0 || steady.failures > 0 { throw ExitCode(1) }
    }

    /// Each confirmed payment's webhooks: `payment_succeeded` to the merchant's one endpoint.
    static let deliveriesPerPayment = 1

    struct Merchant {
        var apiKey: String
        var connector: String
    }

    /// A sandbox merchant and a fake-Stripe merchant, each with one endpoint at the receiver.
    func setUp(receiverURL: String) async throws -> [Merchant] {
        var merchants: [Merchant] = []
        let stamp = Int(Date().timeIntervalSince1970)
        for connector in ["sandbox", "stripe"] {
            let id = "cost_\(connector)_\(stamp)"
            let account = Bench.object(try await Bench.call(gateway, .POST, "/accounts", apiKey: adminKey, body: #"{"merchant_id": "\#(id)"}"#))
            guard let profile = account["default_profile"] as? String,
                  let key = Bench.object(try await Bench.call(gateway, .POST, "/api_keys/\(id)", apiKey: adminKey, body: #"{"name": "bench"}"#))["api_key"] as? String
            else { throw ValidationError("set-up failed for \(id)") }
            let details = connector == "stripe" ? #"{"auth_type": "HeaderKey", "api_key": "sk_test_paywire_bench_000000001"}"# : #"{"auth_type": "NoKey"}"#
            _ = try await Bench.call(gateway, .POST, "/account/\(id)/connectors", apiKey: key,
                                     body: #"{"connector_type": "payment_processor", "connector_name": "\#(connector)", "connector_account_details": \#(details)}"#)
            _ = try await Bench.call(gateway, .POST, "/account/\(id)/business_profile/\(profile)/webhooks", apiKey: key,
                                     body: #"{"webhook_url": "\#(receiverURL)/\#(connector)", "events": ["payment_succeeded", "payment_failed"]}"#)
            merchants.append(Merchant(apiKey: key, connector: connector))
        }
        return merchants
    }

    static let payment = #"{"amount": 6540, "currency": "USD", "confirm": true, "payment_method": "card", "payment_method_data": {"card": {"card_number": "4242424242424242", "card_exp_month": "03", "card_exp_year": "2030", "card_cvc": "737"}}}"#

    struct Round {
        var latencies: [Double] = []
        var failures = 0
        func percentile(_ p: Double) -> Double {
            let sorted = latencies.sorted()
            guard !sorted.isEmpty else { return .nan }
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        mutating func add(_ other: Round) {
            latencies += other.latencies
            failures += other.failures
        }
    }

    /// One payment; nil when it was not confirmed.
    func pay(_ merchant: Merchant) async -> Bool {
        guard let answer = try? await Bench.call(gateway, .POST, "/payments", apiKey: merchant.apiKey, body: Self.payment) else { return false }
        return answer.contains("\"succeeded\"")
    }

    func closedLoop(count: Int, merchants: [Merchant]) async throws -> Round {
        let next = NIOLockedValueBox(0)
        return await withTaskGroup(of: Round.self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var round = Round()
                    while true {
                        let number = next.withLockedValue { value -> Int in value += 1; return value - 1 }
                        guard number < count else { break }
                        let began = ContinuousClock.now
                        if await pay(merchants[number % merchants.count]) {
                            round.latencies.append(Bench.seconds(ContinuousClock.now - began))
                        } else {
                            round.failures += 1
                        }
                    }
                    return round
                }
            }
            var all = Round()
            for await round in group { all.add(round) }
            return all
        }
    }

    /// Payments started at `rate` per second whatever the answers do; each one's latency counts
    /// from when it was due to start.
    func openLoop(rate: Double, seconds: Double, merchants: [Merchant]) async throws -> Round {
        let count = max(1, Int(rate * seconds))
        let start = ContinuousClock.now
        return await withTaskGroup(of: Round.self) { group in
            for number in 0..<count {
                let due = start + .milliseconds(Int64(Double(number) / rate * 1000))
                try? await Task.sleep(until: due, clock: .continuous)
                group.addTask {
                    var round = Round()
                    if await pay(merchants[number % merchants.count]) {
                        round.latencies.append(Bench.seconds(ContinuousClock.now - due))
                    } else {
                        round.failures = 1
                    }
                    return round
                }
            }
            var all = Round()
            for await round in group { all.add(round) }
            return all
        }
    }
}

/// Commits and rows written per database.
struct DatabaseCounters {
    var commits: Int
    var rowsWritten: Int

    /// The counters once every backend has flushed its own: PostgreSQL 15 backends report
    /// what they did at most once a second while busy and within ten seconds of going idle, so
    /// this reads until two readings a second apart agree on every database's writes (the
    /// services' idle checks still commit now and then; their few commits are counted).
    static func quiet(_ postgres: PostgresClient, logger: Logger) async throws -> [String: DatabaseCounters] {
        var previous = try await read(postgres, logger: logger)
        var deadline = 30
        while deadline > 0 {
            try await Task.sleep(for: .seconds(1))
            let now = try await read(postgres, logger: logger)
            if now.mapValues(\.rowsWritten) == previous.mapValues(\.rowsWritten) { return now }
            previous = now
            deadline -= 1
        }
        return previous
    }

    static func read(_ postgres: PostgresClient, logger: Logger) async throws -> [String: DatabaseCounters] {
        let rows = try await postgres.query("""
            SELECT datname::text, xact_commit::int8, (tup_inserted + tup_updated + tup_deleted)::int8
            FROM pg_stat_database WHERE datname IS NOT NULL
            """, logger: logger)
        var counters: [String: DatabaseCounters] = [:]
        for try await (name, commits, rows) in rows.decode((String, Int, Int).self) {
            counters[name] = DatabaseCounters(commits: commits, rowsWritten: rows)
        }
        return counters
    }
}

/// The processes of a stack that `./scripts/up` started, found from its pid files.
struct StackProcesses {
    let stateDirectory: String

    /// The order figures are printed in; replicas (`gateway-2`) count under their service.
    static let order = ["gateway", "payment-core", "webhook-dispatcher", "recovery-scheduler", "postgres", "dev-broker", "haproxy", "fake-stripe", "fake-adyen"]

    /// CPU ticks (user + system) so far of each kind of process. PostgreSQL's are the
    /// postmaster's, its live children's and those of children that exited (which the postmaster
    /// has waited for: `cutime`/`cstime`).
    func cpuTicks() -> [String: Int] {
        var ticks: [String: Int] = [:]
        let files = (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []
        for file in files where file.hasSuffix(".pid") {
            guard let text = try? String(contentsOfFile: stateDirectory + "/" + file, encoding: .utf8),
                  let pid = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { continue }
            var name = String(file.dropLast(4))
            if name == "broker.bootstrap" { name = "dev-broker" }
            if let dash = name.lastIndex(of: "-"), Int(name[name.index(after: dash)...]) != nil { name = String(name[..<dash]) }
            ticks[name, default: 0] += Self.stat(pid).map { $0.own } ?? 0
        }
        if let text = try? String(contentsOfFile: stateDirectory + "/postgres/postmaster.pid", encoding: .utf8),
           let postmaster = Int(text.split(separator: "\n").first ?? ""), let own = Self.stat(postmaster) {
            var total = own.own + own.children
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = Int(entry), let child = Self.stat(pid), child.parent == postmaster else { continue }
                total += child.own
            }
            ticks["postgres"] = total
        }
        return ticks
    }

    /// Fields of /proc/PID/stat after the command name: parent, own ticks, waited-for children's.
    static func stat(_ pid: Int) -> (parent: Int, own: Int, children: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields from the state (field 3) on; the name may hold spaces, so it is skipped whole.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 15, let parent = Int(fields[1]), let user = Int(fields[11]), let system = Int(fields[12]),
              let childUser = Int(fields[13]), let childSystem = Int(fields[14]) else { return nil }
        return (parent, user + system, childUser + childSystem)
    }
}

/// The merchants' endpoint: answers 200 and counts distinct webhook ids.
final class CountingReceiver: Sendable {
    private let seen = NIOLockedValueBox<Set<String>>([])
    private let task = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    var count: Int { seen.withLockedValue { $0.count } }

    func start(logger: Logger) async throws -> String {
        let router = Router()
        router.post("/**") { [seen] request, _ -> Response in
            _ = try await request.body.collect(upTo: 1 << 20)
            if let id = request.headers[.init("webhook-id")!] { seen.withLockedValue { _ = $0.insert(id) } }
            return Response(status: .ok)
        }
        let port = NIOLockedValueBox<Int?>(nil)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in port.withLockedValue { $0 = channel.localAddress?.port } }, logger: logger)
        task.withLockedValue { $0 = Task { try await app.runService(gracefulShutdownSignals: []) } }
        try await Bench.waitUntil(timeout: .seconds(10), every: .milliseconds(10)) { port.withLockedValue { $0 } != nil }
        return "http://127.0.0.1:\(port.withLockedValue { $0 }!)"
    }

    /// Waits until `total` distinct webhooks have arrived (a slow machine only waits longer).
    func waitFor(_ total: Int) async throws {
        try await Bench.waitUntil(timeout: .seconds(600), every: .milliseconds(50)) { count >= total }
    }

    func stop() { task.withLockedValue { $0?.cancel() } }
}
