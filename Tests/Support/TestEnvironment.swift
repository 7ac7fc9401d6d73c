import Foundation
import Logging
import NIOConcurrencyHelpers
import PaywireKafka
import PostgresNIO

/// What integration tests run against. `./scripts/test` starts a private PostgreSQL and the dev
/// broker and exports their addresses; Kafka tests that need a cluster of a given shape start one
/// in-process (the same librdkafka mock cluster the dev broker hosts).
public enum TestEnvironment {
    public static let environment = ProcessInfo.processInfo.environment

    public static var databaseURL: String? { environment["PAYWIRE_TEST_DATABASE_URL"] }
    public static var kafkaBrokers: String? { environment["PAYWIRE_TEST_KAFKA_BROKERS"] }
    /// Where `swift build` put the executables, for end-to-end tests.
    public static var binPath: String? { environment["PAYWIRE_TEST_BIN"] }

    /// Under ./scripts/test a missing service is a failure, not a skip.
    public static var servicesRequired: Bool { environment["PAYWIRE_REQUIRE_SERVICES"] == "1" }
    public static var hasDatabase: Bool { databaseURL != nil || servicesRequired }

    public static func logger(_ label: String, level: Logger.Level = .warning) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }

    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// An in-process mock Kafka cluster for one test, shut down at the end of it.
public func withMockCluster<T>(
    brokers: Int = 3,
    topics: [KafkaTopicSpec],
    _ body: (MockKafkaCluster) async throws -> T
) async throws -> T {
    let cluster = try MockKafkaCluster(brokers: brokers, logger: TestEnvironment.logger("mock-cluster", level: .critical))
    defer { cluster.shutdown() }
    for topic in topics { try cluster.createTopic(topic) }
    return try await body(cluster)
}

public struct MissingTestService: Error, CustomStringConvertible {
    public let description: String
}

/// A PostgreSQL client on the test database, running for the duration of `body`.
public func withTestPostgres<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
    guard let url = TestEnvironment.databaseURL else {
        throw MissingTestService(description: "PAYWIRE_TEST_DATABASE_URL is not set: run ./scripts/test")
    }
    let configuration = try DatabaseConfigurationForTests.make(url)
    let client = PostgresClient(configuration: configuration, backgroundLogger: TestEnvironment.logger("postgres"))
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

import PaywireStore

/// A client on one of a stack's databases (`PaywireStack.databaseURL(owning:)`) for the length of `body`.
public func withStackDatabase<T: Sendable>(_ url: String, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
    let client = PostgresClient(configuration: try DatabaseConfiguration(url: url).clientConfiguration, backgroundLogger: TestEnvironment.logger("pg", level: .error))
    // (The client may be asked before run() has started; PostgresNIO waits, and warns about it.)
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

enum DatabaseConfigurationForTests {
    static func make(_ url: String) throws -> PostgresClient.Configuration {
        try DatabaseConfiguration(url: url, maxConnections: 20).clientConfiguration
    }
}

/// Collects values from concurrent tasks.
public final class Collector<Value: Sendable>: Sendable {
    private let values = NIOLockedValueBox<[Value]>([])
    public init() {}
    public func append(_ value: Value) { values.withLockedValue { $0.append(value) } }
    public var all: [Value] { values.withLockedValue { $0 } }
    public var count: Int { values.withLockedValue { $0.count } }
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(30), interval: Duration = .milliseconds(50), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        // A test past its time limit is cancelled: stop polling rather than keep a dead stack busy.
        if Task.isCancelled { return false }
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Runs a program to its end and returns its exit status and everything it printed (standard
/// output and error together); `input` is written to its standard input first.
public func runProgram(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// `runProgram` on a thread of its own, so a long run (schemathesis takes minutes) never holds one
/// of the few cooperative threads that read the stack's log pipes — with two such runs at once on
/// two cores every test, and every service writing its log, would wait.
public func runProgramOffPool(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runProgram(executable, arguments, environment: environment) })
        }
    }
}

/// The heaviest end-to-end tests (schemathesis, the dispatcher burst) take turns rather than run
/// beside each other: on two cores their overlap starves the broker's group coordination and the
/// timing they measure stops meaning anything.
public actor HeavyTests {
    public static let gate = HeavyTests()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public func exclusive<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        }
        busy = true
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}
