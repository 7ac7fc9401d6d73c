import NIOConcurrencyHelpers
import Foundation
import Hummingbird
import Logging
import NIOCore
import PaywireKafka
import PaywireModels
import PaywireStore
import PostgresNIO
import Synchronization

/// Whether a service has finished start-up (migrations, topics) and can reach its dependencies.
public final class Readiness: Sendable {
    private let started = Atomic<Bool>(false)
    private let postgres: PostgresClient
    private let producer: KafkaProducer

    /// What `/health` checks: every consumer of the service moving on.
    public let liveness: Liveness

    public init(postgres: PostgresClient, producer: KafkaProducer, liveness: Liveness) {
        self.postgres = postgres
        self.producer = producer
        self.liveness = liveness
    }

    private let conditions = NIOLockedValueBox<[String: Bool]>([:])

    public func markStarted() { started.store(true, ordering: .releasing) }

    /// A further condition for `/ready` (the gateway waits for its reply partitions).
    public func require(_ name: String) { conditions.withLockedValue { $0[name] = $0[name] ?? false } }
    public func satisfy(_ name: String) { conditions.withLockedValue { $0[name] = true } }
    public var isStarted: Bool { started.load(ordering: .acquiring) }

    /// Consumers and relays wait here so they never touch tables that migrations have not made.
    public func waitUntilStarted() async throws {
        while !isStarted {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    public func check() async -> [String: String] {
        var problems: [String: String] = [:]
        if !isStarted { problems["startup"] = "migrations or topic set-up not finished" }
        for (name, met) in conditions.withLockedValue({ $0 }) where !met { problems[name] = "not yet" }
        do {
            try await withTimeout(.seconds(2)) { [postgres] in
                _ = try await postgres.query("SELECT 1")
            }
        } catch {
            problems["postgres"] = "unreachable"
        }
        do {
            _ = try await producer.topicPartitionCounts(timeout: .seconds(2))
        } catch {
            problems["kafka"] = "unreachable"
        }
        return problems
    }
}

public struct TimeoutError: TransientFault, CustomStringConvertible {
    public var description: String { "timed out" }
}

/// Runs `body`, giving up (and cancelling it) after `duration`.
public func withTimeout<T: Sendable>(_ duration: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimeoutError() }
        return value
    }
}

public enum OperationalRoutes {
    /// `GET /health` (the process answers and no consumer is stuck: see `Liveness`), `GET /ready`
    /// (start-up done, PostgreSQL and Kafka reachable) and `GET /metrics` (Prometheus text), on
    /// every service.
    public static func add<Context: RequestContext>(to router: Router<Context>, readiness: Readiness) {
        router.get("/health") { _, _ in
            let problems = readiness.liveness.problems()
            if problems.isEmpty { return jsonResponse(.ok, ["status": .string("ok")]) }
            return jsonResponse(.serviceUnavailable, ["status": .string("stalled"), "problems": .object(problems.mapValues(JSONValue.string))])
        }
        router.get("/ready") { _, _ in
            let problems = await readiness.check()
            if problems.isEmpty { return jsonResponse(.ok, ["status": .string("ready")]) }
            return jsonResponse(.serviceUnavailable, ["status": .string("not_ready"), "problems": .object(problems.mapValues(JSONValue.string))])
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: PaywireMetrics.exposition()))
            )
        }
    }

    public static func jsonResponse(_ status: HTTPResponse.Status, _ object: [String: JSONValue]) -> Response {
        (try? JSONResponse(.object(object), status: status).response()) ?? Response(status: .internalServerError)
    }
}
