import ArgumentParser
import BenchmarkSupport
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Payments per second and latency of `POST /payments` (confirm, sandbox card) through the
/// whole running stack — gateway, Kafka, payment-core, PostgreSQL, the reply back — beside the
/// gateway's `GET /health` measured the same way in the same run, which is the ceiling set by the
/// HTTP path and this machine. Run against `./scripts/up` (see scripts/bench-payments).
@main
struct PaymentsThroughput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "payments-throughput")

    @Option(help: "Gateway base URL") var gateway = "http://127.0.0.1:8080"
    @Option(help: "Admin API key") var adminKey = "test_admin"
    @Option(help: "Payments per round") var payments = 2000
    @Option(help: "Requests in flight") var concurrency = 32
    @Option(help: "Rounds (the best is reported)") var rounds = 3

    struct Round {
        var seconds: Double
        var latencies: [Double]
        var failures: Int
        var perSecond: Double { Double(latencies.count) / seconds }
        func percentile(_ p: Double) -> Double {
            let sorted = latencies.sorted()
            guard !sorted.isEmpty else { return .nan }
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
    }

    func run() async throws {
        let merchant = "bench_\(Int(Date().timeIntervalSince1970))"
        _ = try await call(.POST, "/accounts", key: adminKey, body: #"{"merchant_id": "\#(merchant)"}"#)
        let keyAnswer = try await call(.POST, "/api_keys/\(merchant)", key: adminKey, body: #"{"name": "bench"}"#)
        guard let apiKey = (try JSONSerialization.jsonObject(with: Data(keyAnswer.utf8)) as? [String: Any])?["api_key"] as? String else {
            throw ValidationError("no API key: \(keyAnswer)")
        }
        _ = try await call(.POST, "/account/\(merchant)/connectors", key: apiKey, body: #"{"connector_type": "payment_processor", "connector_name": "sandbox", "connector_account_details": {"auth_type": "NoKey"}}"#)
        let payment = #"{"amount": 6540, "currency": "USD", "confirm": true, "payment_method": "card", "payment_method_data": {"card": {"card_number": "4242424242424242", "card_exp_month": "03", "card_exp_year": "2030", "card_cvc": "737"}}}"#

        // Warm-up: connections, caches, consumer assignment.
        _ = try await measure(count: 200, method: .POST, path: "/payments", key: apiKey, body: payment, expect: "\"succeeded\"")
        _ = try await measure(count: 500, method: .GET, path: "/health", key: nil, body: nil, expect: nil)

        var bestPayments: Round?
        var bestHealth: Round?
        for round in 1...rounds {
            let health = try await measure(count: payments * 5, method: .GET, path: "/health", key: nil, body: nil, expect: nil)
            let paid = try await measure(count: payments, method: .POST, path: "/payments", key: apiKey, body: payment, expect: "\"succeeded\"")
            print(String(format: "round %d: payments %.0f/s p50 %.1f ms p99 %.1f ms (%d failed) | health %.0f/s p50 %.2f ms p99 %.2f ms",
                         round, paid.perSecond, paid.percentile(0.5) * 1000, paid.percentile(0.99) * 1000, paid.failures,
                         health.perSecond, health.percentile(0.5) * 1000, health.percentile(0.99) * 1000))
            if bestPayments == nil || paid.perSecond > bestPayments!.perSecond { bestPayments = paid }
            if bestHealth == nil || health.perSecond > bestHealth!.perSecond { bestHealth = health }
        }
        let paid = bestPayments!, health = bestHealth!
        print("")
        print("POST /payments (confirm, sandbox, \(payments) per round, \(concurrency) in flight, best of \(rounds)):")
        print(String(format: "  %.0f payments/s, p50 %.1f ms, p99 %.1f ms, %d failed", paid.perSecond, paid.percentile(0.5) * 1000, paid.percentile(0.99) * 1000, paid.failures))
        print(String(format: "GET /health ceiling: %.0f requests/s, p50 %.2f ms, p99 %.2f ms", health.perSecond, health.percentile(0.5) * 1000, health.percentile(0.99) * 1000))
        print(String(format: "ratio payments/s ÷ health/s: %.3f; p50 latency × health p50: %.1f", paid.perSecond / health.perSecond, paid.percentile(0.5) / health.percentile(0.5)))
        if paid.failures > 0 { throw ExitCode(1) }
    }

    func measure(count: Int, method: HTTPMethod, path: String, key: String?, body: String?, expect: String?) async throws -> Round {
        let start = ContinuousClock.now
        let next = Counter()
        let results = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    var failures = 0
                    while next.take() < count {
                        let began = ContinuousClock.now
                        do {
                            let text = try await call(method, path, key: key, body: body)
                            if let expect, !text.contains(expect) { failures += 1; continue }
                            let elapsed = ContinuousClock.now - began
                            latencies.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                        } catch {
                            failures += 1
                        }
                    }
                    return (latencies, failures)
                }
            }
            var all: [Double] = []
            var failures = 0
            for try await (latencies, failed) in group {
                all += latencies
                failures += failed
            }
            return (all, failures)
        }
        let elapsed = ContinuousClock.now - start
        return Round(seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, latencies: results.0, failures: results.1)
    }

    func call(_ method: HTTPMethod, _ path: String, key: String?, body: String?) async throws -> String {
        try await Bench.call(gateway, method, path, apiKey: key, body: body)
    }
}

/// Hands out request numbers to the workers.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value - 1
    }
}


