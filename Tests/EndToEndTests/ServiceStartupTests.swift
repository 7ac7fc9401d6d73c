import Foundation
import PaywireTestSupport
import Testing

/// A service started with a setting missing or malformed says which, in one line on standard
/// error, and exits with `EX_CONFIG` (78) — what an orchestrator's events and an operator's
/// terminal show — instead of a crash report. Nothing else needs to run.
@Suite(.timeLimit(.minutes(2)), .enabled(if: TestEnvironment.binPath != nil || TestEnvironment.servicesRequired))
struct ServiceStartupTests {
    static let services = ["gateway", "payment-core", "webhook-dispatcher", "recovery-scheduler"]

    func start(_ service: String, _ environment: [String: String]) throws -> (status: Int32, lines: [Substring]) {
        let executable = URL(fileURLWithPath: try #require(TestEnvironment.binPath)).appendingPathComponent(service).path
        // Nothing listens on these: a service that got past its settings would fail differently.
        var base = ["PATH": "/usr/bin:/bin", "HTTP_PORT": "1", "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "KAFKA_BROKERS": "127.0.0.1:1"]
        base.merge(environment) { _, given in given }
        // Standard error only: standard output carries the JSON log stream.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.environment = base
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self).split(separator: "\n"))
    }

    @Test(arguments: services)
    func aMissingSettingIsNamedInOneLineAndTheExitStatusIsConfiguration(service: String) throws {
        let (status, lines) = try start(service, [:])
        #expect(status == 78, "\(service) exited \(status): \(lines)")
        #expect(lines.count == 1 && lines.first?.contains("PAYWIRE_ENCRYPTION_KEY") == true, "\(lines)")
        #expect(!lines.joined().contains("Fatal error"))
    }

    @Test(arguments: services)
    func aMalformedSettingIsNamedInOneLine(service: String) throws {
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        let (status, lines) = try start(service, ["PAYWIRE_ENCRYPTION_KEY": key, "LOG_LEVEL": "loud"])
        #expect(status == 78, "\(service) exited \(status): \(lines)")
        #expect(lines.count == 1 && lines.first?.contains("LOG_LEVEL") == true, "\(lines)")
        // A setting only this service reads, read while it is built: the log may say what was
        // started by then, and the last line says what stopped it.
        let own = ["gateway": "PAYWIRE_REPLY_TIMEOUT_MS", "payment-core": "PAYWIRE_PSYNC_INTERVAL_MS",
                   "webhook-dispatcher": "PAYWIRE_WEBHOOK_RETRY_ANSWER_MS", "recovery-scheduler": "PAYWIRE_RECOVERY_BATCH"][service]!
        let (ownStatus, ownLines) = try start(service, ["PAYWIRE_ENCRYPTION_KEY": key, own: "soon", "LOG_LEVEL": "critical"])
        #expect(ownStatus == 78, "\(service) exited \(ownStatus): \(ownLines)")
        #expect(ownLines.last?.hasPrefix("\(service): setting \(own) ") == true, "\(ownLines)")
        #expect(!ownLines.joined().contains("Fatal error"))
    }

    /// SIGTERM while start-up cannot finish (PostgreSQL unreachable): every service stops within
    /// the bound an orchestrator gives (10 s here), with status 0.
    @Test(arguments: services)
    func sigtermWithTheDatabaseUnreachableStopsTheServiceWithinTheBound(service: String) async throws {
        let executable = URL(fileURLWithPath: try #require(TestEnvironment.binPath)).appendingPathComponent(service).path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.environment = [
            "PATH": "/usr/bin:/bin", "HTTP_PORT": "0", "LOG_LEVEL": "info", "KAFKA_BROKERS": "127.0.0.1:1",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "PAYWIRE_ENCRYPTION_KEY": Data(repeating: 7, count: 32).base64EncodedString(),
        ]
        let errors = Pipe(), printed = Collector<String>()
        errors.fileHandleForReading.readabilityHandler = { handle in printed.append(String(decoding: handle.availableData, as: UTF8.self)) }
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // Running (its HTTP server is up, so its services and signal handling are) and stuck in
        // start-up, waiting for a database that never answers.
        #expect(await eventually(timeout: .seconds(60)) { printed.all.joined().contains("Server started and listening") }, "\(printed.all.joined())")
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        let stopped = await eventually(timeout: .seconds(10), interval: .milliseconds(50)) { !process.isRunning }
        #expect(stopped, "\(service) still running \(ContinuousClock.now - signalled) after SIGTERM")
        if stopped { #expect(process.terminationStatus == 0, "\(service) exited \(process.terminationStatus)") }
        errors.fileHandleForReading.readabilityHandler = nil
    }
}
