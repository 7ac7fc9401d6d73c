import Foundation
import PaywireTestSupport
import Testing

/// The fault drill, short: `./scripts/chaos` for 45 s of traffic through the balancer with two
/// replicas of every service while replicas are killed -9, brokers go down and up, the fake Stripe
/// turns slow and PostgreSQL restarts once; then every invariant it checks must hold (it exits 1
/// otherwise): no payment in an unknown or silently unconfirmed state, no valid request answered
/// 4xx or 500, no double charge, every expected webhook delivered, no duplicate delivery row, each
/// cancelled recovery job one final event, no dead letter, every replica ready again by itself.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TestEnvironment.servicesRequired))
struct FaultDrillTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func nothingIsLostOrDoneTwiceWhileReplicasDieBrokersGoAndPostgreSQLRestarts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chaos-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = directory.appendingPathComponent("drill.json")
        var environment = ProcessInfo.processInfo.environment
        environment["PAYWIRE_BIN"] = TestEnvironment.environment["PAYWIRE_TEST_BIN"]
        environment["PAYWIRE_CHAOS_STATE"] = directory.appendingPathComponent("state").path
        environment["PAYWIRE_CHAOS_PORT_BASE"] = "23080"
        // Four clients, a kill every 6 s: the suite's machine is small and busy; a slow machine
        // only makes fewer requests.
        let (status, output) = try await runProgramOffPool(
            Self.root.appendingPathComponent("scripts/chaos").path,
            ["--duration", "45", "--settle", "300", "--clients", "4", "--kill-every", "6", "--broker-every", "15", "--json", report.path],
            environment: environment
        )
        #expect(status == 0, "\(output.suffix(6000))")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: report)) as? [String: Any], "\(output.suffix(3000))")
        #expect((document["broken"] as? [String])?.isEmpty == true, "\(output.suffix(6000))")
        // The faults really happened.
        let faults = ((document["details"] as? [String: Any])?["faults"] as? [String]) ?? []
        #expect(faults.filter { $0.contains("kill -9") }.count >= 3, "\(faults)")
        #expect(faults.contains { $0.contains("down") } && faults.contains { $0.contains("PostgreSQL restart") }, "\(faults)")
        let rows = (document["rows"] as? [[Any]]) ?? []
        let payments = rows.first { $0.first as? String == "payments" }?[1] as? Int ?? 0
        #expect(payments > 0, "\(rows)")
    }
}
