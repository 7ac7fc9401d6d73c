import AsyncHTTPClient
import Foundation
import NIOCore
import PaywireRuntime
import PaywireStore
import PostgresNIO

/// The dev broker and the four services as processes, on a database of their own, for
/// end-to-end tests. Everything listens on loopback and stops with `stop()` (or with the test
/// process, through PAYWIRE_EXIT_WITH_PARENT).
public final class PaywireStack: @unchecked Sendable {
    public static let services = ["payment-core", "webhook-dispatcher", "recovery-scheduler", "gateway"]
    /// The database role each service logs in as.
    public static let serviceRoles = [
        "gateway": "paywire_gateway", "payment-core": "paywire_payment_core",
        "webhook-dispatcher": "paywire_webhook_dispatcher", "recovery-scheduler": "paywire_recovery_scheduler",
    ]

    /// A service's own connection: its role, and (with PAYWIRE_SEPARATE_DATABASES=1) its own database.
    public func databaseURL(for executable: String) -> String {
        guard let role = Self.serviceRoles[executable], var components = URLComponents(string: databaseURL) else { return databaseURL }
        components.user = role
        components.password = role
        if Self.separateDatabases { components.path += "_\(role)" }
        return components.string ?? databaseURL
    }
    public static let adminKey = "test_admin"
    /// The service that owns each schema.
    public static let schemaOwners = ["gateway": "gateway", "payments": "payment-core", "webhooks": "webhook-dispatcher", "recovery": "recovery-scheduler"]
    static var separateDatabases: Bool { TestEnvironment.environment["PAYWIRE_SEPARATE_DATABASES"] == "1" }

    /// Where `schema` lives, for tests that look at (or plant) stored data, as the test role (which
    /// may see everything): the stack's one database, or with PAYWIRE_SEPARATE_DATABASES=1 the
    /// owning service's own.
    public func databaseURL(owning schema: String) -> String {
        guard Self.separateDatabases, let role = Self.schemaOwners[schema].flatMap({ Self.serviceRoles[$0] }),
              var components = URLComponents(string: databaseURL) else { return databaseURL }
        components.path += "_\(role)"
        return components.string ?? databaseURL
    }

    public let broker: ServiceProcess
    /// The fake Stripe API, when the stack was started with one.
    public private(set) var fakeStripe: ServiceProcess?
    public private(set) var fakeStripeURL: String?
    /// The fake Adyen API (Checkout, Dispute Service, Management), when the stack has one.
    public private(set) var fakeAdyen: ServiceProcess?
    public private(set) var fakeAdyenURL: String?
    public let kafkaBrokers: String
    public let databaseURL: String
    public private(set) var processes: [String: ServiceProcess] = [:]
    public private(set) var ports: [String: Int] = [:]
    /// The gateway's internal listener (the card vault), which payment-core is told to trust.
    public private(set) var internalPorts: [String: Int] = [:]
    public let logDirectory: URL
    let baseEnvironment: [String: String]

    public var gatewayURL: String { "http://127.0.0.1:\(ports["gateway"]!)" }
    /// The key the services seal secrets with, for tests that plant stored data.
    public var encryptionKey: String { baseEnvironment["PAYWIRE_ENCRYPTION_KEY"]! }
    /// Signs commands as the gateway does (tests that play the gateway on Kafka).
    public var commandSigner: CommandSigner { try! CommandSigner(environment: baseEnvironment) }

    /// With `gatewayReplicas` > 1 the extra gateways run as `gateway-2`, `gateway-3`, …
    public static func start(services: [String] = services, extraEnvironment: [String: String] = [:], fakeStripe: Bool = false, fakeAdyen: Bool = false, gatewayReplicas: Int = 1) async throws -> PaywireStack {
        guard let testURL = TestEnvironment.databaseURL else {
            throw MissingTestService(description: "PAYWIRE_TEST_DATABASE_URL is not set: run ./scripts/test")
        }
        let database = TestEnvironment.uniqueName("e2e")
        let separate = separateDatabases
        try await withTestPostgres { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"))
            // Each service logs in as its own role, which reaches only the schema it creates: a
            // query into another service's schema fails ("permission denied"). The test role is
            // a member of all four, so tests can look at everything.
            for role in Self.serviceRoles.values.sorted() {
                do {
                    try await client.query(PostgresQuery(unsafeSQL: "CREATE ROLE \(role) LOGIN PASSWORD '\(role)'"))
                } catch {
                    // Made by an earlier (or a concurrent) stack.
                }
                try? await client.query(PostgresQuery(unsafeSQL: "GRANT \(role) TO CURRENT_USER"))
                try await client.query(PostgresQuery(unsafeSQL: "GRANT CONNECT, CREATE ON DATABASE \(database) TO \(role)"))
                if separate {
                    try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)_\(role) OWNER \(role)"))
                }
            }
        }
        var components = URLComponents(string: testURL)!
        components.path = "/\(database)"
        let databaseURL = components.string!
        let logDirectory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("paywire-e2e-\(database)")
        let bootstrapFile = logDirectory.appendingPathComponent("bootstrap")
        let broker = try ServiceProcess(
            executable: "paywire-dev-broker",
            arguments: ["--brokers", "3", "--partitions", "6", "--bootstrap-file", bootstrapFile.path],
            environment: [:],
            logDirectory: logDirectory
        )
        // Waited for as long as it is running (a loaded machine only makes this slower), up to
        // two minutes; a broker that exited is reported at once.
        var brokers: String?
        let brokerDeadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < brokerDeadline && broker.isRunning {
            if let text = try? String(contentsOf: bootstrapFile, encoding: .utf8), !text.isEmpty { brokers = text; break }
            try await Task.sleep(for: .milliseconds(25))
        }
        guard let brokers else {
            await broker.stop()
            throw MissingTestService(description: "dev broker did not start: \(broker.logTail())")
        }
        var environment = [
            "DATABASE_URL": databaseURL,
            "KAFKA_BROKERS": brokers,
            "PAYWIRE_ADMIN_API_KEY": adminKey,
            "PAYWIRE_ENCRYPTION_KEY": SecretBox.generateKey(),
            "LOG_LEVEL": "info",
            // Receivers listen on loopback; the SSRF tests switch the guard back on.
            "PAYWIRE_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        ]
        var fakeStripeProcess: ServiceProcess?
        var fakeStripeURL: String?
        if fakeStripe {
            let port = try FreePort.next()
            fakeStripeProcess = try ServiceProcess(executable: "paywire-fake-stripe", arguments: ["--port", String(port)], environment: [:], logDirectory: logDirectory)
            fakeStripeURL = "http://127.0.0.1:\(port)"
            environment["PAYWIRE_STRIPE_BASE_URL"] = fakeStripeURL
            var up = false
            let stripeDeadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < stripeDeadline && fakeStripeProcess!.isRunning {
                if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: fakeStripeURL! + "/_fake/stats"), timeout: .seconds(1)), response.status == .ok { up = true; break }
                try await Task.sleep(for: .milliseconds(50))
            }
            if !up {
                await broker.stop()
                await fakeStripeProcess?.stop()
                throw MissingTestService(description: "fake Stripe did not start: \(fakeStripeProcess!.logTail())")
            }
        }
        var fakeAdyenProcess: ServiceProcess?
        var fakeAdyenURL: String?
        if fakeAdyen {
            do {
                let (process, url) = try await startFake("paywire-fake-adyen", logDirectory: logDirectory)
                (fakeAdyenProcess, fakeAdyenURL) = (process, url)
                environment["PAYWIRE_ADYEN_BASE_URL"] = url
            } catch {
                await broker.stop()
                await fakeStripeProcess?.stop()
                throw error
            }
        }
        environment.merge(extraEnvironment) { _, new in new }
        let stack = PaywireStack(broker: broker, kafkaBrokers: brokers, databaseURL: databaseURL, logDirectory: logDirectory, environment: environment)
        stack.fakeStripe = fakeStripeProcess
        stack.fakeStripeURL = fakeStripeURL
        stack.fakeAdyen = fakeAdyenProcess
        stack.fakeAdyenURL = fakeAdyenURL
        do {
            // Ports first, so each service can be told where the others listen.
            for service in Self.services where services.contains(service) { stack.ports[service] = try FreePort.next() }
            stack.internalPorts["gateway"] = try FreePort.next()
            let extraGateways = services.contains("gateway") ? (1..<max(1, gatewayReplicas)).map { "gateway-\($0 + 1)" } : []
            for name in extraGateways {
                stack.ports[name] = try FreePort.next()
                stack.internalPorts[name] = try FreePort.next()
            }
            for service in Self.services where services.contains(service) { try await stack.startService(service) }
            for name in extraGateways { try await stack.startService(name, executable: "gateway") }
            for service in Self.services where services.contains(service) { try await stack.waitUntilReady(service) }
            for name in extraGateways { try await stack.waitUntilReady(name) }
        } catch {
            await stack.stop()
            throw error
        }
        return stack
    }

    /// Starts a fake processor on a free port and waits (while it runs, up to two minutes) for
    /// its `/_fake/stats` to answer.
    static func startFake(_ executable: String, logDirectory: URL) async throws -> (ServiceProcess, String) {
        let port = try FreePort.next()
        let process = try ServiceProcess(executable: executable, arguments: ["--port", String(port)], environment: [:], logDirectory: logDirectory)
        let url = "http://127.0.0.1:\(port)"
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline && process.isRunning {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url + "/_fake/stats"), timeout: .seconds(1)), response.status == .ok { return (process, url) }
            try await Task.sleep(for: .milliseconds(50))
        }
        await process.stop()
        throw MissingTestService(description: "\(executable) did not start: \(process.logTail())")
    }

    /// Runs `body` on a fresh stack and stops the stack afterwards, whatever `body` did.
    public static func with<T>(services: [String] = services, extraEnvironment: [String: String] = [:], fakeStripe: Bool = false, fakeAdyen: Bool = false,
                               gatewayReplicas: Int = 1, _ body: (PaywireStack) async throws -> T) async throws -> T {
        let stack = try await start(services: services, extraEnvironment: extraEnvironment, fakeStripe: fakeStripe, fakeAdyen: fakeAdyen, gatewayReplicas: gatewayReplicas)
        do {
            let result = try await body(stack)
            await stack.stop()
            return result
        } catch {
            await stack.stop()
            throw error
        }
    }

    init(broker: ServiceProcess, kafkaBrokers: String, databaseURL: String, logDirectory: URL, environment: [String: String]) {
        self.broker = broker
        self.kafkaBrokers = kafkaBrokers
        self.databaseURL = databaseURL
        self.logDirectory = logDirectory
        baseEnvironment = environment
    }

    /// Starts `executable` (default: the service of that name) as `name`; a second replica is the
    /// same executable under another name, e.g. `startService("dispatcher-2", executable: "webhook-dispatcher")`.
    public func startService(_ name: String, executable: String? = nil, overrides: [String: String] = [:]) async throws {
        let port = try ports[name] ?? FreePort.next()
        ports[name] = port
        var environment = baseEnvironment
        environment["HTTP_PORT"] = String(port)
        if let paymentCore = ports["payment-core"] { environment["PAYWIRE_PAYMENT_CORE_URL"] = "http://127.0.0.1:\(paymentCore)" }
        if let dispatcher = ports["webhook-dispatcher"] { environment["PAYWIRE_WEBHOOK_DISPATCHER_URL"] = "http://127.0.0.1:\(dispatcher)" }
        if let scheduler = ports["recovery-scheduler"] { environment["PAYWIRE_RECOVERY_SCHEDULER_URL"] = "http://127.0.0.1:\(scheduler)" }
        if (executable ?? name) == "gateway" {
            let internalPort = try internalPorts[name] ?? FreePort.next()
            internalPorts[name] = internalPort
            environment["PAYWIRE_GATEWAY_INTERNAL_PORT"] = String(internalPort)
            environment["PAYWIRE_GATEWAY_INTERNAL_URL"] = "http://127.0.0.1:\(internalPort)"
        } else if let gatewayInternal = internalPorts["gateway"] {
            // Where the other services rebuild their configuration copies from.
            environment["PAYWIRE_GATEWAY_INTERNAL_URL"] = "http://127.0.0.1:\(gatewayInternal)"
        }
        environment["PAYWIRE_CARD_VAULT_HOSTS"] = internalPorts.values.sorted().map { "127.0.0.1:\($0)" }.joined(separator: ",")
        environment["DATABASE_URL"] = databaseURL(for: executable ?? name)
        environment.merge(overrides) { _, override in override }
        processes[name] = try ServiceProcess(executable: executable ?? name, environment: environment, logDirectory: logDirectory)
    }

    public func waitUntilReady(_ name: String, timeout: Duration = .seconds(60)) async throws {
        let url = "http://127.0.0.1:\(ports[name]!)/ready"
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2)), response.status == .ok {
                return
            }
            if processes[name]?.isRunning == false {
                throw MissingTestService(description: "\(name) exited: \(processes[name]!.logTail())")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw MissingTestService(description: "\(name) not ready: \(processes[name]!.logTail())")
    }

    /// Stops the services (SIGTERM) then the broker; returns each service's exit status.
    @discardableResult
    public func stop() async -> [String: Int32?] {
        var statuses: [String: Int32?] = [:]
        for name in processes.keys where !Self.services.contains(name) {
            statuses[name] = await processes[name]!.stop()
        }
        for service in Self.services.reversed() {
            if let process = processes[service] { statuses[service] = await process.stop() }
        }
        await broker.stop()
        await fakeStripe?.stop()
        await fakeAdyen?.stop()
        return statuses
    }

    /// Every log line the services wrote so far (for scans).
    public func allLogs() -> String {
        let files = (try? FileManager.default.contentsOfDirectory(at: logDirectory, includingPropertiesForKeys: nil)) ?? []
        return files.map { (try? String(contentsOf: $0, encoding: .utf8)) ?? "" }.joined(separator: "\n")
    }

    public func logs(_ service: String) -> String { processes[service]?.logTail(lines: 200) ?? "" }

    // MARK: HTTP helpers

    public struct HTTPResult: Sendable {
        public var status: Int
        public var body: String
        /// Lower-cased names.
        public var headers: [String: String] = [:]
        public var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    public func request(_ method: HTTPMethod, _ path: String, service: String = "gateway", apiKey: String? = adminKey, body: String? = nil, headers: [(String, String)] = [], rawBody: String? = nil) async throws -> HTTPResult {
        let base = switch service {
        case "fake-stripe": fakeStripeURL!
        case "fake-adyen": fakeAdyenURL!
        default: "http://127.0.0.1:\(ports[service]!)"
        }
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let apiKey { request.headers.add(name: "api-key", value: apiKey) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        } else if let rawBody {
            request.body = .bytes(ByteBuffer(string: rawBody))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 10 << 20)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return HTTPResult(status: Int(response.status.code), body: String(buffer: bytes), headers: headers)
    }
}

import NIOHTTP1
